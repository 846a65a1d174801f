//! Bad input gets its clear error, and a well-behaved client on another
//! connection keeps producing and consuming without a failure meanwhile.

mod common;

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use common::*;
use rand::{Rng, SeedableRng};
use sluice_net::native::{
    blocking::{BlockingError, Connection},
    frame::{encode_request, RequestHeader},
    messages::*,
    ErrorCode,
};

fn expect_broker_error<T: std::fmt::Debug>(
    result: Result<T, BlockingError>,
    code: ErrorCode,
) -> String {
    match result {
        Err(BlockingError::Broker { code: got, message }) if got == code => message,
        other => panic!("expected {code}, got {other:?}"),
    }
}

/// After bad bytes, the broker answers with an error frame and closes, or
/// just closes: never hangs, never crashes.
fn expect_closed(conn: &mut Connection) {
    let started = Instant::now();
    loop {
        match conn.read_response(None) {
            Err(BlockingError::Broker { code, message }) => {
                assert_ne!(code, ErrorCode::None);
                assert!(!message.is_empty());
            }
            Err(BlockingError::Io(_)) => break,
            Err(other) => panic!("unexpected {other:?}"),
            Ok(_) => panic!("bad bytes were answered as a request"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "connection never closed"
        );
    }
}

/// Rounds the good client must make after the bad input, within
/// [`GOOD_ROUNDS_TIMEOUT`] (on loopback, a round takes a millisecond or so).
const GOOD_ROUNDS_AFTER: u64 = 10;
const GOOD_ROUNDS_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn bad_input_gets_clear_errors_and_hurts_no_one_else() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_with(dir.path(), 2, &[("SLUICE_PARTIAL_FRAME_TIMEOUT_MS", "500")]);
    create_topic(&mut broker.connect(), "good", 2);

    // The well-behaved client: produce and read back, over and over.
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicU64::new(0));
    let good = {
        let (addr, stop, rounds) = (broker.addr.clone(), stop.clone(), rounds.clone());
        std::thread::spawn(move || {
            let mut conn = Connection::open(&addr, Duration::from_secs(10)).unwrap();
            while !stop.load(Ordering::Relaxed) {
                let round = rounds.load(Ordering::Relaxed);
                let value = format!("good {round}").into_bytes();
                let produced = produce(
                    &mut conn,
                    "good",
                    (round % 2) as u32,
                    batch_of(std::slice::from_ref(&value)).into_bytes(),
                )
                .expect("the good client's produce");
                assert_eq!(produced.error, ErrorCode::None, "{}", produced.message);
                let records =
                    read_partition(&mut conn, "good", (round % 2) as u32, produced.base_offset);
                assert_eq!(
                    records,
                    vec![(produced.base_offset, value)],
                    "the good client's fetch"
                );
                rounds.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    // Random bytes.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..20 {
        let mut conn = broker.connect();
        let garbage: Vec<u8> = (0..rng.random_range(1..4000))
            .map(|_| rng.random())
            .collect();
        conn.send_raw(&garbage).unwrap();
        expect_closed(&mut conn);
    }

    // A huge declared length: refused from the prefix, then closed.
    let mut conn = broker.connect();
    conn.send_raw(&[0xff, 0xff, 0xff, 0x7f, 1, 2, 3]).unwrap();
    let message = expect_broker_error(conn.read_response(None), ErrorCode::TooLarge);
    assert!(message.contains("over the cap"), "{message}");
    assert!(conn.is_closed_by_peer());

    // A partial frame, then silence: closed after the partial frame timeout.
    let mut conn = broker.connect();
    conn.send_raw(&[100, 0, 0, 0, 1, 2, 3]).unwrap();
    let started = Instant::now();
    assert!(conn.is_closed_by_peer());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(5),
        "{waited:?}"
    );

    // An unknown API key, and an undecodable body: errors, connection kept.
    let mut conn = broker.connect();
    let hello = ApiVersionsRequest { client: "x".into() };
    expect_broker_error(
        conn.call_raw::<ApiVersionsResponse>(999, 0, &hello),
        ErrorCode::UnknownApi,
    );
    let header = RequestHeader {
        api_key: ApiKey::Produce as u16,
        api_version: 0,
        correlation_id: 77,
    };
    // A Produce header over an ApiVersions body: the body does not decode.
    conn.send_raw(&encode_request(header, &hello)).unwrap();
    let message = expect_broker_error(conn.read_response(None), ErrorCode::InvalidRequest);
    assert!(message.contains("Produce"), "{message}");
    conn.call::<ApiVersionsResponse>(ApiKey::ApiVersions, &hello)
        .expect("still served");

    // A batch with a wrong CRC, an unknown topic, a partition out of range.
    let mut bad = batch_of(&[b"x".to_vec()]).into_bytes().to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    let corrupt = produce(&mut conn, "good", 0, Bytes::from(bad)).unwrap();
    assert_eq!(corrupt.error, ErrorCode::CorruptBatch);
    assert!(corrupt.message.contains("CRC"), "{}", corrupt.message);
    let unknown = produce(
        &mut conn,
        "nope",
        0,
        batch_of(&[b"x".to_vec()]).into_bytes(),
    )
    .unwrap();
    assert_eq!(unknown.error, ErrorCode::UnknownTopic);
    let out_of_range = produce(
        &mut conn,
        "good",
        2,
        batch_of(&[b"x".to_vec()]).into_bytes(),
    )
    .unwrap();
    assert_eq!(out_of_range.error, ErrorCode::NoSuchPartition);
    assert_eq!(
        fetch(&mut conn, "good", 5, 0, 0).unwrap().error,
        ErrorCode::NoSuchPartition
    );
    assert_eq!(
        fetch(&mut conn, "good", 0, 1 << 40, 0).unwrap().error,
        ErrorCode::OffsetOutOfRange
    );

    // The good client goes on after all that.
    let after_bad_input = rounds.load(Ordering::Relaxed);
    let deadline = Instant::now() + GOOD_ROUNDS_TIMEOUT;
    while rounds.load(Ordering::Relaxed) < after_bad_input + GOOD_ROUNDS_AFTER {
        assert!(
            !good.is_finished() && Instant::now() < deadline,
            "the good client stopped at {} rounds",
            rounds.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    good.join().expect("the good client never failed");
    let rounds = rounds.load(Ordering::Relaxed);
    println!(
        "the good client made {rounds} produce+fetch rounds, {after_bad_input} during the bad \
         input"
    );
    // Nothing bad got stored.
    let mut conn = broker.connect();
    let stored = read_partition(&mut conn, "good", 0, 0).len()
        + read_partition(&mut conn, "good", 1, 0).len();
    assert_eq!(stored as u64, rounds);
}
