//! Black box: Kafka's own Java client (`org.apache.kafka:kafka-clients`)
//! against the built `sluice` binary. The JUnit tests of
//! `tests/java_clients/` (a Maven project) are run, one class per test
//! here, against a broker (or a cluster) that the test starts, once with
//! each kafka-clients version of `tests/java_clients/versions`: the
//! idempotent producer with every codec, consumers of both group
//! protocols, the AdminClient, and transactions (committed, aborted,
//! offsets sent with them, a zombie fenced, one timed out by the
//! coordinator, those the AdminClient lists and describes, and their
//! producers).
//!
//! Maven runs offline (`mvn -o`): `.ci/run` resolves the project's
//! dependencies for each version beforehand. Java, Maven or a dependency
//! missing makes a test fail when `SLUICE_REQUIRE_KAFKA_CLIENTS=1` (as in
//! CI), and otherwise be skipped with a message that says so.

mod common;
mod java_common;

use std::time::{Duration, Instant};

use common::{cluster::LocalCluster, Broker};
use java_common::kafka_clients::{built, newest, run_class, versions, CLASS_SECONDS_MAX};

/// The version of Kafka's 3.x line.
fn line_3() -> String {
    versions()
        .into_iter()
        .find(|version| version.starts_with("3."))
        .expect("a 3.x version in tests/java_clients/versions")
}

/// A JUnit class against one broker of two shards.
fn against_a_broker(version: &str, class: &str) {
    against_a_broker_with(version, class, &[]);
}

/// [`against_a_broker`] with more system properties.
fn against_a_broker_with(version: &str, class: &str, properties: &[String]) {
    if !built(version) {
        return;
    }
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    run_class(version, class, &broker.kafka_addr, properties);
}

/// A 4.x client takes KIP-890 part 2 (`transaction.version` 2, which the
/// broker finalizes by default); a 3.x client has only the classic
/// protocol.
fn transaction_version(version: &str) -> String {
    let level = if version.starts_with("3.") { 1 } else { 2 };
    format!("-Dsluice.transactionVersion={level}")
}

#[test]
fn java_4_idempotent_producer_with_every_codec() {
    against_a_broker(&newest(), "ProducerTest");
}

#[test]
fn java_4_consumers_of_both_group_protocols() {
    against_a_broker(&newest(), "ConsumerTest");
}

#[test]
fn java_4_admin_client() {
    against_a_broker(&newest(), "AdminTest");
}

#[test]
fn java_4_transactions() {
    let version = newest();
    against_a_broker_with(
        &version,
        "TransactionTest",
        &[transaction_version(&version)],
    );
}

/// The idempotent producer and the transactions over mutual TLS: the
/// broker's Kafka listener is `SSL://` and requires a client certificate;
/// the Java client (JSSE, PEM trust and key stores) presents one.
#[test]
fn java_4_over_mutual_tls() {
    use common::certs::{pairs, BrokerTls};
    let version = newest();
    if !built(&version) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tls = BrokerTls::new(dir.path());
    let (client_certificate, client_key) = tls.authority.issue("java-client", false);
    let keystore = dir.path().join("client-keystore.pem");
    std::fs::write(&keystore, format!("{client_key}{client_certificate}")).unwrap();
    let env = tls.mutual_env();
    let broker = Broker::start_with(&dir.path().join("data"), 2, &pairs(&env));
    let tls = [
        format!("-Dsluice.ssl.ca={}", tls.ca.display()),
        format!("-Dsluice.ssl.keystore={}", keystore.display()),
    ];
    run_class(&version, "ProducerTest", &broker.kafka_addr, &tls);
    let mut transactions = tls.to_vec();
    transactions.push(transaction_version(&version));
    run_class(
        &version,
        "TransactionTest",
        &broker.kafka_addr,
        &transactions,
    );
}

/// The idempotent producer authenticated with SASL PLAIN, and the admin
/// client with SCRAM-SHA-512, over TLS (`SASL_SSL://`).
#[test]
fn java_4_over_sasl_ssl() {
    use common::certs::{pairs, BrokerTls};
    let version = newest();
    if !built(&version) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tls = BrokerTls::new(dir.path());
    let users = dir.path().join("users");
    std::fs::write(&users, "java:java-secret\n").unwrap();
    let env = tls.env(
        "SASL_SSL",
        &[("SLUICE_SASL_PLAIN_USERS_FILE", users.to_str().unwrap())],
    );
    let broker = Broker::start_with(&dir.path().join("data"), 2, &pairs(&env));
    let sasl = [
        format!("-Dsluice.ssl.ca={}", tls.ca.display()),
        "-Dsluice.sasl.plain=java:java-secret".to_string(),
    ];
    run_class(&version, "ProducerTest", &broker.kafka_addr, &sasl);
    let mut scram = sasl.to_vec();
    scram.push("-Dsluice.sasl.mechanism=SCRAM-SHA-512".to_string());
    run_class(&version, "AdminTest", &broker.kafka_addr, &scram);
}

/// The transactions on a cluster of three, every topic of three
/// replicas: the coordinator of an id, the leaders of its partitions and
/// the group's coordinator are spread over the nodes, and the markers
/// cross between them.
#[test]
fn java_4_transactions_on_a_three_broker_cluster() {
    let version = newest();
    if !built(&version) {
        return;
    }
    let cluster = LocalCluster::start(3);
    cluster.wait_for_brokers(3);
    run_class(
        &version,
        "TransactionTest",
        &cluster.kafka_bootstrap(),
        &[
            "-Dsluice.replicas=3".to_string(),
            transaction_version(&version),
        ],
    );
}

#[test]
fn java_4_three_broker_cluster() {
    let version = newest();
    if !built(&version) {
        return;
    }
    let cluster = LocalCluster::start(3);
    cluster.wait_for_brokers(3);
    run_class(&version, "ClusterTest", &cluster.kafka_bootstrap(), &[]);
}

/// The idempotent producer while a node of three is killed (SIGKILL) and
/// started again: FailoverTest produces, and says so in a file; this kills
/// node 1 then, starts it again, and says so in another file; the class
/// then checks that every record is stored once, in order.
#[test]
fn java_4_idempotent_producer_across_a_broker_killed() {
    let version = newest();
    if !built(&version) {
        return;
    }
    let mut cluster = LocalCluster::start(3);
    cluster.wait_for_brokers(3);
    let signals = tempfile::tempdir().unwrap();
    let producer = {
        let version = version.clone();
        let bootstrap = cluster.kafka_bootstrap();
        let property = format!("-Dsluice.signals={}", signals.path().display());
        std::thread::spawn(move || run_class(&version, "FailoverTest", &bootstrap, &[property]))
    };
    let deadline = Instant::now() + Duration::from_secs(CLASS_SECONDS_MAX);
    while !signals.path().join("producing").exists() {
        if producer.is_finished() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if signals.path().join("producing").exists() {
        // Records flow: one node (the leader of some partitions) goes,
        // and comes back a moment later.
        std::thread::sleep(Duration::from_millis(300));
        cluster.kill9(1);
        std::thread::sleep(Duration::from_secs(3));
        cluster.restart(1, &[]);
        std::fs::write(signals.path().join("restarted"), b"restarted").unwrap();
    }
    if let Err(panic) = producer.join() {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn java_3_idempotent_producer_with_every_codec() {
    against_a_broker(&line_3(), "ProducerTest");
}

#[test]
fn java_3_consumers_of_both_group_protocols() {
    against_a_broker(&line_3(), "ConsumerTest");
}

#[test]
fn java_3_admin_client() {
    against_a_broker(&line_3(), "AdminTest");
}

#[test]
fn java_3_transactions() {
    let version = line_3();
    against_a_broker_with(
        &version,
        "TransactionTest",
        &[transaction_version(&version)],
    );
}
