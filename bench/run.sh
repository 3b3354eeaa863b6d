#!/usr/bin/env bash
# The benchmark's one command: installs what it compares against, builds,
# and runs every case inside sandbox namespaces. Usage (as root, from
# anywhere): bench/run.sh [REPETITIONS] [--scale N] [--out DIR]
# [--only SECTION]... [--system NAME]... (see --help).
# Results: bench/results/results.{json,md,svg} and results-scale.svg
# (see docs/performance.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The peers. A peer that cannot be installed is reported and skipped; the
# rest still runs.
for pkg in containernetworking-plugins netavark; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        echo "bench: installing $pkg" >&2
        install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null; }
        if ! install && ! { apt-get update -qq && install; }; then
            echo "bench: could not install $pkg; its cases will be skipped" >&2
        fi
    fi
done
# The host embeds bridge.wasm; the benchmark links the host library.
cargo build --release --target wasm32-wasip2 -p bridge
cargo build --release -p mydocker-bench
exec target/release/mydocker-bench "$@"
