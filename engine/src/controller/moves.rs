//! Moves of partitions between brokers (Kafka's AlterPartitionReassignments,
//! `sluice topic move`): each is checked against this node's image and
//! proposed as a [`MetadataRecord::ReassignmentStarted`] (or
//! [`MetadataRecord::ReassignmentCancelled`]), which every node applies
//! alike, checked again against the state it meets there. The move itself
//! is replication's: the new replicas follow and catch up (at the move's
//! pace when it is throttled), and the controller ends the move when the
//! leader reports them all in sync (see
//! `sluice_replication::partition::control`).

use std::{collections::BTreeSet, rc::Rc};

use sluice_storage::NodeId;

use super::{
    driver::{failure_of, propose_each},
    state::Rejected,
};
use crate::{
    cluster_metadata::{
        encoding::REPLICAS_PER_PARTITION_MAX, Metadata, MetadataRecord, Refused, TopicMeta,
    },
    cluster_view,
    error::{ErrorKind, Failure},
    shard::Shard,
    topic_config,
};

/// Moves proposed at once (see `super::elections::ELECTIONS_IN_FLIGHT_MAX`).
pub const MOVES_IN_FLIGHT_MAX: usize = 256;

/// A move asked for: `target` the partition's new replicas (its leader
/// first when balanced), or `None` to cancel the one in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveAsked {
    pub topic: String,
    pub partition: u32,
    pub target: Option<Vec<NodeId>>,
}

/// Why a move was not made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoveFailure {
    /// A cancellation of a partition that is not moving.
    NoMoveInProgress,
    Failed(Failure),
}

/// Starts (or cancels) each move in `asked`, every new replica sent at
/// most `throttle_bytes_per_s` while it catches up (0: unthrottled); an
/// outcome per move, in order. A move is answered once it is started (its
/// record committed and applied here), not once the copy is done:
/// [`in_progress`] tells when it is. `factor_may_change`: a target may
/// have another number of replicas than the partition has.
pub async fn move_partitions(
    shard: &Rc<Shard>,
    asked: Vec<MoveAsked>,
    throttle_bytes_per_s: u64,
    factor_may_change: bool,
) -> Vec<Result<(), MoveFailure>> {
    let metadata = shard.metadata();
    let mut outcomes = Vec::with_capacity(asked.len());
    let mut due: Vec<(usize, MetadataRecord)> = Vec::new();
    for move_asked in &asked {
        let outcome = check(
            shard,
            &metadata,
            move_asked,
            throttle_bytes_per_s,
            factor_may_change,
        );
        match outcome {
            Ok(Some(record)) => {
                due.push((outcomes.len(), record));
                outcomes.push(Ok(()));
            }
            Ok(None) => outcomes.push(Ok(())),
            Err(failure) => outcomes.push(Err(failure)),
        }
    }
    for (index, result) in propose_each(shard, due, MOVES_IN_FLIGHT_MAX).await {
        let result = result.map_err(|rejected| match rejected {
            Rejected::Refused(Refused::Move {
                reason: sluice_replication::partition::control::MoveError::NoMoveInProgress,
                ..
            }) => MoveFailure::NoMoveInProgress,
            Rejected::Refused(refused) => MoveFailure::Failed(failure_of(refused)),
            Rejected::Failed(failure) => MoveFailure::Failed(failure),
        });
        let asked = &asked[index];
        match &result {
            Ok(()) => tracing::info!(
                topic = %asked.topic,
                partition = asked.partition,
                target = ?asked.target,
                throttle_bytes_per_s,
                "partition move started"
            ),
            Err(failure) => tracing::info!(
                topic = %asked.topic,
                partition = asked.partition,
                target = ?asked.target,
                ?failure,
                "partition move not started"
            ),
        }
        outcomes[index] = result;
    }
    outcomes
}

/// The record that makes `asked`, `None` if it changes nothing (a move to
/// the replicas the partition has), or why it cannot be made.
fn check(
    shard: &Shard,
    metadata: &Metadata,
    asked: &MoveAsked,
    throttle_bytes_per_s: u64,
    factor_may_change: bool,
) -> Result<Option<MetadataRecord>, MoveFailure> {
    let failed = |kind, message: String| MoveFailure::Failed(Failure::new(kind, message));
    let topic = metadata
        .topic(&asked.topic)
        .ok_or_else(|| failed(ErrorKind::UnknownTopic, format!("no topic {}", asked.topic)))?;
    let control = topic.partition(asked.partition).ok_or_else(|| {
        failed(
            ErrorKind::NoSuchPartition,
            format!("no partition {} of topic {}", asked.partition, asked.topic),
        )
    })?;
    let Some(target) = &asked.target else {
        if control.moving.is_none() {
            return Err(MoveFailure::NoMoveInProgress);
        }
        return Ok(Some(MetadataRecord::ReassignmentCancelled {
            topic_id: topic.id,
            partition: asked.partition,
        }));
    };
    let distinct: BTreeSet<&NodeId> = target.iter().collect();
    if target.is_empty() || distinct.len() != target.len() {
        return Err(failed(
            ErrorKind::InvalidReplicaAssignment,
            format!("replicas {target:?}: a partition's replicas are distinct nodes, one at least"),
        ));
    }
    if target.len() > REPLICAS_PER_PARTITION_MAX {
        return Err(failed(
            ErrorKind::InvalidReplicaAssignment,
            format!(
                "{} replicas: a partition has at most {REPLICAS_PER_PARTITION_MAX}",
                target.len()
            ),
        ));
    }
    if let Some(node) = target
        .iter()
        .find(|node| !cluster_view::is_live(metadata, shard.config.node_id, **node))
    {
        return Err(failed(
            ErrorKind::InvalidReplicaAssignment,
            format!("node {node} is not a live broker"),
        ));
    }
    let original_count = control
        .moving
        .as_ref()
        .map_or(control.replicas.len(), |moving| moving.original.len());
    if target.len() != original_count && !factor_may_change {
        return Err(failed(
            ErrorKind::InvalidReplicationFactor,
            format!(
                "replicas {target:?} change the replication factor from {original_count}, which the request does not allow"
            ),
        ));
    }
    let current = &topic.replicas[asked.partition as usize];
    if control.moving.is_none() && current == target {
        return Ok(None);
    }
    let throttle_bytes_per_s = match throttle_bytes_per_s {
        0 => kafka_throttle(metadata, topic, asked.partition, current, target),
        given => given,
    };
    Ok(Some(MetadataRecord::ReassignmentStarted {
        topic_id: topic.id,
        partition: asked.partition,
        target: target.clone(),
        throttle_bytes_per_s,
    }))
}

/// The pace Kafka's throttle configs give a move of `partition` from
/// `current` to `target` (what `kafka-reassign-partitions.sh --throttle`
/// sets): when the topic's `follower.replication.throttled.replicas` lists
/// a new replica (or `*`), the least of the leader's
/// `leader.replication.throttled.rate` and the new replicas'
/// `follower.replication.throttled.rate` (each broker's own, else the
/// cluster's default), those that are set; 0 (unthrottled) otherwise.
/// Kafka's rates bound a broker's throttled traffic as a whole; here the
/// rate paces each new replica of the move.
fn kafka_throttle(
    metadata: &Metadata,
    topic: &TopicMeta,
    partition: u32,
    current: &[NodeId],
    target: &[NodeId],
) -> u64 {
    let configs = topic.effective_configs();
    let listed = |config: &str, node: NodeId| {
        configs.get(config).is_some_and(|value| {
            value.trim() == "*"
                || topic_config::list_items(value)
                    .iter()
                    .any(|item| *item == format!("{partition}:{}", node.0))
        })
    };
    let rate = |node: NodeId, name: &str| {
        metadata
            .broker_configs
            .get(&node)
            .and_then(|own| own.get(name))
            .or_else(|| metadata.broker_defaults.get(name))
            .and_then(|value| value.trim().parse::<u64>().ok())
    };
    let adding: Vec<NodeId> = target
        .iter()
        .copied()
        .filter(|node| !current.contains(node))
        .filter(|node| listed("follower.replication.throttled.replicas", *node))
        .collect();
    if adding.is_empty() {
        return 0;
    }
    let leader = current.first().copied();
    let leader_rate = leader
        .filter(|leader| listed("leader.replication.throttled.replicas", *leader))
        .and_then(|leader| rate(leader, "leader.replication.throttled.rate"));
    adding
        .iter()
        .filter_map(|node| rate(*node, "follower.replication.throttled.rate"))
        .chain(leader_rate)
        // Kafka's Long.MAX_VALUE (the default) is no limit; 0 here is none
        // either, so the least rate is at least 1 byte per second.
        .filter(|rate| *rate < i64::MAX as u64)
        .min()
        .map_or(0, |rate| rate.max(1))
}

/// A partition's move in progress, as ListPartitionReassignments shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveInProgress {
    pub topic: String,
    pub partition: u32,
    /// Every replica while it moves: the target, then those it leaves.
    pub replicas: Vec<NodeId>,
    pub adding: Vec<NodeId>,
    pub removing: Vec<NodeId>,
    pub throttle_bytes_per_s: u64,
}

/// The moves in progress by `metadata`, of the topics named (every topic
/// when `None`), by topic and partition.
pub fn in_progress(metadata: &Metadata, topics: Option<&[String]>) -> Vec<MoveInProgress> {
    let ids = |nodes: Vec<u32>| -> Vec<NodeId> {
        nodes
            .into_iter()
            .map(crate::cluster_metadata::image::node_id)
            .collect()
    };
    metadata
        .topics
        .values()
        .filter(|topic| topics.is_none_or(|named| named.contains(&topic.name)))
        .flat_map(|topic| {
            topic
                .control
                .iter()
                .enumerate()
                .filter_map(move |(partition, control)| {
                    let moving = control.moving.as_ref()?;
                    Some(MoveInProgress {
                        topic: topic.name.clone(),
                        partition: partition as u32,
                        replicas: ids(control.replicas.clone()),
                        adding: ids(moving.adding()),
                        removing: ids(moving.removing()),
                        throttle_bytes_per_s: moving.throttle_bytes_per_s,
                    })
                })
        })
        .collect()
}
