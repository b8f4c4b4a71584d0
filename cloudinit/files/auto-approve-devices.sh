#!/usr/bin/env bash
# auto-approve-devices.sh lists the gateway's device pairing requests, or approves the ones named.
#
#   ./auto-approve-devices.sh                 list pending requests and paired devices
#   ./auto-approve-devices.sh <requestId>...  approve each request
#
# OpenClaw approves only exact request ids; run the list right before approving, since a device
# that retries gets a new id. The gateway is reachable only through SSM port forwarding, so
# every request comes from someone who already holds AWS access to this instance.
set -Eeuo pipefail
env_file=${OPENCLAW_ENV_FILE:-/etc/openclaw/openclaw.env}
data=$(dirname "$(readlink -f "$0")")

openclaw() {
	docker compose --project-name openclaw --env-file "$env_file" -f "$data/docker-compose.yaml" \
		exec -T openclaw-gateway node dist/index.js "$@"
}

if [ $# -eq 0 ]; then
	openclaw devices list
	exit 0
fi
for request in "$@"; do
	openclaw devices approve "$request"
done
