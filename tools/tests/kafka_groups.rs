//! Black box: consumer groups with librdkafka (the `rdkafka` crate) against
//! the built `sluice` binary, checked against Kafka's documented semantics.
//!
//! - Classic protocol (`group.protocol=classic`), with librdkafka's default
//!   assignors and with `cooperative-sticky`: three consumers share a
//!   12-partition topic, no partition owned by two at once; one leaves and
//!   its partitions move to the others well within the session timeout.
//! - KIP-848 (`group.protocol=consumer`): a fourth consumer joins three that
//!   read a steady stream; the three keep reading through the change (no
//!   gap longer than a heartbeat interval) and the partitions end up spread
//!   over the four.
//! - `kill -9` of the broker: groups resume exactly at their committed
//!   offsets, and `committed()` still returns them.
//!
//! Every test checks at-least-once on the way: a partition newly assigned
//! to a member starts exactly at the offset last committed for it (or at 0
//! when none was), its records then come without a gap, and every record
//! produced is read at least once.
//!
//! Which member owns what is tracked from the rebalance callbacks, which
//! librdkafka runs inside `poll`. All members are polled from one thread,
//! so the owned sets are compared at moments when no callback runs.

mod common;
mod kafka_common;

use std::{
    collections::{BTreeMap, BTreeSet, HashSet, VecDeque},
    sync::{
        atomic::{AtomicBool, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

use common::Broker;
use kafka_common::{config, create_topic, keep_log_line, log_line, produce_ok, producer, Record};
use rdkafka::{
    client::ClientContext,
    config::RDKafkaLogLevel,
    consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance},
    error::KafkaError,
    message::DeliveryResult,
    producer::{BaseProducer, BaseRecord, Producer, ProducerContext},
    Message, Offset, TopicPartitionList,
};

/// Partitions of the shared topic: divides by 3 and by 4.
const PARTITIONS: i32 = 12;
/// The session timeout the classic consumers ask for; a leaver's
/// partitions must have moved well before it.
const SESSION_TIMEOUT_MS: u64 = 6_000;
/// Records per produce phase of the classic tests.
const RECORDS_PER_PHASE: usize = 1_200;
/// The steady producer's rate in the KIP-848 test.
const RECORDS_PER_SECOND: u64 = 200;
/// KIP-848's `group.consumer.heartbeat.interval.ms` default, used unless the
/// consumers show another by their heartbeats.
const HEARTBEAT_INTERVAL_MS_DEFAULT: u64 = 5_000;
/// Scheduling slack on a small, noisy machine, on top of a heartbeat
/// interval.
const GAP_SLACK_MS: u64 = 1_000;
/// Longest wait for a group to settle or for records to arrive: far above
/// what a healthy broker on loopback needs (Kafka delays a new group's
/// first rebalance by 3 s), well below a test's 60 s.
const SETTLE: Duration = Duration::from_secs(30);
/// A member commits after this many records, or after `COMMIT_INTERVAL`.
const COMMIT_RECORDS: usize = 50;
const COMMIT_INTERVAL: Duration = Duration::from_millis(250);

/// The context of a group member: what its rebalance callbacks said it
/// owns, and its log lines with their time.
#[derive(Default)]
struct Tracker {
    logs: Mutex<VecDeque<(Instant, String)>>,
    /// Owned partitions, each with the last offset read since it was
    /// assigned (`None`: nothing yet).
    owned: Mutex<BTreeMap<i32, Option<i64>>>,
    /// What the callbacks saw that the protocol rules out.
    anomalies: Mutex<Vec<String>>,
    /// Each callback, for failure messages.
    rebalances: Mutex<Vec<String>>,
}

impl Tracker {
    fn owned(&self) -> BTreeSet<i32> {
        self.owned.lock().unwrap().keys().copied().collect()
    }

    fn log_tail(&self, lines: usize) -> String {
        let logs = self.logs.lock().unwrap();
        let skip = logs.len().saturating_sub(lines);
        logs.iter()
            .skip(skip)
            .map(|(_, line)| line.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// When each KIP-848 heartbeat answer came (needs `debug=cgrp`).
    fn heartbeat_answers(&self) -> Vec<Instant> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, line)| line.contains("ConsumerGroupHeartbeat response received"))
            .map(|(at, _)| *at)
            .collect()
    }
}

impl ClientContext for Tracker {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        keep_log_line(
            &self.logs,
            (Instant::now(), log_line(level, facility, message)),
        );
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log(
            RDKafkaLogLevel::Error,
            "ERROR",
            &format!("{error}: {reason}"),
        );
    }
}

impl ConsumerContext for Tracker {
    // A partition counts as owned from just before it is assigned until
    // just after it is revoked: the widest window, so an overlap shows.
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let mut owned = self.owned.lock().unwrap();
        match rebalance {
            Rebalance::Assign(list) => {
                let partitions: Vec<i32> = list.elements().iter().map(|e| e.partition()).collect();
                self.rebalances
                    .lock()
                    .unwrap()
                    .push(format!("assign {partitions:?}"));
                for partition in partitions {
                    if owned.insert(partition, None).is_some() {
                        self.anomalies
                            .lock()
                            .unwrap()
                            .push(format!("partition {partition} assigned while owned"));
                    }
                }
            }
            Rebalance::Revoke(list) => {
                let partitions: Vec<i32> = list.elements().iter().map(|e| e.partition()).collect();
                self.rebalances
                    .lock()
                    .unwrap()
                    .push(format!("revoke {partitions:?}"));
            }
            Rebalance::Error(error) => {
                self.rebalances
                    .lock()
                    .unwrap()
                    .push(format!("error {error}"));
            }
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let mut owned = self.owned.lock().unwrap();
            for element in list.elements() {
                // librdkafka may revoke what it never handed over when an
                // assignment is lost; only a double assign is an anomaly.
                owned.remove(&element.partition());
            }
        }
    }
}

type GroupConsumer = BaseConsumer<Tracker>;

/// A consumer in a group, and what it read.
struct Member {
    name: String,
    consumer: GroupConsumer,
    /// (when polled, partition, offset) of each record read.
    received: Vec<(Instant, i32, i64)>,
    /// Consumer errors (not fatal: a broker kill makes some).
    errors: Vec<String>,
    since_commit: usize,
    last_commit: Instant,
}

/// What the test knows of a group: the offsets it committed, and every
/// record read by any member.
struct Ledger {
    topic: String,
    committed: BTreeMap<i32, i64>,
    consumed: HashSet<(i32, i64)>,
    commits_failed: usize,
}

impl Ledger {
    fn new(topic: &str) -> Ledger {
        Ledger {
            topic: topic.to_string(),
            committed: BTreeMap::new(),
            consumed: HashSet::new(),
            commits_failed: 0,
        }
    }
}

/// A member of `group` subscribed to `topic`, auto commit off (the test
/// commits, synchronously), reading from the earliest offset when nothing
/// is committed.
fn member(
    broker: &Broker,
    group: &str,
    name: &str,
    topic: &str,
    settings: &[(&str, &str)],
) -> Member {
    let mut config = config(broker);
    config
        .set("group.id", group)
        .set("client.id", name)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false");
    for (key, value) in settings {
        config.set(*key, *value);
    }
    let consumer: GroupConsumer = config
        .create_with_context(Tracker::default())
        .unwrap_or_else(|error| panic!("consumer {name}: {error}"));
    consumer
        .subscribe(&[topic])
        .unwrap_or_else(|error| panic!("{name} subscribes to {topic}: {error}"));
    Member {
        name: name.to_string(),
        consumer,
        received: Vec::new(),
        errors: Vec::new(),
        since_commit: 0,
        last_commit: Instant::now(),
    }
}

fn classic_settings(strategy: Option<&'static str>) -> Vec<(&'static str, &'static str)> {
    let mut settings = vec![
        ("group.protocol", "classic"),
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "1000"),
    ];
    if let Some(strategy) = strategy {
        settings.push(("partition.assignment.strategy", strategy));
    }
    settings
}

/// Everything a member says about itself, for a failure message.
fn report(member: &Member) -> String {
    let tracker = member.consumer.context();
    format!(
        "--- {}: owns {:?}; callbacks {:?}; errors {:?}; last log lines:\n{}",
        member.name,
        tracker.owned(),
        tracker.rebalances.lock().unwrap(),
        member.errors,
        tracker.log_tail(30)
    )
}

fn reports(members: &[Member]) -> String {
    members.iter().map(report).collect::<Vec<_>>().join("\n")
}

/// Polls `member` once (up to `timeout`) and takes what is ready, checking
/// each record against what the member owns and what was committed.
fn poll_member(member: &mut Member, ledger: &mut Ledger, timeout: Duration) {
    let mut wait = timeout;
    for _ in 0..500 {
        let message = match member.consumer.poll(wait) {
            None => break,
            Some(Err(error)) => {
                member.errors.push(error.to_string());
                break;
            }
            Some(Ok(message)) => message,
        };
        wait = Duration::ZERO;
        assert_eq!(message.topic(), ledger.topic, "{}", member.name);
        let (partition, offset) = (message.partition(), message.offset());
        let mut owned = member.consumer.context().owned.lock().unwrap();
        let last = owned.get_mut(&partition).unwrap_or_else(|| {
            panic!(
                "{} read {partition}/{offset} of a partition it does not own ({:?})",
                member.name,
                member.consumer.context().rebalances.lock().unwrap()
            )
        });
        let expected = match last {
            // Newly assigned: exactly where the group committed, which
            // neither reads again what was committed nor skips anything.
            None => ledger.committed.get(&partition).copied().unwrap_or(0),
            Some(last) => *last + 1,
        };
        assert_eq!(
            offset,
            expected,
            "{} partition {partition}: read offset {offset}, expected {expected} ({}; committed {:?})",
            member.name,
            if last.is_none() {
                "first record since assigned"
            } else {
                "after the previous one"
            },
            ledger.committed
        );
        *last = Some(offset);
        drop(owned);
        ledger.consumed.insert((partition, offset));
        member.received.push((Instant::now(), partition, offset));
        member.since_commit += 1;
    }
}

/// Commits, synchronously, the position of every partition the member
/// owns and has read, when enough was read or time passed. A commit
/// refused during a rebalance is Kafka's behaviour, and is only counted.
fn maybe_commit(member: &mut Member, ledger: &mut Ledger, force: bool) {
    if member.since_commit == 0
        || !(force
            || member.since_commit >= COMMIT_RECORDS
            || member.last_commit.elapsed() >= COMMIT_INTERVAL)
    {
        return;
    }
    let positions: Vec<(i32, i64)> = member
        .consumer
        .context()
        .owned
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(partition, last)| last.map(|last| (*partition, last + 1)))
        .collect();
    let mut list = TopicPartitionList::new();
    for (partition, offset) in &positions {
        list.add_partition_offset(&ledger.topic, *partition, Offset::Offset(*offset))
            .unwrap();
    }
    member.since_commit = 0;
    member.last_commit = Instant::now();
    match member.consumer.commit(&list, CommitMode::Sync) {
        Ok(()) => {
            for (partition, offset) in positions {
                let before = ledger.committed.insert(partition, offset);
                assert!(
                    before.is_none_or(|before| before <= offset),
                    "{} committed {partition} back from {before:?} to {offset}",
                    member.name
                );
            }
        }
        Err(error) => {
            ledger.commits_failed += 1;
            member.errors.push(format!("commit {positions:?}: {error}"));
        }
    }
}

/// One round: every member polled and, maybe, committed; then no partition
/// may be owned by two members.
fn round(members: &mut [Member], ledger: &mut Ledger) {
    for member in members.iter_mut() {
        poll_member(member, ledger, Duration::from_millis(10));
        maybe_commit(member, ledger, false);
    }
    assert_disjoint(members);
}

fn assert_disjoint(members: &[Member]) {
    let mut owner: BTreeMap<i32, &str> = BTreeMap::new();
    for member in members {
        for partition in member.consumer.context().owned() {
            if let Some(other) = owner.insert(partition, &member.name) {
                panic!(
                    "partition {partition} owned by {other} and {} at once\n{}",
                    member.name,
                    reports(members)
                );
            }
        }
        let anomalies = member.consumer.context().anomalies.lock().unwrap().clone();
        assert!(
            anomalies.is_empty(),
            "{}: {anomalies:?}\n{}",
            member.name,
            reports(members)
        );
    }
}

/// Whether every member owns `each` partitions, together all of them, and
/// librdkafka's `assignment()` agrees with the callbacks.
fn spread_evenly(members: &[Member], each: usize) -> bool {
    let mut all = BTreeSet::new();
    for member in members {
        let owned = member.consumer.context().owned();
        if owned.len() != each {
            return false;
        }
        let assignment: BTreeSet<i32> = match member.consumer.assignment() {
            Ok(list) => list.elements().iter().map(|e| e.partition()).collect(),
            Err(_) => return false,
        };
        if assignment != owned {
            return false;
        }
        all.extend(owned);
    }
    all == (0..PARTITIONS).collect()
}

/// Polls rounds until every member owns `each` partitions; returns when.
fn settle(members: &mut [Member], ledger: &mut Ledger, each: usize, what: &str) -> Instant {
    let deadline = Instant::now() + SETTLE;
    loop {
        round(members, ledger);
        if spread_evenly(members, each) {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "{what}: partitions not spread {each} per member after {SETTLE:?}\n{}",
            reports(members)
        );
    }
}

/// Polls rounds until every record in `expected` was read.
fn read_all(members: &mut [Member], ledger: &mut Ledger, expected: &HashSet<(i32, i64)>) {
    let deadline = Instant::now() + SETTLE;
    loop {
        round(members, ledger);
        let missing = expected.difference(&ledger.consumed).count();
        if missing == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} records never read after {SETTLE:?}\n{}",
            expected.len(),
            reports(members)
        );
    }
}

/// Closes a consumer (LeaveGroup), failing the test rather than hanging
/// if librdkafka cannot finish.
fn close(member: Member) {
    let name = member.name.clone();
    let (done, closed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(member.consumer);
        let _ = done.send(());
    });
    closed
        .recv_timeout(SETTLE)
        .unwrap_or_else(|_| panic!("{name} did not close within {SETTLE:?}"));
}

/// `count` keyed records with the partitioner's choice of partition.
fn produce_phase(broker: &Broker, topic: &str, phase: usize, count: usize) -> Vec<(i32, i64)> {
    let records: Vec<Record> = (0..count)
        .map(|index| {
            Record::new(
                Some(format!("key-{phase}-{index}").as_bytes()),
                Some(format!("value-{phase}-{index}").as_bytes()),
            )
        })
        .collect();
    let producer = producer(broker, &[]);
    produce_ok(&producer, topic, None, &records)
        .into_iter()
        .map(|placed| (placed.partition, placed.offset))
        .collect()
}

/// The committed offsets of `partitions` of `topic` for the consumer's
/// group, as OffsetFetch answers (`None`: nothing committed).
fn committed(
    consumer: &GroupConsumer,
    topic: &str,
    partitions: &[i32],
) -> BTreeMap<i32, Option<i64>> {
    let mut list = TopicPartitionList::new();
    for partition in partitions {
        list.add_partition(topic, *partition);
    }
    let answer = consumer
        .committed_offsets(list, Duration::from_secs(30))
        .unwrap_or_else(|error| {
            panic!(
                "committed offsets: {error}; last log lines:\n{}",
                consumer.context().log_tail(40)
            )
        });
    answer
        .elements()
        .iter()
        .map(|element| {
            assert!(
                element.error().is_ok(),
                "committed offset of {}: {:?}",
                element.partition(),
                element.error()
            );
            let offset = match element.offset() {
                Offset::Offset(offset) => Some(offset),
                Offset::Invalid => None,
                other => panic!("committed offset of {}: {other:?}", element.partition()),
            };
            (element.partition(), offset)
        })
        .collect()
}

/// Three classic members share the topic; one leaves, the two others take
/// its partitions within the session timeout; nothing is lost.
fn three_classic_consumers(strategy: Option<&'static str>, name: &str) {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    let topic = format!("groups-{name}");
    let group = format!("group-{name}");
    create_topic(&broker, &topic, PARTITIONS as u32);
    let mut expected: HashSet<(i32, i64)> = produce_phase(&broker, &topic, 0, RECORDS_PER_PHASE)
        .into_iter()
        .collect();

    let settings = classic_settings(strategy);
    let mut ledger = Ledger::new(&topic);
    let mut members: Vec<Member> = (0..3)
        .map(|index| {
            member(
                &broker,
                &group,
                &format!("{name}-{index}"),
                &topic,
                &settings,
            )
        })
        .collect();
    settle(&mut members, &mut ledger, 4, "three members");

    // Read about half, committing as it goes, so the leaver leaves some
    // read but uncommitted behind.
    let deadline = Instant::now() + SETTLE;
    while ledger.consumed.len() < RECORDS_PER_PHASE / 2 {
        round(&mut members, &mut ledger);
        assert!(
            Instant::now() < deadline,
            "{} records read after {SETTLE:?}\n{}",
            ledger.consumed.len(),
            reports(&members)
        );
    }

    let leaver = members.remove(0);
    let left_behind = leaver.consumer.context().owned();
    let leaving = Instant::now();
    close(leaver);
    let moved = settle(&mut members, &mut ledger, 6, "after a member left");
    let took = moved - leaving;
    assert!(
        took < Duration::from_millis(SESSION_TIMEOUT_MS),
        "the leaver's partitions {left_behind:?} moved after {took:?}, \
         not within the session timeout ({SESSION_TIMEOUT_MS} ms)"
    );
    eprintln!("{name}: partitions {left_behind:?} of the leaver moved in {took:?}");

    expected.extend(produce_phase(&broker, &topic, 1, RECORDS_PER_PHASE));
    read_all(&mut members, &mut ledger, &expected);
    for member in members.iter_mut() {
        maybe_commit(member, &mut ledger, true);
    }
    // The broker answers what was committed, as the test recorded it.
    let answered = committed(
        &members[0].consumer,
        &topic,
        &(0..PARTITIONS).collect::<Vec<_>>(),
    );
    for (partition, offset) in &ledger.committed {
        assert_eq!(
            answered[partition],
            Some(*offset),
            "committed offset of partition {partition}"
        );
    }
    eprintln!(
        "{name}: {} records read for {} produced; {} commits refused",
        members.iter().map(|m| m.received.len()).sum::<usize>(),
        expected.len(),
        ledger.commits_failed
    );
    for member in members {
        close(member);
    }
}

#[test]
fn three_classic_consumers_with_default_assignors_share_and_take_over() {
    three_classic_consumers(None, "classic-default");
}

#[test]
fn three_classic_consumers_with_cooperative_sticky_share_and_take_over() {
    three_classic_consumers(Some("cooperative-sticky"), "classic-cooperative");
}

/// Collects where each record went.
#[derive(Default)]
struct Deliveries {
    placed: Mutex<Vec<(i32, i64)>>,
    failed: Mutex<Vec<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(message) => self
                .placed
                .lock()
                .unwrap()
                .push((message.partition(), message.offset())),
            Err((error, _)) => self.failed.lock().unwrap().push(error.to_string()),
        }
    }
}

/// Produces `RECORDS_PER_SECOND` round robin over the partitions until
/// `stop`, then waits for every delivery; returns where each record went.
fn produce_steadily(
    producer: BaseProducer<Deliveries>,
    topic: &str,
    stop: &AtomicBool,
) -> Vec<(i32, i64)> {
    let started = Instant::now();
    let every = Duration::from_micros(1_000_000 / RECORDS_PER_SECOND);
    let mut sent: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let due = started + every * sent as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let value = format!("steady-{sent}");
        let partition = (sent % PARTITIONS as u64) as i32;
        let mut record = BaseRecord::<[u8], [u8]>::to(topic)
            .partition(partition)
            .payload(value.as_bytes());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, returned)) => {
                    producer.poll(Duration::from_millis(10));
                    record = returned;
                }
            }
        }
        producer.poll(Duration::ZERO);
        sent += 1;
    }
    producer
        .flush(Duration::from_secs(30))
        .expect("every record delivered");
    let failed = producer.context().failed.lock().unwrap().clone();
    assert!(failed.is_empty(), "records not stored: {failed:?}");
    let placed = producer.context().placed.lock().unwrap().clone();
    assert_eq!(placed.len() as u64, sent, "deliveries reported");
    placed
}

/// The heartbeat interval the broker gave, from the spacing of the
/// members' heartbeat answers while nothing changed; the default if too
/// few were seen.
fn heartbeat_interval(members: &[Member], from: Instant, to: Instant) -> Duration {
    let mut spacings: Vec<Duration> = Vec::new();
    for member in members {
        let answers: Vec<Instant> = member
            .consumer
            .context()
            .heartbeat_answers()
            .into_iter()
            .filter(|at| *at >= from && *at <= to)
            .collect();
        spacings.extend(answers.windows(2).map(|pair| pair[1] - pair[0]));
    }
    if spacings.len() < 3 {
        return Duration::from_millis(HEARTBEAT_INTERVAL_MS_DEFAULT);
    }
    common::median(spacings)
}

/// The longest time between two records `member` read in [from, to],
/// counting from the last record before `from`.
fn largest_gap(member: &Member, from: Instant, to: Instant) -> Duration {
    let mut previous: Option<Instant> = None;
    let mut largest = Duration::ZERO;
    for (at, _, _) in &member.received {
        if *at > to {
            break;
        }
        if let Some(previous) = previous {
            if *at >= from {
                largest = largest.max(*at - previous);
            }
        }
        previous = Some(*at);
    }
    if let Some(previous) = previous {
        largest = largest.max(to.saturating_duration_since(previous.max(from)));
    }
    largest
}

#[test]
fn a_fourth_kip848_consumer_joins_without_stopping_the_others() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    let topic = "groups-kip848";
    let group = "group-kip848";
    create_topic(&broker, topic, PARTITIONS as u32);
    let debug = match std::env::var("SLUICE_KAFKA_DEBUG") {
        Ok(debug) => format!("cgrp,{debug}"),
        Err(_) => "cgrp".to_string(),
    };
    let settings = [("group.protocol", "consumer"), ("debug", debug.as_str())];

    let mut producer_config = config(&broker);
    producer_config
        .set("enable.idempotence", "true")
        .set("linger.ms", "1")
        .set("message.timeout.ms", "60000");
    let steady: BaseProducer<Deliveries> = producer_config
        .create_with_context(Deliveries::default())
        .expect("producer");
    let stop = AtomicBool::new(false);

    std::thread::scope(|scope| {
        let producing = scope.spawn(|| produce_steadily(steady, topic, &stop));
        // Stops the producer however the test ends.
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let stopping = StopOnDrop(&stop);

        let mut ledger = Ledger::new(topic);
        let mut members: Vec<Member> = (0..3)
            .map(|index| member(&broker, group, &format!("kip848-{index}"), topic, &settings))
            .collect();
        let settled = settle(&mut members, &mut ledger, 4, "three KIP-848 members");
        // A steady stretch: records flow, heartbeats show their interval.
        while settled.elapsed() < Duration::from_secs(3) {
            round(&mut members, &mut ledger);
        }
        let joining = Instant::now();
        let interval = heartbeat_interval(&members, settled, joining);

        members.push(member(&broker, group, "kip848-3", topic, &settings));
        let spread = settle(&mut members, &mut ledger, 3, "four KIP-848 members");
        // The newcomer reads each of its partitions.
        let deadline = Instant::now() + SETTLE;
        loop {
            round(&mut members, &mut ledger);
            let newcomer = &members[3];
            let read: BTreeSet<i32> = newcomer.received.iter().map(|(_, p, _)| *p).collect();
            if newcomer.consumer.context().owned().is_subset(&read) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the newcomer owns {:?} but read only from {read:?}\n{}",
                newcomer.consumer.context().owned(),
                reports(&members)
            );
        }
        let window_end = Instant::now().max(spread + Duration::from_secs(1));
        while Instant::now() < window_end {
            round(&mut members, &mut ledger);
        }

        let bound = interval + Duration::from_millis(GAP_SLACK_MS);
        eprintln!(
            "heartbeat interval {interval:?}; the join took {:?}",
            spread - joining
        );
        for member in &members[..3] {
            let gap = largest_gap(member, joining, window_end);
            eprintln!("{}: largest gap {gap:?} during the join", member.name);
            assert!(
                gap <= bound,
                "{} read nothing for {gap:?} while a member joined (bound {bound:?}: \
                 a heartbeat interval of {interval:?} and {GAP_SLACK_MS} ms of slack)\n{}",
                member.name,
                reports(&members)
            );
        }

        drop(stopping);
        let placed: HashSet<(i32, i64)> = producing.join().unwrap().into_iter().collect();
        read_all(&mut members, &mut ledger, &placed);
        for member in members {
            close(member);
        }
    });
}

#[test]
fn groups_resume_at_their_committed_offsets_after_kill9() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(data_dir.path(), 2);
    let topic = "groups-kill";
    let partitions = 4;
    create_topic(&broker, topic, partitions as u32);
    let producer = producer(&broker, &[]);
    for partition in 0..partitions {
        let records: Vec<Record> = (0..100)
            .map(|index| Record::new(None, Some(format!("{partition}-{index}").as_bytes())))
            .collect();
        produce_ok(&producer, topic, Some(partition), &records);
    }
    drop(producer);

    // Partitions not listed stay uncommitted.
    let groups: [(&str, BTreeMap<i32, i64>); 2] = [
        (
            "kill-group-a",
            BTreeMap::from([(0, 10), (1, 25), (2, 50), (3, 99)]),
        ),
        ("kill-group-b", BTreeMap::from([(0, 3), (1, 77), (2, 0)])),
    ];
    let all: Vec<i32> = (0..partitions).collect();
    let settings = classic_settings(None);
    let mut survivors = Vec::new();
    for (index, (group, offsets)) in groups.iter().enumerate() {
        let mut ledger = Ledger::new(topic);
        let mut members = vec![member(
            &broker,
            group,
            &format!("{group}-before"),
            topic,
            &settings,
        )];
        settle_on(&mut members, &mut ledger, &all);
        let mut list = TopicPartitionList::new();
        for (partition, offset) in offsets {
            list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .unwrap();
        }
        members[0]
            .consumer
            .commit(&list, CommitMode::Sync)
            .unwrap_or_else(|error| panic!("{group}: commit: {error}\n{}", reports(&members)));
        let answered = committed(&members[0].consumer, topic, &all);
        assert_eq!(
            answered,
            expected_committed(offsets, &all),
            "{group} before the kill"
        );
        if index == 0 {
            // Left the group before the kill.
            close(members.pop().unwrap());
        } else {
            // Still a member when the broker dies.
            survivors.push(members.pop().unwrap());
        }
    }

    broker.restart_after_kill9();
    for survivor in survivors {
        close(survivor);
    }

    for (group, offsets) in &groups {
        let mut config = config(&broker);
        config
            .set("group.id", *group)
            .set("enable.auto.commit", "false");
        let probe: GroupConsumer = config.create_with_context(Tracker::default()).unwrap();
        let answered = committed(&probe, topic, &all);
        assert_eq!(
            answered,
            expected_committed(offsets, &all),
            "{group} after the kill"
        );
        drop(probe);

        let mut ledger = Ledger::new(topic);
        ledger.committed = offsets.clone();
        let mut members = vec![member(
            &broker,
            group,
            &format!("{group}-after"),
            topic,
            &settings,
        )];
        // poll_member checks that each partition starts exactly at its
        // committed offset (0 when none); read on to the end of each.
        let expected: HashSet<(i32, i64)> = all
            .iter()
            .flat_map(|partition| {
                (offsets.get(partition).copied().unwrap_or(0)..100).map(move |o| (*partition, o))
            })
            .collect();
        read_all(&mut members, &mut ledger, &expected);
        for partition in &all {
            let first = members[0]
                .received
                .iter()
                .find(|(_, p, _)| p == partition)
                .map(|(_, _, offset)| *offset);
            let start = offsets.get(partition).copied().unwrap_or(0);
            assert_eq!(
                first,
                Some(start),
                "{group} partition {partition}: first offset read"
            );
        }
        close(members.pop().unwrap());
    }
}

fn expected_committed(offsets: &BTreeMap<i32, i64>, all: &[i32]) -> BTreeMap<i32, Option<i64>> {
    all.iter()
        .map(|partition| (*partition, offsets.get(partition).copied()))
        .collect()
}

/// Polls until the members own exactly `partitions` between them.
fn settle_on(members: &mut [Member], ledger: &mut Ledger, partitions: &[i32]) {
    let deadline = Instant::now() + SETTLE;
    let wanted: BTreeSet<i32> = partitions.iter().copied().collect();
    loop {
        // Only poll for assignments: records stay unread, nothing is committed.
        for member in members.iter_mut() {
            if let Some(Err(error)) = member.consumer.poll(Duration::from_millis(50)) {
                member.errors.push(error.to_string());
            }
        }
        let owned: BTreeSet<i32> = members
            .iter()
            .flat_map(|member| member.consumer.context().owned())
            .collect();
        if owned == wanted {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{}: partitions {wanted:?} not assigned after {SETTLE:?}\n{}",
            ledger.topic,
            reports(members)
        );
    }
}
