#!/usr/bin/env bash
# openclaw-secrets.sh writes the gateway's secrets to $OPENCLAW_RUN_DIR/.env: KEY=VALUE lines,
# mode 0600, on tmpfs. It runs before every start of the gateway, so a rotated secret takes
# effect on restart, and it never prints a value. The secrets come from SSM Parameter Store
# (ec2-spot: OPENCLAW_SECRETS_PATH) or from the host's root-only secrets file (a vps, which has no
# SSM: OPENCLAW_SECRETS_FILE, KEY=value lines).
#
# The secrets are never written to the data folder (so never to a snapshot or a backup) and never
# to user-data.
set -Eeuo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
load_env

# secrets prints one NAME<TAB>VALUE line per secret.
if [ -n "${OPENCLAW_SECRETS_FILE:-}" ]; then
	from=$OPENCLAW_SECRETS_FILE
	[ -r "$from" ] || die "secrets file $from is missing"
	secrets() { sed -e '/^$/d' -e 's/=/\t/' "$from"; }
else
	from=${OPENCLAW_SECRETS_PATH:?OPENCLAW_SECRETS_PATH is not set}
	# Names are /openclaw/<stack>/env/<VARIABLE>; the variable is the last path element.
	secrets() {
		aws ssm get-parameters-by-path --path "$from" --with-decryption \
			--query 'Parameters[].[Name,Value]' --output text
	}
fi

umask 077
mkdir -p "$OPENCLAW_RUN_DIR"
chmod 0700 "$OPENCLAW_RUN_DIR"
fs=$(stat -f -c %T "$OPENCLAW_RUN_DIR")
[ "$fs" = tmpfs ] || die "$OPENCLAW_RUN_DIR is on $fs, not tmpfs: refusing to write secrets to disk"

tmp=$(mktemp "$OPENCLAW_RUN_DIR/.env.XXXXXX")
trap 'rm -f "$tmp"' EXIT
secrets |
	while IFS=$'\t' read -r name value; do
		[ -n "$name" ] || continue
		key=${name##*/}
		[[ $key =~ ^[A-Z_][A-Z0-9_]*$ ]] || die "parameter $name does not end in an environment variable name"
		printf '%s=%s\n' "$key" "$value"
	done >"$tmp"
chmod 0600 "$tmp"
mv -f "$tmp" "$OPENCLAW_RUN_DIR/.env"
trap - EXIT
log "wrote $(wc -l <"$OPENCLAW_RUN_DIR/.env") secrets from $from to $OPENCLAW_RUN_DIR/.env"
