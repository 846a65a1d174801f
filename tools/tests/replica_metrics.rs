//! Replication's figures on `/metrics`, on three real nodes (`sluice
//! cluster local`): a follower killed with SIGKILL shows on its leader as
//! lagging, in offsets and in time, the partition as under-replicated and
//! its in-sync set shrunk; started again, its lag returns to 0 and the
//! in-sync set expands; the kill of the leader moves the elections
//! counter of the node that takes over.

mod common;
mod kafka_common;

use std::{collections::BTreeSet, time::Duration};

use common::cluster::{create_topic, metadata, wait_until, LocalCluster, Metrics, PartitionSeen};
use kafka_common::{produce_ok, producer_for, Record};

const TOPIC: &str = "watched";
const NODES: u32 = 3;

/// Records written while the follower is down.
const WHILE_DOWN: usize = 200;

#[test]
fn a_followers_lag_in_sync_changes_and_elections_show_on_metrics() {
    let mut cluster = LocalCluster::start(NODES);
    let all: BTreeSet<i32> = (0..NODES as i32).collect();
    cluster.wait_for_brokers(NODES);
    create_topic(
        &cluster.kafka_bootstrap(),
        TOPIC,
        1,
        3,
        &[("min.insync.replicas", "2")],
    )
    .unwrap();
    let seen = wait_until(
        || match partition(&cluster, 0) {
            Ok(seen) if seen.in_sync == all && seen.leader >= 0 => Ok(seen),
            Ok(seen) => Err(format!("{seen:?}")),
            Err(error) => Err(error),
        },
        "every replica of the new partition is in sync",
    );
    let leader = seen.leader as u32;
    let follower = (0..NODES).find(|node| *node != leader).unwrap();
    let other = (0..NODES)
        .find(|node| *node != leader && *node != follower)
        .unwrap();
    let follower_label = follower.to_string();
    let lag = |metrics: &Metrics, name: &str| {
        metrics.get(
            name,
            &[
                ("topic", TOPIC),
                ("partition", "0"),
                ("follower", &follower_label),
            ],
        )
    };

    let producer = producer_for(&cluster.kafka_bootstrap(), &[("acks", "all")]);
    let records: Vec<Record> = (0..WHILE_DOWN)
        .map(|index| Record::new(None, Some(format!("v{index}").as_bytes())))
        .collect();
    produce_ok(&producer, TOPIC, Some(0), &records[..10]);
    // Every follower caught up, on the leader's view of them.
    let before = wait_until(
        || {
            let metrics = cluster.metrics(leader)?;
            for node in [follower, other] {
                let lags = ["sluice_follower_lag_offsets", "sluice_follower_lag_ms"].map(|name| {
                    metrics.get(
                        name,
                        &[
                            ("topic", TOPIC),
                            ("partition", "0"),
                            ("follower", &node.to_string()),
                        ],
                    )
                });
                if lags != [Ok(0.0), Ok(0.0)] {
                    return Err(format!("follower {node}: lag {lags:?}"));
                }
            }
            let gauges = [
                "sluice_leader_partitions_under_replicated",
                "sluice_leader_partitions_under_min_insync",
            ]
            .map(|name| metrics.get(name, &[]));
            match gauges {
                [Ok(0.0), Ok(0.0)] => Ok(metrics),
                other => Err(format!("under-replicated, under min in sync: {other:?}")),
            }
        },
        "the leader sees both followers caught up and nothing under-replicated",
    );
    assert_eq!(before.get("sluice_leader_partitions", &[]), Ok(1.0));
    assert_eq!(
        before.get(
            "sluice_leader_in_sync_replicas",
            &[("topic", TOPIC), ("partition", "0")]
        ),
        Ok(3.0)
    );
    let shrinks = before.get("sluice_in_sync_shrinks_total", &[]).unwrap();
    let expands = before.get("sluice_in_sync_expands_total", &[]).unwrap();

    cluster.kill9(follower);
    produce_ok(&producer, TOPIC, Some(0), &records[10..]);
    let down = wait_until(
        || {
            let metrics = cluster.metrics(leader)?;
            let offsets = lag(&metrics, "sluice_follower_lag_offsets")?;
            let under = metrics.get("sluice_leader_partitions_under_replicated", &[])?;
            let shrunk = metrics.get("sluice_in_sync_shrinks_total", &[])?;
            match offsets >= (WHILE_DOWN - 10) as f64 && under == 1.0 && shrunk > shrinks {
                true => Ok(metrics),
                false => Err(format!(
                    "lag {offsets} offsets, {under} under-replicated, {shrunk} shrinks"
                )),
            }
        },
        &format!("the leader shows follower {follower}, killed, lagging and the partition under-replicated"),
    );
    assert_eq!(
        down.get(
            "sluice_leader_in_sync_replicas",
            &[("topic", TOPIC), ("partition", "0")]
        ),
        Ok(2.0)
    );
    assert_eq!(
        down.get("sluice_leader_partitions_under_min_insync", &[]),
        Ok(0.0),
        "two of min.insync.replicas=2 in sync"
    );
    assert_eq!(
        down.get("sluice_in_sync_expands_total", &[]),
        Ok(expands),
        "nothing joined"
    );
    let other_label = other.to_string();
    assert_eq!(
        down.get(
            "sluice_follower_lag_offsets",
            &[
                ("topic", TOPIC),
                ("partition", "0"),
                ("follower", &other_label)
            ]
        ),
        Ok(0.0),
        "the follower that stayed up holds everything"
    );
    // Its lag in time grows while it is down.
    let lag_ms = lag(&down, "sluice_follower_lag_ms").unwrap();
    assert!(lag_ms > 0.0, "lag {lag_ms} ms");
    std::thread::sleep(Duration::from_millis(500));
    let later = lag(&cluster.metrics(leader).unwrap(), "sluice_follower_lag_ms").unwrap();
    assert!(later >= lag_ms + 400.0, "lag {lag_ms} ms, then {later} ms");

    cluster.restart(follower, &[]);
    let back = wait_until(
        || {
            let metrics = cluster.metrics(leader)?;
            let lags = [
                lag(&metrics, "sluice_follower_lag_offsets")?,
                lag(&metrics, "sluice_follower_lag_ms")?,
            ];
            let under = metrics.get("sluice_leader_partitions_under_replicated", &[])?;
            let expanded = metrics.get("sluice_in_sync_expands_total", &[])?;
            match lags == [0.0, 0.0] && under == 0.0 && expanded > expands {
                true => Ok(metrics),
                false => Err(format!(
                    "lag {lags:?}, {under} under-replicated, {expanded} expansions"
                )),
            }
        },
        &format!("follower {follower}, started again, caught up and back in the in-sync set"),
    );
    assert_eq!(
        back.get(
            "sluice_leader_in_sync_replicas",
            &[("topic", TOPIC), ("partition", "0")]
        ),
        Ok(3.0)
    );
    wait_until(
        || match partition(&cluster, other) {
            Ok(seen) if seen.in_sync == all => Ok(()),
            Ok(seen) => Err(format!("{seen:?}")),
            Err(error) => Err(error),
        },
        "every node's metadata has the follower back in sync",
    );

    // Each survivor's elections so far; the one that takes over counts one
    // more.
    let taken_before = |node: u32| {
        cluster
            .metrics(node)
            .unwrap()
            .get("sluice_leaderships_taken_total", &[])
            .unwrap()
    };
    let survivors = [
        (follower, taken_before(follower)),
        (other, taken_before(other)),
    ];
    cluster.kill9(leader);
    let new_leader = wait_until(
        || match partition(&cluster, other) {
            Ok(seen) if seen.leader >= 0 && seen.leader as u32 != leader => Ok(seen.leader as u32),
            Ok(seen) => Err(format!("{seen:?}")),
            Err(error) => Err(error),
        },
        &format!("a new leader after the kill of node {leader}"),
    );
    for (node, taken) in survivors {
        let now = wait_until(
            || {
                let metrics = cluster.metrics(node)?;
                let now = metrics.get("sluice_leaderships_taken_total", &[])?;
                let leads = metrics.get("sluice_leader_partitions", &[])?;
                match (node == new_leader, now - taken, leads) {
                    (true, 1.0, 1.0) | (false, 0.0, 0.0) => Ok(now),
                    got => Err(format!(
                        "(new leader, elections since, partitions led): {got:?}"
                    )),
                }
            },
            &format!("node {node} counts its election (node {new_leader} took over)"),
        );
        eprintln!("node {node}: {now} elections taken");
    }
    // The new leader sees the old one lagging, itself leading.
    let leader_label = leader.to_string();
    wait_until(
        || {
            let metrics = cluster.metrics(new_leader)?;
            let offsets = metrics.get(
                "sluice_follower_lag_offsets",
                &[
                    ("topic", TOPIC),
                    ("partition", "0"),
                    ("follower", &leader_label),
                ],
            )?;
            match offsets {
                0.0 => Err("no lag yet".to_string()),
                offsets => Ok(offsets),
            }
        },
        &format!("node {new_leader} shows node {leader}, killed, lagging"),
    );
}

/// Partition 0 of [`TOPIC`] as node `node`'s Kafka Metadata gives it.
fn partition(cluster: &LocalCluster, node: u32) -> Result<PartitionSeen, String> {
    let seen = metadata(&cluster.kafka_addr(node), Some(TOPIC))
        .ok_or_else(|| format!("node {node} does not answer or does not know {TOPIC}"))?;
    seen.partitions
        .into_iter()
        .next()
        .ok_or_else(|| format!("node {node} gives no partition of {TOPIC}"))
}
