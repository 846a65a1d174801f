//! Black box: a compacted topic (`cleanup.policy=compact`) on the built
//! `sluice` binary. Records go in over a set of keys, from the CLI (native
//! batches) and from librdkafka (Kafka batches, compressed), round after
//! round in segments rolled by `segment.ms`; the cleaner compacts them in
//! the background; read back with the CLI and with librdkafka, each key's
//! latest value is there, the older ones are gone, offsets keep their
//! gaps, and a key deleted by a tombstone disappears once
//! `delete.retention.ms` has passed. A record without a key is refused.

mod common;
mod kafka_common;

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use common::Broker;
use kafka_common::*;
use rdkafka::{error::KafkaError, types::RDKafkaErrorCode, Offset};

const TOPIC: &str = "compacted";
const KEYS: usize = 20;
const ROUNDS: usize = 6;

/// Every record of the topic read with the CLI (a native client): (offset,
/// key, value).
fn read_cli(broker: &Broker) -> Vec<(u64, String, String)> {
    let out = broker.cli_ok(&["consume", TOPIC, "--format", "json"], None);
    out.lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                record["offset"].as_u64().unwrap(),
                record["key"].as_str().unwrap().to_string(),
                record["value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The last value read of each key.
fn latest(records: &[(u64, String, String)]) -> BTreeMap<String, String> {
    records
        .iter()
        .map(|(_, key, value)| (key.clone(), value.clone()))
        .collect()
}

fn produce_cli(broker: &Broker, lines: &str) {
    broker.cli_ok(
        &["produce", TOPIC, "--key-separator", ":"],
        Some(lines.as_bytes()),
    );
}

#[test]
fn a_compacted_topic_keeps_the_latest_record_of_each_key() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_with(
        dir.path(),
        1,
        &[
            ("SLUICE_CLEANER_CHECK_INTERVAL_MS", "100"),
            ("SLUICE_CLEANER_BYTES_PER_S", "0"),
        ],
    );
    broker.cli_ok(
        &[
            "topic",
            "create",
            TOPIC,
            "--partitions",
            "1",
            "-c",
            "cleanup.policy=compact",
            "-c",
            "segment.ms=100",
            "-c",
            "min.cleanable.dirty.ratio=0.01",
            "-c",
            "delete.retention.ms=1000",
        ],
        None,
    );
    let producer = producer(&broker, &[("compression.codec", "lz4"), ("linger.ms", "5")]);

    // A record without a key has no place in a compacted topic.
    let refused = produce(
        &producer,
        TOPIC,
        Some(0),
        &[Record::new(None, Some(b"v".as_slice()))],
    );
    assert!(
        matches!(
            refused[0],
            Err(KafkaError::MessageProduction(
                RDKafkaErrorCode::InvalidRecord
            ))
        ),
        "{refused:?}"
    );

    let mut expected = BTreeMap::new();
    let mut produced = 0;
    for round in 0..ROUNDS {
        let lines: String = (0..KEYS)
            .map(|key| format!("native-{key}:round {round} of native-{key}\n"))
            .collect();
        produce_cli(&broker, &lines);
        let mut records: Vec<Record> = (0..KEYS)
            .map(|key| {
                let value = format!("round {round} of kafka-{key}");
                Record::new(
                    Some(format!("kafka-{key}").as_bytes()),
                    Some(value.as_bytes()),
                )
            })
            .collect();
        match round {
            1 => records.push(Record::new(
                Some(b"gone".as_slice()),
                Some(b"soon deleted".as_slice()),
            )),
            2 => records.push(Record::new(Some(b"gone".as_slice()), None)),
            _ => {}
        }
        produced += KEYS + records.len();
        produce_ok(&producer, TOPIC, Some(0), &records);
        for key in 0..KEYS {
            expected.insert(
                format!("native-{key}"),
                format!("round {round} of native-{key}"),
            );
            expected.insert(
                format!("kafka-{key}"),
                format!("round {round} of kafka-{key}"),
            );
        }
        // Past segment.ms: the next round starts a new segment.
        std::thread::sleep(Duration::from_millis(150));
    }

    // The cleaner runs in the background; records keep coming (to a key
    // of their own), so that segments keep rolling and passes keep
    // finding dirty ones, until the tombstone's retention has passed.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut filler = 0;
    let read = loop {
        let read = read_cli(&broker);
        let mut latest = latest(&read);
        latest.remove("filler");
        // A native reader sees a tombstone as an empty value.
        assert!(latest.remove("gone").is_none_or(|value| value.is_empty()));
        let compacted = read.len() < produced / 2;
        if compacted && latest == expected {
            break read;
        }
        assert!(
            Instant::now() < deadline,
            "not compacted after 60 s: {} records of {produced}; keys {:?}",
            read.len(),
            latest.keys().collect::<Vec<_>>()
        );
        filler += 1;
        produce_cli(&broker, &format!("filler:{filler}\n"));
        std::thread::sleep(Duration::from_millis(150));
    };
    // Offsets rise, with gaps where older records were.
    let offsets: Vec<u64> = read.iter().map(|(offset, _, _)| *offset).collect();
    assert!(
        offsets.windows(2).all(|pair| pair[0] < pair[1]),
        "{offsets:?}"
    );
    assert!(
        offsets.windows(2).any(|pair| pair[1] > pair[0] + 1),
        "gaps: {offsets:?}"
    );
    // Below the last few segments, each key once.
    let per_key = read
        .iter()
        .fold(BTreeMap::<&str, usize>::new(), |mut counts, (_, key, _)| {
            *counts.entry(key.as_str()).or_default() += 1;
            counts
        });
    assert!(
        per_key
            .iter()
            .filter(|(key, _)| **key != "filler")
            .all(|(_, count)| *count <= 2),
        "{per_key:?}"
    );

    // librdkafka reads the same: the Kafka batches as stored (compacted,
    // recompressed), the native ones converted.
    let consumer = consumer(&broker, &[]);
    let consumed = read_to_end(&consumer, TOPIC, &[(0, Offset::Beginning)]);
    let consumed: Vec<(u64, String, Option<String>)> = consumed[&0]
        .iter()
        .map(|record| {
            (
                record.offset as u64,
                String::from_utf8(record.record.key.clone().unwrap()).unwrap(),
                record
                    .record
                    .value
                    .clone()
                    .map(|value| String::from_utf8(value).unwrap()),
            )
        })
        .collect();
    let mut kafka_latest = BTreeMap::new();
    for (_, key, value) in &consumed {
        kafka_latest.insert(key.clone(), value.clone());
    }
    kafka_latest.remove("filler");
    // The tombstone may still be there (its retention) or gone; the value
    // it deleted is gone.
    match kafka_latest.remove("gone") {
        None | Some(None) => {}
        Some(Some(value)) => panic!("a deleted key reads {value:?}"),
    }
    let kafka_latest: BTreeMap<String, String> = kafka_latest
        .into_iter()
        .map(|(key, value)| (key, value.expect("only tombstones are null")))
        .collect();
    assert_eq!(kafka_latest, expected);
    let consumed_offsets: Vec<u64> = consumed.iter().map(|(offset, _, _)| *offset).collect();
    assert!(consumed_offsets.windows(2).all(|pair| pair[0] < pair[1]));

    // Once its retention has passed and a pass came by, the tombstone goes.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let consumed = read_to_end(&consumer, TOPIC, &[(0, Offset::Beginning)]);
        if !consumed[&0]
            .iter()
            .any(|record| record.record.key.as_deref() == Some(b"gone"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the tombstone outlived its retention"
        );
        filler += 1;
        produce_cli(&broker, &format!("filler:{filler}\n"));
        std::thread::sleep(Duration::from_millis(200));
    }
}
