//! What the harness's real-run tests check of every driver.

use sluice_bench::RunResult;

/// A 500/s run of 2 s measured: no errors, about 1,000 records produced and
/// consumed within the window (give or take those crossing its edges and a
/// slow machine's stalls), and every record intended in the window measured
/// both ways.
pub fn assert_a_clean_short_run(result: &RunResult) {
    assert_eq!(result.errors.total(), 0, "{:?}", result.errors);
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
    let ack = &result.produce_ack_latency;
    let e2e = &result.end_to_end_latency;
    assert!(
        (990..=1000).contains(&ack.count),
        "{} ack latencies",
        ack.count
    );
    assert_eq!(e2e.count, ack.count, "every measured record consumed");
    assert!(ack.p50_us > 0.0 && ack.p50_us <= ack.p99_us && ack.p99_us <= ack.max_us);
    assert!(e2e.p50_us > 0.0);
}
