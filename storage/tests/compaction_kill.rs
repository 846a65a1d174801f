//! The kill test of compaction: a child process appends Kafka batches over
//! a few keys to a compacted log, rolls small segments and runs the
//! cleaner without pause, and reports every acknowledged batch; the parent
//! kills it with SIGKILL at a random moment (sometimes in the middle of a
//! cleaning pass or of a swap), opens the log itself and checks that no
//! swap is left half done, that offsets rise, that every record read is
//! one that was appended, at its offset, and that the latest acknowledged
//! record of each key is there (or a later one of that key). Twenty rounds
//! on the same directory: each child recovers what the previous one left.
//!
//! `SLUICE_TEST_SEED=<seed>` makes the same kill moments again.

#[macro_use]
mod common;

use common::{
    harness::{report, ReportingChild},
    run, seeded_rng,
};

use std::{
    collections::BTreeMap,
    os::unix::process::ExitStatusExt,
    path::{Path, PathBuf},
    process::ExitCode,
    rc::Rc,
    time::{Duration, Instant},
};

use rand::Rng;
use sluice_storage::{
    batch::filter::{for_each_record, kafka_batch, KeyValue},
    log::{
        set_cleaner_pace, CleanupPolicy, CompactionConfig, DirtyRatio, Log, LogConfig,
        CLEANED_SUFFIX, SWAP_SUFFIX,
    },
};

fn main() -> ExitCode {
    common::harness::main(
        &tests![acknowledged_records_survive_sigkill_during_compaction],
        &children![compacts_until_killed],
    )
}

const ROUNDS: u64 = 20;
const KEYS: u64 = 16;
const RECORDS_PER_BATCH: u64 = 8;
/// A child never lives longer: the parent kills it well before.
const CHILD_LIFETIME_MAX: Duration = Duration::from_secs(60);
const FIRST_ACK_TIMEOUT: Duration = Duration::from_secs(30);

fn config() -> LogConfig {
    LogConfig {
        segment_bytes_max: 8 * 1024,
        index_interval_bytes: 512,
        cleanup_policy: CleanupPolicy {
            delete: false,
            compact: true,
        },
        compaction: CompactionConfig {
            min_cleanable_dirty_ratio: DirtyRatio::new(0.0).expect("a ratio"),
            ..CompactionConfig::default()
        },
        file_delete_delay_ms: 0,
        prepare_segments: false,
        ..LogConfig::default()
    }
}

/// The key and value of record `index` of batch `sequence` of `round`.
fn record(round: u64, sequence: u64, index: u64) -> (String, String) {
    let key = format!("key-{}", (sequence * 5 + index * 3) % KEYS);
    let value = format!("{round}:{sequence}:{index}:{}", "v".repeat(40));
    (key, value)
}

/// The child: appends and reports `ack <base> <round> <sequence>`, rolls
/// every few batches, and compacts without pause.
fn compacts_until_killed(args: &[String]) {
    let [dir, round] = args else {
        panic!("a child takes <dir> <round>, not {args:?}");
    };
    let dir = PathBuf::from(dir);
    let round: u64 = round.parse().expect("the round is a number");
    run(move || async move {
        set_cleaner_pace(0);
        let log = Rc::new(
            Log::open(&dir, config())
                .await
                .expect("child opens the log"),
        );
        report(format_args!("open {}", log.end_offset()));
        let deadline = Instant::now() + CHILD_LIFETIME_MAX;
        let cleaner = glommio::spawn_local({
            let log = log.clone();
            async move {
                while Instant::now() < deadline {
                    log.compact().await.expect("a pass");
                    glommio::timer::sleep(Duration::from_millis(1)).await;
                }
            }
        });
        let mut sequence = 0;
        while Instant::now() < deadline {
            let records: Vec<(String, String)> = (0..RECORDS_PER_BATCH)
                .map(|index| record(round, sequence, index))
                .collect();
            let pairs: Vec<KeyValue<'_>> = records
                .iter()
                .map(|(key, value)| (Some(key.as_bytes()), Some(value.as_bytes())))
                .collect();
            let batch = kafka_batch(&pairs, 3, 0).expect("a batch");
            let appended = log.append(batch).await.expect("append");
            report(format_args!(
                "ack {} {round} {sequence}",
                appended.base_offset
            ));
            sequence += 1;
            if sequence % 4 == 0 {
                log.roll();
            }
        }
        cleaner.await;
    });
}

/// The latest acknowledged offset and value of each key.
type Latest = BTreeMap<String, (u64, String)>;

fn acknowledged_records_survive_sigkill_during_compaction() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let stderr_path = dir.path().join("child.stderr");
    let log_dir = dir.path().join("log");
    let mut rng = seeded_rng("compaction_kill");
    let mut latest = Latest::new();
    let mut compacted_rounds = 0;
    for round in 0..ROUNDS {
        let args = [log_dir.display().to_string(), round.to_string()];
        let mut child = ReportingChild::spawn("compacts_until_killed", &args, &stderr_path);
        let mut printed = Vec::new();
        loop {
            match child.next_line(FIRST_ACK_TIMEOUT) {
                Some(line) => {
                    let is_ack = line.starts_with("ack ");
                    printed.push(line);
                    if is_ack {
                        break;
                    }
                }
                None => {
                    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                    panic!("round {round}: no acknowledgement; stderr:\n{stderr}");
                }
            }
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(300..1_500)));
        let status = child.kill();
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "round {round}: the child exited before the kill: {}",
            std::fs::read_to_string(&stderr_path).unwrap_or_default()
        );
        printed.extend(child.rest());
        for line in &printed {
            let Some(ack) = line.strip_prefix("ack ") else {
                continue;
            };
            let fields: Vec<u64> = ack.split(' ').map(|field| field.parse().unwrap()).collect();
            let [base, ack_round, sequence] = fields[..] else {
                panic!("round {round}: bad line {line:?}");
            };
            assert_eq!(ack_round, round);
            for index in 0..RECORDS_PER_BATCH {
                let (key, value) = record(round, sequence, index);
                latest.insert(key, (base + index, value));
            }
        }
        let (records, gaps) = check(&log_dir, &latest, round);
        if gaps {
            compacted_rounds += 1;
        }
        eprintln!("round {round}: {records} records read, gaps: {gaps}");
    }
    // How many rounds killed a log compaction had changed: the cleaner
    // runs at the lowest CPU and I/O priority beside a child that appends
    // flat out, and on a 2-core machine a pass finished before the kill in
    // 1 to 7 rounds of 20. Each crash point of the swap is covered
    // deterministically by the fault-injection test in cleaner_tests.rs;
    // this test's claim is the read-back above, in every round.
    eprintln!("compaction seen in {compacted_rounds} of {ROUNDS} rounds");
}

/// Opens the log and checks it (see the module doc); returns the records
/// read and whether the offsets have gaps.
fn check(dir: &Path, latest: &Latest, round: u64) -> (usize, bool) {
    let dir = dir.to_path_buf();
    let latest = latest.clone();
    run(move || async move {
        let log = Log::open(&dir, config()).await.expect("the log opens");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                !name.ends_with(CLEANED_SUFFIX) && !name.ends_with(SWAP_SUFFIX),
                "round {round}: {name} left after the open"
            );
        }
        let mut read: Vec<(u64, String, String)> = Vec::new();
        let mut offset = log.start_offset();
        while offset < log.visible_end() {
            let batches = log.read(offset, 256 * 1024).await.expect("read");
            for batch in &batches {
                for_each_record(batch, |record| {
                    read.push((
                        record.offset.0,
                        String::from_utf8(record.key.unwrap().to_vec()).unwrap(),
                        String::from_utf8(record.value.unwrap().to_vec()).unwrap(),
                    ));
                })
                .expect("records read");
                offset = batch.last_offset().next();
            }
        }
        let mut gaps = false;
        for pair in read.windows(2) {
            assert!(pair[0].0 < pair[1].0, "round {round}: offsets go back");
            gaps |= pair[1].0 > pair[0].0 + 1;
        }
        let mut last_of_key: BTreeMap<&str, u64> = BTreeMap::new();
        for (offset, key, value) in &read {
            // Every record is one appended: its value names it.
            let fields: Vec<&str> = value.split(':').collect();
            let (record_round, sequence, index): (u64, u64, u64) = (
                fields[0].parse().unwrap(),
                fields[1].parse().unwrap(),
                fields[2].parse().unwrap(),
            );
            assert_eq!(
                record(record_round, sequence, index),
                (key.clone(), value.clone()),
                "round {round}: offset {offset}"
            );
            last_of_key.insert(key, *offset);
        }
        for (key, (offset, value)) in &latest {
            let last = last_of_key.get(key.as_str()).copied();
            assert!(
                last.is_some_and(|last| last >= *offset),
                "round {round}: the latest acknowledged {key} at {offset} ({value}) is gone; last read {last:?}"
            );
            if last == Some(*offset) {
                let found = read.iter().find(|(at, _, _)| at == offset).unwrap();
                assert_eq!(&found.2, value, "round {round}: {key} at {offset}");
            }
        }
        log.close().await.expect("close");
        (read.len(), gaps)
    })
}
