//! Tests of compaction: the cleaner against a model, its swap under
//! injected faults, and what a compacted log keeps (producers, offsets).

use std::{cell::Cell, collections::BTreeMap, rc::Rc};

use rand::{rngs::StdRng, Rng, SeedableRng};

use super::tests::run;
use super::*;
use crate::batch::{filter, filter::KeyValue, BatchBuilder};

struct ManualClock(Cell<i64>);

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.get()
    }
}

const RETENTION_MS: u64 = 10_000;

fn compacted() -> LogConfig {
    LogConfig {
        segment_bytes_max: 16 * 1024,
        index_interval_bytes: 512,
        tail_cache_bytes_max: 8 * 1024,
        retention_ms: Some(1),
        cleanup_policy: CleanupPolicy {
            delete: false,
            compact: true,
        },
        compaction: CompactionConfig {
            min_cleanable_dirty_ratio: DirtyRatio::new(0.0).unwrap(),
            delete_retention_ms: RETENTION_MS,
            ..CompactionConfig::default()
        },
        file_delete_delay_ms: 0,
        prepare_segments: false,
        ..LogConfig::default()
    }
}

async fn open(dir: &std::path::Path, clock: &Rc<ManualClock>, faults: Option<Rc<IoFaults>>) -> Log {
    crate::log::set_cleaner_pace(0);
    Log::open_with(
        dir,
        compacted(),
        LogOptions {
            clock: clock.clone(),
            faults,
        },
    )
    .await
    .unwrap()
}

/// (offset, key, value; `None` a tombstone) of every record readable.
type Record = (u64, Vec<u8>, Option<Vec<u8>>);

async fn read_all(log: &Log) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    let mut offset = log.start_offset();
    while offset < log.visible_end() {
        let batches = log.read(offset, 64 * 1024).await.unwrap();
        assert!(!batches.is_empty(), "nothing read at {offset}");
        for batch in &batches {
            filter::for_each_record(batch, |record| {
                if record.offset >= offset {
                    out.push((
                        record.offset.0,
                        record.key.unwrap().to_vec(),
                        record.value.map(<[u8]>::to_vec),
                    ));
                }
            })
            .unwrap();
            offset = batch.last_offset().next();
        }
    }
    for pair in out.windows(2) {
        assert!(
            pair[0].0 < pair[1].0,
            "offsets go up: {} then {}",
            pair[0].0,
            pair[1].0
        );
    }
    out
}

/// A batch of `records`, native (no tombstones there) or kafka with codec
/// `format - 1`.
fn batch_of(records: &[(Vec<u8>, Option<Vec<u8>>)], format: u16, timestamp: i64) -> Batch {
    if format == 0 {
        let mut builder = BatchBuilder::default();
        for (key, value) in records {
            builder.push(timestamp, Some(key), value.as_deref().unwrap_or(b"-"), &[]);
        }
        return builder.finish();
    }
    let borrowed: Vec<KeyValue<'_>> = records
        .iter()
        .map(|(key, value)| (Some(&key[..]), value.as_deref()))
        .collect();
    filter::test_kafka_batch(&borrowed, format - 1, timestamp)
}

/// The model: every record appended, by offset.
#[derive(Default)]
struct Model {
    records: BTreeMap<u64, (Vec<u8>, Option<Vec<u8>>)>,
}

impl Model {
    fn append(&mut self, base: Offset, records: &[(Vec<u8>, Option<Vec<u8>>)], format: u16) {
        for (index, (key, value)) in records.iter().enumerate() {
            // A native record has no null value: the batch said "-".
            let value = match (format, value) {
                (0, None) => Some(b"-".to_vec()),
                (_, value) => value.clone(),
            };
            self.records
                .insert(base.0 + index as u64, (key.clone(), value));
        }
    }

    fn latest(&self) -> BTreeMap<Vec<u8>, (u64, Option<Vec<u8>>)> {
        let mut latest = BTreeMap::new();
        for (offset, (key, value)) in &self.records {
            latest.insert(key.clone(), (*offset, value.clone()));
        }
        latest
    }

    /// What a compacted log must hold: every record read is one appended,
    /// unchanged; the latest record of each key is there, unless it is a
    /// tombstone (which may be gone); every record at or past `intact_from`
    /// is there.
    fn check(&self, read: &[Record], intact_from: u64) {
        for (offset, key, value) in read {
            let (model_key, model_value) = self
                .records
                .get(offset)
                .unwrap_or_else(|| panic!("offset {offset} was never appended"));
            assert_eq!((key, value), (model_key, model_value), "record at {offset}");
        }
        let read_offsets: std::collections::BTreeSet<u64> =
            read.iter().map(|(offset, _, _)| *offset).collect();
        for (key, (offset, value)) in self.latest() {
            if value.is_some() {
                assert!(
                    read_offsets.contains(&offset),
                    "the latest of {key:?} at {offset} is gone"
                );
            }
            let last_read = read.iter().rev().find(|(_, read_key, _)| *read_key == key);
            if let Some((read_offset, _, _)) = last_read {
                assert_eq!(
                    *read_offset, offset,
                    "an older record of {key:?} is the last one"
                );
            }
        }
        for offset in self.records.range(intact_from..).map(|(offset, _)| offset) {
            assert!(
                read_offsets.contains(offset),
                "{offset} is past the cleaned point"
            );
        }
    }
}

#[test]
fn the_latest_record_of_each_key_stays_in_both_formats_and_every_codec() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let clock = Rc::new(ManualClock(Cell::new(1_000_000)));
        let log = open(dir.path(), &clock, None).await;
        let mut model = Model::default();
        for round in 0..60_u64 {
            let records: Vec<_> = (0..20)
                .map(|i| {
                    let key = format!("key-{}", (round * 7 + i) % 25).into_bytes();
                    (
                        key,
                        Some(format!("value-{round}-{i}-{}", "x".repeat(40)).into_bytes()),
                    )
                })
                .collect();
            let format = (round % 6) as u16;
            let appended = log
                .append(batch_of(&records, format, 1_000_000))
                .await
                .unwrap();
            model.append(appended.base_offset, &records, format);
            if round % 5 == 4 {
                log.roll();
            }
        }
        let segments = log.segment_count();
        assert!(segments > 5, "{segments} segments");
        let before = log.size_bytes();
        let outcome = log.compact().await.unwrap();
        assert!(outcome.cleaned);
        assert!(outcome.records_removed > 0);
        assert!(outcome.segments_cleaned > 0);
        assert!(
            log.size_bytes() < before,
            "{} of {before} bytes",
            log.size_bytes()
        );
        assert_eq!(log.segment_count(), segments, "no segment goes");
        let read = read_all(&log).await;
        model.check(&read, outcome.cleaned_end.0);
        assert!(read.len() < model.records.len());
        // Each key once below the cleaned point.
        let below: Vec<_> = read
            .iter()
            .filter(|(offset, _, _)| *offset < outcome.cleaned_end.0)
            .collect();
        let keys: std::collections::BTreeSet<_> = below.iter().map(|(_, key, _)| key).collect();
        assert_eq!(keys.len(), below.len());
        assert!(log.verify().await.unwrap() > 0);
        // A second pass right after finds nothing dirty.
        assert!(!log.compact().await.unwrap().cleaned);
        log.close().await.unwrap();

        // Read back the same after a reopen, its indexes trusted or rebuilt.
        let log = open(dir.path(), &clock, None).await;
        assert_eq!(read_all(&log).await, read);
        log.close().await.unwrap();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".index") {
                std::fs::remove_file(dir.path().join(name)).unwrap();
            }
        }
        let log = open(dir.path(), &clock, None).await;
        assert_eq!(read_all(&log).await, read);
        // Every offset reads: a removed one from the next record kept.
        for offset in log.start_offset().0..log.visible_end().0 {
            let batches = log.read(Offset(offset), 1).await.unwrap();
            assert!(batches[0].last_offset().0 >= offset);
        }
        log.close().await.unwrap();
    });
}

#[test]
fn tombstones_go_once_delete_retention_passed_since_their_first_cleaning() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let clock = Rc::new(ManualClock(Cell::new(1_000_000)));
        let log = open(dir.path(), &clock, None).await;
        let record = |key: &str, value: Option<&str>| {
            (
                key.as_bytes().to_vec(),
                value.map(|v| v.as_bytes().to_vec()),
            )
        };
        let filler = |round: usize| -> Vec<_> {
            (0..30)
                .map(|i| record(&format!("filler-{round}-{i}"), Some(&"f".repeat(100))))
                .collect()
        };
        log.append(batch_of(
            &[record("a", Some("1")), record("b", Some("1"))],
            1,
            0,
        ))
        .await
        .unwrap();
        log.append(batch_of(&filler(0), 1, 0)).await.unwrap();
        log.roll();
        let tombstone = log
            .append(batch_of(&[record("a", None)], 3, 0))
            .await
            .unwrap()
            .base_offset;
        log.roll();
        log.append(batch_of(&filler(1), 1, 0)).await.unwrap();
        let first = log.compact().await.unwrap();
        assert!(first.cleaned && first.cleaned_end > tombstone);
        let read = read_all(&log).await;
        assert!(
            !read
                .iter()
                .any(|(_, key, value)| key == b"a" && value.is_some()),
            "a's value is gone"
        );
        assert!(
            read.iter()
                .any(|(offset, _, value)| *offset == tombstone.0 && value.is_none()),
            "the tombstone stays"
        );

        // Not yet: the retention has not passed since its first cleaning.
        clock.0.set(clock.0.get() + RETENTION_MS as i64 - 1);
        log.roll();
        log.append(batch_of(&filler(2), 1, 0)).await.unwrap();
        log.roll();
        log.append(batch_of(&filler(3), 1, 0)).await.unwrap();
        assert!(log.compact().await.unwrap().cleaned);
        assert!(read_all(&log)
            .await
            .iter()
            .any(|(offset, _, _)| *offset == tombstone.0));

        clock.0.set(clock.0.get() + 1);
        log.roll();
        log.append(batch_of(&filler(4), 1, 0)).await.unwrap();
        log.roll();
        log.append(batch_of(&filler(5), 1, 0)).await.unwrap();
        assert!(log.compact().await.unwrap().cleaned);
        let read = read_all(&log).await;
        assert!(
            !read.iter().any(|(_, key, _)| key == b"a"),
            "the tombstone went: {:?}",
            &read[..3]
        );
        assert!(read.iter().any(|(_, key, _)| key == b"b"));
        log.close().await.unwrap();
    });
}

#[test]
fn a_compacted_log_keeps_its_segments_past_retention() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let clock = Rc::new(ManualClock(Cell::new(1_000_000)));
        let log = open(dir.path(), &clock, None).await;
        for round in 0..3 {
            log.append(batch_of(&[(vec![round], Some(vec![round; 100]))], 0, 0))
                .await
                .unwrap();
            log.roll();
        }
        log.append(batch_of(&[(vec![9], Some(vec![9]))], 0, 0))
            .await
            .unwrap();
        // retention.ms is 1 and every timestamp is old: compact alone keeps them.
        assert_eq!(log.apply_retention().await.unwrap().segments_deleted, 0);
        let mut config = log.config();
        config.cleanup_policy.delete = true;
        log.set_config(config).unwrap();
        assert_eq!(log.apply_retention().await.unwrap().segments_deleted, 3);
        log.close().await.unwrap();
    });
}

/// Rolls, writes newer values of key "k" in three later segments and one
/// other key, and compacts: the records of "k" before are all superseded.
async fn overwrite_k_and_compact(log: &Log) {
    log.roll();
    for round in 0..3_u8 {
        log.append(batch_of(&[(b"k".to_vec(), Some(vec![round; 200]))], 1, 0))
            .await
            .unwrap();
        log.roll();
    }
    log.append(batch_of(&[(b"other".to_vec(), Some(b"x".to_vec()))], 1, 0))
        .await
        .unwrap();
    assert!(log.compact().await.unwrap().cleaned);
}

#[test]
fn an_idempotent_producer_keeps_its_sequence_through_compaction_and_reopen() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let clock = Rc::new(ManualClock(Cell::new(1_000_000)));
        let log = open(dir.path(), &clock, None).await;
        // Producer 7 writes key "k" three times; then others overwrite "k".
        for sequence in 0..3 {
            let mut builder = BatchBuilder::default().producer(7, 0, sequence * 2);
            builder.push(0, Some(b"k"), b"old", &[]);
            builder.push(0, Some(b"k"), b"old", &[]);
            log.append(builder.finish()).await.unwrap();
        }
        let last_of_7 = log.producer(7).unwrap().batches.last().unwrap().base_offset;
        overwrite_k_and_compact(&log).await;
        let read = read_all(&log).await;
        // Producer 7's last batch stays whole, its older ones go.
        let kept: Vec<u64> = read
            .iter()
            .map(|(offset, _, _)| *offset)
            .filter(|offset| *offset < 6)
            .collect();
        assert_eq!(kept, [last_of_7.0, last_of_7.0 + 1]);
        log.close().await.unwrap();
        // Even without its snapshots, the log alone tells its sequence.
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.to_string_lossy().ends_with(PRODUCERS_SUFFIX) {
                std::fs::remove_file(path).unwrap();
            }
        }
        let log = open(dir.path(), &clock, None).await;
        assert_eq!(log.producer(7).unwrap().next_sequence(), 6);
        let mut builder = BatchBuilder::default().producer(7, 0, 6);
        builder.push(0, Some(b"k"), b"new", &[]);
        assert!(!log.append(builder.finish()).await.unwrap().duplicate);
        log.close().await.unwrap();
    });
}

/// A transactional batch of the broker's (no sequence) of `records`.
fn in_transaction(producer_id: i64, records: &[(&str, Option<&str>)]) -> Batch {
    let records: Vec<KeyValue<'_>> = records
        .iter()
        .map(|(key, value)| (Some(key.as_bytes()), value.map(str::as_bytes)))
        .collect();
    filter::transactional_kafka_batch(&records, 0, 0, producer_id, 0).unwrap()
}

fn plain(records: &[(&str, Option<&str>)]) -> Batch {
    let records: Vec<_> = records
        .iter()
        .map(|(key, value)| {
            (
                key.as_bytes().to_vec(),
                value.map(|value| value.as_bytes().to_vec()),
            )
        })
        .collect();
    batch_of(&records, 1, 0)
}

fn marker(producer_id: i64, marker: crate::batch::Marker) -> Batch {
    Batch::marker(producer_id, 0, marker, 1, 0).unwrap()
}

/// What a `read_committed` reader gets below the stable end: the records
/// of the batches [`Log::read_stable`] returns, less markers and the
/// batches of the aborted transactions the log lists for them.
async fn read_committed(log: &Log) -> Vec<Record> {
    let mut out = Vec::new();
    let mut offset = log.start_offset();
    while offset < log.stable_end() {
        let batches = log.read_stable(offset, 64 * 1024).await.unwrap();
        assert!(!batches.is_empty(), "nothing read at {offset}");
        let last = batches.last().unwrap().last_offset();
        let aborted = log.aborted_transactions(offset, last.next());
        for batch in &batches {
            let header = batch.header();
            let dropped = header.marker().is_some()
                || (header.is_transactional()
                    && aborted.iter().any(|aborted| {
                        aborted.producer_id == header.producer_id
                            && aborted.first_offset <= batch.base_offset()
                            && batch.base_offset() <= aborted.last_offset
                    }));
            if !dropped {
                filter::for_each_record(batch, |record| {
                    if record.offset >= offset {
                        out.push((
                            record.offset.0,
                            record.key.unwrap().to_vec(),
                            record.value.map(<[u8]>::to_vec),
                        ));
                    }
                })
                .unwrap();
            }
        }
        offset = last.next();
    }
    out
}

/// Committed, aborted and open transactions interleaved with plain
/// records on the same keys, compacted: the aborted records go, the
/// committed ones are compacted by key with the plain ones, the open one
/// and all after it stay, the markers stay; a `read_committed` reader gets
/// the committed view, before and after a reopen.
#[test]
fn aborted_records_go_committed_ones_compact_and_open_ones_stay() {
    use crate::batch::Marker::{Abort, Commit};
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let clock = Rc::new(ManualClock(Cell::new(1_000_000)));
        let log = open(dir.path(), &clock, None).await;
        let at = |appended: Appended| appended.base_offset.0;
        // Segment 0: producer 1 aborts, producer 2 commits, plain records
        // in between.
        let p_k1 = at(log
            .append(plain(&[("k1", Some("p1")), ("k2", Some("p1"))]))
            .await
            .unwrap());
        let a_k1 = at(log
            .append(in_transaction(1, &[("k1", Some("a1")), ("k3", Some("a1"))]))
            .await
            .unwrap());
        let c_k2 = at(log
            .append(in_transaction(2, &[("k2", Some("c1")), ("k4", Some("c1"))]))
            .await
            .unwrap());
        let p_k5 = at(log.append(plain(&[("k5", Some("p1"))])).await.unwrap());
        let a_k1_again = at(log
            .append(in_transaction(1, &[("k1", Some("a2"))]))
            .await
            .unwrap());
        let abort_1 = at(log.append(marker(1, Abort)).await.unwrap());
        let commit_2 = at(log.append(marker(2, Commit)).await.unwrap());
        log.roll();
        // Segment 1: a plain record overwrites a committed one, producer 3
        // commits a newer value and a tombstone.
        let p_k4 = at(log.append(plain(&[("k4", Some("p2"))])).await.unwrap());
        let d_k5 = at(log
            .append(in_transaction(3, &[("k5", Some("d1")), ("k2", None)]))
            .await
            .unwrap());
        let commit_3 = at(log.append(marker(3, Commit)).await.unwrap());
        log.roll();
        // Segment 2: producer 4's transaction stays open; plain records of
        // the same keys after it.
        let o_k1 = at(log
            .append(in_transaction(4, &[("k1", Some("o1"))]))
            .await
            .unwrap());
        let p_k1_late = at(log
            .append(plain(&[("k1", Some("p3")), ("k4", Some("p3"))]))
            .await
            .unwrap());
        log.roll();
        log.append(plain(&[("k6", Some("p1"))])).await.unwrap();
        assert_eq!(log.stable_end(), Offset(o_k1));
        let before = read_all(&log).await;

        let outcome = log.compact().await.unwrap();
        assert!(outcome.cleaned);
        assert!(
            outcome.cleaned_end <= Offset(o_k1),
            "cleaned past the last stable offset: {}",
            outcome.cleaned_end
        );
        let offsets = |read: &[Record]| {
            read.iter()
                .map(|(offset, _, _)| *offset)
                .collect::<Vec<_>>()
        };
        let kept = offsets(&read_all(&log).await);
        // k1's plain record stays: the aborted ones hide nothing. k2 goes
        // to the committed c1, then to producer 3's tombstone (kept: not
        // yet past the retention); k3 was only aborted; k4's committed c1
        // goes to the plain p2; k5's plain p1 to the committed d1.
        let expected_below_open = vec![p_k1, abort_1, commit_2, p_k4, d_k5, d_k5 + 1, commit_3];
        let below_open: Vec<u64> = kept
            .iter()
            .copied()
            .filter(|&offset| offset < o_k1)
            .collect();
        assert_eq!(below_open, expected_below_open, "before: {before:?}");
        for gone in [p_k1 + 1, a_k1, a_k1 + 1, c_k2, c_k2 + 1, p_k5, a_k1_again] {
            assert!(!kept.contains(&gone), "{gone} stays");
        }
        // The open transaction and all after it are untouched.
        let after_open = |read: Vec<Record>| -> Vec<Record> {
            read.into_iter()
                .filter(|(offset, _, _)| *offset >= o_k1)
                .collect()
        };
        assert_eq!(after_open(read_all(&log).await), after_open(before.clone()));
        assert!(kept.contains(&p_k1_late));
        let committed = read_committed(&log).await;
        let view = |read: &[Record]| -> Vec<(String, Option<String>)> {
            read.iter()
                .map(|(_, key, value)| {
                    (
                        String::from_utf8(key.clone()).unwrap(),
                        value.clone().map(|value| String::from_utf8(value).unwrap()),
                    )
                })
                .collect()
        };
        let expected_view = vec![
            ("k1".to_string(), Some("p1".to_string())),
            ("k4".to_string(), Some("p2".to_string())),
            ("k5".to_string(), Some("d1".to_string())),
            ("k2".to_string(), None),
        ];
        assert_eq!(view(&committed), expected_view);
        assert_eq!(
            log.aborted_transactions(Offset(0), log.end_offset()).len(),
            1,
            "the abort stays listed while its marker is kept"
        );
        log.close().await.unwrap();

        let log = open(dir.path(), &clock, None).await;
        assert_eq!(offsets(&read_all(&log).await), kept);
        assert_eq!(view(&read_committed(&log).await), expected_view);
        assert_eq!(log.stable_end(), Offset(o_k1));
        // The open transaction commits: its record is the newest of k1 but
        // for the plain one after it.
        log.append(marker(4, Commit)).await.unwrap();
        log.roll();
        log.append(plain(&[("k7", Some("p1"))])).await.unwrap();
        assert!(log.compact().await.unwrap().cleaned);
        let kept = offsets(&read_all(&log).await);
        assert!(
            !kept.contains(&p_k1) && !kept.contains(&o_k1),
            "k1 goes to p3: {kept:?}"
        );
        assert!(kept.contains(&p_k1_late));
        log.close().await.unwrap();
    });
}

/// Fills a log whose sealed segments all have records to drop; returns the
/// model.
async fn fill(log: &Log, rounds: u64) -> Model {
    let mut model = Model::default();
    for round in 0..rounds {
        let records: Vec<_> = (0..10)
            .map(|i| {
                (
                    format!("k{}", i % 4).into_bytes(),
                    Some(format!("{round}-{i}-{}", "v".repeat(80)).into_bytes()),
                )
            })
            .collect();
        let appended = log
            .append(batch_of(&records, 1 + (round % 5) as u16, 0))
            .await
            .unwrap();
        model.append(appended.base_offset, &records, 1);
        if round % 3 == 2 {
            log.roll();
        }
    }
    model
}

#[test]
fn a_swap_failed_at_any_step_leaves_the_old_segment_or_the_new_one() {
    for step in [SwapStep::Commit, SwapStep::Replace, SwapStep::Indexes] {
        run(move || async move {
            let dir = tempfile::tempdir().unwrap();
            let clock = Rc::new(ManualClock(Cell::new(1_000_000)));
            let faults = Rc::new(IoFaults::default());
            let log = open(dir.path(), &clock, Some(faults.clone())).await;
            let model = fill(&log, 30).await;
            let before = read_all(&log).await;
            faults.fail_swap_at(Some(step));
            let error = log.compact().await.unwrap_err();
            assert!(
                matches!(error, CompactError::Io { .. }),
                "{step:?}: {error}"
            );
            // The log as it is in memory reads whole, whatever the step.
            let in_memory = read_all(&log).await;
            model.check(&in_memory, u64::MAX);
            // Left as a crash there leaves it (the open log is abandoned).
            std::mem::forget(log);
            let names = crate::test_files::names(dir.path());
            let leftover = |suffix: &str| names.iter().any(|name| name.ends_with(suffix));
            match step {
                SwapStep::Commit => assert!(leftover(CLEANED_SUFFIX), "{names:?}"),
                SwapStep::Replace => assert!(leftover(SWAP_SUFFIX), "{names:?}"),
                SwapStep::Indexes => assert!(!leftover(SWAP_SUFFIX), "{names:?}"),
            }
            let log = open(dir.path(), &clock, None).await;
            let names = crate::test_files::names(dir.path());
            assert!(
                !names
                    .iter()
                    .any(|name| name.ends_with(CLEANED_SUFFIX) || name.ends_with(SWAP_SUFFIX)),
                "{names:?}"
            );
            let recovered = read_all(&log).await;
            model.check(&recovered, u64::MAX);
            match step {
                SwapStep::Commit => assert_eq!(recovered, before, "the old segment"),
                _ => assert!(recovered.len() < before.len(), "the new segment"),
            }
            // And it compacts to the end from there.
            log.compact().await.unwrap();
            model.check(&read_all(&log).await, u64::MAX);
            log.close().await.unwrap();
        });
    }
}

#[test]
fn reads_go_on_while_segments_are_swapped() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let clock = Rc::new(ManualClock(Cell::new(1_000_000)));
        let log = Rc::new(open(dir.path(), &clock, None).await);
        let model = Rc::new(fill(&log, 60).await);
        let done = Rc::new(Cell::new(false));
        let reader = glommio::spawn_local({
            let (log, model, done) = (log.clone(), model.clone(), done.clone());
            async move {
                let mut reads = 0;
                while !done.get() || reads == 0 {
                    model.check(&read_all(&log).await, log.visible_end().0);
                    reads += 1;
                    glommio::timer::sleep(std::time::Duration::from_micros(200)).await;
                }
                reads
            }
        });
        let compacting = glommio::spawn_local({
            let (log, done) = (log.clone(), done.clone());
            async move {
                let outcome = log.compact().await.unwrap();
                done.set(true);
                outcome
            }
        });
        assert!(compacting.await.segments_cleaned > 1);
        assert!(reader.await > 0);
        log.close().await.unwrap();
    });
}

/// Random appends of keys, values and tombstones in both formats, rolls,
/// passes of the cleaner and clock moves; after each pass and after a
/// reopen, the log read back must be what the model says.
#[test]
fn a_compacted_log_reads_back_as_the_model_says() {
    let seeds: u64 = std::env::var("CLEANER_SEEDS")
        .ok()
        .and_then(|seeds| seeds.parse().ok())
        .unwrap_or(8);
    for seed in 0..seeds {
        run(move || async move {
            let mut rng = StdRng::seed_from_u64(seed);
            let dir = tempfile::tempdir().unwrap();
            let clock = Rc::new(ManualClock(Cell::new(1_000_000)));
            let mut log = open(dir.path(), &clock, None).await;
            let mut model = Model::default();
            // When each tombstone was first cleaned, for the final check.
            let mut cleaned_end = 0;
            for _ in 0..rng.random_range(40..120) {
                match rng.random_range(0..100) {
                    0..70 => {
                        let format = rng.random_range(0..6);
                        let records: Vec<_> = (0..rng.random_range(1..12))
                            .map(|_| {
                                let key = format!("key-{}", rng.random_range(0..30)).into_bytes();
                                let value = (format == 0 || rng.random_range(0..5) > 0)
                                    .then(|| vec![rng.random::<u8>(); rng.random_range(0..300)]);
                                (key, value)
                            })
                            .collect();
                        let appended = log
                            .append(batch_of(&records, format, clock.0.get()))
                            .await
                            .unwrap();
                        model.append(appended.base_offset, &records, format);
                    }
                    70..80 => log.roll(),
                    80..95 => {
                        let outcome = log.compact().await.unwrap();
                        eprintln!("seed {seed} at {}: {outcome:?}", clock.0.get());
                        cleaned_end = outcome.cleaned_end.0.max(cleaned_end);
                        model.check(&read_all(&log).await, cleaned_end);
                    }
                    95..98 => clock
                        .0
                        .set(clock.0.get() + rng.random_range(0..2 * RETENTION_MS as i64)),
                    _ => {
                        log.close().await.unwrap();
                        log = open(dir.path(), &clock, None).await;
                        model.check(&read_all(&log).await, cleaned_end);
                    }
                }
            }
            // Past the retention, two more passes: no tombstone stays below
            // where the first of them cleaned.
            clock.0.set(clock.0.get() + RETENTION_MS as i64 + 1);
            let mut ends = Vec::new();
            for round in 0..2_u8 {
                log.roll();
                let records = vec![(vec![b'z', round], Some(vec![1]))];
                let appended = log.append(batch_of(&records, 1, 0)).await.unwrap();
                model.append(appended.base_offset, &records, 1);
                log.roll();
                let records = vec![(vec![b'y', round], Some(vec![1]))];
                let appended = log.append(batch_of(&records, 1, 0)).await.unwrap();
                model.append(appended.base_offset, &records, 1);
                let outcome = log.compact().await.unwrap();
                eprintln!("seed {seed} final pass {round}: {outcome:?}");
                ends.push(outcome.cleaned_end.0);
                clock.0.set(clock.0.get() + RETENTION_MS as i64 + 1);
            }
            let read = read_all(&log).await;
            model.check(&read, *ends.last().unwrap());
            let stale = read
                .iter()
                .find(|(offset, _, value)| value.is_none() && *offset < ends[0]);
            assert_eq!(
                stale, None,
                "seed {seed}: a tombstone outlived its retention"
            );
            log.close().await.unwrap();
        });
    }
}

#[test]
fn a_follower_copies_a_compacted_log_with_its_gaps() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let clock = Rc::new(ManualClock(Cell::new(1_000_000)));
        let leader = open(&dir.path().join("leader"), &clock, None).await;
        let model = fill(&leader, 30).await;
        leader.compact().await.unwrap();
        let follower = open(&dir.path().join("follower"), &clock, None).await;
        let mut offset = Offset(0);
        while offset < leader.visible_end() {
            let batches = leader.read_replicable(offset, 16 * 1024).await.unwrap();
            let mut run = bytes::BytesMut::new();
            for batch in &batches {
                run.extend_from_slice(batch.as_bytes());
            }
            // What a push carries: batches from the follower's end on.
            for batch in Batch::validate_run(run.freeze(), follower.end_offset()).unwrap() {
                if batch.base_offset() > follower.end_offset() {
                    assert!(matches!(
                        follower.append_replicated(batch.clone()).await,
                        Err(AppendError::NotContiguous { .. })
                    ));
                }
                follower.append_replicated_after_gap(batch).await.unwrap();
            }
            offset = batches.last().unwrap().last_offset().next();
        }
        assert_eq!(read_all(&follower).await, read_all(&leader).await);
        model.check(&read_all(&follower).await, u64::MAX);
        follower.close().await.unwrap();
        let follower = open(&dir.path().join("follower"), &clock, None).await;
        assert_eq!(read_all(&follower).await, read_all(&leader).await);
        follower.close().await.unwrap();
        leader.close().await.unwrap();
    });
}

/// Rolls, appends a record of a new key and compacts.
async fn another_pass(log: &Log) {
    log.roll();
    let key = format!("filler-{}", log.end_offset());
    log.append(plain(&[(&key, Some("f"))])).await.unwrap();
    log.roll();
    log.append(plain(&[("tail", Some("t"))])).await.unwrap();
    assert!(log.compact().await.unwrap().cleaned);
}

/// A marker whose transaction has no record left goes, but only
/// `delete.retention.ms` after a pass first found it so, and an abort
/// marker with its abort; a marker whose transaction keeps a record stays.
/// A marker whose transaction spans a segment's base goes too, and the
/// producer snapshot at that base, which listed the transaction open, no
/// longer does: a log opened from any snapshot holds no transaction open.
#[test]
fn a_marker_goes_once_its_records_are_gone_and_the_retention_passed() {
    use crate::batch::Marker::{Abort, Commit};
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let clock = Rc::new(ManualClock(Cell::new(1_000_000)));
        let log = open(dir.path(), &clock, None).await;
        let at = |appended: Appended| appended.base_offset.0;
        // Segment 0.
        at(log
            .append(in_transaction(1, &[("k1", Some("t1"))]))
            .await
            .unwrap());
        let commit_1 = at(log.append(marker(1, Commit)).await.unwrap());
        at(log
            .append(in_transaction(2, &[("k2", Some("t2"))]))
            .await
            .unwrap());
        let commit_2 = at(log.append(marker(2, Commit)).await.unwrap());
        at(log
            .append(in_transaction(4, &[("k4", Some("t4"))]))
            .await
            .unwrap());
        let abort_4 = at(log.append(marker(4, Abort)).await.unwrap());
        at(log
            .append(in_transaction(3, &[("k3", Some("t3"))]))
            .await
            .unwrap());
        log.roll();
        // Segment 1: producer 3 commits across the roll; k1 and k3 are
        // written anew, k2 is not.
        let commit_3 = at(log.append(marker(3, Commit)).await.unwrap());
        log.append(plain(&[("k1", Some("p")), ("k3", Some("p"))]))
            .await
            .unwrap();
        let offsets = |read: Vec<Record>| -> Vec<u64> {
            read.into_iter().map(|(offset, _, _)| offset).collect()
        };
        another_pass(&log).await;
        let kept = offsets(read_all(&log).await);
        for marker in [commit_1, commit_2, commit_3, abort_4] {
            assert!(kept.contains(&marker), "{marker} stays: {kept:?}");
        }
        assert!(!kept.contains(&0), "k1's committed record went");
        clock.0.set(clock.0.get() + RETENTION_MS as i64 - 1);
        another_pass(&log).await;
        assert!(offsets(read_all(&log).await).contains(&commit_1), "not yet");
        assert_eq!(
            log.aborted_transactions(Offset(0), log.end_offset()).len(),
            1,
            "listed while its marker is kept"
        );
        assert!(dir.path().join(format!("{:020}.aborted", 0)).exists());
        clock.0.set(clock.0.get() + 1);
        another_pass(&log).await;
        let kept = offsets(read_all(&log).await);
        for marker in [commit_1, abort_4, commit_3] {
            assert!(
                !kept.contains(&marker),
                "{marker} past the horizon: {kept:?}"
            );
        }
        assert!(kept.contains(&commit_2), "{commit_2} stays: {kept:?}");
        let view = |read: Vec<Record>| -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
            read.into_iter()
                .map(|(_, key, value)| (key, value))
                .collect()
        };
        let committed = view(read_committed(&log).await);
        assert!(committed.contains(&(b"k2".to_vec(), Some(b"t2".to_vec()))));
        assert!(!committed.iter().any(|(key, _)| key == b"k4"));
        assert_eq!(
            log.aborted_transactions(Offset(0), log.end_offset()),
            [],
            "the abort went with its marker"
        );
        assert!(
            !dir.path().join(format!("{:020}.aborted", 0)).exists(),
            "and from the segment's file"
        );
        log.close().await.unwrap();

        // Opened again, with or without the newest snapshot: no transaction
        // is left open, the same records read.
        let log = open(dir.path(), &clock, None).await;
        assert_eq!(log.stable_end(), log.visible_end());
        assert_eq!(offsets(read_all(&log).await), kept);
        assert_eq!(view(read_committed(&log).await), committed);
        assert_eq!(log.aborted_transactions(Offset(0), log.end_offset()), []);
        log.close().await.unwrap();
        let mut snapshots: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.to_string_lossy().ends_with(PRODUCERS_SUFFIX))
            .collect();
        snapshots.sort();
        for (newest, snapshot) in snapshots.iter().enumerate().rev() {
            std::fs::remove_file(snapshot).unwrap();
            let log = open(dir.path(), &clock, None).await;
            assert!(log.open_transactions().is_empty(), "without {snapshot:?}");
            assert_eq!(log.aborted_transactions(Offset(0), log.end_offset()), []);
            assert_eq!(view(read_committed(&log).await), committed);
            log.close().await.unwrap();
            // Closing wrote one at the end again: take it out too, so that
            // the next open loads an older one.
            for entry in std::fs::read_dir(dir.path()).unwrap() {
                let path = entry.unwrap().path();
                if path.to_string_lossy().ends_with(PRODUCERS_SUFFIX)
                    && !snapshots[..newest].contains(&path)
                {
                    std::fs::remove_file(path).unwrap();
                }
            }
        }
    });
}

/// Random traffic of plain records and transactions (committed, aborted,
/// some left open a while) on a few keys, compacted now and then as the
/// clock moves: a `read_committed` reader gets only committed records,
/// each as appended, and the latest committed value of every key; after a
/// reopen too, with no transaction left open.
#[test]
fn the_committed_view_of_a_compacted_log_of_transactions_is_the_models() {
    use crate::batch::Marker::{Abort, Commit};
    for seed in 0..6 {
        run(move || async move {
            let mut rng = StdRng::seed_from_u64(seed);
            let dir = tempfile::tempdir().unwrap();
            let clock = Rc::new(ManualClock(Cell::new(1_000_000)));
            let log = open(dir.path(), &clock, None).await;
            // Committed records by offset; each open transaction's records.
            let mut committed: BTreeMap<u64, (Vec<u8>, Vec<u8>)> = BTreeMap::new();
            let mut ongoing: BTreeMap<i64, Vec<Record>> = BTreeMap::new();
            for step in 0..300 {
                let key = format!("k{}", rng.random_range(0..6));
                let value = format!("{seed}-{step}");
                match rng.random_range(0..10) {
                    0..=2 => {
                        let at = log
                            .append(plain(&[(&key, Some(&value))]))
                            .await
                            .unwrap()
                            .base_offset;
                        committed.insert(at.0, (key.into_bytes(), value.into_bytes()));
                    }
                    3..=6 => {
                        let producer_id = rng.random_range(1..5);
                        let at = log
                            .append(in_transaction(producer_id, &[(&key, Some(&value))]))
                            .await
                            .unwrap()
                            .base_offset;
                        ongoing.entry(producer_id).or_default().push((
                            at.0,
                            key.into_bytes(),
                            Some(value.into_bytes()),
                        ));
                    }
                    _ => {
                        let producer_id = rng.random_range(1..5);
                        let commit = rng.random_bool(0.6);
                        log.append(marker(producer_id, if commit { Commit } else { Abort }))
                            .await
                            .unwrap();
                        let records = ongoing.remove(&producer_id).unwrap_or_default();
                        if commit {
                            for (at, key, value) in records {
                                committed.insert(at, (key, value.unwrap()));
                            }
                        }
                    }
                }
                if rng.random_bool(0.08) {
                    log.roll();
                }
                if rng.random_bool(0.05) {
                    clock
                        .0
                        .set(clock.0.get() + rng.random_range(0..RETENTION_MS as i64));
                    log.compact().await.unwrap();
                }
            }
            for producer_id in ongoing.keys().copied().collect::<Vec<_>>() {
                log.append(marker(producer_id, Commit)).await.unwrap();
                for (at, key, value) in ongoing.remove(&producer_id).unwrap() {
                    committed.insert(at, (key, value.unwrap()));
                }
            }
            for _ in 0..3 {
                clock.0.set(clock.0.get() + RETENTION_MS as i64);
                another_pass(&log).await;
            }
            let check = |read: Vec<Record>| {
                let mut latest: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
                for (offset, (key, _)) in &committed {
                    latest.insert(key.clone(), *offset);
                }
                for (offset, key, value) in &read {
                    if key.starts_with(b"filler") || key == b"tail" {
                        continue;
                    }
                    let (model_key, model_value) = committed
                        .get(offset)
                        .unwrap_or_else(|| panic!("seed {seed}: {offset} is not committed"));
                    assert_eq!((model_key, Some(model_value)), (key, value.as_ref()));
                }
                for (key, offset) in latest {
                    assert!(
                        read.iter().any(|(at, _, _)| *at == offset),
                        "seed {seed}: the latest of {key:?} at {offset} is gone"
                    );
                }
            };
            check(read_committed(&log).await);
            log.close().await.unwrap();
            let log = open(dir.path(), &clock, None).await;
            assert!(log.open_transactions().is_empty(), "seed {seed}");
            assert_eq!(log.stable_end(), log.visible_end(), "seed {seed}");
            check(read_committed(&log).await);
            log.close().await.unwrap();
        });
    }
}
