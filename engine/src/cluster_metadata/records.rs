//! The metadata records: one per change to the metadata, in the order the
//! controller made them. What a record means is [`super::Metadata::apply`];
//! its bytes are [`super::encoding`].

use std::collections::BTreeMap;

use sluice_storage::{ProducerId, ShardId, TopicId};

/// One change to the metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataRecord {
    /// A new topic, whole: `shards[p]` owns its partition `p`.
    TopicCreated {
        topic_id: TopicId,
        name: String,
        shards: Vec<ShardId>,
        configs: BTreeMap<String, String>,
    },
    TopicDeleted {
        topic_id: TopicId,
    },
    /// The topic's whole config set after the change.
    ConfigsAltered {
        topic_id: TopicId,
        configs: BTreeMap<String, String>,
    },
    /// Partitions appended to a topic: `shards[i]` owns its partition
    /// `count + i`, where `count` is the topic's partition count before.
    PartitionsAdded {
        topic_id: TopicId,
        shards: Vec<ShardId>,
    },
    /// Producer ids below `next` have been handed out; the next block
    /// starts at `next`.
    ProducerIdsAllocated {
        next: ProducerId,
    },
}
