#!/bin/sh
# Runs every fuzz target for SECONDS seconds each (default 60) with cargo-fuzz on the nightly
# toolchain (libFuzzer's instrumentation needs -Z flags). Corpora live in corpus/<target>.
# Usage: crates/bgp/fuzz/run.sh [SECONDS]
set -eu
cd "$(dirname "$0")"
secs="${1:-60}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-bgp-fuzz}"
for t in message open update capability attributes; do
    mkdir -p "corpus/$t"
    echo "== $t ($secs s)"
    cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=4096 2>&1 \
        | grep -E '^(#[0-9]+ +DONE|Done|==[0-9]+==|SUMMARY|thread .* panicked)' || true
    if [ -d "artifacts/$t" ] && [ -n "$(ls -A "artifacts/$t" 2>/dev/null)" ]; then
        echo "FAILURE: crash artifacts in fuzz/artifacts/$t"; exit 1
    fi
done
echo "all fuzz targets ran $secs s each without a crash"
