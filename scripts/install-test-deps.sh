#!/usr/bin/env bash
# install-test-deps.sh installs what the tests and the lint call, when it is missing, so that a
# fresh clone needs only the README's commands: Debian packages with apt-get (with sudo when not
# root), sshd's privilege separation directory, and moto_server and the AWS CLI with pip when the
# machine lacks them, AWSGuard's node modules (policy/awsguard, pinned by its lock file) with
# npm ci, and the real OpenClaw and its Node 24 (install-openclaw.sh, pinned the same way).
# When everything is there it does nothing. A tool it cannot install fails the run: the tests
# never skip for a missing tool.
set -euo pipefail

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo="sudo"
fi

# command -> the Debian package that provides it. shellcheck (the lint), cloud-init (its schema
# check), systemd-analyze (verify the units), sqlite3 and mkfs.xfs (the instance scripts run for
# real), curl, unshare/flock/mountpoint (util-linux), pgrep (procps: the tests end the processes
# they start), sshd (the vps tests' real server), sudo and useradd (its users that log in as
# debian or ubuntu do, with and without passwordless sudo), and PostgreSQL's server (the shared
# journal's tests; runuser, from util-linux, runs it as the postgres user).
declare -A packages=(
	[shellcheck]=shellcheck [cloud-init]=cloud-init [systemd-analyze]=systemd [sqlite3]=sqlite3
	[mkfs.xfs]=xfsprogs [curl]=curl [unshare]=util-linux [runuser]=util-linux [flock]=util-linux [mountpoint]=util-linux
	[pgrep]=procps [/usr/sbin/sshd]=openssh-server [sudo]=sudo [useradd]=passwd [node]=nodejs [npm]=npm
)
missing=()
for tool in "${!packages[@]}"; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		missing+=("${packages[$tool]}")
	fi
done
# The shared journal's tests run a real PostgreSQL server: its binaries live off PATH.
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
	missing+=(postgresql)
fi
if [ "${#missing[@]}" -gt 0 ]; then
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
	echo "installing ${missing[*]} with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# sshd needs its privilege separation directory; the package creates it only when its service
# starts, which it does not without systemd.
[ -d /run/sshd ] || $sudo mkdir -p /run/sshd

if ! command -v moto_server >/dev/null 2>&1 || ! command -v aws >/dev/null 2>&1; then
	echo "installing moto_server and the AWS CLI with pip"
	python3 -m pip install --quiet 'moto[server]' awscli
fi
# AWSGuard and the Pulumi policy SDK it runs on, for the policy tests: installed again when the
# lock file is newer than what npm last installed.
pack="$(dirname "$0")/../policy/awsguard"
if [ ! -d "$pack/node_modules/@pulumi/awsguard" ] || [ "$pack/package-lock.json" -nt "$pack/node_modules/.package-lock.json" ]; then
	echo "installing policy/awsguard's node modules with npm ci"
	npm ci --prefix "$pack" --no-audit --no-fund --ignore-scripts --loglevel=error
fi

# The real OpenClaw and its Node, pinned, for the tests that run the gateway itself.
"$(dirname "$0")/install-openclaw.sh"

for tool in moto_server aws python3 node; do
	command -v "$tool" >/dev/null 2>&1 || { echo "the tests need $tool and it could not be installed" >&2; exit 1; }
done
