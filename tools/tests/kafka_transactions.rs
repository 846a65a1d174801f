//! Black box: the read side of transactions against the built `sluice`
//! binary. Every Fetch answers the last stable offset, and a
//! `READ_COMMITTED` one the list of aborted transactions (null for
//! `READ_UNCOMMITTED`, as Kafka's brokers answer); ListOffsets answers the
//! last stable offset as a `READ_COMMITTED` reader's latest. With a
//! transactional producer, a `read_committed` consumer and the native CLI
//! see only committed records, a `read_uncommitted` consumer all of them.

mod common;
mod kafka_common;

use std::{net::TcpStream, time::Duration};

use common::{kafka_exchange, Broker};
use kafka_common::*;
use kafka_protocol::{
    messages::{
        fetch_request::{FetchPartition, FetchTopic},
        list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
        ApiKey, BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
        TopicName,
    },
    protocol::StrBytes,
};
use rdkafka::{producer::Producer, Offset};

const TOPIC: &str = "events";
const RECORDS: usize = 30;
const READ_UNCOMMITTED: i8 = 0;
const READ_COMMITTED: i8 = 1;

fn connect(broker: &Broker) -> TcpStream {
    let stream = TcpStream::connect(&broker.kafka_addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
}

fn topic_name() -> TopicName {
    TopicName(StrBytes::from_static_str(TOPIC))
}

/// A fetch of partition 0 from `offset` at `version` (v12 and below name
/// the topic; the tests stay below v13, which names it by id).
fn fetch(stream: &mut TcpStream, version: i16, isolation: i8, offset: i64) -> FetchResponse {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(1 << 20)
        .with_isolation_level(isolation)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name())
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(-1)
                .with_fetch_offset(offset)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(1 << 20)])]);
    kafka_exchange(stream, ApiKey::Fetch, version, 1, "isolation", &request)
}

fn list_offset(stream: &mut TcpStream, version: i16, isolation: i8, timestamp: i64) -> i64 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name())
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_current_leader_epoch(-1)
                .with_timestamp(timestamp)])]);
    let answer: ListOffsetsResponse = kafka_exchange(
        stream,
        ApiKey::ListOffsets,
        version,
        2,
        "isolation",
        &request,
    );
    let part = &answer.topics[0].partitions[0];
    assert_eq!(part.error_code, 0, "ListOffsets v{version}");
    part.offset
}

fn records(label: &str, count: usize) -> Vec<Record> {
    (0..count)
        .map(|index| Record::new(None, Some(format!("{label} {index}").as_bytes())))
        .collect()
}

/// The values `consumer` reads from partition 0, from its start to its end
/// (for the consumer's isolation).
fn values(consumer: &KafkaConsumer) -> Vec<String> {
    read_to_end(consumer, TOPIC, &[(0, Offset::Beginning)])
        .remove(&0)
        .unwrap()
        .into_iter()
        .map(|consumed| String::from_utf8(consumed.record.value.unwrap()).unwrap())
        .collect()
}

/// The values the native CLI reads of partition 0, to its end.
fn native_values(broker: &Broker) -> Vec<String> {
    let out = broker.cli_ok(&["consume", TOPIC, "--format", "json"], None);
    out.lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            record["value"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn every_fetch_answers_the_last_stable_offset_and_a_committed_one_its_aborts() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 1);
    create_topic(&broker, TOPIC, 1);
    let producer = producer(&broker, &[]);
    produce_ok(&producer, TOPIC, Some(0), &records("plain", RECORDS));
    let end = RECORDS as i64;

    let mut stream = connect(&broker);
    for version in [4, 11, 12] {
        for (isolation, aborts) in [(READ_UNCOMMITTED, None), (READ_COMMITTED, Some(0))] {
            let answer = fetch(&mut stream, version, isolation, 0);
            let part = &answer.responses[0].partitions[0];
            let asked = format!("v{version}, isolation {isolation}");
            assert_eq!(part.error_code, 0, "{asked}");
            assert_eq!(
                (part.high_watermark, part.last_stable_offset),
                (end, end),
                "{asked}: no transaction open, the two are one"
            );
            assert_eq!(
                part.aborted_transactions.as_ref().map(Vec::len),
                aborts,
                "{asked}: a list only for read_committed"
            );
            assert!(
                part.records
                    .as_ref()
                    .is_some_and(|records| !records.is_empty()),
                "{asked}"
            );
        }
    }
    // Nothing to read: an empty list still.
    let answer = fetch(&mut stream, 12, READ_COMMITTED, end);
    let part = &answer.responses[0].partitions[0];
    assert_eq!(part.aborted_transactions, Some(Vec::new()));

    for version in [2, 5, 9] {
        assert_eq!(list_offset(&mut stream, version, READ_COMMITTED, -1), end);
        assert_eq!(list_offset(&mut stream, version, READ_UNCOMMITTED, -1), end);
    }

    // librdkafka reads every record at either isolation.
    for isolation in ["read_committed", "read_uncommitted"] {
        let consumer = consumer(&broker, &[("isolation.level", isolation)]);
        assert_eq!(values(&consumer).len(), RECORDS, "{isolation}");
    }
    assert_eq!(native_values(&broker).len(), RECORDS);
}

#[test]
fn a_committed_reader_sees_only_committed_transactions_and_stops_at_an_open_one() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 1);
    create_topic(&broker, TOPIC, 1);
    let producer = producer(&broker, &[("transactional.id", "isolation-test")]);
    producer.init_transactions(PATIENCE).expect("init");
    for (label, commit) in [("committed", true), ("aborted", false), ("again", true)] {
        producer.begin_transaction().expect("begin");
        produce_ok(&producer, TOPIC, Some(0), &records(label, 5));
        match commit {
            true => producer.commit_transaction(PATIENCE).expect("commit"),
            false => producer.abort_transaction(PATIENCE).expect("abort"),
        }
    }
    let committed: Vec<String> = records("committed", 5)
        .into_iter()
        .chain(records("again", 5))
        .map(|record| String::from_utf8(record.value.unwrap()).unwrap())
        .collect();

    let read_committed = consumer(&broker, &[("isolation.level", "read_committed")]);
    assert_eq!(values(&read_committed), committed);
    let read_uncommitted = consumer(&broker, &[("isolation.level", "read_uncommitted")]);
    assert_eq!(values(&read_uncommitted).len(), 15, "aborted records too");
    assert_eq!(native_values(&broker), committed);

    // A transaction left open holds the last stable offset at its start.
    producer.begin_transaction().expect("begin");
    produce_ok(&producer, TOPIC, Some(0), &records("open", 5));
    let mut stream = connect(&broker);
    let answer = fetch(&mut stream, 12, READ_COMMITTED, 0);
    let part = &answer.responses[0].partitions[0];
    assert!(part.last_stable_offset < part.high_watermark);
    assert_eq!(
        list_offset(&mut stream, 9, READ_COMMITTED, -1),
        part.last_stable_offset
    );
    assert_eq!(values(&read_committed), committed, "nothing of it");
    assert_eq!(native_values(&broker), committed, "nothing of it, natively");
    producer.commit_transaction(PATIENCE).expect("commit");
    assert_eq!(values(&read_committed).len(), 15);
}
