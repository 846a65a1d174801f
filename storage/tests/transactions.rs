//! Transactions on a real log: the last stable offset and the aborted
//! transactions a `read_committed` fetch reports, against a model, across
//! segment rolls, a clean reopen, a crash (a copy of the files taken while
//! the log is open), a damaged file of aborts, a truncation and retention.

mod common;

use common::{copy_as_crashed, run};

use std::{collections::BTreeMap, path::Path};

use bytes::BytesMut;
use sluice_storage::{
    batch::{Batch, BatchBuilder, Marker},
    log::{AbortedTransaction, Log, LogConfig, TransactionError},
    Offset,
};

/// A transactional batch of `records` records from `producer_id` at epoch
/// 0, starting at `sequence`, in the Kafka format a producer sends.
fn transactional(producer_id: i64, sequence: i32, records: u32) -> Batch {
    let mut builder = BatchBuilder::default().producer(producer_id, 0, sequence);
    for record in 0..records {
        let value = format!("{producer_id}/{sequence}/{record}:{}", "v".repeat(300));
        builder.push(1_000, Some(b"key"), value.as_bytes(), &[]);
    }
    let mut kafka = BytesMut::new();
    builder.finish().write_kafka(&mut kafka).unwrap();
    let mut kafka = kafka.to_vec();
    let attributes = i16::from_be_bytes([kafka[21], kafka[22]]) | 1 << 4;
    kafka[21..23].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c::crc32c(&kafka[21..]);
    kafka[17..21].copy_from_slice(&crc.to_be_bytes());
    Batch::from_kafka(&kafka).unwrap()
}

fn plain(records: u32) -> Batch {
    let mut builder = BatchBuilder::default();
    for record in 0..records {
        builder.push(1_000, None, format!("plain {record}").as_bytes(), &[]);
    }
    builder.finish()
}

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes_max: 8 * 1024,
        index_interval_bytes: 1024,
        ..LogConfig::default()
    }
}

/// One batch appended, as the model sees it.
#[derive(Debug, Clone, Copy)]
enum Event {
    Data {
        producer_id: i64,
        base: Offset,
    },
    End {
        producer_id: i64,
        marker: Marker,
        at: Offset,
    },
    Plain,
}

/// What the log must say after `events` up to `end`: the open
/// transactions (producer → first offset) and the aborted ones.
#[derive(Debug, Default, PartialEq, Eq)]
struct Model {
    open: BTreeMap<i64, Offset>,
    aborted: Vec<(i64, Offset, Offset)>,
}

fn model(events: &[Event], end: Offset) -> Model {
    let mut model = Model::default();
    for event in events {
        match *event {
            Event::Data { producer_id, base } if base < end => {
                model.open.entry(producer_id).or_insert(base);
            }
            Event::End {
                producer_id,
                marker,
                at,
            } if at < end => {
                if let Some(first) = model.open.remove(&producer_id) {
                    if marker == Marker::Abort {
                        model.aborted.push((producer_id, first, at));
                    }
                }
            }
            _ => {}
        }
    }
    model
}

/// Checks the log's transactions against `expected`, the model at its end.
fn check(log: &Log, expected: &Model, when: &str) {
    let end = log.end_offset();
    let stable = expected.open.values().min().copied().unwrap_or(end);
    assert_eq!(
        log.last_stable_offset(end),
        stable,
        "{when}: last stable offset"
    );
    let mut open: Vec<(i64, Offset)> = log
        .open_transactions()
        .into_iter()
        .map(|(producer_id, _, first)| (producer_id, first))
        .collect();
    open.sort();
    let expected_open: Vec<(i64, Offset)> = expected.open.iter().map(|(&p, &f)| (p, f)).collect();
    assert_eq!(open, expected_open, "{when}: open transactions");
    let aborted: Vec<(i64, Offset, Offset)> = log
        .aborted_transactions(Offset(0), end.next())
        .iter()
        .map(|aborted: &AbortedTransaction| {
            (
                aborted.producer_id,
                aborted.first_offset,
                aborted.last_offset,
            )
        })
        .collect();
    assert_eq!(aborted, expected.aborted, "{when}: aborted transactions");
    // A fetch of a range sees the aborts that overlap it, and only those.
    for from in (0..end.0).step_by(7) {
        let to = (from + 13).min(end.0);
        let got: Vec<Offset> = log
            .aborted_transactions(Offset(from), Offset(to))
            .iter()
            .map(|aborted| aborted.last_offset)
            .collect();
        let wanted: Vec<Offset> = expected
            .aborted
            .iter()
            .filter(|(_, first, marker)| marker.0 >= from && first.0 < to)
            .map(|&(_, _, marker)| marker)
            .collect();
        assert_eq!(got, wanted, "{when}: aborted in [{from}, {to})");
    }
}

/// Appends a deterministic mix of transactions (some interleaved, some
/// left open), markers and plain batches, from producers of its own.
async fn traffic(log: &Log, events: &mut Vec<Event>, rounds: u64, seed: u64) {
    let mut sequences: BTreeMap<i64, i32> = BTreeMap::new();
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut draw = |below: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % below
    };
    for _ in 0..rounds {
        // Each call's own producers: a producer's sequences go on from
        // the log, which a truncation moves back.
        let producer_id = seed as i64 * 10 + draw(5) as i64;
        match draw(10) {
            0..=5 => {
                let records = 1 + draw(3) as u32;
                let sequence = sequences.entry(producer_id).or_insert(0);
                let appended = log
                    .append(transactional(producer_id, *sequence, records))
                    .await
                    .unwrap();
                *sequence += records as i32;
                events.push(Event::Data {
                    producer_id,
                    base: appended.base_offset,
                });
            }
            6..=8 => {
                let marker = if draw(2) == 0 {
                    Marker::Abort
                } else {
                    Marker::Commit
                };
                let appended = log
                    .append(Batch::marker(producer_id, 0, marker, 1, 1_000).unwrap())
                    .await
                    .unwrap();
                events.push(Event::End {
                    producer_id,
                    marker,
                    at: appended.base_offset,
                });
            }
            _ => {
                log.append(plain(1 + draw(2) as u32)).await.unwrap();
                events.push(Event::Plain);
            }
        }
    }
}

fn aborted_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "aborted"))
        .collect();
    files.sort();
    files
}

#[test]
fn transactions_survive_rolls_a_clean_reopen_a_crash_and_a_damaged_file() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let original = dir.path().join("original");
        let log = Log::open(&original, small_segments()).await.unwrap();
        let mut events = Vec::new();
        traffic(&log, &mut events, 300, 1).await;
        let expected = model(&events, log.end_offset());
        assert!(log.segment_count() > 10, "{} segments", log.segment_count());
        assert!(expected.aborted.len() > 10 && !expected.open.is_empty());
        check(&log, &expected, "appended");
        assert!(
            !aborted_files(&original).is_empty(),
            "sealed segments keep their aborts"
        );

        let crashed = dir.path().join("crashed");
        copy_as_crashed(&original, &crashed);
        log.close().await.unwrap();

        let log = Log::open(&original, small_segments()).await.unwrap();
        check(&log, &expected, "reopened");
        log.close().await.unwrap();

        let log = Log::open(&crashed, small_segments()).await.unwrap();
        check(&log, &expected, "after a crash");
        // Going on after the crash: the transactions open at the crash
        // end as they would have.
        traffic(&log, &mut events, 100, 2).await;
        let expected = model(&events, log.end_offset());
        check(&log, &expected, "after a crash, appended");
        log.close().await.unwrap();

        // A damaged file of aborts: its segment is replayed.
        let files = aborted_files(&crashed);
        let damaged = &files[files.len() / 2];
        let mut bytes = std::fs::read(damaged).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        std::fs::write(damaged, bytes).unwrap();
        // And the aborts of a segment that is gone, left by a crash while
        // its files were deleted: removed, not read.
        let stray = crashed.join(format!("{:020}.aborted", u64::MAX / 2));
        std::fs::copy(&files[0], &stray).unwrap();
        let log = Log::open(&crashed, small_segments()).await.unwrap();
        check(&log, &expected, "a damaged file");
        assert!(!stray.exists(), "the aborts of no segment are removed");
        log.close().await.unwrap();
    });
}

#[test]
fn a_truncation_takes_the_transactions_past_the_cut_back() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let log = Log::open(&path, small_segments()).await.unwrap();
        let mut events = Vec::new();
        traffic(&log, &mut events, 300, 3).await;
        // Cut at an abort marker inside a sealed segment, whose file of
        // aborts holds it: the segment of the cut stays, and its file must
        // lose the aborts past the cut.
        let bases: Vec<u64> = std::fs::read_dir(&path)
            .unwrap()
            .filter_map(|entry| {
                let name = entry.unwrap().file_name().into_string().unwrap();
                name.strip_suffix(".log")?.parse().ok()
            })
            .collect();
        let cut = model(&events, log.end_offset())
            .aborted
            .iter()
            .map(|&(_, _, marker)| marker)
            .rfind(|marker| !bases.contains(&marker.0) && bases.iter().any(|&base| base > marker.0))
            .expect("an abort inside a sealed segment");
        let end = log.truncate_to(cut).await.unwrap();
        assert_eq!(end, cut);
        let kept: Vec<Event> = events
            .iter()
            .copied()
            .filter(|event| match *event {
                Event::Data { base, .. } => base < end,
                Event::End { at, .. } => at < end,
                Event::Plain => true,
            })
            .collect();
        let mut events = kept;
        check(&log, &model(&events, end), "truncated");
        // New batches take the offsets past the cut; what was there before
        // is not remembered, neither now nor after a crash (before the
        // segment of the cut rolls, which rewrites its file of aborts).
        let segments = log.segment_count();
        log.append(plain(1)).await.unwrap();
        events.push(Event::Plain);
        assert_eq!(
            log.segment_count(),
            segments,
            "the segment of the cut is active"
        );
        let expected = model(&events, log.end_offset());
        check(&log, &expected, "truncated, appended");
        let crashed = dir.path().join("crashed");
        copy_as_crashed(&path, &crashed);
        log.close().await.unwrap();
        let log = Log::open(&crashed, small_segments()).await.unwrap();
        check(&log, &expected, "truncated, appended, crashed");
        log.close().await.unwrap();
    });
}

#[test]
fn retention_forgets_the_aborts_of_deleted_segments() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            retention_bytes: Some(32 * 1024),
            ..small_segments()
        };
        let log = Log::open(dir.path(), config.clone()).await.unwrap();
        let mut events = Vec::new();
        traffic(&log, &mut events, 300, 5).await;
        let before = log.aborted_transactions(Offset(0), log.end_offset()).len();
        let outcome = log.apply_retention().await.unwrap();
        assert!(outcome.segments_deleted > 0);
        let start = log.start_offset();
        let left = log.aborted_transactions(Offset(0), log.end_offset());
        assert!(left.len() < before);
        assert!(left.iter().all(|aborted| aborted.last_offset >= start));
        assert_eq!(
            left,
            log.aborted_transactions(start, log.end_offset()),
            "nothing below the log start"
        );
        log.close().await.unwrap();
        let log = Log::open(dir.path(), config).await.unwrap();
        assert_eq!(log.aborted_transactions(Offset(0), log.end_offset()), left);
        log.close().await.unwrap();
    });
}

#[test]
fn a_marker_older_than_its_producer_is_fenced() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), LogConfig::default()).await.unwrap();
        let mut builder = BatchBuilder::default().producer(7, 3, 0);
        builder.push(1_000, None, b"epoch 3", &[]);
        log.append(builder.finish()).await.unwrap();
        let stale = Batch::marker(7, 2, Marker::Abort, 1, 1_000).unwrap();
        let refused = log.append(stale).await.unwrap_err();
        assert!(
            matches!(
                refused,
                sluice_storage::log::AppendError::Transaction(TransactionError::MarkerFenced {
                    producer_id: 7,
                    epoch: 2,
                    current_epoch: 3
                })
            ),
            "{refused:?}"
        );
        log.append(Batch::marker(7, 3, Marker::Commit, 1, 1_000).unwrap())
            .await
            .unwrap();
        log.close().await.unwrap();
    });
}

/// A transactional batch the broker writes (the group coordinator's
/// offsets of a TxnOffsetCommit): no sequence, so never taken for a retry
/// of the one before, nor refused as out of order.
fn brokers(producer_id: i64, epoch: i16, value: &[u8]) -> Batch {
    sluice_storage::batch::filter::transactional_kafka_batch(
        &[(Some(b"offset key"), Some(value))],
        0,
        1_000,
        producer_id,
        epoch,
    )
    .unwrap()
}

#[test]
fn a_brokers_transactional_batches_without_a_sequence_open_the_transaction_its_marker_ends() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), LogConfig::default()).await.unwrap();
        log.append(plain(1)).await.unwrap();
        let first = log.append(brokers(7, 2, b"one")).await.unwrap();
        let second = log.append(brokers(7, 2, b"one")).await.unwrap();
        assert!(!first.duplicate && !second.duplicate);
        assert_eq!(second.base_offset, first.last_offset.next());
        assert_eq!(log.open_transactions(), vec![(7, 2, first.base_offset)]);
        assert_eq!(log.last_stable_offset(log.end_offset()), first.base_offset);
        // No sequence: the producer's idempotence state is not touched.
        assert_eq!(log.producer(7), None);
        log.close().await.unwrap();

        let log = Log::open(dir.path(), LogConfig::default()).await.unwrap();
        assert_eq!(log.open_transactions(), vec![(7, 2, first.base_offset)]);
        log.append(Batch::marker(7, 2, Marker::Commit, 1, 1_000).unwrap())
            .await
            .unwrap();
        assert_eq!(log.open_transactions(), vec![]);
        assert_eq!(log.last_stable_offset(log.end_offset()), log.end_offset());
        log.close().await.unwrap();
    });
}

#[test]
fn a_stable_read_stops_at_the_oldest_open_transaction() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), LogConfig::default()).await.unwrap();
        log.append(plain(2)).await.unwrap(); // 0..=1
        log.append(transactional(7, 0, 2)).await.unwrap(); // 2..=3, opens
        log.append(plain(1)).await.unwrap(); // 4
        assert_eq!(log.stable_end(), Offset(2));
        assert_eq!(log.visible_end(), Offset(5));
        let stable = log.read_stable(Offset(0), usize::MAX).await.unwrap();
        let ends: Vec<Offset> = stable.iter().map(Batch::last_offset).collect();
        assert_eq!(ends, [Offset(1)], "only the batch below the open one");

        // The same from the segment file, once the tail is not in memory.
        log.close().await.unwrap();
        let log = Log::open(dir.path(), LogConfig::default()).await.unwrap();
        assert_eq!(log.stable_end(), Offset(2));
        let stable = log.read_stable(Offset(0), usize::MAX).await.unwrap();
        let ends: Vec<Offset> = stable.iter().map(Batch::last_offset).collect();
        assert_eq!(ends, [Offset(1)], "read from the file");
        for offset in 2..5 {
            assert!(
                log.read_stable(Offset(offset), usize::MAX)
                    .await
                    .unwrap()
                    .is_empty(),
                "at {offset}, past the stable end"
            );
        }
        assert_eq!(
            log.read(Offset(2), usize::MAX).await.unwrap().len(),
            2,
            "an uncommitted read goes on"
        );
        assert!(
            log.read_stable(Offset(6), usize::MAX).await.is_err(),
            "past the log end is out of range, as for any read"
        );

        log.append(Batch::marker(7, 0, Marker::Commit, 1, 1_000).unwrap())
            .await
            .unwrap(); // 5
        assert_eq!(log.stable_end(), Offset(6));
        assert_eq!(
            log.read_stable(Offset(2), usize::MAX).await.unwrap().len(),
            3,
            "the transaction, the plain batch and the marker"
        );
        log.close().await.unwrap();
    });
}

#[test]
fn a_stable_waiter_wakes_at_the_marker_not_at_an_append_behind_the_open_transaction() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = std::rc::Rc::new(Log::open(dir.path(), LogConfig::default()).await.unwrap());
        log.append(transactional(7, 0, 1)).await.unwrap(); // 0, opens
        let woken = std::rc::Rc::new(std::cell::Cell::new(false));
        let waiter = {
            let (log, woken) = (log.clone(), woken.clone());
            glommio::spawn_local(async move {
                log.wait_for_stable_data(Offset(0)).await;
                woken.set(true);
            })
        };
        glommio::yield_if_needed().await;
        log.append(plain(1)).await.unwrap(); // 1: visible, not stable
        glommio::timer::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!woken.get(), "woke while the transaction was open");
        log.append(Batch::marker(7, 0, Marker::Abort, 1, 1_000).unwrap())
            .await
            .unwrap(); // 2
        waiter.await;
        assert_eq!(log.stable_end(), Offset(3));
        log.close().await.unwrap();
    });
}

#[test]
fn a_transaction_stays_unstable_until_the_high_watermark_passes_its_marker() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), LogConfig::default()).await.unwrap();
        log.set_high_watermark(Some(Offset(0)));
        log.append(plain(2)).await.unwrap(); // 0..=1
        log.append(transactional(7, 0, 2)).await.unwrap(); // 2..=3, opens
        log.append(plain(1)).await.unwrap(); // 4
        log.append(Batch::marker(7, 0, Marker::Commit, 1, 1_000).unwrap())
            .await
            .unwrap(); // 5
        log.append(plain(1)).await.unwrap(); // 6
        for (high_watermark, stable) in [(1, 1), (2, 2), (5, 2), (6, 6), (7, 7)] {
            log.set_high_watermark(Some(Offset(high_watermark)));
            assert_eq!(
                log.stable_end(),
                Offset(stable),
                "under a high watermark of {high_watermark}"
            );
            assert_eq!(
                log.last_stable_offset(Offset(high_watermark)),
                Offset(stable)
            );
        }
        // Replicated once, ended for good.
        log.set_high_watermark(Some(Offset(7)));
        assert_eq!(log.last_stable_offset(Offset(5)), Offset(5));

        // A marker not replicated and cut by a truncation: the transaction
        // is open again, and stays so past any high watermark.
        log.append(transactional(8, 0, 1)).await.unwrap(); // 7, opens
        log.append(Batch::marker(8, 0, Marker::Abort, 1, 1_000).unwrap())
            .await
            .unwrap(); // 8
        log.set_high_watermark(Some(Offset(8)));
        assert_eq!(log.stable_end(), Offset(7), "the abort not replicated");
        assert_eq!(log.truncate_to(Offset(8)).await.unwrap(), Offset(8));
        assert_eq!(log.open_transactions(), [(8, 0, Offset(7))]);
        log.append(plain(1)).await.unwrap(); // 8
        log.set_high_watermark(Some(Offset(9)));
        assert_eq!(log.stable_end(), Offset(7));
        assert!(log.aborted_transactions(Offset(0), Offset(9)).is_empty());
        log.append(Batch::marker(8, 0, Marker::Commit, 1, 1_000).unwrap())
            .await
            .unwrap(); // 9
        assert_eq!(log.stable_end(), Offset(7), "the commit not replicated");
        log.set_high_watermark(Some(Offset(10)));
        assert_eq!(log.stable_end(), Offset(10));

        // Without a high watermark (one replica), a marker counts once
        // stored, as any batch does.
        log.set_high_watermark(None);
        log.append(transactional(9, 0, 1)).await.unwrap(); // 10
        log.append(Batch::marker(9, 0, Marker::Commit, 1, 1_000).unwrap())
            .await
            .unwrap(); // 11
        assert_eq!(log.stable_end(), log.visible_end());
        log.close().await.unwrap();
    });
}
