#!/usr/bin/env bash
# Runs every cargo-fuzz target under fuzz/ for SECONDS each (default 60),
# one after the other, on the stable toolchain.
#
# Usage: scripts/fuzz.sh [SECONDS]
#
# Works on the stable toolchain: AddressSanitizer (nightly-only) is disabled
# with --sanitizer none, which leaves only stable rustc flags (sancov
# instrumentation via -Cpasses/-Cllvm-args), so no RUSTC_BOOTSTRAP is needed.
# Panics, failed assertions and aborts are still caught by libFuzzer.
# Crashing inputs land in fuzz/artifacts/<target>/, the growing corpus in
# fuzz/corpus/<target>/ (seeded from fuzz/seeds/<target>/). The
# instrumented build uses fuzz/target, separate from the main target/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked || cargo install cargo-fuzz
fi

# The host crate embeds the built-in bridge driver (see host/build.rs).
cargo build --release --target wasm32-wasip2 -p bridge

export MYDOCKER_DRIVERS_DIR="$PWD/target/wasm32-wasip2/release"
# Never let a CARGO_TARGET_DIR from the environment mix the instrumented
# build into the main target dir.
unset CARGO_TARGET_DIR

cd fuzz
targets=$(cargo fuzz list)
cargo fuzz build --sanitizer none
status=0
for t in $targets; do
    echo "=== fuzzing $t for ${secs}s ==="
    mkdir -p "corpus/$t"
    seeds=()
    [ -d "seeds/$t" ] && seeds=("seeds/$t")
    if ! cargo fuzz run --sanitizer none "$t" "corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$secs" -print_final_stats=1; then
        echo "!!! $t failed: see fuzz/artifacts/$t/" >&2
        status=1
    fi
done
exit $status
