#!/usr/bin/env bash
# noida-db (one local binary speaking Kafka among other protocols, from
# PyPI) as a peer for sluice-bench, on loopback, its Kafka service only.
#
#   bench/peers/noida.sh start [PORT]   # default 9392
#   bench/peers/noida.sh stop  [PORT]
#
# Installs noida-db 0.2.3 with pip into a virtualenv in $PEERS_DIR
# (default /opt/sluice-bench-peers) if it is not there. Data lives in a
# fresh temporary directory that `stop` removes. Pin it with taskset:
#   taskset -c 0 bench/peers/noida.sh start 9392
set -euo pipefail

command=${1:-}
port=${2:-9392}
state_dir=${TMPDIR:-/tmp}/sluice-bench-noida-$port
peers_dir=${PEERS_DIR:-/opt/sluice-bench-peers}
venv=$peers_dir/noida
noida=$venv/bin/noida-db
version=0.2.3

usage() {
    sed -n '2,12p' "$0" >&2
    exit 2
}

case "$port" in
    '' | *[!0-9]*) echo "noida.sh: port $port is not a number" >&2; exit 2 ;;
esac

case "$command" in
install)
    if [ ! -x "$noida" ]; then
        echo "noida.sh: installing noida-db $version into $venv (pip)" >&2
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q "noida-db==$version" >&2
    fi
    ;;
start)
    "$0" install
    if [ -e "$state_dir/noida.pid" ] && kill -0 "$(cat "$state_dir/noida.pid")" 2>/dev/null; then
        echo "noida.sh: already running on port $port (PID $(cat "$state_dir/noida.pid")); stop it first" >&2
        exit 1
    fi
    rm -rf "$state_dir"
    mkdir -p "$state_dir"
    # The binary itself, not pip's wrapper (a Python process that waits
    # for it), so that the PID is the server's.
    binary=$("$venv/bin/python" -c 'import noida_db, os; print(os.path.join(os.path.dirname(noida_db.__file__), "noida-db"))')
    "$binary" start --data-dir "$state_dir/data" --host 127.0.0.1 --only kafka \
        --kafka-port "$port" >"$state_dir/noida.log" 2>&1 &
    echo $! >"$state_dir/noida.pid"
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "noida-db $version pid $(cat "$state_dir/noida.pid") port $port dir $state_dir"
            exit 0
        fi
        sleep 0.1
    done
    echo "noida.sh: noida-db did not start; its log:" >&2
    cat "$state_dir/noida.log" >&2 || true
    exit 1
    ;;
stop)
    if [ ! -e "$state_dir/noida.pid" ]; then
        echo "noida.sh: nothing running on port $port" >&2
        exit 1
    fi
    pid=$(cat "$state_dir/noida.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "noida.sh: noida-db $pid did not stop" >&2
        exit 1
    fi
    rm -rf "$state_dir"
    echo "noida-db pid $pid stopped"
    ;;
*) usage ;;
esac
