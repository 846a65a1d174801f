//! The partition layer: what both protocols use to reach a partition.
//!
//! A partition lives on one shard, its owner, which alone touches its log.
//! A request arrives on whatever shard holds the connection; its adapter
//! (`native`, `kafka`) decodes it and, for each partition it names:
//!
//! 1. [`route`] finds the partition's owner from the metadata snapshot;
//! 2. [`ask`] sends a [`PartitionOp`] there (run in place when the owner is
//!    this shard), the batch bytes moved as `Bytes`, never copied;
//! 3. [`FanOut`] sends every part of a multi-partition request before it
//!    awaits any answer, and gathers the answers in request order;
//! 4. on the owner, [`owner::run`] does the work on the log;
//! 5. [`read::read_or_wait`] is a fetch's read, and its long poll when there
//!    is too little to read.
//!
//! The layer speaks the engine's own types ([`Failure`], [`OffsetQuery`]);
//! the adapters turn them into their wire's codes and messages.

mod fan_out;
pub(crate) mod owner;
pub(crate) mod read;
mod route;

use std::{cell::RefCell, collections::HashMap, path::PathBuf, rc::Rc, time::Duration};

use bytes::Bytes;
use futures_channel::oneshot;
use sluice_storage::{
    log::{Log, LogConfig},
    TopicId,
};

pub use crate::error::{ErrorKind, Failure};
pub use fan_out::{gather_all, FanOut, Pending};
pub use route::{ask, route, Answer, Route};

/// Identifies a partition across shards: (topic id, partition).
pub type PartitionKey = (TopicId, u32);

/// The partitions one shard owns, by key: on that shard only.
pub type Partitions = RefCell<HashMap<PartitionKey, Rc<Log>>>;

/// What a fetch read from one partition.
#[derive(Debug, Clone, Default)]
pub struct FetchOutcome {
    /// Native: one `Bytes` per batch. Kafka: the batches one after another
    /// in one `Bytes` (a partition's `records` as Kafka answers them), or
    /// none.
    pub batches: Vec<Bytes>,
    pub high_watermark: u64,
    pub log_start: u64,
}

/// A partition's vital figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct PartitionStats {
    pub log_start: u64,
    pub log_end: u64,
    pub size_bytes: u64,
    pub segments: u32,
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

/// Where a produced batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Produced {
    pub base_offset: u64,
    pub log_start: u64,
}

/// Which offset a ListOffsets asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetQuery {
    /// The log start.
    Earliest,
    /// The log end: the next offset to be written.
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
    pub offset: u64,
    pub timestamp: i64,
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
        reply: Reply<Produced>,
    },
    Fetch {
        offset: u64,
        max_bytes: usize,
        format: WireFormat,
        reply: Reply<FetchOutcome>,
    },
    /// Resolves when data is readable at `offset`, the timeout passes, or
    /// the asker goes away.
    WaitForData {
        offset: u64,
        timeout: Duration,
        reply: Reply<()>,
    },
    ListOffset {
        query: OffsetQuery,
        reply: Reply<Option<Listed>>,
    },
    Stats {
        reply: Reply<PartitionStats>,
    },
    /// Moves the log start up to `before` (`None`: the high watermark);
    /// answers the new log start.
    DeleteRecords {
        before: Option<u64>,
        reply: Reply<u64>,
    },
    Open {
        dir: PathBuf,
        config: LogConfig,
        reply: Reply<()>,
    },
    /// Closes the partition's log for good: its topic is being deleted,
    /// and the controller then deletes the topic's directory, with the
    /// partition's in it.
    Remove {
        reply: Reply<()>,
    },
    SetConfig {
        config: LogConfig,
        reply: Reply<()>,
    },
}
