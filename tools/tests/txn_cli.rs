//! Black box: `sluice txn` (list, describe, abort) and Kafka's
//! DescribeProducers against the built `sluice` binary, over transactions
//! that a Kafka client (librdkafka, through the `rdkafka` crate) left
//! open.
//!
//! - `list` shows an open transaction `Ongoing` with its producer id, and
//!   its filters (state, producer id, time running) pick it or not;
//! - `describe` shows its state, producer id and epoch, timeout, start
//!   time and partitions;
//! - DescribeProducers shows the producer on the partition it wrote, with
//!   its transaction's first offset while the transaction is open, and -1
//!   once it is aborted;
//! - `abort ID` aborts it: `list` shows `CompleteAbort` once the markers
//!   are written, the epoch is bumped and the producer's commit fails;
//! - `abort --topic --partition --producer-id --producer-epoch` writes an
//!   abort marker on the partition, which DescribeProducers then shows
//!   closed (its coordinator still holds the transaction, and aborts it
//!   later as usual);
//! - unknown ids, a transaction not ongoing, a partition with no open
//!   transaction of the producer and partitions that do not exist are
//!   refused, each with its reason.

mod common;
mod kafka_common;
mod kafka_raw;

use std::time::{Duration, Instant};

use common::Broker;
use kafka_common::{create_topic, produce, producer, KafkaProducer, Record, PATIENCE};
use kafka_protocol::messages::{
    describe_producers_request::TopicRequest, ApiKey, DescribeProducersRequest,
    DescribeProducersResponse, TopicName,
};
use rdkafka::producer::Producer;

const TOPIC: &str = "payments";
const PARTITIONS: u32 = 2;
/// Long enough that no transaction of the test times out by itself.
const TXN_TIMEOUT_MS: &str = "600000";
/// Longest wait for the abort markers: far above what a broker on
/// loopback needs.
const SETTLE: Duration = Duration::from_secs(30);

fn cli_ok(broker: &Broker, args: &[&str]) -> String {
    let output = broker.cli(args, None);
    assert!(
        output.status.success(),
        "sluice {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// Runs a command that must succeed; its standard error.
fn cli_ok_stderr(broker: &Broker, args: &[&str]) -> String {
    let output = broker.cli(args, None);
    assert!(
        output.status.success(),
        "sluice {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stderr).expect("UTF-8")
}

/// Runs a command that must fail; its standard error.
fn cli_fails(broker: &Broker, args: &[&str]) -> String {
    let output = broker.cli(args, None);
    assert!(!output.status.success(), "sluice {args:?} succeeded");
    String::from_utf8(output.stderr).expect("UTF-8")
}

fn json(broker: &Broker, args: &[&str]) -> serde_json::Value {
    let mut args = args.to_vec();
    args.extend(["--format", "json"]);
    let stdout = cli_ok(broker, &args);
    serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("{args:?}: {error}: {stdout}"))
}

/// The listing of `id` by `txn list` with `filters`, if it is listed.
fn listed(broker: &Broker, id: &str, filters: &[&str]) -> Option<serde_json::Value> {
    let mut args = vec!["txn", "list"];
    args.extend(filters);
    json(broker, &args)
        .as_array()
        .expect("a list")
        .iter()
        .find(|listing| listing["transactional_id"] == id)
        .cloned()
}

/// Waits until `txn list` shows `id` in `state`.
fn wait_for_state(broker: &Broker, id: &str, state: &str) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let now = listed(broker, id, &[]);
        if now
            .as_ref()
            .is_some_and(|listing| listing["state"] == state)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{id} not {state} within {SETTLE:?}: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A transactional producer with a transaction open on `partition` of
/// `TOPIC`, holding one record.
fn open_transaction(broker: &Broker, id: &str, partition: i32) -> KafkaProducer {
    let producer = producer(
        broker,
        &[
            ("transactional.id", id),
            ("transaction.timeout.ms", TXN_TIMEOUT_MS),
        ],
    );
    producer
        .init_transactions(PATIENCE)
        .unwrap_or_else(|error| {
            panic!(
                "init_transactions: {error}; last log lines:\n{}",
                producer.context().log_tail(40)
            )
        });
    producer.begin_transaction().expect("begin_transaction");
    let sent = produce(
        &producer,
        TOPIC,
        Some(partition),
        &[Record::new(Some(b"k"), Some(b"in a transaction"))],
    );
    assert!(
        matches!(sent.as_slice(), [Ok(placed)] if placed.partition == partition),
        "{sent:?}; last log lines:\n{}",
        producer.context().log_tail(40)
    );
    producer
}

/// An active producer on one partition, as DescribeProducers shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Active {
    producer_id: i64,
    epoch: i32,
    last_sequence: i32,
    last_timestamp: i64,
    coordinator_epoch: i32,
    txn_start: i64,
}

/// DescribeProducers of one partition of `topic`: its error code, and its
/// producers.
fn describe_producers(broker: &Broker, topic: &str, partition: i32) -> (i16, Vec<Active>) {
    let mut stream = kafka_raw::connect(broker);
    let request = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
        .with_name(TopicName(topic.to_string().into()))
        .with_partition_indexes(vec![partition])]);
    let response: DescribeProducersResponse =
        kafka_raw::call(&mut stream, ApiKey::DescribeProducers, 0, &request);
    assert_eq!(response.topics.len(), 1, "{response:?}");
    assert_eq!(response.topics[0].name.0.as_str(), topic);
    assert_eq!(response.topics[0].partitions.len(), 1, "{response:?}");
    let answer = &response.topics[0].partitions[0];
    assert_eq!(answer.partition_index, partition);
    let producers = answer
        .active_producers
        .iter()
        .map(|state| Active {
            producer_id: state.producer_id.0,
            epoch: state.producer_epoch,
            last_sequence: state.last_sequence,
            last_timestamp: state.last_timestamp,
            coordinator_epoch: state.coordinator_epoch,
            txn_start: state.current_txn_start_offset,
        })
        .collect();
    (answer.error_code, producers)
}

/// UNKNOWN_TOPIC_OR_PARTITION.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

#[test]
fn transactions_are_listed_described_and_aborted() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    create_topic(&broker, TOPIC, PARTITIONS);

    // No transactional id yet: nothing listed, nothing to describe or
    // abort.
    assert_eq!(json(&broker, &["txn", "list"]), serde_json::json!([]));
    let unknown = cli_fails(&broker, &["txn", "describe", "pay-1"]);
    assert!(unknown.contains("unknown transactional id"), "{unknown}");
    let unknown = cli_fails(&broker, &["txn", "abort", "pay-1"]);
    assert!(unknown.contains("unknown transactional id"), "{unknown}");

    // A transaction left open on partition 0.
    let started_ms = kafka_ms();
    let first = open_transaction(&broker, "pay-1", 0);
    let listing = listed(&broker, "pay-1", &[]).expect("pay-1 is listed");
    assert_eq!(listing["state"], "Ongoing");
    assert_eq!(listing["coordinator"], 0);
    let producer_id = listing["producer_id"].as_i64().unwrap();
    assert!(producer_id >= 0, "{listing}");
    let text = cli_ok(&broker, &["txn", "list"]);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        ["TRANSACTIONAL-ID", "COORDINATOR", "PRODUCER-ID", "STATE"]
    );
    assert!(
        rows.contains(&vec!["pay-1", "0", &producer_id.to_string(), "Ongoing"]),
        "{text}"
    );

    // The filters.
    let other_id = (producer_id + 1).to_string();
    let id = producer_id.to_string();
    for (filters, shown) in [
        (vec!["--state", "ongoing"], true),
        (vec!["--state", "CompleteAbort", "--state", "Ongoing"], true),
        (vec!["--state", "CompleteAbort"], false),
        (vec!["--producer-id", id.as_str()], true),
        (vec!["--producer-id", other_id.as_str()], false),
        (vec!["--running-longer-than", "0"], true),
        (vec!["--running-longer-than", "3600000"], false),
        (
            vec!["--state", "Ongoing", "--producer-id", other_id.as_str()],
            false,
        ),
    ] {
        assert_eq!(
            listed(&broker, "pay-1", &filters).is_some(),
            shown,
            "{filters:?}"
        );
    }
    let refused = cli_fails(&broker, &["txn", "list", "--state", "open"]);
    assert!(refused.contains("not a transaction state"), "{refused}");

    // Described.
    let described = json(&broker, &["txn", "describe", "pay-1"]);
    assert_eq!(described["transactional_id"], "pay-1");
    assert_eq!(described["coordinator"], 0);
    assert_eq!(described["state"], "Ongoing");
    assert_eq!(described["producer_id"], producer_id);
    let epoch = described["producer_epoch"].as_i64().unwrap();
    assert!(epoch >= 0, "{described}");
    assert_eq!(described["timeout_ms"], 600_000);
    let start_ms = described["start_ms"].as_u64().expect("a start time");
    assert!(
        start_ms + 5_000 >= started_ms && start_ms <= kafka_ms() + 5_000,
        "started at {start_ms}, the test began it at {started_ms}"
    );
    assert_eq!(
        described["partitions"],
        serde_json::json!([{"topic": TOPIC, "partition": 0}])
    );
    let text = cli_ok(&broker, &["txn", "describe", "pay-1"]);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert!(rows.contains(&vec!["STATE", "Ongoing"]), "{text}");
    assert!(
        rows.contains(&vec!["PRODUCER-ID", &producer_id.to_string()]),
        "{text}"
    );
    assert!(rows.contains(&vec![TOPIC, "0"]), "{text}");

    // DescribeProducers: open from the record's offset (the first of the
    // partition) on partition 0; nothing on partition 1.
    // Its last timestamp is its record's, which the client stamped.
    let (error, mut producers) = describe_producers(&broker, TOPIC, 0);
    assert_eq!(error, 0);
    let last_timestamp = producers.first().map_or(-1, |p| p.last_timestamp);
    assert!(
        last_timestamp + 5_000 >= started_ms as i64 && last_timestamp <= kafka_ms() as i64 + 5_000,
        "last batch at {last_timestamp}, the test began at {started_ms}"
    );
    producers[0].last_timestamp = -1;
    assert_eq!(
        producers,
        [Active {
            producer_id,
            epoch: epoch as i32,
            last_sequence: 0,
            last_timestamp: -1,
            coordinator_epoch: -1,
            txn_start: 0,
        }]
    );
    assert_eq!(describe_producers(&broker, TOPIC, 1), (0, Vec::new()));
    assert_eq!(
        describe_producers(&broker, TOPIC, PARTITIONS as i32).0,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        describe_producers(&broker, "nope", 0).0,
        UNKNOWN_TOPIC_OR_PARTITION
    );

    // Aborted by the operator: the markers follow, the epoch is bumped,
    // the producer is fenced and the partition has no open transaction.
    let said = cli_ok_stderr(&broker, &["txn", "abort", "pay-1"]);
    assert!(said.contains("aborted the transaction of pay-1"), "{said}");
    wait_for_state(&broker, "pay-1", "CompleteAbort");
    let described = json(&broker, &["txn", "describe", "pay-1"]);
    assert_eq!(described["state"], "CompleteAbort");
    assert_eq!(described["producer_id"], producer_id);
    assert_eq!(described["producer_epoch"], epoch + 1);
    let (error, producers) = describe_producers(&broker, TOPIC, 0);
    assert_eq!(error, 0);
    assert_eq!(producers.len(), 1, "{producers:?}");
    assert_eq!(producers[0].producer_id, producer_id);
    assert_eq!(producers[0].txn_start, -1, "{producers:?}");
    let committed = first.commit_transaction(PATIENCE);
    assert!(
        committed.is_err(),
        "a fenced producer committed; last log lines:\n{}",
        first.context().log_tail(40)
    );
    drop(first);
    let refused = cli_fails(&broker, &["txn", "abort", "pay-1"]);
    assert!(
        refused.contains("invalid transaction state") && refused.contains("CompleteAbort"),
        "{refused}"
    );

    // A transaction on partition 1, aborted there by a marker alone.
    let second = open_transaction(&broker, "pay-2", 1);
    let listing = listed(&broker, "pay-2", &["--state", "Ongoing"]).expect("pay-2 is ongoing");
    let second_id = listing["producer_id"].as_i64().unwrap();
    let (error, producers) = describe_producers(&broker, TOPIC, 1);
    assert_eq!(error, 0);
    assert_eq!(producers.len(), 1, "{producers:?}");
    let open = producers[0];
    assert_eq!(open.producer_id, second_id);
    assert_eq!(open.txn_start, 0, "{open:?}");
    let (producer, epoch) = (second_id.to_string(), open.epoch.to_string());
    let abort_partition = |partition: &str, topic: &str| {
        vec![
            "txn",
            "abort",
            "--topic",
            topic,
            "--partition",
            partition,
            "--producer-id",
            producer.as_str(),
            "--producer-epoch",
            epoch.as_str(),
        ]
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<String>>()
    };

    let refused = cli_fails(&broker, &args(&abort_partition("0", TOPIC)));
    assert!(
        refused.contains("invalid transaction state")
            && refused.contains("no transaction of the producer is open"),
        "{refused}"
    );
    let refused = cli_fails(&broker, &args(&abort_partition("7", TOPIC)));
    assert!(refused.contains("no such partition"), "{refused}");
    let refused = cli_fails(&broker, &args(&abort_partition("0", "nope")));
    assert!(refused.contains("unknown topic"), "{refused}");
    assert_eq!(describe_producers(&broker, TOPIC, 1).1, [open]);

    let said = cli_ok_stderr(&broker, &args(&abort_partition("1", TOPIC)));
    assert!(
        said.contains(&format!("wrote an abort marker of producer {second_id}")),
        "{said}"
    );
    let (error, producers) = describe_producers(&broker, TOPIC, 1);
    assert_eq!(error, 0);
    assert_eq!(producers.len(), 1, "{producers:?}");
    assert_eq!(producers[0].txn_start, -1, "{producers:?}");
    let refused = cli_fails(&broker, &args(&abort_partition("1", TOPIC)));
    assert!(
        refused.contains("no transaction of the producer is open"),
        "{refused}"
    );

    // Its coordinator knew nothing of that: the id is still ongoing, and
    // its own abort ends it as usual.
    let listing = listed(&broker, "pay-2", &[]).expect("pay-2 is listed");
    assert_eq!(listing["state"], "Ongoing");
    cli_ok_stderr(&broker, &["txn", "abort", "pay-2"]);
    wait_for_state(&broker, "pay-2", "CompleteAbort");
    assert!(second.commit_transaction(PATIENCE).is_err());
    assert_eq!(describe_producers(&broker, TOPIC, 1).1[0].txn_start, -1);

    // Both listed, in id order.
    let all = json(&broker, &["txn", "list", "--state", "CompleteAbort"]);
    let ids: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|listing| listing["transactional_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["pay-1", "pay-2"]);
}

fn args(owned: &[String]) -> Vec<&str> {
    owned.iter().map(String::as_str).collect()
}

/// Milliseconds since the epoch, the clock the broker stamps with.
fn kafka_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}
