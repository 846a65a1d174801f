//! Kafka's cluster admin requests against a real single node: DescribeQuorum
//! (KIP-595, KIP-853), DescribeTopicPartitions (KIP-966) and DescribeLogDirs,
//! with the `kafka-protocol` crate's codec: the controller quorum's log is
//! `__cluster_metadata` partition 0, led by this node at the quorum's
//! term, its high watermark the committed metadata index, this node its
//! one voter. librdkafka has no DescribeQuorum admin call (as of 2.12),
//! so only the codec asks here.

mod common;

use std::{
    net::TcpStream,
    time::{Duration, Instant},
};

use common::Broker;
use kafka_protocol::{
    messages::{
        describe_quorum_request::{PartitionData, TopicData},
        ApiKey, ApiVersionsRequest, ApiVersionsResponse, DescribeQuorumRequest,
        DescribeQuorumResponse, TopicName,
    },
    protocol::{Decodable, Encodable, StrBytes},
};

const NODE_ID: i32 = 4;
const TIMEOUT: Duration = Duration::from_secs(20);
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// One request and its answer on a new connection.
fn call<T: Encodable, R: Decodable>(broker: &Broker, api: ApiKey, version: i16, body: &T) -> R {
    let mut stream = TcpStream::connect(&broker.kafka_addr).expect("connects");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    common::kafka_exchange(&mut stream, api, version, 7, "quorum-test", body)
}

fn request(topics: &[(&str, &[i32])]) -> DescribeQuorumRequest {
    DescribeQuorumRequest::default().with_topics(
        topics
            .iter()
            .map(|(name, partitions)| {
                TopicData::default()
                    .with_topic_name(TopicName(StrBytes::from_string(name.to_string())))
                    .with_partitions(
                        partitions
                            .iter()
                            .map(|p| PartitionData::default().with_partition_index(*p))
                            .collect(),
                    )
            })
            .collect(),
    )
}

/// The controller's term and committed index as `cluster describe` tells
/// them, once a controller is known.
fn quorum_state(broker: &Broker) -> (u64, u64) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let out = broker.cli_ok(&["cluster", "describe", "--format", "json"], None);
        let cluster: serde_json::Value = serde_json::from_str(&out).unwrap();
        if !cluster["controller"].is_null() {
            return (
                cluster["term"].as_u64().unwrap(),
                cluster["committed"].as_u64().unwrap(),
            );
        }
        assert!(Instant::now() < deadline, "no controller: {cluster}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn describe_quorum_names_this_node_leader_of_the_metadata_log_at_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_with(dir.path(), 2, &[("SLUICE_NODE_ID", "4")]);

    let versions: ApiVersionsResponse = call(
        &broker,
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default(),
    );
    let advertised = versions
        .api_keys
        .iter()
        .find(|api| api.api_key == ApiKey::DescribeQuorum as i16)
        .expect("DescribeQuorum is advertised");
    assert_eq!((advertised.min_version, advertised.max_version), (0, 2));

    let (term, committed) = quorum_state(&broker);
    assert!(
        term >= 1 && committed >= 1,
        "term {term}, committed {committed}"
    );

    for version in 0..=2 {
        let answer: DescribeQuorumResponse = call(
            &broker,
            ApiKey::DescribeQuorum,
            version,
            &request(&[("__cluster_metadata", &[0, 1]), ("orders", &[0])]),
        );
        assert_eq!(answer.error_code, 0, "v{version}: {answer:?}");
        assert_eq!(answer.topics.len(), 2, "v{version}: {answer:?}");
        let metadata = &answer.topics[0];
        assert_eq!(&*metadata.topic_name.0, "__cluster_metadata");
        assert_eq!(metadata.partitions.len(), 2, "v{version}: {answer:?}");
        let log = &metadata.partitions[0];
        assert_eq!(log.partition_index, 0);
        assert_eq!(log.error_code, 0, "v{version}: {log:?}");
        assert_eq!(log.leader_id.0, NODE_ID, "v{version}: {log:?}");
        assert_eq!(log.leader_epoch as u64, term, "v{version}: {log:?}");
        assert_eq!(log.high_watermark as u64, committed, "v{version}: {log:?}");
        let voters: Vec<i32> = log.current_voters.iter().map(|v| v.replica_id.0).collect();
        assert_eq!(voters, [NODE_ID], "v{version}: {log:?}");
        let log_end = log.current_voters[0].log_end_offset;
        assert!(
            log_end == -1 || log_end >= log.high_watermark,
            "v{version}: a log end of {log_end} below the high watermark {}",
            log.high_watermark
        );
        assert!(log.observers.is_empty(), "v{version}: {log:?}");
        if version >= 1 {
            assert_eq!(log.current_voters[0].last_fetch_timestamp, -1);
        }

        // Another partition or topic is no quorum's log.
        assert_eq!(metadata.partitions[1].partition_index, 1);
        assert_eq!(
            metadata.partitions[1].error_code, UNKNOWN_TOPIC_OR_PARTITION,
            "v{version}"
        );
        assert_eq!(
            answer.topics[1].partitions[0].error_code, UNKNOWN_TOPIC_OR_PARTITION,
            "v{version}"
        );

        if version >= 2 {
            assert_eq!(answer.nodes.len(), 1, "{answer:?}");
            let node = &answer.nodes[0];
            assert_eq!(node.node_id.0, NODE_ID);
            assert_eq!(node.listeners.len(), 1, "{node:?}");
            assert_eq!(&*node.listeners[0].name, "PEER");
            assert!(node.listeners[0].port > 0, "{node:?}");
        } else {
            assert!(answer.nodes.is_empty());
        }
    }
}

/// DescribeTopicPartitions (KIP-966): every partition with its leader,
/// replicas and in-sync replicas, paginated by the limit and the cursor.
#[test]
fn describe_topic_partitions_pages_through_every_partition() {
    use kafka_protocol::messages::{
        describe_topic_partitions_request::{Cursor, TopicRequest},
        DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse,
    };
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_with(dir.path(), 1, &[("SLUICE_NODE_ID", "4")]);
    broker.cli_ok(&["topic", "create", "alpha", "--partitions", "3"], None);
    broker.cli_ok(&["topic", "create", "beta", "--partitions", "2"], None);
    let name = |text: &str| TopicName(StrBytes::from_string(text.to_string()));
    let ask = |cursor: Option<Cursor>| -> DescribeTopicPartitionsResponse {
        let request = DescribeTopicPartitionsRequest::default()
            .with_topics(vec![
                TopicRequest::default().with_name(name("beta")),
                TopicRequest::default().with_name(name("alpha")),
                TopicRequest::default().with_name(name("missing")),
            ])
            .with_response_partition_limit(2)
            .with_cursor(cursor);
        call(&broker, ApiKey::DescribeTopicPartitions, 0, &request)
    };
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = ask(cursor.take());
        pages += 1;
        for topic in &page.topics {
            let topic_name = topic.name.as_ref().unwrap().0.to_string();
            if topic_name == "missing" {
                assert_eq!(topic.error_code, UNKNOWN_TOPIC_OR_PARTITION);
                continue;
            }
            assert_eq!(topic.error_code, 0);
            for partition in &topic.partitions {
                assert_eq!(partition.leader_id.0, NODE_ID);
                assert_eq!(
                    partition.replica_nodes,
                    [kafka_protocol::messages::BrokerId(NODE_ID)]
                );
                assert_eq!(partition.isr_nodes, partition.replica_nodes);
                seen.push((topic_name.clone(), partition.partition_index));
            }
        }
        match page.next_cursor {
            Some(next) => {
                cursor = Some(
                    Cursor::default()
                        .with_topic_name(next.topic_name)
                        .with_partition_index(next.partition_index),
                )
            }
            None => break,
        }
        assert!(pages < 10, "the cursor moves on");
    }
    assert_eq!(
        seen,
        [
            ("alpha", 0),
            ("alpha", 1),
            ("alpha", 2),
            ("beta", 0),
            ("beta", 1)
        ]
        .map(|(t, p)| (t.to_string(), p))
    );
    assert_eq!(pages, 3, "two partitions a page");
}

/// DescribeLogDirs: the broker's data directory, each partition's bytes
/// there, and at v4 the filesystem's total and usable bytes.
#[test]
fn describe_log_dirs_names_the_data_directory_and_partition_sizes() {
    use kafka_protocol::messages::{
        describe_log_dirs_request::DescribableLogDirTopic, DescribeLogDirsRequest,
        DescribeLogDirsResponse,
    };
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_with(dir.path(), 1, &[("SLUICE_NODE_ID", "4")]);
    broker.cli_ok(&["topic", "create", "sized", "--partitions", "2"], None);
    broker.cli_ok(
        &["produce", "sized", "--partition", "1"],
        Some(b"one\ntwo\nthree\n"),
    );
    for version in [1, 4] {
        let all: DescribeLogDirsResponse = call(
            &broker,
            ApiKey::DescribeLogDirs,
            version,
            &DescribeLogDirsRequest::default().with_topics(None),
        );
        assert_eq!(all.results.len(), 1);
        let result = &all.results[0];
        assert_eq!(result.error_code, 0);
        assert!(
            result
                .log_dir
                .to_string()
                .starts_with(&dir.path().display().to_string()),
            "{}",
            result.log_dir
        );
        if version >= 4 {
            assert!(result.total_bytes > 0 && result.usable_bytes > 0);
            assert!(result.usable_bytes <= result.total_bytes);
        }
        let sized = result
            .topics
            .iter()
            .find(|topic| topic.name.0.to_string() == "sized")
            .expect("the topic");
        let sizes: Vec<(i32, i64)> = sized
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.partition_size))
            .collect();
        assert_eq!(sizes.len(), 2, "{sizes:?}");
        assert_eq!(sizes[0], (0, 0), "nothing written to partition 0");
        assert!(sizes[1].0 == 1 && sizes[1].1 > 0, "{sizes:?}");
    }
    let one: DescribeLogDirsResponse = call(
        &broker,
        ApiKey::DescribeLogDirs,
        4,
        &DescribeLogDirsRequest::default().with_topics(Some(vec![
            DescribableLogDirTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("sized")))
                .with_partitions(vec![1]),
        ])),
    );
    let partitions = &one.results[0].topics[0].partitions;
    assert_eq!(partitions.len(), 1);
    assert_eq!(partitions[0].partition_index, 1);
}

/// Several log directories: partitions spread over them, DescribeLogDirs
/// lists each with its partitions, AlterReplicaLogDirs moves a partition
/// to another (its records with it, found there after a restart), and a
/// log directory of another node is refused at start.
#[test]
fn partitions_spread_over_log_dirs_and_move_between_them() {
    use kafka_protocol::messages::{
        alter_replica_log_dirs_request::{AlterReplicaLogDir, AlterReplicaLogDirTopic},
        AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse, DescribeLogDirsRequest,
        DescribeLogDirsResponse,
    };
    const LOG_DIR_NOT_FOUND: i16 = 57;
    let dir = tempfile::tempdir().unwrap();
    let disks: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let log_dirs = format!(
        "{},{}",
        disks[0].path().display(),
        disks[1].path().display()
    );
    let env = [
        ("SLUICE_NODE_ID", "4"),
        ("SLUICE_LOG_DIRS", log_dirs.as_str()),
    ];
    let mut broker = Broker::start_with(dir.path(), 1, &env);
    broker.cli_ok(&["topic", "create", "spread", "--partitions", "6"], None);
    broker.cli_ok(
        &["produce", "spread", "--partition", "0"],
        Some(b"one\ntwo\nthree\n"),
    );
    // Where each partition of "spread" is, per log directory.
    let placement = |broker: &Broker| -> Vec<(String, Vec<i32>)> {
        let described: DescribeLogDirsResponse = call(
            broker,
            ApiKey::DescribeLogDirs,
            4,
            &DescribeLogDirsRequest::default().with_topics(None),
        );
        described
            .results
            .iter()
            .map(|result| {
                assert_eq!(result.error_code, 0);
                assert!(result.total_bytes > 0, "{}", result.log_dir);
                let mut partitions: Vec<i32> = result
                    .topics
                    .iter()
                    .filter(|topic| topic.name.0.as_str() == "spread")
                    .flat_map(|topic| topic.partitions.iter().map(|p| p.partition_index))
                    .collect();
                partitions.sort_unstable();
                (result.log_dir.to_string(), partitions)
            })
            .collect()
    };
    let before = placement(&broker);
    assert_eq!(before.len(), 3, "{before:?}");
    assert_eq!(before[0].0, dir.path().display().to_string());
    assert_eq!(before[1].0, disks[0].path().display().to_string());
    assert!(
        before.iter().all(|(_, partitions)| partitions.len() == 2),
        "two partitions on each disk: {before:?}"
    );
    // Their directories are there on disk.
    for (log_dir, partitions) in &before {
        let topics = std::fs::read_dir(std::path::Path::new(log_dir).join("topics")).unwrap();
        let topic = topics
            .filter_map(|entry| entry.ok())
            .find(|entry| entry.file_name().to_string_lossy().starts_with("spread-"))
            .unwrap()
            .path();
        for partition in partitions {
            assert!(topic.join(partition.to_string()).is_dir());
        }
    }

    // Partition 0 moves to a directory that does not hold it.
    let (target, _) = before
        .iter()
        .find(|(_, partitions)| !partitions.contains(&0))
        .unwrap()
        .clone();
    let ask = |path: &str| {
        AlterReplicaLogDirsRequest::default().with_dirs(vec![AlterReplicaLogDir::default()
            .with_path(StrBytes::from_string(path.to_string()))
            .with_topics(vec![AlterReplicaLogDirTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("spread")))
                .with_partitions(vec![0])])])
    };
    for version in [1, 2] {
        let moved: AlterReplicaLogDirsResponse =
            call(&broker, ApiKey::AlterReplicaLogDirs, version, &ask(&target));
        assert_eq!(moved.results[0].partitions[0].error_code, 0, "v{version}");
    }
    let after = placement(&broker);
    let holds_0 = |placed: &[(String, Vec<i32>)]| {
        placed
            .iter()
            .find(|(_, partitions)| partitions.contains(&0))
            .map(|(dir, _)| dir.clone())
    };
    assert_eq!(holds_0(&after), Some(target.clone()), "{after:?}");
    let read = broker.cli_ok(&["consume", "spread", "--partition", "0"], None);
    assert_eq!(read.lines().collect::<Vec<_>>(), ["one", "two", "three"]);
    broker.cli_ok(&["produce", "spread", "--partition", "0"], Some(b"four\n"));

    // A directory that is not this broker's is refused, and moves nothing.
    let refused: AlterReplicaLogDirsResponse =
        call(&broker, ApiKey::AlterReplicaLogDirs, 2, &ask("/nowhere"));
    assert_eq!(
        refused.results[0].partitions[0].error_code,
        LOG_DIR_NOT_FOUND
    );

    // After a restart, the partition is where it was moved, with every
    // record.
    broker.kill9();
    broker.spawn();
    assert_eq!(holds_0(&placement(&broker)), Some(target));
    let read = broker.cli_ok(&["consume", "spread", "--partition", "0"], None);
    assert_eq!(
        read.lines().collect::<Vec<_>>(),
        ["one", "two", "three", "four"]
    );
    broker.stop();

    // Another node given one of these log directories refuses to start.
    let other = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(common::SLUICE)
        .args(["serve", "--node-id", "5", "--data-dir"])
        .arg(other.path())
        .args(["--log-dirs", &disks[1].path().display().to_string()])
        .args([
            "--native-addr",
            "127.0.0.1:0",
            "--kafka-addr",
            "127.0.0.1:0",
        ])
        .env("SLUICE_ADMIN_ADDR", "off")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("belongs to"), "{stderr}");
}

/// AlterPartitionReassignments and ListPartitionReassignments: a
/// reassignment to the replicas a partition has succeeds, one Kafka would
/// refuse is refused with Kafka's code, a cancellation finds nothing in
/// progress, and none is listed. (Moves to other brokers:
/// tools/tests/reassignment.rs.)
#[test]
fn partition_reassignments_are_checked_as_kafka_checks_them() {
    use kafka_protocol::messages::{
        alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic},
        AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
        ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
    };
    const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
    const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_with(dir.path(), 1, &[("SLUICE_NODE_ID", "4")]);
    broker.cli_ok(&["topic", "create", "placed", "--partitions", "2"], None);
    let partition = |index: i32, replicas: Option<&[i32]>| {
        ReassignablePartition::default()
            .with_partition_index(index)
            .with_replicas(replicas.map(|nodes| nodes.iter().map(|n| BrokerId(*n)).collect()))
    };
    let request = |topic: &str, partitions: Vec<ReassignablePartition>| {
        AlterPartitionReassignmentsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![ReassignableTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(partitions)])
    };
    let asked = request(
        "placed",
        vec![
            partition(0, Some(&[4])),
            partition(1, Some(&[9])),
            partition(1, Some(&[4, 4])),
            partition(1, None),
            partition(7, Some(&[4])),
        ],
    );
    for version in [0, 1] {
        let answer: AlterPartitionReassignmentsResponse = call(
            &broker,
            ApiKey::AlterPartitionReassignments,
            version,
            &asked,
        );
        assert_eq!(answer.error_code, 0);
        let codes: Vec<i16> = answer.responses[0]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect();
        assert_eq!(
            codes,
            [
                0,
                INVALID_REPLICA_ASSIGNMENT,
                INVALID_REPLICA_ASSIGNMENT,
                NO_REASSIGNMENT_IN_PROGRESS,
                UNKNOWN_TOPIC_OR_PARTITION
            ],
            "v{version}: {answer:?}"
        );
    }
    // A node that is no live broker, in a wider set.
    let wider = request("placed", vec![partition(0, Some(&[4, 5]))]);
    let answer: AlterPartitionReassignmentsResponse =
        call(&broker, ApiKey::AlterPartitionReassignments, 1, &wider);
    assert_eq!(
        answer.responses[0].partitions[0].error_code,
        INVALID_REPLICA_ASSIGNMENT
    );
    let unknown: AlterPartitionReassignmentsResponse = call(
        &broker,
        ApiKey::AlterPartitionReassignments,
        1,
        &request("nowhere", vec![partition(0, Some(&[4]))]),
    );
    assert_eq!(
        unknown.responses[0].partitions[0].error_code,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    let listed: ListPartitionReassignmentsResponse = call(
        &broker,
        ApiKey::ListPartitionReassignments,
        0,
        &ListPartitionReassignmentsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(None),
    );
    assert_eq!(listed.error_code, 0);
    assert!(listed.topics.is_empty());
}
