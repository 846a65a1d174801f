//! AlterReassignments and ListReassignments: moves of partitions to other
//! brokers, started by the controller on shard 0 (see
//! `crate::controller::moves`).

use std::rc::Rc;

use futures_channel::oneshot;
use sluice_net::native::{
    messages::{
        AlterReassignmentsRequest, AlterReassignmentsResponse, ListReassignmentsRequest,
        ListReassignmentsResponse, MoveResult, Reassignment,
    },
    ErrorCode,
};
use sluice_storage::NodeId;

use super::error_code;
use crate::{
    controller::{moves::in_progress, to_controller, ControllerOp, MoveAsked, MoveFailure},
    shard::Shard,
};

pub async fn alter(
    shard: &Rc<Shard>,
    request: AlterReassignmentsRequest,
) -> AlterReassignmentsResponse {
    let moves: Vec<MoveAsked> = request
        .moves
        .into_iter()
        .map(|asked| MoveAsked {
            topic: asked.topic,
            partition: asked.partition,
            // Node ids past i32 name no broker: refused as one.
            target: asked.replicas.map(|replicas| {
                replicas
                    .into_iter()
                    .map(|node| NodeId(i32::try_from(node).unwrap_or(i32::MAX)))
                    .collect()
            }),
        })
        .collect();
    let asked = moves.clone();
    let (reply, answer) = oneshot::channel();
    let op = ControllerOp::MovePartitions {
        moves,
        throttle_bytes_per_s: request.throttle_bytes_per_s,
        factor_may_change: request.allow_replication_factor_change,
        reply,
    };
    to_controller(shard, op).await;
    let outcomes = answer.await.ok();
    let results = asked
        .into_iter()
        .enumerate()
        .map(|(index, asked)| {
            let (error, message) = match outcomes.as_ref().map(|outcomes| &outcomes[index]) {
                None => (
                    ErrorCode::ShuttingDown,
                    "the controller stopped".to_string(),
                ),
                Some(Ok(())) => (ErrorCode::None, String::new()),
                Some(Err(MoveFailure::NoMoveInProgress)) => (
                    ErrorCode::NoReassignmentInProgress,
                    format!(
                        "no reassignment of partition {} is in progress",
                        asked.partition
                    ),
                ),
                Some(Err(MoveFailure::Failed(failure))) => {
                    (error_code(failure.kind), failure.message.clone())
                }
            };
            MoveResult {
                topic: asked.topic,
                partition: asked.partition,
                error,
                message,
            }
        })
        .collect();
    AlterReassignmentsResponse { results }
}

pub fn list(shard: &Rc<Shard>, request: ListReassignmentsRequest) -> ListReassignmentsResponse {
    let metadata = shard.metadata();
    let topics = (!request.topics.is_empty()).then_some(request.topics);
    let nodes =
        |nodes: Vec<NodeId>| -> Vec<u32> { nodes.into_iter().map(|node| node.0 as u32).collect() };
    let reassignments = in_progress(&metadata, topics.as_deref())
        .into_iter()
        .map(|moving| Reassignment {
            topic: moving.topic,
            partition: moving.partition,
            replicas: nodes(moving.replicas),
            adding: nodes(moving.adding),
            removing: nodes(moving.removing),
            throttle_bytes_per_s: moving.throttle_bytes_per_s,
        })
        .collect();
    ListReassignmentsResponse { reassignments }
}
