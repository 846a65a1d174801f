#!/usr/bin/env bash
# The broker's CPU time over a fixed-rate run of two builds, alternated:
#
#   bench/peers/cpu-ab.sh A-SLUICE B-SLUICE [RATE] [REPS]
#
# Each run: a fresh broker on CPU 0 (`--cores 1`), the native driver on CPU
# 1 at RATE records/s (default 800000) for 2 s of warm-up and 10 s measured,
# 1 topic of 1 partition, 100 B records, durable; the broker's user + system
# time from /proc over the whole run. The harness is this checkout's
# sluice-bench, built for release.
set -u
a=${1:?usage: cpu-ab.sh A-SLUICE B-SLUICE [RATE] [REPS]}
b=${2:?usage: cpu-ab.sh A-SLUICE B-SLUICE [RATE] [REPS]}
rate=${3:-800000}
reps=${4:-3}
root=$(cd "$(dirname "$0")/../.." && pwd)
cargo build --release --manifest-path "$root/Cargo.toml" -p sluice -p sluice-bench >&2 || exit 1
target=${CARGO_TARGET_DIR:-$root/target}
bench=$target/release/sluice-bench
cli=$target/release/sluice
wl=$root/bench/workloads/1-topic-1-partition-100b.toml
port=55511
hz=$(getconf CLK_TCK)
for rep in $(seq "$reps"); do
  for side in A B; do
    bin=$a; [ $side = B ] && bin=$b
    data=$(mktemp -d); sync
    taskset -c 0 "$bin" serve --data-dir $data --native-addr 127.0.0.1:$port --kafka-addr off --admin-addr off --cores 1 >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 100); do "$cli" topic list --brokers 127.0.0.1:$port >/dev/null 2>&1 && break; sleep 0.1; done
    t0=$(awk '{print $14+$15}' /proc/$pid/stat)
    out=$(mktemp)
    "$bench" run "$wl" --driver native --brokers 127.0.0.1:$port --cores 1 --rate "$rate" \
        --warm-up-s 2 --duration-s 10 --out "$out" -q >/dev/null 2>&1
    t1=$(awk '{print $14+$15}' /proc/$pid/stat)
    python3 -c "import json; r = json.load(open('$out')); print('$side run $rep: broker CPU %.2f s, %d records measured' % (($t1 - $t0) / $hz, r['produced']['records']))"
    kill -TERM $pid; wait $pid; rm -rf "$data" "$out"
  done
done
