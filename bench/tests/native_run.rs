//! A short real run of the harness against a Sluice broker started in this
//! process, over the native protocol.

mod common;

use std::time::Duration;

use sluice_bench::{run::available_cores, DriverKind, RunOptions, RunResult, Workload};
use sluice_engine::{Broker, BrokerConfig};

/// An address where nothing listens: a port the kernel gave and took back.
fn unused_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

#[test]
fn a_short_run_against_a_real_broker() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(BrokerConfig {
        data_dir: dir.path().to_path_buf(),
        // The kernel chooses the port; the broker says which.
        native_addr: "127.0.0.1:0".into(),
        cores: Some(1),
        ..BrokerConfig::default()
    })
    .expect("broker starts");
    let addr = broker.addrs().native.to_string();

    let workload = Workload::parse(
        r#"
        name = "test-run"
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
        driver: DriverKind::Native,
        brokers: addr,
        cores: vec![cpu],
        drain: Duration::from_secs(5),
        progress: true,
        delete_topics: true,
        command: vec!["test".into()],
        durability: None,
    });
    broker.stop();
    let result = result.expect("the run completes");
    print!("{}", result.table());

    assert_eq!(result.harness_cores, [cpu]);
    common::assert_a_clean_short_run(&result);
    let (ack, e2e) = (&result.produce_ack_latency, &result.end_to_end_latency);
    assert!(
        e2e.p50_us >= ack.p50_us * 0.5,
        "end to end includes the ack path"
    );
    let seconds: Vec<u64> = result.seconds.iter().map(|s| s.second).collect();
    assert!(seconds.starts_with(&[0, 1, 2]), "{seconds:?}");
    assert!(!result.seconds[0].measured && result.seconds[1].measured);

    // The result file reads back as written.
    let path = dir.path().join("result.json");
    result.save(&path).unwrap();
    assert_eq!(RunResult::load(&path).unwrap(), result);
}

#[test]
fn an_unreachable_broker_is_an_error_not_a_hang() {
    let workload = Workload::parse(
        r#"
        name = "nobody"
        topics = 1
        partitions_per_topic = 1
        message_size = 100
        producers_per_topic = 1
        consumers_per_topic = 1
        batch_bytes = 16384
        linger_ms = 1
        rate = 10
        warm_up_s = 0
        duration_s = 1
        "#,
    )
    .unwrap();
    let error = sluice_bench::run(RunOptions {
        workload,
        driver: DriverKind::Native,
        brokers: unused_addr(),
        cores: vec![0],
        drain: Duration::from_secs(1),
        progress: false,
        delete_topics: false,
        command: vec![],
        durability: None,
    })
    .expect_err("nothing listens there");
    assert!(error.to_string().contains("connect"), "{error}");
}
