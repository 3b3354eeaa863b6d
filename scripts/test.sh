#!/usr/bin/env bash
# Builds everything and runs every test (unit, property and the integration
# tests in sandbox namespaces). Needs root: tests create network namespaces.
# Installs missing packages and the wasm32-wasip2 target first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
cargo test --workspace --exclude bridge --exclude misbehaving-driver --exclude future-driver --exclude hostile-driver --exclude mydocker-bench
