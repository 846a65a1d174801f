//! Black box: `sluice txn` through any node of a three-node cluster
//! (`sluice cluster local`), whose transactional ids are coordinated by
//! different nodes.
//!
//! - `list` through one node shows every id of the cluster, each with the
//!   node that coordinates it: the client asks every node;
//! - `describe` through a node that does not coordinate an id finds the
//!   one that does;
//! - `abort` through a node that does not coordinate the id aborts it;
//! - `abort --topic --partition` through a node that does not lead the
//!   partition writes the marker on its leader.

mod common;
mod kafka_common;

use std::collections::BTreeSet;

use common::cluster::{wait_for, wait_until, LocalCluster};
use kafka_common::{produce, producer_for, KafkaProducer, Record, PATIENCE};
use rdkafka::producer::Producer;

const NODES: u32 = 3;
const TOPIC: &str = "payments";
/// One partition led by each node, in all likelihood; the test checks.
const PARTITIONS: u32 = 3;
/// Enough ids that the three coordinators each get some.
const IDS: usize = 9;

fn json(cluster: &LocalCluster, node: u32, args: &[&str]) -> serde_json::Value {
    let mut args = args.to_vec();
    args.extend(["--format", "json"]);
    let stdout = cluster.cli_ok(node, &args, None);
    serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("{args:?}: {error}: {stdout}"))
}

/// Every transactional id listed through `node`, with its (coordinator,
/// producer id, state).
fn listed(cluster: &LocalCluster, node: u32) -> Vec<(String, u64, i64, String)> {
    json(cluster, node, &["txn", "list"])
        .as_array()
        .expect("a list")
        .iter()
        .map(|listing| {
            (
                listing["transactional_id"].as_str().unwrap().to_string(),
                listing["coordinator"].as_u64().unwrap(),
                listing["producer_id"].as_i64().unwrap(),
                listing["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A transactional producer with a transaction open on `partition`.
fn open_transaction(bootstrap: &str, id: &str, partition: i32) -> KafkaProducer {
    let producer = producer_for(
        bootstrap,
        &[
            ("transactional.id", id),
            ("transaction.timeout.ms", "600000"),
        ],
    );
    producer
        .init_transactions(PATIENCE)
        .unwrap_or_else(|error| {
            panic!(
                "init_transactions of {id}: {error}; last log lines:\n{}",
                producer.context().log_tail(40)
            )
        });
    producer.begin_transaction().expect("begin_transaction");
    let sent = produce(
        &producer,
        TOPIC,
        Some(partition),
        &[Record::new(None, Some(id.as_bytes()))],
    );
    assert!(
        matches!(sent.as_slice(), [Ok(_)]),
        "{id}: {sent:?}; last log lines:\n{}",
        producer.context().log_tail(40)
    );
    producer
}

#[test]
fn every_node_lists_describes_and_aborts_the_clusters_transactions() {
    let cluster = LocalCluster::start(NODES);
    cluster.wait_for_brokers(NODES);
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
    // Each partition's leader, once every node describes it.
    let leaders: Vec<u64> = wait_until(
        || {
            let output = cluster.cli(1, &["topic", "describe", TOPIC, "--format", "json"], None);
            let described: serde_json::Value =
                serde_json::from_slice(&output.stdout).map_err(|error| error.to_string())?;
            let leaders: Option<Vec<u64>> = described["partitions"]
                .as_array()
                .ok_or("no partitions")?
                .iter()
                .map(|partition| partition["leader"].as_u64())
                .collect();
            leaders
                .filter(|leaders| leaders.len() == PARTITIONS as usize)
                .ok_or_else(|| format!("{described}"))
        },
        "every partition has a leader",
    );

    // Transactions open on every partition, by ids spread over the
    // coordinators.
    let bootstrap = cluster.kafka_bootstrap();
    let ids: Vec<String> = (0..IDS).map(|index| format!("pay-{index}")).collect();
    let producers: Vec<KafkaProducer> = ids
        .iter()
        .enumerate()
        .map(|(index, id)| open_transaction(&bootstrap, id, (index as u32 % PARTITIONS) as i32))
        .collect();

    // Listed through each node, the same: every id, ongoing.
    let through_0 = listed(&cluster, 0);
    let shown: Vec<&str> = through_0.iter().map(|(id, ..)| id.as_str()).collect();
    assert_eq!(shown, ids, "{through_0:?}");
    assert!(
        through_0.iter().all(|(.., state)| state == "Ongoing"),
        "{through_0:?}"
    );
    let coordinators: BTreeSet<u64> = through_0.iter().map(|(_, node, ..)| *node).collect();
    assert!(
        coordinators.len() > 1,
        "every id is coordinated by one node: {through_0:?}"
    );
    for node in 1..NODES {
        assert_eq!(listed(&cluster, node), through_0, "through node {node}");
    }

    // Described through every node, by its coordinator.
    for (id, coordinator, producer_id, _) in &through_0 {
        for node in 0..NODES {
            let described = json(&cluster, node, &["txn", "describe", id]);
            assert_eq!(described["coordinator"], *coordinator, "{described}");
            assert_eq!(described["producer_id"], *producer_id, "{described}");
            assert_eq!(described["state"], "Ongoing", "{described}");
        }
    }

    // Aborted through a node that does not coordinate it.
    let (id, coordinator, _, _) = through_0[0].clone();
    let elsewhere = (0..NODES as u64).find(|node| *node != coordinator).unwrap() as u32;
    let said = cluster.cli(elsewhere, &["txn", "abort", &id], None);
    assert!(said.status.success(), "{said:?}");
    let said = String::from_utf8(said.stderr).unwrap();
    assert!(
        said.contains(&format!("its coordinator, node {coordinator}")),
        "{said}"
    );
    wait_for(
        || {
            listed(&cluster, elsewhere)
                .iter()
                .any(|(listed, .., state)| listed == &id && state == "CompleteAbort")
        },
        &format!("{id} is CompleteAbort"),
    );
    assert!(producers[0].commit_transaction(PATIENCE).is_err());

    // A partition's transaction aborted by a marker through a node that
    // does not lead the partition: pay-1's, on partition 1.
    let (id, _, producer_id, _) = through_0[1].clone();
    let partition = 1;
    let leader = leaders[partition];
    let elsewhere = (0..NODES as u64).find(|node| *node != leader).unwrap() as u32;
    let described = json(&cluster, elsewhere, &["txn", "describe", &id]);
    assert_eq!(
        described["partitions"],
        serde_json::json!([{"topic": TOPIC, "partition": partition}])
    );
    let epoch = described["producer_epoch"].as_i64().unwrap().to_string();
    let producer_id = producer_id.to_string();
    let partition = partition.to_string();
    let abort = [
        "txn",
        "abort",
        "--topic",
        TOPIC,
        "--partition",
        &partition,
        "--producer-id",
        &producer_id,
        "--producer-epoch",
        &epoch,
    ];
    let said = cluster.cli(elsewhere, &abort, None);
    assert!(said.status.success(), "{said:?}");
    let said = String::from_utf8(said.stderr).unwrap();
    assert!(said.contains(&format!("led by node {leader}")), "{said}");
    // No transaction of it is open there now.
    let again = cluster.cli(elsewhere, &abort, None);
    assert!(!again.status.success());
    let again = String::from_utf8(again.stderr).unwrap();
    assert!(
        again.contains("no transaction of the producer is open"),
        "{again}"
    );
    drop(producers);
}
