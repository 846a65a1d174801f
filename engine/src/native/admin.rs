//! Create, delete, describe and reconfigure topics. Changes go to the
//! controller on shard 0; descriptions gather figures from owner shards.

use std::rc::Rc;

use futures_channel::oneshot;
use sluice_net::native::{
    messages::{
        AlterConfigsRequest, CreateTopicsRequest, DeleteTopicsRequest, DescribeTopicsRequest,
        DescribeTopicsResponse, PartitionDescription, TopicDescription, TopicResult, TopicResults,
    },
    ErrorCode,
};

use super::error_code;
use sluice_storage::NodeId;

use crate::{
    cluster_view,
    controller::{to_controller, ControllerOp, NewTopicSpec, TopicOutcome},
    partition::{ask, gather_all, route, Failure, PartitionOp, PartitionStats, Route},
    shard::Shard,
};

/// The native answer for `name`: `result` in the native protocol's terms.
fn topic_result(name: String, result: Result<(), Failure>) -> TopicResult {
    match result {
        Ok(()) => TopicResult {
            name,
            error: ErrorCode::None,
            message: String::new(),
        },
        Err(failure) => TopicResult {
            name,
            error: error_code(failure.kind),
            message: failure.message,
        },
    }
}

fn topic_results(outcomes: Vec<TopicOutcome>) -> Vec<TopicResult> {
    outcomes
        .into_iter()
        .map(|outcome| topic_result(outcome.name, outcome.result))
        .collect()
}

fn gone(name: &str) -> TopicResult {
    TopicResult {
        name: name.to_string(),
        error: ErrorCode::ShuttingDown,
        message: "the controller stopped".to_string(),
    }
}

pub async fn create_topics(shard: &Rc<Shard>, request: CreateTopicsRequest) -> TopicResults {
    let names: Vec<String> = request
        .topics
        .iter()
        .map(|topic| topic.name.clone())
        .collect();
    let topics = request
        .topics
        .into_iter()
        .map(|topic| NewTopicSpec {
            name: topic.name,
            // An assignment with no count: as many as it lists.
            partitions: match topic.partitions {
                0 => u32::try_from(topic.assignment.len()).unwrap_or(u32::MAX),
                count => count,
            },
            configs: topic.configs.into_iter().collect(),
            replication_factor: topic.replication_factor,
            assignment: (!topic.assignment.is_empty()).then(|| {
                topic
                    .assignment
                    .iter()
                    .map(|nodes| {
                        // A node id past i32 names no node: -1 is refused
                        // as one.
                        nodes
                            .iter()
                            .map(|node| NodeId(i32::try_from(*node).unwrap_or(-1)))
                            .collect()
                    })
                    .collect()
            }),
        })
        .collect();
    let (reply, answer) = oneshot::channel();
    to_controller(shard, ControllerOp::CreateTopics { topics, reply }).await;
    TopicResults {
        topics: answer
            .await
            .map(topic_results)
            .unwrap_or_else(|_| names.iter().map(|name| gone(name)).collect()),
    }
}

pub async fn delete_topics(shard: &Rc<Shard>, request: DeleteTopicsRequest) -> TopicResults {
    let names = request.names.clone();
    let (reply, answer) = oneshot::channel();
    let op = ControllerOp::DeleteTopics {
        names: request.names,
        reply,
    };
    to_controller(shard, op).await;
    TopicResults {
        topics: answer
            .await
            .map(topic_results)
            .unwrap_or_else(|_| names.iter().map(|name| gone(name)).collect()),
    }
}

pub async fn alter_configs(shard: &Rc<Shard>, request: AlterConfigsRequest) -> TopicResults {
    let name = request.topic.clone();
    let (reply, answer) = oneshot::channel();
    let op = ControllerOp::AlterConfigs {
        topic: request.topic,
        changes: request.configs,
        reply,
    };
    to_controller(shard, op).await;
    TopicResults {
        topics: vec![match answer.await {
            Ok(result) => topic_result(name, result),
            Err(_) => gone(&name),
        }],
    }
}

pub async fn describe_topics(
    shard: &Rc<Shard>,
    request: DescribeTopicsRequest,
) -> DescribeTopicsResponse {
    let metadata = shard.metadata();
    let names: Vec<String> = if request.names.is_empty() {
        metadata.topics.keys().cloned().collect()
    } else {
        request.names
    };
    let mut topics = Vec::new();
    for name in names {
        let Some(topic) = metadata.topic(&name).cloned() else {
            topics.push(TopicDescription {
                message: format!("no topic {name}"),
                name,
                error: ErrorCode::UnknownTopic,
                topic_id: 0,
                configs: Vec::new(),
                partitions: Vec::new(),
            });
            continue;
        };
        let routes: Vec<Route> = (0..topic.partition_count())
            .map(|partition| Route::of(shard, &topic, partition))
            .collect();
        // A partition another node holds answers `NotLeader` (its leader
        // is in the description): its log is not here to describe.
        let stats = (0..topic.partition_count())
            .map(|partition| {
                route(shard, &metadata, &name, partition)
                    .map(|route| ask(shard, route, |reply| PartitionOp::Stats { reply }))
            })
            .collect();
        let partitions = routes
            .iter()
            .zip(gather_all(stats).await)
            .map(|(route, stats)| {
                let (error, stats) = match stats {
                    Ok(stats) => (ErrorCode::None, stats),
                    Err(failure) => (error_code(failure.kind), PartitionStats::default()),
                };
                let partition = route.key.partition.0;
                let placement =
                    cluster_view::placement(&metadata, shard.config.node_id, &topic, partition);
                let ids =
                    |nodes: Vec<NodeId>| nodes.into_iter().map(|node| node.0 as u32).collect();
                PartitionDescription {
                    partition,
                    shard: route.owner as u32,
                    error,
                    log_start: stats.log_start.0,
                    log_end: stats.log_end.0,
                    size_bytes: stats.size_bytes,
                    segments: stats.segments,
                    leader: placement.leader.map(|node| node.0 as u32),
                    replicas: ids(placement.replicas),
                    in_sync: ids(placement.in_sync),
                    leader_epoch: placement.leader_epoch,
                }
            })
            .collect();
        topics.push(TopicDescription {
            name,
            error: ErrorCode::None,
            message: String::new(),
            topic_id: topic.id.0,
            configs: topic
                .configs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            partitions,
        });
    }
    DescribeTopicsResponse { topics }
}
