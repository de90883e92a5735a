#!/usr/bin/env bash
# Runs every cargo-fuzz target with AddressSanitizer on the nightly toolchain.
#   scripts/fuzz.sh                 each target for FUZZ_SECONDS (default 20) seconds
#   scripts/fuzz.sh TARGET -runs=N  one target, extra libFuzzer flags passed through
# Seeds are generated from the conformance vectors into fuzz/corpus/. A crash fails the run;
# its reproducer stays in fuzz/artifacts/<target>/ (replay: cargo test -p offpay-conformance
# --test fuzz_replay, after copying it to fuzz/regressions/<target>/).
set -euo pipefail
cd "$(dirname "$0")/.."

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

cargo run --quiet -p offpay-conformance --bin fuzz-seeds -- fuzz/corpus >/dev/null
targets=$(cargo +nightly fuzz list)
seconds=${FUZZ_SECONDS:-20}
cargo +nightly fuzz build --sanitizer address --release

run() {
    local t=$1; shift
    # The log stays out of the artifact directory: cargo-fuzz reports every file there as a
    # failing input.
    mkdir -p "fuzz/artifacts/$t" fuzz/logs
    local log="fuzz/logs/$t.log"
    if ! cargo +nightly fuzz run --sanitizer address --release "$t" "fuzz/corpus/$t" -- \
        -rss_limit_mb=2048 -max_len=4096 -artifact_prefix="fuzz/artifacts/$t/" "$@" >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "fuzz target $t FAILED; reproducer in fuzz/artifacts/$t/" >&2
        return 1
    fi
    grep -E '^(#[0-9]+\s+DONE|Done [0-9]+ runs)' "$log" | tail -n 1 | sed "s/^/$t: /"
}

if [ $# -gt 0 ]; then
    t=$1; shift
    run "$t" "$@"
else
    passed=0 failed=0
    for t in $targets; do
        if run "$t" -max_total_time="$seconds"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    done
    echo "fuzz: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
fi
