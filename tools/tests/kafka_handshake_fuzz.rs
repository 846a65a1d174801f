//! Black box: a seeded fuzz of the TLS and SASL handshakes of the Kafka
//! listener, against the built `sluice` binary with 2 shards, on
//! `SASL_SSL` (TLS, then SASL) and on `SASL_PLAINTEXT`.
//!
//! The cases: random bytes for a TLS handshake; real ClientHellos (TLS 1.3
//! and TLS 1.2, written by rustls) with bits flipped, cut at every field
//! boundary, given absurd lengths; a plaintext Kafka frame to the TLS
//! listener; handshakes that stop half way, or whose second flight or
//! first record is corrupted; and, over plaintext and inside a good TLS
//! session, SaslHandshake with broken mechanism names, SaslAuthenticate
//! before the handshake, with random bytes and with lengths that claim
//! gigabytes, PLAIN tokens of every malformed shape, SCRAM first and final
//! messages mutated, OAUTHBEARER messages with broken GS2 headers and
//! tokens with broken claims (`SASL_PLAINTEXT` has a JWKS; `SASL_SSL` has
//! none and must refuse the mechanism), frames whose length prefix lies,
//! and other APIs before authentication.
//!
//! Every case's connection gets an error answer or is closed, within the
//! broker's `partial_frame_timeout` (and `connection_idle_timeout`, both
//! set low here) and a margin, counted from the case's last byte; a read
//! still blocked past that is a hang, and fails the test with the case
//! and the seed. No fuzzed exchange authenticates, and no request other
//! than ApiVersions and SASL's is answered before authentication. During
//! each batch of cases good clients log in (PLAIN) and produce; after it,
//! good clients do so on both shards, every connection is counted out,
//! both shard threads live and the broker's log has no panic.
//!
//! The cases come from a seed, fixed unless `SLUICE_TEST_SEED` gives
//! another, and printed. The ClientHellos they mutate are recorded from
//! rustls at each run: their random and key share differ from run to
//! run, their structure does not.

mod common;
mod kafka_raw;

use std::{
    collections::{BTreeMap, HashSet},
    io::{self, Read, Write},
    net::{Shutdown, TcpStream},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    Engine,
};
use bytes::Bytes;
use common::{
    certs::{pairs, BrokerTls},
    Broker, SEED_ENV,
};
use kafka_protocol::{
    messages::{
        alter_user_scram_credentials_request::ScramCredentialUpsertion,
        produce_request::{PartitionProduceData, TopicProduceData},
        AlterUserScramCredentialsRequest, ApiKey, ApiVersionsRequest, CreateTopicsRequest,
        DeleteTopicsRequest, DescribeConfigsRequest, FetchRequest, FindCoordinatorRequest,
        InitProducerIdRequest, ListOffsetsRequest, MetadataRequest, ProduceRequest,
        ProduceResponse, ResponseHeader, SaslAuthenticateResponse, SaslHandshakeResponse,
        TopicName,
    },
    protocol::{Decodable, Encodable, StrBytes},
    records::Compression,
};
use rand::{
    rngs::StdRng,
    seq::{IndexedRandom, SliceRandom},
    Rng, SeedableRng,
};
use rustls::{pki_types::ServerName, ClientConfig, ClientConnection, StreamOwned};

/// The broker's `partial_frame_timeout` and `connection_idle_timeout`
/// here: a connection that stops inside a frame or a TLS handshake, or
/// between frames, is closed after this long.
const BROKER_TIMEOUT_MS: u64 = 2_000;

/// How much later than the broker's timeout a close may come and still
/// not be a hang: scheduling on a loaded 2-core machine.
const CLOSE_MARGIN_MS: u64 = 2_000;

/// Connections fuzzed at once. A silent case waits out the broker's
/// timeout, so the cases overlap; a few dozen connections are nothing to
/// a broker.
const WORKERS: usize = 32;

/// Cases between two checks that good clients are served on both shards.
const BATCH_CASES_MAX: usize = 160;

/// The seed when `SLUICE_TEST_SEED` is not set: every run makes the same
/// cases.
const SEED_DEFAULT: u64 = 0x5eed_f022;

/// Set to part of a case's name (or kind) to run only the cases that
/// have it, made from the same seed as the whole run's.
const CASES_ENV: &str = "SLUICE_FUZZ_CASES";

/// The correlation id of the probe, a Metadata request sent after a
/// case's bytes: a connection that did not authenticate never gets it
/// answered.
const PROBE_CORRELATION_ID: i32 = 0x0bad;

/// The correlation id of a case's first fuzzed request (the prelude's are
/// 1 and 2).
const FUZZ_CORRELATION_ID: i32 = 7;

/// The broker's largest frame (`sluice_net::native::frame::FRAME_BYTES_MAX`):
/// a length prefix over it is refused before any of the frame is read.
const FRAME_BYTES_MAX: u32 = 64 * 1024 * 1024;

/// The topic good clients produce to.
const TOPIC: &str = "fuzz-good";

/// The PLAIN token of a good client ([`kafka_raw::USERS`]).
const GOOD_TOKEN: &[u8] = b"\0alice\0alice-secret";

/// Good connections opened at most to find one on each shard; the kernel
/// spreads connections over the shards' listeners at random, so 24 miss
/// one shard once in 8 million runs.
const SPREAD_ATTEMPTS_MAX: usize = 24;

fn bound() -> Duration {
    Duration::from_millis(BROKER_TIMEOUT_MS + CLOSE_MARGIN_MS)
}

/// The seed of this run, printed.
fn seed() -> u64 {
    let seed = match std::env::var(SEED_ENV) {
        Ok(seed) => seed
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_ENV}={seed:?} is not a u64")),
        Err(_) => SEED_DEFAULT,
    };
    println!("kafka_handshake_fuzz: seed {seed} ({SEED_ENV}={seed} replays it)");
    seed
}

// ---------------------------------------------------------------------
// The cases.

/// How a case's connection is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// TCP to a `SASL_PLAINTEXT` listener.
    Plain,
    /// A good TLS handshake with a `SASL_SSL` listener first; the case's
    /// bytes go inside the session.
    Tls,
    /// TCP to a `SASL_SSL` listener: the case's bytes are the handshake.
    RawTls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsVersion {
    V12,
    V13,
}

/// What a case does before its fuzzed bytes; it must go well.
#[derive(Debug, Clone)]
enum Prelude {
    Nothing,
    /// A SaslHandshake of the mechanism, answered 0.
    Handshake(&'static str),
    /// A SCRAM handshake and a good client-first message with this nonce,
    /// answered with the server's first message.
    ScramFirst {
        mechanism: &'static str,
        client_nonce: String,
    },
    /// Authenticated as alice (PLAIN).
    Login,
}

/// How a client's second TLS flight is changed.
#[derive(Debug, Clone, Copy)]
enum Flight {
    /// Not sent: the handshake stops half way.
    Withheld,
    /// These bits flipped (each taken modulo the flight's bits).
    Flipped([u64; 3]),
    /// Cut after this many bytes (modulo its length).
    Cut(u64),
    /// As many random bytes, from this seed.
    Random(u64),
    /// Sent twice.
    Twice,
}

/// The fuzzed bytes of a case.
#[derive(Debug, Clone)]
enum Payload {
    Bytes(Vec<u8>),
    /// Written a byte at a time, with a pause between; `bounded`: the
    /// broker must close the connection within the bound of its start
    /// (a TLS handshake has a deadline of its whole).
    Dribble {
        bytes: Vec<u8>,
        pause_ms: u64,
        bounded: bool,
    },
    /// A SCRAM client-final message (SaslAuthenticate of `version`) made
    /// from a template: `{nonce}` is the nonce of the server's first
    /// message, `{client}` the client's part of it.
    ScramFinal {
        version: i16,
        template: Vec<u8>,
    },
    /// A real handshake of that version up to the server's flight, then
    /// the client's second flight changed.
    SecondFlight(TlsVersion, Flight),
    /// A SaslHandshake inside the session, its record with this bit
    /// flipped (modulo the record's bits).
    CorruptRecord(u64),
}

/// What follows the fuzzed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    /// The probe: a Metadata request, which must not be answered.
    Probe,
    /// Nothing, the connection left open.
    Silent,
    /// The client's side of the connection shut (TCP FIN).
    HalfClose,
}

/// What an answer to a request of the case may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// None: a request before authentication (the probe is one).
    NotServed,
    /// A SaslHandshake answered with exactly this code.
    Handshake(i16),
    /// A SaslAuthenticate refused: nothing fuzzed authenticates.
    Refused,
    /// A SCRAM client-first message: the server's first message (code 0)
    /// or a refusal.
    ScramFirst,
    /// Anything the request's API says.
    Any,
}

#[derive(Debug, Clone)]
struct Sent {
    correlation_id: i32,
    api: ApiKey,
    version: i16,
    rule: Rule,
    /// Well formed, of a version served, after a good prelude: the
    /// connection may not close without answering it.
    must_answer: bool,
}

#[derive(Debug, Clone)]
struct Case {
    kind: &'static str,
    name: String,
    transport: Transport,
    prelude: Prelude,
    payload: Payload,
    /// The requests in the payload the answers are checked against.
    sent: Vec<Sent>,
    then: Then,
}

impl Case {
    fn new(kind: &'static str, name: String, transport: Transport, payload: Payload) -> Case {
        Case {
            kind,
            name,
            transport,
            prelude: Prelude::Nothing,
            payload,
            sent: Vec::new(),
            then: Then::Silent,
        }
    }

    fn after(mut self, prelude: Prelude) -> Case {
        self.prelude = prelude;
        self
    }

    fn expecting(mut self, sent: Sent) -> Case {
        self.sent.push(sent);
        self
    }

    /// The fuzzed request (of [`FUZZ_CORRELATION_ID`]) must be answered,
    /// by `rule`.
    fn answered(self, api: ApiKey, version: i16, rule: Rule) -> Case {
        self.expecting(sent(FUZZ_CORRELATION_ID, api, version, rule, true))
    }

    /// The fuzzed request's answer, if it has one, is by `rule`.
    fn maybe_answered(self, api: ApiKey, version: i16, rule: Rule) -> Case {
        self.expecting(sent(FUZZ_CORRELATION_ID, api, version, rule, false))
    }

    fn then(mut self, then: Then) -> Case {
        self.then = then;
        self
    }
}

fn sent(correlation_id: i32, api: ApiKey, version: i16, rule: Rule, must_answer: bool) -> Sent {
    Sent {
        correlation_id,
        api,
        version,
        rule,
        must_answer,
    }
}

/// Probe half the time, else silence or a half close.
fn any_then(rng: &mut StdRng) -> Then {
    match rng.random_range(0..10) {
        0..5 => Then::Probe,
        5..8 => Then::Silent,
        _ => Then::HalfClose,
    }
}

/// Silence or a half close (for bytes that leave a frame unfinished,
/// where a probe would only finish it).
fn quiet_then(rng: &mut StdRng) -> Then {
    if rng.random_bool(0.6) {
        Then::Silent
    } else {
        Then::HalfClose
    }
}

fn random_bytes(rng: &mut StdRng, length: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; length];
    rng.fill(&mut bytes[..]);
    bytes
}

fn random_printable(rng: &mut StdRng, length: usize) -> Vec<u8> {
    (0..length).map(|_| rng.random_range(0x21..0x7f)).collect()
}

/// `bytes`, shown short.
fn shown(bytes: &[u8]) -> String {
    const SHOWN_BYTES_MAX: usize = 48;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(SHOWN_BYTES_MAX)]);
    let text = format!("{text:?}");
    if bytes.len() > SHOWN_BYTES_MAX {
        format!("{text}... ({} bytes)", bytes.len())
    } else {
        text
    }
}

// ---------------------------------------------------------------------
// Kafka frames, made byte by byte where the fuzz needs what a codec
// would refuse to write.

fn uvarint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
    out
}

/// A request of `api_key` and `version` with `body`, framed: the header
/// (v1, or v2 when `flexible`) by hand, so any key and version go.
fn raw_request(
    api_key: i16,
    version: i16,
    correlation_id: i32,
    flexible: bool,
    body: &[u8],
) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend(api_key.to_be_bytes());
    bytes.extend(version.to_be_bytes());
    bytes.extend(correlation_id.to_be_bytes());
    bytes.extend(4i16.to_be_bytes());
    bytes.extend(b"fuzz");
    if flexible {
        bytes.push(0);
    }
    bytes.extend(body);
    kafka_raw::with_length(&bytes)
}

/// A SaslHandshake body: the mechanism, its length as given.
fn handshake_body(declared: i16, mechanism: &[u8]) -> Vec<u8> {
    let mut body = declared.to_be_bytes().to_vec();
    body.extend(mechanism);
    body
}

fn sasl_handshake(correlation_id: i32, mechanism: &[u8]) -> Vec<u8> {
    let body = handshake_body(mechanism.len() as i16, mechanism);
    raw_request(
        ApiKey::SaslHandshake as i16,
        1,
        correlation_id,
        false,
        &body,
    )
}

/// A SaslAuthenticate body of `version` whose bytes field declares
/// `declared` (v0 and v1: an i32; v2: a compact length, `declared + 1`).
fn authenticate_body(version: i16, declared: i64, token: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    if version >= 2 {
        body.extend(uvarint((declared + 1) as u64));
        body.extend(token);
        body.push(0);
    } else {
        body.extend((declared as i32).to_be_bytes());
        body.extend(token);
    }
    body
}

fn sasl_authenticate(version: i16, correlation_id: i32, token: &[u8]) -> Vec<u8> {
    let body = authenticate_body(version, token.len() as i64, token);
    raw_request(
        ApiKey::SaslAuthenticate as i16,
        version,
        correlation_id,
        version >= 2,
        &body,
    )
}

fn probe() -> Vec<u8> {
    kafka_raw::frame(
        ApiKey::Metadata,
        12,
        PROBE_CORRELATION_ID,
        &MetadataRequest::default(),
    )
}

fn produce_request() -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(kafka_raw::records(
                    &[b"from a good client"],
                    Compression::None,
                )))])])
}

/// `template` with every `from` replaced by `to`.
fn substitute(template: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < template.len() {
        if template[at..].starts_with(from) {
            out.extend(to);
            at += from.len();
        } else {
            out.push(template[at]);
            at += 1;
        }
    }
    out
}

// ---------------------------------------------------------------------
// TLS: the ClientHellos and their boundaries.

fn client_config(ca_pem: &str, version: TlsVersion) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(certificate.unwrap()).unwrap();
    }
    let versions: &[&'static rustls::SupportedProtocolVersion] = match version {
        TlsVersion::V12 => &[&rustls::version::TLS12],
        TlsVersion::V13 => &[&rustls::version::TLS13],
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn server_name() -> ServerName<'static> {
    ServerName::try_from("localhost").unwrap()
}

/// A ClientHello as rustls writes it, and where each of its fields
/// begins.
struct Hello {
    version: TlsVersion,
    bytes: Vec<u8>,
    /// (offset, the field that begins there), in order.
    fields: Vec<(usize, String)>,
}

impl Hello {
    fn record(config: &Arc<ClientConfig>, version: TlsVersion) -> Hello {
        let mut client = ClientConnection::new(config.clone(), server_name()).unwrap();
        let mut bytes = Vec::new();
        client.write_tls(&mut bytes).unwrap();
        let fields = hello_fields(&bytes);
        Hello {
            version,
            bytes,
            fields,
        }
    }

    /// The offset of the field named `name`.
    fn offset(&self, name: &str) -> usize {
        self.fields
            .iter()
            .find(|(_, field)| field == name)
            .unwrap_or_else(|| panic!("the ClientHello has no {name}"))
            .0
    }

    /// The hello with `value` written at the field `name`.
    fn with(&self, name: &str, value: &[u8]) -> Vec<u8> {
        let at = self.offset(name);
        let mut bytes = self.bytes.clone();
        bytes[at..at + value.len()].copy_from_slice(value);
        bytes
    }
}

/// The fields of a ClientHello record (RFC 8446 4.1.2): where each one
/// begins, the extensions' own included.
fn hello_fields(hello: &[u8]) -> Vec<(usize, String)> {
    let u16_at = |at: usize| u16::from_be_bytes([hello[at], hello[at + 1]]) as usize;
    assert_eq!(hello[0], 0x16, "a handshake record");
    assert_eq!(hello[5], 0x01, "a ClientHello");
    assert_eq!(5 + u16_at(3), hello.len(), "the ClientHello is one record");
    let mut fields: Vec<(usize, String)> = [
        (1, "record version"),
        (3, "record length"),
        (5, "handshake type"),
        (6, "handshake length"),
        (9, "client version"),
        (11, "random"),
        (43, "session id length"),
    ]
    .iter()
    .map(|(at, name)| (*at, name.to_string()))
    .collect();
    let mut at = 44;
    let session_id = hello[43] as usize;
    if session_id > 0 {
        fields.push((at, "session id".to_string()));
    }
    at += session_id;
    fields.push((at, "cipher suites length".to_string()));
    let suites = u16_at(at);
    fields.push((at + 2, "cipher suites".to_string()));
    at += 2 + suites;
    fields.push((at, "compression methods length".to_string()));
    let methods = hello[at] as usize;
    fields.push((at + 1, "compression methods".to_string()));
    at += 1 + methods;
    fields.push((at, "extensions length".to_string()));
    at += 2;
    let mut index = 0;
    while at < hello.len() {
        let kind = u16_at(at);
        let length = u16_at(at + 2);
        fields.push((at, format!("extension {index} (type {kind}) type")));
        fields.push((at + 2, format!("extension {index} (type {kind}) length")));
        if length > 0 {
            fields.push((at + 4, format!("extension {index} (type {kind}) data")));
        }
        at += 4 + length;
        index += 1;
    }
    assert_eq!(at, hello.len(), "the extensions end the ClientHello");
    fields
}

// ---------------------------------------------------------------------
// OAUTHBEARER: tokens signed by a key of the broker's JWKS.

/// An identity provider of the test's: a P-256 key, its JWKS, and tokens
/// it signs (ES256).
struct Issuer {
    key: Arc<dyn rustls::sign::SigningKey>,
    jwks: String,
}

impl Issuer {
    fn new() -> Issuer {
        let pair = rcgen::KeyPair::generate().unwrap();
        let point = pair.public_key_raw();
        assert_eq!(point.len(), 65, "an uncompressed P-256 point");
        let jwks = format!(
            r#"{{"keys":[{{"kty":"EC","crv":"P-256","kid":"fuzz","x":"{}","y":"{}"}}]}}"#,
            URL_SAFE_NO_PAD.encode(&point[1..33]),
            URL_SAFE_NO_PAD.encode(&point[33..65])
        );
        let der = rustls::pki_types::PrivateKeyDer::Pkcs8(pair.serialize_der().into());
        let key = rustls::crypto::ring::sign::any_ecdsa_type(&der).unwrap();
        Issuer { key, jwks }
    }

    /// A JWT of `header` and `claims` (JSON texts), signed.
    fn token(&self, header: &str, claims: &str) -> String {
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let signer = self
            .key
            .choose_scheme(&[rustls::SignatureScheme::ECDSA_NISTP256_SHA256])
            .unwrap();
        let der = signer.sign(signed.as_bytes()).unwrap();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(fixed_signature(&der)))
    }

    /// The client's message (RFC 7628) of a token signed with `claims`.
    fn message(&self, claims: &str) -> Vec<u8> {
        let token = self.token(r#"{"alg":"ES256","kid":"fuzz"}"#, claims);
        bearer(&token)
    }
}

fn bearer(token: &str) -> Vec<u8> {
    format!("n,,\x01auth=Bearer {token}\x01\x01").into_bytes()
}

/// An ECDSA P-256 signature in JWS's form (r and s, 32 bytes each) from
/// its DER (`SEQUENCE { INTEGER r, INTEGER s }`, short lengths).
fn fixed_signature(der: &[u8]) -> Vec<u8> {
    assert_eq!(der[0], 0x30, "a DER sequence");
    let mut out = Vec::with_capacity(64);
    let mut at = 2;
    for _ in 0..2 {
        assert_eq!(der[at], 0x02, "a DER integer");
        let length = der[at + 1] as usize;
        let mut integer = &der[at + 2..at + 2 + length];
        while integer.len() > 32 && integer[0] == 0 {
            integer = &integer[1..];
        }
        out.extend(std::iter::repeat_n(0, 32 - integer.len()));
        out.extend(integer);
        at += 2 + length;
    }
    out
}

fn unix_now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// ---------------------------------------------------------------------
// The TLS cases.

const TLS_RANDOM: &str = "tls: random bytes";
const TLS_FLIPPED: &str = "tls: ClientHello with bits flipped";
const TLS_CUT: &str = "tls: ClientHello cut at a field boundary";
const TLS_LENGTHS: &str = "tls: ClientHello with absurd lengths";
const TLS_PLAINTEXT: &str = "tls: not TLS (a Kafka frame, HTTP, nothing)";
const TLS_HALF_WAY: &str = "tls: handshake stopped half way or its second flight broken";
const TLS_RECORD: &str = "tls: record corrupted after the handshake";
const TLS_DRIBBLE: &str = "tls: ClientHello a byte at a time";

fn tls_cases(rng: &mut StdRng, hellos: &[Hello]) -> Vec<Case> {
    let mut cases = Vec::new();
    let raw = |kind, name: String, bytes: Vec<u8>| {
        Case::new(kind, name, Transport::RawTls, Payload::Bytes(bytes))
    };

    for index in 0..40 {
        let length = match index % 4 {
            0 => rng.random_range(1..16),
            1 | 2 => rng.random_range(16..2_048),
            _ => rng.random_range(2_048..40_000),
        };
        let mut bytes = random_bytes(rng, length);
        // A third look like a handshake record, to get past its header.
        if index % 3 == 0 && bytes.len() >= 3 {
            bytes[..3].copy_from_slice(&[0x16, 0x03, rng.random_range(0..5)]);
        }
        let then = quiet_then(rng);
        cases.push(raw(TLS_RANDOM, format!("{} random bytes", bytes.len()), bytes).then(then));
    }

    for hello in hellos {
        cases.extend(hello_cases(rng, hello));
    }

    // Other record types, and SSLv2's hello, where a ClientHello belongs.
    let hello = &hellos[0].bytes;
    for (name, first) in [
        ("an alert record", 0x15u8),
        ("a ChangeCipherSpec record", 0x14),
        ("an application data record", 0x17),
        ("a heartbeat record", 0x18),
    ] {
        let mut bytes = hello.clone();
        bytes[0] = first;
        let then = quiet_then(rng);
        cases.push(raw(TLS_LENGTHS, format!("the hello in {name}"), bytes).then(then));
    }
    let sslv2 = vec![
        0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10,
    ];
    cases.push(raw(TLS_LENGTHS, "an SSLv2 hello, cut".into(), sslv2).then(Then::Silent));
    let mut twice = hello.clone();
    twice.extend(hello);
    cases.push(raw(TLS_LENGTHS, "the hello twice".into(), twice).then(Then::Silent));

    let api_versions = kafka_raw::frame(ApiKey::ApiVersions, 3, 1, &ApiVersionsRequest::default());
    let mut hello_then_kafka = hello.clone();
    hello_then_kafka.extend(&api_versions);
    for (name, bytes) in [
        ("an ApiVersions frame", api_versions.clone()),
        ("a SaslHandshake frame", sasl_handshake(1, b"PLAIN")),
        ("a Metadata frame", probe()),
        (
            "an HTTP request",
            b"GET / HTTP/1.1\r\nHost: sluice\r\n\r\n".to_vec(),
        ),
        ("nothing", Vec::new()),
        (
            "the hello, then an ApiVersions frame in the clear",
            hello_then_kafka,
        ),
    ] {
        for then in [Then::Silent, Then::HalfClose] {
            cases.push(raw(TLS_PLAINTEXT, name.to_string(), bytes.clone()).then(then));
        }
    }

    for version in [TlsVersion::V13, TlsVersion::V12] {
        let mut flights = vec![Flight::Withheld, Flight::Withheld, Flight::Twice];
        for _ in 0..4 {
            flights.push(Flight::Flipped([rng.random(), rng.random(), rng.random()]));
        }
        for _ in 0..3 {
            flights.push(Flight::Cut(rng.random()));
        }
        flights.push(Flight::Random(rng.random()));
        for flight in flights {
            let name = format!("{version:?} handshake, the client's second flight {flight:?}");
            let payload = Payload::SecondFlight(version, flight);
            let then = quiet_then(rng);
            cases.push(Case::new(TLS_HALF_WAY, name, Transport::RawTls, payload).then(then));
        }
    }

    for _ in 0..6 {
        let bit: u64 = rng.random();
        let name = format!("a SaslHandshake record, bit {bit} (modulo its bits) flipped");
        let then = quiet_then(rng);
        cases.push(
            Case::new(
                TLS_RECORD,
                name,
                Transport::Tls,
                Payload::CorruptRecord(bit),
            )
            .then(then),
        );
    }

    let dribble = Payload::Dribble {
        bytes: hello.clone(),
        pause_ms: 100,
        bounded: true,
    };
    let name = "the TLS 1.3 hello, a byte every 100 ms".to_string();
    cases.push(Case::new(TLS_DRIBBLE, name, Transport::RawTls, dribble).then(Then::Silent));
    cases
}

/// A ClientHello with bits flipped, cut before each of its fields, and
/// with lengths that cannot be.
fn hello_cases(rng: &mut StdRng, hello: &Hello) -> Vec<Case> {
    let mut cases = Vec::new();
    let raw = |kind, name: String, bytes: Vec<u8>| {
        Case::new(kind, name, Transport::RawTls, Payload::Bytes(bytes))
    };
    for _ in 0..30 {
        let mut bytes = hello.bytes.clone();
        let mut bits = Vec::new();
        for _ in 0..rng.random_range(1..=4) {
            // Half in the record and handshake headers and the lengths
            // after them.
            let limit = if rng.random_bool(0.5) {
                64
            } else {
                bytes.len()
            };
            let bit = rng.random_range(0..limit * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            bits.push(bit);
        }
        let name = format!("{:?} hello, bits {bits:?} flipped", hello.version);
        cases.push(raw(TLS_FLIPPED, name, bytes).then(quiet_then(rng)));
    }

    for (at, field) in &hello.fields {
        // The TLS 1.3 hello's cuts both ways; the TLS 1.2 one's one way.
        let thens = match hello.version {
            TlsVersion::V13 => vec![Then::Silent, Then::HalfClose],
            TlsVersion::V12 => vec![quiet_then(rng)],
        };
        for then in thens {
            let name = format!("{:?} hello cut at {at}, before its {field}", hello.version);
            cases.push(raw(TLS_CUT, name, hello.bytes[..*at].to_vec()).then(then));
        }
    }

    let mut lengths: Vec<(String, Vec<u8>)> = [
        ("record length", &[0xff, 0xff][..]),
        ("record length", &[0x48, 0x01]),
        ("record length", &[0, 0]),
        ("record length", &[0, 1]),
        ("handshake length", &[0xff; 3]),
        ("handshake length", &[0; 3]),
        ("session id length", &[0xff]),
        ("cipher suites length", &[0xff, 0xff]),
        ("cipher suites length", &[0, 0]),
        ("cipher suites length", &[0, 3]),
        ("compression methods length", &[0xff]),
        ("compression methods length", &[0]),
        ("extensions length", &[0xff, 0xff]),
        ("extensions length", &[0, 0]),
    ]
    .iter()
    .map(|(field, value)| (format!("{field} {value:02x?}"), hello.with(field, value)))
    .collect();
    // The first extension's length (its name has the extension's type).
    let first_extension = hello
        .fields
        .iter()
        .find(|(_, field)| field.starts_with("extension 0 ") && field.ends_with(" length"))
        .expect("an extension")
        .0;
    let mut bytes = hello.bytes.clone();
    bytes[first_extension..first_extension + 2].copy_from_slice(&[0xff, 0xff]);
    lengths.push(("first extension length [ff, ff]".into(), bytes));
    // Every cipher suite the same unknown one.
    let suites_length = hello.offset("cipher suites length");
    let mut bytes = hello.bytes.clone();
    let suites = u16::from_be_bytes([bytes[suites_length], bytes[suites_length + 1]]) as usize;
    for at in (suites_length + 2..suites_length + 2 + suites).step_by(2) {
        bytes[at..at + 2].copy_from_slice(&[0xfe, 0xfe]);
    }
    lengths.push(("only unknown cipher suites".into(), bytes));
    // A record of 0xFFFF declared, and that much noise after it.
    let mut noise = vec![0x16, 0x03, 0x03, 0xff, 0xff];
    noise.extend(random_bytes(rng, 0xffff));
    lengths.push(("a 0xFFFF record of noise".into(), noise));
    for (name, bytes) in lengths {
        let name = format!("{:?} hello, {name}", hello.version);
        cases.push(raw(TLS_LENGTHS, name, bytes).then(quiet_then(rng)));
    }
    cases
}

// ---------------------------------------------------------------------
// The SASL cases.

const SASL_MECHANISM: &str = "sasl: SaslHandshake with a broken mechanism name";
const SASL_EARLY: &str = "sasl: SaslAuthenticate before SaslHandshake";
const SASL_RANDOM: &str = "sasl: SaslAuthenticate of random bytes";
const SASL_HUGE: &str = "sasl: lengths that claim gigabytes, and big tokens";
const SASL_PLAIN: &str = "sasl: PLAIN token malformed";
const SASL_SCRAM_FIRST: &str = "sasl: SCRAM client-first message mutated";
const SASL_SCRAM_FINAL: &str = "sasl: SCRAM client-final message mutated";
const SASL_OAUTHBEARER: &str = "sasl: OAUTHBEARER message or token malformed";
const SASL_LYING: &str = "sasl: frame whose length prefix lies";
const SASL_OTHER_API: &str = "sasl: another API before authentication";
const SASL_VERSIONS: &str = "sasl: SASL API of a version not served";
const SASL_AGAIN: &str = "sasl: SASL again after authentication";
const SASL_DRIBBLE: &str = "sasl: a frame a byte at a time, then silence";

/// What the SASL cases need to know of the broker.
struct SaslTarget<'a> {
    transport: Transport,
    mechanisms: Vec<&'static str>,
    /// Signs OAUTHBEARER tokens, if the broker takes them (it then allows
    /// re-authentication).
    issuer: Option<&'a Issuer>,
}

impl SaslTarget<'_> {
    fn served(&self, mechanism: &[u8]) -> bool {
        self.mechanisms
            .iter()
            .any(|served| served.as_bytes() == mechanism)
    }

    fn case(&self, kind: &'static str, name: String, bytes: Vec<u8>) -> Case {
        Case::new(kind, name, self.transport, Payload::Bytes(bytes))
    }
}

fn scram_mechanism(rng: &mut StdRng) -> &'static str {
    ["SCRAM-SHA-256", "SCRAM-SHA-512"].choose(rng).unwrap()
}

fn client_nonce(rng: &mut StdRng) -> String {
    String::from_utf8(random_printable(rng, 24))
        .unwrap()
        .replace(',', "x")
}

fn sasl_cases(rng: &mut StdRng, target: &SaslTarget) -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(mechanism_cases(rng, target));
    cases.extend(early_cases(rng, target));
    cases.extend(random_token_cases(rng, target));
    cases.extend(huge_cases(rng, target));
    cases.extend(plain_cases(rng, target));
    cases.extend(scram_first_cases(rng, target));
    cases.extend(scram_final_cases(rng, target));
    cases.extend(oauthbearer_cases(rng, target));
    cases.extend(lying_cases(rng, target));
    cases.extend(other_api_cases(rng, target));
    cases.extend(version_cases(rng, target));
    cases.extend(again_cases(rng, target));
    // A handshake's first bytes, slowly, then nothing.
    let frame = sasl_handshake(FUZZ_CORRELATION_ID, b"PLAIN");
    let dribble = Payload::Dribble {
        bytes: frame[..10].to_vec(),
        pause_ms: 350,
        bounded: false,
    };
    let name = "the first 10 bytes of a SaslHandshake, one every 350 ms".to_string();
    cases.push(Case::new(SASL_DRIBBLE, name, target.transport, dribble));
    // The probe, where a case ends with one, must find no answer.
    for case in &mut cases {
        let probed = case
            .sent
            .iter()
            .any(|sent| sent.correlation_id == PROBE_CORRELATION_ID);
        if case.then == Then::Probe && !probed {
            case.sent.push(sent(
                PROBE_CORRELATION_ID,
                ApiKey::Metadata,
                12,
                Rule::NotServed,
                false,
            ));
        }
    }
    cases
}

/// SaslHandshake, at the start, with names that are none of the served
/// mechanisms (or nearly one): UNSUPPORTED_SASL_MECHANISM, or a close if
/// the name does not read; and names whose length lies.
fn mechanism_cases(rng: &mut StdRng, target: &SaslTarget) -> Vec<Case> {
    let mut names: Vec<Vec<u8>> = [
        &b""[..],
        b"PLAIN\0",
        b"plain",
        b" PLAIN",
        b"PLAIN ",
        b"PLA\0IN",
        b"SCRAM-SHA-1",
        b"SCRAM-SHA-256\0",
        b"GSSAPI",
        b"OAUTHBEARER",
        b"\xff\xfe\xfd",
        "\u{10FFFF}\u{202E}PLAIN".as_bytes(),
    ]
    .iter()
    .map(|name| name.to_vec())
    .collect();
    names.push(vec![b'X'; i16::MAX as usize]);
    names.push(b"PLAIN".repeat(3_000));
    for _ in 0..10 {
        let length = rng.random_range(1..64);
        names.push(random_printable(rng, length));
    }
    for _ in 0..8 {
        let length = rng.random_range(1..512);
        names.push(random_bytes(rng, length));
    }
    let mut cases = Vec::new();
    for name in names {
        let frame = sasl_handshake(FUZZ_CORRELATION_ID, &name);
        let case = target.case(SASL_MECHANISM, format!("mechanism {}", shown(&name)), frame);
        let code = if target.served(&name) { 0 } else { 33 };
        let case = match std::str::from_utf8(&name) {
            Ok(_) => case.answered(ApiKey::SaslHandshake, 1, Rule::Handshake(code)),
            Err(_) => case.maybe_answered(ApiKey::SaslHandshake, 1, Rule::Any),
        };
        cases.push(case.then(any_then(rng)));
    }
    // What the broker reads is the declared part, or nothing.
    for (declared, name) in [
        (-1i16, &b"PLAIN"[..]),
        (-2, b"PLAIN"),
        (0, b"PLAIN"),
        (5, b"PLAINXYZ"),
        (6, b"PLAIN"),
        (1_000, b"PLAIN"),
        (i16::MAX, b"SCRAM-SHA-512"),
    ] {
        let body = handshake_body(declared, name);
        let frame = raw_request(
            ApiKey::SaslHandshake as i16,
            1,
            FUZZ_CORRELATION_ID,
            false,
            &body,
        );
        let case_name = format!("mechanism {} declared {declared} bytes long", shown(name));
        let case = target.case(SASL_MECHANISM, case_name, frame);
        cases.push(
            case.maybe_answered(ApiKey::SaslHandshake, 1, Rule::Any)
                .then(any_then(rng)),
        );
    }
    cases
}

/// SaslAuthenticate first: ILLEGAL_SASL_STATE, even with a good token.
fn early_cases(rng: &mut StdRng, target: &SaslTarget) -> Vec<Case> {
    let mut tokens = vec![
        GOOD_TOKEN.to_vec(),
        GOOD_TOKEN.to_vec(),
        b"n,,n=alice,r=abcdef".to_vec(),
        bearer("a.b.c"),
        Vec::new(),
    ];
    for _ in 0..5 {
        let length = rng.random_range(0..256);
        tokens.push(random_bytes(rng, length));
    }
    tokens
        .into_iter()
        .map(|token| {
            let version = rng.random_range(0..=2);
            let frame = sasl_authenticate(version, FUZZ_CORRELATION_ID, &token);
            target
                .case(SASL_EARLY, format!("v{version} {}", shown(&token)), frame)
                .answered(ApiKey::SaslAuthenticate, version, Rule::Refused)
                .then(any_then(rng))
        })
        .collect()
}

/// Random bytes after a good handshake of each mechanism.
fn random_token_cases(rng: &mut StdRng, target: &SaslTarget) -> Vec<Case> {
    (0..20)
        .map(|index| {
            let mechanism = target.mechanisms[index % target.mechanisms.len()];
            let version = rng.random_range(0..=2);
            let length = match index % 4 {
                0 => 0,
                1 => rng.random_range(1..16),
                _ => rng.random_range(16..2_048),
            };
            let token = random_bytes(rng, length);
            let frame = sasl_authenticate(version, FUZZ_CORRELATION_ID, &token);
            let name = format!("{mechanism}, v{version}, {length} random bytes");
            target
                .case(SASL_RANDOM, name, frame)
                .after(Prelude::Handshake(mechanism))
                .answered(ApiKey::SaslAuthenticate, version, Rule::Refused)
                .then(any_then(rng))
        })
        .collect()
}

/// Lengths that claim far more than is sent (the decoder fails on the
/// missing bytes; the frame cap refuses a prefix before a byte of the
/// frame is kept), and tokens that are big and sent whole.
fn huge_cases(rng: &mut StdRng, target: &SaslTarget) -> Vec<Case> {
    let id = FUZZ_CORRELATION_ID;
    let mut cases = Vec::new();
    for (version, declared) in [
        (0i16, i32::MAX as i64),
        (1, 0x4000_0000),
        (1, FRAME_BYTES_MAX as i64),
        (0, -2),
        (2, u32::MAX as i64 - 1),
        (2, i32::MAX as i64),
    ] {
        let body = authenticate_body(version, declared, b"\0alice\0alic");
        let frame = raw_request(
            ApiKey::SaslAuthenticate as i16,
            version,
            id,
            version >= 2,
            &body,
        );
        let prelude = if rng.random_bool(0.5) {
            Prelude::Handshake("PLAIN")
        } else {
            Prelude::Nothing
        };
        let name =
            format!("v{version} auth bytes declared {declared} long, 11 sent, after {prelude:?}");
        let case = target.case(SASL_HUGE, name, frame).after(prelude);
        let case = case.maybe_answered(ApiKey::SaslAuthenticate, version, Rule::Refused);
        cases.push(case.then(any_then(rng)));
    }
    // A compact length of ten bytes of 0xFF: no varint of 64 bits.
    let mut body = vec![0xff; 10];
    body.extend(GOOD_TOKEN);
    body.push(0);
    let frame = raw_request(ApiKey::SaslAuthenticate as i16, 2, id, true, &body);
    let name = "v2 auth bytes of an overlong varint length".to_string();
    let case = target
        .case(SASL_HUGE, name, frame)
        .after(Prelude::Handshake("PLAIN"));
    cases.push(
        case.maybe_answered(ApiKey::SaslAuthenticate, 2, Rule::Refused)
            .then(Then::Probe),
    );
    // Frame prefixes over the cap (refused at once), at it (waited for,
    // then timed out), negative.
    let frame = sasl_authenticate(2, id, GOOD_TOKEN);
    for prefix in [
        i32::MAX as u32,
        0x8000_0000,
        u32::MAX,
        FRAME_BYTES_MAX + 1,
        FRAME_BYTES_MAX,
        16 << 20,
    ] {
        let mut bytes = frame.clone();
        bytes[..4].copy_from_slice(&prefix.to_be_bytes());
        let name = format!("a SaslAuthenticate frame declared {prefix:#x} bytes long");
        let case = target
            .case(SASL_HUGE, name, bytes)
            .after(Prelude::Handshake("PLAIN"));
        cases.push(case.then(quiet_then(rng)));
    }
    // Over the cap of a connection that has not authenticated (512 KiB,
    // Kafka's `sasl.server.max.receive.size`): closed unanswered, as Kafka
    // does. Under it: answered, refused.
    for (size, within) in [(1 << 20, false), (256 << 10, true)] {
        let token = random_bytes(rng, size);
        let frame = sasl_authenticate(2, id, &token);
        let name = format!("a PLAIN token of {} KiB", size >> 10);
        let case = target.case(SASL_HUGE, name, frame);
        let case = case.after(Prelude::Handshake("PLAIN"));
        cases.push(if within {
            case.answered(ApiKey::SaslAuthenticate, 2, Rule::Refused)
                .then(Then::Probe)
        } else {
            case.then(quiet_then(rng))
        });
        let mut token = b"n,,n=alice,r=".to_vec();
        token.extend(random_printable(rng, size));
        let mechanism = scram_mechanism(rng);
        let frame = sasl_authenticate(1, id, &token);
        let case = target.case(
            SASL_HUGE,
            format!("a {mechanism} first message of {} KiB", size >> 10),
            frame,
        );
        let case = case.after(Prelude::Handshake(mechanism));
        cases.push(if within {
            case.answered(ApiKey::SaslAuthenticate, 1, Rule::Refused)
                .then(Then::Probe)
        } else {
            case.then(quiet_then(rng))
        });
    }
    cases
}

/// PLAIN tokens, malformed, and the good one mutated.
fn plain_cases(rng: &mut StdRng, target: &SaslTarget) -> Vec<Case> {
    let mut tokens: Vec<Vec<u8>> = [
        &b""[..],
        b"\0",
        b"\0\0",
        b"\0\0\0",
        b"alice",
        b"\0alice",
        b"\0alice\0",
        b"\0\0alice-secret",
        b"alice\0\0alice-secret",
        b"\0alice\0wrong",
        b"\0alice\0alice-secret\0",
        b"\0alice\0alice-secret\0extra",
        b"\0ali\0ce\0alice-secret",
        b"bob\0alice\0alice-secret",
        b"\0\xff\xfe\0alice-secret",
        b"\xff\0alice\0alice-secret",
        b"\0alice\0\xff\xfealice-secret",
        b"\0ALICE\0alice-secret",
        b"\0alice \0alice-secret",
        b"\0carol\0carol-secret",
        b"\0\0\0\0\0\0\0\0",
    ]
    .iter()
    .map(|token| token.to_vec())
    .collect();
    tokens.push([&b"\0alice\0"[..], &[b'a'; 70_000]].concat());
    tokens.push([&b"\0"[..], &[b'a'; 70_000], b"\0alice-secret"].concat());
    for _ in 0..10 {
        let mut token = GOOD_TOKEN.to_vec();
        let at = rng.random_range(0..token.len());
        match rng.random_range(0..4) {
            0 => token[at] ^= rng.random_range(1..=255),
            1 => token.truncate(at),
            2 => token.insert(at, rng.random()),
            _ => {
                token.remove(at);
            }
        }
        assert_ne!(token, GOOD_TOKEN, "a mutation changes the token");
        tokens.push(token);
    }
    tokens
        .into_iter()
        .map(|token| {
            let version = rng.random_range(0..=2);
            let frame = sasl_authenticate(version, FUZZ_CORRELATION_ID, &token);
            target
                .case(SASL_PLAIN, format!("v{version} {}", shown(&token)), frame)
                .after(Prelude::Handshake("PLAIN"))
                .answered(ApiKey::SaslAuthenticate, version, Rule::Refused)
                .then(any_then(rng))
        })
        .collect()
}

/// SCRAM client-first messages: refused, or answered with the server's
/// first message (which authenticates nothing).
fn scram_first_cases(rng: &mut StdRng, target: &SaslTarget) -> Vec<Case> {
    let mut firsts: Vec<Vec<u8>> = [
        &b""[..],
        b"n,,",
        b"n,,n=alice",
        b"n,,r=abcdef",
        b"n,,n=,r=abcdef",
        b"n=alice,r=abcdef",
        b"p=tls-unique,,n=alice,r=abcdef",
        b"y,,n=alice,r=abcdef",
        b"x,,n=alice,r=abcdef",
        b"n,a=bob,n=alice,r=abcdef",
        b"n,a=alice,n=alice,r=abcdef",
        b"n,a=al=ZZce,n=alice,r=abcdef",
        b"n,,n=alice,n=bob,r=abcdef",
        b"n,,n=alice,r=abc,r=def",
        b"n,,n=al=2Xice,r=abcdef",
        b"n,,n=alice=,r=abcdef",
        b"n,,n=al=2Cice,r=abcdef",
        b"n,,n=alice,r=\x7f\x01",
        b"n,,n=alice,r=",
        b"n,,n=alice,r=abc,tokenauth=true",
        b"n,,m=mandatory,n=alice,r=abcdef",
        b"n,,n=alice,r=abcdef,i=99999999999999999999",
        b"n,,n=\xff\xfe,r=abcdef",
        b"n,,n=alice\0,r=abcdef",
        b",,,,,,,,",
    ]
    .iter()
    .map(|first| first.to_vec())
    .collect();
    firsts.push([&b"n,,n=alice,r="[..], &[b'x'; 5_000]].concat());
    for _ in 0..8 {
        let good = format!("n,,n=alice,r={}", client_nonce(rng)).into_bytes();
        firsts.push(mutate_attributes(rng, &good));
    }
    firsts
        .into_iter()
        .map(|first| {
            let mechanism = scram_mechanism(rng);
            let version = rng.random_range(0..=2);
            let frame = sasl_authenticate(version, FUZZ_CORRELATION_ID, &first);
            let name = format!("{mechanism} v{version} {}", shown(&first));
            target
                .case(SASL_SCRAM_FIRST, name, frame)
                .after(Prelude::Handshake(mechanism))
                .answered(ApiKey::SaslAuthenticate, version, Rule::ScramFirst)
                .then(any_then(rng))
        })
        .collect()
}

/// SCRAM client-final messages, after a good first message: none has the
/// proof, so each is refused, whatever else is wrong with it.
fn scram_final_cases(rng: &mut StdRng, target: &SaslTarget) -> Vec<Case> {
    let mut templates: Vec<Vec<u8>> = [
        &b"c=biws,r={nonce},p={proof}"[..],
        b"r={nonce},p={proof}",
        b"c=biws,p={proof}",
        b"c=biws,r={nonce}",
        b"c=b!ws,r={nonce},p={proof}",
        b"c=biws,r={nonce},p=%%%%",
        b"c=biws,r={nonce},p=",
        b"c=biws,r={nonce}X,p={proof}",
        b"c=biws,r=,p={proof}",
        b"c=biws,r={client},p={proof}",
        b"c=biws,c=biws,r={nonce},r={nonce},p={proof},p={proof}",
        b"c=biws,r={nonce},i=99999999999999999999,p={proof}",
        b"c=biws,r={nonce},i=4294967296,s=AAAA,p={proof}",
        b"c=biws,r={nonce},i=-1,p={proof}",
        b"c=eSws,r={nonce},p={proof}",
        b"c=biws,r={nonce},p={proof},x=extra",
        b"p={proof},r={nonce},c=biws",
        b"c=biws,r={nonce},p=AA==",
        b"",
        b",",
        b",,,,",
        b"\xff\xfe",
        b"c=biws,r={nonce}\0,p={proof}",
    ]
    .iter()
    .map(|template| template.to_vec())
    .collect();
    let long_proof = STANDARD.encode(random_bytes(rng, 10_000));
    templates.push([&b"c=biws,r={nonce},p="[..], long_proof.as_bytes()].concat());
    for _ in 0..6 {
        templates.push(mutate_attributes(rng, b"c=biws,r={nonce},p={proof}"));
    }
    templates
        .into_iter()
        .map(|template| {
            let mechanism = scram_mechanism(rng);
            let proof_bytes = if mechanism == "SCRAM-SHA-256" { 32 } else { 64 };
            let proof = STANDARD.encode(random_bytes(rng, proof_bytes));
            let template = substitute(&template, b"{proof}", proof.as_bytes());
            let version = rng.random_range(0..=2);
            let name = format!("{mechanism} v{version} {}", shown(&template));
            let prelude = Prelude::ScramFirst {
                mechanism,
                client_nonce: client_nonce(rng),
            };
            let payload = Payload::ScramFinal { version, template };
            Case::new(SASL_SCRAM_FINAL, name, target.transport, payload)
                .after(prelude)
                .answered(ApiKey::SaslAuthenticate, version, Rule::Refused)
                .then(any_then(rng))
        })
        .collect()
}

/// A SCRAM message (`,`-separated attributes) changed at random: an
/// attribute dropped, repeated, moved, given a random value, or one
/// added; or the message cut.
fn mutate_attributes(rng: &mut StdRng, message: &[u8]) -> Vec<u8> {
    let mut attributes: Vec<Vec<u8>> = message
        .split(|byte| *byte == b',')
        .map(<[u8]>::to_vec)
        .collect();
    let at = rng.random_range(0..attributes.len());
    match rng.random_range(0..6) {
        0 => {
            attributes.remove(at);
        }
        1 => {
            let copy = attributes[at].clone();
            attributes.insert(at, copy);
        }
        2 => {
            let other = rng.random_range(0..attributes.len());
            attributes.swap(at, other);
        }
        3 => {
            let key: Vec<u8> = attributes[at].iter().take(2).copied().collect();
            let length = rng.random_range(0..40);
            let value = if rng.random_bool(0.5) {
                random_printable(rng, length)
            } else {
                random_bytes(rng, length)
            };
            attributes[at] = [key, value].concat();
        }
        4 => {
            let key = rng.random_range(b'a'..=b'z');
            let length = rng.random_range(0..20);
            attributes.insert(
                at,
                [vec![key, b'='], random_printable(rng, length)].concat(),
            );
        }
        _ => {
            let joined = attributes.join(&b","[..]);
            let cut = rng.random_range(0..joined.len());
            return joined[..cut].to_vec();
        }
    }
    attributes.join(&b","[..])
}

/// OAUTHBEARER: without a JWKS, refused as a mechanism; with one,
/// messages with broken GS2 headers and key-value pairs, tokens that are
/// not signed JWTs, and tokens signed by the JWKS's key whose claims are
/// wrong, or absurd.
fn oauthbearer_cases(rng: &mut StdRng, target: &SaslTarget) -> Vec<Case> {
    let id = FUZZ_CORRELATION_ID;
    let mut cases = Vec::new();
    let Some(issuer) = target.issuer else {
        // UNSUPPORTED_SASL_MECHANISM, and the mechanism's messages read
        // as another mechanism's tokens.
        for then in [Then::Probe, Then::Silent] {
            let frame = sasl_handshake(id, b"OAUTHBEARER");
            let case = target.case(
                SASL_OAUTHBEARER,
                "SaslHandshake OAUTHBEARER without a JWKS".into(),
                frame,
            );
            cases.push(
                case.answered(ApiKey::SaslHandshake, 1, Rule::Handshake(33))
                    .then(then),
            );
        }
        for message in [
            bearer("a.b.c"),
            b"n,,\x01\x01".to_vec(),
            b"p=x,,\x01auth=Bearer t\x01\x01".to_vec(),
        ] {
            let mechanism = *target.mechanisms.choose(rng).unwrap();
            let version = rng.random_range(0..=2);
            let name = format!(
                "an OAUTHBEARER message {} after {mechanism}",
                shown(&message)
            );
            let frame = sasl_authenticate(version, id, &message);
            let case = target
                .case(SASL_OAUTHBEARER, name, frame)
                .after(Prelude::Handshake(mechanism));
            cases.push(
                case.answered(ApiKey::SaslAuthenticate, version, Rule::ScramFirst)
                    .then(Then::Probe),
            );
        }
        return cases;
    };

    let in_an_hour = unix_now_s() + 3_600;
    let claims = format!(r#"{{"sub":"alice","exp":{in_an_hour}}}"#);
    let unsigned = |header: &str, claims: &str, signature: &str| {
        let (header, claims) = (
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims),
        );
        format!("{header}.{claims}.{signature}")
    };
    // (what it is, the message, the rule of its answer)
    let mut messages: Vec<(String, Vec<u8>, Rule)> = [
        &b""[..],
        b"n,,",
        b"n,,\x01",
        b"n,,\x01\x01",
        b"n,,\x01auth=Bearer\x01\x01",
        b"n,,\x01auth=Bearer \x01\x01",
        b"n,,\x01auth=Basic YWxpY2U6c2VjcmV0\x01\x01",
        b"n,,\x01auth=Bearer a.b.c\x01\x01",
        b"p=tls-unique,,\x01auth=Bearer a.b.c\x01\x01",
        b"auth=Bearer a.b.c\x01\x01",
        b"n,a=alice,\x01auth=Bearer a.b.c\x01\x01",
        b"n,,\x01host=localhost\x01port=9092\x01\x01",
        b"n,,\x01auth=Bearer a.b\x01\x01",
        b"n,,\x01auth=Bearer a.b.c.d\x01\x01",
        b"n,,\x01auth=Bearer !!.@@.##\x01\x01",
        b"n,,\x01auth=Bearer a.b.c",
        b"\xff\xfe\x01auth=Bearer a.b.c\x01\x01",
        b"n,,\x01auth=Bearer \xff.\xfe.\xfd\x01\x01",
        b"\x01\x01\x01\x01",
    ]
    .iter()
    .map(|message| (shown(message), message.to_vec(), Rule::Refused))
    .collect();
    let good_header = r#"{"alg":"ES256","kid":"fuzz"}"#;
    for (what, token) in [
        ("alg none", unsigned(r#"{"alg":"none"}"#, &claims, "")),
        (
            "alg HS256",
            unsigned(r#"{"alg":"HS256","kid":"fuzz"}"#, &claims, "c2lnbmF0dXJl"),
        ),
        ("a header not JSON", unsigned("not json", &claims, "AAAA")),
        ("claims not JSON", unsigned(good_header, "not json", "AAAA")),
        (
            "a signature of zeros",
            unsigned(good_header, &claims, &"A".repeat(86)),
        ),
        (
            "another kid",
            issuer.token(r#"{"alg":"ES256","kid":"another"}"#, &claims),
        ),
        (
            "alg RS256",
            issuer.token(r#"{"alg":"RS256","kid":"fuzz"}"#, &claims),
        ),
        ("a header of {}", issuer.token("{}", &claims)),
        (
            "empty parts between",
            issuer.token(good_header, &claims).replace('.', ".."),
        ),
        ("of 70000 bytes", "A".repeat(70_000)),
    ] {
        messages.push((format!("a token: {what}"), bearer(&token), Rule::Refused));
    }
    let signed = issuer.token(good_header, r#"{"sub":"alice","exp":1}"#);
    let message = format!("y,,\x01auth=Bearer {signed}\x01\x01").into_bytes();
    messages.push(("y,, and an expired token".into(), message, Rule::Refused));
    // Signed by the JWKS's key, each claim set wrong in one way.
    for claims in [
        r#"{"sub":"alice"}"#.to_string(),
        r#"{"sub":"alice","exp":"tomorrow"}"#.to_string(),
        r#"{"sub":"alice","exp":1}"#.to_string(),
        r#"{"sub":"alice","exp":-1e300}"#.to_string(),
        format!(r#"{{"sub":"alice","exp":{in_an_hour},"nbf":1e300}}"#),
        format!(r#"{{"sub":"","exp":{in_an_hour}}}"#),
        format!(r#"{{"sub":123,"exp":{in_an_hour}}}"#),
        format!(r#"{{"exp":{in_an_hour}}}"#),
        "[]".to_string(),
        "null".to_string(),
        "42".to_string(),
        format!(r#"{{"sub":"{}","exp":{in_an_hour}}}"#, "a".repeat(70_000)),
    ] {
        let what = format!("a signed token of claims {}", shown(claims.as_bytes()));
        messages.push((what, issuer.message(&claims), Rule::Refused));
    }
    // Signed, with an expiry absurdly far: refused or taken, never a
    // crash.
    for exp in ["1e300", "1e19", "18446744073709551615", "9.3e18"] {
        let claims = format!(r#"{{"sub":"alice","exp":{exp}}}"#);
        let what = format!("a signed token of claims {claims}");
        messages.push((what, issuer.message(&claims), Rule::Any));
    }
    // An expired token's message with bits flipped: no flip makes it
    // valid.
    let expired = issuer.message(r#"{"sub":"alice","exp":1}"#);
    for _ in 0..8 {
        let mut message = expired.clone();
        let mut bits = Vec::new();
        for _ in 0..rng.random_range(1..=3) {
            let bit = rng.random_range(0..message.len() * 8);
            message[bit / 8] ^= 1 << (bit % 8);
            bits.push(bit);
        }
        let what = format!("an expired signed token, bits {bits:?} flipped");
        messages.push((what, message, Rule::Refused));
    }
    for (what, message, rule) in messages {
        let version = rng.random_range(0..=2);
        // A probe after a token that may be taken would be answered.
        let then = if rule == Rule::Any {
            quiet_then(rng)
        } else {
            any_then(rng)
        };
        let frame = sasl_authenticate(version, id, &message);
        let case = target.case(SASL_OAUTHBEARER, format!("v{version} {what}"), frame);
        let case = case.after(Prelude::Handshake("OAUTHBEARER"));
        cases.push(
            case.answered(ApiKey::SaslAuthenticate, version, rule)
                .then(then),
        );
    }
    cases
}

/// Frames whose length prefix lies, longer and shorter than the frame,
/// and frames shorter than a request header.
fn lying_cases(rng: &mut StdRng, target: &SaslTarget) -> Vec<Case> {
    let id = FUZZ_CORRELATION_ID;
    let frames = [
        (
            "a SaslHandshake",
            Prelude::Nothing,
            sasl_handshake(id, b"PLAIN"),
            ApiKey::SaslHandshake,
            1,
        ),
        (
            "a good SaslAuthenticate",
            Prelude::Handshake("PLAIN"),
            sasl_authenticate(2, id, GOOD_TOKEN),
            ApiKey::SaslAuthenticate,
            2,
        ),
        (
            "a good SaslAuthenticate v0",
            Prelude::Handshake("PLAIN"),
            sasl_authenticate(0, id, GOOD_TOKEN),
            ApiKey::SaslAuthenticate,
            0,
        ),
    ];
    let mut cases = Vec::new();
    for (what, prelude, frame, api, version) in frames {
        let length = frame.len() as i64 - 4;
        for change in [
            1i64,
            2,
            7,
            100,
            65_536,
            16 << 20,
            -1,
            -2,
            -4,
            8 - length,
            -length,
        ] {
            let declared = length + change;
            let mut bytes = frame.clone();
            bytes[..4].copy_from_slice(&(declared as i32).to_be_bytes());
            // A longer prefix is finished by nothing after it, so that a
            // good token is never read whole.
            let then = if change > 0 {
                quiet_then(rng)
            } else {
                any_then(rng)
            };
            let name = format!("{what} of {length} bytes declared {declared}");
            let case = target.case(SASL_LYING, name, bytes).after(prelude.clone());
            cases.push(case.maybe_answered(api, version, Rule::Any).then(then));
        }
    }
    for declared in 1..8u32 {
        let mut bytes = declared.to_be_bytes().to_vec();
        bytes.extend(&sasl_handshake(id, b"PLAIN")[4..4 + declared as usize]);
        let name = format!("a frame of {declared} bytes, shorter than a header");
        cases.push(target.case(SASL_LYING, name, bytes).then(any_then(rng)));
    }
    cases
}

/// A request of `api` and `version` with `body`, framed, with its name.
fn request_of<T: Encodable>(api: ApiKey, version: i16, body: &T) -> (ApiKey, i16, Vec<u8>) {
    (
        api,
        version,
        kafka_raw::frame(api, version, FUZZ_CORRELATION_ID, body),
    )
}

/// Other APIs before authentication: never served, the connection closed
/// (ApiVersions is served, and the probe after it is not).
fn other_api_cases(rng: &mut StdRng, target: &SaslTarget) -> Vec<Case> {
    let id = FUZZ_CORRELATION_ID;
    let scram_upsert = AlterUserScramCredentialsRequest::default().with_upsertions(vec![
        ScramCredentialUpsertion::default()
            .with_name(StrBytes::from_static_str("alice"))
            .with_mechanism(2)
            .with_iterations(4096)
            .with_salt(Bytes::from_static(b"salt"))
            .with_salted_password(Bytes::from(vec![7u8; 64])),
    ]);
    let produce = request_of(ApiKey::Produce, 9, &produce_request());
    let requests = [
        request_of(ApiKey::Metadata, 12, &MetadataRequest::default()),
        request_of(ApiKey::Metadata, 4, &MetadataRequest::default()),
        produce.clone(),
        request_of(ApiKey::Fetch, 12, &FetchRequest::default()),
        request_of(ApiKey::ListOffsets, 7, &ListOffsetsRequest::default()),
        request_of(ApiKey::CreateTopics, 7, &CreateTopicsRequest::default()),
        request_of(ApiKey::DeleteTopics, 6, &DeleteTopicsRequest::default()),
        request_of(ApiKey::InitProducerId, 4, &InitProducerIdRequest::default()),
        request_of(
            ApiKey::FindCoordinator,
            3,
            &FindCoordinatorRequest::default(),
        ),
        request_of(
            ApiKey::DescribeConfigs,
            4,
            &DescribeConfigsRequest::default(),
        ),
        request_of(ApiKey::AlterUserScramCredentials, 0, &scram_upsert),
        (
            ApiKey::Metadata,
            99,
            raw_request(ApiKey::Metadata as i16, 99, id, false, &[]),
        ),
    ];
    let mut cases = Vec::new();
    for (api, version, frame) in requests {
        for prelude in [Prelude::Nothing, Prelude::Handshake("PLAIN")] {
            let name = format!("{api:?} v{version} after {prelude:?}");
            let case = target
                .case(SASL_OTHER_API, name, frame.clone())
                .after(prelude);
            cases.push(
                case.maybe_answered(api, version, Rule::NotServed)
                    .then(any_then(rng)),
            );
        }
    }
    let prelude = Prelude::ScramFirst {
        mechanism: scram_mechanism(rng),
        client_nonce: client_nonce(rng),
    };
    let case = target.case(
        SASL_OTHER_API,
        "Produce v9 in the middle of SCRAM".into(),
        produce.2,
    );
    let case = case
        .after(prelude)
        .maybe_answered(ApiKey::Produce, 9, Rule::NotServed);
    cases.push(case.then(Then::Probe));
    let unknown = raw_request(999, 0, id, false, &[]);
    cases.push(
        target
            .case(SASL_OTHER_API, "API key 999".into(), unknown)
            .then(Then::Probe),
    );
    // A PLAIN handshake and a produce in one write.
    let mut pipelined = sasl_handshake(id, b"PLAIN");
    pipelined.extend(kafka_raw::frame(
        ApiKey::Produce,
        9,
        id + 1,
        &produce_request(),
    ));
    let name = "SaslHandshake and Produce in one write".to_string();
    let case = target.case(SASL_OTHER_API, name, pipelined);
    let case = case.answered(ApiKey::SaslHandshake, 1, Rule::Handshake(0));
    let case = case.expecting(sent(id + 1, ApiKey::Produce, 9, Rule::NotServed, false));
    cases.push(case.then(Then::Probe));
    for version in [3i16, 99] {
        let frame = raw_request(ApiKey::ApiVersions as i16, version, id, true, &[1, 1, 0]);
        let name = format!("ApiVersions v{version}, then the probe");
        let case = target.case(SASL_OTHER_API, name, frame);
        cases.push(
            case.maybe_answered(ApiKey::ApiVersions, version, Rule::Any)
                .then(Then::Probe),
        );
    }
    cases
}

/// SASL versions not served.
fn version_cases(rng: &mut StdRng, target: &SaslTarget) -> Vec<Case> {
    [
        (ApiKey::SaslHandshake, 0i16),
        (ApiKey::SaslHandshake, 2),
        (ApiKey::SaslHandshake, -1),
        (ApiKey::SaslAuthenticate, 3),
        (ApiKey::SaslAuthenticate, -1),
    ]
    .into_iter()
    .map(|(api, version)| {
        let (body, prelude) = if api == ApiKey::SaslHandshake {
            (handshake_body(5, b"PLAIN"), Prelude::Nothing)
        } else {
            let body = authenticate_body(1, GOOD_TOKEN.len() as i64, GOOD_TOKEN);
            (body, Prelude::Handshake("PLAIN"))
        };
        let frame = raw_request(api as i16, version, FUZZ_CORRELATION_ID, false, &body);
        target
            .case(SASL_VERSIONS, format!("{api:?} v{version}"), frame)
            .after(prelude)
            .maybe_answered(api, version, Rule::Any)
            .then(any_then(rng))
    })
    .collect()
}

/// SASL again on an authenticated connection: a second handshake is
/// refused, unless the broker allows re-authentication; a token after it
/// is checked as the first one was.
fn again_cases(rng: &mut StdRng, target: &SaslTarget) -> Vec<Case> {
    let id = FUZZ_CORRELATION_ID;
    let reauthenticating = target.issuer.is_some();
    let mut cases = Vec::new();
    for mechanism in ["PLAIN", "SCRAM-SHA-512", "GSSAPI"] {
        let code = match (reauthenticating, target.served(mechanism.as_bytes())) {
            (false, _) => 34,
            (true, true) => 0,
            (true, false) => 33,
        };
        let mut bytes = sasl_handshake(id, mechanism.as_bytes());
        bytes.extend(sasl_authenticate(2, id + 1, b"\0bob\0alice-secret"));
        let name = format!("SaslHandshake {mechanism}, then a wrong token");
        let case = target.case(SASL_AGAIN, name, bytes).after(Prelude::Login);
        let case = case.answered(ApiKey::SaslHandshake, 1, Rule::Handshake(code));
        let case = case.expecting(sent(
            id + 1,
            ApiKey::SaslAuthenticate,
            2,
            Rule::Refused,
            false,
        ));
        cases.push(case.then(quiet_then(rng)));
    }
    let token = random_bytes(rng, 64);
    let frame = sasl_authenticate(2, id, &token);
    let case = target.case(
        SASL_AGAIN,
        "SaslAuthenticate without a handshake".into(),
        frame,
    );
    let case = case
        .after(Prelude::Login)
        .answered(ApiKey::SaslAuthenticate, 2, Rule::Refused);
    cases.push(case.then(quiet_then(rng)));
    cases
}

// ---------------------------------------------------------------------
// Connections.

/// A client connection, in the clear or in a TLS session.
enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Conn {
    fn socket(&self) -> &TcpStream {
        match self {
            Conn::Plain(socket) => socket,
            Conn::Tls(stream) => &stream.sock,
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(socket) => socket.read(buffer),
            Conn::Tls(stream) => stream.read(buffer),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(socket) => socket.write(bytes),
            Conn::Tls(stream) => stream.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(socket) => socket.flush(),
            Conn::Tls(stream) => stream.flush(),
        }
    }
}

/// What the cases and the good clients need of a running broker.
struct Target {
    kafka_addr: String,
    admin_addr: String,
    /// The broker's standard error.
    log: PathBuf,
    /// Client configurations trusting the broker's CA, if it serves TLS.
    tls: Option<(Arc<ClientConfig>, Arc<ClientConfig>)>,
    /// The broker's shard threads once it served: a thread of each shard.
    shard_threads: BTreeMap<String, usize>,
}

impl Target {
    fn tls_config(&self, version: TlsVersion) -> &Arc<ClientConfig> {
        let (v12, v13) = self.tls.as_ref().expect("a TLS listener");
        match version {
            TlsVersion::V12 => v12,
            TlsVersion::V13 => v13,
        }
    }

    fn tcp(&self) -> Result<TcpStream, String> {
        let socket =
            TcpStream::connect(&self.kafka_addr).map_err(|error| format!("connect: {error}"))?;
        socket.set_read_timeout(Some(bound())).unwrap();
        socket.set_write_timeout(Some(bound())).unwrap();
        socket.set_nodelay(true).unwrap();
        Ok(socket)
    }

    /// A connection as a good client makes it: TLS if the listener has
    /// it (of `version`), the handshake done.
    fn connect(&self, version: TlsVersion) -> Result<Conn, String> {
        let mut socket = self.tcp()?;
        if self.tls.is_none() {
            return Ok(Conn::Plain(socket));
        }
        let config = self.tls_config(version).clone();
        let mut session = ClientConnection::new(config, server_name()).unwrap();
        while session.is_handshaking() {
            session
                .complete_io(&mut socket)
                .map_err(|error| format!("a good TLS handshake failed: {error}"))?;
        }
        Ok(Conn::Tls(Box::new(StreamOwned::new(session, socket))))
    }
}

/// One answer read whole, within the bound.
fn read_answer(conn: &mut Conn) -> Result<Bytes, String> {
    conn.socket().set_read_timeout(Some(bound())).unwrap();
    let mut length = [0u8; 4];
    conn.read_exact(&mut length)
        .map_err(|error| format!("no answer: {error}"))?;
    let length = i32::from_be_bytes(length);
    if !(4..=1 << 24).contains(&length) {
        return Err(format!("an answer declared {length} bytes long"));
    }
    let mut answer = vec![0u8; length as usize];
    conn.read_exact(&mut answer)
        .map_err(|error| format!("an answer cut short: {error}"))?;
    Ok(Bytes::from(answer))
}

/// A request (`frame`, of `correlation_id`) and its answer.
fn exchange<R: Decodable>(
    conn: &mut Conn,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    frame: &[u8],
) -> Result<R, String> {
    conn.write_all(frame)
        .and_then(|()| conn.flush())
        .map_err(|error| format!("{api:?} not sent: {error}"))?;
    let mut answer = read_answer(conn).map_err(|error| format!("{api:?}: {error}"))?;
    let header = ResponseHeader::decode(&mut answer, api.response_header_version(version))
        .map_err(|error| format!("{api:?}: a header that does not read: {error}"))?;
    if header.correlation_id != correlation_id {
        return Err(format!(
            "{api:?}: the answer of correlation id {}, not {correlation_id}",
            header.correlation_id
        ));
    }
    R::decode(&mut answer, version)
        .map_err(|error| format!("{api:?}: an answer that does not read: {error}"))
}

fn handshake(conn: &mut Conn, mechanism: &str) -> Result<(), String> {
    let answer: SaslHandshakeResponse = exchange(
        conn,
        ApiKey::SaslHandshake,
        1,
        1,
        &sasl_handshake(1, mechanism.as_bytes()),
    )?;
    match answer.error_code {
        0 => Ok(()),
        code => Err(format!("SaslHandshake {mechanism}: error {code}")),
    }
}

fn authenticate(conn: &mut Conn, token: &[u8]) -> Result<Bytes, String> {
    let answer: SaslAuthenticateResponse = exchange(
        conn,
        ApiKey::SaslAuthenticate,
        2,
        2,
        &sasl_authenticate(2, 2, token),
    )?;
    match answer.error_code {
        0 => Ok(answer.auth_bytes),
        code => Err(format!(
            "SaslAuthenticate: error {code}: {:?}",
            answer.error_message
        )),
    }
}

/// A good client: logged in as alice (PLAIN), one record produced, the
/// connection kept.
fn good_client(target: &Target) -> Result<Conn, String> {
    let mut conn = target.connect(TlsVersion::V13)?;
    handshake(&mut conn, "PLAIN")?;
    authenticate(&mut conn, GOOD_TOKEN)?;
    let produce = kafka_raw::frame(ApiKey::Produce, 9, 3, &produce_request());
    let answer: ProduceResponse = exchange(&mut conn, ApiKey::Produce, 9, 3, &produce)?;
    match answer.responses[0].partition_responses[0].error_code {
        0 => Ok(conn),
        code => Err(format!("Produce: error {code}")),
    }
}

// ---------------------------------------------------------------------
// Running a case.

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Closed in order (a FIN, a TLS close or alert): every byte before
    /// it came.
    Closed,
    /// Reset: bytes the broker sent last may be lost.
    Reset,
}

/// Reads until the broker ends the connection, or `deadline`: what came
/// and how it ended, or (past the deadline) what came before the hang.
fn read_until_closed(conn: &mut Conn, deadline: Instant) -> Result<(Vec<u8>, End), Vec<u8>> {
    let mut received = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(received);
        }
        let wait = left
            .min(Duration::from_millis(250))
            .max(Duration::from_millis(1));
        conn.socket().set_read_timeout(Some(wait)).unwrap();
        match conn.read(&mut buffer) {
            Ok(0) => return Ok((received, End::Closed)),
            Ok(read) => received.extend_from_slice(&buffer[..read]),
            Err(error) => match error.kind() {
                io::ErrorKind::WouldBlock
                | io::ErrorKind::TimedOut
                | io::ErrorKind::Interrupted => {}
                io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe => return Ok((received, End::Reset)),
                _ => return Ok((received, End::Closed)),
            },
        }
    }
}

/// Whether the broker has said anything or closed (a look, not a read).
fn heard_from(socket: &TcpStream) -> bool {
    socket.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let silent = matches!(
        socket.peek(&mut byte),
        Err(ref error) if error.kind() == io::ErrorKind::WouldBlock
    );
    socket.set_nonblocking(false).unwrap();
    !silent
}

/// The prelude done: the nonce of the server's first SCRAM message, if it
/// was one.
fn run_prelude(conn: &mut Conn, prelude: &Prelude) -> Result<Option<String>, String> {
    match prelude {
        Prelude::Nothing => Ok(None),
        Prelude::Handshake(mechanism) => handshake(conn, mechanism).map(|()| None),
        Prelude::Login => {
            handshake(conn, "PLAIN")?;
            authenticate(conn, GOOD_TOKEN).map(|_| None)
        }
        Prelude::ScramFirst {
            mechanism,
            client_nonce,
        } => {
            handshake(conn, mechanism)?;
            let first = format!("n,,n=alice,r={client_nonce}");
            let server_first = authenticate(conn, first.as_bytes())?;
            let server_first = String::from_utf8_lossy(&server_first).to_string();
            let nonce = server_first
                .strip_prefix("r=")
                .and_then(|rest| rest.split(',').next())
                .filter(|nonce| nonce.starts_with(client_nonce.as_str()))
                .ok_or_else(|| {
                    format!("a server-first message without the nonce: {server_first:?}")
                })?;
            Ok(Some(nonce.to_string()))
        }
    }
}

/// The client's second flight of a real handshake of `version`: the
/// ClientHello sent and the server's flight read, which must go well.
fn second_flight(
    socket: &mut TcpStream,
    config: &Arc<ClientConfig>,
    version: TlsVersion,
) -> Result<Vec<u8>, String> {
    let mut session = ClientConnection::new(config.clone(), server_name()).unwrap();
    let mut hello = Vec::new();
    session.write_tls(&mut hello).unwrap();
    socket
        .write_all(&hello)
        .map_err(|error| format!("hello not sent: {error}"))?;
    // TLS 1.2's client speaks after ServerHelloDone, TLS 1.3's once it
    // has read the server's Finished.
    let ready = |session: &ClientConnection| match version {
        TlsVersion::V12 => session.wants_write(),
        TlsVersion::V13 => !session.is_handshaking(),
    };
    while !ready(&session) {
        match session.read_tls(socket) {
            Ok(0) => return Err("the server closed during a good handshake".to_string()),
            Ok(_) => {}
            Err(error) => return Err(format!("the server's flight: {error}")),
        }
        session
            .process_new_packets()
            .map_err(|error| format!("the server's flight does not read: {error}"))?;
    }
    let mut flight = Vec::new();
    while session.wants_write() {
        session.write_tls(&mut flight).unwrap();
    }
    Ok(flight)
}

/// Runs `case`: how long after its last byte the broker ended the
/// connection, or why the case failed.
fn run_case(target: &Target, case: &Case) -> Result<Duration, String> {
    let started = Instant::now();
    let mut conn = match case.transport {
        Transport::Plain | Transport::RawTls => Conn::Plain(target.tcp()?),
        Transport::Tls => target.connect(TlsVersion::V13)?,
    };
    let nonce = run_prelude(&mut conn, &case.prelude)
        .map_err(|error| format!("prelude {:?}: {error}", case.prelude))?;

    // A write that fails means the broker has closed already: an end, as
    // good as any.
    let written: io::Result<()> = match &case.payload {
        Payload::Bytes(bytes) => conn.write_all(bytes).and_then(|()| conn.flush()),
        Payload::Dribble {
            bytes,
            pause_ms,
            bounded,
        } => {
            let mut result = Ok(());
            for byte in bytes {
                if case.transport != Transport::Tls && heard_from(conn.socket()) {
                    break;
                }
                if *bounded && started.elapsed() > bound() {
                    return Err(format!(
                        "still open {:?} after it began, while a byte at a time came",
                        started.elapsed()
                    ));
                }
                result = conn.write_all(&[*byte]).and_then(|()| conn.flush());
                if result.is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(*pause_ms));
            }
            result
        }
        Payload::ScramFinal { version, template } => {
            let nonce = nonce.expect("a SCRAM prelude");
            let Prelude::ScramFirst { client_nonce, .. } = &case.prelude else {
                unreachable!("a SCRAM final message follows a SCRAM prelude")
            };
            let message = substitute(template, b"{nonce}", nonce.as_bytes());
            let message = substitute(&message, b"{client}", client_nonce.as_bytes());
            conn.write_all(&sasl_authenticate(*version, FUZZ_CORRELATION_ID, &message))
                .and_then(|()| conn.flush())
        }
        Payload::SecondFlight(version, flight) => {
            let Conn::Plain(socket) = &mut conn else {
                unreachable!("a handshake of the case's own")
            };
            let config = target.tls_config(*version).clone();
            let mut bytes = second_flight(socket, &config, *version)?;
            let length = bytes.len() as u64;
            match flight {
                Flight::Withheld => bytes.clear(),
                Flight::Flipped(bits) => {
                    for bit in bits {
                        let bit = bit % (length * 8);
                        bytes[(bit / 8) as usize] ^= 1 << (bit % 8);
                    }
                }
                Flight::Cut(at) => bytes.truncate((at % length) as usize),
                Flight::Random(seed) => {
                    bytes = random_bytes(&mut StdRng::seed_from_u64(*seed), bytes.len());
                }
                Flight::Twice => bytes = bytes.repeat(2),
            }
            socket.write_all(&bytes)
        }
        Payload::CorruptRecord(bit) => {
            let Conn::Tls(stream) = &mut conn else {
                unreachable!("a record of a TLS session")
            };
            stream
                .conn
                .writer()
                .write_all(&sasl_handshake(FUZZ_CORRELATION_ID, b"PLAIN"))
                .unwrap();
            let mut record = Vec::new();
            while stream.conn.wants_write() {
                stream.conn.write_tls(&mut record).unwrap();
            }
            let bit = bit % (record.len() as u64 * 8);
            record[(bit / 8) as usize] ^= 1 << (bit % 8);
            stream.sock.write_all(&record)
        }
    };
    if written.is_ok() {
        // Errors here are the broker closing too.
        let _ = match case.then {
            Then::Probe => conn.write_all(&probe()).and_then(|()| conn.flush()),
            Then::Silent => Ok(()),
            Then::HalfClose => conn.socket().shutdown(Shutdown::Write),
        };
    }
    let last_byte = Instant::now();
    let read = read_until_closed(&mut conn, last_byte + bound());
    // A handshake a byte at a time is timed from its start, as the
    // broker times it.
    let closed_after = match case.payload {
        Payload::Dribble { bounded: true, .. } => started.elapsed(),
        _ => last_byte.elapsed(),
    };
    // What came before a hang is checked too, with what may be cut.
    let (received, end) = match &read {
        Ok((received, end)) => (received, *end),
        Err(received) => (received, End::Reset),
    };
    if case.transport != Transport::RawTls {
        check_answers(case, received, end)?;
    }
    match read {
        Ok(_) => Ok(closed_after),
        Err(received) => Err(format!(
            "a hang: the connection still open {:?} after the last byte ({} bytes came before)",
            bound(),
            received.len()
        )),
    }
}

/// The answers the broker gave in a case, against the rules of the
/// requests it was sent.
fn check_answers(case: &Case, received: &[u8], end: End) -> Result<(), String> {
    let mut answered = HashSet::new();
    let mut rest = received;
    while !rest.is_empty() {
        let length = if rest.len() >= 4 {
            i32::from_be_bytes(rest[..4].try_into().unwrap())
        } else {
            -1
        };
        if length < 0 || rest.len() < 4 + length as usize {
            if end == End::Reset {
                break;
            }
            return Err(format!(
                "a partial answer of {} bytes before the close",
                rest.len()
            ));
        }
        if length < 4 {
            return Err(format!("an answer of {length} bytes"));
        }
        let mut frame = Bytes::copy_from_slice(&rest[4..4 + length as usize]);
        rest = &rest[4 + length as usize..];
        let correlation_id = i32::from_be_bytes(frame[..4].try_into().unwrap());
        // An answer to a request the fuzz made unrecognizable.
        let Some(sent) = case
            .sent
            .iter()
            .find(|sent| sent.correlation_id == correlation_id)
        else {
            continue;
        };
        answered.insert(correlation_id);
        check_answer(sent, &mut frame)?;
    }
    if end == End::Closed {
        if let Some(unanswered) = case
            .sent
            .iter()
            .find(|sent| sent.must_answer && !answered.contains(&sent.correlation_id))
        {
            return Err(format!(
                "closed without answering {:?} v{} (correlation id {})",
                unanswered.api, unanswered.version, unanswered.correlation_id
            ));
        }
    }
    Ok(())
}

fn check_answer(sent: &Sent, frame: &mut Bytes) -> Result<(), String> {
    let what = format!("{:?} v{}", sent.api, sent.version);
    if sent.rule == Rule::NotServed {
        return Err(format!(
            "{what} answered before the connection authenticated"
        ));
    }
    if sent.rule == Rule::Any {
        return Ok(());
    }
    ResponseHeader::decode(frame, sent.api.response_header_version(sent.version))
        .map_err(|error| format!("the answer to {what}: a header that does not read: {error}"))?;
    match sent.rule {
        Rule::Handshake(expected) => {
            let answer = SaslHandshakeResponse::decode(frame, sent.version)
                .map_err(|error| format!("the answer to {what} does not read: {error}"))?;
            if answer.error_code != expected {
                return Err(format!(
                    "{what} answered {}, not {expected}",
                    answer.error_code
                ));
            }
        }
        Rule::Refused | Rule::ScramFirst => {
            let answer = SaslAuthenticateResponse::decode(frame, sent.version)
                .map_err(|error| format!("the answer to {what} does not read: {error}"))?;
            let server_first = answer.auth_bytes.starts_with(b"r=")
                && answer.auth_bytes.windows(3).any(|window| window == b",s=")
                && answer.auth_bytes.windows(3).any(|window| window == b",i=");
            let allowed = sent.rule == Rule::ScramFirst && server_first;
            if answer.error_code == 0 && !allowed {
                return Err(format!(
                    "a fuzzed {what} was taken: code 0, auth bytes {}",
                    shown(&answer.auth_bytes)
                ));
            }
            if answer.error_code != 0 && answer.error_message.is_none() {
                return Err(format!(
                    "{what} refused ({}) without a message",
                    answer.error_code
                ));
            }
        }
        Rule::NotServed | Rule::Any => unreachable!("handled above"),
    }
    Ok(())
}

// ---------------------------------------------------------------------
// The broker's health.

/// Starts a broker whose standard error goes to `log`. `Broker` lets the
/// process inherit the test's, so the test points its own at the file
/// while the broker starts (one start at a time in the process).
fn start_logged(log: &Path, start: impl FnOnce() -> Broker) -> Broker {
    use std::os::fd::AsRawFd;
    static STDERR: Mutex<()> = Mutex::new(());
    let _one_at_a_time = STDERR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let file = std::fs::File::create(log).unwrap();
    // SAFETY: dup and dup2 of this process's own descriptors; standard
    // error is put back before the lock is released.
    let saved = unsafe { libc::dup(2) };
    assert!(saved >= 0, "standard error duplicated");
    assert!(unsafe { libc::dup2(file.as_raw_fd(), 2) } >= 0);
    let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(start));
    // SAFETY: as above; `saved` is closed once, here.
    unsafe {
        libc::dup2(saved, 2);
        libc::close(saved);
    }
    started.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// The broker's panics, as its log tells them: the line that names the
/// thread and the place, and the message after it.
fn panics_in_log(log: &Path) -> Vec<String> {
    let text = std::fs::read(log).unwrap();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .enumerate()
        .filter(|(_, line)| line.contains(" panicked at "))
        .map(|(at, line)| format!("{line} {}", lines.get(at + 1).unwrap_or(&"")))
        .collect()
}

/// The broker's shard threads (glommio names them `shard-N-...`): how
/// many go by each name. A shard that panics loses its executor thread.
fn shard_threads(pid: u32) -> BTreeMap<String, usize> {
    let mut threads = BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let Ok(name) = std::fs::read_to_string(task.unwrap().path().join("comm")) else {
            continue;
        };
        let name = name.trim();
        if name.starts_with("shard-") {
            *threads.entry(name.to_string()).or_default() += 1;
        }
    }
    threads
}

/// The shard threads of a broker just started: those of shards 0 and 1.
fn started_shards(broker: &Broker) -> BTreeMap<String, usize> {
    let threads = shard_threads(broker.child.as_ref().unwrap().id());
    for shard in ["shard-0-", "shard-1-"] {
        assert!(
            threads.keys().any(|name| name.starts_with(shard)),
            "no {shard}* thread: {threads:?}"
        );
    }
    threads
}

/// Open connections per shard (`sluice_shard_connections`).
fn connections_per_shard(target: &Target) -> [u64; 2] {
    let (status, text) = common::admin_get(&target.admin_addr, "/metrics", None);
    assert!(status.contains(" 200 "), "/metrics: {status}");
    let mut counts = [0u64; 2];
    for (shard, count) in counts.iter_mut().enumerate() {
        let prefix = format!("sluice_shard_connections{{shard=\"{shard}\"}} ");
        *count = text
            .lines()
            .find_map(|line| line.strip_prefix(&prefix)?.parse().ok())
            .unwrap_or_else(|| panic!("no connection count of shard {shard} in /metrics"));
    }
    counts
}

/// Fails the test, with the broker's panics if it had any, unless the
/// broker is well: running, both shard threads alive, no panic in its
/// log, every fuzzed connection counted out, and good clients served on
/// both shards.
fn check_health(broker: &mut Broker, target: &Target, when: &str) {
    let child = broker.child.as_mut().expect("the broker was started");
    if let Some(status) = child.try_wait().unwrap() {
        panic!(
            "{when}: the broker exited: {status}; its panics: {:#?}",
            panics_in_log(&target.log)
        );
    }
    let threads = shard_threads(child.id());
    assert_eq!(
        threads,
        target.shard_threads,
        "{when}: a shard thread is gone; the broker's panics: {:#?}",
        panics_in_log(&target.log)
    );
    let panics = panics_in_log(&target.log);
    assert!(
        panics.is_empty(),
        "{when}: the broker panicked: {panics:#?}"
    );

    // Every fuzzed connection closed and counted out.
    let deadline = Instant::now() + bound();
    let mut counts = connections_per_shard(target);
    while counts != [0, 0] {
        assert!(
            Instant::now() < deadline,
            "{when}: connections still counted open: {counts:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
        counts = connections_per_shard(target);
    }

    // Good clients, one at a time, until each shard has served one.
    let mut served = [0usize; 2];
    for attempt in 0..SPREAD_ATTEMPTS_MAX {
        if served.iter().all(|count| *count > 0) {
            break;
        }
        let conn = good_client(target)
            .unwrap_or_else(|error| panic!("{when}: good client {attempt}: {error}"));
        let counts = connections_per_shard(target);
        let shard = counts
            .iter()
            .position(|count| *count == 1)
            .unwrap_or_else(|| panic!("{when}: one good connection open, counted {counts:?}"));
        served[shard] += 1;
        drop(conn);
        let deadline = Instant::now() + bound();
        while connections_per_shard(target) != [0, 0] {
            assert!(
                Instant::now() < deadline,
                "{when}: a good client's connection not counted out"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert!(
        served.iter().all(|count| *count > 0),
        "{when}: good clients served per shard: {served:?}"
    );
}

// ---------------------------------------------------------------------
// The fuzz.

/// What a batch of cases came to.
#[derive(Default)]
struct Tally {
    cases: BTreeMap<&'static str, usize>,
    /// Per kind, the slowest close after the last byte.
    slowest: BTreeMap<&'static str, Duration>,
    prompt: usize,
    timed_out: usize,
    good_clients: usize,
}

/// Runs `cases` on `WORKERS` connections at once while a good client
/// logs in and produces again and again; fails the test naming every
/// case that failed and the seed.
fn run_batch(target: &Target, cases: &[Case], seed: u64, tally: &mut Tally) {
    let next = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let results: Mutex<Vec<(usize, Result<Duration, String>)>> = Mutex::new(Vec::new());
    let good = std::thread::scope(|scope| {
        let good = scope.spawn(|| {
            let mut served = 0;
            while !done.load(Ordering::Relaxed) {
                if let Err(error) = good_client(target) {
                    return Err(format!(
                        "a good client during the fuzz, after {served}: {error}"
                    ));
                }
                served += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(served)
        });
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                scope.spawn(|| loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = cases.get(index) else {
                        return;
                    };
                    let result = run_case(target, case);
                    results.lock().unwrap().push((index, result));
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
        good.join().unwrap()
    });
    let mut failures = Vec::new();
    for (index, result) in results.into_inner().unwrap() {
        let case = &cases[index];
        match result {
            Ok(closed_after) => {
                *tally.cases.entry(case.kind).or_default() += 1;
                let slowest = tally.slowest.entry(case.kind).or_default();
                *slowest = (*slowest).max(closed_after);
                if closed_after < Duration::from_millis(BROKER_TIMEOUT_MS / 2) {
                    tally.prompt += 1;
                } else {
                    tally.timed_out += 1;
                }
            }
            Err(error) => failures.push(format!(
                "[{}] {} ({:?}, prelude {:?}, then {:?}): {error}",
                case.kind, case.name, case.transport, case.prelude, case.then
            )),
        }
    }
    match good {
        Ok(served) => tally.good_clients += served,
        Err(error) => failures.push(error),
    }
    // A broken shard fails the cases after the one that broke it: what
    // the broker answered wrongly first, then hangs, then connections
    // refused or left unanswered from the start.
    failures.sort_by_key(|failure| {
        if failure.contains("): prelude ") || failure.contains("): connect: ") {
            2
        } else if failure.contains("): a hang: ") {
            1
        } else {
            0
        }
    });
    assert!(
        failures.is_empty(),
        "{} of {} cases failed (seed {seed}: {SEED_ENV}={seed} replays them):\n{}\nthe broker's panics: {:#?}",
        failures.len(),
        cases.len(),
        failures.join("\n"),
        panics_in_log(&target.log)
    );
}

fn fuzz(
    broker: &mut Broker,
    target: &Target,
    listener: &str,
    seed: u64,
    rng: &mut StdRng,
    mut cases: Vec<Case>,
) {
    let started = Instant::now();
    check_health(broker, target, "before the fuzz");
    cases.shuffle(rng);
    if let Ok(only) = std::env::var(CASES_ENV) {
        cases.retain(|case| case.name.contains(&only) || case.kind.contains(&only));
        println!(
            "{listener}: only the {} cases that {CASES_ENV}={only:?} names",
            cases.len()
        );
    }
    let mut tally = Tally::default();
    for (index, batch) in cases.chunks(BATCH_CASES_MAX).enumerate() {
        run_batch(target, batch, seed, &mut tally);
        check_health(
            broker,
            target,
            &format!("after batch {index} of {listener}"),
        );
    }
    let total: usize = tally.cases.values().sum();
    assert_eq!(total, cases.len());
    println!(
        "{listener}: seed {seed}, {total} cases in {:.1} s; {} closed within {} ms of their last byte, {} later (by the broker's timeouts); {} good clients served during them",
        started.elapsed().as_secs_f64(),
        tally.prompt,
        BROKER_TIMEOUT_MS / 2,
        tally.timed_out,
        tally.good_clients
    );
    for (kind, count) in &tally.cases {
        println!(
            "  {count:>4}  {kind} (slowest close {} ms)",
            tally.slowest[kind].as_millis()
        );
    }
}

/// Settings both brokers have: the timeouts low, an admin listener for
/// the connection counts.
fn shared_settings() -> Vec<(&'static str, String)> {
    let timeout = BROKER_TIMEOUT_MS.to_string();
    vec![
        ("SLUICE_PARTIAL_FRAME_TIMEOUT_MS", timeout.clone()),
        ("SLUICE_CONNECTION_IDLE_TIMEOUT_MS", timeout),
        ("SLUICE_ADMIN_ADDR", "127.0.0.1:0".to_string()),
    ]
}

#[test]
fn fuzzed_tls_and_sasl_handshakes_on_sasl_ssl_end_and_harm_nothing() {
    let seed = seed();
    // Each listener's cases from a stream of the seed's own.
    let mut rng = StdRng::seed_from_u64(seed ^ 0x55_4c);
    let dir = tempfile::tempdir().unwrap();
    let tls = BrokerTls::new(dir.path());
    let users = kafka_raw::users_file(dir.path());
    let mut more = vec![
        ("SLUICE_SASL_PLAIN_USERS_FILE", users.to_str().unwrap()),
        ("SLUICE_AUTO_CREATE_TOPICS", "false"),
    ];
    let shared = shared_settings();
    more.extend(shared.iter().map(|(key, value)| (*key, value.as_str())));
    let env = tls.env("SASL_SSL", &more);
    let log = dir.path().join("broker.log");
    let mut broker = start_logged(&log, || {
        Broker::start_with(&dir.path().join("data"), 2, &pairs(&env))
    });
    broker.cli_ok(&["topic", "create", TOPIC], None);
    let ca = tls.authority.pem();
    let (v12, v13) = (
        client_config(&ca, TlsVersion::V12),
        client_config(&ca, TlsVersion::V13),
    );
    let hellos = [
        Hello::record(&v13, TlsVersion::V13),
        Hello::record(&v12, TlsVersion::V12),
    ];
    let target = Target {
        kafka_addr: broker.kafka_addr.clone(),
        admin_addr: broker.admin_addr.clone().expect("an admin listener"),
        log,
        tls: Some((v12, v13)),
        shard_threads: started_shards(&broker),
    };
    let sasl = SaslTarget {
        transport: Transport::Tls,
        mechanisms: vec!["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"],
        issuer: None,
    };
    let mut cases = tls_cases(&mut rng, &hellos);
    cases.extend(sasl_cases(&mut rng, &sasl));
    fuzz(&mut broker, &target, "SASL_SSL", seed, &mut rng, cases);
}

#[test]
fn fuzzed_sasl_handshakes_on_sasl_plaintext_end_and_harm_nothing() {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x50_4c);
    let dir = tempfile::tempdir().unwrap();
    let issuer = Issuer::new();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, &issuer.jwks).unwrap();
    let mut more = vec![("SLUICE_SASL_OAUTHBEARER_JWKS_FILE", jwks.to_str().unwrap())];
    let shared = shared_settings();
    more.extend(shared.iter().map(|(key, value)| (*key, value.as_str())));
    let log = dir.path().join("broker.log");
    let mut broker = start_logged(&log, || kafka_raw::sasl_broker(dir.path(), &more));
    broker.cli_ok(&["topic", "create", TOPIC], None);
    let target = Target {
        kafka_addr: broker.kafka_addr.clone(),
        admin_addr: broker.admin_addr.clone().expect("an admin listener"),
        log,
        tls: None,
        shard_threads: started_shards(&broker),
    };
    // The JWKS's key signs tokens the broker takes: the claims the fuzz
    // breaks are read past the signature.
    let mut conn = target.connect(TlsVersion::V13).unwrap();
    handshake(&mut conn, "OAUTHBEARER").unwrap();
    let claims = format!(r#"{{"sub":"alice","exp":{}}}"#, unix_now_s() + 3_600);
    authenticate(&mut conn, &issuer.message(&claims)).expect("a token signed by the JWKS's key");
    drop(conn);
    let sasl = SaslTarget {
        transport: Transport::Plain,
        mechanisms: vec!["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"],
        issuer: Some(&issuer),
    };
    let cases = sasl_cases(&mut rng, &sasl);
    fuzz(
        &mut broker,
        &target,
        "SASL_PLAINTEXT",
        seed,
        &mut rng,
        cases,
    );
}
