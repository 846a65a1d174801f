//! The controller quorum at work on shard 0: one task drives the raft
//! node (ticks, messages, proposals, and the outputs it asks for: persist,
//! send, apply), another carries out each applied entry's effects on this
//! node in log order (partitions opened and removed, the new image
//! installed on every shard) and answers the proposal that made it.

use std::{
    rc::Rc,
    sync::{atomic::Ordering, Arc},
    time::{Duration, Instant},
};

use futures_channel::oneshot;
use sluice_replication::{
    partition::control::MoveError,
    quorum::{QuorumError, Role},
};
use sluice_storage::{log::LogConfig, NodeId};

use super::{
    broadcast, on_partitions,
    open::{node_of, TICK_MS},
    state::{Controller, DriverEvent, Effect, Rejected},
};
use crate::{
    cluster_metadata::{
        entries::{decode_proposal, decode_snapshot, encode_proposal, encode_snapshot, Proposal},
        Metadata, MetadataRecord, Refused, TopicMeta,
    },
    error::{ErrorKind, Failure},
    partition::PartitionOp,
    peer::MessageKind,
    shard::Shard,
    topic_config::log_config,
};

/// A change not committed within this long is answered `NotController`:
/// long enough for an election or two, short enough for a client to retry
/// before its own timeout.
pub const PROPOSAL_TIMEOUT: Duration = Duration::from_secs(10);

/// A proposal not applied this long after it was handed to the leader is
/// handed to the leader again (a new one, if the old one died).
const PROPOSAL_RETRY: Duration = Duration::from_millis(500);

/// How often a proposal made while no leader is known looks again.
const LEADER_POLL: Duration = Duration::from_millis(20);

pub(super) fn controller(shard: &Shard) -> &Controller {
    shard
        .controller
        .as_ref()
        .expect("the controller is on shard 0")
}

/// Drives the quorum until the shard stops (the task is dropped) or its
/// log fails (then every change is refused with the reason).
pub async fn drive(shard: Rc<Shard>) {
    let controller = controller(&shard);
    let Some(quorum) = controller.quorum() else {
        return super::observer::follow(shard.clone()).await;
    };
    if quorum.borrow().voters().len() == 1 {
        if let Err(error) = quorum.borrow_mut().campaign() {
            tracing::error!(%error, "a quorum of one could not elect itself");
        }
    }
    let tick = Duration::from_millis(TICK_MS);
    let mut next_tick = Instant::now() + tick;
    let events = controller.events.1.clone();
    loop {
        if Instant::now() >= next_tick {
            quorum.borrow_mut().tick();
            super::cluster::check_leases(&shard, controller);
            super::balance::check(&shard, controller);
            next_tick += tick;
            if next_tick < Instant::now() {
                next_tick = Instant::now() + tick;
            }
        }
        if let Err(reason) = take_outputs(&shard, controller) {
            tracing::error!(%reason, "the controller stopped: its log failed");
            *controller.stopped.borrow_mut() = Some(reason);
            for (_, waiter) in controller.waiters.borrow_mut().drain() {
                let _ = waiter.send(Err(Rejected::Failed(stopped(controller))));
            }
            return;
        }
        super::observer::serve_waiting(&shard, controller);
        let wait = next_tick.saturating_duration_since(Instant::now());
        let event = futures_lite::future::or(async { events.recv().await.ok() }, async {
            glommio::timer::sleep(wait).await;
            None
        })
        .await;
        let mut event = event;
        while let Some(next) = event {
            if let DriverEvent::Peer { from, bytes } = next {
                receive(controller, from, &bytes);
            }
            event = events.try_recv().ok();
        }
    }
}

fn receive(controller: &Controller, from: NodeId, bytes: &[u8]) {
    let peer = super::open::quorum_id(from);
    let Some(quorum) = controller.quorum() else {
        tracing::warn!(%from, "a quorum message to a broker that is not a voter; dropped");
        return;
    };
    let received = quorum.borrow_mut().receive(peer, bytes);
    match received {
        Ok(()) | Err(QuorumError::StaleTerm { .. }) => {}
        Err(QuorumError::VoteRefusedNotCaughtUp) => {
            tracing::debug!(%from, "vote refused: this node is catching up")
        }
        Err(error) => tracing::warn!(%from, %error, "quorum message refused"),
    }
}

fn stopped(controller: &Controller) -> Failure {
    let reason = controller.stopped.borrow().clone().unwrap_or_default();
    Failure::new(
        ErrorKind::StorageFailed,
        format!("the controller stopped: {reason}"),
    )
}

/// Takes and carries out every output the quorum has: made durable, sent,
/// applied to the image; then a snapshot if one is due. An error is a
/// failed log: the controller cannot go on.
fn take_outputs(shard: &Rc<Shard>, controller: &Controller) -> Result<(), String> {
    let quorum = controller.quorum().expect("a voter drives a quorum");
    loop {
        let mut quorum = quorum.borrow_mut();
        if !quorum.has_ready() {
            break;
        }
        let outputs = quorum.ready().map_err(|error| error.to_string())?;
        if !outputs.persist.is_empty() {
            quorum
                .storage()
                .make_durable()
                .map_err(|error| error.to_string())?;
        }
        for outbound in outputs.messages {
            send_quorum_message(shard, node_of(outbound.to), outbound.bytes);
        }
        for committed in outputs.committed {
            apply(controller, committed.index, &committed.payload);
        }
        if let Some(snapshot) = outputs.snapshot {
            install(controller, snapshot.index, &snapshot.state);
        }
        quorum.advance();
    }
    let mut quorum = quorum.borrow_mut();
    let view = &shard.quorum_view;
    let leader = quorum.leader().map_or(-1, |leader| node_of(leader).0);
    view.leader.store(leader, Ordering::Relaxed);
    view.term.store(quorum.term(), Ordering::Relaxed);
    view.committed
        .store(quorum.committed_index(), Ordering::Relaxed);
    view.applied
        .store(controller.applied.get(), Ordering::Relaxed);
    if quorum.snapshot_due() {
        let state = encode_snapshot(&controller.image.borrow());
        quorum.compact(state).map_err(|error| error.to_string())?;
        tracing::debug!(index = quorum.applied_index(), "metadata snapshot taken");
    }
    Ok(())
}

/// Applies the committed entry at `index` to the image and queues its
/// effects. An entry that does not decode changes nothing, on every node.
pub(super) fn apply(controller: &Controller, index: u64, payload: &[u8]) {
    if index <= controller.applied.get() {
        // Replayed at start already.
        return;
    }
    controller.applied.set(index);
    if controller.quorum().is_some() {
        controller.served.record(index, payload);
    }
    let proposal = match decode_proposal(payload) {
        Ok(proposal) => proposal,
        Err(error) => {
            tracing::error!(index, %error, "a committed metadata entry does not decode; it changes nothing");
            // Carried out all the same: a lease waits for its index.
            let _ = controller.effects.0.try_send(Effect {
                index,
                image: Arc::new(controller.image.borrow().clone()),
                origin: NodeId(-1),
                sequence: 0,
                refused: None,
            });
            return;
        }
    };
    let mut image = controller.image.borrow_mut();
    let refused = image.apply(&proposal.record, index).err();
    if let Some(refused) = &refused {
        tracing::debug!(index, %refused, "metadata record refused");
    }
    let _ = controller.effects.0.try_send(Effect {
        index,
        image: Arc::new(image.clone()),
        origin: proposal.origin,
        sequence: proposal.sequence,
        refused,
    });
}

/// Replaces the image with a snapshot's (sent by the leader to a node far
/// behind, or one that lost its disk).
pub(super) fn install(controller: &Controller, index: u64, state: &[u8]) {
    let image = match decode_snapshot(state) {
        Ok(image) => image,
        Err(error) => {
            tracing::error!(index, %error, "a metadata snapshot does not decode; keeping the image");
            return;
        }
    };
    tracing::info!(
        index,
        topics = image.topics.len(),
        "metadata snapshot installed"
    );
    controller.applied.set(index);
    controller.served.reset(index);
    *controller.image.borrow_mut() = image.clone();
    let _ = controller.effects.0.try_send(Effect {
        index,
        image: Arc::new(image),
        origin: NodeId(-1),
        sequence: 0,
        refused: None,
    });
}

/// Carries out applied entries' effects, in order, until the shard stops.
pub async fn carry_out_effects(shard: Rc<Shard>) {
    let controller = controller(&shard);
    let effects = controller.effects.1.clone();
    while let Ok(effect) = effects.recv().await {
        let previous = shard.metadata();
        let opened = open_what_is_new(&shard, &previous, &effect.image).await;
        broadcast(&shard, effect.image.clone()).await;
        controller.carried_out.set(effect.index);
        super::cluster::renew_if_caught_up(&shard, controller);
        remove_what_is_gone(&shard, &previous, &effect.image).await;
        if effect.origin != controller.node_id {
            continue;
        }
        let waiter = controller.waiters.borrow_mut().remove(&effect.sequence);
        if let Some(waiter) = waiter {
            let result = match effect.refused {
                Some(refused) => Err(Rejected::Refused(refused)),
                None => opened.map_err(Rejected::Failed),
            };
            let _ = waiter.send(result);
        }
    }
}

pub(super) fn failure_of(refused: Refused) -> Failure {
    let kind = match refused {
        Refused::TopicExists { .. } => ErrorKind::TopicExists,
        Refused::UnknownTopic { .. } => ErrorKind::UnknownTopic,
        Refused::PartitionCountChanged { .. } => ErrorKind::InvalidPartitions,
        Refused::ProducerIdsTaken { .. } | Refused::StaleBrokerEpoch { .. } => {
            ErrorKind::NotController
        }
        Refused::UnknownPartition { .. } => ErrorKind::NoSuchPartition,
        // The asker no longer leads, or asked under an old epoch.
        Refused::PartitionChange { .. } => ErrorKind::NotLeader,
        // Elections answer with their own reasons (see
        // `super::elections`); as a failure, an election that could not
        // be held is a request that cannot be met.
        Refused::Election { .. } => ErrorKind::InvalidRequest,
        Refused::Move { ref reason, .. } => match reason {
            MoveError::InvalidTarget(_) => ErrorKind::InvalidReplicaAssignment,
            MoveError::NoMoveInProgress | MoveError::OriginalOutOfSync(_) => {
                ErrorKind::InvalidRequest
            }
        },
        Refused::UnknownBroker { .. } | Refused::TooManyReplicas { .. } => {
            ErrorKind::InvalidReplicaAssignment
        }
        Refused::InvalidAcl { .. }
        | Refused::TooManyAcls { .. }
        | Refused::InvalidCredential { .. }
        | Refused::NoCredential { .. }
        | Refused::InvalidQuota(_) => ErrorKind::InvalidRequest,
    };
    Failure::new(kind, refused.to_string())
}

/// The same topic in `previous`, if it is there (by id: a topic deleted
/// and created again under its name is another).
fn before<'a>(previous: &'a Metadata, topic: &TopicMeta) -> Option<&'a Arc<TopicMeta>> {
    previous.topic(&topic.name).filter(|old| old.id == topic.id)
}

/// Opens this node's partitions that `next` has and `previous` had not,
/// and gives changed configs to the ones it had. The first failure.
async fn open_what_is_new(
    shard: &Rc<Shard>,
    previous: &Metadata,
    next: &Metadata,
) -> Result<(), Failure> {
    let node = shard.config.node_id;
    let mut result = Ok(());
    for topic in next.topics.values() {
        let old = before(previous, topic);
        if old.is_some_and(|old| Arc::ptr_eq(old, topic)) {
            continue;
        }
        let config = match log_config(&topic.effective_configs()) {
            Ok(config) => config,
            Err(error) => {
                tracing::error!(topic = %topic.name, %error, "topic configs make no log config");
                LogConfig::default()
            }
        };
        let new: Vec<u32> = (0..topic.partition_count())
            .filter(|p| topic.is_replica(*p, node))
            .filter(|p| !old.is_some_and(|old| old.is_replica(*p, node)))
            .collect();
        let opened = on_partitions(shard, topic, new, |partition, reply| PartitionOp::Open {
            dir: shard.log_dirs.place(topic, partition),
            config: Box::new(config.clone()),
            reply,
        })
        .await;
        if let Err(failure) = opened {
            tracing::error!(topic = %topic.name, message = %failure.message, "a partition did not open");
            result = result.and(Err(failure));
        }
        if let Some(old) = old.filter(|old| old.effective_configs() != topic.effective_configs()) {
            let kept: Vec<u32> = (0..old.partition_count())
                .filter(|p| old.is_replica(*p, node) && topic.is_replica(*p, node))
                .collect();
            let set = on_partitions(shard, topic, kept, |_, reply| PartitionOp::SetConfig {
                config: Box::new(config.clone()),
                reply,
            })
            .await;
            if let Err(failure) = set {
                tracing::warn!(topic = %topic.name, message = %failure.message, "configs not applied to a partition");
                result = result.and(Err(failure));
            }
        }
    }
    result
}

/// Closes and deletes this node's partitions of the topics `previous` had
/// and `next` has not, and its replicas that a move took elsewhere.
async fn remove_what_is_gone(shard: &Rc<Shard>, previous: &Metadata, next: &Metadata) {
    let node = shard.config.node_id;
    for topic in previous.topics.values() {
        if let Some(now) = before(next, topic) {
            if !Arc::ptr_eq(now, topic) {
                remove_moved_replicas(shard, topic, now).await;
            }
            continue;
        }
        let local: Vec<u32> = (0..topic.partition_count())
            .filter(|p| topic.is_replica(*p, node))
            .collect();
        for partition in &local {
            if let Some(index) = shard.log_dirs.find(topic, *partition) {
                shard.log_dirs.forget(index);
            }
        }
        let closed = on_partitions(shard, topic, local, |_, reply| PartitionOp::Remove {
            reply,
        })
        .await;
        if let Err(failure) = closed {
            tracing::warn!(topic = %topic.name, message = %failure.message, "a partition did not close cleanly");
        }
        // Renamed now, its partitions' directories in it, and given back
        // to the disk later and slowly: see sluice_storage::deleter.
        let delay = log_config(&topic.effective_configs())
            .map_or(LogConfig::default().file_delete_delay_ms, |config| {
                config.file_delete_delay_ms
            });
        for log_dir in shard.log_dirs.dirs() {
            let topic_dir = topic.topic_dir(log_dir);
            match sluice_storage::deleter::delete(&topic_dir, Duration::from_millis(delay)) {
                Ok(()) => {
                    tracing::info!(topic = %topic.name, dir = %log_dir.display(), "topic deleted")
                }
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    tracing::warn!(topic = %topic.name, %error, "topic directory not deleted")
                }
            }
        }
    }
}

/// Closes and deletes this node's replicas of `old`'s partitions that
/// `now` (the same topic) places elsewhere: a move finished without them.
async fn remove_moved_replicas(shard: &Rc<Shard>, old: &TopicMeta, now: &Arc<TopicMeta>) {
    let node = shard.config.node_id;
    let moved: Vec<u32> = (0..old.partition_count())
        .filter(|p| old.is_replica(*p, node) && !now.is_replica(*p, node))
        .collect();
    if moved.is_empty() {
        return;
    }
    let dirs: Vec<(u32, Option<usize>)> = moved
        .iter()
        .map(|partition| (*partition, shard.log_dirs.find(now, *partition)))
        .collect();
    let closed = on_partitions(shard, now, moved, |_, reply| PartitionOp::Remove { reply }).await;
    if let Err(failure) = closed {
        tracing::warn!(topic = %now.name, message = %failure.message, "a moved replica did not close cleanly");
    }
    let delay = log_config(&now.effective_configs())
        .map_or(LogConfig::default().file_delete_delay_ms, |config| {
            config.file_delete_delay_ms
        });
    for (partition, index) in dirs {
        let Some(index) = index else {
            continue;
        };
        shard.log_dirs.forget(index);
        let dir = now.partition_dir(&shard.log_dirs.dirs()[index], partition);
        match sluice_storage::deleter::delete(&dir, Duration::from_millis(delay)) {
            Ok(()) => tracing::info!(
                topic = %now.name,
                partition,
                "replica moved away: its files deleted"
            ),
            Err(error) => {
                tracing::warn!(topic = %now.name, partition, %error, "a moved replica's files not deleted")
            }
        }
    }
}

/// Proposes `record` and waits until this node has applied it and carried
/// out its effects (so anything asked of this node next sees it); then
/// says whether it was refused where it was applied.
///
/// Errors: the record's refusal (`TopicExists`, `UnknownTopic`, ...);
/// `NotController` when no leader took it within [`PROPOSAL_TIMEOUT`];
/// `StorageFailed` when the controller's log failed.
pub async fn propose(shard: &Rc<Shard>, record: MetadataRecord) -> Result<(), Failure> {
    propose_checked(shard, record)
        .await
        .map_err(|rejected| match rejected {
            Rejected::Refused(refused) => failure_of(refused),
            Rejected::Failed(failure) => failure,
        })
}

/// Proposes each of `records` (each with the caller's index for it), at
/// most `in_flight` at once, as [`propose_checked`] does one: records
/// proposed together reach the quorum in one round. Each outcome with its
/// index, in the order given.
pub(super) async fn propose_each(
    shard: &Rc<Shard>,
    records: Vec<(usize, MetadataRecord)>,
    in_flight: usize,
) -> Vec<(usize, Result<(), Rejected>)> {
    let mut outcomes = Vec::with_capacity(records.len());
    for chunk in records.chunks(in_flight.max(1)) {
        let proposals: Vec<(usize, glommio::Task<Result<(), Rejected>>)> = chunk
            .iter()
            .map(|(index, record)| {
                let shard = shard.clone();
                let record = record.clone();
                let task =
                    glommio::spawn_local(async move { propose_checked(&shard, record).await });
                (*index, task)
            })
            .collect();
        for (index, proposal) in proposals {
            outcomes.push((index, proposal.await));
        }
    }
    outcomes
}

/// [`propose`], telling a refusal where the record was applied (with its
/// reason, as every node found it) from a failure to commit it.
pub(super) async fn propose_checked(
    shard: &Rc<Shard>,
    record: MetadataRecord,
) -> Result<(), Rejected> {
    let controller = controller(shard);
    if controller.stopped.borrow().is_some() {
        return Err(Rejected::Failed(stopped(controller)));
    }
    let sequence = controller.sequence.get();
    controller.sequence.set(sequence + 1);
    let payload = encode_proposal(&Proposal {
        origin: controller.node_id,
        sequence,
        record,
    });
    let (reply, mut answer) = oneshot::channel();
    controller.waiters.borrow_mut().insert(sequence, reply);
    let deadline = Instant::now() + PROPOSAL_TIMEOUT;
    // Handed to the leader again until it is applied here: a leader that
    // died with it, or a forward lost on the way, costs one round, not the
    // whole timeout. A record applied twice is refused the second time (or
    // changes nothing), and the first answers.
    let result = loop {
        if let Err(failure) = place_proposal(shard, controller, payload.clone(), deadline).await {
            break Err(Rejected::Failed(failure));
        }
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .min(PROPOSAL_RETRY);
        let timed_out = async {
            glommio::timer::sleep(wait).await;
            None
        };
        match futures_lite::future::or(async { Some((&mut answer).await) }, timed_out).await {
            Some(Ok(result)) => break result,
            Some(Err(_)) => break Err(Rejected::Failed(stopped(controller))),
            None if Instant::now() >= deadline => {
                break Err(Rejected::Failed(Failure::new(
                    ErrorKind::NotController,
                    format!("the change was not committed within {PROPOSAL_TIMEOUT:?} (no controller leader, or no majority of voters); it may still take effect once a majority is back"),
                )))
            }
            None => {}
        }
    };
    controller.waiters.borrow_mut().remove(&sequence);
    result
}

/// Hands `payload` to the leader: proposed here if this node leads, sent
/// to the leader if another node does; waits for a leader until
/// `deadline` while there is none.
async fn place_proposal(
    shard: &Rc<Shard>,
    controller: &Controller,
    payload: Vec<u8>,
    deadline: Instant,
) -> Result<(), Failure> {
    loop {
        let leader = if let Some(quorum) = controller.quorum() {
            let mut quorum = quorum.borrow_mut();
            if quorum.role() == Role::Leader {
                match quorum.propose(payload.clone()) {
                    Ok(_) => {
                        let _ = controller.events.0.try_send(DriverEvent::Proposed);
                        return Ok(());
                    }
                    Err(QuorumError::ProposalTooLarge { bytes, max }) => {
                        return Err(Failure::new(
                            ErrorKind::TooLarge,
                            format!("a metadata change of {bytes} bytes, over the limit of {max}"),
                        ))
                    }
                    Err(error) => {
                        tracing::debug!(%error, "proposal not taken; trying again");
                        None
                    }
                }
            } else {
                quorum.leader().map(node_of)
            }
        } else {
            controller.leader()
        };
        if let Some(leader) = leader {
            if forward_proposal(shard, leader, &payload) {
                return Ok(());
            }
        }
        if Instant::now() + LEADER_POLL > deadline {
            return Err(Failure::new(
                ErrorKind::NotController,
                "no controller leader: an election is under way, or a majority of voters is unreachable",
            ));
        }
        glommio::timer::sleep(LEADER_POLL).await;
    }
}

/// Sends a quorum message to node `to` (lost if it cannot be queued:
/// raft sends again).
fn send_quorum_message(shard: &Rc<Shard>, to: NodeId, bytes: Vec<u8>) {
    super::cluster::send(controller(shard), to, MessageKind::Quorum, bytes.into());
}

/// Sends this node's proposal to the leader, `leader`; false if it could
/// not be sent.
fn forward_proposal(shard: &Rc<Shard>, leader: NodeId, payload: &[u8]) -> bool {
    super::cluster::forward_proposal(controller(shard), leader, payload)
}

/// Proposes `record` with no one waiting for it (the leader's fences):
/// if it is lost, the next tick proposes it again.
pub fn propose_unanswered(shard: &Rc<Shard>, record: MetadataRecord) {
    let controller = controller(shard);
    let sequence = controller.sequence.get();
    controller.sequence.set(sequence + 1);
    let payload = encode_proposal(&Proposal {
        origin: controller.node_id,
        sequence,
        record,
    });
    let Some(quorum) = controller.quorum() else {
        tracing::debug!("a broker that is not a voter proposes nothing unanswered");
        return;
    };
    let proposed = quorum.borrow_mut().propose(payload);
    match proposed {
        Ok(_) => {
            let _ = controller.events.0.try_send(DriverEvent::Proposed);
        }
        Err(error) => tracing::debug!(%error, "proposal not taken"),
    }
}
