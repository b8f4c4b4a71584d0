# shellcheck shell=bash
# lib.sh holds what the OpenClaw instance scripts share. It is sourced, never run.
#
# Settings come from one KEY=VALUE file that cloud-init renders from the stack's configuration
# (OPENCLAW_ENV_FILE, default /etc/openclaw/openclaw.env). The same keys can be overridden in
# the environment, which is how the tests point the scripts at a fake root.

# load_env reads the settings file and applies the defaults of the instance layout.
load_env() {
	local file=${OPENCLAW_ENV_FILE:-/etc/openclaw/openclaw.env}
	if [ ! -r "$file" ]; then
		log "settings file $file is missing"
		return 1
	fi
	set -a
	# shellcheck source=/dev/null
	. "$file"
	set +a
	OPENCLAW_DATA_DIR=${OPENCLAW_DATA_DIR:-/opt/openclaw}
	OPENCLAW_RUN_DIR=${OPENCLAW_RUN_DIR:-/run/openclaw}
	OPENCLAW_LOCK_DIR=${OPENCLAW_LOCK_DIR:-/run/lock}
	OPENCLAW_BACKUP_OBJECT=${OPENCLAW_BACKUP_OBJECT:-backups/latest.tar.gz}
}

# log writes one timestamped line to stderr, which systemd appends to the unit's log file.
log() {
	printf '%s %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${0##*/}" "$*" >&2
}

die() {
	log "$*"
	exit 1
}

# require_data_mounted refuses to go on when the data folder is not a mountpoint: without the
# volume, the folder is an empty directory on the root disk.
require_data_mounted() {
	mountpoint -q "$OPENCLAW_DATA_DIR" ||
		die "$OPENCLAW_DATA_DIR is not a mountpoint: the data volume is not mounted"
}

# Names under the data folder that are OpenClaw's state, and so what backups hold: the state
# directory, the workspace, and the directory of the key that encrypts OAuth auth-profile tokens
# (the container's /home/node/.config/openclaw; OpenClaw's Docker guide lists all three,
# https://docs.openclaw.ai/install/docker). The setup makes each, owned by the container's user.
# shellcheck disable=SC2034 # used by the scripts that source this file
STATE_DIRS=(.openclaw workspace auth-profile-secrets)

# What under the state directories the backups leave out, as the real gateway (2026.9) writes it:
# .openclaw/cache holds the Control UI's assets, about 1,500 files and 54 MB the gateway copies
# from its image at each start (three quarters of a backup's time, and none of its state), and
# .openclaw/tmp its lock files, which mean nothing on another host.
# shellcheck disable=SC2034 # used by the scripts that source this file
BACKUP_SKIP=(.openclaw/cache .openclaw/tmp)

# transient_sqlite PATH: whether PATH is a file OpenClaw's memory store keeps only while it works
# (a lock held as a database, a reindex's shadow copy, with their -wal, -shm, -journal), which
# OpenClaw's own backup leaves out too (SQLITE_MEMORY_TRANSIENT_PATH_PATTERN in its backup
# module; TestTransientSQLiteFilesAreOpenClawsOwn holds the two together). Never state, and a
# reindex holds its lock exclusively: no copy of it can be made while it runs.
TRANSIENT_SQLITE='(^|/)([^/]+\.sqlite\.(generation-(lock|writer)|reindex-lock)\.sqlite|[^/]+\.sqlite\.(backup|memory-reindex|tmp)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(-wal|-shm|-journal)?$'
transient_sqlite() {
	[[ ${1,,} =~ $TRANSIENT_SQLITE ]]
}

# The restore marker: written last by a verified restore (or when there is nothing to restore),
# and required before the gateway starts.
restore_marker() {
	printf '%s/.openclaw-restore-complete' "$OPENCLAW_DATA_DIR"
}
