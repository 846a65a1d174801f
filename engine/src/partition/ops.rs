//! The work a partition's owner is asked for ([`PartitionOp`]) and what it
//! answers, in the engine's own types. A leaf: it knows no shard, no
//! protocol.

use std::{cell::RefCell, collections::HashMap, fmt, path::PathBuf, rc::Rc, time::Duration};

use bytes::Bytes;
use futures_channel::oneshot;
use sluice_replication::partition::epochs::EpochCache;
use sluice_storage::{
    log::{AbortedTransaction, Log, LogConfig},
    NodeId, Offset, PartitionId, TopicId,
};

use crate::error::Failure;

/// Identifies a partition across shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartitionKey {
    pub topic: TopicId,
    pub partition: PartitionId,
}

impl PartitionKey {
    /// The key of partition `partition` (its index in its topic) of topic
    /// `topic`.
    pub fn new(topic: TopicId, partition: u32) -> PartitionKey {
        PartitionKey {
            topic,
            partition: PartitionId(partition),
        }
    }
}

impl fmt::Display for PartitionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "partition {} of topic {}", self.partition, self.topic)
    }
}

/// The partitions one shard owns, by key: on that shard only.
pub type Partitions = RefCell<HashMap<PartitionKey, Rc<Log>>>;

/// What a fetch read from one partition.
#[derive(Debug, Clone, Default)]
pub struct FetchOutcome {
    /// Native: one `Bytes` per batch. Kafka: the batches one after another
    /// in one `Bytes` (a partition's `records` as Kafka answers them), or
    /// none.
    pub batches: Vec<Bytes>,
    pub high_watermark: Offset,
    /// Where a `read_committed` reader stops: the first offset of the
    /// oldest transaction open on the partition, or the high watermark.
    /// Answered whatever the isolation, as Kafka's fetch answers it.
    pub last_stable_offset: Offset,
    pub log_start: Offset,
    /// Past the last batch read, returned or skipped (a native reader's
    /// markers and aborted transactions); the offset asked for when none
    /// was read.
    pub read_end: Offset,
    /// A Kafka reader's [`Isolation::Committed`] read: the aborted
    /// transactions with records among the batches, which the reader
    /// drops (empty when no batch was read). `None` otherwise: an
    /// uncommitted read has none to drop, and a native reader's were
    /// dropped by the owner.
    pub aborted: Option<Vec<AbortedTransaction>>,
    /// The leader read nothing and names the replica the reader should
    /// fetch from instead (KIP-392's preferred read replica).
    pub read_from: Option<NodeId>,
}

/// Which replicas may serve a fetch, and what its leader may answer
/// instead of records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ReadFrom {
    /// The leader only (a native fetch; a Kafka fetch before v11).
    #[default]
    Leader,
    /// Any replica in sync with its leader (a Kafka consumer's fetch from
    /// v11, KIP-392). `closer`: the followers in the consumer's rack, one
    /// of which the leader names instead of reading when it is in sync
    /// and holds the offset; empty: the leader reads.
    AnyReplica { closer: Vec<NodeId> },
}

/// A partition's vital figures.
#[derive(Debug, Clone, Default)]
pub struct PartitionStats {
    /// The partition's directory.
    pub dir: std::path::PathBuf,
    pub log_start: Offset,
    /// The end readers see: the high watermark.
    pub log_end: Offset,
    /// Where a `read_committed` reader stops (at most `log_end`).
    pub last_stable_offset: Offset,
    pub size_bytes: u64,
    pub segments: u32,
}

/// Which records a read sees: Kafka's isolation level, which a Kafka
/// fetch and ListOffsets carry. A native read is always
/// [`Isolation::Committed`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Isolation {
    /// Everything below the high watermark, the records of open and
    /// aborted transactions included (Kafka's `READ_UNCOMMITTED`, 0).
    #[default]
    Uncommitted,
    /// Only what is below the last stable offset, where no transaction is
    /// open; the reader drops the aborted transactions' records (Kafka's
    /// `READ_COMMITTED`, 1).
    Committed,
}

impl Isolation {
    /// The isolation of a Kafka request's `isolation_level`: 1 is
    /// `READ_COMMITTED`, anything else `READ_UNCOMMITTED` (0; no client
    /// sends another value).
    pub fn from_kafka(isolation_level: i8) -> Isolation {
        match isolation_level {
            1 => Isolation::Committed,
            _ => Isolation::Uncommitted,
        }
    }
}

/// The protocol a batch came in or goes out in. Batches are stored as they
/// came; a reader in the other protocol gets them converted by the owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    /// A Sluice batch, native payload.
    Native,
    /// A Kafka RecordBatch v2.
    Kafka,
}

/// What a produce waits for before it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// The leader stored it (`acks=1`; `acks=0` too, unanswered).
    Leader,
    /// Every in-sync replica stored it (`acks=all`): the high watermark
    /// passed it.
    All,
}

/// How long an `acks=all` write waits for its in-sync replicas: the
/// request's timeout, or [`PRODUCE_TIMEOUT_DEFAULT`] when it gives none (0
/// or less), at most [`PRODUCE_TIMEOUT_MAX`].
pub fn produce_timeout(timeout_ms: i32) -> Duration {
    match u64::try_from(timeout_ms) {
        Ok(ms) if ms > 0 => Duration::from_millis(ms).min(PRODUCE_TIMEOUT_MAX),
        _ => PRODUCE_TIMEOUT_DEFAULT,
    }
}

/// Kafka producers' default `request.timeout.ms`.
pub const PRODUCE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// No write waits longer, whatever its request says.
pub const PRODUCE_TIMEOUT_MAX: Duration = Duration::from_secs(300);

/// Where a produced batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Produced {
    pub base_offset: Offset,
    pub log_start: Offset,
}

/// Which offset a ListOffsets asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetQuery {
    /// The log start.
    Earliest,
    /// The end of what the reader sees: the high watermark, or for
    /// [`Isolation::Committed`] the last stable offset.
    Latest,
    /// The first record at or after this time (ms since the epoch).
    Timestamp(i64),
    /// The first record with the largest timestamp.
    MaxTimestamp,
}

/// An offset found by ListOffsets, and for one found by time the timestamp
/// of its record (-1 otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    pub offset: Offset,
    pub timestamp: i64,
    /// The leader epoch the offset was written in (of the log's last batch
    /// for its end); `None` when the log has no batch to say.
    pub leader_epoch: Option<u32>,
}

/// The leader epochs of a partition's log (the first offset of each), and
/// the end consumers see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderEpochs {
    pub epochs: EpochCache,
    pub end: Offset,
}

/// A producer a partition's log knows, as Kafka's DescribeProducers
/// tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveProducer {
    pub producer_id: i64,
    pub epoch: i16,
    /// The sequence of its last record here; `None` for a producer known
    /// only by its open transaction (the log forgot the rest past its
    /// cap of producers).
    pub last_sequence: Option<i32>,
    /// The first offset of its transaction open here, if one is.
    pub txn_start: Option<Offset>,
    /// The largest timestamp of its last batch (or marker) here, if the
    /// log still holds it below the high watermark.
    pub last_timestamp: Option<i64>,
}

/// The answer channel of an op: every op answers a result, so that an owner
/// that stopped first answers `ShuttingDown` the same way for all.
pub type Reply<T> = oneshot::Sender<Result<T, Failure>>;

/// Work on one partition, done on its owner shard.
pub enum PartitionOp {
    /// Appends `batches` in order, all or none: every one is checked before
    /// any is appended. Answers where the first landed.
    Produce {
        batches: Vec<Bytes>,
        format: WireFormat,
        /// The leader epoch this node leads the partition in, as the
        /// metadata the request was routed by says: stamped on the batches
        /// (an epoch below the log's last is taken as that one: the
        /// request was routed by older metadata).
        leader_epoch: u32,
        acks: Acks,
        /// How long an `acks=all` write waits for the in-sync replicas.
        timeout: Duration,
        transactions: TxnCheck,
        reply: Reply<Produced>,
    },
    /// Reads whole batches from the one containing `offset`, up to
    /// `max_bytes` (at least one), below the high watermark or, for
    /// [`Isolation::Committed`], the last stable offset. In the native
    /// format, markers are never returned, nor the batches of aborted
    /// transactions of a committed read.
    Fetch {
        offset: Offset,
        max_bytes: usize,
        format: WireFormat,
        isolation: Isolation,
        from: ReadFrom,
        reply: Reply<FetchOutcome>,
    },
    /// Resolves when data is readable at `offset` by a reader of
    /// `isolation`, the timeout passes, or the asker goes away.
    WaitForData {
        offset: Offset,
        isolation: Isolation,
        timeout: Duration,
        reply: Reply<()>,
    },
    /// An offset by `query`. With [`Isolation::Committed`], the latest is
    /// the last stable offset and an offset found by time at or past it is
    /// none (Kafka's rules); otherwise the same with the high watermark.
    ListOffset {
        query: OffsetQuery,
        isolation: Isolation,
        reply: Reply<Option<Listed>>,
    },
    /// The log's leader epochs (KIP-320's OffsetForLeaderEpoch).
    LeaderEpochs {
        reply: Reply<LeaderEpochs>,
    },
    Stats {
        reply: Reply<PartitionStats>,
    },
    /// Where a transactional write of `producer_id` at `epoch` stands
    /// (KIP-890): `None` when the producer has a transaction open on the
    /// partition at that epoch, else the guard its produce carries once
    /// the transaction's coordinator has verified (or added) the
    /// partition ([`TxnCheck::Joining`]). Only the leader answers.
    TransactionGuard {
        producer_id: i64,
        epoch: i16,
        reply: Reply<Option<u64>>,
    },
    /// The producers the log knows, by producer id, with the first offset
    /// of each one's open transaction (DescribeProducers).
    Producers {
        reply: Reply<Vec<ActiveProducer>>,
    },
    /// Moves the log start up to `before` (`None`: the high watermark);
    /// answers the new log start.
    DeleteRecords {
        before: Option<Offset>,
        reply: Reply<Offset>,
    },
    Open {
        dir: PathBuf,
        /// Boxed: the config is large, and ops are passed between shards.
        config: Box<LogConfig>,
        reply: Reply<()>,
    },
    /// Closes the partition's log for good: its topic is being deleted,
    /// and the controller then deletes the topic's directory, with the
    /// partition's in it.
    Remove {
        reply: Reply<()>,
    },
    SetConfig {
        config: Box<LogConfig>,
        reply: Reply<()>,
    },
    /// Appends a transaction marker (a control batch: `producer`'s
    /// transaction here commits or aborts) for the transaction
    /// coordinator, and answers once the in-sync replicas hold it (at most
    /// `timeout`). A marker older than the producer's epoch here is
    /// refused (`ProducerFenced`).
    WriteMarker {
        producer_id: i64,
        producer_epoch: i16,
        marker: sluice_storage::batch::Marker,
        coordinator_epoch: i32,
        /// As [`PartitionOp::Produce`]'s.
        leader_epoch: u32,
        timeout: Duration,
        reply: Reply<()>,
    },
    /// Moves the partition's log to `to` (its directory under another of
    /// the node's log directories): closed, copied, reopened there. Ops
    /// meanwhile are refused `NotLeader`, which clients retry.
    Move {
        to: PathBuf,
        reply: Reply<()>,
    },
}

/// How a produce's batches meet transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnCheck {
    /// Appended as they are: no transactional batch among them (the
    /// native protocol refuses them; a producer without a transactional
    /// id).
    Unchecked,
    /// A transactional producer's (KIP-890): each transactional batch
    /// joins its producer's transaction open on the partition, or needs
    /// `guard` ([`PartitionOp::TransactionGuard`]) to still hold, else it
    /// is a late write, refused `InvalidTxnState`.
    Joining { guard: Option<u64> },
}

impl PartitionOp {
    /// Answers `failure` without doing the op: its partition is not there.
    /// A wait for data ends at once (none will come there).
    pub fn refuse(self, failure: Failure) {
        match self {
            PartitionOp::Produce { reply, .. } => drop(reply.send(Err(failure))),
            PartitionOp::Fetch { reply, .. } => drop(reply.send(Err(failure))),
            PartitionOp::WaitForData { reply, .. } => drop(reply.send(Ok(()))),
            PartitionOp::ListOffset { reply, .. } => drop(reply.send(Err(failure))),
            PartitionOp::LeaderEpochs { reply } => drop(reply.send(Err(failure))),
            PartitionOp::Stats { reply } => drop(reply.send(Err(failure))),
            PartitionOp::Producers { reply } => drop(reply.send(Err(failure))),
            PartitionOp::TransactionGuard { reply, .. } => drop(reply.send(Err(failure))),
            PartitionOp::DeleteRecords { reply, .. } => drop(reply.send(Err(failure))),
            PartitionOp::WriteMarker { reply, .. } => drop(reply.send(Err(failure))),
            PartitionOp::Open { reply, .. }
            | PartitionOp::Remove { reply }
            | PartitionOp::SetConfig { reply, .. }
            | PartitionOp::Move { reply, .. } => drop(reply.send(Err(failure))),
        }
    }
}
