//! ElectLeaders: preferred or unclean elections of partitions' leaders,
//! held by the controller on shard 0 (see `crate::controller::elections`).

use std::rc::Rc;

use futures_channel::oneshot;
use sluice_net::native::{
    messages::{ElectLeadersRequest, ElectLeadersResponse, ElectionResult, ElectionType},
    ErrorCode,
};
use sluice_replication::partition::control::ElectionError;

use super::error_code;
use crate::{
    cluster_metadata::Election,
    cluster_view,
    controller::{to_controller, ControllerOp, ElectionFailure},
    shard::Shard,
};

pub async fn elect_leaders(
    shard: &Rc<Shard>,
    request: ElectLeadersRequest,
) -> ElectLeadersResponse {
    let election = match request.election {
        ElectionType::Preferred => Election::Preferred,
        ElectionType::Unclean => Election::Unclean,
    };
    let metadata = shard.metadata();
    // A topic named with no partitions: each of its partitions (partition
    // 0 of a topic this node does not know, which the controller answers).
    let partitions = (!request.topics.is_empty()).then(|| {
        request
            .topics
            .into_iter()
            .flat_map(|topic| {
                let partitions = match (topic.partitions.is_empty(), metadata.topic(&topic.name)) {
                    (false, _) => topic.partitions,
                    (true, Some(meta)) => (0..meta.partition_count()).collect(),
                    (true, None) => vec![0],
                };
                partitions
                    .into_iter()
                    .map(move |partition| (topic.name.clone(), partition))
            })
            .collect::<Vec<_>>()
    });
    let asked = partitions.clone();
    let (reply, answer) = oneshot::channel();
    let op = ControllerOp::ElectLeaders {
        election,
        partitions,
        reply,
    };
    to_controller(shard, op).await;
    let Ok(outcomes) = answer.await else {
        let results = asked
            .unwrap_or_default()
            .into_iter()
            .map(|(topic, partition)| ElectionResult {
                topic,
                partition,
                error: ErrorCode::ShuttingDown,
                message: "the controller stopped".to_string(),
                leader: None,
            })
            .collect();
        return ElectLeadersResponse { results };
    };
    // The leaders as this node knows them once the elections are applied
    // here (the controller answers after that).
    let metadata = shard.metadata();
    let results = outcomes
        .into_iter()
        .map(|outcome| {
            let leader = metadata.topic(&outcome.topic).and_then(|topic| {
                (outcome.partition < topic.partition_count()).then(|| {
                    cluster_view::placement(
                        &metadata,
                        shard.config.node_id,
                        topic,
                        outcome.partition,
                    )
                    .leader
                })?
            });
            let (error, message) = match outcome.result {
                Ok(()) => (ErrorCode::None, String::new()),
                Err(ElectionFailure::NotHeld(reason)) => (code_of(reason), reason.to_string()),
                Err(ElectionFailure::Failed(failure)) => {
                    (error_code(failure.kind), failure.message)
                }
            };
            ElectionResult {
                topic: outcome.topic,
                partition: outcome.partition,
                error,
                message,
                leader: leader.map(|node| node.0 as u32),
            }
        })
        .collect();
    ElectLeadersResponse { results }
}

fn code_of(reason: ElectionError) -> ErrorCode {
    match reason {
        ElectionError::NotNeeded(_) => ErrorCode::ElectionNotNeeded,
        ElectionError::PreferredNotAvailable(_) => ErrorCode::PreferredLeaderNotAvailable,
        ElectionError::NoLiveReplica => ErrorCode::EligibleLeadersNotAvailable,
    }
}
