//! The group coordinator: consumer groups, their members and their committed
//! offsets.
//!
//! A group lives on one shard: the owner of its partition of the internal
//! topic `__consumer_offsets` (the partition is a hash of the group id).
//! Requests about a group, on whatever shard they arrive, run there
//! ([`on_coordinator`]). Committed offsets are appended to that partition,
//! durably, before they are acknowledged, and replayed from it at start
//! ([`recover`]); membership lives in memory (members rejoin after a
//! restart, as they do when a Kafka coordinator moves).
//!
//! The classic protocol's state machine is in [`classic`]: members join,
//! the leader assigns, everyone syncs, heartbeats keep members alive; a
//! member that joins, leaves or falls silent past its session timeout
//! starts a rebalance.
//!
//! Its files, one role each:
//!
//! - this one: a group's state ([`Group`]), a shard's groups
//!   ([`Coordinator`]) and the tick that expires members;
//! - [`routing`]: which shard coordinates a group, and running work there;
//! - [`classic`]: the classic protocol's state machine;
//! - [`consumer`]: the consumer protocol's (KIP-848) state machine, and
//!   [`assignor`], the pure functions that compute its target assignments;
//! - [`offsets`]: committing, reading, resetting and deleting offsets;
//! - [`offsets_log`]: `__consumer_offsets` on disk (append, compact,
//!   replay at start), in the records of [`records`];
//! - [`describe`]: groups listed and described; [`lag`]: consumer lag;
//! - [`error`]: why a group request failed.
//!
//! Dependencies between these files point one way: `error`, `records` and
//! `assignor` use none of the others; `routing` uses `error`; `classic`
//! and `consumer` use this file's types (`consumer` also `assignor`);
//! `offsets_log` uses `routing` and `records`; `offsets` uses
//! `offsets_log` and both protocols; `describe` uses `consumer` and
//! `routing`; `lag` uses `routing`.

pub mod assignor;
pub mod classic;
pub mod consumer;
mod describe;
mod error;
pub mod lag;
mod offsets;
mod offsets_log;
pub mod records;
mod routing;

use std::{
    cell::RefCell,
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};

pub use classic::Member;
pub use describe::{describe_local, list_all, list_local};
pub use error::GroupError;
pub use offsets::{commit, committed, delete_group, delete_offsets, reset_offsets};
pub use offsets_log::recover;
use records::{Committed, OffsetKey};
pub use routing::{on_coordinator, run_on};

/// The internal topic of committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// How often the coordinator looks for expired members and rebalances due.
const TICK: Duration = Duration::from_millis(100);

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
    pub offsets: BTreeMap<OffsetKey, Committed>,
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
            rebalance_deadline: None,
            initial_delay: false,
            sync_deadline: None,
            consumer: consumer::ConsumerGroup::default(),
        }
    }

    /// A group is forgotten once it has neither members nor offsets.
    fn is_gone(&self) -> bool {
        self.members.is_empty()
            && self.offsets.is_empty()
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
    compacting: glommio::sync::RwLock<()>,
    /// Per offsets partition of this shard: bytes appended since its last
    /// snapshot, and whether a compaction is under way.
    appended: RefCell<HashMap<u32, (u64, bool)>>,
}

impl Default for Coordinator {
    fn default() -> Coordinator {
        Coordinator {
            groups: RefCell::default(),
            compacting: glommio::sync::RwLock::new(()),
            appended: RefCell::default(),
        }
    }
}

/// Expires silent members and completes rebalances that are due, in the
/// groups of `coordinator` (a shard's), forever.
pub async fn tick_loop(coordinator: &Coordinator) {
    loop {
        glommio::timer::sleep(TICK).await;
        let now = Instant::now();
        let mut groups = coordinator.groups.borrow_mut();
        for group in groups.values_mut() {
            classic::tick(group, now);
            consumer::tick(group, now);
        }
        groups.retain(|_, group| !group.is_gone());
    }
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
