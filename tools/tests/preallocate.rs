//! Segment files ahead of their writes, through the broker: the
//! `preallocate` topic config, off by default (the active segment's file
//! grows with its writes), on when set at creation or later (the file is
//! allocated 16 MiB ahead); and the spare segment (`segment.prepare`, on by
//! default) a fast-filling partition rolls into. Either way the records
//! survive kill -9.

mod common;

use std::{fs, path::PathBuf};

use common::*;
use sluice_storage::log::{PREALLOCATE_STEP_BYTES as STEP_BYTES, PREPARE_AFTER_BYTES};

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
    broker.cli_ok(&["produce", topic], Some(input.as_bytes()));
}

fn consumed(broker: &Broker, topic: &str) -> Vec<String> {
    consumed_n(broker, topic, 4)
}

fn consumed_n(broker: &Broker, topic: &str, count: usize) -> Vec<String> {
    let out = broker.cli_ok(
        &[
            "consume",
            topic,
            "--offset",
            "earliest",
            "--count",
            &count.to_string(),
        ],
        None,
    );
    out.lines().map(str::to_string).collect()
}

#[test]
fn segments_grow_with_their_writes_unless_preallocate_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), 1);
    broker.cli_ok(&["topic", "create", "plain", "--partitions", "1"], None);
    broker.cli_ok(
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
    );
    produce_lines(&broker, "plain", &["one", "two"]);
    produce_lines(&broker, "ahead", &["one", "two"]);

    // The default: the file holds what was written, in whole pages.
    let plain = active_segment_bytes(&broker, "plain");
    assert!(
        plain > 0 && plain <= 64 * 1024,
        "an unpreallocated segment of two records is {plain} bytes"
    );
    assert_eq!(active_segment_bytes(&broker, "ahead"), STEP_BYTES);
    let described = broker.cli_ok(&["topic", "describe", "ahead"], None);
    assert!(
        described
            .lines()
            .any(|line| line.split_whitespace().collect::<Vec<_>>() == ["preallocate", "true"]),
        "{described}"
    );

    // Turned on later, it applies from the next write.
    broker.cli_ok(
        &["topic", "alter-config", "plain", "-c", "preallocate=true"],
        None,
    );
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

#[test]
fn a_partition_that_fills_segments_fast_rolls_into_a_spare_and_survives_kill9() {
    const SEGMENT_BYTES: u64 = 32 * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), 1);
    broker.cli_ok(
        &[
            "topic",
            "create",
            "fast",
            "--partitions",
            "1",
            "-c",
            &format!("segment.bytes={SEGMENT_BYTES}"),
        ],
        None,
    );
    // Past PREPARE_AFTER_BYTES in a few seconds: fast enough for a spare.
    let mut sent = Vec::new();
    produce_numbered(
        &broker,
        &mut sent,
        (PREPARE_AFTER_BYTES / 1000) as usize + 2000,
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while segment_files(&broker, "fast").len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no roll into a spare: {:?}",
            segment_files(&broker, "fast")
        );
        produce_numbered(&broker, &mut sent, 100);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let files = segment_files(&broker, "fast");
    let first = fs::metadata(&files[0]).unwrap().len();
    assert!(
        (PREPARE_AFTER_BYTES..SEGMENT_BYTES).contains(&first),
        "the first segment rolled early, at {first} bytes"
    );
    assert_eq!(
        active_segment_bytes(&broker, "fast"),
        SEGMENT_BYTES,
        "the active segment is the spare, zero-filled to the segment size"
    );
    produce_numbered(&broker, &mut sent, 10);

    broker.restart_after_kill9();
    assert_eq!(consumed_n(&broker, "fast", sent.len()), sent);
    produce_numbered(&broker, &mut sent, 1);
    assert_eq!(consumed_n(&broker, "fast", sent.len()), sent);
}

/// Produces `count` records of ~1 KB to topic `fast`, numbered on from
/// `sent`, and adds them to it.
fn produce_numbered(broker: &Broker, sent: &mut Vec<String>, count: usize) {
    let filler = "x".repeat(990);
    let lines: Vec<String> = (sent.len()..sent.len() + count)
        .map(|i| format!("{i:08}{filler}"))
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    produce_lines(broker, "fast", &refs);
    sent.extend(lines);
}
