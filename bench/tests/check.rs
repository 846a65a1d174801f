//! `sluice-bench check DIR`: the checker run on a history file, as a run
//! leaves it, through the real binary: a clean history passes and writes
//! both reports; a history that lost an acknowledged write fails, naming
//! the anomaly.

use std::{path::Path, process::Command};

const BENCH: &str = env!("CARGO_BIN_EXE_sluice-bench");

fn line(event: &str) -> String {
    format!("{event}\n")
}

/// Two sends acknowledged at offsets 0 and 1 of partition 0 of "t"; the
/// reads of `read` (offset, value).
fn history(dir: &Path, read: &[(u64, &str)]) {
    let mut text = String::new();
    for (op, offset) in [(1, 0), (2, 1)] {
        let value = format!("w1-{offset}");
        text += &line(&format!(
            r#"{{"op":{op},"client":1,"type":"invoke","f":"send","topic":"t","partition":0,"value":"{value}","mono_ns":{op}0}}"#
        ));
        text += &line(&format!(
            r#"{{"op":{op},"client":1,"type":"ok","f":"send","topic":"t","partition":0,"value":"{value}","offset":{offset},"mono_ns":{op}5}}"#
        ));
    }
    let reads: Vec<String> = read
        .iter()
        .map(|(offset, value)| {
            format!(r#"{{"topic":"t","partition":0,"offset":{offset},"value":"{value}"}}"#)
        })
        .collect();
    text += &line(&format!(
        r#"{{"op":3,"client":2,"type":"ok","f":"poll","reads":[{}],"final_read":true,"mono_ns":100}}"#,
        reads.join(",")
    ));
    std::fs::write(dir.join("history.jsonl"), text).unwrap();
}

#[test]
fn a_clean_history_passes_and_a_lossy_one_fails() {
    let clean = tempfile::tempdir().unwrap();
    history(clean.path(), &[(0, "w1-0"), (1, "w1-1")]);
    let output = Command::new(BENCH)
        .arg("check")
        .arg(clean.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("# Check: valid"));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(clean.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["valid"], true);
    assert_eq!(report["counts"]["sends_ok"], 2);
    assert!(clean.path().join("report.md").exists());

    let lossy = tempfile::tempdir().unwrap();
    history(lossy.path(), &[(1, "w1-1")]);
    let output = Command::new(BENCH)
        .arg("check")
        .arg(lossy.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("1 lost_write"), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(lossy.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(
        report["anomalies"]["lost_write"]["examples"][0]["value"],
        "w1-0"
    );

    // A history that is not one is refused with its line.
    let broken = tempfile::tempdir().unwrap();
    std::fs::write(broken.path().join("history.jsonl"), "{\"type\":\"ok\"}\n").unwrap();
    let output = Command::new(BENCH)
        .arg("check")
        .arg(broken.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("line 1"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
