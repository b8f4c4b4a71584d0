#!/usr/bin/env bash
# openclaw-start.sh runs before every start of the gateway (ExecStartPre). On ec2-spot it refuses
# to start without the data volume mounted or with an unfinished restore. Then it refreshes the
# secrets in tmpfs, installs the compose file, logs in to ECR when the image lives there, and
# pulls the image when it is not here.
set -Eeuo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
load_env

if [ "${OPENCLAW_TARGET:-}" = vps ]; then
	# A vps keeps the data on its own disk: no volume to wait for, nothing restored.
	mkdir -p "$OPENCLAW_DATA_DIR"
else
	require_data_mounted
	[ -f "$(restore_marker)" ] || die "the restore of $OPENCLAW_DATA_DIR has not completed: not starting the gateway"
fi

# Every state directory exists, owned by the container's user, before compose mounts it: a
# missing bind source would be made by docker, owned by root, and unwritable to the gateway (a
# data folder older than a state directory, say).
for dir in "${STATE_DIRS[@]}"; do
	[ -d "$OPENCLAW_DATA_DIR/$dir" ] ||
		install -d -m 0700 -o "${OPENCLAW_UID:-1000}" -g "${OPENCLAW_GID:-1000}" "$OPENCLAW_DATA_DIR/$dir"
done

"$(dirname "$0")/openclaw-secrets.sh"
install -m 0600 "${OPENCLAW_COMPOSE_SOURCE:-/etc/openclaw/docker-compose.yaml}" "$OPENCLAW_DATA_DIR/docker-compose.yaml"

image=${OPENCLAW_IMAGE:?OPENCLAW_IMAGE is not set}
registry=${image%%/*}
if [[ $registry =~ ^[0-9]{12}\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com$ ]]; then
	log "logging in to $registry"
	aws ecr get-login-password --region "${BASH_REMATCH[1]}" | docker login --username AWS --password-stdin "$registry"
fi

# The image is pinned to its digest (clawdeploy up resolves the tag once): pulled only when it
# is not here, never again for a tag, so that a restart or a new host runs what the stack
# recorded. A tag given without a digest is pulled once too, and then kept.
if docker image inspect "$image" >/dev/null 2>&1; then
	log "$image is here: not pulling"
else
	log "pulling $image"
	docker compose --project-name openclaw --env-file "${OPENCLAW_ENV_FILE:-/etc/openclaw/openclaw.env}" \
		-f "$OPENCLAW_DATA_DIR/docker-compose.yaml" pull --quiet || die "could not pull $image, and it is not here"
fi
