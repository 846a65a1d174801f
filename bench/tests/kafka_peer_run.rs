//! A short real run of the `kafka` driver (librdkafka) against noida-db's
//! Kafka service, started by the test in a temporary directory: the Kafka
//! driver's check until Sluice's own Kafka listener is in (`kafka_run.rs`).
//!
//! Where noida-db is not installed as `bench/peers/noida.sh install`
//! installs it (under `$PEERS_DIR`, default `/opt/sluice-bench-peers`) the
//! test fails under `SLUICE_REQUIRE_PEERS=1` (as in CI) and is otherwise
//! skipped, saying so.
//!
//! The server chooses its port (`--kafka-port 0`) and prints it.

mod common;

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use common::{peer_installed, Server};
use sluice_bench::{run::available_cores, DriverKind, RunOptions, Workload};

/// How long the server may take to print where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The binary pip installed: `<venv>/lib/python3.*/site-packages/noida_db/noida-db`.
fn noida_binary() -> Option<PathBuf> {
    let peers = std::env::var_os("PEERS_DIR").unwrap_or_else(|| "/opt/sluice-bench-peers".into());
    let lib = PathBuf::from(peers).join("noida/lib");
    std::fs::read_dir(&lib)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("site-packages/noida_db/noida-db"))
        .find(|path| path.is_file())
}

/// The Kafka service's address, from the line `  kafka   HOST:PORT` that
/// the server prints once it listens. Its standard output is drained to
/// the end, so that the server never blocks on a full pipe.
fn kafka_address(server: &mut Server) -> String {
    let stdout = server.0.stdout.take().expect("piped stdout");
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            // Nobody listens once the address is found.
            let _ = lines_tx.send(line);
        }
    });
    loop {
        let line = lines
            .recv_timeout(START_TIMEOUT)
            .unwrap_or_else(|_| panic!("noida-db printed no Kafka address in {START_TIMEOUT:?}"));
        let mut words = line.split_whitespace();
        if words.next() == Some("kafka") {
            return words.next().expect("an address after kafka").to_string();
        }
    }
}

#[test]
fn a_short_run_against_a_kafka_compatible_peer() {
    let binary = noida_binary();
    let installed = binary.is_some();
    if !peer_installed("noida-db", installed, "bench/peers/noida.sh install") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server(
        Command::new(binary.expect("installed"))
            .arg("start")
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--host", "127.0.0.1", "--only", "kafka"])
            .args(["--kafka-port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("noida-db starts"),
    );
    let address = kafka_address(&mut server);
    server.wait_until_listening("noida-db", &address);

    let workload = Workload::parse(
        r#"
        name = "kafka-peer-test-run"
        topics = 1
        partitions_per_topic = 2
        message_size = { distribution = "uniform", min = 50, max = 150 }
        keys = { space = 100 }
        producers_per_topic = 1
        consumers_per_topic = 2
        batch_bytes = 16384
        linger_ms = 1
        acks = "all"
        rate = 500
        warm_up_s = 1
        duration_s = 2
        "#,
    )
    .unwrap();
    let cpu = available_cores() - 1;
    let result = sluice_bench::run(RunOptions {
        workload,
        driver: DriverKind::Kafka,
        brokers: address,
        cores: vec![cpu],
        drain: Duration::from_secs(5),
        progress: true,
        delete_topics: true,
        command: vec!["test".into()],
        durability: Some("none".into()),
    })
    .expect("the run completes");
    print!("{}", result.table());

    assert_eq!(result.driver, "kafka");
    common::assert_a_clean_short_run(&result);
    drop(server);
}
