//! The controller's rules for one partition: who leads, in which epoch,
//! with which in-sync set, and who may be elected when the in-sync set is
//! gone (KIP-966's eligible leader replicas).
//!
//! - A leader is elected from the in-sync set; when it is empty, from the
//!   eligible leader replicas; never from anywhere else unless unclean
//!   election is enabled (`unclean.leader.election.enable`) or an
//!   operator asks for one ([`PartitionControl::elect_unclean`]), which
//!   may lose acknowledged records and says so by its name.
//! - An operator (or the controller's leader balancing) may move
//!   leadership back to the preferred replica, the first of the replica
//!   list, once it is in sync ([`PartitionControl::elect_preferred`]).
//! - Every change bumps the partition epoch; a change of leader also bumps
//!   the leader epoch. A leader's request to change the in-sync set names
//!   the epochs it was made under, and a stale one changes nothing.
//! - When the in-sync set shrinks below `min.insync.replicas`, the high
//!   watermark stops (the leader's rule), so a member removed then still
//!   holds every record below it: it becomes an eligible leader replica.
//!   Once the set is back at `min.insync.replicas` the high watermark
//!   moves on without them, and the eligible set is emptied.
//! - Replicas acknowledge only what they made durable, so a node that
//!   crashed keeps everything it acknowledged and stays eligible (Kafka
//!   drops a replica that shut down uncleanly from the eligible set because
//!   it acknowledges records it has not synced).

use std::collections::BTreeSet;

use super::{epochs::Epoch, leader::Node};

/// The settings elections follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlConfig {
    /// `min.insync.replicas`.
    pub min_in_sync: usize,
    /// `unclean.leader.election.enable`.
    pub unclean: bool,
}

/// Why a leader's request changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("node {from} is not the leader (node {leader:?} is)")]
    NotLeader { from: Node, leader: Option<Node> },
    #[error("leader epoch {asked} is not the current {current}")]
    FencedLeaderEpoch { asked: Epoch, current: Epoch },
    #[error("partition epoch {asked} is not the current {current}")]
    StalePartitionEpoch { asked: u32, current: u32 },
    #[error("the in-sync set must hold its leader")]
    LeaderLeft,
    #[error("node {0} is not a replica of this partition")]
    NotAReplica(Node),
}

/// Why an election an operator asked for (Kafka's ElectLeaders) changes
/// nothing. Kafka's codes: ELECTION_NOT_NEEDED,
/// PREFERRED_LEADER_NOT_AVAILABLE, ELIGIBLE_LEADERS_NOT_AVAILABLE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ElectionError {
    #[error("node {0} leads already")]
    NotNeeded(Node),
    #[error("the preferred replica, node {0}, is not alive and in sync")]
    PreferredNotAvailable(Node),
    #[error("no replica is alive to lead")]
    NoLiveReplica,
}

/// A partition's state as the controller records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionControl {
    pub replicas: Vec<Node>,
    pub leader: Option<Node>,
    pub leader_epoch: Epoch,
    pub partition_epoch: u32,
    pub in_sync: BTreeSet<Node>,
    /// KIP-966's eligible leader replicas.
    pub eligible: BTreeSet<Node>,
}

impl PartitionControl {
    /// A new partition on `replicas`: every one in sync, the first alive
    /// one leading in epoch 0.
    pub fn new(replicas: &[Node], alive: impl Fn(Node) -> bool) -> PartitionControl {
        PartitionControl {
            replicas: replicas.to_vec(),
            leader: replicas.iter().copied().find(|node| alive(*node)),
            leader_epoch: 0,
            partition_epoch: 0,
            in_sync: replicas.iter().copied().collect(),
            eligible: BTreeSet::new(),
        }
    }

    /// The leader `from`, in `leader_epoch`, asks for `in_sync` under
    /// `partition_epoch`. New members that are not alive are left out.
    pub fn alter_in_sync(
        &mut self,
        from: Node,
        leader_epoch: Epoch,
        partition_epoch: u32,
        in_sync: &BTreeSet<Node>,
        alive: impl Fn(Node) -> bool,
        config: ControlConfig,
    ) -> Result<(), ControlError> {
        if self.leader != Some(from) {
            return Err(ControlError::NotLeader {
                from,
                leader: self.leader,
            });
        }
        if leader_epoch != self.leader_epoch {
            return Err(ControlError::FencedLeaderEpoch {
                asked: leader_epoch,
                current: self.leader_epoch,
            });
        }
        if partition_epoch != self.partition_epoch {
            return Err(ControlError::StalePartitionEpoch {
                asked: partition_epoch,
                current: self.partition_epoch,
            });
        }
        if !in_sync.contains(&from) {
            return Err(ControlError::LeaderLeft);
        }
        if let Some(node) = in_sync.iter().find(|node| !self.replicas.contains(node)) {
            return Err(ControlError::NotAReplica(*node));
        }
        // A new member fenced since its leader saw it caught up is left
        // out, and the rest is applied under a new epoch all the same: the
        // leader learns what became of its proposal (and stops counting
        // that member for its high watermark), and a copy of the proposal
        // that arrives later is stale.
        let in_sync: BTreeSet<Node> = in_sync
            .iter()
            .copied()
            .filter(|node| self.in_sync.contains(node) || alive(*node))
            .collect();
        self.set_in_sync(in_sync, config);
        self.partition_epoch += 1;
        Ok(())
    }

    /// Node `node` was fenced (its lease ran out, or it shut down): it
    /// leaves the in-sync set, and if it led, a successor is elected.
    /// Returns whether anything changed.
    pub fn fence(
        &mut self,
        node: Node,
        alive: impl Fn(Node) -> bool,
        config: ControlConfig,
    ) -> bool {
        let led = self.leader == Some(node);
        if !led && !self.in_sync.contains(&node) {
            return false;
        }
        let mut in_sync = self.in_sync.clone();
        in_sync.remove(&node);
        self.set_in_sync(in_sync, config);
        if led {
            self.elect(|candidate| candidate != node && alive(candidate), config);
        }
        self.partition_epoch += 1;
        true
    }

    /// Node `node` is alive again. A partition without a leader elects it
    /// when it may lead. Returns whether anything changed.
    pub fn unfence(
        &mut self,
        node: Node,
        alive: impl Fn(Node) -> bool,
        config: ControlConfig,
    ) -> bool {
        if self.leader.is_some() || !self.replicas.contains(&node) {
            return false;
        }
        self.elect(|candidate| candidate == node || alive(candidate), config);
        if self.leader.is_none() {
            return false;
        }
        self.partition_epoch += 1;
        true
    }

    /// The preferred replica: the first of the replica list, which leads
    /// when the partition is balanced.
    pub fn preferred(&self) -> Option<Node> {
        self.replicas.first().copied()
    }

    /// Makes `node` the leader if it is in sync and alive (preferred
    /// leader election, Kafka's ElectLeaders PREFERRED): a clean election,
    /// so the in-sync and eligible sets stay as they are.
    ///
    /// Errors: `NotNeeded` if `node` leads already;
    /// `PreferredNotAvailable` if it is not in sync or not alive.
    pub fn elect_preferred(
        &mut self,
        node: Node,
        alive: impl Fn(Node) -> bool,
    ) -> Result<(), ElectionError> {
        if self.leader == Some(node) {
            return Err(ElectionError::NotNeeded(node));
        }
        if !self.in_sync.contains(&node) || !alive(node) {
            return Err(ElectionError::PreferredNotAvailable(node));
        }
        self.leader = Some(node);
        self.leader_epoch += 1;
        self.partition_epoch += 1;
        Ok(())
    }

    /// Elects a leader for a partition that has none, whatever the topic's
    /// `unclean.leader.election.enable` says (Kafka's ElectLeaders
    /// UNCLEAN, asked for by an operator who accepts that records
    /// acknowledged only by the lost replicas are gone): the first alive
    /// replica of the in-sync set, else of the eligible replicas, else any
    /// alive replica. A leader elected from outside the in-sync set is
    /// the in-sync set alone from then on.
    ///
    /// Errors: `NotNeeded` if the partition has a leader;
    /// `NoLiveReplica` if no replica is alive.
    pub fn elect_unclean(
        &mut self,
        alive: impl Fn(Node) -> bool,
        config: ControlConfig,
    ) -> Result<(), ElectionError> {
        if let Some(leader) = self.leader {
            return Err(ElectionError::NotNeeded(leader));
        }
        let config = ControlConfig {
            unclean: true,
            ..config
        };
        self.elect(alive, config);
        if self.leader.is_none() {
            return Err(ElectionError::NoLiveReplica);
        }
        self.partition_epoch += 1;
        Ok(())
    }

    /// Elects a leader among the candidates `may_lead` admits: the
    /// in-sync set first (in replica order), then the eligible replicas,
    /// then, only when unclean election is enabled, any replica.
    fn elect(&mut self, may_lead: impl Fn(Node) -> bool, config: ControlConfig) {
        let in_order = |set: &BTreeSet<Node>| {
            self.replicas
                .iter()
                .copied()
                .find(|node| set.contains(node) && may_lead(*node))
        };
        let clean = in_order(&self.in_sync);
        let eligible = in_order(&self.eligible);
        let unclean = config
            .unclean
            .then(|| self.replicas.iter().copied().find(|node| may_lead(*node)))
            .flatten();
        self.leader = clean.or(eligible).or(unclean);
        if let Some(leader) = self.leader {
            if clean.is_none() {
                // Elected from outside the in-sync set: it is the set now.
                self.eligible.remove(&leader);
                if eligible.is_none() {
                    // Unclean: nobody else is known to hold its records.
                    self.eligible.clear();
                }
                self.in_sync = [leader].into();
            }
            self.leader_epoch += 1;
        }
    }

    /// Replaces the in-sync set, keeping the eligible set by KIP-966's
    /// rule.
    fn set_in_sync(&mut self, in_sync: BTreeSet<Node>, config: ControlConfig) {
        if in_sync.len() >= config.min_in_sync.max(1) {
            self.eligible.clear();
        } else {
            // The high watermark stops now: those who leave hold all of it.
            self.eligible.extend(self.in_sync.difference(&in_sync));
            for node in &in_sync {
                self.eligible.remove(node);
            }
        }
        self.in_sync = in_sync;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: ControlConfig = ControlConfig {
        min_in_sync: 2,
        unclean: false,
    };

    #[test]
    fn a_fenced_leader_is_succeeded_from_the_in_sync_set() {
        let mut control = PartitionControl::new(&[1, 2, 3], |_| true);
        assert_eq!(control.leader, Some(1));
        let before = control.partition_epoch;
        assert!(control.fence(1, |node| node != 1, STRICT));
        assert_eq!(control.leader, Some(2));
        assert_eq!(control.leader_epoch, 1);
        assert_eq!(control.in_sync, [2, 3].into());
        assert!(control.eligible.is_empty(), "the set is at min.insync");
        assert!(control.partition_epoch > before);
        assert!(
            !control.fence(1, |node| node != 1, STRICT),
            "again: nothing"
        );
    }

    #[test]
    fn below_min_in_sync_the_leavers_stay_eligible_and_the_last_one_standing_leads() {
        let mut control = PartitionControl::new(&[1, 2, 3], |_| true);
        let alive = |dead: &'static [Node]| move |node: Node| !dead.contains(&node);
        let epoch = control.partition_epoch;
        control
            .alter_in_sync(1, 0, epoch, &[1, 2].into(), alive(&[]), STRICT)
            .unwrap();
        assert!(control.eligible.is_empty());
        // Node 2 leaves: the set is below 2, so node 2 holds every record
        // below the (now frozen) high watermark.
        let epoch = control.partition_epoch;
        control
            .alter_in_sync(1, 0, epoch, &[1].into(), alive(&[]), STRICT)
            .unwrap();
        assert_eq!(control.eligible, [2].into());
        // The leader dies: the set empties, node 1 becomes eligible too,
        // and node 2 is elected from the eligible set.
        assert!(control.fence(1, alive(&[1]), STRICT));
        assert_eq!(control.leader, Some(2));
        assert_eq!(control.in_sync, [2].into());
        assert_eq!(control.eligible, [1].into());
        // Node 3 was never eligible: with 1 and 2 dead, nobody leads.
        assert!(control.fence(2, alive(&[1, 2]), STRICT));
        assert_eq!(control.leader, None);
        assert!(!control.unfence(3, alive(&[1, 2]), STRICT));
        assert_eq!(control.leader, None, "unclean election is off");
        assert!(control.unfence(1, alive(&[2]), STRICT));
        assert_eq!(control.leader, Some(1));
        // Unclean, when asked for, elects anyone and says nobody else is
        // known to be complete.
        let mut unclean = PartitionControl::new(&[1, 2, 3], |_| true);
        let config = ControlConfig {
            unclean: true,
            ..STRICT
        };
        unclean.fence(1, alive(&[1]), config);
        unclean.fence(2, alive(&[1, 2]), config);
        unclean.fence(3, alive(&[1, 2, 3]), config);
        assert_eq!(unclean.leader, None);
        assert_eq!(unclean.eligible, [2, 3].into());
        assert!(unclean.unfence(1, alive(&[2, 3]), config));
        assert_eq!(unclean.leader, Some(1));
        assert!(unclean.eligible.is_empty());
    }

    #[test]
    fn stale_or_foreign_requests_change_nothing() {
        let mut control = PartitionControl::new(&[1, 2, 3], |_| true);
        let before = control.clone();
        let all = |_| true;
        let set: BTreeSet<Node> = [1, 2].into();
        assert!(matches!(
            control.alter_in_sync(2, 0, 0, &set, all, STRICT),
            Err(ControlError::NotLeader { .. })
        ));
        assert!(matches!(
            control.alter_in_sync(1, 3, 0, &set, all, STRICT),
            Err(ControlError::FencedLeaderEpoch { .. })
        ));
        assert!(matches!(
            control.alter_in_sync(1, 0, 7, &set, all, STRICT),
            Err(ControlError::StalePartitionEpoch { .. })
        ));
        assert_eq!(
            control.alter_in_sync(1, 0, 0, &[2].into(), all, STRICT),
            Err(ControlError::LeaderLeft)
        );
        assert_eq!(
            control.alter_in_sync(1, 0, 0, &[1, 9].into(), all, STRICT),
            Err(ControlError::NotAReplica(9))
        );
        assert_eq!(control, before);
        control
            .alter_in_sync(1, 0, 0, &[1].into(), all, STRICT)
            .unwrap();
        // Node 3, fenced, is left out; the change is still made, under a
        // new epoch, so the leader learns of it and a late copy is stale.
        assert_eq!(
            control.alter_in_sync(1, 0, 1, &[1, 2, 3].into(), |node| node != 3, STRICT),
            Ok(())
        );
        assert_eq!(control.in_sync, [1, 2].into());
        assert_eq!(control.partition_epoch, 2);
        assert!(matches!(
            control.alter_in_sync(1, 0, 1, &[1, 2, 3].into(), all, STRICT),
            Err(ControlError::StalePartitionEpoch { .. })
        ));
    }

    #[test]
    fn a_preferred_leader_takes_over_only_from_the_in_sync_set() {
        let mut control = PartitionControl::new(&[1, 2, 3], |_| true);
        assert_eq!(control.preferred(), Some(1));
        assert_eq!(
            control.elect_preferred(1, |_| true),
            Err(ElectionError::NotNeeded(1))
        );
        assert_eq!(control.elect_preferred(2, |_| true), Ok(()));
        assert_eq!((control.leader, control.leader_epoch), (Some(2), 1));
        assert_eq!(control.partition_epoch, 1);
        control
            .alter_in_sync(
                2,
                1,
                control.partition_epoch,
                &[2, 3].into(),
                |_| true,
                STRICT,
            )
            .unwrap();
        let before = control.clone();
        assert_eq!(
            control.elect_preferred(1, |_| true),
            Err(ElectionError::PreferredNotAvailable(1)),
            "node 1 is not in sync"
        );
        assert_eq!(
            control.elect_preferred(3, |node| node != 3),
            Err(ElectionError::PreferredNotAvailable(3)),
            "node 3 is fenced"
        );
        assert_eq!(control, before, "a refused election changes nothing");
        // Back in sync, node 1 takes over from node 2 in a new epoch; the
        // in-sync set stays.
        control
            .alter_in_sync(
                2,
                1,
                control.partition_epoch,
                &[1, 2, 3].into(),
                |_| true,
                STRICT,
            )
            .unwrap();
        let partition_epoch = control.partition_epoch;
        assert_eq!(control.elect_preferred(1, |_| true), Ok(()));
        assert_eq!((control.leader, control.leader_epoch), (Some(1), 2));
        assert_eq!(control.partition_epoch, partition_epoch + 1);
        assert_eq!(control.in_sync, [1, 2, 3].into());
    }

    #[test]
    fn an_unclean_election_is_held_only_without_a_leader_and_prefers_the_in_sync_then_the_eligible()
    {
        let alive = |dead: &'static [Node]| move |node: Node| !dead.contains(&node);
        let mut control = PartitionControl::new(&[1, 2, 3], |_| true);
        assert_eq!(
            control.elect_unclean(alive(&[]), STRICT),
            Err(ElectionError::NotNeeded(1)),
            "a partition with a leader needs none"
        );
        // Node 3 leaves the set while it is at min.insync.replicas (not
        // eligible); node 2 below it (eligible); then node 1, the last.
        control
            .alter_in_sync(1, 0, 0, &[1, 2].into(), alive(&[]), STRICT)
            .unwrap();
        control
            .alter_in_sync(1, 0, 1, &[1].into(), alive(&[]), STRICT)
            .unwrap();
        assert!(control.fence(1, alive(&[1, 2]), STRICT));
        assert_eq!(control.leader, None);
        assert_eq!(control.eligible, [1, 2].into());
        let before = control.clone();
        assert_eq!(
            control.elect_unclean(alive(&[1, 2, 3]), STRICT),
            Err(ElectionError::NoLiveReplica)
        );
        assert_eq!(control, before, "a refused election changes nothing");

        // Only node 3, neither in sync nor eligible, is alive: it leads,
        // alone in the in-sync set, and nobody is known to be complete.
        let mut unclean = control.clone();
        assert_eq!(unclean.elect_unclean(alive(&[1, 2]), STRICT), Ok(()));
        assert_eq!(unclean.leader, Some(3));
        assert_eq!(unclean.leader_epoch, before.leader_epoch + 1);
        assert_eq!(unclean.partition_epoch, before.partition_epoch + 1);
        assert_eq!(unclean.in_sync, [3].into());
        assert!(unclean.eligible.is_empty());

        // With eligible node 2 alive too, node 2 is taken before node 3.
        let mut eligible = control.clone();
        assert_eq!(eligible.elect_unclean(alive(&[1]), STRICT), Ok(()));
        assert_eq!(eligible.leader, Some(2));
        assert_eq!(eligible.in_sync, [2].into());
        assert_eq!(eligible.eligible, [1].into(), "node 1 is still complete");
    }
}
