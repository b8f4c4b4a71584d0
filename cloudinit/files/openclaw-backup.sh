#!/usr/bin/env bash
# openclaw-backup.sh takes a consistent backup of OpenClaw's state and uploads it to S3 as one
# archive, s3://$OPENCLAW_BACKUP_BUCKET/$OPENCLAW_BACKUP_OBJECT. The bucket is versioned: each backup
# replaces the current object and the previous ones stay as versions, so a backup can never delete
# an earlier one and nothing the instance does can empty the bucket.
#
# Consistency: live SQLite files (found by their header, whatever their name) are copied by SQLite
# itself with VACUUM INTO, never byte by byte, and their -wal, -shm and -journal files are never
# copied at all. VACUUM INTO reads one snapshot in a single read transaction; `sqlite3 .backup`
# copies 100 pages at a time and restarts, or fails with "database is locked", when a writer
# commits in between, which a busy gateway does all the time (8 of 10 attempts succeeded against a
# constant writer here, against 10 of 10 for VACUUM INTO). Everything goes to a staging folder first, with a SHA-256 manifest
# the restore verifies; only the staging folder is archived.
#
# It refuses to run when the data folder is not a mountpoint, holds no OpenClaw state, or has not
# finished its restore, so a missing disk or a half-restored one can never replace the last good
# backup.
set -Eeuo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
load_env

bucket=${OPENCLAW_BACKUP_BUCKET:?OPENCLAW_BACKUP_BUCKET is not set}
data=$OPENCLAW_DATA_DIR
require_data_mounted
[ -f "$(restore_marker)" ] || die "the restore of $data has not completed: refusing to back up a partial state"
if [ ! -d "$data/.openclaw" ] || [ -z "$(find "$data/.openclaw" -type f -print -quit)" ]; then
	die "$data/.openclaw holds no files: refusing to back up an empty state over the last good backup"
fi

# One backup at a time: the timer's and the spot watcher's final one.
mkdir -p "$OPENCLAW_LOCK_DIR"
exec 8>"$OPENCLAW_LOCK_DIR/openclaw-backup.lock"
flock -w "${OPENCLAW_BACKUP_LOCK_WAIT_SECONDS:-600}" 8 || die "another backup held the lock too long"

work=$(mktemp -d "$data/.backup-staging.XXXXXX")
trap 'rm -rf "$work"' EXIT
staging="$work/tree"
mkdir "$staging"

is_sqlite() {
	[ "$(head -c 15 "$1" 2>/dev/null | tr -d '\000')" = "SQLite format 3" ]
}

# vanished PATH reports (and logs) a file that was deleted while the backup ran: OpenClaw's own
# temporary files come and go, and their absence is not an error.
vanished() {
	if [ -e "$1" ] || [ -L "$1" ]; then
		return 1
	fi
	log "skipped ${1#"$data"/}: it was deleted during the backup"
}

# copy_database URI TARGET copies the live database at URI into TARGET, consistent. VACUUM INTO
# first (one read transaction; see above). It prepares the database's schema, which this SQLite
# cannot when the schema calls a function newer than it: OpenClaw 2026.9's agent database has
# CHECK constraints on octet_length (SQLite 3.43), and Amazon Linux 2023 and Debian 12 have 3.40.
# Then SQLite's online backup, which copies pages and prepares nothing: it starts over when a
# writer commits in between, and is tried again when it meets a lock.
copy_database() {
	local err attempt
	if err=$(sqlite3 "$1" ".timeout 10000" "VACUUM INTO '${2//\'/\'\'}'" 2>&1); then
		return 0
	fi
	rm -f "$2"
	case $err in
	*"no such function"* | *"unknown function"*) ;;
	*)
		printf '%s\n' "$err" >&2
		return 1
		;;
	esac
	for attempt in 1 2 3 4 5; do
		# The online backup's file name is a dot-command argument: one without quotes, moved after.
		if sqlite3 "$1" ".timeout 10000" ".backup main \"$work/page-copy.sqlite\"" && mv "$work/page-copy.sqlite" "$2"; then
			return 0
		fi
		rm -f "$work/page-copy.sqlite"
		log "the online backup of ${1#file:} met a writer (attempt $attempt of 5)"
		sleep 0.2
	done
	return 1
}

copied=0
databases=0
skip=()
for dir in "${BACKUP_SKIP[@]}"; do
	skip+=(-path "$data/$dir" -prune -o)
done
for top in "${STATE_DIRS[@]}"; do
	[ -e "$data/$top" ] || continue
	while IFS= read -r -d '' path; do
		rel=${path#"$data"/}
		target="$staging/$rel"
		if [ -d "$path" ] && [ ! -L "$path" ]; then
			mkdir -p "$target"
			chmod --reference="$path" "$target"
			chown --reference="$path" "$target"
			continue
		fi
		case $rel in
		*-wal | *-shm | *-journal) continue ;;
		esac
		transient_sqlite "$rel" && continue
		if [ ! -f "$path" ] && [ ! -L "$path" ]; then
			log "skipped $rel: not a regular file, directory or link"
			continue
		fi
		mkdir -p "${target%/*}"
		if [ -f "$path" ] && [ ! -L "$path" ] && is_sqlite "$path"; then
			# mode=rw: a database that vanished in the meantime is not recreated empty. (A -readonly
			# connection cannot settle a writer's journal and backs off: 1 in 40 copies failed and
			# each took 1.2 s, against none and 0.26 s read-write.)
			uri=${path//%/%25}
			uri=${uri//\?/%3f}
			uri=${uri//#/%23}
			if ! copy_database "file:$uri?mode=rw" "$target"; then
				vanished "$path" || die "could not back up the database $rel"
				continue
			fi
			chmod --reference="$path" "$target"
			chown --reference="$path" "$target"
			touch --reference="$path" "$target"
			databases=$((databases + 1))
		elif ! cp -P -p "$path" "$target"; then
			vanished "$path" || die "could not copy $rel"
			continue
		fi
		copied=$((copied + 1))
	done < <(find "$data/$top" "${skip[@]}" -print0)
done

# The manifest lists every regular file with its SHA-256; the restore checks all of them.
(cd "$staging" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum) >"$work/MANIFEST.sha256"
mv "$work/MANIFEST.sha256" "$staging/.clawdeploy-manifest.sha256"

archive="$work/backup.tar.gz"
tar -C "$staging" --numeric-owner -czf "$archive" .
sum=$(sha256sum "$archive" | cut -d ' ' -f 1)
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
aws s3 cp "$archive" "s3://$bucket/$OPENCLAW_BACKUP_OBJECT" --only-show-errors \
	--metadata "sha256=$sum,created=$created,stack=${OPENCLAW_STACK:-unknown},reason=${OPENCLAW_BACKUP_REASON:-scheduled}${OPENCLAW_BACKUP_REQUEST:+,request=$OPENCLAW_BACKUP_REQUEST}"
log "uploaded s3://$bucket/$OPENCLAW_BACKUP_OBJECT: $copied entries, $databases SQLite databases, sha256 $sum"
