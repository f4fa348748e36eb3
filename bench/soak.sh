#!/usr/bin/env bash
# make soak: a bounded soak run of the real server (not in CI). Measures the peak answered
# rate first (build/bench/loadgen flat out, or SOAK_PEAK), then for SOAK_MINUTES (default
# 10) offers half of it: SOAK_CONNECTIONS (500) customer connections in a paced closed loop
# (the load generator reconnects every minute: connects and disconnects), plus
# bench/soak-clients.mjs starting SOAK_LIFECYCLES (5) conversations a second that hand
# off, drop and resume, with three agents claiming, replying and closing. Prints per
# minute: answered messages/s, latency p50/p99, errors, server RSS; the lifecycle counts
# per minute; the RSS series; and whether memory stayed flat after the first minute.
# Exit status 1 on any error or memory growth over SOAK_MAX_GROWTH_MB (default 32).
# SOAK_DB: the database (default a new SQLite file; a postgresql:// URI soaks a node on
# PostgreSQL, e.g. a throwaway cluster from scripts/pg-cluster.sh).
set -u
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_need_loadgen soak soak
MINUTES=${SOAK_MINUTES:-10}
CONNS=${SOAK_CONNECTIONS:-500}
LIFE=${SOAK_LIFECYCLES:-5}
MAX_GROWTH_MB=${SOAK_MAX_GROWTH_MB:-32}
command -v node >/dev/null || { echo "soak: node is missing"; exit 1; }
[ -d tests/integration/node_modules/ws ] ||
    (cd tests/integration && npm install --no-audit --no-fund --loglevel=error) >&2
json() { bench_json "$@"; }
bench_begin "$PWD/$BUILD/soak-XXXXXX"
rss_mb() { awk '/^VmRSS/{printf "%.1f", $2 / 1024}' "/proc/$SERVER_PID/status"; }

DB=${SOAK_DB:-$tmp/soak.db}
bench_start_server "$tmp/serve.log" "$DB" --kb kb --intents intents || exit 1
tokens=()
for i in 1 2 3; do
    tokens+=("$("$BIN" user add "soak-agent-$i" --role agent --db "$DB" | tail -1)")
done

echo "-- soak: caredesk serve on port $PORT, db $(case $DB in postgres*) echo PostgreSQL;; *) echo "$DB";; esac), load average $(cut -d' ' -f1 /proc/loadavg)"
if [ -n "${SOAK_PEAK:-}" ]; then
    peak=$SOAK_PEAK
    echo "peak (SOAK_PEAK): $peak answered msgs/s"
else
    cmd="$LOADGEN --port $PORT --path /chat --mode chat --connections 200 --duration 5 --warmup 1"
    echo "\$ $cmd   # the peak"
    $cmd >"$tmp/peak.json" 2>/dev/null || { echo "soak: loadgen failed"; exit 1; }
    peak=$(json "$tmp/peak.json" msgs_per_s)
    echo "peak: $peak answered msgs/s (p99 $(json "$tmp/peak.json" p99_ms) ms)"
fi
target=$(python3 -c "print(max(1, int(float('$peak') / 2)))")
think=$(python3 -c "print(max(1, int($CONNS * 1000 / $target)))")
echo "soak: $MINUTES min at half the peak: $CONNS connections, think $think ms (~$target msgs/s)," \
    "plus $LIFE conversation lifecycles/s with 3 agents"

node bench/soak-clients.mjs "$PORT" $((MINUTES * 60)) "$LIFE" "${tokens[@]}" >"$tmp/life.log" 2>&1 &
pids+=($!)
LIFE_PID=$!
(while kill -0 "$SERVER_PID" 2>/dev/null; do
    echo "$(date +%s) $(rss_mb)" >>"$tmp/rss.log"
    sleep 10
done) &
pids+=($!)

errors=0
rss_first=
for m in $(seq 1 "$MINUTES"); do
    "$LOADGEN" --port "$PORT" --path /chat --mode chat --connections "$CONNS" --duration 58 \
        --warmup 1 --think-ms "$think" >"$tmp/m$m.json" 2>"$tmp/m$m.err"
    if [ ! -s "$tmp/m$m.json" ]; then
        echo "minute $m: loadgen failed: $(tail -2 "$tmp/m$m.err")"
        errors=$((errors + 1))
        continue
    fi
    e=$(json "$tmp/m$m.json" errors)
    errors=$((errors + e))
    rss=$(rss_mb)
    [ "$m" = 1 ] && rss_first=$rss
    printf 'minute %2d: %7.0f answered msgs/s  p50 %7.2f ms  p99 %7.2f ms  errors %s  RSS %s MB\n' \
        "$m" "$(json "$tmp/m$m.json" msgs_per_s)" "$(json "$tmp/m$m.json" p50_ms)" \
        "$(json "$tmp/m$m.json" p99_ms)" "$e" "$rss"
done
wait "$LIFE_PID"
grep '^lifecycles' "$tmp/life.log"
summary=$(tail -1 "$tmp/life.log")
echo "$summary"
life_errors=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["lifecycles"]["errors"])' \
    "$summary" 2>/dev/null || echo 1)
errors=$((errors + life_errors))
echo "RSS (MB) every 10 s: $(awk '{print $2}' "$tmp/rss.log" | tr '\n' ' ')"
rss_last=$(rss_mb)
growth=$(python3 -c "print(round(float('$rss_last') - float('${rss_first:-$rss_last}'), 1))")
echo "memory after minute 1: $rss_first MB, at the end: $rss_last MB (growth $growth MB)"
grep -c '"level":"error"' "$tmp/serve.log" | sed 's/^/server log errors: /'
if [ "$errors" -ne 0 ]; then echo "soak: FAILED ($errors errors)"; exit 1; fi
if ! python3 -c "import sys; sys.exit(0 if $growth <= $MAX_GROWTH_MB else 1)"; then
    echo "soak: FAILED (memory grew $growth MB)"; exit 1
fi
echo "soak: ok"
