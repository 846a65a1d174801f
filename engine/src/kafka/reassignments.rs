//! AlterPartitionReassignments and ListPartitionReassignments (KIP-455),
//! as `kafka-reassign-partitions.sh` and admin clients send them.
//!
//! Moving a partition to other brokers copies its records to them while
//! it serves, which is what replication does; until partitions are
//! replicated, a partition stays on the broker that holds it. So a
//! reassignment to the replicas a partition already has succeeds (there is
//! nothing to move), and any other is refused, each partition with the
//! reason, after the checks Kafka makes (the topic and partition exist,
//! the target brokers are live, the replication factor is kept unless the
//! request allows a change). No reassignment is ever in progress, so
//! ListPartitionReassignments lists none and a cancellation finds none.

use std::{collections::BTreeSet, rc::Rc};

use kafka_protocol::{
    error::ResponseError,
    messages::{
        alter_partition_reassignments_response::{
            ReassignablePartitionResponse, ReassignableTopicResponse,
        },
        AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
        ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
    },
};
use sluice_storage::NodeId;

use super::{is_live, str_bytes};
use crate::shard::Shard;

pub async fn alter_partition_reassignments(
    shard: &Rc<Shard>,
    request: AlterPartitionReassignmentsRequest,
    version: i16,
) -> AlterPartitionReassignmentsResponse {
    let metadata = shard.metadata();
    let factor_may_change = version >= 1 && request.allow_replication_factor_change;
    let responses = request
        .topics
        .into_iter()
        .map(|topic| {
            let meta = metadata.topic(topic.name.0.as_str()).cloned();
            let partitions = topic
                .partitions
                .into_iter()
                .map(|partition| {
                    let index = partition.partition_index;
                    let current = meta
                        .as_ref()
                        .and_then(|meta| meta.replicas.get(usize::try_from(index).ok()?).cloned());
                    let outcome = match (current, partition.replicas) {
                        (None, _) => Err((
                            ResponseError::UnknownTopicOrPartition,
                            format!("no partition {index} of topic {}", topic.name.0),
                        )),
                        (Some(_), None) => Err((
                            ResponseError::NoReassignmentInProgress,
                            format!("no reassignment of partition {index} is in progress"),
                        )),
                        (Some(current), Some(target)) => {
                            let target: Vec<NodeId> =
                                target.iter().map(|node| NodeId(node.0)).collect();
                            check(shard, &metadata, &current, &target, factor_may_change)
                        }
                    };
                    let response =
                        ReassignablePartitionResponse::default().with_partition_index(index);
                    match outcome {
                        Ok(()) => response.with_error_code(0),
                        Err((error, message)) => response
                            .with_error_code(error.code())
                            .with_error_message(Some(str_bytes(message))),
                    }
                })
                .collect();
            ReassignableTopicResponse::default()
                .with_name(topic.name)
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

/// Whether a partition on `current` may be reassigned to `target`.
fn check(
    shard: &Shard,
    metadata: &crate::cluster_metadata::Metadata,
    current: &[NodeId],
    target: &[NodeId],
    factor_may_change: bool,
) -> Result<(), (ResponseError, String)> {
    let distinct: BTreeSet<&NodeId> = target.iter().collect();
    if target.is_empty() || distinct.len() != target.len() {
        return Err((
            ResponseError::InvalidReplicaAssignment,
            format!("replicas {target:?}: a partition's replicas are distinct nodes, one at least"),
        ));
    }
    if let Some(node) = target.iter().find(|node| !is_live(shard, metadata, **node)) {
        return Err((
            ResponseError::InvalidReplicaAssignment,
            format!("node {node} is not a live broker"),
        ));
    }
    if target.len() != current.len() && !factor_may_change {
        return Err((
            ResponseError::InvalidReplicationFactor,
            format!(
                "replicas {target:?} change the replication factor from {}, which the request does not allow",
                current.len()
            ),
        ));
    }
    if target == current {
        return Ok(());
    }
    Err((
        ResponseError::InvalidRequest,
        format!(
            "moving a partition from nodes {current:?} to {target:?} copies its records to them, which comes with replication (not built yet): it stays where it is"
        ),
    ))
}

pub async fn list_partition_reassignments(
    _shard: &Rc<Shard>,
    _request: ListPartitionReassignmentsRequest,
    _version: i16,
) -> ListPartitionReassignmentsResponse {
    // No partition ever moves between brokers yet: none is moving now.
    ListPartitionReassignmentsResponse::default()
        .with_error_code(0)
        .with_topics(Vec::new())
}
