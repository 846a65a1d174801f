//! Black box: Kafka Connect 4.4.0 in distributed mode, unchanged, against
//! the built `sluice` binary. A worker (`ConnectDistributed`, its config,
//! offset and status topics created by itself, compacted, and checked to
//! be) runs a FileStreamSource connector, a file into a topic, and a
//! FileStreamSink connector, the topic into another file, both created
//! through its REST API. Lines are appended to the input file all along;
//! the worker is killed with SIGKILL in the middle and started again with
//! the same config, and resumes from the offsets it committed. At the end
//! every input line is in the output file: at least once, none lost (some
//! twice: those read or written after the last commit before the kill).
//! Stopped, the connectors' offsets that the worker's REST API shows are
//! the ends of the topic and of the file, and a reset of the sink's
//! deletes its consumer group's.
//!
//! The worker runs from `tests/java_ecosystem/` (a Maven project, built
//! offline: `.ci/run` resolves it).

mod common;
mod java_common;

use std::{
    collections::{BTreeMap, HashMap},
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use common::Broker;
use java_common::JavaProcess;

const WORKER_MAIN: &str = "org.apache.kafka.connect.cli.ConnectDistributed";
/// How to install what a missing piece needs.
const INSTALL: &str = "apt-get install maven openjdk-17-jdk-headless, then mvn -B -q -f \
     tools/tests/java_ecosystem/pom.xml compile";
const TOPIC: &str = "lines";
/// The lines appended to the input file, and how fast: about twenty
/// seconds of input, long enough to restart the worker in the middle.
const LINES: usize = 4_000;
const LINES_PER_SECOND: usize = 200;
/// How many lines are through to the output file before the kill.
const LINES_BEFORE_KILL: usize = 800;
/// A JVM's start, a rebalance, a connector's start: each takes seconds.
const STEP_TIMEOUT: Duration = Duration::from_secs(90);

fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/java_ecosystem")
}

/// A port of the loopback that is free now (the kernel's choice), for the
/// worker's REST listener.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.0 exchange with the worker's REST API: its status and body,
/// or `None` if nothing listens yet (or the answer breaks off).
fn http(port: u16, method: &str, path: &str, body: Option<&str>) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.split(' ').nth(1)?.parse().ok()?;
    let (_, body) = answer.split_once("\r\n\r\n")?;
    Some((status, body.to_string()))
}

/// A worker process and what it takes to start it again.
struct Worker {
    process: JavaProcess,
    port: u16,
}

impl Worker {
    fn start(classpath: &str, config: &Path, port: u16, log_dir: &Path) -> Worker {
        let process = JavaProcess::start(
            "worker",
            classpath,
            WORKER_MAIN,
            &[config.to_str().unwrap()],
            log_dir,
        );
        Worker { process, port }
    }

    /// A REST call that must answer `expected`; the body.
    fn call(&mut self, method: &str, path: &str, body: Option<&str>, expected: u16) -> String {
        match http(self.port, method, path, body) {
            Some((status, body)) if status == expected => body,
            answer => panic!(
                "{method} {path}: {answer:?}, not {expected}\n{}",
                self.process.log_tail()
            ),
        }
    }

    /// Waits until the REST API answers and the herder serves (`GET
    /// /connectors` is 200 once the worker has joined its group and read
    /// its config topic).
    fn wait_until_serving(&mut self) {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            if let Some((200, _)) = http(self.port, "GET", "/connectors", None) {
                return;
            }
            if let Some(status) = self.process.exited() {
                panic!("the worker exited ({status})\n{}", self.process.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "the worker did not serve its REST API within {STEP_TIMEOUT:?}\n{}",
                self.process.log_tail()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits until the connector `name` and each of its tasks run.
    fn wait_until_running(&mut self, name: &str) {
        let deadline = Instant::now() + STEP_TIMEOUT;
        let mut last = None;
        loop {
            if let Some((200, body)) = http(
                self.port,
                "GET",
                &format!("/connectors/{name}/status"),
                None,
            ) {
                let status: serde_json::Value =
                    serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
                let state = |value: &serde_json::Value| value["state"].as_str() == Some("RUNNING");
                let tasks = status["tasks"].as_array().cloned().unwrap_or_default();
                assert!(
                    !body.contains("\"FAILED\""),
                    "{name} failed: {body}\n{}",
                    self.process.log_tail()
                );
                if state(&status["connector"]) && !tasks.is_empty() && tasks.iter().all(state) {
                    return;
                }
                last = Some(body);
            }
            if let Some(status) = self.process.exited() {
                panic!("the worker exited ({status})\n{}", self.process.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not run within {STEP_TIMEOUT:?} (last status {last:?})\n{}",
                self.process.log_tail()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Worker {
    /// Waits until the connector `name` is STOPPED (by `PUT
    /// /connectors/NAME/stop`).
    fn wait_until_stopped(&mut self, name: &str) {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let answer = http(
                self.port,
                "GET",
                &format!("/connectors/{name}/status"),
                None,
            );
            if let Some((200, body)) = &answer {
                let status: serde_json::Value =
                    serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
                if status["connector"]["state"].as_str() == Some("STOPPED") {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not stop within {STEP_TIMEOUT:?} (last status {answer:?})\n{}",
                self.process.log_tail()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// The lines of a file (none if it does not exist yet).
fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn line(n: usize) -> String {
    format!("line {n:06} of the input file")
}

#[test]
fn file_connectors_resume_after_the_worker_is_killed() {
    let Some(classpath) = java_common::build(&project_dir(), INSTALL) else {
        return;
    };
    let started = Instant::now();
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("input.txt");
    let output = work.path().join("output.txt");
    std::fs::write(&input, "").unwrap();

    let port = free_port();
    let config = work.path().join("worker.properties");
    std::fs::write(
        &config,
        format!(
            "bootstrap.servers={bootstrap}\n\
             group.id=sluice-connect\n\
             key.converter=org.apache.kafka.connect.storage.StringConverter\n\
             value.converter=org.apache.kafka.connect.storage.StringConverter\n\
             config.storage.topic=connect-configs\n\
             offset.storage.topic=connect-offsets\n\
             status.storage.topic=connect-status\n\
             config.storage.replication.factor=1\n\
             offset.storage.replication.factor=1\n\
             status.storage.replication.factor=1\n\
             offset.storage.partitions=5\n\
             status.storage.partitions=3\n\
             offset.flush.interval.ms=1000\n\
             listeners=http://127.0.0.1:{port}\n\
             rest.advertised.host.name=127.0.0.1\n\
             rest.advertised.port={port}\n\
             # The killed worker's connectors and tasks go to the next one\n\
             # without waiting minutes for the dead one to come back.\n\
             scheduled.rebalance.max.delay.ms=2000\n\
             # Members killed leave their groups when their sessions time out.\n\
             session.timeout.ms=6000\n\
             heartbeat.interval.ms=1000\n\
             consumer.session.timeout.ms=6000\n\
             consumer.heartbeat.interval.ms=1000\n",
            bootstrap = broker.kafka_addr,
        ),
    )
    .unwrap();

    let mut worker = Worker::start(&classpath, &config, port, work.path());
    worker.wait_until_serving();
    eprintln!("the worker serves at {:?}", started.elapsed());
    let source = serde_json::json!({
        "name": "lines-in",
        "config": {
            "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
            "tasks.max": "1",
            "file": input.to_str().unwrap(),
            "topic": TOPIC,
        }
    });
    let sink = serde_json::json!({
        "name": "lines-out",
        "config": {
            "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
            "tasks.max": "1",
            "file": output.to_str().unwrap(),
            "topics": TOPIC,
        }
    });
    for connector in [&source, &sink] {
        worker.call("POST", "/connectors", Some(&connector.to_string()), 201);
    }
    worker.wait_until_running("lines-in");
    worker.wait_until_running("lines-out");
    let listed = worker.call("GET", "/connectors", None, 200);
    assert!(
        listed.contains("lines-in") && listed.contains("lines-out"),
        "{listed}"
    );
    eprintln!("both connectors run at {:?}", started.elapsed());

    // The input grows all along, across the kill and the restart.
    let appending = Arc::new(AtomicBool::new(true));
    let appender = {
        let input = input.clone();
        let appending = appending.clone();
        std::thread::spawn(move || {
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&input)
                .unwrap();
            let begin = Instant::now();
            for n in 1..=LINES {
                writeln!(file, "{}", line(n)).unwrap();
                let due = begin + Duration::from_secs_f64(n as f64 / LINES_PER_SECOND as f64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            appending.store(false, Ordering::SeqCst);
        })
    };

    let deadline = Instant::now() + STEP_TIMEOUT;
    while lines(&output).len() < LINES_BEFORE_KILL {
        if let Some(status) = worker.process.exited() {
            panic!(
                "the worker exited ({status})\n{}",
                worker.process.log_tail()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{LINES_BEFORE_KILL} lines not through to the output within {STEP_TIMEOUT:?} \
             ({} are)\n{}",
            lines(&output).len(),
            worker.process.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    worker.process.kill9();
    let at_kill = lines(&output).len();
    eprintln!(
        "the worker killed with SIGKILL at {:?}, {at_kill} lines through",
        started.elapsed()
    );
    assert!(
        appending.load(Ordering::SeqCst),
        "the input was complete before the kill: make it longer"
    );

    let mut worker = Worker::start(&classpath, &config, port, work.path());
    worker.wait_until_serving();
    worker.wait_until_running("lines-in");
    worker.wait_until_running("lines-out");
    eprintln!("the worker runs again at {:?}", started.elapsed());
    appender.join().unwrap();

    // Every line gets through; none but those expected.
    let expected: Vec<String> = (1..=LINES).map(line).collect();
    let deadline = Instant::now() + STEP_TIMEOUT;
    let (copies, missing) = loop {
        let mut copies: HashMap<String, usize> = HashMap::new();
        for written in lines(&output) {
            *copies.entry(written).or_default() += 1;
        }
        let missing: Vec<&String> = expected
            .iter()
            .filter(|line| !copies.contains_key(*line))
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break (copies, missing.len());
        }
        if let Some(status) = worker.process.exited() {
            panic!(
                "the worker exited ({status})\n{}",
                worker.process.log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let unexpected: Vec<&String> = copies
        .keys()
        .filter(|written| !expected.contains(written))
        .collect();
    let twice: usize = copies.values().map(|count| count - 1).sum();
    // Which of the two wrote lines twice: the source, reading lines again
    // from its last committed position, or the sink, consuming records
    // again from its group's last committed offset.
    let records = broker.cli_ok(&["consume", TOPIC], None);
    let records: Vec<&str> = records.lines().collect();
    let distinct: std::collections::HashSet<&str> = records.iter().copied().collect();
    eprintln!(
        "{} lines in the output for {LINES} appended: {missing} missing, {twice} written \
         again after the restart ({} records in the topic, of which {} again), done at {:?}",
        copies.values().sum::<usize>(),
        records.len(),
        records.len() - distinct.len(),
        started.elapsed()
    );
    assert!(
        missing == 0 && unexpected.is_empty(),
        "{missing} of {LINES} input lines are not in the output within {STEP_TIMEOUT:?}; \
         lines that no input has: {unexpected:?}\n{}",
        worker.process.log_tail()
    );

    // Stopped, the connectors have committed where they are, and the
    // worker tells it: the sink's consumer group at the end of each
    // partition of the topic, the source at the end of the input file.
    for name in ["lines-in", "lines-out"] {
        worker.call("PUT", &format!("/connectors/{name}/stop"), None, 204);
        worker.wait_until_stopped(name);
    }
    let description: serde_json::Value = serde_json::from_str(
        &broker.cli_ok(&["topic", "describe", TOPIC, "--format", "json"], None),
    )
    .unwrap();
    let log_ends: BTreeMap<u64, u64> = description["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|partition| {
            (
                partition["partition"].as_u64().unwrap(),
                partition["log_end"].as_u64().unwrap(),
            )
        })
        .collect();
    let offsets = worker.call("GET", "/connectors/lines-out/offsets", None, 200);
    let committed: BTreeMap<u64, u64> = serde_json::from_str::<serde_json::Value>(&offsets)
        .unwrap()["offsets"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|entry| {
            (
                entry["partition"]["kafka_partition"].as_u64().unwrap(),
                entry["offset"]["kafka_offset"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        committed, log_ends,
        "the sink's committed offsets ({offsets}) are not the topic's ends"
    );
    let offsets = worker.call("GET", "/connectors/lines-in/offsets", None, 200);
    let position = serde_json::from_str::<serde_json::Value>(&offsets).unwrap()["offsets"][0]
        ["offset"]["position"]
        .as_u64();
    let size = std::fs::metadata(&input).unwrap().len();
    assert_eq!(
        position,
        Some(size),
        "the source's committed offset ({offsets}) is not the end of the input file"
    );
    // Reset, the sink's consumer group is gone.
    worker.call("DELETE", "/connectors/lines-out/offsets", None, 200);
    let offsets = worker.call("GET", "/connectors/lines-out/offsets", None, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&offsets).unwrap()["offsets"],
        serde_json::json!([]),
        "the sink's offsets after a reset: {offsets}"
    );
}
