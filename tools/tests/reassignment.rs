//! Moving partitions between brokers while they serve (`sluice topic
//! move`, Kafka's AlterPartitionReassignments), on three real nodes: the
//! new replicas copy the partition and join the in-sync set, the old ones
//! drop their copy, a leader left out hands over; an acks=all producer
//! writing all along loses nothing; a throttled move keeps to its pace; a
//! cancelled move goes back to its original replicas.

mod common;
mod kafka_common;

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

use common::cluster::{kafka_call, metadata, wait_until, LocalCluster, PartitionSeen};
use kafka_common::{consumer_for, produce_ok, producer_for, read_to_end, KafkaProducer, Record};
use kafka_protocol::{
    messages::{
        alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic},
        list_partition_reassignments_request::ListPartitionReassignmentsTopics,
        AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ApiKey, BrokerId,
        ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
    },
    protocol::StrBytes,
};
use rdkafka::Offset;

const NODES: [u32; 3] = [0, 1, 2];

/// Records a producing round sends before it checks whether to stop.
const ROUND_RECORDS: usize = 200;

#[test]
fn partitions_move_to_other_brokers_while_an_acks_all_producer_writes_and_nothing_is_lost() {
    let cluster = start_cluster();
    // Partition 0 on nodes 0 and 1 (node 0 leads), partition 1 on nodes
    // 1 and 2 (node 1 leads).
    cluster.cli_ok(
        0,
        &[
            "topic",
            "create",
            "moving",
            "--replica-assignment",
            "0:1,1:2",
        ],
        None,
    );
    wait_for_placement(&cluster, "moving", &[(vec![0, 1], 0), (vec![1, 2], 1)]);

    let producer = acks_all_producer(&cluster);
    let stop = AtomicBool::new(false);
    let sent: Mutex<Vec<(Record, i32, i64)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| produce_until(&producer, "moving", 2, &stop, &sent));
        wait_for(
            || sent.lock().unwrap().len() >= 2 * ROUND_RECORDS,
            "records written before the move",
        );
        // Both leaders are left out: each hands over to the first new
        // replica once it is in sync.
        let started = Instant::now();
        let out = cluster.cli_ok(
            2,
            &[
                "topic", "move", "moving", "-p", "0", "--to", "2,1", "--wait",
            ],
            None,
        );
        assert!(out.contains("started"), "{out}");
        let out = cluster.cli_ok(
            1,
            &[
                "topic", "move", "moving", "-p", "1", "--to", "2,0", "--wait",
            ],
            None,
        );
        assert!(out.contains("started"), "{out}");
        eprintln!(
            "both moves done {:?} after the first started",
            started.elapsed()
        );
        // Writes go on at the new leaders.
        let moved_at = sent.lock().unwrap().len();
        wait_for(
            || sent.lock().unwrap().len() >= moved_at + 2 * ROUND_RECORDS,
            "records written after the moves",
        );
        stop.store(true, Ordering::SeqCst);
        writer.join().unwrap();
    });

    wait_for_placement(&cluster, "moving", &[(vec![2, 1], 2), (vec![2, 0], 2)]);
    let listed = cluster.cli_ok(0, &["topic", "moves", "--format", "json"], None);
    assert_eq!(listed.trim(), "[]", "no move left in progress");
    // The replicas left out dropped their copies.
    wait_for(
        || {
            !has_partition_dir(&cluster, 0, "moving", 0)
                && !has_partition_dir(&cluster, 1, "moving", 1)
        },
        "node 0's copy of partition 0 and node 1's of partition 1 are deleted",
    );
    assert!(has_partition_dir(&cluster, 2, "moving", 0));
    assert!(has_partition_dir(&cluster, 0, "moving", 1));
    assert_read_back(&cluster, "moving", 2, &sent.into_inner().unwrap());
}

#[test]
fn a_throttled_move_keeps_its_pace_and_a_cancelled_one_goes_back() {
    const RECORD_BYTES: usize = 1024;
    const RECORDS: usize = 2048;
    const THROTTLE_BYTES_PER_S: u64 = 512 * 1024;
    let cluster = start_cluster();
    cluster.cli_ok(
        0,
        &["topic", "create", "paced", "--replica-assignment", "0,0"],
        None,
    );
    wait_for_placement(&cluster, "paced", &[(vec![0], 0), (vec![0], 0)]);
    let producer = acks_all_producer(&cluster);
    let records: Vec<Record> = (0..RECORDS)
        .map(|index| {
            let mut value = format!("v{index}-").into_bytes();
            value.resize(RECORD_BYTES, b'x');
            Record::new(None, Some(&value))
        })
        .collect();
    let mut sent = Vec::new();
    for partition in [0, 1] {
        let placed = produce_ok(&producer, "paced", Some(partition), &records);
        for (record, placed) in records.iter().zip(placed) {
            sent.push((record.clone(), placed.partition, placed.offset));
        }
    }

    // Partition 0 moves to node 1 at 512 KiB/s: about 2 MiB takes about
    // 4 s, and the move is listed meanwhile, by both protocols.
    let started = Instant::now();
    let out = cluster.cli_ok(
        2,
        &[
            "topic",
            "move",
            "paced",
            "-p",
            "0",
            "--to",
            "1",
            "--throttle",
            "512K",
        ],
        None,
    );
    assert!(out.contains("started"), "{out}");
    let listed: serde_json::Value = serde_json::from_str(&cluster.cli_ok(
        0,
        &["topic", "moves", "paced", "--format", "json"],
        None,
    ))
    .unwrap();
    assert_eq!(
        listed,
        serde_json::json!([{
            "topic": "paced", "partition": 0, "replicas": [1, 0], "adding": [1],
            "removing": [0], "throttle_bytes_per_s": THROTTLE_BYTES_PER_S,
        }])
    );
    let kafka_listed = list_kafka(&cluster, None);
    let moving = &kafka_listed.topics[0].partitions[0];
    assert_eq!(
        (
            &moving.replicas,
            &moving.adding_replicas,
            &moving.removing_replicas
        ),
        (
            &vec![BrokerId(1), BrokerId(0)],
            &vec![BrokerId(1)],
            &vec![BrokerId(0)]
        ),
        "{kafka_listed:?}"
    );
    // Partition 1 moves too, far slower, and is cancelled through Kafka's
    // API (null replicas) while it copies.
    cluster.cli_ok(
        0,
        &[
            "topic",
            "move",
            "paced",
            "-p",
            "1",
            "--to",
            "2",
            "--throttle",
            "16K",
        ],
        None,
    );
    wait_for(
        || has_partition_dir(&cluster, 2, "paced", 1),
        "node 2 starts copying partition 1",
    );
    let answer = alter_kafka(&cluster, "paced", 1, None);
    assert_eq!(
        answer.responses[0].partitions[0].error_code, 0,
        "{answer:?}"
    );
    let again = alter_kafka(&cluster, "paced", 1, None);
    assert_eq!(
        again.responses[0].partitions[0].error_code, 85,
        "NO_REASSIGNMENT_IN_PROGRESS: {again:?}"
    );
    wait_for(
        || !has_partition_dir(&cluster, 2, "paced", 1),
        "node 2's partial copy of partition 1 is deleted",
    );

    wait_for_placement(&cluster, "paced", &[(vec![1], 1), (vec![0], 0)]);
    let took = started.elapsed();
    let bytes = (RECORDS * RECORD_BYTES) as f64;
    let paced = Duration::from_secs_f64(bytes / THROTTLE_BYTES_PER_S as f64);
    eprintln!("{bytes} bytes moved in {took:?} at a throttle of {THROTTLE_BYTES_PER_S} B/s");
    assert!(
        took >= paced.mul_f64(0.7),
        "{bytes} bytes moved in {took:?}: faster than the throttle allows ({paced:?})"
    );
    assert!(list_kafka(&cluster, None).topics.is_empty());
    assert!(!has_partition_dir(&cluster, 0, "paced", 0));
    assert_read_back(&cluster, "paced", 2, &sent);
}

#[test]
fn a_move_asked_through_kafkas_api_keeps_the_pace_kafkas_throttle_configs_give() {
    const RECORD_BYTES: usize = 1024;
    const RECORDS: usize = 1024;
    const RATE: u64 = 64 * 1024;
    let cluster = start_cluster();
    cluster.cli_ok(
        0,
        &[
            "topic",
            "create",
            "kafka-paced",
            "--replica-assignment",
            "0",
        ],
        None,
    );
    wait_for_placement(&cluster, "kafka-paced", &[(vec![0], 0)]);
    let producer = acks_all_producer(&cluster);
    let value = vec![b'x'; RECORD_BYTES];
    let records = vec![Record::new(None, Some(&value)); RECORDS];
    produce_ok(&producer, "kafka-paced", Some(0), &records);

    // What kafka-reassign-partitions.sh --throttle sets: the rates on the
    // brokers involved, the throttled replicas on the topic.
    for (node, rate) in [
        (0, "leader.replication.throttled.rate"),
        (1, "follower.replication.throttled.rate"),
    ] {
        alter_configs_kafka(&cluster, 4, &node.to_string(), &[(rate, &RATE.to_string())]);
    }
    alter_configs_kafka(
        &cluster,
        2,
        "kafka-paced",
        &[
            ("leader.replication.throttled.replicas", "0:0"),
            ("follower.replication.throttled.replicas", "0:1"),
        ],
    );
    let answer = alter_kafka(&cluster, "kafka-paced", 0, Some(&[1]));
    assert_eq!(
        answer.responses[0].partitions[0].error_code, 0,
        "{answer:?}"
    );
    let listed: serde_json::Value = serde_json::from_str(&cluster.cli_ok(
        0,
        &["topic", "moves", "kafka-paced", "--format", "json"],
        None,
    ))
    .unwrap();
    assert_eq!(listed[0]["throttle_bytes_per_s"], RATE, "{listed}");
    // 1 MiB at 64 KiB/s: still copying; cancelled, it goes back.
    assert_eq!(
        alter_kafka(&cluster, "kafka-paced", 0, None).responses[0].partitions[0].error_code,
        0
    );
    wait_for_placement(&cluster, "kafka-paced", &[(vec![0], 0)]);
}

/// IncrementalAlterConfigs SET of `configs` on a resource (2 a topic, 4 a
/// broker), each answered with no error.
fn alter_configs_kafka(
    cluster: &LocalCluster,
    resource_type: i8,
    name: &str,
    configs: &[(&str, &str)],
) {
    use kafka_protocol::messages::{
        incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig},
        IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    };
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configs(
                configs
                    .iter()
                    .map(|(name, value)| {
                        AlterableConfig::default()
                            .with_name(StrBytes::from_string(name.to_string()))
                            .with_config_operation(0)
                            .with_value(Some(StrBytes::from_string(value.to_string())))
                    })
                    .collect(),
            ),
    ]);
    let response: IncrementalAlterConfigsResponse = kafka_call(
        &cluster.kafka_addr(0),
        ApiKey::IncrementalAlterConfigs,
        1,
        &request,
    );
    assert_eq!(response.responses[0].error_code, 0, "{response:?}");
}

fn start_cluster() -> LocalCluster {
    let cluster = LocalCluster::start(NODES.len() as u32);
    cluster.wait_for_brokers(NODES.len() as u32);
    cluster
}

/// Waits until every node's Kafka Metadata gives each partition of
/// `topic` the replicas and leader `expected` names, all in sync.
fn wait_for_placement(cluster: &LocalCluster, topic: &str, expected: &[(Vec<i32>, i32)]) {
    let expected: Vec<PartitionSeen> = expected
        .iter()
        .map(|(replicas, leader)| PartitionSeen {
            leader: *leader,
            replicas: replicas.clone(),
            in_sync: replicas.iter().copied().collect(),
        })
        .collect();
    for node in NODES {
        wait_until(
            || match metadata(&cluster.kafka_addr(node), Some(topic)) {
                Some(seen) if seen.partitions == expected => Ok(()),
                Some(seen) => Err(format!("{:?}", seen.partitions)),
                None => Err("no answer".to_string()),
            },
            &format!("node {node} places {topic} as {expected:?}"),
        );
    }
}

fn wait_for(mut done: impl FnMut() -> bool, what: &str) {
    wait_until(|| if done() { Ok(()) } else { Err("not yet") }, what);
}

fn acks_all_producer(cluster: &LocalCluster) -> KafkaProducer {
    producer_for(
        &cluster.kafka_bootstrap(),
        &[
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("message.timeout.ms", "60000"),
            ("linger.ms", "5"),
        ],
    )
}

/// Writes rounds of records to every partition in turn until `stop`,
/// each one's value unique, keeping each acknowledged record with where
/// it was stored. Every record must be acknowledged.
fn produce_until(
    producer: &KafkaProducer,
    topic: &str,
    partitions: i32,
    stop: &AtomicBool,
    sent: &Mutex<Vec<(Record, i32, i64)>>,
) {
    let mut next = 0usize;
    while !stop.load(Ordering::SeqCst) {
        for partition in 0..partitions {
            let records: Vec<Record> = (next..next + ROUND_RECORDS)
                .map(|index| Record::new(None, Some(format!("v{index}").as_bytes())))
                .collect();
            next += ROUND_RECORDS;
            let placed = produce_ok(producer, topic, Some(partition), &records);
            let mut sent = sent.lock().unwrap();
            for (record, placed) in records.into_iter().zip(placed) {
                sent.push((record, placed.partition, placed.offset));
            }
        }
    }
}

/// Reads every partition of `topic` from its beginning and checks that
/// each acknowledged record is at the offset it was acknowledged at, and
/// that nothing else is there.
fn assert_read_back(
    cluster: &LocalCluster,
    topic: &str,
    partitions: i32,
    sent: &[(Record, i32, i64)],
) {
    let consumer = consumer_for(&cluster.kafka_bootstrap(), &[]);
    let from: Vec<(i32, Offset)> = (0..partitions).map(|p| (p, Offset::Beginning)).collect();
    let read = read_to_end(&consumer, topic, &from);
    for partition in 0..partitions {
        let acknowledged: Vec<(i64, &Option<Vec<u8>>)> = sent
            .iter()
            .filter(|(_, placed, _)| *placed == partition)
            .map(|(record, _, offset)| (*offset, &record.value))
            .collect();
        let stored: Vec<(i64, &Option<Vec<u8>>)> = read[&partition]
            .iter()
            .map(|consumed| (consumed.offset, &consumed.record.value))
            .collect();
        assert_eq!(
            stored.len(),
            acknowledged.len(),
            "partition {partition}: {} records stored, {} acknowledged",
            stored.len(),
            acknowledged.len()
        );
        for (stored, acknowledged) in stored.iter().zip(&acknowledged) {
            assert_eq!(stored, acknowledged, "partition {partition}");
        }
    }
}

/// Whether node `node` holds a directory for partition `partition` of
/// `topic` (in `data/topics/<topic>-<id>/<partition>`).
fn has_partition_dir(cluster: &LocalCluster, node: u32, topic: &str, partition: u32) -> bool {
    let topics = cluster.node_dir(node).join("data").join("topics");
    let Ok(entries) = std::fs::read_dir(&topics) else {
        return false;
    };
    let prefix = format!("{topic}-");
    entries
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with(&prefix) && !name.ends_with(".deleted")
        })
        .any(|dir: PathBuf| dir.join(partition.to_string()).is_dir())
}

fn alter_kafka(
    cluster: &LocalCluster,
    topic: &str,
    partition: i32,
    replicas: Option<&[i32]>,
) -> AlterPartitionReassignmentsResponse {
    let request = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![ReassignableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![ReassignablePartition::default()
                .with_partition_index(partition)
                .with_replicas(replicas.map(|nodes| {
                    nodes.iter().map(|n| BrokerId(*n)).collect()
                }))])]);
    kafka_call(
        &cluster.kafka_addr(1),
        ApiKey::AlterPartitionReassignments,
        0,
        &request,
    )
}

fn list_kafka(cluster: &LocalCluster, topic: Option<&str>) -> ListPartitionReassignmentsResponse {
    let topics = topic.map(|topic| {
        vec![ListPartitionReassignmentsTopics::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_indexes(vec![0, 1])]
    });
    kafka_call(
        &cluster.kafka_addr(2),
        ApiKey::ListPartitionReassignments,
        0,
        &ListPartitionReassignmentsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(topics),
    )
}
