//! Log compaction: Kafka's `cleanup.policy=compact`. The cleaner keeps the
//! latest record of each key and drops the older ones, removes the delete
//! markers (tombstones: a null value) once `delete.retention.ms` has passed
//! since the pass that first cleaned them, and keeps every record's offset:
//! a compacted log has gaps.
//!
//! # A pass
//!
//! [`Log::compact`](super::Log::compact) runs one pass if the log is due:
//!
//! 1. **Plan**, on the shard: the cleanable segments are the sealed ones
//!    from the start of the log, up to the first that reaches past the
//!    visible end (the high watermark) or the durable end, or holds a
//!    record newer than `min.compaction.lag.ms`; the active segment never.
//!    Those below the cleaned point (kept in the `cleaner_checkpoint`
//!    module's file) are clean, the rest dirty. The log is due when its
//!    dirty bytes make `min.cleanable.dirty.ratio` of the cleanable bytes,
//!    or its first dirty segment is older than `max.compaction.lag.ms`.
//! 2. **Clean**, on a thread of its own (`sluice-cleaner`, at the lowest
//!    priorities, its reads and writes paced at [`set_pace`]'s bytes/s):
//!    the dirty segments are read once to map each key to its latest
//!    offset (at most [`OFFSET_MAP_BYTES_MAX`] of keys; a pass whose map
//!    fills stops its dirty part there), then every cleanable segment is
//!    read again and each record kept or dropped; a segment that changes
//!    is written to `<base>.log.cleaned` and fsynced. The shard meanwhile
//!    appends and serves reads as ever: the sealed segment files never
//!    change under the cleaner, and nothing of it runs on the shard's
//!    thread but the plan and the swap.
//! 3. **Swap**, on the shard, one segment at a time (the `cleaner_swap`
//!    module): renames that leave either the old or the new segment after
//!    a crash at any point, never both and never neither.
//!
//! A batch emptied entirely goes, unless it is the last batch of its
//! idempotent producer: that one stays whole, so that the producer's last
//! sequence is found in the log after a restart, as Kafka keeps it. The
//! producer snapshots are at segment bases, which compaction never moves.
//! Records without a key are dropped, as Kafka's cleaner drops them; a
//! compacted log refuses them on append.
//!
//! # Transactions
//!
//! As Kafka's cleaner does: the cleanable part ends at the last stable
//! offset, so an open transaction's records and all after them stay as
//! they are; below it every transaction has ended. The records of a
//! committed one are compacted as any other (they go in the offset map,
//! the latest value of a key wins). The record batches of an aborted one
//! (a transactional batch of a producer within one of its aborted
//! transactions, first offset to marker, as the log's state lists them)
//! are removed, and never hide an older value of their keys.
//!
//! A commit marker goes once its transaction has no batch left (Kafka's
//! `CleanedTransactionMetadata`: the segments are read in order, and a
//! marker whose transaction kept no batch in the pass is removable), but
//! not at once: the pass that first finds it so remembers when in the
//! `cleaner_checkpoint` file, and a pass `delete.retention.ms` later
//! removes it, as a tombstone goes (Kafka's delete horizon), so that a
//! reader who read the transaction's records before they went reads its
//! marker too. A producer snapshot may list its transaction open (one at
//! an offset after the producer's previous marker, up to this one): a log
//! opened from it would keep the transaction open for ever without the
//! marker, so before the swap of the segment that loses the marker, each
//! such snapshot is rewritten without that open transaction (which has no
//! batch left to replay). An abort marker goes with its abort:
//! a `read_committed` reader told of an abort drops its producer's batches
//! until it reads the marker, so an abort is never listed without its
//! marker. Before the swap of a segment that loses abort markers, their
//! aborts go from the log's state and from the segment's `<base>.aborted`
//! file, synced; a crash in between leaves a marker whose abort is not
//! listed, which is harmless (its records went in an earlier pass).
//!
//! A crash between a snapshot's rewrite and the swap leaves the marker
//! and a snapshot that does not list its transaction open, which is
//! harmless: the transaction has no batch left to read.

use std::{
    collections::{HashMap, HashSet},
    fs::File,
    io::{self, BufReader, BufWriter, Read, Write},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use bytes::Bytes;

use super::{
    cleaner_checkpoint::{self, CleanerCheckpoint},
    index::SegmentIndex,
    segment::{segment_path, SegmentFile, LOG_SUFFIX},
    transactions::AbortedTransaction,
    Shared,
};
use crate::{
    batch::{
        filter::{self, Filtered, RecordKey},
        Batch, BatchHeader, Marker, BATCH_BYTES_MAX, BATCH_HEADER_BYTES,
    },
    Offset,
};

/// What a segment being cleaned is written to before the swap.
pub const CLEANED_SUFFIX: &str = "log.cleaned";
/// What a cleaned segment is renamed to once it is whole and synced: the
/// point of no return (recovery completes the swap of a `.swap` file).
pub const SWAP_SUFFIX: &str = "log.swap";

/// The most memory the map of keys to their latest offsets takes (keys and
/// their entries): bounds the cleaner's memory whatever the keys. A pass
/// over more distinct keys than fit stops its dirty part where the map
/// filled, and the next pass goes on from there. Kafka's default
/// `log.cleaner.dedupe.buffer.size` is 128 MiB for all its cleaner threads.
pub const OFFSET_MAP_BYTES_MAX: usize = 64 * 1024 * 1024;

/// What one entry of the map costs beside its key's bytes: the key's
/// vector, the offset, the hash table's slot.
const OFFSET_MAP_ENTRY_BYTES: usize = 48;

/// The cleaner's pace: bytes read and written per second, over all the
/// cleaners of the process. Kafka leaves its cleaner unpaced by default;
/// here, as the deleter is, it is paced so that the shard's own reads and
/// fdatasyncs keep the disk's queue short.
pub const CLEAN_BYTES_PER_S: u64 = 128_000_000;

/// The bytes read or written between two waits of the pace.
const PACE_STEP_BYTES: u64 = 1024 * 1024;

/// How often the shard looks whether the cleaner's thread has finished.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

static PACE_BYTES_PER_S: AtomicU64 = AtomicU64::new(CLEAN_BYTES_PER_S);

/// What the cleaners of the process did since it started, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanerTotals {
    pub passes: u64,
    pub segments_cleaned: u64,
    pub bytes_read: u64,
    /// Bytes of segments the cleaned ones took the place of, less theirs.
    pub bytes_removed: u64,
    pub records_removed: u64,
}

static TOTALS: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];

/// The process's [`CleanerTotals`].
pub fn cleaner_totals() -> CleanerTotals {
    let [passes, segments_cleaned, bytes_read, bytes_removed, records_removed] =
        TOTALS.each_ref().map(|total| total.load(Ordering::Relaxed));
    CleanerTotals {
        passes,
        segments_cleaned,
        bytes_read,
        bytes_removed,
        records_removed,
    }
}

/// The aborted transactions of the cleanable part, by producer: each one's
/// first offset and its marker's, in marker order. A producer has one
/// transaction at a time, so its aborted ones never overlap.
#[derive(Debug, Default)]
struct AbortedRanges {
    by_producer: HashMap<i64, Vec<(Offset, Offset)>>,
}

impl AbortedRanges {
    fn new(aborted: &[AbortedTransaction]) -> AbortedRanges {
        let mut by_producer: HashMap<i64, Vec<(Offset, Offset)>> = HashMap::new();
        for aborted in aborted {
            let ranges = by_producer.entry(aborted.producer_id).or_default();
            if let Some(&(_, previous)) = ranges.last() {
                assert!(
                    previous < aborted.first_offset,
                    "aborted transactions of producer {} overlap: {previous} >= {}",
                    aborted.producer_id,
                    aborted.first_offset
                );
            }
            ranges.push((aborted.first_offset, aborted.last_offset));
        }
        AbortedRanges { by_producer }
    }

    /// Whether the transactional batch of `header` belongs to an aborted
    /// transaction of its producer.
    fn contains(&self, header: &BatchHeader) -> bool {
        let Some(ranges) = self.by_producer.get(&header.producer_id) else {
            return false;
        };
        let base = Offset(header.base_offset);
        let after = ranges.partition_point(|&(_, marker)| marker < base);
        ranges.get(after).is_some_and(|&(first, _)| first <= base)
    }
}

/// The transactions met while the cleanable segments are read in order, to
/// tell which markers may go (Kafka's `CleanedTransactionMetadata`).
struct TransactionWalk {
    /// The producers whose transaction is being read: whether a batch of
    /// it is kept.
    retained: HashMap<i64, bool>,
    /// Each producer's last marker read: its next transaction starts past
    /// it.
    last_marker: HashMap<i64, Offset>,
    /// The offsets of the producer snapshots, rising; `None` if they could
    /// not be listed (then no marker goes).
    snapshots: Option<Vec<Offset>>,
    /// The base of the first cleanable segment.
    first_base: Offset,
    /// The markers found removable and kept, rising.
    removable: Vec<Offset>,
}

impl TransactionWalk {
    /// A record batch of the transaction of `producer_id`, kept or not.
    fn on_data(&mut self, producer_id: i64, kept: bool) {
        *self.retained.entry(producer_id).or_default() |= kept;
    }

    /// The marker of `header` at `offset`: whether it may go, as far as its
    /// transaction tells (`None`: it stays), with the producer snapshots
    /// that may list the transaction open (those taken after the
    /// producer's previous marker, and not after this one), which must
    /// forget it first. A marker whose transaction has no batch left may.
    fn on_marker(&mut self, header: &BatchHeader, offset: Offset) -> Option<Vec<Offset>> {
        let producer_id = header.producer_id;
        let retained = self.retained.remove(&producer_id).unwrap_or(false);
        let from = self
            .last_marker
            .insert(producer_id, offset)
            .map_or(self.first_base, Offset::next);
        let snapshots = self.snapshots.as_ref()?;
        if retained {
            return None;
        }
        let after = snapshots.partition_point(|&snapshot| snapshot < from);
        Some(
            snapshots[after..]
                .iter()
                .take_while(|&&snapshot| snapshot <= offset)
                .copied()
                .collect(),
        )
    }
}

/// What the cleaner does with a batch, by its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Not in a transaction, or in a committed one: compacted by key.
    Compacted,
    /// A record batch of an aborted transaction: removed, and never a newer
    /// value of its keys.
    Aborted,
    /// A marker (a control batch): kept whole, and out of the offset map
    /// (its key is not a record's).
    Marker,
}

/// The cleaner plans only below the last stable offset, so a
/// transactional batch it reads belongs to a transaction that has ended:
/// committed unless the log's aborted transactions list it.
fn kind(header: &BatchHeader, aborted: &AbortedRanges) -> Kind {
    if header.marker().is_some() {
        Kind::Marker
    } else if header.is_transactional() && aborted.contains(header) {
        Kind::Aborted
    } else {
        Kind::Compacted
    }
}

fn count(outcome: &CompactionOutcome) {
    let added = [
        1,
        outcome.segments_cleaned as u64,
        outcome.bytes_read,
        outcome.bytes_before.saturating_sub(outcome.bytes_after),
        outcome.records_removed,
    ];
    for (total, added) in TOTALS.iter().zip(added) {
        total.fetch_add(added, Ordering::Relaxed);
    }
}

/// Sets the cleaner's pace in bytes/s (read and written); 0 is unpaced.
pub fn set_pace(bytes_per_s: u64) {
    PACE_BYTES_PER_S.store(bytes_per_s, Ordering::Relaxed);
}

/// Kafka's `cleanup.policy`: `delete` (retention by time and size),
/// `compact`, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    pub delete: bool,
    pub compact: bool,
}

impl Default for CleanupPolicy {
    fn default() -> Self {
        CleanupPolicy {
            delete: true,
            compact: false,
        }
    }
}

/// A ratio in [0, 1] (`min.cleanable.dirty.ratio`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DirtyRatio(f64);

impl Eq for DirtyRatio {}

impl DirtyRatio {
    /// `None` outside [0, 1] (or NaN).
    pub fn new(ratio: f64) -> Option<DirtyRatio> {
        (0.0..=1.0).contains(&ratio).then_some(DirtyRatio(ratio))
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

/// The settings of compaction, Kafka's topic configs of the same names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionConfig {
    /// `min.cleanable.dirty.ratio`: clean once the dirty part is this share
    /// of the cleanable log.
    pub min_cleanable_dirty_ratio: DirtyRatio,
    /// `min.compaction.lag.ms`: a record stays uncompacted at least this
    /// long (by its timestamp).
    pub min_compaction_lag_ms: u64,
    /// `max.compaction.lag.ms`: a dirty record is compacted within about
    /// this long, whatever the ratio.
    pub max_compaction_lag_ms: u64,
    /// `delete.retention.ms`: a tombstone stays this long after the pass
    /// that first cleaned it.
    pub delete_retention_ms: u64,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        CompactionConfig {
            min_cleanable_dirty_ratio: DirtyRatio(0.5),
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX as u64,
            delete_retention_ms: 86_400_000,
        }
    }
}

/// What one [`Log::compact`](super::Log::compact) call did.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CompactionOutcome {
    /// Whether a pass ran (the log was due).
    pub cleaned: bool,
    /// The dirty share of the cleanable log when planned.
    pub dirty_ratio: f64,
    /// Segments rewritten and swapped in.
    pub segments_cleaned: usize,
    /// Bytes of the segments read in the cleaning step (the dirty ones are
    /// read twice).
    pub bytes_read: u64,
    /// Bytes before and after of the segments swapped.
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub records_removed: u64,
    /// The end of the cleaned part after the pass.
    pub cleaned_end: Offset,
}

/// Why a pass failed. The log is as it was, or has some of its segments
/// cleaned: both are whole logs.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error("cleaning {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("corrupt batch in {path} at byte {position}: {reason}")]
    Corruption {
        path: PathBuf,
        position: u64,
        reason: crate::batch::BatchError,
    },
    #[error("the cleaner's thread stopped: {reason}")]
    Thread { reason: String },
}

/// One cleanable segment, as the cleaner's thread sees it.
#[derive(Debug, Clone)]
struct JobSegment {
    base: Offset,
    next_offset: Offset,
    bytes: u64,
    path: PathBuf,
}

/// Everything a pass's thread needs: plain data, sent to it.
#[derive(Debug)]
struct Job {
    dir: PathBuf,
    segments: Vec<JobSegment>,
    /// The cleaned point: segments from here are dirty.
    dirty_start: Offset,
    checkpoint: CleanerCheckpoint,
    now_ms: i64,
    delete_retention_ms: u64,
    /// Base offsets of the last batch of each idempotent producer.
    keep_whole: HashSet<u64>,
    /// The aborted transactions with records in the cleanable segments.
    aborted: AbortedRanges,
    index_interval_bytes: u64,
}

/// A segment written anew by the thread.
#[derive(Debug)]
pub(super) struct Cleaned {
    pub base: Offset,
    pub path: PathBuf,
    pub bytes: u64,
    pub bytes_before: u64,
    pub index: SegmentIndex,
    pub max_timestamp: Option<i64>,
    pub records_removed: u64,
    /// The abort markers removed: their aborts go before the swap.
    pub aborts_removed: Vec<Offset>,
    /// The producer snapshots (offset) that may list open a transaction
    /// (its producer id) whose marker is removed: rewritten without it
    /// before the swap.
    pub snapshots_closed: Vec<(Offset, i64)>,
}

#[derive(Debug)]
struct JobResult {
    cleaned: Vec<Cleaned>,
    /// The markers found removable and kept, rising.
    removable_markers: Vec<Offset>,
    /// Where the dirty part's map stopped: the new cleaned point.
    map_end: Offset,
    bytes_read: u64,
}

/// The dirty share of the cleanable log and whether the log is due, with
/// the job if it is.
struct Plan {
    dirty_ratio: f64,
    job: Option<(Job, Vec<SegmentFile>)>,
}

pub(super) async fn compact(shared: &Shared) -> Result<CompactionOutcome, CompactError> {
    let Plan { dirty_ratio, job } = plan(shared);
    let Some((job, files)) = job else {
        return Ok(CompactionOutcome {
            dirty_ratio,
            cleaned_end: shared
                .borrow()
                .cleaner_checkpoint
                .as_ref()
                .map_or(Offset(0), |checkpoint| checkpoint.cleaned),
            ..CompactionOutcome::default()
        });
    };
    let dir = job.dir.clone();
    let now_ms = job.now_ms;
    let delete_retention_ms = job.delete_retention_ms;
    let result = run_on_thread(job).await?;
    let mut outcome = CompactionOutcome {
        cleaned: true,
        dirty_ratio,
        bytes_read: result.bytes_read,
        ..CompactionOutcome::default()
    };
    let mut cleaned = result.cleaned.into_iter();
    // Whether every cleaned segment took its place or had none left (gone
    // to retention or a truncation): only then is the dirty part clean.
    let mut complete = true;
    while let Some(segment) = cleaned.next() {
        let file = files
            .iter()
            .find(|file| *file.path == segment_path(&dir, segment.base, LOG_SUFFIX))
            .expect("a cleaned segment was planned");
        let (before, after, removed) =
            (segment.bytes_before, segment.bytes, segment.records_removed);
        let segment_base = segment.base;
        if let Err((what, error)) = before_swap(shared, file, &segment).await {
            tracing::warn!(log = %dir.display(), segment = %segment_base, %error, "could not rewrite {what}; the segment's cleaning is left for the next pass");
            let _ = std::fs::remove_file(&segment.path);
            complete = false;
            continue;
        }
        match super::cleaner_swap::swap(shared, file, segment).await {
            Ok(true) => {
                outcome.segments_cleaned += 1;
                outcome.bytes_before += before;
                outcome.bytes_after += after;
                outcome.records_removed += removed;
            }
            Ok(false) => {
                complete &= !shared.borrow().segments.contains_key(&segment_base);
            }
            Err(error) => {
                for rest in cleaned {
                    let _ = std::fs::remove_file(&rest.path);
                }
                return Err(error);
            }
        }
    }
    // The cleaned point moves only once every segment below it is swapped.
    if !complete {
        tracing::info!(log = %dir.display(), "a pass not swapped in whole; the next one cleans its part again");
        return Ok(outcome);
    }
    let checkpoint = {
        let mut state = shared.borrow_mut();
        let end = state.end;
        let checkpoint = state
            .cleaner_checkpoint
            .get_or_insert_with(CleanerCheckpoint::default);
        checkpoint.clamp(end);
        let forget_before_ms = now_ms.saturating_sub(delete_retention_ms as i64);
        checkpoint.record(
            result.map_end.max(checkpoint.cleaned).min(end),
            now_ms,
            forget_before_ms,
        );
        // The markers this pass found removable, each since it was first
        // found so; one no longer found so (its marker gone, or a record
        // of its transaction back after a truncation) is forgotten.
        let previous = std::mem::take(&mut checkpoint.removable_markers);
        checkpoint.removable_markers = result
            .removable_markers
            .iter()
            .filter(|&&marker| marker < end)
            .take(cleaner_checkpoint::REMOVABLE_MARKERS_MAX)
            .map(|&marker| (marker, previous.get(&marker).copied().unwrap_or(now_ms)))
            .collect();
        outcome.cleaned_end = checkpoint.cleaned;
        checkpoint.clone()
    };
    let written = glommio::executor()
        .spawn_blocking({
            let dir = dir.clone();
            move || cleaner_checkpoint::write(&dir, &checkpoint)
        })
        .await;
    if let Err(source) = written {
        // Not durable: the next open cleans the same part again.
        tracing::warn!(log = %dir.display(), %source, "cleaner checkpoint not written");
    }
    count(&outcome);
    tracing::info!(
        log = %dir.display(), segments = outcome.segments_cleaned,
        bytes_before = outcome.bytes_before, bytes_after = outcome.bytes_after,
        records_removed = outcome.records_removed, cleaned_end = %outcome.cleaned_end,
        "compacted"
    );
    Ok(outcome)
}

/// What must be on disk before `segment` takes the place of the one
/// cleaned from `old`, for the markers it removes: see [`forget_aborts`]
/// and [`close_in_snapshots`]. On failure, what could not be rewritten.
async fn before_swap(
    shared: &Shared,
    old: &SegmentFile,
    segment: &Cleaned,
) -> Result<(), (&'static str, io::Error)> {
    if !segment.aborts_removed.is_empty() {
        forget_aborts(shared, old, segment)
            .await
            .map_err(|error| ("the segment's aborted transactions", error))?;
    }
    if !segment.snapshots_closed.is_empty() {
        close_in_snapshots(shared, old, segment)
            .await
            .map_err(|error| {
                (
                    "the producer snapshots that list a removed marker's transaction open",
                    error,
                )
            })?;
    }
    Ok(())
}

/// Before the swap of `segment`, which removes abort markers: their aborts
/// go from the log's state and from the segment's file of aborts, synced.
/// A `read_committed` reader told of an abort drops its producer's batches
/// until it reads its marker, so an abort must never be listed without
/// it; a marker read without its abort listed is harmless (its records
/// are gone before, in an earlier pass). On failure the segment is not
/// swapped; its aborts left out of the state are none the less gone for
/// readers, which is as harmless. Fails, leaving all as it was, while a
/// truncation is under way, if the segment cleaned from `old` is gone (the
/// swap would not take place), or if the producer snapshot at its end is
/// not there.
async fn forget_aborts(shared: &Shared, old: &SegmentFile, segment: &Cleaned) -> io::Result<()> {
    let (dir, aborted) = {
        let mut state = shared.borrow_mut();
        let current = state.segments.get(&segment.base).filter(|kept| {
            kept.sealed
                && kept
                    .file
                    .as_ref()
                    .is_some_and(|file| std::rc::Rc::ptr_eq(&file.path, &old.path))
        });
        let Some(next_offset) = current.map(|kept| kept.next_offset) else {
            return Err(io::Error::other("the segment is gone"));
        };
        if state.truncating {
            return Err(io::Error::other("a truncation is under way"));
        }
        // The roll that sealed the segment writes its file of aborts, then
        // the snapshot at its end: until that snapshot is there, the
        // roll's write may still land after this one.
        let snapshot = segment_path(&state.dir, next_offset, super::PRODUCERS_SUFFIX);
        if !snapshot.exists() {
            return Err(io::Error::other(
                "the segment's roll has not written its aborts yet",
            ));
        }
        state.transactions.forget_aborts(&segment.aborts_removed);
        let aborted = state
            .transactions
            .aborted_in_segment(segment.base, next_offset);
        (state.dir.clone(), aborted)
    };
    let base = segment.base;
    glommio::executor()
        .spawn_blocking({
            let dir = dir.clone();
            move || super::producer_snapshots::write_aborted(&dir, base, &aborted)
        })
        .await?;
    super::segment::sync_dir(&dir).await
}

/// Before the swap of `segment`, which removes markers that producer
/// snapshots may list open: each such snapshot is rewritten without the
/// marker's transaction (synced), so that a log opened from it does not
/// hold open a transaction whose marker is gone. A snapshot gone
/// meanwhile (retention) is left gone. Fails, leaving the snapshots
/// rewritten so far (harmless: those transactions have no batch left), if
/// the segment cleaned from `old` is gone or a truncation is under way.
async fn close_in_snapshots(
    shared: &Shared,
    old: &SegmentFile,
    segment: &Cleaned,
) -> io::Result<()> {
    let dir = {
        let state = shared.borrow();
        let current = state.segments.get(&segment.base).is_some_and(|kept| {
            kept.file
                .as_ref()
                .is_some_and(|file| std::rc::Rc::ptr_eq(&file.path, &old.path))
        });
        if !current {
            return Err(io::Error::other("the segment is gone"));
        }
        if state.truncating {
            return Err(io::Error::other("a truncation is under way"));
        }
        state.dir.clone()
    };
    let closed = segment.snapshots_closed.clone();
    glommio::executor()
        .spawn_blocking({
            let dir = dir.clone();
            move || super::producer_snapshots::close_transactions(&dir, &closed)
        })
        .await?;
    super::segment::sync_dir(&dir).await
}

fn plan(shared: &Shared) -> Plan {
    let mut state = shared.borrow_mut();
    let state = &mut *state;
    let skipped = Plan {
        dirty_ratio: 0.0,
        job: None,
    };
    if !state.config.cleanup_policy.compact
        || state.truncating
        || state.closing
        || state.swapping
        || state.failure.is_some()
    {
        return skipped;
    }
    let dir = state.dir.clone();
    let checkpoint = state
        .cleaner_checkpoint
        .get_or_insert_with(|| cleaner_checkpoint::read(&dir));
    checkpoint.clamp(state.end);
    let checkpoint = checkpoint.clone();
    let now_ms = state.clock.now_ms();
    let config = &state.config.compaction;
    // Never past the last stable offset: an open transaction's records,
    // and all after them, stay as they are until it ends.
    let limit = state.stable_end().min(state.durable_end);
    let lag_horizon = now_ms.saturating_sub(config.min_compaction_lag_ms as i64);
    let deletable = state.segments.len().saturating_sub(1);
    let mut segments = Vec::new();
    let mut files = Vec::new();
    for segment in state.segments.values().take(deletable) {
        let Some(file) = &segment.file else { break };
        if !segment.sealed
            || segment.next_offset > limit
            || (config.min_compaction_lag_ms > 0
                && segment.max_timestamp.is_some_and(|max| max > lag_horizon))
        {
            break;
        }
        segments.push(JobSegment {
            base: segment.base,
            next_offset: segment.next_offset,
            bytes: segment.bytes,
            path: file.path.to_path_buf(),
        });
        files.push(file.clone());
    }
    // Segments wholly below the log start are retention's to delete.
    segments.retain(|segment| segment.next_offset > state.log_start);
    let Some(last) = segments.last() else {
        return skipped;
    };
    let cleanable_end = last.next_offset;
    let dirty_start = checkpoint.cleaned.max(segments[0].base);
    if dirty_start >= cleanable_end {
        return skipped;
    }
    let total: u64 = segments.iter().map(|segment| segment.bytes).sum();
    let dirty: u64 = segments
        .iter()
        .filter(|segment| segment.next_offset > dirty_start)
        .map(|segment| segment.bytes)
        .sum();
    let dirty_ratio = dirty as f64 / total.max(1) as f64;
    let first_dirty = segments
        .iter()
        .find(|segment| segment.next_offset > dirty_start)
        .expect("a dirty segment");
    let first_dirty_ms = state.segments[&first_dirty.base]
        .index
        .times
        .first()
        .map_or(state.segments[&first_dirty.base].created_ms, |time| {
            time.timestamp
        });
    // A timestamp ahead of the clock is no age at all.
    let age_ms = now_ms.saturating_sub(first_dirty_ms).max(0) as u64;
    let overdue = age_ms >= config.max_compaction_lag_ms;
    if dirty_ratio < config.min_cleanable_dirty_ratio.get() && !overdue {
        return Plan {
            dirty_ratio,
            job: None,
        };
    }
    let aborted = AbortedRanges::new(&state.transactions.aborted(segments[0].base, cleanable_end));
    let job = Job {
        dir,
        segments,
        dirty_start,
        checkpoint,
        now_ms,
        delete_retention_ms: config.delete_retention_ms,
        keep_whole: state.producers.last_batch_bases(),
        aborted,
        index_interval_bytes: state.config.index_interval_bytes,
    };
    Plan {
        dirty_ratio,
        job: Some((job, files)),
    }
}

/// Runs `job` on a thread of its own and waits for it without blocking the
/// shard: the shard looks every [`POLL_INTERVAL`].
async fn run_on_thread(job: Job) -> Result<JobResult, CompactError> {
    let slot: Arc<Mutex<Option<Result<JobResult, CompactError>>>> = Arc::default();
    let spawned = std::thread::Builder::new()
        .name("sluice-cleaner".into())
        .spawn({
            let slot = slot.clone();
            move || {
                crate::side_threads::lower_priority(crate::side_threads::Io::BestEffortLowest);
                let result = clean(&job);
                if result.is_err() {
                    for segment in &job.segments {
                        let _ = std::fs::remove_file(cleaned_path(&job.dir, segment.base));
                    }
                }
                *slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(result);
            }
        })
        .map_err(|error| CompactError::Thread {
            reason: error.to_string(),
        })?;
    loop {
        if spawned.is_finished() {
            break;
        }
        glommio::timer::sleep(POLL_INTERVAL).await;
    }
    if let Err(panic) = spawned.join() {
        let reason = panic
            .downcast_ref::<&str>()
            .map(|reason| reason.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_string());
        return Err(CompactError::Thread { reason });
    }
    let result = slot
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .take();
    result.unwrap_or_else(|| {
        Err(CompactError::Thread {
            reason: "no result".into(),
        })
    })
}

pub(super) fn cleaned_path(dir: &Path, base: Offset) -> PathBuf {
    segment_path(dir, base, CLEANED_SUFFIX)
}

/// Reads the batches of a segment file one after another, paced.
struct SegmentReader<'a> {
    reader: BufReader<File>,
    path: &'a Path,
    position: u64,
    bytes: u64,
}

impl<'a> SegmentReader<'a> {
    fn open(segment: &'a JobSegment) -> Result<SegmentReader<'a>, CompactError> {
        let file = File::open(&segment.path).map_err(|source| CompactError::Io {
            path: segment.path.clone(),
            source,
        })?;
        Ok(SegmentReader {
            reader: BufReader::with_capacity(PACE_STEP_BYTES as usize, file),
            path: &segment.path,
            position: 0,
            bytes: segment.bytes,
        })
    }

    /// The next batch and its position, `None` at the segment's end.
    fn next(&mut self, pace: &mut Pace) -> Result<Option<(Batch, u64)>, CompactError> {
        if self.position >= self.bytes {
            return Ok(None);
        }
        let io_error = |source| CompactError::Io {
            path: self.path.to_path_buf(),
            source,
        };
        let corrupt = |position, reason| CompactError::Corruption {
            path: self.path.to_path_buf(),
            position,
            reason,
        };
        let mut header = [0_u8; BATCH_HEADER_BYTES];
        self.reader.read_exact(&mut header).map_err(io_error)?;
        let parsed =
            BatchHeader::parse(&header).map_err(|reason| corrupt(self.position, reason))?;
        let length = parsed.batch_bytes as usize;
        if !(BATCH_HEADER_BYTES..=BATCH_BYTES_MAX).contains(&length)
            || self.position + length as u64 > self.bytes
        {
            let reason = crate::batch::BatchError::LengthMismatch {
                declared: length,
                available: (self.bytes - self.position) as usize,
            };
            return Err(corrupt(self.position, reason));
        }
        let mut bytes = vec![0_u8; length];
        bytes[..BATCH_HEADER_BYTES].copy_from_slice(&header);
        self.reader
            .read_exact(&mut bytes[BATCH_HEADER_BYTES..])
            .map_err(io_error)?;
        let batch = Batch::validate_stored(Bytes::from(bytes))
            .map_err(|reason| corrupt(self.position, reason))?;
        let position = self.position;
        self.position += length as u64;
        pace.add(length as u64);
        Ok(Some((batch, position)))
    }
}

/// The side threads' pace, in steps.
struct Pace {
    pace: crate::side_threads::Pace,
    unpaced_bytes: u64,
}

impl Pace {
    fn add(&mut self, bytes: u64) {
        self.unpaced_bytes += bytes;
        if self.unpaced_bytes >= PACE_STEP_BYTES {
            let bytes_per_s = PACE_BYTES_PER_S.load(Ordering::Relaxed);
            if bytes_per_s > 0 {
                self.pace.wait(self.unpaced_bytes, bytes_per_s);
            }
            self.unpaced_bytes = 0;
        }
    }
}

/// The map of the dirty part: each key's latest offset, and where it ends.
struct OffsetMap {
    latest: HashMap<Vec<u8>, Offset>,
    bytes: usize,
}

impl OffsetMap {
    /// Adds a record; the caller checked that the map has room.
    fn put(&mut self, key: &[u8], offset: Offset) {
        if let Some(latest) = self.latest.get_mut(key) {
            assert!(offset > *latest, "offsets went back: {offset} <= {latest}");
            *latest = offset;
            return;
        }
        self.bytes += key.len() + OFFSET_MAP_ENTRY_BYTES;
        assert!(
            self.bytes <= OFFSET_MAP_BYTES_MAX,
            "the offset map passed its cap: {} bytes",
            self.bytes
        );
        self.latest.insert(key.to_vec(), offset);
    }
}

/// The cleaner's thread: maps the dirty part, then rewrites what changes.
fn clean(job: &Job) -> Result<JobResult, CompactError> {
    let mut pace = Pace {
        pace: crate::side_threads::Pace::new(),
        unpaced_bytes: 0,
    };
    let mut bytes_read = 0;
    // 1. The map: each key's latest offset in the dirty part.
    let mut map = OffsetMap {
        latest: HashMap::new(),
        bytes: 0,
    };
    let mut map_end = job.dirty_start;
    'segments: for segment in job
        .segments
        .iter()
        .filter(|segment| segment.next_offset > job.dirty_start)
    {
        let mut reader = SegmentReader::open(segment)?;
        while let Some((batch, _)) = reader.next(&mut pace)? {
            if batch.last_offset() < job.dirty_start {
                continue;
            }
            // What the batch can add at most: all its bytes as keys, an
            // entry per record. A batch that may not fit ends the map
            // before it, whole.
            let header = batch.header();
            let bound = batch.len() + header.record_count as usize * OFFSET_MAP_ENTRY_BYTES;
            if map.bytes + bound > OFFSET_MAP_BYTES_MAX {
                map_end = map_end.max(batch.base_offset());
                break 'segments;
            }
            let dirty_start = job.dirty_start;
            if kind(&header, &job.aborted) != Kind::Compacted {
                // An aborted record must not hide a committed one.
                map_end = batch.last_offset().next();
                continue;
            }
            let read = filter::for_each_record(&batch, |record| {
                if let Some(key) = record.key {
                    if record.offset >= dirty_start {
                        map.put(key, record.offset);
                    }
                }
            });
            if let Err(error) = read {
                // Its keys unknown, the older records of those keys stay:
                // safe.
                tracing::warn!(segment = %segment.path.display(), offset = %batch.base_offset(), %error, "batch not read by the cleaner");
            }
            map_end = batch.last_offset().next();
        }
        bytes_read += segment.bytes;
        map_end = map_end.max(segment.next_offset);
    }

    // 2. Every cleanable segment up to the map's end, record by record.
    let snapshots = match super::producer_snapshots::snapshot_offsets(&job.dir) {
        Ok(mut snapshots) => {
            snapshots.sort();
            Some(snapshots)
        }
        Err(error) => {
            tracing::warn!(log = %job.dir.display(), %error, "could not list producer snapshots; no marker is removed");
            None
        }
    };
    let mut walk = TransactionWalk {
        retained: HashMap::new(),
        last_marker: HashMap::new(),
        snapshots,
        first_base: job.segments[0].base,
        removable: Vec::new(),
    };
    let mut cleaned = Vec::new();
    for segment in job.segments.iter().filter(|segment| segment.base < map_end) {
        bytes_read += segment.bytes;
        if let Some(done) = clean_segment(job, segment, &map, map_end, &mut walk, &mut pace)? {
            cleaned.push(done);
        }
    }
    Ok(JobResult {
        cleaned,
        removable_markers: walk.removable,
        map_end,
        bytes_read,
    })
}

/// Whether the record stays.
fn keep(job: &Job, map: &OffsetMap, map_end: Offset, record: RecordKey<'_>) -> bool {
    let Some(key) = record.key else {
        return false;
    };
    if let Some(latest) = map.latest.get(key) {
        if record.offset < *latest {
            return false;
        }
    }
    if record.tombstone && record.offset < map_end {
        // Removed once the pass that first cleaned it is
        // `delete.retention.ms` old; a tombstone cleaned first now stays.
        if let Some(first_cleaned_ms) = job.checkpoint.first_cleaned_ms(record.offset) {
            return job.now_ms.saturating_sub(first_cleaned_ms) < job.delete_retention_ms as i64;
        }
    }
    true
}

/// Writes `segment` cleaned to `<base>.log.cleaned`, synced; `None` (and
/// no file) if no record goes.
fn clean_segment(
    job: &Job,
    segment: &JobSegment,
    map: &OffsetMap,
    map_end: Offset,
    walk: &mut TransactionWalk,
    pace: &mut Pace,
) -> Result<Option<Cleaned>, CompactError> {
    let path = cleaned_path(&job.dir, segment.base);
    let io_error = |source| CompactError::Io {
        path: path.clone(),
        source,
    };
    let mut reader = SegmentReader::open(segment)?;
    let file = File::create(&path).map_err(io_error)?;
    let mut out = BufWriter::with_capacity(PACE_STEP_BYTES as usize, file);
    let mut index = SegmentIndex::default();
    let mut position = 0_u64;
    let mut max_timestamp = None;
    let mut last_relative = 0;
    let mut records_removed = 0_u64;
    let mut aborts_removed = Vec::new();
    let mut snapshots_closed = Vec::new();
    while let Some((batch, _)) = reader.next(pace)? {
        let header = batch.header();
        let kind = kind(&header, &job.aborted);
        let mut marker_goes = false;
        if kind == Kind::Marker {
            let listing = walk.on_marker(&header, batch.base_offset()).filter(|_| {
                batch.base_offset() < map_end && !job.keep_whole.contains(&batch.base_offset().0)
            });
            if let Some(listing) = listing {
                // Kafka's delete horizon: found removable, the marker stays
                // `delete.retention.ms` more, so that a reader who read its
                // transaction's records before they went still reads it.
                match job.checkpoint.removable_markers.get(&batch.base_offset()) {
                    Some(&since_ms)
                        if job.now_ms.saturating_sub(since_ms)
                            >= job.delete_retention_ms as i64 =>
                    {
                        marker_goes = true;
                        if header.marker() == Some(Marker::Abort) {
                            aborts_removed.push(batch.base_offset());
                        }
                        snapshots_closed.extend(
                            listing
                                .into_iter()
                                .map(|snapshot| (snapshot, header.producer_id)),
                        );
                    }
                    _ => walk.removable.push(batch.base_offset()),
                }
            }
        }
        let whole = batch.base_offset() >= map_end
            || job.keep_whole.contains(&batch.base_offset().0)
            || (kind == Kind::Marker && !marker_goes);
        let filtered = if whole {
            Filtered::Unchanged
        } else if kind == Kind::Aborted || marker_goes {
            Filtered::Empty
        } else {
            match filter::filter(&batch, |record| keep(job, map, map_end, record)) {
                Ok(filtered) => filtered,
                Err(error) => {
                    tracing::warn!(segment = %segment.path.display(), offset = %batch.base_offset(), %error, "batch kept whole: the cleaner cannot read it");
                    Filtered::Unchanged
                }
            }
        };
        let record_count = u64::from(batch.header().record_count);
        let kept = match filtered {
            Filtered::Unchanged => vec![batch],
            Filtered::Empty => Vec::new(),
            Filtered::Rewritten(batches) => batches,
        };
        let kept_records: u64 = kept
            .iter()
            .map(|batch| u64::from(batch.header().record_count))
            .sum();
        if kind != Kind::Marker && header.is_transactional() {
            walk.on_data(header.producer_id, !kept.is_empty());
        }
        records_removed += record_count - kept_records;
        for batch in &kept {
            max_timestamp = max_timestamp.max(Some(batch.max_timestamp()));
            last_relative = u32::try_from(batch.base_offset().0 - segment.base.0)
                .expect("a relative offset fits u32");
            index.on_batch(
                last_relative,
                position,
                batch.len() as u64,
                max_timestamp,
                job.index_interval_bytes,
            );
            position += batch.len() as u64;
            out.write_all(batch.as_bytes()).map_err(io_error)?;
            pace.add(batch.len() as u64);
        }
    }
    if records_removed == 0 {
        drop(out);
        std::fs::remove_file(&path).map_err(io_error)?;
        return Ok(None);
    }
    let file = out
        .into_inner()
        .map_err(|error| io_error(error.into_error()))?;
    file.sync_all().map_err(io_error)?;
    if let Some(max) = max_timestamp {
        index.seal_times(max, last_relative);
    }
    Ok(Some(Cleaned {
        base: segment.base,
        path,
        bytes: position,
        bytes_before: segment.bytes,
        index,
        max_timestamp,
        records_removed,
        aborts_removed,
        snapshots_closed,
    }))
}
