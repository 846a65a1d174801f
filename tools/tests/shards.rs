//! With `--cores 2`, partitions land on both shards and a connection that
//! reaches either shard produces to and fetches from every partition.

mod common;

use std::{collections::BTreeSet, time::Duration};

use common::*;
use sluice_net::native::{blocking::Connection, messages::*, ErrorCode};

#[test]
fn every_partition_is_reachable_from_either_shard() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), 2);
    let mut admin = broker.connect();
    create_topic(&mut admin, "spread", 6);
    let described: DescribeTopicsResponse = admin
        .call(
            ApiKey::DescribeTopics,
            &DescribeTopicsRequest {
                names: vec!["spread".into()],
            },
        )
        .unwrap();
    let owners: BTreeSet<u32> = described.topics[0]
        .partitions
        .iter()
        .map(|p| p.shard)
        .collect();
    assert_eq!(owners, BTreeSet::from([0, 1]), "partitions on both shards");

    // Open connections until both shards hold at least one.
    let mut by_shard: Vec<Option<Connection>> = vec![None, None];
    for _ in 0..200 {
        let mut conn = Connection::open(&broker.addr, Duration::from_secs(10)).unwrap();
        let hello: ApiVersionsResponse = conn
            .call(
                ApiKey::ApiVersions,
                &ApiVersionsRequest {
                    client: "test".into(),
                },
            )
            .unwrap();
        assert_eq!(hello.shards, 2);
        by_shard[hello.shard as usize].get_or_insert(conn);
        if by_shard.iter().all(Option::is_some) {
            break;
        }
    }
    assert!(
        by_shard.iter().all(Option::is_some),
        "the kernel never handed a connection to one shard"
    );
    for (shard, conn) in by_shard.iter_mut().enumerate() {
        let conn = conn.as_mut().unwrap();
        for partition in 0..6 {
            let value = format!("via shard {shard} to partition {partition}").into_bytes();
            let produced = produce(
                conn,
                "spread",
                partition,
                batch_of(std::slice::from_ref(&value)).into_bytes(),
            )
            .unwrap();
            assert_eq!(produced.error, ErrorCode::None, "{}", produced.message);
            let records = read_partition(conn, "spread", partition, produced.base_offset);
            assert_eq!(records, vec![(produced.base_offset, value)]);
        }
    }
}
