#!/usr/bin/env bash
# Redis Streams as a peer for sluice-bench, on loopback.
#
#   bench/peers/redis.sh start [PORT] [DURABILITY]   # default 6390 always
#   bench/peers/redis.sh stop  [PORT]
#
# DURABILITY:
#   always    appendonly yes, appendfsync always   (fsync before each reply)
#   everysec  appendonly yes, appendfsync everysec (fsync once a second)
#   none      no AOF, no RDB snapshots             (memory only)
#
# Installs redis-server with apt-get if it is missing. The server runs
# daemonized, its data, log and PID file in a fresh temporary directory
# that `stop` removes. Pin it with taskset:
#   taskset -c 0 bench/peers/redis.sh start 6390 always
# (the server inherits the script's CPU affinity).
set -euo pipefail

command=${1:-}
port=${2:-6390}
state_dir=${TMPDIR:-/tmp}/sluice-bench-redis-$port

usage() {
    sed -n '2,16p' "$0" >&2
    exit 2
}

case "$port" in
    '' | *[!0-9]*) echo "redis.sh: port $port is not a number" >&2; exit 2 ;;
esac

case "$command" in
start)
    durability=${3:-always}
    case "$durability" in
        always) persistence=(--appendonly yes --appendfsync always --save '') ;;
        everysec) persistence=(--appendonly yes --appendfsync everysec --save '') ;;
        none) persistence=(--appendonly no --save '') ;;
        *) echo "redis.sh: durability $durability: expected always, everysec or none" >&2; exit 2 ;;
    esac
    if ! command -v redis-server >/dev/null; then
        echo "redis.sh: installing redis-server" >&2
        if [ "$(id -u)" = 0 ]; then sudo=(); else sudo=(sudo); fi
        "${sudo[@]}" apt-get update -q >&2
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >&2
        # Debian's package starts a service on 6379 where there is an init
        # system; the bench does not use it.
    fi
    if [ -e "$state_dir/redis.pid" ] && kill -0 "$(cat "$state_dir/redis.pid")" 2>/dev/null; then
        echo "redis.sh: already running on port $port (PID $(cat "$state_dir/redis.pid")); stop it first" >&2
        exit 1
    fi
    rm -rf "$state_dir"
    mkdir -p "$state_dir"
    redis-server \
        --bind 127.0.0.1 --port "$port" --protected-mode yes \
        --dir "$state_dir" --appendfilename appendonly.aof \
        "${persistence[@]}" \
        --daemonize yes --pidfile "$state_dir/redis.pid" --logfile "$state_dir/redis.log"
    for _ in $(seq 100); do
        if [ -s "$state_dir/redis.pid" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "redis-server pid $(cat "$state_dir/redis.pid") port $port durability $durability dir $state_dir"
            echo "$durability" >"$state_dir/durability"
            exit 0
        fi
        sleep 0.1
    done
    echo "redis.sh: redis-server did not start; its log:" >&2
    cat "$state_dir/redis.log" >&2 || true
    exit 1
    ;;
stop)
    if [ ! -e "$state_dir/redis.pid" ]; then
        echo "redis.sh: nothing running on port $port" >&2
        exit 1
    fi
    pid=$(cat "$state_dir/redis.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "redis.sh: redis-server $pid did not stop" >&2
        exit 1
    fi
    rm -rf "$state_dir"
    echo "redis-server pid $pid stopped"
    ;;
*) usage ;;
esac
