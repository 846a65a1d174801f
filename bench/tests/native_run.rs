//! A short real run of the harness against a Sluice broker started in this
//! process, over the native protocol.

use std::time::Duration;

use sluice_bench::{run::available_cores, Driver, RunOptions, RunResult, Workload};
use sluice_engine::{Broker, BrokerConfig};

fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

#[test]
fn a_short_run_against_a_real_broker() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let broker = Broker::start(BrokerConfig {
        data_dir: dir.path().to_path_buf(),
        native_addr: addr.clone(),
        cores: Some(1),
        ..BrokerConfig::default()
    })
    .expect("broker starts");

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
        driver: Driver::Native,
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
    assert_eq!(result.errors.total(), 0, "{:?}", result.errors);
    // Acknowledged and consumed within the 2 s window, by completion time:
    // 1,000 give or take the records crossing its edges, and a slow
    // machine's stalls.
    for (name, throughput) in [
        ("produced", &result.produced),
        ("consumed", &result.consumed),
    ] {
        assert!(
            (750..=1010).contains(&throughput.records),
            "{name} {} records in the window",
            throughput.records
        );
        assert!(throughput.mb_per_s > 0.0);
    }
    // Every record intended in the window is measured, both ways.
    let ack = &result.produce_ack_latency;
    let e2e = &result.end_to_end_latency;
    assert!(
        (990..=1000).contains(&ack.count),
        "{} ack latencies",
        ack.count
    );
    assert_eq!(e2e.count, ack.count, "every measured record consumed");
    assert!(ack.p50_us > 0.0 && ack.p50_us <= ack.p99_us && ack.p99_us <= ack.max_us);
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
        driver: Driver::Native,
        brokers: free_addr(),
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
