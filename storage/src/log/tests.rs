//! Tests of the log on real files, in temporary directories, each on its own
//! glommio executor.

use std::{cell::Cell, future::Future, rc::Rc, time::Duration};

use super::segment::{parse_segment_name, segment_path, LOG_SUFFIX};
use super::*;
use crate::batch::BatchBuilder;
use crate::test_files::names_ending;

pub(crate) fn run<F, Fut>(test: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .spawn(test)
        .expect("executor starts")
        .join()
        .expect("test body ran");
}

/// A batch of `records` records whose values say which batch they are in.
pub(crate) fn batch(tag: u64, records: usize, value_bytes: usize, timestamp: i64) -> Batch {
    let mut builder = BatchBuilder::default();
    for i in 0..records {
        let mut value = format!("{tag}:{i}:").into_bytes();
        value.resize(value_bytes.max(value.len()), b'x');
        builder.push(timestamp, Some(&tag.to_le_bytes()), &value, &[]);
    }
    builder.finish()
}

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes_max: 64 * 1024,
        index_interval_bytes: 1024,
        tail_cache_bytes_max: 16 * 1024,
        ..LogConfig::default()
    }
}

struct ManualClock(Cell<i64>);

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.get()
    }
}

#[test]
fn appends_read_back_at_every_offset_across_rolls_and_reopen() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), small_segments()).await.unwrap();
        let mut expected = Vec::new();
        for tag in 0..400u64 {
            let records = 1 + (tag as usize % 7);
            let appended = log
                .append(batch(
                    tag,
                    records,
                    100 + (tag as usize * 37) % 900,
                    tag as i64,
                ))
                .await
                .unwrap();
            assert_eq!(
                appended.last_offset.0 - appended.base_offset.0 + 1,
                records as u64
            );
            for offset in appended.base_offset.0..=appended.last_offset.0 {
                expected.push((offset, tag));
            }
        }
        assert!(
            log.segment_count() > 10,
            "only {} segments",
            log.segment_count()
        );
        check_every_offset(&log, &expected).await;
        log.close().await.unwrap();

        let log = Log::open(dir.path(), small_segments()).await.unwrap();
        assert_eq!(log.end_offset(), Offset(expected.len() as u64));
        check_every_offset(&log, &expected).await;
        // Appends continue where the log ended.
        let appended = log.append(batch(999, 2, 10, 999)).await.unwrap();
        assert_eq!(appended.base_offset, Offset(expected.len() as u64));
        log.close().await.unwrap();
    });
}

async fn check_every_offset(log: &Log, expected: &[(u64, u64)]) {
    for &(offset, tag) in expected {
        let batches = log.read(Offset(offset), 1).await.unwrap();
        assert_eq!(batches.len(), 1, "one batch at least at {offset}");
        let batch = &batches[0];
        assert!(batch.base_offset().0 <= offset && offset <= batch.last_offset().0);
        let record = batch
            .records()
            .unwrap()
            .get((offset - batch.base_offset().0) as usize)
            .unwrap();
        assert!(
            record.value().starts_with(format!("{tag}:").as_bytes()),
            "offset {offset} holds the wrong record"
        );
    }
    let end = Offset(expected.len() as u64);
    assert!(log.read(end, 1 << 20).await.unwrap().is_empty());
    assert!(matches!(
        log.read(end.next(), 1 << 20).await,
        Err(ReadError::OffsetOutOfRange { .. })
    ));
}

fn with_faults(config: LogConfig) -> (LogConfig, LogOptions, Rc<IoFaults>) {
    let faults = Rc::new(IoFaults::default());
    let options = LogOptions {
        clock: Rc::new(SystemClock),
        faults: Some(faults.clone()),
    };
    (config, options, faults)
}

#[test]
fn concurrent_appends_share_one_write_and_one_fdatasync() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let (config, options, faults) = with_faults(LogConfig::default());
        let log = Rc::new(Log::open_with(dir.path(), config, options).await.unwrap());
        // Prime: the first append creates the segment.
        log.append(batch(0, 1, 10, 0)).await.unwrap();
        let syncs_before = faults.syncs();
        let writes_before = faults.writes();
        let tasks: Vec<_> = (1..=64u64)
            .map(|tag| {
                let log = log.clone();
                glommio::spawn_local(
                    async move { log.append(batch(tag, 1, 100, 0)).await.unwrap() },
                )
            })
            .collect();
        let mut bases = Vec::new();
        for task in tasks {
            bases.push(task.await.base_offset.0);
        }
        bases.sort();
        assert_eq!(bases, (1..=64).collect::<Vec<u64>>());
        let syncs = faults.syncs() - syncs_before;
        let writes = faults.writes() - writes_before;
        // All 64 were queued before the flusher ran: one round, at most two.
        assert!(syncs <= 2, "64 concurrent appends cost {syncs} fdatasyncs");
        assert!(writes <= 2, "64 concurrent appends cost {writes} writes");
        assert_eq!(log.durable_end(), Offset(65));
    });
}

#[test]
fn a_failed_fdatasync_fences_the_log_and_reads_go_on() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let (config, options, faults) = with_faults(LogConfig::default());
        let log = Log::open_with(dir.path(), config, options).await.unwrap();
        for tag in 0..10 {
            log.append(batch(tag, 2, 50, 0)).await.unwrap();
        }
        faults.fail_syncs(Some(libc::EIO));
        let error = log.append(batch(10, 2, 50, 0)).await.unwrap_err();
        let AppendError::Fenced(failure) = error else {
            panic!("expected fenced, got {error:?}")
        };
        assert_eq!(failure.operation, "fdatasync");
        assert_eq!(failure.errno, Some(libc::EIO));
        // Not retried as if nothing happened, even once the disk "recovers".
        faults.fail_syncs(None);
        assert!(matches!(
            log.append(batch(11, 1, 5, 0)).await,
            Err(AppendError::Fenced(_))
        ));
        assert_eq!(log.visible_end(), Offset(20));
        let batches = log.read(Offset(0), 1 << 20).await.unwrap();
        assert_eq!(batches.iter().map(|b| b.offset_count()).sum::<u64>(), 20);
        assert!(log.read(Offset(20), 1 << 20).await.unwrap().is_empty());
        assert!(log.failure().is_some());
        assert!(log.close().await.is_err());

        // Reopened, the log holds what was durable and takes appends again.
        let log = Log::open(dir.path(), LogConfig::default()).await.unwrap();
        assert!(log.end_offset() >= Offset(20));
        let appended = log.append(batch(12, 1, 5, 0)).await.unwrap();
        assert_eq!(
            appended.base_offset,
            log.end_offset().0.checked_sub(1).map(Offset).unwrap()
        );
        log.close().await.unwrap();
    });
}

#[test]
fn a_failed_write_fences_the_log() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let (config, options, faults) = with_faults(LogConfig::default());
        let log = Log::open_with(dir.path(), config, options).await.unwrap();
        log.append(batch(0, 3, 50, 0)).await.unwrap();
        faults.fail_writes(Some(libc::EIO));
        let error = log.append(batch(1, 2, 50, 0)).await.unwrap_err();
        assert!(
            matches!(&error, AppendError::Fenced(failure) if failure.operation == "write"),
            "{error:?}"
        );
        assert_eq!(log.visible_end(), Offset(3));
        assert_eq!(log.read(Offset(0), 1).await.unwrap().len(), 1);
    });
}

#[test]
fn a_full_disk_fails_the_append_undoes_it_and_later_appends_work() {
    let _turn = spare::test_turns::given_back();
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        // Preallocated, so that a full disk also meets the roll.
        let config = LogConfig {
            segment_bytes_max: 32 * 1024,
            preallocate: true,
            ..LogConfig::default()
        };
        let (config, options, faults) = with_faults(config);
        let log = Log::open_with(dir.path(), config, options).await.unwrap();
        for tag in 0..5 {
            log.append(batch(tag, 2, 1000, 0)).await.unwrap();
        }
        faults.fail_writes(Some(libc::ENOSPC));
        let error = log.append(batch(5, 2, 1000, 0)).await.unwrap_err();
        assert!(matches!(error, AppendError::DiskFull { .. }), "{error:?}");
        assert_eq!(
            log.end_offset(),
            Offset(10),
            "nothing of the failed append is visible"
        );
        assert_eq!(log.read(Offset(0), 1 << 20).await.unwrap().len(), 5);
        // A full disk at segment creation too.
        faults.fail_writes(None);
        faults.fail_allocations(Some(libc::ENOSPC));
        let mut failed_at_roll = false;
        for tag in 6..60 {
            match log.append(batch(tag, 2, 1000, 0)).await {
                Ok(_) => {}
                Err(AppendError::DiskFull { .. }) => {
                    failed_at_roll = true;
                    break;
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert!(failed_at_roll, "the roll never met the full disk");
        let end = log.end_offset();
        faults.fail_allocations(None);
        let appended = log.append(batch(99, 2, 1000, 0)).await.unwrap();
        assert_eq!(appended.base_offset, end, "offsets go on with no gap");
        assert!(log.failure().is_none());
        log.close().await.unwrap();
        let log = Log::open(dir.path(), LogConfig::default()).await.unwrap();
        assert_eq!(log.end_offset(), end.next().next());
        assert_eq!(
            log.verify().await.unwrap() as usize,
            count_batches(&log).await
        );
    });
}

async fn count_batches(log: &Log) -> usize {
    let mut offset = log.start_offset();
    let mut count = 0;
    loop {
        let batches = log.read(offset, 1 << 20).await.unwrap();
        let Some(last) = batches.last() else {
            return count;
        };
        assert!(batches[0].base_offset() <= offset);
        offset = last.last_offset().next();
        count += batches.len();
    }
}

#[test]
fn interval_policy_acknowledges_at_once_and_syncs_on_its_schedule() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            flush: FlushPolicy::Interval(Duration::from_millis(20)),
            ..LogConfig::default()
        };
        let (config, options, faults) = with_faults(config);
        let log = Log::open_with(dir.path(), config.clone(), options)
            .await
            .unwrap();
        for tag in 0..100 {
            log.append(batch(tag, 1, 100, 0)).await.unwrap();
        }
        // Visible at once, before any sync.
        assert_eq!(log.visible_end(), Offset(100));
        assert_eq!(log.read(Offset(99), 1).await.unwrap().len(), 1);
        let durable = || log.durable_end() == Offset(100);
        eventually("never synced to the end", Duration::from_secs(10), durable).await;
        assert!(
            faults.syncs() < 20,
            "{} syncs for 100 appends",
            faults.syncs()
        );
        log.close().await.unwrap();
        let log = Log::open(dir.path(), config).await.unwrap();
        assert_eq!(log.end_offset(), Offset(100));
    });
}

/// Retention renames a deleted segment's files at once (a reader that has
/// them open reads on), keeps them through `file.delete.delay.ms`, then
/// the deleter gives their space back; a reopened log finds what a stop
/// left and deletes it.
#[test]
fn deleted_segments_wait_out_their_delay_and_leftovers_are_deleted_on_open() {
    run(|| async {
        const DELAY_MS: u64 = 1500;
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes_max: 16 * 1024,
            retention_bytes: Some(32 * 1024),
            retention_ms: None,
            file_delete_delay_ms: DELAY_MS,
            ..LogConfig::default()
        };
        let log = Log::open(dir.path(), config.clone()).await.unwrap();
        for tag in 0..100 {
            log.append(batch(tag, 1, 1000, 0)).await.unwrap();
        }
        let logs_before = names_ending(dir.path(), LOG_SUFFIX).len();
        let deleted_at = std::time::Instant::now();
        let outcome = log.apply_retention().await.unwrap();
        assert!(outcome.segments_deleted > 0);
        let logs = names_ending(dir.path(), LOG_SUFFIX);
        assert_eq!(logs.len(), logs_before - outcome.segments_deleted as usize);
        assert_eq!(logs.len(), log.segment_count());
        let pending = names_ending(dir.path(), crate::deleter::DELETED_SUFFIX);
        assert_eq!(
            pending.len(),
            3 * outcome.segments_deleted as usize,
            "each deleted segment's log and two indexes, renamed: {pending:?}"
        );
        assert!(pending
            .iter()
            .all(|name| parse_segment_name(name).is_none()));
        glommio::timer::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            names_ending(dir.path(), crate::deleter::DELETED_SUFFIX),
            pending,
            "kept through the delay"
        );
        let gone = || names_ending(dir.path(), crate::deleter::DELETED_SUFFIX).is_empty();
        eventually("deleted files stayed", Duration::from_secs(10), gone).await;
        assert!(deleted_at.elapsed() >= Duration::from_millis(DELAY_MS));

        // A stop before the deleter got to them leaves `*.deleted` files;
        // the next open deletes them, and reads on.
        log.close().await.unwrap();
        let leftover = dir.path().join(format!(
            "{}.1-1.{}",
            segment_path(dir.path(), Offset(0), LOG_SUFFIX)
                .file_name()
                .unwrap()
                .to_str()
                .unwrap(),
            crate::deleter::DELETED_SUFFIX
        ));
        std::fs::write(&leftover, vec![7u8; 64 * 1024]).unwrap();
        let log = Log::open(dir.path(), config).await.unwrap();
        assert_eq!(log.segment_count(), logs.len());
        eventually("the leftover stayed", Duration::from_secs(10), gone).await;
        let start = log.start_offset();
        assert_eq!(log.read(start, 1).await.unwrap()[0].base_offset(), start);
        log.close().await.unwrap();
    });
}

#[test]
fn retention_deletes_whole_sealed_segments_by_size_and_by_age() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let clock = Rc::new(ManualClock(Cell::new(1_000_000)));
        let config = LogConfig {
            segment_bytes_max: 16 * 1024,
            retention_bytes: Some(64 * 1024),
            retention_ms: None,
            ..LogConfig::default()
        };
        let options = LogOptions {
            clock: clock.clone(),
            faults: None,
        };
        let log = Log::open_with(dir.path(), config.clone(), options)
            .await
            .unwrap();
        for tag in 0..200 {
            log.append(batch(tag, 1, 1000, 1_000_000 + tag as i64))
                .await
                .unwrap();
        }
        let segments = log.segment_count();
        let outcome = log.apply_retention().await.unwrap();
        assert!(outcome.segments_deleted > 0);
        assert!(log.size_bytes() >= 64 * 1024 && log.size_bytes() < 64 * 1024 + 16 * 1024 + 2048);
        assert_eq!(log.segment_count(), segments - outcome.segments_deleted);
        let start = log.start_offset();
        assert_eq!(start, outcome.log_start);
        assert_eq!(start, log.segment_bases()[0]);
        assert!(matches!(
            log.read(Offset(start.0 - 1), 100).await,
            Err(ReadError::OffsetOutOfRange { .. })
        ));
        assert_eq!(log.read(start, 1).await.unwrap()[0].base_offset(), start);
        let remaining = names_ending(dir.path(), LOG_SUFFIX).len();
        assert_eq!(remaining, log.segment_count());

        // By age: everything sealed is older than a minute; the active stays.
        log.set_config(LogConfig {
            retention_bytes: None,
            retention_ms: Some(60_000),
            ..config.clone()
        })
        .unwrap();
        clock.0.set(1_000_000 + 200 + 60_001);
        log.apply_retention().await.unwrap();
        assert_eq!(log.segment_count(), 1);
        assert_eq!(log.end_offset(), Offset(200));
        log.close().await.unwrap();
        let log = Log::open(dir.path(), config).await.unwrap();
        assert_eq!(log.start_offset(), log.segment_bases()[0]);
        assert_eq!(log.end_offset(), Offset(200));
    });
}

#[test]
fn segments_roll_by_age() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let clock = Rc::new(ManualClock(Cell::new(0)));
        let config = LogConfig {
            segment_ms: Some(1000),
            ..LogConfig::default()
        };
        let options = LogOptions {
            clock: clock.clone(),
            faults: None,
        };
        let log = Log::open_with(dir.path(), config, options).await.unwrap();
        log.append(batch(0, 1, 10, 0)).await.unwrap();
        clock.0.set(999);
        log.append(batch(1, 1, 10, 0)).await.unwrap();
        assert_eq!(log.segment_count(), 1);
        clock.0.set(1000);
        log.append(batch(2, 1, 10, 0)).await.unwrap();
        assert_eq!(log.segment_bases(), vec![Offset(0), Offset(2)]);
        log.close().await.unwrap();
        let log = Log::open(dir.path(), LogConfig::default()).await.unwrap();
        assert_eq!(log.segment_bases(), vec![Offset(0), Offset(2)]);
        // From disk, a read stops at the end of the segment.
        assert_eq!(log.read(Offset(0), 1 << 20).await.unwrap().len(), 2);
        assert_eq!(log.read(Offset(2), 1 << 20).await.unwrap().len(), 1);
    });
}

#[test]
fn reads_by_timestamp_find_the_first_record_at_or_after() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), small_segments()).await.unwrap();
        // Batch `tag` holds 4 records stamped 100*tag + 0, 10, 20, 30.
        for tag in 0..300i64 {
            let mut builder = BatchBuilder::default();
            for i in 0..4 {
                builder.push(100 * tag + 10 * i, None, &[0u8; 200], &[]);
            }
            log.append(builder.finish()).await.unwrap();
        }
        assert_eq!(
            log.offset_for_timestamp(i64::MIN).await.unwrap(),
            Some(Offset(0))
        );
        assert_eq!(log.offset_for_timestamp(0).await.unwrap(), Some(Offset(0)));
        assert_eq!(log.offset_for_timestamp(15).await.unwrap(), Some(Offset(2)));
        assert_eq!(
            log.offset_for_timestamp(12_315).await.unwrap(),
            Some(Offset(123 * 4 + 2))
        );
        assert_eq!(
            log.offset_for_timestamp(12_345).await.unwrap(),
            Some(Offset(124 * 4))
        );
        assert_eq!(
            log.offset_for_timestamp(29_930).await.unwrap(),
            Some(Offset(1199))
        );
        assert_eq!(log.offset_for_timestamp(29_931).await.unwrap(), None);
        log.close().await.unwrap();
        let log = Log::open(dir.path(), small_segments()).await.unwrap();
        assert_eq!(
            log.offset_for_timestamp(12_315).await.unwrap(),
            Some(Offset(123 * 4 + 2))
        );
        assert_eq!(log.offset_for_timestamp(29_931).await.unwrap(), None);
    });
}

#[test]
fn a_waiting_reader_wakes_on_the_append_itself() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = Rc::new(Log::open(dir.path(), LogConfig::default()).await.unwrap());
        let waiter = {
            let log = log.clone();
            glommio::spawn_local(async move {
                log.wait_for_data(Offset(0)).await;
                std::time::Instant::now()
            })
        };
        // The reader is waiting (its waker is registered) before the append.
        let waiting = || !log.state.borrow().waiters.is_empty();
        eventually("the reader never waited", Duration::from_secs(10), waiting).await;
        log.append(batch(0, 1, 10, 0)).await.unwrap();
        let acknowledged = std::time::Instant::now();
        let woke = waiter.await;
        assert!(woke <= acknowledged + Duration::from_millis(5));
    });
}

fn first_written(log: &Log) -> u64 {
    log.state
        .borrow()
        .segments
        .get(&Offset(0))
        .map_or(0, |segment| segment.written_bytes)
}

#[test]
fn a_log_that_fills_segments_fast_rolls_into_a_spare_filled_ahead() {
    let _turn = spare::test_turns::kept();
    run(|| async {
        const MIB: u64 = 1024 * 1024;
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes_max: 32 * MIB,
            ..LogConfig::default()
        };
        assert!(config.prepare_segments, "on by default");
        let log = Log::open(dir.path(), config.clone()).await.unwrap();
        let mut expected = Vec::new();
        let mut tag = 0u64;

        // Up to PREPARE_AFTER_BYTES the segment grows with its writes.
        while first_written(&log) + 64 * 1024 < PREPARE_AFTER_BYTES {
            let appended = log.append(batch(tag, 16, 4000, 0)).await.unwrap();
            expected.extend((0..16).map(|i| (appended.base_offset.0 + i, tag)));
            tag += 1;
            assert!(log.state.borrow().spare.is_none());
        }
        let grown = std::fs::metadata(segment_path(dir.path(), Offset(0), LOG_SUFFIX))
            .unwrap()
            .len();
        assert!(
            grown < PREPARE_AFTER_BYTES,
            "{grown} bytes before any spare"
        );

        // Past it, at this rate, a spare is filled beside the log and the
        // log rolls into it once it is ready.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while log.state.borrow().segments.len() < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "no roll into the spare"
            );
            let appended = log.append(batch(tag, 1, 1000, 0)).await.unwrap();
            expected.push((appended.base_offset.0, tag));
            tag += 1;
            glommio::timer::sleep(Duration::from_millis(2)).await;
        }
        let appended = log.append(batch(tag, 1, 1000, 0)).await.unwrap();
        expected.push((appended.base_offset.0, tag));
        let second = *log.state.borrow().segments.keys().nth(1).unwrap();
        assert!(log.state.borrow().segments[&second].allocated_ahead());
        let first_bytes = log.state.borrow().segments[&Offset(0)].bytes;
        assert!(first_bytes < config.segment_bytes_max, "rolled early");
        let length = |base| {
            std::fs::metadata(segment_path(dir.path(), base, LOG_SUFFIX))
                .unwrap()
                .len()
        };
        assert_eq!(length(Offset(0)), first_bytes, "sealed to its length");
        assert_eq!(length(second), config.segment_bytes_max, "the spare, whole");
        assert!(spares(dir.path()).is_empty(), "the spare was renamed");
        check_every_offset(&log, &expected).await;
        log.close().await.unwrap();

        // Reopened, the prepared segment's end is found among its zeros.
        let log = Log::open(dir.path(), config.clone()).await.unwrap();
        check_every_offset(&log, &expected).await;
        let appended = log.append(batch(tag + 1, 1, 1000, 0)).await.unwrap();
        assert_eq!(appended.base_offset, Offset(expected.len() as u64));
        assert!(log.state.borrow().segments[&second].allocated_ahead());
        log.close().await.unwrap();
        assert!(spares(dir.path()).is_empty());
    });
}

#[test]
fn a_spare_left_by_a_crash_is_removed_and_none_is_made_when_turned_off() {
    run(|| async {
        const MIB: u64 = 1024 * 1024;
        let dir = tempfile::tempdir().unwrap();
        let leftover = dir.path().join(format!("7-7.{SPARE_SUFFIX}"));
        std::fs::write(&leftover, [0u8; 4096]).unwrap();
        let config = LogConfig {
            segment_bytes_max: 32 * MIB,
            prepare_segments: false,
            ..LogConfig::default()
        };
        let log = Log::open(dir.path(), config).await.unwrap();
        assert!(!leftover.exists());
        let mut tag = 0;
        while first_written(&log) < PREPARE_AFTER_BYTES + 8 * MIB {
            log.append(batch(tag, 16, 4000, 0)).await.unwrap();
            tag += 1;
        }
        assert!(log.state.borrow().spare.is_none());
        let written = log.state.borrow().segments[&Offset(0)].written_bytes;
        let length = std::fs::metadata(segment_path(dir.path(), Offset(0), LOG_SUFFIX))
            .unwrap()
            .len();
        assert_eq!(
            length,
            written.div_ceil(PAGE_BYTES as u64) * PAGE_BYTES as u64
        );
        log.close().await.unwrap();
    });
}

fn spares(dir: &std::path::Path) -> Vec<PathBuf> {
    spare::spare_files(dir).unwrap()
}

/// Waits (up to `within`) until `done`; fails the test with `what` if not.
async fn eventually(what: &str, within: Duration, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
}

/// A log with segments of `segment_bytes` on a clock that stands still,
/// appended to until its segment fills "at once" and a spare is started;
/// the clock, and the next batch tag.
async fn log_with_a_spare(
    dir: &std::path::Path,
    segment_bytes: u64,
) -> (Log, Rc<ManualClock>, u64) {
    let clock = Rc::new(ManualClock(Cell::new(1_000_000)));
    let options = LogOptions {
        clock: clock.clone(),
        faults: None,
    };
    let config = LogConfig {
        segment_bytes_max: segment_bytes,
        ..LogConfig::default()
    };
    let log = Log::open_with(dir, config, options).await.unwrap();
    let mut tag = 0;
    while log.state.borrow().spare.is_none() {
        assert!(first_written(&log) < 2 * PREPARE_AFTER_BYTES, "no spare");
        log.append(batch(tag, 16, 4000, 0)).await.unwrap();
        tag += 1;
    }
    (log, clock, tag)
}

fn spare_path(log: &Log) -> PathBuf {
    let state = log.state.borrow();
    state.spare.as_ref().expect("a spare").path().to_path_buf()
}

#[test]
fn an_idle_log_gives_its_spare_back() {
    let _turn = spare::test_turns::kept();
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let (log, clock, tag) = log_with_a_spare(dir.path(), 32 * 1024 * 1024).await;
        let ready = || log.state.borrow().spare.as_ref().unwrap().is_ready();
        eventually("the spare never got ready", Duration::from_secs(60), ready).await;
        let path = spare_path(&log);
        assert!(path.exists());

        // Idle, but not for long enough: the spare stays.
        clock.0.set(clock.0.get() + SPARE_IDLE_MS as i64 - 1);
        log.state.borrow_mut().ring_flusher();
        glommio::timer::sleep(Duration::from_millis(50)).await;
        assert!(log.state.borrow().spare.is_some());
        // Idle for SPARE_IDLE_MS since the last sync: given back.
        clock.0.set(clock.0.get() + 1);
        log.state.borrow_mut().ring_flusher();
        let gone = || log.state.borrow().spare.is_none() && !path.exists();
        eventually("the spare stayed", Duration::from_secs(10), gone).await;
        // The log goes on in a segment of its own.
        let appended = log.append(batch(tag, 1, 100, 0)).await.unwrap();
        assert_eq!(log.read(appended.base_offset, 1).await.unwrap().len(), 1);
        log.close().await.unwrap();
    });
}

#[test]
fn closing_a_log_stops_its_spare_and_removes_it() {
    let _turn = spare::test_turns::kept();
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        // A large segment: its spare is still filling when the log closes.
        let (log, _clock, _) = log_with_a_spare(dir.path(), SEGMENT_BYTES_CAP).await;
        let path = spare_path(&log);
        log.close().await.unwrap();
        assert!(!path.exists(), "the spare outlived the close");
        assert!(spares(dir.path()).is_empty());
    });
}

#[test]
fn a_high_watermark_caps_readers_and_a_leader_reads_past_it() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = Rc::new(Log::open(dir.path(), LogConfig::default()).await.unwrap());
        for tag in 0..3 {
            log.append(batch(tag, 10, 20, 0)).await.unwrap();
        }
        assert_eq!(log.stored_end(), Offset(30));
        log.set_high_watermark(Some(Offset(10)));
        assert_eq!(log.high_watermark(), Some(Offset(10)));
        assert_eq!(log.visible_end(), Offset(10));
        let shown = log.read(Offset(0), 1 << 20).await.unwrap();
        assert_eq!(shown.len(), 1, "readers see the batch below it only");
        assert!(log.read(Offset(10), 1 << 20).await.unwrap().is_empty());
        // Past the high watermark but within the log: nothing yet, as
        // Kafka's logs answer; past the log end: out of range.
        for within in [20, 30] {
            assert!(log.read(Offset(within), 1 << 20).await.unwrap().is_empty());
        }
        assert!(matches!(
            log.read(Offset(31), 1 << 20).await,
            Err(ReadError::OffsetOutOfRange { .. })
        ));
        let stored = log.read_replicable(Offset(10), 1 << 20).await.unwrap();
        assert_eq!(
            stored.iter().map(|b| b.base_offset()).collect::<Vec<_>>(),
            [Offset(10), Offset(20)]
        );
        // Those stored batches, one after another, read back as a run
        // that starts where they did, and not from anywhere else.
        let mut run_bytes = bytes::BytesMut::new();
        for batch in &stored {
            run_bytes.extend_from_slice(batch.as_bytes());
        }
        let run_bytes = run_bytes.freeze();
        let again = Batch::validate_run(run_bytes.clone(), Offset(10)).unwrap();
        assert_eq!(again.len(), 2);
        assert!(Batch::validate_run(run_bytes.clone(), Offset(11)).is_err());
        assert!(Batch::validate_run(run_bytes.slice(..run_bytes.len() - 1), Offset(10)).is_err());
        // A reader waiting at the high watermark wakes when it moves.
        let waiter = {
            let log = log.clone();
            glommio::spawn_local(async move { log.wait_for_data(Offset(10)).await })
        };
        let waiting = || !log.state.borrow().waiters.is_empty();
        eventually("the reader never waited", Duration::from_secs(10), waiting).await;
        log.set_high_watermark(Some(Offset(20)));
        waiter.await;
        assert_eq!(log.visible_end(), Offset(20));
        // Lifted, readers see everything stored.
        log.set_high_watermark(None);
        assert_eq!(log.visible_end(), Offset(30));
    });
}

/// A transactional batch of one record of `producer_id` at `epoch` from
/// `sequence`, as a Kafka producer sends it.
fn transactional(producer_id: i64, epoch: i16, sequence: i32) -> Batch {
    let mut builder = BatchBuilder::default().producer(producer_id, epoch, sequence);
    builder.push(1_000, Some(b"key"), b"value", &[]);
    let mut kafka = bytes::BytesMut::new();
    builder.finish().write_kafka(&mut kafka).unwrap();
    let attributes = i16::from_be_bytes([kafka[21], kafka[22]]) | 1 << 4;
    kafka[21..23].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c::crc32c(&kafka[21..]);
    kafka[17..21].copy_from_slice(&crc.to_be_bytes());
    Batch::from_kafka(&kafka).unwrap()
}

#[test]
fn a_transactional_append_needs_an_open_transaction_or_a_guard_that_still_holds() {
    use crate::batch::Marker;
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), LogConfig::default()).await.unwrap();
        let unverified = log
            .append_to_transaction(transactional(7, 0, 0), None)
            .await;
        assert!(matches!(
            unverified,
            Err(AppendError::Unverified { producer_id: 7 })
        ));
        let guard = log.transaction_guard(7, 0).unwrap();
        log.append_to_transaction(transactional(7, 0, 0), Some(guard))
            .await
            .unwrap();
        // The transaction is open here: no guard needed, none given out.
        assert_eq!(log.transaction_guard(7, 0), None);
        log.append_to_transaction(transactional(7, 0, 1), None)
            .await
            .unwrap();
        // KIP-890 part 2: the coordinator ends it at a bumped epoch.
        log.append(Batch::marker(7, 1, Marker::Commit, 0, 1_000).unwrap())
            .await
            .unwrap();
        // A late write of the transaction that ended, even with the guard
        // it was verified with, is fenced by the epoch.
        let late = log
            .append_to_transaction(transactional(7, 0, 2), Some(guard))
            .await;
        assert!(matches!(
            late,
            Err(AppendError::ProducerFenced {
                current_epoch: 1,
                ..
            })
        ));
        // The producer's next transaction starts at sequence 0.
        let next = log.transaction_guard(7, 1).unwrap();
        log.append_to_transaction(transactional(7, 1, 0), Some(next))
            .await
            .unwrap();

        // The classic protocol: the marker keeps the epoch. A guard given
        // out before an end does not hold after it.
        let guard = log.transaction_guard(8, 0).unwrap();
        log.append(Batch::marker(8, 0, Marker::Abort, 0, 1_000).unwrap())
            .await
            .unwrap();
        let late = log
            .append_to_transaction(transactional(8, 0, 0), Some(guard))
            .await;
        assert!(matches!(
            late,
            Err(AppendError::NotInTransaction { producer_id: 8 })
        ));
        // A batch outside transactions is appended as by `append`.
        log.append_to_transaction(batch(1, 1, 10, 1_000), None)
            .await
            .unwrap();
        log.close().await.unwrap();

        // The epochs the markers moved the producers to are read back.
        let log = Log::open(dir.path(), LogConfig::default()).await.unwrap();
        assert_eq!(log.producer(7).unwrap().epoch, 1);
        assert_eq!(log.producer(7).unwrap().next_sequence(), 1);
        assert_eq!(log.producer(8).unwrap().epoch, 0);
        let late = log.append(transactional(7, 0, 2)).await;
        assert!(matches!(late, Err(AppendError::ProducerFenced { .. })));
        log.close().await.unwrap();
    });
}
