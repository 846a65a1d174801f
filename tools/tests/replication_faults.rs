//! Faults of replication on real nodes (`sluice cluster local`), written
//! to through real Kafka clients with `acks=all`: a leader paused past its
//! lease, two failovers in a row, a follower that comes back with a torn
//! or corrupt tail, the last replica standing (KIP-966's eligible leader
//! replicas), and kafka-python through the kill of a leader. Each test
//! records every record a client was told is stored and ends by reading
//! every partition back: each acknowledged record is there, at the offset
//! it was acknowledged at, once, and in the order it was sent.
//!
//! The controller quorum lives on the first nodes of a cluster (all three
//! of three). A test that takes two or three replicas of a partition down
//! at once runs six nodes, five of them voters, with the partition on
//! nodes 3, 4 and 5, so that the quorum keeps a majority whatever the
//! test kills: the partition's own rules (`min.insync.replicas`, eligible
//! leader replicas) decide what happens, not a quorum that lost its
//! majority.

mod common;
mod kafka_common;

use std::{
    collections::{BTreeMap, BTreeSet},
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::atomic::{AtomicBool, AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use bytes::{Bytes, BytesMut};
use common::cluster::{metadata, wait_until, LocalCluster, PartitionSeen};
use kafka_common::{consumer_for, produce, producer_for, read_to_end, KafkaProducer, Placed};
use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    consumer::Consumer,
    error::KafkaError,
    producer::{BaseRecord, Producer},
    types::RDKafkaErrorCode,
    Offset,
};

const TOPIC: &str = "faults";

/// The nodes that hold the partition in a cluster of six: two voters and
/// one broker, so that three voters (0, 1, 2) stay up whatever is killed.
const SIX_NODE_REPLICAS: [i32; 3] = [3, 4, 5];

/// The broker's own lease (`controller::cluster::BROKER_LEASE`): a leader
/// paused longer than this has lost its partitions when it runs again.
const BROKER_LEASE: Duration = Duration::from_secs(2);

/// How long an acks=all producer keeps a record before it reports it
/// lost: longer than any outage here, so that a record sent during one is
/// stored once the partition can take it, or refused, not timed out.
const MESSAGE_TIMEOUT_MS: &str = "30000";

/// The pause between two records of the continuous producer.
const SEND_INTERVAL: Duration = Duration::from_millis(2);

/// Kafka's error codes the probes expect.
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const NOT_ENOUGH_REPLICAS: i16 = 19;

/// How long the test watches a partition that must stay without a leader:
/// several broker leases and controller ticks, in which a wrong election
/// would have happened.
const LEADERLESS_WATCH: Duration = Duration::from_secs(4);

// ---------------------------------------------------------------------
// 1. A leader paused past its lease.
// ---------------------------------------------------------------------

/// The leader of a partition of three replicas is stopped with SIGSTOP
/// for longer than its lease while an idempotent acks=all producer writes:
/// the controller moves leadership, writes go on at the new leader, and
/// once the old one runs again every produce sent straight to it is
/// refused with NOT_LEADER_OR_FOLLOWER (acks=1 and acks=all, from the
/// moment it runs until it is back in the in-sync set); it truncates what
/// it had written past the new leader's log and catches up. The new
/// leader is then killed, so that the old one (first in replica order)
/// leads again: what it serves is every acknowledged record, once, in
/// order.
#[test]
fn a_leader_paused_past_its_lease_steps_down_and_rejoins_as_a_follower() {
    let mut rng = common::seeded_rng("a_leader_paused_past_its_lease");
    let mut cluster = start_cluster(3);
    let nodes = [0, 1, 2];
    create_topic_on(&cluster, &nodes);
    let old = wait_for_leader(&cluster, &[0, 1, 2], |leader| leader == 0, "node 0 leads");
    let producer = acks_all_producer(&cluster);
    let run = Run::default();
    let probing = AtomicBool::new(false);
    let (sent, probes, new) = std::thread::scope(|scope| {
        let stopper = StopOnDrop(&run.stop);
        let sender = scope.spawn(|| run.produce(&producer));
        std::thread::sleep(Duration::from_millis(rand::Rng::random_range(
            &mut rng,
            800..1_600,
        )));
        cluster.signal(old as u32, libc::SIGSTOP);
        let stopped_at = Instant::now();
        let first_after_stop = run.queued.load(Ordering::SeqCst) + 1;
        let others: Vec<u32> = [1, 2].into();
        let new = wait_for_leader(
            &cluster,
            &others,
            |leader| leader >= 0 && leader != old,
            &format!("node {old}, stopped, is succeeded"),
        );
        wait_until(
            || run.stored_since(&producer, first_after_stop),
            &format!("a record sent after node {old} stopped is stored at node {new}"),
        );
        // Paused past the broker's own lease (2 s), not only the
        // controller's (1 s), after which it was succeeded.
        let paused_for = BROKER_LEASE + Duration::from_millis(500);
        if let Some(rest) = paused_for.checked_sub(stopped_at.elapsed()) {
            std::thread::sleep(rest);
        }
        let stored_before = run.stored_count(&producer);
        // From the moment it runs until it is back in the in-sync set,
        // produces are sent to it back to back; the first is waiting in
        // its socket when it runs again.
        let old_addr = cluster.kafka_addr(old as u32);
        let probing = &probing;
        probing.store(true, Ordering::SeqCst);
        let prober = scope.spawn(move || probe_until(&old_addr, probing));
        cluster.signal(old as u32, libc::SIGCONT);
        eprintln!(
            "node {old} stopped for {:?}; node {new} leads; {stored_before} records stored meanwhile",
            stopped_at.elapsed()
        );
        let all: BTreeSet<i32> = nodes.iter().map(|node| *node as i32).collect();
        wait_until(
            || {
                for node in nodes {
                    let seen = partition_seen(&cluster, node)?;
                    if seen.leader != new || seen.in_sync != all {
                        return Err(format!("node {node} says {seen:?}"));
                    }
                }
                Ok(())
            },
            &format!("node {old}, running again, follows node {new} and is back in sync"),
        );
        probing.store(false, Ordering::SeqCst);
        let answers = prober.join().unwrap();
        let wrong: Vec<&(i16, Result<i16, String>)> = answers
            .iter()
            .filter(|(_, answer)| *answer != Ok(NOT_LEADER_OR_FOLLOWER))
            .collect();
        assert!(
            wrong.is_empty(),
            "of {} produces sent to node {old} after it ran again (paused past its lease, succeeded by node {new}), {} were not answered NOT_LEADER_OR_FOLLOWER ({NOT_LEADER_OR_FOLLOWER}); (acks, answer) of the first: {:?}{}",
            answers.len(),
            wrong.len(),
            &wrong[..wrong.len().min(10)],
            if wrong.iter().any(|(_, answer)| *answer == Ok(0)) {
                " (0: the old leader took a write)"
            } else {
                ""
            }
        );
        let probes = answers.len();
        eprintln!("node {old} refused {probes} produces and is back in sync");
        // Writes go on with the old leader following.
        let first_after_return = run.queued.load(Ordering::SeqCst) + 1;
        wait_until(
            || run.stored_since(&producer, first_after_return),
            "a record sent after the old leader rejoined is stored",
        );
        drop(stopper);
        (sender.join().unwrap(), probes, new)
    });
    let acknowledged = run.outcomes(&producer, sent);
    assert!(probes > 0);
    // The old leader, first in sync in replica order, leads again once
    // its successor is killed: what it holds is what is read back.
    cluster.kill9(new as u32);
    let left: Vec<u32> = nodes
        .into_iter()
        .filter(|node| *node != new as u32)
        .collect();
    wait_for_leader(
        &cluster,
        &left,
        |leader| leader == old,
        &format!("node {old}, the old leader, leads again after node {new}'s kill"),
    );
    assert_read_back(&cluster, sent, &acknowledged);
}

// ---------------------------------------------------------------------
// 2. Two failovers in a row.
// ---------------------------------------------------------------------

/// An idempotent acks=all producer writes while the partition's leader is
/// killed with SIGKILL, and then its successor: with one replica of three
/// left, which leads alone, writes are refused with NOT_ENOUGH_REPLICAS
/// and nothing sent then is acknowledged; both come back, catch up,
/// writes resume, and every acknowledged record is read back. Both led
/// the partition when they were killed, and their own copies of the
/// metadata still say so as they start: neither takes a produce sent
/// straight to it (acks=1 or acks=all) before it is back in sync.
#[test]
fn two_failovers_in_a_row_refuse_writes_below_min_insync_and_lose_nothing() {
    let mut rng = common::seeded_rng("two_failovers_in_a_row");
    let mut cluster = start_cluster(6);
    create_topic_on(&cluster, &SIX_NODE_REPLICAS.map(|node| node as u32));
    let watchers: [u32; 3] = [0, 1, 2];
    let first = wait_for_leader(&cluster, &watchers, |leader| leader >= 0, "a leader");
    let producer = acks_all_producer(&cluster);
    let run = Run::default();
    let probing = AtomicBool::new(false);
    let (sent, second, survivor) = std::thread::scope(|scope| {
        let stopper = StopOnDrop(&run.stop);
        let sender = scope.spawn(|| run.produce(&producer));
        std::thread::sleep(Duration::from_millis(rand::Rng::random_range(
            &mut rng,
            800..1_600,
        )));
        cluster.kill9(first as u32);
        let first_after = run.queued.load(Ordering::SeqCst) + 1;
        let second = wait_for_leader(
            &cluster,
            &watchers,
            |leader| leader >= 0 && leader != first,
            &format!("node {first}, killed, is succeeded"),
        );
        wait_until(
            || run.stored_since(&producer, first_after),
            &format!("a record sent after node {first}'s kill is stored at node {second}"),
        );
        std::thread::sleep(Duration::from_millis(rand::Rng::random_range(
            &mut rng,
            300..1_000,
        )));
        cluster.kill9(second as u32);
        let survivor = SIX_NODE_REPLICAS
            .into_iter()
            .find(|node| *node != first && *node != second)
            .unwrap();
        wait_for_in_sync(
            &cluster,
            &[survivor],
            &format!("node {survivor}, the last replica up, leads alone"),
        );
        // Nothing sent from now on may be acknowledged while it is alone.
        let first_alone = run.queued.load(Ordering::SeqCst) + 1;
        let refused = probe_produce(&cluster.kafka_addr(survivor as u32), 0, -1, "probe-alone");
        assert_eq!(
            refused,
            Ok(NOT_ENOUGH_REPLICAS),
            "acks=all to node {survivor}, leading alone with min.insync.replicas=2"
        );
        let client = producer_for(
            &cluster.kafka_bootstrap(),
            &[
                ("acks", "all"),
                ("enable.idempotence", "false"),
                ("retries", "0"),
                ("message.timeout.ms", "5000"),
            ],
        );
        let outcome = produce(
            &client,
            TOPIC,
            Some(0),
            &[kafka_common::Record::new(None, Some(b"probe-client"))],
        );
        match &outcome[0] {
            Err(KafkaError::MessageProduction(RDKafkaErrorCode::NotEnoughReplicas)) => {}
            outcome => panic!(
                "librdkafka's acks=all with 1 of min.insync.replicas=2 in sync: {outcome:?}, not NOT_ENOUGH_REPLICAS"
            ),
        }
        // The continuous producer kept sending: none of it is stored yet.
        let early: Vec<usize> = run
            .stored(&producer)
            .into_iter()
            .filter(|(index, _)| *index >= first_alone)
            .map(|(index, _)| index)
            .collect();
        assert!(
            early.is_empty(),
            "records sent while node {survivor} was alone were acknowledged: {:?}",
            &early[..early.len().min(10)]
        );
        // Both led the partition when they were killed, and their logs
        // of the metadata say so as they start: neither may take a write
        // until it has learned that it no longer leads.
        let probing = &probing;
        probing.store(true, Ordering::SeqCst);
        let addrs = [first, second].map(|node| cluster.kafka_addr(node as u32));
        let probers = addrs
            .clone()
            .map(|addr| scope.spawn(move || probe_until(&addr, probing)));
        cluster.restart(first as u32, &[]);
        cluster.restart(second as u32, &[]);
        wait_for_in_sync(
            &cluster,
            &SIX_NODE_REPLICAS,
            &format!("nodes {first} and {second}, started again, are back in sync"),
        );
        probing.store(false, Ordering::SeqCst);
        for (node, prober) in [first, second].into_iter().zip(probers) {
            let answers = prober.join().unwrap();
            let taken: Vec<&(i16, Result<i16, String>)> = answers
                .iter()
                .filter(|(_, answer)| *answer == Ok(0))
                .collect();
            let codes: BTreeSet<String> = answers
                .iter()
                .map(|(_, answer)| format!("{answer:?}"))
                .collect();
            assert!(
                taken.is_empty(),
                "node {node}, started again after it was succeeded, took {} of {} produces sent to it before it was back in sync (acks of the first: {}); answers seen: {codes:?}",
                taken.len(),
                answers.len(),
                taken[0].0
            );
            eprintln!(
                "node {node}, starting again, answered {} produces: {codes:?}",
                answers.len()
            );
        }
        let first_after_return = run.queued.load(Ordering::SeqCst) + 1;
        wait_until(
            || run.stored_since(&producer, first_after_return),
            "a record sent after both returned is stored",
        );
        drop(stopper);
        (sender.join().unwrap(), second, survivor)
    });
    eprintln!("nodes {first} then {second} killed; node {survivor} was left; {sent} records sent");
    let acknowledged = run.outcomes(&producer, sent);
    assert_read_back(&cluster, sent, &acknowledged);
}

// ---------------------------------------------------------------------
// 3. A follower restarted with a torn or corrupt tail.
// ---------------------------------------------------------------------

/// How a follower's newest segment is damaged while it is down.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// The file ends inside its last batch, as after a torn write.
    CutTail,
    /// Bytes inside its last batch are flipped (its CRC no longer checks).
    FlipLastBatch,
}

#[test]
fn a_follower_restarted_with_a_torn_tail_catches_up_and_loses_nothing() {
    follower_restarted_with_a_damaged_tail(
        "a_follower_restarted_with_a_torn_tail",
        Damage::CutTail,
    );
}

#[test]
fn a_follower_restarted_with_a_corrupt_last_batch_catches_up_and_loses_nothing() {
    follower_restarted_with_a_damaged_tail(
        "a_follower_restarted_with_a_corrupt_last_batch",
        Damage::FlipLastBatch,
    );
}

/// Node 1 follows node 0 in a partition placed on nodes 0, 1, 2; it is
/// killed with SIGKILL while an acks=all producer writes, the last batch
/// of its newest segment is damaged while it is down, and it is started
/// again: it recovers (the damaged batch is cut), reconciles by epoch,
/// catches up and rejoins the in-sync set. Then the leader is killed, and
/// node 1, first of the in-sync set in replica order, leads: every
/// acknowledged record is read back from it.
fn follower_restarted_with_a_damaged_tail(test: &str, damage: Damage) {
    let mut rng = common::seeded_rng(test);
    let mut cluster = start_cluster(3);
    let nodes = [0, 1, 2];
    create_topic_on(&cluster, &nodes);
    let (leader, follower) = (0, 1);
    wait_for_leader(&cluster, &nodes, |seen| seen == leader, "node 0 leads");
    let producer = acks_all_producer(&cluster);
    let run = Run::default();
    let sent = std::thread::scope(|scope| {
        let stopper = StopOnDrop(&run.stop);
        let sender = scope.spawn(|| run.produce(&producer));
        std::thread::sleep(Duration::from_millis(rand::Rng::random_range(
            &mut rng,
            800..1_600,
        )));
        cluster.kill9(follower as u32);
        let segment = newest_segment(&cluster.node_dir(follower as u32));
        let (cut, detail) = damage_last_batch(&segment, damage);
        eprintln!(
            "{test}: node {follower} killed; {damage:?} at byte {cut} of {}: {detail}",
            segment.display()
        );
        let two: BTreeSet<i32> = [leader, 2].into();
        wait_until(
            || {
                let seen = partition_seen(&cluster, leader as u32)?;
                match seen.in_sync == two {
                    true => Ok(()),
                    false => Err(format!("{seen:?}")),
                }
            },
            &format!("node {follower}, killed, leaves the in-sync set"),
        );
        cluster.restart(follower as u32, &[]);
        let log_path = cluster.node_dir(follower as u32).join("log.restarted");
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        assert!(
            log.contains("torn batch at the end of the log: truncated"),
            "node {follower} started on a damaged log and did not say it cut its tail:\n{log}"
        );
        let all: BTreeSet<i32> = nodes.iter().map(|node| *node as i32).collect();
        wait_until(
            || {
                for node in nodes {
                    let seen = partition_seen(&cluster, node)?;
                    if seen.leader != leader || seen.in_sync != all {
                        return Err(format!("node {node} says {seen:?}"));
                    }
                }
                Ok(())
            },
            &format!(
                "node {follower}, started again on a damaged log, is back in sync; its log:\n{log}"
            ),
        );
        let first_after_return = run.queued.load(Ordering::SeqCst) + 1;
        wait_until(
            || run.stored_since(&producer, first_after_return),
            "a record sent after the follower rejoined is stored",
        );
        cluster.kill9(leader as u32);
        let first_after_kill = run.queued.load(Ordering::SeqCst) + 1;
        wait_for_leader(
            &cluster,
            &[1, 2],
            |seen| seen == follower,
            &format!(
                "node {follower}, first in sync in replica order, leads after node {leader}'s kill"
            ),
        );
        wait_until(
            || run.stored_since(&producer, first_after_kill),
            &format!("a record sent after node {leader}'s kill is stored at node {follower}"),
        );
        drop(stopper);
        sender.join().unwrap()
    });
    let acknowledged = run.outcomes(&producer, sent);
    assert_read_back(&cluster, sent, &acknowledged);
}

/// The newest segment file of partition 0 of [`TOPIC`] under a node's
/// directory.
fn newest_segment(node_dir: &Path) -> PathBuf {
    let topics = node_dir.join("data").join("topics");
    let topic_dir = std::fs::read_dir(&topics)
        .unwrap_or_else(|error| panic!("{}: {error}", topics.display()))
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with(&format!("{TOPIC}-")))
        })
        .unwrap_or_else(|| panic!("no directory of {TOPIC} in {}", topics.display()));
    let partition = topic_dir.join("0");
    let mut segments: Vec<PathBuf> = std::fs::read_dir(&partition)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    segments.sort();
    segments
        .pop()
        .unwrap_or_else(|| panic!("no segment in {}", partition.display()))
}

/// Damages the last batch of `segment` as `damage` says; where, and what
/// the batch was.
fn damage_last_batch(segment: &Path, damage: Damage) -> (u64, String) {
    use sluice_storage::batch::{BatchHeader, BATCH_HEADER_BYTES};
    let bytes = std::fs::read(segment).unwrap();
    let mut position = 0;
    let mut last = None;
    while position + BATCH_HEADER_BYTES <= bytes.len() {
        let Ok(header) = BatchHeader::parse(&bytes[position..]) else {
            break;
        };
        let length = header.batch_bytes as usize;
        if length < BATCH_HEADER_BYTES || position + length > bytes.len() {
            break;
        }
        last = Some((position, length, header.base_offset, header.next_offset()));
        position += length;
    }
    let (start, length, base, next) =
        last.unwrap_or_else(|| panic!("no batch in {}", segment.display()));
    let detail = format!("its last batch, offsets {base:?} to {next}, {length} bytes at {start}");
    match damage {
        Damage::CutTail => {
            let cut = start + length / 2;
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(segment)
                .unwrap();
            file.set_len(cut as u64).unwrap();
            file.sync_all().unwrap();
            (cut as u64, detail)
        }
        Damage::FlipLastBatch => {
            let at = start + BATCH_HEADER_BYTES + (length - BATCH_HEADER_BYTES) / 2;
            let mut damaged = bytes;
            for byte in &mut damaged[at..(at + 4).min(start + length)] {
                *byte ^= 0xff;
            }
            std::fs::write(segment, &damaged).unwrap();
            (at as u64, detail)
        }
    }
}

// ---------------------------------------------------------------------
// 4. The last replica standing.
// ---------------------------------------------------------------------

/// KIP-966: in a partition of three replicas with `min.insync.replicas=2`,
/// the followers are killed one by one (acks=all is refused once one is
/// left in sync), then the leader. The first follower killed, which lacks
/// what was written after it, is started again alone: it is neither in
/// sync nor eligible, and unclean election is off, so the partition stays
/// without a leader. The last leader is started again: it leads, the
/// first follower catches up from it, and every acknowledged record is
/// there.
#[test]
fn the_last_replica_standing_leads_again_and_a_shorter_log_never_does() {
    let mut cluster = start_cluster(6);
    create_topic_on(&cluster, &SIX_NODE_REPLICAS.map(|node| node as u32));
    let watchers: [u32; 3] = [0, 1, 2];
    let leader = wait_for_leader(&cluster, &watchers, |leader| leader >= 0, "a leader");
    let followers: Vec<i32> = SIX_NODE_REPLICAS
        .into_iter()
        .filter(|node| *node != leader)
        .collect();
    let (first_down, second_down) = (followers[0], followers[1]);
    let producer = acks_all_producer(&cluster);
    let mut acknowledged: Vec<(usize, Placed)> = Vec::new();
    let mut sent = 0;
    let mut write = |count: usize, acknowledged: &mut Vec<(usize, Placed)>| {
        let records: Vec<kafka_common::Record> = (sent..sent + count)
            .map(|index| kafka_common::Record::new(None, Some(value_of(index).as_bytes())))
            .collect();
        let placed = kafka_common::produce_ok(&producer, TOPIC, Some(0), &records);
        acknowledged.extend((sent..).zip(placed));
        sent += count;
    };
    write(300, &mut acknowledged);

    cluster.kill9(first_down as u32);
    wait_for_in_sync(
        &cluster,
        &[leader, second_down],
        "the first follower killed leaves",
    );
    write(300, &mut acknowledged);

    cluster.kill9(second_down as u32);
    wait_for_in_sync(&cluster, &[leader], "the second follower killed leaves");
    assert_eq!(
        probe_produce(&cluster.kafka_addr(leader as u32), 0, -1, "probe-alone"),
        Ok(NOT_ENOUGH_REPLICAS),
        "acks=all to node {leader}, alone in sync with min.insync.replicas=2"
    );

    cluster.kill9(leader as u32);
    wait_until(
        || {
            let seen = partition_seen(&cluster, 0)?;
            match seen.leader {
                -1 => Ok(()),
                _ => Err(format!("{seen:?}")),
            }
        },
        &format!("the partition has no leader once node {leader}, the last in sync, is killed"),
    );

    // The first follower killed, behind by 300 acknowledged records.
    cluster.restart(first_down as u32, &[]);
    wait_until(
        || match metadata(&cluster.kafka_addr(0), None) {
            Some(seen) if seen.brokers.contains(&first_down) => Ok(()),
            Some(seen) => Err(format!("brokers {:?}", seen.brokers)),
            None => Err("no answer".to_string()),
        },
        &format!("node {first_down}, started again, is a live broker"),
    );
    let watch_until = Instant::now() + LEADERLESS_WATCH;
    while Instant::now() < watch_until {
        for node in [0, first_down as u32] {
            if let Ok(seen) = partition_seen(&cluster, node) {
                assert_eq!(
                    seen.leader, -1,
                    "node {node} names a leader while only node {first_down}, neither in sync nor eligible (its log lacks 300 acknowledged records), is up: {seen:?}"
                );
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    cluster.restart(leader as u32, &[]);
    wait_for_leader(
        &cluster,
        &watchers,
        |seen| seen == leader,
        &format!("node {leader}, the last leader, leads again"),
    );
    wait_for_in_sync(
        &cluster,
        &[leader, first_down],
        "the first follower killed catches up and rejoins",
    );
    write(300, &mut acknowledged);
    assert_read_back(&cluster, sent, &acknowledged);
}

// ---------------------------------------------------------------------
// 5. kafka-python through the kill of a leader.
// ---------------------------------------------------------------------

/// How long the kafka-python script produces.
const PYTHON_PRODUCE_SECONDS: &str = "8";

/// kafka-python's idempotent acks=all producer writes to a partition of
/// three replicas while its leader is killed with SIGKILL: every record it
/// reports stored is read back.
#[test]
fn kafka_python_acks_all_records_survive_the_kill_of_the_leader() {
    if !kafka_python_installed() {
        return;
    }
    let mut rng = common::seeded_rng("kafka_python_acks_all_records_survive");
    let mut cluster = start_cluster(3);
    let nodes = [0, 1, 2];
    create_topic_on(&cluster, &nodes);
    let leader = wait_for_leader(&cluster, &nodes, |leader| leader >= 0, "a leader");
    let scripts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kafka_clients");
    let mut child = Command::new("python3")
        .arg("kafka_python_failover.py")
        .args([&cluster.kafka_bootstrap(), TOPIC, PYTHON_PRODUCE_SECONDS])
        .current_dir(&scripts)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let consumer = consumer_for(&cluster.kafka_bootstrap(), &[]);
    wait_until(
        || match consumer.fetch_watermarks(TOPIC, 0, Duration::from_secs(5)) {
            Ok((_, high)) if high >= 200 => Ok(()),
            Ok((_, high)) => Err(format!("high watermark {high}")),
            Err(error) => Err(error.to_string()),
        },
        "kafka-python's records are being stored",
    );
    std::thread::sleep(Duration::from_millis(rand::Rng::random_range(
        &mut rng,
        200..1_500,
    )));
    cluster.kill9(leader as u32);
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kafka_python_failover.py still ran after 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = out.join().unwrap();
    let err = err.join().unwrap();
    assert!(
        status.success(),
        "kafka_python_failover.py exited with {status}\n--- stdout (tail)\n{}\n--- stderr\n{err}",
        tail(&out, 20)
    );
    let mut acknowledged = Vec::new();
    let mut failed = Vec::new();
    let mut sent = None;
    for line in out.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["ack", index, partition, offset] => acknowledged.push((
                index.parse().unwrap(),
                Placed {
                    partition: partition.parse().unwrap(),
                    offset: offset.parse().unwrap(),
                },
            )),
            ["err", index, ..] => failed.push((index.to_string(), line.to_string())),
            ["sent", count] => sent = Some(count.parse::<usize>().unwrap()),
            _ => {}
        }
    }
    let sent = sent.unwrap_or_else(|| panic!("the script did not say how many it sent:\n{out}"));
    eprintln!(
        "kafka-python: {sent} sent, {} acknowledged, {} failed (first: {:?}); node {leader} killed",
        acknowledged.len(),
        failed.len(),
        failed.first()
    );
    assert_eq!(
        acknowledged.len() + failed.len(),
        sent,
        "every record sent has an outcome"
    );
    assert!(
        acknowledged.len() > sent / 2,
        "most records are stored through a failover: {} of {sent}",
        acknowledged.len()
    );
    assert_read_back(&cluster, sent, &acknowledged);
}

fn kafka_python_installed() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import kafka"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        assert_ne!(
            std::env::var("SLUICE_REQUIRE_KAFKA_CLIENTS").as_deref(),
            Ok("1"),
            "kafka-python is not installed (pip install -r tools/tests/kafka_clients/requirements.txt) and SLUICE_REQUIRE_KAFKA_CLIENTS=1"
        );
        eprintln!("SKIPPED: kafka-python is not installed (pip install -r tools/tests/kafka_clients/requirements.txt)");
    }
    found
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---------------------------------------------------------------------
// What the tests share.
// ---------------------------------------------------------------------

/// Starts `nodes` nodes (leadership moves only when the tests make it:
/// no automatic rebalancing) and waits until each lists all as brokers.
fn start_cluster(nodes: u32) -> LocalCluster {
    let cluster = LocalCluster::start_with(nodes, &[("SLUICE_AUTO_LEADER_REBALANCE", "false")]);
    cluster.wait_for_brokers(nodes);
    cluster
}

/// Creates [`TOPIC`], one partition on `replicas` (in that order, the
/// first its preferred leader) with `min.insync.replicas=2`, and waits
/// until every replica is in sync.
fn create_topic_on(cluster: &LocalCluster, replicas: &[u32]) {
    let bootstrap = cluster.kafka_bootstrap();
    let admin: AdminClient<DefaultClientContext> =
        common::cluster::client(&bootstrap).create().unwrap();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let assignment: Vec<i32> = replicas.iter().map(|node| *node as i32).collect();
    let assignments = [assignment.as_slice()];
    let topic = NewTopic::new(TOPIC, 1, TopicReplication::Variable(&assignments))
        .set("min.insync.replicas", "2");
    let results = futures_lite::future::block_on(admin.create_topics([&topic], &options))
        .unwrap_or_else(|error| panic!("CreateTopics {TOPIC}: {error}"));
    assert_eq!(
        results,
        vec![Ok(TOPIC.to_string())],
        "CreateTopics {TOPIC} on {replicas:?}"
    );
    let all: BTreeSet<i32> = assignment.iter().copied().collect();
    wait_until(
        || {
            let seen = partition_seen(cluster, replicas[0])?;
            match seen.in_sync == all && seen.leader >= 0 {
                true => Ok(()),
                false => Err(format!("{seen:?}")),
            }
        },
        &format!("every replica of {TOPIC} ({replicas:?}) is in sync"),
    );
}

/// Partition 0 of [`TOPIC`] as node `node`'s Kafka Metadata gives it.
fn partition_seen(cluster: &LocalCluster, node: u32) -> Result<PartitionSeen, String> {
    let seen = metadata(&cluster.kafka_addr(node), Some(TOPIC))
        .ok_or_else(|| format!("node {node} does not answer or does not know {TOPIC}"))?;
    seen.partitions
        .into_iter()
        .next()
        .ok_or_else(|| format!("node {node} gives no partition of {TOPIC}"))
}

/// Waits until every node of `asked` names the same leader of partition
/// 0, one that `wanted` takes; that leader.
fn wait_for_leader(
    cluster: &LocalCluster,
    asked: &[u32],
    wanted: impl Fn(i32) -> bool,
    what: &str,
) -> i32 {
    wait_until(
        || {
            let leaders: BTreeSet<i32> = asked
                .iter()
                .map(|node| partition_seen(cluster, *node).map(|seen| seen.leader))
                .collect::<Result<_, _>>()?;
            match leaders.first() {
                Some(leader) if leaders.len() == 1 && wanted(*leader) => Ok(*leader),
                _ => Err(format!("nodes {asked:?} name leaders {leaders:?}")),
            }
        },
        what,
    )
}

/// Waits until node 0 and every node of `in_sync` (each of them up) say
/// that the in-sync set of partition 0 is `in_sync`, with a leader among
/// them and the same on every one.
fn wait_for_in_sync(cluster: &LocalCluster, in_sync: &[i32], what: &str) {
    let wanted: BTreeSet<i32> = in_sync.iter().copied().collect();
    let asked: BTreeSet<u32> = in_sync.iter().map(|node| *node as u32).chain([0]).collect();
    wait_until(
        || {
            let mut leaders = BTreeSet::new();
            for node in &asked {
                let seen = partition_seen(cluster, *node)?;
                if seen.in_sync != wanted || !wanted.contains(&seen.leader) {
                    return Err(format!("node {node} says {seen:?}"));
                }
                leaders.insert(seen.leader);
            }
            match leaders.len() {
                1 => Ok(()),
                _ => Err(format!("nodes {asked:?} name leaders {leaders:?}")),
            }
        },
        &format!("{what} (in sync: {wanted:?})"),
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
            ("topic.metadata.refresh.interval.ms", "500"),
            // A request to a node that stopped answering (paused, or
            // killed without its connections closing) is given up on
            // soon and sent again to the partition's leader of the time.
            ("socket.timeout.ms", "3000"),
        ],
    )
}

/// Sends raw Kafka Produces of one record each to partition 0 of
/// [`TOPIC`] at `addr`, back to back on one connection, acks=1 and
/// acks=all in turn, until `probing` is cleared; (acks, answer) of each.
/// While nothing listens at `addr`, it tries again to connect.
fn probe_until(addr: &str, probing: &AtomicBool) -> Vec<(i16, Result<i16, String>)> {
    let mut answers = Vec::new();
    let mut stream = None;
    while probing.load(Ordering::SeqCst) {
        let acks = if answers.len() % 2 == 0 { 1 } else { -1 };
        let value = format!("probe-{}", answers.len());
        let mut connected = match stream.take() {
            Some(stream) => stream,
            None => match connect(addr) {
                Ok(stream) => stream,
                // Not listening (not started yet): it takes no writes.
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
            },
        };
        let answer = produce_on(&mut connected, 0, acks, &value);
        if answer.is_ok() {
            stream = Some(connected);
        }
        answers.push((acks, answer));
    }
    answers
}

fn connect(addr: &str) -> Result<std::net::TcpStream, String> {
    let stream = std::net::TcpStream::connect(addr).map_err(|error| error.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    Ok(stream)
}

/// One raw Kafka Produce (v9) of one record to `partition` of [`TOPIC`]
/// on a new connection to `addr`: the partition's error code, or why no
/// answer came.
fn probe_produce(addr: &str, partition: i32, acks: i16, value: &str) -> Result<i16, String> {
    produce_on(&mut connect(addr)?, partition, acks, value)
}

/// [`probe_produce`] on `stream`.
fn produce_on(
    stream: &mut std::net::TcpStream,
    partition: i32,
    acks: i16,
    value: &str,
) -> Result<i16, String> {
    use kafka_protocol::{
        messages::{
            produce_request::{PartitionProduceData, TopicProduceData},
            ApiKey, ProduceRequest, ProduceResponse, TopicName,
        },
        protocol::StrBytes,
        records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType},
    };
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 1_700_000_000_000,
        key: None,
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        headers: Default::default(),
    };
    let mut batch = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut batch,
        &[record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    let request = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(3_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(TOPIC.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch.freeze()))])]);
    let response: ProduceResponse = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        common::kafka_exchange(stream, ApiKey::Produce, 9, 7, "probe", &request)
    }))
    .map_err(|_| "no answer within 10 s".to_string())?;
    response
        .responses
        .first()
        .and_then(|topic| topic.partition_responses.first())
        .map(|partition| partition.error_code)
        .ok_or_else(|| format!("an answer without the partition: {response:?}"))
}

/// The value of the record sent with `index`.
fn value_of(index: usize) -> String {
    format!("v{index}")
}

/// Sets its flag when dropped, so that the producing thread stops when a
/// check fails as well.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A continuous producer's run: how many records it handed over, and when
/// to stop.
#[derive(Default)]
struct Run {
    queued: AtomicUsize,
    stop: AtomicBool,
}

impl Run {
    /// Sends `v0`, `v1`, ... to partition 0 of [`TOPIC`], one every
    /// [`SEND_INTERVAL`], until told to stop; how many it sent.
    fn produce(&self, producer: &KafkaProducer) -> usize {
        let mut index = 0;
        while !self.stop.load(Ordering::SeqCst) {
            let value = value_of(index);
            let record = BaseRecord::<(), _, _>::with_opaque_to(TOPIC, Box::new(index))
                .partition(0)
                .payload(&value);
            if let Err((error, _)) = producer.send(record) {
                panic!("{value} not queued: {error}");
            }
            index += 1;
            self.queued.store(index, Ordering::SeqCst);
            producer.poll(Duration::ZERO);
            std::thread::sleep(SEND_INTERVAL);
        }
        index
    }

    fn stored(&self, producer: &KafkaProducer) -> Vec<(usize, Placed)> {
        producer.context().stored()
    }

    fn stored_count(&self, producer: &KafkaProducer) -> usize {
        producer.context().stored().len()
    }

    /// `Ok` once a record sent with index `first` or later is stored.
    fn stored_since(&self, producer: &KafkaProducer, first: usize) -> Result<(), String> {
        let stored = producer.context().stored();
        match stored.iter().any(|(index, _)| *index >= first) {
            true => Ok(()),
            false => Err(format!(
                "none of the records from {first} on stored ({} stored in all, {} sent)",
                stored.len(),
                self.queued.load(Ordering::SeqCst)
            )),
        }
    }

    /// Flushes and returns what was acknowledged, by the index it was sent
    /// with. A record the producer gave up on is not acknowledged, and
    /// says nothing.
    fn outcomes(&self, producer: &KafkaProducer, sent: usize) -> Vec<(usize, Placed)> {
        producer
            .flush(Duration::from_secs(60))
            .unwrap_or_else(|error| panic!("the producer did not flush: {error}"));
        let outcomes = producer.context().take_outcomes(sent);
        let failed: Vec<String> = outcomes
            .iter()
            .enumerate()
            .filter_map(|(index, outcome)| {
                Some(format!("{}: {}", value_of(index), outcome.as_ref().err()?))
            })
            .collect();
        eprintln!(
            "{sent} records sent, {} acknowledged, {} not (first: {:?})",
            sent - failed.len(),
            failed.len(),
            failed.first()
        );
        outcomes
            .into_iter()
            .enumerate()
            .filter_map(|(index, outcome)| Some((index, outcome.ok()?)))
            .collect()
    }
}

/// Reads partition 0 of [`TOPIC`] from its beginning to its high
/// watermark and checks what the producers were told: every acknowledged
/// record is at the offset it was acknowledged at; every record read was
/// sent (`v` and an index below `sent`: nothing a probe sent), is there
/// once, and the records are in the order they were sent.
fn assert_read_back(cluster: &LocalCluster, sent: usize, acknowledged: &[(usize, Placed)]) {
    let consumer = consumer_for(&cluster.kafka_bootstrap(), &[]);
    // A new leader's high watermark reaches what its predecessor committed
    // once its followers answer it.
    let last = acknowledged.iter().map(|(_, placed)| placed.offset).max();
    let high = wait_until(
        || match consumer.fetch_watermarks(TOPIC, 0, Duration::from_secs(5)) {
            Ok((_, high)) if last.is_none_or(|last| last < high) => Ok(high),
            Ok((_, high)) => Err(format!(
                "high watermark {high}, offset {last:?} was acknowledged"
            )),
            Err(error) => Err(error.to_string()),
        },
        "the high watermark passes every acknowledged offset",
    );
    let read = read_to_end(&consumer, TOPIC, &[(0, Offset::Beginning)]);
    let read = &read[&0];
    let mut at: BTreeMap<i64, usize> = BTreeMap::new();
    let mut first_at: BTreeMap<usize, i64> = BTreeMap::new();
    let mut last_index = None;
    for consumed in read {
        let value = consumed.record.value.as_deref().unwrap_or_default();
        let value = String::from_utf8_lossy(value);
        let index: usize = value
            .strip_prefix('v')
            .and_then(|index| index.parse().ok())
            .filter(|index| *index < sent)
            .unwrap_or_else(|| {
                panic!(
                    "offset {}: {value:?} was never sent by the producer (a probe's write was stored)",
                    consumed.offset
                )
            });
        if let Some(first) = first_at.insert(index, consumed.offset) {
            panic!(
                "{} stored twice, at offsets {first} and {}",
                value_of(index),
                consumed.offset
            );
        }
        if let Some((last, offset)) = last_index {
            assert!(
                index > last,
                "out of order: {} at offset {}, after {} at offset {offset}",
                value_of(index),
                consumed.offset,
                value_of(last)
            );
        }
        last_index = Some((index, consumed.offset));
        at.insert(consumed.offset, index);
    }
    let offsets: Vec<i64> = read.iter().map(|consumed| consumed.offset).collect();
    assert!(
        offsets.iter().copied().eq(0..high),
        "{} records read up to the high watermark {high}, offsets {:?} to {:?}",
        offsets.len(),
        offsets.first(),
        offsets.last()
    );
    let lost: Vec<String> = acknowledged
        .iter()
        .filter(|(index, placed)| at.get(&placed.offset) != Some(index))
        .map(|(index, placed)| {
            format!(
                "{} (acknowledged at offset {}, which holds {})",
                value_of(*index),
                placed.offset,
                at.get(&placed.offset)
                    .map_or("nothing".to_string(), |held| value_of(*held))
            )
        })
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged records are not where they were acknowledged (high watermark {high}); the first: {:?}",
        lost.len(),
        acknowledged.len(),
        &lost[..lost.len().min(10)]
    );
    eprintln!(
        "{high} records read back, every one of the {} acknowledged among them",
        acknowledged.len()
    );
}
