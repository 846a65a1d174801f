//! Leader balance, on the controller leader (shard 0): a broker that
//! stops loses the leadership of its partitions to their followers, and
//! when it comes back it follows them all. Every
//! [`BrokerConfig::leader_imbalance_check_interval`] the leader counts, per
//! broker, the partitions it is the preferred replica of (the first of
//! the replica list) and could lead (alive and in sync) but does not; past
//! [`LEADER_IMBALANCE_PER_BROKER_PERCENT`] of its partitions, it proposes
//! a preferred election for each ([`MetadataRecord::LeaderElected`]), as
//! Kafka's `auto.leader.rebalance.enable` does.
//!
//! An election is held where its record is applied, against the state it
//! meets there, so one proposed from a stale view changes nothing. The
//! old leader follows from the new leader epoch on and truncates by epoch
//! (`crate::replica`); clients are told `NOT_LEADER_OR_FOLLOWER` and find
//! the new leader in their next metadata.
//!
//! [`BrokerConfig::leader_imbalance_check_interval`]: crate::BrokerConfig::leader_imbalance_check_interval

use std::{collections::BTreeMap, rc::Rc, time::Instant};

use sluice_storage::{NodeId, TopicId};

use super::{driver::propose_unanswered, state::Controller};
use crate::{
    cluster_metadata::{image::node_id, Election, Metadata, MetadataRecord},
    shard::Shard,
};

/// A broker's partitions go back to it when more than this share (in
/// percent) of the ones it is the preferred replica of are led by another
/// broker although it could lead them: Kafka's
/// `leader.imbalance.per.broker.percentage` default. Below it, moving a
/// few partitions is not worth the clients' trip to the new leader.
pub const LEADER_IMBALANCE_PER_BROKER_PERCENT: usize = 10;

/// On the leader, each tick: every check interval (counted from when it
/// took the lead, so a new leader gives the brokers one interval to
/// settle), proposes the preferred elections [`imbalanced`] finds due.
pub fn check(shard: &Rc<Shard>, controller: &Controller) {
    if !shard.config.auto_leader_rebalance || !controller.leads() {
        controller.balance_checked.set(None);
        return;
    }
    let now = Instant::now();
    let Some(checked) = controller.balance_checked.get() else {
        controller.balance_checked.set(Some(now));
        return;
    };
    if now.duration_since(checked) < shard.config.leader_imbalance_check_interval {
        return;
    }
    controller.balance_checked.set(Some(now));
    let due = imbalanced(&shard.metadata());
    if due.is_empty() {
        return;
    }
    tracing::info!(
        partitions = due.len(),
        "leader imbalance: preferred elections proposed"
    );
    for (topic_id, partition) in due {
        propose_unanswered(
            shard,
            MetadataRecord::LeaderElected {
                topic_id,
                partition,
                election: Election::Preferred,
            },
        );
    }
}

/// The partitions to move back to their preferred replica: for each
/// broker whose imbalance is over [`LEADER_IMBALANCE_PER_BROKER_PERCENT`],
/// those it is the preferred replica of, could lead (registered,
/// unfenced, in sync) and does not. The imbalance of a broker is the
/// share of those among all the partitions it is the preferred replica
/// of.
pub fn imbalanced(metadata: &Metadata) -> Vec<(TopicId, u32)> {
    let alive = |node: NodeId| {
        metadata
            .brokers
            .get(&node)
            .is_some_and(|broker| !broker.fenced)
    };
    // Per preferred broker: its partitions, and those it could lead but
    // does not.
    let mut brokers: BTreeMap<NodeId, (usize, Vec<(TopicId, u32)>)> = BTreeMap::new();
    for topic in metadata.topics.values() {
        for (partition, control) in topic.control.iter().enumerate() {
            let Some(preferred) = control.preferred() else {
                continue;
            };
            let (count, movable) = brokers.entry(node_id(preferred)).or_default();
            *count += 1;
            let could_lead = control.in_sync.contains(&preferred) && alive(node_id(preferred));
            if control.leader != Some(preferred) && could_lead {
                movable.push((topic.id, partition as u32));
            }
        }
    }
    brokers
        .into_values()
        .filter(|(count, movable)| {
            movable.len() * 100 > count * LEADER_IMBALANCE_PER_BROKER_PERCENT
        })
        .flat_map(|(_, movable)| movable)
        .collect()
}

#[cfg(test)]
mod tests {
    use sluice_storage::ShardId;

    use super::*;
    use crate::cluster_metadata::records::BrokerRegistration;

    const TOPIC: TopicId = TopicId(9);

    fn registered(node: i32) -> MetadataRecord {
        MetadataRecord::BrokerRegistered(BrokerRegistration {
            node: NodeId(node),
            incarnation: 1,
            rack: None,
            kafka_listeners: Vec::new(),
            native_addr: String::new(),
            peer_addr: String::new(),
            admin_addr: String::new(),
        })
    }

    /// Brokers 1 to 3 and a topic of `partitions` partitions on
    /// [1, 2, 3]; then broker 1 fenced (its partitions go to broker 2)
    /// and back, in sync again in the first `back_in_sync` of them.
    fn after_a_restart(partitions: u32, back_in_sync: u32) -> Metadata {
        let mut metadata = Metadata::default();
        let mut index = 0;
        let mut apply = |metadata: &mut Metadata, record: MetadataRecord| {
            index += 1;
            metadata.apply(&record, index).unwrap();
        };
        for node in 1..=3 {
            apply(&mut metadata, registered(node));
        }
        apply(
            &mut metadata,
            MetadataRecord::TopicCreated {
                topic_id: TOPIC,
                name: "t".to_string(),
                shards: vec![ShardId(0); partitions as usize],
                replicas: vec![vec![NodeId(1), NodeId(2), NodeId(3)]; partitions as usize],
                configs: Default::default(),
            },
        );
        let epoch = metadata.brokers[&NodeId(1)].epoch;
        let fence = MetadataRecord::BrokerFenced {
            node: NodeId(1),
            epoch,
        };
        apply(&mut metadata, fence);
        assert!(imbalanced(&metadata).is_empty(), "broker 1 cannot lead");
        let unfence = MetadataRecord::BrokerUnfenced {
            node: NodeId(1),
            epoch,
        };
        apply(&mut metadata, unfence);
        for partition in 0..back_in_sync {
            let control = metadata.topic("t").unwrap().control[partition as usize].clone();
            assert_eq!(control.leader, Some(2));
            let rejoined = MetadataRecord::InSyncAltered {
                topic_id: TOPIC,
                partition,
                leader: NodeId(2),
                leader_epoch: control.leader_epoch,
                partition_epoch: control.partition_epoch,
                in_sync: vec![NodeId(1), NodeId(2), NodeId(3)],
            };
            apply(&mut metadata, rejoined);
        }
        metadata
    }

    #[test]
    fn partitions_go_back_to_their_preferred_replica_once_it_is_in_sync() {
        let metadata = after_a_restart(4, 3);
        assert_eq!(
            imbalanced(&metadata),
            [(TOPIC, 0), (TOPIC, 1), (TOPIC, 2)],
            "partition 3 waits until broker 1 is in sync"
        );
        let mut balanced = metadata.clone();
        for (topic_id, partition) in imbalanced(&metadata) {
            let elected = MetadataRecord::LeaderElected {
                topic_id,
                partition,
                election: Election::Preferred,
            };
            balanced.apply(&elected, 100).unwrap();
        }
        let topic = balanced.topic("t").unwrap();
        assert_eq!(
            (0..4).map(|p| topic.leader(p)).collect::<Vec<_>>(),
            [
                Some(NodeId(1)),
                Some(NodeId(1)),
                Some(NodeId(1)),
                Some(NodeId(2))
            ]
        );
        assert!(imbalanced(&balanced).is_empty(), "partition 3 still waits");
    }

    #[test]
    fn an_imbalance_of_ten_percent_or_less_is_left_alone() {
        // 2 of 20 partitions (10 %) could move back: not over the limit.
        assert!(imbalanced(&after_a_restart(20, 2)).is_empty());
        // 3 of 20 (15 %): all three go back.
        assert_eq!(imbalanced(&after_a_restart(20, 3)).len(), 3);
    }
}
