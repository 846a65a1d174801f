//! The quorum's typed errors.

use super::NodeId;

/// Why the quorum refused a call or a message. A refused message changes
/// nothing in this node's state.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum QuorumError {
    /// Only the leader takes proposals; `leader` is the one this node knows of.
    #[error("not the controller leader (leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    /// An empty payload is refused: empty entries are the leader's no-ops.
    #[error("empty proposal")]
    EmptyProposal,
    /// The payload is larger than [`super::PROPOSAL_BYTES_MAX`].
    #[error("proposal of {bytes} bytes over the limit of {max} bytes")]
    ProposalTooLarge { bytes: usize, max: usize },
    /// raft-rs dropped the proposal (leadership transfer, uncommitted limit).
    #[error("proposal dropped by the leader")]
    ProposalDropped,
    /// The bytes are not a quorum message.
    #[error("malformed quorum message: {reason}")]
    Malformed { reason: &'static str },
    /// The message is for another cluster.
    #[error("message for cluster {got}, this is cluster {expected}")]
    OtherCluster { expected: u64, got: u64 },
    /// The sender is not a voter, or claims another node's id.
    #[error("message from unknown sender {from} (transport says {peer})")]
    UnknownSender { from: u64, peer: NodeId },
    /// The message is addressed to another node.
    #[error("message for node {to}, this is node {this}")]
    NotForThisNode { to: u64, this: NodeId },
    /// A message type that never crosses the wire (a local one).
    #[error("message type {msg_type} is local and never crosses the wire")]
    LocalMessage { msg_type: i32 },
    /// The message comes from a disk the sender has since lost (a delayed
    /// message of its previous life): what it acknowledged is gone.
    #[error("message from node {from}'s retired disk {disk}")]
    RetiredDisk { from: NodeId, disk: u64 },
    /// The message is from a term older than ours. Its state is ignored;
    /// raft may still answer a stale leader so that it steps down.
    #[error("stale message of term {term}, current term {current}")]
    StaleTerm { term: u64, current: u64 },
    /// This node lost its disk (empty log, no snapshot) and has not been
    /// caught up: it grants no vote (see [`super::Quorum::step`]).
    #[error("vote refused: this node has not caught up since it started empty")]
    VoteRefusedNotCaughtUp,
    /// The voters list is unusable.
    #[error("invalid voters: {reason}")]
    InvalidVoters { reason: &'static str },
    /// The configuration is refused by raft-rs or ours.
    #[error("invalid quorum configuration: {reason}")]
    InvalidConfig { reason: String },
    /// A snapshot was asked for at an index already covered.
    #[error("nothing to snapshot: applied {applied}, latest snapshot {snapshot}")]
    NothingToSnapshot { applied: u64, snapshot: u64 },
    /// The storage failed; the quorum cannot go on (a broken environment).
    #[error("quorum storage: {0}")]
    Storage(#[from] raft::StorageError),
    /// raft-rs returned an error not listed above.
    #[error("raft: {0}")]
    Raft(String),
}
