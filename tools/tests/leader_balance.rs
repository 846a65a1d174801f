//! Leader balance on three real nodes (`sluice cluster local`): the kill
//! -9 of the broker that is the preferred replica of two partitions (and
//! leads them) moves their leadership to followers; once it is back and
//! in sync, it leads them again, when an operator asks for it (Kafka's
//! ElectLeaders, `sluice topic elect-leaders`) or by itself (the
//! controller's leader balancing). Asked again, the election is not
//! needed. Records written before, during and after, by an idempotent
//! acks=all producer, are all read back, once each, at the offsets they
//! were acknowledged at.

mod common;
mod kafka_common;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use common::cluster::{client, kafka_call, metadata, wait_until, LocalCluster, PartitionSeen};
use kafka_common::{consumer_for, produce_ok, producer_for, read_to_end, KafkaProducer, Record};
use kafka_protocol::{
    error::ResponseError,
    messages::{
        elect_leaders_request::TopicPartitions, ApiKey, ElectLeadersRequest, ElectLeadersResponse,
    },
};
use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    Offset,
};

const TOPIC: &str = "balanced";
const NODES: [u32; 3] = [0, 1, 2];

/// The node killed and started again: the preferred replica (the first
/// of the replica list) of both partitions.
const PREFERRED: i32 = 1;

/// Both partitions prefer node 1; their followers come in two orders.
const ASSIGNMENT: [&[i32]; 2] = [&[1, 0, 2], &[1, 2, 0]];

/// Records produced at each step of a test, over both partitions.
const RECORDS_PER_STEP: usize = 200;

/// Records of each round written while elections are held: small, so
/// that writes go on through them.
const RECORDS_PER_ROUND: usize = 10;

/// Kafka's election types.
const PREFERRED_ELECTION: i8 = 0;
const UNCLEAN_ELECTION: i8 = 1;

#[test]
fn preferred_elections_asked_for_move_leadership_back_and_lose_nothing() {
    // Leader balancing off: leadership moves back only when asked.
    let (cluster, producer, mut written) =
        after_a_restart_of_the_preferred_replica(&[("SLUICE_AUTO_LEADER_REBALANCE", "false")]);
    std::thread::sleep(Duration::from_secs(1));
    for partition in seen(&cluster, 0).unwrap() {
        assert_ne!(
            partition.leader, PREFERRED,
            "with leader balancing off, leadership stays where it went: {partition:?}"
        );
    }

    // Partition 0 through Kafka's ElectLeaders, partition 1 through the
    // command line, each asked of a node that does not lead it, while
    // another producer writes on.
    let stop = AtomicBool::new(false);
    let during = std::thread::scope(|scope| {
        let second = acks_all_producer(&cluster);
        let mut during = Written::default();
        during.step(&second, "warm-up", RECORDS_PER_ROUND);
        let stop = &stop;
        let writer = scope.spawn(move || {
            let producer = second;
            let mut round = 0;
            while !stop.load(Ordering::SeqCst) {
                during.step(&producer, &format!("during-{round}"), RECORDS_PER_ROUND);
                round += 1;
            }
            eprintln!("{round} rounds written during the elections");
            during
        });
        let _stop = StopOnDrop(stop);
        std::thread::sleep(Duration::from_millis(500));
        let answer = elect_leaders(&cluster, 2, PREFERRED_ELECTION, Some(&[0]));
        assert_eq!(answer, [(TOPIC.to_string(), 0, 0)], "held");
        let printed = cluster.cli_ok(
            0,
            &[
                "topic",
                "elect-leaders",
                TOPIC,
                "--partition",
                "1",
                "--format",
                "json",
            ],
            None,
        );
        let printed: serde_json::Value = serde_json::from_str(&printed).unwrap();
        assert_eq!(printed[0]["partition"], 1, "{printed}");
        assert_eq!(printed[0]["elected"], true, "{printed}");
        assert_eq!(printed[0]["leader"], PREFERRED, "{printed}");
        wait_until_led_by_the_preferred_replica(&cluster, "the elections asked for");
        std::thread::sleep(Duration::from_millis(500));
        drop(_stop);
        writer.join().unwrap()
    });
    written.merge(during);

    // Asked again: not needed, whichever the election; the command line
    // says so and does not fail.
    let not_needed = ResponseError::ElectionNotNeeded.code();
    for election in [PREFERRED_ELECTION, UNCLEAN_ELECTION] {
        assert_eq!(
            elect_leaders(&cluster, 1, election, Some(&[0, 1])),
            [
                (TOPIC.to_string(), 0, not_needed),
                (TOPIC.to_string(), 1, not_needed)
            ],
            "election type {election}"
        );
    }
    let printed = cluster.cli_ok(0, &["topic", "elect-leaders", TOPIC], None);
    assert_eq!(
        printed.matches("election not needed").count(),
        2,
        "{printed}"
    );
    // Of every partition: those that needed no election are left out.
    let every = elect_leaders(&cluster, 0, PREFERRED_ELECTION, None);
    assert!(
        every.iter().all(|(topic, _, _)| topic != TOPIC),
        "{every:?}"
    );
    let unknown = ResponseError::UnknownTopicOrPartition.code();
    assert_eq!(
        elect_leaders(&cluster, 0, PREFERRED_ELECTION, Some(&[2, -1])),
        [
            (TOPIC.to_string(), 2, unknown),
            (TOPIC.to_string(), -1, unknown)
        ]
    );

    written.step(&producer, "after", RECORDS_PER_STEP);
    written.assert_read_back(&cluster);
}

#[test]
fn leadership_goes_back_to_the_preferred_replica_by_itself() {
    let (cluster, producer, mut written) = after_a_restart_of_the_preferred_replica(&[(
        "SLUICE_LEADER_IMBALANCE_CHECK_INTERVAL_MS",
        "500",
    )]);
    wait_until_led_by_the_preferred_replica(&cluster, "leader balancing");
    let answer = elect_leaders(&cluster, 0, PREFERRED_ELECTION, Some(&[0, 1]));
    let not_needed = ResponseError::ElectionNotNeeded.code();
    assert!(
        answer.iter().all(|(_, _, code)| *code == not_needed),
        "{answer:?}"
    );

    written.step(&producer, "after", RECORDS_PER_STEP);
    written.assert_read_back(&cluster);
}

/// Three nodes with the broker settings `env`; [`TOPIC`] created and a
/// step written; [`PREFERRED`] killed, a step written, and started again
/// until it is back in sync. The cluster, a producer and what it wrote.
fn after_a_restart_of_the_preferred_replica(
    env: &[(&str, &str)],
) -> (LocalCluster, KafkaProducer, Written) {
    let mut cluster = LocalCluster::start_with(NODES.len() as u32, env);
    let producer = create_balanced_topic(&cluster);
    let mut written = Written::default();
    written.step(&producer, "before", RECORDS_PER_STEP);
    kill_and_restart_the_preferred_replica(&mut cluster, &producer, &mut written);
    (cluster, producer, written)
}

/// Waits until every node lists the three brokers, creates [`TOPIC`] on
/// [`ASSIGNMENT`] with `min.insync.replicas=2` through librdkafka's
/// AdminClient, and waits until every node says the preferred replica
/// leads both partitions with every replica in sync. An idempotent
/// acks=all producer to every node.
fn create_balanced_topic(cluster: &LocalCluster) -> KafkaProducer {
    let everyone: BTreeSet<i32> = NODES.iter().map(|node| *node as i32).collect();
    wait_until(
        || {
            let listed: Vec<BTreeSet<i32>> = NODES
                .iter()
                .map(|node| metadata(&cluster.kafka_addr(*node), None).map(|seen| seen.brokers))
                .collect::<Option<_>>()
                .ok_or("a node does not answer")?;
            match listed.iter().all(|brokers| *brokers == everyone) {
                true => Ok(()),
                false => Err(format!("brokers listed: {listed:?}")),
            }
        },
        "every node lists every node as a broker",
    );
    let admin: AdminClient<DefaultClientContext> =
        client(&cluster.kafka_bootstrap()).create().unwrap();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let topic = NewTopic::new(
        TOPIC,
        ASSIGNMENT.len() as i32,
        TopicReplication::Variable(&ASSIGNMENT),
    )
    .set("min.insync.replicas", "2");
    let created = futures_lite::future::block_on(admin.create_topics([&topic], &options)).unwrap();
    assert!(
        created[0].is_ok(),
        "CreateTopics {TOPIC} on {ASSIGNMENT:?}: {:?}",
        created[0]
    );
    wait_until_led_by_the_preferred_replica(cluster, "the topic is created");
    acks_all_producer(cluster)
}

/// An idempotent acks=all producer to every node.
fn acks_all_producer(cluster: &LocalCluster) -> KafkaProducer {
    producer_for(
        &cluster.kafka_bootstrap(),
        &[("acks", "all"), ("message.timeout.ms", "30000")],
    )
}

/// Sets its flag when dropped, so that the writing thread stops when a
/// check fails as well.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Kills [`PREFERRED`] with SIGKILL, waits until the others name another
/// leader of each partition, writes a step, starts it again and waits
/// until every node says it is back in each in-sync set.
fn kill_and_restart_the_preferred_replica(
    cluster: &mut LocalCluster,
    producer: &KafkaProducer,
    written: &mut Written,
) {
    cluster.kill9(PREFERRED as u32);
    let killed_at = Instant::now();
    let survivors: Vec<u32> = NODES
        .into_iter()
        .filter(|node| *node as i32 != PREFERRED)
        .collect();
    wait_until_every_partition(
        cluster,
        &survivors,
        |partition| partition.leader >= 0 && partition.leader != PREFERRED,
        "the followers lead once the preferred replica is killed",
    );
    eprintln!(
        "node {PREFERRED} killed; both partitions led elsewhere after {:?}",
        killed_at.elapsed()
    );
    written.step(producer, "while-down", RECORDS_PER_STEP);
    cluster.restart(PREFERRED as u32, &[]);
    let restarted_at = Instant::now();
    wait_until_every_partition(
        cluster,
        &NODES,
        |partition| partition.in_sync.len() == NODES.len(),
        "the restarted preferred replica is back in sync",
    );
    eprintln!(
        "node {PREFERRED} back in sync {:?} after its restart",
        restarted_at.elapsed()
    );
}

/// Waits until every node says [`PREFERRED`] leads both partitions with
/// every replica in sync.
fn wait_until_led_by_the_preferred_replica(cluster: &LocalCluster, after: &str) {
    let started = Instant::now();
    wait_until_every_partition(
        cluster,
        &NODES,
        |partition| partition.leader == PREFERRED && partition.in_sync.len() == NODES.len(),
        &format!("the preferred replica leads again after {after}"),
    );
    eprintln!(
        "node {PREFERRED} leads both partitions {:?} after {after}",
        started.elapsed()
    );
}

/// Waits until each of `nodes` says `settled` of both partitions of
/// [`TOPIC`].
fn wait_until_every_partition(
    cluster: &LocalCluster,
    nodes: &[u32],
    settled: impl Fn(&PartitionSeen) -> bool,
    what: &str,
) {
    wait_until(
        || {
            for node in nodes {
                let partitions = seen(cluster, *node)?;
                if !partitions.iter().all(&settled) {
                    return Err(format!("node {node} says {partitions:?}"));
                }
            }
            Ok(())
        },
        what,
    );
}

/// [`TOPIC`]'s partitions as node `node`'s Kafka Metadata gives them.
fn seen(cluster: &LocalCluster, node: u32) -> Result<Vec<PartitionSeen>, String> {
    let seen = metadata(&cluster.kafka_addr(node), Some(TOPIC))
        .ok_or_else(|| format!("node {node} does not answer or does not know {TOPIC}"))?;
    match seen.partitions.len() == ASSIGNMENT.len() {
        true => Ok(seen.partitions),
        false => Err(format!("node {node} gives {:?}", seen.partitions)),
    }
}

/// Kafka's ElectLeaders (version 2) of `election` for `partitions` of
/// [`TOPIC`] (`None`: every partition), asked of node `node`: per
/// partition answered, (topic, partition, error code).
fn elect_leaders(
    cluster: &LocalCluster,
    node: u32,
    election: i8,
    partitions: Option<&[i32]>,
) -> Vec<(String, i32, i16)> {
    let request = ElectLeadersRequest::default()
        .with_election_type(election)
        .with_timeout_ms(20_000)
        .with_topic_partitions(partitions.map(|partitions| {
            vec![TopicPartitions::default()
                .with_topic(kafka_protocol::messages::TopicName(
                    kafka_protocol::protocol::StrBytes::from_static_str(TOPIC),
                ))
                .with_partitions(partitions.to_vec())]
        }));
    let answer: ElectLeadersResponse =
        kafka_call(&cluster.kafka_addr(node), ApiKey::ElectLeaders, 2, &request);
    assert_eq!(answer.error_code, 0, "{answer:?}");
    answer
        .replica_election_results
        .iter()
        .flat_map(|topic| {
            topic.partition_result.iter().map(|partition| {
                (
                    topic.topic.0.to_string(),
                    partition.partition_id,
                    partition.error_code,
                )
            })
        })
        .collect()
}

/// What a test wrote: per partition, (offset, value) as acknowledged.
#[derive(Default)]
struct Written {
    acknowledged: BTreeMap<i32, Vec<(i64, String)>>,
}

impl Written {
    /// Writes `count` records `STEP-N`, alternating between the
    /// partitions, and keeps where each was acknowledged (every one must
    /// be).
    fn step(&mut self, producer: &KafkaProducer, step: &str, count: usize) {
        let values: Vec<String> = (0..count).map(|index| format!("{step}-{index}")).collect();
        for (partition, _) in ASSIGNMENT.iter().enumerate() {
            let partition = partition as i32;
            let records: Vec<Record> = values
                .iter()
                .skip(partition as usize)
                .step_by(ASSIGNMENT.len())
                .map(|value| Record::new(None, Some(value.as_bytes())))
                .collect();
            let placed = produce_ok(producer, TOPIC, Some(partition), &records);
            let acknowledged = self.acknowledged.entry(partition).or_default();
            for (placed, record) in placed.iter().zip(&records) {
                assert_eq!(placed.partition, partition);
                let value = String::from_utf8(record.value.clone().unwrap()).unwrap();
                acknowledged.push((placed.offset, value));
            }
        }
    }

    /// Adds what another producer wrote.
    fn merge(&mut self, other: Written) {
        for (partition, acknowledged) in other.acknowledged {
            let mine = self.acknowledged.entry(partition).or_default();
            mine.extend(acknowledged);
            mine.sort();
        }
    }

    /// Reads both partitions from their beginning to their high
    /// watermark: exactly what was acknowledged, at its offsets, nothing
    /// lost or twice.
    fn assert_read_back(&self, cluster: &LocalCluster) {
        let consumer = consumer_for(&cluster.kafka_bootstrap(), &[]);
        let from: Vec<(i32, Offset)> = (0..ASSIGNMENT.len() as i32)
            .map(|partition| (partition, Offset::Beginning))
            .collect();
        let read = read_to_end(&consumer, TOPIC, &from);
        for (partition, acknowledged) in &self.acknowledged {
            let stored: Vec<(i64, String)> = read[partition]
                .iter()
                .map(|consumed| {
                    let value = consumed.record.value.clone().unwrap_or_default();
                    (consumed.offset, String::from_utf8(value).unwrap())
                })
                .collect();
            assert_eq!(
                stored.len(),
                acknowledged.len(),
                "partition {partition}: records read against records acknowledged"
            );
            assert_eq!(
                &stored, acknowledged,
                "partition {partition}: what was read against what was acknowledged"
            );
            eprintln!(
                "partition {partition}: {} acknowledged records read back",
                stored.len()
            );
        }
    }
}
