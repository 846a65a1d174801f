//! Black box: `sluice group` (list, describe, reset-offsets, delete)
//! against the built `sluice` binary, over a group whose offsets a Kafka
//! client (librdkafka, through the `rdkafka` crate) committed.
//!
//! - `describe` shows each committed offset with its partition's log end
//!   and the lag between them, exactly.
//! - `reset-offsets` to earliest, latest, an offset (brought inside the
//!   log), a time (ms and ISO-8601), one partition or all: checked with
//!   `describe` and with what librdkafka's `committed()` answers.
//! - While a consumer is in the group, `reset-offsets` and `delete` are
//!   refused with "group not empty" and change nothing.
//! - `delete` removes the group and its offsets; then it is unknown.

mod common;
mod kafka_common;

use std::time::{Duration, Instant};

use common::{create_topic, produce, Broker};
use kafka_common::{config, KafkaConsumer, Recorder};
use rdkafka::{
    consumer::{CommitMode, Consumer},
    Offset, TopicPartitionList,
};
use sluice_net::native::ErrorCode;
use sluice_storage::batch::BatchBuilder;

const TOPIC: &str = "orders";
const GROUP: &str = "billing";
/// Records in each partition of `TOPIC`; the last partition stays empty.
const RECORDS: [u64; 3] = [10, 5, 0];
/// The timestamp of record `i` of a partition is `BASE_MS + i * STEP_MS`.
const BASE_MS: i64 = 1_700_000_000_000;
const STEP_MS: i64 = 1_000;
/// Longest wait for a consumer to be assigned or to leave: far above what
/// a healthy broker on loopback needs (a new group's first rebalance waits
/// 3 s).
const SETTLE: Duration = Duration::from_secs(30);

/// A consumer of `GROUP` that assigns partitions itself (joins nothing).
fn assigning_consumer(broker: &Broker) -> KafkaConsumer {
    let mut config = config(broker);
    config
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false");
    config
        .create_with_context(Recorder::default())
        .expect("consumer")
}

/// Commits `offsets` (one per partition of `TOPIC`) for `GROUP`, as a
/// consumer that assigned itself the partitions, then closes it.
fn commit_with_librdkafka(broker: &Broker, offsets: &[i64]) {
    let consumer = assigning_consumer(broker);
    let mut list = TopicPartitionList::new();
    for (partition, offset) in offsets.iter().enumerate() {
        list.add_partition_offset(TOPIC, partition as i32, Offset::Offset(*offset))
            .unwrap();
    }
    consumer.assign(&list).expect("assign");
    consumer
        .commit(&list, CommitMode::Sync)
        .unwrap_or_else(|error| {
            panic!(
                "commit: {error}; last log lines:\n{}",
                consumer.context().log_tail(40)
            )
        });
}

/// What OffsetFetch answers for `GROUP` in every partition of `TOPIC`
/// (`None`: nothing committed).
fn committed_by_librdkafka(broker: &Broker) -> Vec<Option<i64>> {
    let consumer = assigning_consumer(broker);
    let mut list = TopicPartitionList::new();
    for partition in 0..RECORDS.len() {
        list.add_partition(TOPIC, partition as i32);
    }
    let answer = consumer
        .committed_offsets(list, Duration::from_secs(30))
        .expect("committed offsets");
    answer
        .elements()
        .iter()
        .map(|element| match element.offset() {
            Offset::Offset(offset) => Some(offset),
            Offset::Invalid => None,
            other => panic!("committed offset of {}: {other:?}", element.partition()),
        })
        .collect()
}

fn cli_ok(broker: &Broker, args: &[&str]) -> String {
    let output = broker.cli(args, None);
    assert!(
        output.status.success(),
        "sluice {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

fn json(broker: &Broker, args: &[&str]) -> serde_json::Value {
    let mut args = args.to_vec();
    args.extend(["--format", "json"]);
    let stdout = cli_ok(broker, &args);
    serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("{args:?}: {error}: {stdout}"))
}

/// Runs a command that must fail; its standard error.
fn cli_fails(broker: &Broker, args: &[&str]) -> String {
    let output = broker.cli(args, None);
    assert!(!output.status.success(), "sluice {args:?} succeeded");
    String::from_utf8(output.stderr).expect("UTF-8")
}

/// (committed, log end, lag) of every partition `describe` shows.
fn offsets(broker: &Broker) -> Vec<(u64, u64, i64)> {
    let described = json(broker, &["group", "describe", GROUP]);
    let offsets = described["offsets"].as_array().expect("offsets");
    offsets
        .iter()
        .enumerate()
        .map(|(index, offset)| {
            assert_eq!(offset["topic"], TOPIC);
            assert_eq!(offset["partition"], index as u64, "in partition order");
            (
                offset["committed"].as_u64().unwrap(),
                offset["log_end"].as_u64().unwrap(),
                offset["lag"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn committed(broker: &Broker) -> Vec<u64> {
    offsets(broker)
        .iter()
        .map(|(committed, ..)| *committed)
        .collect()
}

/// Resets and checks the answer: the new offset of each partition reset.
fn reset(broker: &Broker, extra: &[&str]) -> Vec<(u64, u64)> {
    let mut args = vec!["group", "reset-offsets", GROUP, "--topic", TOPIC];
    args.extend(extra);
    let answer = json(broker, &args);
    assert_eq!(answer["group"], GROUP);
    assert_eq!(answer["topic"], TOPIC);
    answer["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|reset| {
            (
                reset["partition"].as_u64().unwrap(),
                reset["offset"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn listed(broker: &Broker) -> Option<serde_json::Value> {
    let groups = json(broker, &["group", "list"]);
    groups
        .as_array()
        .unwrap()
        .iter()
        .find(|group| group["group"] == GROUP)
        .cloned()
}

/// A consumer subscribed to `TOPIC` in `GROUP` with `protocol` (classic
/// or consumer), once it was assigned every partition.
fn member_of(broker: &Broker, protocol: &str) -> KafkaConsumer {
    let mut member = config(broker);
    member
        .set("group.id", GROUP)
        .set("client.id", "billing-worker")
        .set("group.protocol", protocol)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    let member: KafkaConsumer = member.create_with_context(Recorder::default()).unwrap();
    member.subscribe(&[TOPIC]).unwrap();
    let deadline = Instant::now() + SETTLE;
    while member.assignment().unwrap().count() < RECORDS.len() {
        assert!(
            Instant::now() < deadline,
            "not assigned within {SETTLE:?}; last log lines:\n{}",
            member.context().log_tail(40)
        );
        let _ = member.poll(Duration::from_millis(100));
    }
    member
}

/// Creates `TOPIC` and fills its partitions, record `i` at
/// `BASE_MS + i * STEP_MS`.
fn create_and_fill(broker: &Broker) {
    let mut conn = broker.connect();
    create_topic(&mut conn, TOPIC, RECORDS.len() as u32);
    for (partition, count) in RECORDS.iter().enumerate() {
        if *count == 0 {
            continue;
        }
        let mut builder = BatchBuilder::default();
        for index in 0..*count as i64 {
            builder.push(BASE_MS + index * STEP_MS, None, b"record", &[]);
        }
        let stored = produce(
            &mut conn,
            TOPIC,
            partition as u32,
            builder.finish().into_bytes(),
        )
        .unwrap();
        assert_eq!(stored.error, ErrorCode::None, "{}", stored.message);
    }
}

#[test]
fn groups_are_listed_described_reset_and_deleted() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    create_and_fill(&broker);

    // No group yet: nothing listed, and nothing to describe.
    assert_eq!(json(&broker, &["group", "list"]), serde_json::json!([]));
    let unknown = cli_fails(&broker, &["group", "describe", GROUP]);
    assert!(unknown.contains("unknown group"), "{unknown}");

    commit_with_librdkafka(&broker, &[4, 5, 0]);

    let group = listed(&broker).expect("the group is listed");
    assert_eq!(group["state"], "Empty");
    assert_eq!(group["members"], 0);
    let text = cli_ok(&broker, &["group", "list"]);
    assert!(text.starts_with("GROUP"), "{text}");
    assert!(
        text.lines()
            .any(|line| line.split_whitespace().collect::<Vec<_>>() == [GROUP, "Empty", "-", "0"]),
        "{text}"
    );

    // Committed, log end, lag = log end - committed; exact.
    assert_eq!(offsets(&broker), [(4, 10, 6), (5, 5, 0), (0, 0, 0)]);
    let described = json(&broker, &["group", "describe", GROUP]);
    assert_eq!(described["state"], "Empty");
    assert_eq!(described["members"], serde_json::json!([]));
    let text = cli_ok(&broker, &["group", "describe", GROUP]);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert!(
        rows.contains(&vec!["TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG"]),
        "{text}"
    );
    assert!(rows.contains(&vec![TOPIC, "0", "4", "10", "6"]), "{text}");
    assert!(rows.contains(&vec![TOPIC, "1", "5", "5", "0"]), "{text}");

    // Earliest, latest, everywhere.
    assert_eq!(
        reset(&broker, &["--to", "earliest"]),
        [(0, 0), (1, 0), (2, 0)]
    );
    assert_eq!(offsets(&broker), [(0, 10, 10), (0, 5, 5), (0, 0, 0)]);
    assert_eq!(
        committed_by_librdkafka(&broker),
        [Some(0), Some(0), Some(0)]
    );
    assert_eq!(
        reset(&broker, &["--to", "latest"]),
        [(0, 10), (1, 5), (2, 0)]
    );
    assert_eq!(offsets(&broker), [(10, 10, 0), (5, 5, 0), (0, 0, 0)]);
    assert_eq!(
        committed_by_librdkafka(&broker),
        [Some(10), Some(5), Some(0)]
    );

    // An offset, in one partition; one past the end is brought to it.
    assert_eq!(reset(&broker, &["--to", "3", "--partition", "0"]), [(0, 3)]);
    assert_eq!(reset(&broker, &["--to", "100", "-p", "1"]), [(1, 5)]);
    assert_eq!(committed(&broker), [3, 5, 0]);
    assert_eq!(
        committed_by_librdkafka(&broker),
        [Some(3), Some(5), Some(0)]
    );

    // A time: the first record at or after it; the end when none is.
    let after_two = format!("time:{}", BASE_MS + 2 * STEP_MS + 500);
    assert_eq!(
        reset(&broker, &["--to", &after_two]),
        [(0, 3), (1, 3), (2, 0)]
    );
    assert_eq!(committed(&broker), [3, 3, 0]);
    // BASE_MS is 2023-11-14T22:13:20Z.
    assert_eq!(
        reset(&broker, &["--to", "2023-11-14T22:13:26.000Z"]),
        [(0, 6), (1, 5), (2, 0)]
    );
    assert_eq!(
        committed_by_librdkafka(&broker),
        [Some(6), Some(5), Some(0)]
    );
    assert_eq!(
        reset(&broker, &["--to", "2023-11-14T23:13:21+01:00", "-p", "0"]),
        [(0, 1)]
    );
    assert_eq!(committed(&broker), [1, 5, 0]);

    // A dry run answers and commits nothing.
    let dry = reset(&broker, &["--to", "earliest", "--dry-run"]);
    assert_eq!(dry, [(0, 0), (1, 0), (2, 0)]);
    assert_eq!(committed(&broker), [1, 5, 0]);

    // What cannot be reset.
    let error = cli_fails(
        &broker,
        &[
            "group",
            "reset-offsets",
            GROUP,
            "--topic",
            "nope",
            "--to",
            "earliest",
        ],
    );
    assert!(error.contains("unknown topic"), "{error}");
    let error = cli_fails(
        &broker,
        &[
            "group",
            "reset-offsets",
            GROUP,
            "--topic",
            TOPIC,
            "-p",
            "3",
            "--to",
            "earliest",
        ],
    );
    assert!(error.contains("no such partition"), "{error}");

    // A member in the group: reset and delete are refused.
    let member = member_of(&broker, "classic");
    let group = listed(&broker).expect("listed");
    assert_eq!(group["state"], "Stable");
    assert_eq!(group["protocol_type"], "consumer");
    assert_eq!(group["members"], 1);
    let described = json(&broker, &["group", "describe", GROUP]);
    assert_eq!(described["state"], "Stable");
    assert_eq!(described["protocol_type"], "consumer");
    assert!(
        described["generation"].as_i64().unwrap() >= 1,
        "{described}"
    );
    assert!(
        !described["protocol"].as_str().unwrap().is_empty(),
        "{described}"
    );
    let members = described["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{described}");
    assert_eq!(members[0]["client_id"], "billing-worker");
    assert!(
        members[0]["member_id"]
            .as_str()
            .unwrap()
            .starts_with("billing-worker"),
        "{described}"
    );
    assert!(members[0]["client_host"].is_string(), "{described}");
    assert_eq!(
        members[0]["assignment"],
        serde_json::json!([{"topic": TOPIC, "partitions": [0, 1, 2]}])
    );
    let text = cli_ok(&broker, &["group", "describe", GROUP]);
    assert!(text.contains("orders:0,1,2"), "{text}");

    let refused = cli_fails(
        &broker,
        &[
            "group",
            "reset-offsets",
            GROUP,
            "--topic",
            TOPIC,
            "--to",
            "earliest",
        ],
    );
    assert!(refused.contains("group not empty"), "{refused}");
    let refused = cli_fails(&broker, &["group", "delete", GROUP]);
    assert!(refused.contains("group not empty"), "{refused}");
    assert_eq!(committed(&broker), [1, 5, 0]);

    // The member leaves: the group is empty again, and goes.
    let (done, closed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(member);
        let _ = done.send(());
    });
    closed.recv_timeout(SETTLE).expect("the member closes");
    let deadline = Instant::now() + SETTLE;
    while listed(&broker).expect("listed")["members"] != 0 {
        assert!(Instant::now() < deadline, "the member did not leave");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(reset(&broker, &["--to", "latest", "-p", "0"]), [(0, 10)]);

    cli_ok(&broker, &["group", "delete", GROUP]);
    assert_eq!(listed(&broker), None);
    let unknown = cli_fails(&broker, &["group", "describe", GROUP]);
    assert!(unknown.contains("unknown group"), "{unknown}");
    let unknown = cli_fails(&broker, &["group", "delete", GROUP]);
    assert!(unknown.contains("unknown group"), "{unknown}");
    assert_eq!(committed_by_librdkafka(&broker), [None, None, None]);
}

/// A member under Kafka's consumer protocol (KIP-848) is shown the same
/// way, and keeps the group from being reset or deleted.
#[test]
fn a_consumer_protocol_member_is_described_and_blocks_a_reset() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    create_and_fill(&broker);
    commit_with_librdkafka(&broker, &[2, 1, 0]);
    let member = member_of(&broker, "consumer");

    let group = listed(&broker).expect("listed");
    assert_eq!(group["protocol_type"], "consumer");
    assert_eq!(group["members"], 1);
    let described = json(&broker, &["group", "describe", GROUP]);
    assert_eq!(described["state"], group["state"]);
    let members = described["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{described}");
    assert_eq!(members[0]["client_id"], "billing-worker");
    assert_eq!(
        members[0]["assignment"],
        serde_json::json!([{"topic": TOPIC, "partitions": [0, 1, 2]}])
    );
    assert_eq!(offsets(&broker), [(2, 10, 8), (1, 5, 4), (0, 0, 0)]);

    let refused = cli_fails(
        &broker,
        &[
            "group",
            "reset-offsets",
            GROUP,
            "--topic",
            TOPIC,
            "--to",
            "latest",
        ],
    );
    assert!(refused.contains("group not empty"), "{refused}");
    let refused = cli_fails(&broker, &["group", "delete", GROUP]);
    assert!(refused.contains("group not empty"), "{refused}");
    assert_eq!(committed(&broker), [2, 1, 0]);
    drop(member);
}
