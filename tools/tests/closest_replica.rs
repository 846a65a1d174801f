//! Fetching from the closest replica (KIP-392) on three real nodes, one
//! rack each, whose brokers select replicas by rack
//! (`replica_selector = org.apache.kafka.common.replica.RackAwareReplicaSelector`),
//! through librdkafka: a consumer without `client.rack` reads every record
//! from the leader; one whose `client.rack` is a follower's reads every
//! record from that follower, which the nodes' read counters on
//! `/metrics` show (the leader named it and served no records itself),
//! and, waiting at the end there, the records written next. Under
//! Kafka's default selector the leader serves every consumer.

mod common;
mod kafka_common;

use std::{collections::BTreeSet, time::Duration};

use common::cluster::{
    create_topic, kafka_call, metadata, wait_until, LocalCluster, Metrics, PartitionSeen,
};
use kafka_common::{consumer_for, produce_ok, producer_for, read_to_end, KafkaProducer, Record};
use rdkafka::{
    consumer::Consumer, error::KafkaError, message::Message, Offset, TopicPartitionList,
};

const TOPIC: &str = "near";
const NODES: u32 = 3;
const RECORDS: usize = 500;
/// Records written while a consumer waits at the end on the follower.
const MORE: usize = 100;

fn rack(node: u32) -> String {
    format!("rack-{node}")
}

/// The counters of who served reads, on node `node`: (records read as
/// leader, as follower, consumers sent to a closer replica).
fn reads(cluster: &LocalCluster, node: u32) -> (f64, f64, f64) {
    let metrics: Metrics = cluster.metrics(node).unwrap();
    let reads = |replica: &str| {
        metrics
            .get(
                "sluice_fetch_partition_reads_total",
                &[("replica", replica)],
            )
            .unwrap()
    };
    let sent = metrics
        .get("sluice_fetch_sent_to_closer_replica_total", &[])
        .unwrap();
    (reads("leader"), reads("follower"), sent)
}

/// A cluster of [`NODES`] nodes, node N in rack `rack-N`, started with
/// `env`, and [`TOPIC`] (one partition of three replicas, every one in
/// sync) holding `v0` to `v499`, which every follower shows readers.
struct Setup {
    cluster: LocalCluster,
    leader: u32,
    /// The first follower in node order, whose rack the consumer names.
    follower: u32,
    other: u32,
    producer: KafkaProducer,
    values: Vec<String>,
}

fn setup(env: &[(&str, &str)]) -> Setup {
    let racks = (0..NODES).map(rack).collect::<Vec<_>>().join(",");
    let cluster = LocalCluster::start_with_args(NODES, env, &["--racks", &racks]);
    let all: BTreeSet<i32> = (0..NODES as i32).collect();
    cluster.wait_for_brokers(NODES);
    create_topic(
        &cluster.kafka_bootstrap(),
        TOPIC,
        1,
        3,
        &[("min.insync.replicas", "2")],
    )
    .unwrap();
    let seen = wait_until(
        || match partition(&cluster) {
            Ok(seen) if seen.in_sync == all && seen.leader >= 0 => Ok(seen),
            Ok(seen) => Err(format!("{seen:?}")),
            Err(error) => Err(error),
        },
        "every replica of the new partition is in sync",
    );
    let leader = seen.leader as u32;
    let follower = (0..NODES).find(|node| *node != leader).unwrap();
    let other = (0..NODES)
        .find(|node| *node != leader && *node != follower)
        .unwrap();

    let producer = producer_for(&cluster.kafka_bootstrap(), &[("acks", "all")]);
    let values: Vec<String> = (0..RECORDS).map(|index| format!("v{index}")).collect();
    let records: Vec<Record> = values
        .iter()
        .map(|value| Record::new(None, Some(value.as_bytes())))
        .collect();
    produce_ok(&producer, TOPIC, Some(0), &records);
    // The follower shows readers what its leader pushed as committed: all
    // of it, so that a reader there sees the same end as at the leader.
    for node in [follower, other] {
        wait_until(
            || {
                let end = cluster.metrics(node)?.get(
                    "sluice_partition_log_end_offset",
                    &[("topic", TOPIC), ("partition", "0")],
                )?;
                match end == RECORDS as f64 {
                    true => Ok(()),
                    false => Err(format!("high watermark {end}")),
                }
            },
            &format!("follower {node} has the leader's high watermark"),
        );
    }

    Setup {
        cluster,
        leader,
        follower,
        other,
        producer,
        values,
    }
}

/// Reads partition 0 of [`TOPIC`] from its beginning to its end with a
/// consumer of `settings`: the values.
fn read_all(cluster: &LocalCluster, settings: &[(&str, &str)]) -> Vec<String> {
    let consumer = consumer_for(&cluster.kafka_bootstrap(), settings);
    read_to_end(&consumer, TOPIC, &[(0, Offset::Beginning)])[&0]
        .iter()
        .map(|consumed| {
            String::from_utf8_lossy(consumed.record.value.as_deref().unwrap_or_default())
                .into_owned()
        })
        .collect()
}

#[test]
fn a_consumer_reads_from_the_follower_in_its_rack() {
    let Setup {
        cluster,
        leader,
        follower,
        other,
        producer,
        values,
    } = setup(&[(
        "SLUICE_REPLICA_SELECTOR",
        "org.apache.kafka.common.replica.RackAwareReplicaSelector",
    )]);
    // Without a rack: the leader serves it.
    let before = [leader, follower, other].map(|node| reads(&cluster, node));
    assert_eq!(read_all(&cluster, &[]), values, "read without client.rack");
    let after = [leader, follower, other].map(|node| reads(&cluster, node));
    assert!(
        after[0].0 > before[0].0,
        "the leader served the reads: {before:?} -> {after:?}"
    );
    assert_eq!(after[0].2, before[0].2, "no consumer sent elsewhere");
    for index in [1, 2] {
        assert_eq!(
            after[index], before[index],
            "no follower served: {before:?} -> {after:?}"
        );
    }

    // In the follower's rack: the leader names it, and it serves.
    let before = after;
    let client_rack = rack(follower);
    assert_eq!(
        read_all(&cluster, &[("client.rack", &client_rack)]),
        values,
        "read with client.rack={client_rack}"
    );
    let after = [leader, follower, other].map(|node| reads(&cluster, node));
    eprintln!(
        "leader {leader}, follower {follower} ({client_rack}), other {other}: (reads as leader, as follower, sent elsewhere) {before:?} -> {after:?}"
    );
    assert!(
        after[0].2 > before[0].2,
        "the leader named a closer replica"
    );
    assert_eq!(after[0].0, before[0].0, "the leader served no records");
    assert!(
        after[1].1 > before[1].1,
        "follower {follower} served the reads"
    );
    assert_eq!(
        after[2], before[2],
        "the follower in another rack served nothing"
    );

    // Waiting at the end there: records written now reach it from the
    // follower, as the leader's high watermark reaches the follower.
    let before = after;
    let consumer = consumer_for(&cluster.kafka_bootstrap(), &[("client.rack", &client_rack)]);
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(TOPIC, 0, Offset::Offset(RECORDS as i64))
        .unwrap();
    consumer.assign(&assignment).unwrap();
    wait_until(
        || match reads(&cluster, leader).2 > before[0].2 {
            true => Ok(()),
            false => Err("not yet"),
        },
        "the leader sends the waiting consumer to the follower",
    );
    let more: Vec<String> = (RECORDS..RECORDS + MORE)
        .map(|index| format!("v{index}"))
        .collect();
    let records: Vec<Record> = more
        .iter()
        .map(|value| Record::new(None, Some(value.as_bytes())))
        .collect();
    produce_ok(&producer, TOPIC, Some(0), &records);
    let mut read = Vec::new();
    wait_until(
        || {
            while let Some(message) = consumer.poll(Duration::from_millis(100)) {
                match message {
                    Ok(message) => read.push(
                        String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned(),
                    ),
                    Err(KafkaError::PartitionEOF(_)) => {}
                    Err(error) => return Err(error.to_string()),
                }
            }
            match read.len() >= MORE {
                true => Ok(()),
                false => Err(format!("{} records read", read.len())),
            }
        },
        "the waiting consumer reads the new records",
    );
    assert_eq!(read, more, "the records written while it waited");
    let after = [leader, follower, other].map(|node| reads(&cluster, node));
    eprintln!("waiting at the end: {before:?} -> {after:?}");
    assert_eq!(after[0].0, before[0].0, "the leader served no records");
    assert!(after[1].1 > before[1].1, "follower {follower} served them");
}

/// What a Fetch of partition 0 of [`TOPIC`] at `offset`, of `version`,
/// from a consumer in rack `rack`, sent to node `node`, is answered: (error
/// code, high watermark, preferred read replica, bytes of records).
fn fetch(
    cluster: &LocalCluster,
    node: u32,
    version: i16,
    offset: i64,
    rack: &str,
) -> (i16, i64, i32, usize) {
    use kafka_protocol::{
        messages::{
            fetch_request::{FetchPartition, FetchTopic},
            ApiKey, BrokerId, FetchRequest, FetchResponse, TopicName,
        },
        protocol::StrBytes,
    };
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_rack_id(StrBytes::from_string(rack.to_string()))
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(TOPIC.to_string())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(-1)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])]);
    let answer: FetchResponse =
        kafka_call(&cluster.kafka_addr(node), ApiKey::Fetch, version, &request);
    let part = &answer.responses[0].partitions[0];
    (
        part.error_code,
        part.high_watermark,
        part.preferred_read_replica.0,
        part.records.as_ref().map_or(0, |records| records.len()),
    )
}

/// Kafka's answers, asked directly: a follower serves a consumer's Fetch
/// from v11 (whatever the selector: the leader decides who is sent
/// there), not an older one, and not past what it stored; the leader
/// names the follower in the consumer's rack only under the rack-aware
/// selector.
#[test]
fn a_follower_answers_consumers_as_kafkas_followers_do() {
    const NONE: i16 = 0;
    const OFFSET_OUT_OF_RANGE: i16 = 1;
    const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    let Setup {
        cluster,
        leader,
        follower,
        ..
    } = setup(&[("SLUICE_REPLICA_SELECTOR", "rack-aware")]);
    let high = RECORDS as i64;
    let (error, high_watermark, read_from, bytes) = fetch(&cluster, follower, 12, 0, "");
    assert_eq!((error, high_watermark, read_from), (NONE, high, -1));
    assert!(bytes > 0, "the follower read records");
    let (error, ..) = fetch(&cluster, follower, 10, 0, "");
    assert_eq!(error, NOT_LEADER_OR_FOLLOWER, "Fetch v10 is the leader's");
    let (error, ..) = fetch(&cluster, follower, 12, high + 1_000, "");
    assert_eq!(error, OFFSET_OUT_OF_RANGE, "past what the follower stored");
    assert_eq!(
        fetch(&cluster, follower, 12, high, ""),
        (NONE, high, -1, 0),
        "at the end: nothing yet"
    );

    let (error, _, read_from, bytes) = fetch(&cluster, leader, 12, 0, &rack(follower));
    assert_eq!(
        (error, read_from, bytes),
        (NONE, follower as i32, 0),
        "the leader names the follower in the consumer's rack, and reads nothing"
    );
    let (error, _, read_from, bytes) = fetch(&cluster, leader, 12, 0, &rack(leader));
    assert_eq!(
        (error, read_from),
        (NONE, -1),
        "the leader is in the consumer's rack"
    );
    assert!(bytes > 0);
    let (_, _, read_from, bytes) = fetch(&cluster, leader, 12, 0, "rack-elsewhere");
    assert_eq!(read_from, -1, "no replica in the consumer's rack");
    assert!(bytes > 0);
    let (_, _, read_from, bytes) = fetch(&cluster, leader, 10, 0, &rack(follower));
    assert_eq!(read_from, -1, "before v11 a consumer names no rack");
    assert!(bytes > 0);
}

/// Partition 0 of [`TOPIC`] as node 0's Kafka Metadata gives it.
fn partition(cluster: &LocalCluster) -> Result<PartitionSeen, String> {
    let seen = metadata(&cluster.kafka_addr(0), Some(TOPIC))
        .ok_or_else(|| format!("node 0 does not answer or does not know {TOPIC}"))?;
    seen.partitions
        .into_iter()
        .next()
        .ok_or_else(|| format!("no partition of {TOPIC}"))
}

/// Kafka's default selector: the leader serves a consumer whatever its
/// rack.
#[test]
fn without_the_rack_aware_selector_the_leader_serves_every_consumer() {
    let Setup {
        cluster,
        leader,
        follower,
        other,
        values,
        ..
    } = setup(&[]);
    let before = [leader, follower, other].map(|node| reads(&cluster, node));
    let client_rack = rack(follower);
    assert_eq!(
        read_all(&cluster, &[("client.rack", &client_rack)]),
        values,
        "read with client.rack={client_rack}"
    );
    let after = [leader, follower, other].map(|node| reads(&cluster, node));
    assert!(
        after[0].0 > before[0].0,
        "the leader served: {before:?} -> {after:?}"
    );
    assert_eq!(after[0].2, 0.0, "no consumer sent elsewhere");
    assert_eq!(after[1], before[1], "the follower served nothing");
    assert_eq!(after[2], before[2]);
}
