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
# With NODES=3, Sluice and Kafka run as three nodes each (all on CPU 0),
# the topic with three replicas and min.insync.replicas=2:
#   sluice native    `sluice cluster local --nodes 3 --cores 1`, native protocol
#   sluice kafka     the same cluster over its Kafka listeners
#   kafka default    three KRaft nodes (kafka.sh start PORT default 3)
#   kafka fsync      the same with log.flush.interval.messages=1
# and the other systems, which have no such mode here, are left out.
# A system that cannot be installed or started, or whose run fails, gets a
# line saying why instead of a row.
#
# Results (JSON, each run's text output, SVG plots) go to
# bench/results/WORKLOAD/ (or $OUT), and the workload's section of
# bench/RESULTS.md (between its `side-by-side` markers) is replaced; the
# rest of the file is kept. Environment: WARM_UP_S (default 3),
# DURATION_S (default 15), SYSTEMS (default: all, e.g. "sluice redis"),
# KAFKA_WARM_S (default 15: an unrecorded run at max that warms Kafka's JVM
# before its rows), NODES (default 1; 3 as above).
#
# Broker CPU per record: the user + system time of every process listening
# on the system's ports (from /proc, all its threads), over the whole run,
# divided by the records acknowledged over the whole run.
set -uo pipefail

workload=${1:?usage: side-by-side.sh WORKLOAD.toml [RATE ...]}
shift
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(max half)
root=$(cd "$(dirname "$0")/../.." && pwd)
peers=$root/bench/peers
base=$(basename "$workload" .toml)
name=$base
[ "${NODES:-1}" = 3 ] && name=$base-3-nodes
out=${OUT:-$root/bench/results/$name}
mkdir -p "$out"
warm_up=${WARM_UP_S:-3}
duration=${DURATION_S:-15}
kafka_prime=${KAFKA_WARM_S:-15}
nodes=${NODES:-1}
case "$nodes" in
    1) systems=${SYSTEMS:-sluice redis nats tansu noida kafka} ;;
    3) systems=${SYSTEMS:-sluice kafka} ;;
    *) echo "side-by-side.sh: NODES=$nodes: expected 1 or 3" >&2; exit 2 ;;
esac
sluice_native_port=55401
sluice_kafka_port=55402
sluice_admin_port=55403
redis_port=6392
nats_port=4232
tansu_port=9292
noida_port=9392
kafka_port=9492
sluice_cluster_port=55410

. "$root/bench/peers/build.sh"
notes=$out/notes.md
: >"$notes"
: >"$out/order"
: >"$out/cpu.md"
: >"$out/broker-latency.md"
: >"$out/broker-cpu.md"
# The workload as run: with three nodes, three replicas and
# min.insync.replicas=2 (on top of the workload's own topic configs).
if [ "$nodes" = 3 ]; then
    replicated=$out/workload.toml
    python3 - "$workload" "$replicated" <<'PY'
import re, sys
source, target = sys.argv[1:]
text = open(source).read()
text = re.sub(r"^replication_factor\s*=.*\n", "", text, flags=re.M)
if re.search(r"^topic_configs\s*=\s*\{", text, flags=re.M):
    text = re.sub(r"^(topic_configs\s*=\s*\{)", r'\1 "min.insync.replicas" = "2",', text, flags=re.M)
else:
    text += 'topic_configs = { "min.insync.replicas" = "2" }\n'
text += "replication_factor = 3\n"
open(target, "w").write(text)
PY
    workload=$replicated
fi
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

# The processes listening on the TCP ports given.
listener_pids() {
    local port
    for port in "$@"; do
        ss -Htlnp "sport = :$port" | grep -o 'pid=[0-9]*' | cut -d= -f2
    done | sort -u | paste -sd' '
}

# User + system time of the PIDs given, all their threads, in clock ticks.
process_ticks() {
    local pid total=0 ticks
    for pid in "$@"; do
        ticks=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null) || ticks=0
        total=$((total + ticks))
    done
    echo "$total"
}

# CPU 0 and CPU 1 busy time so far, in clock ticks: "busy0 total0 busy1 total1".
cpu_ticks() {
    awk '/^cpu[01] / { busy = $2 + $3 + $4 + $7 + $8; total = busy + $5 + $6; printf "%d %d ", busy, total }' /proc/stat
}

# The ports the system under test listens on for clients (its processes
# are those listening there), and the addresses of Sluice's /metrics (every
# node's, comma-separated); set before each system's runs.
system_ports=()
admin_addrs=""

# The bootstrap list of the ports given, on loopback.
brokers_of() {
    local list
    list=$(printf '127.0.0.1:%s,' "$@")
    echo "${list%,}"
}

# run LABEL DRIVER BROKERS DURABILITY RATE: one run; a failure is a note.
run() {
    local label=$1 driver=$2 brokers=$3 durability=$4 rate
    # Nothing dirty left to write back during the run (see ab.sh).
    sync
    rate=$(rate_of "$5") || return 1
    local file=$out/$label-$5 before after scraper="" pids ticks_before ticks_after
    # shellcheck disable=SC2086 # a list of PIDs
    pids=$(listener_pids "${system_ports[@]}")
    # shellcheck disable=SC2086
    ticks_before=$(process_ticks $pids)
    before=$(cpu_ticks)
    # Sluice's own time per request over the measured part: its /metrics
    # once the warm-up is over, and again at the end.
    if [ -n "$admin_addrs" ]; then
        (sleep "$(awk -v w="$warm_up" 'BEGIN { print w + 0.5 }')" && python3 "$peers/broker-latency.py" scrape \
            "$admin_addrs" "$file.metrics-before.txt") &
        scraper=$!
    fi
    if "$bench" run "$workload" --driver "$driver" --brokers "$brokers" \
        --durability "$durability" --cores 1 --rate "$rate" \
        --warm-up-s "$warm_up" --duration-s "$duration" \
        --out "$file.json" -q >"$file.txt" 2>&1; then
        after=$(cpu_ticks)
        # shellcheck disable=SC2086
        ticks_after=$(process_ticks $pids)
        python3 - "$file.json" "$label-$5" "$ticks_before" "$ticks_after" "$(getconf CLK_TCK)" "$pids" \
            >>"$out/broker-cpu.md" <<'PY'
import json, sys
result, run, before, after, hz, pids = sys.argv[1:]
acknowledged = sum(second["acknowledged"] for second in json.load(open(result))["seconds"])
seconds = (int(after) - int(before)) / int(hz)
per_record = "%.2f" % (seconds * 1e6 / acknowledged) if acknowledged else "-"
print("| %s | %d | %.2f | %s | %s |" % (run, len(pids.split()), seconds, f"{acknowledged:,}", per_record))
PY
        if [ -n "$scraper" ] && wait "$scraper" &&
            python3 "$peers/broker-latency.py" scrape "$admin_addrs" "$file.metrics-after.txt"; then
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
run_rates() { # LABEL DRIVER BROKERS DURABILITY
    for rate in "${rates[@]}"; do run "$1" "$2" "$3" "$4" "$rate"; done
}

for system in $systems; do
    case "$system" in
    sluice)
        data=$(mktemp -d -t sluice-side-by-side-data.XXXXXX)
        if [ "$nodes" = 3 ]; then
            # Node i listens for Kafka clients on base + 10i, native ones on
            # base + 10i + 1, and for /metrics on base + 10i + 2.
            taskset -c 0 "$sluice" cluster local --nodes 3 --cores 1 --data-dir "$data" \
                --base-port $sluice_cluster_port >"$out/sluice-serve.log" 2>&1 &
            sluice_pid=$!
            native_ports=($((sluice_cluster_port + 1)) $((sluice_cluster_port + 11)) $((sluice_cluster_port + 21)))
            kafka_ports=($sluice_cluster_port $((sluice_cluster_port + 10)) $((sluice_cluster_port + 20)))
            admin_addrs=$(brokers_of $((sluice_cluster_port + 2)) $((sluice_cluster_port + 12)) $((sluice_cluster_port + 22)))
            ready_file=$data/node-2/ready
        else
            taskset -c 0 "$sluice" serve --data-dir "$data" --native-addr "127.0.0.1:$sluice_native_port" \
                --kafka-addr "127.0.0.1:$sluice_kafka_port" --admin-addr "127.0.0.1:$sluice_admin_port" --cores 1 \
                >"$out/sluice-serve.log" 2>&1 &
            sluice_pid=$!
            native_ports=($sluice_native_port)
            kafka_ports=($sluice_kafka_port)
            admin_addrs=$(brokers_of $sluice_admin_port)
            ready_file=""
        fi
        # Ready: one node answers; three are each alive, registered and
        # unfenced in the controller's view (three replicas need them all).
        for _ in $(seq 300); do
            if [ -z "$ready_file" ]; then
                "$sluice" topic list --brokers "$(brokers_of "${native_ports[@]}")" >/dev/null 2>&1 && break
            elif [ -e "$ready_file" ]; then
                "$sluice" cluster describe --format json --brokers "$(brokers_of "${native_ports[@]}")" 2>/dev/null |
                    python3 -c 'import json, sys; nodes = json.load(sys.stdin)["nodes"]
sys.exit(not all(n["state"] == "alive" and n["registered"] and not n["fenced"] for n in nodes))' && break
            fi
            sleep 0.1
        done
        system_ports=("${native_ports[@]}")
        durable="fdatasync before ack (flush.policy=always)"
        [ "$nodes" = 3 ] && durable="fdatasync before ack on each of 3 replicas, min.insync.replicas=2"
        for rate in "${rates[@]}"; do
            run sluice-native native "$(brokers_of "${native_ports[@]}")" "$durable" "$rate"
            if [ "$rate" = max ] && [ -e "$out/sluice-native-max.json" ]; then
                half=$(python3 -c 'import json,sys; print(max(1, int(json.load(open(sys.argv[1]))["produced"]["records_per_s"] / 2)))' \
                    "$out/sluice-native-max.json")
                echo "half of Sluice's durable max: $half records/s" >&2
            fi
        done
        system_ports=("${kafka_ports[@]}")
        if (exec 3<>"/dev/tcp/127.0.0.1/${kafka_ports[0]}") 2>/dev/null; then
            run_rates sluice-kafka kafka "$(brokers_of "${kafka_ports[@]}")" "$durable"
        else
            note "sluice over Kafka: no Kafka listener answered on 127.0.0.1:${kafka_ports[0]}"
        fi
        admin_addrs=""
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
                system_ports=($redis_port)
                run_rates "redis-$durability" redis "$(brokers_of $redis_port)" "$label"
                "$peers/redis.sh" stop $redis_port >/dev/null
            else
                note "redis $durability: did not start: $(tail -n1 "$out/redis-start.log")"
            fi
        done
        ;;
    nats)
        if taskset -c 0 "$peers/nats.sh" start $nats_port >/dev/null 2>"$out/nats-start.log"; then
            label=$(cat "${TMPDIR:-/tmp}/sluice-bench-nats-$nats_port/durability")
            system_ports=($nats_port)
            run_rates nats nats "$(brokers_of $nats_port)" "$label"
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
                system_ports=($tansu_port)
                run_rates "tansu-$storage" kafka "$(brokers_of $tansu_port)" "$label"
                "$peers/tansu.sh" stop $tansu_port >/dev/null
            else
                note "tansu $storage: did not start: $(tail -n1 "$out/tansu-start.log")"
            fi
        done
        ;;
    noida)
        if taskset -c 0 "$peers/noida.sh" start $noida_port >/dev/null 2>"$out/noida-start.log"; then
            system_ports=($noida_port)
            run_rates noida-db kafka "$(brokers_of $noida_port)" "none seen (no fsync, no data write while producing)"
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
            [ "$nodes" = 3 ] && label="$label, 3 replicas, min.insync.replicas=2"
            system_ports=()
            for ((i = 0; i < nodes; i++)); do system_ports+=($((kafka_port + i))); done
            if taskset -c 0 "$peers/kafka.sh" start $kafka_port $durability "$nodes" >/dev/null 2>"$out/kafka-start.log"; then
                # A JVM compiles its hot paths in its first seconds: a run at
                # max first, not recorded, so that the rows measure a warm
                # Kafka, as a broker that has been running is.
                "$bench" run "$workload" --driver kafka --brokers "$(brokers_of "${system_ports[@]}")" \
                    --durability "$label" --cores 1 --rate max --warm-up-s 0 \
                    --duration-s "$kafka_prime" -q >"$out/kafka-$durability-prime.txt" 2>&1 ||
                    note "kafka $durability: the warming run failed: $(tail -n1 "$out/kafka-$durability-prime.txt")"
                run_rates "kafka-$durability" kafka "$(brokers_of "${system_ports[@]}")" "$label"
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
    if [ "$nodes" = 3 ]; then
        echo "each system as three nodes (all on CPU 0), the topic with three replicas and"
        echo "min.insync.replicas=2;"
    fi
    echo "one after the other; $warm_up s warm-up, $duration s measured. Latencies in ms, from each"
    echo "record's intended send time (open loop). \`half\` is half of Sluice's durable native max"
    echo "of this run${half:+ ($half records/s)}."
    if grep -q '^kafka-' "$out/order"; then
        echo "Kafka's JVM was warmed by an unrecorded $kafka_prime s run at max before its rows."
    fi
    echo
    echo '```'
    command="bench/peers/side-by-side.sh bench/workloads/$base.toml ${rates[*]}"
    [ "$nodes" = 3 ] && command="NODES=3 $command"
    [ -n "${SYSTEMS:-}" ] && command="SYSTEMS=\"$SYSTEMS\" $command"
    echo "$command"
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
    if [ -s "$out/broker-cpu.md" ]; then
        echo
        echo "Broker CPU per record: user + system time of the system's processes (every thread,"
        echo "every node) over the whole run, warm-up and drain included, per record"
        echo "acknowledged over the whole run (from /proc; at a low rate an idle reactor's"
        echo "polling counts too):"
        echo
        echo "| run | processes | CPU s | records acknowledged | CPU µs per record |"
        echo "|---|---|---|---|---|"
        cat "$out/broker-cpu.md"
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
