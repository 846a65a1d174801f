//! Metadata: brokers, topics and where each partition lives.

use sluice_net::native::{
    messages::{BrokerInfo, MetadataRequest, MetadataResponse, PartitionInfo, TopicInfo},
    ErrorCode,
};

use crate::shard::Shard;

pub fn handle(shard: &Shard, request: MetadataRequest) -> MetadataResponse {
    let metadata = shard.metadata();
    let (host, port) = split_addr(&shard.config.native_addr);
    let describe = |name: &str| match metadata.topic(name) {
        Some(topic) => TopicInfo {
            name: topic.name.clone(),
            error: ErrorCode::None,
            topic_id: topic.id.0,
            partitions: topic
                .shards
                .iter()
                .enumerate()
                .map(|(partition, owner)| PartitionInfo {
                    partition: partition as u32,
                    leader: shard.config.node_id.0 as u32,
                    shard: shard.owner(*owner) as u32,
                })
                .collect(),
        },
        None => TopicInfo {
            name: name.to_string(),
            error: ErrorCode::UnknownTopic,
            topic_id: 0,
            partitions: Vec::new(),
        },
    };
    let topics = match request.topics {
        Some(names) => names.iter().map(|name| describe(name)).collect(),
        None => metadata.topics.keys().map(|name| describe(name)).collect(),
    };
    MetadataResponse {
        brokers: vec![BrokerInfo {
            id: shard.config.node_id.0 as u32,
            host,
            port,
        }],
        topics,
    }
}

fn split_addr(addr: &str) -> (String, u16) {
    match addr.rsplit_once(':') {
        Some((host, port)) => (
            host.trim_matches(['[', ']']).to_string(),
            port.parse().unwrap_or(0),
        ),
        None => (addr.to_string(), 0),
    }
}
