//! Why a group request failed ([`GroupError`]), and its codes on the Kafka
//! and the native wire.

use sluice_net::native::ErrorCode;

/// Why a group request failed, in Kafka's terms (the native protocol maps
/// them to its own).
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
}

impl GroupError {
    pub fn kafka_code(self) -> i16 {
        match self {
            GroupError::UnknownMemberId => 25,
            GroupError::IllegalGeneration => 22,
            GroupError::RebalanceInProgress => 27,
            GroupError::InconsistentGroupProtocol => 23,
            GroupError::MemberIdRequired => 79,
            GroupError::InvalidSessionTimeout => 26,
            GroupError::NonEmptyGroup => 68,
            GroupError::GroupIdNotFound => 69,
            GroupError::InvalidGroupId => 24,
            GroupError::UnknownTopicOrPartition => 3,
            GroupError::CoordinatorNotAvailable => 15,
            GroupError::FencedInstanceId => 82,
            GroupError::GroupSubscribedToTopic => 86,
            GroupError::OffsetMetadataTooLarge => 12,
            GroupError::InvalidCommitOffset => 28,
            GroupError::StorageError => 56,
            GroupError::StaleMemberEpoch => 113,
            GroupError::UnsupportedAssignor => 112,
            GroupError::UnreleasedInstanceId => 111,
            GroupError::FencedMemberEpoch => 110,
            GroupError::GroupMaxSizeReached => 81,
            GroupError::InvalidRequest => 42,
        }
    }

    pub fn native_code(self) -> ErrorCode {
        match self {
            GroupError::UnknownTopicOrPartition => ErrorCode::NoSuchPartition,
            GroupError::StorageError => ErrorCode::StorageFailed,
            GroupError::CoordinatorNotAvailable => ErrorCode::ShuttingDown,
            GroupError::GroupIdNotFound => ErrorCode::UnknownGroup,
            GroupError::NonEmptyGroup => ErrorCode::GroupNotEmpty,
            _ => ErrorCode::InvalidRequest,
        }
    }
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
        };
        f.write_str(text)
    }
}
