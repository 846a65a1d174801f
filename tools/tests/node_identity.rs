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

/// Runs `sluice serve` on `data_dir` with `args`, which it must refuse: the
/// one line it prints.
fn refused(data_dir: &std::path::Path, args: &[&str]) -> String {
    let mut child = Command::new(SLUICE)
        .args(["serve", "--data-dir"])
        .arg(data_dir)
        .args(args)
        .args([
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
            "sluice serve {args:?} did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success(), "{args:?} served");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|line| !line.is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line for {args:?}: {stderr}");
    lines[0].to_string()
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
    let line = refused(data_dir.path(), &["--node-id", "4"]);
    for part in ["node 3", "not node 4", &cluster_id, "--node-id 3"] {
        assert!(line.contains(part), "{part:?} in {line}");
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

#[test]
fn a_quorum_that_cannot_be_is_refused_in_one_line() {
    let data_dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            vec!["--voters", "1@a:1,2@b:1"],
            "2 voters: a quorum has 1, 3 or 5",
        ),
        (
            vec!["--voters", "1@a:1,1@b:1,3@c:1"],
            "node 1 is a voter twice",
        ),
        (vec!["--voters", "one@a:1"], "is not ID@HOST:PORT"),
        (
            vec![
                "--node-id",
                "1",
                "--peer-addr",
                "127.0.0.1:9193",
                "--voters",
                "1@127.0.0.1:9999",
            ],
            "its --peer-addr is 127.0.0.1:9193",
        ),
    ];
    for (args, expected) in cases {
        let line = refused(data_dir.path(), &args);
        assert!(line.contains(expected), "{args:?}: {line}");
    }
    // Nothing was written for a node that never started.
    assert!(!data_dir.path().join("node.identity").exists());

    // This node as the whole quorum: it serves.
    let broker = Broker::start_with(
        data_dir.path(),
        1,
        &[
            ("SLUICE_NODE_ID", "1"),
            ("SLUICE_PEER_ADDR", "127.0.0.1:9193"),
            ("SLUICE_VOTERS", "1@127.0.0.1:9193"),
        ],
    );
    assert_eq!(cluster_seen_by_kafka(&broker).controller, Some(1));
    drop(broker);

    // A voter's data directory, its node no longer among the voters: its
    // quorum log would be left behind, so it does not start as a broker.
    let others = "2@127.0.0.1:9293,3@127.0.0.1:9393,4@127.0.0.1:9493";
    let line = refused(data_dir.path(), &["--node-id", "1", "--voters", others]);
    assert!(line.contains("node 1 is not among the voters"), "{line}");
}
