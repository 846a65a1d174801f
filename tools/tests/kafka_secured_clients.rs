//! Black box: KafkaJS (Node's TLS) and franz-go (Go's crypto/tls) against
//! the built `sluice` binary, over each security protocol of the Kafka
//! listener: SSL, mutual TLS, SASL_PLAINTEXT with PLAIN, SASL_SSL with
//! SCRAM-SHA-512, and SASL_PLAINTEXT with OAUTHBEARER (JSON Web Tokens the
//! client signs, checked against a JWKS file).
//!
//! Each test starts a broker of one security and runs one client program
//! (`tests/kafka_clients/kafkajs_secured.js`, or
//! `tests/kafka_clients/go/secured/`) against it. The program produces
//! records and reads them back with good settings; checks that a client
//! of bad settings (another CA trusted, no client certificate or one of
//! another CA, a wrong password, an expired token) is refused with the
//! client's own TLS or authentication error, not a timeout; and does the
//! round trip again, so the broker is seen serving after the refusal. The
//! test then reads both topics with `sluice consume` (the native listener)
//! and checks every record independently of the client.
//!
//! A client that is not installed makes its test fail when
//! `SLUICE_REQUIRE_KAFKA_CLIENTS=1` (as in CI), and otherwise be skipped
//! with a message that says so. `.ci/run` installs them.

mod common;
mod kafka_raw;

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::OnceLock,
    time::Duration,
};

use common::{
    certs::{pairs, Authority, BrokerTls},
    Broker,
};

/// Records each round trip produces; the same number is in
/// kafkajs_secured.js and go/secured/main.go.
const RECORDS: usize = 200;
/// A client program that runs longer has hung: two round trips and the
/// refusals take well under a minute.
const CLIENT_SECONDS_MAX: u64 = 300;

#[derive(Clone, Copy)]
enum Client {
    KafkaJs,
    FranzGo,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::KafkaJs => "kafkajs",
            Client::FranzGo => "franz-go",
        }
    }

    /// Whether the client can run. When it cannot, the test fails under
    /// `SLUICE_REQUIRE_KAFKA_CLIENTS=1`, and otherwise is skipped, saying
    /// so.
    fn installed(self) -> bool {
        let (mut probe, install) = match self {
            Client::KafkaJs => {
                let mut probe = Command::new("node");
                probe.args(["-e", "require.resolve('kafkajs')"]);
                (probe, "npm ci in tools/tests/kafka_clients")
            }
            Client::FranzGo => {
                let mut probe = Command::new("go");
                probe.arg("version");
                (probe, "Go 1.26 or later; .ci/run downloads the modules")
            }
        };
        common::installed(self.name(), &mut probe, install)
    }

    /// The client program, to be given its arguments.
    fn command(self) -> Command {
        match self {
            Client::KafkaJs => {
                let mut command = Command::new("node");
                command.arg("kafkajs_secured.js");
                command
            }
            Client::FranzGo => Command::new(franz_go_secured()),
        }
    }

    /// Writes `dir/rs256.pem`, a key to sign tokens with, and
    /// `dir/jwks.json`, its public half.
    fn keygen(self, dir: &Path) {
        let mut command = self.command();
        command.arg("keygen").arg(dir);
        run_client(command, &format!("{} keygen", self.name()));
    }

    /// Runs the client's case of `security` against `broker`, with the
    /// files of `dir`, and checks the topics of its two round trips with
    /// `sluice consume`.
    fn run(self, security: &str, broker: &Broker, dir: &Path) {
        let topic = format!("{}-{security}", self.name());
        let mut command = self.command();
        command
            .arg(security)
            .arg(&broker.kafka_addr)
            .arg(dir)
            .arg(&topic);
        run_client(command, &format!("{} {security}", self.name()));
        for round in ["1", "2"] {
            check_with_sluice_consume(broker, &format!("{topic}-{round}"));
        }
    }
}

/// `tests/kafka_clients/go/secured/` built once into the test target
/// directory, with the module versions of its go.sum only.
fn franz_go_secured() -> &'static Path {
    static PROGRAM: OnceLock<PathBuf> = OnceLock::new();
    PROGRAM.get_or_init(|| common::build_go("./secured", "franz-go-secured"))
}

/// Runs `command` from `tests/kafka_clients/` and fails the test, with its
/// output, unless it succeeds within [`CLIENT_SECONDS_MAX`].
fn run_client(mut command: Command, what: &str) {
    let mut child = command
        .current_dir(common::clients_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("{what}: {error}"));
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let status = common::wait_or_kill(&mut child, Duration::from_secs(CLIENT_SECONDS_MAX));
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    eprintln!("{out}");
    match status {
        Some(status) if status.success() => {}
        Some(status) => panic!("{what} exited with {status}\n--- stdout\n{out}\n--- stderr\n{err}"),
        None => panic!(
            "{what} still ran after {CLIENT_SECONDS_MAX} s\n--- stdout\n{out}\n--- stderr\n{err}"
        ),
    }
}

/// Reads `topic` with `sluice consume` and checks that it holds what the
/// client produced: [`RECORDS`] records in partition 0, record `i` at
/// offset `i` with key `key-i` and value `{topic} i`.
fn check_with_sluice_consume(broker: &Broker, topic: &str) {
    let text = broker.cli_ok(&["consume", topic, "--format", "json"], None);
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(records.len(), RECORDS, "{topic}: records stored");
    for (index, record) in records.iter().enumerate() {
        let place = (record["partition"].as_u64(), record["offset"].as_u64());
        assert_eq!(
            place,
            (Some(0), Some(index as u64)),
            "{topic}: record {index}"
        );
        let key = format!("key-{index}");
        let value = format!("{topic} {index}");
        assert_eq!(
            record["key"].as_str(),
            Some(key.as_str()),
            "{topic}/{index}"
        );
        assert_eq!(
            record["value"].as_str(),
            Some(value.as_str()),
            "{topic}/{index}"
        );
    }
}

/// The files a test's clients take (`kafkajs_secured.js`'s DIR), beside
/// the broker's certificate and key: `ca.pem`, the authority of the
/// broker's certificate; `other-ca.pem`, another; `client.pem` and
/// `client.key`, a client certificate of `ca.pem`; `other-client.pem` and
/// `other-client.key`, one of `other-ca.pem`.
fn tls_files(dir: &Path) -> BrokerTls {
    let tls = BrokerTls::new(dir);
    let other = Authority::new("another CA");
    std::fs::write(dir.join("other-ca.pem"), other.pem()).unwrap();
    for (name, authority) in [("client", &tls.authority), ("other-client", &other)] {
        let (certificate, key) = authority.issue(name, false);
        std::fs::write(dir.join(format!("{name}.pem")), certificate).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key).unwrap();
    }
    tls
}

/// SSL: a client trusting the broker's CA produces and reads back; one
/// trusting another CA is refused by its own certificate check.
fn over_ssl(client: Client) {
    if !client.installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tls = tls_files(dir.path());
    let env = tls.env("SSL", &[]);
    let broker = Broker::start_with(&dir.path().join("data"), 2, &pairs(&env));
    client.run("ssl", &broker, dir.path());
}

/// Mutual TLS: a client presenting a certificate of the CA the broker
/// names (`SLUICE_SSL_CLIENT_CA_FILE`) produces and reads back; one
/// presenting none, or one of another CA, is refused by the broker's TLS
/// alert.
fn over_mutual_tls(client: Client) {
    if !client.installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tls = tls_files(dir.path());
    let env = tls.mutual_env();
    let broker = Broker::start_with(&dir.path().join("data"), 2, &pairs(&env));
    client.run("mutual-tls", &broker, dir.path());
}

/// SASL_PLAINTEXT, PLAIN: alice with her password produces and reads
/// back; a wrong password gets SASL_AUTHENTICATION_FAILED.
fn over_sasl_plain(client: Client) {
    if !client.installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = kafka_raw::sasl_broker(dir.path(), &[]);
    client.run("sasl-plain", &broker, dir.path());
}

/// SASL_SSL, SCRAM-SHA-512 (credentials made from the users file): alice
/// with her password produces and reads back; a wrong password gets
/// SASL_AUTHENTICATION_FAILED.
fn over_sasl_ssl_scram(client: Client) {
    if !client.installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tls = tls_files(dir.path());
    let users = kafka_raw::users_file(dir.path());
    let env = tls.env(
        "SASL_SSL",
        &[("SLUICE_SASL_PLAIN_USERS_FILE", users.to_str().unwrap())],
    );
    let broker = Broker::start_with(&dir.path().join("data"), 2, &pairs(&env));
    client.run("sasl-ssl-scram", &broker, dir.path());
}

/// SASL_PLAINTEXT, OAUTHBEARER: the client makes a key and signs its own
/// tokens (RS256); the broker checks them against the key's JWKS, with an
/// issuer and an audience. A token for alice produces and reads back; one
/// that expired gets SASL_AUTHENTICATION_FAILED.
fn over_oauthbearer(client: Client) {
    if !client.installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    client.keygen(dir.path());
    let jwks = dir.path().join("jwks.json");
    let broker = common::certs::oauth_broker(&dir.path().join("data"), &jwks);
    client.run("oauthbearer", &broker, dir.path());
}

#[test]
fn kafkajs_over_ssl() {
    over_ssl(Client::KafkaJs);
}

#[test]
fn franz_go_over_ssl() {
    over_ssl(Client::FranzGo);
}

#[test]
fn kafkajs_over_mutual_tls_is_refused_without_a_trusted_client_certificate() {
    over_mutual_tls(Client::KafkaJs);
}

#[test]
fn franz_go_over_mutual_tls_is_refused_without_a_trusted_client_certificate() {
    over_mutual_tls(Client::FranzGo);
}

#[test]
fn kafkajs_over_sasl_plain() {
    over_sasl_plain(Client::KafkaJs);
}

#[test]
fn franz_go_over_sasl_plain() {
    over_sasl_plain(Client::FranzGo);
}

#[test]
fn kafkajs_over_sasl_ssl_with_scram_sha_512() {
    over_sasl_ssl_scram(Client::KafkaJs);
}

#[test]
fn franz_go_over_sasl_ssl_with_scram_sha_512() {
    over_sasl_ssl_scram(Client::FranzGo);
}

#[test]
fn kafkajs_with_oauthbearer_tokens() {
    over_oauthbearer(Client::KafkaJs);
}

#[test]
fn franz_go_with_oauthbearer_tokens() {
    over_oauthbearer(Client::FranzGo);
}
