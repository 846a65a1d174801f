//! The log of one partition: segments of batches on disk, written with
//! O_DIRECT, with group commit, recovery and retention.
//!
//! # Shape
//!
//! A [`Log`] is a handle to state shared (through `Rc`) with one background
//! task, the flusher. Appending assigns offsets and positions at once, in
//! memory, and queues the batch; the flusher writes everything queued in one
//! aligned write (rewriting the partial tail page), fdatasyncs once, and
//! completes every append the write covered. Appends that arrive while a write
//! or fdatasync is in flight wait for the next round: that is group commit.
//!
//! Recent batches (everything queued, and a bounded tail of what is written)
//! are kept in memory and served from there; older batches are read from the
//! segment files with DMA reads, checked against their CRC on the way.
//!
//! # Failures
//!
//! * A full disk (ENOSPC) fails the appends it touched and undoes them: the
//!   log ends where it ended before, nothing partial is visible, reads go on,
//!   and a later append tries again.
//! * Any other failed write, and any failed fdatasync, fences the log: the
//!   state of the file is unknown, so nothing is retried as if it had not
//!   happened. Appends fail with [`AppendError::Fenced`] (which says why), and
//!   reads keep serving what was durable.
//!
//! The `disk_errors` module does both. Tests make the disk say no on purpose
//! through [`IoFaults`] (the `injected_faults` module); production logs have
//! none.
//!
//! # Idempotent producers
//!
//! A batch whose header carries a producer id and a base sequence (Kafka's
//! `enable.idempotence`) is checked where its offsets are assigned, in append
//! order, against the last batches of its producer: a retry of one of them
//! is not stored again but answered with its original offsets
//! ([`Appended::duplicate`]); a sequence that does not follow is refused with
//! [`AppendError::OutOfOrderSequence`], an old epoch with
//! [`AppendError::ProducerFenced`]. The rules are in the `producers` module.
//! The state survives a close (a snapshot is written then), a crash (it is
//! rebuilt from the last snapshot, written at every segment roll, and the
//! batch headers after it) and retention (snapshots keep the producers of
//! deleted segments). An append undone for a full disk is undone in it too.
//!
//! # Transactions
//!
//! A transactional producer's batches open its transaction on the
//! partition; a marker (a control batch, [`crate::batch::Batch::marker`])
//! commits or aborts it. The log keeps the open transactions, so that
//! [`Log::last_stable_offset`] stops `read_committed` readers at the oldest
//! one (or at the oldest ended by a marker the high watermark has not
//! passed yet), and the aborted ones, which [`Log::aborted_transactions`]
//! lists for a fetch's range. The open ones go with the producer
//! snapshots; the aborted ones with the segment holding their marker, in
//! its `<base>.aborted` file (written when it rolls, and on close for the
//! active one; rewritten when compaction removes an abort marker), and go
//! with it. The rules are in the `transactions` module.
//!
//! # Deleting records
//!
//! [`Log::delete_records`] (Kafka's DeleteRecords) moves the log start up to
//! the high watermark, inside a segment too: reads below it are out of
//! range, the segments wholly below it are deleted, and the start is kept in
//! a checkpoint file, written and synced before the call returns, so that it
//! survives a close and a crash. The `log_start` module says how.
//!
//! # Replicas
//!
//! A follower stores what its leader appended with
//! [`Log::append_replicated`]: the batch as the leader assigned it, at the
//! log end. [`Log::truncate_to`] cuts the log back (a follower whose log
//! went further than its leader's, KIP-101 and KIP-279), crash-safely: an
//! intent file makes a truncation that a crash interrupts complete on the
//! next open. The log keeps the first offset of each leader epoch it holds
//! ([`Log::leader_epochs`]) in a checkpoint file. The `replica` and
//! `leader_epochs` modules say how.
//!
//! # Threads
//!
//! A log lives on one glommio executor, the partition's owner shard, and must
//! be opened and used there. It is neither `Send` nor `Sync`.

mod appender;
mod cleaner;
mod cleaner_checkpoint;
mod cleaner_swap;
mod disk_errors;
mod flusher;
mod index;
mod injected_faults;
mod leader_epochs;
mod log_start;
mod producer_snapshots;
mod producers;
mod reader;
mod recovery;
mod replica;
mod retention;
mod segment;
mod segment_files;
mod slow_io;
mod spare;
mod transactions;
mod verification;

use std::{
    cell::RefCell,
    collections::{BTreeMap, VecDeque},
    io,
    path::{Path, PathBuf},
    rc::Rc,
    task::Waker,
    time::Duration,
};

pub use cleaner::{
    cleaner_totals, set_pace as set_cleaner_pace, CleanerTotals, CleanupPolicy, CompactError,
    CompactionConfig, CompactionOutcome, DirtyRatio, CLEANED_SUFFIX, CLEAN_BYTES_PER_S,
    OFFSET_MAP_BYTES_MAX, SWAP_SUFFIX,
};
pub use cleaner_checkpoint::{CLEANER_CHECKPOINT_NAME, PASSES_MAX};
pub use injected_faults::{IoFaults, SwapStep};
pub use leader_epochs::{LEADER_EPOCHS_MAGIC, LEADER_EPOCHS_MAX, LEADER_EPOCHS_NAME};
pub use log_start::{CheckpointError, CHECKPOINT_MAGIC, CHECKPOINT_NAME};
pub use producer_snapshots::PRODUCERS_SUFFIX;
pub use producers::{
    sequence_after, ProducerBatch, ProducerState, PRODUCERS_MAX, PRODUCER_BATCHES_MAX,
};
pub use replica::{TRUNCATION_MAGIC, TRUNCATION_NAME};
pub use retention::RetentionOutcome;
pub use spare::{PREPARE_AFTER_BYTES, PREPARE_LEAD_MS, SPARE_IDLE_MS, SPARE_SUFFIX};
pub use transactions::{
    AbortedTransaction, TransactionError, TransactionsDecodeError, OPEN_TRANSACTIONS_MAX,
};

use crate::{
    batch::{Batch, BatchError},
    Offset,
};
use appender::{Completion, Pending};
use leader_epochs::LeaderEpochs;
use producers::Producers;
use segment::Segment;
use transactions::Transactions;

/// The alignment of every write: one page. The partial last page of the
/// active segment is kept in memory and rewritten until it is full. 4 KiB is
/// a multiple of every O_DIRECT alignment seen on Linux block devices.
pub const PAGE_BYTES: usize = 4096;

/// The most bytes one flush round writes. Bounds the DMA buffer and how long
/// one write holds the device; a single batch larger than this is written
/// alone.
pub const FLUSH_BYTES_MAX: usize = 4 * 1024 * 1024;

/// The most bytes queued for writing before appends wait. Bounds the memory
/// a burst of appends can pin while the disk catches up and, under the
/// `interval` policy, how much acknowledged data a crash can lose when the
/// disk falls behind.
pub const PENDING_BYTES_MAX: usize = 32 * 1024 * 1024;

/// With [`LogConfig::preallocate`], an active segment's file is allocated
/// (fallocate) this far ahead of its writes, one step at a time, so that a
/// full disk shows up at the step, before data is at stake. A step, not the
/// whole segment, so that a thousand partitions do not reserve a thousand
/// segments of disk. A sealed segment gives back what it did not use.
pub const PREALLOCATE_STEP_BYTES: u64 = 16 * 1024 * 1024;

/// A segment is at most this large: index positions are `u32`, and one batch
/// can exceed `segment_bytes_max` by up to a batch.
pub const SEGMENT_BYTES_CAP: u64 = 2 * 1024 * 1024 * 1024;

/// When an append counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// An append completes once its batch is written and fdatasync'ed. The
    /// default: an acknowledged batch survives power loss.
    Always,
    /// An append completes once its batch is queued; the flusher writes at
    /// once and fdatasyncs at most this often. A crash loses what was
    /// acknowledged in the last interval, or up to [`PENDING_BYTES_MAX`] of
    /// it if the disk falls behind.
    Interval(Duration),
}

impl std::fmt::Display for FlushPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FlushPolicy::Always => write!(f, "always"),
            FlushPolicy::Interval(interval) => write!(f, "interval({}ms)", interval.as_millis()),
        }
    }
}

/// The settings of one log. Names follow Kafka's topic configs where Kafka
/// has one (`segment.bytes`, `segment.ms`, `retention.ms`, `retention.bytes`,
/// `index.interval.bytes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Roll to a new segment before one would grow past this.
    pub segment_bytes_max: u64,
    /// Roll to a new segment once the active one is this old.
    pub segment_ms: Option<u64>,
    /// Roll up to this much before `segment_ms`, by an amount drawn per
    /// segment (Kafka's `segment.jitter.ms`).
    pub segment_jitter_ms: u64,
    pub flush: FlushPolicy,
    /// Delete sealed segments whose newest timestamp is older than this.
    pub retention_ms: Option<u64>,
    /// Delete the oldest sealed segments while the log is larger than this.
    pub retention_bytes: Option<u64>,
    /// Bytes of log between two index entries.
    pub index_interval_bytes: u64,
    /// Written batches kept in memory for readers of the tail.
    pub tail_cache_bytes_max: usize,
    /// Allocate segment files ahead of writes, in steps of
    /// [`PREALLOCATE_STEP_BYTES`] (at most `segment_bytes_max`). Off by
    /// default: fallocate leaves unwritten extents, and each O_DIRECT write
    /// into them must convert its extent on completion (a kernel worker on
    /// the CPU that took the disk's interrupt) and make that change durable
    /// at the fdatasync. Appending past the end costs less: on ext4 under
    /// io_uring, at 750,000 records/s of 100 B, preallocated segments gave
    /// a median acknowledgement p99.9 of 288 ms (writes slowed from 0.2 to
    /// 3.7 ms for seconds at a time), appending 13.6 ms (bench/RESULTS.md).
    pub preallocate: bool,
    /// Prepare the next segment's file ahead, filled with zeros by a side
    /// thread, for a log that fills segments fast, and roll into it: writes
    /// then overwrite allocated blocks instead of growing the file, at the
    /// price of a second write of every byte. On by default; the `spare`
    /// module says when, why and what it measured.
    pub prepare_segments: bool,
    /// How long a deleted segment's file stays on disk (renamed `*.deleted`)
    /// before its space is given back: readers that had it open finish with
    /// it first. Kafka's `file.delete.delay.ms`. See [`crate::deleter`].
    pub file_delete_delay_ms: u64,
    /// The largest batch a producer may append, in bytes (Kafka's
    /// `max.message.bytes`); larger ones are refused, nothing stored.
    pub batch_bytes_max: usize,
    /// How appended batches' timestamps are set and checked.
    pub timestamps: TimestampRules,
    /// Kafka's `compression.type` other than `producer`: the codec the
    /// partition keeps Kafka batches in; a producer's batch in another one
    /// is recompressed before it is appended.
    pub recompression: Option<Recompression>,
    /// Kafka's `cleanup.policy`: `delete` makes `retention_ms` and
    /// `retention_bytes` delete segments; `compact` runs the cleaner
    /// ([`Log::compact`]) and refuses records without a key.
    pub cleanup_policy: CleanupPolicy,
    /// How the cleaner compacts, with `cleanup_policy.compact`.
    pub compaction: CompactionConfig,
}

/// A topic's `compression.type` codec (`None`: uncompressed) and its
/// level (`compression.gzip.level`, ...; `None`: the codec's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recompression {
    pub codec: Option<crate::batch::compression::Codec>,
    pub level: Option<i32>,
}

/// Kafka's `message.timestamp.*` topic configs: checked by the partition's
/// owner before a producer's batch is appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampRules {
    /// `message.timestamp.type=LogAppendTime`: the broker stamps each batch
    /// with the time of its append, and the checks below do not apply.
    pub log_append_time: bool,
    /// A batch whose records are older than this, against the broker's
    /// clock, is refused (`message.timestamp.before.max.ms`).
    pub before_max_ms: Option<u64>,
    /// A batch whose records are further ahead of the broker's clock than
    /// this is refused (`message.timestamp.after.max.ms`).
    pub after_max_ms: Option<u64>,
}

impl TimestampRules {
    /// Kafka 4's defaults: CreateTime, any age, at most an hour ahead.
    pub const DEFAULT: TimestampRules = TimestampRules {
        log_append_time: false,
        before_max_ms: None,
        after_max_ms: Some(60 * 60 * 1000),
    };

    /// Why a batch whose record timestamps span `[first_ms, max_ms]` is
    /// refused at `now_ms`, if it is.
    pub fn refuse(&self, first_ms: i64, max_ms: i64, now_ms: i64) -> Option<String> {
        if self.log_append_time {
            return None;
        }
        let oldest = first_ms.min(max_ms);
        if let Some(before) = self.before_max_ms {
            if now_ms.saturating_sub(oldest) > before as i64 {
                return Some(format!(
                    "timestamp {oldest} is more than message.timestamp.before.max.ms={before} before the broker's time {now_ms}"
                ));
            }
        }
        if let Some(after) = self.after_max_ms {
            if max_ms.saturating_sub(now_ms) > after as i64 {
                return Some(format!(
                    "timestamp {max_ms} is more than message.timestamp.after.max.ms={after} after the broker's time {now_ms}"
                ));
            }
        }
        None
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes_max: 1024 * 1024 * 1024,
            segment_ms: Some(7 * 24 * 60 * 60 * 1000),
            segment_jitter_ms: 0,
            flush: FlushPolicy::Always,
            retention_ms: Some(7 * 24 * 60 * 60 * 1000),
            retention_bytes: None,
            index_interval_bytes: 4096,
            tail_cache_bytes_max: 4 * 1024 * 1024,
            preallocate: false,
            prepare_segments: true,
            file_delete_delay_ms: 60_000,
            batch_bytes_max: crate::batch::BATCH_BYTES_MAX,
            timestamps: TimestampRules::DEFAULT,
            recompression: None,
            cleanup_policy: CleanupPolicy::default(),
            compaction: CompactionConfig::default(),
        }
    }
}

/// Wall-clock time, behind a seam so tests can move it.
pub trait Clock {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system's wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// What a log is opened with besides its config: the clock and, in tests,
/// injected I/O faults.
pub struct LogOptions {
    pub clock: Rc<dyn Clock>,
    pub faults: Option<Rc<IoFaults>>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            clock: Rc::new(SystemClock),
            faults: None,
        }
    }
}

/// Why a log stopped taking appends: the operation that failed, on which
/// file, and the error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} of {path} failed: {message} (errno {errno:?}); the log takes no more appends")]
pub struct LogFailure {
    pub operation: &'static str,
    pub path: PathBuf,
    pub errno: Option<i32>,
    pub message: String,
}

impl LogFailure {
    fn new(operation: &'static str, path: &Path, error: &io::Error) -> LogFailure {
        LogFailure {
            operation,
            path: path.to_path_buf(),
            errno: error.raw_os_error(),
            message: error.to_string(),
        }
    }
}

/// Why an append was refused. Nothing of a refused append is stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The disk is full. Nothing of the append is visible; retry once space
    /// is freed.
    #[error("disk full: {message}")]
    DiskFull { message: String },
    #[error(transparent)]
    Fenced(#[from] LogFailure),
    #[error("the log is closed")]
    Closed,
    /// The batch's producer epoch is older than the one this partition has
    /// seen for its producer id: a newer instance of the producer took over.
    /// Kafka's `INVALID_PRODUCER_EPOCH`.
    #[error("producer {producer_id} epoch {epoch} is fenced: epoch {current_epoch} is current")]
    ProducerFenced {
        producer_id: i64,
        epoch: i16,
        current_epoch: i16,
    },
    /// A replicated batch does not start at the log end: its leader's log
    /// and this one differ there (truncate first), or batches were lost or
    /// repeated on the way.
    #[error("the batch starts at {got} but the log ends at {expected}")]
    NotContiguous { expected: Offset, got: Offset },
    /// The batch's leader epoch is below that of the log's last batch: it
    /// comes from a deposed leader, or the leader of a replica was set back.
    #[error("leader epoch {epoch} is below the log's last epoch {last_epoch}")]
    StaleLeaderEpoch { epoch: u32, last_epoch: u32 },
    /// A replicated batch says two things at once: its kafka payload's base
    /// offset or leader epoch is not its header's.
    #[error("inconsistent replicated batch: {reason}")]
    InvalidBatch { reason: BatchError },
    /// The batch's base sequence is not the one after its producer's last
    /// batch (`expected`; 0 for a new epoch), nor a retry of one of its last
    /// [`PRODUCER_BATCHES_MAX`] batches. Kafka's
    /// `OUT_OF_ORDER_SEQUENCE_NUMBER`.
    #[error("producer {producer_id}: base sequence {got} is out of order, {expected} expected")]
    OutOfOrderSequence {
        producer_id: i64,
        expected: i32,
        got: i32,
    },
    /// A marker older than its producer, or a transaction past the open
    /// ones a partition tracks.
    #[error(transparent)]
    Transaction(#[from] TransactionError),
    /// [`Log::append_to_transaction`] without a guard: the batch's
    /// producer has no transaction open here (any more).
    #[error("producer {producer_id} has no transaction open on the partition")]
    Unverified { producer_id: i64 },
    /// [`Log::append_to_transaction`] with a guard that no longer holds:
    /// the producer's transaction ended (a marker) since it was verified,
    /// so the batch is a late write. Kafka's `INVALID_TXN_STATE`.
    #[error("producer {producer_id}: the transaction it was verified in has ended")]
    NotInTransaction { producer_id: i64 },
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("offset {offset} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        offset: Offset,
        log_start: Offset,
        log_end: Offset,
    },
    #[error("corrupt batch in {segment} at byte {position}: {reason}")]
    Corruption {
        segment: PathBuf,
        position: u64,
        reason: BatchError,
    },
    #[error("reading {segment}: {source}")]
    Io { segment: PathBuf, source: io::Error },
    #[error("the log is closed")]
    Closed,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{operation} {path}: {source}")]
    Io {
        operation: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("corrupt batch in {segment} at byte {position}: {reason}; nothing was truncated")]
    Corruption {
        segment: PathBuf,
        position: u64,
        reason: BatchError,
    },
    #[error("segment {segment} does not follow its predecessor: {detail}")]
    Inconsistent { segment: PathBuf, detail: String },
    #[error("invalid log config: {0}")]
    InvalidConfig(String),
    /// The intent of a truncation a crash interrupted
    /// ([`TRUNCATION_NAME`]) does not read back. The log is not opened:
    /// the batches it cut would be readable again.
    #[error("unusable truncation intent {path}: {reason}; the log is not opened")]
    Truncation { path: PathBuf, reason: String },
    /// The log start checkpoint ([`CHECKPOINT_NAME`]) does not read back.
    /// The log is not opened: records deleted below the start it held would
    /// be readable again.
    #[error("unusable log start checkpoint {path}: {reason}; the log is not opened")]
    Checkpoint {
        path: PathBuf,
        reason: CheckpointError,
    },
}

/// Why [`Log::delete_records`] did not move the log start. Nothing moved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeleteRecordsError {
    /// `before` is past the high watermark (the visible end). Kafka's
    /// `OFFSET_OUT_OF_RANGE`.
    #[error("offset {before} is out of range [{log_start}, {high_watermark}]")]
    OffsetOutOfRange {
        before: Offset,
        log_start: Offset,
        high_watermark: Offset,
    },
    /// The disk is full: the checkpoint could not be written. Retry once
    /// space is freed. Kafka's `KAFKA_STORAGE_ERROR`.
    #[error("disk full: {message}")]
    DiskFull { message: String },
    /// The log takes no more appends, nor moves of its start: an earlier
    /// failure, or writing the checkpoint failed (and fenced it). Kafka's
    /// `KAFKA_STORAGE_ERROR`.
    #[error(transparent)]
    Fenced(#[from] LogFailure),
    #[error("the log is closed")]
    Closed,
}

/// Why [`Log::truncate_to`] or [`Log::truncate_fully_and_start_at`] did
/// not truncate. When the error comes before the cut began, nothing changed;
/// a failure during the cut fences the log ([`TruncateError::Fenced`]), and
/// the next open completes the truncation.
#[derive(Debug, thiserror::Error)]
pub enum TruncateError {
    /// The log cannot first write what is queued: the disk is full.
    #[error("disk full: {message}")]
    DiskFull { message: String },
    #[error(transparent)]
    Fenced(#[from] LogFailure),
    #[error("the log is closed")]
    Closed,
    /// Finding the batch that contains the offset failed; nothing changed.
    #[error("finding the batch at {offset}: {source}")]
    Read { offset: Offset, source: ReadError },
}

/// Where an appended batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub base_offset: Offset,
    pub last_offset: Offset,
    /// The batch is a retry of one its producer appended before (same
    /// producer id, epoch, first and last sequence, among its last
    /// [`PRODUCER_BATCHES_MAX`] batches): nothing was stored, and the offsets
    /// are those of the original. Like any append, it returns once the
    /// original is durable (under the `always` policy), and fails if the
    /// original does. The offsets may be below the log start if retention
    /// or [`Log::delete_records`] deleted the original since. Kafka answers
    /// such a produce with no error and the original base offset.
    pub duplicate: bool,
}

/// The state of one log, shared by the handle and the flusher. One per
/// partition, on the partition's owner shard.
pub(crate) struct State {
    dir: PathBuf,
    config: LogConfig,
    clock: Rc<dyn Clock>,
    faults: Option<Rc<IoFaults>>,
    segments: BTreeMap<Offset, Segment>,
    /// The first offset that can be read: at or past the first segment's
    /// base, at most the durable end. Never goes back.
    log_start: Offset,
    /// The log start the checkpoint file holds (0 without one); it is
    /// rewritten only to move past this.
    log_start_checkpoint: Offset,
    /// The next offset to assign.
    end: Offset,
    /// Everything below is in the segment files.
    written_end: Offset,
    /// Everything below is written and fdatasync'ed.
    durable_end: Offset,
    /// Batches assigned but not yet written, in offset order.
    pending: VecDeque<Pending>,
    pending_bytes: usize,
    /// Appends written but waiting for an fdatasync: (end offset, completion).
    unsynced: VecDeque<(Offset, Rc<Completion>)>,
    /// Recent batches in offset order: every pending one and a bounded tail
    /// of written ones.
    cache: VecDeque<Batch>,
    cache_bytes: usize,
    /// The active segment file's partial last page (`written_bytes % PAGE`).
    tail: Vec<u8>,
    failure: Option<LogFailure>,
    /// Set while acknowledged (interval policy) batches cannot be written
    /// for lack of space; appends are refused until a write goes through.
    disk_full: Option<String>,
    leader_epoch: u32,
    /// The first offset of each leader epoch of the log.
    epochs: LeaderEpochs,
    /// A truncation is under way: appends wait for it, the flusher syncs
    /// at once, a close waits.
    truncating: bool,
    /// A cleaned segment is being swapped in (see `cleaner_swap`):
    /// retention waits for the next pass, truncations and a close wait.
    swapping: bool,
    /// The cleaner's checkpoint, read at its first pass.
    cleaner_checkpoint: Option<cleaner_checkpoint::CleanerCheckpoint>,
    /// The idempotent producers, as of everything appended (pending batches
    /// included; each pending batch keeps how to undo its change).
    producers: Producers,
    /// The transactions open on the partition and those aborted, as of
    /// everything appended (pending batches included, as for producers).
    transactions: Transactions,
    /// The transactional appends waiting on their coordinator's answer.
    verifications: verification::Verifications,
    /// The next append starts a new segment.
    roll_requested: bool,
    closing: bool,
    last_sync_ms: i64,
    flusher_rung: bool,
    flusher_waker: Option<Waker>,
    /// Set while the partition is replicated: readers see no further
    /// (the high watermark its leader computed), whatever is stored.
    high_watermark: Option<Offset>,
    /// Called each time the written end moves (a replicated partition's
    /// leader then pushes what was written).
    on_written: Option<Rc<dyn Fn()>>,
    /// Tasks waiting for the visible end to move or for queue space.
    waiters: Vec<Waker>,
    /// The next segment's file, being filled or ready.
    spare: Option<spare::Spare>,
    /// The active segment whose spare could not be started: not tried again
    /// until the next segment.
    spare_refused_for: Option<Offset>,
    slow_io: slow_io::SlowIo,
}

impl State {
    /// The end below which readers see batches: what is durable under the
    /// `always` policy, everything appended under `interval`, and only what
    /// is durable once the log is fenced.
    fn visible_end(&self) -> Offset {
        match self.high_watermark {
            Some(high_watermark) => high_watermark.min(self.stored_end()),
            None => self.stored_end(),
        }
    }

    /// The last stable offset under the visible end: where a
    /// `read_committed` reader stops.
    fn stable_end(&self) -> Offset {
        self.transactions.last_stable_offset(self.visible_end())
    }

    /// The end of what a leader may push to its followers: what is written
    /// to the segment files, synced or not, under `always` (never a batch
    /// still queued, which a full disk would undo and whose offsets would
    /// be given again); everything appended under `interval`; only what is
    /// durable once the log is fenced.
    fn replicable_end(&self) -> Offset {
        match (self.config.flush, &self.failure) {
            (_, Some(_)) => self.durable_end,
            (FlushPolicy::Always, None) => self.written_end,
            (FlushPolicy::Interval(_), None) => self.end,
        }
    }

    /// The end of what the durability policy counts as stored: the
    /// durable end under `always` (and once the log is fenced), everything
    /// appended under `interval`. What a replica acknowledges.
    fn stored_end(&self) -> Offset {
        match (self.config.flush, &self.failure) {
            (FlushPolicy::Always, _) | (_, Some(_)) => self.durable_end,
            (FlushPolicy::Interval(_), None) => self.end,
        }
    }

    fn wake_waiters(&mut self) {
        for waker in self.waiters.drain(..) {
            waker.wake();
        }
    }

    fn ring_flusher(&mut self) {
        self.flusher_rung = true;
        if let Some(waker) = self.flusher_waker.take() {
            waker.wake();
        }
    }

    fn active(&self) -> Option<&Segment> {
        self.segments.values().next_back()
    }

    fn size_bytes(&self) -> u64 {
        self.segments.values().map(|segment| segment.bytes).sum()
    }
}

pub(crate) type Shared = Rc<RefCell<State>>;

/// The log of one partition. See the module documentation.
pub struct Log {
    state: Shared,
    flusher: RefCell<Option<glommio::Task<()>>>,
}

impl Log {
    /// Opens (or creates) the log in `dir`, recovering it: see
    /// [`recovery`](self) for what is checked and repaired.
    pub async fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Log, OpenError> {
        Log::open_with(dir, config, LogOptions::default()).await
    }

    pub async fn open_with(
        dir: impl AsRef<Path>,
        config: LogConfig,
        options: LogOptions,
    ) -> Result<Log, OpenError> {
        validate_config(&config)?;
        let state = recovery::recover(dir.as_ref(), config, options).await?;
        let state = Rc::new(RefCell::new(state));
        let flusher = glommio::spawn_local(flusher::run_flusher(state.clone()));
        Ok(Log {
            state,
            flusher: RefCell::new(Some(flusher)),
        })
    }

    /// Appends a validated batch: assigns its offsets, stores it and, under
    /// the `always` policy, returns once it is durable. Cancel-safe: a dropped
    /// append is still written (it was assigned its offsets).
    ///
    /// A batch with a producer id and a base sequence (an idempotent
    /// producer's) is checked first, in the order appends are called: a
    /// retry is answered with the original's offsets and
    /// [`Appended::duplicate`] set, without storing anything; errors
    /// [`AppendError::OutOfOrderSequence`] and
    /// [`AppendError::ProducerFenced`] refuse it. A producer's appends must
    /// therefore be called in the order it sent them (they may be in flight
    /// together). The check is not redone once a batch is queued: a batch
    /// that then fails (a full disk) is forgotten by the producer state too,
    /// so its retry is appended.
    pub async fn append(&self, batch: Batch) -> Result<Appended, AppendError> {
        appender::append(&self.state, batch, None).await
    }

    /// [`Log::append`] of a producer's batch that must join a transaction
    /// its coordinator knows (KIP-890; see the `verification` module). A
    /// transactional batch is appended if its producer has a transaction
    /// open here at its epoch, or with `guard` (from
    /// [`Log::transaction_guard`]) if that still holds; otherwise it is
    /// refused [`AppendError::Unverified`] (no guard) or
    /// [`AppendError::NotInTransaction`] (the transaction ended since the
    /// guard was given). Duplicates and fenced epochs are answered first,
    /// as by `append`. Other batches are appended as by `append`.
    pub async fn append_to_transaction(
        &self,
        batch: Batch,
        guard: Option<u64>,
    ) -> Result<Appended, AppendError> {
        appender::append(&self.state, batch, Some(guard)).await
    }

    pub fn dir(&self) -> PathBuf {
        self.state.borrow().dir.clone()
    }

    pub fn config(&self) -> LogConfig {
        self.state.borrow().config.clone()
    }

    /// Changes the config. Takes effect for the next append and the next
    /// retention pass; segment size applies from the next roll.
    pub fn set_config(&self, config: LogConfig) -> Result<(), OpenError> {
        validate_config(&config)?;
        self.state.borrow_mut().config = config;
        Ok(())
    }

    /// The leader epoch stamped on batches appended from now on. Appends
    /// are refused ([`AppendError::StaleLeaderEpoch`]) while it is below the
    /// log's last epoch. A log opens with its last epoch, and a replicated
    /// append raises it to the batch's.
    pub fn set_leader_epoch(&self, epoch: u32) {
        self.state.borrow_mut().leader_epoch = epoch;
    }

    /// A follower's append: stores `batch` as its leader assigned it, base
    /// offset, leader epoch and bytes unchanged (a kafka or a native
    /// payload alike), and returns as [`Log::append`] does (once durable
    /// under the `always` policy; cancel-safe once it returned `Pending`
    /// after queueing). The batch must have been validated.
    ///
    /// Refused, with nothing stored, when its base offset is not the log
    /// end ([`AppendError::NotContiguous`]), when its leader epoch is below
    /// the log's last ([`AppendError::StaleLeaderEpoch`]), when a kafka
    /// payload's base offset or epoch disagrees with the header
    /// ([`AppendError::InvalidBatch`]), and for the reasons any append is
    /// (closed, fenced, disk full).
    ///
    /// The batch of an idempotent producer is recorded in the producer
    /// state as the leader's append recorded it, so that this log answers
    /// retries as its leader did should it lead, but never checked: the
    /// leader decided, so a follower neither answers "duplicate" nor
    /// refuses a sequence.
    pub async fn append_replicated(&self, batch: Batch) -> Result<Appended, AppendError> {
        appender::append_replicated(&self.state, batch, false).await
    }

    /// [`Log::append_replicated`] of a batch at or past the log end: the
    /// leader's log is compacted, and the offsets between the log end and
    /// the batch are gone there (its push said they are: it starts at this
    /// log's end). The log then ends where the batch does, with the gap.
    pub async fn append_replicated_after_gap(&self, batch: Batch) -> Result<Appended, AppendError> {
        appender::append_replicated(&self.state, batch, true).await
    }

    /// Removes every batch at or past `offset`, and the whole batch that
    /// contains it (Kafka's `truncateTo`), and returns the new log end (at
    /// most `offset`). An `offset` at or past the end changes nothing. An
    /// `offset` below the log start empties the log, which then starts at
    /// `offset` ([`Log::truncate_fully_and_start_at`]); so does a batch
    /// containing `offset` that starts below the log start, the log then
    /// starting at its start.
    ///
    /// Waits for the appends queued to be durable, and holds new appends
    /// until it is done. On return the cut is durable: no batch removed
    /// comes back after a crash, and a crash during it leaves the old log
    /// or the truncated one (an intent file completes it on open). The
    /// indexes, the tail cache, the producer state (rebuilt as of the new
    /// end, from the producer snapshots below it and the log) and the
    /// leader epochs (entries at or past the new end removed) follow.
    pub async fn truncate_to(&self, offset: Offset) -> Result<Offset, TruncateError> {
        replica::truncate_to(&self.state, offset).await
    }

    /// Empties the log and starts it at `start`, before or after where it
    /// was (Kafka's `truncateFullyAndStartAt`): a follower whose leader no
    /// longer has its history starts again where the leader's log starts.
    /// Every segment, producer snapshot and leader epoch goes; the log start
    /// checkpoint says `start`. Durable and crash-safe as
    /// [`Log::truncate_to`] is. Returns the new end, `start`.
    pub async fn truncate_fully_and_start_at(
        &self,
        start: Offset,
    ) -> Result<Offset, TruncateError> {
        replica::truncate_fully(&self.state, start).await
    }

    /// The first offset of each leader epoch of the log's batches, both
    /// rising (what Kafka's `leader-epoch-checkpoint` holds): the entry of
    /// the epoch of the batch at the log start starts at the log start.
    /// Includes appends not yet durable.
    pub fn leader_epochs(&self) -> Vec<(u32, Offset)> {
        self.state.borrow().epochs.entries().to_vec()
    }

    /// The leader epoch of the log's last batch (kept when the log start
    /// reaches the end), `None` for a log that never had one.
    pub fn last_epoch(&self) -> Option<u32> {
        self.state.borrow().epochs.last_epoch()
    }

    /// The largest timestamp of the records in the segments at or past the
    /// log start (of appended batches, durable or not); `None` when empty.
    /// With [`Log::offset_for_timestamp`], it finds the first record with
    /// the largest timestamp (Kafka's ListOffsets `MAX_TIMESTAMP`).
    pub fn max_timestamp(&self) -> Option<i64> {
        let state = self.state.borrow();
        state
            .segments
            .values()
            .filter(|segment| segment.next_offset > state.log_start)
            .filter_map(|segment| segment.max_timestamp)
            .max()
    }

    /// The first offset that can be read.
    pub fn start_offset(&self) -> Offset {
        self.state.borrow().log_start
    }

    /// The next offset to be assigned (the log end offset).
    pub fn end_offset(&self) -> Offset {
        self.state.borrow().end
    }

    /// The offset below which readers see batches.
    pub fn visible_end(&self) -> Offset {
        self.state.borrow().visible_end()
    }

    /// The end of what the durability policy counts as stored (the
    /// durable end under `always`): what a replica of a replicated
    /// partition acknowledges. The visible end is at most this.
    pub fn stored_end(&self) -> Offset {
        self.state.borrow().stored_end()
    }

    /// How far [`Log::read_replicable`] reads: under `always`, what is
    /// written, synced or not, so that a leader's followers write while it
    /// syncs.
    pub fn replicable_end(&self) -> Offset {
        self.state.borrow().replicable_end()
    }

    /// Calls `hook` each time written batches reach the segment files
    /// (`None`: no more).
    pub fn on_written(&self, hook: Option<Rc<dyn Fn()>>) {
        self.state.borrow_mut().on_written = hook;
    }

    /// Caps what readers see ([`Log::visible_end`], [`Log::read`], the
    /// waits for data, DeleteRecords) at `high_watermark`, the replicated
    /// partition's high watermark, or lifts the cap (`None`: a partition
    /// of one replica). Waiters are woken when it moves.
    pub fn set_high_watermark(&self, high_watermark: Option<Offset>) {
        let mut state = self.state.borrow_mut();
        if state.high_watermark != high_watermark {
            state.high_watermark = high_watermark;
            let visible_end = state.visible_end();
            state.transactions.replicated_to(visible_end);
            state.wake_waiters();
        }
    }

    /// The cap [`Log::set_high_watermark`] set, if any.
    pub fn high_watermark(&self) -> Option<Offset> {
        self.state.borrow().high_watermark
    }

    /// The offset below which everything is fdatasync'ed.
    pub fn durable_end(&self) -> Offset {
        self.state.borrow().durable_end
    }

    /// Bytes stored, over all segments.
    pub fn size_bytes(&self) -> u64 {
        self.state.borrow().size_bytes()
    }

    pub fn segment_count(&self) -> usize {
        self.state.borrow().segments.len()
    }

    /// The base offsets of the segments, oldest first.
    pub fn segment_bases(&self) -> Vec<Offset> {
        self.state.borrow().segments.keys().copied().collect()
    }

    /// What the log remembers of the idempotent producer `producer_id`: its
    /// epoch and its last batches, or `None` if it does not know it (never
    /// seen, or forgotten past [`PRODUCERS_MAX`]). Includes appends queued
    /// but not yet durable.
    pub fn producer(&self, producer_id: i64) -> Option<ProducerState> {
        self.state.borrow().producers.get(producer_id)
    }

    /// Every idempotent producer the log remembers (at most
    /// [`PRODUCERS_MAX`]), in producer id order, with what it remembers
    /// of each: Kafka's DescribeProducers. Includes appends queued but not
    /// yet durable.
    pub fn producers(&self) -> Vec<(i64, ProducerState)> {
        self.state.borrow().producers.all()
    }

    /// The last stable offset under `high_watermark`: where a
    /// `read_committed` reader stops, the first offset of the oldest
    /// transaction still open on the partition, or ended by a marker at or
    /// past `high_watermark` (a marker not replicated yet).
    pub fn last_stable_offset(&self, high_watermark: Offset) -> Offset {
        self.state
            .borrow()
            .transactions
            .last_stable_offset(high_watermark)
    }

    /// The aborted transactions with records in `[from, to)`, in the order
    /// of their markers: what a `read_committed` fetch of those offsets
    /// reports, so that its reader drops their records.
    pub fn aborted_transactions(&self, from: Offset, to: Offset) -> Vec<AbortedTransaction> {
        self.state.borrow().transactions.aborted(from, to)
    }

    /// The last stable offset under the visible end (the high watermark
    /// of a replicated partition): where a `read_committed` reader stops,
    /// what [`Log::read_stable`] reads to.
    pub fn stable_end(&self) -> Offset {
        self.state.borrow().stable_end()
    }

    /// Where a transactional append of producer `producer_id` at `epoch`
    /// stands: `None` if the producer has a transaction open here at that
    /// epoch (its batches join it), or the guard to append with once its
    /// coordinator said the partition is in its ongoing transaction (see
    /// [`Log::append_to_transaction`]).
    pub fn transaction_guard(&self, producer_id: i64, epoch: i16) -> Option<u64> {
        let mut state = self.state.borrow_mut();
        if state.transactions.open_epoch(producer_id) == Some(epoch) {
            return None;
        }
        Some(state.verifications.guard(producer_id))
    }

    /// The transactions open on the partition: producer id, epoch and
    /// first offset, oldest first (Kafka's DescribeProducers).
    pub fn open_transactions(&self) -> Vec<(i64, i16, Offset)> {
        self.state.borrow().transactions.open().collect()
    }

    /// How many idempotent producers the log remembers.
    pub fn producer_count(&self) -> usize {
        self.state.borrow().producers.len()
    }

    /// Why the log takes no more appends, if it does not.
    pub fn failure(&self) -> Option<LogFailure> {
        self.state.borrow().failure.clone()
    }

    /// Whole batches from the one containing `offset`, up to `max_bytes`
    /// (the first batch is returned whatever its size, so a reader always
    /// moves on). Empty at the visible end.
    pub async fn read(&self, offset: Offset, max_bytes: usize) -> Result<Vec<Batch>, ReadError> {
        reader::read(&self.state, offset, max_bytes, State::visible_end).await
    }

    /// [`Log::read`] up to the [`Log::stable_end`] rather than the visible
    /// end: what a `read_committed` reader is given. No batch of a
    /// transaction still open, nor any after it, is returned (the stable
    /// end is a batch boundary: the first offset of a transaction's first
    /// batch, or the visible end); an offset between the stable and the
    /// visible end reads nothing.
    pub async fn read_stable(
        &self,
        offset: Offset,
        max_bytes: usize,
    ) -> Result<Vec<Batch>, ReadError> {
        reader::read(&self.state, offset, max_bytes, State::stable_end).await
    }

    /// [`Log::read`] up to the replicable end rather than the visible
    /// end: a replicated partition's leader reads what it pushes to its
    /// followers past the high watermark.
    pub async fn read_replicable(
        &self,
        offset: Offset,
        max_bytes: usize,
    ) -> Result<Vec<Batch>, ReadError> {
        reader::read(&self.state, offset, max_bytes, State::replicable_end).await
    }

    /// The offset of the first record at or past the log start whose
    /// timestamp is at or after `timestamp`, or `None` if there is none.
    pub async fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<Offset>, ReadError> {
        reader::offset_for_timestamp(&self.state, timestamp).await
    }

    /// Resolves once the visible end is past `offset` (data to read there),
    /// or the log is closing. For long polls: woken by the append itself.
    pub async fn wait_for_data(&self, offset: Offset) {
        reader::wait_for_data(&self.state, offset, State::visible_end).await
    }

    /// [`Log::wait_for_data`] for a `read_committed` reader: resolves once
    /// the stable end is past `offset`, or the log is closing. The stable
    /// end moves with a marker, which is appended at the log end: past
    /// the visible end, so the visible end moves after it, and that wakes
    /// the waiters (an undone append and a truncation wake them too).
    pub async fn wait_for_stable_data(&self, offset: Offset) {
        reader::wait_for_data(&self.state, offset, State::stable_end).await
    }

    /// Starts a new segment at the next append.
    pub fn roll(&self) {
        appender::request_roll(&self.state);
    }

    /// Moves the log start to `before` (Kafka's DeleteRecords) and returns
    /// the log start (the low watermark) after it.
    ///
    /// Records below the start are no longer readable: reads there fail with
    /// [`ReadError::OffsetOutOfRange`], [`Log::offset_for_timestamp`] finds
    /// nothing below it. The new start is durable (a checkpoint file written
    /// and synced) before this returns `Ok`, and survives a close and a
    /// crash. The segments wholly below it are deleted; the one containing
    /// it stays, its records below the start unreadable (a read at the
    /// start returns the whole batch containing it, as Kafka does). A
    /// `before` at the end leaves the log empty, and appends go on at the
    /// same offsets.
    ///
    /// A `before` at or below the start changes nothing and returns the
    /// start. Under the `interval` policy, waits until the log is durable up
    /// to `before` (at most one flush interval). Errors:
    /// [`DeleteRecordsError::OffsetOutOfRange`] for a `before` past the high
    /// watermark ([`Log::visible_end`]);
    /// [`DeleteRecordsError::DiskFull`], [`DeleteRecordsError::Fenced`] when
    /// the checkpoint cannot be written (a failure other than a full disk
    /// fences the log); [`DeleteRecordsError::Closed`].
    pub async fn delete_records(&self, before: Offset) -> Result<Offset, DeleteRecordsError> {
        log_start::delete_records(&self.state, before).await
    }

    /// Deletes sealed segments past `retention.ms`, beyond
    /// `retention.bytes`, or wholly below the log start; the active segment
    /// is never deleted.
    pub async fn apply_retention(&self) -> io::Result<RetentionOutcome> {
        retention::apply(&self.state).await
    }

    /// Runs one pass of the cleaner if the log is compacted and due (its
    /// dirty ratio reached `min.cleanable.dirty.ratio`, or
    /// `max.compaction.lag.ms` passed): keeps the latest record of each
    /// key in the sealed segments below the visible and durable ends, and
    /// removes tombstones `delete.retention.ms` after they were first
    /// cleaned. Appends and reads go on meanwhile: the cleaning runs on a
    /// thread of its own, and each cleaned segment is swapped in crash-safely
    /// (the `cleaner` and `cleaner_swap` modules say how).
    pub async fn compact(&self) -> Result<CompactionOutcome, CompactError> {
        cleaner::compact(&self.state).await
    }

    /// Reads every batch of every segment and checks its CRC: a full scan,
    /// as an operator's check.
    pub async fn verify(&self) -> Result<u64, ReadError> {
        reader::verify(&self.state).await
    }

    /// Stops taking appends, writes and syncs everything queued, persists the
    /// indexes and stops the flusher. Returns the failure if the log was
    /// fenced.
    /// Later appends fail with [`AppendError::Closed`] and reads with
    /// [`ReadError::Closed`]; the segment files are closed.
    pub async fn close(&self) -> Result<(), LogFailure> {
        // A truncation under way finishes first: it holds files open and
        // moves the log's ends.
        std::future::poll_fn(|cx| {
            let mut state = self.state.borrow_mut();
            if state.truncating || state.swapping {
                state.waiters.push(cx.waker().clone());
                return std::task::Poll::Pending;
            }
            std::task::Poll::Ready(())
        })
        .await;
        {
            let mut state = self.state.borrow_mut();
            state.closing = true;
            state.ring_flusher();
            state.wake_waiters();
        }
        let flusher = self.flusher.borrow_mut().take();
        if let Some(flusher) = flusher {
            flusher.await;
        }
        let failure = self.state.borrow().failure.clone();
        match failure {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }
}

fn validate_config(config: &LogConfig) -> Result<(), OpenError> {
    if config.segment_bytes_max < PAGE_BYTES as u64 || config.segment_bytes_max > SEGMENT_BYTES_CAP
    {
        return Err(OpenError::InvalidConfig(format!(
            "segment.bytes {} must be within [{PAGE_BYTES}, {SEGMENT_BYTES_CAP}]",
            config.segment_bytes_max
        )));
    }
    if config.index_interval_bytes == 0 {
        return Err(OpenError::InvalidConfig(
            "index.interval.bytes must be positive".into(),
        ));
    }
    if let FlushPolicy::Interval(interval) = config.flush {
        if interval.is_zero() {
            return Err(OpenError::InvalidConfig(
                "a flush interval of 0 ms is the always policy; say always".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod cleaner_tests;
#[cfg(test)]
mod tests;
