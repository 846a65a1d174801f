//! What `/metrics` shows of a shard's replication: counters kept as its
//! partitions' roles and in-sync sets change and as it serves reads, and
//! each partition it leads as its [`LeaderState`] sees it (each
//! follower's lag in offsets and in time), read when a scrape asks.
//! Nothing here decides anything; the figures are the replication
//! crate's.
//!
//! [`LeaderState`]: sluice_replication::partition::leader::LeaderState

use std::{cell::Cell, collections::BTreeSet};

use sluice_replication::partition::leader::Node;
use sluice_storage::NodeId;

use super::state::{Replicas, Role};
use crate::{cluster_metadata::image::node_id, partition::ops::PartitionKey};

/// One shard's counters since the node started, on that shard.
#[derive(Debug, Default)]
pub struct ReplicaCounters {
    in_sync_shrinks: Cell<u64>,
    in_sync_expands: Cell<u64>,
    leaderships_taken: Cell<u64>,
    leaderships_lost: Cell<u64>,
    reads_as_leader: Cell<u64>,
    reads_as_follower: Cell<u64>,
    sent_to_closer_replica: Cell<u64>,
}

/// A shard's counters as a scrape reads them; summed over the shards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicaCounts {
    /// Confirmed in-sync changes of partitions this node leads that left
    /// a replica out (Kafka's `IsrShrinksPerSec`).
    pub in_sync_shrinks: u64,
    /// ... that took a replica in (Kafka's `IsrExpandsPerSec`).
    pub in_sync_expands: u64,
    /// Partitions this node took the leadership of (each election of it).
    pub leaderships_taken: u64,
    /// Partitions this node stopped leading (another leads, or none).
    pub leaderships_lost: u64,
    /// Fetches of a partition that returned records, served as its leader
    /// (or its only replica).
    pub reads_as_leader: u64,
    /// ... served as its follower (KIP-392).
    pub reads_as_follower: u64,
    /// Fetches a leader answered by naming a follower in the reader's
    /// rack instead of reading.
    pub sent_to_closer_replica: u64,
}

impl ReplicaCounts {
    pub fn add(&mut self, other: &ReplicaCounts) {
        self.in_sync_shrinks += other.in_sync_shrinks;
        self.in_sync_expands += other.in_sync_expands;
        self.leaderships_taken += other.leaderships_taken;
        self.leaderships_lost += other.leaderships_lost;
        self.reads_as_leader += other.reads_as_leader;
        self.reads_as_follower += other.reads_as_follower;
        self.sent_to_closer_replica += other.sent_to_closer_replica;
    }
}

fn bump(counter: &Cell<u64>) {
    counter.set(counter.get() + 1);
}

impl ReplicaCounters {
    /// A led partition's in-sync set went from `before` to `after`, as the
    /// controller confirmed: a shrink if it left one out, an expansion if
    /// it took one in (both, if it swapped).
    pub(super) fn in_sync_changed(&self, before: &BTreeSet<Node>, after: &BTreeSet<Node>) {
        if before.difference(after).next().is_some() {
            bump(&self.in_sync_shrinks);
        }
        if after.difference(before).next().is_some() {
            bump(&self.in_sync_expands);
        }
    }

    pub(super) fn took_leadership(&self) {
        bump(&self.leaderships_taken);
    }

    pub(super) fn lost_leadership(&self) {
        bump(&self.leaderships_lost);
    }

    /// A fetch read records of a partition, as its follower or not.
    pub(crate) fn read(&self, as_follower: bool) {
        match as_follower {
            true => bump(&self.reads_as_follower),
            false => bump(&self.reads_as_leader),
        }
    }

    pub(crate) fn sent_to_closer_replica(&self) {
        bump(&self.sent_to_closer_replica);
    }

    pub fn counts(&self) -> ReplicaCounts {
        ReplicaCounts {
            in_sync_shrinks: self.in_sync_shrinks.get(),
            in_sync_expands: self.in_sync_expands.get(),
            leaderships_taken: self.leaderships_taken.get(),
            leaderships_lost: self.leaderships_lost.get(),
            reads_as_leader: self.reads_as_leader.get(),
            reads_as_follower: self.reads_as_follower.get(),
            sent_to_closer_replica: self.sent_to_closer_replica.get(),
        }
    }
}

/// A partition this node leads, as its leader state sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderFigures {
    pub replicas: u64,
    /// The confirmed in-sync set, the leader among it.
    pub in_sync: u64,
    pub min_in_sync: u64,
    /// In replica order.
    pub followers: Vec<FollowerLag>,
}

impl LeaderFigures {
    pub fn under_replicated(&self) -> bool {
        self.in_sync < self.replicas
    }

    pub fn under_min_in_sync(&self) -> bool {
        self.in_sync < self.min_in_sync
    }
}

/// How far one follower is behind its leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerLag {
    pub node: NodeId,
    /// The leader's log end less what the follower acknowledged stored.
    pub offsets: u64,
    /// Milliseconds since it last held all the leader had stored; 0 while
    /// it does.
    pub ms: u64,
}

impl Replicas {
    /// Partition `key` as its leader sees it, if this node leads it; its
    /// log ends at `log_end`.
    pub fn leader_figures(&self, key: PartitionKey, log_end: u64) -> Option<LeaderFigures> {
        let roles = self.roles.borrow();
        let Some(Role::Leader(leading)) = roles.get(&key) else {
            return None;
        };
        let state = &leading.state;
        let now = self.now_ms();
        Some(LeaderFigures {
            replicas: leading.followers.len() as u64 + 1,
            in_sync: state.in_sync().len() as u64,
            min_in_sync: state.min_in_sync() as u64,
            followers: state
                .followers()
                .map(|progress| FollowerLag {
                    node: node_id(progress.node),
                    offsets: progress.lag_offsets(log_end),
                    ms: progress.lag_ms(state.durable_end(), now),
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_swap_is_a_shrink_and_an_expansion() {
        let counters = ReplicaCounters::default();
        counters.in_sync_changed(&[1, 2, 3].into(), &[1, 2].into());
        counters.in_sync_changed(&[1, 2].into(), &[1, 2, 3].into());
        counters.in_sync_changed(&[1, 2].into(), &[1, 3].into());
        counters.in_sync_changed(&[1, 2].into(), &[1, 2].into());
        let counts = counters.counts();
        assert_eq!((counts.in_sync_shrinks, counts.in_sync_expands), (2, 2));
    }
}
