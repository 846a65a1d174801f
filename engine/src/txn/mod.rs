//! The transaction coordinator in the broker: Kafka transactions on the
//! replicated log.
//!
//! A transactional id lives on one shard of one node: the owner of its
//! partition of the internal topic `__transaction_state` (a hash of the
//! id, as a group's partition of `__consumer_offsets` is) on the node that
//! leads that partition. That shard holds a
//! [`TxnCoordinator`](sluice_replication::txn::TxnCoordinator) for the
//! partition, the sans-IO core that decides everything; this module does
//! its I/O:
//!
//! - [`routing`]: which node and shard coordinate an id, the topic created
//!   on first use, and running a request there;
//! - [`holding`]: a coordinator made for each partition this node comes to
//!   lead, loaded from the partition's log, and dropped when it stops
//!   leading it (its waiting requests answered `NOT_COORDINATOR`);
//! - [`driver`]: the core's effects carried out: its records appended with
//!   `acks=all` and reported once the in-sync replicas hold them, its
//!   answers sent, its markers written, and its clock ticked;
//! - [`markers`]: markers written to the partitions' leaders, here or on
//!   other nodes, and the leader's verification (KIP-890 part 1) that a
//!   transactional write belongs to an ongoing transaction;
//! - [`peer`]: those questions between nodes, on the peer network;
//! - [`admin`]: an operator's describe, list and abort;
//! - [`codes`]: Kafka's error codes for all of these.
//!
//! The Kafka APIs are `crate::kafka::transactions`.

pub mod admin;
pub mod codes;
pub mod driver;
pub mod holding;
pub mod markers;
pub mod peer;
pub mod routing;

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
};

use futures_channel::oneshot;
use sluice_replication::txn::{Reply, RequestId, TxnCoordinator, TxnError};

use crate::{partition::PartitionKey, replica::state::Leadership};

/// The internal topic of transactional ids' state.
pub const TXN_TOPIC: &str = "__transaction_state";

/// The coordinator of one `__transaction_state` partition this shard owns
/// and this node leads.
pub struct Held {
    pub key: PartitionKey,
    /// The leadership it was made under: another drops it.
    pub leadership: Leadership,
    /// Which coordinator this is on the shard: work started for one
    /// (an append, markers) reports to it only, not to a successor made
    /// after a change of leadership.
    pub generation: u64,
    pub core: TxnCoordinator,
    /// Requests waiting for their answer, by the id the core answers by.
    pub waiting: HashMap<RequestId, oneshot::Sender<Result<Reply, TxnError>>>,
    /// Requests waiting for a transactional id's previous transaction to
    /// finish ending (its markers written, its completion durable):
    /// woken then ([`driver::call_when_settled`]).
    pub settling: Vec<(String, oneshot::Sender<()>)>,
}

/// A shard's transaction coordinators and its questions to other nodes.
#[derive(Default)]
pub struct Coordinators {
    /// By `__transaction_state` partition.
    pub held: RefCell<HashMap<u32, Held>>,
    next_generation: Cell<u64>,
    next_request: Cell<RequestId>,
    /// Questions sent to other nodes' shards awaiting their answer, by
    /// question id ([`peer`]).
    pub asked: RefCell<HashMap<u64, oneshot::Sender<bytes::Bytes>>>,
    next_question: Cell<u64>,
    /// The newest leader epoch of each `__transaction_state` partition
    /// whose coordinator wrote markers through this shard
    /// ([`markers`]' fence).
    pub coordinator_epochs: RefCell<HashMap<u32, i32>>,
}

impl Coordinators {
    fn generation(&self) -> u64 {
        let next = self.next_generation.get();
        self.next_generation.set(next + 1);
        next
    }

    fn request(&self) -> RequestId {
        let next = self.next_request.get();
        self.next_request.set(next + 1);
        next
    }

    fn question(&self) -> u64 {
        let next = self.next_question.get();
        self.next_question.set(next + 1);
        next
    }
}

/// Milliseconds since the epoch, the coordinator's clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}
