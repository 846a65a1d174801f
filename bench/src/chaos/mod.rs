//! What a broker promises, checked: histories of what clients saw
//! ([`history`]) and the checker that finds lost, duplicated, reordered
//! and skipped records in them ([`checker`]), with Jepsen's Kafka
//! definitions. `sluice-bench check DIR` checks `DIR/history.jsonl` and
//! writes `DIR/report.json` and `DIR/report.md`.

pub mod checker;
pub mod history;
pub mod run;

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
    let report = checker::check(&events);
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| BenchError::Write { path, source })
    };
    write(
        "report.json",
        serde_json::to_string_pretty(&report).expect("a report serializes") + "\n",
    )?;
    write("report.md", report.markdown())?;
    Ok(report)
}
