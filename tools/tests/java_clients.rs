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

use std::{
    collections::HashMap,
    io::Read,
    path::PathBuf,
    process::{Command, Stdio},
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use common::{cluster::LocalCluster, Broker};

/// A JUnit class that runs longer has hung (each takes well under a
/// minute).
const CLASS_SECONDS_MAX: u64 = 600;
/// How to install what a missing piece needs.
const INSTALL: &str = "apt-get install maven openjdk-17-jdk-headless, then for each version V in \
     tools/tests/java_clients/versions: mvn -B -q -f tools/tests/java_clients/pom.xml \
     -Dkafka.clients.version=V test -DskipTests";

fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/java_clients")
}

/// The kafka-clients versions tested, the newest first.
fn versions() -> Vec<String> {
    let text = std::fs::read_to_string(project_dir().join("versions"))
        .expect("tests/java_clients/versions reads");
    let versions: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect();
    assert!(versions.len() >= 2, "a 4.x and a 3.x version: {versions:?}");
    versions
}

fn newest() -> String {
    versions()[0].clone()
}

/// The version of Kafka's 3.x line.
fn line_3() -> String {
    versions()
        .into_iter()
        .find(|version| version.starts_with("3."))
        .expect("a 3.x version in tests/java_clients/versions")
}

/// Fails the test under `SLUICE_REQUIRE_KAFKA_CLIENTS=1`, and otherwise
/// says why it is skipped; false either way.
fn missing(what: &str) -> bool {
    java_common::missing(what, INSTALL)
}

/// What a Maven run printed, and whether it succeeded (`None`: it ran past
/// [`CLASS_SECONDS_MAX`] and was killed).
struct MavenRun {
    success: Option<bool>,
    output: String,
}

fn mvn(version: &str, arguments: &[&str]) -> MavenRun {
    let mut child = Command::new("mvn")
        .args(["-B", "-q", "-o", "-Dstyle.color=never", "-f"])
        .arg(project_dir().join("pom.xml"))
        .arg(format!("-Dkafka.clients.version={version}"))
        .args(arguments)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("mvn: {error}"));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + Duration::from_secs(CLASS_SECONDS_MAX);
    let success = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status.success());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = format!("{}{}", out.join().unwrap(), err.join().unwrap());
    MavenRun { success, output }
}

/// Compiles the tests for `version`, once per test process (the tests of a
/// version share the build); whether they can run. Java or Maven missing,
/// or a dependency not resolved, is [`missing`]; a compile error fails.
fn built(version: &str) -> bool {
    if !java_common::runs("java", "-version") {
        return missing("java is not installed");
    }
    if !java_common::runs("mvn", "-v") {
        return missing("mvn is not installed");
    }
    type Builds = Mutex<HashMap<String, Arc<OnceLock<Result<(), String>>>>>;
    static BUILDS: OnceLock<Builds> = OnceLock::new();
    let build = BUILDS
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry(version.to_string())
        .or_default()
        .clone();
    let result = build.get_or_init(|| {
        let run = mvn(version, &["test-compile"]);
        match run.success {
            Some(true) => Ok(()),
            _ => Err(run.output),
        }
    });
    match result {
        Ok(()) => true,
        Err(output) if java_common::unresolved(output) => missing(&format!(
            "kafka-clients {version} or a Maven plugin is not in the local repository:\n{output}"
        )),
        Err(output) => {
            panic!("the JUnit tests for kafka-clients {version} do not build:\n{output}")
        }
    }
}

/// Runs the JUnit class `class` with kafka-clients `version` against
/// `bootstrap`, and fails with Maven's and the class's output unless
/// every test in it passes.
fn run_class(version: &str, class: &str, bootstrap: &str) {
    run_class_with(version, class, bootstrap, &[]);
}

/// [`run_class`] with more system properties (`-Dname=value`).
fn run_class_with(version: &str, class: &str, bootstrap: &str, properties: &[String]) {
    let reports = project_dir()
        .join(format!("target/kafka-clients-{version}/surefire-reports"))
        .join(format!("sluice.clients.{class}"));
    let client_log = reports.with_file_name(format!("sluice.clients.{class}-output.txt"));
    // An earlier run's reports say nothing of this one.
    for stale in [reports.with_extension("txt"), client_log.clone()] {
        match std::fs::remove_file(&stale) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                panic!("removing {}: {error}", stale.display())
            }
            _ => {}
        }
    }
    let mut arguments = vec![
        "surefire:test".to_string(),
        format!("-Dtest={class}"),
        format!("-Dsluice.bootstrap={bootstrap}"),
    ];
    arguments.extend(properties.iter().cloned());
    let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
    let run = mvn(version, &arguments);
    let summary = java_common::tail(&reports.with_extension("txt"), 20_000);
    eprintln!("{summary}");
    let verdict = match run.success {
        Some(true) => return,
        Some(false) => "failed".to_string(),
        None => format!("still ran after {CLASS_SECONDS_MAX} s"),
    };
    if java_common::unresolved(&run.output) {
        missing(&format!(
            "a Maven plugin for kafka-clients {version} is not in the local repository:\n{}",
            run.output
        ));
        return;
    }
    let client_log = java_common::tail(&client_log, 20_000);
    panic!(
        "{class} with kafka-clients {version} {verdict}\n--- maven\n{}\n--- report\n{summary}\n\
         --- the client's log (its end)\n{client_log}",
        run.output
    );
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
    run_class_with(version, class, &broker.kafka_addr, properties);
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
    run_class_with(&version, "ProducerTest", &broker.kafka_addr, &tls);
    let mut transactions = tls.to_vec();
    transactions.push(transaction_version(&version));
    run_class_with(
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
    run_class_with(&version, "ProducerTest", &broker.kafka_addr, &sasl);
    let mut scram = sasl.to_vec();
    scram.push("-Dsluice.sasl.mechanism=SCRAM-SHA-512".to_string());
    run_class_with(&version, "AdminTest", &broker.kafka_addr, &scram);
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
    run_class_with(
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
    run_class(&version, "ClusterTest", &cluster.kafka_bootstrap());
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
        std::thread::spawn(move || {
            run_class_with(&version, "FailoverTest", &bootstrap, &[property])
        })
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
