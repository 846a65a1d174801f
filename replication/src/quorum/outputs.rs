//! What one [`Quorum::ready`](super::Quorum::ready) asks of its caller.

use bytes::Bytes;
use raft::eraftpb::{Entry, HardState, Snapshot};

use super::NodeId;

/// The work a caller must do, in this order, then call
/// [`Quorum::advance`](super::Quorum::advance):
///
/// 1. **Persist** [`Outputs::persist`] durably (the quorum has already
///    handed it to its [`QuorumStorage`](super::QuorumStorage), so a storage
///    that writes through only needs [`QuorumStorage::sync`](super::QuorumStorage::sync)).
///    This must be done **before any message is sent**: a vote or an
///    acknowledgement of entries promises they survive a crash.
/// 2. **Send** [`Outputs::messages`] to their nodes (any order, any may be lost).
/// 3. **Apply** [`Outputs::committed`] in order, then **install**
///    [`Outputs::snapshot`] if there is one (it supersedes all state before
///    its index; the committed entries listed are all below it).
#[derive(Debug, Default)]
pub struct Outputs {
    pub persist: Persist,
    pub messages: Vec<Outbound>,
    pub committed: Vec<Committed>,
    pub snapshot: Option<SnapshotToInstall>,
}

impl Outputs {
    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.persist.is_empty()
            && self.messages.is_empty()
            && self.committed.is_empty()
            && self.snapshot.is_none()
    }
}

/// The changes to make durable, applied in this order: the snapshot
/// (replaces the log), then the entries (truncating any conflicting
/// suffix), then the hard state.
#[derive(Debug, Default)]
pub struct Persist {
    pub snapshot: Option<Snapshot>,
    pub entries: Vec<Entry>,
    pub hard_state: Option<HardState>,
    /// True when a leader has just caught this node up after it started
    /// empty ([`QuorumStorage::set_caught_up`](super::QuorumStorage::set_caught_up)).
    pub caught_up: bool,
    /// True when the change must reach the disk before the messages go out
    /// (a new term or vote, new entries, a snapshot). False for a commit
    /// index alone, which a crash may lose without harm.
    pub must_sync: bool,
}

impl Persist {
    /// True when there is nothing to persist.
    pub fn is_empty(&self) -> bool {
        self.snapshot.is_none()
            && self.entries.is_empty()
            && self.hard_state.is_none()
            && !self.caught_up
    }
}

/// A message for another node, already encoded for the wire.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub to: NodeId,
    pub bytes: Vec<u8>,
}

/// A committed record: a proposal's payload at its place in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub index: u64,
    pub term: u64,
    pub payload: Bytes,
}

/// A snapshot of the state machine to install in place of the current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotToInstall {
    pub index: u64,
    pub term: u64,
    pub state: Bytes,
}
