//! What a broker promises, checked: histories of what clients saw
//! ([`history`]) and the checker that finds lost, duplicated, reordered
//! and skipped records in them ([`checker`]), with Jepsen's Kafka
//! definitions, and the timeline of what faults cost ([`timeline`]).
//! `sluice-bench check DIR` checks `DIR/history.jsonl` and writes
//! `DIR/report.json`, `DIR/report.md` and `DIR/timeline.svg`.

pub mod checker;
mod environment;
pub mod history;
mod kafka;
pub mod run;
pub mod timeline;

use std::path::Path;

use crate::BenchError;

/// Checks the history in `dir` and writes the reports beside it.
pub fn check_dir(dir: &Path) -> Result<checker::Report, BenchError> {
    let path = dir.join("history.jsonl");
    let file = std::fs::File::open(&path).map_err(|source| BenchError::Read {
        path: path.clone(),
        source,
    })?;
    let events =
        history::read(std::io::BufReader::new(file)).map_err(|error| BenchError::Result {
            path: path.clone(),
            reason: error.to_string(),
        })?;
    write_reports(dir, &events)
}

/// Checks `events` and writes `report.json`, `report.md` and
/// `timeline.svg` in `dir`.
pub fn write_reports(dir: &Path, events: &[history::Event]) -> Result<checker::Report, BenchError> {
    let report = checker::check(events);
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| BenchError::Write { path, source })
    };
    write(
        "report.json",
        serde_json::to_string_pretty(&report).expect("a report serializes") + "\n",
    )?;
    write("report.md", report.markdown())?;
    let title = format!(
        "{}: {} sends acknowledged, {} faults",
        dir.file_name()
            .map_or("run".into(), |name| name.to_string_lossy()),
        report.counts.sends_ok,
        report.counts.faults
    );
    let svg = timeline::timeline_svg(&title, events).map_err(|error| BenchError::Write {
        path: dir.join("timeline.svg"),
        source: std::io::Error::other(error.to_string()),
    })?;
    write("timeline.svg", svg)?;
    Ok(report)
}
