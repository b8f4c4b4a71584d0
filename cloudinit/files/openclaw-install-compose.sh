#!/usr/bin/env bash
# openclaw-install-compose.sh installs the Docker Compose CLI plugin, pinned and verified:
# Amazon Linux 2023 packages Docker but not the compose plugin.
set -Eeuo pipefail

version=v5.1.0
case $(uname -m) in
x86_64) arch=x86_64 sum=5633cb21e06a7c88c7ca48a9334d3d0f7f892e9605ae9e9a45f9a095d4ffceb8 ;;
aarch64) arch=aarch64 sum=da671ae15b4d7c68c38b572a2e9ceba89f09657d2682c2d2e34ad6db828e7442 ;;
*)
	echo "no pinned docker compose build for $(uname -m)" >&2
	exit 1
	;;
esac

dir=${OPENCLAW_COMPOSE_PLUGIN_DIR:-/usr/local/lib/docker/cli-plugins}
mkdir -p "$dir"
tmp=$(mktemp "$dir/.docker-compose.XXXXXX")
trap 'rm -f "$tmp"' EXIT
curl -fsSL --retry 5 --retry-all-errors -o "$tmp" \
	"https://github.com/docker/compose/releases/download/$version/docker-compose-linux-$arch"
echo "$sum  $tmp" | sha256sum -c --quiet
chmod 0755 "$tmp"
mv -f "$tmp" "$dir/docker-compose"
trap - EXIT
echo "installed docker compose $version ($arch)"
