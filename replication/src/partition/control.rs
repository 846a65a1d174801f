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
//! - A partition moves to other replicas (Kafka's reassignment, KIP-455)
//!   by first holding both sets: the new replicas follow and catch up,
//!   and once every target replica is in sync, the old ones leave, and a
//!   leader outside the target hands over to one inside it
//!   ([`PartitionControl::start_move`]). Until then a cancellation goes
//!   back to the original replicas.
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

/// Why a move of a partition's replicas (Kafka's reassignment) changes
/// nothing. Kafka's codes: INVALID_REPLICA_ASSIGNMENT,
/// NO_REASSIGNMENT_IN_PROGRESS, and INVALID_REQUEST for the last.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoveError {
    #[error("replicas {0:?}: a partition's replicas are distinct nodes, one at least")]
    InvalidTarget(Vec<Node>),
    #[error("no reassignment of this partition is in progress")]
    NoMoveInProgress,
    #[error("none of the original replicas {0:?} is in sync: the move cannot be cancelled, only completed or redirected")]
    OriginalOutOfSync(Vec<Node>),
}

/// A move of a partition from its `original` replicas to `target` in
/// progress: the partition's replicas are both sets until every target
/// replica is in sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub original: Vec<Node>,
    pub target: Vec<Node>,
    /// Bytes per second a leader sends each new replica while it catches
    /// up; 0: as fast as it can.
    pub throttle_bytes_per_s: u64,
}

impl Move {
    /// The target replicas that are not original ones: they catch up.
    pub fn adding(&self) -> Vec<Node> {
        let original = &self.original;
        (self.target.iter().copied())
            .filter(|node| !original.contains(node))
            .collect()
    }

    /// The original replicas the target leaves out: they leave at the end.
    pub fn removing(&self) -> Vec<Node> {
        let target = &self.target;
        (self.original.iter().copied())
            .filter(|node| !target.contains(node))
            .collect()
    }

    /// The replicas while the move is in progress: the target, then the
    /// original replicas it leaves out.
    pub fn replicas(&self) -> Vec<Node> {
        let mut replicas = self.target.clone();
        replicas.extend(self.removing());
        replicas
    }
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
    /// A move to other replicas in progress; `replicas` holds both sets.
    pub moving: Option<Move>,
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
            moving: None,
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
        self.finish_move(alive, config);
        self.partition_epoch += 1;
        Ok(())
    }

    /// Starts moving the partition to the replicas `target` (Kafka's
    /// AlterPartitionReassignments): they are added as replicas, follow
    /// and catch up, and the move ends (the replicas are `target` alone)
    /// once all of them are in sync. A move in progress is redirected:
    /// from its original replicas to the new target, the replicas it added
    /// that the new target leaves out dropped at once unless they are in
    /// sync (or eligible to lead), which leave only when the move ends. A target that is
    /// already in sync (the same nodes, another order, fewer) finishes at
    /// once. Returns whether anything changed: a move to the replicas the
    /// partition has, with none in progress, changes nothing.
    ///
    /// Errors: `InvalidTarget` for an empty target or one naming a node
    /// twice.
    pub fn start_move(
        &mut self,
        target: &[Node],
        throttle_bytes_per_s: u64,
        alive: impl Fn(Node) -> bool,
        config: ControlConfig,
    ) -> Result<bool, MoveError> {
        let distinct: BTreeSet<Node> = target.iter().copied().collect();
        if target.is_empty() || distinct.len() != target.len() {
            return Err(MoveError::InvalidTarget(target.to_vec()));
        }
        let original = match &self.moving {
            // Redirected: the replicas the earlier move added and the new
            // target leaves out go, unless they are in sync or eligible to
            // lead. Those stay until this move ends, like the original
            // ones: they may be the only replicas holding every record.
            Some(moving) => {
                let mut original = moving.original.clone();
                original.extend(moving.adding().into_iter().filter(|node| {
                    !target.contains(node)
                        && (self.in_sync.contains(node) || self.eligible.contains(node))
                }));
                original
            }
            None if self.replicas == target => return Ok(false),
            None => self.replicas.clone(),
        };
        let moving = Move {
            original,
            target: target.to_vec(),
            throttle_bytes_per_s,
        };
        self.set_replicas(moving.replicas(), &alive, config);
        self.moving = Some(moving);
        self.finish_move(&alive, config);
        self.partition_epoch += 1;
        Ok(true)
    }

    /// Cancels the move in progress: the partition goes back to its
    /// original replicas, the ones the move added dropped (a leader among
    /// them hands over to an original replica in sync).
    ///
    /// Errors: `NoMoveInProgress`; `OriginalOutOfSync` when no original
    /// replica is in sync, so none could lead with every record.
    pub fn cancel_move(
        &mut self,
        alive: impl Fn(Node) -> bool,
        config: ControlConfig,
    ) -> Result<(), MoveError> {
        let Some(moving) = self.moving.clone() else {
            return Err(MoveError::NoMoveInProgress);
        };
        if !moving
            .original
            .iter()
            .any(|node| self.in_sync.contains(node))
        {
            return Err(MoveError::OriginalOutOfSync(moving.original));
        }
        self.moving = None;
        self.set_replicas(moving.original, alive, config);
        self.partition_epoch += 1;
        Ok(())
    }

    /// Ends the move in progress once every target replica is in sync.
    fn finish_move(&mut self, alive: impl Fn(Node) -> bool, config: ControlConfig) {
        let Some(moving) = &self.moving else {
            return;
        };
        if !moving.target.iter().all(|node| self.in_sync.contains(node)) {
            return;
        }
        let target = moving.target.clone();
        self.moving = None;
        self.set_replicas(target, alive, config);
    }

    /// Makes `replicas` the partition's replicas: the others leave the
    /// in-sync and eligible sets, and a leader among them hands over to
    /// the first in-sync replica left (in a new leader epoch).
    fn set_replicas(
        &mut self,
        replicas: Vec<Node>,
        alive: impl Fn(Node) -> bool,
        config: ControlConfig,
    ) {
        let in_sync: BTreeSet<Node> = (self.in_sync.iter().copied())
            .filter(|node| replicas.contains(node))
            .collect();
        if in_sync != self.in_sync {
            self.set_in_sync(in_sync, config);
        }
        self.eligible.retain(|node| replicas.contains(node));
        self.replicas = replicas;
        if self
            .leader
            .is_some_and(|leader| !self.replicas.contains(&leader))
        {
            self.leader = None;
            self.elect(alive, config);
            if self.leader.is_none() {
                self.leader_epoch += 1;
            }
        }
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

    #[test]
    fn a_move_holds_both_sets_until_the_target_is_in_sync_then_the_old_leader_hands_over() {
        let mut control = PartitionControl::new(&[1, 2, 3], |_| true);
        let epoch = control.partition_epoch;
        assert_eq!(
            control.start_move(&[2, 3, 4], 0, |_| true, STRICT),
            Ok(true)
        );
        assert_eq!(control.replicas, vec![2, 3, 4, 1]);
        assert_eq!(
            control.leader,
            Some(1),
            "the leader stays while node 4 catches up"
        );
        assert_eq!(control.leader_epoch, 0);
        assert_eq!(control.in_sync, [1, 2, 3].into());
        let moving = control.moving.clone().unwrap();
        assert_eq!((moving.adding(), moving.removing()), (vec![4], vec![1]));
        assert!(control.partition_epoch > epoch);
        // A request made before the move is stale.
        assert!(matches!(
            control.alter_in_sync(1, 0, epoch, &[1, 2, 3, 4].into(), |_| true, STRICT),
            Err(ControlError::StalePartitionEpoch { .. })
        ));
        let epoch = control.partition_epoch;
        control
            .alter_in_sync(1, 0, epoch, &[1, 2, 3, 4].into(), |_| true, STRICT)
            .unwrap();
        assert_eq!(control.moving, None);
        assert_eq!(control.replicas, vec![2, 3, 4]);
        assert_eq!(control.in_sync, [2, 3, 4].into());
        assert_eq!(
            control.leader,
            Some(2),
            "the first target replica in sync leads"
        );
        assert_eq!(control.leader_epoch, 1);
        assert!(control.eligible.is_empty());
    }

    #[test]
    fn a_move_to_the_same_replicas_changes_nothing_and_a_shrink_finishes_at_once() {
        let mut control = PartitionControl::new(&[1, 2, 3], |_| true);
        let before = control.clone();
        assert_eq!(
            control.start_move(&[1, 2, 3], 0, |_| true, STRICT),
            Ok(false)
        );
        assert_eq!(control, before);
        assert_eq!(control.start_move(&[3, 1], 0, |_| true, STRICT), Ok(true));
        assert_eq!(control.replicas, vec![3, 1]);
        assert_eq!(control.in_sync, [1, 3].into());
        assert_eq!(
            control.leader,
            Some(1),
            "the leader is kept: it is a target replica"
        );
        assert_eq!(control.moving, None);
        for bad in [&[][..], &[1, 1][..]] {
            assert_eq!(
                control.start_move(bad, 0, |_| true, STRICT),
                Err(MoveError::InvalidTarget(bad.to_vec()))
            );
        }
    }

    #[test]
    fn a_move_is_cancelled_back_to_its_original_replicas_or_redirected() {
        let mut control = PartitionControl::new(&[1, 2, 3], |_| true);
        assert_eq!(
            control.cancel_move(|_| true, STRICT),
            Err(MoveError::NoMoveInProgress)
        );
        control.start_move(&[2, 3, 4], 0, |_| true, STRICT).unwrap();
        // Redirected: node 4 is dropped, node 5 added, from the same
        // original replicas.
        control.start_move(&[2, 3, 5], 7, |_| true, STRICT).unwrap();
        let moving = control.moving.clone().unwrap();
        assert_eq!(moving.original, vec![1, 2, 3]);
        assert_eq!(moving.throttle_bytes_per_s, 7);
        assert_eq!(control.replicas, vec![2, 3, 5, 1]);
        let epoch = control.partition_epoch;
        control.cancel_move(|_| true, STRICT).unwrap();
        assert_eq!(control.replicas, vec![1, 2, 3]);
        assert_eq!(control.in_sync, [1, 2, 3].into());
        assert_eq!((control.leader, control.leader_epoch), (Some(1), 0));
        assert_eq!(control.moving, None);
        assert!(control.partition_epoch > epoch);
    }

    #[test]
    fn a_cancel_hands_leadership_back_and_needs_an_original_replica_in_sync() {
        let mut control = PartitionControl::new(&[1], |_| true);
        control.start_move(&[2, 3], 0, |_| true, STRICT).unwrap();
        // Node 2 caught up and node 1 died: node 2 leads, node 3 still
        // catches up.
        let epoch = control.partition_epoch;
        control
            .alter_in_sync(1, 0, epoch, &[1, 2].into(), |_| true, STRICT)
            .unwrap();
        assert!(control.fence(1, |node| node != 1, STRICT));
        assert_eq!(control.leader, Some(2));
        assert_eq!(
            control.cancel_move(|node| node != 1, STRICT),
            Err(MoveError::OriginalOutOfSync(vec![1]))
        );
        // Redirected to nodes 2 and 4 instead: node 3 dropped.
        control
            .start_move(&[2, 4], 0, |node| node != 1, STRICT)
            .unwrap();
        assert_eq!(control.replicas, vec![2, 4, 1]);
        assert_eq!(control.leader, Some(2));
        let epoch = control.partition_epoch;
        control
            .alter_in_sync(2, 1, epoch, &[2, 4].into(), |node| node != 1, STRICT)
            .unwrap();
        assert_eq!(control.replicas, vec![2, 4]);
        assert_eq!(control.moving, None);
        assert!(control
            .eligible
            .iter()
            .all(|node| control.replicas.contains(node)));
    }
}
