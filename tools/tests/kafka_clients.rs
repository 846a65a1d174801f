//! Black box: Kafka clients written by others, in other languages, against
//! the built `sluice` binary. Each test starts a broker and runs a script
//! (or the Go program) of `tests/kafka_clients/` with its Kafka address:
//! the script creates a topic, produces 10,000 keyed records with headers,
//! reads them back and compares them byte for byte, and lists and
//! describes the topic. The test then reads the topic with `sluice
//! consume` and checks the same records independently of the client.
//!
//! A client that is not installed makes its test fail when
//! `SLUICE_REQUIRE_KAFKA_CLIENTS=1` (as in CI), and otherwise be skipped
//! with a message that says so. `.ci/run` installs them all.
//!
//! `SLUICE_TEST_KAFKA_BOOTSTRAP=host:port` runs the same clients against
//! another Kafka broker instead of a `sluice serve` of their own (Apache
//! Kafka from `bench/peers/kafka.sh`, say), to tell a client's quirk from a
//! Sluice bug: the scripts check what they read themselves, and the check
//! with `sluice consume` is left out. Topic names then get a suffix of the
//! time, so that runs against one broker do not meet.

mod common;

use std::{
    collections::{BTreeMap, HashMap},
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::OnceLock,
    time::Duration,
};

use base64::Engine;
use common::Broker;

/// Names another Kafka broker to run the clients against.
const BOOTSTRAP_ENV: &str = "SLUICE_TEST_KAFKA_BOOTSTRAP";

/// Records each script produces; the same number is in records.py and
/// records.js.
const RECORDS: usize = 10_000;
/// Distinct keys among them.
const KEYS: usize = 1_000;
/// A script that runs longer has hung.
const SCRIPT_SECONDS_MAX: u64 = 600;

fn python_module(module: &str) -> Command {
    let mut command = Command::new("python3");
    command.args(["-c", &format!("import {module}")]);
    command
}

fn node_package(package: &str) -> Command {
    let mut command = Command::new("node");
    command.args(["-e", &format!("require.resolve('{package}')")]);
    command
}

/// Runs a script in `tests/kafka_clients/` and fails the test, with its
/// output, unless it succeeds within `SCRIPT_SECONDS_MAX`.
fn run_script(program: &str, script: &str, arguments: &[&str]) {
    let mut command = Command::new(program);
    command.arg(script).args(arguments);
    run_client(command, script);
}

/// Runs `command` from `tests/kafka_clients/` and fails the test, with its
/// output, unless it succeeds within `SCRIPT_SECONDS_MAX`.
fn run_client(mut command: Command, script: &str) {
    let mut child = command
        .current_dir(common::clients_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("{script}: {error}"));
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
    let status = common::wait_or_kill(&mut child, Duration::from_secs(SCRIPT_SECONDS_MAX));
    let out = out.join().unwrap();
    let err = err.join().unwrap();
    eprintln!("{out}");
    match status {
        Some(status) if status.success() => {}
        Some(status) => {
            panic!("{script} exited with {status}\n--- stdout\n{out}\n--- stderr\n{err}")
        }
        None => panic!(
            "{script} still ran after {SCRIPT_SECONDS_MAX} s\n--- stdout\n{out}\n--- stderr\n{err}"
        ),
    }
}

/// What a client was asked to produce, by record index.
struct Expected {
    client: &'static str,
}

impl Expected {
    fn key(&self, index: usize) -> Vec<u8> {
        format!("key-{}", index % KEYS).into_bytes()
    }

    fn value(&self, index: usize) -> Vec<u8> {
        if self.client == "kcat" {
            return format!("value-{index}-kcat|a\ttab, \"quotes\", ünïcödé").into_bytes();
        }
        let mut value = format!("value-{index}-{}|", self.client).into_bytes();
        value.extend((0..index % 100).map(|offset| ((index * 31 + offset) % 256) as u8));
        value
    }

    fn headers(&self, index: usize) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        if self.client == "kcat" {
            return vec![
                (b"client".to_vec(), Some(b"kcat".to_vec())),
                (b"run".to_vec(), Some(b"1".to_vec())),
            ];
        }
        vec![
            (b"index".to_vec(), Some(index.to_string().into_bytes())),
            (b"client".to_vec(), Some(self.client.as_bytes().to_vec())),
            (b"bin".to_vec(), Some(vec![(index % 256) as u8, 0, 255])),
        ]
    }

    fn index_of(&self, value: &[u8], headers: &[(Vec<u8>, Option<Vec<u8>>)]) -> usize {
        let text = if self.client == "kcat" {
            let text = String::from_utf8_lossy(value);
            text.split('|')
                .next()
                .unwrap()
                .split('-')
                .nth(1)
                .unwrap()
                .to_string()
        } else {
            let (_, index) = headers
                .iter()
                .find(|(name, _)| name == b"index")
                .unwrap_or_else(|| panic!("a record without an index header: {headers:?}"));
            String::from_utf8(index.clone().unwrap()).unwrap()
        };
        text.parse().unwrap()
    }
}

fn json_bytes(object: &serde_json::Value, field: &str) -> Option<Vec<u8>> {
    if let Some(text) = object[field].as_str() {
        return Some(text.as_bytes().to_vec());
    }
    object[format!("{field}_base64")].as_str().map(|encoded| {
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap()
    })
}

/// Reads `topic` with `sluice consume` and checks that it holds every
/// record the client was asked to produce, once, byte for byte, in the
/// order produced within each partition.
fn check_with_sluice_consume(broker: &Broker, topic: &str, expected: &Expected) {
    let consumed = broker.cli(&["consume", topic, "--format", "json"], None);
    assert!(consumed.status.success(), "sluice consume: {consumed:?}");
    let text = String::from_utf8(consumed.stdout).unwrap();
    let mut seen: HashMap<usize, (u64, u64)> = HashMap::new();
    let mut last: BTreeMap<u64, (u64, usize)> = BTreeMap::new();
    for line in text.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let partition = record["partition"].as_u64().unwrap();
        let offset = record["offset"].as_u64().unwrap();
        let value = json_bytes(&record, "value").unwrap();
        let headers: Vec<(Vec<u8>, Option<Vec<u8>>)> = record["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|header| {
                (
                    json_bytes(header, "name").unwrap(),
                    json_bytes(header, "value"),
                )
            })
            .collect();
        let index = expected.index_of(&value, &headers);
        let place = format!("{topic} {partition}/{offset} (record {index})");
        assert!(
            seen.insert(index, (partition, offset)).is_none(),
            "{place}: stored twice"
        );
        assert_eq!(
            json_bytes(&record, "key"),
            Some(expected.key(index)),
            "{place}: key"
        );
        assert!(value == expected.value(index), "{place}: value differs");
        assert_eq!(headers, expected.headers(index), "{place}: headers");
        if let Some((last_offset, last_index)) = last.get(&partition) {
            assert!(
                offset > *last_offset && index > *last_index,
                "{place}: out of order"
            );
        }
        last.insert(partition, (offset, index));
    }
    assert_eq!(seen.len(), RECORDS, "{topic}: records stored");
}

/// The broker a client test runs against: a `sluice serve` started for the
/// test, or the one [`BOOTSTRAP_ENV`] names.
enum Target {
    Sluice {
        broker: Broker,
        _data_dir: tempfile::TempDir,
    },
    External {
        bootstrap: String,
        suffix: String,
    },
}

impl Target {
    fn start() -> Target {
        match std::env::var(BOOTSTRAP_ENV) {
            Ok(bootstrap) if !bootstrap.is_empty() => {
                let millis = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis();
                eprintln!("against {bootstrap} ({BOOTSTRAP_ENV}), not a sluice serve");
                Target::External {
                    bootstrap,
                    suffix: format!("-{millis}"),
                }
            }
            _ => {
                let data_dir = tempfile::tempdir().unwrap();
                let broker = Broker::start(data_dir.path(), 2);
                Target::Sluice {
                    broker,
                    _data_dir: data_dir,
                }
            }
        }
    }

    fn bootstrap(&self) -> &str {
        match self {
            Target::Sluice { broker, .. } => &broker.kafka_addr,
            Target::External { bootstrap, .. } => bootstrap,
        }
    }

    /// `name`, made unique on a broker that outlives the test.
    fn topic(&self, name: &str) -> String {
        match self {
            Target::Sluice { .. } => name.to_string(),
            Target::External { suffix, .. } => format!("{name}{suffix}"),
        }
    }

    /// [`check_with_sluice_consume`] on a Sluice broker; nothing elsewhere.
    fn check_with_sluice_consume(&self, topic: &str, expected: &Expected) {
        if let Target::Sluice { broker, .. } = self {
            check_with_sluice_consume(broker, topic, expected);
        }
    }
}

#[test]
fn kcat_produces_lists_and_consumes() {
    if !common::installed(
        "kcat",
        Command::new("kcat").arg("-V"),
        "apt-get install kcat",
    ) || !common::installed("python3", Command::new("python3").arg("-V"), "python3")
    {
        return;
    }
    let target = Target::start();
    // kcat has no admin API: producing creates the topic, with the broker's
    // default of 4 partitions for topics created that way.
    run_script(
        "python3",
        "kcat_client.py",
        &[target.bootstrap(), &target.topic("kcat-records"), "4"],
    );
    target.check_with_sluice_consume(&target.topic("kcat-records"), &Expected { client: "kcat" });
}

#[test]
fn confluent_kafka_creates_produces_consumes_and_describes() {
    if !common::installed(
        "confluent-kafka",
        &mut python_module("confluent_kafka"),
        "pip install -r tools/tests/kafka_clients/requirements.txt",
    ) {
        return;
    }
    let target = Target::start();
    run_script(
        "python3",
        "confluent_kafka_client.py",
        &[target.bootstrap(), &target.topic("confluent-records"), "6"],
    );
    target.check_with_sluice_consume(
        &target.topic("confluent-records"),
        &Expected {
            client: "confluent-kafka",
        },
    );
}

#[test]
fn kafka_python_creates_produces_consumes_and_describes() {
    if !common::installed(
        "kafka-python",
        &mut python_module("kafka"),
        "pip install -r tools/tests/kafka_clients/requirements.txt",
    ) {
        return;
    }
    let target = Target::start();
    run_script(
        "python3",
        "kafka_python_client.py",
        &[
            target.bootstrap(),
            &target.topic("kafka-python-records"),
            "5",
        ],
    );
    target.check_with_sluice_consume(
        &target.topic("kafka-python-records"),
        &Expected {
            client: "kafka-python",
        },
    );
}

#[test]
fn aiokafka_creates_produces_consumes_and_describes() {
    if !common::installed(
        "aiokafka",
        &mut python_module("aiokafka"),
        "pip install -r tools/tests/kafka_clients/requirements.txt",
    ) {
        return;
    }
    let target = Target::start();
    run_script(
        "python3",
        "aiokafka_client.py",
        &[target.bootstrap(), &target.topic("aiokafka-records"), "3"],
    );
    target.check_with_sluice_consume(
        &target.topic("aiokafka-records"),
        &Expected { client: "aiokafka" },
    );
}

#[test]
fn kafkajs_creates_produces_and_describes() {
    if !common::installed(
        "KafkaJS",
        &mut node_package("kafkajs"),
        "npm ci in tools/tests/kafka_clients",
    ) {
        return;
    }
    let target = Target::start();
    run_script(
        "node",
        "kafkajs.js",
        &[target.bootstrap(), &target.topic("kafkajs-records"), "6"],
    );
    target.check_with_sluice_consume(
        &target.topic("kafkajs-records"),
        &Expected { client: "kafkajs" },
    );
}

/// KafkaJS reads only in a consumer group.
#[test]
fn kafkajs_consumes_in_a_group() {
    if !common::installed(
        "KafkaJS",
        &mut node_package("kafkajs"),
        "npm ci in tools/tests/kafka_clients",
    ) {
        return;
    }
    let target = Target::start();
    run_script(
        "node",
        "kafkajs.js",
        &[
            target.bootstrap(),
            &target.topic("kafkajs-group"),
            "6",
            "--group",
        ],
    );
}

/// A broker whose Kafka listener is `SSL://` and requires a client
/// certificate, and the environment that makes `kafkajs.js` and the Go
/// client connect to it with one (`SLUICE_TLS_CA`, `SLUICE_TLS_CERT`,
/// `SLUICE_TLS_KEY`).
struct MutualTls {
    broker: Broker,
    env: Vec<(&'static str, PathBuf)>,
    _dir: tempfile::TempDir,
}

impl MutualTls {
    fn start() -> MutualTls {
        use common::certs::{pairs, BrokerTls};
        let dir = tempfile::tempdir().unwrap();
        let tls = BrokerTls::new(dir.path());
        let (client_certificate, client_key) = tls.authority.issue("client", false);
        let client_pem = dir.path().join("client.pem");
        let client_key_pem = dir.path().join("client.key");
        std::fs::write(&client_pem, client_certificate).unwrap();
        std::fs::write(&client_key_pem, client_key).unwrap();
        let env = tls.mutual_env();
        let broker = Broker::start_with(&dir.path().join("data"), 2, &pairs(&env));
        MutualTls {
            broker,
            env: vec![
                ("SLUICE_TLS_CA", tls.ca.clone()),
                ("SLUICE_TLS_CERT", client_pem),
                ("SLUICE_TLS_KEY", client_key_pem),
            ],
            _dir: dir,
        }
    }

    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        command.envs(self.env.iter().map(|(key, value)| (key, value)));
        command
    }
}

/// KafkaJS (Node's TLS) over mutual TLS: the records test.
#[test]
fn kafkajs_over_mutual_tls() {
    if !common::installed(
        "KafkaJS",
        &mut node_package("kafkajs"),
        "npm ci in tools/tests/kafka_clients",
    ) {
        return;
    }
    let tls = MutualTls::start();
    let mut command = tls.command("node");
    command.args(["kafkajs.js", &tls.broker.kafka_addr, "kafkajs-tls", "6"]);
    run_client(command, "kafkajs.js");
    check_with_sluice_consume(&tls.broker, "kafkajs-tls", &Expected { client: "kafkajs" });
}

/// franz-go (Go's crypto/tls) over mutual TLS: the whole program, groups
/// and admin included.
#[test]
fn franz_go_over_mutual_tls() {
    if !common::installed(
        "Go",
        Command::new("go").arg("version"),
        "Go 1.26 or later; .ci/run downloads the modules",
    ) {
        return;
    }
    let tls = MutualTls::start();
    let mut command = tls.command(go_client());
    command.args([&tls.broker.kafka_addr, "franz-go-tls", "6", "classic"]);
    run_client(command, "franz-go-client");
    check_with_sluice_consume(
        &tls.broker,
        "franz-go-tls",
        &Expected { client: "franz-go" },
    );
}

#[test]
fn platformatic_kafka_creates_produces_fetches_and_describes() {
    if !common::installed(
        "@platformatic/kafka",
        &mut node_package("@platformatic/kafka"),
        "npm ci in tools/tests/kafka_clients",
    ) {
        return;
    }
    let target = Target::start();
    run_script(
        "node",
        "platformatic.js",
        &[
            target.bootstrap(),
            &target.topic("platformatic-records"),
            "4",
        ],
    );
    target.check_with_sluice_consume(
        &target.topic("platformatic-records"),
        &Expected {
            client: "platformatic",
        },
    );
}

/// franz-go (Go, `tests/kafka_clients/go/`): kadm creates, lists and
/// describes the topic and alters its config; idempotent producers send a
/// fifth of the records with each codec (none, gzip, snappy, lz4, zstd);
/// a group of two members shares the partitions, reads every record once
/// and commits; kadm then checks listed offsets (start, end, by time),
/// the group (described, listed, its offsets and lag, a member leaving,
/// its deletion) and deleted records. The program checks what it reads;
/// see its main.go.
fn run_franz_go(topic: &str, protocol: &str) {
    if !common::installed(
        "Go",
        Command::new("go").arg("version"),
        "Go 1.26 or later; .ci/run downloads the modules",
    ) {
        return;
    }
    let program = go_client();
    let target = Target::start();
    let topic = target.topic(topic);
    let mut command = Command::new(program);
    command.args([target.bootstrap(), &topic, "6", protocol]);
    run_client(command, "franz-go-client");
    target.check_with_sluice_consume(&topic, &Expected { client: "franz-go" });
}

#[test]
fn franz_go_produces_consumes_in_a_classic_group_and_administers() {
    run_franz_go("franz-go-classic", "classic");
}

/// The group of the consumer protocol (KIP-848): the broker assigns.
#[test]
fn franz_go_produces_consumes_in_a_consumer_protocol_group_and_administers() {
    run_franz_go("franz-go-consumer", "consumer");
}

/// `tests/kafka_clients/go/` built once into the test target directory,
/// with the module versions of its go.sum only (no network when `go mod
/// download` ran before).
fn go_client() -> &'static Path {
    static PROGRAM: OnceLock<PathBuf> = OnceLock::new();
    PROGRAM.get_or_init(|| common::build_go(".", "franz-go-client"))
}

// ---------------------------------------------------------------------
// Consumer groups (classic protocol) with the Python clients: each script
// starts three consumers in one group on a 12-partition topic, checks that
// no partition is owned by two at once and that all are covered, closes
// one and checks that its partitions move to the others within the
// session timeout (6 s), and that every record is read at least once, each
// partition newly assigned starting exactly at its committed offset. The
// scripts report their own failures; see tests/kafka_clients/*_groups.py.

fn run_group_script(client: &str, module: &str, script: &str, topic: &str, strategy: &str) {
    if !common::installed(
        client,
        &mut python_module(module),
        "pip install -r tools/tests/kafka_clients/requirements.txt",
    ) {
        return;
    }
    let target = Target::start();
    run_script(
        "python3",
        script,
        &[target.bootstrap(), &target.topic(topic), strategy],
    );
}

#[test]
fn confluent_kafka_groups_share_partitions_with_default_assignors() {
    run_group_script(
        "confluent-kafka",
        "confluent_kafka",
        "confluent_kafka_groups.py",
        "confluent-groups-default",
        "default",
    );
}

#[test]
fn confluent_kafka_groups_share_partitions_with_cooperative_sticky() {
    run_group_script(
        "confluent-kafka",
        "confluent_kafka",
        "confluent_kafka_groups.py",
        "confluent-groups-cooperative",
        "cooperative-sticky",
    );
}

#[test]
fn kafka_python_groups_share_partitions_with_default_assignors() {
    run_group_script(
        "kafka-python",
        "kafka",
        "kafka_python_groups.py",
        "kafka-python-groups-default",
        "default",
    );
}

#[test]
fn kafka_python_groups_share_partitions_with_cooperative_sticky() {
    run_group_script(
        "kafka-python",
        "kafka",
        "kafka_python_groups.py",
        "kafka-python-groups-cooperative",
        "cooperative-sticky",
    );
}

/// Runs `transactions.py` with `client` (whose Python module is `module`)
/// against `bootstrap`: every case, or those named.
fn run_transactions(client: &str, module: &str, bootstrap: &str, cases: &[&str]) -> bool {
    if !common::installed(
        client,
        &mut python_module(module),
        "pip install -r tools/tests/kafka_clients/requirements.txt",
    ) {
        return false;
    }
    let mut arguments = vec![client, bootstrap];
    arguments.extend_from_slice(cases);
    run_script("python3", "transactions.py", &arguments);
    true
}

#[test]
fn confluent_kafka_commits_aborts_fences_and_times_out_transactions() {
    let target = Target::start();
    run_transactions(
        "confluent-kafka",
        "confluent_kafka",
        target.bootstrap(),
        &[],
    );
}

#[test]
fn kafka_python_commits_aborts_fences_and_times_out_transactions() {
    let target = Target::start();
    run_transactions("kafka-python", "kafka", target.bootstrap(), &[]);
}

/// The same transactions on a cluster of three nodes: the partitions of
/// each topic, and of `__transaction_state`, are led by all three, so
/// markers and verifications cross the peer network.
#[test]
fn transactions_span_the_nodes_of_a_cluster() {
    let cluster = common::cluster::LocalCluster::start(3);
    cluster.wait_for_brokers(3);
    let bootstrap = cluster.kafka_bootstrap();
    run_transactions(
        "confluent-kafka",
        "confluent_kafka",
        &bootstrap,
        &["commit", "abort", "offsets", "zombie"],
    );
}
