//! A short chaos run against the real `sluice` binary: one node, killed
//! with -9 and started again every couple of seconds under load, then a
//! final full read; the checker finds nothing lost, duplicated, reordered
//! or skipped (durable by default: every acknowledged record survives).

mod common;

use common::SLUICE;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_node_killed_under_load_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let workload = format!(
        r#"
[chaos]
topic = "chaos"
partitions = 4
producers = 2
rate = 200
duration_s = 8

[[nodes]]
start = "{SLUICE} serve --data-dir {{dir}}/node-0 --native-addr 127.0.0.1:{port} --kafka-addr off --admin-addr off --cores 1"
native_addr = "127.0.0.1:{port}"

[faults]
interval_ms = 2000
down_ms = 200
kinds = ["kill"]
"#
    );
    let seed = 7;
    let report = sluice_bench::chaos::run::run(&workload, dir.path(), seed).unwrap();
    let summary = report.markdown();
    assert!(report.valid, "{summary}");
    assert!(report.counts.faults >= 2, "{summary}");
    assert!(report.counts.sends_ok > 300, "{summary}");
    assert_eq!(
        report.count("unseen"),
        0,
        "the final read saw everything: {summary}"
    );
    assert!(
        report.counts.records_read >= report.counts.sends_ok,
        "{summary}"
    );
    // The run's directory holds what it ran and found.
    for file in [
        "workload.toml",
        "seed",
        "history.jsonl",
        "report.json",
        "report.md",
    ] {
        assert!(dir.path().join(file).exists(), "{file}");
    }
    // And the history checks the same again.
    let again = sluice_bench::chaos::check_dir(dir.path()).unwrap();
    assert_eq!(again, report);
}
