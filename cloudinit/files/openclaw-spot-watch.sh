#!/usr/bin/env bash
# openclaw-spot-watch.sh polls the instance metadata service (IMDSv2) for a Spot interruption
# notice every OPENCLAW_SPOT_POLL_SECONDS (5 s). On a notice, inside the two-minute warning, it
# stops the gateway cleanly, so that its databases are closed, and runs a final backup. Once the
# backup has started, it publishes "<instance id> INTERRUPTED <instance id>" to the stack's status
# parameter (OPENCLAW_STATUS_PARAMETER), which `clawdeploy heal` reads to bring a new instance up.
set -Eeuo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
load_env

imds=${OPENCLAW_IMDS_ENDPOINT:-http://169.254.169.254}
interval=${OPENCLAW_SPOT_POLL_SECONDS:-5}
token=""
token_age=0
notice=$(mktemp)
trap 'rm -f "$notice"' EXIT

# new_token asks IMDSv2 for a session token, valid for six hours; it is renewed every five minutes.
new_token() {
	token=$(curl -fsS --max-time 2 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 21600' "$imds/latest/api/token") || token=""
	token_age=$SECONDS
}

log "watching $imds for a Spot interruption notice every ${interval}s"
while true; do
	if [ -z "$token" ] || ((SECONDS - token_age > 300)); then
		new_token
	fi
	code=$(curl -sS --max-time 2 -o "$notice" -w '%{http_code}' -H "X-aws-ec2-metadata-token: $token" \
		"$imds/latest/meta-data/spot/instance-action" 2>/dev/null) || code=000
	case $code in
	200) break ;;
	404) ;;                     # no notice: the normal answer
	401) token="" ;;            # the token expired: take a new one
	*) log "IMDS answered $code" ;; # keep polling; a notice cannot be missed for long
	esac
	sleep "$interval"
done

started=$SECONDS
log "Spot interruption notice: $(tr -d '\n' <"$notice")"
log "stopping the gateway and the backup timer"
systemctl stop openclaw-backup.timer || log "could not stop openclaw-backup.timer"
systemctl stop openclaw.service || log "could not stop openclaw.service cleanly"
log "running the final backup"
OPENCLAW_BACKUP_REASON=spot-interruption "$(dirname "$0")/openclaw-backup.sh" &
backup=$!
# The heal may start as soon as it reads this, while the backup runs on: the backup is started
# already, and the new instance restores from the bucket only when its volume is empty.
if [ -n "${OPENCLAW_STATUS_PARAMETER:-}" ]; then
	id=$(curl -fsS --max-time 2 -H "X-aws-ec2-metadata-token: $token" "$imds/latest/meta-data/instance-id") || id=unknown
	if aws ssm put-parameter --name "$OPENCLAW_STATUS_PARAMETER" --type SecureString --overwrite \
		--value "$id INTERRUPTED $id" >/dev/null; then
		log "published INTERRUPTED $id to $OPENCLAW_STATUS_PARAMETER"
	else
		log "could not publish the interruption to $OPENCLAW_STATUS_PARAMETER"
	fi
fi
if wait "$backup"; then
	log "final backup done $((SECONDS - started))s after the notice"
else
	die "the final backup failed $((SECONDS - started))s after the notice"
fi
