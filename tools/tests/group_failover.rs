//! A consumer group outlives the node that coordinates it: on three real
//! nodes (`sluice cluster local`), `__consumer_offsets` has three replicas,
//! and after the kill -9 of the node that leads the group's offsets
//! partition (its coordinator, as FindCoordinator names it) another node
//! coordinates the group, every offset committed before the kill is still
//! committed (OffsetFetch through librdkafka, and `sluice group describe`
//! asked of the new coordinator), and the group's consumer, librdkafka's,
//! goes on from them: it reads no record it had committed, reads every
//! record it had not, and commits again. The killed node, started again,
//! catches up and coordinates the group once more after a preferred
//! leader election, with every offset. The offsets partitions have small
//! segments (`group_offsets_compact_bytes`, at least 4 KiB), which their
//! cleaner compacts, so each move reads a compacted log back.

mod common;
mod kafka_common;

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use common::cluster::{create_topic, kafka_call, metadata, wait_until, LocalCluster, WAIT};
use kafka_common::{produce_ok, producer_for, Record};
use kafka_protocol::{
    messages::{ApiKey, FindCoordinatorRequest, FindCoordinatorResponse},
    protocol::StrBytes,
};
use rdkafka::{
    config::ClientConfig,
    consumer::{BaseConsumer, CommitMode, Consumer},
    Message, Offset, TopicPartitionList,
};

const TOPIC: &str = "events";
const GROUP: &str = "failover-group";
const OFFSETS_TOPIC: &str = "__consumer_offsets";
const NODES: [u32; 3] = [0, 1, 2];
const PARTITIONS: i32 = 3;
/// Records produced before the kill, and after it.
const RECORDS_BEFORE: usize = 600;
const RECORDS_AFTER: usize = 300;
/// Of those produced before, the consumer reads and commits this many
/// before the kill, a commit every [`COMMIT_EVERY`] records.
const READ_BEFORE: usize = 400;
const COMMIT_EVERY: usize = 20;
/// The segment size of the offsets partitions (raised to 4 KiB, the
/// smallest segment): a commit of three offsets takes about 200 bytes, so
/// a segment rolls every twenty commits or so.
const COMPACT_BYTES: &str = "1024";

/// A consumer of [`GROUP`] through every node, that commits by hand and
/// notices a lost coordinator quickly.
fn group_consumer(bootstrap: &str) -> BaseConsumer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("socket.timeout.ms", "10000")
        .set("topic.metadata.refresh.interval.ms", "500");
    config.create().expect("consumer")
}

/// What OffsetFetch says [`GROUP`] committed for each partition of
/// [`TOPIC`] (through a client of its own, which joins nothing).
fn committed(bootstrap: &str) -> Result<BTreeMap<i32, i64>, String> {
    let consumer = group_consumer(bootstrap);
    let mut asked = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        asked.add_partition(TOPIC, partition);
    }
    let answer = consumer
        .committed_offsets(asked, Duration::from_secs(5))
        .map_err(|error| error.to_string())?;
    answer
        .elements()
        .iter()
        .filter_map(|element| match element.offset() {
            Offset::Offset(offset) => Some(Ok((element.partition(), offset))),
            Offset::Invalid => None,
            other => Some(Err(format!("partition {}: {other:?}", element.partition()))),
        })
        .collect()
}

/// The node that FindCoordinator, asked of node `asked`, names for
/// [`GROUP`].
fn coordinator(cluster: &LocalCluster, asked: u32) -> Result<i32, String> {
    let request =
        FindCoordinatorRequest::default().with_key(StrBytes::from_string(GROUP.to_string()));
    let answer: FindCoordinatorResponse = kafka_call(
        &cluster.kafka_addr(asked),
        ApiKey::FindCoordinator,
        3,
        &request,
    );
    match answer.error_code {
        0 => Ok(answer.node_id.0),
        code => Err(format!("node {asked} answers FindCoordinator with {code}")),
    }
}

/// The committed offsets `sluice group describe` shows when asked of node
/// `node`.
fn described(cluster: &LocalCluster, node: u32) -> Result<BTreeMap<i32, i64>, String> {
    let output = cluster.cli(
        node,
        &["group", "describe", GROUP, "--format", "json"],
        None,
    );
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let described: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|error| error.to_string())?;
    described["offsets"]
        .as_array()
        .ok_or("no offsets")?
        .iter()
        .map(|offset| {
            Ok((
                offset["partition"].as_i64().ok_or("no partition")? as i32,
                offset["committed"].as_i64().ok_or("no committed offset")?,
            ))
        })
        .collect()
}

/// Where `consumer` is in each partition it read: the offset after the
/// last record, what it commits.
fn commit(consumer: &BaseConsumer, next: &BTreeMap<i32, i64>) -> Result<(), String> {
    let mut offsets = TopicPartitionList::new();
    for (partition, offset) in next {
        offsets
            .add_partition_offset(TOPIC, *partition, Offset::Offset(*offset))
            .map_err(|error| error.to_string())?;
    }
    consumer
        .commit(&offsets, CommitMode::Sync)
        .map_err(|error| error.to_string())
}

#[test]
fn a_group_outlives_the_kill_of_its_coordinator() {
    let mut cluster = LocalCluster::start_with(
        NODES.len() as u32,
        &[
            ("SLUICE_GROUP_OFFSETS_COMPACT_BYTES", COMPACT_BYTES),
            ("SLUICE_CLEANER_CHECK_INTERVAL_MS", "100"),
        ],
    );
    let bootstrap = cluster.kafka_bootstrap();
    let all: BTreeSet<i32> = NODES.iter().map(|node| *node as i32).collect();
    for node in NODES {
        wait_until(
            || match metadata(&cluster.kafka_addr(node), None) {
                Some(seen) if seen.brokers == all => Ok(()),
                Some(seen) => Err(format!("brokers {:?}", seen.brokers)),
                None => Err("no answer".to_string()),
            },
            &format!("node {node} lists every node as a broker"),
        );
    }
    create_topic(
        &bootstrap,
        TOPIC,
        PARTITIONS,
        3,
        &[("min.insync.replicas", "2")],
    )
    .unwrap_or_else(|error| panic!("CreateTopics {TOPIC}: {error}"));
    let producer = producer_for(&bootstrap, &[("acks", "all")]);
    let values = |range: std::ops::Range<usize>| -> Vec<Record> {
        range
            .map(|index| Record::new(None, Some(format!("v{index}").as_bytes())))
            .collect()
    };
    produce_ok(&producer, TOPIC, None, &values(0..RECORDS_BEFORE));

    // Read and commit part of it.
    let consumer = group_consumer(&bootstrap);
    consumer.subscribe(&[TOPIC]).unwrap();
    let mut read_before: BTreeSet<String> = BTreeSet::new();
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let deadline = Instant::now() + WAIT;
    while read_before.len() < READ_BEFORE {
        assert!(
            Instant::now() < deadline,
            "{} of {READ_BEFORE} records read before the kill within {WAIT:?}",
            read_before.len()
        );
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message.unwrap_or_else(|error| panic!("a read before the kill: {error}"));
        let value = String::from_utf8(message.payload().unwrap().to_vec()).unwrap();
        assert!(read_before.insert(value.clone()), "{value} read twice");
        next.insert(message.partition(), message.offset() + 1);
        if read_before.len() % COMMIT_EVERY == 0 {
            wait_until(|| commit(&consumer, &next), "a commit before the kill");
        }
    }
    let before = wait_until(|| committed(&bootstrap), "OffsetFetch before the kill");
    assert_eq!(before, next, "what was committed is what OffsetFetch gives");

    // The offsets topic has three replicas a partition, in sync.
    let offsets_topic = wait_until(
        || {
            let seen = metadata(&bootstrap, Some(OFFSETS_TOPIC)).ok_or("no metadata")?;
            match seen.partitions.iter().all(|p| p.in_sync == all) {
                true => Ok(seen),
                false => Err(format!("{:?}", seen.partitions)),
            }
        },
        &format!("every replica of {OFFSETS_TOPIC} is in sync"),
    );
    assert!(
        offsets_topic
            .partitions
            .iter()
            .all(|partition| partition.replicas.len() == NODES.len()),
        "{OFFSETS_TOPIC}: {:?}",
        offsets_topic.partitions
    );

    let killed = wait_until(|| coordinator(&cluster, 0), "FindCoordinator names a node");
    assert_eq!(
        described(&cluster, killed as u32).unwrap(),
        before,
        "sluice group describe, asked of the coordinator"
    );
    let others: Vec<u32> = NODES
        .into_iter()
        .filter(|node| *node as i32 != killed)
        .collect();
    assert!(
        described(&cluster, others[0]).is_err(),
        "a node that does not coordinate the group does not describe it"
    );
    cluster.kill9(killed as u32);
    let killed_at = Instant::now();

    // Another node coordinates it, with every committed offset.
    let survivors = others
        .iter()
        .map(|node| cluster.kafka_addr(*node))
        .collect::<Vec<_>>()
        .join(",");
    let successor = wait_until(
        || {
            let named = coordinator(&cluster, others[0])?;
            match named != killed && coordinator(&cluster, others[1])? == named {
                true => Ok(named),
                false => Err(format!("FindCoordinator names node {named}")),
            }
        },
        &format!("FindCoordinator names a node other than {killed}, killed"),
    );
    let after = wait_until(
        || described(&cluster, successor as u32),
        "the new coordinator describes the group",
    );
    eprintln!(
        "node {killed}, which coordinated {GROUP}, killed; node {successor} coordinates it {:?} later",
        killed_at.elapsed()
    );
    assert_eq!(
        after, before,
        "sluice group describe, asked of the new coordinator"
    );
    assert_eq!(
        wait_until(|| committed(&survivors), "OffsetFetch after the kill"),
        before,
        "OffsetFetch after the kill"
    );

    // The consumer goes on from there: not one record it committed again,
    // every one it had not, and the ones produced after the kill.
    produce_ok(
        &producer_for(&survivors, &[("acks", "all")]),
        TOPIC,
        None,
        &values(RECORDS_BEFORE..RECORDS_BEFORE + RECORDS_AFTER),
    );
    let mut first_after: BTreeMap<i32, i64> = BTreeMap::new();
    let mut read_after: BTreeSet<String> = BTreeSet::new();
    let mut ends = next.clone();
    let expected = RECORDS_BEFORE + RECORDS_AFTER - READ_BEFORE;
    let deadline = Instant::now() + WAIT * 2;
    while read_after.len() < expected {
        assert!(
            Instant::now() < deadline,
            "{} of {expected} records read after the kill within {:?}",
            read_after.len(),
            WAIT * 2
        );
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let Ok(message) = message else {
            // The lost coordinator and leaders are reported; librdkafka
            // goes on.
            continue;
        };
        let partition = message.partition();
        let offset = message.offset();
        first_after.entry(partition).or_insert(offset);
        let committed = before.get(&partition).copied().unwrap_or(0);
        assert!(
            offset >= committed,
            "partition {partition}: offset {offset} read again after the kill, below {committed} committed before it"
        );
        let value = String::from_utf8(message.payload().unwrap().to_vec()).unwrap();
        assert!(
            !read_before.contains(&value),
            "{value}, committed before the kill, read again"
        );
        read_after.insert(value);
        ends.insert(partition, offset + 1);
    }
    for (partition, first) in &first_after {
        assert_eq!(
            *first,
            before.get(partition).copied().unwrap_or(0),
            "partition {partition}: the first offset read after the kill is the one committed"
        );
    }
    wait_until(|| commit(&consumer, &ends), "a commit after the kill");
    assert_eq!(
        wait_until(|| committed(&survivors), "OffsetFetch after the new commit"),
        ends,
        "the commit made after the kill"
    );

    // The killed node comes back, catches up (its log ended where it was
    // killed), and coordinates the group again once it leads its offsets
    // partition again (it is the preferred replica): with every offset,
    // the one committed while it was down too.
    cluster.restart(killed as u32, &[]);
    wait_until(
        || {
            let seen = metadata(&bootstrap, Some(OFFSETS_TOPIC)).ok_or("no metadata")?;
            match seen.partitions.iter().all(|p| p.in_sync == all) {
                true => Ok(()),
                false => Err(format!("{:?}", seen.partitions)),
            }
        },
        &format!("node {killed}, started again, is in sync in {OFFSETS_TOPIC}"),
    );
    wait_until(
        || {
            let output = cluster.cli(
                successor as u32,
                &["topic", "elect-leaders", OFFSETS_TOPIC],
                None,
            );
            match coordinator(&cluster, successor as u32)? {
                named if named == killed => Ok(()),
                named => Err(format!(
                    "FindCoordinator names node {named}; elect-leaders: {}",
                    String::from_utf8_lossy(&output.stdout)
                )),
            }
        },
        &format!("node {killed} coordinates {GROUP} again after a preferred election"),
    );
    assert_eq!(
        wait_until(
            || described(&cluster, killed as u32),
            "the returned coordinator describes the group"
        ),
        ends,
        "sluice group describe, asked of the returned coordinator"
    );
    assert_eq!(
        wait_until(|| committed(&bootstrap), "OffsetFetch after the return"),
        ends,
        "OffsetFetch after the coordinator returned"
    );
    wait_until(
        || commit(&consumer, &ends),
        "a commit to the returned coordinator",
    );
}
