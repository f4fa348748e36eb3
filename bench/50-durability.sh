#!/usr/bin/env bash
# Durability settings, measured two ways: --durability normal (WAL, synchronous=NORMAL:
# safe against a process crash) and --durability full (an fsync per group commit: safe
# against power loss).
#  1. build/bench/durability_bench: group commits of 1, 10 and 100 messages straight into
#     the store with each setting: commits/s, messages/s, commit time; no network.
#  2. build/bench/loadgen against `caredesk serve` with each setting, the same load:
#     BENCH_DURABILITY_CONNECTIONS customer connections (default 200) in a closed loop for
#     BENCH_SECONDS (default 5): answered messages/s, latency p50/p99, and the group
#     commits the server made with their mean duration (from /metrics); then full/normal.
# The databases live under $BUILD (the repository's disk, not a tmpfs, where fsync would
# be free). Environment: BUILD, CAREDESK_BIN, BENCH_DURABILITY_CONNECTIONS, BENCH_SECONDS,
# BENCH_KB / BENCH_INTENTS (default ./kb, ./intents).
set -u
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_need_loadgen 50-durability bench
N=${BENCH_DURABILITY_CONNECTIONS:-200}
SECS=${BENCH_SECONDS:-5}
json() { bench_json "$@"; }
bench_begin "$PWD/$BUILD/durability-XXXXXX"

# Sum of a Prometheus metric (all label sets) from /metrics.
metric() { # metric PORT NAME
    curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n || index($1, n "{") == 1 {s += $NF} END {printf "%.6f\n", s}'
}

run() { # run normal|full
    local mode=$1 log=$tmp/serve-$1.log
    rm -f "$tmp/bench.db" "$tmp/bench.db-wal" "$tmp/bench.db-shm"
    bench_start_server "$log" "$tmp/bench.db" --kb "$KB" --intents "$INTENTS" \
        --durability "$mode" || return 1
    local port=$PORT
    local cmd="$LOADGEN --port $port --path /chat --mode chat --connections $N --duration $SECS --warmup 1"
    echo "\$ $BIN serve --durability $mode --rate-limit 0 --db $BUILD/durability-*/bench.db ..."
    echo "\$ $cmd"
    $cmd >"$tmp/load-$mode.json" 2>"$tmp/load-$mode.err" || { cat "$tmp/load-$mode.err"; return 1; }
    local commits sum
    commits=$(metric "$port" caredesk_store_commit_seconds_count)
    sum=$(metric "$port" caredesk_store_commit_seconds_sum)
    RATE[$mode]=$(json "$tmp/load-$mode.json" msgs_per_s)
    printf '  %-6s %8.0f answered msgs/s   p50 %6.2f ms   p99 %6.2f ms   errors %s   ' \
        "$mode" "${RATE[$mode]}" "$(json "$tmp/load-$mode.json" p50_ms)" \
        "$(json "$tmp/load-$mode.json" p99_ms)" "$(json "$tmp/load-$mode.json" errors)"
    python3 -c 'import sys; c=float(sys.argv[1]); s=float(sys.argv[2]); print("%d group commits, mean %.3f ms" % (c, 1000*s/c if c else 0))' "$commits" "$sum"
    kill -TERM "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=
}

echo "-- store group commits, 2 s per setting and batch size (load average: $(cut -d' ' -f1 /proc/loadavg))"
echo "\$ $BUILD/bench/durability_bench --dir $BUILD --seconds 2"
"$BUILD/bench/durability_bench" --dir "$BUILD" --seconds 2 || exit 1

declare -A RATE
echo "-- caredesk serve: $N customer connections, closed loop, ${SECS}s each, db on $(df -T "$tmp" | awk 'NR==2{print $2}')"
run normal || exit 1
run full || exit 1
python3 -c 'import sys; n=float(sys.argv[1]); f=float(sys.argv[2]); print("  full/normal throughput: %.2f" % (f/n if n else 0))' "${RATE[normal]}" "${RATE[full]}"
