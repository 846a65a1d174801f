//! A shard: one glommio executor pinned to one core, the partitions it owns,
//! its copy of the metadata, and the channels to every other shard.
//!
//! Everything a shard is sent arrives in its inbox as a [`ShardMessage`];
//! [`pump`] takes them one by one on the shard's own executor, so all the
//! shard's state changes in one place. Work for a partition (a
//! [`PartitionOp`]) runs on the partition's owner shard: see
//! [`crate::partition`].

use std::{
    cell::{Cell, RefCell},
    rc::Rc,
    sync::Arc,
};

use futures_channel::oneshot;
use sluice_storage::ShardId;

use crate::{
    cluster_metadata::Metadata,
    controller::state::Controller,
    partition::{
        ops::{PartitionKey, PartitionOp, Partitions},
        owner,
    },
    BrokerConfig,
};

/// The controller quorum as this node sees it, written by shard 0's
/// controller and read by every shard (Kafka's Metadata names the
/// controller; metrics and `cluster describe` show the rest). Plain
/// atomics: each value is read alone.
#[derive(Debug)]
pub struct QuorumView {
    /// The node that leads the quorum, -1 while none is known.
    pub leader: std::sync::atomic::AtomicI32,
    pub term: std::sync::atomic::AtomicU64,
    /// The index of the last metadata entry this node applied.
    pub applied: std::sync::atomic::AtomicU64,
    pub committed: std::sync::atomic::AtomicU64,
    /// This broker's lease with the controller leader.
    pub lease: Arc<crate::replica::state::Lease>,
    /// The broker is shutting down and has had itself fenced: it
    /// heartbeats no more, so that nothing unfences it.
    pub leaving: std::sync::atomic::AtomicBool,
}

impl Default for QuorumView {
    fn default() -> QuorumView {
        QuorumView {
            leader: (-1).into(),
            term: 0.into(),
            applied: 0.into(),
            committed: 0.into(),
            lease: Arc::default(),
            leaving: false.into(),
        }
    }
}

impl QuorumView {
    /// The view of a node of a cluster (`true`: its lease is not held
    /// until the controller leader renews it) or of a single node.
    pub fn new(in_cluster: bool) -> QuorumView {
        let lease = match in_cluster {
            true => crate::replica::state::Lease::lapsed(),
            false => crate::replica::state::Lease::default(),
        };
        QuorumView {
            lease: Arc::new(lease),
            ..QuorumView::default()
        }
    }

    /// The controller leader, if one is known.
    pub fn leader(&self) -> Option<sluice_storage::NodeId> {
        match self.leader.load(std::sync::atomic::Ordering::Relaxed) {
            -1 => None,
            node => Some(sluice_storage::NodeId(node)),
        }
    }
}

/// Everything one shard may be sent.
pub enum ShardMessage {
    Partition(PartitionKey, PartitionOp),
    /// A new metadata snapshot; answer once it is in place.
    Metadata(Arc<Metadata>, oneshot::Sender<()>),
    /// Stop accepting, finish what is in flight, close every log.
    Shutdown(oneshot::Sender<()>),
    /// Work to run on this shard (a group's requests on its coordinator, a
    /// change for the controller on shard 0).
    Run(Box<dyn FnOnce(Rc<Shard>) + Send>),
}

/// What every shard of a node shares.
#[derive(Clone)]
pub struct NodeShared {
    pub quorum_view: Arc<QuorumView>,
    pub log_dirs: Arc<crate::log_dirs::LogDirs>,
    pub quota_meters: Arc<crate::quota::Meters>,
}

/// The state of one shard. One per core, on that core's executor.
pub struct Shard {
    pub id: usize,
    pub config: BrokerConfig,
    /// The cluster this node belongs to, as its data directory records it.
    pub cluster_id: Arc<str>,
    pub peers: Vec<async_channel::Sender<ShardMessage>>,
    pub metadata: RefCell<Arc<Metadata>>,
    pub partitions: Partitions,
    pub controller: Option<Controller>,
    /// Shared by every shard of this node.
    pub quorum_view: Arc<QuorumView>,
    /// This node's log directories, shared by its shards.
    pub log_dirs: Arc<crate::log_dirs::LogDirs>,
    /// This node's quota meters and connections per IP address, shared by
    /// its shards.
    pub quota_meters: Arc<crate::quota::Meters>,
    pub connections: Cell<usize>,
    pub in_flight: Cell<usize>,
    /// How long the requests that arrived on this shard took to serve.
    pub request_latencies: crate::request_latency::RequestLatencies,
    pub shutting_down: Cell<bool>,
    /// Producer ids this shard may hand out (Kafka's InitProducerId), a
    /// block from the controller at a time.
    pub producer_ids: RefCell<std::ops::Range<i64>>,
    /// The consumer groups this shard coordinates.
    pub groups: crate::coordinator::state::Coordinator,
    /// The transactional ids this shard coordinates.
    pub txns: crate::txn::Coordinators,
    /// The replication of the replicated partitions this shard owns.
    pub replicas: crate::replica::state::Replicas,
    /// Mutual TLS on the peer port (`peer_tls`), set as the shard starts.
    pub peer_tls: std::cell::OnceCell<Rc<crate::tls::PeerTls>>,
}

impl Shard {
    /// Shard `id` of `peers.len()`, with no partitions open yet; shard 0
    /// holds the `controller`.
    pub fn new(
        id: usize,
        config: BrokerConfig,
        cluster_id: Arc<str>,
        peers: Vec<async_channel::Sender<ShardMessage>>,
        metadata: Arc<Metadata>,
        controller: Option<Controller>,
        node: NodeShared,
    ) -> Shard {
        let NodeShared {
            quorum_view,
            log_dirs,
            quota_meters,
        } = node;
        let replicas = crate::replica::state::Replicas::new(
            crate::replica::state::LAG_MAX,
            quorum_view.lease.clone(),
        );
        Shard {
            id,
            config,
            cluster_id,
            peers,
            metadata: RefCell::new(metadata),
            partitions: Partitions::default(),
            controller,
            quorum_view,
            log_dirs,
            quota_meters,
            connections: Cell::new(0),
            in_flight: Cell::new(0),
            request_latencies: Default::default(),
            shutting_down: Cell::new(false),
            producer_ids: RefCell::new(0..0),
            groups: Default::default(),
            txns: Default::default(),
            replicas,
            peer_tls: Default::default(),
        }
    }

    pub fn shard_count(&self) -> usize {
        self.peers.len()
    }

    pub fn metadata(&self) -> Arc<Metadata> {
        self.metadata.borrow().clone()
    }

    /// The shard that owns a partition whose metadata says `shard`.
    pub fn owner(&self, shard: ShardId) -> usize {
        shard.index(self.shard_count())
    }
}

/// Serves the shard's inbox until it is told to shut down (answered with
/// that message's acknowledgement, for the caller to send once the shard has
/// stopped) or every sender is gone (`None`).
pub async fn pump(
    shard: &Rc<Shard>,
    inbox: async_channel::Receiver<ShardMessage>,
) -> Option<oneshot::Sender<()>> {
    while let Ok(message) = inbox.recv().await {
        match message {
            ShardMessage::Partition(key, op) => {
                let shard = shard.clone();
                glommio::spawn_local(async move {
                    owner::run(&shard.partitions, &shard.replicas, key, op).await
                })
                .detach();
            }
            ShardMessage::Metadata(metadata, ack) => {
                *shard.metadata.borrow_mut() = metadata;
                crate::replica::roles::on_metadata(
                    &shard.replicas,
                    &shard.metadata(),
                    &shard.partitions,
                    (shard.config.node_id, shard.id),
                );
                let _ = ack.send(());
            }
            ShardMessage::Run(task) => task(shard.clone()),
            ShardMessage::Shutdown(ack) => return Some(ack),
        }
    }
    None
}
