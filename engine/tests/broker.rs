//! The broker in this process, spoken to over real sockets with the native
//! protocol's frames (blocking std sockets: nothing of the broker's runtime).

use std::time::Duration;

use bytes::Bytes;
use sluice_engine::{Broker, BrokerConfig};
use sluice_net::native::{
    blocking::{BlockingError, Connection},
    messages::*,
    ErrorCode,
};
use sluice_storage::batch::{Batch, BatchBuilder, BatchHeader};

/// The native listener binds this: the kernel chooses the port, the same
/// for every shard, and the broker says which.
const ANY_PORT: &str = "127.0.0.1:0";

/// A broker on `dir` and the address it listens on.
fn start(dir: &std::path::Path, cores: usize) -> (Broker, String) {
    let config = BrokerConfig {
        data_dir: dir.to_path_buf(),
        native_addr: ANY_PORT.into(),
        cores: Some(cores),
        ..BrokerConfig::default()
    };
    let broker = Broker::start(config).expect("broker starts");
    let addr = broker.addrs().native.to_string();
    assert_ne!(broker.addrs().native.port(), 0);
    (broker, addr)
}

fn batch(values: &[&str]) -> Batch {
    let mut builder = BatchBuilder::default();
    for value in values {
        builder.push(1_000, Some(b"k"), value.as_bytes(), &[(b"h", Some(b"v"))]);
    }
    builder.finish()
}

fn create(conn: &mut Connection, name: &str, partitions: u32) -> TopicResults {
    conn.call(
        ApiKey::CreateTopics,
        &CreateTopicsRequest {
            topics: vec![NewTopic {
                name: name.to_string(),
                partitions,
                configs: vec![],
                replication_factor: 0,
                assignment: Vec::new(),
            }],
        },
    )
    .unwrap()
}

fn produce(
    conn: &mut Connection,
    topic: &str,
    partition: u32,
    batch: Bytes,
) -> ProducePartitionResponse {
    let response: ProduceResponse = conn
        .call(
            ApiKey::Produce,
            &ProduceRequest {
                acks: Acks::All,
                timeout_ms: 5000,
                topics: vec![ProduceTopic {
                    name: topic.to_string(),
                    partitions: vec![ProducePartition { partition, batch }],
                }],
            },
        )
        .unwrap();
    response.topics[0].partitions[0].clone()
}

fn fetch(
    conn: &mut Connection,
    topic: &str,
    partition: u32,
    offset: u64,
    max_wait_ms: u32,
) -> FetchPartitionResponse {
    let response: FetchResponse = conn
        .call(
            ApiKey::Fetch,
            &FetchRequest {
                max_wait_ms,
                min_bytes: 1,
                max_bytes: 1 << 20,
                topics: vec![FetchTopic {
                    name: topic.to_string(),
                    partitions: vec![FetchPartition {
                        partition,
                        offset,
                        max_bytes: 1 << 20,
                    }],
                }],
            },
        )
        .unwrap();
    response.topics[0].partitions[0].clone()
}

fn values(batches: &Bytes) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = batches.clone();
    while !rest.is_empty() {
        let length = BatchHeader::parse(&rest).unwrap().batch_bytes as usize;
        let batch = Batch::validate(rest.split_to(length)).unwrap();
        for record in batch.records().unwrap().iter() {
            out.push(String::from_utf8(record.value().to_vec()).unwrap());
        }
    }
    out
}

#[test]
fn topics_produce_fetch_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, addr) = start(dir.path(), 2);
    let mut conn = Connection::open(&addr, Duration::from_secs(10)).unwrap();
    let versions: ApiVersionsResponse = conn
        .call(
            ApiKey::ApiVersions,
            &ApiVersionsRequest {
                client: "test".into(),
            },
        )
        .unwrap();
    assert_eq!(versions.shards, 2);
    assert_eq!(
        create(&mut conn, "events", 4).topics[0].error,
        ErrorCode::None
    );
    assert_eq!(
        create(&mut conn, "events", 4).topics[0].error,
        ErrorCode::TopicExists
    );
    assert_eq!(
        create(&mut conn, "bad/name", 1).topics[0].error,
        ErrorCode::InvalidTopicName
    );
    let metadata: MetadataResponse = conn
        .call(ApiKey::Metadata, &MetadataRequest { topics: None })
        .unwrap();
    let shards: std::collections::BTreeSet<u32> = metadata.topics[0]
        .partitions
        .iter()
        .map(|p| p.shard)
        .collect();
    assert_eq!(shards.len(), 2, "partitions land on both shards");

    for partition in 0..4 {
        let first = produce(
            &mut conn,
            "events",
            partition,
            batch(&["a", "b"]).into_bytes(),
        );
        assert_eq!((first.error, first.base_offset), (ErrorCode::None, 0));
        let second = produce(&mut conn, "events", partition, batch(&["c"]).into_bytes());
        assert_eq!(second.base_offset, 2);
    }
    let fetched = fetch(&mut conn, "events", 3, 0, 0);
    assert_eq!(fetched.error, ErrorCode::None);
    assert_eq!(fetched.high_watermark, 3);
    assert_eq!(values(&fetched.batch_bytes()), vec!["a", "b", "c"]);

    // Errors, each in its place.
    assert_eq!(
        produce(&mut conn, "nope", 0, batch(&["x"]).into_bytes()).error,
        ErrorCode::UnknownTopic
    );
    assert_eq!(
        produce(&mut conn, "events", 9, batch(&["x"]).into_bytes()).error,
        ErrorCode::NoSuchPartition
    );
    let mut bad = batch(&["x"]).into_bytes().to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert_eq!(
        produce(&mut conn, "events", 0, Bytes::from(bad)).error,
        ErrorCode::CorruptBatch
    );
    assert_eq!(
        fetch(&mut conn, "events", 0, 99, 0).error,
        ErrorCode::OffsetOutOfRange
    );
    let anyone = ApiVersionsRequest {
        client: String::new(),
    };
    let unknown = conn.call_raw::<ApiVersionsResponse>(77, 0, &anyone);
    assert!(
        matches!(
            unknown,
            Err(BlockingError::Broker {
                code: ErrorCode::UnknownApi,
                ..
            })
        ),
        "{unknown:?}"
    );
    let too_new = conn.call_raw::<ApiVersionsResponse>(0, 9, &anyone);
    assert!(matches!(
        too_new,
        Err(BlockingError::Broker {
            code: ErrorCode::UnsupportedVersion,
            ..
        })
    ));

    broker.stop();
    let (broker, addr) = start(dir.path(), 2);
    let mut conn = Connection::open(&addr, Duration::from_secs(10)).unwrap();
    for partition in 0..4 {
        assert_eq!(
            values(&fetch(&mut conn, "events", partition, 0, 0).batch_bytes()),
            vec!["a", "b", "c"]
        );
    }
    broker.stop();
}

#[test]
fn a_second_broker_on_the_same_port_or_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let (broker, addr) = start(dir.path(), 1);
    let same_port = BrokerConfig {
        data_dir: other.path().to_path_buf(),
        native_addr: addr.clone(),
        cores: Some(1),
        ..BrokerConfig::default()
    };
    let refused = Broker::start(same_port).err().expect("the port is taken");
    assert!(refused.to_string().contains(&addr), "{refused}");
    let same_dir = BrokerConfig {
        data_dir: dir.path().to_path_buf(),
        native_addr: ANY_PORT.into(),
        cores: Some(1),
        ..BrokerConfig::default()
    };
    let refused = Broker::start(same_dir)
        .err()
        .expect("the directory is taken");
    assert!(refused.to_string().contains("in use"), "{refused}");
    broker.stop();
}
