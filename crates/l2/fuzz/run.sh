#!/usr/bin/env bash
# Runs every fuzz target of the Layer 2 decoders for SECONDS each (default 30).
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain (sanitizers); without
# nightly it falls back to the stable compiler with RUSTC_BOOTSTRAP=1 and no sanitizer.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_EACH="${1:-30}"
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    FUZZ=(cargo +nightly fuzz)
    SAN=()
else
    export RUSTC_BOOTSTRAP=1
    FUZZ=(cargo fuzz)
    SAN=(-s none)
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
for target in $("${FUZZ[@]}" list); do
    mkdir -p "corpus/$target"
    echo "== fuzzing $target for ${SECONDS_EACH}s"
    "${FUZZ[@]}" run "${SAN[@]}" "$target" "corpus/$target" -- \
        -max_total_time="$SECONDS_EACH" -max_len=256 -print_final_stats=1 2>&1 |
        grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss|==[0-9]+==|SUMMARY|thread .* panicked)' || true
    # libFuzzer exits non-zero and leaves an artifact on a crash.
    if compgen -G "artifacts/$target/*" >/dev/null; then
        echo "!! $target found a crash: $(ls artifacts/$target)"
        exit 1
    fi
done
echo "all fuzz targets ran clean"
