//! Metadata: brokers, topics and where each partition lives. In a
//! cluster the brokers are the alive nodes with a native listener, and a
//! partition's leader is where its placement puts it ([`NO_LEADER`] while
//! that node is fenced), as DescribeTopics says.

use sluice_net::native::{
    messages::{BrokerInfo, MetadataRequest, MetadataResponse, PartitionInfo, TopicInfo},
    ErrorCode,
};

use crate::{cluster_view, shard::Shard};

/// The leader of a partition whose leader is not alive.
pub const NO_LEADER: u32 = u32::MAX;

pub fn handle(shard: &Shard, request: MetadataRequest) -> MetadataResponse {
    let metadata = shard.metadata();
    let this_node = shard.config.node_id;
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
                    leader: cluster_view::placement(&metadata, this_node, topic, partition as u32)
                        .leader
                        .map_or(NO_LEADER, |node| node.0 as u32),
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
    let brokers = cluster_view::nodes(&shard.config, &metadata)
        .into_iter()
        .filter(|node| node.alive && !node.native_addr.is_empty())
        .map(|node| {
            let (host, port) = split_addr(&node.native_addr);
            BrokerInfo {
                id: node.id.0 as u32,
                host,
                port,
            }
        })
        .collect();
    MetadataResponse { brokers, topics }
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
