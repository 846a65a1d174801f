//! The peer network: how the nodes of a cluster talk to each other on the
//! peer port (`BrokerConfig::peer_addr`).
//!
//! It carries opaque one-way messages, each tagged with a [`MessageKind`]:
//! the controller quorum's raft messages, small controller requests and
//! replies, partition replication's frames, and the transaction
//! coordinators' questions and answers. It neither reads nor correlates them; a reply is a message sent
//! back the other way, and the layer above pairs it with its request. It
//! does not retry: a message is delivered at most once, in the order sent
//! to that peer, or dropped (and counted), and its senders (raft, the
//! heartbeats) tolerate loss and time out.
//!
//! One [`PeerNetwork`] per shard that talks to other nodes: shard 0's
//! carries the controller's traffic and holds the listener; another
//! shard's carries what its partitions' replicas exchange with theirs on
//! other nodes. For each (node, shard) it sends to, a network opens one
//! outbound connection (`outbound.rs`: a bounded queue, a lazy connect,
//! reconnects with backoff, a writer that coalesces queued frames into
//! few writes). Shard 0 accepts every connection on the listener
//! (`inbound.rs`: the hello check) and hands one meant for another shard
//! over to it, socket and all, so that shard reads its frames itself and
//! hands each message to its own `inbound` channel. Data flows only from
//! the shard that opened a connection to the one that accepted it, so
//! between two shards there are two connections, one each way.
//!
//! # Wire
//!
//! Little-endian throughout (`wire.rs`). A connection opens with a hello
//! from the connecting shard:
//!
//! ```text
//! version 1: [magic b"SLPR"][u8 1][22 bytes cluster id][i32 from node][i32 to node]
//! version 2: [magic b"SLPR"][u8 2][22 bytes cluster id][i32 from node][i32 to node]
//!            [u32 from shard][u32 to shard]
//! ```
//!
//! Version 1 is shard 0 to shard 0 (and what a node of the release before
//! sends and takes). A shard is named as placements name it: the acceptor
//! serves the connection on that number modulo its shard count.
//!
//! The acceptor answers one status byte: 0 accepts; any other is a
//! [`wire::Refusal`] code (1 bad magic, 2 unsupported version, 3 another
//! cluster, 4 meant for another node, 5 claims to be from the acceptor
//! itself, 6 too many connections), after which it closes the connection.
//! A hello must arrive, and be answered, within [`HANDSHAKE_TIMEOUT`]. Then
//! the connecting shard sends frames, and the acceptor sends nothing more:
//!
//! ```text
//! [u32 length][u8 kind][body]      length = 1 + body bytes
//! ```
//!
//! **Mutual TLS** (`peer_tls`): once the hello is accepted, and on the
//! shard that serves the connection (after the hand-over, as a TLS session
//! cannot move between executors), the two sides make a TLS handshake
//! within [`HANDSHAKE_TIMEOUT`], each showing a certificate of the
//! authority the other trusts, and the frames go inside it. The hello
//! itself names only the cluster, the nodes and the shards; a connection
//! whose handshake fails carries nothing and is counted
//! ([`ConnectionsRefused::tls`]). Nodes of one cluster all speak TLS or
//! none do.
//!
//! A length over [`wire::FRAME_LENGTH_MAX`] is refused from its prefix,
//! before anything is allocated for it. A kind byte that is not a
//! [`MessageKind`], a zero length, a short or wrong hello: each closes that
//! connection, is counted in [`PeerStats`] and logged (warnings at most
//! [`WARNINGS_PER_WINDOW_MAX`] per [`WARNING_WINDOW`], so a flood cannot
//! fill the log), and touches no other connection. A newer connection from
//! a shard of a node to the same shard replaces its older one (the peer
//! reconnected; the old one is dead from its side).

mod inbound;
mod outbound;
pub mod wire;

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    convert::Infallible,
    future::Future,
    rc::Rc,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use sluice_storage::NodeId;

/// A hello and its answer take one round trip; a peer that has not
/// finished its part in this long is stuck or is not a peer.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// A frame begun and not continued for this long closes its connection,
/// so a peer that stops mid-frame does not hold a buffer forever. Even the
/// largest frame moves some bytes every few seconds on any link.
pub const FRAME_STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The first wait before reconnecting to a peer that could not be reached.
pub const RECONNECT_DELAY_MIN: Duration = Duration::from_millis(20);
/// The wait doubles up to this: well under raft's election timeouts, so a
/// peer that comes back hears from its leader within a heartbeat or two.
pub const RECONNECT_DELAY_MAX: Duration = Duration::from_secs(1);
/// A connection that lived at least this long reconnects at once when it
/// ends; a shorter one waits the backoff, so a peer that accepts and then
/// drops every connection is not dialled in a tight loop.
pub const CONNECTION_STABLE_AFTER: Duration = Duration::from_secs(1);
/// Messages queued for one peer, at most. Raft sends a few per tick to
/// each peer; this covers seconds of an unreachable peer's backlog.
pub const QUEUE_MESSAGES_MAX: usize = 4096;
/// Bytes queued for one peer, at most: two quorum messages of the largest
/// size (snapshots), so one can be queued behind another.
pub const QUEUE_BYTES_MAX: usize = 2 * wire::BODY_BYTES_MAX;
/// Accepted connections held at once, handshakes included. Each peer
/// opens one; this leaves room for hundreds of nodes and for connections
/// that are still in their handshake, while bounding what a flood of
/// connections costs (each may buffer one frame).
pub const INBOUND_CONNECTIONS_MAX: usize = 256;
/// Warnings about bad input logged per window, at most; the rest are
/// counted and their number logged with the next one.
pub const WARNINGS_PER_WINDOW_MAX: u32 = 20;
pub const WARNING_WINDOW: Duration = Duration::from_secs(10);

/// What a message is for; the transport carries the body opaque.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MessageKind {
    Quorum = 1,
    ControllerRequest = 2,
    ControllerReply = 3,
    /// Partition replication's frames between two shards.
    Replication = 4,
    /// The transaction coordinators' questions to other nodes (markers to
    /// write, transactions to verify) and their answers.
    Transaction = 5,
}

impl MessageKind {
    /// The kind a frame's kind byte names; `None` for any other byte, which
    /// the reader refuses.
    pub fn from_byte(byte: u8) -> Option<MessageKind> {
        Some(match byte {
            1 => MessageKind::Quorum,
            2 => MessageKind::ControllerRequest,
            3 => MessageKind::ControllerReply,
            4 => MessageKind::Replication,
            5 => MessageKind::Transaction,
            _ => return None,
        })
    }
}

/// A message received from a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerMessage {
    /// The node that sent it, as its accepted hello said.
    pub from: NodeId,
    /// The shard of that node that sent it (its index there).
    pub from_shard: u32,
    pub kind: MessageKind,
    pub body: Bytes,
}

/// An accepted connection meant for another shard of this node, handed
/// over with its hello answered: the shard (its index) takes it with
/// [`PeerNetwork::adopt`].
pub struct HandedOver {
    pub shard: usize,
    pub socket: std::os::fd::OwnedFd,
    pub hello: wire::Hello,
}

/// Where a network lives: its node, its shard's index, and how many shards
/// the node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub node: NodeId,
    pub shard: u32,
    pub shard_count: u32,
}

/// Why [`PeerNetwork::send`] dropped a message. Every one is counted in
/// [`PeerStats::messages_dropped`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("no peer address is known for node {node}")]
    UnknownAddress { node: NodeId },
    #[error("the queue to node {node} is full ({messages} messages, {bytes} bytes)")]
    QueueFull {
        node: NodeId,
        messages: usize,
        bytes: usize,
    },
    #[error("a message body of {bytes} bytes is over the cap of {max}")]
    TooLarge { bytes: usize, max: usize },
    #[error("node {node} is this node")]
    ToThisNode { node: NodeId },
    #[error("the peer network is stopped")]
    Stopped,
}

/// Connections refused by this node's acceptor, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionsRefused {
    pub bad_magic: u64,
    pub unsupported_version: u64,
    pub other_cluster: u64,
    pub not_this_node: u64,
    pub from_this_node: u64,
    pub too_many_connections: u64,
    /// Closed by the other side before its hello was whole.
    pub short_hello: u64,
    /// No whole hello within [`HANDSHAKE_TIMEOUT`].
    pub handshake_timeout: u64,
    /// A TLS handshake after the hello that failed or did not end in time
    /// (peer TLS).
    pub tls: u64,
}

impl ConnectionsRefused {
    pub fn total(&self) -> u64 {
        self.bad_magic
            + self.unsupported_version
            + self.other_cluster
            + self.not_this_node
            + self.from_this_node
            + self.too_many_connections
            + self.short_hello
            + self.handshake_timeout
            + self.tls
    }

    fn count(&mut self, refusal: wire::Refusal) {
        use wire::Refusal::*;
        let counter = match refusal {
            BadMagic => &mut self.bad_magic,
            UnsupportedVersion => &mut self.unsupported_version,
            OtherCluster => &mut self.other_cluster,
            NotThisNode => &mut self.not_this_node,
            FromThisNode => &mut self.from_this_node,
            TooManyConnections => &mut self.too_many_connections,
        };
        *counter += 1;
    }
}

/// The network's counters since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Inbound connections whose hello was accepted.
    pub connections_accepted: u64,
    pub connections_refused: ConnectionsRefused,
    /// Accepted connections closed for a frame that is not one (oversize
    /// length, zero length, unknown kind, stalled).
    pub frames_refused: u64,
    /// Outbound connects that did not end in an accepted hello (refused,
    /// unreachable, timed out).
    pub connects_failed: u64,
    /// Messages written to a peer's connection.
    pub messages_sent: u64,
    /// Messages handed to the `inbound` channel.
    pub messages_received: u64,
    /// Messages given to `send` that will not be written: refused by `send`
    /// (see [`SendError`]), queued when a connect failed, taken off the
    /// queue when a write failed, or queued when the network stopped.
    pub messages_dropped: u64,
}

/// The node-to-node transport of one shard of a node; every method is
/// called there, inside its executor. Shard 0's holds the listener and
/// hands the connections meant for other shards over to them.
pub struct PeerNetwork {
    /// This network, for the tasks `send` starts.
    me: std::rc::Weak<PeerNetwork>,
    node_id: NodeId,
    shard: u32,
    shard_count: u32,
    cluster_id: [u8; wire::CLUSTER_ID_BYTES],
    inbound: async_channel::Sender<PeerMessage>,
    /// Where accepted connections meant for other shards go.
    hand_over: Option<Box<dyn Fn(HandedOver)>>,
    /// Mutual TLS, begun right after the hello is accepted; `None`:
    /// plaintext.
    tls: Option<Rc<crate::tls::PeerTls>>,
    /// Each peer node's address.
    addresses: RefCell<HashMap<NodeId, String>>,
    /// One per (node, shard) sent to, each with its connection's task.
    peers: RefCell<HashMap<(NodeId, u32), Rc<outbound::Peer>>>,
    /// Accepted connections past their hello, by the node and shard that
    /// opened them and the shard they are for.
    accepted: RefCell<HashMap<(NodeId, u32, u32), inbound::Accepted>>,
    /// Accepted connections open, handshakes included.
    accepted_open: Cell<usize>,
    next_connection_id: Cell<u64>,
    stats: Cell<PeerStats>,
    warnings: WarningLimit,
    stopped: Cell<bool>,
    /// Closed by `stop`: every task races its work against this.
    stop_sender: async_channel::Sender<Infallible>,
    stop_receiver: async_channel::Receiver<Infallible>,
}

impl PeerNetwork {
    /// Serves `listener` (accepting peers' connections) and returns the
    /// handle; messages received go to `inbound`, in order per sender. A
    /// full `inbound` channel stops the reading of that sender's connection
    /// (backpressure over TCP); a closed one closes the connections.
    ///
    /// Must be called inside the glommio executor the network is to live
    /// on. The tasks hold the network until [`PeerNetwork::stop`]; dropping
    /// the handle does not end them.
    ///
    /// Panics if `cluster_id` is not 22 bytes: a node's identity is checked
    /// long before (`node_identity`), so that is a bug.
    pub fn start(
        node_id: NodeId,
        cluster_id: Arc<str>,
        listener: glommio::net::TcpListener,
        inbound: async_channel::Sender<PeerMessage>,
    ) -> Rc<PeerNetwork> {
        let place = Place {
            node: node_id,
            shard: 0,
            shard_count: 1,
        };
        PeerNetwork::start_on_shard(place, cluster_id, Some(listener), inbound, None, None)
    }

    /// [`PeerNetwork::start`] for shard `place.shard` of a node of
    /// `place.shard_count` shards. Only the shard with the `listener`
    /// accepts; it hands each connection meant for another shard to
    /// `hand_over`, which gets it to that shard's [`PeerNetwork::adopt`]
    /// (without one, every connection is served here).
    pub fn start_on_shard(
        place: Place,
        cluster_id: Arc<str>,
        listener: Option<glommio::net::TcpListener>,
        inbound: async_channel::Sender<PeerMessage>,
        hand_over: Option<Box<dyn Fn(HandedOver)>>,
        tls: Option<Rc<crate::tls::PeerTls>>,
    ) -> Rc<PeerNetwork> {
        let cluster_id: [u8; wire::CLUSTER_ID_BYTES] =
            cluster_id.as_bytes().try_into().unwrap_or_else(|_| {
                panic!(
                    "cluster id {cluster_id:?} is not {} bytes",
                    wire::CLUSTER_ID_BYTES
                )
            });
        let (stop_sender, stop_receiver) = async_channel::bounded(1);
        let network = Rc::new_cyclic(|me| PeerNetwork {
            me: me.clone(),
            node_id: place.node,
            shard: place.shard,
            shard_count: place.shard_count.max(1),
            cluster_id,
            inbound,
            hand_over,
            tls,
            addresses: RefCell::default(),
            peers: RefCell::default(),
            accepted: RefCell::default(),
            accepted_open: Cell::new(0),
            next_connection_id: Cell::new(0),
            stats: Cell::default(),
            warnings: WarningLimit::default(),
            stopped: Cell::new(false),
            stop_sender,
            stop_receiver,
        });
        if let Some(listener) = listener {
            network.spawn(inbound::accept_loop(network.clone(), listener));
        }
        network
    }

    /// Serves a connection accepted by another shard of this node for this
    /// one, its hello already answered.
    pub fn adopt(&self, handed: HandedOver) {
        if self.stopped.get() {
            return;
        }
        let network = self
            .me
            .upgrade()
            .expect("a network's handle outlives its calls");
        inbound::adopt(&network, handed);
    }

    /// The shard a hello's shard means on this node.
    fn shard_of(&self, hello: &wire::Hello) -> u32 {
        hello.to_shard % self.shard_count
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Where node `node` listens (voters from config at start; brokers
    /// learned later). A changed address drops the connections to the old
    /// one; what is queued goes to the new one. This node's own address and
    /// calls after `stop` are ignored. Shard 0 of the node is dialled at
    /// once by shard 0's network (the controller's traffic goes there);
    /// other shards when something is first sent to them.
    pub fn set_address(&self, node: NodeId, addr: String) {
        if node == self.node_id || self.stopped.get() {
            return;
        }
        self.addresses.borrow_mut().insert(node, addr.clone());
        for ((peer_node, _), peer) in self.peers.borrow().iter() {
            if *peer_node == node {
                peer.set_address(addr.clone());
            }
        }
        if self.shard == 0 {
            self.peer(node, 0);
        }
    }

    /// Queues `body` for shard 0 of `to` (the controller's traffic); see
    /// [`PeerNetwork::send_to_shard`].
    pub fn send(&self, to: NodeId, kind: MessageKind, body: Bytes) -> Result<(), SendError> {
        self.send_to_shard(to, 0, kind, body)
    }

    /// Queues `body` for shard `shard` of `to` (as a placement names it:
    /// see [`wire::Hello`]) and returns at once (never awaits). Connects
    /// lazily and reconnects with backoff. The message is dropped and
    /// counted, with the reason returned, when the address of `to` is
    /// unknown, its queue is full ([`QUEUE_MESSAGES_MAX`],
    /// [`QUEUE_BYTES_MAX`]), the body is over [`wire::BODY_BYTES_MAX`], `to`
    /// is this node, or the network is stopped. A queued message may still
    /// be dropped (see [`PeerStats::messages_dropped`]).
    pub fn send_to_shard(
        &self,
        to: NodeId,
        shard: u32,
        kind: MessageKind,
        body: Bytes,
    ) -> Result<(), SendError> {
        let outcome = self.try_queue(to, shard, kind, body);
        if outcome.is_err() {
            self.count(|stats| stats.messages_dropped += 1);
        }
        outcome
    }

    fn try_queue(
        &self,
        to: NodeId,
        shard: u32,
        kind: MessageKind,
        body: Bytes,
    ) -> Result<(), SendError> {
        if self.stopped.get() {
            return Err(SendError::Stopped);
        }
        if to == self.node_id {
            return Err(SendError::ToThisNode { node: to });
        }
        if body.len() > wire::BODY_BYTES_MAX {
            return Err(SendError::TooLarge {
                bytes: body.len(),
                max: wire::BODY_BYTES_MAX,
            });
        }
        let peer = self
            .peer(to, shard)
            .ok_or(SendError::UnknownAddress { node: to })?;
        peer.push(kind, body)
    }

    /// The peer (node, shard), started if its node's address is known.
    fn peer(&self, node: NodeId, shard: u32) -> Option<Rc<outbound::Peer>> {
        if let Some(peer) = self.peers.borrow().get(&(node, shard)) {
            return Some(peer.clone());
        }
        let address = self.addresses.borrow().get(&node)?.clone();
        let peer = Rc::new(outbound::Peer::new(node, shard, address));
        self.peers.borrow_mut().insert((node, shard), peer.clone());
        let network = self
            .me
            .upgrade()
            .expect("a network's handle outlives its calls");
        self.spawn(outbound::run(network, peer.clone()));
        Some(peer)
    }

    /// The counters since start.
    pub fn stats(&self) -> PeerStats {
        self.stats.get()
    }

    /// Stops accepting, closes every connection, ends the tasks, and drops
    /// what is queued (counted). The sockets close when the tasks next run,
    /// right after the caller yields. Later calls to `send` return
    /// [`SendError::Stopped`].
    pub fn stop(&self) {
        if self.stopped.replace(true) {
            return;
        }
        self.stop_sender.close();
        let dropped: usize = self.peers.borrow().values().map(|peer| peer.clear()).sum();
        self.count(|stats| stats.messages_dropped += dropped as u64);
        self.peers.borrow_mut().clear();
        self.accepted.borrow_mut().clear();
    }

    /// Runs `work` as a task of its own until it ends or the network stops.
    fn spawn(&self, work: impl Future<Output = ()> + 'static) {
        let stop = self.stop_receiver.clone();
        glommio::spawn_local(async move {
            futures_lite::future::or(work, async move {
                // Nothing is ever sent: this returns when `stop` closes it.
                let _ = stop.recv().await;
            })
            .await;
        })
        .detach();
    }

    fn count(&self, update: impl FnOnce(&mut PeerStats)) {
        let mut stats = self.stats.get();
        update(&mut stats);
        self.stats.set(stats);
    }

    fn next_connection_id(&self) -> u64 {
        let id = self.next_connection_id.get();
        self.next_connection_id.set(id + 1);
        id
    }
}

/// Bounds the warnings about bad input: at most
/// [`WARNINGS_PER_WINDOW_MAX`] per [`WARNING_WINDOW`].
#[derive(Debug)]
struct WarningLimit {
    window_began: Cell<Instant>,
    logged: Cell<u32>,
    suppressed: Cell<u64>,
}

impl Default for WarningLimit {
    fn default() -> WarningLimit {
        WarningLimit {
            window_began: Cell::new(Instant::now()),
            logged: Cell::new(0),
            suppressed: Cell::new(0),
        }
    }
}

impl WarningLimit {
    /// Whether a warning may be logged now: `Some(n)` with the number of
    /// warnings suppressed since the last one logged, or `None` (counted).
    fn admit(&self) -> Option<u64> {
        if self.window_began.get().elapsed() >= WARNING_WINDOW {
            self.window_began.set(Instant::now());
            self.logged.set(0);
        }
        if self.logged.get() >= WARNINGS_PER_WINDOW_MAX {
            self.suppressed.set(self.suppressed.get() + 1);
            return None;
        }
        self.logged.set(self.logged.get() + 1);
        Some(self.suppressed.replace(0))
    }
}

/// `work`'s output, or `None` if it has not finished within `limit`.
async fn within<T>(limit: Duration, work: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(work.await) }, async {
        glommio::timer::sleep(limit).await;
        None
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_past_the_window_budget_are_counted_not_logged() {
        let limit = WarningLimit::default();
        for _ in 0..WARNINGS_PER_WINDOW_MAX {
            assert_eq!(limit.admit(), Some(0));
        }
        assert_eq!(limit.admit(), None);
        assert_eq!(limit.admit(), None);
        limit
            .window_began
            .set(Instant::now() - WARNING_WINDOW - Duration::from_millis(1));
        assert_eq!(
            limit.admit(),
            Some(2),
            "the next one says how many were not logged"
        );
        assert_eq!(limit.admit(), Some(0));
    }

    #[test]
    fn kinds_read_back_from_their_bytes_and_no_other_byte_is_one() {
        for kind in [
            MessageKind::Quorum,
            MessageKind::ControllerRequest,
            MessageKind::ControllerReply,
            MessageKind::Replication,
            MessageKind::Transaction,
        ] {
            assert_eq!(MessageKind::from_byte(kind as u8), Some(kind));
        }
        let known = (0..=u8::MAX)
            .filter(|byte| MessageKind::from_byte(*byte).is_some())
            .count();
        assert_eq!(known, 5);
    }
}
