//! Partitions of three replicas on three real nodes (`sluice cluster
//! local`), through librdkafka: what an acks=all producer was told is
//! stored survives the kill -9 of the partition's leader, at the offset it
//! was told and once, and writes resume within a bound; a follower that was
//! down catches up, and after the leader's kill every acknowledged record
//! is read, up to the high watermark and no further; and acks=all is
//! refused with NOT_ENOUGH_REPLICAS while fewer replicas than
//! `min.insync.replicas` are in sync, when acks=1 is not.

mod common;
mod kafka_common;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::atomic::{AtomicBool, AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use common::cluster::{create_topic, metadata, wait_until, LocalCluster, PartitionSeen, WAIT};
use kafka_common::{
    consumer_for, produce, produce_ok, producer_for, read_to_end, KafkaProducer, Placed, Record,
};
use rdkafka::{
    consumer::Consumer,
    error::KafkaError,
    producer::{BaseRecord, Producer},
    types::RDKafkaErrorCode,
    Offset,
};

const TOPIC: &str = "replicated";
const NODES: [u32; 3] = [0, 1, 2];
const REPLICATION_FACTOR: i32 = 3;

/// The longest accepted from the kill -9 of a leader to the first record
/// sent after it being stored in each partition it led: the controller
/// fences a node after a 3 s lease, and librdkafka then finds the new
/// leader within a metadata refresh.
const FAILOVER_MAX: Duration = Duration::from_secs(15);

/// How long an acks=all producer keeps a record before it reports it
/// lost: far above [`FAILOVER_MAX`], so that a record sent around the
/// kill is stored, not timed out.
const MESSAGE_TIMEOUT_MS: &str = "30000";

/// The pause between two records of the continuous producer: about a
/// thousand records a second, a few thousand over a test.
const SEND_INTERVAL: Duration = Duration::from_millis(1);

/// How long the continuous producer keeps going after the failover.
const AFTER_FAILOVER: Duration = Duration::from_secs(3);

/// Records produced while a follower is down.
const WHILE_DOWN_RECORDS: usize = 1_000;

#[test]
fn acks_all_records_survive_the_kill_of_the_leader() {
    records_survive_the_kill_of_the_leader("acks_all_records_survive_the_kill_of_the_leader", 1);
}

#[test]
fn acks_all_records_of_three_partitions_survive_the_kill_of_a_leader() {
    records_survive_the_kill_of_the_leader(
        "acks_all_records_of_three_partitions_survive_the_kill_of_a_leader",
        3,
    );
}

/// An idempotent acks=all producer writes `v0`, `v1`, ... in turn to the
/// `partitions` partitions (three replicas, `min.insync.replicas=2`) while
/// the leader of partition 0 is killed with SIGKILL at a random moment;
/// writes resume within [`FAILOVER_MAX`]; once the node is back in sync,
/// every acknowledged record is at its offset, and no value is there
/// twice.
/// How the leader goes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Kill9,
    /// A clean shutdown: it hands its partitions over first.
    Sigterm,
}

#[test]
fn a_leader_stopped_with_sigterm_hands_its_partitions_over_first() {
    records_survive_the_loss_of_the_leader(
        "a_leader_stopped_with_sigterm_hands_its_partitions_over_first",
        2,
        Stop::Sigterm,
    );
}

fn records_survive_the_kill_of_the_leader(test: &str, partitions: i32) {
    records_survive_the_loss_of_the_leader(test, partitions, Stop::Kill9);
}

fn records_survive_the_loss_of_the_leader(test: &str, partitions: i32, stop_by: Stop) {
    let mut rng = common::seeded_rng(test);
    let mut cluster = start_cluster();
    create_replicated_topic(&cluster, partitions, 2);
    let seen = partitions_seen(&cluster, 0, partitions).unwrap();
    let leader = seen[0].leader;
    let led: Vec<i32> = (0..partitions)
        .filter(|partition| seen[*partition as usize].leader == leader)
        .collect();

    let producer = acks_all_producer(&cluster);
    let stop = AtomicBool::new(false);
    let queued = AtomicUsize::new(0);
    let (sent, failover) = std::thread::scope(|scope| {
        let stopper = StopOnDrop(&stop);
        let sender = scope.spawn(|| produce_until(&producer, partitions, &queued, &stop));
        let before_kill = Duration::from_millis(rand::Rng::random_range(&mut rng, 1_500..2_500));
        std::thread::sleep(before_kill);
        match stop_by {
            Stop::Kill9 => cluster.kill9(leader as u32),
            Stop::Sigterm => cluster.signal(leader as u32, libc::SIGTERM),
        }
        let killed_at = Instant::now();
        // The record being handed over as the kill returned may have been
        // sent before it; the one after surely was not.
        let first_after_kill = queued.load(Ordering::SeqCst) + 1;
        let failover = wait_until(
            || resumed(&producer, first_after_kill, &led, killed_at),
            &format!(
                "a record sent after the {stop_by:?} of node {leader} is stored in each partition it led ({led:?})"
            ),
        );
        eprintln!(
            "{test}: node {leader} stopped ({stop_by:?}) {before_kill:?} into the run; writes to partitions {led:?} resumed {failover:?} after"
        );
        std::thread::sleep(AFTER_FAILOVER);
        drop(stopper);
        (sender.join().unwrap(), failover)
    });
    assert!(
        failover < FAILOVER_MAX,
        "writes resumed {failover:?} after the {stop_by:?} of the leader, more than {FAILOVER_MAX:?}; the producer's last log lines:\n{}",
        producer.context().log_tail(60)
    );
    producer
        .flush(WAIT)
        .unwrap_or_else(|error| panic!("the producer did not flush within {WAIT:?}: {error}"));
    let outcomes = producer.context().take_outcomes(sent);
    let refused: Vec<String> = outcomes
        .iter()
        .enumerate()
        .filter_map(|(index, outcome)| {
            Some(format!("{}: {}", value_of(index), outcome.as_ref().err()?))
        })
        .collect();
    assert!(
        refused.is_empty(),
        "{} of {sent} acks=all records were not stored within {MESSAGE_TIMEOUT_MS} ms, first: {:?}",
        refused.len(),
        &refused[..refused.len().min(5)]
    );
    let placed: Vec<Placed> = outcomes.into_iter().map(Result::unwrap).collect();
    eprintln!("{test}: {sent} records stored");
    if stop_by == Stop::Sigterm {
        // Controlled shutdown: fenced (and its leadership moved) before
        // it stopped, not when its lease ran out.
        let pid = cluster.value(&format!("node.{leader}.pid")).to_string();
        wait_until(
            || match std::path::Path::new("/proc").join(&pid).exists() {
                false => Ok(()),
                true => Err(format!("process {pid} still runs")),
            },
            &format!("node {leader} stops after SIGTERM"),
        );
        let log = std::fs::read_to_string(cluster.node_dir(leader as u32).join("log")).unwrap();
        assert!(log.contains("fenced for shutdown"), "{log}");
    }

    restart_into_sync(&mut cluster, leader, partitions);
    let acknowledged = acknowledged(&placed);
    assert_holds_what_was_acknowledged(&cluster, partitions, sent, &acknowledged);
}

#[test]
fn a_follower_that_was_down_catches_up_and_the_high_watermark_bounds_reads() {
    let mut cluster = start_cluster();
    create_replicated_topic(&cluster, 1, 2);
    let seen = partitions_seen(&cluster, 0, 1).unwrap().remove(0);
    let leader = seen.leader;
    // The first replica after the leader in assignment order: the one an
    // election takes first once the leader is gone (if it is in sync).
    let follower = *seen
        .replicas
        .iter()
        .find(|replica| **replica != leader)
        .unwrap_or_else(|| panic!("a follower in {seen:?}"));
    let other = all_nodes()
        .into_iter()
        .find(|node| *node != leader && *node != follower)
        .unwrap();

    cluster.kill9(follower as u32);
    let producer = acks_all_producer(&cluster);
    let records: Vec<Record> = (0..WHILE_DOWN_RECORDS)
        .map(|index| Record::new(None, Some(value_of(index).as_bytes())))
        .collect();
    let written_at = Instant::now();
    let placed = produce_ok(&producer, TOPIC, Some(0), &records);
    eprintln!(
        "{WHILE_DOWN_RECORDS} acks=all records stored with follower {follower} down in {:?}",
        written_at.elapsed()
    );
    let offsets: Vec<i64> = placed.iter().map(|placed| placed.offset).collect();
    assert_eq!(
        offsets,
        (0..WHILE_DOWN_RECORDS as i64).collect::<Vec<i64>>(),
        "the offsets of records sent in order by one idempotent producer"
    );

    restart_into_sync(&mut cluster, follower, 1);
    cluster.kill9(leader as u32);
    let new_leader = wait_until(
        || {
            let leaders: BTreeSet<i32> = [follower, other]
                .iter()
                .map(|node| partitions_seen(&cluster, *node as u32, 1).map(|seen| seen[0].leader))
                .collect::<Result<_, _>>()?;
            match leaders.first() {
                Some(new) if leaders.len() == 1 && [follower, other].contains(new) => Ok(*new),
                _ => Err(format!(
                    "nodes {follower} and {other} name leaders {leaders:?}"
                )),
            }
        },
        &format!("the partition has a new leader after the kill of node {leader}"),
    );
    eprintln!(
        "node {new_leader} leads after the kill of node {leader} ({})",
        match new_leader == follower {
            true => "the follower that caught up",
            false => "the follower that stayed up",
        }
    );
    let acknowledged = acknowledged(&placed);
    let high_watermarks =
        assert_holds_what_was_acknowledged(&cluster, 1, WHILE_DOWN_RECORDS, &acknowledged);
    assert_eq!(
        high_watermarks,
        [WHILE_DOWN_RECORDS as i64],
        "the new leader's high watermark: every record acknowledged, nothing more"
    );
}

#[test]
fn acks_all_is_refused_below_min_insync_replicas() {
    let mut rng = common::seeded_rng("acks_all_is_refused_below_min_insync_replicas");
    let mut cluster = start_cluster();
    create_replicated_topic(&cluster, 1, 3);
    let leader = partitions_seen(&cluster, 0, 1).unwrap()[0].leader;
    let followers: Vec<i32> = all_nodes()
        .into_iter()
        .filter(|node| *node != leader)
        .collect();
    let (follower, other) = match rand::Rng::random_bool(&mut rng, 0.5) {
        true => (followers[0], followers[1]),
        false => (followers[1], followers[0]),
    };

    // Short-lived and tried once, so that the broker's answer is what the
    // delivery report says.
    let bootstrap = cluster.kafka_bootstrap();
    let acks = |acks: &str| {
        producer_for(
            &bootstrap,
            &[
                ("acks", acks),
                ("enable.idempotence", "false"),
                ("retries", "0"),
                ("message.timeout.ms", "3000"),
            ],
        )
    };
    let record = |value: &str| [Record::new(None, Some(value.as_bytes()))];
    let stored = produce_ok(&acks("all"), TOPIC, Some(0), &record("in-sync"));
    assert_eq!(stored[0].offset, 0, "acks=all with every replica in sync");

    cluster.kill9(follower as u32);
    let two: BTreeSet<i32> = [leader, other].into();
    wait_until_in_sync(
        &cluster,
        &[leader as u32, other as u32],
        1,
        &two,
        &format!("follower {follower}, killed, leaves the in-sync set"),
    );
    let refused = produce(&acks("all"), TOPIC, Some(0), &record("refused"));
    match &refused[0] {
        Err(KafkaError::MessageProduction(RDKafkaErrorCode::NotEnoughReplicas)) => {}
        outcome => panic!(
            "acks=all with 2 of min.insync.replicas=3 in sync: {outcome:?}, not NOT_ENOUGH_REPLICAS"
        ),
    }
    let stored = produce_ok(&acks("1"), TOPIC, Some(0), &record("leader-only"));
    assert_eq!(
        stored[0].offset, 1,
        "acks=1 with 2 of 3 in sync, after the refusal"
    );
    // KIP-966's strict rule: below min.insync.replicas the high watermark
    // stands, so the acks=1 record is stored but not yet shown.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(
        high_watermark(&cluster, 0),
        1,
        "the high watermark does not move below min.insync.replicas"
    );

    restart_into_sync(&mut cluster, follower, 1);
    wait_until(
        || match high_watermark(&cluster, 0) {
            2 => Ok(()),
            high => Err(format!("high watermark {high}")),
        },
        "the acks=1 record is below the high watermark once every replica is in sync",
    );
    assert_eq!(
        read_values(&cluster),
        [(0, "in-sync".to_string()), (1, "leader-only".to_string())],
        "the refused record is not stored"
    );
    let stored = produce_ok(&acks("all"), TOPIC, Some(0), &record("in-sync-again"));
    assert_eq!(
        stored[0].offset, 2,
        "acks=all once every replica is in sync again"
    );
}

/// The ids of the nodes, as Kafka's Metadata gives them.
fn all_nodes() -> BTreeSet<i32> {
    NODES.iter().map(|node| *node as i32).collect()
}

/// Starts three nodes and waits until each lists all three as brokers:
/// a topic of three replicas needs them.
fn start_cluster() -> LocalCluster {
    let cluster = LocalCluster::start(NODES.len() as u32);
    cluster.wait_for_brokers(NODES.len() as u32);
    cluster
}

/// Creates [`TOPIC`] with `partitions` partitions of three replicas and
/// `min.insync.replicas` of `min_in_sync`, through Kafka's CreateTopics
/// (fails with the broker's answer if it refuses), and waits until every
/// node says that every replica is in sync.
fn create_replicated_topic(cluster: &LocalCluster, partitions: i32, min_in_sync: u32) {
    let bootstrap = cluster.kafka_bootstrap();
    let min_in_sync = min_in_sync.to_string();
    create_topic(
        &bootstrap,
        TOPIC,
        partitions,
        REPLICATION_FACTOR,
        &[("min.insync.replicas", &min_in_sync)],
    )
    .unwrap_or_else(|error| {
        panic!(
            "CreateTopics {TOPIC} (partitions: {partitions}, replication factor: {REPLICATION_FACTOR}, min.insync.replicas: {min_in_sync}) through {bootstrap} was refused: {error}"
        )
    });
    wait_until_in_sync(
        cluster,
        &NODES,
        partitions,
        &all_nodes(),
        "the new topic's replicas are all in sync",
    );
}

/// [`TOPIC`]'s partitions as node `node`'s Kafka Metadata gives them.
fn partitions_seen(
    cluster: &LocalCluster,
    node: u32,
    partitions: i32,
) -> Result<Vec<PartitionSeen>, String> {
    let seen = metadata(&cluster.kafka_addr(node), Some(TOPIC))
        .ok_or_else(|| format!("node {node} does not answer or does not know {TOPIC}"))?;
    match seen.partitions.len() == partitions as usize {
        true => Ok(seen.partitions),
        false => Err(format!(
            "node {node} gives {} partitions of {partitions}",
            seen.partitions.len()
        )),
    }
}

/// Waits until every node of `asked` says that each of the `partitions`
/// partitions of [`TOPIC`] has three replicas, a leader among them, and
/// `in_sync` as its in-sync set.
fn wait_until_in_sync(
    cluster: &LocalCluster,
    asked: &[u32],
    partitions: i32,
    in_sync: &BTreeSet<i32>,
    what: &str,
) {
    let replicas = all_nodes();
    wait_until(
        || {
            for node in asked {
                let seen = partitions_seen(cluster, *node, partitions)?;
                let settled = seen.iter().all(|partition| {
                    partition.replicas.len() == REPLICATION_FACTOR as usize
                        && partition
                            .replicas
                            .iter()
                            .copied()
                            .collect::<BTreeSet<i32>>()
                            == replicas
                        && partition.in_sync == *in_sync
                        && in_sync.contains(&partition.leader)
                });
                if !settled {
                    return Err(format!("node {node} says {seen:?}"));
                }
            }
            Ok(())
        },
        &format!("{what} (in sync: {in_sync:?})"),
    );
}

/// Starts node `node` again and waits until every node says it is back in
/// the in-sync set of each of the `partitions` partitions.
fn restart_into_sync(cluster: &mut LocalCluster, node: i32, partitions: i32) {
    cluster.restart(node as u32, &[]);
    wait_until_in_sync(
        cluster,
        &NODES,
        partitions,
        &all_nodes(),
        &format!("node {node}, started again, is back in the in-sync set"),
    );
}

/// An idempotent acks=all producer to every node.
fn acks_all_producer(cluster: &LocalCluster) -> KafkaProducer {
    producer_for(
        &cluster.kafka_bootstrap(),
        &[
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("message.timeout.ms", MESSAGE_TIMEOUT_MS),
        ],
    )
}

/// Sets its flag when dropped, so that the producing thread stops when a
/// check fails as well.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The value of the record sent with `index`.
fn value_of(index: usize) -> String {
    format!("v{index}")
}

/// The index a value read back was sent with; fails on a value never
/// sent.
fn index_of(value: Option<&[u8]>) -> usize {
    value
        .and_then(|value| std::str::from_utf8(value).ok())
        .and_then(|value| value.strip_prefix('v'))
        .and_then(|index| index.parse().ok())
        .unwrap_or_else(|| panic!("a value never sent: {value:?}"))
}

/// Sends `v0`, `v1`, ... in turn to the `partitions` partitions of
/// [`TOPIC`], a record every [`SEND_INTERVAL`], until `stop`; how many it
/// sent. `queued` counts them as they go.
fn produce_until(
    producer: &KafkaProducer,
    partitions: i32,
    queued: &AtomicUsize,
    stop: &AtomicBool,
) -> usize {
    let mut index = 0;
    while !stop.load(Ordering::SeqCst) {
        let value = value_of(index);
        let record = BaseRecord::<(), _, _>::with_opaque_to(TOPIC, Box::new(index))
            .partition((index % partitions as usize) as i32)
            .payload(&value);
        if let Err((error, _)) = producer.send(record) {
            panic!("{value} not queued: {error}");
        }
        index += 1;
        queued.store(index, Ordering::SeqCst);
        producer.poll(Duration::ZERO);
        std::thread::sleep(SEND_INTERVAL);
    }
    index
}

/// How long after `killed_at` writes resumed: `Ok` once a record of index
/// `first_after_kill` or later is stored in each partition of `led`.
fn resumed(
    producer: &KafkaProducer,
    first_after_kill: usize,
    led: &[i32],
    killed_at: Instant,
) -> Result<Duration, String> {
    let stored: BTreeSet<i32> = producer
        .context()
        .stored()
        .iter()
        .filter(|(index, _)| *index >= first_after_kill)
        .map(|(_, placed)| placed.partition)
        .collect();
    let waiting: Vec<&i32> = led
        .iter()
        .filter(|partition| !stored.contains(partition))
        .collect();
    match waiting.is_empty() {
        true => Ok(killed_at.elapsed()),
        false => Err(format!(
            "nothing sent after the kill stored in partitions {waiting:?}; {} records stored in all",
            producer.context().stored().len()
        )),
    }
}

/// Where each record, by the index it was sent with, was acknowledged: by
/// partition, (offset, index).
fn acknowledged(placed: &[Placed]) -> BTreeMap<i32, Vec<(i64, usize)>> {
    let mut acknowledged: BTreeMap<i32, Vec<(i64, usize)>> = BTreeMap::new();
    for (index, placed) in placed.iter().enumerate() {
        acknowledged
            .entry(placed.partition)
            .or_default()
            .push((placed.offset, index));
    }
    acknowledged
}

/// The high watermark of `partition` of [`TOPIC`], from its leader.
fn high_watermark(cluster: &LocalCluster, partition: i32) -> i64 {
    let consumer = consumer_for(&cluster.kafka_bootstrap(), &[]);
    let (_, high) = consumer
        .fetch_watermarks(TOPIC, partition, WAIT)
        .unwrap_or_else(|error| panic!("the watermarks of partition {partition}: {error}"));
    high
}

/// Partition 0 of [`TOPIC`] from its beginning to the high watermark:
/// (offset, value).
fn read_values(cluster: &LocalCluster) -> Vec<(i64, String)> {
    let consumer = consumer_for(&cluster.kafka_bootstrap(), &[]);
    read_to_end(&consumer, TOPIC, &[(0, Offset::Beginning)])[&0]
        .iter()
        .map(|consumed| {
            let value = consumed.record.value.as_deref().unwrap_or_default();
            (consumed.offset, String::from_utf8_lossy(value).into_owned())
        })
        .collect()
}

/// Reads each of the `partitions` partitions of [`TOPIC`] from its
/// beginning to its high watermark and checks: every offset below the
/// high watermark holds a record, in order (the reader checks that
/// offsets only go up); every acknowledged record is at the offset it was
/// acknowledged at; every value read was sent, to that partition, and is
/// there once. The high watermarks, in partition order.
fn assert_holds_what_was_acknowledged(
    cluster: &LocalCluster,
    partitions: i32,
    sent: usize,
    acknowledged: &BTreeMap<i32, Vec<(i64, usize)>>,
) -> Vec<i64> {
    let high_watermarks: Vec<i64> = (0..partitions)
        .map(|partition| high_watermark(cluster, partition))
        .collect();
    for (partition, records) in acknowledged {
        let high = high_watermarks[*partition as usize];
        let last = records.iter().map(|(offset, _)| *offset).max().unwrap();
        assert!(
            last < high,
            "partition {partition}: offset {last} was acknowledged, the high watermark is {high}"
        );
    }
    let consumer = consumer_for(&cluster.kafka_bootstrap(), &[]);
    let from: Vec<(i32, Offset)> = (0..partitions)
        .map(|partition| (partition, Offset::Beginning))
        .collect();
    let read = read_to_end(&consumer, TOPIC, &from);
    for partition in 0..partitions {
        let high = high_watermarks[partition as usize];
        let offsets: Vec<i64> = read[&partition]
            .iter()
            .map(|consumed| consumed.offset)
            .collect();
        assert!(
            offsets.iter().copied().eq(0..high),
            "partition {partition}: {} records read up to the high watermark {high}, offsets {:?} to {:?}",
            offsets.len(),
            offsets.first(),
            offsets.last()
        );
        let mut at: BTreeMap<i64, usize> = BTreeMap::new();
        let mut first_at: BTreeMap<usize, i64> = BTreeMap::new();
        for consumed in &read[&partition] {
            let index = index_of(consumed.record.value.as_deref());
            assert!(
                index < sent,
                "partition {partition}: {} was never sent",
                value_of(index)
            );
            assert_eq!(
                index % partitions as usize,
                partition as usize,
                "{} read from partition {partition}, sent to another",
                value_of(index)
            );
            if let Some(first) = first_at.insert(index, consumed.offset) {
                panic!(
                    "partition {partition}: {} stored twice, at offsets {first} and {}",
                    value_of(index),
                    consumed.offset
                );
            }
            at.insert(consumed.offset, index);
        }
        for (offset, index) in acknowledged.get(&partition).into_iter().flatten() {
            assert_eq!(
                at.get(offset).copied().map(value_of),
                Some(value_of(*index)),
                "partition {partition}: offset {offset} was acknowledged for {}",
                value_of(*index)
            );
        }
        eprintln!(
            "partition {partition}: {high} records read, {} of them acknowledged",
            acknowledged.get(&partition).map_or(0, Vec::len)
        );
    }
    high_watermarks
}

/// `sluice cluster local` of three nodes gives a topic created without a
/// replication factor three replicas, and `min.insync.replicas=2`.
#[test]
fn a_local_cluster_replicates_topics_by_default() {
    let cluster = start_cluster();
    create_topic(&cluster.kafka_bootstrap(), TOPIC, 1, -1, &[]).unwrap();
    let seen = wait_until(
        || {
            let seen = partitions_seen(&cluster, 0, 1)?.remove(0);
            match seen.in_sync.len() {
                3 => Ok(seen),
                count => Err(format!("{count} in sync: {seen:?}")),
            }
        },
        "the topic has three replicas, all in sync",
    );
    assert_eq!(seen.replicas.len(), 3, "{seen:?}");
    let described = cluster.cli_ok(0, &["topic", "describe", TOPIC], None);
    let min_in_sync = described
        .lines()
        .find_map(|line| line.strip_prefix("min.insync.replicas"))
        .map(str::trim);
    assert_eq!(min_in_sync, Some("2"), "{described}");
}
