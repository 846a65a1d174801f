#!/usr/bin/env bash
# NATS JetStream as a peer for sluice-bench, on loopback.
#
#   bench/peers/nats.sh start [PORT]   # default 4232
#   bench/peers/nats.sh stop  [PORT]
#
# JetStream with file storage in a fresh temporary directory that `stop`
# removes. Durability: a stored message is acknowledged once written to
# the page cache; the server syncs its files every 2 minutes. Debian's
# nats-server 2.9 has no `sync_interval` setting (2.10 added
# `sync_interval: always`, an fsync per write); when the installed server
# has it, the script sets it to `always` and says so.
#
# Installs nats-server with apt-get if it is missing. Pin it with taskset:
#   taskset -c 0 bench/peers/nats.sh start 4232
# (the server inherits the script's CPU affinity).
set -euo pipefail

command=${1:-}
port=${2:-4232}
state_dir=${TMPDIR:-/tmp}/sluice-bench-nats-$port

usage() {
    sed -n '2,16p' "$0" >&2
    exit 2
}

case "$port" in
    '' | *[!0-9]*) echo "nats.sh: port $port is not a number" >&2; exit 2 ;;
esac

case "$command" in
start)
    if ! command -v nats-server >/dev/null; then
        echo "nats.sh: installing nats-server" >&2
        if [ "$(id -u)" = 0 ]; then sudo=(); else sudo=(sudo); fi
        "${sudo[@]}" apt-get update -q >&2
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q nats-server >&2
    fi
    if [ -e "$state_dir/nats.pid" ] && kill -0 "$(cat "$state_dir/nats.pid")" 2>/dev/null; then
        echo "nats.sh: already running on port $port (PID $(cat "$state_dir/nats.pid")); stop it first" >&2
        exit 1
    fi
    rm -rf "$state_dir"
    mkdir -p "$state_dir/jetstream"
    write_config() { # EXTRA_JETSTREAM_LINE
        cat >"$state_dir/nats.conf" <<CONF
listen: 127.0.0.1:$port
pid_file: "$state_dir/nats.pid"
jetstream {
  store_dir: "$state_dir/jetstream"
  max_file_store: 20G
  $1
}
CONF
    }
    write_config "sync_interval: always"
    if nats-server -c "$state_dir/nats.conf" -t >/dev/null 2>&1; then
        durability="file storage, fsync per write (sync_interval always)"
    else
        write_config ""
        durability="file storage, page cache before ack, fsync every 2 min"
    fi
    nats-server -c "$state_dir/nats.conf" >"$state_dir/nats.log" 2>&1 &
    for _ in $(seq 100); do
        if [ -s "$state_dir/nats.pid" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$durability" >"$state_dir/durability"
            echo "nats-server $(nats-server --version | sed 's/.* //') pid $(cat "$state_dir/nats.pid") port $port durability: $durability dir $state_dir"
            exit 0
        fi
        sleep 0.1
    done
    echo "nats.sh: nats-server did not start; its log:" >&2
    cat "$state_dir/nats.log" >&2 || true
    exit 1
    ;;
stop)
    if [ ! -e "$state_dir/nats.pid" ]; then
        echo "nats.sh: nothing running on port $port" >&2
        exit 1
    fi
    pid=$(cat "$state_dir/nats.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "nats.sh: nats-server $pid did not stop" >&2
        exit 1
    fi
    rm -rf "$state_dir"
    echo "nats-server pid $pid stopped"
    ;;
*) usage ;;
esac
