//! The error codes of the native protocol: every failure a request can meet
//! is one of these, in the response, beside a message for people.

/// An error code in a native response. `None` is success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ErrorCode {
    None = 0,
    UnknownTopic = 1,
    NoSuchPartition = 2,
    OffsetOutOfRange = 3,
    CorruptBatch = 4,
    TooLarge = 5,
    InvalidConfig = 6,
    TopicExists = 7,
    UnknownApi = 8,
    UnsupportedVersion = 9,
    InvalidRequest = 10,
    DiskFull = 11,
    StorageFailed = 12,
    Timeout = 13,
    ShuttingDown = 14,
    TooManyRequests = 15,
    InvalidTopicName = 16,
    InvalidPartitionCount = 17,
    Internal = 18,
    /// A newer instance of the idempotent producer took over its id.
    ProducerFenced = 19,
    /// An idempotent producer's batch does not follow its last one.
    OutOfOrderSequence = 20,
    /// A partition count that is not more than the topic has.
    InvalidPartitions = 21,
    /// No such consumer group.
    UnknownGroup = 22,
    /// The consumer group has members: it cannot be deleted or reset.
    GroupNotEmpty = 23,
    /// The partition is led by another node of the cluster: refresh the
    /// metadata and ask its leader.
    NotLeader = 24,
    /// No controller leader took the change in time: try again.
    NotController = 25,
    /// Partitions assigned to nodes that cannot hold them.
    InvalidReplicaAssignment = 26,
    /// A replication factor the cluster cannot give.
    InvalidReplicationFactor = 27,
    /// Fewer replicas are in sync than the topic's `min.insync.replicas`:
    /// a write that asks every in-sync replica to hold it is refused.
    NotEnoughReplicas = 28,
    /// The election asked for is not needed: the preferred replica leads
    /// already, or (unclean) the partition has a leader.
    ElectionNotNeeded = 29,
    /// The preferred replica is not alive and in sync: it cannot lead.
    PreferredLeaderNotAvailable = 30,
    /// No replica the election allows is alive to lead.
    EligibleLeadersNotAvailable = 31,
    /// A cancellation of a partition's move when none is in progress.
    NoReassignmentInProgress = 32,
    /// A batch's timestamps are outside the topic's
    /// `message.timestamp.before.max.ms` / `after.max.ms`.
    InvalidTimestamp = 33,
    /// A record the partition does not take: one without a key in a
    /// compacted topic.
    InvalidRecord = 34,
    /// This node does not coordinate the transactional id (any more): ask
    /// which node does (FindTxnCoordinator) and ask it.
    NotCoordinator = 35,
    /// The transactional id's coordinator cannot answer now: it is being
    /// loaded, or its partition of `__transaction_state` has no leader.
    CoordinatorNotAvailable = 36,
    /// No transactional id of that name is known to its coordinator.
    UnknownTransactionalId = 37,
    /// The request does not fit the transaction's state: an abort when no
    /// transaction is ongoing, or when none is open on the partition.
    InvalidTxnState = 38,
    /// Another change of the transactional id is in progress (its
    /// transaction is ending): try again.
    ConcurrentTransactions = 39,
    /// A transaction marker from a coordinator that a newer coordinator of
    /// its transactional ids has replaced.
    CoordinatorFenced = 40,
    /// The broker's ACLs do not allow the request's principal what it
    /// asks (the message says which operation on which resource).
    AuthorizationFailed = 41,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 42] = [
        ErrorCode::None,
        ErrorCode::UnknownTopic,
        ErrorCode::NoSuchPartition,
        ErrorCode::OffsetOutOfRange,
        ErrorCode::CorruptBatch,
        ErrorCode::TooLarge,
        ErrorCode::InvalidConfig,
        ErrorCode::TopicExists,
        ErrorCode::UnknownApi,
        ErrorCode::UnsupportedVersion,
        ErrorCode::InvalidRequest,
        ErrorCode::DiskFull,
        ErrorCode::StorageFailed,
        ErrorCode::Timeout,
        ErrorCode::ShuttingDown,
        ErrorCode::TooManyRequests,
        ErrorCode::InvalidTopicName,
        ErrorCode::InvalidPartitionCount,
        ErrorCode::Internal,
        ErrorCode::ProducerFenced,
        ErrorCode::OutOfOrderSequence,
        ErrorCode::InvalidPartitions,
        ErrorCode::UnknownGroup,
        ErrorCode::GroupNotEmpty,
        ErrorCode::NotLeader,
        ErrorCode::NotController,
        ErrorCode::InvalidReplicaAssignment,
        ErrorCode::InvalidReplicationFactor,
        ErrorCode::NotEnoughReplicas,
        ErrorCode::ElectionNotNeeded,
        ErrorCode::PreferredLeaderNotAvailable,
        ErrorCode::EligibleLeadersNotAvailable,
        ErrorCode::NoReassignmentInProgress,
        ErrorCode::InvalidTimestamp,
        ErrorCode::InvalidRecord,
        ErrorCode::NotCoordinator,
        ErrorCode::CoordinatorNotAvailable,
        ErrorCode::UnknownTransactionalId,
        ErrorCode::InvalidTxnState,
        ErrorCode::ConcurrentTransactions,
        ErrorCode::CoordinatorFenced,
        ErrorCode::AuthorizationFailed,
    ];

    /// An unknown code from a newer broker reads as `Internal`.
    pub fn from_u16(code: u16) -> ErrorCode {
        ErrorCode::ALL
            .get(code as usize)
            .copied()
            .unwrap_or(ErrorCode::Internal)
    }

    pub fn is_ok(self) -> bool {
        self == ErrorCode::None
    }

    /// Whether the same request may succeed later unchanged.
    pub fn is_retriable(self) -> bool {
        matches!(
            self,
            ErrorCode::DiskFull
                | ErrorCode::Timeout
                | ErrorCode::TooManyRequests
                | ErrorCode::NotLeader
                | ErrorCode::NotController
                | ErrorCode::NotEnoughReplicas
                | ErrorCode::NotCoordinator
                | ErrorCode::CoordinatorNotAvailable
                | ErrorCode::ConcurrentTransactions
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::None => "none",
            ErrorCode::UnknownTopic => "unknown topic",
            ErrorCode::NoSuchPartition => "no such partition",
            ErrorCode::OffsetOutOfRange => "offset out of range",
            ErrorCode::CorruptBatch => "corrupt batch",
            ErrorCode::TooLarge => "too large",
            ErrorCode::InvalidConfig => "invalid config",
            ErrorCode::TopicExists => "topic exists",
            ErrorCode::UnknownApi => "unknown api",
            ErrorCode::UnsupportedVersion => "unsupported version",
            ErrorCode::InvalidRequest => "invalid request",
            ErrorCode::DiskFull => "disk full",
            ErrorCode::StorageFailed => "storage failed",
            ErrorCode::Timeout => "timeout",
            ErrorCode::ShuttingDown => "shutting down",
            ErrorCode::TooManyRequests => "too many requests",
            ErrorCode::InvalidTopicName => "invalid topic name",
            ErrorCode::InvalidPartitionCount => "invalid partition count",
            ErrorCode::Internal => "internal error",
            ErrorCode::ProducerFenced => "producer fenced",
            ErrorCode::OutOfOrderSequence => "out of order sequence",
            ErrorCode::InvalidPartitions => "invalid partitions",
            ErrorCode::UnknownGroup => "unknown group",
            ErrorCode::GroupNotEmpty => "group not empty",
            ErrorCode::NotLeader => "not the partition's leader",
            ErrorCode::NotController => "no controller leader",
            ErrorCode::InvalidReplicaAssignment => "invalid replica assignment",
            ErrorCode::InvalidReplicationFactor => "invalid replication factor",
            ErrorCode::NotEnoughReplicas => "not enough replicas",
            ErrorCode::ElectionNotNeeded => "election not needed",
            ErrorCode::PreferredLeaderNotAvailable => "preferred leader not available",
            ErrorCode::EligibleLeadersNotAvailable => "eligible leaders not available",
            ErrorCode::NoReassignmentInProgress => "no reassignment in progress",
            ErrorCode::InvalidTimestamp => "invalid timestamp",
            ErrorCode::InvalidRecord => "invalid record",
            ErrorCode::NotCoordinator => "not the transaction coordinator",
            ErrorCode::CoordinatorNotAvailable => "transaction coordinator not available",
            ErrorCode::UnknownTransactionalId => "unknown transactional id",
            ErrorCode::InvalidTxnState => "invalid transaction state",
            ErrorCode::ConcurrentTransactions => "concurrent transactions",
            ErrorCode::CoordinatorFenced => "coordinator fenced",
            ErrorCode::AuthorizationFailed => "authorization failed",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
