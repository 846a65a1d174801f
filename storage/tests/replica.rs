//! A follower's log: `Log::append_replicated` stores batches as their leader
//! assigned them, `Log::truncate_to` and `Log::truncate_fully_and_start_at`
//! cut it back (KIP-101, KIP-279), and the leader epochs the log keeps
//! follow both, the log start, a reopen and a damaged checkpoint.
//!
//! Crash safety is checked three ways: a truncation whose intent a crash
//! left behind is completed on open; the copy of a directory as a crash
//! leaves it mid-way; and a child process that appends and truncates is
//! killed with SIGKILL at random moments (thirty rounds on one directory),
//! after which no batch a finished truncation removed is in the log, every
//! acknowledged batch it did not remove is, and the leader epochs are those
//! of the batches. The kill test's child is this test binary run again as
//! `--child truncates_until_killed <dir> <seed>` (`harness = false`); its
//! choices and the kill moments come from a seed the test prints, which
//! `SLUICE_TEST_SEED=<seed>` replays.

#[macro_use]
mod common;

use common::{
    harness::{report, ReportingChild},
    run, seeded_rng, tag_of, tagged_batch, TIMESTAMP_BASE_MS,
};

use std::{
    collections::BTreeMap,
    os::unix::process::ExitStatusExt,
    path::Path,
    process::ExitCode,
    time::{Duration, Instant},
};

use bytes::BytesMut;
use rand::{rngs::StdRng, Rng, SeedableRng};
use sluice_storage::{
    batch::Batch,
    log::{
        AppendError, FlushPolicy, Log, LogConfig, OpenError, ReadError, LEADER_EPOCHS_NAME,
        PRODUCERS_SUFFIX, TRUNCATION_MAGIC, TRUNCATION_NAME,
    },
    Offset,
};

fn main() -> ExitCode {
    common::harness::main(
        &tests![
            replicated_appends_keep_offsets_epochs_and_bytes,
            replicated_appends_off_the_end_or_of_an_older_epoch_are_refused,
            replicated_producer_batches_are_recorded_as_the_leader_recorded_them,
            a_replica_that_leads_goes_on_in_the_epoch_of_its_log,
            truncation_inside_a_batch_removes_the_whole_batch,
            truncation_at_a_boundary_across_segments_and_appends_go_on,
            truncation_to_the_start_and_below_it_empties_the_log,
            truncation_waits_for_queued_appends_and_holds_new_ones,
            truncation_under_the_interval_policy_syncs_what_it_keeps,
            producers_after_truncation_are_those_of_a_log_without_the_cut,
            leader_epochs_survive_reopen_truncation_and_the_start_moving,
            a_damaged_or_missing_epoch_checkpoint_is_rebuilt_from_the_log,
            an_interrupted_truncation_is_completed_on_open,
            a_damaged_truncation_intent_keeps_the_log_closed,
            cut_batches_never_come_back_after_sigkill,
        ],
        &children![truncates_until_killed],
    )
}

/// Records per batch: with batches appended in tag order from 0, batch
/// `tag` holds offsets `4 * tag ..= 4 * tag + 3`.
const RECORDS: u64 = 4;
/// About 1.1 KiB per batch: 14 batches a segment.
const VALUE_BYTES: usize = 256;
const SEGMENT_BYTES_MAX: u64 = 16 * 1024;
const READ_BYTES_MAX: usize = 1024 * 1024;
/// The idempotent producer of [`producer_batch`].
const PRODUCER_ID: i64 = 77;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes_max: SEGMENT_BYTES_MAX,
        index_interval_bytes: 1024,
        tail_cache_bytes_max: 4 * 1024,
        retention_ms: None,
        retention_bytes: None,
        ..LogConfig::default()
    }
}

/// [`config`] with segment files allocated ahead of their writes: stale
/// bytes past a cut would be there for recovery to find.
fn preallocated() -> LogConfig {
    LogConfig {
        preallocate: true,
        prepare_segments: false,
        ..config()
    }
}

/// A batch of [`RECORDS`] records whose keys are `tag`, from the idempotent
/// producer [`PRODUCER_ID`] with `sequence` if given.
fn tagged(tag: u64, sequence: Option<i32>) -> Batch {
    let producer = sequence.map(|sequence| (PRODUCER_ID, 0, sequence));
    tagged_batch(tag, RECORDS, VALUE_BYTES, producer)
}

fn batch(tag: u64) -> Batch {
    tagged(tag, None)
}

/// Batch `tag` in the kafka payload format, as a Kafka producer sends it.
fn kafka_batch(tag: u64) -> Batch {
    let mut kafka = BytesMut::new();
    batch(tag).write_kafka(&mut kafka).unwrap();
    Batch::from_kafka(&kafka).unwrap()
}

/// Batch `tag` as a leader assigned it: at `base`, in `epoch`.
fn leader_batch(tag: u64, base: u64, epoch: u32) -> Batch {
    batch(tag).assign(Offset(base), epoch)
}

/// Every batch from the start to the visible end, checked to follow one
/// another.
async fn read_all(log: &Log) -> Vec<Batch> {
    let end = log.visible_end();
    let mut out = Vec::new();
    let mut next = log.start_offset();
    while next < end {
        let batches = log.read(next, READ_BYTES_MAX).await.unwrap();
        assert!(!batches.is_empty(), "nothing read at {next} below {end}");
        for batch in batches {
            if !out.is_empty() {
                assert_eq!(batch.base_offset(), next, "the log skips offsets");
            }
            next = batch.last_offset().next();
            out.push(batch);
        }
    }
    assert_eq!(next, end, "the last batch ends past the end");
    out
}

async fn tags(log: &Log) -> Vec<u64> {
    read_all(log).await.iter().map(tag_of).collect()
}

/// The leader epochs the batches of `log` say: the first offset of each
/// epoch, the first entry starting at the log start.
async fn epochs_of_batches(log: &Log) -> Vec<(u32, Offset)> {
    let mut epochs: Vec<(u32, Offset)> = Vec::new();
    for batch in read_all(log).await {
        let epoch = batch.header().leader_epoch;
        if epochs.last().is_none_or(|&(last, _)| last != epoch) {
            epochs.push((epoch, batch.base_offset().max(log.start_offset())));
        }
    }
    epochs
}

async fn append_tags(log: &Log, tags: std::ops::Range<u64>) {
    for tag in tags {
        let appended = log.append(batch(tag)).await.unwrap();
        assert_eq!(appended.base_offset, Offset(tag * RECORDS));
    }
}

/// Appends tags as a follower, each at the end, in `epoch`.
async fn replicate_tags(log: &Log, tags: std::ops::Range<u64>, epoch: u32) {
    for tag in tags {
        let base = log.end_offset().0;
        let appended = log
            .append_replicated(leader_batch(tag, base, epoch))
            .await
            .unwrap();
        assert_eq!(appended.base_offset, Offset(base));
    }
}

fn replicated_appends_keep_offsets_epochs_and_bytes() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let leader = Log::open(dir.path().join("leader"), config())
            .await
            .unwrap();
        let follower = Log::open(dir.path().join("follower"), config())
            .await
            .unwrap();
        // Native and kafka batches, in three epochs, across segments.
        for (tags, epoch) in [(0..10, 1), (10..25, 3), (25..40, 4)] {
            leader.set_leader_epoch(epoch);
            for tag in tags {
                let made = if tag % 3 == 0 {
                    kafka_batch(tag)
                } else {
                    batch(tag)
                };
                leader.append(made).await.unwrap();
            }
        }
        let stored = read_all(&leader).await;
        for batch in &stored {
            let appended = follower.append_replicated(batch.clone()).await.unwrap();
            assert_eq!(appended.base_offset, batch.base_offset());
            assert_eq!(appended.last_offset, batch.last_offset());
            assert!(!appended.duplicate);
        }
        assert!(follower.segment_count() > 2, "the follower rolled too");
        assert_eq!(follower.end_offset(), leader.end_offset());
        assert_eq!(follower.durable_end(), follower.end_offset());
        let expected_epochs = vec![(1, Offset(0)), (3, Offset(40)), (4, Offset(100))];
        assert_eq!(leader.leader_epochs(), expected_epochs);
        assert_eq!(follower.leader_epochs(), expected_epochs);
        assert_eq!(follower.last_epoch(), Some(4));
        let copied = read_all(&follower).await;
        assert!(copied == stored, "the follower's bytes are the leader's");
        follower.close().await.unwrap();
        let follower = Log::open(dir.path().join("follower"), config())
            .await
            .unwrap();
        assert!(read_all(&follower).await == stored, "and stay so");
        assert_eq!(follower.leader_epochs(), expected_epochs);
        follower.close().await.unwrap();
        leader.close().await.unwrap();
    });
}

fn replicated_appends_off_the_end_or_of_an_older_epoch_are_refused() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), config()).await.unwrap();
        replicate_tags(&log, 0..3, 5).await;
        let end = log.end_offset();
        assert_eq!(end, Offset(12));
        for base in [8, 16, 13] {
            assert_eq!(
                log.append_replicated(leader_batch(9, base, 5)).await,
                Err(AppendError::NotContiguous {
                    expected: end,
                    got: Offset(base)
                })
            );
        }
        assert_eq!(
            log.append_replicated(leader_batch(9, 12, 4)).await,
            Err(AppendError::StaleLeaderEpoch {
                epoch: 4,
                last_epoch: 5
            })
        );
        // A kafka batch whose payload was not assigned with its header:
        // the header alone says offset 12 (no CRC covers either).
        let kafka = kafka_batch(9).assign(Offset(40), 5);
        let mut bytes = kafka.as_bytes().to_vec();
        bytes[..8].copy_from_slice(&12u64.to_le_bytes());
        let forged = Batch::validate_stored(bytes.into()).unwrap();
        assert!(matches!(
            log.append_replicated(forged).await,
            Err(AppendError::InvalidBatch { .. })
        ));
        assert_eq!(log.end_offset(), end, "nothing refused was stored");
        assert_eq!(tags(&log).await, vec![0, 1, 2]);
        // A kafka batch assigned whole goes in, as it is.
        let kafka = kafka_batch(9).assign(end, 6);
        log.append_replicated(kafka.clone()).await.unwrap();
        let stored = read_all(&log).await;
        assert_eq!(stored.len(), 4);
        assert!(stored[3] == kafka);
        assert_eq!(log.leader_epochs(), vec![(5, Offset(0)), (6, Offset(12))]);
        log.close().await.unwrap();
    });
}

fn replicated_producer_batches_are_recorded_as_the_leader_recorded_them() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let leader = Log::open(dir.path().join("leader"), config())
            .await
            .unwrap();
        let follower_dir = dir.path().join("follower");
        let follower = Log::open(&follower_dir, config()).await.unwrap();
        for tag in 0..8 {
            let sequence = (tag * RECORDS) as i32;
            leader.append(tagged(tag, Some(sequence))).await.unwrap();
        }
        for batch in read_all(&leader).await {
            follower.append_replicated(batch).await.unwrap();
        }
        assert_eq!(follower.producer(PRODUCER_ID), leader.producer(PRODUCER_ID));
        // After a failover, a retry is answered as the leader would have.
        let retry = follower.append(tagged(7, Some(28))).await.unwrap();
        assert!(retry.duplicate);
        assert_eq!(retry.base_offset, Offset(28));
        // What a leader sends is stored whatever its sequence says: a batch
        // that repeats one, then one that skips ahead.
        let end = follower.end_offset().0;
        let repeat = tagged(20, Some(28)).assign(Offset(end), 0);
        let appended = follower.append_replicated(repeat).await.unwrap();
        assert!(!appended.duplicate);
        assert_eq!(appended.base_offset, Offset(end));
        let gap = tagged(21, Some(1000)).assign(Offset(end + RECORDS), 0);
        follower.append_replicated(gap).await.unwrap();
        let state = follower.producer(PRODUCER_ID).unwrap();
        assert_eq!(state.next_sequence(), 1000 + RECORDS as i32);
        assert_eq!(
            state.batches.last().unwrap().base_offset,
            Offset(end + RECORDS)
        );
        follower.close().await.unwrap();
        let follower = Log::open(&follower_dir, config()).await.unwrap();
        assert_eq!(follower.producer(PRODUCER_ID), Some(state));
        follower.close().await.unwrap();
        leader.close().await.unwrap();
    });
}

fn a_replica_that_leads_goes_on_in_the_epoch_of_its_log() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), config()).await.unwrap();
        replicate_tags(&log, 0..2, 7).await;
        // Led without being told its epoch: the log's.
        let appended = log.append(batch(2)).await.unwrap();
        let read = log.read(appended.base_offset, 1).await.unwrap();
        assert_eq!(read[0].header().leader_epoch, 7);
        log.set_leader_epoch(6);
        assert_eq!(
            log.append(batch(3)).await,
            Err(AppendError::StaleLeaderEpoch {
                epoch: 6,
                last_epoch: 7
            })
        );
        log.set_leader_epoch(8);
        log.append(batch(3)).await.unwrap();
        assert_eq!(log.leader_epochs(), vec![(7, Offset(0)), (8, Offset(12))]);
        log.close().await.unwrap();
        // A reopened log stamps its last epoch.
        let log = Log::open(dir.path(), config()).await.unwrap();
        let appended = log.append(batch(4)).await.unwrap();
        let read = log.read(appended.base_offset, 1).await.unwrap();
        assert_eq!(read[0].header().leader_epoch, 8);
        log.close().await.unwrap();
    });
}

fn truncation_inside_a_batch_removes_the_whole_batch() {
    run(|| async {
        for config in [config(), preallocated()] {
            let dir = tempfile::tempdir().unwrap();
            let log = Log::open(dir.path(), config.clone()).await.unwrap();
            append_tags(&log, 0..10).await;
            // Offset 22 is the third record of batch 5 (20..=23).
            assert_eq!(log.truncate_to(Offset(22)).await.unwrap(), Offset(20));
            assert_eq!(log.end_offset(), Offset(20));
            assert_eq!(log.visible_end(), Offset(20));
            assert_eq!(log.durable_end(), Offset(20));
            assert_eq!(tags(&log).await, (0..5).collect::<Vec<_>>());
            assert!(matches!(
                log.read(Offset(21), 1).await,
                Err(ReadError::OffsetOutOfRange { .. })
            ));
            assert!(log.read(Offset(20), 1).await.unwrap().is_empty());
            // At or past the end: nothing to do.
            assert_eq!(log.truncate_to(Offset(20)).await.unwrap(), Offset(20));
            assert_eq!(log.truncate_to(Offset(99)).await.unwrap(), Offset(20));
            // Appends go on at the new end, and new batches are read.
            append_tags(&log, 5..8).await;
            assert_eq!(tags(&log).await, (0..8).collect::<Vec<_>>());
            log.close().await.unwrap();
            let log = Log::open(dir.path(), config).await.unwrap();
            assert_eq!(tags(&log).await, (0..8).collect::<Vec<_>>());
            assert_eq!(log.verify().await.unwrap(), 8);
            log.close().await.unwrap();
        }
    });
}

fn truncation_at_a_boundary_across_segments_and_appends_go_on() {
    run(|| async {
        for config in [config(), preallocated()] {
            let dir = tempfile::tempdir().unwrap();
            let log = Log::open(dir.path(), config.clone()).await.unwrap();
            append_tags(&log, 0..60).await;
            let bases = log.segment_bases();
            assert!(bases.len() >= 4, "{bases:?}");
            // At a batch boundary inside the second segment: the segments
            // after it go, from memory and from disk.
            let cut = Offset(bases[1].0 + 2 * RECORDS);
            assert_eq!(log.truncate_to(cut).await.unwrap(), cut);
            assert_eq!(log.segment_bases(), bases[..2].to_vec());
            let on_disk: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .filter_map(|entry| {
                    let name = entry.unwrap().file_name().into_string().unwrap();
                    name.strip_suffix(".log")
                        .map(|stem| stem.parse::<u64>().unwrap())
                })
                .collect();
            assert_eq!(on_disk.len(), 2, "segment files left: {on_disk:?}");
            let kept = cut.0 / RECORDS;
            assert_eq!(tags(&log).await, (0..kept).collect::<Vec<_>>());
            // At a segment's base: that segment goes whole, and the next
            // append starts a new one there.
            assert_eq!(log.truncate_to(bases[1]).await.unwrap(), bases[1]);
            assert_eq!(log.segment_bases(), bases[..1].to_vec());
            let kept = bases[1].0 / RECORDS;
            append_tags(&log, kept..kept + 20).await;
            assert_eq!(log.segment_bases()[1], bases[1]);
            assert_eq!(tags(&log).await, (0..kept + 20).collect::<Vec<_>>());
            // Offsets and times are found again in what was cut back.
            let found = log
                .offset_for_timestamp(TIMESTAMP_BASE_MS + 10 * (kept as i64 + 3))
                .await
                .unwrap();
            assert_eq!(found, Some(Offset((kept + 3) * RECORDS)));
            log.close().await.unwrap();
            let log = Log::open(dir.path(), config).await.unwrap();
            assert_eq!(tags(&log).await, (0..kept + 20).collect::<Vec<_>>());
            assert_eq!(log.verify().await.unwrap(), kept + 20);
            log.close().await.unwrap();
        }
    });
}

fn truncation_to_the_start_and_below_it_empties_the_log() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), config()).await.unwrap();
        append_tags(&log, 0..30).await;
        // To the start of a log that starts at 0.
        assert_eq!(log.truncate_to(Offset(0)).await.unwrap(), Offset(0));
        assert_eq!(log.end_offset(), Offset(0));
        assert!(log.read(Offset(0), 1).await.unwrap().is_empty());
        assert_eq!(log.leader_epochs(), vec![]);
        append_tags(&log, 0..30).await;

        // Below a start moved by DeleteRecords: the log is empty and starts
        // at the offset asked.
        let start = log.delete_records(Offset(50)).await.unwrap();
        assert_eq!(start, Offset(50));
        assert_eq!(log.truncate_to(Offset(41)).await.unwrap(), Offset(41));
        assert_eq!(log.start_offset(), Offset(41));
        assert_eq!(log.end_offset(), Offset(41));
        assert_eq!(log.segment_bases(), vec![Offset(41)]);
        assert!(!dir.path().read_dir().unwrap().any(|entry| entry
            .unwrap()
            .path()
            .extension()
            .is_some_and(|e| e == PRODUCERS_SUFFIX)));
        replicate_tags(&log, 100..103, 9).await;
        assert_eq!(tags(&log).await, vec![100, 101, 102]);
        assert_eq!(log.leader_epochs(), vec![(9, Offset(41))]);
        log.close().await.unwrap();
        let log = Log::open(dir.path(), config()).await.unwrap();
        assert_eq!(log.start_offset(), Offset(41));
        assert_eq!(tags(&log).await, vec![100, 101, 102]);
        assert_eq!(log.leader_epochs(), vec![(9, Offset(41))]);

        // A batch straddling the start: nothing readable is left, the log
        // starts (and ends) at its start.
        assert_eq!(log.delete_records(Offset(47)).await.unwrap(), Offset(47));
        assert_eq!(log.truncate_to(Offset(48)).await.unwrap(), Offset(47));
        assert_eq!(log.start_offset(), Offset(47));
        assert_eq!(log.end_offset(), Offset(47));

        // Fully, to start over past the end.
        assert_eq!(
            log.truncate_fully_and_start_at(Offset(1000)).await.unwrap(),
            Offset(1000)
        );
        replicate_tags(&log, 200..202, 9).await;
        log.close().await.unwrap();
        let log = Log::open(dir.path(), config()).await.unwrap();
        assert_eq!(log.start_offset(), Offset(1000));
        assert_eq!(log.end_offset(), Offset(1008));
        assert_eq!(tags(&log).await, vec![200, 201]);
        log.close().await.unwrap();
    });
}

fn truncation_waits_for_queued_appends_and_holds_new_ones() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = std::rc::Rc::new(Log::open(dir.path(), config()).await.unwrap());
        append_tags(&log, 0..5).await;
        // Appends in flight when the truncation starts are written first
        // and cut with the rest; the one that comes after waits and lands
        // at the new end.
        let queued: Vec<_> = (5..9)
            .map(|tag| {
                let log = log.clone();
                glommio::spawn_local(async move { log.append(batch(tag)).await.unwrap() })
            })
            .collect();
        let truncation = {
            let log = log.clone();
            glommio::spawn_local(async move { log.truncate_to(Offset(10)).await.unwrap() })
        };
        let after = {
            let log = log.clone();
            glommio::spawn_local(async move { log.append_replicated(leader_batch(50, 8, 0)).await })
        };
        for append in queued {
            append.await;
        }
        assert_eq!(truncation.await, Offset(8));
        let after = after.await.unwrap();
        assert_eq!(after.base_offset, Offset(8));
        assert_eq!(tags(&log).await, vec![0, 1, 50]);
        log.close().await.unwrap();
    });
}

fn truncation_under_the_interval_policy_syncs_what_it_keeps() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        // Syncs far apart: only the truncation makes the log durable.
        let config = LogConfig {
            flush: FlushPolicy::Interval(Duration::from_secs(3600)),
            ..config()
        };
        let log = Log::open(dir.path(), config.clone()).await.unwrap();
        append_tags(&log, 0..30).await;
        assert_eq!(log.visible_end(), Offset(120));
        assert_eq!(log.truncate_to(Offset(50)).await.unwrap(), Offset(48));
        assert_eq!(log.durable_end(), Offset(48));
        assert_eq!(log.visible_end(), Offset(48));
        assert_eq!(tags(&log).await, (0..12).collect::<Vec<_>>());
        // A crash now keeps what was kept.
        let crashed = dir.path().join("crashed");
        copy_dir(dir.path(), &crashed);
        let copy = Log::open(&crashed, config.clone()).await.unwrap();
        assert_eq!(tags(&copy).await, (0..12).collect::<Vec<_>>());
        copy.close().await.unwrap();
        append_tags(&log, 12..14).await;
        log.close().await.unwrap();
        let log = Log::open(dir.path(), config).await.unwrap();
        assert_eq!(tags(&log).await, (0..14).collect::<Vec<_>>());
        log.close().await.unwrap();
    });
}

/// Appends the producer's batches `tags` (sequence `RECORDS * tag`).
async fn produce_tags(log: &Log, tags: std::ops::Range<u64>) {
    for tag in tags {
        let sequence = (tag * RECORDS) as i32;
        let appended = log.append(tagged(tag, Some(sequence))).await.unwrap();
        assert!(!appended.duplicate);
    }
}

fn producers_after_truncation_are_those_of_a_log_without_the_cut() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let truncated_dir = dir.path().join("truncated");
        let reference_dir = dir.path().join("reference");
        // Past segment rolls (snapshots at their bases) and a clean close
        // (a snapshot at the end): both past the cut.
        let log = Log::open(&truncated_dir, config()).await.unwrap();
        produce_tags(&log, 0..40).await;
        log.close().await.unwrap();
        let log = Log::open(&truncated_dir, config()).await.unwrap();
        let reference = Log::open(&reference_dir, config()).await.unwrap();
        produce_tags(&reference, 0..17).await;
        // Inside batch 17.
        assert_eq!(
            log.truncate_to(Offset(17 * RECORDS + 1)).await.unwrap(),
            Offset(68)
        );
        assert_eq!(log.producer(PRODUCER_ID), reference.producer(PRODUCER_ID));
        // A retry of a cut batch is appended, not answered as a duplicate,
        // where the reference appends it.
        for tag in 17..20 {
            let retry = tagged(tag, Some((tag * RECORDS) as i32));
            let appended = log.append(retry.clone()).await.unwrap();
            let expected = reference.append(retry).await.unwrap();
            assert_eq!(appended, expected);
            assert!(!appended.duplicate);
        }
        // A retry of a batch kept is a duplicate.
        let kept = log.append(tagged(16, Some(64))).await.unwrap();
        assert!(kept.duplicate);
        assert_eq!(kept.base_offset, Offset(64));
        log.close().await.unwrap();
        reference.close().await.unwrap();
        let log = Log::open(&truncated_dir, config()).await.unwrap();
        let reference = Log::open(&reference_dir, config()).await.unwrap();
        assert_eq!(log.producer(PRODUCER_ID), reference.producer(PRODUCER_ID));
        log.close().await.unwrap();
        reference.close().await.unwrap();
    });
}

fn leader_epochs_survive_reopen_truncation_and_the_start_moving() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), config()).await.unwrap();
        for (tags, epoch) in [(0..10, 2), (10..20, 4), (20..30, 5), (30..40, 9)] {
            replicate_tags(&log, tags, epoch).await;
        }
        let all = vec![
            (2, Offset(0)),
            (4, Offset(40)),
            (5, Offset(80)),
            (9, Offset(120)),
        ];
        assert_eq!(log.leader_epochs(), all);
        log.close().await.unwrap();
        let log = Log::open(dir.path(), config()).await.unwrap();
        assert_eq!(log.leader_epochs(), all);

        // Truncation inside epoch 5's first batch: its entry goes.
        assert_eq!(log.truncate_to(Offset(82)).await.unwrap(), Offset(80));
        assert_eq!(log.leader_epochs(), all[..2].to_vec());
        assert_eq!(log.last_epoch(), Some(4));
        // A copy of the directory now, as a crash would leave it: the file
        // says what the memory says.
        let crashed = dir.path().join("crashed");
        copy_dir(dir.path(), &crashed);
        let copy = Log::open(&crashed, config()).await.unwrap();
        assert_eq!(copy.leader_epochs(), all[..2].to_vec());
        copy.close().await.unwrap();
        replicate_tags(&log, 20..25, 6).await;
        let truncated = vec![(2, Offset(0)), (4, Offset(40)), (6, Offset(80))];
        assert_eq!(log.leader_epochs(), truncated);

        // The start moves inside epoch 4: epoch 2's entry goes, epoch 4's
        // starts at the start.
        assert_eq!(log.delete_records(Offset(50)).await.unwrap(), Offset(50));
        let started = vec![(4, Offset(50)), (6, Offset(80))];
        assert_eq!(log.leader_epochs(), started);
        log.close().await.unwrap();
        let log = Log::open(dir.path(), config()).await.unwrap();
        assert_eq!(log.leader_epochs(), started);
        assert_eq!(epochs_of_batches(&log).await, started);
        // To the end: the last epoch stays known.
        let end = log.end_offset();
        assert_eq!(log.delete_records(end).await.unwrap(), end);
        assert_eq!(log.leader_epochs(), vec![(6, end)]);
        assert_eq!(log.last_epoch(), Some(6));
        log.close().await.unwrap();
        let log = Log::open(dir.path(), config()).await.unwrap();
        assert_eq!(log.leader_epochs(), vec![(6, end)]);
        replicate_tags(&log, 40..42, 7).await;
        assert_eq!(log.leader_epochs(), vec![(7, end)]);
        log.close().await.unwrap();
    });
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

fn a_damaged_or_missing_epoch_checkpoint_is_rebuilt_from_the_log() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), config()).await.unwrap();
        for (tags, epoch) in [(0..20, 1), (20..45, 3), (45..50, 8)] {
            replicate_tags(&log, tags, epoch).await;
        }
        let expected = vec![(1, Offset(0)), (3, Offset(80)), (8, Offset(180))];
        assert_eq!(log.leader_epochs(), expected);
        log.close().await.unwrap();
        let path = dir.path().join(LEADER_EPOCHS_NAME);
        let good = std::fs::read(&path).unwrap();

        // A flipped byte, a short file, none at all, and one with an entry
        // past the end (a batch a crash took before it was written).
        let mut flipped = good.clone();
        flipped[20] ^= 0x40;
        let mut past_end = good.clone();
        past_end[12..16].copy_from_slice(&4u32.to_le_bytes());
        past_end.extend_from_slice(&9u32.to_le_bytes());
        past_end.extend_from_slice(&[0; 4]);
        past_end.extend_from_slice(&300u64.to_le_bytes());
        let crc = crc32c::crc32c(&past_end[8..]);
        past_end[4..8].copy_from_slice(&crc.to_le_bytes());
        let short = good[..good.len() - 3].to_vec();
        for damage in [Some(flipped), Some(short), None, Some(past_end)] {
            match damage {
                Some(bytes) => std::fs::write(&path, bytes).unwrap(),
                None => std::fs::remove_file(&path).unwrap(),
            }
            let log = Log::open(dir.path(), config()).await.unwrap();
            assert_eq!(log.leader_epochs(), expected);
            log.close().await.unwrap();
            assert_eq!(
                std::fs::read(&path).unwrap(),
                good,
                "the file is written again"
            );
        }
    });
}

/// The documented format of the truncation intent: a cut to `end`, byte
/// `position` of the segment at `segment_base`.
fn cut_intent(end: u64, segment_base: u64, position: u64) -> Vec<u8> {
    intent_of_kind(1, end, segment_base, position)
}

/// An intent of `kind` (1 a cut, 2 an emptied log starting at `offset`).
fn intent_of_kind(kind: u16, offset: u64, segment_base: u64, position: u64) -> Vec<u8> {
    let mut out = vec![0u8; 40];
    out[..4].copy_from_slice(&TRUNCATION_MAGIC);
    out[8..10].copy_from_slice(&1u16.to_le_bytes());
    out[10..12].copy_from_slice(&kind.to_le_bytes());
    out[16..24].copy_from_slice(&offset.to_le_bytes());
    out[24..32].copy_from_slice(&segment_base.to_le_bytes());
    out[32..40].copy_from_slice(&position.to_le_bytes());
    let crc = crc32c::crc32c(&out[8..]);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The intent of a cut at batch `tag` of a log of [`batch`]es from 0, and
/// what the log must hold after it.
async fn intent_for(log: &Log, tag: u64) -> Vec<u8> {
    let cut = Offset(tag * RECORDS);
    let base = *log
        .segment_bases()
        .iter()
        .rfind(|&&base| base <= cut)
        .unwrap();
    let position: usize = read_all(log)
        .await
        .iter()
        .filter(|batch| batch.base_offset() >= base && batch.base_offset() < cut)
        .map(Batch::len)
        .sum();
    cut_intent(cut.0, base.0, position as u64)
}

fn an_interrupted_truncation_is_completed_on_open() {
    run(|| async {
        for config in [config(), preallocated()] {
            let dir = tempfile::tempdir().unwrap();
            // A crash right after the intent became durable: nothing of the
            // cut done yet, a preallocated tail, producer snapshots past it.
            let log = Log::open(dir.path(), config.clone()).await.unwrap();
            produce_tags(&log, 0..45).await;
            replicate_tags(&log, 45..50, 3).await;
            let intent = intent_for(&log, 23).await;
            let crashed = dir.path().join("crashed");
            copy_dir(dir.path(), &crashed);
            std::fs::write(crashed.join(TRUNCATION_NAME), &intent).unwrap();
            let copy = Log::open(&crashed, config.clone()).await.unwrap();
            assert_eq!(copy.end_offset(), Offset(23 * RECORDS));
            assert_eq!(tags(&copy).await, (0..23).collect::<Vec<_>>());
            assert!(!crashed.join(TRUNCATION_NAME).exists());
            assert_eq!(copy.leader_epochs(), vec![(0, Offset(0))]);
            let next = copy.producer(PRODUCER_ID).unwrap().next_sequence();
            assert_eq!(next, (23 * RECORDS) as i32, "producers as of the cut");
            copy.close().await.unwrap();

            // A crash later in the cut, with the segments after it already
            // deleted and the intent still there: the same log.
            let later = dir.path().join("later");
            copy_dir(dir.path(), &later);
            std::fs::write(later.join(TRUNCATION_NAME), &intent).unwrap();
            let cut_base = u64::from_le_bytes(intent[24..32].try_into().unwrap());
            for base in log
                .segment_bases()
                .into_iter()
                .filter(|base| base.0 > cut_base)
            {
                std::fs::remove_file(later.join(format!("{:020}.log", base.0))).unwrap();
            }
            let copy = Log::open(&later, config.clone()).await.unwrap();
            assert_eq!(tags(&copy).await, (0..23).collect::<Vec<_>>());
            copy.close().await.unwrap();

            // A crash while emptying the log to start over at 1000.
            let emptied = dir.path().join("emptied");
            copy_dir(dir.path(), &emptied);
            std::fs::write(emptied.join(TRUNCATION_NAME), intent_of_kind(2, 1000, 0, 0)).unwrap();
            let copy = Log::open(&emptied, config.clone()).await.unwrap();
            assert_eq!(copy.start_offset(), Offset(1000));
            assert_eq!(copy.end_offset(), Offset(1000));
            assert_eq!(copy.segment_bases(), vec![Offset(1000)]);
            assert_eq!(copy.leader_epochs(), vec![]);
            assert_eq!(copy.producer(PRODUCER_ID), None);
            replicate_tags(&copy, 60..62, 4).await;
            copy.close().await.unwrap();
            let copy = Log::open(&emptied, config.clone()).await.unwrap();
            assert_eq!(tags(&copy).await, vec![60, 61]);
            assert_eq!(copy.start_offset(), Offset(1000));
            copy.close().await.unwrap();
            log.close().await.unwrap();
        }
    });
}

fn a_damaged_truncation_intent_keeps_the_log_closed() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), config()).await.unwrap();
        append_tags(&log, 0..10).await;
        let mut intent = intent_for(&log, 4).await;
        log.close().await.unwrap();
        intent[17] ^= 1;
        std::fs::write(dir.path().join(TRUNCATION_NAME), &intent).unwrap();
        match Log::open(dir.path(), config()).await {
            Err(OpenError::Truncation { .. }) => {}
            Err(other) => panic!("another error: {other}"),
            Ok(_) => panic!("a log with a damaged truncation intent opened"),
        }
    });
}

// ---------------------------------------------------------------------------
// Kill -9

/// Kills per run, on one directory.
const ROUNDS: u64 = 30;
const KILL_DELAY_MS_MIN: u64 = 5;
const KILL_DELAY_MS_MAX: u64 = 250;
/// A child that sees no kill stops after this long.
const CHILD_LIFETIME_MAX: Duration = Duration::from_secs(30);
const FIRST_REPORT_TIMEOUT: Duration = Duration::from_secs(30);
/// Replicated appends between two truncations, at most.
const APPENDS_PER_TRUNCATION_MAX: u64 = 12;

/// The child: appends replicated batches with unique tags, in rising
/// epochs, and truncates now and then, into preallocated segments; reports
/// `ack <base> <last> <tag>`, `truncating <offset>` and `truncated <end>`.
fn truncates_until_killed(args: &[String]) {
    let [dir, seed] = args else {
        panic!("a child takes <dir> <seed>, not {args:?}")
    };
    let dir = std::path::PathBuf::from(dir);
    let seed: u64 = seed.parse().unwrap();
    run(move || async move {
        let mut rng = StdRng::seed_from_u64(seed);
        let log = Log::open(&dir, preallocated())
            .await
            .expect("the child opens the log");
        report(format_args!("open {}", log.end_offset()));
        let deadline = Instant::now() + CHILD_LIFETIME_MAX;
        let mut epoch = log.last_epoch().unwrap_or(0);
        // Tags unique across children: the seed's high half is the round.
        let mut tag = (seed >> 32) << 24;
        while Instant::now() < deadline {
            if rng.random_ratio(1, 3) {
                epoch += 1;
            }
            for _ in 0..rng.random_range(1..=APPENDS_PER_TRUNCATION_MAX) {
                let base = log.end_offset().0;
                let appended = log
                    .append_replicated(leader_batch(tag, base, epoch))
                    .await
                    .expect("replicated append");
                report(format_args!(
                    "ack {} {} {tag}",
                    appended.base_offset, appended.last_offset
                ));
                tag += 1;
            }
            let start = log.start_offset().0;
            let end = log.end_offset().0;
            let offset = rng.random_range(start.max(end.saturating_sub(40))..=end);
            report(format_args!("truncating {offset}"));
            let new_end = log.truncate_to(Offset(offset)).await.expect("truncate");
            report(format_args!("truncated {new_end}"));
        }
    });
}

fn cut_batches_never_come_back_after_sigkill() {
    let mut rng = seeded_rng("cut_batches_never_come_back_after_sigkill");
    let temp = tempfile::tempdir().expect("temporary directory");
    let dir = temp.path().join("partition");
    let stderr_path = temp.path().join("child.stderr");
    // What the log must hold: batches acknowledged and not cut since, by
    // base offset; and every tag a finished truncation cut.
    let mut expected: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let mut cut_tags = std::collections::HashSet::new();
    let mut killed_truncating = 0;
    for round in 0..ROUNDS {
        let kill_delay_ms = rng.random_range(KILL_DELAY_MS_MIN..=KILL_DELAY_MS_MAX);
        let seed = round << 32 | u64::from(rng.random::<u32>());
        let args = [dir.display().to_string(), seed.to_string()];
        let mut child = ReportingChild::spawn("truncates_until_killed", &args, &stderr_path);
        // The kill comes after the first acknowledgement: a child slow to
        // start on a busy machine is not killed before it did anything.
        let mut printed = Vec::new();
        loop {
            match child.next_line(FIRST_REPORT_TIMEOUT) {
                Some(line) => {
                    let is_ack = line.starts_with("ack ");
                    printed.push(line);
                    if is_ack {
                        break;
                    }
                }
                None => {
                    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                    panic!("round {round}: no acknowledgement from the child; stderr:\n{stderr}");
                }
            }
        }
        std::thread::sleep(Duration::from_millis(kill_delay_ms));
        let status = child.kill();
        if status.signal() != Some(libc::SIGKILL) {
            let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            panic!("round {round}: the child ended before the kill: {status:?}; stderr:\n{stderr}");
        }
        printed.extend(child.rest());
        // The truncation in flight at the kill, if any: it may have
        // happened or not.
        let mut in_flight: Option<u64> = None;
        let (mut acks, mut truncations) = (0, 0);
        for line in &printed {
            let mut words = line.split(' ');
            let word = words.next().unwrap();
            let mut number = || words.next().unwrap().parse::<u64>().unwrap();
            match word {
                "open" => {}
                "ack" => {
                    let (base, last, tag) = (number(), number(), number());
                    expected.insert(base, (last, tag));
                    acks += 1;
                }
                "truncating" => in_flight = Some(number()),
                "truncated" => {
                    let end = number();
                    for (_, (_, tag)) in expected.split_off(&end) {
                        cut_tags.insert(tag);
                    }
                    in_flight = None;
                    truncations += 1;
                }
                other => panic!("round {round}: unknown report {other}"),
            }
        }
        killed_truncating += u64::from(in_flight.is_some());
        let check = expected.clone();
        let cut = cut_tags.clone();
        let dir = dir.clone();
        let found = run(move || async move {
            let log = Log::open(&dir, preallocated())
                .await
                .unwrap_or_else(|error| panic!("round {round}: the log does not open: {error}"));
            let batches = read_all(&log).await;
            let mut found = BTreeMap::new();
            for batch in &batches {
                let tag = tag_of(batch);
                assert!(
                    !cut.contains(&tag),
                    "round {round}: batch {tag} at {} was cut and came back",
                    batch.base_offset()
                );
                found.insert(batch.base_offset().0, (batch.last_offset().0, tag));
            }
            // Every acknowledged batch not cut is there, but those at or
            // past a truncation in flight (the one containing its offset
            // included), which may be gone.
            for (&base, &(last, tag)) in &check {
                if in_flight.is_some_and(|offset| last >= offset) {
                    continue;
                }
                assert_eq!(
                    found.get(&base),
                    Some(&(last, tag)),
                    "round {round}: acknowledged batch {tag} at {base} is missing"
                );
            }
            assert_eq!(
                log.leader_epochs(),
                epochs_of_batches(&log).await,
                "round {round}: the leader epochs are not the batches'"
            );
            assert_eq!(log.verify().await.unwrap() as usize, batches.len());
            log.close().await.unwrap();
            found
        });
        // What the log holds now is what the next round starts from: a cut
        // in flight either happened (its batches are gone for good now) or
        // did not (they stay).
        for (base, (_, tag)) in &expected {
            if !found.contains_key(base) {
                cut_tags.insert(*tag);
            }
        }
        expected = found;
        println!(
            "round {round:2}: killed {kill_delay_ms:3} ms after the first ack{}, {acks} acks, \
             {truncations} truncations; the log holds {} batches, {} cut so far",
            if in_flight.is_some() {
                " during a truncation"
            } else {
                ""
            },
            expected.len(),
            cut_tags.len()
        );
    }
    println!("{ROUNDS} kills, {killed_truncating} during a truncation");
}
