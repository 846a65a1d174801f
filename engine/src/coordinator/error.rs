//! Why a group request failed ([`GroupError`]). The protocol adapters give
//! each its wire's code.

/// Why a group request failed, in Kafka's terms (the Kafka adapter gives
/// each Kafka's code; the native adapter maps them to its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupError {
    UnknownMemberId,
    IllegalGeneration,
    RebalanceInProgress,
    InconsistentGroupProtocol,
    MemberIdRequired,
    InvalidSessionTimeout,
    NonEmptyGroup,
    GroupIdNotFound,
    InvalidGroupId,
    UnknownTopicOrPartition,
    CoordinatorNotAvailable,
    /// Another node coordinates the group: find it again.
    NotCoordinator,
    /// This node coordinates the group from now on and is reading its
    /// groups back from the log: ask again shortly.
    CoordinatorLoadInProgress,
    FencedInstanceId,
    GroupSubscribedToTopic,
    OffsetMetadataTooLarge,
    InvalidCommitOffset,
    StorageError,
    StaleMemberEpoch,
    UnsupportedAssignor,
    UnreleasedInstanceId,
    FencedMemberEpoch,
    GroupMaxSizeReached,
    InvalidRequest,
    /// A transaction has an offset of the partition pending, and the client
    /// asked for stable offsets only: ask again once it ended.
    UnstableOffsetCommit,
    /// A transaction's producer at an older epoch than one of its
    /// transactions with offsets pending here: a zombie.
    InvalidProducerEpoch,
    /// The transaction's coordinator does not know the group's offsets
    /// partition as part of the producer's ongoing transaction, or the
    /// transaction ended before the offsets were stored (KIP-890).
    InvalidTxnState,
    /// The producer's previous transaction is still being completed: try
    /// again.
    ConcurrentTransactions,
}

impl std::fmt::Display for GroupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            GroupError::UnknownMemberId => "unknown member id",
            GroupError::IllegalGeneration => "illegal generation",
            GroupError::RebalanceInProgress => "rebalance in progress",
            GroupError::InconsistentGroupProtocol => "inconsistent group protocol",
            GroupError::MemberIdRequired => "member id required",
            GroupError::InvalidSessionTimeout => "invalid session timeout",
            GroupError::NonEmptyGroup => "the group has members",
            GroupError::GroupIdNotFound => "no such group",
            GroupError::InvalidGroupId => "invalid group id",
            GroupError::UnknownTopicOrPartition => "unknown topic or partition",
            GroupError::CoordinatorNotAvailable => "coordinator not available",
            GroupError::NotCoordinator => "another node coordinates the group",
            GroupError::CoordinatorLoadInProgress => "the coordinator is loading its groups",
            GroupError::FencedInstanceId => "fenced instance id",
            GroupError::GroupSubscribedToTopic => "the group is subscribed to the topic",
            GroupError::OffsetMetadataTooLarge => "offset metadata too large",
            GroupError::InvalidCommitOffset => "invalid offset",
            GroupError::StorageError => "the offsets could not be stored",
            GroupError::StaleMemberEpoch => "stale member epoch",
            GroupError::UnsupportedAssignor => "unsupported assignor",
            GroupError::UnreleasedInstanceId => "unreleased instance id",
            GroupError::FencedMemberEpoch => "fenced member epoch",
            GroupError::GroupMaxSizeReached => "the group is full",
            GroupError::InvalidRequest => "invalid request",
            GroupError::UnstableOffsetCommit => "a transaction has an offset pending",
            GroupError::InvalidProducerEpoch => {
                "the producer's epoch is older than its transaction's"
            }
            GroupError::InvalidTxnState => "the group is not in the producer's ongoing transaction",
            GroupError::ConcurrentTransactions => "the producer's previous transaction is ending",
        };
        f.write_str(text)
    }
}
