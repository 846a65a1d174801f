//! DescribeTopicPartitions (KIP-966): topics and their partitions, each
//! with its leader, leader epoch, replicas and in-sync replicas, paginated
//! by a partition limit and a cursor, as Kafka 3.8+ admin clients ask for
//! topic descriptions. Topics come in name order; a response that stops at
//! the limit names where the next one starts.

use std::rc::Rc;

use kafka_protocol::{
    error::ResponseError,
    messages::{
        describe_topic_partitions_response::{
            Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
        },
        BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse,
    },
};
use uuid::Uuid;

use super::{is_live, topic_name, Resource};
use crate::{cluster_metadata::TopicMeta, shard::Shard};

/// The most partitions one response describes, whatever the client asks
/// (Kafka's `max.request.partition.size.limit` default).
pub const PARTITIONS_PER_RESPONSE_MAX: usize = 2000;

pub async fn describe_topic_partitions(
    shard: &Rc<Shard>,
    request: DescribeTopicPartitionsRequest,
    _version: i16,
) -> DescribeTopicPartitionsResponse {
    let metadata = shard.metadata();
    // Kafka answers them for every topic found, without being asked.
    let operations = super::authorized_operations(Resource::Topic, true);
    let limit = usize::try_from(request.response_partition_limit)
        .unwrap_or(0)
        .clamp(1, PARTITIONS_PER_RESPONSE_MAX);
    // The topics asked for (all of them for none), in name order.
    let mut names: Vec<String> = if request.topics.is_empty() {
        metadata.topics.keys().cloned().collect()
    } else {
        request
            .topics
            .iter()
            .map(|topic| topic.name.0.to_string())
            .collect()
    };
    names.sort();
    names.dedup();
    let (start_topic, start_partition) = match &request.cursor {
        Some(cursor) => (
            Some(cursor.topic_name.0.to_string()),
            u32::try_from(cursor.partition_index).unwrap_or(0),
        ),
        None => (None, 0),
    };
    let mut response = DescribeTopicPartitionsResponse::default();
    let mut described = 0;
    for name in names {
        if start_topic.as_ref().is_some_and(|start| name < *start) {
            continue;
        }
        let Some(topic) = metadata.topic(&name) else {
            response.topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_name(Some(topic_name(&name)))
                    .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                    .with_topic_authorized_operations(super::OPERATIONS_NOT_ASKED),
            );
            continue;
        };
        let first = match &start_topic {
            Some(start) if *start == name => start_partition,
            _ => 0,
        };
        let mut partitions = Vec::new();
        let mut next = None;
        for partition in first..topic.partition_count() {
            if described == limit {
                next = Some(partition);
                break;
            }
            partitions.push(describe(shard, &metadata, topic, partition));
            described += 1;
        }
        response.topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(topic_name(&name)))
                .with_topic_id(Uuid::from_u128(topic.id.0))
                .with_is_internal(name == crate::coordinator::OFFSETS_TOPIC)
                .with_partitions(partitions)
                .with_topic_authorized_operations(operations),
        );
        if let Some(partition) = next {
            response.next_cursor = Some(
                Cursor::default()
                    .with_topic_name(topic_name(&name))
                    .with_partition_index(partition as i32),
            );
            break;
        }
    }
    response
}

fn describe(
    shard: &Shard,
    metadata: &crate::cluster_metadata::Metadata,
    topic: &TopicMeta,
    partition: u32,
) -> DescribeTopicPartitionsResponsePartition {
    let placement =
        crate::cluster_view::placement(metadata, shard.config.node_id, topic, partition);
    let offline: Vec<_> = placement
        .replicas
        .iter()
        .copied()
        .filter(|node| !is_live(shard, metadata, *node))
        .collect();
    let ids = |nodes: &[sluice_storage::NodeId]| -> Vec<BrokerId> {
        nodes.iter().map(|node| BrokerId(node.0)).collect()
    };
    DescribeTopicPartitionsResponsePartition::default()
        .with_error_code(match placement.leader {
            Some(_) => 0,
            None => ResponseError::LeaderNotAvailable.code(),
        })
        .with_partition_index(partition as i32)
        .with_leader_id(BrokerId(placement.leader.map_or(-1, |node| node.0)))
        .with_leader_epoch(i32::try_from(placement.leader_epoch).unwrap_or(i32::MAX))
        .with_replica_nodes(ids(&placement.replicas))
        .with_isr_nodes(ids(&placement.in_sync))
        .with_eligible_leader_replicas(Some(ids(&placement.eligible)))
        .with_last_known_elr(Some(Vec::new()))
        .with_offline_replicas(ids(&offline))
}
