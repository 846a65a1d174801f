//! The caps on connections per broker and requests in flight per
//! connection hold, and what is over them is told so or made to wait.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sluice_net::native::{
    blocking::{BlockingError, Connection},
    frame::{encode_request, RequestHeader},
    messages::*,
    ErrorCode,
};

#[test]
fn connections_over_the_cap_are_refused_with_an_error_and_the_rest_serve() {
    let dir = tempfile::tempdir().unwrap();
    // Two shards, two connections each.
    let broker = Broker::start_with(dir.path(), 2, &[("SLUICE_CONNECTIONS_MAX", "4")]);
    let hello = ApiVersionsRequest {
        client: "test".into(),
    };
    let mut kept = Vec::new();
    let mut refused = 0;
    for _ in 0..12 {
        let mut conn = Connection::open(&broker.addr, Duration::from_secs(10)).unwrap();
        match conn.call::<ApiVersionsResponse>(ApiKey::ApiVersions, &hello) {
            Ok(_) => kept.push(conn),
            Err(BlockingError::Broker { code, message }) => {
                assert_eq!(code, ErrorCode::TooManyRequests);
                assert!(message.contains("connections"), "{message}");
                refused += 1;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert!(kept.len() <= 4, "{} connections were served", kept.len());
    assert!(refused >= 8, "only {refused} refused");
    for conn in &mut kept {
        conn.call::<ApiVersionsResponse>(ApiKey::ApiVersions, &hello)
            .expect("a connection within the cap keeps working");
    }
}

#[test]
fn requests_over_the_in_flight_cap_wait_their_turn() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_with(
        dir.path(),
        1,
        &[("SLUICE_IN_FLIGHT_PER_CONNECTION_MAX", "1")],
    );
    let mut conn = broker.connect();
    create_topic(&mut conn, "quiet", 1);
    // Two long polls at the log end, sent back to back: with one slot, the
    // second is not read before the first has waited its 300 ms.
    let fetch = FetchRequest {
        max_wait_ms: 300,
        min_bytes: 1,
        max_bytes: 1 << 20,
        topics: vec![FetchTopic {
            name: "quiet".into(),
            partitions: vec![FetchPartition {
                partition: 0,
                offset: 0,
                max_bytes: 1 << 20,
            }],
        }],
    };
    let started = Instant::now();
    for correlation_id in [1, 2] {
        let header = RequestHeader {
            api_key: ApiKey::Fetch as u16,
            api_version: 0,
            correlation_id,
        };
        conn.send_raw(&encode_request(header, &fetch)).unwrap();
    }
    conn.read_response(None).unwrap();
    let first = started.elapsed();
    conn.read_response(None).unwrap();
    let second = started.elapsed();
    assert!(first >= Duration::from_millis(290), "{first:?}");
    assert!(
        second >= Duration::from_millis(590),
        "the second poll ran beside the first: {second:?}"
    );
}
