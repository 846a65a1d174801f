//! Black box: Kafka clients written by others, in other languages, against
//! the built `sluice` binary. Each test starts a broker and runs a script
//! of `tests/kafka_clients/` with its Kafka address: the script creates a
//! topic, produces 10,000 keyed records with headers, reads them back and
//! compares them byte for byte, and lists and describes the topic. The
//! test then reads the topic with `sluice consume` and checks the same
//! records independently of the client.
//!
//! A client that is not installed makes its test fail when
//! `SLUICE_REQUIRE_KAFKA_CLIENTS=1` (as in CI), and otherwise be skipped
//! with a message that says so. `.ci/run` installs them all.

mod common;

use std::{
    collections::{BTreeMap, HashMap},
    io::Read,
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use base64::Engine;
use common::Broker;

/// Records each script produces; the same number is in records.py and
/// records.js.
const RECORDS: usize = 10_000;
/// Distinct keys among them.
const KEYS: usize = 1_000;
/// A script that runs longer has hung.
const SCRIPT_SECONDS_MAX: u64 = 600;

fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kafka_clients")
}

/// Whether `probe` succeeds. When it does not, the test fails under
/// `SLUICE_REQUIRE_KAFKA_CLIENTS=1`, and otherwise is skipped, saying so.
fn installed(client: &str, probe: &mut Command, install: &str) -> bool {
    let found = probe
        .current_dir(clients_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if found {
        return true;
    }
    if std::env::var("SLUICE_REQUIRE_KAFKA_CLIENTS").as_deref() == Ok("1") {
        panic!("{client} is not installed ({install}) and SLUICE_REQUIRE_KAFKA_CLIENTS=1");
    }
    eprintln!(
        "SKIPPED: {client} is not installed ({install}); \
         SLUICE_REQUIRE_KAFKA_CLIENTS=1 makes this a failure"
    );
    false
}

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
    let mut child = Command::new(program)
        .arg(script)
        .args(arguments)
        .current_dir(clients_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("{program} {script}: {error}"));
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
    let deadline = Instant::now() + Duration::from_secs(SCRIPT_SECONDS_MAX);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
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

#[test]
fn kcat_produces_lists_and_consumes() {
    if !installed(
        "kcat",
        Command::new("kcat").arg("-V"),
        "apt-get install kcat",
    ) || !installed("python3", Command::new("python3").arg("-V"), "python3")
    {
        return;
    }
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    // kcat has no admin API: producing creates the topic, with the broker's
    // default of 4 partitions for topics created that way.
    run_script(
        "python3",
        "kcat_client.py",
        &[&broker.kafka_addr, "kcat-records", "4"],
    );
    check_with_sluice_consume(&broker, "kcat-records", &Expected { client: "kcat" });
}

#[test]
fn confluent_kafka_creates_produces_consumes_and_describes() {
    if !installed(
        "confluent-kafka",
        &mut python_module("confluent_kafka"),
        "pip install -r tools/tests/kafka_clients/requirements.txt",
    ) {
        return;
    }
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    run_script(
        "python3",
        "confluent_kafka_client.py",
        &[&broker.kafka_addr, "confluent-records", "6"],
    );
    check_with_sluice_consume(
        &broker,
        "confluent-records",
        &Expected {
            client: "confluent-kafka",
        },
    );
}

#[test]
fn kafka_python_creates_produces_consumes_and_describes() {
    if !installed(
        "kafka-python",
        &mut python_module("kafka"),
        "pip install -r tools/tests/kafka_clients/requirements.txt",
    ) {
        return;
    }
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    run_script(
        "python3",
        "kafka_python_client.py",
        &[&broker.kafka_addr, "kafka-python-records", "5"],
    );
    check_with_sluice_consume(
        &broker,
        "kafka-python-records",
        &Expected {
            client: "kafka-python",
        },
    );
}

#[test]
fn aiokafka_creates_produces_consumes_and_describes() {
    if !installed(
        "aiokafka",
        &mut python_module("aiokafka"),
        "pip install -r tools/tests/kafka_clients/requirements.txt",
    ) {
        return;
    }
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    run_script(
        "python3",
        "aiokafka_client.py",
        &[&broker.kafka_addr, "aiokafka-records", "3"],
    );
    check_with_sluice_consume(
        &broker,
        "aiokafka-records",
        &Expected { client: "aiokafka" },
    );
}

#[test]
fn kafkajs_creates_produces_and_describes() {
    if !installed(
        "KafkaJS",
        &mut node_package("kafkajs"),
        "npm ci in tools/tests/kafka_clients",
    ) {
        return;
    }
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    run_script(
        "node",
        "kafkajs.js",
        &[&broker.kafka_addr, "kafkajs-records", "6"],
    );
    check_with_sluice_consume(&broker, "kafkajs-records", &Expected { client: "kafkajs" });
}

/// KafkaJS reads only in a consumer group.
#[test]
fn kafkajs_consumes_in_a_group() {
    if !installed(
        "KafkaJS",
        &mut node_package("kafkajs"),
        "npm ci in tools/tests/kafka_clients",
    ) {
        return;
    }
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    run_script(
        "node",
        "kafkajs.js",
        &[&broker.kafka_addr, "kafkajs-group", "6", "--group"],
    );
}

#[test]
fn platformatic_kafka_creates_produces_fetches_and_describes() {
    if !installed(
        "@platformatic/kafka",
        &mut node_package("@platformatic/kafka"),
        "npm ci in tools/tests/kafka_clients",
    ) {
        return;
    }
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    run_script(
        "node",
        "platformatic.js",
        &[&broker.kafka_addr, "platformatic-records", "4"],
    );
    check_with_sluice_consume(
        &broker,
        "platformatic-records",
        &Expected {
            client: "platformatic",
        },
    );
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
    if !installed(
        client,
        &mut python_module(module),
        "pip install -r tools/tests/kafka_clients/requirements.txt",
    ) {
        return;
    }
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    run_script("python3", script, &[&broker.kafka_addr, topic, strategy]);
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
