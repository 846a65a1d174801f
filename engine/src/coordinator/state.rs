//! A shard's groups and their state ([`Coordinator`], [`Group`]), and who
//! commits offsets: the data the coordinator's other files work on. A
//! leaf apart from the two protocols' state machines and the transactions'
//! offsets it holds (and the replication's word for leadership), so that a
//! shard can hold its coordinator.

use std::{
    cell::RefCell,
    collections::{BTreeMap, HashMap},
    time::Instant,
};

use super::{
    classic::{self, Member},
    consumer,
    records::{Committed, OffsetKey},
    transactional::{OpenTransactions, TransactionalOffsets},
};
use crate::replica::state::Leadership;

/// A group's state, with Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// One group: its members (classic protocol), its committed offsets.
pub struct Group {
    pub id: String,
    pub state: GroupState,
    pub protocol_type: Option<String>,
    /// The protocol chosen at the last join (the assignor, for consumers).
    pub protocol: Option<String>,
    pub generation: i32,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Member ids handed out (KIP-394) and not yet used to join, with when
    /// they expire (the session timeout of the join that asked, as Kafka).
    pub pending: HashMap<String, Instant>,
    /// group.instance.id → member id, for static members.
    pub statics: HashMap<String, String>,
    /// Its committed offsets; changed through [`Group::set_committed`] and
    /// [`Group::delete_offset`], which keep `transactional` in step.
    pub offsets: BTreeMap<OffsetKey, Committed>,
    /// The offsets its producers' open transactions committed, and where
    /// the records of `offsets` are in the log.
    pub transactional: TransactionalOffsets,
    /// When a rebalance being prepared completes at the latest.
    pub rebalance_deadline: Option<Instant>,
    /// Whether the rebalance being prepared waits out the initial delay.
    pub initial_delay: bool,
    /// When the leader must have sent the assignment.
    pub sync_deadline: Option<Instant>,
    /// Its members under the consumer protocol (KIP-848); empty for a
    /// classic group.
    pub consumer: consumer::ConsumerGroup,
}

impl Group {
    pub fn new(id: &str) -> Group {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            protocol_type: None,
            protocol: None,
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            pending: HashMap::new(),
            statics: HashMap::new(),
            offsets: BTreeMap::new(),
            transactional: TransactionalOffsets::default(),
            rebalance_deadline: None,
            initial_delay: false,
            sync_deadline: None,
            consumer: consumer::ConsumerGroup::default(),
        }
    }

    /// A group is forgotten once it has neither members nor offsets,
    /// committed or pending in a transaction.
    pub(super) fn is_gone(&self) -> bool {
        self.members.is_empty()
            && self.offsets.is_empty()
            && self.transactional.is_empty()
            && self.pending.is_empty()
            && self.consumer.is_empty()
    }

    /// The topics the group's members subscribe to (consumer groups).
    pub fn subscribed_topics(&self) -> std::collections::BTreeSet<String> {
        let mut topics = std::collections::BTreeSet::new();
        for member in self.members.values() {
            if let Some(metadata) = member.metadata(self.protocol.as_deref()) {
                topics.extend(classic::subscription_topics(metadata));
            }
        }
        topics.extend(self.consumer.subscribed_topics());
        topics
    }
}

/// The groups of one shard.
pub struct Coordinator {
    pub groups: RefCell<HashMap<String, Group>>,
    /// Held shared while records are appended and applied, exclusively
    /// while a partition is compacted: a compaction's snapshot then holds
    /// every record appended before it.
    pub(super) compacting: glommio::sync::RwLock<()>,
    /// Per offsets partition of this shard: bytes appended since its last
    /// snapshot, and whether a compaction is under way.
    pub(super) appended: RefCell<HashMap<u32, (u64, bool)>>,
    /// The offsets partitions of this shard that this node leads, being
    /// loaded or loaded (see `holding`).
    pub(super) held: RefCell<HashMap<u32, Hold>>,
    /// The groups holding offsets of each producer's open transaction, on
    /// every offsets partition of this shard: where a marker applies.
    pub(super) open: RefCell<OpenTransactions>,
}

impl Default for Coordinator {
    fn default() -> Coordinator {
        Coordinator {
            groups: RefCell::default(),
            compacting: glommio::sync::RwLock::new(()),
            appended: RefCell::default(),
            held: RefCell::default(),
            open: RefCell::default(),
        }
    }
}

/// The coordinator's hold on one offsets partition of its shard, with the
/// leadership it was taken under: a change of leadership (even to a later
/// epoch of this node) loads it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hold {
    Loading(Leadership),
    Loaded(Leadership),
}

/// One offset to commit.
#[derive(Debug, Clone)]
pub struct OffsetToCommit {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// Who commits: a member of the group's current generation, or nobody
/// (generation -1, empty member id) for a group without members.
#[derive(Debug, Clone)]
pub struct Committer {
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
}
