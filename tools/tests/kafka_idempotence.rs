//! Black box: librdkafka's idempotent producer keeps sending while the
//! broker is stopped (SIGTERM) or killed (SIGKILL) and started again on the
//! same ports. Afterwards every acknowledged record is in its partition
//! exactly once, at the offset it was acknowledged with, in the order sent:
//! retried batches that had already been stored are not stored twice, and
//! the producer's sequence state survives the restart.

mod common;
mod kafka_common;

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use common::Broker;
use kafka_common::*;
use rdkafka::producer::Producer;

const PARTITIONS: i32 = 4;
const RECORDS: usize = 40_000;
/// Records acknowledged before the restart, so that it falls in the middle
/// of a stream with batches in flight.
const ACKNOWLEDGED_BEFORE_RESTART: usize = 4_000;

#[derive(Clone, Copy, Debug)]
enum Restart {
    Sigterm,
    Sigkill,
}

fn produce_across_a_restart(restart: Restart) {
    let data_dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(data_dir.path(), 2);
    create_topic(&broker, "idempotent", PARTITIONS as u32);
    let producer = producer(
        &broker,
        &[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("linger.ms", "2"),
            ("batch.num.messages", "500"),
            ("message.timeout.ms", "120000"),
            ("reconnect.backoff.ms", "50"),
            ("reconnect.backoff.max.ms", "500"),
        ],
    );
    let records: Vec<Record> = (0..RECORDS)
        .map(|index| {
            Record::new(
                Some(format!("key-{}", index % 101).as_bytes()),
                Some(format!("idempotent-{index}").as_bytes()),
            )
        })
        .collect();

    let mut restarted = false;
    let outcomes = produce_with(&producer, "idempotent", None, &records, |sent| {
        if restarted || sent < RECORDS / 2 {
            return;
        }
        let deadline = Instant::now() + PATIENCE;
        while producer.context().delivered_count() < ACKNOWLEDGED_BEFORE_RESTART {
            assert!(
                Instant::now() < deadline,
                "no acknowledgements before the restart"
            );
            producer.poll(Duration::from_millis(10));
        }
        match restart {
            Restart::Sigterm => broker.stop(),
            Restart::Sigkill => broker.kill9(),
        }
        // The producer knows the broker by its address only.
        broker.spawn_on_the_same_ports();
        restarted = true;
    });
    assert!(restarted);
    assert_eq!(
        producer.client().fatal_error(),
        None,
        "the idempotent producer failed for good"
    );
    let failed: Vec<(usize, String)> = outcomes
        .iter()
        .enumerate()
        .filter_map(|(index, outcome)| {
            outcome
                .as_ref()
                .err()
                .map(|error| (index, error.to_string()))
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{restart:?}: {} records not acknowledged, first {:?}; last log lines:\n{}",
        failed.len(),
        &failed[..failed.len().min(5)],
        producer.context().log_tail(60)
    );

    let read = read_topic(&broker, "idempotent", PARTITIONS);
    let mut seen: HashMap<Vec<u8>, (i32, i64)> = HashMap::new();
    for consumed in read.values().flatten() {
        let value = consumed.record.value.clone().expect("a value");
        if let Some(first) = seen.insert(value.clone(), (consumed.partition, consumed.offset)) {
            panic!(
                "{restart:?}: {:?} stored twice, at {first:?} and at {}/{}",
                String::from_utf8_lossy(&value),
                consumed.partition,
                consumed.offset
            );
        }
    }
    for (index, outcome) in outcomes.iter().enumerate() {
        let placed = outcome.as_ref().unwrap();
        let value = format!("idempotent-{index}").into_bytes();
        let stored = seen.get(&value).unwrap_or_else(|| {
            panic!("{restart:?}: record {index}, acknowledged at {placed:?}, is lost")
        });
        assert_eq!(
            *stored,
            (placed.partition, placed.offset),
            "{restart:?}: record {index} is not where it was acknowledged"
        );
    }
    assert_eq!(seen.len(), RECORDS, "{restart:?}: records never sent");
    // In the order sent, per partition.
    for (partition, consumed) in &read {
        let indexes: Vec<usize> = consumed
            .iter()
            .map(|consumed| {
                let value = consumed.record.value.as_ref().unwrap();
                std::str::from_utf8(value).unwrap()["idempotent-".len()..]
                    .parse()
                    .unwrap()
            })
            .collect();
        assert!(
            indexes.windows(2).all(|pair| pair[0] < pair[1]),
            "{restart:?}: partition {partition} out of order"
        );
    }
}

#[test]
fn an_idempotent_producer_loses_and_duplicates_nothing_across_a_sigterm_restart() {
    produce_across_a_restart(Restart::Sigterm);
}

#[test]
fn an_idempotent_producer_loses_and_duplicates_nothing_across_a_kill_9() {
    produce_across_a_restart(Restart::Sigkill);
}
