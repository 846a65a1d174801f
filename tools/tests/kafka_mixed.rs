//! Black box: any client reads any topic. Records produced natively
//! (`sluice produce` and the client library) are read by librdkafka, and
//! records produced by librdkafka, with every codec, are read by
//! `sluice consume`; a partition that holds batches of both formats reads
//! the same, in offset order, either way.

mod common;
mod kafka_common;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use common::Broker;
use kafka_common::*;
use rdkafka::Timestamp;
use sluice_net::client::{Client, Producer, ProducerOptions};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

type NativeRecord = (Option<Vec<u8>>, Vec<u8>, Vec<(Vec<u8>, Option<Vec<u8>>)>);

/// Sends records with the native client library, in order, to one partition.
fn produce_natively(address: &str, topic: &str, partition: u32, records: Vec<NativeRecord>) {
    let address = address.to_string();
    let topic = topic.to_string();
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .make()
        .expect("executor")
        .run(async move {
            let client = Client::connect(&address).await.expect("connect");
            let producer = Producer::new(client, ProducerOptions::default());
            let mut deliveries = Vec::new();
            for (key, value, headers) in &records {
                let headers: Vec<(&[u8], Option<&[u8]>)> = headers
                    .iter()
                    .map(|(name, value)| (name.as_slice(), value.as_deref()))
                    .collect();
                producer.ready().await;
                deliveries.push(producer.send(
                    &topic,
                    Some(partition),
                    key.as_deref(),
                    value,
                    &headers,
                ));
            }
            producer.flush().await.expect("flush");
            for delivery in deliveries {
                delivery.await.expect("stored");
            }
        });
}

/// A record as `sluice consume --format json` prints it.
#[derive(Debug, PartialEq, Eq)]
struct Printed {
    partition: u64,
    offset: u64,
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

fn printed_bytes(object: &serde_json::Value, field: &str) -> Option<Vec<u8>> {
    if let Some(text) = object[field].as_str() {
        return Some(text.as_bytes().to_vec());
    }
    object[format!("{field}_base64")].as_str().map(|encoded| {
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("base64")
    })
}

fn consume_natively(broker: &Broker, topic: &str) -> Vec<Printed> {
    let consumed = broker.cli(&["consume", topic, "--format", "json"], None);
    assert!(consumed.status.success(), "sluice consume: {consumed:?}");
    String::from_utf8(consumed.stdout)
        .expect("JSON is UTF-8")
        .lines()
        .map(|line| {
            let object: serde_json::Value =
                serde_json::from_str(line).expect("one object per line");
            Printed {
                partition: object["partition"].as_u64().unwrap(),
                offset: object["offset"].as_u64().unwrap(),
                timestamp: object["timestamp"].as_i64().unwrap(),
                key: printed_bytes(&object, "key"),
                value: printed_bytes(&object, "value").expect("a value"),
                headers: object["headers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|header| {
                        (
                            printed_bytes(header, "name").expect("a header name"),
                            printed_bytes(header, "value"),
                        )
                    })
                    .collect(),
            }
        })
        .collect()
}

#[test]
fn records_produced_natively_are_read_by_librdkafka() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    create_topic(&broker, "from-native", 2);
    let before = now_ms();

    // Partition 0: `sluice produce`, keyed by a tab.
    let lines: Vec<(Option<String>, String)> = (0..300)
        .map(|index| match index % 3 {
            0 => (None, format!("unkeyed line {index}")),
            1 => (Some(format!("key{index}")), format!("line {index} ünïcödé")),
            _ => (Some(format!("key{index}")), String::new()),
        })
        .collect();
    let mut input = Vec::new();
    for (key, value) in &lines {
        if let Some(key) = key {
            input.extend_from_slice(key.as_bytes());
            input.push(b'\t');
        }
        input.extend_from_slice(value.as_bytes());
        input.push(b'\n');
    }
    let produced = broker.cli(
        &[
            "produce",
            "from-native",
            "--partition",
            "0",
            "--key-separator",
            "\t",
            "-q",
        ],
        Some(&input),
    );
    assert!(produced.status.success(), "{produced:?}");

    // Partition 1: the client library, with headers and binary bytes.
    let natives: Vec<NativeRecord> = (0..300u32)
        .map(|index| {
            let value: Vec<u8> = (0..index % 300)
                .map(|byte| (byte * 7 + index) as u8)
                .collect();
            (
                (index % 4 != 0).then(|| index.to_be_bytes().to_vec()),
                value,
                vec![
                    (b"index".to_vec(), Some(index.to_string().into_bytes())),
                    (b"null".to_vec(), None),
                    (b"bin".to_vec(), Some(vec![0, 255, index as u8])),
                ],
            )
        })
        .collect();
    produce_natively(&broker.addr, "from-native", 1, natives.clone());
    let after = now_ms();

    let read = read_topic(&broker, "from-native", 2);
    let offsets: Vec<i64> = read[&0].iter().map(|consumed| consumed.offset).collect();
    assert_eq!(offsets, (0..lines.len() as i64).collect::<Vec<_>>());
    for ((key, value), consumed) in lines.iter().zip(&read[&0]) {
        assert_eq!(
            consumed.record.key,
            key.as_ref().map(|key| key.as_bytes().to_vec())
        );
        assert_eq!(
            consumed.record.value.as_deref().unwrap_or_default(),
            value.as_bytes()
        );
        assert!(consumed.record.headers.is_empty());
        let Timestamp::CreateTime(stamped) = consumed.timestamp else {
            panic!("no CreateTime: {consumed:?}");
        };
        assert!(
            (before..=after).contains(&stamped),
            "{stamped} not in [{before}, {after}]"
        );
    }
    let offsets: Vec<i64> = read[&1].iter().map(|consumed| consumed.offset).collect();
    assert_eq!(offsets, (0..natives.len() as i64).collect::<Vec<_>>());
    for ((key, value, headers), consumed) in natives.iter().zip(&read[&1]) {
        assert_eq!(&consumed.record.key, key);
        assert_eq!(
            consumed.record.value.as_deref().unwrap_or_default(),
            value.as_slice()
        );
        let headers: Vec<(String, Option<Vec<u8>>)> = headers
            .iter()
            .map(|(name, value)| (String::from_utf8(name.clone()).unwrap(), value.clone()))
            .collect();
        assert_eq!(consumed.record.headers, headers);
        assert!(
            matches!(consumed.timestamp, Timestamp::CreateTime(t) if (before..=after).contains(&t))
        );
    }
}

#[test]
fn records_produced_by_librdkafka_are_read_by_sluice_consume() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    create_topic(&broker, "from-kafka", 3);
    let mut sent: Vec<(Record, Placed)> = Vec::new();
    for (round, codec) in ["none", "gzip", "snappy", "lz4", "zstd"]
        .into_iter()
        .enumerate()
    {
        let producer = producer(
            &broker,
            &[("compression.codec", codec), ("linger.ms", "10")],
        );
        let records: Vec<Record> = (0..400)
            .map(|index| {
                let value: Vec<u8> = format!("{codec} {index} ")
                    .into_bytes()
                    .into_iter()
                    .chain((0..index % 200).map(|byte| (byte ^ index) as u8))
                    .collect();
                let key = (index % 5 != 0).then(|| format!("key-{}", index % 31).into_bytes());
                Record::new(key.as_deref(), Some(&value))
                    .header("codec", Some(codec.as_bytes()))
                    .header("null", None)
                    .header("bin", Some(&[0xff, 0x00, index as u8]))
                    .header("codec", Some(b"repeated"))
                    .at(1_600_000_000_000 + (round * 1_000 + index) as i64)
            })
            .collect();
        let placed = produce_ok(&producer, "from-kafka", None, &records);
        sent.extend(records.into_iter().zip(placed));
    }

    let printed = consume_natively(&broker, "from-kafka");
    assert_eq!(printed.len(), sent.len(), "records read by sluice consume");
    let mut by_place = std::collections::HashMap::new();
    for record in &printed {
        assert!(
            by_place
                .insert((record.partition as i32, record.offset as i64), record)
                .is_none(),
            "printed twice: {record:?}"
        );
    }
    for (record, placed) in &sent {
        let got = by_place
            .get(&(placed.partition, placed.offset))
            .unwrap_or_else(|| panic!("{placed:?} not read"));
        let expected = Printed {
            partition: placed.partition as u64,
            offset: placed.offset as u64,
            timestamp: record.timestamp.unwrap(),
            key: record.key.clone(),
            value: record.value.clone().unwrap(),
            headers: record
                .headers
                .iter()
                .map(|(name, value)| (name.as_bytes().to_vec(), value.clone()))
                .collect(),
        };
        assert_eq!(**got, expected);
    }
}

#[test]
fn a_partition_of_both_formats_reads_the_same_either_way() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    create_topic(&broker, "both", 1);
    let mut expected: Vec<Vec<u8>> = Vec::new();
    let mut step = 0;
    let mut next_values = |expected: &mut Vec<Vec<u8>>, label: &str| -> Vec<Vec<u8>> {
        step += 1;
        let values: Vec<Vec<u8>> = (0..3)
            .map(|index| format!("step {step} {label} {index}").into_bytes())
            .collect();
        expected.extend(values.iter().cloned());
        values
    };
    for codec in ["gzip", "zstd", "none"] {
        let lines = next_values(&mut expected, "cli");
        let mut input = lines.join(&b'\n');
        input.push(b'\n');
        let produced = broker.cli(&["produce", "both", "-q"], Some(&input));
        assert!(produced.status.success(), "{produced:?}");

        let values = next_values(&mut expected, codec);
        let producer = producer(&broker, &[("compression.codec", codec)]);
        let records: Vec<Record> = values
            .iter()
            .map(|value| Record::new(None, Some(value)))
            .collect();
        produce_ok(&producer, "both", Some(0), &records);

        let values = next_values(&mut expected, "client");
        produce_natively(
            &broker.addr,
            "both",
            0,
            values
                .into_iter()
                .map(|value| (None, value, Vec::new()))
                .collect(),
        );
    }

    let read = read_topic(&broker, "both", 1);
    let values: Vec<(i64, Vec<u8>)> = read[&0]
        .iter()
        .map(|consumed| {
            (
                consumed.offset,
                consumed.record.value.clone().unwrap_or_default(),
            )
        })
        .collect();
    let wanted: Vec<(i64, Vec<u8>)> = expected
        .iter()
        .cloned()
        .enumerate()
        .map(|(o, v)| (o as i64, v))
        .collect();
    assert_eq!(
        values, wanted,
        "librdkafka reads both formats in offset order"
    );

    let printed = consume_natively(&broker, "both");
    let values: Vec<(i64, Vec<u8>)> = printed
        .into_iter()
        .map(|record| (record.offset as i64, record.value))
        .collect();
    assert_eq!(
        values, wanted,
        "sluice consume reads both formats in offset order"
    );
}
