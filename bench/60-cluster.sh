#!/usr/bin/env bash
# Several nodes on one PostgreSQL, from one run on this machine (PostgreSQL on the same cores,
# a throwaway cluster from scripts/pg-cluster.sh with fsync and synchronous_commit on):
#  1. one node, 1,000 customer connections, closed loop flat out (build/bench/loadgen):
#     answered msgs/s and p99, on SQLite and then on PostgreSQL, with the ratio;
#  2. three nodes on one PostgreSQL, the same 1,000 connections spread over them (three
#     generators at once): total answered msgs/s and the worst p99;
#  3. cross-node delivery: 20 customers on node 1, their 4 agents on node 3, the agents
#     sending 1,000 msgs/s in all (bench/cross_node.mjs): delivery p50/p99, lost, duplicated;
#  4. where the time goes in run 1 on PostgreSQL: CPU seconds of the node and of the
#     database's processes per 1,000 answered messages, commits (group commits) and rows
#     written per answered message (pg_stat_database).
# Targets (issue: several nodes): one node on PostgreSQL >= 5,000 answered msgs/s at 1,000
# connections; cross-node delivery p99 <= 50 ms at 1,000 msgs/s.
# Environment: BUILD, CAREDESK_BIN, BENCH_CONNECTIONS (1000), BENCH_SECONDS (5).
set -u
cd "$(dirname "$0")/.."
. bench/lib.sh
N=${BENCH_CONNECTIONS:-1000}
SECS=${BENCH_SECONDS:-5}
bench_need_loadgen 60-cluster bench
bench_begin /tmp/caredesk-bench-XXXXXX
PGDIR=$(mktemp -d /tmp/caredesk-bench-pg-XXXXXX)
trap 'bench_cleanup; scripts/pg-cluster.sh stop "$PGDIR"' EXIT
export PGOPTIONS='-c client_min_messages=warning'

URL=$(scripts/pg-cluster.sh start "$PGDIR") || { echo "60-cluster: cannot start PostgreSQL"; exit 1; }
BASE=${URL%/*}
newdb() { psql -X -q "$URL" -c "CREATE DATABASE $1" && echo "$BASE/$1"; }
pg_pids() { # the postmaster and its children (one backend per connection)
    local pm
    pm=$(head -1 "$PGDIR/data/postmaster.pid")
    echo "$pm $(pgrep -P "$pm" | tr '\n' ' ')"
}
cpu_s() { # summed user+system CPU seconds of the given pids
    local t=0 p
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    python3 -c "import os; print($t / os.sysconf('SC_CLK_TCK'))"
}
answered() { python3 -c 'import json,sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
print(int(d["msgs_per_s"] * d["replies"] / d["responses"]) if d["responses"] else 0)' "$1"; }

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run"
serve_flags=(--kb "$KB" --intents "$INTENTS" --agent-capacity 100)
cmd="$LOADGEN --path /chat --mode chat --connections $N --duration $SECS --warmup 1"

echo "-- 1. one node, $N connections, flat out: SQLite, then PostgreSQL"
bench_start_server "$tmp/sqlite.log" "$tmp/bench.db" "${serve_flags[@]}" || exit 1
echo "\$ $BIN serve --db $tmp/bench.db ...   # port $PORT"
echo "\$ $cmd --port $PORT"
$cmd --port "$PORT" | tee "$tmp/sqlite.json"
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null

DB1=$(newdb one)
bench_start_server "$tmp/pg1.log" "$DB1" "${serve_flags[@]}" || exit 1
NODE=$SERVER_PID
echo "\$ $BIN serve --db $DB1 ...   # port $PORT"
psql -X -qAt "$DB1" -c "SELECT xact_commit, tup_inserted + tup_updated FROM pg_stat_database WHERE datname = 'one'" >"$tmp/stat0"
c0=$(cpu_s "$NODE"); p0=$(cpu_s $(pg_pids))
echo "\$ $cmd --port $PORT"
$cmd --port "$PORT" | tee "$tmp/pg1.json"
c1=$(cpu_s "$NODE"); p1=$(cpu_s $(pg_pids))
psql -X -qAt "$DB1" -c "SELECT xact_commit, tup_inserted + tup_updated FROM pg_stat_database WHERE datname = 'one'" >"$tmp/stat1"
kill -TERM "$NODE"; wait "$NODE" 2>/dev/null

echo "-- 2. three nodes on one PostgreSQL, $N connections spread over them"
DB3=$(newdb three)
ports=()
for i in 1 2 3; do
    bench_start_server "$tmp/pg3-$i.log" "$DB3" "${serve_flags[@]}" || exit 1
    pids+=("$SERVER_PID")
    ports+=("$PORT")
done
per=$((N / 3))
echo "\$ $LOADGEN --path /chat --mode chat --connections $per --duration $SECS --warmup 1 --port P   # P = ${ports[*]}, at once"
for i in 0 1 2; do
    $LOADGEN --path /chat --mode chat --connections "$per" --duration "$SECS" --warmup 1 \
        --port "${ports[$i]}" >"$tmp/pg3-$i.json" &
done
wait_lg() { for j in $(jobs -p); do case " ${pids[*]} " in *" $j "*) ;; *) wait "$j";; esac; done; }
wait_lg
cat "$tmp"/pg3-*.json

echo "-- 3. cross-node delivery: customers on node 1, their agent on node 3"
TOKENS=
for i in 1 2 3 4; do
    TOKENS=$TOKENS${TOKENS:+,}$("$BIN" user add "bench-agent-$i" --role agent --db "$DB3" | tail -1)
done
cmd3="node bench/cross_node.mjs --customers ws://127.0.0.1:${ports[0]} --agent ws://127.0.0.1:${ports[2]} --tokens TOKENS --conversations 20 --rate 1000 --seconds $SECS"
echo "\$ $cmd3   # 4 agents"
${cmd3/TOKENS/$TOKENS} | tee "$tmp/cross.json"

python3 - "$tmp" "$c0" "$c1" "$p0" "$p1" <<'PY'
import json, sys
d = sys.argv[1]
c0, c1, p0, p1 = map(float, sys.argv[2:6])
def load(name):
    return json.loads(open(f"{d}/{name}.json").read().strip().splitlines()[-1])
def answered(r):
    return r["msgs_per_s"] * r["replies"] / r["responses"] if r["responses"] else 0
sq, pg = load("sqlite"), load("pg1")
a_sq, a_pg = answered(sq), answered(pg)
print(f"1. one node flat out: SQLite {a_sq:.0f} msgs/s (p99 {sq['p99_ms']:.0f} ms), "
      f"PostgreSQL {a_pg:.0f} msgs/s (p99 {pg['p99_ms']:.0f} ms); PostgreSQL/SQLite = "
      f"{a_pg / a_sq if a_sq else 0:.2f}  [target >= 5000/s: {'met' if a_pg >= 5000 else 'NOT met'}]")
three = [load(f"pg3-{i}") for i in range(3)]
a3 = sum(answered(r) for r in three)
print(f"2. three nodes: {a3:.0f} msgs/s in all (worst p99 {max(r['p99_ms'] for r in three):.0f} ms); "
      f"3 nodes / 1 node = {a3 / a_pg if a_pg else 0:.2f}")
x = load("cross")
print(f"3. cross-node delivery at {x['rate_target']}/s: p50 {x['p50_ms']} ms, p99 {x['p99_ms']} ms, "
      f"lost {x['lost']}, duplicated {x['duplicated']}, out of order {x['out_of_order']}  "
      f"[target p99 <= 50 ms: {'met' if x['p99_ms'] <= 50 and x['lost'] == 0 else 'NOT met'}]")
s0 = open(f"{d}/stat0").read().split("|")
s1 = open(f"{d}/stat1").read().split("|")
n = a_pg * pg["seconds"]
if n:
    print(f"4. where the time goes (run 1 on PostgreSQL, {n:.0f} answered, warm-up excluded from the "
          f"count but not the CPU): node {1000 * (c1 - c0) / n:.2f} CPU s, database "
          f"{1000 * (p1 - p0) / n:.2f} CPU s per 1,000 answered; "
          f"{(int(s1[0]) - int(s0[0])) / n:.3f} commits and "
          f"{(int(s1[1]) - int(s0[1])) / n:.1f} rows written per answered message")
PY
