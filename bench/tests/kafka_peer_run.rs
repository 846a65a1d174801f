//! A short real run of the `kafka` driver (librdkafka) against noida-db's
//! Kafka service, started by the test in a temporary directory: the Kafka
//! driver's check until Sluice's own Kafka listener is in (`kafka_run.rs`).
//!
//! Skipped, saying so, where noida-db is not installed as
//! `bench/peers/noida.sh install` installs it (under `$PEERS_DIR`, default
//! `/opt/sluice-bench-peers`).

mod common;

use std::{
    net::TcpStream,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use sluice_bench::{run::available_cores, DriverKind, RunOptions, Workload};

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

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

/// The server, killed when the test ends however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_short_run_against_a_kafka_compatible_peer() {
    let Some(binary) = noida_binary() else {
        eprintln!("skipped: noida-db is not installed (bench/peers/noida.sh install)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = Server(
        Command::new(binary)
            .arg("start")
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--host", "127.0.0.1", "--only", "kafka"])
            .args(["--kafka-port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("noida-db starts"),
    );
    let address = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&address).is_err() {
        assert!(Instant::now() < deadline, "noida-db never listened");
        std::thread::sleep(Duration::from_millis(20));
    }

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
