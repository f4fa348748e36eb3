# Shared by the server benchmarks (bench/40-server.sh, bench/50-durability.sh,
# bench/soak.sh); sourced, not run, from the repository's root.

# What the benchmarks run, each settable from the environment: the build directory,
# the caredesk binary, the articles and intents it serves, and the load generator.
BUILD=${BUILD:-build}
BIN=${CAREDESK_BIN:-$PWD/$BUILD/caredesk}
KB=${BENCH_KB:-kb}
INTENTS=${BENCH_INTENTS:-intents}
LOADGEN=$BUILD/bench/loadgen

# bench_need_loadgen WHO TARGET: exits, saying which make TARGET builds it, when the load
# generator is missing.
bench_need_loadgen() {
    [ -x "$LOADGEN" ] || { echo "$1: $LOADGEN is missing (make $2 builds it)"; exit 1; }
}

# bench_begin TEMPLATE: makes the run's temporary directory (mktemp -d TEMPLATE)
# as tmp and raises the open-file limit (the load generator and the server each
# need one descriptor per connection). At exit the processes in pids and
# SERVER_PID get SIGTERM and tmp is removed.
bench_begin() {
    tmp=$(mktemp -d "$1")
    SERVER_PID=
    pids=()
    trap bench_cleanup EXIT
    ulimit -n "$(ulimit -Hn)" 2>/dev/null
}

bench_cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$tmp"
}

# bench_json FILE KEY: prints KEY of the JSON object on FILE's last line.
bench_json() {
    python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])[sys.argv[2]])' "$1" "$2"
}

# bench_start_server LOG DB [SERVE FLAGS...]: starts `caredesk serve` on an
# ephemeral loopback port with limits off (--rate-limit 0, --max-connections
# 20000), its log in LOG; sets SERVER_PID and PORT once it is listening.
# Returns 1, after printing the log's tail, if it never listens.
bench_start_server() {
    local log=$1 db=$2
    shift 2
    "$BIN" serve --bind 127.0.0.1 --port 0 --db "$db" --rate-limit 0 --max-connections 20000 \
        --log-level info "$@" 2>"$log" &
    SERVER_PID=$!
    PORT=
    for _ in $(seq 1 300); do
        PORT=$(sed -n 's/.*"event":"listening","port":\([0-9]*\).*/\1/p' "$log" | head -1)
        [ -n "$PORT" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$PORT" ]; then
        echo "caredesk serve did not start:"
        tail -5 "$log"
        return 1
    fi
}
