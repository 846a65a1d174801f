//! [`Quorum`]: one controller voter's raft-rs node, with our storage, our
//! wire checks and our outputs.

use bytes::Bytes;
use raft::eraftpb::{EntryType, Message, MessageType, Snapshot};
use raft::{RawNode, StateRole};

use std::collections::HashMap;

use super::codec::{decode_message, encode_message, Envelope};
use super::outputs::{Committed, Outbound, Outputs, SnapshotToInstall};
use super::storage::{QuorumStorage, BOOTSTRAP_INDEX};
use super::QuorumError;

/// A node id as the cluster names it (`--node-id`, 0 allowed). raft-rs
/// reserves id 0, so on the wire and inside raft a node is `id + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u64);

impl NodeId {
    pub(crate) fn raft_id(self) -> u64 {
        self.0 + 1
    }

    fn from_raft(id: u64) -> Option<NodeId> {
        id.checked_sub(1).map(NodeId)
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// 1, 3 or 5 voters in practice; 7 bounds what a configuration may ask.
pub const VOTERS_MAX: usize = 7;
/// A metadata record is small (a topic, a registration); a proposal larger
/// than this is a bug or an abuse, refused before it enters the log.
pub const PROPOSAL_BYTES_MAX: usize = 1 << 20;

/// A voter's role, as raft-rs sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

/// Where a proposal sits in the log: it is committed once an entry with
/// this index *and term* is applied; an entry at this index with another
/// term means the proposal was lost (to be retried).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProposalId {
    pub term: u64,
    pub index: u64,
}

/// Timing and size knobs of a quorum. Ticks are the caller's unit of time
/// (the engine ticks every `tick_ms`).
#[derive(Debug, Clone)]
pub struct QuorumConfig {
    /// Identifies the cluster on the wire; a message for another is refused.
    pub cluster_id: u64,
    /// A follower that hears no leader for this many ticks (randomised up
    /// to twice as many) starts an election.
    pub election_ticks: usize,
    /// The leader's heartbeat period, in ticks; below `election_ticks`.
    pub heartbeat_ticks: usize,
    /// After this many entries applied past the latest snapshot,
    /// [`Quorum::snapshot_due`] asks the caller for a snapshot.
    pub snapshot_interval_entries: u64,
    /// Seeds the election timeout draws, so a simulation replays exactly.
    pub election_seed: u64,
    /// Identifies this node's disk: the same across restarts, a new one
    /// (drawn at random when the data directory is made) after a disk loss.
    /// Messages carry it, so that a delayed message of a lost disk (an
    /// acknowledgement of entries that are gone) is refused. Not 0.
    pub disk_id: u64,
}

impl Default for QuorumConfig {
    fn default() -> Self {
        Self {
            cluster_id: 0,
            election_ticks: 10,
            heartbeat_ticks: 2,
            snapshot_interval_entries: 1024,
            election_seed: 0x5eed,
            disk_id: 1,
        }
    }
}

/// The largest append message raft sends (bytes of entries): enough for a
/// burst of metadata records, small enough to stay one frame.
const APPEND_BYTES_MAX: u64 = 1 << 20;
/// Append messages in flight to one follower before waiting for acks.
const INFLIGHT_APPENDS_MAX: usize = 256;
/// Retired disk ids remembered per peer (a peer loses a disk rarely; a
/// message delayed across more than this many losses is not a concern).
const RETIRED_DISKS_MAX: usize = 16;
/// Bytes of proposals not yet committed the leader accepts before
/// refusing more: bounds memory when a majority is unreachable.
const UNCOMMITTED_BYTES_MAX: u64 = 64 << 20;

/// One controller voter: raft-rs's `RawNode` over a [`QuorumStorage`].
///
/// Sans-IO: no socket, file, clock or task inside. On one shard (shard 0),
/// the caller feeds it [`Quorum::receive`]/[`Quorum::step`], [`Quorum::tick`]
/// and [`Quorum::propose`], and, while [`Quorum::has_ready`], does what
/// [`Quorum::ready`]'s [`Outputs`] asks, then calls [`Quorum::advance`].
///
/// # A voter that lost its disk
///
/// A node whose log is empty (no entry, no snapshot: it was wiped, or never
/// bootstrapped) refuses vote and pre-vote requests until a leader has
/// caught it up, and does not stand for election either (its election
/// clock stops): until it holds the commit index of an append that a
/// leader sent after hearing from its new disk (the message names the
/// disk). Reason: raft's safety rests on a voter remembering its log and
/// its vote. Before the loss, the node may have acknowledged entries that a
/// leader counted to commit them; an empty voter, or one caught up only to
/// an older snapshot, would let a candidate missing those entries win and
/// overwrite them. Messages from the lost disk still in flight are refused
/// ([`QuorumError::RetiredDisk`]), so no acknowledgement of the old disk
/// counts after the leader heard from the new one. Because a formed
/// cluster starts from the snapshot at
/// [`BOOTSTRAP_INDEX`](super::BOOTSTRAP_INDEX), "empty" is never a normal
/// state. While a lost-disk voter catches up, it does not count towards a
/// majority for elections: a quorum of 3 with one wiped voter and one down
/// elects no leader until one of them is back. Limit: a wiped voter also
/// forgot the vote it cast; had it voted in a term above that of the
/// leader that catches it up, it could vote again in that term. Closing
/// that needs a membership change that readmits the node under its new
/// disk (Kafka's KIP-853).
pub struct Quorum<S: QuorumStorage> {
    node_id: NodeId,
    voters: Vec<NodeId>,
    cluster_id: u64,
    snapshot_interval_entries: u64,
    raw: RawNode<S>,
    /// The `Ready` handed out by [`Quorum::ready`], awaiting [`Quorum::advance`].
    in_flight: Option<raft::Ready>,
    /// True while outputs were handed out and not yet advanced.
    outputs_out: bool,
    /// Messages and committed entries raft produced in `advance`, handed
    /// out by the next [`Quorum::ready`].
    pending_messages: Vec<Message>,
    pending_committed: Vec<raft::eraftpb::Entry>,
    pending_hard_state: Option<raft::eraftpb::HardState>,
    disk_id: u64,
    /// Each peer's current disk id and the ones it lost.
    peer_disks: HashMap<NodeId, (u64, Vec<u64>)>,
    /// A leader caught this node up; recorded in storage by the next ready.
    pending_caught_up: bool,
    /// Followers a snapshot was handed out for, reported sent on advance.
    snapshots_sent: Vec<u64>,
    /// The last index handed out to apply (entries or snapshot).
    handed_out_through: u64,
    /// The last index applied (handed out and advanced).
    applied: u64,
    election_rng: u64,
    election_ticks: usize,
}

impl<S: QuorumStorage> Quorum<S> {
    /// Starts a voter over `storage` (bootstrapped, restarted, or empty
    /// after a disk loss). `voters` is the whole quorum and names this node.
    /// A non-empty storage must name the same voters.
    pub fn new(
        node_id: NodeId,
        voters: &[NodeId],
        storage: S,
        config: QuorumConfig,
    ) -> Result<Self, QuorumError> {
        let mut sorted: Vec<NodeId> = voters.to_vec();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != voters.len() {
            return Err(QuorumError::InvalidVoters {
                reason: "a voter is listed twice",
            });
        }
        if sorted.is_empty() || sorted.len() > VOTERS_MAX {
            return Err(QuorumError::InvalidVoters {
                reason: "between 1 and VOTERS_MAX voters",
            });
        }
        if !sorted.contains(&node_id) {
            return Err(QuorumError::InvalidVoters {
                reason: "this node is not a voter",
            });
        }
        if config.disk_id == 0 {
            return Err(QuorumError::InvalidConfig {
                reason: "disk id 0".to_owned(),
            });
        }
        let state = raft::Storage::initial_state(&storage).map_err(raft_error)?;
        let mut stored: Vec<u64> = state.conf_state.voters.clone();
        stored.sort();
        let wanted: Vec<u64> = sorted.iter().map(|v| v.raft_id()).collect();
        if !stored.is_empty() && stored != wanted {
            return Err(QuorumError::InvalidVoters {
                reason: "the storage names other voters",
            });
        }
        let snapshot = storage.latest_snapshot();
        let applied = snapshot.get_metadata().index;
        let raft_config = raft::Config {
            id: node_id.raft_id(),
            election_tick: config.election_ticks,
            heartbeat_tick: config.heartbeat_ticks,
            applied,
            max_size_per_msg: APPEND_BYTES_MAX,
            max_inflight_msgs: INFLIGHT_APPENDS_MAX,
            check_quorum: true,
            pre_vote: true,
            max_uncommitted_size: UNCOMMITTED_BYTES_MAX,
            ..Default::default()
        };
        raft_config
            .validate()
            .map_err(|e| QuorumError::InvalidConfig {
                reason: e.to_string(),
            })?;
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let raw = RawNode::new(&raft_config, storage, &logger).map_err(raft_error)?;
        let mut quorum = Self {
            node_id,
            voters: sorted,
            cluster_id: config.cluster_id,
            snapshot_interval_entries: config.snapshot_interval_entries.max(1),
            raw,
            in_flight: None,
            outputs_out: false,
            pending_messages: Vec::new(),
            pending_committed: Vec::new(),
            pending_hard_state: None,
            snapshots_sent: Vec::new(),
            disk_id: config.disk_id,
            peer_disks: HashMap::new(),
            pending_caught_up: false,
            handed_out_through: applied,
            applied,
            election_rng: config.election_seed
                ^ node_id.raft_id().wrapping_mul(0x9e37_79b9_7f4a_7c15),
            election_ticks: config.election_ticks,
        };
        quorum.draw_election_timeout();
        Ok(quorum)
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The voters, sorted.
    pub fn voters(&self) -> &[NodeId] {
        &self.voters
    }

    /// The leader this node knows of.
    pub fn leader(&self) -> Option<NodeId> {
        match self.raw.raft.leader_id {
            raft::INVALID_ID => None,
            id => NodeId::from_raft(id),
        }
    }

    /// The current term.
    pub fn term(&self) -> u64 {
        self.raw.raft.term
    }

    /// The highest log index known committed.
    pub fn committed_index(&self) -> u64 {
        self.raw.raft.raft_log.committed
    }

    /// On the leader, each voter's log end as the leader knows it: the
    /// highest index it is known to hold (raft's matched index; the
    /// leader's own is its persisted log end), sorted by node. Empty on
    /// any other node, which does not track them.
    pub fn voter_progress(&self) -> Vec<(NodeId, u64)> {
        if self.raw.raft.state != StateRole::Leader {
            return Vec::new();
        }
        let mut progress: Vec<(NodeId, u64)> = self
            .raw
            .raft
            .prs()
            .iter()
            .filter_map(|(id, progress)| Some((NodeId::from_raft(*id)?, progress.matched)))
            .filter(|(node, _)| self.voters.contains(node))
            .collect();
        progress.sort();
        progress
    }

    /// The highest index the caller has applied (advanced past).
    pub fn applied_index(&self) -> u64 {
        self.applied
    }

    /// This node's role.
    pub fn role(&self) -> Role {
        match self.raw.raft.state {
            StateRole::Follower => Role::Follower,
            StateRole::PreCandidate => Role::PreCandidate,
            StateRole::Candidate => Role::Candidate,
            StateRole::Leader => Role::Leader,
        }
    }

    /// The storage (for inspection, and for the caller to restore its state
    /// machine from [`QuorumStorage::latest_snapshot`] at startup: committed
    /// entries after that snapshot are handed out again by [`Quorum::ready`]).
    pub fn storage(&self) -> &S {
        self.raw.store()
    }

    /// True when the log is empty (a lost disk not yet caught up).
    pub fn is_empty(&self) -> bool {
        self.raw.raft.raft_log.last_index() == 0
    }

    /// True while this node started from a lost disk and no leader has
    /// caught it up yet: it grants no vote.
    pub fn catching_up(&self) -> bool {
        self.is_empty() || (self.raw.store().catching_up() && !self.pending_caught_up)
    }

    /// Starts an election now rather than after an election timeout: a
    /// quorum of one voter elects itself at once at start. Does nothing
    /// while this node is catching up or already leads.
    pub fn campaign(&mut self) -> Result<(), QuorumError> {
        assert!(!self.outputs_out, "campaign between ready and advance");
        if self.catching_up() || self.raw.raft.state == StateRole::Leader {
            return Ok(());
        }
        self.raw.campaign().map_err(raft_error)
    }

    /// Proposes `payload` as a record of the metadata log. Only the leader
    /// accepts; the record is committed once applied at the returned place.
    pub fn propose(&mut self, payload: Vec<u8>) -> Result<ProposalId, QuorumError> {
        assert!(!self.outputs_out, "propose between ready and advance");
        if payload.is_empty() {
            return Err(QuorumError::EmptyProposal);
        }
        if payload.len() > PROPOSAL_BYTES_MAX {
            return Err(QuorumError::ProposalTooLarge {
                bytes: payload.len(),
                max: PROPOSAL_BYTES_MAX,
            });
        }
        if self.raw.raft.state != StateRole::Leader {
            return Err(QuorumError::NotLeader {
                leader: self.leader(),
            });
        }
        let before = self.raw.raft.raft_log.last_index();
        match self.raw.propose(Vec::new(), payload) {
            Ok(()) => {}
            Err(raft::Error::ProposalDropped) => return Err(QuorumError::ProposalDropped),
            Err(e) => return Err(raft_error(e)),
        }
        let index = self.raw.raft.raft_log.last_index();
        assert_eq!(index, before + 1, "a proposal appends one entry");
        Ok(ProposalId {
            term: self.raw.raft.term,
            index,
        })
    }

    /// Advances time by one tick.
    pub fn tick(&mut self) {
        assert!(!self.outputs_out, "tick between ready and advance");
        if self.catching_up() {
            // Nor does it stand for election (see the type's doc): its
            // election clock does not run.
            self.raw.raft.election_elapsed = 0;
        }
        self.raw.tick();
        self.draw_election_timeout();
    }

    /// Decodes `bytes` received from `peer` and steps it (see
    /// [`Quorum::step`]). Garbage or another cluster's message is refused.
    /// A message from a disk `peer` has since lost is refused
    /// ([`QuorumError::RetiredDisk`]).
    pub fn receive(&mut self, peer: NodeId, bytes: &[u8]) -> Result<(), QuorumError> {
        let (envelope, message) = decode_message(bytes)?;
        if envelope.cluster_id != self.cluster_id {
            return Err(QuorumError::OtherCluster {
                expected: self.cluster_id,
                got: envelope.cluster_id,
            });
        }
        self.check_sender(peer, &message)?;
        if envelope.from_disk == 0 {
            return Err(QuorumError::Malformed {
                reason: "disk id 0",
            });
        }
        let (current, retired) = self.peer_disks.entry(peer).or_insert((0, Vec::new()));
        if retired.contains(&envelope.from_disk) {
            return Err(QuorumError::RetiredDisk {
                from: peer,
                disk: envelope.from_disk,
            });
        }
        // A message of a past term never says a peer changed its disk: it
        // may be a delayed one, or a forged one, and must change nothing.
        let stale = message.term != 0 && message.term < self.raw.raft.term;
        if stale && *current != 0 && *current != envelope.from_disk {
            return Err(QuorumError::StaleTerm {
                term: message.term,
                current: self.raw.raft.term,
            });
        }
        if *current != envelope.from_disk {
            if *current != 0 {
                if retired.len() == RETIRED_DISKS_MAX {
                    retired.remove(0);
                }
                retired.push(*current);
            }
            *current = envelope.from_disk;
        }
        let catch_up_target = (self.raw.store().catching_up()
            && !self.pending_caught_up
            && envelope.to_disk == self.disk_id
            && message.get_msg_type() == MessageType::MsgAppend)
            .then_some(message.commit);
        self.step(peer, message)?;
        if let Some(target) = catch_up_target {
            if !self.is_empty() && self.raw.raft.raft_log.committed >= target {
                self.pending_caught_up = true;
            }
        }
        Ok(())
    }

    fn check_sender(&self, peer: NodeId, message: &Message) -> Result<(), QuorumError> {
        let from = NodeId::from_raft(message.from);
        if from != Some(peer) || !self.voters.contains(&peer) || peer == self.node_id {
            return Err(QuorumError::UnknownSender {
                from: message.from,
                peer,
            });
        }
        if message.to != self.node_id.raft_id() {
            return Err(QuorumError::NotForThisNode {
                to: message.to,
                this: self.node_id,
            });
        }
        Ok(())
    }

    /// Steps a message that `peer` sent. Refused, changing nothing: a
    /// sender that is not a voter or is not `peer`, a message for another
    /// node, a local message type, a vote request while this node is empty
    /// ([`QuorumError::VoteRefusedNotCaughtUp`]). A message of an older term
    /// is reported as [`QuorumError::StaleTerm`]; raft ignores it apart from
    /// telling a stale leader the current term (so it steps down). Only
    /// [`Quorum::receive`] knows disk ids, so only it ends a catch-up.
    pub fn step(&mut self, peer: NodeId, message: Message) -> Result<(), QuorumError> {
        assert!(!self.outputs_out, "step between ready and advance");
        self.check_sender(peer, &message)?;
        let msg_type = message.get_msg_type();
        if matches!(
            msg_type,
            MessageType::MsgHup
                | MessageType::MsgBeat
                | MessageType::MsgUnreachable
                | MessageType::MsgSnapStatus
                | MessageType::MsgCheckQuorum
                | MessageType::MsgPropose
                | MessageType::MsgReadIndex
        ) {
            return Err(QuorumError::LocalMessage {
                msg_type: msg_type as i32,
            });
        }
        let vote = matches!(
            msg_type,
            MessageType::MsgRequestVote | MessageType::MsgRequestPreVote
        );
        if vote && self.catching_up() {
            return Err(QuorumError::VoteRefusedNotCaughtUp);
        }
        // A leader sends a follower heartbeats committing up to what it
        // believes the follower holds; a follower that lost its disk holds
        // less, and raft-rs panics on a commit past its log. Commit can
        // only rise to what this node holds.
        let mut message = message;
        let mut ask_snapshot = None;
        if msg_type == MessageType::MsgHeartbeat {
            if message.commit > self.raw.raft.raft_log.last_index() {
                ask_snapshot = Some(message.commit);
            }
            message.commit = message.commit.min(self.raw.raft.raft_log.last_index());
        }
        let current = self.raw.raft.term;
        let stale = message.term != 0 && message.term < current;
        let term = message.term;
        match self.raw.step(message) {
            Ok(()) | Err(raft::Error::StepPeerNotFound) => {}
            Err(e) => return Err(raft_error(e)),
        }
        self.draw_election_timeout();
        if let (Some(believed), false) = (ask_snapshot, stale) {
            // A leader sends a follower it believes up to date only
            // heartbeats, never an append this node could reject; after a
            // disk loss it believes in entries (up to `believed`) that are
            // gone. Tell it: ask for a snapshot while empty, else for the
            // entries after our log's end.
            let mut reject = Message::default();
            reject.set_msg_type(MessageType::MsgAppendResponse);
            reject.from = self.node_id.raft_id();
            reject.to = peer.raft_id();
            reject.term = self.raw.raft.term;
            reject.reject = true;
            reject.index = believed;
            reject.reject_hint = self.raw.raft.raft_log.last_index();
            if self.is_empty() {
                reject.request_snapshot = BOOTSTRAP_INDEX;
            }
            self.pending_messages.push(reject);
        }
        if stale {
            return Err(QuorumError::StaleTerm { term, current });
        }
        Ok(())
    }

    /// True when [`Quorum::ready`] has work for the caller.
    pub fn has_ready(&self) -> bool {
        self.raw.has_ready()
            || !self.pending_messages.is_empty()
            || !self.pending_committed.is_empty()
            || self.pending_hard_state.is_some()
            || self.pending_caught_up
    }

    /// Collects the work for the caller (see [`Outputs`] for the order it
    /// must be done in) and hands the changes to persist to the storage.
    /// [`Quorum::advance`] must follow before any other call.
    pub fn ready(&mut self) -> Result<Outputs, QuorumError> {
        assert!(!self.outputs_out, "ready twice without advance");
        self.outputs_out = true;
        let mut out = Outputs::default();
        let mut messages = std::mem::take(&mut self.pending_messages);
        let mut committed = std::mem::take(&mut self.pending_committed);
        out.persist.hard_state = self.pending_hard_state.take();
        if std::mem::take(&mut self.pending_caught_up) {
            self.raw.mut_store().set_caught_up()?;
            out.persist.caught_up = true;
        }
        if self.raw.has_ready() {
            let mut rd = self.raw.ready();
            let store = self.raw.mut_store();
            if !rd.snapshot().is_empty() {
                let snapshot = rd.snapshot().clone();
                store.install_snapshot(snapshot.clone())?;
                let metadata = snapshot.get_metadata();
                out.snapshot = Some(SnapshotToInstall {
                    index: metadata.index,
                    term: metadata.term,
                    state: snapshot.data.clone(),
                });
                out.persist.snapshot = Some(snapshot);
            }
            let entries = rd.take_entries();
            store.append(&entries)?;
            out.persist.entries = entries;
            if let Some(hard_state) = rd.hs() {
                store.set_hard_state(hard_state.clone())?;
                out.persist.hard_state = Some(hard_state.clone());
            } else if let Some(hard_state) = &out.persist.hard_state {
                store.set_hard_state(hard_state.clone())?;
            }
            out.persist.must_sync = rd.must_sync();
            messages.extend(rd.take_messages());
            messages.extend(rd.take_persisted_messages());
            committed.extend(rd.take_committed_entries());
            self.in_flight = Some(rd);
        } else if let Some(hard_state) = &out.persist.hard_state {
            self.raw.mut_store().set_hard_state(hard_state.clone())?;
        }
        for entry in committed {
            assert!(
                entry.index > self.handed_out_through,
                "committed entry {} handed out twice (through {})",
                entry.index,
                self.handed_out_through
            );
            self.handed_out_through = entry.index;
            if entry.get_entry_type() == EntryType::EntryNormal && !entry.data.is_empty() {
                out.committed.push(Committed {
                    index: entry.index,
                    term: entry.term,
                    payload: entry.data,
                });
            }
        }
        if let Some(snapshot) = &out.snapshot {
            self.handed_out_through = self.handed_out_through.max(snapshot.index);
        }
        let empty = self.is_empty();
        out.messages = messages
            .into_iter()
            .filter_map(|mut m| {
                if empty && m.get_msg_type() == MessageType::MsgAppendResponse && m.reject {
                    // The leader may believe this node holds entries it
                    // lost with its disk, and would ignore the rejection
                    // as stale; asking for a snapshot is never ignored.
                    m.request_snapshot = BOOTSTRAP_INDEX;
                }
                if m.get_msg_type() == MessageType::MsgSnapshot {
                    self.snapshots_sent.push(m.to);
                }
                let to = NodeId::from_raft(m.to)?;
                let envelope = Envelope {
                    cluster_id: self.cluster_id,
                    from_disk: self.disk_id,
                    to_disk: self.peer_disks.get(&to).map_or(0, |d| d.0),
                };
                Some(Outbound {
                    to,
                    bytes: encode_message(envelope, &m),
                })
            })
            .collect();
        Ok(out)
    }

    /// Tells the quorum the last [`Outputs`] were persisted, sent and
    /// applied. Work it makes possible comes out of the next [`Quorum::ready`].
    pub fn advance(&mut self) {
        assert!(self.outputs_out, "advance without ready");
        self.outputs_out = false;
        match self.in_flight.take() {
            Some(rd) => {
                let mut light = self.raw.advance(rd);
                if let Some(commit) = light.commit_index() {
                    let mut hard_state = self.raw.store().hard_state();
                    hard_state.commit = commit;
                    self.pending_hard_state = Some(hard_state);
                }
                self.pending_messages.extend(light.take_messages());
                self.pending_committed
                    .extend(light.take_committed_entries());
            }
            None => self.raw.advance_apply(),
        }
        // raft-rs waits for the transport to report a snapshot's fate; the
        // wire is lossy anyway, so report it sent: if it was lost, the
        // follower's next rejection brings another.
        for to in std::mem::take(&mut self.snapshots_sent) {
            self.raw.report_snapshot(to, raft::SnapshotStatus::Finish);
        }
        self.applied = self.handed_out_through;
    }

    /// True when enough entries were applied since the latest snapshot that
    /// the caller should call [`Quorum::compact`].
    pub fn snapshot_due(&self) -> bool {
        let snapshot_index = self.raw.store().latest_snapshot().get_metadata().index;
        self.applied >= snapshot_index + self.snapshot_interval_entries
    }

    /// Takes `state` (the caller's state machine, as of
    /// [`Quorum::applied_index`]) as the snapshot at the applied index and
    /// drops the log up to it. Returns the snapshot, which the caller must
    /// persist (its log then starts after it), before the next `ready`.
    pub fn compact(&mut self, state: Vec<u8>) -> Result<Snapshot, QuorumError> {
        assert!(!self.outputs_out, "compact between ready and advance");
        let index = self.applied;
        let snapshot_index = self.raw.store().latest_snapshot().get_metadata().index;
        if index <= snapshot_index {
            return Err(QuorumError::NothingToSnapshot {
                applied: index,
                snapshot: snapshot_index,
            });
        }
        let term = self.raw.raft.raft_log.term(index).map_err(raft_error)?;
        let mut snapshot = Snapshot {
            data: Bytes::from(state),
            ..Default::default()
        };
        let metadata = snapshot.mut_metadata();
        metadata.index = index;
        metadata.term = term;
        metadata.set_conf_state(self.raw.raft.prs().conf().to_conf_state());
        self.raw
            .mut_store()
            .store_snapshot_and_compact(snapshot.clone())?;
        Ok(snapshot)
    }

    /// raft-rs draws election timeouts from the thread's RNG; a simulation
    /// must replay, so each time raft resets the election clock the
    /// timeout is drawn again from our seeded generator.
    fn draw_election_timeout(&mut self) {
        if self.raw.raft.election_elapsed != 0 {
            return;
        }
        // splitmix64
        self.election_rng = self.election_rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.election_rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let min = self.election_ticks;
        let timeout = min + (z % min as u64) as usize;
        self.raw.raft.set_randomized_election_timeout(timeout);
    }
}

fn raft_error(e: raft::Error) -> QuorumError {
    match e {
        raft::Error::Store(s) => QuorumError::Storage(s),
        other => QuorumError::Raft(other.to_string()),
    }
}
