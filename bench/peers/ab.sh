#!/usr/bin/env bash
# Sluice against itself: one workload, two topic configs, runs alternated.
#
#   bench/peers/ab.sh WORKLOAD.toml RATE REPS 'A-CONFIGS' 'B-CONFIGS'
#
# A-CONFIGS and B-CONFIGS are topic configs as TOML key = value pairs,
# comma-separated (e.g. '"preallocate" = "true"'), or '' for the defaults;
# the workload must not set `topic_configs` itself. Each run gets a fresh
# broker on CPU 0 (`sluice serve --cores 1`) and the harness on CPU 1, the
# native driver, durable produce; A and B alternate REPS times, so both
# see the same machine. Prints one line per run and the medians of each;
# the JSON results go to bench/results/ab-WORKLOAD/ (or $OUT). Environment:
# WARM_UP_S (default 3), DURATION_S (default 10); A_ENV and B_ENV, broker
# settings of each side as SLUICE_* variables (e.g. 'SLUICE_DELETE_BYTES_PER_S=0');
# A_SLUICE and B_SLUICE, the broker binary of each side (default: the one
# built here), to compare two builds; DRIVER, `native` (default) or `kafka`
# (the broker's Kafka listener through librdkafka).
set -uo pipefail

workload=${1:?usage: ab.sh WORKLOAD.toml RATE REPS A-CONFIGS B-CONFIGS}
rate=${2:?rate: records/s or max}
reps=${3:?reps}
configs=("${4-}" "${5-}")
root=$(cd "$(dirname "$0")/../.." && pwd)
name=$(basename "$workload" .toml)
out=${OUT:-$root/bench/results/ab-$name}
warm_up=${WARM_UP_S:-3}
duration=${DURATION_S:-10}
port=55411
driver=${DRIVER:-native}
case "$driver" in
    native | kafka) ;;
    *) echo "ab.sh: DRIVER must be native or kafka, not $driver" >&2; exit 2 ;;
esac

if grep -q '^\s*topic_configs' "$workload"; then
    echo "ab.sh: $workload sets topic_configs; A and B set them here" >&2
    exit 2
fi
. "$root/bench/peers/build.sh"
for side in 0 1; do
    label=$([ $side = 0 ] && echo A || echo B)
    cp "$workload" "$out/$label.toml"
    printf '\ntopic_configs = { %s }\n' "${configs[$side]}" >>"$out/$label.toml"
done

# run LABEL REP: one run on a fresh broker; prints its line.
run() {
    local label=$1 rep=$2 data pid file
    # Nothing dirty left to write back during the run (a build's output,
    # the previous run's files): buffered writeback queues 4 MiB writes
    # ahead of the broker's on the device (20-60 ms writes seen).
    sync
    data=$(mktemp -d -t sluice-ab-data.XXXXXX)
    local settings=A_ENV broker=${A_SLUICE:-$sluice} kafka_port=$((port + 1)) target_port=$port
    [ "$label" = B ] && settings=B_ENV broker=${B_SLUICE:-$sluice}
    [ "$driver" = kafka ] && target_port=$kafka_port
    # shellcheck disable=SC2086 # word splitting: VAR=VALUE pairs
    env ${!settings-} taskset -c 0 "$broker" serve --data-dir "$data" --native-addr "127.0.0.1:$port" \
        --kafka-addr "127.0.0.1:$kafka_port" --admin-addr off --cores 1 >"$out/serve-$label-$rep.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        "$sluice" topic list --brokers "127.0.0.1:$port" >/dev/null 2>&1 && break
        sleep 0.1
    done
    file=$out/$label-$rep
    if "$bench" run "$out/$label.toml" --driver "$driver" --brokers "127.0.0.1:$target_port" \
        --cores 1 --rate "$rate" --warm-up-s "$warm_up" --duration-s "$duration" \
        --out "$file.json" -q >"$file.txt" 2>&1; then
        python3 - "$file.json" "$label" "$rep" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
ack, e2e = r["produce_ack_latency"], r["end_to_end_latency"]
print(f"{sys.argv[2]} run {sys.argv[3]}: {r['produced']['records_per_s']:>10,.0f} records/s"
      f"  ack p50 {ack['p50_us']/1000:.2f} p99 {ack['p99_us']/1000:.2f} p99.9 {ack['p999_us']/1000:.2f} ms"
      f"  e2e p99.9 {e2e['p999_us']/1000:.2f} ms")
EOF
    else
        echo "$label run $rep failed: $(tail -n1 "$file.txt")"
        rm -f "$file.json"
    fi
    kill -TERM $pid
    wait $pid
    rm -rf "$data"
}

echo "workload $name at $rate, $reps runs each, $driver driver; A: ${A_SLUICE:-$sluice} {${configs[0]}}  B: ${B_SLUICE:-$sluice} {${configs[1]}}"
for rep in $(seq "$reps"); do
    run A "$rep"
    run B "$rep"
done
python3 - "$out" "$reps" <<'EOF'
import json, os, statistics, sys
out, reps = sys.argv[1], int(sys.argv[2])
for label in "AB":
    runs = [json.load(open(p)) for p in (f"{out}/{label}-{i}.json" for i in range(1, reps + 1)) if os.path.exists(p)]
    if not runs:
        print(f"{label}: no run finished")
        continue
    med = lambda f: statistics.median(f(r) for r in runs)
    print(f"{label} median of {len(runs)}: {med(lambda r: r['produced']['records_per_s']):>10,.0f} records/s"
          f"  ack p50 {med(lambda r: r['produce_ack_latency']['p50_us'])/1000:.2f}"
          f" p99 {med(lambda r: r['produce_ack_latency']['p99_us'])/1000:.2f}"
          f" p99.9 {med(lambda r: r['produce_ack_latency']['p999_us'])/1000:.2f} ms"
          f"  e2e p99.9 {med(lambda r: r['end_to_end_latency']['p999_us'])/1000:.2f} ms")
EOF
