//! Which shard coordinates a group: the owner of the group's partition of
//! `__consumer_offsets` (a hash of the group id), on the node that leads
//! that partition. Work for a group is made where its request arrives and
//! run there ([`on_coordinator`]), once that shard has loaded the
//! partition's groups ([`super::holding`]).

use std::{future::Future, rc::Rc};

use futures_channel::oneshot;
use sluice_storage::NodeId;

use super::{error::GroupError, holding::serves, OFFSETS_TOPIC};
use crate::{
    cluster_metadata::Metadata,
    controller::{to_controller, ControllerOp, NewTopicSpec},
    partition::PartitionKey,
    shard::{Shard, ShardMessage},
};

/// A group id is at most this long (it is in every offset record's key).
pub const GROUP_ID_BYTES_MAX: usize = 1024;

fn group_hash(group: &str) -> u32 {
    crc32c::crc32c(group.as_bytes())
}

/// The key of the offsets partition of `group`, and its owner shard; `None`
/// if the offsets topic does not exist yet.
pub fn offsets_partition(
    shard: &Shard,
    metadata: &Metadata,
    group: &str,
) -> Option<(usize, PartitionKey)> {
    internal_partition(shard, metadata, OFFSETS_TOPIC, group)
}

/// The key of the partition of internal topic `topic` that `id` (a group,
/// a transactional id) hashes to, and its owner shard; `None` if the topic
/// does not exist yet.
pub(crate) fn internal_partition(
    shard: &Shard,
    metadata: &Metadata,
    topic: &str,
    id: &str,
) -> Option<(usize, PartitionKey)> {
    let topic = metadata.topic(topic)?;
    let count = topic.partition_count().max(1);
    let partition = group_hash(id) % count;
    let owner = shard.owner(*topic.shards.get(partition as usize)?);
    Some((owner, PartitionKey::new(topic.id, partition)))
}

/// The node that coordinates `group`: the leader of its offsets
/// partition (the offsets topic is created if it is missing).
pub async fn coordinator_node(shard: &Rc<Shard>, group: &str) -> Result<NodeId, GroupError> {
    if group.len() > GROUP_ID_BYTES_MAX {
        return Err(GroupError::InvalidGroupId);
    }
    if !ensure_internal_topic(
        shard,
        OFFSETS_TOPIC,
        shard.config.offsets_replication_factor(),
    )
    .await
    {
        return Err(GroupError::CoordinatorNotAvailable);
    }
    let metadata = shard.metadata();
    let topic = metadata
        .topic(OFFSETS_TOPIC)
        .ok_or(GroupError::CoordinatorNotAvailable)?;
    let partition = group_hash(group) % topic.partition_count().max(1);
    topic
        .leader(partition)
        .ok_or(GroupError::CoordinatorNotAvailable)
}

/// Creates the coordinators' internal topic `name` (`__consumer_offsets`,
/// `__transaction_state`) if it is missing: one partition per shard of
/// each live broker (of this node alone before any registered), so the
/// groups or transactional ids hashed to it spread over every broker and
/// core, each partition of `configured` replicas (capped by
/// [`offsets_replication_factor`]), so what it holds outlives the node
/// that coordinates it. True once the topic exists.
pub(crate) async fn ensure_internal_topic(shard: &Rc<Shard>, name: &str, configured: u16) -> bool {
    let metadata = shard.metadata();
    if metadata.topic(name).is_some() {
        return true;
    }
    let brokers = metadata
        .brokers
        .values()
        .filter(|b| !b.fenced)
        .count()
        .max(1);
    let factor = offsets_replication_factor(configured, brokers);
    // The broker's min.insync.replicas, as other topics get it, but never
    // more than the replicas there are: a capped factor must still take
    // writes.
    let min_in_sync = shard.config.min_insync_replicas.clamp(1, u32::from(factor));
    let (reply, answer) = oneshot::channel();
    let topic = NewTopicSpec {
        name: name.to_string(),
        partitions: (shard.shard_count() * brokers) as u32,
        // Compacted, as Kafka's: the latest record of each key (a group,
        // a committed offset, a transactional id) stays. Segments of `group_offsets_compact_bytes`
        // (Kafka's `offsets.topic.segment.bytes`), so that the cleaner
        // finds sealed ones to clean.
        configs: [
            ("retention.ms".to_string(), "-1".to_string()),
            ("min.insync.replicas".to_string(), min_in_sync.to_string()),
            ("cleanup.policy".to_string(), "compact".to_string()),
            (
                "segment.bytes".to_string(),
                shard
                    .config
                    .group_offsets_compact_bytes
                    .clamp(4096, sluice_storage::log::SEGMENT_BYTES_CAP)
                    .to_string(),
            ),
        ]
        .into(),
        replication_factor: factor,
        assignment: None,
    };
    let op = ControllerOp::CreateTopics {
        topics: vec![topic],
        reply,
    };
    to_controller(shard, op).await;
    let _ = answer.await;
    shard.metadata().topic(name).is_some()
}

/// The replicas of each partition of `__consumer_offsets`: the broker's
/// setting (Kafka's `offsets.topic.replication.factor`), but no more than
/// the `live` brokers there are when it is created. Kafka refuses to
/// create it then, and its groups wait until enough brokers joined; here a
/// single node, or a cluster whose first group comes before its other
/// brokers registered, keeps working, with fewer replicas.
fn offsets_replication_factor(configured: u16, live: usize) -> u16 {
    let live = u16::try_from(live).unwrap_or(u16::MAX);
    configured.clamp(1, live.max(1))
}

/// Runs `work` on the coordinator shard of `group` and returns what it
/// returns. `work` is made here and run there: what it captures must be
/// `Send`; the future it returns need not be. Refused with
/// [`GroupError::NotCoordinator`] on a node that does not lead the
/// group's offsets partition, and with
/// [`GroupError::CoordinatorLoadInProgress`] while the one that does is
/// reading its groups back.
pub async fn on_coordinator<T, F, W>(
    shard: &Rc<Shard>,
    group: &str,
    work: W,
) -> Result<T, GroupError>
where
    T: Send + 'static,
    F: Future<Output = T> + 'static,
    W: FnOnce(Rc<Shard>) -> F + Send + 'static,
{
    if coordinator_node(shard, group).await? != shard.config.node_id {
        return Err(GroupError::NotCoordinator);
    }
    let (owner, key) = offsets_partition(shard, &shard.metadata(), group)
        .ok_or(GroupError::CoordinatorNotAvailable)?;
    // There, the metadata it holds and the groups it loaded decide.
    let work = move |there: Rc<Shard>| async move {
        match serves(&there, key).await {
            Ok(()) => Ok(work(there).await),
            Err(error) => Err(error),
        }
    };
    run_on(shard, owner, work).await?
}

/// Runs `work` on shard `owner` (here if it is this one).
pub async fn run_on<T, F, W>(shard: &Rc<Shard>, owner: usize, work: W) -> Result<T, GroupError>
where
    T: Send + 'static,
    F: Future<Output = T> + 'static,
    W: FnOnce(Rc<Shard>) -> F + Send + 'static,
{
    if owner == shard.id {
        return Ok(work(shard.clone()).await);
    }
    let (reply, answer) = oneshot::channel();
    let task: Box<dyn FnOnce(Rc<Shard>) + Send> = Box::new(move |there: Rc<Shard>| {
        glommio::spawn_local(async move {
            let _ = reply.send(work(there).await);
        })
        .detach();
    });
    shard.peers[owner]
        .send(ShardMessage::Run(task))
        .await
        .map_err(|_| GroupError::CoordinatorNotAvailable)?;
    answer
        .await
        .map_err(|_| GroupError::CoordinatorNotAvailable)
}

#[cfg(test)]
mod tests {
    use super::offsets_replication_factor;

    #[test]
    fn the_offsets_topic_has_the_configured_replicas_up_to_the_live_brokers() {
        assert_eq!(offsets_replication_factor(3, 3), 3);
        assert_eq!(offsets_replication_factor(3, 5), 3);
        assert_eq!(offsets_replication_factor(3, 2), 2);
        assert_eq!(offsets_replication_factor(3, 1), 1);
        assert_eq!(offsets_replication_factor(3, 0), 1);
        assert_eq!(offsets_replication_factor(1, 3), 1);
        assert_eq!(offsets_replication_factor(0, 3), 1);
    }
}
