//! Idempotent producers on a real log: retries answered with their original
//! offsets and stored once, sequences and epochs checked, and the state kept
//! across a full disk, a clean reopen, a crash (a copy of the files taken
//! while the log is open), damaged snapshots and retention.

mod common;

use common::{copy_as_crashed, run};

use std::{
    collections::BTreeMap,
    future::{poll_fn, Future},
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    pin::Pin,
    rc::Rc,
    task::Poll,
};

use sluice_storage::{
    batch::{Batch, BatchBuilder},
    log::{
        sequence_after, AppendError, Appended, FlushPolicy, IoFaults, Log, LogConfig, LogOptions,
        ProducerState, SystemClock, PRODUCERS_MAX, PRODUCERS_SUFFIX, PRODUCER_BATCHES_MAX,
    },
    Offset,
};

/// A batch of `records` records from producer `producer_id` at `epoch`,
/// starting at `sequence`; its values name `tag`.
fn producer_batch(producer_id: i64, epoch: i16, sequence: i32, records: u32, tag: u64) -> Batch {
    let mut builder = BatchBuilder::default().producer(producer_id, epoch, sequence);
    for record in 0..records {
        let value = format!("{tag}:{record}:{producer_id}/{epoch}/{sequence}");
        builder.push(tag as i64, Some(&tag.to_le_bytes()), value.as_bytes(), &[]);
    }
    builder.finish()
}

/// A batch of a producer that is not idempotent.
fn plain_batch(tag: u64, records: u32) -> Batch {
    let mut builder = BatchBuilder::default();
    for record in 0..records {
        let value = format!("{tag}:{record}:plain");
        builder.push(tag as i64, None, value.as_bytes(), &[]);
    }
    builder.finish()
}

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes_max: 16 * 1024,
        index_interval_bytes: 1024,
        ..LogConfig::default()
    }
}

/// Every batch of the log, read from its start.
async fn read_all(log: &Log) -> Vec<Batch> {
    let mut batches = Vec::new();
    let mut next = log.start_offset();
    loop {
        let read = log.read(next, 1 << 20).await.unwrap();
        let Some(last) = read.last() else {
            return batches;
        };
        next = last.last_offset().next();
        batches.extend(read);
    }
}

/// One batch a producer sent and where the log put it.
#[derive(Clone)]
struct Sent {
    batch: Batch,
    appended: Appended,
}

/// Sends each of `sent` again and checks that it is a duplicate answered
/// with its original offsets, and that nothing was stored.
async fn resend_all(log: &Log, sent: &[Sent]) {
    let end = log.end_offset();
    for (back, sent) in sent.iter().rev().enumerate() {
        let again = log
            .append(sent.batch.clone())
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "the retry of the batch at {} ({back} from the newest) failed: {error}",
                    sent.appended.base_offset
                )
            });
        assert_eq!(
            again,
            Appended {
                duplicate: true,
                ..sent.appended
            },
            "a retry {back} from the newest"
        );
    }
    assert_eq!(log.end_offset(), end, "a retry was stored");
}

#[test]
fn retries_of_the_last_five_batches_get_their_original_offsets() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), small_segments()).await.unwrap();
        let mut sent = Vec::new();
        let mut sequence = 0;
        for tag in 0..9u64 {
            let records = 1 + (tag % 4) as u32;
            let batch = producer_batch(7, 0, sequence, records, tag);
            let appended = log.append(batch.clone()).await.unwrap();
            assert!(!appended.duplicate);
            sent.push(Sent { batch, appended });
            sequence += records as i32;
            // Others between: a plain batch and another producer's.
            log.append(plain_batch(100 + tag, 2)).await.unwrap();
            log.append(producer_batch(8, 0, tag as i32, 1, 200 + tag))
                .await
                .unwrap();
        }
        let stored = read_all(&log).await;
        let recent = &sent[sent.len() - PRODUCER_BATCHES_MAX..];
        resend_all(&log, recent).await;
        assert_eq!(read_all(&log).await, stored, "the log changed");

        // The sixth from the newest is remembered no more: out of order, as
        // is a gap and a batch that overlaps the last.
        let end = log.end_offset();
        let older = &sent[sent.len() - PRODUCER_BATCHES_MAX - 1];
        let header = older.batch.header();
        let last = sent.last().unwrap().batch.header();
        for (batch, got) in [
            (older.batch.clone(), header.base_sequence),
            (producer_batch(7, 0, sequence + 1, 1, 900), sequence + 1),
            (
                producer_batch(7, 0, last.base_sequence, last.record_count + 1, 901),
                last.base_sequence,
            ),
        ] {
            assert_eq!(
                log.append(batch).await.unwrap_err(),
                AppendError::OutOfOrderSequence {
                    producer_id: 7,
                    expected: sequence,
                    got
                }
            );
        }
        assert_eq!(log.end_offset(), end, "a refused batch was stored");
        assert_eq!(read_all(&log).await, stored, "the log changed");

        // The next sequence appends.
        let next = log
            .append(producer_batch(7, 0, sequence, 2, 902))
            .await
            .unwrap();
        assert_eq!((next.base_offset, next.duplicate), (end, false));
        let state = log.producer(7).unwrap();
        assert_eq!(state.epoch, 0);
        assert_eq!(state.batches.len(), PRODUCER_BATCHES_MAX);
        assert_eq!(state.next_sequence(), sequence + 2);
        assert_eq!(state.batches.last().unwrap().base_offset, end);
        assert_eq!(log.producer_count(), 2);
        let all = log.producers();
        let ids: Vec<i64> = all.iter().map(|(id, _)| *id).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
        assert_eq!(all.len(), 2);
        assert_eq!(all.iter().find(|(id, _)| *id == 7), Some(&(7, state)));
        log.close().await.unwrap();
    });
}

#[test]
fn an_older_epoch_is_fenced_and_a_newer_one_starts_at_zero() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), LogConfig::default()).await.unwrap();
        let first = producer_batch(3, 5, 0, 2, 0);
        log.append(first.clone()).await.unwrap();
        log.append(producer_batch(3, 5, 2, 1, 1)).await.unwrap();
        let end = log.end_offset();
        assert_eq!(
            log.append(producer_batch(3, 4, 3, 1, 2)).await.unwrap_err(),
            AppendError::ProducerFenced {
                producer_id: 3,
                epoch: 4,
                current_epoch: 5
            }
        );
        assert_eq!(
            log.append(producer_batch(3, 6, 3, 1, 3)).await.unwrap_err(),
            AppendError::OutOfOrderSequence {
                producer_id: 3,
                expected: 0,
                got: 3
            }
        );
        assert_eq!(log.end_offset(), end, "a refused batch was stored");
        let bumped = log.append(producer_batch(3, 6, 0, 4, 4)).await.unwrap();
        assert_eq!((bumped.base_offset, bumped.duplicate), (end, false));
        assert_eq!(
            log.producer(3).unwrap(),
            ProducerState {
                epoch: 6,
                batches: vec![sluice_storage::log::ProducerBatch {
                    first_sequence: 0,
                    last_sequence: 3,
                    base_offset: end,
                    last_offset: Offset(end.0 + 3),
                }],
            }
        );
        // The old epoch's batches are fenced now, even its retries.
        assert!(matches!(
            log.append(first).await,
            Err(AppendError::ProducerFenced {
                current_epoch: 6,
                ..
            })
        ));
        log.append(producer_batch(3, 6, 4, 1, 5)).await.unwrap();
        log.close().await.unwrap();
    });
}

#[test]
fn an_unknown_producer_starts_anywhere_and_sequences_wrap() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), LogConfig::default()).await.unwrap();
        assert_eq!(log.producer(11), None);
        let near_end = producer_batch(11, 0, i32::MAX - 3, 2, 0);
        log.append(near_end).await.unwrap();
        // Records i32::MAX - 1, i32::MAX, 0, 1, 2.
        let wrapping = producer_batch(11, 0, i32::MAX - 1, 5, 1);
        let appended = log.append(wrapping.clone()).await.unwrap();
        let state = log.producer(11).unwrap();
        assert_eq!(state.batches.last().unwrap().last_sequence, 2);
        assert_eq!(state.next_sequence(), 3);
        assert_eq!(sequence_after(i32::MAX - 1, 4), 2);
        let again = log.append(wrapping).await.unwrap();
        assert_eq!(
            again,
            Appended {
                duplicate: true,
                ..appended
            }
        );
        assert!(matches!(
            log.append(producer_batch(11, 0, i32::MAX, 1, 2)).await,
            Err(AppendError::OutOfOrderSequence { expected: 3, .. })
        ));
        let next = log.append(producer_batch(11, 0, 3, 1, 3)).await.unwrap();
        assert!(!next.duplicate);
        log.close().await.unwrap();
    });
}

#[test]
fn batches_without_a_producer_id_or_a_sequence_are_not_checked() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), LogConfig::default()).await.unwrap();
        let plain = plain_batch(0, 3);
        let without_sequence = producer_batch(4, 0, -1, 2, 1);
        for _ in 0..3 {
            assert!(!log.append(plain.clone()).await.unwrap().duplicate);
            assert!(
                !log.append(without_sequence.clone())
                    .await
                    .unwrap()
                    .duplicate
            );
        }
        assert_eq!(log.end_offset(), Offset(15));
        assert_eq!(log.producer_count(), 0);
        log.close().await.unwrap();
    });
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
fn a_retry_of_a_batch_in_flight_shares_its_outcome() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let (config, options, faults) = with_faults(LogConfig::default());
        let log = Log::open_with(dir.path(), config, options).await.unwrap();
        log.append(plain_batch(0, 1)).await.unwrap();

        // The retry is called while the original is queued: it is answered
        // when the original is durable, with its offsets.
        let batch = producer_batch(1, 0, 0, 3, 1);
        let (original, retry) =
            futures_lite::future::zip(log.append(batch.clone()), log.append(batch.clone())).await;
        let original = original.unwrap();
        assert_eq!(original.base_offset, Offset(1));
        assert_eq!(
            retry.unwrap(),
            Appended {
                duplicate: true,
                ..original
            }
        );
        assert_eq!(log.end_offset(), Offset(4));

        // When the original fails, so does its retry; both are forgotten, and
        // the next attempt is appended afresh.
        let batch = producer_batch(1, 0, 3, 2, 2);
        faults.fail_writes(Some(libc::ENOSPC));
        let (original, retry) =
            futures_lite::future::zip(log.append(batch.clone()), log.append(batch.clone())).await;
        assert!(matches!(original, Err(AppendError::DiskFull { .. })));
        assert!(matches!(retry, Err(AppendError::DiskFull { .. })));
        assert_eq!(log.producer(1).unwrap().next_sequence(), 3);
        faults.fail_writes(None);
        let appended = log.append(batch).await.unwrap();
        assert_eq!(
            (appended.base_offset, appended.duplicate),
            (Offset(4), false)
        );
        assert_eq!(read_all(&log).await.len(), 3);
        log.close().await.unwrap();
    });
}

/// Awaits all of `futures`, polling them in order each time: the first poll
/// of each comes before any other task runs, so appends are called in order
/// and are in flight together.
async fn join_all<T>(futures: Vec<Pin<Box<dyn Future<Output = T> + '_>>>) -> Vec<T> {
    let mut futures: Vec<_> = futures.into_iter().map(Some).collect();
    let mut outputs: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    poll_fn(|cx| {
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if let Some(pending) = future {
                if let Poll::Ready(value) = pending.as_mut().poll(cx) {
                    *output = Some(value);
                    *future = None;
                }
            }
        }
        if futures.iter().all(Option::is_none) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|output| output.expect("ready"))
        .collect()
}

/// Sends `count` batches of two records of producer `producer_id` from
/// `sequence`, all in flight together, and returns each one's outcome.
async fn send_in_flight(
    log: &Log,
    producer_id: i64,
    sequence: i32,
    count: u32,
    tag: u64,
) -> Vec<(Batch, Result<Appended, AppendError>)> {
    let batches: Vec<Batch> = (0..count)
        .map(|at| producer_batch(producer_id, 0, sequence + 2 * at as i32, 2, tag + at as u64))
        .collect();
    let appends = batches
        .iter()
        .map(|batch| Box::pin(log.append(batch.clone())) as Pin<Box<dyn Future<Output = _>>>)
        .collect();
    let results = join_all(appends).await;
    batches.into_iter().zip(results).collect()
}

#[test]
fn a_full_disk_does_not_leave_its_sequences_behind() {
    run(|| async {
        let temp = tempfile::tempdir().unwrap();
        let dir = &temp.path().join("log");
        // Preallocated, so that a full disk also meets the roll.
        let config = LogConfig {
            segment_bytes_max: 8 * 1024,
            preallocate: true,
            ..LogConfig::default()
        };
        let (config, options, faults) = with_faults(config.clone());
        let log = Log::open_with(dir, config.clone(), options).await.unwrap();
        let mut acked = Vec::new();
        for (batch, result) in send_in_flight(&log, 2, 0, 4, 0).await {
            acked.push(Sent {
                batch,
                appended: result.unwrap(),
            });
        }
        let before = log.producer(2).unwrap();

        // A failed write: five batches in flight, all undone; a new producer
        // among them is forgotten again.
        faults.fail_writes(Some(libc::ENOSPC));
        let end = log.end_offset();
        let newcomer = log.append(producer_batch(3, 0, 40, 1, 99));
        let failed = send_in_flight(&log, 2, 8, 5, 10);
        // The newcomer is polled (and queued) first.
        let (newcomer, failed) = futures_lite::future::zip(newcomer, failed).await;
        assert!(matches!(newcomer, Err(AppendError::DiskFull { .. })));
        for (_, result) in &failed {
            assert!(
                matches!(result, Err(AppendError::DiskFull { .. })),
                "{result:?}"
            );
        }
        assert_eq!(log.end_offset(), end);
        assert_eq!(log.producer(2).unwrap(), before);
        assert_eq!(log.producer(3), None);

        // A full disk at a roll: the snapshot written at the roll holds the
        // state without the batches queued for the new segment, and the
        // rollback undoes them in memory.
        faults.fail_writes(None);
        // The failed write gave back the segment's allocation: this append
        // allocates the rest of it, so the next allocation is the roll's.
        let batch = producer_batch(2, 0, 8, 2, 20);
        let appended = log.append(batch.clone()).await.unwrap();
        acked.push(Sent { batch, appended });
        faults.fail_allocations(Some(libc::ENOSPC));
        let mut sequence = 10;
        let mut tag = 100;
        loop {
            let results = send_in_flight(&log, 2, sequence, 5, tag).await;
            tag += 5;
            let mut refused = false;
            for (batch, result) in results {
                match result {
                    Ok(appended) => {
                        assert!(!refused, "an append after a refused one succeeded");
                        sequence += 2;
                        acked.push(Sent { batch, appended });
                    }
                    Err(AppendError::DiskFull { .. }) => refused = true,
                    Err(error) => panic!("{error}"),
                }
            }
            if refused {
                break;
            }
            assert!(log.segment_count() < 4, "the roll never met the full disk");
        }
        assert_eq!(log.producer(2).unwrap().next_sequence(), sequence);
        assert_eq!(
            snapshot_files(dir).last().map(|path| offset_of(path)),
            Some(log.end_offset().0),
            "the disk was full at the roll, after its snapshot"
        );
        // Opened as a crash would leave it, the log has the snapshot of the
        // roll and nothing after it: that snapshot alone must be the state.
        let crashed = temp.path().join("crashed");
        copy_as_crashed(dir, &crashed);
        let copy = Log::open(&crashed, config.clone()).await.unwrap();
        assert_eq!(copy.end_offset(), log.end_offset());
        assert_eq!(copy.producer(2), log.producer(2));
        assert_eq!(copy.producer(3), None);
        copy.close().await.unwrap();
        faults.fail_allocations(None);
        resend_all(&log, &acked[acked.len() - PRODUCER_BATCHES_MAX..]).await;
        let next = log
            .append(producer_batch(2, 0, sequence, 2, 1000))
            .await
            .unwrap();
        assert!(!next.duplicate);
        let state = log.producer(2).unwrap();
        log.close().await.unwrap();
        let log = Log::open(dir, config).await.unwrap();
        assert_eq!(log.producer(2).unwrap(), state);
        assert_eq!(log.producer(3), None);
        log.close().await.unwrap();
    });
}

/// Appends batches of `producers` producers (each a few batches at a time,
/// epochs bumped now and then) and plain batches, across several segments;
/// returns what each producer sent, by producer id.
async fn mixed_traffic(log: &Log, producers: i64, rounds: u64) -> BTreeMap<i64, Vec<Sent>> {
    let mut sent: BTreeMap<i64, Vec<Sent>> = BTreeMap::new();
    let mut next: BTreeMap<i64, (i16, i32)> = BTreeMap::new();
    for round in 0..rounds {
        for producer_id in 0..producers {
            let (epoch, sequence) = next
                .entry(producer_id)
                .or_insert((0, 1000 * producer_id as i32));
            if round % 7 == 6 && producer_id % 2 == 0 {
                *epoch += 1;
                *sequence = 0;
            }
            let records = 1 + ((round + producer_id as u64) % 3) as u32;
            let batch = producer_batch(producer_id, *epoch, *sequence, records, round);
            let appended = log.append(batch.clone()).await.unwrap();
            *sequence += records as i32;
            sent.entry(producer_id)
                .or_default()
                .push(Sent { batch, appended });
        }
        log.append(plain_batch(round, 3)).await.unwrap();
    }
    sent
}

fn states(log: &Log, producers: i64) -> Vec<Option<ProducerState>> {
    (0..producers).map(|id| log.producer(id)).collect()
}

/// The last batches a producer sent in its current epoch: those a retry
/// may repeat.
fn retriable(sent: &[Sent]) -> &[Sent] {
    let epoch = sent.last().unwrap().batch.header().producer_epoch;
    let same_epoch = sent
        .iter()
        .rev()
        .take_while(|sent| sent.batch.header().producer_epoch == epoch)
        .count()
        .min(PRODUCER_BATCHES_MAX);
    &sent[sent.len() - same_epoch..]
}

fn snapshot_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == PRODUCERS_SUFFIX))
        .collect();
    files.sort();
    files
}

fn offset_of(path: &Path) -> u64 {
    path.file_stem().unwrap().to_str().unwrap().parse().unwrap()
}

#[test]
fn the_state_survives_a_clean_reopen() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), small_segments()).await.unwrap();
        let sent = mixed_traffic(&log, 6, 40).await;
        assert!(log.segment_count() > 3, "{} segments", log.segment_count());
        let before = states(&log, 6);
        let end = log.end_offset();
        log.close().await.unwrap();
        // One snapshot at the end, and those at segment bases.
        let snapshots = snapshot_files(dir.path());
        assert_eq!(snapshots.last().map(|path| offset_of(path)), Some(end.0));

        let log = Log::open(dir.path(), small_segments()).await.unwrap();
        assert_eq!(states(&log, 6), before);
        for sent in sent.values() {
            resend_all(&log, retriable(sent)).await;
        }
        // Appends go on from the next sequence of each.
        for (producer_id, state) in before.iter().enumerate() {
            let state = state.as_ref().unwrap();
            let appended = log
                .append(producer_batch(
                    producer_id as i64,
                    state.epoch,
                    state.next_sequence(),
                    1,
                    5000,
                ))
                .await
                .unwrap();
            assert!(!appended.duplicate);
        }
        log.close().await.unwrap();
    });
}

#[test]
fn the_state_is_rebuilt_after_a_crash_from_snapshots_and_batch_headers() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let original = dir.path().join("original");
        let log = Log::open(&original, small_segments()).await.unwrap();
        let sent = mixed_traffic(&log, 5, 30).await;
        let before = states(&log, 5);
        // Crashed with snapshots at every roll and the active segment to
        // replay.
        let crashed = dir.path().join("crashed");
        copy_as_crashed(&original, &crashed);
        log.close().await.unwrap();
        // Crashed before any roll: no snapshot at all.
        let unrolled = dir.path().join("unrolled");
        let unrolled_crashed = dir.path().join("unrolled-crashed");
        let unrolled_before = {
            let log = Log::open(&unrolled, LogConfig::default()).await.unwrap();
            mixed_traffic(&log, 5, 30).await;
            copy_as_crashed(&unrolled, &unrolled_crashed);
            let states = states(&log, 5);
            log.close().await.unwrap();
            states
        };

        let log = Log::open(&crashed, small_segments()).await.unwrap();
        assert_eq!(states(&log, 5), before);
        for sent in sent.values() {
            resend_all(&log, retriable(sent)).await;
        }
        log.close().await.unwrap();

        assert!(snapshot_files(&unrolled_crashed).is_empty());
        let log = Log::open(&unrolled_crashed, LogConfig::default())
            .await
            .unwrap();
        assert_eq!(states(&log, 5), unrolled_before);
        log.close().await.unwrap();
    });
}

#[test]
fn damaged_or_missing_snapshots_are_ignored_and_the_log_replayed() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), small_segments()).await.unwrap();
        mixed_traffic(&log, 4, 40).await;
        let before = states(&log, 4);
        let end = log.end_offset();
        log.close().await.unwrap();
        let reopen_and_check = |what: &'static str| {
            let path = dir.path().to_path_buf();
            let before = before.clone();
            async move {
                let log = Log::open(&path, small_segments())
                    .await
                    .unwrap_or_else(|error| panic!("{what}: {error}"));
                assert_eq!(states(&log, 4), before, "{what}");
                // A clean close writes the snapshot of the end again.
                log.close().await.unwrap();
            }
        };

        // A flipped byte in the newest.
        let newest = snapshot_files(dir.path()).pop().unwrap();
        assert_eq!(offset_of(&newest), end.0);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&newest)
            .unwrap();
        file.write_all_at(&[0xff], 30).unwrap();
        drop(file);
        reopen_and_check("a flipped byte").await;

        // A torn newest one, and an older one flipped too.
        let snapshots = snapshot_files(dir.path());
        assert!(snapshots.len() >= 3, "{snapshots:?}");
        let newest = &snapshots[snapshots.len() - 1];
        let bytes = std::fs::read(newest).unwrap();
        std::fs::write(newest, &bytes[..bytes.len() / 2]).unwrap();
        let older = &snapshots[snapshots.len() - 2];
        let mut bytes = std::fs::read(older).unwrap();
        bytes[4] ^= 1;
        std::fs::write(older, bytes).unwrap();
        reopen_and_check("a torn and a flipped one").await;

        // A valid snapshot under another offset's name, and one past the end
        // (as a log cut back would leave).
        let snapshots = snapshot_files(dir.path());
        let newest = snapshots.last().unwrap();
        let first = &snapshots[0];
        std::fs::copy(first, newest).unwrap();
        let past_end = dir
            .path()
            .join(format!("{:020}.{PRODUCERS_SUFFIX}", end.0 + 1000));
        std::fs::copy(first, &past_end).unwrap();
        reopen_and_check("a misnamed one and one past the end").await;
        assert!(!past_end.exists(), "the snapshot past the end was kept");

        // None at all: the whole log is replayed; a temporary file left by a
        // crash is deleted.
        for snapshot in snapshot_files(dir.path()) {
            std::fs::remove_file(snapshot).unwrap();
        }
        let temporary = dir
            .path()
            .join(format!("{:020}.{PRODUCERS_SUFFIX}.tmp", end.0));
        std::fs::write(&temporary, b"half a snapshot").unwrap();
        reopen_and_check("no snapshot").await;
        assert!(!temporary.exists());
    });
}

#[test]
fn retention_keeps_the_producers_of_deleted_segments() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            retention_bytes: Some(32 * 1024),
            retention_ms: None,
            ..small_segments()
        };
        let log = Log::open(dir.path(), config.clone()).await.unwrap();
        // Producer 1 appends only at the start.
        let mut early = Vec::new();
        for sequence in 0..6 {
            let batch = producer_batch(1, 2, sequence, 1, sequence as u64);
            let appended = log.append(batch.clone()).await.unwrap();
            early.push(Sent { batch, appended });
        }
        for tag in 0..300 {
            log.append(plain_batch(tag, 4)).await.unwrap();
        }
        let outcome = log.apply_retention().await.unwrap();
        assert!(outcome.log_start > early.last().unwrap().appended.last_offset);
        // No snapshot below the start is left; the one at the start is.
        let snapshots: Vec<u64> = snapshot_files(dir.path())
            .iter()
            .map(|path| offset_of(path))
            .collect();
        assert_eq!(
            snapshots.first(),
            Some(&outcome.log_start.0),
            "{snapshots:?}"
        );

        // Its retries are still answered with the offsets they had, though
        // they are gone; its next sequence appends.
        let recent = &early[early.len() - PRODUCER_BATCHES_MAX..];
        resend_all(&log, recent).await;
        log.close().await.unwrap();
        let log = Log::open(dir.path(), config).await.unwrap();
        assert_eq!(log.start_offset(), outcome.log_start);
        resend_all(&log, recent).await;
        let next = log.append(producer_batch(1, 2, 6, 1, 6)).await.unwrap();
        assert!(!next.duplicate);
        log.close().await.unwrap();
    });
}

#[test]
fn past_the_cap_the_least_recently_used_producer_is_forgotten() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            flush: FlushPolicy::Interval(std::time::Duration::from_millis(50)),
            ..LogConfig::default()
        };
        let log = Log::open(dir.path(), config.clone()).await.unwrap();
        let producers = PRODUCERS_MAX as i64 + 3;
        for producer_id in 0..producers {
            log.append(producer_batch(producer_id, 0, 0, 1, producer_id as u64))
                .await
                .unwrap();
            if producer_id == 3 {
                // Producer 0 appends again: 1, 2 and 3 are less recent.
                log.append(producer_batch(0, 0, 1, 1, 0)).await.unwrap();
            }
        }
        assert_eq!(log.producer_count(), PRODUCERS_MAX);
        let known =
            |log: &Log| -> Vec<bool> { (0..5).map(|id| log.producer(id).is_some()).collect() };
        assert_eq!(known(&log), [true, false, false, false, true]);
        log.close().await.unwrap();
        let log = Log::open(dir.path(), config).await.unwrap();
        assert_eq!(log.producer_count(), PRODUCERS_MAX);
        assert_eq!(known(&log), [true, false, false, false, true]);
        // A forgotten producer is unknown: any sequence is taken.
        assert!(
            !log.append(producer_batch(2, 0, 17, 1, 2))
                .await
                .unwrap()
                .duplicate
        );
        assert_eq!(known(&log), [false, false, true, false, true]);
        log.close().await.unwrap();
    });
}
