//! Black box: the transactional producer of librdkafka through the
//! `rdkafka` crate, against the built `sluice` binary: commit, abort then
//! retry, offsets sent with a transaction (committed with it only), a
//! zombie fenced by a new instance of its transactional id, and a
//! transaction the coordinator aborts past its timeout. A
//! `read_committed` consumer checks what each left.

mod common;
mod kafka_common;

use std::time::Duration;

use common::Broker;
use kafka_common::*;
use rdkafka::{
    consumer::{CommitMode, Consumer},
    error::KafkaError,
    producer::Producer,
    Offset, TopicPartitionList,
};

const INPUT: &str = "orders";
const OUTPUT: &str = "invoices";
const GROUP: &str = "billing";

fn records(label: &str, count: usize) -> Vec<Record> {
    (0..count)
        .map(|index| Record::new(None, Some(format!("{label} {index}").as_bytes())))
        .collect()
}

fn texts(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|record| String::from_utf8(record.value.clone().unwrap()).unwrap())
        .collect()
}

/// The values a `read_committed` consumer reads of `topic`'s partition 0.
fn committed(broker: &Broker, topic: &str) -> Vec<String> {
    let consumer = consumer(broker, &[("isolation.level", "read_committed")]);
    read_to_end(&consumer, topic, &[(0, Offset::Beginning)])
        .remove(&0)
        .unwrap()
        .into_iter()
        .map(|consumed| String::from_utf8(consumed.record.value.unwrap()).unwrap())
        .collect()
}

/// The offset `GROUP` has committed for `INPUT`'s partition 0.
fn group_offset(broker: &Broker) -> Offset {
    let consumer = consumer(broker, &[("group.id", GROUP)]);
    let mut wanted = TopicPartitionList::new();
    wanted.add_partition(INPUT, 0);
    let committed = consumer.committed_offsets(wanted, PATIENCE).unwrap();
    committed.find_partition(INPUT, 0).unwrap().offset()
}

fn transactional(broker: &Broker, id: &str, timeout_ms: &str) -> KafkaProducer {
    let producer = producer(
        broker,
        &[
            ("transactional.id", id),
            ("transaction.timeout.ms", timeout_ms),
            // librdkafka asks for these no longer than the transaction's
            // timeout.
            ("socket.timeout.ms", timeout_ms),
            ("message.timeout.ms", timeout_ms),
        ],
    );
    producer.init_transactions(PATIENCE).expect("init");
    producer
}

#[test]
fn rdkafka_commits_aborts_retries_sends_offsets_and_is_fenced() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    create_topic(&broker, INPUT, 1);
    create_topic(&broker, OUTPUT, 1);
    let producer = transactional(&broker, "rdkafka-billing", "60000");

    // Commit; abort, then the same records again, committed.
    producer.begin_transaction().expect("begin");
    produce_ok(&producer, OUTPUT, Some(0), &records("first", 3));
    producer.commit_transaction(PATIENCE).expect("commit");
    producer.begin_transaction().expect("begin");
    produce_ok(&producer, OUTPUT, Some(0), &records("second", 3));
    producer.abort_transaction(PATIENCE).expect("abort");
    producer.begin_transaction().expect("begin");
    produce_ok(&producer, OUTPUT, Some(0), &records("second", 3));
    producer.commit_transaction(PATIENCE).expect("commit");
    let mut expected = texts(&records("first", 3));
    expected.extend(texts(&records("second", 3)));
    assert_eq!(committed(&broker, OUTPUT), expected);

    // Offsets sent with a transaction move with its commit only.
    let input = producer_plain(&broker);
    produce_ok(&input, INPUT, Some(0), &records("order", 10));
    let reader = consumer(
        &broker,
        &[
            ("group.id", GROUP),
            ("enable.auto.commit", "false"),
            ("isolation.level", "read_committed"),
        ],
    );
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(INPUT, 0, Offset::Beginning)
        .unwrap();
    reader.assign(&assignment).unwrap();
    let metadata = reader.group_metadata().expect("group metadata");
    let offsets = |offset: i64| {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(INPUT, 0, Offset::Offset(offset))
            .unwrap();
        list
    };
    producer.begin_transaction().expect("begin");
    produce_ok(&producer, OUTPUT, Some(0), &records("copied", 4));
    producer
        .send_offsets_to_transaction(&offsets(4), &metadata, PATIENCE)
        .expect("send offsets");
    producer.abort_transaction(PATIENCE).expect("abort");
    assert_eq!(group_offset(&broker), Offset::Invalid, "aborted: no offset");
    producer.begin_transaction().expect("begin");
    produce_ok(&producer, OUTPUT, Some(0), &records("copied", 4));
    producer
        .send_offsets_to_transaction(&offsets(4), &metadata, PATIENCE)
        .expect("send offsets");
    producer.commit_transaction(PATIENCE).expect("commit");
    assert_eq!(
        group_offset(&broker),
        Offset::Offset(4),
        "committed with it"
    );
    expected.extend(texts(&records("copied", 4)));
    assert_eq!(committed(&broker, OUTPUT), expected);
    // A plain commit by the group is still its own.
    reader.commit(&offsets(5), CommitMode::Sync).unwrap();
    assert_eq!(group_offset(&broker), Offset::Offset(5));

    // A new instance of the id fences the old one, whose open transaction
    // is aborted: nothing of it is read.
    producer.begin_transaction().expect("begin");
    produce_ok(&producer, OUTPUT, Some(0), &records("zombie", 2));
    let successor = transactional(&broker, "rdkafka-billing", "60000");
    let fenced = producer.commit_transaction(PATIENCE);
    assert!(
        matches!(&fenced, Err(KafkaError::Transaction(error)) if error.is_fatal()),
        "the zombie's commit: {fenced:?}"
    );
    successor.begin_transaction().expect("begin");
    produce_ok(&successor, OUTPUT, Some(0), &records("successor", 2));
    successor.commit_transaction(PATIENCE).expect("commit");
    expected.extend(texts(&records("successor", 2)));
    assert_eq!(committed(&broker, OUTPUT), expected);
}

#[test]
fn rdkafka_transaction_past_its_timeout_is_aborted_by_the_coordinator() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 1);
    create_topic(&broker, OUTPUT, 1);
    let producer = transactional(&broker, "rdkafka-slow", "2000");
    producer.begin_transaction().expect("begin");
    produce_ok(&producer, OUTPUT, Some(0), &records("late", 3));
    // The coordinator checks its clock twice a second.
    std::thread::sleep(Duration::from_millis(4_500));
    let late = producer.commit_transaction(PATIENCE);
    assert!(late.is_err(), "a commit past the timeout: {late:?}");
    assert_eq!(committed(&broker, OUTPUT), Vec::<String>::new());
    // The id goes on with a new instance.
    let next = transactional(&broker, "rdkafka-slow", "60000");
    next.begin_transaction().expect("begin");
    produce_ok(&next, OUTPUT, Some(0), &records("next", 2));
    next.commit_transaction(PATIENCE).expect("commit");
    assert_eq!(committed(&broker, OUTPUT), texts(&records("next", 2)));
}

/// An idempotent producer outside transactions.
fn producer_plain(broker: &Broker) -> KafkaProducer {
    producer(broker, &[])
}
