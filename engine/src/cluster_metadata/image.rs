//! The metadata image: every topic, every broker, and how far producer ids
//! have been handed out, as of one point in the metadata log.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use sluice_replication::partition::{
    control::{ControlConfig, ControlError, ElectionError, Move, MoveError, PartitionControl},
    leader::Node,
};
use sluice_storage::{NodeId, ProducerId, ShardId, TopicId};

use super::{
    encoding::REPLICAS_PER_PARTITION_MAX,
    records::{BrokerRegistration, Election, MetadataRecord, PartitionRecord},
};
use crate::{
    acl::{self, Acls},
    quota::{self, Quotas},
    sasl::scram::{self, Credential, Hash},
    topic_config,
};

/// A topic: its id, name, where each partition lives, and configs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    pub id: TopicId,
    pub name: String,
    /// `shards[p]` owns partition `p` on each of its nodes (taken modulo
    /// the running shard count: [`ShardId::index`]).
    pub shards: Vec<ShardId>,
    /// `replicas[p]`: the nodes holding partition `p`, its leader first.
    /// As long as `shards`.
    pub replicas: Vec<Vec<NodeId>>,
    /// `control[p]`: who leads partition `p`, in which epochs, with which
    /// in-sync set (the controller's record; see
    /// [`PartitionControl`]). As long as `shards`.
    pub control: Vec<PartitionControl>,
    /// The configs the topic sets itself.
    pub configs: BTreeMap<String, String>,
    /// The cluster's dynamic broker defaults, by topic config names: what
    /// a config the topic does not set takes before the built-in default.
    pub defaults: Arc<BTreeMap<String, String>>,
}

/// A node id as the replication state machines name it. Node ids are never
/// negative (checked where they are read).
pub fn node(id: NodeId) -> Node {
    id.0 as Node
}

/// A node id of the replication state machines as the metadata names it.
pub fn node_id(node: Node) -> NodeId {
    NodeId(node as i32)
}

impl TopicMeta {
    /// A topic whose partitions start on `replicas` (the first alive one
    /// of each leading, in epoch 0) by `alive`'s account of the brokers.
    pub fn new(
        id: TopicId,
        name: String,
        shards: Vec<ShardId>,
        mut replicas: Vec<Vec<NodeId>>,
        configs: BTreeMap<String, String>,
        alive: impl Fn(NodeId) -> bool,
    ) -> TopicMeta {
        replicas.resize(shards.len(), Vec::new());
        let control = replicas
            .iter()
            .map(|nodes| new_control(nodes, &alive))
            .collect();
        TopicMeta {
            id,
            name,
            shards,
            replicas,
            control,
            configs,
            defaults: Arc::default(),
        }
    }

    /// The configs in force: the topic's own over the cluster's dynamic
    /// defaults (the rest are the built-in defaults).
    pub fn effective_configs(&self) -> BTreeMap<String, String> {
        let mut configs = (*self.defaults).clone();
        configs.extend(
            self.configs
                .iter()
                .map(|(name, value)| (name.clone(), value.clone())),
        );
        configs
    }

    pub fn partition_count(&self) -> u32 {
        self.shards.len() as u32
    }

    /// The node that leads partition `partition`, if it has one.
    pub fn leader(&self, partition: u32) -> Option<NodeId> {
        self.control.get(partition as usize)?.leader.map(node_id)
    }

    /// The controller's record of partition `partition`.
    pub fn partition(&self, partition: u32) -> Option<&PartitionControl> {
        self.control.get(partition as usize)
    }

    /// The election rules of this topic's partitions: its
    /// `min.insync.replicas` and `unclean.leader.election.enable`.
    pub fn control_config(&self) -> ControlConfig {
        topic_config::control_config(&self.effective_configs())
    }

    /// Whether `node` holds a replica of partition `partition`.
    pub fn is_replica(&self, partition: u32, node: NodeId) -> bool {
        self.replicas
            .get(partition as usize)
            .is_some_and(|nodes| nodes.contains(&node))
    }

    /// The directory of partition `partition` under `data_dir`.
    pub fn partition_dir(&self, data_dir: &Path, partition: u32) -> PathBuf {
        self.topic_dir(data_dir).join(partition.to_string())
    }

    /// The topic's directory under `data_dir`: its name and its id, so that
    /// a topic created again under the same name never meets the old one's
    /// files.
    pub fn topic_dir(&self, data_dir: &Path) -> PathBuf {
        data_dir
            .join("topics")
            .join(format!("{}-{}", self.name, self.id))
    }
}

/// The first producer id handed out. Kafka's `-1` means "no producer id";
/// ids start well clear of it and of the small numbers tests and clients
/// use as placeholders.
pub const PRODUCER_ID_FIRST: ProducerId = ProducerId(1000);

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerMeta {
    pub registration: BrokerRegistration,
    /// The index of its registration in the metadata log: a fence or an
    /// unfence names it, so a stale one changes nothing.
    pub epoch: u64,
    /// Its lease ran out: it is not in client metadata.
    pub fenced: bool,
}

/// Holds `election` on `control`: the preferred replica, or (unclean)
/// any alive replica of a partition that has no leader.
fn hold_election(
    control: &mut PartitionControl,
    election: Election,
    alive: impl Fn(Node) -> bool,
    config: ControlConfig,
) -> Result<(), ElectionError> {
    match election {
        Election::Preferred => {
            let preferred = control.preferred().ok_or(ElectionError::NoLiveReplica)?;
            control.elect_preferred(preferred, alive)
        }
        Election::Unclean => control.elect_unclean(alive, config),
    }
}

fn new_control(replicas: &[NodeId], alive: impl Fn(NodeId) -> bool) -> PartitionControl {
    let nodes: Vec<Node> = replicas.iter().copied().map(node).collect();
    PartitionControl::new(&nodes, |n| alive(node_id(n)))
}

/// Every topic, every broker, and how far producer ids have been handed
/// out, as of one point in the metadata log. Immutable; shared by `Arc`
/// between shards and replaced whole when it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub topics: BTreeMap<String, Arc<TopicMeta>>,
    pub brokers: BTreeMap<NodeId, BrokerMeta>,
    /// The lowest producer id never handed out: every id below it (from
    /// [`PRODUCER_ID_FIRST`]) has been, in a block recorded in the log.
    pub producer_id_next: ProducerId,
    /// The cluster-wide dynamic broker configs, by their broker names.
    pub broker_defaults: BTreeMap<String, String>,
    /// Each broker's own dynamic configs (the replication throttle rates).
    pub broker_configs: BTreeMap<NodeId, BTreeMap<String, String>>,
    /// The ACL bindings the authorizer decides by.
    pub acls: Arc<Acls>,
    /// The users' SCRAM credentials, by user and mechanism.
    pub scram: Arc<BTreeMap<(String, Hash), Credential>>,
    /// The client quotas, by entity.
    pub quotas: Arc<Quotas>,
}

impl Default for Metadata {
    fn default() -> Metadata {
        Metadata {
            topics: BTreeMap::new(),
            brokers: BTreeMap::new(),
            producer_id_next: PRODUCER_ID_FIRST,
            broker_defaults: BTreeMap::new(),
            broker_configs: BTreeMap::new(),
            acls: Arc::default(),
            scram: Arc::default(),
            quotas: Arc::default(),
        }
    }
}

/// Why a record was refused where it was applied (see
/// [`super::records`]): the same on every node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("topic {name} exists")]
    TopicExists { name: String },
    #[error("no topic has id {topic_id}")]
    UnknownTopic { topic_id: TopicId },
    #[error("the topic has {count} partitions now, not {expected}")]
    PartitionCountChanged { count: u32, expected: u32 },
    #[error("producer ids from {next} are the next to hand out, not from {first}")]
    ProducerIdsTaken { first: ProducerId, next: ProducerId },
    #[error("broker {node} is at epoch {current:?}, not {epoch}")]
    StaleBrokerEpoch {
        node: NodeId,
        epoch: u64,
        current: Option<u64>,
    },
    #[error("topic {topic_id} has no partition {partition}")]
    UnknownPartition { topic_id: TopicId, partition: u32 },
    #[error("partition {partition} of topic {topic_id}: {reason}")]
    PartitionChange {
        topic_id: TopicId,
        partition: u32,
        reason: ControlError,
    },
    #[error("partition {partition} of topic {topic_id}: {reason}")]
    Election {
        topic_id: TopicId,
        partition: u32,
        reason: ElectionError,
    },
    #[error("partition {partition} of topic {topic_id}: {reason}")]
    Move {
        topic_id: TopicId,
        partition: u32,
        reason: MoveError,
    },
    #[error("node {node} is not a registered broker")]
    UnknownBroker { node: NodeId },
    #[error("ACL binding {binding:?}: {reason}")]
    InvalidAcl {
        binding: Box<acl::AclBinding>,
        reason: acl::InvalidBinding,
    },
    #[error("{count} ACL bindings, over the cap of {}", acl::BINDINGS_MAX)]
    TooManyAcls { count: usize },
    #[error("user {user:?}'s {mechanism} credential: {reason}")]
    InvalidCredential {
        user: String,
        mechanism: &'static str,
        reason: String,
    },
    #[error("client quota: {0}")]
    InvalidQuota(quota::InvalidQuota),
    #[error("user {user:?} has no {mechanism} credential")]
    NoCredential {
        user: String,
        mechanism: &'static str,
    },
    #[error("a partition moving from its replicas to {target:?} would have {count}, over the cap of {max}")]
    TooManyReplicas {
        target: Vec<NodeId>,
        count: usize,
        max: usize,
    },
}

/// Whether `credential` may be stored for `user`: a user name, Kafka's
/// iteration bounds, a salt, keys of the hash's length.
pub fn check_credential(user: &str, hash: Hash, credential: &Credential) -> Result<(), Refused> {
    let invalid = |reason: String| Refused::InvalidCredential {
        user: user.to_string(),
        mechanism: hash.mechanism(),
        reason,
    };
    if user.is_empty() || user.len() > acl::NAME_BYTES_MAX {
        return Err(invalid("a user name is 1 to 4096 bytes".to_string()));
    }
    if !(scram::ITERATIONS_MIN..=scram::ITERATIONS_MAX).contains(&credential.iterations) {
        return Err(invalid(format!(
            "{} iterations, outside {} to {}",
            credential.iterations,
            scram::ITERATIONS_MIN,
            scram::ITERATIONS_MAX
        )));
    }
    if credential.salt.is_empty() || credential.salt.len() > scram::SALT_BYTES_MAX {
        return Err(invalid(format!(
            "a salt of {} bytes, not 1 to {}",
            credential.salt.len(),
            scram::SALT_BYTES_MAX
        )));
    }
    if credential.stored_key.len() != hash.output_len()
        || credential.server_key.len() != hash.output_len()
    {
        return Err(invalid(format!("keys are {} bytes", hash.output_len())));
    }
    Ok(())
}

impl Metadata {
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicMeta>> {
        self.topics.get(name)
    }

    /// The cluster's dynamic broker defaults by topic config names.
    fn topic_defaults(&self) -> Arc<BTreeMap<String, String>> {
        Arc::new(topic_config::topic_defaults(&self.broker_defaults))
    }

    /// Partitions that node `node` holds on each of `shard_count` shards.
    pub fn load(&self, node: NodeId, shard_count: usize) -> Vec<usize> {
        let mut load = vec![0; shard_count];
        for topic in self.topics.values() {
            for (partition, shard) in topic.shards.iter().enumerate() {
                if topic.is_replica(partition as u32, node) {
                    load[shard.index(shard_count)] += 1;
                }
            }
        }
        load
    }

    /// Partition replicas each broker holds.
    pub fn replicas_per_broker(&self) -> BTreeMap<NodeId, usize> {
        let mut count: BTreeMap<NodeId, usize> =
            self.brokers.keys().map(|node| (*node, 0)).collect();
        for topic in self.topics.values() {
            for node in topic.replicas.iter().flatten() {
                *count.entry(*node).or_default() += 1;
            }
        }
        count
    }

    /// The brokers whose lease holds: the ones clients are told of.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerMeta> {
        self.brokers.values().filter(|broker| !broker.fenced)
    }

    /// Applies `record`, the log's entry at `index`, or says why it is
    /// refused (and changes nothing).
    pub fn apply(&mut self, record: &MetadataRecord, index: u64) -> Result<(), Refused> {
        match record {
            MetadataRecord::TopicCreated {
                topic_id,
                name,
                shards,
                replicas,
                configs,
            } => {
                if self.topics.contains_key(name) {
                    return Err(Refused::TopicExists { name: name.clone() });
                }
                let alive = |node| self.may_lead(node);
                let mut topic = TopicMeta::new(
                    *topic_id,
                    name.clone(),
                    shards.clone(),
                    replicas.clone(),
                    configs.clone(),
                    alive,
                );
                topic.defaults = self.topic_defaults();
                self.topics.insert(name.clone(), Arc::new(topic));
            }
            MetadataRecord::BrokerConfigsAltered {
                node: Some(node),
                configs,
            } => {
                if configs.is_empty() {
                    self.broker_configs.remove(node);
                } else {
                    self.broker_configs.insert(*node, configs.clone());
                }
            }
            MetadataRecord::BrokerConfigsAltered {
                node: None,
                configs,
            } => {
                self.broker_defaults = configs.clone();
                let defaults = self.topic_defaults();
                for topic in self.topics.values_mut() {
                    let mut altered = (**topic).clone();
                    altered.defaults = defaults.clone();
                    *topic = Arc::new(altered);
                }
            }
            MetadataRecord::AclsCreated(bindings) => {
                if let Some((binding, reason)) = bindings
                    .iter()
                    .find_map(|binding| Some((binding, binding.check().err()?)))
                {
                    return Err(Refused::InvalidAcl {
                        binding: Box::new(binding.clone()),
                        reason,
                    });
                }
                let new = bindings
                    .iter()
                    .filter(|binding| !self.acls.contains(binding))
                    .count();
                if self.acls.len() + new > acl::BINDINGS_MAX {
                    return Err(Refused::TooManyAcls {
                        count: self.acls.len() + new,
                    });
                }
                Arc::make_mut(&mut self.acls).insert(bindings.iter().cloned());
            }
            MetadataRecord::ScramCredentialAltered {
                user,
                hash,
                credential,
            } => {
                let key = (user.clone(), *hash);
                match credential {
                    Some(credential) => {
                        check_credential(user, *hash, credential)?;
                        Arc::make_mut(&mut self.scram).insert(key, credential.clone());
                    }
                    None => {
                        if Arc::make_mut(&mut self.scram).remove(&key).is_none() {
                            return Err(Refused::NoCredential {
                                user: user.clone(),
                                mechanism: hash.mechanism(),
                            });
                        }
                    }
                }
            }
            MetadataRecord::ClientQuotasAltered { entity, values } => {
                for (key, value) in values {
                    entity.check(key, value.0).map_err(Refused::InvalidQuota)?;
                }
                let quotas = Arc::make_mut(&mut self.quotas);
                if values.is_empty() {
                    quotas.remove(entity);
                } else {
                    quotas.insert(entity.clone(), values.clone());
                }
            }
            MetadataRecord::AclsDeleted(bindings) => {
                let acls = Arc::make_mut(&mut self.acls);
                for binding in bindings {
                    acls.remove(binding);
                }
            }
            MetadataRecord::TopicDeleted { topic_id } => {
                self.topic_mut(*topic_id)?;
                self.topics.retain(|_, topic| topic.id != *topic_id);
            }
            MetadataRecord::ConfigsAltered { topic_id, configs } => {
                let topic = self.topic_mut(*topic_id)?;
                let mut altered = (**topic).clone();
                altered.configs = configs.clone();
                *topic = Arc::new(altered);
            }
            MetadataRecord::PartitionsAdded {
                topic_id,
                first,
                shards,
                replicas,
            } => {
                let mut replicas = replicas.clone();
                replicas.resize(shards.len(), Vec::new());
                let controls: Vec<PartitionControl> = replicas
                    .iter()
                    .map(|nodes| new_control(nodes, |node| self.may_lead(node)))
                    .collect();
                let topic = self.topic_mut(*topic_id)?;
                let count = topic.partition_count();
                if let Some(expected) = first.filter(|expected| *expected != count) {
                    return Err(Refused::PartitionCountChanged { count, expected });
                }
                let mut grown = (**topic).clone();
                grown.shards.extend_from_slice(shards);
                grown.replicas.extend(replicas);
                grown.control.extend(controls);
                *topic = Arc::new(grown);
            }
            MetadataRecord::ProducerIdsAllocated { first, next } => {
                if let Some(first) = first.filter(|first| *first != self.producer_id_next) {
                    return Err(Refused::ProducerIdsTaken {
                        first,
                        next: self.producer_id_next,
                    });
                }
                // Never back: an id handed out stays handed out.
                self.producer_id_next = self.producer_id_next.max(*next);
            }
            MetadataRecord::BrokerRegistered(registration) => {
                let node = registration.node;
                let restarted = self.brokers.get(&node).is_some_and(|broker| {
                    broker.registration.incarnation != registration.incarnation
                });
                if restarted {
                    // Another start of the broker: what it held in memory
                    // as a leader is gone. Its partitions move as if it
                    // had been fenced, and the epochs tell its followers
                    // so.
                    if let Some(broker) = self.brokers.get_mut(&node) {
                        broker.fenced = true;
                    }
                    self.change_partitions(node, true);
                }
                self.brokers.insert(
                    node,
                    BrokerMeta {
                        registration: registration.clone(),
                        epoch: index,
                        fenced: false,
                    },
                );
                self.change_partitions(node, false);
            }
            MetadataRecord::BrokerFenced { node, epoch }
            | MetadataRecord::BrokerUnfenced { node, epoch } => {
                let current = self.brokers.get(node).map(|broker| broker.epoch);
                let Some(broker) = self
                    .brokers
                    .get_mut(node)
                    .filter(|broker| broker.epoch == *epoch)
                else {
                    return Err(Refused::StaleBrokerEpoch {
                        node: *node,
                        epoch: *epoch,
                        current,
                    });
                };
                let fenced = matches!(record, MetadataRecord::BrokerFenced { .. });
                broker.fenced = fenced;
                if fenced {
                    self.change_partitions(*node, true);
                } else {
                    self.change_partitions(*node, false);
                }
            }
            MetadataRecord::InSyncAltered {
                topic_id,
                partition,
                leader,
                leader_epoch,
                partition_epoch,
                in_sync,
            } => {
                let in_sync = in_sync.iter().copied().map(node).collect();
                let alive = self.alive_set();
                self.change_partition(*topic_id, *partition, |control, config| {
                    control
                        .alter_in_sync(
                            node(*leader),
                            *leader_epoch,
                            *partition_epoch,
                            &in_sync,
                            alive,
                            config,
                        )
                        .map_err(|reason| Refused::PartitionChange {
                            topic_id: *topic_id,
                            partition: *partition,
                            reason,
                        })
                })?;
            }
            MetadataRecord::LeaderElected {
                topic_id,
                partition,
                election,
            } => {
                let alive = self.alive_set();
                self.change_partition(*topic_id, *partition, |control, config| {
                    hold_election(control, *election, alive, config).map_err(|reason| {
                        Refused::Election {
                            topic_id: *topic_id,
                            partition: *partition,
                            reason,
                        }
                    })
                })?;
            }
            MetadataRecord::ReassignmentStarted {
                topic_id,
                partition,
                target,
                throttle_bytes_per_s,
            } => {
                if let Some(node) = target.iter().find(|node| !self.brokers.contains_key(node)) {
                    return Err(Refused::UnknownBroker { node: *node });
                }
                let named = target.clone();
                let target: Vec<Node> = target.iter().copied().map(node).collect();
                let alive = self.alive_set();
                self.change_partition(*topic_id, *partition, |control, config| {
                    let original = control
                        .moving
                        .as_ref()
                        .map_or(&control.replicas, |moving| &moving.original);
                    let count = target.len()
                        + original
                            .iter()
                            .filter(|node| !target.contains(node))
                            .count();
                    if count > REPLICAS_PER_PARTITION_MAX {
                        return Err(Refused::TooManyReplicas {
                            target: named,
                            count,
                            max: REPLICAS_PER_PARTITION_MAX,
                        });
                    }
                    control
                        .start_move(&target, *throttle_bytes_per_s, alive, config)
                        .map(|_| ())
                        .map_err(|reason| Refused::Move {
                            topic_id: *topic_id,
                            partition: *partition,
                            reason,
                        })
                })?;
            }
            MetadataRecord::ReassignmentCancelled {
                topic_id,
                partition,
            } => {
                let alive = self.alive_set();
                self.change_partition(*topic_id, *partition, |control, config| {
                    control
                        .cancel_move(alive, config)
                        .map_err(|reason| Refused::Move {
                            topic_id: *topic_id,
                            partition: *partition,
                            reason,
                        })
                })?;
            }
            MetadataRecord::ReassignmentState {
                topic_id,
                partition,
                original,
                target,
                throttle_bytes_per_s,
            } => {
                let moving = Move {
                    original: original.iter().copied().map(node).collect(),
                    target: target.iter().copied().map(node).collect(),
                    throttle_bytes_per_s: *throttle_bytes_per_s,
                };
                self.change_partition(*topic_id, *partition, |control, _| {
                    control.moving = Some(moving);
                    Ok(())
                })?;
            }
            MetadataRecord::PartitionState(state) => {
                let PartitionRecord {
                    topic_id,
                    partition,
                    ..
                } = state;
                self.change_partition(*topic_id, *partition, |control, _| {
                    *control = state.to_control(control.replicas.clone());
                    Ok(())
                })?;
            }
            MetadataRecord::BrokerState {
                registration,
                epoch,
                fenced,
            } => {
                self.brokers.insert(
                    registration.node,
                    BrokerMeta {
                        registration: registration.clone(),
                        epoch: *epoch,
                        fenced: *fenced,
                    },
                );
            }
        }
        Ok(())
    }

    /// The records that make this image when applied to an empty one: a
    /// snapshot of it.
    pub fn to_records(&self) -> Vec<MetadataRecord> {
        let defaults =
            (!self.broker_defaults.is_empty()).then(|| MetadataRecord::BrokerConfigsAltered {
                node: None,
                configs: self.broker_defaults.clone(),
            });
        let own = self.broker_configs.iter().map(|(node, configs)| {
            MetadataRecord::BrokerConfigsAltered {
                node: Some(*node),
                configs: configs.clone(),
            }
        });
        let brokers = self
            .brokers
            .values()
            .map(|broker| MetadataRecord::BrokerState {
                registration: broker.registration.clone(),
                epoch: broker.epoch,
                fenced: broker.fenced,
            });
        let topics = self.topics.values().flat_map(|topic| {
            let created = MetadataRecord::TopicCreated {
                topic_id: topic.id,
                name: topic.name.clone(),
                shards: topic.shards.clone(),
                replicas: topic.replicas.clone(),
                configs: topic.configs.clone(),
            };
            let states =
                topic
                    .control
                    .iter()
                    .enumerate()
                    .flat_map(|(partition, control)| {
                        let partition = partition as u32;
                        let state = MetadataRecord::PartitionState(PartitionRecord::of(
                            topic.id, partition, control,
                        ));
                        let moving = control.moving.as_ref().map(|moving| {
                            MetadataRecord::ReassignmentState {
                                topic_id: topic.id,
                                partition,
                                original: moving.original.iter().copied().map(node_id).collect(),
                                target: moving.target.iter().copied().map(node_id).collect(),
                                throttle_bytes_per_s: moving.throttle_bytes_per_s,
                            }
                        });
                        std::iter::once(state).chain(moving)
                    });
            std::iter::once(created).chain(states)
        });
        let producer_ids = MetadataRecord::ProducerIdsAllocated {
            first: None,
            next: self.producer_id_next,
        };
        let credentials = self.scram.iter().map(|((user, hash), credential)| {
            MetadataRecord::ScramCredentialAltered {
                user: user.clone(),
                hash: *hash,
                credential: Some(credential.clone()),
            }
        });
        let quotas =
            self.quotas
                .iter()
                .map(|(entity, values)| MetadataRecord::ClientQuotasAltered {
                    entity: entity.clone(),
                    values: values.clone(),
                });
        let bindings: Vec<_> = self.acls.iter().cloned().collect();
        let acls = bindings
            .chunks(acl::BINDINGS_PER_RECORD)
            .map(|chunk| MetadataRecord::AclsCreated(chunk.to_vec()));
        defaults
            .into_iter()
            .chain(own)
            .chain(brokers)
            .chain(topics)
            .chain([producer_ids])
            .chain(acls)
            .chain(credentials)
            .chain(quotas)
            .collect()
    }

    /// What a [`MetadataRecord::LeaderElected`] of `election` for
    /// partition `partition` of topic `topic_id` would meet if it were
    /// applied to this image now, which changes nothing: the same checks,
    /// on a copy of the one partition.
    pub fn try_election(
        &self,
        topic_id: TopicId,
        partition: u32,
        election: Election,
    ) -> Result<(), Refused> {
        let topic = self
            .topics
            .values()
            .find(|topic| topic.id == topic_id)
            .ok_or(Refused::UnknownTopic { topic_id })?;
        let mut control = topic
            .partition(partition)
            .ok_or(Refused::UnknownPartition {
                topic_id,
                partition,
            })?
            .clone();
        hold_election(
            &mut control,
            election,
            self.alive_set(),
            topic.control_config(),
        )
        .map_err(|reason| Refused::Election {
            topic_id,
            partition,
            reason,
        })
    }

    /// Whether `node` may lead a partition by this image: registered and
    /// unfenced, or never registered (a node starting alone places its
    /// topics on itself before its registration is applied).
    fn may_lead(&self, node: NodeId) -> bool {
        self.brokers.get(&node).is_none_or(|broker| !broker.fenced)
    }

    /// [`Self::may_lead`] as a set the state machines can ask while the
    /// topics change.
    fn alive_set(&self) -> impl Fn(Node) -> bool {
        let fenced: Vec<Node> = self
            .brokers
            .values()
            .filter(|broker| broker.fenced)
            .map(|broker| node(broker.registration.node))
            .collect();
        move |n| !fenced.contains(&n)
    }

    /// Fences (or unfences) `target` in every partition it holds a
    /// replica of.
    fn change_partitions(&mut self, target: NodeId, fence: bool) {
        let alive = self.alive_set();
        for topic in self.topics.values_mut() {
            let holds = topic.replicas.iter().any(|nodes| nodes.contains(&target));
            if !holds {
                continue;
            }
            let config = topic.control_config();
            let mut changed = (**topic).clone();
            let mut any = false;
            for control in &mut changed.control {
                any |= if fence {
                    control.fence(node(target), &alive, config)
                } else {
                    control.unfence(node(target), &alive, config)
                };
            }
            if any {
                *topic = Arc::new(changed);
            }
        }
    }

    /// Runs `change` on partition `partition` of topic `topic_id`; a
    /// refusal changes nothing.
    fn change_partition(
        &mut self,
        topic_id: TopicId,
        partition: u32,
        change: impl FnOnce(&mut PartitionControl, ControlConfig) -> Result<(), Refused>,
    ) -> Result<(), Refused> {
        let topic = self.topic_mut(topic_id)?;
        let config = topic.control_config();
        let mut changed = (**topic).clone();
        let control =
            changed
                .control
                .get_mut(partition as usize)
                .ok_or(Refused::UnknownPartition {
                    topic_id,
                    partition,
                })?;
        change(control, config)?;
        // A move changes the replicas: the topic's list follows.
        let replicas: Vec<NodeId> = control.replicas.iter().copied().map(node_id).collect();
        changed.replicas[partition as usize] = replicas;
        *topic = Arc::new(changed);
        Ok(())
    }

    fn topic_mut(&mut self, id: TopicId) -> Result<&mut Arc<TopicMeta>, Refused> {
        self.topics
            .values_mut()
            .find(|topic| topic.id == id)
            .ok_or(Refused::UnknownTopic { topic_id: id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_ids_never_go_back() {
        let mut metadata = Metadata::default();
        let allocated = |first: Option<i64>, next| MetadataRecord::ProducerIdsAllocated {
            first: first.map(ProducerId),
            next: ProducerId(next),
        };
        metadata.apply(&allocated(None, 5000), 1).unwrap();
        metadata.apply(&allocated(None, 4000), 2).unwrap();
        assert_eq!(metadata.producer_id_next, ProducerId(5000));
        assert_eq!(
            metadata.apply(&allocated(Some(4000), 6000), 3),
            Err(Refused::ProducerIdsTaken {
                first: ProducerId(4000),
                next: ProducerId(5000)
            })
        );
        metadata.apply(&allocated(Some(5000), 6000), 4).unwrap();
        assert_eq!(metadata.producer_id_next, ProducerId(6000));
    }

    fn registration(node: i32) -> BrokerRegistration {
        BrokerRegistration {
            node: NodeId(node),
            incarnation: 7,
            rack: Some("r1".to_string()),
            kafka_listeners: vec![super::super::records::Endpoint {
                name: "PLAINTEXT".to_string(),
                protocol: crate::security_protocol::SecurityProtocol::Plaintext,
                addr: "127.0.0.1:9092".to_string(),
            }],
            native_addr: "127.0.0.1:9192".to_string(),
            peer_addr: "127.0.0.1:9193".to_string(),
            admin_addr: String::new(),
        }
    }

    #[test]
    fn a_fence_of_another_broker_epoch_changes_nothing() {
        let mut metadata = Metadata::default();
        metadata
            .apply(&MetadataRecord::BrokerRegistered(registration(1)), 10)
            .unwrap();
        let stale = MetadataRecord::BrokerFenced {
            node: NodeId(1),
            epoch: 9,
        };
        let before = metadata.clone();
        assert!(matches!(
            metadata.apply(&stale, 11),
            Err(Refused::StaleBrokerEpoch {
                current: Some(10),
                ..
            })
        ));
        assert_eq!(metadata, before);
        let fence = MetadataRecord::BrokerFenced {
            node: NodeId(1),
            epoch: 10,
        };
        metadata.apply(&fence, 12).unwrap();
        assert_eq!(metadata.live_brokers().count(), 0);
        metadata
            .apply(&MetadataRecord::BrokerRegistered(registration(1)), 13)
            .unwrap();
        assert_eq!(metadata.brokers[&NodeId(1)].epoch, 13);
        assert!(!metadata.brokers[&NodeId(1)].fenced);
    }

    #[test]
    fn records_are_checked_where_they_are_applied() {
        let mut metadata = Metadata::default();
        let created = MetadataRecord::TopicCreated {
            topic_id: TopicId(1),
            name: "t".to_string(),
            shards: vec![ShardId(0)],
            replicas: vec![vec![NodeId(2)]],
            configs: BTreeMap::new(),
        };
        metadata.apply(&created, 1).unwrap();
        assert_eq!(
            metadata.apply(&created, 2),
            Err(Refused::TopicExists {
                name: "t".to_string()
            })
        );
        let grow = |first| MetadataRecord::PartitionsAdded {
            topic_id: TopicId(1),
            first: Some(first),
            shards: vec![ShardId(1)],
            replicas: vec![vec![NodeId(3)]],
        };
        assert_eq!(
            metadata.apply(&grow(2), 3),
            Err(Refused::PartitionCountChanged {
                count: 1,
                expected: 2
            })
        );
        metadata.apply(&grow(1), 4).unwrap();
        let topic = metadata.topic("t").unwrap();
        assert_eq!(topic.leader(1), Some(NodeId(3)));
        assert!(topic.is_replica(0, NodeId(2)) && !topic.is_replica(0, NodeId(3)));
        let deleted = MetadataRecord::TopicDeleted {
            topic_id: TopicId(1),
        };
        metadata.apply(&deleted, 5).unwrap();
        assert_eq!(
            metadata.apply(&deleted, 6),
            Err(Refused::UnknownTopic {
                topic_id: TopicId(1)
            })
        );
    }

    #[test]
    fn an_image_is_the_records_it_lists() {
        let mut metadata = Metadata::default();
        let records = [
            MetadataRecord::BrokerRegistered(registration(1)),
            MetadataRecord::BrokerRegistered(registration(2)),
            MetadataRecord::BrokerFenced {
                node: NodeId(2),
                epoch: 2,
            },
            MetadataRecord::TopicCreated {
                topic_id: TopicId(9),
                name: "t".to_string(),
                shards: vec![ShardId(0), ShardId(1)],
                replicas: vec![vec![NodeId(1)], vec![NodeId(2)]],
                configs: [("retention.ms".to_string(), "5".to_string())].into(),
            },
            MetadataRecord::ProducerIdsAllocated {
                first: Some(PRODUCER_ID_FIRST),
                next: ProducerId(3000),
            },
            MetadataRecord::BrokerConfigsAltered {
                node: None,
                configs: [
                    ("log.retention.ms".to_string(), "7".to_string()),
                    ("log.segment.bytes".to_string(), "8192".to_string()),
                ]
                .into(),
            },
            MetadataRecord::BrokerConfigsAltered {
                node: Some(NodeId(2)),
                configs: [(
                    "leader.replication.throttled.rate".to_string(),
                    "1000".to_string(),
                )]
                .into(),
            },
        ];
        for (index, record) in records.iter().enumerate() {
            metadata.apply(record, index as u64 + 1).unwrap();
        }
        // The topic's own config over the cluster's default.
        let topic = metadata.topic("t").unwrap();
        assert_eq!(
            topic
                .effective_configs()
                .get("retention.ms")
                .map(String::as_str),
            Some("5")
        );
        assert_eq!(
            topic
                .effective_configs()
                .get("segment.bytes")
                .map(String::as_str),
            Some("8192")
        );
        let mut rebuilt = Metadata::default();
        for record in metadata.to_records() {
            rebuilt.apply(&record, 100).unwrap();
        }
        assert_eq!(rebuilt, metadata);
    }

    #[test]
    fn acls_are_applied_checked_and_kept_by_snapshots() {
        use crate::acl::{AclBinding, Operation, PatternType, Permission, ResourceType};
        let binding = |name: &str, operation| AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.to_string(),
            pattern_type: PatternType::Literal,
            principal: "User:alice".to_string(),
            host: "*".to_string(),
            operation,
            permission: Permission::Allow,
        };
        let mut metadata = Metadata::default();
        let many: Vec<_> = (0..2500)
            .map(|n| binding(&format!("t{n}"), Operation::Read))
            .collect();
        metadata
            .apply(&MetadataRecord::AclsCreated(many.clone()), 1)
            .unwrap();
        assert_eq!(metadata.acls.len(), 2500);
        let mut bad = binding("t", Operation::Read);
        bad.principal = "alice".to_string();
        let refused = metadata.apply(
            &MetadataRecord::AclsCreated(vec![binding("u", Operation::Write), bad]),
            2,
        );
        assert!(matches!(refused, Err(Refused::InvalidAcl { .. })));
        assert_eq!(metadata.acls.len(), 2500, "refused whole");
        metadata
            .apply(&MetadataRecord::AclsDeleted(many[..500].to_vec()), 3)
            .unwrap();
        assert_eq!(metadata.acls.len(), 2000);
        let records = metadata.to_records();
        assert_eq!(
            records
                .iter()
                .filter(|record| matches!(record, MetadataRecord::AclsCreated(_)))
                .count(),
            2,
            "a snapshot's bindings in records of at most 1000"
        );
        let mut rebuilt = Metadata::default();
        for record in records {
            rebuilt.apply(&record, 100).unwrap();
        }
        assert_eq!(rebuilt, metadata);
    }

    #[test]
    fn scram_credentials_are_checked_deleted_and_kept_by_snapshots() {
        use crate::sasl::scram::{Credential, Hash};
        let credential = Credential::new(Hash::Sha256, b"pw", vec![5; 16], 4096);
        let set = |user: &str, credential: Credential| MetadataRecord::ScramCredentialAltered {
            user: user.to_string(),
            hash: Hash::Sha256,
            credential: Some(credential),
        };
        let mut metadata = Metadata::default();
        metadata
            .apply(&set("carol", credential.clone()), 1)
            .unwrap();
        assert_eq!(
            metadata.scram.get(&("carol".to_string(), Hash::Sha256)),
            Some(&credential)
        );
        let mut few = credential.clone();
        few.iterations = 100;
        assert!(matches!(
            metadata.apply(&set("dave", few), 2),
            Err(Refused::InvalidCredential { .. })
        ));
        let mut short = credential.clone();
        short.stored_key.truncate(3);
        assert!(metadata.apply(&set("dave", short), 3).is_err());
        assert!(metadata.apply(&set("", credential.clone()), 4).is_err());
        let mut rebuilt = Metadata::default();
        for record in metadata.to_records() {
            rebuilt.apply(&record, 100).unwrap();
        }
        assert_eq!(rebuilt, metadata);
        let delete = |user: &str| MetadataRecord::ScramCredentialAltered {
            user: user.to_string(),
            hash: Hash::Sha256,
            credential: None,
        };
        metadata.apply(&delete("carol"), 5).unwrap();
        assert!(metadata.scram.is_empty());
        assert!(matches!(
            metadata.apply(&delete("carol"), 6),
            Err(Refused::NoCredential { .. })
        ));
    }

    fn three_brokers_and_a_topic(min_in_sync: &str) -> Metadata {
        let mut metadata = Metadata::default();
        for node in 1..=3 {
            metadata
                .apply(
                    &MetadataRecord::BrokerRegistered(BrokerRegistration {
                        node: NodeId(node),
                        ..registration(node)
                    }),
                    node as u64,
                )
                .unwrap();
        }
        let created = MetadataRecord::TopicCreated {
            topic_id: TopicId(9),
            name: "t".to_string(),
            shards: vec![ShardId(0)],
            replicas: vec![vec![NodeId(1), NodeId(2), NodeId(3)]],
            configs: [("min.insync.replicas".to_string(), min_in_sync.to_string())].into(),
        };
        metadata.apply(&created, 4).unwrap();
        metadata
    }

    fn control(metadata: &Metadata) -> PartitionControl {
        metadata.topic("t").unwrap().control[0].clone()
    }

    #[test]
    fn a_fenced_leader_is_succeeded_and_a_restarted_one_loses_its_epoch() {
        let mut metadata = three_brokers_and_a_topic("2");
        assert_eq!(metadata.topic("t").unwrap().leader(0), Some(NodeId(1)));
        let fence = |node: i32, epoch| MetadataRecord::BrokerFenced {
            node: NodeId(node),
            epoch,
        };
        metadata.apply(&fence(1, 1), 5).unwrap();
        let after = control(&metadata);
        assert_eq!(after.leader, Some(2));
        assert_eq!(after.leader_epoch, 1);
        assert_eq!(after.in_sync, [2, 3].into());
        // Back, it is not in sync until its leader says so.
        let unfence = MetadataRecord::BrokerUnfenced {
            node: NodeId(1),
            epoch: 1,
        };
        metadata.apply(&unfence, 6).unwrap();
        assert_eq!(control(&metadata), after);
        // A new start of the leader: leadership moves on at once.
        metadata
            .apply(
                &MetadataRecord::BrokerRegistered(BrokerRegistration {
                    node: NodeId(2),
                    incarnation: 8,
                    ..registration(2)
                }),
                7,
            )
            .unwrap();
        let moved = control(&metadata);
        assert_eq!(moved.leader, Some(3));
        assert_eq!(moved.leader_epoch, 2);
        assert_eq!(moved.in_sync, [3].into());
        assert_eq!(moved.eligible, [2].into(), "below min.insync.replicas");
    }

    #[test]
    fn the_last_replica_standing_is_elected_again_and_nobody_else() {
        let mut metadata = three_brokers_and_a_topic("2");
        for (node, index) in [(2, 5), (3, 6), (1, 7)] {
            let fence = MetadataRecord::BrokerFenced {
                node: NodeId(node),
                epoch: node as u64,
            };
            metadata.apply(&fence, index).unwrap();
        }
        let offline = control(&metadata);
        assert_eq!(offline.leader, None);
        assert!(offline.in_sync.is_empty());
        assert_eq!(
            offline.eligible,
            [1, 3].into(),
            "they left below min.insync.replicas, when the high watermark stopped"
        );
        // Node 2 left while the set was still at min: the high watermark
        // moved on without it, so it may lack committed records.
        let unfence = |node: i32| MetadataRecord::BrokerUnfenced {
            node: NodeId(node),
            epoch: node as u64,
        };
        metadata.apply(&unfence(2), 8).unwrap();
        assert_eq!(control(&metadata).leader, None, "2 is not eligible");
        metadata.apply(&unfence(3), 9).unwrap();
        let back = control(&metadata);
        assert_eq!(back.leader, Some(3));
        assert_eq!(back.in_sync, [3].into());
    }

    #[test]
    fn an_in_sync_change_from_a_stale_leader_changes_nothing() {
        let mut metadata = three_brokers_and_a_topic("1");
        let shrink = |leader: i32, leader_epoch, partition_epoch| MetadataRecord::InSyncAltered {
            topic_id: TopicId(9),
            partition: 0,
            leader: NodeId(leader),
            leader_epoch,
            partition_epoch,
            in_sync: vec![NodeId(1), NodeId(2)],
        };
        metadata.apply(&shrink(1, 0, 0), 5).unwrap();
        assert_eq!(control(&metadata).in_sync, [1, 2].into());
        assert_eq!(control(&metadata).partition_epoch, 1);
        let before = metadata.clone();
        for (stale, why) in [
            (shrink(1, 0, 0), "an old partition epoch"),
            (shrink(2, 0, 1), "not the leader"),
            (shrink(1, 1, 1), "another leader epoch"),
        ] {
            assert!(
                matches!(
                    metadata.apply(&stale, 6),
                    Err(Refused::PartitionChange { .. })
                ),
                "{why}"
            );
            assert_eq!(metadata, before, "{why}");
        }
        let unknown = MetadataRecord::InSyncAltered {
            topic_id: TopicId(9),
            partition: 4,
            leader: NodeId(1),
            leader_epoch: 0,
            partition_epoch: 1,
            in_sync: vec![NodeId(1)],
        };
        assert!(matches!(
            metadata.apply(&unknown, 7),
            Err(Refused::UnknownPartition { partition: 4, .. })
        ));
    }

    #[test]
    fn an_election_is_held_where_it_is_applied_and_refused_when_it_cannot_be() {
        let mut metadata = three_brokers_and_a_topic("2");
        let elect = |election| MetadataRecord::LeaderElected {
            topic_id: TopicId(9),
            partition: 0,
            election,
        };
        let refused = |metadata: &mut Metadata, election, index| {
            let before = metadata.clone();
            let tried = metadata.try_election(TopicId(9), 0, election);
            let applied = metadata.apply(&elect(election), index);
            assert_eq!(tried, applied, "the dry run finds what the record meets");
            assert_eq!(*metadata, before, "a refused election changes nothing");
            match applied {
                Err(Refused::Election { reason, .. }) => reason,
                other => panic!("{election} election: {other:?}"),
            }
        };
        assert_eq!(
            refused(&mut metadata, Election::Preferred, 5),
            ElectionError::NotNeeded(1)
        );
        assert_eq!(
            refused(&mut metadata, Election::Unclean, 6),
            ElectionError::NotNeeded(1)
        );
        // Node 1 stops: node 2 leads; back, node 1 is not in sync yet.
        let fence = MetadataRecord::BrokerFenced {
            node: NodeId(1),
            epoch: 1,
        };
        metadata.apply(&fence, 7).unwrap();
        assert_eq!(
            refused(&mut metadata, Election::Preferred, 8),
            ElectionError::PreferredNotAvailable(1)
        );
        let unfence = MetadataRecord::BrokerUnfenced {
            node: NodeId(1),
            epoch: 1,
        };
        metadata.apply(&unfence, 9).unwrap();
        assert_eq!(
            refused(&mut metadata, Election::Preferred, 10),
            ElectionError::PreferredNotAvailable(1),
            "alive, not in sync"
        );
        let rejoined = MetadataRecord::InSyncAltered {
            topic_id: TopicId(9),
            partition: 0,
            leader: NodeId(2),
            leader_epoch: 1,
            partition_epoch: control(&metadata).partition_epoch,
            in_sync: vec![NodeId(1), NodeId(2), NodeId(3)],
        };
        metadata.apply(&rejoined, 11).unwrap();
        let before = control(&metadata);
        assert_eq!(
            metadata.try_election(TopicId(9), 0, Election::Preferred),
            Ok(())
        );
        assert_eq!(control(&metadata), before, "a dry run changes nothing");
        metadata.apply(&elect(Election::Preferred), 12).unwrap();
        let after = control(&metadata);
        assert_eq!(after.leader, Some(1));
        assert_eq!(after.leader_epoch, before.leader_epoch + 1);
        assert_eq!(after.partition_epoch, before.partition_epoch + 1);
        assert_eq!(after.in_sync, before.in_sync);

        // Every replica stops; node 3, neither in sync nor eligible when
        // it left, comes back alone: only an unclean election elects it.
        for (node, index) in [(3, 13), (1, 14), (2, 15)] {
            let fence = MetadataRecord::BrokerFenced {
                node: NodeId(node),
                epoch: node as u64,
            };
            metadata.apply(&fence, index).unwrap();
        }
        assert_eq!(
            refused(&mut metadata, Election::Unclean, 16),
            ElectionError::NoLiveReplica
        );
        let unfence = MetadataRecord::BrokerUnfenced {
            node: NodeId(3),
            epoch: 3,
        };
        metadata.apply(&unfence, 17).unwrap();
        assert_eq!(control(&metadata).leader, None, "unclean election is off");
        metadata.apply(&elect(Election::Unclean), 18).unwrap();
        let unclean = control(&metadata);
        assert_eq!(unclean.leader, Some(3));
        assert_eq!(unclean.in_sync, [3].into());
        assert!(unclean.eligible.is_empty());
        let unknown = MetadataRecord::LeaderElected {
            topic_id: TopicId(9),
            partition: 1,
            election: Election::Preferred,
        };
        assert!(matches!(
            metadata.apply(&unknown, 19),
            Err(Refused::UnknownPartition { partition: 1, .. })
        ));
    }

    #[test]
    fn an_image_keeps_every_partition_state() {
        let mut metadata = three_brokers_and_a_topic("2");
        let fence = MetadataRecord::BrokerFenced {
            node: NodeId(1),
            epoch: 1,
        };
        metadata.apply(&fence, 5).unwrap();
        let mut rebuilt = Metadata::default();
        for record in metadata.to_records() {
            rebuilt.apply(&record, 100).unwrap();
        }
        assert_eq!(rebuilt, metadata);
        assert_eq!(control(&rebuilt).leader_epoch, 1);
    }

    #[test]
    fn a_move_changes_the_topics_replicas_is_kept_in_an_image_and_ends_where_applied() {
        let mut metadata = three_brokers_and_a_topic("2");
        metadata
            .apply(&MetadataRecord::BrokerRegistered(registration(4)), 5)
            .unwrap();
        let start = |target: &[i32]| MetadataRecord::ReassignmentStarted {
            topic_id: TopicId(9),
            partition: 0,
            target: target.iter().copied().map(NodeId).collect(),
            throttle_bytes_per_s: 1000,
        };
        assert_eq!(
            metadata.apply(&start(&[2, 3, 7]), 6),
            Err(Refused::UnknownBroker { node: NodeId(7) })
        );
        let many: Vec<i32> = (10..26).collect();
        let mut wider = metadata.clone();
        for node in &many {
            wider
                .apply(&MetadataRecord::BrokerRegistered(registration(*node)), 6)
                .unwrap();
        }
        assert!(matches!(
            wider.apply(&start(&many), 7),
            Err(Refused::TooManyReplicas { count: 19, .. })
        ));
        metadata.apply(&start(&[2, 3, 4]), 6).unwrap();
        let topic = metadata.topic("t").unwrap();
        assert_eq!(topic.replicas[0], [2, 3, 4, 1].map(NodeId).to_vec());
        assert!(topic.is_replica(0, NodeId(4)) && topic.is_replica(0, NodeId(1)));
        // A snapshot holds the move.
        let mut rebuilt = Metadata::default();
        for record in metadata.to_records() {
            rebuilt.apply(&record, 100).unwrap();
        }
        assert_eq!(rebuilt, metadata);
        assert!(control(&rebuilt).moving.is_some());
        // The leader reports node 4 in sync: the move ends, node 1 leaves
        // and hands over.
        let epoch = control(&metadata).partition_epoch;
        let in_sync = MetadataRecord::InSyncAltered {
            topic_id: TopicId(9),
            partition: 0,
            leader: NodeId(1),
            leader_epoch: 0,
            partition_epoch: epoch,
            in_sync: [1, 2, 3, 4].map(NodeId).to_vec(),
        };
        metadata.apply(&in_sync, 7).unwrap();
        let topic = metadata.topic("t").unwrap();
        assert_eq!(topic.replicas[0], [2, 3, 4].map(NodeId).to_vec());
        assert_eq!(topic.leader(0), Some(NodeId(2)));
        assert!(control(&metadata).moving.is_none());
        let cancel = MetadataRecord::ReassignmentCancelled {
            topic_id: TopicId(9),
            partition: 0,
        };
        assert!(matches!(
            metadata.apply(&cancel, 8),
            Err(Refused::Move {
                reason: MoveError::NoMoveInProgress,
                ..
            })
        ));
    }

    #[test]
    fn a_topic_directory_holds_its_name_and_its_id_in_hex() {
        let topic = TopicMeta::new(
            TopicId(0xab),
            "events".to_string(),
            vec![ShardId(0)],
            vec![vec![NodeId(0)]],
            BTreeMap::new(),
            |_| true,
        );
        let expected = format!("topics/events-{:0>32}/3", "ab");
        assert_eq!(topic.partition_dir(Path::new(""), 3), Path::new(&expected));
    }
}
