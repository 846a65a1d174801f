#!/usr/bin/env bash
# tansu (a Kafka-compatible broker in Rust) as a peer for sluice-bench, on
# loopback.
#
#   bench/peers/tansu.sh start [PORT] [STORAGE]   # default 9292 sqlite
#   bench/peers/tansu.sh stop  [PORT]
#
# STORAGE:
#   sqlite   tansu's libSQL engine, one SQLite database (WAL) in a fresh
#            temporary directory that `stop` removes
#   memory   tansu's in-memory engine (nothing on disk)
#
# Installs tansu 0.6.0 with `cargo install` (features dynostore for
# memory://, libsql for sqlite://) into $PEERS_DIR (default
# /opt/sluice-bench-peers) if it is not there: a build of 15-30 minutes on
# two cores. Pin it with taskset:
#   taskset -c 0 bench/peers/tansu.sh start 9292 sqlite
set -euo pipefail

command=${1:-}
port=${2:-9292}
state_dir=${TMPDIR:-/tmp}/sluice-bench-tansu-$port
peers_dir=${PEERS_DIR:-/opt/sluice-bench-peers}
tansu=$peers_dir/tansu/bin/tansu
version=0.6.0

usage() {
    sed -n '2,18p' "$0" >&2
    exit 2
}

case "$port" in
    '' | *[!0-9]*) echo "tansu.sh: port $port is not a number" >&2; exit 2 ;;
esac

case "$command" in
install)
    if [ ! -x "$tansu" ] || ! "$tansu" --version 2>/dev/null | grep -q "$version"; then
        echo "tansu.sh: installing tansu $version into $peers_dir/tansu (cargo install)" >&2
        cargo install "tansu@$version" --locked --features dynostore,libsql \
            --root "$peers_dir/tansu" --target-dir "${TMPDIR:-/tmp}/sluice-bench-tansu-build" >&2
    fi
    ;;
start)
    storage=${3:-sqlite}
    case "$storage" in
        sqlite) engine=sqlite://tansu.db ;;
        memory) engine=memory://tansu/ ;;
        *) echo "tansu.sh: storage $storage: expected sqlite or memory" >&2; exit 2 ;;
    esac
    "$0" install
    if [ -e "$state_dir/tansu.pid" ] && kill -0 "$(cat "$state_dir/tansu.pid")" 2>/dev/null; then
        echo "tansu.sh: already running on port $port (PID $(cat "$state_dir/tansu.pid")); stop it first" >&2
        exit 1
    fi
    rm -rf "$state_dir"
    mkdir -p "$state_dir"
    # The sqlite:// path is relative to the working directory.
    (cd "$state_dir" && exec "$tansu" broker \
        --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine "$engine" >"$state_dir/tansu.log" 2>&1) &
    echo $! >"$state_dir/tansu.pid"
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$storage" >"$state_dir/durability"
            echo "tansu $version pid $(cat "$state_dir/tansu.pid") port $port storage $engine dir $state_dir"
            exit 0
        fi
        sleep 0.1
    done
    echo "tansu.sh: tansu did not start; its log:" >&2
    cat "$state_dir/tansu.log" >&2 || true
    exit 1
    ;;
stop)
    if [ ! -e "$state_dir/tansu.pid" ]; then
        echo "tansu.sh: nothing running on port $port" >&2
        exit 1
    fi
    pid=$(cat "$state_dir/tansu.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    # Behind on a backlog it may not stop in 10 s: the next run must not
    # find it still there.
    if kill -0 "$pid" 2>/dev/null; then
        echo "tansu.sh: tansu $pid still running after SIGTERM and 10 s; SIGKILL" >&2
        kill -9 "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    if kill -0 "$pid" 2>/dev/null; then
        echo "tansu.sh: tansu $pid did not stop" >&2
        exit 1
    fi
    rm -rf "$state_dir"
    echo "tansu pid $pid stopped"
    ;;
*) usage ;;
esac
