#!/usr/bin/env bash
# openclaw-restore.sh restores OpenClaw's state from the latest S3 backup onto a new or empty data
# volume, before the gateway starts, and writes the restore marker last.
#
# - The marker already there (a volume that ran before, or a snapshot of one): nothing to do.
# - No backup in the bucket (a new deployment): nothing to restore; the marker is written.
# - Otherwise the archive is downloaded and checked against the SHA-256 the backup recorded,
#   unpacked into a staging folder, every file checked against the manifest, and only then moved
#   into place. Whatever was in the way is moved aside to .pre-restore-<time>, never deleted.
#
# A restore that is killed leaves no marker, so the gateway refuses to start, and the next run
# starts over from a clean staging folder and completes it.
set -Eeuo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
load_env

bucket=${OPENCLAW_BACKUP_BUCKET:?OPENCLAW_BACKUP_BUCKET is not set}
data=$OPENCLAW_DATA_DIR
marker=$(restore_marker)
require_data_mounted

if [ -f "$marker" ]; then
	log "restore already complete ($(head -n 1 "$marker"))"
	exit 0
fi

# write_marker TEXT: the marker appears whole or not at all.
write_marker() {
	printf '%s\n' "$1" >"$marker.tmp"
	sync -f "$marker.tmp" 2>/dev/null || true
	mv -f "$marker.tmp" "$marker"
}

url="s3://$bucket/$OPENCLAW_BACKUP_OBJECT"
# HeadObject says 404 for a missing bucket too: make sure the bucket is there, so that a wrong
# bucket never passes for "no backup yet" and starts the gateway on an empty state.
if ! err=$(aws s3api head-bucket --bucket "$bucket" 2>&1); then
	die "cannot reach the backup bucket $bucket: $err"
fi
if ! head=$(aws s3api head-object --bucket "$bucket" --key "$OPENCLAW_BACKUP_OBJECT" \
	--query 'Metadata.sha256' --output text 2>&1); then
	if [[ $head == *"(404)"* || $head == *"Not Found"* ]]; then
		write_marker "nothing to restore: no backup at $url, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
		log "no backup at $url: this is a new deployment"
		exit 0
	fi
	die "could not look up $url: $head"
fi
want=$head
[[ $want =~ ^[0-9a-f]{64}$ ]] || die "the backup at $url has no sha256 metadata (got \"$want\"): refusing to restore it"

work="$data/.restore-staging"
rm -rf "$work"
mkdir -p "$work/tree"
log "downloading $url"
aws s3 cp "$url" "$work/backup.tar.gz" --only-show-errors
got=$(sha256sum "$work/backup.tar.gz" | cut -d ' ' -f 1)
[ "$got" = "$want" ] || die "the download of $url has sha256 $got, the backup recorded $want"

tar -C "$work/tree" --numeric-owner -xzf "$work/backup.tar.gz"
manifest="$work/tree/.clawdeploy-manifest.sha256"
[ -f "$manifest" ] || die "the backup has no manifest"
(cd "$work/tree" && sha256sum --quiet --strict -c "$manifest") || die "the restored files do not match the manifest"
rm -f "$manifest"

aside="$data/.pre-restore-$(date -u +%Y%m%dT%H%M%SZ)"
for top in "${STATE_DIRS[@]}"; do
	if [ -e "$data/$top" ] || [ -L "$data/$top" ]; then
		mkdir -p "$aside"
		mv "$data/$top" "$aside/$top"
		log "moved the existing $top aside to $aside"
	fi
	if [ -e "$work/tree/$top" ]; then
		mv "$work/tree/$top" "$data/$top"
	fi
done
sync -f "$data" 2>/dev/null || true
write_marker "restored $url sha256 $want, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
rm -rf "$work"
log "restored $url (sha256 $want)"
