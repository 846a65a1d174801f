//! Black box: Kafka's consumer group protocol (KIP-848,
//! `group.protocol=consumer`) with librdkafka against the built `sluice`
//! binary, the assignment computed by the broker. Three consumers share a
//! 12-partition topic without overlap; a fourth joins while a producer
//! writes steadily, and every consumer keeps receiving through the change;
//! one leaves and its partitions go to the others.
//!
//! All consumers are polled from one thread, so their assignments are
//! compared at moments when none of them is inside a rebalance callback.

mod common;
mod kafka_common;

use std::{
    collections::BTreeSet,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use common::Broker;
use kafka_common::*;
use rdkafka::{
    consumer::{CommitMode, Consumer},
    producer::{BaseRecord, Producer},
    Message,
};

const PARTITIONS: i32 = 12;

/// The broker's default `group_consumer_heartbeat_interval`.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);

/// How long a change of membership may take to settle: a few heartbeats.
const SETTLE: Duration = Duration::from_secs(40);

struct Member {
    name: String,
    consumer: KafkaConsumer,
    /// When each record came, and from which partition.
    received: Vec<(Instant, i32)>,
}

impl Member {
    fn new(broker: &Broker, group: &str, name: &str, topic: &str) -> Member {
        let consumer = consumer(
            broker,
            &[
                ("group.id", group),
                ("client.id", name),
                ("group.protocol", "consumer"),
                ("group.remote.assignor", "uniform"),
                ("enable.auto.commit", "true"),
                ("auto.commit.interval.ms", "500"),
                ("auto.offset.reset", "earliest"),
                ("enable.partition.eof", "false"),
            ],
        );
        consumer.subscribe(&[topic]).expect("subscribe");
        Member {
            name: name.to_string(),
            consumer,
            received: Vec::new(),
        }
    }

    fn owned(&self) -> BTreeSet<i32> {
        self.consumer
            .assignment()
            .expect("assignment")
            .elements()
            .iter()
            .map(|element| element.partition())
            .collect()
    }

    fn poll(&mut self) {
        let mut wait = Duration::from_millis(10);
        for _ in 0..200 {
            match self.consumer.poll(wait) {
                None => break,
                Some(Ok(message)) => self.received.push((Instant::now(), message.partition())),
                Some(Err(error)) => eprintln!("{}: {error}", self.name),
            }
            wait = Duration::ZERO;
        }
    }

    /// The longest stretch without a record within `from..to`.
    fn largest_gap(&self, from: Instant, to: Instant) -> Duration {
        let mut largest = Duration::ZERO;
        let mut previous = from;
        for (at, _) in self
            .received
            .iter()
            .filter(|(at, _)| *at >= from && *at <= to)
        {
            largest = largest.max(*at - previous);
            previous = *at;
        }
        largest.max(to.saturating_duration_since(previous))
    }

    fn report(&self) -> String {
        format!(
            "--- {}: owns {:?}, {} records; last log lines:\n{}",
            self.name,
            self.owned(),
            self.received.len(),
            self.consumer.context().log_tail(25)
        )
    }
}

fn reports(members: &[Member]) -> String {
    members
        .iter()
        .map(Member::report)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Polls every member once and checks that no partition is owned twice.
fn round(members: &mut [Member]) {
    for member in members.iter_mut() {
        member.poll();
    }
    let mut seen = BTreeSet::new();
    for member in members.iter() {
        for partition in member.owned() {
            assert!(
                seen.insert(partition),
                "partition {partition} owned twice\n{}",
                reports(members)
            );
        }
    }
}

/// Rounds until the members own every partition, each `share` of them
/// (or one more), and each has read from all it owns since `since`.
fn settle(members: &mut [Member], since: Instant, what: &str) -> Instant {
    let deadline = Instant::now() + SETTLE;
    let share = PARTITIONS as usize / members.len();
    loop {
        round(members);
        let owned: Vec<BTreeSet<i32>> = members.iter().map(Member::owned).collect();
        let total: usize = owned.iter().map(BTreeSet::len).sum();
        let balanced = owned
            .iter()
            .all(|set| set.len() == share || set.len() == share + 1);
        let reading = members.iter().zip(&owned).all(|(member, set)| {
            let read: BTreeSet<i32> = member
                .received
                .iter()
                .filter(|(at, _)| *at >= since)
                .map(|(_, partition)| *partition)
                .collect();
            set.is_subset(&read)
        });
        if total == PARTITIONS as usize && balanced && reading {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not settled after {SETTLE:?}: {owned:?}\n{}",
            reports(members)
        );
    }
}

#[test]
fn consumers_share_a_topic_and_a_fourth_joins_without_stopping_the_others() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    let topic = "kip848-share";
    let group = "kip848-group";
    create_topic(&broker, topic, PARTITIONS as u32);
    let stop = AtomicBool::new(false);

    std::thread::scope(|scope| {
        let producer = producer(&broker, &[("linger.ms", "1")]);
        let stop = &stop;
        let producing = scope.spawn(move || {
            let mut sent = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let partition = (sent % PARTITIONS as usize) as i32;
                let record: BaseRecord<(), str, Box<usize>> =
                    BaseRecord::with_opaque_to(topic, Box::new(sent))
                        .partition(partition)
                        .payload("steady");
                if producer.send(record).is_ok() {
                    sent += 1;
                }
                producer.poll(Duration::from_millis(2));
            }
            producer.flush(Duration::from_secs(30)).expect("flush");
            sent
        });
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stopping = StopOnDrop(stop);

        let start = Instant::now();
        let mut members: Vec<Member> = (0..3)
            .map(|index| Member::new(&broker, group, &format!("member-{index}"), topic))
            .collect();
        settle(&mut members, start, "three members");

        // A fourth joins: nobody stops reading on the way.
        let joining = Instant::now();
        members.push(Member::new(&broker, group, "member-3", topic));
        let settled = settle(&mut members, joining, "four members");
        while settled.elapsed() < Duration::from_secs(2) {
            round(&mut members);
        }
        let limit = HEARTBEAT_INTERVAL + Duration::from_secs(1);
        for member in &members[..3] {
            let gap = member.largest_gap(joining, Instant::now());
            assert!(
                gap < limit,
                "{} went {gap:?} without a record while member-3 joined\n{}",
                member.name,
                reports(&members)
            );
        }
        let newcomer_from = members[3].received.first().expect("member-3 reads").0;
        let gap = members[3].largest_gap(newcomer_from, Instant::now());
        assert!(gap < limit, "member-3 went {gap:?} without a record");
        for member in &members {
            assert_eq!(member.owned().len(), 3, "{}", reports(&members));
        }

        // Offsets commit at the member's epoch.
        for member in &members {
            let position = member.consumer.position().expect("position");
            member
                .consumer
                .commit(&position, CommitMode::Sync)
                .unwrap_or_else(|error| panic!("{} commits: {error}", member.name));
        }

        // One leaves: its partitions go to the others, the rest stay.
        let leaving = members.remove(1);
        let released = leaving.owned();
        let kept: Vec<BTreeSet<i32>> = members.iter().map(Member::owned).collect();
        let left = Instant::now();
        drop(leaving);
        settle(&mut members, left, "after member-1 left");
        assert!(
            left.elapsed() < Duration::from_secs(20),
            "the group took {:?} to settle after a member left",
            left.elapsed()
        );
        let mut taken = BTreeSet::new();
        for (member, before) in members.iter().zip(&kept) {
            let now = member.owned();
            assert!(
                before.is_subset(&now),
                "{} lost partitions: {before:?} → {now:?}",
                member.name
            );
            taken.extend(now.difference(before).copied());
        }
        assert_eq!(taken, released, "what moved is what member-1 had");

        stop.store(true, Ordering::Relaxed);
        let sent = producing.join().expect("producer thread");
        assert!(sent > 0);
    });
}
