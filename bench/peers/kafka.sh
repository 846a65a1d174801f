#!/usr/bin/env bash
# Apache Kafka 4.4.0 as a peer for sluice-bench and for the Kafka client
# tests, on loopback, in KRaft mode (each node both broker and controller).
#
#   bench/peers/kafka.sh install
#   bench/peers/kafka.sh start [PORT] [DURABILITY] [NODES]   # default 9492 default 1
#   bench/peers/kafka.sh stop  [PORT]
#
# DURABILITY:
#   default  Kafka's own: a write is acknowledged once in the page cache
#            (and, with NODES 3, in the in-sync replicas' page caches);
#            the OS writes it back when it likes
#   fsync    log.flush.interval.messages=1: every append to a partition's
#            log is fsynced before it is acknowledged
#
# NODES is 1 or 3. Node i (from 0) listens for clients on PORT+i and for
# the controller quorum on PORT+10+i; with 3 nodes topics get 3 replicas
# and min.insync.replicas 2 by default. A topic created by producing to it
# gets 4 partitions, as on Sluice. Each node is a JVM with a heap of
# $KAFKA_HEAP (default 512m). Data, configs and logs live in a fresh
# temporary directory that `stop` removes.
#
# Installs Kafka's jars from Maven Central with `mvn dependency:copy-dependencies`
# (a throwaway pom: kafka_2.13 and a log4j binding for slf4j) into
# $PEERS_DIR/kafka-4.4.0 (default /opt/sluice-bench-peers) if they are not
# there. Pin it with taskset:
#   taskset -c 0 bench/peers/kafka.sh start 9492 fsync
set -euo pipefail

command=${1:-}
port=${2:-9492}
state_dir=${TMPDIR:-/tmp}/sluice-bench-kafka-$port
peers_dir=${PEERS_DIR:-/opt/sluice-bench-peers}
version=4.4.0
home=$peers_dir/kafka-$version
heap=${KAFKA_HEAP:-512m}

usage() {
    sed -n '2,27p' "$0" >&2
    exit 2
}

case "$port" in
    '' | *[!0-9]*) echo "kafka.sh: port $port is not a number" >&2; exit 2 ;;
esac

# java NODE_DIR MAIN ARGS...: one of Kafka's main classes on the installed
# jars, in place of the (sub)shell that calls it, so that `$!` is its PID.
java_main() {
    local node_dir=$1
    shift
    exec java -Xms"$heap" -Xmx"$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
        -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$home/log4j2.properties" -Dkafka.logs.dir="$node_dir" \
        -cp "$home/lib/*" "$@"
}

case "$command" in
install)
    if [ ! -e "$home/lib/kafka_2.13-$version.jar" ]; then
        echo "kafka.sh: installing Kafka $version into $home (mvn)" >&2
        command -v java >/dev/null || { echo "kafka.sh: java is not installed" >&2; exit 1; }
        command -v mvn >/dev/null || { echo "kafka.sh: mvn is not installed" >&2; exit 1; }
        build=$(mktemp -d -t sluice-bench-kafka-pom.XXXXXX)
        cat >"$build/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sluice.bench</groupId>
  <artifactId>kafka-peer</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$version</version>
    </dependency>
    <!-- Kafka logs through slf4j 1.7; its distribution binds it to log4j 2. -->
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>2.25.5</version>
    </dependency>
  </dependencies>
</project>
EOF
        rm -rf "$home.partial"
        mkdir -p "$home.partial"
        (cd "$build" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime \
            -DoutputDirectory="$home.partial/lib") >&2
        cat >"$home.partial/log4j2.properties" <<'EOF'
# Kafka's server log, warnings and above, to server.log in the node's directory.
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka.server.KafkaServer
logger.kafka.level = info
logger.raft.name = kafka.server.KafkaRaftServer
logger.raft.level = info
EOF
        rm -rf "$home" "$build"
        mv "$home.partial" "$home"
    fi
    ;;
start)
    durability=${3:-default}
    nodes=${4:-1}
    case "$durability" in
        default) flush="" ;;
        fsync) flush="log.flush.interval.messages=1" ;;
        *) echo "kafka.sh: durability $durability: expected default or fsync" >&2; exit 2 ;;
    esac
    case "$nodes" in
        1) replicas=1 min_insync=1 ;;
        3) replicas=3 min_insync=2 ;;
        *) echo "kafka.sh: $nodes nodes: expected 1 or 3" >&2; exit 2 ;;
    esac
    "$0" install
    if [ -e "$state_dir/pids" ]; then
        while read -r pid; do
            if kill -0 "$pid" 2>/dev/null; then
                echo "kafka.sh: already running on port $port (PID $pid); stop it first" >&2
                exit 1
            fi
        done <"$state_dir/pids"
    fi
    rm -rf "$state_dir"
    mkdir -p "$state_dir"
    voters=""
    for ((i = 0; i < nodes; i++)); do
        voters+="${voters:+,}$i@127.0.0.1:$((port + 10 + i))"
    done
    cluster_id=$(java_main "$state_dir" kafka.tools.StorageTool random-uuid 2>>"$state_dir/format.log")
    : >"$state_dir/pids"
    for ((i = 0; i < nodes; i++)); do
        node_dir=$state_dir/node-$i
        mkdir -p "$node_dir/data"
        cat >"$node_dir/server.properties" <<EOF
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$((port + i)),CONTROLLER://127.0.0.1:$((port + 10 + i))
advertised.listeners=PLAINTEXT://127.0.0.1:$((port + i))
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$node_dir/data
num.partitions=4
default.replication.factor=$replicas
min.insync.replicas=$min_insync
offsets.topic.replication.factor=$replicas
transaction.state.log.replication.factor=$replicas
transaction.state.log.min.isr=$min_insync
share.coordinator.state.topic.replication.factor=$replicas
share.coordinator.state.topic.min.isr=$min_insync
$flush
EOF
        (java_main "$node_dir" kafka.tools.StorageTool format --cluster-id "$cluster_id" \
            --config "$node_dir/server.properties" --ignore-formatted) >>"$state_dir/format.log" 2>&1 || {
            echo "kafka.sh: formatting node $i failed:" >&2
            cat "$state_dir/format.log" >&2
            exit 1
        }
        java_main "$node_dir" kafka.Kafka "$node_dir/server.properties" >"$node_dir/stdout.log" 2>&1 &
        echo $! >>"$state_dir/pids"
    done
    echo "$durability" >"$state_dir/durability"
    # Serving once every node takes connections and has said it started.
    for _ in $(seq 600); do
        up=0
        for ((i = 0; i < nodes; i++)); do
            if (exec 3<>"/dev/tcp/127.0.0.1/$((port + i))") 2>/dev/null; then up=$((up + 1)); fi
        done
        started=$(cat "$state_dir"/node-*/server.log 2>/dev/null | grep -c "Kafka Server started" || true)
        if [ "$up" = "$nodes" ] && [ "$started" = "$nodes" ]; then
            bootstrap=$(seq -s, -f "127.0.0.1:%g" "$port" $((port + nodes - 1)))
            echo "kafka $version pids $(paste -sd' ' "$state_dir/pids") bootstrap $bootstrap durability $durability dir $state_dir"
            exit 0
        fi
        while read -r pid; do
            if ! kill -0 "$pid" 2>/dev/null; then
                echo "kafka.sh: a Kafka node exited while starting; its logs:" >&2
                tail -n 30 "$state_dir"/node-*/stdout.log "$state_dir"/node-*/server.log >&2 || true
                "$0" stop "$port" >/dev/null 2>&1 || true
                exit 1
            fi
        done <"$state_dir/pids"
        sleep 0.1
    done
    echo "kafka.sh: Kafka did not start within 60 s; its logs:" >&2
    tail -n 30 "$state_dir"/node-*/stdout.log "$state_dir"/node-*/server.log >&2 || true
    "$0" stop "$port" >/dev/null 2>&1 || true
    exit 1
    ;;
stop)
    if [ ! -e "$state_dir/pids" ]; then
        echo "kafka.sh: nothing running on port $port" >&2
        exit 1
    fi
    pids=$(paste -sd" " "$state_dir/pids")
    # All at once: a node that stops alone waits for the others to take
    # its partitions (controlled shutdown).
    for pid in $pids; do kill "$pid" 2>/dev/null || true; done
    for pid in $pids; do
        for _ in $(seq 300); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "kafka.sh: Kafka node $pid still running after SIGTERM and 30 s; SIGKILL" >&2
            kill -9 "$pid" 2>/dev/null || true
            for _ in $(seq 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
        fi
        if kill -0 "$pid" 2>/dev/null; then
            echo "kafka.sh: Kafka node $pid did not stop" >&2
            exit 1
        fi
    done
    rm -rf "$state_dir"
    echo "kafka pids $pids stopped"
    ;;
*) usage ;;
esac
