//! What the coordinator asks of the engine, and what it answers.

use super::record::TxnRecord;
use super::state::{Outcome, Producer, TopicPartition};
use super::TxnError;

/// The caller's id of a request that may be answered later; answers name
/// it.
pub type RequestId = u64;
/// The coordinator's id of a record it asked to append; the engine names
/// it when the append is durable or has failed.
pub type AppendId = u64;
/// The leader epoch of the `__transaction_state` partition when this node
/// took it over; every marker carries it, so that a partition refuses the
/// markers of a deposed coordinator.
pub type CoordinatorEpoch = i32;

/// This coordinator's id of one decided transaction, carried by its
/// markers and named by the answers to them: the classic protocol keeps a
/// producer's epoch from one transaction to the next, so a late answer to
/// an earlier transaction's marker (a duplicate, a resend) would otherwise
/// be taken for the current one's.
pub type DecisionId = u64;

/// One thing for the engine to do, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Append `record` to this coordinator's partition of
    /// `__transaction_state` with `acks=all`, then call
    /// [`TxnCoordinator::log_appended`](super::TxnCoordinator::log_appended)
    /// once it is durable, or
    /// [`TxnCoordinator::log_failed`](super::TxnCoordinator::log_failed)
    /// if it will never be.
    Append { append: AppendId, record: TxnRecord },
    /// Answer request `request`.
    Respond {
        request: RequestId,
        result: Result<Reply, TxnError>,
    },
    /// Write these transaction markers (WriteTxnMarkers to each
    /// partition's leader), then report with
    /// [`TxnCoordinator::markers_written`](super::TxnCoordinator::markers_written).
    /// All are for one transaction: same producer, same outcome.
    SendMarkers {
        transactional_id: String,
        markers: Vec<Marker>,
    },
}

/// A successful answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// InitProducerId: the producer id and epoch to use.
    ProducerId(Producer),
    /// AddPartitionsToTxn or AddOffsetsToTxn: every partition is in.
    Added,
    /// EndTxn: the end is durable (markers follow); the producer id and
    /// epoch to use next (with transaction version 2, bumped).
    Ended(Producer),
    /// The admin's abort is durable (markers follow).
    Aborted,
}

/// One partition's transaction marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// The transaction the marker ends, for the answer.
    pub decision: DecisionId,
    pub topic_partition: TopicPartition,
    /// The producer id and epoch the marker is written with: those of the
    /// PrepareCommit/PrepareAbort record.
    pub producer: Producer,
    pub outcome: Outcome,
    pub coordinator_epoch: CoordinatorEpoch,
}

/// How a partition's leader took a marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerResult {
    /// Written.
    Written,
    /// The partition no longer exists (its topic was deleted): nothing to
    /// mark; dropped, as Kafka does.
    PartitionGone,
    /// A permanent refusal (the partition's format or version does not
    /// take markers): dropped, as Kafka does.
    Unsupported,
    /// A transient failure (no leader, not enough replicas, timeout, lost
    /// request): sent again.
    Retriable,
    /// The partition has seen a newer coordinator epoch: this coordinator
    /// has been replaced and stops sending; the engine should unload it.
    CoordinatorFenced,
}
