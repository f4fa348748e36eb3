#!/usr/bin/env bash
# Runs integration test files with every caredesk process (servers and CLI commands)
# under valgrind memcheck, then prints each process's leak and error summary and fails
# if any process leaked (definitely or indirectly lost) or had a memory error.
#   scripts/valgrind-integration.sh                    # access.test.mjs and chat.test.mjs
#   scripts/valgrind-integration.sh hostile.test.mjs   # any files in tests/integration/
# Not in CI: everything runs 10-50 times slower. Processes killed with SIGKILL (the crash
# test) leave no report.
set -u
cd "$(dirname "$0")/.."
BIN=${CAREDESK_BIN:-$PWD/build/caredesk}
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind"; exit 1; }
logs=$(mktemp -d /tmp/caredesk-valgrind-XXXXXX)
cat >"$logs/caredesk" <<WRAP
#!/bin/sh
exec valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect \
    --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
    --log-file=$logs/vg-%p.log "$BIN" "\$@"
WRAP
chmod +x "$logs/caredesk"
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(access.test.mjs chat.test.mjs)
(cd tests/integration && CAREDESK_BIN="$logs/caredesk" node --test --test-concurrency=1 \
    --test-reporter=spec "${files[@]}") 2>&1 | grep -E "^(✔|✖|ℹ (pass|fail|todo|skipped))"
bad=0
n=0
for f in "$logs"/vg-*.log; do
    [ -e "$f" ] || continue
    n=$((n + 1))
    if [ -s "$f" ]; then
        bad=$((bad + 1))
        echo "== $f"
        grep -E "definitely lost|indirectly lost|Invalid|uninitialised|ERROR SUMMARY|at 0x|by 0x" "$f" | head -30
    fi
done
echo "valgrind: $n caredesk processes, $bad with leaks or errors (logs in $logs)"
[ "$bad" -eq 0 ]
