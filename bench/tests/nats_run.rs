//! A short real run of the `nats` driver against a `nats-server` started by
//! the test, JetStream with file storage in a temporary directory.
//!
//! Where `nats-server` is not installed (Debian package `nats-server`) the
//! test fails under `SLUICE_REQUIRE_PEERS=1` (as in CI) and is otherwise
//! skipped, saying so.
//!
//! The server chooses its port (`-p -1`) and says which in its ports file.

mod common;

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{peer_installed, runs, Server};
use sluice_bench::{run::available_cores, DriverKind, RunOptions, Workload};

/// How long the server may take to write its ports file.
const PORTS_FILE_TIMEOUT: Duration = Duration::from_secs(10);

/// The client address in the ports file that `nats-server --ports_file_dir
/// <dir>` writes once it listens: `{"nats":["nats://127.0.0.1:4222"]}` in
/// `nats-server_<pid>.ports`.
fn client_address(server: &mut Server, ports_dir: &Path) -> String {
    let path = ports_dir.join(format!("nats-server_{}.ports", server.0.id()));
    let deadline = Instant::now() + PORTS_FILE_TIMEOUT;
    loop {
        // Read until it parses: the server does not write it by a rename.
        let ports = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok());
        if let Some(ports) = ports {
            let url = ports["nats"][0]
                .as_str()
                .unwrap_or_else(|| panic!("no client address in {ports}"));
            return url.strip_prefix("nats://").unwrap_or(url).to_string();
        }
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("nats-server exited while starting: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "nats-server wrote no ports file in {PORTS_FILE_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_short_run_against_a_real_nats_jetstream() {
    let installed = runs("nats-server", &["--version"]);
    if !peer_installed("nats-server", installed, "apt-get install -y nats-server") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("jetstream");
    let mut server = Server(
        Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", "-1", "--jetstream"])
            .arg("--store_dir")
            .arg(&store)
            .arg("--ports_file_dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts"),
    );
    let address = client_address(&mut server, dir.path());
    server.wait_until_listening("nats-server", &address);

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
