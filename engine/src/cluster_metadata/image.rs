//! The metadata image: every topic, every broker, and how far producer ids
//! have been handed out, as of one point in the metadata log.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use sluice_storage::{NodeId, ProducerId, ShardId, TopicId};

use super::records::{BrokerRegistration, MetadataRecord};

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
    pub configs: BTreeMap<String, String>,
}

impl TopicMeta {
    pub fn partition_count(&self) -> u32 {
        self.shards.len() as u32
    }

    /// The node that leads partition `partition`, if it has one.
    pub fn leader(&self, partition: u32) -> Option<NodeId> {
        self.replicas.get(partition as usize)?.first().copied()
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
}

impl Default for Metadata {
    fn default() -> Metadata {
        Metadata {
            topics: BTreeMap::new(),
            brokers: BTreeMap::new(),
            producer_id_next: PRODUCER_ID_FIRST,
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
}

impl Metadata {
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicMeta>> {
        self.topics.get(name)
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
                let mut replicas = replicas.clone();
                replicas.resize(shards.len(), Vec::new());
                let topic = TopicMeta {
                    id: *topic_id,
                    name: name.clone(),
                    shards: shards.clone(),
                    replicas,
                    configs: configs.clone(),
                };
                self.topics.insert(name.clone(), Arc::new(topic));
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
                let topic = self.topic_mut(*topic_id)?;
                let count = topic.partition_count();
                if let Some(expected) = first.filter(|expected| *expected != count) {
                    return Err(Refused::PartitionCountChanged { count, expected });
                }
                let mut grown = (**topic).clone();
                grown.shards.extend_from_slice(shards);
                let mut replicas = replicas.clone();
                replicas.resize(shards.len(), Vec::new());
                grown.replicas.extend(replicas);
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
                self.brokers.insert(
                    registration.node,
                    BrokerMeta {
                        registration: registration.clone(),
                        epoch: index,
                        fenced: false,
                    },
                );
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
                broker.fenced = matches!(record, MetadataRecord::BrokerFenced { .. });
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
        let brokers = self
            .brokers
            .values()
            .map(|broker| MetadataRecord::BrokerState {
                registration: broker.registration.clone(),
                epoch: broker.epoch,
                fenced: broker.fenced,
            });
        let topics = self
            .topics
            .values()
            .map(|topic| MetadataRecord::TopicCreated {
                topic_id: topic.id,
                name: topic.name.clone(),
                shards: topic.shards.clone(),
                replicas: topic.replicas.clone(),
                configs: topic.configs.clone(),
            });
        let producer_ids = MetadataRecord::ProducerIdsAllocated {
            first: None,
            next: self.producer_id_next,
        };
        brokers.chain(topics).chain([producer_ids]).collect()
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
            kafka_addr: "127.0.0.1:9092".to_string(),
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
        ];
        for (index, record) in records.iter().enumerate() {
            metadata.apply(record, index as u64 + 1).unwrap();
        }
        let mut rebuilt = Metadata::default();
        for record in metadata.to_records() {
            rebuilt.apply(&record, 100).unwrap();
        }
        assert_eq!(rebuilt, metadata);
    }

    #[test]
    fn a_topic_directory_holds_its_name_and_its_id_in_hex() {
        let topic = TopicMeta {
            id: TopicId(0xab),
            name: "events".to_string(),
            shards: vec![ShardId(0)],
            replicas: vec![vec![NodeId(0)]],
            configs: BTreeMap::new(),
        };
        let expected = format!("topics/events-{:0>32}/3", "ab");
        assert_eq!(topic.partition_dir(Path::new(""), 3), Path::new(&expected));
    }
}
