//! Long poll: a consumer waiting at the log end receives a new record within
//! 5 ms of its acknowledgement (median of 100).

mod common;

use std::time::{Duration, Instant};

use common::*;
use sluice_net::native::ErrorCode;

/// How long a fetch may take to reach the broker and wait there.
const PARK_TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn a_waiting_consumer_gets_the_record_within_5_ms_of_its_ack() {
    let dir = tempfile::tempdir().unwrap();
    // The admin listener says when the fetch waits (a request in flight).
    let broker = Broker::start_with(dir.path(), 2, &[("SLUICE_ADMIN_ADDR", ANY_PORT)]);
    create_topic(&mut broker.connect(), "tail", 2);
    let mut producer = broker.connect();
    let mut gaps = Vec::new();
    for round in 0..100u64 {
        let partition = (round % 2) as u32;
        let offset = round / 2;
        let addr = broker.addr.clone();
        let consumer = std::thread::spawn(move || {
            let mut conn =
                sluice_net::native::blocking::Connection::open(&addr, Duration::from_secs(10))
                    .unwrap();
            let fetched = fetch(&mut conn, "tail", partition, offset, 10_000).unwrap();
            let received = Instant::now();
            assert_eq!(fetched.error, ErrorCode::None);
            assert_eq!(batches(&fetched.batch_bytes())[0].base_offset().0, offset);
            received
        });
        // The fetch has reached the broker and waits at the log end.
        let deadline = Instant::now() + PARK_TIMEOUT;
        while broker.requests_in_flight() == 0 {
            assert!(
                Instant::now() < deadline,
                "round {round}: the fetch never waited"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let batch = batch_of(&[format!("record {round}").into_bytes()]).into_bytes();
        let produced = produce(&mut producer, "tail", partition, batch).unwrap();
        let acknowledged = Instant::now();
        assert_eq!(
            (produced.error, produced.base_offset),
            (ErrorCode::None, offset)
        );
        let received = consumer.join().unwrap();
        gaps.push(received.saturating_duration_since(acknowledged));
    }
    let median = median(gaps.clone());
    gaps.sort();
    println!(
        "ack -> consumer: median {median:?}, p90 {:?}, max {:?}",
        gaps[89], gaps[99]
    );
    assert!(median <= Duration::from_millis(5), "median {median:?}");
}
