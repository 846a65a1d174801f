//! A compacted topic of three replicas on three real nodes (`sluice
//! cluster local`): a follower that was down while its leader compacted
//! catches up by copying the compacted log, gaps and all, comes back into
//! the in-sync set, and after the leader's kill the new leader serves the
//! latest record of each key.

mod common;
mod kafka_common;

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use common::cluster::{create_topic, metadata, wait_until, LocalCluster, PartitionSeen};
use kafka_common::{consumer_for, produce_ok, producer_for, read_to_end, Record};
use rdkafka::Offset;

const TOPIC: &str = "compacted-replicated";
const NODES: [u32; 3] = [0, 1, 2];
const KEYS: usize = 10;
const ROUNDS: usize = 8;

fn seen(cluster: &LocalCluster, node: u32) -> Result<PartitionSeen, String> {
    metadata(&cluster.kafka_addr(node), Some(TOPIC))
        .and_then(|seen| seen.partitions.into_iter().next())
        .ok_or_else(|| format!("node {node} does not know {TOPIC}"))
}

fn wait_in_sync(cluster: &LocalCluster, nodes: &[u32], in_sync: &BTreeSet<i32>, what: &str) {
    wait_until(
        || {
            for node in nodes {
                let partition = seen(cluster, *node)?;
                if partition.in_sync != *in_sync || !in_sync.contains(&partition.leader) {
                    return Err(format!("node {node} says {partition:?}"));
                }
            }
            Ok(())
        },
        what,
    );
}

#[test]
fn a_follower_catches_up_on_a_compacted_log_and_leads_it() {
    let mut cluster = LocalCluster::start_with(
        NODES.len() as u32,
        &[
            ("SLUICE_CLEANER_CHECK_INTERVAL_MS", "100"),
            ("SLUICE_CLEANER_BYTES_PER_S", "0"),
        ],
    );
    cluster.wait_for_brokers(NODES.len() as u32);
    let all: BTreeSet<i32> = NODES.iter().map(|node| *node as i32).collect();
    create_topic(
        &cluster.kafka_bootstrap(),
        TOPIC,
        1,
        3,
        &[
            ("cleanup.policy", "compact"),
            ("segment.ms", "100"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("min.insync.replicas", "2"),
        ],
    )
    .unwrap();
    wait_in_sync(
        &cluster,
        &NODES,
        &all,
        "the new topic's replicas are in sync",
    );
    let partition = seen(&cluster, 0).unwrap();
    let leader = partition.leader;
    let follower = *partition
        .replicas
        .iter()
        .find(|replica| **replica != leader)
        .unwrap();
    let other = *all
        .iter()
        .find(|node| **node != leader && **node != follower)
        .unwrap();

    cluster.kill9(follower as u32);
    let producer = producer_for(
        &cluster.kafka_bootstrap(),
        &[("acks", "all"), ("enable.idempotence", "true")],
    );
    let mut expected = BTreeMap::new();
    for round in 0..ROUNDS {
        let records: Vec<Record> = (0..KEYS)
            .map(|key| {
                let value = format!("round {round} of key {key}");
                expected.insert(format!("key-{key}"), value.clone());
                Record::new(
                    Some(format!("key-{key}").as_bytes()),
                    Some(value.as_bytes()),
                )
            })
            .collect();
        produce_ok(&producer, TOPIC, Some(0), &records);
        // Past segment.ms: each round in a segment of its own.
        std::thread::sleep(Duration::from_millis(150));
    }
    // The leader's cleaner removed the older rounds.
    let mut filler = false;
    wait_until(
        || {
            let metrics = cluster.metrics(leader as u32)?;
            let removed = metrics.get("sluice_cleaner_removed_records_total", &[])?;
            match removed > 0.0 {
                true => Ok(()),
                false => {
                    // A record more rolls a segment and makes a pass due.
                    produce_ok(
                        &producer,
                        TOPIC,
                        Some(0),
                        &[Record::new(
                            Some(b"filler".as_slice()),
                            Some(b"x".as_slice()),
                        )],
                    );
                    filler = true;
                    Err("nothing compacted yet".to_string())
                }
            }
        },
        "the leader compacts",
    );
    if filler {
        expected.insert("filler".to_string(), "x".to_string());
    }

    // The follower copies the compacted log and is in sync again.
    cluster.restart(follower as u32, &[]);
    wait_in_sync(
        &cluster,
        &NODES,
        &all,
        "the follower, started again, is back in the in-sync set",
    );
    // The leader goes; the follower, first in assignment order after it,
    // is the one an election takes first while it is in sync.
    cluster.kill9(leader as u32);
    let new_leader = wait_until(
        || {
            let leaders: BTreeSet<i32> = [follower, other]
                .iter()
                .map(|node| seen(&cluster, *node as u32).map(|seen| seen.leader))
                .collect::<Result<_, _>>()?;
            match leaders.first() {
                Some(new) if leaders.len() == 1 && *new != leader => Ok(*new),
                _ => Err(format!("leaders {leaders:?}")),
            }
        },
        "a new leader after the kill of the leader",
    );
    let consumer = consumer_for(&cluster.kafka_addr(new_leader as u32), &[]);
    let read = read_to_end(&consumer, TOPIC, &[(0, Offset::Beginning)]);
    let mut latest = BTreeMap::new();
    let mut offsets = Vec::new();
    for consumed in &read[&0] {
        offsets.push(consumed.offset);
        latest.insert(
            String::from_utf8(consumed.record.key.clone().unwrap()).unwrap(),
            String::from_utf8(consumed.record.value.clone().unwrap()).unwrap(),
        );
    }
    assert_eq!(latest, expected, "node {new_leader} leads");
    assert!(offsets.windows(2).all(|pair| pair[0] < pair[1]));
    assert!(
        offsets.len() < ROUNDS * KEYS,
        "compacted: {} records",
        offsets.len()
    );
}
