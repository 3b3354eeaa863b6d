#!/usr/bin/env bash
# Installs what building and testing mydocker needs on Debian/Ubuntu: the
# tools the tests drive (ip, iptables, ping), a statically linked busybox
# (the test image is built from it), the wasm32-wasip2 Rust target, and
# rustfmt/clippy for CI.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then echo "setup.sh: run as root (it uses apt-get)" >&2; exit 1; fi
need=()
for pkg_cmd in iproute2:ip iptables:iptables-restore iputils-ping:ping; do
  pkg=${pkg_cmd%%:*}; cmd=${pkg_cmd##*:}
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
# A dynamically linked busybox (package "busybox") cannot serve as an image.
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "install ok installed" \
  || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
for component in rustfmt clippy; do
  rustup component list --installed | grep -q "^$component" || rustup component add "$component"
done
