//! Metadata: the live brokers, and topics with their ids and partitions,
//! each with its leader, replicas and in-sync replicas. Unknown topics
//! asked for by name are created when auto-creation is on and the client
//! allows it.

use std::{collections::BTreeMap, rc::Rc};

use futures_channel::oneshot;
use kafka_protocol::messages::BrokerId;
use kafka_protocol::{
    error::ResponseError,
    messages::{
        metadata_response::{
            MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
        },
        MetadataRequest, MetadataResponse,
    },
};
use uuid::Uuid;

use super::{
    authorized_operations, cluster_id, failure_code, is_live, live_brokers, str_bytes, topic_name,
    KafkaBroker, Resource,
};
use crate::{
    cluster_metadata::{Metadata, TopicMeta},
    controller::{check_topic_name, to_controller, ControllerOp, NewTopicSpec},
    partition::ErrorKind,
    shard::Shard,
};

pub async fn handle(
    shard: &Rc<Shard>,
    request: MetadataRequest,
    version: i16,
    listener: &str,
) -> MetadataResponse {
    let metadata = shard.metadata();
    // The brokers this listener's clients are told of, once for every
    // topic described.
    let brokers = live_brokers(shard, &metadata, listener);
    let topic_operations = authorized_operations(
        Resource::Topic,
        version >= 8 && request.include_topic_authorized_operations,
    );
    // v0 asks for every topic with an empty list, later versions with null.
    let wanted = match request.topics {
        Some(topics) if !(version == 0 && topics.is_empty()) => Some(topics),
        _ => None,
    };
    let mut topics = Vec::new();
    match wanted {
        None => {
            for topic in metadata.topics.values() {
                topics.push(describe(shard, &metadata, topic, version, &brokers));
            }
        }
        Some(wanted) => {
            // Names first, so that topics to create are created at once.
            let mut missing = Vec::new();
            for topic in &wanted {
                // A topic asked for by id (v10 on) is found by its id,
                // whatever the name says: the Java client leaves it empty
                // rather than null.
                let by_id = !topic.topic_id.is_nil();
                let found = match &topic.name {
                    Some(name) if !by_id => metadata.topic(name).cloned(),
                    _ => metadata
                        .topics
                        .values()
                        .find(|meta| Uuid::from_u128(meta.id.0) == topic.topic_id)
                        .cloned(),
                };
                match (found, &topic.name) {
                    (Some(meta), _) => {
                        topics.push(describe(shard, &metadata, &meta, version, &brokers))
                    }
                    (None, Some(name)) if !by_id => missing.push(name.0.to_string()),
                    (None, _) => topics.push(
                        MetadataResponseTopic::default()
                            .with_topic_id(topic.topic_id)
                            .with_error_code(ResponseError::UnknownTopicId.code()),
                    ),
                }
            }
            let create = shard.config.auto_create_topics
                && (version < 4 || request.allow_auto_topic_creation);
            topics.extend(answer_missing(shard, missing, create, version, listener).await);
        }
    }
    let mut response = MetadataResponse::default();
    response.brokers = brokers
        .into_iter()
        .map(|broker| {
            MetadataResponseBroker::default()
                .with_node_id(broker.node)
                .with_host(str_bytes(broker.host))
                .with_port(broker.port)
                .with_rack(broker.rack.map(str_bytes))
        })
        .collect();
    if version >= 2 {
        response.cluster_id = Some(str_bytes(cluster_id(shard)));
    }
    if version >= 1 {
        response.controller_id = super::controller_id(shard);
    }
    if (8..=10).contains(&version) {
        response.cluster_authorized_operations = authorized_operations(
            Resource::Cluster,
            request.include_cluster_authorized_operations,
        );
    }
    for topic in &mut topics {
        if topic.error_code == 0 {
            topic.topic_authorized_operations = topic_operations;
        }
    }
    response.topics = topics;
    response
}

/// Topics asked for that do not exist: created if `create`, else unknown.
async fn answer_missing(
    shard: &Rc<Shard>,
    missing: Vec<String>,
    create: bool,
    version: i16,
    listener: &str,
) -> Vec<MetadataResponseTopic> {
    let unknown = |name: &str, code: i16| {
        MetadataResponseTopic::default()
            .with_name(Some(topic_name(name)))
            .with_error_code(code)
    };
    if missing.is_empty() {
        return Vec::new();
    }
    if !create {
        return missing
            .iter()
            .map(|name| unknown(name, ResponseError::UnknownTopicOrPartition.code()))
            .collect();
    }
    let results = auto_create(shard, &missing).await;
    let metadata = shard.metadata();
    let brokers = live_brokers(shard, &metadata, listener);
    missing
        .iter()
        .zip(results)
        .map(|(name, result)| match (metadata.topic(name), result) {
            (Some(meta), _) => describe(shard, &metadata, meta, version, &brokers),
            (None, Err(code)) => unknown(name, code),
            (None, Ok(())) => unknown(name, ResponseError::LeaderNotAvailable.code()),
        })
        .collect()
}

/// Creates `names` with the auto-creation partition count; per name, the
/// Kafka error if one could not be created (one that exists by now is no
/// error).
pub(crate) async fn auto_create(shard: &Rc<Shard>, names: &[String]) -> Vec<Result<(), i16>> {
    let mut results = vec![Ok(()); names.len()];
    let mut topics = Vec::new();
    for (index, name) in names.iter().enumerate() {
        match check_topic_name(name) {
            Ok(()) => topics.push(NewTopicSpec {
                name: name.clone(),
                partitions: shard.config.auto_create_partitions,
                configs: BTreeMap::new(),
                replication_factor: 0,
                assignment: None,
            }),
            Err(failure) => results[index] = Err(failure_code(&failure)),
        }
    }
    if topics.is_empty() {
        return results;
    }
    let (reply, answer) = oneshot::channel();
    to_controller(shard, ControllerOp::CreateTopics { topics, reply }).await;
    let created = answer.await.unwrap_or_default();
    for outcome in created {
        let Err(failure) = outcome.result else {
            continue;
        };
        if failure.kind == ErrorKind::TopicExists {
            continue;
        }
        if let Some(index) = names.iter().position(|name| *name == outcome.name) {
            results[index] = Err(super::error_code(failure.kind));
        }
    }
    results
}

fn describe(
    shard: &Shard,
    metadata: &Metadata,
    topic: &TopicMeta,
    version: i16,
    reachable: &[KafkaBroker],
) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(&topic.name)))
        .with_topic_id(if version >= 10 {
            Uuid::from_u128(topic.id.0)
        } else {
            Uuid::nil()
        })
        .with_is_internal(version >= 1 && topic.name == crate::coordinator::OFFSETS_TOPIC)
        .with_partitions(
            (0..topic.partition_count())
                .map(|partition| {
                    let placement = crate::cluster_view::placement(
                        metadata,
                        shard.config.node_id,
                        topic,
                        partition,
                    );
                    let ids = |nodes: &[sluice_storage::NodeId]| {
                        nodes.iter().map(|node| BrokerId(node.0)).collect()
                    };
                    let offline = placement
                        .replicas
                        .iter()
                        .copied()
                        .filter(|node| !is_live(shard, metadata, *node))
                        .collect::<Vec<_>>();
                    // A live leader without an endpoint of this listener
                    // is one the client cannot reach, as Kafka says.
                    let leader = placement.leader.filter(|node| {
                        !is_live(shard, metadata, *node)
                            || reachable.iter().any(|broker| broker.node.0 == node.0)
                    });
                    MetadataResponsePartition::default()
                        .with_partition_index(partition as i32)
                        .with_error_code(match (placement.leader, leader) {
                            (Some(_), Some(_)) => 0,
                            (Some(_), None) => ResponseError::ListenerNotFound.code(),
                            (None, _) => ResponseError::LeaderNotAvailable.code(),
                        })
                        .with_leader_id(BrokerId(leader.map_or(-1, |node| node.0)))
                        .with_leader_epoch(if version >= 7 {
                            i32::try_from(placement.leader_epoch).unwrap_or(i32::MAX)
                        } else {
                            -1
                        })
                        .with_replica_nodes(ids(&placement.replicas))
                        .with_isr_nodes(ids(&placement.in_sync))
                        .with_offline_replicas(if version >= 5 {
                            ids(&offline)
                        } else {
                            Vec::new()
                        })
                })
                .collect(),
        )
}
