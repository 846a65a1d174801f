//! Short chaos runs against the real `sluice` binary: one node, killed
//! with -9 and started again every couple of seconds under load, then a
//! final full read; the checker finds nothing lost, duplicated, reordered
//! or skipped (durable by default: every acknowledged record survives).
//! Three nodes whose partition leader is killed and paused, the same; a
//! full disk and a cut network, the same; three replicas of each
//! partition, whose leader is killed or cut off, fail over and lose
//! nothing. And a proxy that acknowledges
//! writes it drops: the checker catches each.

mod common;

use common::SLUICE;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `workload` with `seed` in `dir` and checks what every run here
/// must show: a valid history, every acknowledged value in the final
/// read, two faults at least and more than `sends_ok_min` sends
/// acknowledged. Returns the report and its text.
fn run_clean(
    workload: &str,
    dir: &std::path::Path,
    seed: u64,
    sends_ok_min: u64,
) -> (sluice_bench::chaos::checker::Report, String) {
    let report = sluice_bench::chaos::run::run(workload, dir, seed).unwrap();
    let summary = report.markdown();
    assert!(report.valid, "{summary}");
    assert_eq!(
        report.count("unseen"),
        0,
        "the final read saw everything: {summary}"
    );
    assert!(report.counts.faults >= 2, "{summary}");
    assert!(report.counts.sends_ok > sends_ok_min, "{summary}");
    (report, summary)
}

/// The `[[nodes]]` of a cluster whose node N has native and peer
/// addresses `addrs[N]`, every node a controller voter.
fn cluster_nodes(addrs: &[(String, String)]) -> String {
    cluster_nodes_with_kafka(addrs, false)
}

/// [`cluster_nodes`], each node with a Kafka listener too (on a port
/// found free) when `kafka`, and then three replicas of each partition of
/// the internal topics (`__consumer_offsets`, `__transaction_state`), as
/// Kafka's defaults have.
fn cluster_nodes_with_kafka(addrs: &[(String, String)], kafka: bool) -> String {
    let voters = addrs
        .iter()
        .enumerate()
        .map(|(id, (_, peer))| format!("{id}@{peer}"))
        .collect::<Vec<_>>()
        .join(",");
    addrs
        .iter()
        .enumerate()
        .map(|(id, (native, peer))| {
            let (listener, kafka_addr) = match kafka {
                true => {
                    let addr = format!("127.0.0.1:{} --default-replication-factor 3", free_port());
                    let bare = addr.split(' ').next().unwrap_or_default().to_string();
                    (addr, format!("kafka_addr = \"{bare}\"\n"))
                }
                false => ("off".to_string(), String::new()),
            };
            format!(
                r#"
[[nodes]]
start = "{SLUICE} serve --node-id {id} --cluster-id Y2hhb3MtY2x1c3Rlci0wMA --data-dir {{dir}}/node-{id} --native-addr {native} --kafka-addr {listener} --admin-addr off --peer-addr {peer} --voters {voters} --cores 1"
native_addr = "{native}"
{kafka_addr}"#
            )
        })
        .collect()
}

/// Held by a test whose nodes run in network namespaces: a run names its
/// namespaces, bridge and subnet after the process, so two at once in
/// this one would collide.
static NAMESPACES: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The `[[nodes]]` of a cluster of three, each node in a network namespace
/// of its own at its address there (`{ipN}`), so that one can be cut off.
/// Hold [`NAMESPACES`] while it runs.
fn namespaced_cluster_nodes() -> String {
    cluster_nodes(
        &(0..3)
            .map(|id| (format!("{{ip{id}}}:9192"), format!("{{ip{id}}}:9193")))
            .collect::<Vec<_>>(),
    )
}

#[test]
fn a_node_killed_under_load_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let workload = format!(
        r#"
[chaos]
topic = "chaos"
partitions = 4
producers = 2
rate = 200
duration_s = 8

[[nodes]]
start = "{SLUICE} serve --data-dir {{dir}}/node-0 --native-addr 127.0.0.1:{port} --kafka-addr off --admin-addr off --cores 1"
native_addr = "127.0.0.1:{port}"

[faults]
interval_ms = 2000
down_ms = 200
kinds = ["kill"]
"#
    );
    let (report, summary) = run_clean(&workload, dir.path(), 7, 300);
    assert!(
        report.counts.records_read >= report.counts.sends_ok,
        "{summary}"
    );
    // The run's directory holds what it ran and found.
    for file in [
        "workload.toml",
        "seed",
        "history.jsonl",
        "report.json",
        "report.md",
        "timeline.svg",
    ] {
        assert!(dir.path().join(file).exists(), "{file}");
    }
    // Every kill is a fault with its stall: writes stop while the node
    // is down.
    assert_eq!(report.faults.len() as u64, report.counts.faults);
    for fault in &report.faults {
        assert_eq!(fault.kind, "kill");
        assert!(fault.end_s.is_some(), "{summary}");
        assert!(fault.write_stall_ms >= 200.0, "{summary}");
    }
    // And the history checks the same again.
    let again = sluice_bench::chaos::check_dir(dir.path()).unwrap();
    assert_eq!(again, report);
}

/// A node restarted cleanly by its workload's own stop command (here:
/// one that marks its use and sends SIGTERM to the pid the start command
/// wrote) loses nothing acknowledged.
#[test]
fn a_node_restarted_by_its_stop_command_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let workload = format!(
        r#"
[chaos]
topic = "chaos"
partitions = 2
producers = 1
rate = 200
duration_s = 12

[[nodes]]
start = "sh -c 'echo $$ > {{dir}}/node.pid; exec {SLUICE} serve --data-dir {{dir}}/node-0 --native-addr 127.0.0.1:{port} --kafka-addr off --admin-addr off --cores 1'"
stop = "touch {{dir}}/stopped-by-command; kill -TERM $(cat {{dir}}/node.pid)"
native_addr = "127.0.0.1:{port}"

[faults]
interval_ms = 2000
down_ms = 200
kinds = ["restart"]
"#
    );
    let (report, summary) = run_clean(&workload, dir.path(), 7, 300);
    assert!(
        report.faults.iter().all(|f| f.kind == "restart"),
        "{summary}"
    );
    assert!(dir.path().join("stopped-by-command").exists());
}

/// The same through librdkafka: idempotent producers and a consumer
/// group on Sluice's Kafka listener, the node killed with -9.
#[test]
fn kafka_clients_of_a_killed_node_lose_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (native, kafka) = (free_port(), free_port());
    let workload = format!(
        r#"
[chaos]
topic = "chaos"
partitions = 3
producers = 2
rate = 200
duration_s = 14

[check]
driver = "kafka"
idempotent = true
consumer = "group"
consumers = 2

[[nodes]]
start = "{SLUICE} serve --data-dir {{dir}}/node-0 --native-addr 127.0.0.1:{native} --kafka-addr 127.0.0.1:{kafka} --admin-addr off --cores 1"
native_addr = "127.0.0.1:{native}"
kafka_addr = "127.0.0.1:{kafka}"

[faults]
interval_ms = 5000
down_ms = 200
kinds = ["kill"]
"#
    );
    let (report, summary) = run_clean(&workload, dir.path(), 3, 800);
    let history = std::fs::read_to_string(dir.path().join("history.jsonl")).unwrap();
    assert!(
        history.contains(r#""idempotent":true"#),
        "the producers are idempotent"
    );
    // The group's members read, between the kills, after joining.
    assert!(
        report.counts.records_read > report.counts.sends_ok,
        "{summary}"
    );
    assert!(
        history.contains(r#""f":"commit""#) && report.counts.commits > 0,
        "the group's commits are in the history: {summary}"
    );
    assert!(
        history.contains(r#""f":"assign""#),
        "the group's assignments are in the history: {summary}"
    );
}

/// Runs a consume-transform-produce workload (`transform = true`) and
/// checks what exactly once promises: every input in the output once, no
/// aborted record read by a read_committed consumer, nothing committed
/// lost; and that the faults met transactions (some aborted or left
/// unknown, the transformers starting over).
fn run_exactly_once(workload: &str, dir: &std::path::Path, seed: u64) {
    let (report, summary) = run_clean(workload, dir, seed, 1_000);
    let counts = &report.counts;
    assert!(counts.txns_committed >= 10, "{summary}");
    assert!(
        counts.txns_aborted + counts.txns_unknown > 0,
        "the faults aborted some transactions: {summary}"
    );
    for anomaly in ["aborted_read", "missing_output", "duplicate", "lost_write"] {
        assert_eq!(report.count(anomaly), 0, "{anomaly}: {summary}");
    }
}

/// Exactly once under kill -9 of the only node: two transformers copy the
/// input into the output in transactions with their group's offsets,
/// starting over after each failure; a read_committed consumer reads the
/// output. Each input is in the output once, and no record of an aborted
/// transaction is ever read.
#[test]
fn consume_transform_produce_through_kills_is_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (native, kafka) = (free_port(), free_port());
    let workload = format!(
        r#"
[chaos]
topic = "chaos"
partitions = 3
producers = 2
rate = 300
duration_s = 16

[check]
driver = "kafka"
idempotent = true
transform = true
transformers = 2

[[nodes]]
start = "{SLUICE} serve --data-dir {{dir}}/node-0 --native-addr 127.0.0.1:{native} --kafka-addr 127.0.0.1:{kafka} --admin-addr off --cores 2"
native_addr = "127.0.0.1:{native}"
kafka_addr = "127.0.0.1:{kafka}"

[faults]
interval_ms = 4000
down_ms = 300
kinds = ["kill"]
"#
    );
    run_exactly_once(&workload, dir.path(), 41);
}

/// The same on three nodes, every partition (the topics', and those of
/// `__transaction_state` and `__consumer_offsets`) of three replicas: any
/// node killed with -9, the transaction coordinators', the groups' and
/// the partitions' leaders among them, and started again.
#[test]
fn consume_transform_produce_on_a_cluster_through_kills_is_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<[u16; 2]> = (0..3).map(|_| [free_port(), free_port()]).collect();
    let mut workload = r#"
[chaos]
topic = "chaos"
partitions = 3
producers = 2
rate = 300
duration_s = 24
replication_factor = 3
configs = [["min.insync.replicas", "2"]]

[check]
driver = "kafka"
idempotent = true
transform = true
transformers = 2

[faults]
interval_ms = 4000
down_ms = 500
kinds = ["kill"]
"#
    .to_string();
    workload.push_str(&cluster_nodes_with_kafka(
        &ports
            .iter()
            .map(|[native, peer]| (format!("127.0.0.1:{native}"), format!("127.0.0.1:{peer}")))
            .collect::<Vec<_>>(),
        true,
    ));
    run_exactly_once(&workload, dir.path(), 43);
}

#[test]
fn a_cluster_whose_leader_is_killed_and_paused_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<[u16; 2]> = (0..3).map(|_| [free_port(), free_port()]).collect();
    let mut workload = r#"
[chaos]
topic = "chaos"
partitions = 3
producers = 1
rate = 150
duration_s = 10

[faults]
interval_ms = 2500
down_ms = 400
kinds = ["kill", "pause"]
target = "leader"
partition = 1
"#
    .to_string();
    workload.push_str(&cluster_nodes(
        &ports
            .iter()
            .map(|[native, peer]| (format!("127.0.0.1:{native}"), format!("127.0.0.1:{peer}")))
            .collect::<Vec<_>>(),
    ));
    let (report, summary) = run_clean(&workload, dir.path(), 11, 500);
    for fault in &report.faults {
        assert!(
            fault.target.ends_with("(leader of partition 1)"),
            "{summary}"
        );
        // Partition 1 cannot be written while its only replica's node is
        // down or stopped.
        assert!(fault.write_stall_ms >= 300.0, "{summary}");
    }
}

/// Three replicas of each partition: the leader of partition 1 killed
/// with -9 and kept down past its lease, or cut off from the other nodes
/// (its clients still reaching it). Leadership moves to an in-sync
/// follower while it is away, so writes resume before it is back; the
/// one cut off acknowledges nothing its followers do not hold (no split
/// brain); it truncates by epoch when it returns, and nothing
/// acknowledged is lost.
#[test]
fn a_replicated_cluster_fails_over_from_a_killed_or_cut_off_leader_and_loses_nothing() {
    let _namespaces = NAMESPACES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut workload = r#"
[chaos]
topic = "chaos"
partitions = 3
producers = 1
rate = 300
duration_s = 26
replication_factor = 3
configs = [["min.insync.replicas", "2"]]

[faults]
interval_ms = 6500
down_ms = 5000
kinds = ["kill", "partition"]
target = "leader"
partition = 1
"#
    .to_string();
    workload.push_str(&namespaced_cluster_nodes());
    let (report, summary) = run_clean(&workload, dir.path(), 17, 1500);
    for fault in &report.faults {
        assert!(
            fault.target.ends_with("(leader of partition 1)"),
            "{summary}"
        );
        // Writes resume once leadership moves (a lease of 1 s, an
        // election, on a loaded machine a few seconds at worst), before
        // the node is back after 5 s.
        assert!(fault.write_stall_ms < 4500.0, "{summary}");
    }
}

/// The `[[nodes]]` of a cluster of three on loopback ports found free.
fn loopback_cluster_nodes() -> String {
    let ports: Vec<[u16; 2]> = (0..3).map(|_| [free_port(), free_port()]).collect();
    cluster_nodes(
        &ports
            .iter()
            .map(|[native, peer]| (format!("127.0.0.1:{native}"), format!("127.0.0.1:{peer}")))
            .collect::<Vec<_>>(),
    )
}

/// Twenty rounds and more: the leader of partition 0 (replication factor
/// 3, min.insync.replicas 2) is killed with -9 and started again about
/// every 3 s while acks=all producers write; each time leadership moves to
/// an in-sync follower and writes resume, the node started again truncates
/// by epoch and catches up, and at the end every acknowledged record is
/// read once, in order.
#[test]
fn twenty_kills_of_a_replicated_leader_lose_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let faults = r#"kinds = ["kill"]
target = "leader"
partition = 0"#;
    let workload = replicated_workload(75, faults);
    let (report, summary) = run_clean(&workload, dir.path(), 23, 10_000);
    assert!(report.faults.len() >= 20, "{summary}");
    for fault in &report.faults {
        assert!(fault.write_stall_ms < 4500.0, "{summary}");
    }
}

/// A rolling restart under load: each node in turn stopped with SIGTERM
/// (a controlled shutdown that hands its partitions over first) and
/// started again, every node twice, while acks=all producers write to
/// partitions of three replicas: writes never stall long, and nothing
/// acknowledged is lost.
#[test]
fn a_rolling_restart_of_a_replicated_cluster_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let faults = r#"kinds = ["restart"]
target = "next""#;
    let workload = replicated_workload(24, faults);
    let (report, summary) = run_clean(&workload, dir.path(), 29, 3_000);
    assert!(
        report.faults.len() >= 6,
        "every node restarted twice: {summary}"
    );
    for fault in &report.faults {
        assert!(fault.write_stall_ms < 3000.0, "{summary}");
    }
}

/// Three partitions of three replicas (min.insync.replicas 2) on three
/// loopback nodes, two producers at 400 records/s in all for
/// `duration_s`, and a fault about every 3 s (the node back after 300 ms)
/// of the kinds and target `faults` names.
fn replicated_workload(duration_s: u32, faults: &str) -> String {
    let mut workload = format!(
        r#"
[chaos]
topic = "chaos"
partitions = 3
producers = 2
rate = 400
duration_s = {duration_s}
replication_factor = 3
configs = [["min.insync.replicas", "2"]]

[faults]
interval_ms = 3000
down_ms = 300
{faults}
"#
    );
    workload.push_str(&loopback_cluster_nodes());
    workload
}

/// A node whose filesystem fills up under load: sends fail while it is
/// full, and nothing acknowledged is lost.
#[test]
fn a_node_whose_disk_fills_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let workload = format!(
        r#"
[chaos]
topic = "chaos"
partitions = 2
producers = 1
rate = 200
duration_s = 12

[[nodes]]
start = "{SLUICE} serve --data-dir {{disk}}/data --native-addr 127.0.0.1:{port} --kafka-addr off --admin-addr off --cores 1"
native_addr = "127.0.0.1:{port}"

[faults]
interval_ms = 2500
down_ms = 1200
kinds = ["disk-full"]
disk_mb = 64
"#
    );
    let (report, summary) = run_clean(&workload, dir.path(), 5, 500);
    assert!(
        report.counts.sends_failed > 0,
        "a full disk refuses writes: {summary}"
    );
    // The filesystem is gone with the run.
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts.contains(dir.path().to_str().unwrap()),
        "the run's filesystems are unmounted"
    );
}

/// Three nodes in network namespaces: the controller's leader cut off
/// from the other two, the clients still reaching it; nothing
/// acknowledged is lost, and the namespaces are gone with the run.
#[test]
fn a_cluster_whose_controller_is_partitioned_loses_nothing_acknowledged() {
    let _namespaces = NAMESPACES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut workload = r#"
[chaos]
topic = "chaos"
partitions = 3
producers = 1
rate = 150
duration_s = 12

[faults]
interval_ms = 4000
down_ms = 2500
kinds = ["partition"]
target = "controller"
"#
    .to_string();
    workload.push_str(&namespaced_cluster_nodes());
    let (report, summary) = run_clean(&workload, dir.path(), 13, 500);
    for fault in &report.faults {
        assert!(fault.target.ends_with("(controller)"), "{summary}");
    }
    let namespaces = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    let namespaces = String::from_utf8_lossy(&namespaces.stdout);
    let tag = format!("sluice-chaos-{}-", std::process::id() % 10_000);
    assert!(!namespaces.contains(&tag), "left behind: {namespaces}");
}

/// A proxy in front of a node that loses writes on purpose: it answers
/// every `DROP_EVERY`th produce request itself, acknowledging it at the
/// offset the partition's next record will take, and never forwards it.
/// Metadata answers name the proxy as the broker, so clients stay on it.
struct LossyProxy {
    addr: String,
    dropped: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

const DROP_EVERY: u64 = 25;

impl LossyProxy {
    fn start(upstream: String) -> LossyProxy {
        use std::sync::{atomic::AtomicU64, Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let dropped = Arc::new(AtomicU64::new(0));
        let produced = Arc::new(AtomicU64::new(0));
        // The next offset of each partition, from the node's answers.
        let next_offsets = Arc::new(Mutex::new(std::collections::HashMap::new()));
        let (proxy_addr, counter) = (addr.clone(), dropped.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                    continue;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let (proxy_addr, dropped, produced, next_offsets) = (
                    proxy_addr.clone(),
                    counter.clone(),
                    produced.clone(),
                    next_offsets.clone(),
                );
                std::thread::spawn(move || {
                    let _ = relay(
                        client,
                        server,
                        &proxy_addr,
                        &dropped,
                        &produced,
                        &next_offsets,
                    );
                });
            }
        });
        LossyProxy { addr, dropped }
    }
}

/// A frame as it goes on the wire: its length, then its bytes, in one
/// write.
fn write_frame(stream: &mut std::net::TcpStream, frame: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut bytes = (frame.len() as u32).to_le_bytes().to_vec();
    bytes.extend_from_slice(frame);
    stream.write_all(&bytes)
}

fn read_frame(stream: &mut std::net::TcpStream) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut length = [0u8; 4];
    stream.read_exact(&mut length)?;
    let mut frame = vec![0u8; u32::from_le_bytes(length) as usize];
    assert!(frame.len() < 1 << 26, "a frame of {} bytes", frame.len());
    stream.read_exact(&mut frame)?;
    Ok(frame)
}

/// One client connection through the proxy; the chaos clients send one
/// request at a time, so each request's answer is the next frame.
fn relay(
    mut client: std::net::TcpStream,
    mut server: std::net::TcpStream,
    proxy_addr: &str,
    dropped: &std::sync::atomic::AtomicU64,
    produced: &std::sync::atomic::AtomicU64,
    next_offsets: &std::sync::Mutex<std::collections::HashMap<u32, u64>>,
) -> std::io::Result<()> {
    use std::{io::Write, sync::atomic::Ordering};

    use bytes::Bytes;
    use sluice_net::native::{
        frame::{encode_response, split_request, split_response},
        messages::{
            ApiKey, Message, MetadataResponse, ProducePartitionResponse, ProduceRequest,
            ProduceResponse, ProduceTopicResponse,
        },
        ErrorCode,
    };
    loop {
        let request = read_frame(&mut client)?;
        let (header, body) = split_request(Bytes::from(request.clone())).unwrap();
        if header.api_key == ApiKey::Produce as u16
            && produced.fetch_add(1, Ordering::Relaxed) % DROP_EVERY == DROP_EVERY - 1
        {
            let produce = ProduceRequest::from_bytes(body).unwrap();
            let topic = &produce.topics[0];
            let partition = topic.partitions[0].partition;
            let Some(offset) = next_offsets.lock().unwrap().get(&partition).copied() else {
                // Nothing known of the partition yet: forwarded after all.
                write_frame(&mut server, &request)?;
                let answer = read_frame(&mut server)?;
                write_frame(&mut client, &answer)?;
                continue;
            };
            dropped.fetch_add(1, Ordering::Relaxed);
            let lie = ProduceResponse {
                topics: vec![ProduceTopicResponse {
                    name: topic.name.clone(),
                    partitions: vec![ProducePartitionResponse {
                        partition,
                        error: ErrorCode::None,
                        message: String::new(),
                        base_offset: offset,
                        log_start: 0,
                    }],
                }],
            };
            client.write_all(&encode_response(header.correlation_id, &lie))?;
            continue;
        }
        write_frame(&mut server, &request)?;
        let answer = read_frame(&mut server)?;
        let (answer_header, answer_body) = split_response(Bytes::from(answer.clone())).unwrap();
        if answer_header.error == ErrorCode::None && header.api_key == ApiKey::Metadata as u16 {
            let mut metadata = MetadataResponse::from_bytes(answer_body).unwrap();
            let (host, port) = proxy_addr.rsplit_once(':').unwrap();
            for broker in &mut metadata.brokers {
                broker.host = host.to_string();
                broker.port = port.parse().unwrap();
            }
            client.write_all(&encode_response(answer_header.correlation_id, &metadata))?;
            continue;
        }
        if answer_header.error == ErrorCode::None && header.api_key == ApiKey::Produce as u16 {
            let produce = ProduceResponse::from_bytes(answer_body).unwrap();
            for part in produce.topics.iter().flat_map(|t| &t.partitions) {
                if part.error == ErrorCode::None {
                    next_offsets
                        .lock()
                        .unwrap()
                        .insert(part.partition, part.base_offset + 1);
                }
            }
        }
        write_frame(&mut client, &answer)?;
    }
}

/// A checker that cannot fail is no checker: a system that acknowledges
/// writes it never stores is caught, every lost write of it.
#[test]
fn the_checker_catches_a_system_that_acknowledges_writes_it_drops() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let proxy = LossyProxy::start(format!("127.0.0.1:{port}"));
    let workload = format!(
        r#"
[chaos]
topic = "lossy"
partitions = 2
producers = 1
rate = 200
duration_s = 4

[[nodes]]
start = "{SLUICE} serve --data-dir {{dir}}/node-0 --native-addr 127.0.0.1:{port} --kafka-addr off --admin-addr off --cores 1"
native_addr = "{}"
"#,
        proxy.addr
    );
    let report = sluice_bench::chaos::run::run(&workload, dir.path(), 1).unwrap();
    let summary = report.markdown();
    let dropped = proxy.dropped.load(std::sync::atomic::Ordering::Relaxed);
    assert!(dropped >= 10, "{dropped} dropped: {summary}");
    assert!(!report.valid, "{summary}");
    assert_eq!(report.count("lost_write"), dropped, "{summary}");
    // Each lie named an offset a stored record then took.
    assert!(
        report.count("inconsistent_offsets") >= dropped - 2,
        "{summary}"
    );
    assert_eq!(report.count("duplicate"), 0, "{summary}");
}
