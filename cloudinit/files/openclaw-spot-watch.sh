#!/usr/bin/env bash
# openclaw-spot-watch.sh polls the instance metadata service (IMDSv2) every
# OPENCLAW_SPOT_POLL_SECONDS (5 s) for two signals, and the stack's bucket for a third:
#
# - a rebalance recommendation (events/recommendations/rebalance), which usually comes minutes
#   before an interruption: it takes a checkpoint backup at once, while the gateway keeps serving,
#   published as the bucket's newest backup with reason=rebalance-recommendation;
# - a Spot interruption notice (spot/instance-action): inside the two-minute warning it ends any
#   backup in flight (the final one supersedes it), stops the gateway cleanly, so that its
#   databases are closed, and runs a final backup. Once that has started, it publishes
#   "<instance id> INTERRUPTED <instance id>" to the stack's status parameter
#   (OPENCLAW_STATUS_PARAMETER), which `clawdeploy heal` reads to bring a new instance up;
# - a backup request (OPENCLAW_BACKUP_REQUEST_OBJECT, "<id> <reason>"), polled every
#   OPENCLAW_BACKUP_REQUEST_POLL_SECONDS (30 s): the driver writes one before an upgrade replaces
#   the instance. It takes a backup at once, as it does for a rebalance, with the metadata
#   request=<id> and reason=<reason>, which is how the driver finds it; an id is answered once.
#   A backup that fails is answered too, next to the request ("<id> <why>" in
#   <request object>.failed), so that the driver does not wait out its budget.
#
# EC2 documents both at https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/rebalance-recommendations.html
# and spot-instance-termination-notices.html: 404 while there is none, a JSON document once there is.
set -Eeuo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
load_env

imds=${OPENCLAW_IMDS_ENDPOINT:-http://169.254.169.254}
interval=${OPENCLAW_SPOT_POLL_SECONDS:-5}
token=""
token_age=0
notice=$(mktemp)
recommendation=$(mktemp)
checkpoint=""    # the pid of the checkpoint backup in flight (its own process group)
checkpoint_request="" # the request it answers ("" for a rebalance)
checkpoint_log=$(mktemp) # what it printed (each line stamped), passed on to the log once it ends
checkpointed=""  # the recommendation already checkpointed: one checkpoint for each
request_every=${OPENCLAW_BACKUP_REQUEST_POLL_SECONDS:-30}
request_read=-$request_every # when the request was last read (SECONDS): at once, the first time
answered=""      # the request id last answered
request_id=""
request_reason=""
trap 'rm -f "$notice" "$recommendation" "$checkpoint_log"' EXIT

# new_token asks IMDSv2 for a session token, valid for six hours; it is renewed every five minutes.
new_token() {
	token=$(curl -fsS --max-time 2 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 21600' "$imds/latest/api/token") || token=""
	token_age=$SECONDS
}

# read PATH FILE fetches a metadata document into FILE and prints the HTTP status (000: no answer).
read_metadata() {
	local code
	code=$(curl -sS --max-time 2 -o "$2" -w '%{http_code}' -H "X-aws-ec2-metadata-token: $token" \
		"$imds/latest/meta-data/$1" 2>/dev/null) || code=000
	echo "$code"
}

# take_checkpoint REASON [REQUEST] starts a backup of the live state in its own process group, so
# that a notice can end it whole (the backup, its sqlite3, tar and aws) and free the backup lock at
# once.
take_checkpoint() {
	checkpoint_request=${2:-}
	OPENCLAW_BACKUP_REASON=$1 OPENCLAW_BACKUP_REQUEST=${2:-} setsid "$(dirname "$0")/openclaw-backup.sh" 2>"$checkpoint_log" &
	checkpoint=$!
}

# answer_failure ID WHY tells the driver waiting on request ID that its backup failed, and why (one
# line), in the object next to the request: the instance may write under the backup prefix.
answer_failure() {
	local why=${2//[$'\r\n']/ }
	printf '%s %s\n' "$1" "${why:0:300}" |
		aws s3 cp - "s3://$OPENCLAW_BACKUP_BUCKET/$OPENCLAW_BACKUP_REQUEST_OBJECT.failed" --only-show-errors ||
		log "could not tell the driver that the backup for request $1 failed"
}

# read_request sets request_id and request_reason when the bucket holds a request not yet
# answered. A missing object is the normal answer; an id or reason that is not plain is ignored,
# and said so.
read_request() {
	local line rest
	request_id="" request_reason=""
	[ -n "${OPENCLAW_BACKUP_REQUEST_OBJECT:-}" ] || return 0
	line=$(aws s3 cp "s3://$OPENCLAW_BACKUP_BUCKET/$OPENCLAW_BACKUP_REQUEST_OBJECT" - 2>/dev/null | head -c 200) || return 0
	read -r request_id request_reason rest <<<"$line" || true
	if [ -z "$request_id" ] || [ "$request_id" = "$answered" ]; then
		request_id=""
		return 0
	fi
	answered=$request_id
	if [[ ! $request_id =~ ^[A-Za-z0-9._-]{1,64}$ || ! $request_reason =~ ^[A-Za-z0-9._-]{1,64}$ || -n $rest ]]; then
		log "ignored a backup request that is not \"<id> <reason>\" in plain characters"
		request_id=""
	fi
}

# checkpoint_done logs the outcome of a checkpoint that has ended.
checkpoint_done() {
	if [ -n "$checkpoint" ] && ! kill -0 "$checkpoint" 2>/dev/null; then
		if wait "$checkpoint"; then
			cat "$checkpoint_log" >&2
			log "checkpoint backup uploaded"
		else
			cat "$checkpoint_log" >&2
			log "the checkpoint backup failed; the scheduled backups go on"
			if [ -n "$checkpoint_request" ]; then
				answer_failure "$checkpoint_request" "$(grep -v '^\s*$' "$checkpoint_log" | tail -n 1)"
			fi
		fi
		checkpoint=""
	fi
}

log "watching $imds for a rebalance recommendation and a Spot interruption notice every ${interval}s"
while true; do
	if [ -z "$token" ] || ((SECONDS - token_age > 300)); then
		new_token
	fi
	code=$(read_metadata spot/instance-action "$notice")
	case $code in
	200) break ;;
	404) ;;                     # no notice: the normal answer
	401) token="" ;;            # the token expired: take a new one
	*) log "IMDS answered $code" ;; # keep polling; a notice cannot be missed for long
	esac
	checkpoint_done
	if [ "$(read_metadata events/recommendations/rebalance "$recommendation")" = 200 ] &&
		[ "$(cat "$recommendation")" != "$checkpointed" ] && [ -z "$checkpoint" ]; then
		checkpointed=$(cat "$recommendation")
		log "rebalance recommendation: $(tr -d '\n' <"$recommendation"); taking a checkpoint backup, the gateway keeps serving"
		take_checkpoint rebalance-recommendation
	fi
	if [ -z "$checkpoint" ] && ((SECONDS - request_read >= request_every)); then
		request_read=$SECONDS
		read_request
		if [ -n "$request_id" ]; then
			log "backup request $request_id ($request_reason): taking a backup, the gateway keeps serving"
			take_checkpoint "$request_reason" "$request_id"
		fi
	fi
	sleep "$interval"
done

started=$SECONDS
log "Spot interruption notice: $(tr -d '\n' <"$notice")"
log "stopping the gateway, the backup timer and any backup in flight: the final backup supersedes it"
systemctl stop openclaw-backup.timer || log "could not stop openclaw-backup.timer"
systemctl stop openclaw-backup.service || log "could not stop openclaw-backup.service"
if [ -n "$checkpoint" ]; then
	kill -TERM -- "-$checkpoint" 2>/dev/null || true
	wait "$checkpoint" 2>/dev/null || true
	cat "$checkpoint_log" >&2
	log "ended the checkpoint backup in flight"
fi
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
