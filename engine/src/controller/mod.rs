//! The controller: the one place metadata changes (topics, their partitions
//! and configs, broker registrations, and the blocks of producer ids
//! handed out), on shard 0 of every node.
//!
//! A change is checked against this node's image, made a record, and
//! proposed to the controller quorum ([`driver::propose`]); once the
//! quorum commits it, every node applies it to its image in log order
//! (where it is checked again), opens or removes its own partitions, and
//! installs the new image on its shards. The node that proposed it answers
//! once it has done so, so whatever the client does next, on any
//! connection to this node, sees it. This node's changes run one at a
//! time.
//!
//! - [`open`]: the quorum log at start (formed, imported, replayed).
//! - [`driver`]: the quorum driven, entries applied, effects carried out.
//! - [`cluster`]: the peers' messages, registration, heartbeats, leases.
//! - [`observer`]: brokers that are not voters, following the voters.
//! - [`elections`]: leader elections an operator asks for.
//! - [`balance`]: leadership moved back to preferred replicas.

pub mod balance;
pub mod cluster;
pub mod driver;
pub mod elections;
pub mod moves;
pub mod observer;
pub mod open;
pub mod placement;
pub(crate) mod state;

use std::{collections::BTreeMap, ops::Range, rc::Rc, sync::Arc};

use futures_channel::oneshot;
use sluice_storage::{NodeId, ProducerId, ShardId, TopicId};

use crate::{
    cluster_metadata::{Election, Metadata, MetadataRecord, TopicMeta, PRODUCER_ID_FIRST},
    partition::{ask, gather_all, ErrorKind, Failure, PartitionOp, Route},
    shard::{Shard, ShardMessage},
    topic_config::{self, log_config},
};
use driver::propose;
pub use elections::{ElectionFailure, ElectionOutcome};
pub use moves::{MoveAsked, MoveFailure, MoveInProgress};

/// A topic has at most this many partitions: each is a directory, a log and
/// open files on its shard.
pub const PARTITIONS_PER_TOPIC_MAX: u32 = 10_000;

/// Kafka's limit on topic names.
pub const TOPIC_NAME_BYTES_MAX: usize = 249;

/// Producer ids handed out per [`ControllerOp::AllocateProducerIds`]: one
/// metadata record (an fdatasync) per this many idempotent producers, and
/// at most this many ids lost when the broker restarts.
pub const PRODUCER_IDS_PER_BLOCK: i64 = 1000;

/// A topic to create, as the controller is asked for it (a protocol
/// adapter converts its own request into these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopicSpec {
    pub name: String,
    /// How many partitions; 0 for the broker's `default_partitions`.
    pub partitions: u32,
    pub configs: BTreeMap<String, String>,
    /// Replicas per partition; 0 for the default, 1.
    pub replication_factor: u16,
    /// The nodes of each partition, as the client assigned them (one list
    /// per partition); `None`: placed by the controller.
    pub assignment: Option<Vec<Vec<NodeId>>>,
}

/// Replicas a partition may have, at most (more than any cluster here
/// holds brokers; placement refuses a factor over the live brokers).
pub const REPLICATION_FACTOR_MAX: u16 = 64;

/// What became of one topic a change named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicOutcome {
    pub name: String,
    pub result: Result<(), Failure>,
}

/// Producer ids handed out together, none of them ever handed out before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdBlock {
    pub first: ProducerId,
    pub count: i64,
}

impl ProducerIdBlock {
    /// The ids of the block: `first..first + count`.
    pub fn ids(self) -> Range<i64> {
        self.first.0..self.first.0 + self.count
    }
}

/// A metadata change asked of the controller. Each answers on its `reply`
/// once the change is durable and every shard sees it (or with why not).
pub enum ControllerOp {
    /// Creates topics, one after another; an outcome per topic, in order.
    CreateTopics {
        topics: Vec<NewTopicSpec>,
        reply: oneshot::Sender<Vec<TopicOutcome>>,
    },
    /// Deletes topics by name; an outcome per name, in order.
    DeleteTopics {
        names: Vec<String>,
        reply: oneshot::Sender<Vec<TopicOutcome>>,
    },
    /// Sets some of a topic's configs; the others keep their values.
    AlterConfigs {
        topic: String,
        changes: Vec<(String, String)>,
        reply: oneshot::Sender<Result<(), Failure>>,
    },
    /// Replaces the topic's configs with `configs`, its whole new set
    /// (Kafka's AlterConfigs and IncrementalAlterConfigs). With
    /// `validate_only`, checks and changes nothing.
    SetConfigs {
        topic: String,
        configs: BTreeMap<String, String>,
        validate_only: bool,
        reply: oneshot::Sender<Result<(), Failure>>,
    },
    /// Replaces the cluster's dynamic broker defaults (`node` `None`) or
    /// one broker's dynamic configs with `configs`, checked first. With
    /// `validate_only`, checks and changes nothing.
    SetBrokerConfigs {
        node: Option<NodeId>,
        configs: BTreeMap<String, String>,
        validate_only: bool,
        reply: oneshot::Sender<Result<(), Failure>>,
    },
    /// Replaces an entity's client quotas with `values` (empty: none;
    /// Kafka's AlterClientQuotas).
    SetClientQuotas {
        entity: crate::quota::Entity,
        values: BTreeMap<String, crate::quota::Rate>,
        reply: oneshot::Sender<Result<(), Failure>>,
    },
    /// Adds ACL bindings (Kafka's CreateAcls), checked where the records
    /// are applied; in records of at most
    /// [`crate::acl::BINDINGS_PER_RECORD`].
    CreateAcls {
        bindings: Vec<crate::acl::AclBinding>,
        reply: oneshot::Sender<Result<(), Failure>>,
    },
    /// Removes ACL bindings (those a DeleteAcls filter matched).
    DeleteAcls {
        bindings: Vec<crate::acl::AclBinding>,
        reply: oneshot::Sender<Result<(), Failure>>,
    },
    /// Sets (`Some`) or deletes (`None`) users' SCRAM credentials (Kafka's
    /// AlterUserScramCredentials), one record each, in order; an outcome
    /// per change.
    AlterScramCredentials {
        changes: Vec<(
            String,
            crate::sasl::scram::Hash,
            Option<crate::sasl::scram::Credential>,
        )>,
        reply: oneshot::Sender<Vec<Result<(), Failure>>>,
    },
    /// Grows the topic to `count` partitions (Kafka's CreatePartitions),
    /// on the nodes `assignment` gives the new ones, if it does. With
    /// `validate_only`, checks everything and changes nothing.
    CreatePartitions {
        topic: String,
        count: u32,
        assignment: Option<Vec<Vec<NodeId>>>,
        validate_only: bool,
        reply: oneshot::Sender<Result<(), Failure>>,
    },
    /// Hands out a block of producer ids never handed out before (Kafka's
    /// InitProducerId).
    AllocateProducerIds {
        reply: oneshot::Sender<Result<ProducerIdBlock, Failure>>,
    },
    /// Holds `election` for each named partition (topic, partition), or
    /// with `None` for every partition (Kafka's ElectLeaders); see
    /// [`elections::elect_leaders`].
    ElectLeaders {
        election: Election,
        partitions: Option<Vec<(String, u32)>>,
        reply: oneshot::Sender<Vec<ElectionOutcome>>,
    },
    /// Starts or cancels moves of partitions to other replicas (Kafka's
    /// AlterPartitionReassignments); see [`moves::move_partitions`].
    MovePartitions {
        moves: Vec<MoveAsked>,
        throttle_bytes_per_s: u64,
        factor_may_change: bool,
        reply: oneshot::Sender<Vec<Result<(), MoveFailure>>>,
    },
}

/// Kafka's rule: 1 to 249 of `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub fn check_topic_name(name: &str) -> Result<(), Failure> {
    let valid = !name.is_empty()
        && name.len() <= TOPIC_NAME_BYTES_MAX
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(Failure::new(
            ErrorKind::InvalidTopicName,
            format!("topic name {name:?} must be 1 to {TOPIC_NAME_BYTES_MAX} of [a-zA-Z0-9._-], not . or .."),
        ))
    }
}

/// The replication factor `factor` asks for (0: the broker's default,
/// checked when the topic is placed), if a partition can have that many
/// replicas.
pub fn check_replication_factor(factor: u16) -> Result<u16, Failure> {
    match factor {
        0 => Ok(0),
        factor if factor <= REPLICATION_FACTOR_MAX => Ok(factor),
        factor => Err(Failure::new(
            ErrorKind::InvalidReplicationFactor,
            format!("replication factor {factor} is over the most a partition may have, {REPLICATION_FACTOR_MAX}"),
        )),
    }
}

/// Runs `op` on the controller: here if this is shard 0, else sent there.
pub async fn to_controller(shard: &Rc<Shard>, op: ControllerOp) {
    if shard.id == 0 {
        run(shard, op).await;
    } else {
        let task = Box::new(move |shard: Rc<Shard>| {
            glommio::spawn_local(async move { run(&shard, op).await }).detach();
        });
        let _ = shard.peers[0].send(ShardMessage::Run(task)).await;
    }
}

/// Runs a controller op on shard 0 (where `shard` is).
pub async fn run(shard: &Rc<Shard>, op: ControllerOp) {
    let controller = shard
        .controller
        .as_ref()
        .expect("controller ops run on shard 0");
    let _turn = controller
        .lock
        .acquire_permit(1)
        .await
        .expect("controller lock is never closed");
    match op {
        ControllerOp::CreateTopics { topics, reply } => {
            let mut outcomes = Vec::new();
            for topic in topics {
                let result = create_topic(shard, &topic).await;
                outcomes.push(TopicOutcome {
                    name: topic.name,
                    result,
                });
            }
            let _ = reply.send(outcomes);
        }
        ControllerOp::DeleteTopics { names, reply } => {
            let mut outcomes = Vec::new();
            for name in names {
                let result = delete_topic(shard, &name).await;
                outcomes.push(TopicOutcome { name, result });
            }
            let _ = reply.send(outcomes);
        }
        ControllerOp::AlterConfigs {
            topic,
            changes,
            reply,
        } => {
            let result = match existing(&shard.metadata(), &topic) {
                Ok(meta) => {
                    let mut configs = meta.configs.clone();
                    configs.extend(changes);
                    set_configs(shard, &topic, configs, false).await
                }
                Err(failure) => Err(failure),
            };
            let _ = reply.send(result);
        }
        ControllerOp::SetConfigs {
            topic,
            configs,
            validate_only,
            reply,
        } => {
            let _ = reply.send(set_configs(shard, &topic, configs, validate_only).await);
        }
        ControllerOp::SetBrokerConfigs {
            node,
            configs,
            validate_only,
            reply,
        } => {
            let _ = reply.send(set_broker_configs(shard, node, configs, validate_only).await);
        }
        ControllerOp::AlterScramCredentials { changes, reply } => {
            let mut outcomes = Vec::with_capacity(changes.len());
            for (user, hash, credential) in changes {
                let record = MetadataRecord::ScramCredentialAltered {
                    user,
                    hash,
                    credential,
                };
                outcomes.push(propose(shard, record).await);
            }
            let _ = reply.send(outcomes);
        }
        ControllerOp::SetClientQuotas {
            entity,
            values,
            reply,
        } => {
            let record = MetadataRecord::ClientQuotasAltered { entity, values };
            let _ = reply.send(propose(shard, record).await);
        }
        ControllerOp::CreateAcls { bindings, reply } => {
            let _ = reply.send(change_acls(shard, bindings, MetadataRecord::AclsCreated).await);
        }
        ControllerOp::DeleteAcls { bindings, reply } => {
            let _ = reply.send(change_acls(shard, bindings, MetadataRecord::AclsDeleted).await);
        }
        ControllerOp::CreatePartitions {
            topic,
            count,
            assignment,
            validate_only,
            reply,
        } => {
            let result =
                create_partitions(shard, &topic, count, assignment.as_deref(), validate_only).await;
            let _ = reply.send(result);
        }
        ControllerOp::AllocateProducerIds { reply } => {
            let _ = reply.send(allocate_producer_ids(shard).await);
        }
        ControllerOp::ElectLeaders {
            election,
            partitions,
            reply,
        } => {
            let _ = reply.send(elections::elect_leaders(shard, election, partitions).await);
        }
        ControllerOp::MovePartitions {
            moves,
            throttle_bytes_per_s,
            factor_may_change,
            reply,
        } => {
            let outcomes =
                moves::move_partitions(shard, moves, throttle_bytes_per_s, factor_may_change).await;
            let _ = reply.send(outcomes);
        }
    }
}

async fn create_topic(shard: &Rc<Shard>, topic: &NewTopicSpec) -> Result<(), Failure> {
    check_topic_name(&topic.name)?;
    // No count given: the broker's default.
    let partitions = match topic.partitions {
        0 => shard.config.default_partitions,
        partitions => partitions,
    };
    if partitions == 0 || partitions > PARTITIONS_PER_TOPIC_MAX {
        return Err(Failure::new(
            ErrorKind::InvalidPartitionCount,
            format!(
                "{} partitions: a topic has 1 to {PARTITIONS_PER_TOPIC_MAX}",
                topic.partitions
            ),
        ));
    }
    log_config(&topic.configs)
        .map_err(|error| Failure::new(ErrorKind::InvalidConfig, error.to_string()))?;
    let metadata = shard.metadata();
    if metadata.topic(&topic.name).is_some() {
        return Err(Failure::new(
            ErrorKind::TopicExists,
            format!("topic {} exists", topic.name),
        ));
    }
    let factor = match check_replication_factor(topic.replication_factor)? {
        0 => shard.config.default_replication_factor.max(1),
        factor => factor,
    };
    // The broker's `min.insync.replicas`, written into a topic created
    // without its own, so that every node applies the same.
    let mut configs = topic_config::kept(topic.configs.clone());
    if shard.config.min_insync_replicas > 1 {
        configs
            .entry("min.insync.replicas".to_string())
            .or_insert_with(|| shard.config.min_insync_replicas.to_string());
    }
    let (shards, replicas) = match &topic.assignment {
        Some(assignment) => assigned(shard, &metadata, partitions, assignment)?,
        None => place(shard, &metadata, partitions, usize::from(factor))?,
    };
    let record = MetadataRecord::TopicCreated {
        topic_id: TopicId(rand::random::<u128>()),
        name: topic.name.clone(),
        shards,
        replicas,
        configs,
    };
    propose(shard, record).await?;
    tracing::info!(topic = %topic.name, partitions, "topic created");
    Ok(())
}

/// Replaces the cluster's dynamic broker defaults (`node` `None`) or
/// broker `node`'s dynamic configs with `configs`, checked first; with
/// `validate_only`, stops after the check.
async fn set_broker_configs(
    shard: &Rc<Shard>,
    node: Option<NodeId>,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), Failure> {
    topic_config::check_broker_configs(node.is_none(), &configs)
        .map_err(|error| Failure::new(ErrorKind::InvalidConfig, error.to_string()))?;
    if validate_only {
        return Ok(());
    }
    propose(
        shard,
        MetadataRecord::BrokerConfigsAltered { node, configs },
    )
    .await
}

/// Proposes `bindings` in records `record` makes, a chunk at a time.
async fn change_acls(
    shard: &Rc<Shard>,
    bindings: Vec<crate::acl::AclBinding>,
    record: fn(Vec<crate::acl::AclBinding>) -> MetadataRecord,
) -> Result<(), Failure> {
    for chunk in bindings.chunks(crate::acl::BINDINGS_PER_RECORD) {
        propose(shard, record(chunk.to_vec())).await?;
    }
    Ok(())
}

async fn delete_topic(shard: &Rc<Shard>, name: &str) -> Result<(), Failure> {
    let meta = existing(&shard.metadata(), name)?;
    propose(shard, MetadataRecord::TopicDeleted { topic_id: meta.id }).await
}

/// Replaces topic `name`'s configs with `configs`, checked first; with
/// `validate_only`, stops after the check.
async fn set_configs(
    shard: &Rc<Shard>,
    name: &str,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), Failure> {
    let meta = existing(&shard.metadata(), name)?;
    log_config(&configs)
        .map_err(|error| Failure::new(ErrorKind::InvalidConfig, error.to_string()))?;
    if validate_only {
        return Ok(());
    }
    let record = MetadataRecord::ConfigsAltered {
        topic_id: meta.id,
        configs: topic_config::kept(configs),
    };
    propose(shard, record).await
}

/// Where `partitions` new partitions go, `factor` replicas each: over the
/// live brokers as [`placement::spread`] places them, counting the
/// partitions `metadata` has; each on the least loaded shard of its leader
/// (the same shard on every replica). A cluster with no live broker
/// registered yet (a node starting alone) places them on this node.
///
/// Errors: `InvalidReplicationFactor` for a factor above the live brokers.
fn place(
    shard: &Shard,
    metadata: &Metadata,
    partitions: u32,
    factor: usize,
) -> Result<(Vec<ShardId>, Vec<Vec<NodeId>>), Failure> {
    let replicas = metadata.replicas_per_broker();
    let mut leaders: BTreeMap<NodeId, usize> = BTreeMap::new();
    for topic in metadata.topics.values() {
        for partition in 0..topic.partition_count() {
            if let Some(leader) = topic.leader(partition) {
                *leaders.entry(leader).or_default() += 1;
            }
        }
    }
    let mut candidates: Vec<placement::Candidate> = metadata
        .live_brokers()
        .map(|broker| {
            let node = broker.registration.node;
            placement::Candidate {
                node,
                rack: broker.registration.rack.clone(),
                replicas: replicas.get(&node).copied().unwrap_or(0),
                leaders: leaders.get(&node).copied().unwrap_or(0),
            }
        })
        .collect();
    if candidates.is_empty() {
        let node = shard.config.node_id;
        candidates.push(placement::Candidate {
            node,
            rack: shard.config.rack.clone(),
            replicas: replicas.get(&node).copied().unwrap_or(0),
            leaders: leaders.get(&node).copied().unwrap_or(0),
        });
    }
    let placed = placement::spread(candidates, partitions, factor)
        .map_err(|message| Failure::new(ErrorKind::InvalidReplicationFactor, message))?;
    let shard_count = shard.shard_count();
    let mut shard_load: BTreeMap<NodeId, Vec<usize>> = BTreeMap::new();
    let mut shards = Vec::with_capacity(placed.len());
    for nodes in &placed {
        let load = shard_load
            .entry(nodes[0])
            .or_insert_with(|| metadata.load(nodes[0], shard_count));
        let (least, _) = load
            .iter()
            .enumerate()
            .min_by_key(|(id, load)| (**load, *id))
            .expect("a shard");
        load[least] += 1;
        shards.push(ShardId(
            u32::try_from(least).expect("fewer than 2^32 shards"),
        ));
    }
    Ok((shards, placed))
}

/// Partitions placed as a client assigned them: `partitions` lists of
/// distinct live brokers (the first leads), each on the least loaded of
/// its first node's shards.
///
/// Errors: `InvalidReplicaAssignment` for a list count other than
/// `partitions`, an empty list or one naming a node twice, or a node that
/// is not a live broker.
fn assigned(
    shard: &Shard,
    metadata: &Metadata,
    partitions: u32,
    assignment: &[Vec<NodeId>],
) -> Result<(Vec<ShardId>, Vec<Vec<NodeId>>), Failure> {
    let invalid = |message: String| Failure::new(ErrorKind::InvalidReplicaAssignment, message);
    if assignment.len() != partitions as usize {
        return Err(invalid(format!(
            "{} replica assignments for {partitions} partitions",
            assignment.len()
        )));
    }
    let live = |node: NodeId| match metadata.brokers.get(&node) {
        Some(broker) => !broker.fenced,
        None => metadata.brokers.is_empty() && node == shard.config.node_id,
    };
    let shard_count = shard.shard_count();
    let mut load: BTreeMap<NodeId, Vec<usize>> = BTreeMap::new();
    let mut shards = Vec::new();
    for (index, nodes) in assignment.iter().enumerate() {
        let Some(node) = nodes.first() else {
            return Err(invalid(format!("partition {index} on no node")));
        };
        let distinct: std::collections::BTreeSet<&NodeId> = nodes.iter().collect();
        if distinct.len() != nodes.len() || nodes.len() > usize::from(REPLICATION_FACTOR_MAX) {
            return Err(invalid(format!(
                "partition {index} on nodes {nodes:?}: each node at most once, at most {REPLICATION_FACTOR_MAX}"
            )));
        }
        if let Some(dead) = nodes.iter().find(|node| !live(**node)) {
            return Err(invalid(format!(
                "partition {index} on node {dead}, which is not a live broker"
            )));
        }
        // The partition's shard is the least loaded of its first node's;
        // every node holds it on the shard of that number.
        let load = load
            .entry(*node)
            .or_insert_with(|| metadata.load(*node, shard_count));
        let (least, _) = load
            .iter()
            .enumerate()
            .min_by_key(|(id, load)| (**load, *id))
            .expect("a shard");
        load[least] += 1;
        shards.push(ShardId(
            u32::try_from(least).expect("fewer than 2^32 shards"),
        ));
    }
    Ok((shards, assignment.to_vec()))
}

/// Grows topic `name` to `count` partitions; with `validate_only`, checks
/// and stops there. The new partitions are placed like a new topic's and
/// proposed; once committed, each node opens its own.
///
/// Errors: `UnknownTopic`; `InvalidPartitions` for a count not above the
/// current one or above [`PARTITIONS_PER_TOPIC_MAX`], or when another
/// change grew the topic first; `InvalidConfig` if the topic's configs no
/// longer make a log config; `StorageFailed` if a partition does not open.
async fn create_partitions(
    shard: &Rc<Shard>,
    name: &str,
    count: u32,
    assignment: Option<&[Vec<NodeId>]>,
    validate_only: bool,
) -> Result<(), Failure> {
    let metadata = shard.metadata();
    let meta = existing(&metadata, name)?;
    let current = meta.partition_count();
    if count <= current || count > PARTITIONS_PER_TOPIC_MAX {
        return Err(Failure::new(
            ErrorKind::InvalidPartitions,
            format!(
                "topic {name} has {current} partitions; it can grow to more than that and at most {PARTITIONS_PER_TOPIC_MAX}, not {count}"
            ),
        ));
    }
    log_config(&meta.effective_configs())
        .map_err(|error| Failure::new(ErrorKind::InvalidConfig, error.to_string()))?;
    let (shards, replicas) = match assignment {
        Some(assignment) => assigned(shard, &metadata, count - current, assignment)?,
        None => {
            let factor = meta.replicas.first().map_or(1, Vec::len).max(1);
            place(shard, &metadata, count - current, factor)?
        }
    };
    if validate_only {
        return Ok(());
    }
    let record = MetadataRecord::PartitionsAdded {
        topic_id: meta.id,
        first: Some(current),
        shards,
        replicas,
    };
    propose(shard, record).await?;
    tracing::info!(
        topic = name,
        from = current,
        to = count,
        "partitions created"
    );
    Ok(())
}

/// Tries to take a block of producer ids this many times before giving up
/// (another node took each block first).
const PRODUCER_ID_ATTEMPTS_MAX: usize = 8;

/// Hands out the next [`PRODUCER_IDS_PER_BLOCK`] producer ids, once the
/// block is committed in the metadata log: ids are never handed out twice,
/// whenever and wherever a broker stops. `Internal` once the ids run out
/// at `i64::MAX`; `NotController` if no block could be committed.
async fn allocate_producer_ids(shard: &Rc<Shard>) -> Result<ProducerIdBlock, Failure> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let first = shard.metadata().producer_id_next;
        let next = first
            .0
            .checked_add(PRODUCER_IDS_PER_BLOCK)
            .map(ProducerId)
            .ok_or_else(|| {
                Failure::new(
                    ErrorKind::Internal,
                    format!("producer ids are used up: the next block would start at {first}"),
                )
            })?;
        assert!(
            first >= PRODUCER_ID_FIRST && next > first,
            "producer ids went back: {next} <= {first}"
        );
        let record = MetadataRecord::ProducerIdsAllocated {
            first: Some(first),
            next,
        };
        match propose(shard, record).await {
            Ok(()) => {
                tracing::debug!(%first, %next, "producer ids allocated");
                return Ok(ProducerIdBlock {
                    first,
                    count: PRODUCER_IDS_PER_BLOCK,
                });
            }
            Err(failure)
                if failure.kind == ErrorKind::NotController
                    && attempts < PRODUCER_ID_ATTEMPTS_MAX
                    && shard.metadata().producer_id_next != first =>
            {
                // Another node took that block: the next one.
            }
            Err(failure) => return Err(failure),
        }
    }
}

/// The topic named `name`, or why there is none.
fn existing(metadata: &Metadata, name: &str) -> Result<Arc<TopicMeta>, Failure> {
    metadata
        .topic(name)
        .cloned()
        .ok_or_else(|| Failure::new(ErrorKind::UnknownTopic, format!("no topic {name}")))
}

/// Sends the op `make` builds to the owner of each of `partitions` of
/// `topic`, all at once, and waits for every answer; the first failure, if
/// any.
async fn on_partitions(
    shard: &Rc<Shard>,
    topic: &TopicMeta,
    partitions: impl IntoIterator<Item = u32>,
    make: impl Fn(u32, oneshot::Sender<Result<(), Failure>>) -> PartitionOp,
) -> Result<(), Failure> {
    let parts = partitions
        .into_iter()
        .map(|partition| {
            assert!(
                partition < topic.partition_count(),
                "partition {partition} of a topic with {}",
                topic.partition_count()
            );
            let route = Route::of(shard, topic, partition);
            Ok(ask(shard, route, |reply| make(partition, reply)))
        })
        .collect();
    gather_all(parts)
        .await
        .into_iter()
        .find(Result::is_err)
        .unwrap_or(Ok(()))
}

/// Installs `metadata` on every shard and waits until each has it.
pub async fn broadcast(shard: &Rc<Shard>, metadata: Arc<Metadata>) {
    let mut acks = Vec::new();
    for (id, peer) in shard.peers.iter().enumerate() {
        if id == shard.id {
            *shard.metadata.borrow_mut() = metadata.clone();
            crate::replica::roles::on_metadata(
                &shard.replicas,
                &metadata,
                &shard.partitions,
                (shard.config.node_id, shard.id),
            );
            continue;
        }
        let (ack, acked) = oneshot::channel();
        if peer
            .send(ShardMessage::Metadata(metadata.clone(), ack))
            .await
            .is_ok()
        {
            acks.push(acked);
        }
    }
    for acked in acks {
        let _ = acked.await;
    }
}

#[cfg(test)]
mod tests;
