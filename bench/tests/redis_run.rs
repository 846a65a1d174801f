//! A short real run of the `redis` driver against a `redis-server` started
//! by the test, durable (`appendfsync always`), in a temporary directory.
//!
//! Where `redis-server` is not installed (Debian package `redis-server`)
//! the test fails under `SLUICE_REQUIRE_PEERS=1` (as in CI) and is
//! otherwise skipped, saying so.
//!
//! Redis cannot choose its own port and report it (port 0 turns its TCP
//! listener off), so it is given one the kernel handed out and took back.

mod common;

use std::{
    net::TcpStream,
    process::{Command, Stdio},
    time::Duration,
};

use common::{peer_installed, runs, unused_port, Server};
use sluice_bench::{run::available_cores, DriverKind, RunOptions, Workload};

#[test]
fn a_short_run_against_a_real_redis() {
    let installed = runs("redis-server", &["--version"]);
    if !peer_installed("redis-server", installed, "apt-get install -y redis-server") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = unused_port();
    let mut server = Server(
        Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .arg("--dir")
            .arg(dir.path())
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .args(["--save", "", "--daemonize", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts"),
    );
    let address = format!("127.0.0.1:{port}");
    server.wait_until_listening("redis-server", &address);

    let workload = Workload::parse(
        r#"
        name = "redis-test-run"
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
        driver: DriverKind::Redis,
        brokers: address.clone(),
        cores: vec![cpu],
        drain: Duration::from_secs(5),
        progress: true,
        delete_topics: true,
        command: vec!["test".into()],
        durability: Some("always".into()),
    })
    .expect("the run completes");
    print!("{}", result.table());

    assert_eq!(result.driver, "redis");
    assert_eq!(result.durability.as_deref(), Some("always"));
    assert!(result.table().contains("durability always"));
    common::assert_a_clean_short_run(&result);
    let ack = &result.produce_ack_latency;
    assert!(
        ack.max_us < 1_000_000.0,
        "ack max {} us on loopback",
        ack.max_us
    );

    // The streams were deleted at the end: the server holds no keys.
    let mut probe = TcpStream::connect(&address).unwrap();
    use std::io::{Read, Write};
    probe.write_all(b"*1\r\n$6\r\nDBSIZE\r\n").unwrap();
    let mut reply = [0u8; 16];
    let read = probe.read(&mut reply).unwrap();
    assert_eq!(&reply[..read], b":0\r\n");
    drop(server);
}
