#!/usr/bin/env bash
# Builds the container image of contrib/container/Containerfile with podman: a FROM scratch image
# holding the panlink binary and every shared library it links (as `ldd` lists them, at the same
# paths), so that nothing has to be pulled from a registry.
#
#   scripts/build-container.sh [BINARY] [TAG]     (defaults: target/release/panlink, panlink:latest)
#
# Run it:  podman run -d -p 8080:8080 -v panlink-data:/data panlink:latest
# (admin token: podman exec is impossible without a shell; read it with
#  podman volume inspect panlink-data, or set PANLINK_ADMIN_TOKEN with -e).
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-target/release/panlink}
tag=${2:-panlink:latest}
[ -x "$binary" ] || { echo "no executable at $binary (cargo build --release first)"; exit 1; }
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
mkdir -p "$context/rootfs/usr/local/bin" "$context/rootfs/data"
cp "$binary" "$context/rootfs/usr/local/bin/panlink"
# Every library the binary links, and the dynamic loader, at their own paths.
ldd "$binary" | grep -oE '/[^ ]+' | sort -u | while read -r lib; do
  mkdir -p "$context/rootfs$(dirname "$lib")"
  cp -L "$lib" "$context/rootfs$lib"
done
podman build -q -t "$tag" -f contrib/container/Containerfile "$context"
