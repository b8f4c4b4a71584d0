#!/usr/bin/env bash
# openclaw-setup.sh brings a host to a running OpenClaw gateway, once, and leaves markers saying
# how it went. clawdeploy launches it detached and polls the markers (see the setup package):
#
#   $root/.openclaw-setup-started   the hash of the script that was launched
#   $root/.openclaw-setup-error     "FAILED: line N: command" when a step fails
#   $root/.openclaw-setup-token     the gateway token (mode 0600)
#   $root/.openclaw-setup-complete  the hash of the script that completed; written last
#
# When OPENCLAW_STATUS_PARAMETER is set (ec2-spot), the status line also goes to that SSM
# parameter, prefixed with the instance id, because the driver polls SSM instead of SSH there.
#
# Every step is idempotent: on a finished host the script changes nothing, and `openclaw
# onboard` runs only when .openclaw/openclaw.json is absent from the data folder.
set -Eeuo pipefail

root=${OPENCLAW_SETUP_ROOT:-/root}
env_file=${OPENCLAW_ENV_FILE:-/etc/openclaw/openclaw.env}

log() { printf '%s setup: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }

# write_marker NAME CONTENT replaces a marker atomically, readable by root only.
write_marker() {
	local tmp="$root/$1.tmp"
	(
		umask 077
		printf '%s\n' "$2" >"$tmp"
	)
	mv -f "$tmp" "$root/$1"
}

# Run directly (not through the launch command): take the lock and record the hash ourselves.
if [ "${OPENCLAW_SETUP_LOCKED:-}" != 1 ]; then
	mkdir -p "$root"
	exec 9>>"$root/.openclaw-setup.lock"
	if ! flock -n 9; then
		log "another setup script is running"
		exit 0
	fi
	write_marker .openclaw-setup-started "$(sha256sum "$0" | cut -d ' ' -f 1)"
fi

instance_id() {
	local token imds=${OPENCLAW_IMDS_ENDPOINT:-http://169.254.169.254}
	token=$(curl -fsS --max-time 2 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "$imds/latest/api/token") &&
		curl -fsS --max-time 2 -H "X-aws-ec2-metadata-token: $token" "$imds/latest/meta-data/instance-id"
}

# publish STATUS writes the status line to SSM on targets that poll there. It never fails the
# setup: the markers stay the record.
publish() {
	[ -n "${OPENCLAW_STATUS_PARAMETER:-}" ] || return 0
	local id
	id=$(instance_id) || id=unknown
	aws ssm put-parameter --name "$OPENCLAW_STATUS_PARAMETER" --type SecureString --overwrite \
		--value "$id $1" >/dev/null || log "could not publish the status to $OPENCLAW_STATUS_PARAMETER"
}

on_error() {
	local rc=$1 line=$2 cmd=${3//$'\n'/ }
	trap - ERR
	write_marker .openclaw-setup-error "FAILED: line $line: $cmd"
	log "failed with exit code $rc at line $line: $cmd"
	publish "FAILED line $line: $cmd"
	exit "$rc"
}
trap 'on_error "$?" "$LINENO" "$BASH_COMMAND"' ERR

# die MESSAGE fails the setup with a message instead of a command in the error marker.
die() { on_error 1 "${BASH_LINENO[0]}" "$*"; }

[ -r "$env_file" ] || die "settings file $env_file is missing"
set -a
# shellcheck source=/dev/null
. "$env_file"
set +a

data=${OPENCLAW_DATA_DIR:-/opt/openclaw}
libexec=${OPENCLAW_LIBEXEC:-/usr/local/libexec/openclaw}
run_dir=${OPENCLAW_RUN_DIR:-/run/openclaw}
port=${OPENCLAW_GATEWAY_PORT:-18789}
target=${OPENCLAW_TARGET:-ec2-spot}

compose() {
	docker compose --project-name openclaw --env-file "$env_file" -f "$data/docker-compose.yaml" "$@"
}

# install_docker installs docker from the host's packages when it is missing: a bare vps.
install_docker() {
	command -v docker >/dev/null 2>&1 && return 0
	log "installing docker"
	if command -v apt-get >/dev/null 2>&1; then
		DEBIAN_FRONTEND=noninteractive apt-get update -q
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io curl
	elif command -v dnf >/dev/null 2>&1; then
		dnf install -y -q docker curl
	else
		die "docker is not installed, and there is no apt-get or dnf here to install it: install Docker, then run up again"
	fi
}

start_services() {
	install_docker
	log "starting docker"
	systemctl daemon-reload
	systemctl enable --now docker.service
	if ! docker compose version >/dev/null 2>&1; then
		log "installing the docker compose plugin"
		"$libexec/openclaw-install-compose.sh"
	fi
}

# check_memory: the gateway alone keeps about 1 GiB resident; a "2 GB" plan shows ~1.9 GiB.
check_memory() {
	local kib
	kib=$(awk '/^MemTotal:/ { print $2 }' "${OPENCLAW_MEMINFO:-/proc/meminfo}" 2>/dev/null) || return 0
	if [ -n "$kib" ] && [ "$kib" -lt 1700000 ]; then
		log "warning: this host has $((kib / 1024)) MiB of memory; OpenClaw's gateway alone keeps about 1 GiB resident and a host needs about 2 GiB: expect it to be killed for memory"
	fi
}

mount_data() {
	if [ "$target" = vps ]; then
		log "vps: the data stays on this host's disk, in $data"
		check_memory
		return 0
	fi
	log "mounting the data volume and restoring it when it is new"
	systemctl start openclaw-volume.service
	systemctl start openclaw-restore.service
	mountpoint -q "$data" || die "$data is not a mountpoint after openclaw-volume.service"
}

prepare_layout() {
	log "preparing $data"
	install -d -m 0700 -o "${OPENCLAW_UID:-1000}" -g "${OPENCLAW_GID:-1000}" \
		"$data/.openclaw" "$data/workspace" "$data/auth-profile-secrets"
	install -m 0600 "${OPENCLAW_COMPOSE_SOURCE:-/etc/openclaw/docker-compose.yaml}" "$data/docker-compose.yaml"
	install -m 0700 "$libexec/auto-approve-devices.sh" "$data/auto-approve-devices.sh"
}

onboard() {
	if [ -f "$data/.openclaw/openclaw.json" ]; then
		log "openclaw.json exists: not onboarding again"
		return 0
	fi
	log "onboarding OpenClaw"
	"$libexec/openclaw-secrets.sh"
	# The non-interactive form OpenClaw documents for a container (https://docs.openclaw.ai/cli/onboard,
	# "Non-interactive setup" and "Other non-interactive flags"): keys and the gateway token by
	# reference to the environment (--secret-input-mode ref, --gateway-token-ref-env), so no secret
	# is written into openclaw.json; no service install (--no-install-daemon: systemd runs the
	# gateway) and no wait for a gateway that starts later (--skip-health); channels, skills and UI
	# prompts left for later; --json for a summary this script checks.
	local token_ref=()
	if grep -q '^OPENCLAW_GATEWAY_TOKEN=.' "$run_dir/.env" 2>/dev/null; then
		token_ref=(--gateway-token-ref-env OPENCLAW_GATEWAY_TOKEN)
	fi
	local summary
	summary=$(compose run --rm --no-deps -T openclaw-cli onboard --non-interactive --accept-risk --mode local \
		${OPENCLAW_ONBOARD_AUTH_CHOICE:+--auth-choice "$OPENCLAW_ONBOARD_AUTH_CHOICE"} --secret-input-mode ref \
		--gateway-auth token "${token_ref[@]}" --gateway-port "$port" --gateway-bind lan \
		--no-install-daemon --skip-health --skip-channels --skip-skills --skip-ui --suppress-gateway-token-output --json)
	printf '%s\n' "$summary" >"$root/openclaw-onboard.json"
	[[ $summary == "{"* ]] || die "openclaw onboard printed no JSON summary: $summary"
	log "onboarded: the summary is in $root/openclaw-onboard.json"
}

start_gateway() {
	if [ "$target" = vps ]; then
		# A relaunch brings changed settings or a new image: restart, do not just ensure it runs.
		log "starting the gateway"
		systemctl enable openclaw.service
		systemctl restart openclaw.service
		return 0
	fi
	log "starting the gateway and its companions"
	systemctl enable --now openclaw.service
	systemctl enable --now openclaw-backup.timer openclaw-spot-watch.service openclaw-cloudwatch.service
}

# healthy reports whether the gateway's /healthz answers its JSON with "ok": true. Its Control UI
# answers unknown paths with 200, so the status alone proves little: the body is checked.
healthy() {
	local body
	body=$(curl -fsS --max-time 5 "http://127.0.0.1:$port/healthz" 2>/dev/null) || return 1
	[[ $body =~ \"ok\"[[:space:]]*:[[:space:]]*true ]]
}

# started: /startupz says 200 "started" once startup work (migrations) is done. Images before
# 2026.8.1 lack it (the UI answers with a page): then /healthz. probe: the path that answered.
started() {
	local out code body
	out=$(curl -sS --max-time 5 -w '\n%{http_code}' "http://127.0.0.1:$port/startupz" 2>/dev/null) || return 1
	code=${out##*$'\n'}
	body=${out%$'\n'*}
	if [[ $body =~ \"status\"[[:space:]]*:[[:space:]]*\"([a-z]+)\" ]]; then
		probe=/startupz
		[ "$code" = 200 ] && [ "${BASH_REMATCH[1]}" = started ]
		return
	fi
	probe=/healthz
	healthy
}

# unit_state prints the gateway unit's state and its count of automatic restarts ("activating 3");
# nothing when systemd cannot say.
unit_state() {
	local state restarts
	state=$(systemctl show openclaw.service --property ActiveState --value 2>/dev/null) || return 0
	restarts=$(systemctl show openclaw.service --property NRestarts --value 2>/dev/null) || return 0
	if [[ $state =~ ^[a-z-]+$ && $restarts =~ ^[0-9]+$ ]]; then
		printf '%s %s' "$state" "$restarts"
	fi
}

# gateway_log prints the last lines the gateway's container wrote, on one line, without the
# colours OpenClaw's logger gives them.
gateway_log() {
	local lines
	lines=$(compose logs --no-color --no-log-prefix --tail 8 openclaw-gateway 2>&1 | sed $'s/\e\\[[0-9;]*[A-Za-z]//g' | tr -s '\n' '|') || true
	lines=${lines%|}
	if ((${#lines} > 600)); then
		lines=…${lines: -600}
	fi
	printf '%s' "$lines"
}

# wait_started waits for the gateway to finish starting. A gateway that crashes at start (a bad
# setting, a failed migration) fails the setup at once, with its last log lines, instead of at the
# timeout: its unit failed, stopped, or was restarted three times since the setup started it.
# Fewer restarts are no crash loop: a starved machine (burst credits spent) can make OpenClaw miss
# its own 5-second bound on starting its state lease (openclaw/openclaw#135717), which the next
# start, 10 s later (Restart=on-failure), usually meets.
wait_started() {
	local deadline=$((SECONDS + ${OPENCLAW_HEALTH_TIMEOUT_SECONDS:-600})) first now
	probe=""
	first=$(unit_state)
	log "waiting for the gateway on port $port to finish starting (/startupz; /healthz before 2026.8.1)"
	until started; do
		now=$(unit_state)
		if [ -n "$first" ] && [ -n "$now" ]; then
			case ${now% *} in
			failed | inactive) die "the gateway stopped while starting (its unit is ${now% *}): $(gateway_log)" ;;
			esac
			if ((${now#* } - ${first#* } >= 3)); then
				die "the gateway keeps crashing: restarted $((${now#* } - ${first#* })) times since the setup started it: $(gateway_log)"
			fi
		fi
		((SECONDS < deadline)) || die "the gateway did not finish starting on port $port in time (${probe:-no answer}: not yet)"
		sleep "${OPENCLAW_HEALTH_POLL_SECONDS:-5}"
	done
	log "the gateway has started: $probe says so"
}

gateway_token() {
	local token=""
	if [ -r "$run_dir/.env" ]; then
		token=$(sed -n 's/^OPENCLAW_GATEWAY_TOKEN=//p' "$run_dir/.env")
	fi
	if [ -z "$token" ]; then
		token=$(compose run --rm --no-deps -T openclaw-cli config get gateway.auth.token)
	fi
	printf '%s' "$token"
}

log "setting up OpenClaw for stack ${OPENCLAW_STACK:-unknown} (${OPENCLAW_TARGET:-unknown})"
publish RUNNING
start_services
mount_data
prepare_layout
onboard
start_gateway
wait_started
token=$(gateway_token)
write_marker .openclaw-setup-token "$token"
write_marker .openclaw-setup-complete "$(cat "$root/.openclaw-setup-started")"
publish "COMPLETE $token"
log "complete"
