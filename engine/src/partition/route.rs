//! Finding a partition's owner and sending it work.

use std::{future::Future, pin::Pin, rc::Rc};

use futures_channel::oneshot;

use super::{owner, ErrorKind, Failure, PartitionKey, PartitionOp};
use crate::{
    cluster_metadata::{Metadata, TopicMeta},
    shard::{Shard, ShardMessage},
};

/// Something that completes with `T`: a local task or a remote answer.
pub type Answer<T> = Pin<Box<dyn Future<Output = T>>>;

/// Where a partition lives: its owner shard, and its key there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub owner: usize,
    pub key: PartitionKey,
    /// The partition's leader epoch by the metadata it was routed with.
    pub leader_epoch: u32,
}

impl Route {
    /// The route of partition `partition` of `topic`.
    ///
    /// Panics if the topic has no such partition: a caller checks first.
    pub fn of(shard: &Shard, topic: &TopicMeta, partition: u32) -> Route {
        let placed = topic.shards[partition as usize];
        Route {
            owner: shard.owner(placed),
            key: PartitionKey::new(topic.id, partition),
            leader_epoch: topic
                .partition(partition)
                .map_or(0, |control| control.leader_epoch),
        }
    }
}

/// Where partition `partition` of `topic` lives on this node, by
/// `metadata`, or why it cannot be served here: `UnknownTopic`,
/// `NoSuchPartition` past the topic's partition count, `NotLeader` when
/// this node does not lead it (another does, or none does right now).
pub fn route(
    shard: &Shard,
    metadata: &Metadata,
    topic: &str,
    partition: u32,
) -> Result<Route, Failure> {
    let Some(meta) = metadata.topic(topic) else {
        return Err(Failure::new(
            ErrorKind::UnknownTopic,
            format!("no topic {topic}"),
        ));
    };
    if partition >= meta.partition_count() {
        let message = format!("topic {topic} has {} partitions", meta.partition_count());
        return Err(Failure::new(ErrorKind::NoSuchPartition, message));
    }
    if meta.leader(partition) != Some(shard.config.node_id) {
        let message = match meta.leader(partition) {
            Some(leader) => format!("partition {partition} of {topic} is led by node {leader}"),
            None => format!("partition {partition} of {topic} has no leader"),
        };
        return Err(Failure::new(ErrorKind::NotLeader, message));
    }
    Ok(Route::of(shard, meta, partition))
}

/// [`route`] for a read that a follower may serve too (a Kafka consumer's
/// fetch from v11, KIP-392): when `any_replica`, a node that holds a
/// replica of the partition without leading it routes the read to its
/// owner as well, which decides whether it serves it (in sync, following).
pub fn route_read(
    shard: &Shard,
    metadata: &Metadata,
    topic: &str,
    partition: u32,
    any_replica: bool,
) -> Result<Route, Failure> {
    match route(shard, metadata, topic, partition) {
        Err(failure) if any_replica && failure.kind == ErrorKind::NotLeader => {
            let me = crate::cluster_metadata::image::node(shard.config.node_id);
            let meta = metadata.topic(topic).expect("routed once");
            match meta.partition(partition) {
                Some(control) if control.replicas.contains(&me) => {
                    Ok(Route::of(shard, meta, partition))
                }
                _ => Err(failure),
            }
        }
        routed => routed,
    }
}

/// Sends the op `make` builds around its reply to the partition's owner
/// (run here when that is this shard) and returns the answer: the owner's,
/// or `ShuttingDown` if the owner stopped before it answered.
///
/// The op leaves before this returns, so ops asked one after another reach
/// their owner in that order (an idempotent producer's batches rely on it).
pub fn ask<T: 'static>(
    shard: &Rc<Shard>,
    route: Route,
    make: impl FnOnce(oneshot::Sender<Result<T, Failure>>) -> PartitionOp,
) -> Answer<Result<T, Failure>> {
    let (reply, answer) = oneshot::channel();
    let op = make(reply);
    if route.owner == shard.id {
        let shard = shard.clone();
        glommio::spawn_local(async move {
            owner::run(&shard.partitions, &shard.replicas, route.key, op).await
        })
        .detach();
    } else {
        // Straight into the owner's inbox; only a full inbox costs a task
        // that waits for room.
        let inbox = &shard.peers[route.owner];
        match inbox.try_send(ShardMessage::Partition(route.key, op)) {
            Ok(()) | Err(async_channel::TrySendError::Closed(_)) => {}
            Err(async_channel::TrySendError::Full(message)) => {
                let inbox = inbox.clone();
                glommio::spawn_local(async move {
                    let _ = inbox.send(message).await;
                })
                .detach();
            }
        }
    }
    Box::pin(async move {
        answer.await.unwrap_or_else(|_| {
            Err(Failure::new(
                ErrorKind::ShuttingDown,
                "the owner shard stopped",
            ))
        })
    })
}
