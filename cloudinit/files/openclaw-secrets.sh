#!/usr/bin/env bash
# openclaw-secrets.sh writes the gateway's secrets from SSM Parameter Store to
# $OPENCLAW_RUN_DIR/.env: KEY=VALUE lines, mode 0600, on tmpfs. It runs before every start of the
# gateway, so a rotated secret takes effect on restart, and it never prints a value.
#
# The secrets are never written to the data volume (so never to a snapshot or a backup) and never
# to user-data.
set -Eeuo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
load_env

path=${OPENCLAW_SECRETS_PATH:?OPENCLAW_SECRETS_PATH is not set}
umask 077
mkdir -p "$OPENCLAW_RUN_DIR"
chmod 0700 "$OPENCLAW_RUN_DIR"
fs=$(stat -f -c %T "$OPENCLAW_RUN_DIR")
[ "$fs" = tmpfs ] || die "$OPENCLAW_RUN_DIR is on $fs, not tmpfs: refusing to write secrets to disk"

tmp=$(mktemp "$OPENCLAW_RUN_DIR/.env.XXXXXX")
trap 'rm -f "$tmp"' EXIT
# Names are /openclaw/<stack>/env/<VARIABLE>; the variable is the last path element.
aws ssm get-parameters-by-path --path "$path" --with-decryption \
	--query 'Parameters[].[Name,Value]' --output text |
	while IFS=$'\t' read -r name value; do
		[ -n "$name" ] || continue
		key=${name##*/}
		[[ $key =~ ^[A-Z_][A-Z0-9_]*$ ]] || die "parameter $name does not end in an environment variable name"
		printf '%s=%s\n' "$key" "$value"
	done >"$tmp"
chmod 0600 "$tmp"
mv -f "$tmp" "$OPENCLAW_RUN_DIR/.env"
trap - EXIT
log "wrote $(wc -l <"$OPENCLAW_RUN_DIR/.env") secrets from $path to $OPENCLAW_RUN_DIR/.env"
