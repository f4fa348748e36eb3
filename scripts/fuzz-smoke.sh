#!/usr/bin/env bash
# make fuzz-smoke: runs each libFuzzer target given on the command line (build/fuzz/fuzz_NAME)
# for FUZZ_SECONDS on its seed corpus tests/fuzz/corpus/NAME/ and fails if any target
# crashes, leaks, times out or trips a sanitizer. New inputs go to a scratch corpus under
# build/fuzz/corpus/NAME/ (the seed corpus in the repository is never written); a crashing
# input is saved as build/fuzz/artifacts/NAME-crash-* and its path printed.
set -u
cd "$(dirname "$0")/.."
FUZZ_BUILD=${FUZZ_BUILD:-build/fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
[ $# -gt 0 ] || { echo "fuzz-smoke: no targets (tests/fuzz/fuzz_*.c)" >&2; exit 1; }
failed=()
start_all=$(date +%s)
for bin in "$@"; do
    name=$(basename "$bin")
    name=${name#fuzz_}
    seed=tests/fuzz/corpus/$name
    work=$FUZZ_BUILD/corpus/$name
    log=$FUZZ_BUILD/logs/$name.log
    mkdir -p "$work" "$FUZZ_BUILD/artifacts" "$FUZZ_BUILD/logs"
    corpora=("$work")
    if [ -d "$seed" ]; then
        corpora+=("$seed")
    else
        echo "fuzz-smoke: $name has no seed corpus $seed/" >&2
    fi
    start=$(date +%s)
    "$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$FUZZ_BUILD/artifacts/$name-" "${corpora[@]}" >"$log" 2>&1
    rc=$?
    secs=$(($(date +%s) - start))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if [ "$rc" -ne 0 ]; then
        failed+=("$name")
        echo "fuzz-smoke: $name FAILED (exit $rc) after ${secs}s; log: $log"
        grep -E "^(==[0-9]+==ERROR|SUMMARY|.*runtime error|artifact_prefix|Test unit written)" \
            "$log" | head -20
    else
        echo "fuzz-smoke: $name ok: ${runs:-?} runs in ${secs}s, corpus $(ls "$work" | wc -l) new"
    fi
done
echo "fuzz-smoke: $# target(s), $((${#failed[@]})) failed, $(($(date +%s) - start_all))s total"
[ ${#failed[@]} -eq 0 ]
