//! Black box: OAUTHBEARER keys from an HTTPS URL
//! (`sasl_oauthbearer_jwks_endpoint_url`), against the built `sluice`
//! binary and an identity provider of the test's own: a rustls server on
//! loopback whose certificate an authority of the test signs
//! (`sasl_oauthbearer_jwks_endpoint_ca_file`), serving its key set
//! chunked. The broker fetches the keys at start and takes a token of
//! the provider's key; once the provider rotates to a new key, a token of
//! it is taken (the broker fetches the keys again for its unknown `kid`
//! while the authentication waits), and tokens of the retired key and of
//! a key never published are refused without another fetch (one such
//! fetch per 10 s). A broker whose URL does not answer refuses to start
//! and names it.

mod common;

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use bytes::Bytes;
use common::{certs::Authority, kafka_exchange, Broker, SLUICE};
use kafka_protocol::{
    messages::{
        ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
        SaslHandshakeResponse,
    },
    protocol::StrBytes,
};
use ring::{
    rand::SystemRandom,
    signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING},
};

const ISSUER: &str = "https://idp.test";

/// An ES256 signing key of the provider's, and its id.
struct SigningKey {
    kid: &'static str,
    pair: EcdsaKeyPair,
}

impl SigningKey {
    fn new(kid: &'static str) -> SigningKey {
        let random = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &random).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &random)
                .unwrap();
        SigningKey { kid, pair }
    }

    /// Its public half, a JWKS of it alone.
    fn jwks(&self) -> String {
        let point = self.pair.public_key().as_ref();
        format!(
            r#"{{"keys":[{{"kty":"EC","crv":"P-256","use":"sig","kid":"{}","x":"{}","y":"{}"}}]}}"#,
            self.kid,
            URL_SAFE_NO_PAD.encode(&point[1..33]),
            URL_SAFE_NO_PAD.encode(&point[33..65])
        )
    }

    /// A token for `subject` of ten minutes, signed with this key but
    /// naming `kid`.
    fn token_naming(&self, kid: &str, subject: &str) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header =
            URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{kid}"}}"#));
        let claims = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"sub":"{subject}","iss":"{ISSUER}","iat":{now},"exp":{}}}"#,
            now + 600
        ));
        let signed = format!("{header}.{claims}");
        let signature = self
            .pair
            .sign(&SystemRandom::new(), signed.as_bytes())
            .unwrap();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    fn token(&self, subject: &str) -> String {
        self.token_naming(self.kid, subject)
    }
}

/// The identity provider: `GET /jwks` over TLS answers the key set it
/// publishes now, chunked; anything else is a 404.
struct Provider {
    addr: SocketAddr,
    published: Arc<Mutex<String>>,
    gets: Arc<AtomicUsize>,
}

impl Provider {
    fn start(authority: &Authority, published: String) -> Provider {
        let (certificate, key) = authority.issue("idp", true);
        let chain = rustls_pemfile::certs(&mut certificate.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = rustls_pemfile::private_key(&mut key.as_bytes())
            .unwrap()
            .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let published = Arc::new(Mutex::new(published));
        let gets = Arc::new(AtomicUsize::new(0));
        let (document, count) = (published.clone(), gets.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (config, document, count) = (config.clone(), document.clone(), count.clone());
                std::thread::spawn(move || answer(stream, config, &document, &count));
            }
        });
        Provider {
            addr,
            published,
            gets,
        }
    }

    fn url(&self) -> String {
        format!("https://{}/jwks", self.addr)
    }

    fn publish(&self, document: String) {
        *self.published.lock().unwrap() = document;
    }

    fn gets(&self) -> usize {
        self.gets.load(Ordering::SeqCst)
    }
}

/// One connection to the provider: a request, its answer, close_notify.
fn answer(
    stream: TcpStream,
    config: Arc<rustls::ServerConfig>,
    document: &Mutex<String>,
    gets: &AtomicUsize,
) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let connection = rustls::ServerConnection::new(config).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, stream);
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        match tls.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
    if !head.starts_with("GET /jwks HTTP/1.1\r\n") {
        let _ = tls.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        return;
    }
    gets.fetch_add(1, Ordering::SeqCst);
    let body = document.lock().unwrap().clone();
    let (first, second) = body.split_at(body.len() / 2);
    let _ = write!(
        tls,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x}\r\n{first}\r\n{:x}\r\n{second}\r\n0\r\n\r\n",
        first.len(),
        second.len()
    );
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

/// An OAUTHBEARER authentication with `token` on a new connection: the
/// SaslAuthenticate answer.
fn authenticate(broker: &Broker, token: &str) -> SaslAuthenticateResponse {
    let mut stream = TcpStream::connect(&broker.kafka_addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let handshake: SaslHandshakeResponse = kafka_exchange(
        &mut stream,
        ApiKey::SaslHandshake,
        1,
        1,
        "jwks-url-test",
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("OAUTHBEARER")),
    );
    assert_eq!(handshake.error_code, 0);
    let message = format!("n,,\x01auth=Bearer {token}\x01\x01");
    kafka_exchange(
        &mut stream,
        ApiKey::SaslAuthenticate,
        2,
        2,
        "jwks-url-test",
        &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(message)),
    )
}

fn refused_because(answer: &SaslAuthenticateResponse) -> String {
    assert_eq!(answer.error_code, 58, "SASL_AUTHENTICATION_FAILED");
    answer
        .error_message
        .as_ref()
        .map(|message| message.to_string())
        .unwrap_or_default()
}

#[test]
fn keys_fetched_from_an_https_url_follow_a_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::new("sluice test idp CA");
    let ca = dir.path().join("idp-ca.pem");
    std::fs::write(&ca, authority.pem()).unwrap();
    let (k1, k2, stranger) = (
        SigningKey::new("k1"),
        SigningKey::new("k2"),
        SigningKey::new("k3"),
    );
    let provider = Provider::start(&authority, k1.jwks());
    let url = provider.url();
    let broker = Broker::start_with(
        &dir.path().join("data"),
        2,
        &[
            ("SLUICE_KAFKA_ADDR", "SASL_PLAINTEXT://127.0.0.1:0"),
            ("SLUICE_SASL_OAUTHBEARER_JWKS_ENDPOINT_URL", &url),
            (
                "SLUICE_SASL_OAUTHBEARER_JWKS_ENDPOINT_CA_FILE",
                ca.to_str().unwrap(),
            ),
            ("SLUICE_SASL_OAUTHBEARER_EXPECTED_ISSUER", ISSUER),
        ],
    );
    assert_eq!(provider.gets(), 1, "the keys are fetched once at start");

    let answer = authenticate(&broker, &k1.token("alice"));
    assert_eq!(answer.error_code, 0, "{:?}", answer.error_message);
    assert!(answer.session_lifetime_ms > 0);
    // A token of another key that names k1: the signature is not k1's.
    let forged = authenticate(&broker, &stranger.token_naming("k1", "mallory"));
    assert!(refused_because(&forged).contains("signature"));
    assert_eq!(provider.gets(), 1, "a known kid fetches nothing");

    // The provider rotates to k2: the first token of k2 is taken, the
    // keys fetched again while its authentication waits.
    provider.publish(k2.jwks());
    let started = Instant::now();
    let answer = authenticate(&broker, &k2.token("bob"));
    assert_eq!(answer.error_code, 0, "{:?}", answer.error_message);
    assert_eq!(provider.gets(), 2, "fetched again for the unknown kid");
    assert!(started.elapsed() < Duration::from_secs(10));

    // k1 is retired, k3 was never published: refused, and within 10 s of
    // the last fetch for an unknown kid nothing is fetched for them.
    for token in [k1.token("alice"), stranger.token("mallory")] {
        let answer = authenticate(&broker, &token);
        assert!(refused_because(&answer).contains("signature"));
    }
    assert_eq!(provider.gets(), 2, "one fetch for unknown kids per 10 s");
    let answer = authenticate(&broker, &k2.token("bob"));
    assert_eq!(answer.error_code, 0, "{:?}", answer.error_message);
}

#[test]
fn a_broker_whose_jwks_url_does_not_answer_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::new("sluice test idp CA");
    let ca = dir.path().join("idp-ca.pem");
    std::fs::write(&ca, authority.pem()).unwrap();
    // A port nothing listens on.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("https://{closed}/jwks");
    let started = Instant::now();
    let mut child = Command::new(SLUICE)
        .args(["serve", "--data-dir"])
        .arg(dir.path().join("data"))
        .args([
            "--native-addr",
            "127.0.0.1:0",
            "--kafka-addr",
            "SASL_PLAINTEXT://127.0.0.1:0",
            "--cores",
            "1",
        ])
        .env("SLUICE_ADMIN_ADDR", "off")
        .env("SLUICE_SASL_OAUTHBEARER_JWKS_ENDPOINT_URL", &url)
        .env("SLUICE_SASL_OAUTHBEARER_JWKS_ENDPOINT_CA_FILE", &ca)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("sluice serve did not give up on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("OAUTHBEARER keys")
            && stderr.contains(&url)
            && stderr.contains("cannot connect"),
        "{stderr}"
    );
    // It tried again for the start's timeout (10 s) before giving up.
    assert!(stderr.contains("tries"), "{stderr}");
    assert!(started.elapsed() >= Duration::from_secs(5), "{stderr}");
}
