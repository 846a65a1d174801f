//! Kafka's classic group protocol: JoinGroup, SyncGroup, Heartbeat and
//! LeaveGroup, on the group's coordinator shard.
//!
//! A rebalance: the group goes to PreparingRebalance and every member must
//! join again (it learns of it from its heartbeat) within the rebalance
//! timeout; members that do not are dropped. Then the generation goes up,
//! one protocol is chosen that every member supports, and the answers go
//! out, the leader's with every member's metadata: CompletingRebalance. The
//! leader's SyncGroup carries the assignment, which every member's SyncGroup
//! then gets: Stable. A member silent past its session timeout is dropped,
//! which starts a rebalance. A static member (`group.instance.id`) that
//! comes back with a new member id takes its old place without one.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures_channel::oneshot;
use kafka_protocol::{messages::ConsumerProtocolSubscription, protocol::Decodable};

use super::{
    error::GroupError,
    state::{Committer, Group, GroupState},
};

/// A JoinGroup, decoded.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// v4 and later: a new member first gets its id (MEMBER_ID_REQUIRED).
    pub require_known_member: bool,
    /// How long a rebalance of an empty group waits for more members.
    pub initial_delay: Duration,
    /// The session timeouts a member may ask for: the broker's
    /// `group.min.session.timeout.ms` and `group.max.session.timeout.ms`.
    pub session_timeout_bounds: (Duration, Duration),
}

/// A JoinGroup's answer.
#[derive(Debug, Clone, Default)]
pub struct JoinOutcome {
    pub error: Option<GroupError>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// For the leader: every member, its instance id and metadata.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinOutcome {
    fn error(error: GroupError, member_id: &str) -> JoinOutcome {
        JoinOutcome {
            error: Some(error),
            generation: -1,
            member_id: member_id.to_string(),
            ..JoinOutcome::default()
        }
    }
}

pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub last_seen: Instant,
    join: Option<oneshot::Sender<JoinOutcome>>,
    sync: Option<oneshot::Sender<Result<Bytes, GroupError>>>,
}

impl Member {
    /// The member's metadata for `protocol`.
    pub fn metadata(&self, protocol: Option<&str>) -> Option<&Bytes> {
        let protocol = protocol?;
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata)
    }
}

/// The topics in a consumer's subscription metadata (empty if it does not
/// read as one).
pub fn subscription_topics(metadata: &Bytes) -> Vec<String> {
    let mut bytes = metadata.clone();
    if bytes.len() < 2 {
        return Vec::new();
    }
    let version = i16::from_be_bytes([bytes[0], bytes[1]]);
    let _ = bytes::Buf::get_i16(&mut bytes);
    ConsumerProtocolSubscription::decode(&mut bytes, version.clamp(0, 3))
        .map(|subscription| {
            subscription
                .topics
                .iter()
                .map(|topic| topic.to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn new_member_id(client_id: &str) -> String {
    format!("{client_id}-{:032x}", rand::random::<u128>())
}

/// What a join does now: answer at once, or wait for the rebalance.
pub enum Joined {
    Now(JoinOutcome),
    Wait(oneshot::Receiver<JoinOutcome>),
}

pub fn join(group: &mut Group, request: JoinRequest, now: Instant) -> Joined {
    let refuse = |error| Joined::Now(JoinOutcome::error(error, &request.member_id));
    if request.protocol_type.is_empty() || request.protocols.is_empty() {
        return refuse(GroupError::InconsistentGroupProtocol);
    }
    if !group.consumer.is_empty() {
        // The group's members speak the consumer protocol (KIP-848).
        return refuse(GroupError::InconsistentGroupProtocol);
    }
    let (shortest, longest) = request.session_timeout_bounds;
    if request.session_timeout < shortest || request.session_timeout > longest {
        return refuse(GroupError::InvalidSessionTimeout);
    }
    if !group.members.is_empty() {
        let same_type = group.protocol_type.as_deref() == Some(request.protocol_type.as_str());
        let shared = request.protocols.iter().any(|(name, _)| {
            group
                .members
                .values()
                .filter(|member| member.id != request.member_id)
                .all(|member| member.protocols.iter().any(|(theirs, _)| theirs == name))
        });
        if !same_type || !shared {
            return refuse(GroupError::InconsistentGroupProtocol);
        }
    }

    // Who is joining.
    let mut member_id = request.member_id.clone();
    let mut static_return = false;
    if member_id.is_empty() {
        match request
            .instance_id
            .as_ref()
            .and_then(|instance| group.statics.get(instance))
            .cloned()
        {
            Some(old) => {
                // A static member back with a new id: it takes the old one's
                // place; the old id is fenced.
                member_id = new_member_id(&request.client_id);
                if let Some(mut member) = group.members.remove(&old) {
                    member.id = member_id.clone();
                    member.join = None;
                    member.sync = None;
                    group.members.insert(member_id.clone(), member);
                    static_return = true;
                }
                if group.leader.as_deref() == Some(old.as_str()) {
                    group.leader = Some(member_id.clone());
                }
                if let Some(instance) = &request.instance_id {
                    group.statics.insert(instance.clone(), member_id.clone());
                }
            }
            None if request.require_known_member && request.instance_id.is_none() => {
                let id = new_member_id(&request.client_id);
                group
                    .pending
                    .insert(id.clone(), now + request.session_timeout);
                return Joined::Now(JoinOutcome::error(GroupError::MemberIdRequired, &id));
            }
            None => member_id = new_member_id(&request.client_id),
        }
    } else if !group.members.contains_key(&member_id) && group.pending.remove(&member_id).is_none()
    {
        let fenced = request
            .instance_id
            .as_ref()
            .and_then(|instance| group.statics.get(instance))
            .is_some_and(|current| *current != member_id);
        return refuse(if fenced {
            GroupError::FencedInstanceId
        } else {
            GroupError::UnknownMemberId
        });
    }

    let was_empty = group.members.is_empty();
    let (reply, answer) = oneshot::channel();
    let existing = group.members.get(&member_id);
    let unchanged = existing.is_some_and(|member| member.protocols == request.protocols);
    if let Some(instance) = &request.instance_id {
        group.statics.insert(instance.clone(), member_id.clone());
    }
    let assignment = existing
        .map(|member| member.assignment.clone())
        .unwrap_or_default();
    group.members.insert(
        member_id.clone(),
        Member {
            id: member_id.clone(),
            instance_id: request.instance_id.clone(),
            client_id: request.client_id.clone(),
            client_host: request.client_host.clone(),
            session_timeout: request.session_timeout,
            rebalance_timeout: request.rebalance_timeout,
            protocols: request.protocols.clone(),
            assignment,
            last_seen: now,
            join: Some(reply),
            sync: None,
        },
    );
    group.protocol_type = Some(request.protocol_type.clone());

    let stable_rejoin = group.state == GroupState::Stable
        && unchanged
        && (static_return || group.leader.as_deref() != Some(member_id.as_str()));
    if stable_rejoin {
        // Nothing changed: the current generation, no rebalance.
        let member = group.members.get_mut(&member_id).expect("just inserted");
        member.join = None;
        return Joined::Now(outcome_for(group, &member_id));
    }
    match group.state {
        GroupState::PreparingRebalance => {
            if group.initial_delay {
                // More members are coming in: wait a little longer, within
                // the rebalance timeout.
                let extended = now + request.initial_delay;
                let cap = now + request.rebalance_timeout;
                group.rebalance_deadline =
                    group.rebalance_deadline.map(|d| d.max(extended.min(cap)));
            }
        }
        _ => prepare_rebalance(group, now, was_empty.then_some(request.initial_delay)),
    }
    complete_join_if_ready(group, now);
    Joined::Wait(answer)
}

/// Starts a rebalance: every member must join again. `initial_delay`: the
/// group was empty, so wait that long for others before completing.
pub fn prepare_rebalance(group: &mut Group, now: Instant, initial_delay: Option<Duration>) {
    group.state = GroupState::PreparingRebalance;
    group.sync_deadline = None;
    let timeout = group
        .members
        .values()
        .map(|member| member.rebalance_timeout)
        .max()
        .unwrap_or_default();
    group.initial_delay = initial_delay.is_some_and(|delay| !delay.is_zero());
    group.rebalance_deadline =
        Some(now + initial_delay.map_or(timeout, |delay| delay.min(timeout)));
    for member in group.members.values_mut() {
        if let Some(sync) = member.sync.take() {
            let _ = sync.send(Err(GroupError::RebalanceInProgress));
        }
    }
}

/// Completes the join phase if every member has joined (and no initial
/// delay is running), or if its time is up.
pub fn complete_join_if_ready(group: &mut Group, now: Instant) {
    if group.state != GroupState::PreparingRebalance {
        return;
    }
    let due = group
        .rebalance_deadline
        .is_none_or(|deadline| now >= deadline);
    let all_joined = group.members.values().all(|member| member.join.is_some());
    if !(due || (all_joined && !group.initial_delay)) {
        return;
    }
    // Members that did not join again are out.
    let gone: Vec<String> = group
        .members
        .values()
        .filter(|member| member.join.is_none())
        .map(|member| member.id.clone())
        .collect();
    for id in gone {
        remove_member(group, &id);
    }
    group.generation += 1;
    group.rebalance_deadline = None;
    group.initial_delay = false;
    if group.members.is_empty() {
        group.state = GroupState::Empty;
        group.protocol = None;
        group.leader = None;
        return;
    }
    group.protocol = choose_protocol(&group.members);
    if group
        .leader
        .as_ref()
        .is_none_or(|leader| !group.members.contains_key(leader))
    {
        group.leader = group.members.keys().next().cloned();
    }
    for member in group.members.values_mut() {
        member.assignment = Bytes::new();
    }
    group.state = GroupState::CompletingRebalance;
    let timeout = group
        .members
        .values()
        .map(|m| m.rebalance_timeout)
        .max()
        .unwrap_or_default();
    group.sync_deadline = Some(now + timeout);
    let ids: Vec<String> = group.members.keys().cloned().collect();
    for id in ids {
        let outcome = outcome_for(group, &id);
        if let Some(member) = group.members.get_mut(&id) {
            member.last_seen = now;
            if let Some(join) = member.join.take() {
                let _ = join.send(outcome);
            }
        }
    }
}

/// The protocol every member supports that most members list first among
/// those (ties: the one listed first by the most members, then by name).
fn choose_protocol(members: &BTreeMap<String, Member>) -> Option<String> {
    let first = members.values().next()?;
    let candidates: Vec<&str> = first
        .protocols
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| {
            members
                .values()
                .all(|member| member.protocols.iter().any(|(theirs, _)| theirs == name))
        })
        .collect();
    let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
    for member in members.values() {
        if let Some((name, _)) = member
            .protocols
            .iter()
            .find(|(name, _)| candidates.contains(&name.as_str()))
        {
            *votes.entry(name.as_str()).or_default() += 1;
        }
    }
    candidates
        .iter()
        .max_by_key(|name| {
            (
                votes.get(*name).copied().unwrap_or(0),
                std::cmp::Reverse(**name),
            )
        })
        .map(|name| name.to_string())
}

fn outcome_for(group: &Group, member_id: &str) -> JoinOutcome {
    let leader = group.leader.clone().unwrap_or_default();
    let members = if leader == member_id {
        group
            .members
            .values()
            .map(|member| {
                (
                    member.id.clone(),
                    member.instance_id.clone(),
                    member
                        .metadata(group.protocol.as_deref())
                        .cloned()
                        .unwrap_or_default(),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    JoinOutcome {
        error: None,
        generation: group.generation,
        protocol_type: group.protocol_type.clone(),
        protocol: group.protocol.clone(),
        leader,
        member_id: member_id.to_string(),
        members,
    }
}

fn remove_member(group: &mut Group, id: &str) {
    if let Some(member) = group.members.remove(id) {
        if let Some(instance) = &member.instance_id {
            if group
                .statics
                .get(instance)
                .is_some_and(|current| current == id)
            {
                group.statics.remove(instance);
            }
        }
        // Dropping the waiters answers them (as gone).
    }
    if group.leader.as_deref() == Some(id) {
        group.leader = None;
    }
}

/// A SyncGroup, decoded.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub generation: i32,
    pub member_id: String,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub assignments: Vec<(String, Bytes)>,
}

pub enum Synced {
    Now(Result<Bytes, GroupError>),
    Wait(oneshot::Receiver<Result<Bytes, GroupError>>),
}

pub fn sync(group: &mut Group, request: SyncRequest, now: Instant) -> Synced {
    let Some(member) = group.members.get_mut(&request.member_id) else {
        return Synced::Now(Err(GroupError::UnknownMemberId));
    };
    member.last_seen = now;
    if request.generation != group.generation {
        return Synced::Now(Err(GroupError::IllegalGeneration));
    }
    let mismatch = |given: &Option<String>, ours: &Option<String>| given.is_some() && given != ours;
    if mismatch(&request.protocol_type, &group.protocol_type)
        || mismatch(&request.protocol, &group.protocol)
    {
        return Synced::Now(Err(GroupError::InconsistentGroupProtocol));
    }
    match group.state {
        GroupState::PreparingRebalance => Synced::Now(Err(GroupError::RebalanceInProgress)),
        GroupState::Stable => Synced::Now(Ok(member.assignment.clone())),
        GroupState::Empty | GroupState::Dead => Synced::Now(Err(GroupError::UnknownMemberId)),
        GroupState::CompletingRebalance => {
            if group.leader.as_deref() != Some(request.member_id.as_str()) {
                let (reply, answer) = oneshot::channel();
                member.sync = Some(reply);
                return Synced::Wait(answer);
            }
            let mut assignments: BTreeMap<String, Bytes> =
                request.assignments.into_iter().collect();
            for member in group.members.values_mut() {
                member.assignment = assignments.remove(&member.id).unwrap_or_default();
                if let Some(sync) = member.sync.take() {
                    let _ = sync.send(Ok(member.assignment.clone()));
                }
            }
            group.state = GroupState::Stable;
            group.sync_deadline = None;
            let leader = group
                .members
                .get(&request.member_id)
                .expect("the leader is a member");
            Synced::Now(Ok(leader.assignment.clone()))
        }
    }
}

pub fn heartbeat(
    group: &mut Group,
    member_id: &str,
    generation: i32,
    now: Instant,
) -> Result<(), GroupError> {
    let Some(member) = group.members.get_mut(member_id) else {
        return Err(GroupError::UnknownMemberId);
    };
    member.last_seen = now;
    if generation != group.generation {
        return Err(GroupError::IllegalGeneration);
    }
    match group.state {
        GroupState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
        GroupState::Empty | GroupState::Dead => Err(GroupError::UnknownMemberId),
        GroupState::CompletingRebalance | GroupState::Stable => Ok(()),
    }
}

/// Members leaving, by member id or (static members) instance id: one
/// result each. The rest rebalance.
pub fn leave(
    group: &mut Group,
    leaving: &[(String, Option<String>)],
    now: Instant,
) -> Vec<Result<(), GroupError>> {
    let mut results = Vec::new();
    let mut removed = false;
    for (member_id, instance_id) in leaving {
        let id = match instance_id
            .as_ref()
            .and_then(|instance| group.statics.get(instance))
            .cloned()
        {
            Some(current) if !member_id.is_empty() && current != *member_id => {
                results.push(Err(GroupError::FencedInstanceId));
                continue;
            }
            Some(current) => current,
            None => member_id.clone(),
        };
        if group.members.contains_key(&id) {
            remove_member(group, &id);
            removed = true;
            results.push(Ok(()));
        } else {
            results.push(Err(GroupError::UnknownMemberId));
        }
    }
    if removed {
        after_removal(group, now);
    }
    results
}

fn after_removal(group: &mut Group, now: Instant) {
    if group.members.is_empty() {
        group.state = GroupState::Empty;
        group.generation += 1;
        group.protocol = None;
        group.leader = None;
        group.rebalance_deadline = None;
        group.sync_deadline = None;
    } else if group.state != GroupState::PreparingRebalance {
        prepare_rebalance(group, now, None);
    }
    complete_join_if_ready(group, now);
}

/// Drops members silent past their session timeout and member ids handed
/// out but not used, and moves rebalances along.
pub fn tick(group: &mut Group, now: Instant) {
    let expired: Vec<String> = group
        .members
        .values()
        .filter(|member| {
            member.join.is_none() && now.duration_since(member.last_seen) > member.session_timeout
        })
        .map(|member| member.id.clone())
        .collect();
    group.pending.retain(|_, expires| now < *expires);
    if !expired.is_empty() {
        for id in &expired {
            tracing::info!(group = %group.id, member = %id, "member expired");
            remove_member(group, id);
        }
        after_removal(group, now);
    }
    if group.state == GroupState::CompletingRebalance
        && group.sync_deadline.is_some_and(|deadline| now >= deadline)
    {
        // The leader never sent the assignment: again.
        prepare_rebalance(group, now, None);
    }
    complete_join_if_ready(group, now);
}

/// Whether `committer` may commit offsets for `group` now.
pub fn check_committer(group: &Group, committer: &Committer) -> Result<(), GroupError> {
    if group.members.is_empty() {
        return if committer.member_id.is_empty() || committer.generation < 0 {
            Ok(())
        } else {
            Err(GroupError::UnknownMemberId)
        };
    }
    let member_id = match committer
        .instance_id
        .as_ref()
        .and_then(|instance| group.statics.get(instance))
    {
        Some(current) if *current != committer.member_id => {
            return Err(GroupError::FencedInstanceId)
        }
        _ => &committer.member_id,
    };
    if !group.members.contains_key(member_id) {
        return Err(GroupError::UnknownMemberId);
    }
    if committer.generation != group.generation {
        return Err(GroupError::IllegalGeneration);
    }
    if group.state == GroupState::CompletingRebalance {
        return Err(GroupError::RebalanceInProgress);
    }
    Ok(())
}
