//! The engine's own failures: what went wrong with a request's part, in the
//! engine's terms. The protocol adapters turn a [`Failure`] into their wire's
//! code (`native::error_code`, `kafka::error_code`); nothing below them
//! knows either protocol's codes.

/// What kind of failure: each maps to one code per protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    UnknownTopic,
    NoSuchPartition,
    OffsetOutOfRange,
    CorruptBatch,
    /// A record the partition does not take: one without a key in a
    /// compacted topic (Kafka's `INVALID_RECORD`).
    InvalidRecord,
    TooLarge,
    InvalidConfig,
    TopicExists,
    InvalidRequest,
    DiskFull,
    StorageFailed,
    /// The broker, or the shard that owns the partition, is stopping.
    ShuttingDown,
    InvalidTopicName,
    InvalidPartitionCount,
    InvalidPartitions,
    /// A bug or a limit the broker cannot serve past (ids used up).
    Internal,
    ProducerFenced,
    OutOfOrderSequence,
    UnknownGroup,
    GroupNotEmpty,
    /// The partition is led by another node (or by none right now).
    NotLeader,
    /// No controller leader took the change in time (an election, a
    /// quorum without a majority): try again.
    NotController,
    /// Partitions assigned to nodes that cannot hold them.
    InvalidReplicaAssignment,
    /// A replication factor the cluster cannot give.
    InvalidReplicationFactor,
    /// The request names a leader epoch older than the partition's: the
    /// client's metadata is stale.
    FencedLeaderEpoch,
    /// The request names a leader epoch newer than this node knows: this
    /// node's metadata is behind the client's.
    UnknownLeaderEpoch,
    /// Fewer replicas are in sync than `min.insync.replicas`: an `acks=all`
    /// write is refused.
    NotEnoughReplicas,
    /// The in-sync replicas did not all hold the write within the
    /// request's timeout: it may still be committed.
    TimedOut,
    /// A batch's timestamps are outside what its topic accepts.
    InvalidTimestamp,
    /// A transactional write that its transaction coordinator does not
    /// know as part of an ongoing transaction (KIP-890): a late write of a
    /// transaction that ended, or one never added to it.
    InvalidTxnState,
    /// A transaction marker from a coordinator that a newer one has
    /// replaced.
    CoordinatorFenced,
}

impl ErrorKind {
    /// Every kind, for the adapters' tests that each has a code.
    #[cfg(test)]
    pub const ALL: [ErrorKind; 31] = [
        ErrorKind::UnknownTopic,
        ErrorKind::NoSuchPartition,
        ErrorKind::OffsetOutOfRange,
        ErrorKind::CorruptBatch,
        ErrorKind::InvalidRecord,
        ErrorKind::TooLarge,
        ErrorKind::InvalidConfig,
        ErrorKind::TopicExists,
        ErrorKind::InvalidRequest,
        ErrorKind::DiskFull,
        ErrorKind::StorageFailed,
        ErrorKind::ShuttingDown,
        ErrorKind::InvalidTopicName,
        ErrorKind::InvalidPartitionCount,
        ErrorKind::InvalidPartitions,
        ErrorKind::Internal,
        ErrorKind::ProducerFenced,
        ErrorKind::OutOfOrderSequence,
        ErrorKind::UnknownGroup,
        ErrorKind::GroupNotEmpty,
        ErrorKind::NotLeader,
        ErrorKind::NotController,
        ErrorKind::InvalidReplicaAssignment,
        ErrorKind::InvalidReplicationFactor,
        ErrorKind::FencedLeaderEpoch,
        ErrorKind::UnknownLeaderEpoch,
        ErrorKind::NotEnoughReplicas,
        ErrorKind::TimedOut,
        ErrorKind::InvalidTimestamp,
        ErrorKind::InvalidTxnState,
        ErrorKind::CoordinatorFenced,
    ];
}

/// A failure to put in a response: its kind and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: ErrorKind,
    pub message: String,
}

impl Failure {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}
