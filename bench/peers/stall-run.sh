#!/usr/bin/env bash
# One run on a fresh broker with bench/peers/stalls.bt tracing beside it,
# then the run's figures and its bad seconds (ack p99 over 4 ms) with their
# wall-clock times, to look up in the trace, and the broker's own time per
# request over the measured part (bench/peers/broker-latency.py).
#
#   bench/peers/stall-run.sh OUT-DIR DRIVER RATE [WORKLOAD.toml]
#
# HARNESS=PATH runs another sluice-bench binary (to compare two builds).
# The broker on CPU 0 (`--cores 1`), the harness on CPU 1; 3 s warm-up,
# 15 s measured. Needs bpftrace (Debian's) and root. Leaves broker.log,
# stalls.txt, bench.txt, run.json and the broker's /metrics at the start
# and the end of the measured part (metrics-before.txt, metrics-after.txt)
# in OUT-DIR.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: stall-run.sh OUT-DIR DRIVER RATE [WORKLOAD.toml]}
driver=${2:?driver: native or kafka}
rate=${3:?rate}
workload=${4:-$root/bench/workloads/1-topic-1-partition-100b.toml}
mkdir -p "$out"
# Nothing dirty left to write back during the run (see ab.sh).
sync
data=$(mktemp -d -t sluice-stall-data.XXXXXX)
taskset -c 0 "$root/target/release/sluice" serve --cores 1 --data-dir "$data" \
    --native-addr 127.0.0.1:19500 --kafka-addr 127.0.0.1:19592 --admin-addr 127.0.0.1:19644 \
    >"$out/broker.log" 2>&1 &
broker=$!
sleep 1
bpftrace "$root/bench/peers/stalls.bt" >"$out/stalls.txt" 2>/dev/null &
tracer=$!
sleep 2
address=127.0.0.1:19500
[ "$driver" = kafka ] && address=127.0.0.1:19592
/usr/bin/time -f "harness CPU %P (user %U s, system %S s over %e s)" -o "$out/harness-cpu.txt" \
    "${HARNESS:-$root/target/release/sluice-bench}" run "$workload" --driver "$driver" --brokers "$address" \
    --cores 1 --rate "$rate" --warm-up-s 3 --duration-s 15 --out "$out/run.json" \
    >"$out/bench.txt" 2>&1 &
bench=$!
# The measured part starts after the topic is made and the 3 s warm-up.
sleep 3.5
python3 "$root/bench/peers/broker-latency.py" scrape 127.0.0.1:19644 "$out/metrics-before.txt"
wait "$bench"
python3 "$root/bench/peers/broker-latency.py" scrape 127.0.0.1:19644 "$out/metrics-after.txt"
kill -INT "$tracer"
wait "$tracer"
kill "$broker"
wait "$broker"
rm -rf "$data"
python3 - "$out" <<'PY'
import datetime, json, sys
out = sys.argv[1]
r = json.load(open(out + "/run.json"))
ack, e2e = r["produce_ack_latency"], r["end_to_end_latency"]
print(f"{out}: {r['produced']['records_per_s']:,.0f} records/s, ack p50 {ack['p50_us']/1000:.2f} "
      f"p99 {ack['p99_us']/1000:.2f} p99.9 {ack['p999_us']/1000:.2f} ms, e2e p99.9 {e2e['p999_us']/1000:.2f} ms")
start = r["started_unix_ms"] / 1000
for second in r["seconds"]:
    if second["produce_ack_p99_us"] > 4000:
        at = datetime.datetime.fromtimestamp(start + second["second"], datetime.timezone.utc)
        print(f"  bad second {second['second']} at {at:%H:%M:%S}: ack p99 {second['produce_ack_p99_us']/1000:.1f} ms")
PY
cat "$out/harness-cpu.txt"
python3 "$root/bench/peers/broker-latency.py" diff "$out/metrics-before.txt" "$out/metrics-after.txt"
