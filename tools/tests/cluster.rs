//! Several nodes, one cluster: `sluice cluster local` starts three real
//! `sluice serve` processes on loopback; Kafka clients bootstrap from one
//! node and reach partitions led by all three; the controller quorum
//! survives the kill -9 of its leader, and a paused broker is fenced and
//! comes back.

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    consumer::{BaseConsumer, Consumer},
    producer::{BaseProducer, BaseRecord, Producer},
    Message, Offset, TopicPartitionList,
};

use common::{
    cluster::{client, create_topic, kafka_call, metadata, wait_for, LocalCluster, WAIT},
    SLUICE,
};

/// The controller a node names in Kafka's Metadata (asked over the wire
/// with the kafka-protocol codec: librdkafka does not expose it).
fn controller_of(bootstrap: &str) -> Option<i32> {
    use bytes::{Buf, BytesMut};
    use kafka_protocol::{
        messages::{ApiKey, MetadataRequest, MetadataResponse, RequestHeader},
        protocol::{Decodable, Encodable, StrBytes},
    };
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(bootstrap).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let version = 12;
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Metadata as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("cluster-test")));
    let mut body = BytesMut::new();
    header.encode(&mut body, 2).ok()?;
    MetadataRequest::default()
        .with_topics(Some(Vec::new()))
        .encode(&mut body, version)
        .ok()?;
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    stream.write_all(&frame).ok()?;
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).ok()?;
    let mut response = vec![0u8; u32::from_be_bytes(length) as usize];
    stream.read_exact(&mut response).ok()?;
    let mut bytes = bytes::Bytes::from(response);
    bytes.advance(4); // correlation id
    let _tagged = bytes.get_u8(); // v9+ response header: no tagged fields
    let response = MetadataResponse::decode(&mut bytes, version).ok()?;
    Some(response.controller_id.0)
}

#[test]
fn three_nodes_are_one_cluster_for_kafka_clients() {
    let mut cluster = LocalCluster::start(3);
    let bootstrap = cluster.kafka_addr(0);

    // Every node registers; every node says so.
    wait_for(
        || {
            (0..3).all(|node| {
                metadata(&cluster.kafka_addr(node), None)
                    .is_some_and(|seen| seen.brokers == BTreeSet::from([0, 1, 2]))
            })
        },
        "every node lists three brokers",
    );

    // DescribeQuorum asked of any node gives every voter's log end offset:
    // the followers ask the leader, as Kafka's brokers forward it.
    wait_for(
        || {
            (0..3).all(|node| {
                quorum_log_ends(&cluster.kafka_addr(node))
                    .iter()
                    .all(|end| *end >= 0)
            })
        },
        "every node knows how far every voter holds the metadata log",
    );

    // A topic of 12 partitions, created through node 0 only, is led by
    // all three nodes, and every node says the same.
    create_topic(&bootstrap, "spread", 12, 1, &[]).unwrap();
    wait_for(
        || {
            (0..3).all(|node| {
                metadata(&cluster.kafka_addr(node), Some("spread"))
                    .is_some_and(|seen| seen.partitions.len() == 12)
            })
        },
        "every node knows the topic",
    );
    let seen: Vec<Vec<i32>> = (0..3)
        .map(|node| {
            metadata(&cluster.kafka_addr(node), Some("spread"))
                .unwrap()
                .leaders()
        })
        .collect();
    assert!(seen.iter().all(|leaders| *leaders == seen[0]), "{seen:?}");
    let leaders: BTreeSet<i32> = seen[0].iter().copied().collect();
    assert_eq!(leaders, BTreeSet::from([0, 1, 2]), "{:?}", seen[0]);
    // The native Metadata of every node says the same, with each node's
    // native address.
    for node in 0..3 {
        use sluice_net::native::{
            blocking::Connection,
            messages::{ApiKey, MetadataRequest, MetadataResponse},
        };
        let mut connection =
            Connection::open(&cluster.native_addr(node), Duration::from_secs(5)).unwrap();
        let native: MetadataResponse = connection
            .call(
                ApiKey::Metadata,
                &MetadataRequest {
                    topics: Some(vec!["spread".into()]),
                },
            )
            .unwrap();
        let leaders: Vec<i32> = native.topics[0]
            .partitions
            .iter()
            .map(|partition| partition.leader as i32)
            .collect();
        assert_eq!(leaders, seen[0], "node {node}'s native metadata");
        let brokers: Vec<(u32, String)> = native
            .brokers
            .iter()
            .map(|broker| (broker.id, format!("{}:{}", broker.host, broker.port)))
            .collect();
        let expected: Vec<(u32, String)> = (0..3).map(|n| (n, cluster.native_addr(n))).collect();
        assert_eq!(brokers, expected, "node {node}'s native metadata");
    }

    // librdkafka, bootstrapped from node 0 only, produces to every
    // partition and reads every record back.
    let producer: BaseProducer = client(&bootstrap)
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap();
    let mut sent = BTreeMap::new();
    for index in 0..240u32 {
        let partition = (index % 12) as i32;
        let value = format!("value-{index}");
        producer
            .send(
                BaseRecord::<(), _>::to("spread")
                    .partition(partition)
                    .payload(&value),
            )
            .unwrap();
        sent.insert(value, partition);
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    assert_eq!(producer.in_flight_count(), 0);
    let consumer: BaseConsumer = client(&bootstrap)
        .set("group.id", "cluster-readers")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for partition in 0..12 {
        assignment
            .add_partition_offset("spread", partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut read = BTreeMap::new();
    let deadline = Instant::now() + WAIT;
    while read.len() < sent.len() && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            let value = String::from_utf8(message.payload().unwrap().to_vec()).unwrap();
            read.insert(value, message.partition());
        }
    }
    assert_eq!(read, sent, "every record, from its partition");

    // Consumer groups: the group's coordinator is one of the nodes, and
    // a subscribed consumer reads everything.
    let group: BaseConsumer = client(&bootstrap)
        .set("group.id", "cluster-group")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    group.subscribe(&["spread"]).unwrap();
    let mut in_group = 0;
    let deadline = Instant::now() + WAIT;
    while in_group < sent.len() && Instant::now() < deadline {
        if let Some(Ok(_)) = group.poll(Duration::from_millis(200)) {
            in_group += 1;
        }
    }
    assert_eq!(in_group, sent.len(), "the group reads every record");
    drop(group);
    drop(consumer);

    // kafka-python, bootstrapped from node 1 only: creates a topic,
    // produces 10,000 records, reads them back by assignment, describes.
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kafka_clients/kafka_python_client.py");
    let output = Command::new("python3")
        .arg(&script)
        .args([&cluster.kafka_addr(1), "python-spread", "12"])
        .current_dir(script.parent().unwrap())
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "kafka-python against the cluster:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let leaders: BTreeSet<i32> = metadata(&bootstrap, Some("python-spread"))
        .unwrap()
        .leaders()
        .into_iter()
        .collect();
    assert_eq!(leaders, BTreeSet::from([0, 1, 2]));

    // Replicas assigned by the client are where it put them; a node that
    // is no broker is refused.
    let admin: AdminClient<DefaultClientContext> = client(&bootstrap).create().unwrap();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let placed = NewTopic::new("placed", 3, TopicReplication::Variable(&[&[2], &[2], &[1]]));
    let nowhere = NewTopic::new("nowhere", 1, TopicReplication::Variable(&[&[7]]));
    let results =
        futures_lite::future::block_on(admin.create_topics([&placed, &nowhere], &options)).unwrap();
    assert!(results[0].is_ok(), "{results:?}");
    assert!(
        matches!(&results[1], Err((_, code)) if *code == rdkafka::types::RDKafkaErrorCode::InvalidReplicaAssignment),
        "{results:?}"
    );
    wait_for(
        || {
            metadata(&cluster.kafka_addr(2), Some("placed"))
                .is_some_and(|seen| seen.leaders() == [2, 2, 1])
        },
        "the assigned leaders",
    );

    // kill -9 of the controller leader: another voter takes over and a
    // topic create through a surviving node succeeds.
    let controller = controller_of(&bootstrap).expect("a controller");
    assert!((0..3).contains(&controller), "{controller}");
    let survivor = (controller as u32 + 1) % 3;
    cluster.signal(controller as u32, libc::SIGKILL);
    let killed_at = Instant::now();
    // Through the native CLI: librdkafka would first wait out its request
    // to the dead controller, which measures librdkafka.
    let survivor_native = cluster.native_addr(survivor);
    wait_for(
        || {
            Command::new(SLUICE)
                .args([
                    "topic",
                    "create",
                    "after-failover",
                    "--partitions",
                    "3",
                    "--brokers",
                ])
                .arg(&survivor_native)
                .output()
                .is_ok_and(|output| output.status.success())
        },
        "a topic is created after the leader's kill",
    );
    let failover = killed_at.elapsed();
    eprintln!("controller failover: kill -9 to the next topic created in {failover:?}");
    let new_controller = controller_of(&cluster.kafka_addr(survivor)).unwrap();
    assert_ne!(new_controller, controller);

    // The old leader, started again, catches up.
    cluster.restart(controller as u32, &[]);
    let old = cluster.kafka_addr(controller as u32);
    wait_for(
        || metadata(&old, Some("after-failover")).is_some_and(|seen| seen.partitions.len() == 3),
        "the restarted node knows the topic created while it was down",
    );

    // A broker paused past its lease is fenced; resumed, it comes back.
    let paused = (new_controller as u32 + 1) % 3;
    let watcher = cluster.kafka_addr(new_controller as u32);
    cluster.signal(paused, libc::SIGSTOP);
    wait_for(
        || metadata(&watcher, None).is_some_and(|seen| !seen.brokers.contains(&(paused as i32))),
        "the paused broker is fenced",
    );
    cluster.signal(paused, libc::SIGCONT);
    wait_for(
        || metadata(&watcher, None).is_some_and(|seen| seen.brokers.len() == 3),
        "the resumed broker is back",
    );

    // A voter that lost its data directory rejoins empty, is caught up,
    // and then counts towards a majority: with another voter down, the
    // quorum still takes changes.
    let wiped = paused;
    cluster.kill9(wiped);
    std::fs::remove_dir_all(cluster.node_dir(wiped).join("data")).unwrap();
    cluster.restart(wiped, &["--rejoin"]);
    let wiped_kafka = cluster.kafka_addr(wiped);
    wait_for(
        || {
            metadata(&wiped_kafka, Some("after-failover"))
                .is_some_and(|seen| seen.partitions.len() == 3)
        },
        "the wiped voter caught up",
    );
    let other = (0..3)
        .find(|node| *node != wiped && *node as i32 != new_controller)
        .unwrap();
    cluster.signal(other, libc::SIGKILL);
    let wiped_native = cluster.native_addr(wiped);
    wait_for(
        || {
            Command::new(SLUICE)
                .args([
                    "topic",
                    "create",
                    "with-the-wiped",
                    "--partitions",
                    "1",
                    "--brokers",
                ])
                .arg(&wiped_native)
                .output()
                .is_ok_and(|output| output.status.success())
        },
        "a change is committed by the leader and the rejoined voter",
    );
}

/// Produces `per_partition` records to each of `partitions` partitions of
/// `topic` through `bootstrap` (librdkafka, idempotent), and returns them
/// by value with their partition.
fn produce(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    per_partition: u32,
) -> BTreeMap<String, i32> {
    let producer: BaseProducer = client(bootstrap)
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap();
    let mut sent = BTreeMap::new();
    for index in 0..per_partition * partitions as u32 {
        let partition = (index % partitions as u32) as i32;
        let value = format!("{topic}-{index}");
        producer
            .send(
                BaseRecord::<(), _>::to(topic)
                    .partition(partition)
                    .payload(&value),
            )
            .unwrap();
        sent.insert(value, partition);
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    assert_eq!(producer.in_flight_count(), 0);
    sent
}

/// Every record of `partitions` partitions of `topic`, read from the
/// beginning through `bootstrap` until `expected` many are read or the
/// wait runs out.
fn read_all(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
) -> BTreeMap<String, i32> {
    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", format!("{topic}-readers"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut read = BTreeMap::new();
    let deadline = Instant::now() + WAIT;
    while read.len() < expected && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            let value = String::from_utf8(message.payload().unwrap().to_vec()).unwrap();
            read.insert(value, message.partition());
        }
    }
    read
}

/// The voters' log end offsets DescribeQuorum (v1) at `addr` answers
/// (-1 where unknown); empty when it names no leader.
fn quorum_log_ends(addr: &str) -> Vec<i64> {
    use kafka_protocol::messages::{
        describe_quorum_request::{PartitionData, TopicData},
        ApiKey, DescribeQuorumRequest, DescribeQuorumResponse, TopicName,
    };
    let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(
            kafka_protocol::protocol::StrBytes::from_static_str("__cluster_metadata"),
        ))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    let answer: DescribeQuorumResponse = kafka_call(addr, ApiKey::DescribeQuorum, 1, &request);
    let partition = &answer.topics[0].partitions[0];
    if partition.error_code != 0 || partition.current_voters.len() != 3 {
        return vec![-1];
    }
    partition
        .current_voters
        .iter()
        .map(|voter| voter.log_end_offset)
        .collect()
}

/// Each partition of `topic` as Kafka's Metadata (v12) at `addr` gives it:
/// (leader, leader epoch, in-sync replicas), in partition order.
fn partition_states(addr: &str, topic: &str) -> Vec<(i32, i32, Vec<i32>)> {
    use kafka_protocol::messages::{
        metadata_request::MetadataRequestTopic, ApiKey, MetadataRequest, MetadataResponse,
        TopicName,
    };
    let request =
        MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
            .with_name(Some(TopicName(
                kafka_protocol::protocol::StrBytes::from_string(topic.to_string()),
            )))]));
    let answer: MetadataResponse = kafka_call(addr, ApiKey::Metadata, 12, &request);
    let mut partitions = answer.topics[0].partitions.clone();
    partitions.sort_by_key(|p| p.partition_index);
    partitions
        .iter()
        .map(|p| {
            (
                p.leader_id.0,
                p.leader_epoch,
                p.isr_nodes.iter().map(|node| node.0).collect(),
            )
        })
        .collect()
}

/// KIP-951: a Produce (v11) and a Fetch (v12) of `topic`'s `partition`,
/// sent to `addr`, a node that does not lead it, are answered
/// NOT_LEADER_OR_FOLLOWER with the leader, `leader`, and (Produce) its
/// endpoint, `leader_addr`.
fn assert_names_the_leader(
    addr: &str,
    topic: &str,
    partition: i32,
    leader: i32,
    leader_addr: &str,
) {
    use kafka_protocol::messages::{
        fetch_request::{FetchPartition, FetchTopic},
        produce_request::{PartitionProduceData, TopicProduceData},
        ApiKey, BrokerId, FetchRequest, FetchResponse, ProduceRequest, ProduceResponse, TopicName,
    };
    const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    let name = TopicName(kafka_protocol::protocol::StrBytes::from_string(
        topic.to_string(),
    ));
    // One batch of the right length: the partition is routed before its
    // owner reads the batch.
    let mut batch = vec![0u8; 8];
    batch.extend_from_slice(&49i32.to_be_bytes());
    batch.resize(61, 0);
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name.clone())
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch.into()))])]);
    let answer: ProduceResponse = kafka_call(addr, ApiKey::Produce, 11, &produce);
    let part = &answer.responses[0].partition_responses[0];
    assert_eq!(part.error_code, NOT_LEADER_OR_FOLLOWER);
    assert_eq!(part.current_leader.leader_id, BrokerId(leader));
    let endpoint = answer
        .node_endpoints
        .iter()
        .find(|endpoint| endpoint.node_id == BrokerId(leader))
        .expect("the leader's endpoint");
    assert_eq!(format!("{}:{}", endpoint.host, endpoint.port), leader_addr);

    let fetch = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name)
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_partition_max_bytes(1 << 20)])]);
    let answer: FetchResponse = kafka_call(addr, ApiKey::Fetch, 12, &fetch);
    let part = &answer.responses[0].partitions[0];
    assert_eq!(part.error_code, NOT_LEADER_OR_FOLLOWER);
    assert_eq!(part.current_leader.leader_id, BrokerId(leader));
}

#[test]
fn a_broker_that_is_not_a_voter_follows_the_quorum_and_holds_partitions() {
    // Four nodes: 0 to 2 are the voters, node 3 a broker only.
    let mut cluster = LocalCluster::start(4);
    let broker = cluster.kafka_addr(3);
    wait_for(
        || {
            (0..4).all(|node| {
                metadata(&cluster.kafka_addr(node), None)
                    .is_some_and(|seen| seen.brokers == BTreeSet::from([0, 1, 2, 3]))
            })
        },
        "every node lists four brokers",
    );

    // A topic created through the broker (its change forwarded to the
    // leader) is placed on all four, and every node says the same.
    create_topic(&broker, "observed", 8, 1, &[]).unwrap();
    wait_for(
        || {
            (0..4).all(|node| {
                metadata(&cluster.kafka_addr(node), Some("observed"))
                    .is_some_and(|seen| seen.partitions.len() == 8)
            })
        },
        "every node knows the topic",
    );
    let seen: Vec<Vec<i32>> = (0..4)
        .map(|node| {
            metadata(&cluster.kafka_addr(node), Some("observed"))
                .unwrap()
                .leaders()
        })
        .collect();
    assert!(seen.iter().all(|leaders| *leaders == seen[0]), "{seen:?}");
    assert_eq!(
        seen[0].iter().copied().collect::<BTreeSet<i32>>(),
        BTreeSet::from([0, 1, 2, 3]),
        "{:?}",
        seen[0]
    );
    let sent = produce(&cluster.kafka_addr(0), "observed", 8, 20);
    assert_eq!(read_all(&broker, "observed", 8, sent.len()), sent);

    // A produce or fetch sent to the wrong node names the leader.
    let (partition, leader) = seen[0]
        .iter()
        .enumerate()
        .find(|(_, leader)| **leader != 3)
        .map(|(partition, leader)| (partition as i32, *leader))
        .unwrap();
    assert_names_the_leader(
        &broker,
        "observed",
        partition,
        leader,
        &cluster.kafka_addr(leader as u32),
    );

    // A change of replication factor the request does not allow is
    // refused (moves themselves: tools/tests/reassignment.rs).
    {
        use kafka_protocol::messages::{
            alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic},
            AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ApiKey,
            BrokerId, TopicName,
        };
        let other = (leader + 1) % 4;
        let ask = |replicas: &[i32], allow: bool| {
            AlterPartitionReassignmentsRequest::default()
                .with_timeout_ms(10_000)
                .with_allow_replication_factor_change(allow)
                .with_topics(vec![ReassignableTopic::default()
                    .with_name(TopicName(
                        kafka_protocol::protocol::StrBytes::from_static_str("observed"),
                    ))
                    .with_partitions(vec![ReassignablePartition::default()
                        .with_partition_index(partition)
                        .with_replicas(Some(
                            replicas.iter().map(|n| BrokerId(*n)).collect(),
                        ))])])
        };
        let answer: AlterPartitionReassignmentsResponse = kafka_call(
            &broker,
            ApiKey::AlterPartitionReassignments,
            1,
            &ask(&[leader, other], false),
        );
        assert_eq!(
            answer.responses[0].partitions[0].error_code, 38,
            "INVALID_REPLICATION_FACTOR"
        );
    }

    // kill -9 of the broker: fenced; a topic made while it is down is
    // placed on the others; started again from its own copy of the
    // metadata, it learns of that topic, serves its partitions with every
    // record, and is a live broker again.
    let watcher = cluster.kafka_addr(0);
    let before = partition_states(&watcher, "observed");
    let led_by_3: Vec<usize> = (0..before.len()).filter(|p| before[*p].0 == 3).collect();
    assert!(!led_by_3.is_empty(), "{before:?}");
    for (leader, epoch, in_sync) in &before {
        assert_eq!(
            (*epoch, in_sync.as_slice()),
            (0, [*leader].as_slice()),
            "{before:?}"
        );
    }
    cluster.signal(3, libc::SIGKILL);
    wait_for(
        || metadata(&watcher, None).is_some_and(|seen| seen.brokers == BTreeSet::from([0, 1, 2])),
        "the killed broker is fenced",
    );
    // Its partitions have no leader, and nobody in sync; the others are
    // untouched. `cluster describe` counts them offline.
    let described = Command::new(SLUICE)
        .args(["cluster", "describe", "--format", "json", "--brokers"])
        .arg(cluster.native_addr(0))
        .output()
        .unwrap();
    assert!(described.status.success(), "{described:?}");
    let described: serde_json::Value = serde_json::from_slice(&described.stdout).unwrap();
    // (Besides `observed`, an internal topic may have partitions there.)
    let offline = described["partitions"]["offline"].as_u64().unwrap();
    assert!(offline >= led_by_3.len() as u64, "{described}");
    let fenced = partition_states(&watcher, "observed");
    for (partition, state) in fenced.iter().enumerate() {
        if led_by_3.contains(&partition) {
            assert_eq!(*state, (-1, 0, Vec::new()), "partition {partition}");
        } else {
            assert_eq!(*state, before[partition], "partition {partition}");
        }
    }
    create_topic(&watcher, "while-down", 3, 1, &[]).unwrap();
    assert!(cluster
        .node_dir(3)
        .join("data/metadata/observed-image")
        .exists());
    cluster.restart(3, &[]);
    wait_for(
        || {
            metadata(&broker, Some("while-down")).is_some_and(|seen| {
                seen.partitions.len() == 3 && seen.brokers == BTreeSet::from([0, 1, 2, 3])
            })
        },
        "the restarted broker knows the topic made while it was down, and is live",
    );
    assert!(
        !metadata(&broker, Some("while-down"))
            .unwrap()
            .leaders()
            .contains(&3),
        "nothing is placed on a fenced broker"
    );
    assert_eq!(read_all(&broker, "observed", 8, sent.len()), sent);
    // Its partitions are its again, each in a new leader epoch, and every
    // node says so.
    let expected: Vec<(i32, i32, Vec<i32>)> = (0..before.len())
        .map(|partition| match led_by_3.contains(&partition) {
            true => (3, 1, vec![3]),
            false => before[partition].clone(),
        })
        .collect();
    wait_for(
        || (0..4).all(|node| partition_states(&cluster.kafka_addr(node), "observed") == expected),
        "every node has the restarted broker lead its partitions in epoch 1",
    );
    // KIP-320: a Fetch or ListOffsets naming an older leader epoch is
    // fenced, a newer one unknown, the current one served.
    let partition = led_by_3[0] as i32;
    for (epoch, code) in [(0, 74), (2, 75), (1, 0), (-1, 0)] {
        assert_eq!(
            in_epoch(&broker, "observed", partition, epoch),
            (code, code),
            "epoch {epoch}"
        );
    }
    // Records written now carry epoch 1; epoch 0 ends where they start.
    let producer: BaseProducer = client(&watcher)
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    for index in 0..10 {
        let value = format!("after-{index}");
        producer
            .send(
                BaseRecord::<(), _>::to("observed")
                    .partition(partition)
                    .payload(&value),
            )
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    assert_eq!(
        listed(&broker, "observed", partition, -2),
        (0, 0),
        "earliest"
    );
    assert_eq!(
        listed(&broker, "observed", partition, -1),
        (30, 1),
        "latest"
    );
    assert_eq!(epoch_end(&broker, "observed", partition, 0), (0, 20));
    assert_eq!(epoch_end(&broker, "observed", partition, 1), (1, 30));
    assert_eq!(epoch_end(&broker, "observed", partition, 2), (-1, -1));
    let read = read_all(&broker, "observed", 8, sent.len() + 10);
    assert_eq!(read.len(), sent.len() + 10);
    assert!((0..10).all(|index| read.get(&format!("after-{index}")) == Some(&partition)));
}

/// The offset and leader epoch ListOffsets (v7) at `addr` answers for
/// `timestamp` (-1 latest, -2 earliest) of `topic`'s `partition`.
fn listed(addr: &str, topic: &str, partition: i32, timestamp: i64) -> (i64, i32) {
    use kafka_protocol::messages::{
        list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
        ApiKey, BrokerId, ListOffsetsRequest, ListOffsetsResponse, TopicName,
    };
    let list = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(kafka_protocol::protocol::StrBytes::from_string(
                topic.to_string(),
            )))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_current_leader_epoch(-1)
                .with_timestamp(timestamp)])]);
    let answer: ListOffsetsResponse = kafka_call(addr, ApiKey::ListOffsets, 7, &list);
    let part = &answer.topics[0].partitions[0];
    assert_eq!(part.error_code, 0, "{part:?}");
    (part.offset, part.leader_epoch)
}

/// Where OffsetForLeaderEpoch (v4) at `addr` says `epoch` of `topic`'s
/// `partition` ends: (the epoch answered, its end offset).
fn epoch_end(addr: &str, topic: &str, partition: i32, epoch: i32) -> (i32, i64) {
    use kafka_protocol::messages::{
        offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic},
        ApiKey, BrokerId, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, TopicName,
    };
    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![OffsetForLeaderTopic::default()
            .with_topic(TopicName(kafka_protocol::protocol::StrBytes::from_string(
                topic.to_string(),
            )))
            .with_partitions(vec![OffsetForLeaderPartition::default()
                .with_partition(partition)
                .with_current_leader_epoch(1)
                .with_leader_epoch(epoch)])]);
    let answer: OffsetForLeaderEpochResponse =
        kafka_call(addr, ApiKey::OffsetForLeaderEpoch, 4, &request);
    let part = &answer.topics[0].partitions[0];
    assert_eq!(part.error_code, 0, "{part:?}");
    (part.leader_epoch, part.end_offset)
}

/// The error codes of a Fetch (v12) and a ListOffsets (v7) of `topic`'s
/// `partition` at `addr` naming `epoch` as the current leader epoch.
fn in_epoch(addr: &str, topic: &str, partition: i32, epoch: i32) -> (i16, i16) {
    use kafka_protocol::messages::{
        fetch_request::{FetchPartition, FetchTopic},
        list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
        ApiKey, BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
        TopicName,
    };
    let name = TopicName(kafka_protocol::protocol::StrBytes::from_string(
        topic.to_string(),
    ));
    let fetch = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name.clone())
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_current_leader_epoch(epoch)
                .with_partition_max_bytes(1 << 20)])]);
    let fetched: FetchResponse = kafka_call(addr, ApiKey::Fetch, 12, &fetch);
    let list = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(name)
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_current_leader_epoch(epoch)
                .with_timestamp(-1)])]);
    let listed: ListOffsetsResponse = kafka_call(addr, ApiKey::ListOffsets, 7, &list);
    (
        fetched.responses[0].partitions[0].error_code,
        listed.topics[0].partitions[0].error_code,
    )
}

/// A topic create through the native CLI at `native_addr`: its exit
/// status and what it printed.
fn cli_create(native_addr: &str, topic: &str) -> (bool, String) {
    let output = Command::new(SLUICE)
        .args([
            "topic",
            "create",
            topic,
            "--partitions",
            "2",
            "--brokers",
            native_addr,
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn five_voters_work_with_two_down_and_refuse_changes_with_three_down() {
    let mut cluster = LocalCluster::start(5);
    for node in 0..5 {
        wait_for(
            || cli_create(&cluster.native_addr(node), &format!("before-{node}")).0,
            "a create through every node",
        );
    }
    cluster.signal(3, libc::SIGKILL);
    cluster.signal(4, libc::SIGKILL);
    wait_for(
        || cli_create(&cluster.native_addr(0), "two-down").0,
        "a create with two voters down",
    );

    cluster.signal(2, libc::SIGKILL);
    let (created, text) = cli_create(&cluster.native_addr(0), "three-down");
    assert!(!created, "a change committed without a majority: {text}");
    assert!(
        text.contains("no controller leader") || text.contains("not committed"),
        "{text}"
    );

    // Back: nothing committed is lost, and changes are taken again.
    for node in [2, 3, 4] {
        cluster.restart(node, &[]);
    }
    wait_for(
        || cli_create(&cluster.native_addr(4), "all-back").0,
        "a create once they are back",
    );
    let names = |node: u32| -> BTreeSet<String> {
        let listed = Command::new(SLUICE)
            .args(["topic", "list", "--format", "json", "--brokers"])
            .arg(cluster.native_addr(node))
            .output()
            .unwrap();
        let listed: serde_json::Value =
            serde_json::from_slice(&listed.stdout).unwrap_or(serde_json::Value::Null);
        listed
            .as_array()
            .map(|topics| {
                topics
                    .iter()
                    .filter_map(|topic| topic["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let committed = [
        "before-0", "before-1", "before-2", "before-3", "before-4", "two-down", "all-back",
    ];
    for node in 0..5 {
        wait_for(
            || {
                let names = names(node);
                committed.iter().all(|name| names.contains(*name))
            },
            "every node lists every committed topic",
        );
    }
    // "three-down" may be there or not: it timed out, uncommitted, in the
    // log of a leader that may lead again and commit it.
}

/// A connection to a node's peer port that says hello as `from` to `to`
/// in cluster `cluster_id`; the status byte the node answers.
fn peer_hello(addr: &str, cluster_id: &str, from: i32, to: i32) -> (std::net::TcpStream, u8) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut hello = b"SLPR".to_vec();
    hello.push(1);
    hello.extend_from_slice(cluster_id.as_bytes());
    hello.extend_from_slice(&from.to_le_bytes());
    hello.extend_from_slice(&to.to_le_bytes());
    stream.write_all(&hello).unwrap();
    let mut status = [0u8; 1];
    stream.read_exact(&mut status).unwrap();
    (stream, status[0])
}

fn peer_frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut frame = ((body.len() + 1) as u32).to_le_bytes().to_vec();
    frame.push(kind);
    frame.extend_from_slice(body);
    frame
}

#[test]
fn bad_input_on_the_peer_port_changes_nothing() {
    use sluice_replication::quorum::{encode_message, eraftpb, Envelope};
    use std::io::Write;
    let cluster = LocalCluster::start(3);
    let cluster_id = cluster.value("cluster_id").to_string();
    let peer = cluster.value("node.0.peer_addr").to_string();
    let native = cluster.native_addr(0);
    wait_for(|| cli_create(&native, "before").0, "a create");

    // Random bytes instead of a hello.
    let mut stream = std::net::TcpStream::connect(&peer).unwrap();
    let mut rng = common::seeded_rng("bad_input_on_the_peer_port_changes_nothing");
    let garbage: Vec<u8> = (0..4096)
        .map(|_| rand::Rng::random::<u8>(&mut rng))
        .collect();
    let _ = stream.write_all(&garbage);
    drop(stream);
    // Another cluster's hello, and a hello for another node: refused.
    let (_, status) = peer_hello(&peer, "AAAAAAAAAAAAAAAAAAAAAA", 1, 0);
    assert_ne!(status, 0, "another cluster's hello is refused");
    let (_, status) = peer_hello(&peer, &cluster_id, 1, 2);
    assert_ne!(status, 0, "a hello for another node is refused");
    // Accepted hellos, then frames that mean nothing: garbage as a quorum
    // message, an unknown controller request, a proposal in another
    // node's name, a quorum message of a stale term, another cluster's
    // quorum message, and a frame longer than any.
    let (mut stream, status) = peer_hello(&peer, &cluster_id, 1, 0);
    assert_eq!(status, 0);
    let mut stale = eraftpb::Message::default();
    stale.set_msg_type(eraftpb::MessageType::MsgAppend);
    stale.from = 2; // node 1 on raft's ids
    stale.to = 1; // node 0
    stale.term = 1;
    stale.index = 1;
    stale.log_term = 1;
    stale.commit = 1;
    let envelope = |cluster: u64| Envelope {
        cluster_id: cluster,
        from_disk: 77,
        to_disk: 0,
    };
    let wire_cluster = sluice_engine::controller::open::wire_cluster_id(&cluster_id);
    let mut bad = Vec::new();
    bad.extend(peer_frame(1, &garbage[..100]));
    bad.extend(peer_frame(2, &[99, 1, 2, 3]));
    bad.extend(peer_frame(2, &[1, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]));
    bad.extend(peer_frame(
        1,
        &encode_message(envelope(wire_cluster), &stale),
    ));
    bad.extend(peer_frame(
        1,
        &encode_message(envelope(wire_cluster ^ 1), &stale),
    ));
    bad.extend(u32::MAX.to_le_bytes());
    let _ = stream.write_all(&bad);
    drop(stream);

    // Nothing changed, and the cluster works: every node serves and takes
    // changes, and node 0 kept every topic.
    for node in 0..3 {
        wait_for(
            || cli_create(&cluster.native_addr(node), &format!("after-{node}")).0,
            "a create through every node after the bad input",
        );
    }
    let listed = Command::new(SLUICE)
        .args(["topic", "list", "--brokers", &native])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    for name in ["before", "after-0", "after-1", "after-2"] {
        assert!(listed.contains(name), "{name} in {listed}");
    }
    let log = std::fs::read_to_string(cluster.node_dir(0).join("log")).unwrap();
    assert!(log.contains("refused"), "the refusals are logged:\n{log}");
}
