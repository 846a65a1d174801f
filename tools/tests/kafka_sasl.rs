//! Black box: SASL PLAIN on the Kafka listener (`SASL_PLAINTEXT://` and
//! `SASL_SSL://`), against the built `sluice` binary: confluent-kafka and
//! kafka-python authenticate and produce and read back
//! (`tests/kafka_clients/sasl.py`); a wrong password, an unknown user and
//! a client without SASL are refused; and, over raw requests, a request
//! before authentication and malformed exchanges close their connection
//! and harm nothing else.

mod common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use bytes::Bytes;
use common::{
    certs::{pairs, run_client_script, BrokerTls},
    kafka_exchange, kafka_frame, Broker,
};
use kafka_protocol::{
    messages::{
        ApiKey, MetadataRequest, SaslAuthenticateRequest, SaslAuthenticateResponse,
        SaslHandshakeRequest, SaslHandshakeResponse,
    },
    protocol::StrBytes,
};

const USERS: &str = "# the test's users\nalice:alice-secret\nbob:bob:with:colons\n";

fn sasl_py(broker: &Broker, arguments: &[&str]) {
    sasl_py_with(broker, "PLAIN", arguments);
}

fn sasl_py_with(broker: &Broker, mechanism: &str, arguments: &[&str]) {
    let mut all = vec![std::ffi::OsStr::new(&broker.kafka_addr)];
    all.extend(arguments.iter().map(std::ffi::OsStr::new));
    run_client_script("sasl.py", &all, &[("SASL_MECHANISM", mechanism)]);
}

fn users_file(dir: &Path) -> PathBuf {
    let path = dir.join("users");
    std::fs::write(&path, USERS).unwrap();
    path
}

fn connect(broker: &Broker) -> TcpStream {
    let stream = TcpStream::connect(&broker.kafka_addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
}

/// Whether the broker closed `stream` (read to its end within 5 s).
fn closed(mut stream: TcpStream) -> bool {
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(_) => return false,
        }
    }
}

fn handshake(stream: &mut TcpStream, mechanism: &'static str) -> SaslHandshakeResponse {
    let request =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism));
    kafka_exchange(stream, ApiKey::SaslHandshake, 1, 1, "raw-test", &request)
}

fn authenticate(stream: &mut TcpStream, token: &'static [u8]) -> SaslAuthenticateResponse {
    let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(token));
    kafka_exchange(stream, ApiKey::SaslAuthenticate, 2, 2, "raw-test", &request)
}

/// A Metadata request sent, its answer not read.
fn send_metadata(stream: &mut TcpStream) {
    let frame = kafka_frame(
        ApiKey::Metadata,
        12,
        9,
        "raw-test",
        &MetadataRequest::default(),
    );
    stream.write_all(&frame).unwrap();
}

fn metadata(stream: &mut TcpStream) -> kafka_protocol::messages::MetadataResponse {
    kafka_exchange(
        stream,
        ApiKey::Metadata,
        12,
        3,
        "raw-test",
        &MetadataRequest::default(),
    )
}

/// A broker whose Kafka listener is `SASL_PLAINTEXT://`, with the test's
/// users and `more` settings.
fn sasl_broker(dir: &Path, cores: usize, more: &[(&str, &str)]) -> Broker {
    let users = users_file(dir);
    let mut env = vec![
        ("SLUICE_KAFKA_ADDR", "SASL_PLAINTEXT://127.0.0.1:0"),
        ("SLUICE_SASL_PLAIN_USERS_FILE", users.to_str().unwrap()),
    ];
    env.extend_from_slice(more);
    Broker::start_with(&dir.join("data"), cores, &env)
}

#[test]
fn sasl_plain_authenticates_clients_and_refuses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let broker = sasl_broker(dir.path(), 2, &[("SLUICE_ADMIN_ADDR", "127.0.0.1:0")]);
    sasl_py(&broker, &["plain"]);
    sasl_py(&broker, &["refused"]);

    // A request before authentication: the connection closes.
    let mut stream = connect(&broker);
    send_metadata(&mut stream);
    assert!(closed(stream), "a Metadata before authentication");

    // An authentication before a handshake: ILLEGAL_SASL_STATE, closed.
    let mut stream = connect(&broker);
    assert_eq!(
        authenticate(&mut stream, b"\0alice\0alice-secret").error_code,
        34
    );
    assert!(closed(stream));

    // An unknown mechanism: UNSUPPORTED_SASL_MECHANISM and the ones served.
    let mut stream = connect(&broker);
    let answer = handshake(&mut stream, "GSSAPI");
    assert_eq!(answer.error_code, 33);
    assert_eq!(
        answer.mechanisms,
        ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"].map(StrBytes::from_static_str)
    );
    assert!(closed(stream));

    // Malformed tokens: SASL_AUTHENTICATION_FAILED, closed.
    for token in [
        &b""[..],
        b"alice",
        b"\0alice",
        b"\xff\0\xfe\0\xfd",
        b"bob\0alice\0alice-secret",
    ] {
        let mut stream = connect(&broker);
        assert_eq!(handshake(&mut stream, "PLAIN").error_code, 0);
        let request =
            SaslAuthenticateRequest::default().with_auth_bytes(Bytes::copy_from_slice(token));
        let answer: SaslAuthenticateResponse = kafka_exchange(
            &mut stream,
            ApiKey::SaslAuthenticate,
            2,
            2,
            "raw-test",
            &request,
        );
        assert_eq!(answer.error_code, 58, "{token:?}");
        assert!(answer.error_message.is_some());
        assert!(closed(stream), "{token:?}");
    }

    // The right password, with a colon in it: served, then anything.
    let mut stream = connect(&broker);
    assert_eq!(handshake(&mut stream, "PLAIN").error_code, 0);
    assert_eq!(
        authenticate(&mut stream, b"\0bob\0bob:with:colons").error_code,
        0
    );
    let _: kafka_protocol::messages::MetadataResponse = kafka_exchange(
        &mut stream,
        ApiKey::Metadata,
        12,
        3,
        "raw-test",
        &MetadataRequest::default(),
    );
    // A second handshake on an authenticated connection: refused, closed.
    assert_eq!(handshake(&mut stream, "PLAIN").error_code, 34);
    assert!(closed(stream));
    sasl_py(&broker, &["plain"]);
    // Counted: the clients' three refusals (at least one each), the
    // authentication before a handshake and the five malformed tokens.
    let admin = broker.admin_addr.as_deref().expect("an admin listener");
    let failures = common::metric(admin, "sluice_sasl_authentication_failures_total");
    assert!(failures >= 9, "{failures} failures counted");
}

#[test]
fn sasl_plain_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(dir.path());
    let tls = BrokerTls::new(dir.path());
    let env = tls.env(
        "SASL_SSL",
        &[("SLUICE_SASL_PLAIN_USERS_FILE", users.to_str().unwrap())],
    );
    let broker = Broker::start_with(&dir.path().join("data"), 2, &pairs(&env));
    let ca = tls.ca.to_str().unwrap();
    sasl_py(&broker, &["plain", ca]);
    sasl_py(&broker, &["refused", ca]);
}

/// SCRAM-SHA-256 and SCRAM-SHA-512, with each user's credentials made
/// from the users file: the clients authenticate, and a wrong password or
/// an unknown user fails at the proof.
#[test]
fn scram_authenticates_clients_and_refuses_wrong_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let broker = sasl_broker(dir.path(), 2, &[]);
    sasl_py_with(&broker, "SCRAM-SHA-256", &["plain"]);
    sasl_py_with(&broker, "SCRAM-SHA-512", &["plain"]);
    sasl_py_with(&broker, "SCRAM-SHA-512", &["refused"]);
}

/// KIP-368: with `connections_max_reauth_ms`, an authentication holds that
/// long (SaslAuthenticate says so); a request after it closes the
/// connection, and a client that authenticates again in time, as the same
/// user, goes on.
#[test]
fn an_authentication_expires_unless_renewed_as_the_same_user() {
    let dir = tempfile::tempdir().unwrap();
    let broker = sasl_broker(
        dir.path(),
        1,
        &[("SLUICE_CONNECTIONS_MAX_REAUTH_MS", "1500")],
    );
    let login = |stream: &mut TcpStream| {
        assert_eq!(handshake(stream, "PLAIN").error_code, 0);
        authenticate(stream, b"\0alice\0alice-secret")
    };

    // Not renewed: the first request past its life closes the connection.
    let mut stream = connect(&broker);
    let answer = login(&mut stream);
    assert_eq!((answer.error_code, answer.session_lifetime_ms), (0, 1500));
    metadata(&mut stream);
    std::thread::sleep(Duration::from_millis(1_700));
    send_metadata(&mut stream);
    assert!(closed(stream), "a request after the authentication expired");

    // Renewed in time, as alice: served past the first life.
    let mut stream = connect(&broker);
    login(&mut stream);
    std::thread::sleep(Duration::from_millis(1_000));
    assert_eq!(login(&mut stream).error_code, 0, "authenticated again");
    std::thread::sleep(Duration::from_millis(1_000));
    metadata(&mut stream);

    // Renewed as another user: refused, closed.
    assert_eq!(handshake(&mut stream, "PLAIN").error_code, 0);
    assert_eq!(
        authenticate(&mut stream, b"\0bob\0bob:with:colons").error_code,
        58
    );
    assert!(closed(stream));
}

#[test]
fn oauthbearer_takes_signed_tokens_of_the_jwks_keys() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().as_os_str();
    run_client_script(
        "oauthbearer.py",
        &[std::ffi::OsStr::new("keygen"), keys],
        &[],
    );
    let jwks = dir.path().join("jwks.json");
    // OAUTHBEARER alone: no users file.
    let broker = common::certs::oauth_broker(&dir.path().join("data"), &jwks);
    let mut stream = connect(&broker);
    let answer = handshake(&mut stream, "OAUTHBEARER");
    assert_eq!(answer.error_code, 0);
    assert!(answer
        .mechanisms
        .contains(&StrBytes::from_static_str("OAUTHBEARER")));
    // A token that is not one: refused, closed.
    assert_eq!(
        authenticate(&mut stream, b"n,,\x01auth=Bearer not.a.token\x01\x01").error_code,
        58
    );
    assert!(closed(stream));
    run_client_script(
        "oauthbearer.py",
        &[
            std::ffi::OsStr::new("run"),
            std::ffi::OsStr::new(&broker.kafka_addr),
            keys,
        ],
        &[],
    );
}

/// A client that has not authenticated 30 s after it connected is closed,
/// however it keeps its frames going (a byte at a time, each in time).
#[test]
fn a_connection_that_does_not_authenticate_in_time_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    // A stalled frame alone would close it after 5 s without a byte: each
    // byte comes well within that.
    let broker = sasl_broker(
        dir.path(),
        1,
        &[("SLUICE_PARTIAL_FRAME_TIMEOUT_MS", "5000")],
    );
    let mut stream = connect(&broker);
    let mut byte = [0u8; 1];
    // A frame that declares 1000 bytes and gets one every 500 ms.
    stream.write_all(&1000u32.to_be_bytes()).unwrap();
    let started = Instant::now();
    let closed_after = loop {
        std::thread::sleep(Duration::from_millis(500));
        if stream.write_all(&[0]).is_err() {
            break started.elapsed();
        }
        stream
            .set_read_timeout(Some(Duration::from_millis(1)))
            .unwrap();
        match stream.read(&mut byte) {
            Ok(0) => break started.elapsed(),
            Err(error)
                if !matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break started.elapsed()
            }
            _ => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "still open after a minute"
        );
    };
    assert!(
        closed_after >= Duration::from_secs(25),
        "closed after {closed_after:?}: before the deadline"
    );
    // Others are served meanwhile and after.
    let mut other = connect(&broker);
    assert_eq!(handshake(&mut other, "PLAIN").error_code, 0);
}
