//! AlterPartitionReassignments and ListPartitionReassignments (KIP-455),
//! as `kafka-reassign-partitions.sh` and admin clients send them.
//!
//! A reassignment moves a partition's replicas to other brokers while it
//! serves: the new replicas follow and catch up, then the old ones leave
//! (see `crate::controller::moves`). A partition answers NONE once its
//! move has started (Kafka's controller answers the same, before the copy
//! is done); ListPartitionReassignments shows the moves in progress with
//! their adding and removing replicas. A request with null replicas
//! cancels the partition's move (NO_REASSIGNMENT_IN_PROGRESS when there is
//! none). A move is paced as Kafka's throttle configs say (what
//! `kafka-reassign-partitions.sh --throttle` sets; see
//! `crate::controller::moves`), or by `sluice topic move --throttle`.

use std::rc::Rc;

use kafka_protocol::{
    error::ResponseError,
    messages::{
        alter_partition_reassignments_response::{
            ReassignablePartitionResponse, ReassignableTopicResponse,
        },
        list_partition_reassignments_response::{
            OngoingPartitionReassignment, OngoingTopicReassignment,
        },
        AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
        ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
    },
};
use sluice_storage::NodeId;

use super::{
    admin::{controller, stopped},
    failure_code, str_bytes, topic_name,
};
use crate::{
    controller::{moves::in_progress, ControllerOp, MoveAsked, MoveFailure},
    shard::Shard,
};

/// A partition's move as asked, or Kafka's code and a message refusing it
/// before it reaches the controller.
type Checked = Result<MoveAsked, (i16, String)>;

pub async fn alter_partition_reassignments(
    shard: &Rc<Shard>,
    request: AlterPartitionReassignmentsRequest,
    version: i16,
) -> AlterPartitionReassignmentsResponse {
    let factor_may_change = version >= 1 && request.allow_replication_factor_change;
    // Per partition asked: what to move, or Kafka's answer at once.
    let mut asked: Vec<(String, Vec<(i32, Checked)>)> = Vec::new();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let partitions = topic
            .partitions
            .into_iter()
            .map(|partition| {
                let index = partition.partition_index;
                let Ok(number) = u32::try_from(index) else {
                    let message = format!("no partition {index} of topic {name}");
                    return (
                        index,
                        Err((ResponseError::UnknownTopicOrPartition.code(), message)),
                    );
                };
                let target = partition.replicas.map(|replicas| {
                    replicas
                        .iter()
                        .map(|node| NodeId(node.0))
                        .collect::<Vec<_>>()
                });
                if let Some(node) = target.iter().flatten().find(|node| node.0 < 0) {
                    let message = format!("node {node} is not a broker");
                    return (
                        index,
                        Err((ResponseError::InvalidReplicaAssignment.code(), message)),
                    );
                }
                let move_asked = MoveAsked {
                    topic: name.clone(),
                    partition: number,
                    target,
                };
                (index, Ok(move_asked))
            })
            .collect();
        asked.push((name, partitions));
    }
    let moves: Vec<MoveAsked> = asked
        .iter()
        .flat_map(|(_, partitions)| partitions.iter())
        .filter_map(|(_, asked)| asked.as_ref().ok().cloned())
        .collect();
    let outcomes = if moves.is_empty() {
        Some(Vec::new())
    } else {
        controller(shard, |reply| ControllerOp::MovePartitions {
            moves,
            throttle_bytes_per_s: 0,
            factor_may_change,
            reply,
        })
        .await
    };
    let mut outcomes = outcomes.map(Vec::into_iter);
    let responses = asked
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(index, asked)| {
                    let answer = match asked {
                        Err(refused) => Err(refused),
                        Ok(_) => match outcomes.as_mut() {
                            None => {
                                let failure = stopped();
                                Err((failure_code(&failure), failure.message))
                            }
                            Some(outcomes) => match outcomes
                                .next()
                                .expect("the controller answers each move asked")
                            {
                                Ok(()) => Ok(()),
                                Err(MoveFailure::NoMoveInProgress) => Err((
                                    ResponseError::NoReassignmentInProgress.code(),
                                    format!("no reassignment of partition {index} is in progress"),
                                )),
                                Err(MoveFailure::Failed(failure)) => {
                                    Err((failure_code(&failure), failure.message))
                                }
                            },
                        },
                    };
                    let response =
                        ReassignablePartitionResponse::default().with_partition_index(index);
                    match answer {
                        Ok(()) => response.with_error_code(0),
                        Err((code, message)) => response
                            .with_error_code(code)
                            .with_error_message(Some(str_bytes(message))),
                    }
                })
                .collect();
            ReassignableTopicResponse::default()
                .with_name(topic_name(&name))
                .with_partitions(partitions)
        })
        .collect();
    let response = AlterPartitionReassignmentsResponse::default()
        .with_error_code(0)
        .with_responses(responses);
    if version >= 1 {
        response.with_allow_replication_factor_change(factor_may_change)
    } else {
        response
    }
}

pub async fn list_partition_reassignments(
    shard: &Rc<Shard>,
    request: ListPartitionReassignmentsRequest,
    _version: i16,
) -> ListPartitionReassignmentsResponse {
    let metadata = shard.metadata();
    // Null topics: every move; else the partitions named.
    let named: Option<Vec<(String, Vec<i32>)>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|topic| (topic.name.0.to_string(), topic.partition_indexes))
            .collect()
    });
    let names: Option<Vec<String>> = named
        .as_ref()
        .map(|named| named.iter().map(|(name, _)| name.clone()).collect());
    let mut topics: Vec<OngoingTopicReassignment> = Vec::new();
    for moving in in_progress(&metadata, names.as_deref()) {
        let wanted = named.as_ref().is_none_or(|named| {
            named.iter().any(|(name, partitions)| {
                *name == moving.topic
                    && partitions
                        .iter()
                        .any(|index| i64::from(*index) == i64::from(moving.partition))
            })
        });
        if !wanted {
            continue;
        }
        let brokers = |nodes: &[NodeId]| -> Vec<BrokerId> {
            nodes.iter().map(|node| BrokerId(node.0)).collect()
        };
        let partition = OngoingPartitionReassignment::default()
            .with_partition_index(moving.partition as i32)
            .with_replicas(brokers(&moving.replicas))
            .with_adding_replicas(brokers(&moving.adding))
            .with_removing_replicas(brokers(&moving.removing));
        match topics.last_mut() {
            Some(topic) if topic.name.0.as_str() == moving.topic => {
                topic.partitions.push(partition)
            }
            _ => topics.push(
                OngoingTopicReassignment::default()
                    .with_name(topic_name(&moving.topic))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    ListPartitionReassignmentsResponse::default()
        .with_error_code(0)
        .with_topics(topics)
}
