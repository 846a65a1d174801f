//! Deleting a topic through the broker: its directory is renamed at once
//! and removed after `file.delete.delay.ms`; what a kill -9 left awaiting
//! deletion, and the directory of a topic the metadata no longer has, are
//! deleted at the next start, while the other topics read on.

mod common;

use std::{
    fs,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use common::*;

/// The names under the broker's `topics` directory, sorted.
fn topic_dirs(broker: &Broker) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(broker.dir.join("topics"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn of_topic<'a>(names: &'a [String], topic: &str) -> Vec<&'a String> {
    let prefix = format!("{topic}-");
    names
        .iter()
        .filter(|name| name.starts_with(&prefix))
        .collect()
}

fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn create_with_records(broker: &Broker, topic: &str, configs: &[&str]) {
    let mut args = vec!["topic", "create", topic, "--partitions", "2"];
    for config in configs {
        args.extend(["-c", config]);
    }
    broker.cli_ok(&args, None);
    let lines: String = (0..100).map(|i| format!("{topic}-{i}\n")).collect();
    broker.cli_ok(&["produce", topic], Some(lines.as_bytes()));
}

fn consumed_count(broker: &Broker, topic: &str) -> usize {
    let out = broker.cli_ok(&["consume", topic, "--count", "100"], None);
    out.lines().filter(|line| !line.is_empty()).count()
}

fn plant(dir: &Path, bytes: usize) -> PathBuf {
    fs::create_dir_all(dir.join("0")).unwrap();
    let file = dir.join("0").join("00000000000000000000.log");
    fs::write(&file, vec![1u8; bytes]).unwrap();
    file
}

#[test]
fn a_deleted_topic_is_renamed_at_once_and_removed_after_its_delay() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), 2);
    create_with_records(&broker, "gone", &["file.delete.delay.ms=2000"]);
    create_with_records(&broker, "kept", &[]);
    let deleted_at = Instant::now();
    broker.cli_ok(&["topic", "delete", "gone"], None);
    let names = topic_dirs(&broker);
    let gone = of_topic(&names, "gone");
    assert_eq!(gone.len(), 1, "{names:?}");
    assert!(
        gone[0].ends_with(".deleted"),
        "renamed out of the way at once: {names:?}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        of_topic(&topic_dirs(&broker), "gone").len(),
        1,
        "kept through its delay"
    );
    eventually("the deleted topic's files stayed", || {
        of_topic(&topic_dirs(&broker), "gone").is_empty()
    });
    assert!(deleted_at.elapsed() >= Duration::from_millis(2000));
    assert_eq!(consumed_count(&broker, "kept"), 100);
}

#[test]
fn what_a_kill_left_awaiting_deletion_is_deleted_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), 1);
    // The default delay, a minute: still there when the broker is killed.
    create_with_records(&broker, "pending", &[]);
    create_with_records(&broker, "kept", &[]);
    broker.cli_ok(&["topic", "delete", "pending"], None);
    let names = topic_dirs(&broker);
    let pending = of_topic(&names, "pending");
    assert!(
        pending.len() == 1 && pending[0].ends_with(".deleted"),
        "{names:?}"
    );
    broker.kill9();
    // A topic directory no topic of the metadata names: deleted from the
    // metadata, stopped before its files were renamed.
    let orphan = broker.dir.join("topics").join(format!("orphan-{:032x}", 7));
    let orphan_file = plant(&orphan, 1 << 20);
    assert!(orphan_file.exists());

    broker.spawn();
    eventually("leftovers stayed", || {
        let names = topic_dirs(&broker);
        of_topic(&names, "pending").is_empty() && of_topic(&names, "orphan").is_empty()
    });
    let names = topic_dirs(&broker);
    assert_eq!(of_topic(&names, "kept").len(), 1, "{names:?}");
    assert_eq!(consumed_count(&broker, "kept"), 100);
}

fn describe(broker: &Broker, topic: &str) -> serde_json::Value {
    let out = broker.cli_ok(&["topic", "describe", topic, "--format", "json"], None);
    serde_json::from_str(&out).unwrap()
}

/// Retention run by the broker on its own schedule (here every 100 ms):
/// the log start moves past the deleted segments, reads start there, and
/// the deleted files leave the disk.
#[test]
fn retention_through_the_broker_moves_the_log_start_and_gives_the_space_back() {
    const SEGMENT_BYTES: u64 = 64 * 1024;
    const RETENTION_BYTES: u64 = 2 * SEGMENT_BYTES;
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_with(
        dir.path(),
        1,
        &[("SLUICE_RETENTION_CHECK_INTERVAL_MS", "100")],
    );
    let segment_bytes = format!("segment.bytes={SEGMENT_BYTES}");
    let retention_bytes = format!("retention.bytes={RETENTION_BYTES}");
    let configs = [
        segment_bytes.as_str(),
        retention_bytes.as_str(),
        "file.delete.delay.ms=0",
    ];
    let mut args = vec!["topic", "create", "short", "--partitions", "1"];
    for config in &configs {
        args.extend(["-c", config]);
    }
    broker.cli_ok(&args, None);
    let filler = "x".repeat(1000);
    let lines: String = (0..1000).map(|i| format!("{i:04}{filler}\n")).collect();
    broker.cli_ok(&["produce", "short"], Some(lines.as_bytes()));

    let partition = |described: &serde_json::Value, key: &str| {
        described["partitions"][0][key].as_u64().unwrap()
    };
    // Retention may run while the records arrive: wait until it has moved
    // the log start and then left the partition alone for a few passes.
    // (It deletes the oldest sealed segment only while the rest still
    // holds retention.bytes, as Kafka does; the active segment stays.)
    eventually("retention never moved the log start", || {
        let before = describe(&broker, "short");
        std::thread::sleep(Duration::from_millis(300));
        partition(&before, "log_start") > 0 && describe(&broker, "short") == before
    });
    let described = describe(&broker, "short");
    let log_start = partition(&described, "log_start");
    assert_eq!(partition(&described, "log_end"), 1000);
    assert!(
        partition(&described, "size_bytes") < lines.len() as u64 / 2,
        "most of the partition deleted: {described}"
    );
    let first = broker.cli_ok(&["consume", "short", "--count", "1"], None);
    assert!(
        first.starts_with(&format!("{log_start:04}")),
        "reads start at the log start {log_start}: {first}"
    );

    let topic_dir = broker
        .dir
        .join("topics")
        .join(of_topic(&topic_dirs(&broker), "short")[0]);
    let files = |suffix: &str| {
        fs::read_dir(topic_dir.join("0"))
            .unwrap()
            .filter(|entry| {
                entry
                    .as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|ext| ext == suffix)
            })
            .count()
    };
    eventually("deleted segments stayed on disk", || files("deleted") == 0);
    assert_eq!(
        files("log") as u64,
        partition(&describe(&broker, "short"), "segments")
    );
}
