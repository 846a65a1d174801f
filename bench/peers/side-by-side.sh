#!/usr/bin/env bash
# One workload against Sluice and the peers that run here, one after the
# other on the same cores, and the runs side by side.
#
#   bench/peers/side-by-side.sh WORKLOAD.toml [RATE ...]    # default: 20000 max
#
# Each system is given CPU 0 and the harness CPU 1. Systems and their
# durability:
#   sluice          native protocol, flush.policy=always (fdatasync before ack)
#   redis always   Redis Streams, appendfsync always     (fsync before reply)
#   redis everysec Redis Streams, appendfsync everysec   (fsync once a second)
#   redis none     Redis Streams, no AOF, no RDB          (memory only)
# Results (JSON, tables, SVG plots) go to $OUT (default: a new temp dir).
# Environment: WARM_UP_S (default 3), DURATION_S (default 15).
set -euo pipefail

workload=${1:?usage: side-by-side.sh WORKLOAD.toml [RATE ...]}
shift
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(20000 max)
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${OUT:-$(mktemp -d -t sluice-side-by-side.XXXXXX)}
mkdir -p "$out"
warm_up=${WARM_UP_S:-3}
duration=${DURATION_S:-15}
sluice_port=55401
redis_port=6392

cargo build --release --manifest-path "$root/Cargo.toml" -p sluice -p sluice-bench >&2
bench=$root/target/release/sluice-bench
sluice=$root/target/release/sluice

run() { # NAME DRIVER PORT DURABILITY RATE
    "$bench" run "$workload" --driver "$2" --brokers "127.0.0.1:$3" --durability "$4" \
        --cores 1 --rate "$5" --warm-up-s "$warm_up" --duration-s "$duration" \
        --out "$out/$1-$5.json" -q > "$out/$1-$5.txt" 2>&1
    echo "$1 at $5: done" >&2
}

data=$(mktemp -d -t sluice-side-by-side-data.XXXXXX)
taskset -c 0 "$sluice" serve --data-dir "$data" --native-addr "127.0.0.1:$sluice_port" --cores 1 \
    > "$out/sluice-serve.log" 2>&1 &
sluice_pid=$!
trap 'kill -TERM $sluice_pid 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 100); do
    "$sluice" topic list --brokers "127.0.0.1:$sluice_port" > /dev/null 2>&1 && break
    sleep 0.1
done
for rate in "${rates[@]}"; do run sluice-always native $sluice_port always "$rate"; done
kill -TERM $sluice_pid
wait $sluice_pid || true

for durability in always everysec none; do
    taskset -c 0 "$root/bench/peers/redis.sh" start $redis_port $durability > /dev/null
    for rate in "${rates[@]}"; do run "redis-$durability" redis $redis_port $durability "$rate"; done
    "$root/bench/peers/redis.sh" stop $redis_port > /dev/null
done

for rate in "${rates[@]}"; do
    "$bench" compare "$out/sluice-always-$rate.json" "$out/redis-always-$rate.json" \
        "$out/redis-everysec-$rate.json" "$out/redis-none-$rate.json" --plot "$out/plots-$rate" \
        | tee "$out/compare-$rate.txt"
    echo
done
echo "results in $out" >&2
