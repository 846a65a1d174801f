//! A shard's replication state: each replicated partition's role, the
//! peer network, and what the partitions' owner asks of it (whether an
//! append is this node's to take, when an `acks=all` write is committed).
//! The drivers that change it are the module's other files.

use std::{
    cell::{Cell, RefCell},
    collections::{HashMap, HashSet},
    rc::Rc,
    sync::Arc,
    time::{Duration, Instant},
};

use futures_channel::oneshot;
use sluice_replication::partition::{
    epochs::Epoch,
    follower::FollowerState,
    leader::{LeaderState, Node},
    push::{PushConfig, Pushes},
    wire::{self, EpochEndAsk, Frame, Header, PartitionRef},
};
use sluice_storage::{NodeId, Offset};

use super::throttle::Throttle;
use crate::{
    cluster_metadata::image::{node, node_id},
    error::{ErrorKind, Failure},
    partition::ops::{Acks, PartitionKey},
    peer::{HandedOver, MessageKind, PeerMessage, PeerNetwork},
};

/// A leader with nothing to push looks again this often: heartbeats,
/// resends and laggards are due at this resolution.
pub(super) const TICK: Duration = Duration::from_millis(10);

/// How a leader pushes: several frames in flight per follower, a
/// heartbeat (with the high watermark) when idle, and what went
/// unanswered sent again. A push is bounded by bytes ([`PUSH_BYTES`]),
/// not records.
pub(super) const PUSH: PushConfig = PushConfig {
    records_max: u64::MAX / 4,
    in_flight_max: 8,
    heartbeat_ms: 50,
    resend_ms: 500,
};

/// One partition's batches in one push, at most (a larger batch goes
/// alone).
pub(super) const PUSH_BYTES: usize = 1 << 20;

/// One frame's batches, at most: a round to one (node, shard).
pub(super) const FRAME_BYTES: usize = 8 << 20;

/// A follower's question of where its epoch ends, unanswered this long,
/// is asked again (the question or its answer was lost).
pub(super) const ASK_RESEND_MS: u64 = 500;

/// An in-sync change the controller has not confirmed in this long is
/// proposed again.
pub(super) const PROPOSE_RESEND_MS: u64 = 1_000;

/// `replica.lag.time.max.ms`: a follower that has not caught up with its
/// leader for this long leaves the in-sync set.
pub const LAG_MAX: Duration = Duration::from_millis(2_000);

/// Messages from peers waiting for a shard's replication.
const INBOX_MAX: usize = 4096;

/// A partition's place in the replication of its log on this node.
pub(super) enum Role {
    Leader(Box<Leading>),
    Follower(Box<Following>),
    /// Replicated, and this node neither leads nor follows right now (no
    /// leader): it takes no writes.
    Idle,
}

pub(super) struct Leading {
    pub(super) epoch: Epoch,
    /// The shard that holds the partition on every node, as placements
    /// name it.
    pub(super) shard: u32,
    pub(super) followers: Vec<Node>,
    pub(super) state: LeaderState,
    pub(super) pushes: Pushes,
    /// `acks=all` writes waiting for the high watermark to reach their
    /// end.
    pub(super) waiting: Vec<(u64, oneshot::Sender<()>)>,
    /// The pace of the new replicas of a throttled move.
    pub(super) throttle: Option<Throttle>,
    /// Each follower's broker epoch as the metadata last gave it: another
    /// is another process, which starts on its own log.
    pub(super) broker_epochs: HashMap<Node, u64>,
}

pub(super) struct Following {
    pub(super) shard: u32,
    pub(super) state: FollowerState,
    /// When the pending question of where an epoch ends was sent.
    pub(super) asked_ms: Option<u64>,
    /// A truncation is under way: pushes and answers wait for it.
    pub(super) busy: bool,
    /// Whether the metadata names this node in the partition's in-sync
    /// set: only then does it serve consumers' reads.
    pub(super) in_sync: bool,
}

/// Whether this node leads a partition it holds ([`Replicas::leadership`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leadership {
    /// A partition of one replica: its only replica, this one, leads it.
    Sole,
    /// This node leads it in this leader epoch (and holds its lease).
    Leads(Epoch),
    /// Another node leads it, or none does, or this one lost its lease
    /// (or has not heard from the controller leader since it started).
    Not,
}

/// This broker's lease with the controller, as the broker sees it: held
/// while the controller leader answers its heartbeats. A broker whose
/// lease ran out is fenced at the controller and its partitions led
/// elsewhere, so it takes no more writes for the partitions it led and
/// fails those waiting, and its clients ask where partitions live now
/// (the old leader steps down without waiting to hear of its successor).
/// Shared by the node's shards. A single node's is held from the start
/// (it renews its own); a node of a cluster's is not held until the
/// controller leader first renews it ([`Lease::lapsed`]).
#[derive(Debug)]
pub struct Lease {
    started: Instant,
    renewed_ms: std::sync::atomic::AtomicU64,
    length_ms: std::sync::atomic::AtomicU64,
}

impl Default for Lease {
    fn default() -> Lease {
        Lease {
            started: Instant::now(),
            renewed_ms: 0.into(),
            length_ms: u64::MAX.into(),
        }
    }
}

/// `renewed_ms` of a lease that has never been renewed, and is not held
/// until it is.
const NEVER_RENEWED_MS: u64 = u64::MAX;

impl Lease {
    /// A lease not held until first renewed: a node of a cluster starts
    /// with one, so that the partitions its own copy of the metadata says
    /// it leads (as they were when it stopped, perhaps long ago) take no
    /// writes until it has caught up with the controller leader.
    pub fn lapsed() -> Lease {
        Lease {
            started: Instant::now(),
            renewed_ms: NEVER_RENEWED_MS.into(),
            length_ms: 0.into(),
        }
    }

    /// The controller leader answered: held for `length` from now.
    pub fn renew(&self, length: Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        self.renewed_ms
            .store(self.started.elapsed().as_millis() as u64, Relaxed);
        self.length_ms.store(length.as_millis() as u64, Relaxed);
    }

    /// Whether the controller leader has answered this broker since it
    /// started (once its metadata caught up with the leader's): until
    /// then, what its metadata says it leads may be what it led before it
    /// stopped. A single node's always has.
    pub fn renewed(&self) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        self.renewed_ms.load(Relaxed) != NEVER_RENEWED_MS
    }

    pub fn held(&self) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let renewed_ms = self.renewed_ms.load(Relaxed);
        if renewed_ms == NEVER_RENEWED_MS {
            return false;
        }
        let now = self.started.elapsed().as_millis() as u64;
        now.saturating_sub(renewed_ms) <= self.length_ms.load(Relaxed)
    }
}

/// One shard's replication: the roles of its replicated partitions, its
/// peer network, and what wakes its rounds.
pub struct Replicas {
    pub(super) roles: RefCell<HashMap<PartitionKey, Role>>,
    pub(super) network: RefCell<Option<Rc<PeerNetwork>>>,
    pub(super) addresses: RefCell<HashMap<NodeId, String>>,
    pub(super) inbox: (
        async_channel::Sender<PeerMessage>,
        async_channel::Receiver<PeerMessage>,
    ),
    pub(super) wake: (async_channel::Sender<()>, async_channel::Receiver<()>),
    /// Signalled after each metadata change has set the roles, for what
    /// follows leadership on this shard (the group coordinator).
    pub(super) roles_set: (async_channel::Sender<()>, async_channel::Receiver<()>),
    pub(super) started: Instant,
    pub(super) round: Cell<u64>,
    /// `replica.lag.time.max.ms`.
    pub(super) lag_max_ms: u64,
    /// The node's lease with the controller.
    pub(super) lease: Arc<Lease>,
    /// Partitions this node holds alone (one replica), whose logs show
    /// readers everything stored: when a move adds replicas, the high
    /// watermark starts where the log was shown to.
    pub(super) alone: RefCell<HashSet<PartitionKey>>,
    /// Partitions touched since the last round (see [`Replicas::to_visit`]).
    pub(super) touched: Rc<RefCell<HashSet<PartitionKey>>>,
    /// A round visiting every partition is due at once.
    pub(super) sweep_due: Cell<bool>,
    /// When the last round visiting every partition ran.
    pub(super) swept_ms: Cell<u64>,
    /// What `/metrics` counts of this shard's replication and reads.
    pub(crate) counters: super::figures::ReplicaCounters,
}

impl Replicas {
    pub fn new(lag_max: Duration, lease: Arc<Lease>) -> Replicas {
        Replicas {
            roles: RefCell::default(),
            network: RefCell::default(),
            addresses: RefCell::default(),
            inbox: async_channel::bounded(INBOX_MAX),
            wake: async_channel::bounded(1),
            roles_set: async_channel::bounded(1),
            started: Instant::now(),
            round: Cell::new(0),
            lag_max_ms: lag_max.as_millis() as u64,
            lease,
            alone: RefCell::default(),
            touched: Rc::default(),
            sweep_due: Cell::new(true),
            swept_ms: Cell::new(0),
            counters: super::figures::ReplicaCounters::default(),
        }
    }

    pub(super) fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Something changed for every partition (the roles): the next round
    /// runs at once and visits them all.
    pub fn wake(&self) {
        self.sweep_due.set(true);
        let _ = self.wake.0.try_send(());
    }

    /// Partition `key` has something to push (an append, written or made
    /// durable) or room to push it (an acknowledgement): the next round
    /// runs at once and visits it.
    pub fn touched(&self, key: PartitionKey) {
        self.touched.borrow_mut().insert(key);
        let _ = self.wake.0.try_send(());
    }

    /// What wakes the rounds for partition `key`, for its log to call when
    /// it has written.
    pub(super) fn waker(&self, key: PartitionKey) -> Rc<dyn Fn()> {
        let wake = self.wake.0.clone();
        let touched = self.touched.clone();
        Rc::new(move || {
            touched.borrow_mut().insert(key);
            let _ = wake.try_send(());
        })
    }

    /// The partitions the next round visits: every one (`None`) when a
    /// sweep is due (every [`TICK`], for heartbeats, resends and
    /// laggards, or after a change of roles), else those touched since
    /// the last round.
    pub(super) fn to_visit(&self, now_ms: u64) -> Option<HashSet<PartitionKey>> {
        let touched = std::mem::take(&mut *self.touched.borrow_mut());
        let tick_ms = TICK.as_millis() as u64;
        if self.sweep_due.replace(false) || self.swept_ms.get() + tick_ms <= now_ms {
            self.swept_ms.set(now_ms);
            return None;
        }
        Some(touched)
    }

    /// Resolves after the next metadata change has set the roles (at once
    /// if one did since the last call): a change of leadership is seen
    /// without polling. One waiter per shard.
    pub async fn roles_set(&self) {
        let _ = self.roles_set.1.recv().await;
    }

    /// Where the peer network hands this shard's replication messages.
    pub fn inbox(&self) -> async_channel::Sender<PeerMessage> {
        self.inbox.0.clone()
    }

    /// The shard's peer network (shard 0's is the controller's).
    pub fn set_network(&self, network: Rc<PeerNetwork>) {
        for (node, address) in self.addresses.borrow().iter() {
            network.set_address(*node, address.clone());
        }
        *self.network.borrow_mut() = Some(network);
    }

    /// The shard's peer network, once set.
    pub fn network(&self) -> Option<Rc<PeerNetwork>> {
        self.network.borrow().clone()
    }

    /// Serves a connection shard 0 accepted for this shard.
    pub fn adopt(&self, handed: HandedOver) {
        match self.network.borrow().as_ref() {
            Some(network) => network.adopt(handed),
            // Not started yet: the peer connects again.
            None => drop(handed),
        }
    }

    /// Whether this node may append to `key` now, a write that waits for
    /// `acks`: only its leader may, and an `acks=all` write only while
    /// enough replicas are in sync. A partition of one replica always.
    pub fn admit(&self, key: PartitionKey, acks: Acks) -> Result<(), Failure> {
        match self.roles.borrow().get(&key) {
            None => Ok(()),
            Some(Role::Leader(_)) if !self.lease.held() => Err(Failure::new(
                ErrorKind::NotLeader,
                format!("{key}: this broker lost its lease with the controller; its partitions are led elsewhere"),
            )),
            Some(Role::Leader(leading)) => {
                if acks == Acks::All && !leading.state.accepts_all_acks() {
                    let in_sync = leading.state.in_sync().len();
                    return Err(Failure::new(
                        ErrorKind::NotEnoughReplicas,
                        format!(
                            "{key}: {in_sync} of {} replicas in sync, fewer than its min.insync.replicas",
                            leading.followers.len() + 1
                        ),
                    ));
                }
                Ok(())
            }
            Some(Role::Follower(following)) => Err(Failure::new(
                ErrorKind::NotLeader,
                format!(
                    "{key} is led by node {}; this node follows it",
                    following.state.leader()
                ),
            )),
            Some(Role::Idle) => Err(Failure::new(
                ErrorKind::NotLeader,
                format!("{key} has no leader right now"),
            )),
        }
    }

    /// Whether this node serves reads of `key` now as its leader: while it
    /// holds its lease (a leader cut off from the controller sends its
    /// consumers to the new one). A follower serves only the reads that
    /// may come from any replica (see `Replicas::reader`). A partition of
    /// one replica always.
    pub fn serves_reads(&self, key: PartitionKey) -> Result<(), Failure> {
        match self.roles.borrow().get(&key) {
            None => Ok(()),
            Some(Role::Leader(_)) if self.lease.held() => Ok(()),
            Some(_) => Err(Failure::new(
                ErrorKind::NotLeader,
                format!("{key} is not led by this node right now"),
            )),
        }
    }

    /// Whether this node leads `key` now, and in which epoch: what a
    /// coordinator of the partition's contents (the group coordinator for
    /// `__consumer_offsets`) serves by. A replicated partition's leader
    /// only once the controller leader has answered this broker since it
    /// started (a node started again may hold metadata from before its
    /// stop, which names it leader still), and while it holds its lease.
    pub fn leadership(&self, key: PartitionKey) -> Leadership {
        match self.roles.borrow().get(&key) {
            None => Leadership::Sole,
            Some(Role::Leader(leading)) if self.lease.renewed() && self.lease.held() => {
                Leadership::Leads(leading.epoch)
            }
            Some(_) => Leadership::Not,
        }
    }

    /// For an `acks=all` write that ends at `end`: `None` when the high
    /// watermark is past it already (or the partition has one replica),
    /// or what resolves once it is. Dropped unresolved when this node
    /// stops leading it.
    pub fn committed(&self, key: PartitionKey, end: Offset) -> Option<oneshot::Receiver<()>> {
        let mut roles = self.roles.borrow_mut();
        // A channel only for a write that waits: none on the path of a
        // partition of one replica.
        match roles.get_mut(&key) {
            None => None,
            Some(Role::Leader(leading)) if leading.state.high_watermark() >= end.0 => None,
            Some(Role::Leader(leading)) => {
                let (sender, receiver) = oneshot::channel();
                leading.waiting.push((end.0, sender));
                Some(receiver)
            }
            // Leadership moved while it was appended: dropped unanswered.
            Some(_) => Some(oneshot::channel().1),
        }
    }

    /// Sends each question of where an epoch ends to its leader's shard,
    /// one frame per (node, shard); `me` is this node and shard.
    pub(super) fn send_asks(&self, me: (NodeId, usize), asks: Vec<(Node, u32, EpochEndAsk)>) {
        let mut frames: HashMap<(Node, u32), Vec<EpochEndAsk>> = HashMap::new();
        for (leader, to_shard, ask) in asks {
            frames.entry((leader, to_shard)).or_default().push(ask);
        }
        for ((leader, to_shard), asks) in frames {
            self.send(me, leader, to_shard, &Frame::EpochEnds(asks));
        }
    }

    /// Sends `frame` to shard `to_shard` of node `to`; lost (and counted
    /// by the network) if it cannot be queued: every sender here repeats
    /// what goes unanswered.
    pub(super) fn send(&self, from: (NodeId, usize), to: Node, to_shard: u32, frame: &Frame) {
        let Some(network) = self.network.borrow().clone() else {
            return;
        };
        let round = self.round.get();
        self.round.set(round + 1);
        let header = Header {
            from_node: node(from.0),
            from_shard: from.1 as u16,
            to_shard: to_shard as u16,
            round,
        };
        let body = wire::encode(header, frame).freeze();
        if let Err(error) =
            network.send_to_shard(node_id(to), to_shard, MessageKind::Replication, body)
        {
            tracing::debug!(%error, "replication frame not sent");
        }
    }
}

pub(super) fn partition_ref(key: PartitionKey) -> PartitionRef {
    PartitionRef {
        topic_id: key.topic.0,
        partition: key.partition.0,
    }
}
