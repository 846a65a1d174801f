//! Black box: Kafka's own Java client (`org.apache.kafka:kafka-clients`,
//! the newest version of `tests/java_clients/versions`) against the built
//! `sluice` binary with each security protocol of the Kafka listener: TLS
//! (`SSL://`), mutual TLS, SASL PLAIN (`SASL_PLAINTEXT://`), SCRAM-SHA-512
//! over TLS (`SASL_SSL://`) and OAUTHBEARER with RS256 tokens. In each,
//! the JUnit test `SecurityTest` of `tests/java_clients/` produces and
//! reads back records as a client the broker takes, is refused with
//! Kafka's error (the producer, the consumer and the admin client) as
//! clients it does not take, and is served again after them.
//!
//! Each client's settings are a properties file written here, as Kafka's
//! tools take them (PEM trust and key stores, JAAS entries), so that each
//! case reads as the settings it tries.
//!
//! Maven runs offline (`mvn -o`): `.ci/run` resolves the project's
//! dependencies beforehand. Java, Maven or a dependency missing makes a
//! test fail when `SLUICE_REQUIRE_KAFKA_CLIENTS=1` (as in CI), and
//! otherwise be skipped with a message that says so.

mod common;
mod java_common;
mod kafka_raw;

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Mutex,
};

use common::{
    certs::{pairs, Authority, BrokerTls},
    Broker,
};
use java_common::kafka_clients::{built, newest, project_dir, run_class};

/// The JUnit test every case runs.
const TEST: &str = "SecurityTest#servesItsClientsAndRefusesTheOthers";

const SSL_REFUSAL: &str = "org.apache.kafka.common.errors.SslAuthenticationException";
const SASL_REFUSAL: &str = "org.apache.kafka.common.errors.SaslAuthenticationException";

/// Runs [`TEST`] with kafka-clients `version` against `broker`: a client
/// of the settings `served` is served, each of `refused` is refused with
/// the exception `refusal`. Fails with Maven's and the test's output
/// unless it passes.
fn run_test(version: &str, broker: &Broker, served: &Path, refused: &[PathBuf], refusal: &str) {
    // One run at a time: the runs of a JUnit class write the same report
    // files.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let refused: Vec<String> = refused
        .iter()
        .map(|path| path.display().to_string())
        .collect();
    run_class(
        version,
        TEST,
        &broker.kafka_addr,
        &[
            format!("-Dsluice.client.served={}", served.display()),
            format!("-Dsluice.client.refused={}", refused.join(",")),
            format!("-Dsluice.client.refusal={refusal}"),
        ],
    );
}

/// A client's settings: Kafka's names and their values.
type Settings = Vec<(&'static str, String)>;

/// `settings` as a properties file `dir/{name}.properties` (Kafka's
/// `client.properties`): its path.
fn client(dir: &Path, name: &str, settings: &[(&str, String)]) -> PathBuf {
    let path = dir.join(format!("{name}.properties"));
    let text: String = settings
        .iter()
        .map(|(key, value)| {
            assert!(
                !value.contains(['\\', '\n']),
                "{key}: a value to escape: {value}"
            );
            format!("{key}={value}\n")
        })
        .collect();
    std::fs::write(&path, text).unwrap();
    path
}

/// The settings of a client that trusts the authority of the PEM file
/// `ca`.
fn trusting(ca: &Path) -> Settings {
    vec![
        ("ssl.truststore.type", "PEM".to_string()),
        ("ssl.truststore.location", ca.display().to_string()),
    ]
}

/// The settings of an `SSL` client that trusts `ca`.
fn ssl_client(ca: &Path) -> Settings {
    let mut settings = vec![("security.protocol", "SSL".to_string())];
    settings.extend(trusting(ca));
    settings
}

/// The settings of a SASL client (`protocol` `SASL_PLAINTEXT` or
/// `SASL_SSL`) of `mechanism`, its JAAS entry `jaas`.
fn sasl_client(protocol: &str, mechanism: &str, jaas: String) -> Settings {
    vec![
        ("security.protocol", protocol.to_string()),
        ("sasl.mechanism", mechanism.to_string()),
        ("sasl.jaas.config", jaas),
    ]
}

/// The JAAS entry of a SASL PLAIN or SCRAM client (`module` the login
/// module's class under `org.apache.kafka.common.security`).
fn password_jaas(module: &str, user: &str, password: &str) -> String {
    format!(
        "org.apache.kafka.common.security.{module} required username=\"{user}\" password=\"{password}\";"
    )
}

/// A PEM file of a client certificate that `authority` signed, its key
/// first (Kafka's PEM key store).
fn keystore(dir: &Path, name: &str, authority: &Authority) -> PathBuf {
    let (certificate, key) = authority.issue(name, false);
    let path = dir.join(format!("{name}-keystore.pem"));
    std::fs::write(&path, format!("{key}{certificate}")).unwrap();
    path
}

/// `SSL://`: a client that trusts the broker's authority produces and
/// reads back; one that trusts another authority fails the handshake
/// (SslAuthenticationException), and the first is served after it.
#[test]
fn java_4_over_tls_refuses_a_client_of_another_authority() {
    let version = newest();
    if !built(&version) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tls = BrokerTls::new(dir.path());
    let other_ca = dir.path().join("other-ca.pem");
    std::fs::write(&other_ca, Authority::new("another CA").pem()).unwrap();
    let broker = Broker::start_with(&dir.path().join("data"), 2, &pairs(&tls.env("SSL", &[])));
    let served = client(dir.path(), "trusting-the-brokers-ca", &ssl_client(&tls.ca));
    let refused = client(dir.path(), "trusting-another-ca", &ssl_client(&other_ca));
    run_test(&version, &broker, &served, &[refused], SSL_REFUSAL);
}

/// Mutual TLS (`SLUICE_SSL_CLIENT_AUTH=required`): a client with a
/// certificate of the authority `SLUICE_SSL_CLIENT_CA_FILE` names is
/// served; one without a certificate and one whose certificate another
/// authority signed are refused (SslAuthenticationException). The other
/// authority has the same name as the broker's, so that the client
/// presents its certificate (JSSE offers only a certificate whose issuer
/// the broker names) and the broker must find the signature wrong.
#[test]
fn java_4_over_mutual_tls_refuses_a_client_without_a_certificate() {
    let version = newest();
    if !built(&version) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tls = BrokerTls::new(dir.path());
    let broker = Broker::start_with(&dir.path().join("data"), 2, &pairs(&tls.mutual_env()));
    let certified = |keystore: PathBuf| {
        let mut settings = ssl_client(&tls.ca);
        settings.push(("ssl.keystore.type", "PEM".to_string()));
        settings.push(("ssl.keystore.location", keystore.display().to_string()));
        settings
    };
    let impostor = Authority::new("sluice test CA");
    let served = client(
        dir.path(),
        "with-a-certificate",
        &certified(keystore(dir.path(), "java-client", &tls.authority)),
    );
    let refused = [
        client(dir.path(), "without-a-certificate", &ssl_client(&tls.ca)),
        client(
            dir.path(),
            "with-a-certificate-of-an-impostor-ca",
            &certified(keystore(dir.path(), "impostor", &impostor)),
        ),
    ];
    run_test(&version, &broker, &served, &refused, SSL_REFUSAL);
}

/// `SASL_PLAINTEXT://` with PLAIN: a user of the users file with its
/// password is served; a wrong password and an unknown user are refused
/// (SaslAuthenticationException).
#[test]
fn java_4_sasl_plain_refuses_a_wrong_password() {
    let version = newest();
    if !built(&version) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = kafka_raw::sasl_broker(dir.path(), &[]);
    let plain = |user: &str, password: &str| {
        let jaas = password_jaas("plain.PlainLoginModule", user, password);
        client(
            dir.path(),
            &format!("plain-{user}-{password}"),
            &sasl_client("SASL_PLAINTEXT", "PLAIN", jaas),
        )
    };
    let served = plain("alice", "alice-secret");
    let refused = [
        plain("alice", "bob-secret"),
        plain("mallory", "alice-secret"),
    ];
    run_test(&version, &broker, &served, &refused, SASL_REFUSAL);
}

/// `SASL_SSL://` with SCRAM-SHA-512 (credentials the broker makes from
/// the users file): the right password is served, a wrong one refused
/// (SaslAuthenticationException).
#[test]
fn java_4_scram_sha_512_over_tls_refuses_a_wrong_password() {
    let version = newest();
    if !built(&version) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tls = BrokerTls::new(dir.path());
    let users = kafka_raw::users_file(dir.path());
    let env = tls.env(
        "SASL_SSL",
        &[("SLUICE_SASL_PLAIN_USERS_FILE", users.to_str().unwrap())],
    );
    let broker = Broker::start_with(&dir.path().join("data"), 2, &pairs(&env));
    let scram = |password: &str| {
        let jaas = password_jaas("scram.ScramLoginModule", "alice", password);
        let mut settings = sasl_client("SASL_SSL", "SCRAM-SHA-512", jaas);
        settings.extend(trusting(&tls.ca));
        client(dir.path(), &format!("scram-alice-{password}"), &settings)
    };
    let served = scram("alice-secret");
    let refused = scram("bob-secret");
    run_test(&version, &broker, &served, &[refused], SASL_REFUSAL);
}

/// OAUTHBEARER on `SASL_PLAINTEXT://`, the broker validating tokens with
/// the public key of a JWKS file: a token that `JwtLoginCallbackHandler`
/// signs RS256 with the key of the JWKS is served; an expired token (five
/// minutes ago, past the broker's clock skew) and a token of a key the
/// JWKS does not hold are refused (SaslAuthenticationException).
#[test]
fn java_4_oauthbearer_refuses_an_expired_token() {
    let version = newest();
    if !built(&version) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // JwtIssuer writes rs256.pem, other-rs256.pem and jwks.json (the
    // public key of rs256.pem, kid rs-1).
    let classes = project_dir().join(format!("target/kafka-clients-{version}/test-classes"));
    let keygen = Command::new("java")
        .arg("-cp")
        .arg(&classes)
        .arg("sluice.clients.JwtIssuer")
        .arg(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("java: {error}"));
    assert!(
        keygen.status.success(),
        "JwtIssuer {}: {}{}",
        dir.path().display(),
        String::from_utf8_lossy(&keygen.stdout),
        String::from_utf8_lossy(&keygen.stderr)
    );
    let jwks = dir.path().join("jwks.json");
    // OAUTHBEARER alone: no users file.
    let broker = common::certs::oauth_broker(&dir.path().join("data"), &jwks);
    let oauth = |name: &str, key: &str, lifetime_seconds: i64| {
        let jaas = format!(
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \
             keyFile=\"{}\" kid=\"rs-1\" subject=\"alice\" issuer=\"https://idp.test\" \
             audience=\"sluice\" lifetimeSeconds=\"{lifetime_seconds}\";",
            dir.path().join(key).display()
        );
        let mut settings = sasl_client("SASL_PLAINTEXT", "OAUTHBEARER", jaas);
        settings.push((
            "sasl.login.callback.handler.class",
            "sluice.clients.JwtLoginCallbackHandler".to_string(),
        ));
        client(dir.path(), name, &settings)
    };
    let served = oauth("token-of-the-jwks-key", "rs256.pem", 600);
    let refused = [
        oauth("token-expired", "rs256.pem", -300),
        oauth("token-of-another-key", "other-rs256.pem", 600),
    ];
    run_test(&version, &broker, &served, &refused, SASL_REFUSAL);
}
