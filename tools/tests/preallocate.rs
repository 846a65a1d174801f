//! The `preallocate` topic config through the broker: off by default (the
//! active segment's file grows with its writes), on when set at creation or
//! later (the file is allocated 16 MiB ahead), and either way the records
//! survive a restart.

mod common;

use std::{fs, path::PathBuf};

use common::*;
use sluice_storage::log::PREALLOCATE_STEP_BYTES as STEP_BYTES;

fn ok(output: std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The `.log` files of the topic's partition 0, in offset order.
fn segment_files(broker: &Broker, topic: &str) -> Vec<PathBuf> {
    let topics = broker.dir.join("topics");
    let prefix = format!("{topic}-");
    let topic_dir = fs::read_dir(&topics)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with(&prefix))
        })
        .unwrap_or_else(|| panic!("no directory for {topic} in {}", topics.display()));
    let mut files: Vec<PathBuf> = fs::read_dir(topic_dir.join("0"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    files.sort();
    files
}

fn active_segment_bytes(broker: &Broker, topic: &str) -> u64 {
    let files = segment_files(broker, topic);
    let last = files.last().expect("a segment file");
    fs::metadata(last).unwrap().len()
}

fn produce_lines(broker: &Broker, topic: &str, lines: &[&str]) {
    let input = lines.join("\n") + "\n";
    ok(broker.cli(&["produce", topic], Some(input.as_bytes())));
}

fn consumed(broker: &Broker, topic: &str) -> Vec<String> {
    let out = ok(broker.cli(
        &["consume", topic, "--offset", "earliest", "--count", "4"],
        None,
    ));
    out.lines().map(str::to_string).collect()
}

#[test]
fn segments_grow_with_their_writes_unless_preallocate_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), 1);
    ok(broker.cli(&["topic", "create", "plain", "--partitions", "1"], None));
    ok(broker.cli(
        &[
            "topic",
            "create",
            "ahead",
            "--partitions",
            "1",
            "-c",
            "preallocate=true",
        ],
        None,
    ));
    produce_lines(&broker, "plain", &["one", "two"]);
    produce_lines(&broker, "ahead", &["one", "two"]);

    // The default: the file holds what was written, in whole pages.
    let plain = active_segment_bytes(&broker, "plain");
    assert!(
        plain > 0 && plain <= 64 * 1024,
        "an unpreallocated segment of two records is {plain} bytes"
    );
    assert_eq!(active_segment_bytes(&broker, "ahead"), STEP_BYTES);
    let described = ok(broker.cli(&["topic", "describe", "ahead"], None));
    assert!(
        described
            .lines()
            .any(|line| line.split_whitespace().collect::<Vec<_>>() == ["preallocate", "true"]),
        "{described}"
    );

    // Turned on later, it applies from the next write.
    ok(broker.cli(
        &["topic", "alter-config", "plain", "-c", "preallocate=true"],
        None,
    ));
    produce_lines(&broker, "plain", &["three", "four"]);
    assert_eq!(active_segment_bytes(&broker, "plain"), STEP_BYTES);

    // Bad values are refused and change nothing.
    let refused = broker.cli(
        &["topic", "alter-config", "ahead", "-c", "preallocate=yes"],
        None,
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("preallocate"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // Across a kill -9, every acknowledged record of both is there.
    broker.restart_after_kill9();
    assert_eq!(consumed(&broker, "plain"), ["one", "two", "three", "four"]);
    produce_lines(&broker, "ahead", &["three", "four"]);
    assert_eq!(consumed(&broker, "ahead"), ["one", "two", "three", "four"]);
}
