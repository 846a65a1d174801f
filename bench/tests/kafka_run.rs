//! A short real run of the `kafka` driver (librdkafka) against a Sluice
//! broker started in this process, over its Kafka listener.

mod common;

use std::time::Duration;

use sluice_bench::{run::available_cores, DriverKind, RunOptions, Workload};
use sluice_engine::{Broker, BrokerConfig};

#[test]
fn a_short_run_against_sluice_over_the_kafka_protocol() {
    let dir = tempfile::tempdir().unwrap();
    // The kernel chooses the ports; the broker says which.
    let broker = Broker::start(BrokerConfig {
        data_dir: dir.path().to_path_buf(),
        native_addr: "127.0.0.1:0".into(),
        kafka_listeners: vec![sluice_engine::KafkaListener::plaintext("127.0.0.1:0")],
        cores: Some(1),
        ..BrokerConfig::default()
    })
    .expect("broker starts");
    let kafka_addr = broker.addrs().kafka.expect("a Kafka listener").to_string();

    let workload = Workload::parse(
        r#"
        name = "kafka-test-run"
        topics = 1
        partitions_per_topic = 2
        message_size = { distribution = "uniform", min = 50, max = 150 }
        keys = { space = 100 }
        producers_per_topic = 1
        consumers_per_topic = 2
        batch_bytes = 16384
        linger_ms = 1
        acks = "all"
        rate = 500
        warm_up_s = 1
        duration_s = 2
        "#,
    )
    .unwrap();
    let cpu = available_cores() - 1;
    let result = sluice_bench::run(RunOptions {
        workload,
        driver: DriverKind::Kafka,
        brokers: kafka_addr,
        cores: vec![cpu],
        drain: Duration::from_secs(5),
        progress: true,
        delete_topics: true,
        command: vec!["test".into()],
        durability: Some("fdatasync before ack".into()),
    });
    broker.stop();
    let result = result.expect("the run completes");
    print!("{}", result.table());

    assert_eq!(result.driver, "kafka");
    common::assert_a_clean_short_run(&result);
}
