#!/usr/bin/env bash
# Installs what building and testing mydocker needs on Debian/Ubuntu.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then echo "setup.sh: run as root (it uses apt-get)" >&2; exit 1; fi
need=()
for pkg_cmd in iproute2:ip iptables:iptables-restore iputils-ping:ping netcat-openbsd:nc busybox-static:busybox; do
  pkg=${pkg_cmd%%:*}; cmd=${pkg_cmd##*:}
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
