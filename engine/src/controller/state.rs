//! The controller's own state, on shard 0: the quorum it drives, the
//! metadata image as of the last entry it applied, the changes waiting to
//! be committed, and the turn that makes this node's changes run one at a
//! time. Apart from the code that changes metadata (the parent module), so
//! that a shard can hold it.

use std::{
    cell::{Cell, RefCell},
    collections::{HashMap, VecDeque},
    path::PathBuf,
    rc::Rc,
    sync::Arc,
    time::Instant,
};

use bytes::Bytes;

use futures_channel::oneshot;
use sluice_replication::quorum::{Quorum, Role};
use sluice_storage::NodeId;

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
    /// The index of the entry (or snapshot) the image is as of.
    pub index: u64,
    /// The image after the entry.
    pub image: Arc<Metadata>,
    /// The node that proposed it and its sequence there.
    pub origin: NodeId,
    pub sequence: u64,
    /// Why the entry changed nothing, if it did not.
    pub refused: Option<Refused>,
}

/// Why a proposal of this node's changed nothing.
#[derive(Debug)]
pub enum Rejected {
    /// Committed, and refused where it was applied (the same on every
    /// node).
    Refused(Refused),
    /// Not committed in time, or its effects failed on this node.
    Failed(Failure),
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
/// How far each node holds the metadata log: (node, log end).
pub type LogEnds = Vec<(NodeId, u64)>;

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
    /// The index of the last entry whose effects are done: every shard
    /// holds its image, and each partition's role follows it.
    pub(super) carried_out: Cell<u64>,
    /// A heartbeat answer that renews this broker's lease once the
    /// effects of the entries the controller leader had applied when it
    /// answered are done here: (that index, when the answer came).
    pub(super) renewal_pending: Cell<Option<(u64, Instant)>>,
    /// The sequence of this node's next proposal.
    pub(super) sequence: Cell<u64>,
    /// This node's proposals not yet applied, by sequence.
    pub(super) waiters: RefCell<HashMap<u64, oneshot::Sender<Result<(), Rejected>>>>,
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
    /// While this node leads: when it last checked leader balance (or
    /// took the lead).
    pub(super) balance_checked: Cell<Option<Instant>>,
    /// Fences and unfences proposed, not yet seen applied.
    pub(super) fences_pending: RefCell<HashMap<(NodeId, u64, bool), Instant>>,
    /// Questions to the leader of how far each node holds the metadata
    /// log, by id, waiting for its answer.
    pub(super) log_ends_asked: RefCell<HashMap<u64, oneshot::Sender<LogEnds>>>,
    pub(super) next_question: Cell<u64>,
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
            carried_out: Cell::new(applied),
            renewal_pending: Cell::new(None),
            sequence: Cell::new(1),
            waiters: RefCell::new(HashMap::new()),
            events: async_channel::unbounded(),
            effects: async_channel::unbounded(),
            stopped: RefCell::new(None),
            incarnation: rand::random(),
            network: RefCell::new(None),
            leases: RefCell::new(Leases::default()),
            leading_since: Cell::new(None),
            balance_checked: Cell::new(None),
            fences_pending: RefCell::new(HashMap::new()),
            log_ends_asked: RefCell::new(HashMap::new()),
            next_question: Cell::new(0),
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

/// A voter keeps at most this many of the entries it applied lately, for
/// the observers' fetches...
pub const RECENT_ENTRIES_MAX: usize = 4096;
/// ...and at most this many bytes of them.
pub const RECENT_BYTES_MAX: usize = 8 << 20;
/// One answer to a fetch carries at most this many bytes of entries (at
/// least one entry).
const REPLY_ENTRY_BYTES_MAX: usize = 1 << 20;
/// Answers waiting for an observer's follow loop.
const REPLIES_MAX: usize = 16;

/// An observer's state: whom it follows and what it learned of them.
pub struct Observer {
    pub(super) voters: Vec<NodeId>,
    pub(super) image_path: PathBuf,
    /// The controller leader as the last answer named it.
    pub(super) leader: Cell<Option<NodeId>>,
    pub(super) term: Cell<u64>,
    pub(super) replies: Replies,
}

/// Answers from voters, by the node that sent each.
type Replies = (
    async_channel::Sender<(NodeId, Bytes)>,
    async_channel::Receiver<(NodeId, Bytes)>,
);

impl Observer {
    pub fn new(voters: Vec<NodeId>, image_path: PathBuf) -> Observer {
        Observer {
            voters,
            image_path,
            leader: Cell::new(None),
            term: Cell::new(0),
            replies: async_channel::bounded(REPLIES_MAX),
        }
    }

    /// Takes an answer from a peer (dropped if the follow loop is far
    /// behind: it asks again).
    pub(super) fn on_reply(&self, from: NodeId, body: Bytes) {
        let _ = self.replies.0.try_send((from, body));
    }
}

/// On a voter: the entries it applied lately (each applied entry after
/// `from` is in `recent`), and the fetches it holds.
pub struct Served {
    recent: RefCell<VecDeque<(u64, Bytes)>>,
    recent_bytes: Cell<usize>,
    from: Cell<u64>,
    pub(super) waiting: RefCell<Vec<Waiting>>,
    /// Per observer, the index its last fetch named.
    pub(super) fetched: RefCell<std::collections::BTreeMap<NodeId, u64>>,
}

pub(super) struct Waiting {
    pub(super) node: NodeId,
    pub(super) after: u64,
    pub(super) since: Instant,
}

impl Served {
    /// Nothing kept yet: the entries through `applied` were applied
    /// before.
    pub fn new(applied: u64) -> Served {
        Served {
            recent: RefCell::new(VecDeque::new()),
            recent_bytes: Cell::new(0),
            from: Cell::new(applied),
            waiting: RefCell::new(Vec::new()),
            fetched: RefCell::new(std::collections::BTreeMap::new()),
        }
    }

    /// Each observer that fetched from this node, and the index its last
    /// fetch named.
    pub fn fetched(&self) -> Vec<(NodeId, u64)> {
        self.fetched
            .borrow()
            .iter()
            .map(|(node, index)| (*node, *index))
            .collect()
    }

    /// Keeps the entry applied at `index`, forgetting the oldest past the
    /// limits.
    pub fn record(&self, index: u64, payload: &[u8]) {
        let mut recent = self.recent.borrow_mut();
        recent.push_back((index, Bytes::copy_from_slice(payload)));
        let mut bytes = self.recent_bytes.get() + payload.len();
        while recent.len() > RECENT_ENTRIES_MAX || bytes > RECENT_BYTES_MAX {
            let Some((index, payload)) = recent.pop_front() else {
                break;
            };
            bytes -= payload.len();
            self.from.set(index);
        }
        self.recent_bytes.set(bytes);
    }

    /// A snapshot at `index` replaced the image: nothing before it is
    /// kept.
    pub fn reset(&self, index: u64) {
        self.recent.borrow_mut().clear();
        self.recent_bytes.set(0);
        self.from.set(index);
    }

    /// The entries after `after`, at most [`REPLY_ENTRY_BYTES_MAX`] bytes
    /// of them (at least one); `None` if some of them are no longer kept.
    pub(super) fn after(&self, after: u64) -> Option<Vec<(u64, Bytes)>> {
        if after < self.from.get() {
            return None;
        }
        let mut bytes = 0;
        let mut entries = Vec::new();
        for (index, payload) in self.recent.borrow().iter() {
            if *index <= after {
                continue;
            }
            if !entries.is_empty() && bytes + payload.len() > REPLY_ENTRY_BYTES_MAX {
                break;
            }
            bytes += payload.len();
            entries.push((*index, payload.clone()));
        }
        Some(entries)
    }
}
