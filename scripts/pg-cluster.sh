#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and benchmarks, on a free loopback port.
#   scripts/pg-cluster.sh start DIR    creates DIR/data, starts the server, prints its URL
#   scripts/pg-cluster.sh stop DIR     stops it and removes DIR
#   scripts/pg-cluster.sh halt DIR     stops the server only (the database is away)
#   scripts/pg-cluster.sh resume DIR   starts it again on the same port
# The cluster runs as the postgres system user when started by root (the server refuses
# root), as the caller otherwise. Its superuser is "caredesk", trusted on loopback only; the
# URL names database "caredesk". PG_FSYNC=off (tests) skips fsync: nothing in a test cluster
# has to survive the machine; benchmarks keep the default (on).
set -eu
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop|halt|resume DIR" >&2; exit 2; }

bindir=
for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { bindir=$d; break; }
done
if [ -z "$bindir" ]; then
    echo "pg-cluster: PostgreSQL is not installed; run: sudo apt-get install -y postgresql" >&2
    exit 1
fi

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

case "$cmd" in
start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    as_owner "$bindir/initdb" -D "$dir/data" -U caredesk -A trust -E UTF8 --locale=C.UTF-8 \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    for attempt in 1 2 3 4 5 6 7 8; do
        port=$((20000 + (RANDOM * 7 + $$ + attempt * 131) % 30000))
        if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start \
            -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=${PG_FSYNC:-on} \
                -c max_connections=${PG_MAX_CONNECTIONS:-200} -c shared_buffers=128MB" \
            >/dev/null 2>&1; then
            as_owner "$bindir/createdb" -h 127.0.0.1 -p "$port" -U caredesk caredesk
            echo "$port" >"$dir/port"
            echo "postgresql://caredesk@127.0.0.1:$port/caredesk"
            exit 0
        fi
    done
    cat "$dir/server.log" >&2
    exit 1
    ;;
halt)
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
resume)
    port=$(cat "$dir/port")
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=${PG_FSYNC:-on} \
            -c max_connections=${PG_MAX_CONNECTIONS:-200} -c shared_buffers=128MB" >/dev/null
    ;;
stop)
    [ -d "$dir/data" ] && as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop \
        >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start|stop|halt|resume DIR" >&2
    exit 2
    ;;
esac
