//! Which replica serves a consumer's read: fetching from the closest
//! replica (Kafka's KIP-392).
//!
//! - A leader (while it holds its lease) and a partition of one replica
//!   serve every read.
//! - A follower serves the reads that may come from any replica (a Kafka
//!   consumer's fetch from v11) while it follows its leader's epoch,
//!   reconciled, and the metadata names it in the in-sync set; its log
//!   shows readers up to the high watermark its leader pushes. Otherwise
//!   it answers `NotLeader` (Kafka's NOT_LEADER_OR_FOLLOWER), and the
//!   consumer goes back to the leader: a follower that fell out of the
//!   in-sync set stops serving at once rather than serving ever older
//!   records.
//! - The leader, asked by a consumer whose rack holds a follower (and not
//!   the leader), names the follower in its rack that is in sync and holds
//!   the offset asked for, the most caught up first (Kafka's
//!   `RackAwareReplicaSelector`), and reads nothing; with none, it reads.

use sluice_storage::{NodeId, Offset};

use super::state::{Replicas, Role};
use crate::{
    cluster_metadata::{
        image::{node, node_id},
        Metadata,
    },
    error::{ErrorKind, Failure},
    partition::ops::{PartitionKey, ReadFrom},
};

/// The replica a read is served by on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServedAs {
    /// The leader, or the only replica.
    Leader,
    Follower,
}

impl Replicas {
    /// Whether this node serves a read of `key` that may come `from` these
    /// replicas, and as which; `NotLeader` when it does not.
    pub fn reader(&self, key: PartitionKey, from: &ReadFrom) -> Result<ServedAs, Failure> {
        let not_serving =
            |why: &str| Err(Failure::new(ErrorKind::NotLeader, format!("{key}: {why}")));
        match (self.roles.borrow().get(&key), from) {
            (None, _) => Ok(ServedAs::Leader),
            (Some(Role::Leader(_)), _) if self.lease.held() => Ok(ServedAs::Leader),
            (Some(Role::Follower(following)), ReadFrom::AnyReplica { .. }) => {
                if !self.lease.held() {
                    not_serving("this broker lost its lease with the controller")
                } else if !following.in_sync {
                    not_serving("this follower is not in the in-sync set; read from the leader")
                } else if !following.state.following() || following.busy {
                    not_serving("this follower is reconciling its log with its leader's")
                } else {
                    Ok(ServedAs::Follower)
                }
            }
            _ => not_serving("not led by this node right now"),
        }
    }

    /// The follower among `closer` (the reader's rack's) that a reader of
    /// `key` at `offset` should read from instead of this leader: one in
    /// the in-sync set that has stored `offset`, the most caught up (then
    /// the one caught up most recently). `None`: this leader reads.
    pub fn closer_replica(
        &self,
        key: PartitionKey,
        offset: Offset,
        closer: &[NodeId],
    ) -> Option<NodeId> {
        if closer.is_empty() {
            return None;
        }
        let roles = self.roles.borrow();
        let Some(Role::Leader(leading)) = roles.get(&key) else {
            return None;
        };
        let state = &leading.state;
        state
            .followers()
            .filter(|progress| closer.contains(&node_id(progress.node)))
            .filter(|progress| state.in_sync().contains(&progress.node))
            .filter(|progress| progress.durable_end >= offset.0)
            .max_by_key(|progress| (progress.durable_end, progress.caught_up_ms))
            .map(|progress| node_id(progress.node))
    }
}

/// The followers of partition `partition` of `topic` in the rack
/// `client_rack` of a consumer, for its leader (node `me`, in rack
/// `my_rack`) to name instead of reading: none unless the broker selects
/// replicas by rack (`rack_aware`), the consumer names a rack, and this
/// node leads the partition from another rack; fenced brokers left out.
/// The leader then keeps the ones in sync that hold the offset
/// ([`Replicas::closer_replica`]).
pub fn closer_replicas(
    (me, my_rack, rack_aware): (NodeId, Option<&str>, bool),
    metadata: &Metadata,
    topic: &str,
    partition: u32,
    client_rack: &str,
) -> Vec<NodeId> {
    if !rack_aware || client_rack.is_empty() || my_rack == Some(client_rack) {
        return Vec::new();
    }
    let me = node(me);
    let Some(control) = metadata
        .topic(topic)
        .and_then(|meta| meta.partition(partition))
    else {
        return Vec::new();
    };
    if control.leader != Some(me) {
        return Vec::new();
    }
    control
        .replicas
        .iter()
        .filter(|replica| **replica != me)
        .map(|replica| node_id(*replica))
        .filter(|replica| {
            metadata.brokers.get(replica).is_some_and(|broker| {
                !broker.fenced && broker.registration.rack.as_deref() == Some(client_rack)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use sluice_replication::partition::{
        epochs::EpochCache,
        follower::FollowerState,
        leader::{LeaderConfig, LeaderState, LogPosition},
        push::Pushes,
    };
    use sluice_storage::TopicId;

    use super::*;
    use crate::replica::state::{Following, Leading, Lease, PUSH};

    const KEY: PartitionKey = PartitionKey {
        topic: TopicId(7),
        partition: sluice_storage::PartitionId(0),
    };

    fn any(closer: &[i32]) -> ReadFrom {
        ReadFrom::AnyReplica {
            closer: closer.iter().map(|node| NodeId(*node)).collect(),
        }
    }

    fn replicas() -> Replicas {
        Replicas::new(Duration::from_secs(2), Arc::new(Lease::default()))
    }

    fn follower(in_sync: bool, busy: bool) -> Role {
        let cache = EpochCache::from_entries(&[]).unwrap();
        let (state, _) = FollowerState::new(2, 1, 0, &cache, 0, 0);
        Role::Follower(Box::new(Following {
            shard: 0,
            state,
            asked_ms: None,
            busy,
            in_sync,
        }))
    }

    /// Node 1 leads replicas 1, 2, 3, all in sync; its log is stored to
    /// 10, node 2 has acknowledged 10 and node 3 has acknowledged 5.
    fn leader() -> Role {
        let position = LogPosition {
            log_end: 10,
            durable_end: 10,
            high_watermark: 0,
        };
        let config = LeaderConfig {
            min_in_sync: 2,
            lag_max_ms: 2_000,
            propose_resend_ms: 1_000,
        };
        let mut state = LeaderState::new(1, &[1, 2, 3], &[1, 2, 3].into(), 0, position, config, 0);
        state.follower_durable(2, 10, 1).unwrap();
        state.follower_durable(3, 5, 1).unwrap();
        Role::Leader(Box::new(Leading {
            epoch: 0,
            shard: 0,
            followers: vec![2, 3],
            state,
            pushes: Pushes::new(&[2, 3], 10, PUSH, 0),
            waiting: Vec::new(),
            throttle: None,
            broker_epochs: Default::default(),
        }))
    }

    #[test]
    fn a_follower_serves_only_consumers_that_may_read_from_it_while_in_sync() {
        let replicas = replicas();
        assert_eq!(
            replicas.reader(KEY, &ReadFrom::Leader),
            Ok(ServedAs::Leader),
            "one replica"
        );
        replicas
            .roles
            .borrow_mut()
            .insert(KEY, follower(true, false));
        assert_eq!(replicas.reader(KEY, &any(&[])), Ok(ServedAs::Follower));
        let refused = replicas.reader(KEY, &ReadFrom::Leader).unwrap_err();
        assert_eq!(
            refused.kind,
            ErrorKind::NotLeader,
            "a native or pre-v11 fetch"
        );
        replicas
            .roles
            .borrow_mut()
            .insert(KEY, follower(false, false));
        let refused = replicas.reader(KEY, &any(&[])).unwrap_err();
        assert_eq!(refused.kind, ErrorKind::NotLeader, "out of the in-sync set");
        replicas
            .roles
            .borrow_mut()
            .insert(KEY, follower(true, true));
        let refused = replicas.reader(KEY, &any(&[])).unwrap_err();
        assert_eq!(refused.kind, ErrorKind::NotLeader, "truncating");
        replicas.roles.borrow_mut().insert(KEY, Role::Idle);
        assert!(replicas.reader(KEY, &any(&[])).is_err(), "no leader");
        replicas.roles.borrow_mut().insert(KEY, leader());
        assert_eq!(replicas.reader(KEY, &any(&[])), Ok(ServedAs::Leader));
        assert_eq!(
            replicas.reader(KEY, &ReadFrom::Leader),
            Ok(ServedAs::Leader)
        );
    }

    #[test]
    fn the_leader_names_the_most_caught_up_closer_follower_that_holds_the_offset() {
        let replicas = replicas();
        replicas.roles.borrow_mut().insert(KEY, leader());
        let closer = |offset: u64, nodes: &[i32]| {
            let nodes: Vec<NodeId> = nodes.iter().map(|node| NodeId(*node)).collect();
            replicas.closer_replica(KEY, Offset(offset), &nodes)
        };
        assert_eq!(closer(4, &[2, 3]), Some(NodeId(2)), "the most caught up");
        assert_eq!(closer(4, &[3]), Some(NodeId(3)));
        assert_eq!(closer(7, &[3]), None, "node 3 has stored up to 5");
        assert_eq!(closer(0, &[]), None, "no follower in the consumer's rack");
        // Node 2 leaves the in-sync set: it is not named any more.
        if let Some(Role::Leader(leading)) = replicas.roles.borrow_mut().get_mut(&KEY) {
            assert!(leading.state.confirmed(1, &[1, 3].into()));
        }
        assert_eq!(closer(4, &[2, 3]), Some(NodeId(3)));
        assert_eq!(closer(4, &[2]), None);
    }
}
