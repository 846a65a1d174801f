//! `Log::delete_records` (Kafka's DeleteRecords): the log start moves up to
//! the high watermark, reads below it are refused, the segments wholly below
//! it leave the disk, and the start survives a close, a crash (a copy of the
//! directory as a crash leaves it, and a child process killed with SIGKILL)
//! and later retention.
//!
//! The kill test's child is this test binary run again as `--child
//! deletes_until_killed <dir> <seed>`: the binary has its own `main`
//! (`harness = false`), which runs the child or the tests, so the child is
//! never counted as a test. Its kill moments and the child's choices come
//! from a seed the test prints; `SLUICE_TEST_SEED=<seed>` makes them again.

#[macro_use]
mod common;

use common::{
    copy_as_crashed,
    harness::{report, ReportingChild},
    run, seeded_rng, tag_of, tagged_batch, TIMESTAMP_BASE_MS,
};

use std::{
    os::unix::process::ExitStatusExt,
    path::Path,
    process::ExitCode,
    time::{Duration, Instant},
};

use rand::{rngs::StdRng, Rng, SeedableRng};
use sluice_storage::{
    batch::{Batch, BatchBuilder},
    log::{
        DeleteRecordsError, FlushPolicy, Log, LogConfig, OpenError, ReadError, CHECKPOINT_NAME,
        PRODUCERS_SUFFIX,
    },
    Offset,
};

fn main() -> ExitCode {
    common::harness::main(
        &tests![
            reads_below_the_new_start_are_refused_and_whole_segments_leave_the_disk,
            the_start_survives_a_close_and_reopen,
            a_crash_between_the_checkpoint_and_the_deletion_leaves_the_start_and_retention_deletes_the_rest,
            deleting_to_the_end_empties_the_log_and_appends_go_on_at_the_same_offsets,
            under_the_interval_policy_the_start_waits_for_the_log_to_be_durable,
            retention_after_a_move_never_takes_the_start_back_and_moves_it_on,
            producers_of_deleted_records_are_remembered_after_a_crash,
            a_damaged_checkpoint_keeps_the_log_closed,
            the_start_survives_sigkill,
        ],
        &children![deletes_until_killed],
    )
}

/// Records per batch: batch `tag` holds offsets `4 * tag ..= 4 * tag + 3`
/// when batches are appended in tag order from 0.
const RECORDS: u64 = 4;
/// About 2.2 KiB per batch: 7 batches a segment.
const VALUE_BYTES: usize = 512;
const SEGMENT_BYTES_MAX: u64 = 16 * 1024;
const READ_BYTES_MAX: usize = 1024 * 1024;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes_max: SEGMENT_BYTES_MAX,
        index_interval_bytes: 1024,
        tail_cache_bytes_max: 8 * 1024,
        retention_ms: None,
        retention_bytes: None,
        ..LogConfig::default()
    }
}

/// A batch of [`RECORDS`] records whose key is `tag`.
fn batch(tag: u64) -> Batch {
    tagged_batch(tag, RECORDS, VALUE_BYTES, None)
}

async fn append_tags(log: &Log, tags: std::ops::Range<u64>) {
    for tag in tags {
        let appended = log.append(batch(tag)).await.unwrap();
        assert_eq!(appended.base_offset, Offset(tag * RECORDS));
    }
}

/// The base offsets of the segment files in `dir`, from their names.
fn segment_files(dir: &Path) -> Vec<Offset> {
    files_with_suffix(dir, "log")
}

fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<Offset> {
    let mut bases: Vec<Offset> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == suffix))
        .map(|path| Offset(path.file_stem().unwrap().to_str().unwrap().parse().unwrap()))
        .collect();
    bases.sort();
    bases
}

/// Reads from the start to the visible end and checks that the batches
/// follow one another, the first containing the start; returns their tags.
async fn read_all(log: &Log) -> Vec<u64> {
    let start = log.start_offset();
    let end = log.visible_end();
    let mut tags = Vec::new();
    let mut next = start;
    while next < end {
        let batches = log.read(next, READ_BYTES_MAX).await.unwrap();
        assert!(!batches.is_empty(), "nothing read at {next} below {end}");
        for batch in batches {
            if next == start {
                assert!(
                    batch.base_offset() <= start && start <= batch.last_offset(),
                    "the first batch read, {}..={}, does not contain the start {start}",
                    batch.base_offset(),
                    batch.last_offset()
                );
            } else {
                assert_eq!(batch.base_offset(), next, "the log skips offsets");
            }
            tags.push(tag_of(&batch));
            next = batch.last_offset().next();
        }
    }
    assert_eq!(next, end);
    tags
}

fn assert_out_of_range(result: Result<Vec<Batch>, ReadError>, offset: Offset, start: Offset) {
    match result {
        Err(ReadError::OffsetOutOfRange {
            offset: refused,
            log_start,
            ..
        }) => {
            assert_eq!(refused, offset);
            assert_eq!(log_start, start);
        }
        other => panic!("a read at {offset} below the start {start} gave {other:?}"),
    }
}

/// Everything a log with its start at `start` must show: reads below it
/// refused, at it served, lookups by time not below it.
async fn check_start(log: &Log, start: Offset) {
    assert_eq!(log.start_offset(), start);
    for below in [Offset(0), Offset(start.0.saturating_sub(1))] {
        if below < start {
            assert_out_of_range(log.read(below, 1).await, below, start);
        }
    }
    if start < log.visible_end() {
        let batches = log.read(start, 1).await.unwrap();
        assert!(batches[0].base_offset() <= start && start <= batches[0].last_offset());
    }
    // Every record is at or after the oldest timestamp: the answer is the
    // start (the first record not deleted), not record 0.
    let found = log.offset_for_timestamp(0).await.unwrap();
    if start < log.visible_end() {
        assert_eq!(found, Some(start));
    } else {
        assert_eq!(found, None);
    }
}

fn reads_below_the_new_start_are_refused_and_whole_segments_leave_the_disk() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), config()).await.unwrap();
        append_tags(&log, 0..60).await;
        let bases = log.segment_bases();
        assert!(bases.len() >= 6, "{bases:?}");
        assert_eq!(segment_files(dir.path()), bases);

        // Inside a batch, inside the fourth segment.
        let before = Offset(bases[3].0 + 6);
        assert!(before < bases[4]);
        assert_eq!(log.delete_records(before).await, Ok(before));
        check_start(&log, before).await;
        assert_eq!(log.segment_bases(), bases[3..].to_vec());
        assert_eq!(segment_files(dir.path()), bases[3..].to_vec());
        for suffix in ["index", "timeindex", PRODUCERS_SUFFIX] {
            let below: Vec<_> = files_with_suffix(dir.path(), suffix)
                .into_iter()
                .filter(|&base| base < bases[3])
                .collect();
            assert!(below.is_empty(), ".{suffix} files left below: {below:?}");
        }
        assert!(dir.path().join(CHECKPOINT_NAME).exists());
        // The batch containing the start is read whole, then the rest.
        let tags = read_all(&log).await;
        assert_eq!(tags, (before.0 / RECORDS..60).collect::<Vec<_>>());
        // By time: a timestamp below the start's answers the start, one
        // after it the record that has it.
        let at_start =
            TIMESTAMP_BASE_MS + 10 * (before.0 / RECORDS) as i64 + (before.0 % RECORDS) as i64;
        assert_eq!(
            log.offset_for_timestamp(at_start - 1).await.unwrap(),
            Some(before)
        );
        assert_eq!(
            log.offset_for_timestamp(at_start + 1).await.unwrap(),
            Some(before.next())
        );

        // At or below the start: nothing changes.
        assert_eq!(log.delete_records(Offset(0)).await, Ok(before));
        assert_eq!(log.delete_records(before).await, Ok(before));
        assert_eq!(log.start_offset(), before);

        // Past the high watermark: refused, nothing moves.
        let end = log.end_offset();
        assert_eq!(log.visible_end(), end);
        assert_eq!(
            log.delete_records(end.next()).await,
            Err(DeleteRecordsError::OffsetOutOfRange {
                before: end.next(),
                log_start: before,
                high_watermark: end,
            })
        );
        assert_eq!(log.start_offset(), before);

        // Appends go on where they were.
        append_tags(&log, 60..61).await;
        // A second move, to a segment base.
        let bases = log.segment_bases();
        assert_eq!(log.delete_records(bases[2]).await, Ok(bases[2]));
        check_start(&log, bases[2]).await;
        assert_eq!(segment_files(dir.path()), bases[2..].to_vec());
        log.close().await.unwrap();
        assert_eq!(
            log.delete_records(end).await,
            Err(DeleteRecordsError::Closed)
        );
    });
}

fn the_start_survives_a_close_and_reopen() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), config()).await.unwrap();
        append_tags(&log, 0..40).await;
        let before = Offset(log.segment_bases()[2].0 + 1);
        assert_eq!(log.delete_records(before).await, Ok(before));
        let tags = read_all(&log).await;
        log.close().await.unwrap();

        let log = Log::open(dir.path(), config()).await.unwrap();
        check_start(&log, before).await;
        assert!(
            log.segment_bases()[0] < before,
            "the start is inside a segment"
        );
        assert_eq!(read_all(&log).await, tags);
        append_tags(&log, 40..45).await;
        log.close().await.unwrap();

        let log = Log::open(dir.path(), config()).await.unwrap();
        check_start(&log, before).await;
        assert_eq!(log.end_offset(), Offset(45 * RECORDS));
        log.close().await.unwrap();
    });
}

fn a_crash_between_the_checkpoint_and_the_deletion_leaves_the_start_and_retention_deletes_the_rest()
{
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let original = dir.path().join("original");
        let crashed = dir.path().join("crashed");
        let log = Log::open(&original, config()).await.unwrap();
        append_tags(&log, 0..40).await;
        // The segments as they were, with the checkpoint of the move: as if
        // the process died after syncing the checkpoint, before deleting.
        copy_as_crashed(&original, &crashed);
        let bases = log.segment_bases();
        let before = Offset(bases[3].0 + 2);
        assert_eq!(log.delete_records(before).await, Ok(before));
        std::fs::copy(
            original.join(CHECKPOINT_NAME),
            crashed.join(CHECKPOINT_NAME),
        )
        .unwrap();
        log.close().await.unwrap();

        let log = Log::open(&crashed, config()).await.unwrap();
        assert_eq!(log.segment_bases(), bases, "nothing deleted yet");
        check_start(&log, before).await;
        let outcome = log.apply_retention().await.unwrap();
        assert_eq!(outcome.segments_deleted, 3);
        assert_eq!(outcome.log_start, before, "retention moved the start back");
        assert_eq!(log.segment_bases(), bases[3..].to_vec());
        assert_eq!(segment_files(&crashed), bases[3..].to_vec());
        check_start(&log, before).await;
        log.close().await.unwrap();
    });
}

fn deleting_to_the_end_empties_the_log_and_appends_go_on_at_the_same_offsets() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), config()).await.unwrap();
        append_tags(&log, 0..20).await;
        let end = log.end_offset();
        assert_eq!(log.delete_records(end).await, Ok(end));
        check_start(&log, end).await;
        assert!(log.read(end, READ_BYTES_MAX).await.unwrap().is_empty());
        assert_eq!(log.segment_count(), 1, "the active segment stays");
        log.close().await.unwrap();

        let log = Log::open(dir.path(), config()).await.unwrap();
        assert_eq!(log.end_offset(), end);
        check_start(&log, end).await;
        append_tags(&log, 20..22).await;
        assert_eq!(read_all(&log).await, vec![20, 21]);
        check_start(&log, end).await;
        log.close().await.unwrap();

        // An empty log: nothing to delete, and nothing past its end.
        let empty = dir.path().join("empty");
        let log = Log::open(&empty, config()).await.unwrap();
        assert_eq!(log.delete_records(Offset(0)).await, Ok(Offset(0)));
        assert!(matches!(
            log.delete_records(Offset(1)).await,
            Err(DeleteRecordsError::OffsetOutOfRange { .. })
        ));
        assert!(!empty.join(CHECKPOINT_NAME).exists());
        log.close().await.unwrap();
    });
}

fn under_the_interval_policy_the_start_waits_for_the_log_to_be_durable() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            flush: FlushPolicy::Interval(Duration::from_millis(500)),
            ..config()
        };
        let log = Log::open(dir.path(), config.clone()).await.unwrap();
        append_tags(&log, 0..30).await;
        let end = log.end_offset();
        assert_eq!(log.visible_end(), end, "visible before durable");
        let before = Offset(end.0 - 1);
        assert!(
            log.durable_end() < before,
            "the test needs the end not durable yet"
        );
        assert_eq!(log.delete_records(before).await, Ok(before));
        assert!(
            log.durable_end() >= before,
            "the start is past the durable end"
        );
        check_start(&log, before).await;
        log.close().await.unwrap();
        let log = Log::open(dir.path(), config).await.unwrap();
        check_start(&log, before).await;
        log.close().await.unwrap();
    });
}

fn retention_after_a_move_never_takes_the_start_back_and_moves_it_on() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), config()).await.unwrap();
        append_tags(&log, 0..30).await;
        let before = Offset(log.segment_bases()[1].0 + 3);
        assert_eq!(log.delete_records(before).await, Ok(before));

        // Nothing expired: retention deletes nothing and the start stays
        // inside the first segment.
        let outcome = log.apply_retention().await.unwrap();
        assert_eq!(outcome.segments_deleted, 0);
        assert_eq!(outcome.log_start, before);
        check_start(&log, before).await;

        // Rolls, then retention by size past the start: it moves on to a
        // segment base, and stays there after a reopen.
        append_tags(&log, 30..80).await;
        log.roll();
        append_tags(&log, 80..81).await;
        log.set_config(LogConfig {
            retention_bytes: Some(4 * SEGMENT_BYTES_MAX),
            ..config()
        })
        .unwrap();
        let outcome = log.apply_retention().await.unwrap();
        assert!(outcome.segments_deleted > 0);
        let start = log.start_offset();
        assert!(start > before);
        assert_eq!(outcome.log_start, start);
        assert_eq!(log.segment_bases()[0], start);
        check_start(&log, start).await;
        log.close().await.unwrap();

        let log = Log::open(dir.path(), config()).await.unwrap();
        check_start(&log, start).await;
        // A move below where retention got to changes nothing.
        assert_eq!(log.delete_records(before).await, Ok(start));
        log.close().await.unwrap();
    });
}

fn producers_of_deleted_records_are_remembered_after_a_crash() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let original = dir.path().join("original");
        let crashed = dir.path().join("crashed");
        let log = Log::open(&original, config()).await.unwrap();
        append_tags(&log, 0..10).await;
        log.roll();
        let producer_batch = |sequence: i32| {
            let mut builder = BatchBuilder::default().producer(42, 0, sequence);
            builder.push(TIMESTAMP_BASE_MS, Some(&[1]), &[7; 64], &[]);
            builder.finish()
        };
        append_tags(&log, 10..11).await;
        let original_append = log.append(producer_batch(0)).await.unwrap();
        for tag in 11..13 {
            log.append(batch(tag)).await.unwrap();
        }
        // The start past the producer's batch, inside the segment that has
        // it: the segment stays, the batch is unreadable.
        let before = Offset(original_append.last_offset.0 + 5);
        assert!(log.segment_bases().last().unwrap() < &before);
        assert_eq!(log.delete_records(before).await, Ok(before));
        copy_as_crashed(&original, &crashed);
        log.close().await.unwrap();

        let log = Log::open(&crashed, config()).await.unwrap();
        check_start(&log, before).await;
        let retry = log.append(producer_batch(0)).await.unwrap();
        assert!(
            retry.duplicate,
            "a retry of a deleted batch was stored again"
        );
        assert_eq!(retry.base_offset, original_append.base_offset);
        assert_eq!(log.producer(42).unwrap().next_sequence(), 1);
        log.close().await.unwrap();
    });
}

fn a_damaged_checkpoint_keeps_the_log_closed() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), config()).await.unwrap();
        append_tags(&log, 0..20).await;
        let before = Offset(10);
        log.delete_records(before).await.unwrap();
        log.close().await.unwrap();
        let path = dir.path().join(CHECKPOINT_NAME);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[16] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        match Log::open(dir.path(), config()).await {
            Err(OpenError::Checkpoint { path: named, .. }) => assert_eq!(named, path),
            Err(other) => panic!("opened with another error: {other}"),
            Ok(log) => panic!("opened with the start at {}", log.start_offset()),
        }
    });
}

// The kill test.

/// Kills per run, on the same directory.
const ROUNDS: u64 = 12;
/// The kill comes this long after the child's first report.
const KILL_DELAY_MS_MIN: u64 = 10;
const KILL_DELAY_MS_MAX: u64 = 200;
/// The child moves the start after every this many appends.
const APPENDS_PER_MOVE: u64 = 3;
/// A child that sees no kill stops after this long.
const CHILD_LIFETIME_MAX: Duration = Duration::from_secs(30);
const FIRST_REPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// The child: appends batches tagged with their own base offset / RECORDS,
/// and after every few moves the start to a random offset up to the end
/// (chosen by the seed it is given), printing `ack <base>`, `request
/// <before>` and `moved <start>` as each completes, until killed.
fn deletes_until_killed(args: &[String]) {
    let [dir, seed] = args else {
        panic!("the child takes <dir> <seed>, not {args:?}");
    };
    let dir = dir.clone();
    let seed: u64 = seed.parse().expect("the seed is a number");
    run(move || async move {
        let log = Log::open(&dir, config())
            .await
            .expect("child opens the log");
        report(format_args!(
            "open {} {}",
            log.start_offset(),
            log.end_offset()
        ));
        let mut rng = StdRng::seed_from_u64(seed);
        let deadline = Instant::now() + CHILD_LIFETIME_MAX;
        let mut appended = 0;
        while Instant::now() < deadline {
            let tag = log.end_offset().0 / RECORDS;
            let done = log.append(batch(tag)).await.expect("append");
            assert_eq!(done.base_offset, Offset(tag * RECORDS));
            report(format_args!("ack {}", done.base_offset));
            appended += 1;
            if appended % APPENDS_PER_MOVE == 0 {
                let start = log.start_offset().0;
                let end = log.visible_end().0;
                // Small steps mostly, now and then to the very end.
                let before = if rng.random_ratio(1, 8) {
                    end
                } else {
                    rng.random_range(start..=(start + 3 * RECORDS).min(end))
                };
                report(format_args!("request {before}"));
                let moved = log
                    .delete_records(Offset(before))
                    .await
                    .expect("delete_records");
                report(format_args!("moved {moved}"));
            }
        }
    });
}

/// Runs the child on `dir` with `seed`, kills it `kill_delay_ms` after its
/// first report, and returns the whole lines it printed.
fn run_child(dir: &Path, seed: u64, kill_delay_ms: u64, stderr_path: &Path) -> Vec<String> {
    let args = [dir.display().to_string(), seed.to_string()];
    let mut child = ReportingChild::spawn("deletes_until_killed", &args, stderr_path);
    let mut printed = Vec::new();
    match child.next_line(FIRST_REPORT_TIMEOUT) {
        Some(line) => printed.push(line),
        None => {
            let stderr = std::fs::read_to_string(stderr_path).unwrap_or_default();
            panic!("no report from the child; stderr:\n{stderr}");
        }
    }
    std::thread::sleep(Duration::from_millis(kill_delay_ms));
    let status = child.kill();
    if status.signal() != Some(libc::SIGKILL) {
        let stderr = std::fs::read_to_string(stderr_path).unwrap_or_default();
        panic!("the child ended before the kill: {status:?}; stderr:\n{stderr}");
    }
    printed.extend(child.rest());
    printed
}

fn the_start_survives_sigkill() {
    let mut rng = seeded_rng("the_start_survives_sigkill");
    let temp = tempfile::tempdir().expect("temporary directory");
    let dir = temp.path().join("partition");
    let stderr_path = temp.path().join("child.stderr");
    // What must hold after a kill: the start last acknowledged (or found by
    // the parent), the highest offset acknowledged.
    let mut acknowledged_start = Offset(0);
    let mut acknowledged_last: Option<Offset> = None;
    let mut moves = 0;
    for round in 0..ROUNDS {
        let kill_delay_ms = rng.random_range(KILL_DELAY_MS_MIN..=KILL_DELAY_MS_MAX);
        let printed = run_child(&dir, rng.random(), kill_delay_ms, &stderr_path);
        let mut requested = None;
        for line in &printed {
            let (word, value) = line.split_once(' ').expect("a report has a value");
            match word {
                "open" => {
                    let (start, end) = value.split_once(' ').expect("open <start> <end>");
                    let start = Offset(start.parse().unwrap());
                    let end = Offset(end.parse().unwrap());
                    assert_eq!(
                        start, acknowledged_start,
                        "round {round}: the child opened elsewhere"
                    );
                    assert!(acknowledged_last.is_none_or(|last| end > last));
                }
                "ack" => {
                    let last = Offset(value.parse::<u64>().unwrap() + RECORDS - 1);
                    acknowledged_last = acknowledged_last.max(Some(last));
                }
                "request" => requested = Some(Offset(value.parse().unwrap())),
                "moved" => {
                    let moved = Offset(value.parse().unwrap());
                    assert!(
                        moved >= acknowledged_start,
                        "round {round}: the start went back"
                    );
                    acknowledged_start = moved;
                    requested = None;
                    moves += 1;
                }
                other => panic!("round {round}: unknown report {other}"),
            }
        }
        // The start is the one acknowledged, or the one in flight at the
        // kill; every acknowledged record at or past it is there, each
        // batch where it was appended.
        let in_flight = requested.filter(|&requested| requested > acknowledged_start);
        let dir = dir.clone();
        acknowledged_start = run(move || async move {
            let log = Log::open(&dir, config())
                .await
                .unwrap_or_else(|error| panic!("round {round}: the log does not open: {error}"));
            let start = log.start_offset();
            assert!(
                start == acknowledged_start || Some(start) == in_flight,
                "round {round}: the log starts at {start}; {acknowledged_start} was acknowledged, \
                 {in_flight:?} in flight"
            );
            assert!(
                acknowledged_last.is_none_or(|last| log.end_offset() > last),
                "round {round}: the log ends at {} but {acknowledged_last:?} was acknowledged",
                log.end_offset()
            );
            check_start(&log, start).await;
            let tags = read_all(&log).await;
            let first_tag = start.0 / RECORDS;
            assert_eq!(
                tags,
                (first_tag..first_tag + tags.len() as u64).collect::<Vec<_>>(),
                "round {round}: batches out of place"
            );
            log.close().await.unwrap();
            start
        });
    }
    assert!(
        moves >= ROUNDS,
        "only {moves} moves acknowledged in {ROUNDS} rounds"
    );
}
