//! Kafka's consumer group protocol (KIP-848): ConsumerGroupHeartbeat, with
//! the assignment computed here, on the group's coordinator shard.
//!
//! The group has an epoch, bumped whenever what the assignment depends on
//! changes: a member joins or leaves, a subscription changes, a subscribed
//! topic gains partitions. At each bump the assignor computes a target
//! assignment for every member, sticky (it keeps each partition where it
//! was wherever the balance allows). Then each member reconciles, one
//! heartbeat at a time, from what it owns toward its target:
//!
//! - partitions it keeps stay, and it keeps consuming them throughout;
//! - partitions it must give up are removed from its assignment first, and
//!   it stays at its epoch until a heartbeat reports them no longer owned
//!   (within its rebalance timeout, or it is fenced);
//! - partitions it gains are given only once no other member owns them, so
//!   a partition never has two owners; its epoch then becomes the target's.
//!
//! A member that leaves (epoch -1) or falls silent past its session timeout
//! releases its partitions at once. A static member (`group.instance.id`)
//! that leaves with epoch -2 keeps its place and partitions for its session
//! timeout, and its instance coming back takes them over.
//!
//! What this does not do: subscriptions by regular expression (refused),
//! rack-aware placement, client-side assignors, and converting a classic
//! group with members (each protocol refuses a group the other one holds).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::{Duration, Instant},
};

use super::{
    assignor::{flatten, unflatten, Assignor, Partitions, TopicId, TopicPartition},
    error::GroupError,
    state::{Committer, Group, OffsetToCommit},
};

/// Members of one consumer-protocol group at most: the assignors' work
/// grows with members times partitions, and all of it runs on the
/// coordinator shard between two requests.
pub const MEMBERS_MAX: usize = 1024;

/// Topics one member may subscribe to at most (a heartbeat lists them all).
pub const SUBSCRIBED_TOPICS_MAX: usize = 10_000;

/// The epoch a member sends to join, to leave, and to leave as a static
/// member that comes back.
pub const EPOCH_JOIN: i32 = 0;
pub const EPOCH_LEAVE: i32 = -1;
pub const EPOCH_LEAVE_STATIC: i32 = -2;
/// One member of a consumer-protocol group.
#[derive(Debug, Clone)]
pub struct ConsumerMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed: BTreeSet<String>,
    pub server_assignor: Option<Assignor>,
    pub rebalance_timeout: Duration,
    pub session_timeout: Duration,
    /// The epoch of the assignment the member has converged to.
    pub epoch: i32,
    /// The epoch before it, which a heartbeat whose answer was lost still
    /// carries.
    pub previous_epoch: i32,
    /// What the member may consume now.
    pub assigned: Partitions,
    /// What it was told to give up and has not yet reported given up.
    pub revoking: Partitions,
    /// When it must have given `revoking` up.
    pub revoke_deadline: Option<Instant>,
    pub last_seen: Instant,
    /// A static member that left with epoch -2: kept for its session timeout.
    pub left_static: bool,
}

/// The consumer-protocol side of a group (empty for a classic group).
#[derive(Debug, Default)]
pub struct ConsumerGroup {
    pub members: BTreeMap<String, ConsumerMember>,
    /// Bumped at every change the assignment depends on.
    pub epoch: i32,
    /// The group epoch the target assignment was computed at.
    pub assignment_epoch: i32,
    pub target: BTreeMap<String, Partitions>,
    /// The assignor of the last target assignment.
    pub assignor: Assignor,
    /// The subscribed topics that exist: name → id and partition count.
    pub topics: BTreeMap<String, (TopicId, u32)>,
    /// Every partition in a member's `assigned` or `revoking`, with it.
    owners: HashMap<TopicPartition, String>,
    /// `group.instance.id` → member id.
    statics: HashMap<String, String>,
}

/// A consumer-protocol group's state, with Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroupState {
    Empty,
    Assigning,
    Reconciling,
    Stable,
}

impl ConsumerGroupState {
    pub fn name(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
        }
    }
}

impl ConsumerGroup {
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.assignment_epoch < self.epoch {
            ConsumerGroupState::Assigning
        } else if self.members.values().any(|member| {
            member.epoch != self.assignment_epoch
                || !member.revoking.is_empty()
                || member.assigned != self.target_of(&member.id)
        }) {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// The topics some member subscribes to.
    pub fn subscribed_topics(&self) -> BTreeSet<String> {
        self.members
            .values()
            .flat_map(|member| member.subscribed.iter().cloned())
            .collect()
    }

    pub fn target_of(&self, member: &str) -> Partitions {
        self.target.get(member).cloned().unwrap_or_default()
    }

    fn bump(&mut self) {
        self.epoch += 1;
    }

    /// `partitions` by topic name (topics no longer subscribed are left
    /// out).
    pub fn named(&self, partitions: &Partitions) -> Vec<(String, Vec<u32>)> {
        self.topics
            .iter()
            .filter_map(|(name, (id, _))| {
                partitions
                    .get(id)
                    .map(|set| (name.clone(), set.iter().copied().collect()))
            })
            .collect()
    }

    /// Refreshes the partition counts of the subscribed topics; a change
    /// bumps the epoch.
    fn refresh_topics(&mut self, lookup: &dyn Fn(&str) -> Option<(TopicId, u32)>) {
        let topics: BTreeMap<String, (TopicId, u32)> = self
            .subscribed_topics()
            .into_iter()
            .filter_map(|name| lookup(&name).map(|found| (name, found)))
            .collect();
        if topics != self.topics {
            self.topics = topics;
            self.bump();
        }
    }

    /// The assignor most members ask for (ties: uniform first), or uniform.
    fn choose_assignor(&self) -> Assignor {
        let mut votes: BTreeMap<Assignor, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some(assignor) = member.server_assignor {
                *votes.entry(assignor).or_default() += 1;
            }
        }
        votes
            .into_iter()
            .max_by_key(|(assignor, votes)| (*votes, std::cmp::Reverse(*assignor)))
            .map_or(Assignor::default(), |(assignor, _)| assignor)
    }

    /// Computes the target assignment if the epoch moved past it.
    fn update_target(&mut self) {
        if self.assignment_epoch >= self.epoch {
            return;
        }
        let subscriptions: BTreeMap<String, BTreeSet<TopicId>> = self
            .members
            .values()
            .map(|member| {
                let ids = member
                    .subscribed
                    .iter()
                    .filter_map(|name| self.topics.get(name).map(|(id, _)| *id))
                    .collect();
                (member.id.clone(), ids)
            })
            .collect();
        let counts: BTreeMap<TopicId, u32> = self.topics.values().copied().collect();
        self.assignor = self.choose_assignor();
        self.target = self.assignor.assign(&subscriptions, &counts, &self.target);
        self.assignment_epoch = self.epoch;
    }

    /// Moves `id` one step toward its target; whether its assignment or
    /// epoch changed. `owned`: what the member reported owning, if it did.
    fn reconcile(&mut self, id: &str, owned: Option<&Partitions>, now: Instant) -> bool {
        let target = self.target_of(id);
        let assignment_epoch = self.assignment_epoch;
        let member = self.members.get_mut(id).expect("reconciling a member");
        if !member.revoking.is_empty() {
            let released = owned.is_some_and(|owned| {
                flatten(&member.revoking)
                    .all(|(topic, p)| !owned.get(&topic).is_some_and(|set| set.contains(&p)))
            });
            if !released {
                return false;
            }
            for partition in flatten(&member.revoking) {
                if self.owners.get(&partition).is_some_and(|owner| owner == id) {
                    self.owners.remove(&partition);
                }
            }
            member.revoking.clear();
            member.revoke_deadline = None;
        }
        let assigned: BTreeSet<TopicPartition> = flatten(&member.assigned).collect();
        let wanted: BTreeSet<TopicPartition> = flatten(&target).collect();
        let revoke: BTreeSet<TopicPartition> = assigned.difference(&wanted).copied().collect();
        if !revoke.is_empty() {
            // Give up first, at the same epoch; gain once that is done.
            member.assigned = unflatten(assigned.intersection(&wanted).copied());
            member.revoking = unflatten(revoke);
            member.revoke_deadline = Some(now + member.rebalance_timeout);
            return true;
        }
        let mut gained = false;
        for partition in wanted.difference(&assigned) {
            match self.owners.get(partition) {
                Some(owner) if owner != id => {}
                _ => {
                    self.owners.insert(*partition, id.to_string());
                    member
                        .assigned
                        .entry(partition.0)
                        .or_default()
                        .insert(partition.1);
                    gained = true;
                }
            }
        }
        let moved = member.epoch != assignment_epoch;
        if moved {
            member.previous_epoch = member.epoch;
            member.epoch = assignment_epoch;
        }
        gained || moved
    }

    /// Releases every partition `id` owns.
    fn release(&mut self, id: &str) {
        self.owners.retain(|_, owner| owner != id);
        if let Some(member) = self.members.get_mut(id) {
            member.assigned.clear();
            member.revoking.clear();
            member.revoke_deadline = None;
        }
    }

    /// Drops member `id`: its partitions are free at once and the rest of
    /// the group is reassigned.
    fn remove(&mut self, id: &str) {
        self.release(id);
        if let Some(member) = self.members.remove(id) {
            if let Some(instance) = &member.instance_id {
                if self
                    .statics
                    .get(instance)
                    .is_some_and(|current| current == id)
                {
                    self.statics.remove(instance);
                }
            }
            self.target.remove(id);
            self.bump();
            self.update_target();
        }
    }

    /// Checks that no partition has two owners and that `owners` is what
    /// the members hold.
    pub fn check_owners(&self) {
        let mut seen: HashMap<TopicPartition, &str> = HashMap::new();
        for member in self.members.values() {
            for partition in flatten(&member.assigned).chain(flatten(&member.revoking)) {
                if let Some(other) = seen.insert(partition, &member.id) {
                    panic!("{partition:?} owned by {other} and {}", member.id);
                }
                assert_eq!(
                    self.owners.get(&partition).map(String::as_str),
                    Some(member.id.as_str()),
                    "{partition:?}: owners out of step"
                );
            }
        }
        assert_eq!(seen.len(), self.owners.len(), "owners out of step");
    }
}

/// A ConsumerGroupHeartbeat, decoded. `None`: unchanged since the last one.
#[derive(Debug, Clone, Default)]
pub struct HeartbeatRequest {
    pub member_id: String,
    pub epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout: Option<Duration>,
    pub subscribed_topics: Option<Vec<String>>,
    pub subscribed_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub owned: Option<Partitions>,
    pub client_id: String,
    pub client_host: String,
}

/// The broker's settings that a heartbeat needs.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub session_timeout: Duration,
}

/// A heartbeat's answer. `assignment`: `None` when unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatOutcome {
    pub error: Option<GroupError>,
    pub member_id: String,
    pub epoch: i32,
    pub assignment: Option<Partitions>,
}

impl HeartbeatOutcome {
    fn error(error: GroupError, request: &HeartbeatRequest) -> HeartbeatOutcome {
        HeartbeatOutcome {
            error: Some(error),
            member_id: request.member_id.clone(),
            epoch: request.epoch,
            assignment: None,
        }
    }
}

fn new_member_id() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string()
}

/// Serves one heartbeat: joins, leaves, or keeps a member alive and moves
/// its assignment along. `lookup` names a topic's id and partition count.
pub fn heartbeat(
    group: &mut Group,
    request: HeartbeatRequest,
    lookup: &dyn Fn(&str) -> Option<(TopicId, u32)>,
    now: Instant,
    settings: Settings,
) -> HeartbeatOutcome {
    let refuse = |error| HeartbeatOutcome::error(error, &request);
    if !group.members.is_empty() {
        // A classic group with members: not a consumer group.
        return refuse(GroupError::GroupIdNotFound);
    }
    if request
        .subscribed_regex
        .as_ref()
        .is_some_and(|regex| !regex.is_empty())
    {
        return refuse(GroupError::InvalidRequest);
    }
    if request
        .subscribed_topics
        .as_ref()
        .is_some_and(|topics| topics.len() > SUBSCRIBED_TOPICS_MAX)
    {
        return refuse(GroupError::InvalidRequest);
    }
    let assignor = match request.server_assignor.as_deref() {
        None | Some("") => None,
        Some(name) => match Assignor::parse(name) {
            Some(assignor) => Some(assignor),
            None => return refuse(GroupError::UnsupportedAssignor),
        },
    };
    if request.epoch == EPOCH_JOIN {
        group.protocol_type = Some("consumer".to_string());
    }
    let consumer = &mut group.consumer;
    match request.epoch {
        EPOCH_LEAVE | EPOCH_LEAVE_STATIC => return leave(consumer, &request, lookup, now),
        EPOCH_JOIN => {}
        epoch if epoch < 0 => return refuse(GroupError::InvalidRequest),
        _ => {}
    }

    let mut member_id = request.member_id.clone();
    let joining = request.epoch == EPOCH_JOIN;
    let mut took_over = false;
    if joining {
        let returning = request
            .instance_id
            .as_ref()
            .and_then(|instance| consumer.statics.get(instance))
            .cloned();
        match returning {
            Some(current) if current == member_id => {}
            Some(current) => {
                let left = consumer
                    .members
                    .get(&current)
                    .is_some_and(|m| m.left_static);
                if !left {
                    return refuse(GroupError::UnreleasedInstanceId);
                }
                // The instance is back: it takes the old member's place,
                // epoch and partitions.
                if member_id.is_empty() {
                    member_id = new_member_id();
                }
                let mut member = consumer.members.remove(&current).expect("a static member");
                member.id = member_id.clone();
                member.left_static = false;
                consumer.members.insert(member_id.clone(), member);
                if let Some(target) = consumer.target.remove(&current) {
                    consumer.target.insert(member_id.clone(), target);
                }
                for owner in consumer.owners.values_mut() {
                    if *owner == current {
                        owner.clone_from(&member_id);
                    }
                }
                if let Some(instance) = &request.instance_id {
                    consumer.statics.insert(instance.clone(), member_id.clone());
                }
                took_over = true;
            }
            None => {}
        }
        if member_id.is_empty() {
            member_id = new_member_id();
        }
        if let Some(member) = consumer.members.get_mut(&member_id) {
            if member.left_static {
                // The same static member back under its own id.
                member.left_static = false;
            } else if !took_over && member.epoch != EPOCH_JOIN {
                // Rejoining after losing its partitions (fenced): whatever it
                // owned is free again.
                member.previous_epoch = member.epoch;
                member.epoch = EPOCH_JOIN;
                consumer.release(&member_id);
            }
        } else {
            if consumer.members.len() >= MEMBERS_MAX {
                return refuse(GroupError::GroupMaxSizeReached);
            }
            consumer.members.insert(
                member_id.clone(),
                ConsumerMember {
                    id: member_id.clone(),
                    instance_id: request.instance_id.clone(),
                    rack_id: None,
                    client_id: request.client_id.clone(),
                    client_host: request.client_host.clone(),
                    subscribed: BTreeSet::new(),
                    server_assignor: None,
                    rebalance_timeout: Duration::ZERO,
                    session_timeout: settings.session_timeout,
                    epoch: EPOCH_JOIN,
                    previous_epoch: EPOCH_JOIN,
                    assigned: Partitions::new(),
                    revoking: Partitions::new(),
                    revoke_deadline: None,
                    last_seen: now,
                    left_static: false,
                },
            );
            if let Some(instance) = &request.instance_id {
                consumer.statics.insert(instance.clone(), member_id.clone());
            }
            consumer.bump();
        }
    } else {
        let Some(member) = consumer.members.get(&member_id) else {
            return refuse(GroupError::UnknownMemberId);
        };
        if member.left_static {
            return refuse(GroupError::FencedMemberEpoch);
        }
        if request.epoch != member.epoch {
            // A heartbeat whose answer was lost still carries the epoch
            // before: fine if what it owns is within what it has now.
            let lost_answer = request.epoch == member.previous_epoch
                && request.owned.as_ref().is_some_and(|owned| {
                    flatten(owned).all(|(topic, p)| {
                        member
                            .assigned
                            .get(&topic)
                            .is_some_and(|set| set.contains(&p))
                    })
                });
            if !lost_answer {
                return refuse(GroupError::FencedMemberEpoch);
            }
        }
    }

    // What the heartbeat changes.
    let member = consumer.members.get_mut(&member_id).expect("a member");
    member.last_seen = now;
    member.session_timeout = settings.session_timeout;
    if !request.client_id.is_empty() {
        member.client_id.clone_from(&request.client_id);
    }
    let mut changed = false;
    if let Some(timeout) = request.rebalance_timeout {
        member.rebalance_timeout = timeout;
    }
    if let Some(rack) = &request.rack_id {
        member.rack_id = Some(rack.clone());
    }
    if let Some(topics) = &request.subscribed_topics {
        let topics: BTreeSet<String> = topics.iter().cloned().collect();
        if topics != member.subscribed {
            member.subscribed = topics;
            changed = true;
        }
    }
    if request.server_assignor.is_some() && assignor != member.server_assignor {
        member.server_assignor = assignor;
        changed = true;
    }
    if changed {
        consumer.bump();
    }
    consumer.refresh_topics(lookup);
    consumer.update_target();
    let moved = consumer.reconcile(&member_id, request.owned.as_ref(), now);
    if cfg!(debug_assertions) {
        consumer.check_owners();
    }
    let member = &consumer.members[&member_id];
    let drifted = request
        .owned
        .as_ref()
        .is_some_and(|owned| *owned != member.assigned);
    HeartbeatOutcome {
        error: None,
        member_id,
        epoch: member.epoch,
        assignment: (joining || moved || drifted).then(|| member.assigned.clone()),
    }
}

fn leave(
    consumer: &mut ConsumerGroup,
    request: &HeartbeatRequest,
    lookup: &dyn Fn(&str) -> Option<(TopicId, u32)>,
    now: Instant,
) -> HeartbeatOutcome {
    let id = match request
        .instance_id
        .as_ref()
        .and_then(|instance| consumer.statics.get(instance))
    {
        Some(current) if !request.member_id.is_empty() && *current != request.member_id => {
            return HeartbeatOutcome::error(GroupError::FencedInstanceId, request);
        }
        Some(current) => current.clone(),
        None => request.member_id.clone(),
    };
    if !consumer.members.contains_key(&id) {
        return HeartbeatOutcome::error(GroupError::UnknownMemberId, request);
    }
    let is_static = consumer.members[&id].instance_id.is_some();
    if request.epoch == EPOCH_LEAVE_STATIC && is_static {
        // It keeps its place for its session timeout; nothing moves.
        let member = consumer.members.get_mut(&id).expect("a member");
        member.left_static = true;
        member.last_seen = now;
    } else {
        consumer.remove(&id);
        consumer.refresh_topics(lookup);
        consumer.update_target();
    }
    HeartbeatOutcome {
        error: None,
        member_id: id,
        epoch: request.epoch,
        assignment: None,
    }
}

/// Drops members silent past their session timeout and members that did
/// not give partitions up within their rebalance timeout.
pub fn tick(group: &mut Group, now: Instant) {
    let consumer = &mut group.consumer;
    let expired: Vec<String> = consumer
        .members
        .values()
        .filter(|member| {
            now.duration_since(member.last_seen) > member.session_timeout
                || member
                    .revoke_deadline
                    .is_some_and(|deadline| now > deadline)
        })
        .map(|member| member.id.clone())
        .collect();
    for id in expired {
        tracing::info!(group = %group.id, member = %id, "consumer group member expired");
        consumer.remove(&id);
    }
}

/// Whether `committer` may commit `offsets` for a consumer-protocol group:
/// a member, at its epoch, or at an older one for partitions it still has.
pub fn check_committer(
    group: &Group,
    committer: &Committer,
    offsets: &[OffsetToCommit],
) -> Result<(), GroupError> {
    let consumer = &group.consumer;
    let Some(member) = consumer.members.get(&committer.member_id) else {
        return Err(GroupError::UnknownMemberId);
    };
    if committer.generation == member.epoch {
        return Ok(());
    }
    let owned = |offset: &OffsetToCommit| {
        let topic = consumer.topics.get(&offset.topic).map(|(id, _)| *id);
        topic.is_some_and(|topic| {
            member.assigned.get(&topic).is_some_and(|set| {
                offset.partition >= 0 && set.contains(&(offset.partition as u32))
            })
        })
    };
    if committer.generation < member.epoch && committer.generation >= 0 && offsets.iter().all(owned)
    {
        return Ok(());
    }
    Err(GroupError::StaleMemberEpoch)
}

/// Whether `group` is a consumer-protocol group: it has members under
/// that protocol, or had some and no classic member came since.
pub fn is_consumer_group(group: &Group) -> bool {
    !group.consumer.is_empty()
        || (group.members.is_empty() && group.consumer.epoch > 0 && group.generation == 0)
}

#[cfg(test)]
mod tests {
    use rand::{rngs::StdRng, Rng, SeedableRng};

    use super::*;

    const T1: TopicId = TopicId(1);

    fn count(partitions: &Partitions) -> usize {
        partitions.values().map(BTreeSet::len).sum()
    }

    /// A client as the broker sees it: what it owns, acting on each answer.
    struct Client {
        id: String,
        epoch: i32,
        owned: Partitions,
    }

    fn lookup(name: &str) -> Option<(TopicId, u32)> {
        (name == "t").then_some((T1, 12))
    }

    const SETTINGS: Settings = Settings {
        session_timeout: Duration::from_secs(45),
    };

    fn beat(group: &mut Group, client: &mut Client, now: Instant) -> HeartbeatOutcome {
        let request = HeartbeatRequest {
            member_id: client.id.clone(),
            epoch: client.epoch,
            subscribed_topics: (client.epoch == 0).then(|| vec!["t".to_string()]),
            rebalance_timeout: Some(Duration::from_secs(60)),
            owned: Some(client.owned.clone()),
            ..HeartbeatRequest::default()
        };
        let outcome = heartbeat(group, request, &lookup, now, SETTINGS);
        assert_eq!(outcome.error, None);
        client.id.clone_from(&outcome.member_id);
        client.epoch = outcome.epoch;
        if let Some(assignment) = &outcome.assignment {
            client.owned = assignment.clone();
        }
        group.consumer.check_owners();
        outcome
    }

    /// No partition owned by two clients after any step.
    fn assert_disjoint(clients: &[Client]) {
        let mut seen = BTreeSet::new();
        for client in clients {
            for partition in flatten(&client.owned) {
                assert!(seen.insert(partition), "{partition:?} owned twice");
            }
        }
    }

    #[test]
    fn reconciliation_never_gives_a_partition_two_owners() {
        for seed in 0..50u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut group = Group::new("g");
            let now = Instant::now();
            let mut clients: Vec<Client> = Vec::new();
            for step in 0..400 {
                let roll = rng.random_range(0..100);
                if roll < 5 && clients.len() < 6 {
                    clients.push(Client {
                        id: String::new(),
                        epoch: 0,
                        owned: Partitions::new(),
                    });
                    let last = clients.len() - 1;
                    beat(&mut group, &mut clients[last], now);
                } else if roll < 8 && !clients.is_empty() {
                    let leaving = clients.remove(rng.random_range(0..clients.len()));
                    let request = HeartbeatRequest {
                        member_id: leaving.id,
                        epoch: EPOCH_LEAVE,
                        ..HeartbeatRequest::default()
                    };
                    let outcome = heartbeat(&mut group, request, &lookup, now, SETTINGS);
                    assert_eq!(outcome.error, None, "seed {seed} step {step}");
                    group.consumer.check_owners();
                } else if !clients.is_empty() {
                    let index = rng.random_range(0..clients.len());
                    beat(&mut group, &mut clients[index], now);
                }
                assert_disjoint(&clients);
            }
            // Left alone, everyone converges: all 12 partitions owned, the
            // group stable.
            for _ in 0..4 {
                for client in clients.iter_mut() {
                    beat(&mut group, client, now);
                }
            }
            assert_disjoint(&clients);
            if !clients.is_empty() {
                let owned: usize = clients.iter().map(|c| count(&c.owned)).sum();
                assert_eq!(owned, 12, "seed {seed}");
                assert_eq!(group.consumer.state(), ConsumerGroupState::Stable);
                assert!(clients.iter().all(|c| c.epoch == group.consumer.epoch));
            }
        }
    }

    #[test]
    fn a_joining_member_gets_partitions_only_once_released() {
        let mut group = Group::new("g");
        let now = Instant::now();
        let mut clients: Vec<Client> = (0..3)
            .map(|_| Client {
                id: String::new(),
                epoch: 0,
                owned: Partitions::new(),
            })
            .collect();
        // Join; the first gives up what the others get; they get it.
        for _ in 0..3 {
            for client in clients.iter_mut() {
                beat(&mut group, client, now);
            }
        }
        assert_eq!(
            clients.iter().map(|c| count(&c.owned)).collect::<Vec<_>>(),
            [4, 4, 4]
        );
        let mut fourth = Client {
            id: String::new(),
            epoch: 0,
            owned: Partitions::new(),
        };
        let joined = beat(&mut group, &mut fourth, now);
        // Everything is still owned by the first three.
        assert_eq!(joined.assignment, Some(Partitions::new()));
        assert_eq!(group.consumer.state(), ConsumerGroupState::Reconciling);
        // Each of them gives one up and keeps three, at its old epoch.
        let before = clients[0].epoch;
        beat(&mut group, &mut clients[0], now);
        assert_eq!(count(&clients[0].owned), 3);
        assert_eq!(clients[0].epoch, before);
        // Its next heartbeat acknowledges: its epoch moves on.
        beat(&mut group, &mut clients[0], now);
        assert_eq!(clients[0].epoch, group.consumer.epoch);
        let got = beat(&mut group, &mut fourth, now);
        assert_eq!(got.assignment.as_ref().map(count), Some(1));
        for client in clients.iter_mut().skip(1) {
            beat(&mut group, client, now);
            beat(&mut group, client, now);
        }
        beat(&mut group, &mut fourth, now);
        assert_eq!(count(&fourth.owned), 3);
        assert_eq!(group.consumer.state(), ConsumerGroupState::Stable);
    }

    #[test]
    fn epochs_are_checked() {
        let mut group = Group::new("g");
        let now = Instant::now();
        let mut client = Client {
            id: String::new(),
            epoch: 0,
            owned: Partitions::new(),
        };
        beat(&mut group, &mut client, now);
        let ahead = HeartbeatRequest {
            member_id: client.id.clone(),
            epoch: client.epoch + 1,
            ..HeartbeatRequest::default()
        };
        let outcome = heartbeat(&mut group, ahead, &lookup, now, SETTINGS);
        assert_eq!(outcome.error, Some(GroupError::FencedMemberEpoch));
        let unknown = HeartbeatRequest {
            member_id: "nobody".into(),
            epoch: 3,
            ..HeartbeatRequest::default()
        };
        let outcome = heartbeat(&mut group, unknown, &lookup, now, SETTINGS);
        assert_eq!(outcome.error, Some(GroupError::UnknownMemberId));
        let bad_assignor = HeartbeatRequest {
            epoch: 0,
            server_assignor: Some("sticky".into()),
            ..HeartbeatRequest::default()
        };
        let outcome = heartbeat(&mut group, bad_assignor, &lookup, now, SETTINGS);
        assert_eq!(outcome.error, Some(GroupError::UnsupportedAssignor));

        let committer = |generation| Committer {
            generation,
            member_id: client.id.clone(),
            instance_id: None,
        };
        let offset = |partition| OffsetToCommit {
            topic: "t".into(),
            partition,
            offset: 1,
            leader_epoch: -1,
            metadata: None,
        };
        let epoch = client.epoch;
        assert_eq!(
            check_committer(&group, &committer(epoch), &[offset(0)]),
            Ok(())
        );
        assert_eq!(
            check_committer(&group, &committer(epoch + 1), &[offset(0)]),
            Err(GroupError::StaleMemberEpoch)
        );
    }

    #[test]
    fn silent_members_expire_and_static_members_come_back() {
        let mut group = Group::new("g");
        let now = Instant::now();
        let join = |instance: &str| HeartbeatRequest {
            epoch: 0,
            instance_id: Some(instance.into()),
            subscribed_topics: Some(vec!["t".into()]),
            rebalance_timeout: Some(Duration::from_secs(60)),
            ..HeartbeatRequest::default()
        };
        let first = heartbeat(&mut group, join("i1"), &lookup, now, SETTINGS);
        assert_eq!(first.assignment.as_ref().map(count), Some(12));
        let twin = heartbeat(&mut group, join("i1"), &lookup, now, SETTINGS);
        assert_eq!(twin.error, Some(GroupError::UnreleasedInstanceId));
        let leave = HeartbeatRequest {
            member_id: first.member_id.clone(),
            epoch: EPOCH_LEAVE_STATIC,
            instance_id: Some("i1".into()),
            ..HeartbeatRequest::default()
        };
        let left = heartbeat(&mut group, leave, &lookup, now, SETTINGS);
        assert_eq!((left.error, left.epoch), (None, EPOCH_LEAVE_STATIC));
        let back = heartbeat(&mut group, join("i1"), &lookup, now, SETTINGS);
        assert_eq!(back.error, None);
        assert_ne!(back.member_id, first.member_id);
        assert_eq!(back.epoch, first.epoch);
        assert_eq!(back.assignment, first.assignment);
        group.consumer.check_owners();

        tick(&mut group, now + Duration::from_secs(46));
        assert!(group.consumer.is_empty());
        assert_eq!(group.consumer.state(), ConsumerGroupState::Empty);
    }
}
