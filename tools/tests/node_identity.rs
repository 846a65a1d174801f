//! Black box: a data directory records its node and cluster at the first
//! start, Kafka clients see that cluster id and node id, and a start with
//! another node id is refused with one line that says whose data it is,
//! changing nothing.

mod common;
mod kafka_common;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{Broker, ANY_PORT, SLUICE};
use kafka_common::*;

/// The identity file's `key=value` lines.
fn identity(dir: &std::path::Path) -> std::collections::HashMap<String, String> {
    std::fs::read_to_string(dir.join("node.identity"))
        .expect("the data directory has its identity file")
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

fn cluster_seen_by_kafka(broker: &Broker) -> Cluster {
    let admin = admin(broker);
    describe_cluster(&admin).unwrap_or_else(|error| {
        panic!(
            "DescribeCluster: {error}; last log lines:\n{}",
            admin.inner().context().log_tail(40)
        )
    })
}

#[test]
fn a_data_directory_belongs_to_one_node_of_one_cluster() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start_with(data_dir.path(), 1, &[("SLUICE_NODE_ID", "3")]);
    let recorded = identity(data_dir.path());
    assert_eq!(recorded.get("node.id").map(String::as_str), Some("3"));
    let cluster_id = recorded["cluster.id"].clone();
    assert_eq!(cluster_id.len(), 22, "{cluster_id}");

    let cluster = cluster_seen_by_kafka(&broker);
    assert_eq!(cluster.cluster_id.as_deref(), Some(cluster_id.as_str()));
    assert_eq!(cluster.controller, Some(3), "{cluster:?}");
    assert_eq!(
        cluster.nodes.iter().map(|node| node.0).collect::<Vec<_>>(),
        [3]
    );
    broker.stop();

    // Another node id: refused, in one line naming the node and cluster the
    // directory belongs to, and the file is as it was.
    let before = std::fs::read(data_dir.path().join("node.identity")).unwrap();
    let mut child = Command::new(SLUICE)
        .args(["serve", "--data-dir"])
        .arg(data_dir.path())
        .args([
            "--node-id",
            "4",
            "--native-addr",
            ANY_PORT,
            "--kafka-addr",
            ANY_PORT,
            "--admin-addr",
            "off",
            "--cores",
            "1",
        ])
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "a broker on another node's data did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|line| !line.is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    for part in ["node 3", "not node 4", &cluster_id, "--node-id 3"] {
        assert!(lines[0].contains(part), "{part:?} in {stderr}");
    }
    assert_eq!(
        std::fs::read(data_dir.path().join("node.identity")).unwrap(),
        before
    );

    // Its own id again: the same cluster.
    broker.restart();
    assert_eq!(
        cluster_seen_by_kafka(&broker).cluster_id.as_deref(),
        Some(cluster_id.as_str())
    );
}

#[test]
fn every_data_directory_starts_a_cluster_of_its_own() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let a = Broker::start(first.path(), 1);
    let b = Broker::start(second.path(), 1);
    let (a_id, b_id) = (
        cluster_seen_by_kafka(&a).cluster_id,
        cluster_seen_by_kafka(&b).cluster_id,
    );
    assert!(a_id.is_some() && b_id.is_some());
    assert_ne!(a_id, b_id);
    assert_eq!(
        identity(first.path()).get("node.id").map(String::as_str),
        Some("0"),
        "the default node id"
    );
}
