//! Each replicated partition's role on this node, from the metadata: the
//! leader takes over (its [`LeaderState`] and [`Pushes`]), a follower
//! starts reconciling (a [`FollowerState`]), and the high watermark a
//! leader computes caps what its log shows readers.

use std::{collections::HashMap, rc::Rc};

use sluice_replication::partition::{
    control::PartitionControl,
    follower::{FollowerState, FollowerStep},
    leader::{LeaderConfig, LeaderState, LogPosition, Node},
    push::Pushes,
    wire::EpochEndAsk,
};
use sluice_storage::{log::Log, NodeId, Offset, TopicId};

use super::{
    state::{partition_ref, Following, Leading, Replicas, Role, PROPOSE_RESEND_MS, PUSH},
    throttle::Throttle,
};
use crate::{
    cluster_metadata::{
        image::{node, node_id},
        Metadata, TopicMeta,
    },
    partition::{
        ops::{PartitionKey, Partitions},
        owner::epoch_cache,
    },
};

/// The high watermark a log shows, or, for a log whose partition had none
/// yet (just opened), its start: what is past it was never shown.
fn shown_high_watermark(log: &Log) -> u64 {
    log.high_watermark().unwrap_or(log.start_offset()).0
}

/// The leader's settings for a topic.
fn leader_config(topic: &TopicMeta, lag_max_ms: u64) -> LeaderConfig {
    LeaderConfig {
        min_in_sync: topic.control_config().min_in_sync,
        lag_max_ms,
        propose_resend_ms: PROPOSE_RESEND_MS,
    }
}

/// Sets each replicated partition's role on this shard from the metadata
/// the shard now holds, learns the other nodes' peer addresses, asks the
/// leaders of the partitions it now follows where its epochs end, and
/// tells whoever waits on [`Replicas::roles_set`] (the group coordinator,
/// which serves the groups of the offsets partitions this node leads).
pub fn on_metadata(
    replicas: &Replicas,
    metadata: &Metadata,
    partitions: &Partitions,
    me: (NodeId, usize),
) {
    learn_addresses(replicas, metadata, me.0);
    let sender = me;
    let me = node(me.0);
    let now = replicas.now_ms();
    let logs: Vec<(PartitionKey, Rc<Log>)> = partitions
        .borrow()
        .iter()
        .map(|(key, log)| (*key, log.clone()))
        .collect();
    let topics: HashMap<TopicId, &std::sync::Arc<TopicMeta>> = metadata
        .topics
        .values()
        .map(|topic| (topic.id, topic))
        .collect();
    let mut asks: Vec<(Node, u32, EpochEndAsk)> = Vec::new();
    {
        let mut roles = replicas.roles.borrow_mut();
        let mut alone = replicas.alone.borrow_mut();
        roles.retain(|key, _| logs.iter().any(|(held, _)| held == key));
        alone.retain(|key| logs.iter().any(|(held, _)| held == key));
        for (key, log) in &logs {
            let Some(topic) = topics.get(&key.topic) else {
                roles.remove(key);
                continue;
            };
            let Some(control) = topic.partition(key.partition.0) else {
                continue;
            };
            if control.replicas.len() < 2 || !control.replicas.contains(&me) {
                // Unreplicated, or moved away from this node (its log is
                // closed and deleted next).
                roles.remove(key);
                log.set_high_watermark(None);
                log.on_written(None);
                alone.insert(*key);
                if control.leader == Some(me) {
                    // Alone after a move: it stamps its own epoch.
                    log.set_leader_epoch(control.leader_epoch.max(log.last_epoch().unwrap_or(0)));
                }
                continue;
            }
            let placed = topic.shards[key.partition.0 as usize].0;
            if alone.remove(key) && log.high_watermark().is_none() {
                // It showed everything stored until now: a move gave it
                // replicas.
                log.set_high_watermark(Some(log.stored_end()));
            }
            let current = roles.remove(key);
            let led = matches!(current, Some(Role::Leader(_)));
            let in_sync = control.in_sync.contains(&me);
            let role = match (current, control.leader) {
                (Some(Role::Leader(leading)), Some(leader))
                    if leader == me
                        && leading.epoch == control.leader_epoch
                        && !same_followers(&leading.followers, &control.replicas, me) =>
                {
                    // A move added or dropped replicas: the leader counts
                    // from its log again, its waiting writes kept.
                    let config = leader_config(topic, replicas.lag_max_ms);
                    let mut taken = take_over(me, control, placed, config, log, now);
                    taken.waiting = leading.waiting;
                    taken.broker_epochs = leading.broker_epochs;
                    settle(&mut taken, log);
                    Role::Leader(Box::new(taken))
                }
                (Some(Role::Leader(mut leading)), Some(leader))
                    if leader == me && leading.epoch == control.leader_epoch =>
                {
                    let before = leading.state.in_sync().clone();
                    if leading
                        .state
                        .confirmed(control.partition_epoch, &control.in_sync)
                    {
                        replicas
                            .counters
                            .in_sync_changed(&before, leading.state.in_sync());
                    }
                    settle(&mut leading, log);
                    Role::Leader(leading)
                }
                (Some(Role::Follower(mut following)), Some(leader))
                    if following.state.leader() == leader
                        && following.state.leader_epoch() == control.leader_epoch =>
                {
                    following.in_sync = in_sync;
                    Role::Follower(following)
                }
                (_, Some(leader)) if leader == me => {
                    let config = leader_config(topic, replicas.lag_max_ms);
                    replicas.counters.took_leadership();
                    Role::Leader(Box::new(take_over(me, control, placed, config, log, now)))
                }
                (_, Some(leader)) => {
                    let cache = match epoch_cache(log) {
                        Ok(cache) => cache,
                        Err(failure) => {
                            tracing::error!(%key, %failure, "the log's leader epochs do not read; it does not follow");
                            roles.insert(*key, Role::Idle);
                            continue;
                        }
                    };
                    let (state, step) = FollowerState::new(
                        me,
                        leader,
                        control.leader_epoch,
                        &cache,
                        log.end_offset().0,
                        shown_high_watermark(log),
                    );
                    log.set_high_watermark(Some(Offset(state.high_watermark())));
                    let asked_ms = match step {
                        FollowerStep::Ask(epoch) => {
                            asks.push((
                                leader,
                                placed,
                                EpochEndAsk {
                                    partition: partition_ref(*key),
                                    current_epoch: control.leader_epoch,
                                    epoch,
                                },
                            ));
                            Some(now)
                        }
                        FollowerStep::Follow => None,
                    };
                    Role::Follower(Box::new(Following {
                        shard: placed,
                        state,
                        asked_ms,
                        busy: false,
                        in_sync,
                    }))
                }
                (_, None) => {
                    if log.high_watermark().is_none() {
                        log.set_high_watermark(Some(Offset(shown_high_watermark(log))));
                    }
                    Role::Idle
                }
            };
            let mut role = role;
            if let Role::Leader(leading) = &mut role {
                leading.throttle =
                    Throttle::of(control.moving.as_ref(), leading.throttle.take(), now);
                // Fenced followers are not proposed to join; one started
                // again is known by what it says from now on.
                for follower in leading.followers.clone() {
                    let broker = metadata.brokers.get(&node_id(follower));
                    let fenced = broker.is_none_or(|broker| broker.fenced);
                    leading.state.set_fenced(follower, fenced);
                    if let Some(broker) = broker {
                        let seen = leading.broker_epochs.insert(follower, broker.epoch);
                        if seen.is_some_and(|seen| seen != broker.epoch) {
                            tracing::info!(%key, follower, "a follower started again: counted on what it says from now on");
                            leading.state.restarted(follower);
                        }
                    }
                }
            }
            // A leader pushes as soon as its batches are written.
            let leads = matches!(role, Role::Leader(_));
            if led && !leads {
                replicas.counters.lost_leadership();
            }
            log.on_written(leads.then(|| replicas.waker(*key)));
            roles.insert(*key, role);
        }
    }
    replicas.send_asks(sender, asks);
    replicas.wake();
    let _ = replicas.roles_set.0.try_send(());
}

/// Whether a leader pushing to `followers` pushes to every replica of
/// `replicas` but itself, and to no other.
fn same_followers(followers: &[Node], replicas: &[Node], me: Node) -> bool {
    let mut others = replicas.iter().filter(|replica| **replica != me);
    followers.len() == others.clone().count() && others.all(|replica| followers.contains(replica))
}

/// Gives the shard's network every other broker's peer address.
fn learn_addresses(replicas: &Replicas, metadata: &Metadata, me: NodeId) {
    let mut addresses = replicas.addresses.borrow_mut();
    for (id, broker) in &metadata.brokers {
        if *id == me || broker.registration.peer_addr.is_empty() {
            continue;
        }
        if addresses.get(id) == Some(&broker.registration.peer_addr) {
            continue;
        }
        addresses.insert(*id, broker.registration.peer_addr.clone());
        if let Some(network) = replicas.network.borrow().as_ref() {
            network.set_address(*id, broker.registration.peer_addr.clone());
        }
    }
}

/// This node leads `control`'s partition, whose log is `log`, from now on:
/// appends are stamped with its epoch, followers count from its log end.
fn take_over(
    me: Node,
    control: &PartitionControl,
    shard: u32,
    config: LeaderConfig,
    log: &Log,
    now_ms: u64,
) -> Leading {
    log.set_leader_epoch(control.leader_epoch.max(log.last_epoch().unwrap_or(0)));
    let position = LogPosition {
        log_end: log.end_offset().0,
        durable_end: log.stored_end().0,
        high_watermark: shown_high_watermark(log),
    };
    let state = LeaderState::new(
        me,
        &control.replicas,
        &control.in_sync,
        control.partition_epoch,
        position,
        config,
        now_ms,
    );
    let followers: Vec<Node> = control
        .replicas
        .iter()
        .copied()
        .filter(|replica| *replica != me)
        .collect();
    let pushes = Pushes::new(&followers, log.end_offset().0, PUSH, now_ms);
    log.set_high_watermark(Some(Offset(state.high_watermark())));
    Leading {
        epoch: control.leader_epoch,
        shard,
        followers,
        state,
        pushes,
        waiting: Vec::new(),
        throttle: Throttle::of(control.moving.as_ref(), None, now_ms),
        broker_epochs: HashMap::new(),
    }
}

/// Shows readers the leader's high watermark and answers the `acks=all`
/// writes it passed.
pub(super) fn settle(leading: &mut Leading, log: &Log) {
    let high_watermark = leading.state.high_watermark();
    log.set_high_watermark(Some(Offset(high_watermark)));
    if leading
        .waiting
        .iter()
        .any(|(end, _)| *end <= high_watermark)
    {
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut leading.waiting)
            .into_iter()
            .partition(|(end, _)| *end <= high_watermark);
        leading.waiting = waiting;
        for (_, reply) in done {
            let _ = reply.send(());
        }
    }
}
