//! The metadata records: one per change to the metadata, in the order the
//! controller quorum committed them. What a record means is
//! [`super::Metadata::apply`]; its bytes are [`super::encoding`].
//!
//! A record is checked again when it is applied, against the metadata it
//! meets there, and refused if it no longer fits (a topic created twice by
//! two nodes at once, a producer id block another node took first, a
//! stale broker epoch): every node applies the same records to the same
//! metadata, so every node refuses the same ones, and the node that
//! proposed a record learns its fate when it applies it.

use std::collections::BTreeMap;

use sluice_replication::partition::control::PartitionControl;

use crate::{
    acl::AclBinding,
    quota::{Entity, Rate},
    sasl::scram::{Credential, Hash},
};
use sluice_storage::{NodeId, ProducerId, ShardId, TopicId};

use super::image::{node, node_id};

/// One change to the metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataRecord {
    /// A new topic, whole: `shards[p]` owns its partition `p` on each of
    /// its nodes, `replicas[p]` are those nodes (the first leads).
    /// Refused if a topic of that name exists.
    TopicCreated {
        topic_id: TopicId,
        name: String,
        shards: Vec<ShardId>,
        /// Empty in records of format version 1, which had one node.
        replicas: Vec<Vec<NodeId>>,
        configs: BTreeMap<String, String>,
    },
    /// Refused if no topic has that id.
    TopicDeleted { topic_id: TopicId },
    /// The topic's whole config set after the change. Refused if no topic
    /// has that id.
    ConfigsAltered {
        topic_id: TopicId,
        configs: BTreeMap<String, String>,
    },
    /// Partitions appended to a topic: `shards[i]` owns its partition
    /// `first + i`, on the nodes `replicas[i]`. Refused unless the topic
    /// has `first` partitions (another change came first).
    PartitionsAdded {
        topic_id: TopicId,
        /// `None` in records of format version 1: appended unchecked.
        first: Option<u32>,
        shards: Vec<ShardId>,
        replicas: Vec<Vec<NodeId>>,
    },
    /// Producer ids `first..next` have been handed out; the next block
    /// starts at `next`. Refused unless the block starts where the last
    /// one ended (another node took that block first).
    ProducerIdsAllocated {
        /// `None` in records of format version 1: never back, unchecked.
        first: Option<ProducerId>,
        next: ProducerId,
    },
    /// A broker (re)joins: its addresses and rack. Its broker epoch is the
    /// index of this record in the metadata log; it starts unfenced.
    BrokerRegistered(BrokerRegistration),
    /// The broker's lease ran out: out of client metadata until it
    /// heartbeats again. Refused for another epoch than the broker's.
    BrokerFenced { node: NodeId, epoch: u64 },
    /// The broker heartbeats again. Refused for another epoch.
    BrokerUnfenced { node: NodeId, epoch: u64 },
    /// A broker's whole state, as a snapshot of the metadata holds it.
    /// Only in snapshots.
    BrokerState {
        registration: BrokerRegistration,
        epoch: u64,
        fenced: bool,
    },
    /// A partition's leader, `leader` in `leader_epoch`, asks for the
    /// in-sync set `in_sync` under partition epoch `partition_epoch`
    /// (Kafka's AlterPartition). Refused unless it still leads in that
    /// epoch, the partition epoch is current, and every new member is an
    /// unfenced replica: a stale leader changes nothing.
    InSyncAltered {
        topic_id: TopicId,
        partition: u32,
        leader: NodeId,
        leader_epoch: u32,
        partition_epoch: u32,
        in_sync: Vec<NodeId>,
    },
    /// A partition's whole state, as a snapshot of the metadata holds it.
    /// Only in snapshots, after its topic.
    PartitionState(PartitionRecord),
    /// An election of a partition's leader asked for by an operator
    /// (Kafka's ElectLeaders) or by the controller's leader balancing,
    /// held where the record is applied, against the state it meets
    /// there: every node elects the same leader. Refused (changing
    /// nothing) when it is not needed or nobody it allows can lead.
    LeaderElected {
        topic_id: TopicId,
        partition: u32,
        election: Election,
    },
    /// A move of a partition to the replicas `target` (Kafka's
    /// AlterPartitionReassignments), or a redirection of the one in
    /// progress: see [`PartitionControl::start_move`]. Refused when a
    /// target node is not a registered broker or the target is not a list
    /// of distinct nodes.
    ReassignmentStarted {
        topic_id: TopicId,
        partition: u32,
        target: Vec<NodeId>,
        /// Bytes per second each new replica is sent while it catches up;
        /// 0: unthrottled.
        throttle_bytes_per_s: u64,
    },
    /// The partition's move goes back to its original replicas. Refused
    /// when none is in progress, or no original replica is in sync.
    ReassignmentCancelled { topic_id: TopicId, partition: u32 },
    /// A partition's move in progress, as a snapshot of the metadata holds
    /// it. Only in snapshots, after the partition's state.
    ReassignmentState {
        topic_id: TopicId,
        partition: u32,
        original: Vec<NodeId>,
        target: Vec<NodeId>,
        throttle_bytes_per_s: u64,
    },
    /// Dynamic broker configs after the change, whole: the cluster-wide
    /// defaults (`node` `None`, Kafka's default BROKER resource: the broker
    /// defaults of topic configs by their broker names, `log.retention.ms`,
    /// ..., and the replication throttle rates) or one broker's own (the
    /// replication throttle rates).
    BrokerConfigsAltered {
        node: Option<NodeId>,
        configs: BTreeMap<String, String>,
    },
    /// ACL bindings added (Kafka's CreateAcls); those already present stay
    /// as they are. Refused whole if one does not pass
    /// [`AclBinding::check`] or the metadata would hold more than
    /// [`crate::acl::BINDINGS_MAX`]. Snapshots hold every binding in one.
    AclsCreated(Vec<AclBinding>),
    /// ACL bindings removed (the ones a DeleteAcls filter matched where it
    /// was served); those no longer present are skipped.
    AclsDeleted(Vec<AclBinding>),
    /// A user's SCRAM credential for one mechanism set (Kafka's
    /// AlterUserScramCredentials upsertion), or deleted with `None`. The
    /// credential is what the server keeps (salt, iterations, StoredKey,
    /// ServerKey), never the password. Refused when its iterations are
    /// outside Kafka's bounds, its keys are not the hash's length, its salt
    /// is empty or long, or (deleting) the user has none.
    ScramCredentialAltered {
        user: String,
        hash: Hash,
        credential: Option<Credential>,
    },
    /// An entity's client quotas after the change, whole (Kafka's
    /// AlterClientQuotas); empty: it has none. Refused when a key or
    /// value does not pass [`Entity::check`].
    ClientQuotasAltered {
        entity: Entity,
        values: BTreeMap<String, Rate>,
    },
}

/// Which election a [`MetadataRecord::LeaderElected`] holds (Kafka's
/// election types, with their numbers on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Election {
    /// The preferred replica (the first of the replica list) takes over,
    /// if it is alive and in sync.
    Preferred,
    /// A partition without a leader takes any alive replica, in sync or
    /// not: it may lose acknowledged records.
    Unclean,
}

impl Election {
    /// Kafka's number for the election type: 0 preferred, 1 unclean.
    pub fn code(self) -> u8 {
        match self {
            Election::Preferred => 0,
            Election::Unclean => 1,
        }
    }

    pub fn from_code(code: u8) -> Option<Election> {
        match code {
            0 => Some(Election::Preferred),
            1 => Some(Election::Unclean),
            _ => None,
        }
    }
}

impl std::fmt::Display for Election {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Election::Preferred => "preferred",
            Election::Unclean => "unclean",
        })
    }
}

/// A partition's leader, epochs, in-sync set and eligible leader replicas
/// (its replicas are its topic's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRecord {
    pub topic_id: TopicId,
    pub partition: u32,
    pub leader: Option<NodeId>,
    pub leader_epoch: u32,
    pub partition_epoch: u32,
    pub in_sync: Vec<NodeId>,
    pub eligible: Vec<NodeId>,
}

impl PartitionRecord {
    pub fn of(topic_id: TopicId, partition: u32, control: &PartitionControl) -> PartitionRecord {
        PartitionRecord {
            topic_id,
            partition,
            leader: control.leader.map(node_id),
            leader_epoch: control.leader_epoch,
            partition_epoch: control.partition_epoch,
            in_sync: control.in_sync.iter().copied().map(node_id).collect(),
            eligible: control.eligible.iter().copied().map(node_id).collect(),
        }
    }

    /// The state this record holds, of a partition on `replicas`.
    pub fn to_control(&self, replicas: Vec<u32>) -> PartitionControl {
        PartitionControl {
            replicas,
            leader: self.leader.map(node),
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
            in_sync: self.in_sync.iter().copied().map(node).collect(),
            eligible: self.eligible.iter().copied().map(node).collect(),
            moving: None,
        }
    }
}

/// A Kafka listener of a registered broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The listener's name: clients that came in through a listener of
    /// that name are told of this address. Empty in a registration of a
    /// release before named listeners, which had one: it is told to the
    /// clients of every listener.
    pub name: String,
    pub protocol: crate::security_protocol::SecurityProtocol,
    /// HOST:PORT, advertised.
    pub addr: String,
}

impl Endpoint {
    /// Whether the clients of listener `name` are told of this address.
    pub fn serves(&self, name: &str) -> bool {
        self.name.is_empty() || self.name == name
    }
}

impl BrokerRegistration {
    /// Its endpoint for the clients of listener `name`, if it has one.
    pub fn endpoint(&self, name: &str) -> Option<&Endpoint> {
        self.kafka_listeners
            .iter()
            .find(|endpoint| endpoint.name == name)
            .or_else(|| {
                self.kafka_listeners
                    .iter()
                    .find(|endpoint| endpoint.serves(name))
            })
    }

    /// Its Kafka listeners as an operator reads them ([`endpoints_text`]).
    pub fn kafka_listeners_text(&self) -> String {
        endpoints_text(&self.kafka_listeners)
    }
}

/// Kafka listeners as an operator reads them: `HOST:PORT` for a lone one
/// that serves every name or is named after its protocol,
/// `NAME://HOST:PORT` each, comma-separated, otherwise; empty: none.
pub fn endpoints_text(endpoints: &[Endpoint]) -> String {
    match endpoints {
        [only] if only.name.is_empty() || only.name == only.protocol.name() => only.addr.clone(),
        all => all
            .iter()
            .map(|endpoint| format!("{}://{}", endpoint.name, endpoint.addr))
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// What a broker says of itself when it registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub node: NodeId,
    /// Drawn at random by each start of the process: a registration of the
    /// same node with another incarnation is another process.
    pub incarnation: u128,
    pub rack: Option<String>,
    /// Where Kafka clients reach it, per listener (advertised); empty: no
    /// Kafka listener.
    pub kafka_listeners: Vec<Endpoint>,
    pub native_addr: String,
    pub peer_addr: String,
    /// Empty: no admin listener.
    pub admin_addr: String,
}
