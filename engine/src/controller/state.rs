//! The controller's own state, on shard 0: the quorum it drives, the
//! metadata image as of the last entry it applied, the changes waiting to
//! be committed, and the turn that makes this node's changes run one at a
//! time. Apart from the code that changes metadata (the parent module), so
//! that a shard can hold it.

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    rc::Rc,
    sync::Arc,
    time::Instant,
};

use futures_channel::oneshot;
use sluice_replication::quorum::{Quorum, Role};
use sluice_storage::NodeId;

use super::observer::{Observer, Served};
use crate::{
    cluster_metadata::{Metadata, Refused},
    error::Failure,
    peer::PeerNetwork,
    quorum_log::QuorumLog,
};

/// What wakes the quorum's driver before its next tick.
pub enum DriverEvent {
    /// A proposal was made: there is output to take.
    Proposed,
    /// A quorum message from another node.
    Peer { from: NodeId, bytes: bytes::Bytes },
}

/// A committed entry's consequences on this node, carried out in log
/// order by the controller's effects task.
pub struct Effect {
    /// The image after the entry.
    pub image: Arc<Metadata>,
    /// The node that proposed it and its sequence there.
    pub origin: NodeId,
    pub sequence: u64,
    /// Why the entry changed nothing, if it did not.
    pub refused: Option<Refused>,
}

/// Leases the leader keeps: per broker, the epoch and when it last heard
/// from it.
pub type Leases = HashMap<NodeId, (u64, Instant)>;

/// A node's part in the controller quorum.
pub enum Part {
    /// A voter, with the quorum it drives.
    Voter(Box<RefCell<Quorum<QuorumLog>>>),
    /// A broker that follows the voters' committed entries.
    Observer(Observer),
}

/// Lives on shard 0.
pub struct Controller {
    pub(super) node_id: NodeId,
    /// One change of this node's at a time.
    pub(super) lock: glommio::sync::Semaphore,
    pub(super) part: Part,
    /// On a voter: the entries it applied lately, and the observers'
    /// fetches waiting for more.
    pub(super) served: Served,
    /// The image after the last entry the quorum handed out (ahead of the
    /// shards' until the entry's effects are done).
    pub(super) image: RefCell<Metadata>,
    /// The index of the last entry applied to `image`.
    pub(super) applied: Cell<u64>,
    /// The sequence of this node's next proposal.
    pub(super) sequence: Cell<u64>,
    /// This node's proposals not yet applied, by sequence.
    pub(super) waiters: RefCell<HashMap<u64, oneshot::Sender<Result<(), Failure>>>>,
    pub(super) events: (
        async_channel::Sender<DriverEvent>,
        async_channel::Receiver<DriverEvent>,
    ),
    pub(super) effects: (
        async_channel::Sender<Effect>,
        async_channel::Receiver<Effect>,
    ),
    /// Why the controller stopped (its log failed), if it did.
    pub(super) stopped: RefCell<Option<String>>,
    /// Drawn at each start: a registration of this node id by another
    /// process carries another.
    pub(super) incarnation: u128,
    /// The peer network, once it serves (a node of a cluster).
    pub(super) network: RefCell<Option<Rc<PeerNetwork>>>,
    /// On the leader: when it last heard from each broker.
    pub(super) leases: RefCell<Leases>,
    /// When this node became leader, while it is.
    pub(super) leading_since: Cell<Option<Instant>>,
    /// Fences and unfences proposed, not yet seen applied.
    pub(super) fences_pending: RefCell<HashMap<(NodeId, u64, bool), Instant>>,
}

impl Controller {
    /// The controller of node `node_id` in its `part` of the quorum, whose
    /// entries through `applied` made `image`.
    pub fn new(node_id: NodeId, part: Part, image: Metadata, applied: u64) -> Controller {
        Controller {
            node_id,
            lock: glommio::sync::Semaphore::new(1),
            part,
            served: Served::new(applied),
            image: RefCell::new(image),
            applied: Cell::new(applied),
            sequence: Cell::new(1),
            waiters: RefCell::new(HashMap::new()),
            events: async_channel::unbounded(),
            effects: async_channel::unbounded(),
            stopped: RefCell::new(None),
            incarnation: rand::random(),
            network: RefCell::new(None),
            leases: RefCell::new(Leases::default()),
            leading_since: Cell::new(None),
            fences_pending: RefCell::new(HashMap::new()),
        }
    }
}

impl Controller {
    /// The quorum this node drives, if it is a voter.
    pub(super) fn quorum(&self) -> Option<&RefCell<Quorum<QuorumLog>>> {
        match &self.part {
            Part::Voter(quorum) => Some(quorum.as_ref()),
            Part::Observer(_) => None,
        }
    }

    /// What this node follows, if it is not a voter.
    pub(super) fn observer(&self) -> Option<&Observer> {
        match &self.part {
            Part::Voter(_) => None,
            Part::Observer(observer) => Some(observer),
        }
    }

    /// The controller leader as this node knows it.
    pub(super) fn leader(&self) -> Option<NodeId> {
        match &self.part {
            Part::Voter(quorum) => quorum.borrow().leader().map(super::open::node_of),
            Part::Observer(observer) => observer.leader.get(),
        }
    }

    /// Whether this node is the controller leader.
    pub(super) fn leads(&self) -> bool {
        self.quorum()
            .is_some_and(|quorum| quorum.borrow().role() == Role::Leader)
    }

    /// On the leader, how far each voter holds the metadata log (its
    /// matched index) and each observer (the index its last fetch named);
    /// empty on other nodes.
    pub fn log_ends(&self) -> Vec<(NodeId, u64)> {
        let mut ends: Vec<(NodeId, u64)> = self
            .quorum()
            .and_then(|quorum| quorum.try_borrow().ok())
            .map(|quorum| {
                quorum
                    .voter_progress()
                    .into_iter()
                    .filter_map(|(node, index)| Some((NodeId(i32::try_from(node.0).ok()?), index)))
                    .collect()
            })
            .unwrap_or_default();
        if !ends.is_empty() {
            ends.extend(self.served.fetched());
        }
        ends
    }
}
