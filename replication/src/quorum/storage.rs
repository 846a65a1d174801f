//! The quorum's log, hard state and snapshot: the [`QuorumStorage`] seam and
//! its in-memory implementation.
//!
//! raft-rs reads its log through [`raft::Storage`]; the writes are ours. A
//! [`QuorumStorage`] adds the five persistence calls raft's outputs need
//! (append, set the hard state, install a received snapshot, store our own
//! snapshot, compact). [`MemoryStorage`] keeps all of it in memory: the
//! simulation uses it both as a node's working view and as its "disk", and
//! an engine can keep it as the working view of a file it writes the same
//! calls to.

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, StorageError};

use super::NodeId;

/// The index and term of the bootstrap snapshot every voter of a newly
/// formed cluster starts from. Index 1 is never in any log, so a voter that
/// lost its disk (log empty, no snapshot) can only be caught up by a
/// snapshot, and "empty" unambiguously means "lost or never had a disk".
pub const BOOTSTRAP_INDEX: u64 = 1;
/// The term of the bootstrap snapshot (see [`BOOTSTRAP_INDEX`]).
pub const BOOTSTRAP_TERM: u64 = 1;

/// What the quorum persists, behind a seam.
///
/// Contract for every implementation (in memory, or a file the engine
/// writes): after a call returns, [`raft::Storage`]'s reads reflect it. For
/// a durable implementation, the change must be durable before the caller
/// sends the messages of the same [`Outputs`](super::Outputs)
/// ([`QuorumStorage::sync`] is the point where it must be).
pub trait QuorumStorage: raft::Storage {
    /// Appends `entries` (consecutive indexes). An entry at an index the log
    /// already holds replaces it and truncates everything after it (a
    /// conflict resolved by the leader). `entries[0].index` is at most
    /// `last_index + 1` and above the snapshot index.
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError>;
    /// Records the term, vote and commit index.
    fn set_hard_state(&mut self, hard_state: HardState) -> Result<(), StorageError>;
    /// Installs a snapshot received from the leader: the whole log is
    /// replaced by it (entries dropped, commit index raised to it).
    fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<(), StorageError>;
    /// Stores a snapshot of our own state machine at an applied index that
    /// the log holds, then drops the entries up to that index.
    fn store_snapshot_and_compact(&mut self, snapshot: Snapshot) -> Result<(), StorageError>;
    /// Makes every change so far durable. Default: nothing to do (memory).
    fn sync(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
    /// True from the creation of an empty storage (a lost disk) until the
    /// quorum records that a leader caught it up: while true, the node
    /// grants no vote. Persisted, so a restart mid-catch-up still refuses.
    fn catching_up(&self) -> bool;
    /// Records that a leader caught this node up.
    fn set_caught_up(&mut self) -> Result<(), StorageError>;
    /// The latest snapshot (the bootstrap one, ours or the leader's).
    fn latest_snapshot(&self) -> Snapshot;
    /// The hard state last recorded.
    fn hard_state(&self) -> HardState;
}

/// A whole quorum log in memory. Clone is a full copy (the simulation's
/// crash model copies a node's "disk").
#[derive(Clone, Debug, Default)]
pub struct MemoryStorage {
    hard_state: HardState,
    /// The latest snapshot: its metadata's index and term are those of the
    /// entry just before `entries[0]`.
    snapshot: Snapshot,
    /// `entries[i].index == snapshot index + 1 + i`.
    entries: Vec<Entry>,
    catching_up: bool,
}

impl MemoryStorage {
    /// An empty storage: a node that lost its disk, or a node joining. It
    /// holds no configuration; it learns it from the leader's snapshot.
    pub fn new() -> Self {
        Self {
            catching_up: true,
            ..Self::default()
        }
    }

    /// The storage of a voter of a newly formed cluster: a snapshot at
    /// [`BOOTSTRAP_INDEX`] naming the voters, with an empty state machine.
    /// Every voter of the cluster must be bootstrapped with the same list,
    /// once, when the cluster is formed (never after a disk loss: that
    /// node must start [`MemoryStorage::new`] and catch up).
    pub fn bootstrap(voters: &[NodeId]) -> Self {
        Self::bootstrap_with_state(voters, Vec::new())
    }

    /// [`MemoryStorage::bootstrap`] with `state` as the bootstrap
    /// snapshot's state machine: a single node that brings the state it
    /// had before it formed its quorum. Every voter of a cluster must be
    /// bootstrapped with the same state.
    pub fn bootstrap_with_state(voters: &[NodeId], state: Vec<u8>) -> Self {
        let conf_state = ConfState {
            voters: voters.iter().map(|v| v.raft_id()).collect(),
            ..Default::default()
        };
        let mut metadata = SnapshotMetadata::default();
        metadata.set_conf_state(conf_state);
        metadata.index = BOOTSTRAP_INDEX;
        metadata.term = BOOTSTRAP_TERM;
        let mut snapshot = Snapshot {
            data: state.into(),
            ..Default::default()
        };
        snapshot.set_metadata(metadata);
        let hard_state = HardState {
            term: BOOTSTRAP_TERM,
            vote: 0,
            commit: BOOTSTRAP_INDEX,
            ..Default::default()
        };
        Self {
            hard_state,
            snapshot,
            entries: Vec::new(),
            catching_up: false,
        }
    }

    fn snapshot_index(&self) -> u64 {
        self.snapshot.get_metadata().index
    }

    fn snapshot_term(&self) -> u64 {
        self.snapshot.get_metadata().term
    }

    fn first(&self) -> u64 {
        self.snapshot_index() + 1
    }

    fn last(&self) -> u64 {
        self.snapshot_index() + self.entries.len() as u64
    }

    /// The entries held (after the snapshot), for tests and inspection.
    pub fn entries_held(&self) -> &[Entry] {
        &self.entries
    }
}

impl raft::Storage for MemoryStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState {
            hard_state: self.hard_state.clone(),
            conf_state: self.snapshot.get_metadata().get_conf_state().clone(),
        })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last() + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let start = (low - self.first()) as usize;
        let end = (high - self.first()) as usize;
        let mut out: Vec<Entry> = self.entries[start..end].to_vec();
        raft::util::limit_size(&mut out, max_size.into());
        Ok(out)
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        if index == self.snapshot_index() {
            return Ok(self.snapshot_term());
        }
        if index < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if index > self.last() {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        Ok(self.entries[(index - self.first()) as usize].term)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        if self.snapshot_index() < request_index {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        Ok(self.snapshot.clone())
    }
}

impl QuorumStorage for MemoryStorage {
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        let Some(head) = entries.first() else {
            return Ok(());
        };
        assert!(
            head.index >= self.first(),
            "append at {} overwrites the snapshot at {}",
            head.index,
            self.snapshot_index()
        );
        assert!(
            head.index <= self.last() + 1,
            "append at {} leaves a gap after {}",
            head.index,
            self.last()
        );
        for pair in entries.windows(2) {
            assert_eq!(pair[1].index, pair[0].index + 1, "entries not consecutive");
        }
        self.entries.truncate((head.index - self.first()) as usize);
        self.entries.extend_from_slice(entries);
        Ok(())
    }

    fn set_hard_state(&mut self, hard_state: HardState) -> Result<(), StorageError> {
        self.hard_state = hard_state;
        Ok(())
    }

    fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<(), StorageError> {
        let metadata = snapshot.get_metadata();
        if metadata.index < self.snapshot_index() {
            return Err(StorageError::SnapshotOutOfDate);
        }
        self.hard_state.term = self.hard_state.term.max(metadata.term);
        self.hard_state.commit = metadata.index;
        self.entries.clear();
        self.snapshot = snapshot;
        Ok(())
    }

    fn store_snapshot_and_compact(&mut self, snapshot: Snapshot) -> Result<(), StorageError> {
        let index = snapshot.get_metadata().index;
        if index <= self.snapshot_index() {
            return Err(StorageError::SnapshotOutOfDate);
        }
        assert!(
            index <= self.last(),
            "snapshot at {index} past the log's end {}",
            self.last()
        );
        let term = self.entries[(index - self.first()) as usize].term;
        assert_eq!(term, snapshot.get_metadata().term, "snapshot term mismatch");
        self.entries.drain(..(index + 1 - self.first()) as usize);
        self.snapshot = snapshot;
        Ok(())
    }

    fn catching_up(&self) -> bool {
        self.catching_up
    }

    fn set_caught_up(&mut self) -> Result<(), StorageError> {
        self.catching_up = false;
        Ok(())
    }

    fn latest_snapshot(&self) -> Snapshot {
        self.snapshot.clone()
    }

    fn hard_state(&self) -> HardState {
        self.hard_state.clone()
    }
}
