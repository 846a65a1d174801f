//! A run's result: the JSON file, the table for people, and the side by
//! side comparison of several runs.

use std::{fmt::Write as _, path::Path};

use serde::{Deserialize, Serialize};

use crate::{latency::LatencySummary, workload::Workload, BenchError};

/// Bumped when a field changes meaning; `compare` refuses other versions.
pub const RESULT_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub format_version: u32,
    /// The workload as run (with any `--rate` override applied).
    pub workload: Workload,
    pub driver: String,
    pub brokers: String,
    /// The command line that produced this result.
    pub command: Vec<String>,
    pub started_unix_ms: u64,
    /// The CPUs the harness's threads were pinned to.
    pub harness_cores: Vec<usize>,
    /// The broker's durability as the user stated it (`--durability`).
    /// Absent from results written before it existed, and when not
    /// stated, so the format version did not change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durability: Option<String>,
    /// CPUs of the machine, as the harness saw them.
    pub machine_cores: usize,
    /// Records acknowledged during the measured window (after warm-up).
    pub produced: Throughput,
    /// Records consumed during the measured window.
    pub consumed: Throughput,
    /// Produce → acknowledgement at the producer, from the intended send
    /// time, of records intended in the measured window.
    pub produce_ack_latency: LatencySummary,
    /// Intended send time → read by the consumer, same records.
    pub end_to_end_latency: LatencySummary,
    pub errors: ErrorCounts,
    /// One entry per second of the run, warm-up included.
    pub seconds: Vec<SecondSample>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    pub records: u64,
    /// Key and value bytes.
    pub bytes: u64,
    pub records_per_s: f64,
    /// Megabytes (10^6 bytes) of keys and values per second.
    pub mb_per_s: f64,
}

impl Throughput {
    pub fn over(records: u64, bytes: u64, seconds: f64) -> Throughput {
        let seconds = seconds.max(f64::MIN_POSITIVE);
        Throughput {
            records,
            bytes,
            records_per_s: records as f64 / seconds,
            mb_per_s: bytes as f64 / seconds / 1e6,
        }
    }
}

/// Every failure of the run, counted; none is dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCounts {
    /// Records whose delivery failed.
    pub produce: u64,
    /// Consumer fetches that failed.
    pub consume: u64,
    /// Times the harness tried again (a consumer reconnecting and
    /// resuming from its next offset). Producers never resend a record
    /// whose outcome is unknown.
    pub retries: u64,
    /// Records sent whose outcome was still unknown when the run ended.
    pub unacknowledged: u64,
    /// Records acknowledged that no consumer read by the end of the run.
    pub unconsumed: u64,
}

impl ErrorCounts {
    pub fn total(&self) -> u64 {
        self.produce + self.consume + self.unacknowledged + self.unconsumed
    }
}

/// One second of the run, for throughput over time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SecondSample {
    /// Seconds since the start of the run, warm-up included.
    pub second: u64,
    /// In the measured window (after warm-up, before the end).
    pub measured: bool,
    /// Records sent (at their intended time) in this second.
    pub sent: u64,
    pub acknowledged: u64,
    pub acknowledged_bytes: u64,
    pub consumed: u64,
    pub consumed_bytes: u64,
    pub errors: u64,
    /// Of the records acknowledged / consumed in this second.
    pub produce_ack_p99_us: f64,
    pub end_to_end_p99_us: f64,
}

impl RunResult {
    pub fn save(&self, path: &Path) -> Result<(), BenchError> {
        let text = serde_json::to_string_pretty(self).expect("a result serializes");
        std::fs::write(path, text + "\n").map_err(|source| BenchError::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    pub fn load(path: &Path) -> Result<RunResult, BenchError> {
        let text = std::fs::read_to_string(path).map_err(|source| BenchError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let result: RunResult =
            serde_json::from_str(&text).map_err(|error| BenchError::Result {
                path: path.to_path_buf(),
                reason: error.to_string(),
            })?;
        if result.format_version != RESULT_FORMAT_VERSION {
            return Err(BenchError::Result {
                path: path.to_path_buf(),
                reason: format!(
                    "format version {} (this harness reads {RESULT_FORMAT_VERSION})",
                    result.format_version
                ),
            });
        }
        Ok(result)
    }

    /// The table printed at the end of a run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let workload = &self.workload;
        let _ = writeln!(
            out,
            "workload {}: {} topic(s) x {} partition(s), {} B values, rate {}, acks {}, {} s after {} s warm-up",
            workload.name,
            workload.topics,
            workload.partitions_per_topic,
            size_text(workload),
            workload.rate,
            format!("{:?}", workload.acks).to_lowercase(),
            workload.duration_s,
            workload.warm_up_s,
        );
        let _ = writeln!(
            out,
            "driver {} -> {}{}, harness on cores {:?} of {}",
            self.driver,
            self.brokers,
            durability_text(self),
            self.harness_cores,
            self.machine_cores
        );
        let _ = writeln!(out, "{:<12} {:>12} {:>10}", "", "records/s", "MB/s");
        for (name, throughput) in [("produced", &self.produced), ("consumed", &self.consumed)] {
            let _ = writeln!(
                out,
                "{:<12} {:>12.0} {:>10.2}",
                name, throughput.records_per_s, throughput.mb_per_s
            );
        }
        let _ = writeln!(
            out,
            "{:<12} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "latency ms", "count", "p50", "p90", "p99", "p99.9", "p99.99", "max"
        );
        for (name, latency) in [
            ("produce→ack", &self.produce_ack_latency),
            ("end-to-end", &self.end_to_end_latency),
        ] {
            let _ = writeln!(
                out,
                "{:<12} {:>10} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>10.3}",
                name,
                latency.count,
                latency.p50_us / 1000.0,
                latency.p90_us / 1000.0,
                latency.p99_us / 1000.0,
                latency.p999_us / 1000.0,
                latency.p9999_us / 1000.0,
                latency.max_us / 1000.0,
            );
        }
        let errors = &self.errors;
        let _ = writeln!(
            out,
            "errors: produce {}, consume {}, unacknowledged {}, unconsumed {}; retries {}",
            errors.produce,
            errors.consume,
            errors.unacknowledged,
            errors.unconsumed,
            errors.retries
        );
        out
    }
}

/// `", durability always"`, or nothing when it was not stated.
fn durability_text(run: &RunResult) -> String {
    run.durability
        .as_ref()
        .map(|durability| format!(", durability {durability}"))
        .unwrap_or_default()
}

fn size_text(workload: &Workload) -> String {
    let (min, max) = (
        workload.message_size.min_bytes(),
        workload.message_size.max_bytes(),
    );
    if min == max {
        min.to_string()
    } else {
        format!("{min}-{max}")
    }
}

/// Runs side by side: one column per run, and after each run but the
/// first its ratio to the first (the baseline).
pub fn compare(runs: &[(String, RunResult)]) -> String {
    type Metric = (&'static str, fn(&RunResult) -> f64);
    let metrics: [Metric; 16] = [
        ("produced records/s", |r| r.produced.records_per_s),
        ("produced MB/s", |r| r.produced.mb_per_s),
        ("consumed records/s", |r| r.consumed.records_per_s),
        ("consumed MB/s", |r| r.consumed.mb_per_s),
        ("ack p50 ms", |r| r.produce_ack_latency.p50_us / 1000.0),
        ("ack p90 ms", |r| r.produce_ack_latency.p90_us / 1000.0),
        ("ack p99 ms", |r| r.produce_ack_latency.p99_us / 1000.0),
        ("ack p99.9 ms", |r| r.produce_ack_latency.p999_us / 1000.0),
        ("ack p99.99 ms", |r| r.produce_ack_latency.p9999_us / 1000.0),
        ("ack max ms", |r| r.produce_ack_latency.max_us / 1000.0),
        ("e2e p50 ms", |r| r.end_to_end_latency.p50_us / 1000.0),
        ("e2e p99 ms", |r| r.end_to_end_latency.p99_us / 1000.0),
        ("e2e p99.9 ms", |r| r.end_to_end_latency.p999_us / 1000.0),
        ("e2e p99.99 ms", |r| r.end_to_end_latency.p9999_us / 1000.0),
        ("e2e max ms", |r| r.end_to_end_latency.max_us / 1000.0),
        ("errors", |r| r.errors.total() as f64),
    ];
    let width = runs
        .iter()
        .map(|(label, _)| label.len())
        .max()
        .unwrap_or(0)
        .clamp(12, 40);
    let mut out = String::new();
    for (label, run) in runs {
        let _ = writeln!(
            out,
            "{label}: {} @ {}, acks {}, driver {}{} on cores {:?}",
            run.workload.name,
            short_rate(run),
            format!("{:?}", run.workload.acks).to_lowercase(),
            run.driver,
            durability_text(run),
            run.harness_cores
        );
    }
    let _ = write!(out, "{:<20}", "");
    for (index, (label, _)) in runs.iter().enumerate() {
        let _ = write!(out, " {label:>width$}");
        if index > 0 {
            let _ = write!(out, " {:>8}", "ratio");
        }
    }
    out.push('\n');
    for (name, metric) in metrics {
        let _ = write!(out, "{name:<20}");
        let baseline = runs.first().map(|(_, run)| metric(run)).unwrap_or(0.0);
        for (index, (_, run)) in runs.iter().enumerate() {
            let value = metric(run);
            let _ = write!(out, " {:>width$}", number(value));
            if index > 0 {
                let _ = write!(out, " {:>8}", ratio(value, baseline));
            }
        }
        out.push('\n');
    }
    out
}

/// Runs as one Markdown table, a row each: the system's label and
/// durability, the rate asked, throughput produced and consumed, the
/// latency percentiles both ways (ms), failures (produce and consume),
/// and the records the run ended without hearing about or reading.
pub fn markdown(runs: &[(String, RunResult)]) -> String {
    let mut out = String::from(
        "| system | driver | durability | rate asked | produced rec/s | MB/s | consumed rec/s | MB/s \
         | ack p50 | p99 | p99.9 | p99.99 | max | e2e p50 | p99 | p99.9 | p99.99 | max \
         | errors | not acked | not consumed |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let ms = |us: f64| number(us / 1000.0);
    for (label, run) in runs {
        let (ack, e2e) = (&run.produce_ack_latency, &run.end_to_end_latency);
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            run.driver,
            run.durability.as_deref().unwrap_or("not stated"),
            short_rate(run),
            number(run.produced.records_per_s),
            number(run.produced.mb_per_s),
            number(run.consumed.records_per_s),
            number(run.consumed.mb_per_s),
            ms(ack.p50_us),
            ms(ack.p99_us),
            ms(ack.p999_us),
            ms(ack.p9999_us),
            ms(ack.max_us),
            ms(e2e.p50_us),
            ms(e2e.p99_us),
            ms(e2e.p999_us),
            ms(e2e.p9999_us),
            ms(e2e.max_us),
            run.errors.produce + run.errors.consume,
            run.errors.unacknowledged,
            run.errors.unconsumed,
        );
    }
    out
}

fn short_rate(run: &RunResult) -> String {
    match run.workload.rate.records_per_second() {
        Some(rate) => format!("{rate}/s"),
        None => "max".into(),
    }
}

fn number(value: f64) -> String {
    if value >= 1000.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    }
}

fn ratio(value: f64, baseline: f64) -> String {
    if baseline == 0.0 {
        if value == 0.0 {
            "=".into()
        } else {
            "-".into()
        }
    } else {
        format!("{:.2}x", value / baseline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::LatencyRecorder;
    use crate::workload::Workload;

    pub(crate) fn sample(name: &str, rate: f64, p99_ns: u64) -> RunResult {
        let workload = Workload::parse(&format!(
            r#"
            name = "{name}"
            topics = 1
            partitions_per_topic = 1
            message_size = 100
            producers_per_topic = 1
            consumers_per_topic = 1
            batch_bytes = 131072
            linger_ms = 1
            rate = 20000
            warm_up_s = 1
            duration_s = 10
            "#
        ))
        .unwrap();
        let mut latency = LatencyRecorder::new();
        for value in [1_000, 2_000, p99_ns] {
            latency.record(value);
        }
        RunResult {
            format_version: RESULT_FORMAT_VERSION,
            workload,
            driver: "native".into(),
            brokers: "127.0.0.1:9192".into(),
            command: vec!["sluice-bench".into(), "run".into()],
            started_unix_ms: 1_700_000_000_000,
            harness_cores: vec![1],
            durability: None,
            machine_cores: 2,
            produced: Throughput::over((rate * 10.0) as u64, (rate * 1000.0) as u64, 10.0),
            consumed: Throughput::over((rate * 10.0) as u64, (rate * 1000.0) as u64, 10.0),
            produce_ack_latency: latency.summary(),
            end_to_end_latency: latency.summary(),
            errors: ErrorCounts {
                produce: 1,
                retries: 2,
                ..ErrorCounts::default()
            },
            seconds: vec![SecondSample {
                second: 0,
                measured: false,
                sent: 20_000,
                acknowledged: 19_990,
                acknowledged_bytes: 1_999_000,
                consumed: 19_980,
                consumed_bytes: 1_998_000,
                errors: 1,
                produce_ack_p99_us: 1234.5,
                end_to_end_p99_us: 2345.5,
            }],
        }
    }

    #[test]
    fn json_round_trip() {
        let result = sample("a", 20_000.0, 5_000_000);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("result.json");
        result.save(&path).unwrap();
        let loaded = RunResult::load(&path).unwrap();
        assert_eq!(loaded, result);
        assert_eq!(loaded.produced.records_per_s, 20_000.0);
        assert_eq!(loaded.produced.mb_per_s, 2.0);
    }

    /// The durability label is optional both ways: a result written
    /// before it existed loads, and one that states it keeps it.
    #[test]
    fn durability_is_optional_in_the_json() {
        let mut result = sample("a", 1.0, 1);
        let text = serde_json::to_string(&result).unwrap();
        assert!(!text.contains("durability"), "{text}");
        assert_eq!(serde_json::from_str::<RunResult>(&text).unwrap(), result);
        result.durability = Some("always".into());
        let text = serde_json::to_string(&result).unwrap();
        assert_eq!(serde_json::from_str::<RunResult>(&text).unwrap(), result);
        assert!(result.table().contains("durability always"));
        let side_by_side = compare(&[("A".into(), result)]);
        assert!(side_by_side.contains("durability always"), "{side_by_side}");
    }

    #[test]
    fn markdown_has_a_row_per_run_with_as_many_cells_as_the_header() {
        let mut durable = sample("a", 1.0, 1);
        durable.durability = Some("fsync per write".into());
        let runs = [
            ("A".to_string(), durable),
            ("B".to_string(), sample("b", 2.0, 1)),
        ];
        let table = markdown(&runs);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        let cells = |line: &str| line.matches('|').count();
        assert!(
            lines.iter().all(|line| cells(line) == cells(lines[0])),
            "{table}"
        );
        assert!(lines[2].starts_with("| A | ") && lines[2].contains("| fsync per write |"));
        assert!(lines[3].contains("| not stated |"));
    }

    #[test]
    fn refuses_another_format_version() {
        let mut result = sample("a", 1.0, 1);
        result.format_version = RESULT_FORMAT_VERSION + 1;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("result.json");
        result.save(&path).unwrap();
        assert!(RunResult::load(&path).is_err());
        std::fs::write(&path, "{").unwrap();
        assert!(RunResult::load(&path).is_err());
    }

    #[test]
    fn table_and_comparison() {
        let a = sample("a", 20_000.0, 4_000_000);
        let b = sample("b", 30_000.0, 2_000_000);
        let table = a.table();
        assert!(table.contains("produce→ack"), "{table}");
        assert!(table.contains("20000"), "{table}");
        let side_by_side = compare(&[("A".into(), a), ("B".into(), b)]);
        let line = |name: &str| {
            side_by_side
                .lines()
                .find(|line| line.starts_with(name))
                .unwrap_or_else(|| panic!("no {name} in\n{side_by_side}"))
                .to_string()
        };
        assert!(
            line("produced records/s").contains("1.50x"),
            "{side_by_side}"
        );
        assert!(line("ack max ms").contains("0.50x"), "{side_by_side}");
        assert!(line("errors").contains("1.00x"), "{side_by_side}");
    }
}
