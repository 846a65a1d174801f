//! Black box: librdkafka (the `rdkafka` crate) against the built `sluice`
//! binary's Kafka listener. Records go in with every compression codec,
//! with keys, headers, timestamps and near the size limit, and come back
//! byte for byte; metadata, watermarks and offsets by time are what was
//! produced; a consumer without a group reads from where it is assigned,
//! and one that subscribes (a group) gets an answer, not a hung connection.

mod common;
mod kafka_common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::Broker;
use kafka_common::*;
use rdkafka::{
    consumer::Consumer, error::KafkaError, producer::Producer, types::RDKafkaErrorCode, Offset,
    Timestamp, TopicPartitionList,
};

const TIMEOUT: Duration = Duration::from_secs(30);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Values that compress well (a codec that was skipped shows on disk),
/// each with its own bytes so none can stand in for another.
fn compressible_records(count: usize, label: &str) -> Vec<Record> {
    let base = 1_700_000_000_000;
    (0..count)
        .map(|index| {
            let mut value = format!("{label} record {index}: ").into_bytes();
            for round in 0..40 {
                value.extend_from_slice(format!("sluice-{} ", round % 7).as_bytes());
            }
            value.extend_from_slice(&(index as u32).to_be_bytes());
            Record::new(Some(format!("key-{}", index % 97).as_bytes()), Some(&value))
                .header("index", Some(index.to_string().as_bytes()))
                .header("codec", Some(label.as_bytes()))
                .at(base + index as i64)
        })
        .collect()
}

#[test]
fn every_compression_codec_round_trips_and_is_stored_compressed() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    const RECORDS: usize = 3_000;
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("codec-{codec}");
        create_topic(&broker, &topic, 3);
        let producer = producer(
            &broker,
            &[
                ("compression.codec", codec),
                ("linger.ms", "20"),
                ("batch.num.messages", "1000"),
            ],
        );
        let records = compressible_records(RECORDS, codec);
        let placed = produce_ok(&producer, &topic, None, &records);
        let read = read_topic(&broker, &topic, 3);
        assert_stored_as_acknowledged(&records, &placed, &read);

        // A compressed batch is stored as the producer sent it: the log is
        // far smaller than the values it holds.
        let value_bytes: u64 = records
            .iter()
            .map(|record| record.value.as_ref().unwrap().len() as u64)
            .sum();
        let described = describe_native(&broker, &topic);
        let stored_bytes: u64 = described["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|partition| partition["size_bytes"].as_u64().unwrap())
            .sum();
        if codec == "none" {
            assert!(
                stored_bytes >= value_bytes,
                "{codec}: {stored_bytes} bytes stored for {value_bytes} bytes of values"
            );
        } else {
            assert!(
                stored_bytes < value_bytes / 4,
                "{codec}: {stored_bytes} bytes stored for {value_bytes} bytes of values: not kept compressed"
            );
        }
    }
}

#[test]
fn keys_headers_and_timestamps_come_back_as_sent() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    // A record stamped in 2100 is further ahead of the broker's clock than
    // Kafka 4's default message.timestamp.after.max.ms (one hour) allows.
    broker.cli_ok(
        &[
            "topic",
            "create",
            "shapes",
            "--partitions",
            "4",
            "-c",
            "message.timestamp.after.max.ms=9223372036854775807",
        ],
        None,
    );
    let producer = producer(&broker, &[("linger.ms", "5")]);

    let binary: Vec<u8> = (0..=255).collect();
    let mut records = vec![
        Record::new(Some(b"plain"), Some(b"value"))
            .header("trace", Some(b"abc"))
            .at(1_000_000_000_000),
        Record::new(None, Some(b"no key")).at(4_102_444_800_000),
        Record::new(Some(b""), Some(b"")).at(1_600_000_000_123),
        Record::new(Some(b"tombstone"), None).at(1_650_000_000_000),
        Record::new(Some(&binary), Some(&binary))
            .header("bin", Some(&binary))
            .header("null", None)
            .header("empty", Some(b""))
            .header("repeated", Some(b"first"))
            .header("repeated", Some(b"second"))
            .header("ünïcödé", Some("välue".as_bytes()))
            .at(1_700_000_000_000),
    ];
    // Records that share a key share a partition, in the order sent.
    for index in 0..200 {
        records.push(
            Record::new(
                Some(b"same-key"),
                Some(format!("in order {index}").as_bytes()),
            )
            .header("index", Some(index.to_string().as_bytes()))
            .at(1_700_000_001_000 + index),
        );
    }
    let placed = produce_ok(&producer, "shapes", None, &records);
    let same_key: Vec<i32> = placed[5..].iter().map(|placed| placed.partition).collect();
    assert!(
        same_key.iter().all(|partition| *partition == same_key[0]),
        "one key, one partition: {same_key:?}"
    );
    let read = read_topic(&broker, "shapes", 4);
    assert_stored_as_acknowledged(&records, &placed, &read);
    for consumed in read.values().flatten() {
        assert!(
            matches!(consumed.timestamp, Timestamp::CreateTime(_)),
            "the producer's time is kept: {consumed:?}"
        );
    }

    // Without a timestamp, the producer's clock is the record's CreateTime.
    let before = now_ms();
    let untimed = vec![Record::new(Some(b"now"), Some(b"now"))];
    let placed = produce_ok(&producer, "shapes", Some(2), &untimed);
    let after = now_ms();
    let consumer = consumer(&broker, &[]);
    let read = read_to_end(
        &consumer,
        "shapes",
        &[(2, Offset::Offset(placed[0].offset))],
    );
    let Timestamp::CreateTime(stamped) = read[&2][0].timestamp else {
        panic!("no CreateTime: {:?}", read[&2][0]);
    };
    assert!(
        (before..=after).contains(&stamped),
        "CreateTime {stamped} not within [{before}, {after}]"
    );
}

/// Bytes of a value near the broker's 16 MiB batch cap, and above
/// librdkafka's default `message.max.bytes` (1 MB).
const LARGE_VALUE_BYTES: usize = 8 << 20;

fn pattern(bytes: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..bytes)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[test]
fn a_message_of_8_mib_round_trips() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    create_topic(&broker, "large", 1);
    let producer = producer(
        &broker,
        &[
            ("message.max.bytes", "20000000"),
            ("compression.codec", "none"),
        ],
    );
    let large = pattern(LARGE_VALUE_BYTES, 7);
    let records = vec![
        Record::new(Some(b"before"), Some(b"small")),
        Record::new(Some(b"large"), Some(&large)).header("size", Some(b"8MiB")),
        Record::new(Some(b"after"), Some(b"small")),
    ];
    let placed = produce_ok(&producer, "large", Some(0), &records);
    // The consumer's default max.partition.fetch.bytes (1 MiB) is smaller
    // than the record: the broker returns the first batch all the same.
    let read = read_topic(&broker, "large", 1);
    assert_stored_as_acknowledged(&records, &placed, &read);
}

/// A record above the broker's batch cap.
const OVERSIZED_VALUE_BYTES: usize = 17 << 20;

#[test]
fn a_record_over_the_batch_cap_is_refused_as_too_large() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    create_topic(&broker, "oversized", 1);
    let producer = producer(
        &broker,
        &[
            ("message.max.bytes", "40000000"),
            ("compression.codec", "none"),
            ("message.timeout.ms", "30000"),
        ],
    );
    let oversized = vec![Record::new(None, Some(&pattern(OVERSIZED_VALUE_BYTES, 3)))];
    let outcome = produce(&producer, "oversized", Some(0), &oversized);
    match &outcome[0] {
        Err(KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge)) => {}
        other => panic!(
            "a {OVERSIZED_VALUE_BYTES}-byte record: {other:?}, not MESSAGE_TOO_LARGE; last log lines:\n{}",
            producer.context().log_tail(40)
        ),
    }
    // The broker and the producer go on.
    let small = vec![Record::new(None, Some(b"small"))];
    let placed = produce_ok(&producer, "oversized", Some(0), &small);
    assert_eq!(placed[0].offset, 0, "nothing of the refused record stored");
}

#[test]
fn metadata_lists_topics_partitions_and_this_broker() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    let topics = [("meta-one", 1), ("meta-three", 3), ("meta-eight", 8)];
    for (name, partitions) in topics {
        create_topic(&broker, name, partitions);
    }
    let producer = producer(&broker, &[]);
    let metadata = producer
        .client()
        .fetch_metadata(None, TIMEOUT)
        .expect("metadata of every topic");
    assert_eq!(metadata.brokers().len(), 1, "one broker");
    let this = &metadata.brokers()[0];
    assert_eq!(
        format!("{}:{}", this.host(), this.port()),
        broker.kafka_addr,
        "the broker advertises its Kafka listener"
    );
    for (name, partitions) in topics {
        let topic = metadata
            .topics()
            .iter()
            .find(|topic| topic.name() == name)
            .unwrap_or_else(|| panic!("{name} not listed"));
        assert_eq!(topic.error(), None, "{name}");
        let ids: Vec<i32> = topic.partitions().iter().map(|p| p.id()).collect();
        assert_eq!(ids, (0..partitions as i32).collect::<Vec<_>>(), "{name}");
        for partition in topic.partitions() {
            assert_eq!(partition.error(), None, "{name}/{}", partition.id());
            assert_eq!(partition.leader(), this.id(), "{name}/{}", partition.id());
            assert_eq!(partition.replicas(), [this.id()]);
            assert_eq!(partition.isr(), [this.id()]);
        }
    }

    let one = producer
        .client()
        .fetch_metadata(Some("meta-three"), TIMEOUT)
        .expect("metadata of one topic");
    assert_eq!(one.topics().len(), 1);
    assert_eq!(one.topics()[0].partitions().len(), 3);

    // A consumer does not create topics by asking about them.
    let consumer = consumer(&broker, &[]);
    let unknown = consumer
        .fetch_metadata(Some("meta-unknown"), TIMEOUT)
        .expect("metadata");
    assert_eq!(
        unknown.topics()[0].error().map(RDKafkaErrorCode::from),
        Some(RDKafkaErrorCode::UnknownTopicOrPartition)
    );
}

#[test]
fn topics_are_created_by_metadata_and_by_produce_with_four_partitions() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    let producer = producer(&broker, &[]);

    // A producer's metadata request allows auto-creation.
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let metadata = producer
            .client()
            .fetch_metadata(Some("auto-by-metadata"), TIMEOUT)
            .expect("metadata");
        let topic = &metadata.topics()[0];
        if topic.error().is_none() && !topic.partitions().is_empty() {
            assert_eq!(topic.partitions().len(), 4);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "auto-by-metadata not created: {:?}",
            topic.error()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let records: Vec<Record> = (0..100)
        .map(|index| Record::new(Some(format!("k{index}").as_bytes()), Some(b"v")))
        .collect();
    let placed = produce_ok(&producer, "auto-by-produce", None, &records);
    let partitions: std::collections::BTreeSet<i32> =
        placed.iter().map(|placed| placed.partition).collect();
    assert!(partitions
        .iter()
        .all(|partition| (0..4).contains(partition)));
    let metadata = producer
        .client()
        .fetch_metadata(Some("auto-by-produce"), TIMEOUT)
        .unwrap();
    assert_eq!(metadata.topics()[0].partitions().len(), 4);
    let read = read_topic(&broker, "auto-by-produce", 4);
    assert_stored_as_acknowledged(&records, &placed, &read);
}

#[test]
fn watermarks_and_offsets_for_times() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    create_topic(&broker, "times", 2);
    let producer = producer(&broker, &[]);
    let base = 1_700_000_000_000;
    let records: Vec<Record> = (0..10)
        .map(|index| Record::new(None, Some(b"t")).at(base + index * 1_000))
        .collect();
    produce_ok(&producer, "times", Some(0), &records);
    produce_ok(&producer, "times", Some(1), &records[..5]);

    let consumer = consumer(&broker, &[]);
    assert_eq!(
        consumer.fetch_watermarks("times", 0, TIMEOUT).unwrap(),
        (0, 10)
    );
    assert_eq!(
        consumer.fetch_watermarks("times", 1, TIMEOUT).unwrap(),
        (0, 5)
    );

    let at = |partition: i32, timestamp: i64| -> Offset {
        let mut query = TopicPartitionList::new();
        query
            .add_partition_offset("times", partition, Offset::Offset(timestamp))
            .unwrap();
        let answer = consumer.offsets_for_times(query, TIMEOUT).unwrap();
        let element = answer.find_partition("times", partition).unwrap();
        assert!(element.error().is_ok(), "{:?}", element.error());
        element.offset()
    };
    assert_eq!(at(0, base - 5_000), Offset::Offset(0), "before the first");
    assert_eq!(at(0, base), Offset::Offset(0), "the first exactly");
    assert_eq!(
        at(0, base + 2_500),
        Offset::Offset(3),
        "the first at or after"
    );
    assert_eq!(at(0, base + 9_000), Offset::Offset(9), "the last exactly");
    assert_eq!(at(0, base + 9_001), Offset::End, "after the last: none");
    assert_eq!(at(1, base + 4_000), Offset::Offset(4));
    assert_eq!(at(1, base + 5_000), Offset::End);
}

#[test]
fn an_assigned_consumer_starts_where_it_is_told() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    create_topic(&broker, "assigned", 1);
    let producer = producer(&broker, &[]);
    let records: Vec<Record> = (0..20)
        .map(|index| Record::new(None, Some(format!("r{index}").as_bytes())))
        .collect();
    produce_ok(&producer, "assigned", Some(0), &records);
    let consumer = consumer(&broker, &[]);

    let offsets = |start: Offset| -> Vec<i64> {
        read_to_end(&consumer, "assigned", &[(0, start)])[&0]
            .iter()
            .map(|consumed| consumed.offset)
            .collect()
    };
    assert_eq!(offsets(Offset::Beginning), (0..20).collect::<Vec<_>>());
    assert_eq!(offsets(Offset::Offset(7)), (7..20).collect::<Vec<_>>());
    assert_eq!(offsets(Offset::OffsetTail(5)), (15..20).collect::<Vec<_>>());
    assert_eq!(offsets(Offset::End), Vec::<i64>::new());

    // At the end, the consumer waits for what comes next (long polling).
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("assigned", 0, Offset::End)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let mut waited = Vec::new();
    let deadline = std::time::Instant::now() + TIMEOUT;
    // The end is asked for (ListOffsets) on the connection where the
    // consumer's previous long-poll fetch may still wait; the broker
    // serves a connection's requests in order, as Kafka does, so records
    // produced before that fetch returns would come before the end the
    // consumer is given. Nothing is produced until the fetch wait
    // (fetch.wait.max.ms, 500 ms) has passed.
    let asked = std::time::Instant::now();
    let mut sent = false;
    while waited.len() < 3 {
        assert!(std::time::Instant::now() < deadline, "new records not read");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                use rdkafka::Message;
                waited.push((message.offset(), message.payload().unwrap().to_vec()));
            }
            Some(Err(KafkaError::PartitionEOF(_))) | None => {
                if !sent && asked.elapsed() > Duration::from_millis(1_500) {
                    produce_ok(&producer, "assigned", Some(0), &records[..3]);
                    sent = true;
                }
            }
            Some(Err(error)) => panic!("{error}"),
        }
    }
    assert_eq!(
        waited,
        vec![
            (20, b"r0".to_vec()),
            (21, b"r1".to_vec()),
            (22, b"r2".to_vec())
        ]
    );
    consumer.unassign().unwrap();

    // An offset past the end is out of range, and with no reset policy
    // the consumer says so.
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("assigned", 0, Offset::Offset(1_000))
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no out-of-range error; last log lines:\n{}",
            consumer.context().log_tail(40)
        );
        match consumer.poll(Duration::from_millis(200)) {
            None | Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset))) => break,
            Some(other) => panic!(
                "offset 1000 of 23: {:?}",
                other.map(|message| {
                    use rdkafka::Message;
                    message.offset()
                })
            ),
        }
    }
}

/// Group APIs are answered with an error until the broker has groups: a
/// consumer that subscribes hears back, its connection stays up and it
/// gets no records it was not given.
#[test]
fn a_subscribing_consumer_is_assigned_reads_everything_and_commits() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    create_topic(&broker, "grouped", 2);
    let producer = producer(&broker, &[]);
    let records: Vec<Record> = (0..10)
        .map(|index| {
            Record::new(
                Some(format!("k{index}").as_bytes()),
                Some(format!("g{index}").as_bytes()),
            )
        })
        .collect();
    produce_ok(&producer, "grouped", None, &records);

    let consumer = consumer(
        &broker,
        &[
            ("group.id", "sluice-test-group"),
            ("auto.offset.reset", "earliest"),
            ("enable.partition.eof", "false"),
        ],
    );
    consumer.subscribe(&["grouped"]).expect("subscribe");
    let mut values = std::collections::BTreeSet::new();
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while values.len() < records.len() && std::time::Instant::now() < until {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                use rdkafka::Message;
                values.insert(message.payload().unwrap().to_vec());
            }
            Some(Err(error)) => eprintln!("subscribe: consumer error {error}"),
            None => {}
        }
    }
    assert_eq!(
        values.len(),
        records.len(),
        "{}",
        consumer.context().log_tail(60)
    );
    let assignment = consumer.assignment().unwrap();
    assert_eq!(
        assignment.count(),
        2,
        "both partitions assigned to the one member"
    );
    let position = consumer.position().expect("position");
    consumer
        .commit(&position, rdkafka::consumer::CommitMode::Sync)
        .expect("commit");
    let committed = consumer.committed(TIMEOUT).expect("committed offsets");
    let total: i64 = committed
        .elements()
        .iter()
        .map(|element| match element.offset() {
            Offset::Offset(offset) => offset,
            other => panic!("committed {other:?}"),
        })
        .sum();
    assert_eq!(
        total,
        records.len() as i64,
        "committed up to the end of both partitions"
    );
}
