#!/usr/bin/env bash
# One workload against Sluice and every peer that runs here, in one go,
# each on the same cores, and its table in bench/RESULTS.md.
#
#   bench/peers/side-by-side.sh WORKLOAD.toml [RATE ...]   # default: max half
#
# RATE is records/s, `max`, or `half`: half of the records/s Sluice's
# durable native run reached at `max` in this same run (so `max` must come
# first). Each system is given CPU 0 and the harness CPU 1; the systems
# run one after the other. Systems and their durability:
#   sluice native    native protocol, flush.policy=always (fdatasync before ack)
#   sluice kafka     the same broker over its Kafka listener, through librdkafka
#                    (when `sluice serve --kafka-addr` answers)
#   redis always     Redis Streams, appendfsync always   (fsync before reply)
#   redis everysec   Redis Streams, appendfsync everysec (fsync once a second)
#   redis none       Redis Streams, no AOF, no RDB       (memory only)
#   nats             JetStream file storage (see bench/peers/nats.sh)
#   tansu sqlite     tansu's libSQL engine (SQLite WAL, see below)
#   tansu memory     tansu's memory engine
#   noida-db         noida-db's Kafka service
#   kafka default    Apache Kafka 4.4.0, one KRaft node, its default durability
#                    (acknowledged in the page cache; see bench/peers/kafka.sh)
#   kafka fsync      the same with log.flush.interval.messages=1 (fsync per append)
# A system that cannot be installed or started, or whose run fails, gets a
# line saying why instead of a row.
#
# Results (JSON, each run's text output, SVG plots) go to
# bench/results/WORKLOAD/ (or $OUT), and the workload's section of
# bench/RESULTS.md (between its `side-by-side` markers) is replaced; the
# rest of the file is kept. Environment: WARM_UP_S (default 3),
# DURATION_S (default 15), SYSTEMS (default: all, e.g. "sluice redis"),
# KAFKA_WARM_S (default 15: an unrecorded run at max that warms Kafka's JVM
# before its rows).
set -uo pipefail

workload=${1:?usage: side-by-side.sh WORKLOAD.toml [RATE ...]}
shift
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(max half)
root=$(cd "$(dirname "$0")/../.." && pwd)
peers=$root/bench/peers
name=$(basename "$workload" .toml)
out=${OUT:-$root/bench/results/$name}
warm_up=${WARM_UP_S:-3}
duration=${DURATION_S:-15}
kafka_prime=${KAFKA_WARM_S:-15}
systems=${SYSTEMS:-sluice redis nats tansu noida kafka}
sluice_native_port=55401
sluice_kafka_port=55402
sluice_admin_port=55403
redis_port=6392
nats_port=4232
tansu_port=9292
noida_port=9392
kafka_port=9492

. "$root/bench/peers/build.sh"
notes=$out/notes.md
: >"$notes"
: >"$out/order"
: >"$out/cpu.md"
: >"$out/broker-latency.md"
note() { echo "* $*" | tee -a "$notes" >&2; }
half=""

# The rate a RATE argument stands for.
rate_of() {
    if [ "$1" = half ]; then
        if [ -z "$half" ]; then
            echo "side-by-side.sh: rate half needs Sluice's native run at max first" >&2
            return 1
        fi
        echo "$half"
    else
        echo "$1"
    fi
}

# CPU 0 and CPU 1 busy time so far, in clock ticks: "busy0 total0 busy1 total1".
cpu_ticks() {
    awk '/^cpu[01] / { busy = $2 + $3 + $4 + $7 + $8; total = busy + $5 + $6; printf "%d %d ", busy, total }' /proc/stat
}

# run LABEL DRIVER PORT DURABILITY RATE: one run; a failure is a note.
run() {
    local label=$1 driver=$2 port=$3 durability=$4 rate
    # Nothing dirty left to write back during the run (see ab.sh).
    sync
    rate=$(rate_of "$5") || return 1
    local file=$out/$label-$5 before after scraper=""
    before=$(cpu_ticks)
    # Sluice's own time per request over the measured part: its /metrics
    # once the warm-up is over, and again at the end.
    if [ "${label%%-*}" = sluice ]; then
        (sleep "$(awk -v w="$warm_up" 'BEGIN { print w + 0.5 }')" && python3 "$peers/broker-latency.py" scrape \
            "127.0.0.1:$sluice_admin_port" "$file.metrics-before.txt") &
        scraper=$!
    fi
    if "$bench" run "$workload" --driver "$driver" --brokers "127.0.0.1:$port" \
        --durability "$durability" --cores 1 --rate "$rate" \
        --warm-up-s "$warm_up" --duration-s "$duration" \
        --out "$file.json" -q >"$file.txt" 2>&1; then
        after=$(cpu_ticks)
        if [ -n "$scraper" ] && wait "$scraper" &&
            python3 "$peers/broker-latency.py" scrape "127.0.0.1:$sluice_admin_port" "$file.metrics-after.txt"; then
            {
                echo "$label at $5:"
                echo
                echo '```'
                python3 "$peers/broker-latency.py" diff "$file.metrics-before.txt" "$file.metrics-after.txt"
                echo '```'
                echo
            } >>"$out/broker-latency.md"
        fi
        echo "$label-$5" >>"$out/order"
        # How busy each core was over the whole run (warm-up and drain
        # too): the system's core 0 and the harness's core 1.
        echo "$before $after" | awk -v run="$label-$5" '{
            printf "| %s | %.0f%% | %.0f%% |\n", run, 100 * ($5 - $1) / ($6 - $2), 100 * ($7 - $3) / ($8 - $4) }' >>"$out/cpu.md"
        echo "$label at $5 ($rate): done" >&2
    else
        rm -f "$file.json"
        note "$label at $5: the run failed: $(grep -m1 'sluice-bench:' "$file.txt" || tail -n1 "$file.txt")"
    fi
}

# The whole rate list against one started system.
run_rates() { # LABEL DRIVER PORT DURABILITY
    for rate in "${rates[@]}"; do run "$1" "$2" "$3" "$4" "$rate"; done
}

for system in $systems; do
    case "$system" in
    sluice)
        data=$(mktemp -d -t sluice-side-by-side-data.XXXXXX)
        kafka_flags=()
        if "$sluice" serve --help 2>/dev/null | grep -q -- --kafka-addr; then
            kafka_flags=(--kafka-addr "127.0.0.1:$sluice_kafka_port")
        fi
        taskset -c 0 "$sluice" serve --data-dir "$data" --native-addr "127.0.0.1:$sluice_native_port" \
            "${kafka_flags[@]}" --admin-addr "127.0.0.1:$sluice_admin_port" --cores 1 \
            >"$out/sluice-serve.log" 2>&1 &
        sluice_pid=$!
        for _ in $(seq 100); do
            "$sluice" topic list --brokers "127.0.0.1:$sluice_native_port" >/dev/null 2>&1 && break
            sleep 0.1
        done
        durable="fdatasync before ack (flush.policy=always)"
        for rate in "${rates[@]}"; do
            run sluice-native native $sluice_native_port "$durable" "$rate"
            if [ "$rate" = max ] && [ -e "$out/sluice-native-max.json" ]; then
                half=$(python3 -c 'import json,sys; print(max(1, int(json.load(open(sys.argv[1]))["produced"]["records_per_s"] / 2)))' \
                    "$out/sluice-native-max.json")
                echo "half of Sluice's durable max: $half records/s" >&2
            fi
        done
        if [ ${#kafka_flags[@]} -gt 0 ] && (exec 3<>"/dev/tcp/127.0.0.1/$sluice_kafka_port") 2>/dev/null; then
            run_rates sluice-kafka kafka $sluice_kafka_port "$durable"
        else
            note "sluice over Kafka: no Kafka listener answered on 127.0.0.1:$sluice_kafka_port"
        fi
        kill -TERM $sluice_pid
        wait $sluice_pid
        rm -rf "$data"
        ;;
    redis)
        for durability in always everysec none; do
            case $durability in
                always) label="fsync before reply (appendfsync always)" ;;
                everysec) label="fsync once a second (appendfsync everysec)" ;;
                none) label="none (memory only)" ;;
            esac
            if taskset -c 0 "$peers/redis.sh" start $redis_port $durability >/dev/null 2>"$out/redis-start.log"; then
                run_rates "redis-$durability" redis $redis_port "$label"
                "$peers/redis.sh" stop $redis_port >/dev/null
            else
                note "redis $durability: did not start: $(tail -n1 "$out/redis-start.log")"
            fi
        done
        ;;
    nats)
        if taskset -c 0 "$peers/nats.sh" start $nats_port >/dev/null 2>"$out/nats-start.log"; then
            label=$(cat "${TMPDIR:-/tmp}/sluice-bench-nats-$nats_port/durability")
            run_rates nats nats $nats_port "$label"
            "$peers/nats.sh" stop $nats_port >/dev/null
        else
            note "nats: did not start: $(tail -n1 "$out/nats-start.log")"
        fi
        ;;
    tansu)
        for storage in sqlite memory; do
            case $storage in
                sqlite) label="SQLite WAL written before ack, fsync only at checkpoints" ;;
                memory) label="none (memory only)" ;;
            esac
            if taskset -c 0 "$peers/tansu.sh" start $tansu_port $storage >/dev/null 2>"$out/tansu-start.log"; then
                run_rates "tansu-$storage" kafka $tansu_port "$label"
                "$peers/tansu.sh" stop $tansu_port >/dev/null
            else
                note "tansu $storage: did not start: $(tail -n1 "$out/tansu-start.log")"
            fi
        done
        ;;
    noida)
        if taskset -c 0 "$peers/noida.sh" start $noida_port >/dev/null 2>"$out/noida-start.log"; then
            run_rates noida-db kafka $noida_port "none seen (no fsync, no data write while producing)"
            "$peers/noida.sh" stop $noida_port >/dev/null
        else
            note "noida-db: did not start: $(tail -n1 "$out/noida-start.log")"
        fi
        ;;
    kafka)
        for durability in default fsync; do
            case $durability in
                default) label="page cache before ack, no fsync (Kafka's default)" ;;
                fsync) label="fsync before ack (log.flush.interval.messages=1)" ;;
            esac
            if taskset -c 0 "$peers/kafka.sh" start $kafka_port $durability >/dev/null 2>"$out/kafka-start.log"; then
                # A JVM compiles its hot paths in its first seconds: a run at
                # max first, not recorded, so that the rows measure a warm
                # Kafka, as a broker that has been running is.
                "$bench" run "$workload" --driver kafka --brokers "127.0.0.1:$kafka_port" \
                    --durability "$label" --cores 1 --rate max --warm-up-s 0 \
                    --duration-s "$kafka_prime" -q >"$out/kafka-$durability-prime.txt" 2>&1 ||
                    note "kafka $durability: the warming run failed: $(tail -n1 "$out/kafka-$durability-prime.txt")"
                run_rates "kafka-$durability" kafka $kafka_port "$label"
                "$peers/kafka.sh" stop $kafka_port >/dev/null
            else
                note "kafka $durability: did not start: $(tail -n1 "$out/kafka-start.log")"
            fi
        done
        ;;
    *) note "unknown system $system" ;;
    esac
done

# The section of RESULTS.md: one table and two charts per rate.
section=$out/section.md
{
    echo "<!-- side-by-side:$name:begin -->"
    echo "### \`$name\`"
    echo
    echo "Run $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPUs: each system on CPU 0, the harness on CPU 1,"
    echo "one after the other; $warm_up s warm-up, $duration s measured. Latencies in ms, from each"
    echo "record's intended send time (open loop). \`half\` is half of Sluice's durable native max"
    echo "of this run${half:+ ($half records/s)}."
    if grep -q '^kafka-' "$out/order"; then
        echo "Kafka's JVM was warmed by an unrecorded $kafka_prime s run at max before its rows."
    fi
    echo
    echo '```'
    echo "bench/peers/side-by-side.sh bench/workloads/$name.toml ${rates[*]}"
    echo '```'
    for rate in "${rates[@]}"; do
        # In the order they ran, Sluice first: `compare`'s ratios are to it.
        files=()
        while read -r run_name; do
            case "$run_name" in *-"$rate") files+=("$out/$run_name.json") ;; esac
        done <"$out/order"
        [ ${#files[@]} -gt 0 ] || continue
        echo
        echo "#### rate $rate"
        echo
        "$bench" compare "${files[@]}" --markdown
        "$bench" compare "${files[@]}" --plot "$out/plots-$rate" >"$out/compare-$rate.txt"
        relative=${out#"$root/bench/"}
        echo
        echo "Plots: [latency spectrum]($relative/plots-$rate/compare-spectrum.svg),"
        echo "[throughput over time]($relative/plots-$rate/compare-throughput.svg)."
    done
    if [ -s "$out/cpu.md" ]; then
        echo
        echo "How busy each core was over each whole run (from /proc/stat, warm-up and drain"
        echo "included; other processes on the machine count too):"
        echo
        echo "| run | CPU 0 (system) | CPU 1 (harness) |"
        echo "|---|---|---|"
        cat "$out/cpu.md"
    fi
    if [ -s "$out/broker-latency.md" ]; then
        echo
        echo "Sluice's own time per request over each measured part (\`sluice_request_latency_seconds\`"
        echo "from its /metrics, from the frame read to the response ready; bucket bounds, so"
        echo "\`<= 1.5 ms\` means over the bucket below and at most 1.5 ms):"
        echo
        cat "$out/broker-latency.md"
    fi
    if [ -s "$notes" ]; then
        echo
        echo "Not in the tables:"
        echo
        cat "$notes"
    fi
    echo "<!-- side-by-side:$name:end -->"
} >"$section"

results=$root/bench/RESULTS.md
python3 - "$results" "$section" "$name" <<'PY'
import re, sys
results, section, name = sys.argv[1:]
text = open(results).read()
new = open(section).read().rstrip("\n")
pattern = re.compile(
    r"<!-- side-by-side:%s:begin -->.*?<!-- side-by-side:%s:end -->" % (re.escape(name), re.escape(name)),
    re.S,
)
if pattern.search(text):
    text = pattern.sub(lambda _: new, text)
else:
    marker = "<!-- side-by-side:tables -->"
    if marker in text:
        text = text.replace(marker, marker + "\n\n" + new)
    else:
        text = text.rstrip("\n") + "\n\n" + new + "\n"
open(results, "w").write(text)
PY
cat "$section"
echo "results in $out; bench/RESULTS.md updated" >&2
