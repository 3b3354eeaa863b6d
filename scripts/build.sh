#!/usr/bin/env bash
# Builds the drivers (wasm32-wasip2 components) and then the host, which
# embeds the built-in drivers. Usage: scripts/build.sh [--release]
set -euo pipefail
cd "$(dirname "$0")/.."
profile_flag=()
[ "${1:-}" = "--release" ] && profile_flag=(--release)
cargo build --release --target wasm32-wasip2 -p bridge -p macvlan -p ipvlan -p misbehaving-driver -p future-driver -p hostile-driver
cargo build "${profile_flag[@]}" -p mydocker
