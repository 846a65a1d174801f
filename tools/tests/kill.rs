//! `kill -9` while 4 producers write with acks=all, 20 times: after each
//! restart every acknowledged record is there, in place, with no gap. The
//! kill moments come from a seed the test prints; `SLUICE_TEST_SEED=<seed>`
//! makes them again.

mod common;

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use common::*;
use rand::Rng;
use sluice_net::native::ErrorCode;

const TOPIC: &str = "acked";
const PARTITIONS: u32 = 4;
const ROUNDS: usize = 20;

/// Partition -> offset -> value, for every acknowledged record.
type Acked = BTreeMap<u32, BTreeMap<u64, Vec<u8>>>;

/// The value of record `index` of a batch: unique and checkable.
fn value(producer: usize, sequence: u64, index: usize) -> Vec<u8> {
    let mut value = format!("p{producer}-s{sequence}-r{index}-").into_bytes();
    value.resize(40 + (sequence as usize * 7 + index) % 300, b'.');
    value
}

#[test]
fn acknowledged_records_survive_kill_9() {
    let mut rng = seeded_rng("acknowledged_records_survive_kill_9");
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), 2);
    create_topic(&mut broker.connect(), TOPIC, PARTITIONS);
    let acked: Arc<Mutex<Acked>> = Arc::default();
    let mut total_acked = 0;
    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let producers: Vec<_> = (0..4)
            .map(|producer| {
                let addr = broker.addr.clone();
                let acked = acked.clone();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let Ok(mut conn) = sluice_net::native::blocking::Connection::open(
                        &addr,
                        Duration::from_secs(10),
                    ) else {
                        return;
                    };
                    let mut sequence = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        sequence += 1;
                        let partition = (producer as u32 + sequence as u32) % PARTITIONS;
                        let values: Vec<Vec<u8>> = (0..1 + sequence as usize % 5)
                            .map(|index| value(producer + 4 * round, sequence, index))
                            .collect();
                        let batch = batch_of(&values).into_bytes();
                        // Any error (the broker died) ends this producer.
                        let Ok(response) = produce(&mut conn, TOPIC, partition, batch) else {
                            return;
                        };
                        assert_eq!(response.error, ErrorCode::None, "{}", response.message);
                        let mut acked = acked.lock().unwrap();
                        let partition_acked = acked.entry(partition).or_default();
                        for (index, value) in values.into_iter().enumerate() {
                            partition_acked.insert(response.base_offset + index as u64, value);
                        }
                    }
                })
            })
            .collect();
        let delay = rng.random_range(20..300);
        std::thread::sleep(Duration::from_millis(delay));
        broker.restart_after_kill9();
        stop.store(true, Ordering::Relaxed);
        for producer in producers {
            producer.join().unwrap();
        }

        let acked = acked.lock().unwrap();
        let mut conn = broker.connect();
        for partition in 0..PARTITIONS {
            let records = read_partition(&mut conn, TOPIC, partition, 0);
            // No gap: offsets 0, 1, 2, ... to the end.
            for (expected, (offset, _)) in records.iter().enumerate() {
                assert_eq!(
                    *offset, expected as u64,
                    "gap in partition {partition} after round {round}"
                );
            }
            let stored: BTreeMap<u64, &Vec<u8>> = records.iter().map(|(o, v)| (*o, v)).collect();
            for (offset, value) in acked.get(&partition).into_iter().flatten() {
                assert_eq!(
                    stored.get(offset).copied(),
                    Some(value),
                    "acknowledged record {offset} of partition {partition} lost or changed in round {round}"
                );
            }
        }
        total_acked = acked.values().map(BTreeMap::len).sum();
    }
    println!("{ROUNDS} kill -9 rounds, {total_acked} acknowledged records, none lost");
    assert!(
        total_acked > 1000,
        "too few records were acknowledged to prove anything: {total_acked}"
    );
}
