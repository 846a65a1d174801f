//! Start-up recovers every partition, in parallel across shards: 1,000
//! partitions with data are reopened and all serve their records. Prints how
//! long the restart took (`cargo test --release -p sluice-engine --test
//! reopen -- --nocapture` for the figure in bench/RESULTS.md).

use std::time::{Duration, Instant};

use sluice_engine::{Broker, BrokerConfig};
use sluice_net::native::{blocking::Connection, messages::*, ErrorCode};
use sluice_storage::batch::BatchBuilder;

const TOPICS: u32 = 10;
const PARTITIONS: u32 = 100;

fn start(config: &BrokerConfig) -> Broker {
    Broker::start(config.clone()).expect("broker starts")
}

#[test]
fn a_thousand_partitions_reopen_and_serve() {
    let dir = tempfile::tempdir().unwrap();
    let config = BrokerConfig {
        data_dir: dir.path().to_path_buf(),
        native_addr: "127.0.0.1:0".into(),
        cores: Some(2),
        ..BrokerConfig::default()
    };
    let broker = start(&config);
    let addr = broker.addrs().native.to_string();
    let mut conn = Connection::open(&addr, Duration::from_secs(60)).unwrap();
    let topics: Vec<NewTopic> = (0..TOPICS)
        .map(|topic| NewTopic {
            name: format!("t{topic}"),
            partitions: PARTITIONS,
            // Small segments: the first preallocation step is one segment.
            configs: vec![("segment.bytes".into(), (1 << 20).to_string())],
            replication_factor: 0,
            assignment: Vec::new(),
        })
        .collect();
    let created: TopicResults = conn
        .call(ApiKey::CreateTopics, &CreateTopicsRequest { topics })
        .unwrap();
    assert!(
        created.topics.iter().all(|t| t.error == ErrorCode::None),
        "{created:?}"
    );
    let mut builder = BatchBuilder::default();
    builder.push(1, None, b"one record", &[]);
    let batch = builder.finish().into_bytes();
    for topic in 0..TOPICS {
        let request = ProduceRequest {
            acks: Acks::All,
            timeout_ms: 30_000,
            topics: vec![ProduceTopic {
                name: format!("t{topic}"),
                partitions: (0..PARTITIONS)
                    .map(|partition| ProducePartition {
                        partition,
                        batch: batch.clone(),
                    })
                    .collect(),
            }],
        };
        let produced: ProduceResponse = conn.call(ApiKey::Produce, &request).unwrap();
        let failed: Vec<_> = produced.topics[0]
            .partitions
            .iter()
            .filter(|p| p.error != ErrorCode::None)
            .collect();
        assert!(failed.is_empty(), "{:?}", &failed[..failed.len().min(3)]);
    }
    drop(conn);
    broker.stop();

    let started = Instant::now();
    let broker = start(&config);
    let reopened_in = started.elapsed();
    // Port 0 again: the port the kernel chooses this time.
    let addr = broker.addrs().native.to_string();
    println!(
        "reopened {} partitions on 2 shards in {} ms",
        TOPICS * PARTITIONS,
        reopened_in.as_millis()
    );
    let mut conn = Connection::open(&addr, Duration::from_secs(60)).unwrap();
    let request = ListOffsetsRequest {
        topics: (0..TOPICS)
            .map(|topic| {
                let partitions = (0..PARTITIONS).map(|p| (p, OffsetSpec::Latest)).collect();
                (format!("t{topic}"), partitions)
            })
            .collect(),
    };
    let listed: ListOffsetsResponse = conn.call(ApiKey::ListOffsets, &request).unwrap();
    let ends: Vec<Option<u64>> = listed
        .topics
        .iter()
        .flat_map(|(_, partitions)| partitions.iter().map(|p| p.offset))
        .collect();
    assert_eq!(ends.len() as u32, TOPICS * PARTITIONS);
    assert!(
        ends.iter().all(|end| *end == Some(1)),
        "every partition holds its record"
    );
    broker.stop();
}
