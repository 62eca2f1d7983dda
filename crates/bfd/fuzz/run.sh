#!/bin/sh
# Runs the BFD fuzz target for SECONDS seconds (default 60) with cargo-fuzz (libFuzzer).
# Works on the stable toolchain without a sanitizer (the decoder is safe Rust, so a panic is
# what there is to find); FUZZ_TOOLCHAIN=nightly FUZZ_SANITIZER=address adds AddressSanitizer.
# Corpus in corpus/<target>, crashes in artifacts/<target>.
# Usage: crates/bfd/fuzz/run.sh [SECONDS]      (needs `cargo install cargo-fuzz`)
set -eu
cd "$(dirname "$0")"
secs="${1:-60}"
toolchain="${FUZZ_TOOLCHAIN:-stable}"
sanitizer="${FUZZ_SANITIZER:-none}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-bfd-fuzz-$toolchain}"
for t in control; do
    mkdir -p "corpus/$t"
    echo "== $t ($secs s, $toolchain, sanitizer $sanitizer)"
    cargo "+$toolchain" fuzz run -s "$sanitizer" "$t" "corpus/$t" -- \
        -max_total_time="$secs" -max_len=128 2>&1 \
        | grep -E '^(#[0-9]+ +DONE|Done|==[0-9]+==|SUMMARY|thread .* panicked)' || true
    if [ -d "artifacts/$t" ] && [ -n "$(ls -A "artifacts/$t" 2>/dev/null)" ]; then
        echo "FAILURE: crash artifacts in fuzz/artifacts/$t"; exit 1
    fi
done
echo "all fuzz targets ran $secs s each without a crash"
