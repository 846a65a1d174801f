//! The metadata image: every topic, and how far producer ids have been
//! handed out, as of one point in the metadata log.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use sluice_storage::{ProducerId, ShardId, TopicId};

use super::records::MetadataRecord;

/// A topic: its id, name, the owner shard of each partition, and configs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    pub id: TopicId,
    pub name: String,
    /// `shards[p]` owns partition `p` (taken modulo the running shard
    /// count: [`ShardId::index`]).
    pub shards: Vec<ShardId>,
    pub configs: BTreeMap<String, String>,
}

impl TopicMeta {
    pub fn partition_count(&self) -> u32 {
        self.shards.len() as u32
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

/// Every topic, and how far producer ids have been handed out, as of one
/// point in the metadata log. Immutable; shared by `Arc` between shards and
/// replaced whole when it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub topics: BTreeMap<String, Arc<TopicMeta>>,
    /// The lowest producer id never handed out: every id below it (from
    /// [`PRODUCER_ID_FIRST`]) has been, in a block recorded in the log.
    pub producer_id_next: ProducerId,
}

impl Default for Metadata {
    fn default() -> Metadata {
        Metadata {
            topics: BTreeMap::new(),
            producer_id_next: PRODUCER_ID_FIRST,
        }
    }
}

impl Metadata {
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicMeta>> {
        self.topics.get(name)
    }

    /// Partitions owned by each of `shard_count` shards.
    pub fn load(&self, shard_count: usize) -> Vec<usize> {
        let mut load = vec![0; shard_count];
        for topic in self.topics.values() {
            for shard in &topic.shards {
                load[shard.index(shard_count)] += 1;
            }
        }
        load
    }

    /// The image after `record`. A record about a topic that is not here
    /// (deleted since) changes nothing.
    pub fn apply(&mut self, record: &MetadataRecord) {
        match record {
            MetadataRecord::TopicCreated {
                topic_id,
                name,
                shards,
                configs,
            } => {
                let topic = TopicMeta {
                    id: *topic_id,
                    name: name.clone(),
                    shards: shards.clone(),
                    configs: configs.clone(),
                };
                self.topics.insert(name.clone(), Arc::new(topic));
            }
            MetadataRecord::TopicDeleted { topic_id } => {
                self.topics.retain(|_, topic| topic.id != *topic_id);
            }
            MetadataRecord::ConfigsAltered { topic_id, configs } => {
                if let Some(topic) = self.topic_mut(*topic_id) {
                    let mut altered = (**topic).clone();
                    altered.configs = configs.clone();
                    *topic = Arc::new(altered);
                }
            }
            MetadataRecord::PartitionsAdded { topic_id, shards } => {
                if let Some(topic) = self.topic_mut(*topic_id) {
                    let mut grown = (**topic).clone();
                    grown.shards.extend_from_slice(shards);
                    *topic = Arc::new(grown);
                }
            }
            MetadataRecord::ProducerIdsAllocated { next } => {
                // Never back: an id handed out stays handed out, even if a
                // record were written twice.
                self.producer_id_next = self.producer_id_next.max(*next);
            }
        }
    }

    fn topic_mut(&mut self, id: TopicId) -> Option<&mut Arc<TopicMeta>> {
        self.topics.values_mut().find(|topic| topic.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_ids_never_go_back() {
        let mut metadata = Metadata::default();
        metadata.apply(&MetadataRecord::ProducerIdsAllocated {
            next: ProducerId(5000),
        });
        metadata.apply(&MetadataRecord::ProducerIdsAllocated {
            next: ProducerId(4000),
        });
        assert_eq!(metadata.producer_id_next, ProducerId(5000));
    }

    #[test]
    fn a_topic_directory_holds_its_name_and_its_id_in_hex() {
        let topic = TopicMeta {
            id: TopicId(0xab),
            name: "events".to_string(),
            shards: vec![ShardId(0)],
            configs: BTreeMap::new(),
        };
        let expected = format!("topics/events-{:0>32}/3", "ab");
        assert_eq!(topic.partition_dir(Path::new(""), 3), Path::new(&expected));
    }
}
