#!/usr/bin/env bash
# Sets up, builds and runs the article's scenario inside sandbox network
# namespaces (nothing touches the machine's own network). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
cargo build -q -p mydocker-tests --bin mydocker-demo
exec target/debug/mydocker-demo
