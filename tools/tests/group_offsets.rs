//! Black box: committed offsets in `__consumer_offsets` through commits,
//! compaction and `kill -9`: the last committed offset of every partition
//! of every group is what a restarted broker answers, and compaction keeps
//! the offsets partitions from growing without bound.

mod common;
mod kafka_common;

use std::{collections::BTreeMap, time::Duration};

use common::Broker;
use kafka_common::*;
use rdkafka::{
    consumer::{CommitMode, Consumer},
    Offset, TopicPartitionList,
};

const TIMEOUT: Duration = Duration::from_secs(30);

fn committed(broker: &Broker, group: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let consumer = consumer(broker, &[("group.id", group)]);
    let mut wanted = TopicPartitionList::new();
    for partition in 0..partitions {
        wanted.add_partition(topic, partition);
    }
    consumer
        .committed_offsets(wanted, TIMEOUT)
        .expect("OffsetFetch")
        .elements()
        .iter()
        .map(|element| {
            let offset = match element.offset() {
                Offset::Offset(offset) => offset,
                _ => -1,
            };
            (element.partition(), offset)
        })
        .collect()
}

#[test]
fn offsets_survive_compaction_and_kill_9() {
    let data_dir = tempfile::tempdir().unwrap();
    // Offsets partitions of 16 KiB segments, which the cleaner looks at
    // every 100 ms.
    let mut broker = Broker::start_with(
        data_dir.path(),
        2,
        &[
            ("SLUICE_GROUP_OFFSETS_COMPACT_BYTES", "16384"),
            ("SLUICE_CLEANER_CHECK_INTERVAL_MS", "100"),
        ],
    );
    create_topic(&broker, "tracked", 4);
    let groups = ["alpha", "beta", "gamma"];
    let mut expected: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for group in groups {
        let consumer = consumer(&broker, &[("group.id", group)]);
        // Many commits of rising offsets: far more bytes than the threshold.
        for round in 0..150i64 {
            let mut offsets = TopicPartitionList::new();
            for partition in 0..4 {
                let offset = round * 10 + i64::from(partition);
                offsets
                    .add_partition_offset("tracked", partition, Offset::Offset(offset))
                    .unwrap();
                expected.insert((group, partition), offset);
            }
            consumer
                .commit(&offsets, CommitMode::Sync)
                .unwrap_or_else(|error| panic!("commit {group} round {round}: {error}"));
        }
    }
    for group in groups {
        let answer = committed(&broker, group, "tracked", 4);
        for partition in 0..4 {
            assert_eq!(
                answer[&partition],
                expected[&(group, partition)],
                "{group} {partition}"
            );
        }
    }
    // The cleaner compacted the offsets partitions: 1,800 commit records
    // of ~50 bytes are 150 KB and more with their batches' headers if
    // nothing were compacted; compacted, the latest of 12 keys in the
    // cleaned segments, and what the active segments hold.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let described = describe_native(&broker, "__consumer_offsets");
        let sizes: u64 = described["partitions"]
            .as_array()
            .expect("partitions")
            .iter()
            .map(|partition| partition["size_bytes"].as_u64().expect("size_bytes"))
            .sum();
        if sizes < 60_000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "offsets partitions hold {sizes} bytes: {described}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    broker.kill9();
    broker.restart_after_kill9();
    for group in groups {
        let answer = committed(&broker, group, "tracked", 4);
        for partition in 0..4 {
            assert_eq!(
                answer[&partition],
                expected[&(group, partition)],
                "{group} {partition} after kill -9"
            );
        }
    }
}
