//! Black box: the Kafka listener over TLS (`SSL://`), against the built
//! `sluice` binary, with clients of other TLS stacks (confluent-kafka's
//! OpenSSL, kafka-python's ssl module; `tests/kafka_clients/tls.py`):
//! records produced and read back; an untrusted certificate, a plaintext
//! client, a client without the certificate mutual TLS requires and
//! malformed handshakes refused, with the broker serving on; and a
//! certificate replaced on disk served without a restart. The admin
//! listener over HTTPS (`https://` in `admin_addr`).

mod common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use common::{
    certs::{pairs, replace, run_client_script, server_files, Authority},
    Broker,
};

/// A directory of what a client holds (`tls.py`'s CERTS_DIR): the CA it
/// trusts, another, and a client certificate.
fn client_dir(dir: &Path, trusted: &Authority, other: &Authority, client: &Authority) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("ca.pem"), trusted.pem()).unwrap();
    std::fs::write(dir.join("other-ca.pem"), other.pem()).unwrap();
    let (certificate, key) = client.issue("client-1", false);
    std::fs::write(dir.join("client.pem"), certificate).unwrap();
    std::fs::write(dir.join("client.key"), key).unwrap();
    dir.to_path_buf()
}

fn tls_py(broker: &Broker, certs: &Path, arguments: &[&str]) {
    let mut all = vec![std::ffi::OsStr::new(&broker.kafka_addr), certs.as_os_str()];
    all.extend(arguments.iter().map(std::ffi::OsStr::new));
    run_client_script("tls.py", &all, &[]);
}

/// A broker whose Kafka listener is `SSL://`, with `env` more.
fn tls_broker(data: &Path, server: &Path, env: &[(&str, &str)]) -> Broker {
    let certificate = server.join("server.pem");
    let key = server.join("server.key");
    let mut all = vec![
        ("SLUICE_KAFKA_ADDR", "SSL://127.0.0.1:0"),
        ("SLUICE_SSL_CERTIFICATE_FILE", certificate.to_str().unwrap()),
        ("SLUICE_SSL_KEY_FILE", key.to_str().unwrap()),
        ("SLUICE_PARTIAL_FRAME_TIMEOUT_MS", "1000"),
    ];
    all.extend_from_slice(env);
    Broker::start_with(data, 2, &all)
}

/// Whether the broker closes a connection that sent `bytes`, within
/// `within` (it reads to the end: an alert, then EOF).
fn closed_after(broker: &Broker, bytes: &[u8], within: Duration) -> bool {
    let mut stream = TcpStream::connect(&broker.kafka_addr).unwrap();
    stream.set_read_timeout(Some(within)).unwrap();
    stream.write_all(bytes).unwrap();
    let started = Instant::now();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) if started.elapsed() < within => return true,
            Ok(0) | Err(_) => return false,
            Ok(_) => continue,
        }
    }
}

#[test]
fn clients_produce_and_read_over_tls_and_bad_handshakes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server_dir = dir.path().join("server");
    let authority = Authority::new("sluice test CA");
    let stranger = Authority::new("another CA");
    server_files(&server_dir, &authority);
    let certs = client_dir(
        &dir.path().join("client"),
        &authority,
        &stranger,
        &authority,
    );
    let data = dir.path().join("data");
    let broker = tls_broker(&data, &server_dir, &[("SLUICE_ADMIN_ADDR", "127.0.0.1:0")]);

    tls_py(&broker, &certs, &["trusted"]);
    tls_py(&broker, &certs, &["refused"]);

    // Malformed handshakes: a Kafka request in the clear, bytes that are
    // no TLS record, a ClientHello cut short, nothing at all. Each
    // connection is closed; none stops the broker.
    let mut plaintext = 12i32.to_be_bytes().to_vec();
    plaintext.extend_from_slice(&[0, 18, 0, 3, 0, 0, 0, 1, 0, 2, b'h', b'i']);
    let cut_hello = [
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    let mut noise = vec![0x16, 0x03, 0x03, 0xff, 0xff];
    noise.extend(std::iter::repeat_n(0xab, 70_000));
    for (what, bytes) in [
        ("plaintext", &plaintext[..]),
        ("noise", &noise[..]),
        ("a cut ClientHello", &cut_hello[..]),
        ("nothing", &[][..]),
    ] {
        assert!(
            closed_after(&broker, bytes, Duration::from_secs(5)),
            "{what}: the connection stays open"
        );
    }
    // The native listener is its own, and the broker serves on.
    broker.cli_ok(&["topic", "create", "after-noise"], None);
    tls_py(&broker, &certs, &["trusted"]);
    // Counted: the untrusted, plaintext and malformed handshakes.
    let admin = broker.admin_addr.as_deref().expect("an admin listener");
    let failures = common::metric(admin, "sluice_tls_handshake_failures_total");
    assert!(failures >= 6, "{failures} failed handshakes counted");
}

#[test]
fn mutual_tls_requires_a_client_certificate_and_a_renewed_certificate_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let server_dir = dir.path().join("server");
    let authority = Authority::new("sluice test CA");
    let stranger = Authority::new("another CA");
    server_files(&server_dir, &authority);
    std::fs::write(server_dir.join("clients-ca.pem"), authority.pem()).unwrap();
    let client_ca = server_dir.join("clients-ca.pem");
    let certs = client_dir(
        &dir.path().join("client"),
        &authority,
        &stranger,
        &authority,
    );
    let data = dir.path().join("data");
    let broker = tls_broker(
        &data,
        &server_dir,
        &[
            ("SLUICE_SSL_CLIENT_AUTH", "required"),
            ("SLUICE_SSL_CLIENT_CA_FILE", client_ca.to_str().unwrap()),
        ],
    );
    tls_py(&broker, &certs, &["refused", "required"]);
    tls_py(&broker, &certs, &["client-certificate"]);

    // The broker's certificate renewed, by another CA: served from the
    // next connection on, without a restart. Clients keep their
    // certificate of the first CA, which the broker still asks for.
    let renewed = Authority::new("renewed CA");
    let (certificate, key) = renewed.issue("broker", true);
    replace(&server_dir.join("server.key"), &key);
    replace(&server_dir.join("server.pem"), &certificate);
    std::thread::sleep(Duration::from_millis(2_500));
    let after = client_dir(
        &dir.path().join("client-after"),
        &renewed,
        &authority,
        &authority,
    );
    tls_py(&broker, &after, &["refused", "required"]);
}

#[test]
fn the_admin_listener_serves_metrics_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let tls = common::certs::BrokerTls::new(&dir.path().join("tls"));
    let env = tls.env("SSL", &[("SLUICE_ADMIN_ADDR", "https://127.0.0.1:0")]);
    let broker = Broker::start_with(&dir.path().join("data"), 1, &pairs(&env));
    let admin = broker.admin_addr.as_deref().expect("an admin listener");
    let (status, body) = common::certs::https_get(admin, &tls.authority.pem(), "/metrics")
        .expect("the handshake succeeds");
    assert!(status.contains(" 200 "), "{status}");
    assert!(body.contains("sluice_tls_handshake_failures_total"));
    // A client of another authority, and one speaking plain HTTP, are
    // refused in the handshake, and counted.
    let other = Authority::new("another CA");
    assert!(common::certs::https_get(admin, &other.pem(), "/metrics").is_err());
    let mut plain = TcpStream::connect(admin).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    plain
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !String::from_utf8_lossy(&answer).contains("200 OK"),
        "plain HTTP is not served"
    );
    let (_, body) = common::certs::https_get(admin, &tls.authority.pem(), "/metrics").unwrap();
    let failures = body
        .lines()
        .find_map(|line| line.strip_prefix("sluice_tls_handshake_failures_total "))
        .and_then(|value| value.parse::<u64>().ok())
        .unwrap();
    assert!(failures >= 2, "{failures} failed handshakes counted");
}

#[test]
fn the_native_listener_speaks_tls_and_a_client_certificate_names_its_principal() {
    let dir = tempfile::tempdir().unwrap();
    let tls = common::certs::BrokerTls::new(&dir.path().join("tls"));
    let ca = tls.ca.to_str().unwrap().to_string();
    let env = tls.env(
        "SSL",
        &[
            ("SLUICE_NATIVE_ADDR", "SSL://127.0.0.1:0"),
            ("SLUICE_SSL_CLIENT_AUTH", "required"),
            ("SLUICE_SSL_CLIENT_CA_FILE", &ca),
            ("SLUICE_AUTHORIZER", "acl"),
            ("SLUICE_SUPER_USERS", "User:CN=operator"),
        ],
    );
    let broker = Broker::start_with(&dir.path().join("data"), 2, &pairs(&env));
    let identity = |name: &str| {
        let (certificate, key) = tls.authority.issue(name, false);
        let paths = (
            dir.path().join(format!("{name}.pem")),
            dir.path().join(format!("{name}.key")),
        );
        std::fs::write(&paths.0, certificate).unwrap();
        std::fs::write(&paths.1, key).unwrap();
        (paths.0.display().to_string(), paths.1.display().to_string())
    };
    let (operator, operator_key) = identity("operator");
    let (guest, guest_key) = identity("guest");
    let as_operator = ["--ca", &ca, "--cert", &operator, "--key", &operator_key];
    let with = |args: &[&str], who: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(who);
        broker.cli(&all, None)
    };
    // The super user, by its certificate's subject, over TLS.
    let created = with(&["topic", "create", "over-tls"], &as_operator);
    assert!(created.status.success(), "{created:?}");
    let mut produce = as_operator.to_vec();
    produce.splice(0..0, ["produce", "over-tls"]);
    broker.cli_ok(&produce, Some(b"one\ntwo\n"));
    let read = with(&["consume", "over-tls", "--count", "2"], &as_operator);
    assert!(read.status.success(), "{read:?}");
    let text = String::from_utf8_lossy(&read.stdout);
    assert!(text.contains("one") && text.contains("two"), "{text}");
    // Another certificate of the same authority: a principal without
    // ACLs, refused by the authorizer.
    let refused = with(
        &["topic", "create", "guest-topic"],
        &["--ca", &ca, "--cert", &guest, "--key", &guest_key],
    );
    assert!(!refused.status.success());
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(error.contains("User:CN=guest"), "{error}");
    // No client certificate, and no TLS at all: refused in the handshake.
    let no_certificate = with(&["topic", "list"], &["--ca", &ca]);
    assert!(!no_certificate.status.success());
    let started = Instant::now();
    let plaintext = with(&["topic", "list"], &[]);
    assert!(!plaintext.status.success());
    assert!(started.elapsed() < Duration::from_secs(30));
    // The broker serves on.
    let listed = with(&["topic", "list"], &as_operator);
    assert!(listed.status.success(), "{listed:?}");
}
