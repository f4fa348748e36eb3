#!/usr/bin/env bash
# Runs caredesk's tests and prints one summary line, "N passed, N failed".
#   tests/run.sh            unit tests, then integration tests
#   tests/run.sh unit       unit tests only
#   tests/run.sh integration
# Environment: BUILD (build dir), DATA (evaluation sets), CAREDESK_BIN.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export DATA=${DATA:-../shared/data}
export CAREDESK_BIN=${CAREDESK_BIN:-$PWD/$BUILD/caredesk}
what=${1:-all}
passed=0
failed=0
skipped=0
failures=()
mkdir -p "$BUILD/test-logs"

run_unit() {
    local t name log p f
    for t in "$BUILD"/tests/test_*; do
        [ -x "$t" ] || continue
        name=$(basename "$t")
        # A binary left by a renamed or removed test (test_faults is test_store_faults now).
        [ -f "tests/unit/$name.c" ] || continue
        log="$BUILD/test-logs/$name.log"
        "$t" >"$log" 2>&1
        local rc=$?
        cat "$log"
        # A file may run several groups (the store's suite runs on SQLite and PostgreSQL).
        p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s += $1} END {print s + 0}')
        f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s += $1} END {print s + 0}')
        p=${p:-0}; f=${f:-0}
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
        passed=$((passed + p)); failed=$((failed + f))
        [ "$f" -ne 0 ] && failures+=("$name")
    done
}

run_integration() {
    local dir=tests/integration log p f s
    ls $dir/*.test.mjs >/dev/null 2>&1 || return 0
    if ! command -v node >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ]; then
            (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm) >&2
        else
            echo "integration: node is missing; run: sudo apt-get install -y nodejs npm" >&2
            failed=$((failed + 1)); failures+=("integration (no node)"); return
        fi
    fi
    if [ "${CAREDESK_NO_BROWSER:-}" = "" ] && ! command -v chromium >/dev/null 2>&1 \
       && ls $dir/*browser*.test.mjs >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ]; then
            (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >&2
        else
            echo "browser tests: chromium is missing; run: sudo apt-get install -y chromium" >&2
        fi
    fi
    if [ ! -d $dir/node_modules ] || [ $dir/package.json -nt $dir/node_modules ]; then
        (cd $dir && npm install --no-audit --no-fund --loglevel=error) >&2 || {
            failed=$((failed + 1)); failures+=("integration (npm install)"); return; }
        touch $dir/node_modules
    fi
    log="$BUILD/test-logs/integration.log"
    (cd $dir && node --test --test-concurrency=1 --test-reporter=tap *.test.mjs) >"$log" 2>&1
    local rc=$?
    cat "$log"
    p=$(sed -n 's/^# pass \([0-9]*\)/\1/p' "$log" | tail -1)
    f=$(sed -n 's/^# fail \([0-9]*\)/\1/p' "$log" | tail -1)
    s=$(sed -n 's/^# skipped \([0-9]*\)/\1/p' "$log" | tail -1)
    p=${p:-0}; f=${f:-0}; skipped=$((skipped + ${s:-0}))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f))
    [ "$f" -ne 0 ] && failures+=("integration")
}

# One throwaway PostgreSQL cluster for the whole run (scripts/pg-cluster.sh), stopped on
# any exit: the store's conformance suite and the multi-node tests use it.
start_postgres() {
    [ -n "${CAREDESK_TEST_PG:-}" ] && return 0
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ]; then
            (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql libpq-dev) >&2
        else
            echo "tests: PostgreSQL is missing; run: sudo apt-get install -y postgresql libpq-dev" >&2
        fi
    fi
    PG_DIR=$(mktemp -d /tmp/cd-test-pg-XXXXXX)
    trap 'scripts/pg-cluster.sh stop "$PG_DIR"' EXIT
    CAREDESK_TEST_PG=$(PG_FSYNC=off scripts/pg-cluster.sh start "$PG_DIR") || {
        echo "tests: could not start the test PostgreSQL" >&2
        failed=$((failed + 1)); failures+=("postgresql"); return; }
    export CAREDESK_TEST_PG
}
start_postgres

case "$what" in
    unit) run_unit ;;
    integration) run_integration ;;
    all) run_unit; run_integration ;;
    *) echo "usage: tests/run.sh [unit|integration]" >&2; exit 2 ;;
esac

echo
[ ${#failures[@]} -gt 0 ] && echo "failing suites: ${failures[*]}"
if [ "$skipped" -gt 0 ]; then
    echo "skipped tests (each says why above):"
    grep -h '# SKIP' "$BUILD"/test-logs/*.log 2>/dev/null | sed 's/^ */  /'
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
