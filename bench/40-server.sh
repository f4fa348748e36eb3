#!/usr/bin/env bash
# Server figures, from one run (about a minute):
#  1. build/bench/loadgen against `caredesk serve` at 1,000 concurrent customer
#     connections, each sending a question and waiting for the reply (closed
#     loop): answered messages/s, latency p50/p99. Twice: paced (loadgen
#     --rate: each connection sends one message per 1,000/BENCH_RATE s on
#     average, and never before its previous one is answered, so BENCH_RATE
#     (11,000) msgs/s are offered in all, a little over the 10,000 target,
#     and latency is the server's) and flat out (no pause at all: the most it
#     answers; by Little's law mean latency is then 1,000 / rate);
#  2. the same generator against a bare libwebsockets echo server
#     (build/bench/echo_server): the transport's ceiling on this machine;
#  3. the in-process decision rate of what `caredesk ask` does
#     (build/bench/ask_rate), with the ratios between the three;
#  4. server memory per idle websocket: RSS delta / N at N idle connections
#     (10,000, or fewer if the open-file limit does not allow it).
# Environment: BUILD, CAREDESK_BIN, BENCH_CONNECTIONS (1000), BENCH_SECONDS (5),
# BENCH_RATE (11000: total msgs/s offered by the paced runs),
# BENCH_IDLE (10000), BENCH_KB / BENCH_INTENTS (default ./kb, ./intents).
set -u
cd "$(dirname "$0")/.."
. bench/lib.sh
N=${BENCH_CONNECTIONS:-1000}
SECS=${BENCH_SECONDS:-5}
RATE=${BENCH_RATE:-11000}
IDLE=${BENCH_IDLE:-10000}
ECHO=$BUILD/bench/echo_server
ASK=$BUILD/bench/ask_rate
json() { bench_json "$@"; }
bench_begin /tmp/caredesk-bench-XXXXXX

fd_limit=$(ulimit -n)
if [ "$fd_limit" != unlimited ] && [ $((fd_limit - 200)) -lt "$IDLE" ]; then
    IDLE=$((fd_limit - 200))
fi

# Starts caredesk serve on an ephemeral port; sets SERVER_PID and PORT.
start_server() {
    local log=$1; shift
    local rc=0
    bench_start_server "$log" "$tmp/bench.db" --kb "$KB" --intents "$INTENTS" "$@" || rc=1
    pids+=("$SERVER_PID")
    return $rc
}

stop_server() {
    kill -TERM "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
}

rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run"
echo "-- 1. caredesk serve, $N customer connections, closed loop, ${SECS}s each"
start_server "$tmp/serve.log" || exit 1
echo "\$ $BIN serve --bind 127.0.0.1 --port 0 --rate-limit 0 --max-connections 20000 \\"
echo "      --db $tmp/bench.db --kb $KB --intents $INTENTS   # port $PORT"
cmd="$LOADGEN --port $PORT --path /chat --mode chat --connections $N --duration $SECS --warmup 1"
echo "\$ $cmd --rate $RATE"
$cmd --rate "$RATE" | tee "$tmp/chat-paced.json"
echo "\$ $cmd"
$cmd | tee "$tmp/chat.json"
stop_server

echo "-- 2. bare libwebsockets echo server, same generator"
"$ECHO" 0 20000 >"$tmp/echo.out" 2>&1 &
ECHO_PID=$!
pids+=("$ECHO_PID")
for _ in $(seq 1 50); do grep -q listening "$tmp/echo.out" && break; sleep 0.1; done
EPORT=$(awk '/listening/{print $2}' "$tmp/echo.out")
cmd="$LOADGEN --port $EPORT --path / --mode echo --connections $N --duration $SECS --warmup 1"
echo "\$ $BUILD/bench/echo_server 0 20000   # port $EPORT"
echo "\$ $cmd --rate $RATE"
$cmd --rate "$RATE" | tee "$tmp/echo-paced.json"
echo "\$ $cmd"
$cmd | tee "$tmp/echo.json"
kill -TERM "$ECHO_PID"; wait "$ECHO_PID" 2>/dev/null

echo "-- 3. in-process decisions (what caredesk ask does, in a loop)"
cmd="$ASK --intents $INTENTS --kb $KB --seconds 2"
echo "\$ $cmd"
$cmd | tee "$tmp/ask.json"

python3 - "$tmp" <<'PY'
import json, sys
d = sys.argv[1]
def load(name):
    return json.loads(open(f"{d}/{name}.json").read().strip().splitlines()[-1])
chat, paced, echo, echo_paced, ask = (load(n) for n in
    ("chat", "chat-paced", "echo", "echo-paced", "ask"))
def answered(r):
    return r["msgs_per_s"] * r["replies"] / r["responses"] if r["responses"] else 0
print(f"paced ({paced['rate_target']:.0f}/s offered, closed loop): answered "
      f"{answered(paced):.0f} msgs/s (late sends {paced['late']}, errors {paced['errors']}), "
      f"p50 {paced['p50_ms']:.2f} ms, p99 {paced['p99_ms']:.2f} ms  "
      f"[target >= 10000/s with p99 <= 25 ms: "
      f"{'met' if answered(paced) >= 10000 and paced['p99_ms'] <= 25 else 'NOT met'}]")
print(f"echo server paced ({echo_paced['rate_target']:.0f}/s offered): "
      f"{echo_paced['msgs_per_s']:.0f}/s, p50 {echo_paced['p50_ms']:.2f} ms, "
      f"p99 {echo_paced['p99_ms']:.2f} ms")
print(f"flat out: answered {answered(chat):.0f} msgs/s (all responses "
      f"{chat['msgs_per_s']:.0f}/s, errors {chat['errors']}), p50 {chat['p50_ms']:.2f} ms, "
      f"p99 {chat['p99_ms']:.2f} ms")
e, a = echo["msgs_per_s"], ask["decisions_per_s"]
print(f"bare echo server flat out: {e:.0f} msgs/s; caredesk/echo = "
      f"{answered(chat) / e if e else 0:.2f}")
print(f"in-process decisions (caredesk ask's work): {a:.0f}/s; caredesk/in-process = "
      f"{answered(chat) / a if a else 0:.2f}")
PY

echo "-- 4. memory per idle connection ($IDLE idle customer connections)"
start_server "$tmp/idle.log" || exit 1
# Warm up allocator and lazily built state with a short burst first.
$LOADGEN --port "$PORT" --mode idle --connections 100 --duration 0.5 >/dev/null
sleep 0.5
before=$(rss_kb "$SERVER_PID")
cmd="$LOADGEN --port $PORT --path /chat --mode idle --connections $IDLE --duration 3 --ramp 512"
echo "\$ $cmd"
$cmd >"$tmp/idle.out" &
LG=$!
for _ in $(seq 1 600); do grep -q '^ready' "$tmp/idle.out" && break; sleep 0.1; done
sleep 1
after=$(rss_kb "$SERVER_PID")
open=$(awk '/^ready/{print $2}' "$tmp/idle.out")
wait "$LG"
stop_server
python3 - "$before" "$after" "${open:-0}" <<'PY'
import sys
before, after, n = map(int, sys.argv[1:])
per = (after - before) * 1024 / n if n else 0
print(f"idle connections: {n}; server RSS {before} kB -> {after} kB; "
      f"{per / 1024:.2f} KB per idle connection   [target <= 10 KB]")
PY
