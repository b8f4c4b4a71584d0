#!/usr/bin/env bash
# openclaw-volume.sh finds the data volume by its EBS volume id, waits for it within a bound,
# formats it only when it is blank, and mounts it at OPENCLAW_DATA_DIR.
#
# The device is never guessed from a name like /dev/sdf: Nitro instances expose EBS volumes as
# NVMe devices whose by-id link carries the volume id. A device that holds anything (a filesystem,
# a partition table, any signature blkid recognises) is never formatted.
set -Eeuo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
load_env

volume=${OPENCLAW_VOLUME_ID:?OPENCLAW_VOLUME_ID is not set}
device_dir=${OPENCLAW_DEVICE_DIR:-/dev/disk/by-id}
wait_seconds=${OPENCLAW_DEVICE_WAIT_SECONDS:-300}
fs_type=${OPENCLAW_FS_TYPE:-xfs}
link="$device_dir/nvme-Amazon_Elastic_Block_Store_${volume//-/}"

deadline=$((SECONDS + wait_seconds))
until [ -e "$link" ]; do
	((SECONDS < deadline)) || die "data volume $volume did not appear at $link within ${wait_seconds}s"
	sleep "${OPENCLAW_DEVICE_POLL_SECONDS:-2}"
done
device=$(readlink -f "$link")

if mountpoint -q "$OPENCLAW_DATA_DIR"; then
	log "$OPENCLAW_DATA_DIR is already mounted"
	exit 0
fi

# blkid -p exits 0 when it finds a signature and 2 when the device is blank; anything else means
# it could not tell, and then neither can we.
set +e
blkid -p "$device" >/dev/null 2>&1
probe=$?
set -e
case $probe in
0) log "$device ($volume) holds data: mounting it as it is" ;;
2)
	log "$device ($volume) is blank: creating an $fs_type filesystem"
	mkfs -t "$fs_type" -L openclaw "$device"
	;;
*) die "could not probe $device (blkid exit $probe): refusing to format or mount it" ;;
esac

mkdir -p "$OPENCLAW_DATA_DIR"
mount -o "${OPENCLAW_MOUNT_OPTIONS:-noatime}" "$device" "$OPENCLAW_DATA_DIR"
log "mounted $device ($volume) at $OPENCLAW_DATA_DIR"
