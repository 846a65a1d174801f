//! A short real run of the `nats` driver against a `nats-server` started by
//! the test, JetStream with file storage in a temporary directory.
//!
//! Skipped, saying so, where `nats-server` is not installed (Debian
//! package `nats-server`).

mod common;

use std::{
    net::TcpStream,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use sluice_bench::{run::available_cores, DriverKind, RunOptions, Workload};

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The server, killed when the test ends however it ends.
struct NatsServer(Child);

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_short_run_against_a_real_nats_jetstream() {
    if Command::new("nats-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        eprintln!("skipped: nats-server is not installed (apt-get install -y nats-server)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = NatsServer(
        Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "--jetstream"])
            .arg("--store_dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts"),
    );
    let address = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&address).is_err() {
        assert!(Instant::now() < deadline, "nats-server never listened");
        std::thread::sleep(Duration::from_millis(20));
    }

    let workload = Workload::parse(
        r#"
        name = "nats-test-run"
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
        driver: DriverKind::Nats,
        brokers: address,
        cores: vec![cpu],
        drain: Duration::from_secs(5),
        progress: true,
        delete_topics: true,
        command: vec!["test".into()],
        durability: Some("page cache".into()),
    })
    .expect("the run completes");
    print!("{}", result.table());

    assert_eq!(result.driver, "nats");
    common::assert_a_clean_short_run(&result);
    drop(server);
}
