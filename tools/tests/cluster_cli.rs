//! The native client and the CLI through any node of a cluster: `sluice
//! cluster local` starts three nodes; a topic of six partitions (two led by
//! each node) is created through node 0, then used through node 1 only:
//! `sluice produce`, `sluice consume` and `sluice topic describe` reach
//! every partition's leader, and so does the native producer.

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use common::cluster::{LocalCluster, WAIT};
use sluice_net::client::{Client, Producer, ProducerOptions};

const TOPIC: &str = "spread";
const PARTITIONS: u32 = 6;
const NODES: u32 = 3;

/// `topic describe --format json` of the topic through node `node`, if
/// it succeeds.
fn describe(cluster: &LocalCluster, node: u32) -> Option<serde_json::Value> {
    let output = cluster.cli(
        node,
        &["topic", "describe", TOPIC, "--format", "json"],
        None,
    );
    if !output.status.success() {
        return None;
    }
    serde_json::from_slice(&output.stdout).ok()
}

/// Each partition's (leader, log end, error) from a JSON description.
fn partitions(description: &serde_json::Value) -> BTreeMap<u32, (u64, u64, Option<String>)> {
    description["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|partition| {
            (
                partition["partition"].as_u64().unwrap() as u32,
                (
                    partition["leader"].as_u64().unwrap_or(u64::MAX),
                    partition["log_end"].as_u64().unwrap(),
                    partition["error"].as_str().map(str::to_string),
                ),
            )
        })
        .collect()
}

#[test]
fn the_cli_and_the_native_client_reach_every_partition_through_one_node() {
    let cluster = LocalCluster::start(NODES);
    // Place the topic once every node has registered as a live broker.
    let deadline = Instant::now() + WAIT;
    loop {
        let output = cluster.cli(0, &["cluster", "describe", "--format", "json"], None);
        let registered = serde_json::from_slice::<serde_json::Value>(&output.stdout)
            .ok()
            .and_then(|cluster| cluster["nodes"].as_array().cloned())
            .map_or(0, |nodes| {
                nodes
                    .iter()
                    .filter(|node| node["registered"] == true && node["fenced"] == false)
                    .count()
            });
        if registered == NODES as usize {
            break;
        }
        assert!(Instant::now() < deadline, "the nodes did not all register");
        std::thread::sleep(Duration::from_millis(100));
    }
    cluster.cli_ok(
        0,
        &[
            "topic",
            "create",
            TOPIC,
            "--partitions",
            &PARTITIONS.to_string(),
        ],
        None,
    );

    // Every node knows the topic and every partition describes without an
    // error through node 1 once each leader has applied the creation.
    let deadline = Instant::now() + WAIT;
    let described = loop {
        if let Some(description) = describe(&cluster, 1) {
            let partitions = partitions(&description);
            if partitions.len() == PARTITIONS as usize
                && partitions.values().all(|(_, _, error)| error.is_none())
            {
                break partitions;
            }
        }
        assert!(
            Instant::now() < deadline,
            "topic {TOPIC} does not describe cleanly through node 1: {:?}",
            describe(&cluster, 1)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let leaders: BTreeSet<u64> = described.values().map(|(leader, _, _)| *leader).collect();
    assert_eq!(
        leaders,
        (0..u64::from(NODES)).collect(),
        "the partitions are spread over every node"
    );
    assert!(described.values().all(|(_, end, _)| *end == 0));

    // 60 lines in turn over the 6 partitions, then 3 more to partition 5,
    // all through node 1.
    let lines: Vec<String> = (0..60).map(|index| format!("line-{index}")).collect();
    let input = lines.join("\n") + "\n";
    let produced = cluster.cli(1, &["produce", TOPIC], Some(input.as_bytes()));
    assert!(
        produced.status.success(),
        "produce through node 1: {}",
        String::from_utf8_lossy(&produced.stderr)
    );
    assert!(
        String::from_utf8_lossy(&produced.stderr).contains("produced 60 records"),
        "{}",
        String::from_utf8_lossy(&produced.stderr)
    );
    let extra = ["extra-0", "extra-1", "extra-2"];
    cluster.cli_ok(
        1,
        &["produce", TOPIC, "--partition", "5"],
        Some((extra.join("\n") + "\n").as_bytes()),
    );

    // Read back through node 1: every line, once.
    let consumed = cluster.cli_ok(1, &["consume", TOPIC], None);
    let mut got: Vec<&str> = consumed.lines().collect();
    got.sort_unstable();
    let mut expected: Vec<&str> = lines.iter().map(String::as_str).chain(extra).collect();
    expected.sort_unstable();
    assert_eq!(got, expected);
    // One partition led elsewhere, alone, in order.
    let consumed = cluster.cli_ok(1, &["consume", TOPIC, "--partition", "5"], None);
    let last: Vec<&str> = consumed.lines().skip(10).collect();
    assert_eq!(last, extra);

    // LOG-END of every partition, from its leader, in JSON and text.
    let described = partitions(&describe(&cluster, 1).expect("describe through node 1"));
    for (partition, (_, end, error)) in &described {
        assert_eq!(*error, None, "partition {partition}");
        let expected = if *partition == 5 { 13 } else { 10 };
        assert_eq!(*end, expected, "log end of partition {partition}");
    }
    let text = cluster.cli_ok(1, &["topic", "describe", TOPIC], None);
    assert!(
        !text.contains("ERROR") && !text.contains("not the partition's leader"),
        "no partition error in:\n{text}"
    );

    // The native producer through node 2 alone, to every partition.
    let node_2 = cluster.native_addr(2);
    let offsets = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .make()
        .unwrap()
        .run(async move {
            let client = Client::connect(&node_2).await.unwrap();
            assert_eq!(client.broker().broker_id, 2);
            let producer = Producer::new(client.clone(), ProducerOptions::default());
            let deliveries: Vec<_> = (0..PARTITIONS * 20)
                .map(|index| {
                    let value = format!("native-{index}");
                    producer.send(TOPIC, Some(index % PARTITIONS), None, value.as_bytes(), &[])
                })
                .collect();
            producer.flush().await.unwrap();
            let mut offsets: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
            for delivery in deliveries {
                let stored = delivery.await.unwrap();
                offsets
                    .entry(stored.partition)
                    .or_default()
                    .push(stored.offset.unwrap());
            }
            offsets
        });
    for partition in 0..PARTITIONS {
        let first = if partition == 5 { 13 } else { 10 };
        assert_eq!(
            offsets[&partition],
            (first..first + 20).collect::<Vec<u64>>(),
            "offsets of partition {partition}"
        );
    }
    // Every node describes the same log ends.
    for node in 0..NODES {
        let described = partitions(&describe(&cluster, node).expect("describe"));
        for (partition, (_, end, error)) in &described {
            assert_eq!(*error, None, "partition {partition} through node {node}");
            let expected = if *partition == 5 { 33 } else { 30 };
            assert_eq!(*end, expected, "partition {partition} through node {node}");
        }
    }

    // Replicas placed by hand, through node 1: where they were put. A
    // replication factor above 1, or a node that is no broker, is refused
    // with why.
    cluster.cli_ok(
        1,
        &[
            "topic",
            "create",
            "by-hand",
            "--replica-assignment",
            "2,2,0",
        ],
        None,
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let description = cluster.cli(
            0,
            &["topic", "describe", "by-hand", "--format", "json"],
            None,
        );
        let leaders: Option<Vec<u64>> =
            serde_json::from_slice::<serde_json::Value>(&description.stdout)
                .ok()
                .and_then(|topic| {
                    topic["partitions"]
                        .as_array()?
                        .iter()
                        .map(|partition| partition["leader"].as_u64())
                        .collect()
                });
        if leaders.as_deref() == Some(&[2, 2, 0]) {
            break;
        }
        assert!(Instant::now() < deadline, "by-hand leaders: {leaders:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let refused = |args: &[&str], why: &str| {
        let output = cluster.cli(2, args, None);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && stderr.contains(why),
            "{args:?}: {stderr}"
        );
    };
    refused(
        &[
            "topic",
            "create",
            "replicated",
            "-p",
            "3",
            "--replication-factor",
            "4",
        ],
        "there are 3 live brokers",
    );
    refused(
        &["topic", "create", "nowhere", "--replica-assignment", "7"],
        "not a live broker",
    );
    refused(
        &["topic", "create", "twice", "--replica-assignment", "0:0"],
        "each node at most once",
    );
}
