//! A follower's log: `Log::append_replicated` stores batches as their leader
//! assigned them, and the leader epochs the log keeps follow its appends, a
//! reopen and a damaged checkpoint.

#[macro_use]
mod common;

use common::run;

use std::process::ExitCode;

use bytes::BytesMut;
use sluice_storage::{
    batch::{Batch, BatchBuilder},
    log::{AppendError, Log, LogConfig, LEADER_EPOCHS_NAME},
    Offset,
};

fn main() -> ExitCode {
    common::harness::main(
        &tests![
            replicated_appends_keep_offsets_epochs_and_bytes,
            replicated_appends_off_the_end_or_of_an_older_epoch_are_refused,
            replicated_producer_batches_are_recorded_as_the_leader_recorded_them,
            a_replica_that_leads_goes_on_in_the_epoch_of_its_log,
            a_damaged_or_missing_epoch_checkpoint_is_rebuilt_from_the_log,
        ],
        &children![],
    )
}

/// Records per batch: with batches appended in tag order from 0, batch
/// `tag` holds offsets `4 * tag ..= 4 * tag + 3`.
const RECORDS: u64 = 4;
/// About 1.1 KiB per batch: 14 batches a segment.
const VALUE_BYTES: usize = 256;
const SEGMENT_BYTES_MAX: u64 = 16 * 1024;
const TIMESTAMP_BASE_MS: i64 = 1_700_000_000_000;
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

/// A batch of [`RECORDS`] records whose keys are `tag`, from the idempotent
/// producer [`PRODUCER_ID`] with `sequence` if given.
fn tagged(tag: u64, sequence: Option<i32>) -> Batch {
    let mut builder = BatchBuilder::default();
    if let Some(sequence) = sequence {
        builder = builder.producer(PRODUCER_ID, 0, sequence);
    }
    for record in 0..RECORDS {
        let mut value = format!("{tag}:{record}:").into_bytes();
        value.resize(VALUE_BYTES, b'v');
        let timestamp = TIMESTAMP_BASE_MS + 10 * tag as i64 + record as i64;
        builder.push(timestamp, Some(&tag.to_le_bytes()), &value, &[]);
    }
    builder.finish()
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

/// The tag of a native batch, from its first record's key.
fn tag_of(batch: &Batch) -> u64 {
    let records = batch.records().expect("a native batch");
    let key = records.iter().next().unwrap().key().unwrap();
    u64::from_le_bytes(key.try_into().unwrap())
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
