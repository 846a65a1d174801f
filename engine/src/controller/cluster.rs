//! The controller across nodes, on shard 0: the peer network's messages
//! (quorum traffic, proposals forwarded to the leader, heartbeats), this
//! broker's registration and heartbeats, and, on the leader, the brokers'
//! leases: a broker silent for [`LEASE`] is fenced, and unfenced when it
//! heartbeats again. Fences and unfences name the broker's epoch, so a
//! stale one changes nothing.
//!
//! Controller requests on the wire (the body of a
//! [`MessageKind::ControllerRequest`]): `[u8 type]` then
//!
//! | type | request | fields |
//! |---|---|---|
//! | 1 | proposal for the leader | the proposal's bytes (see `cluster_metadata::entries`) |
//! | 2 | heartbeat | `i32` node, `u64` broker epoch, `u128` incarnation |
//! | 3 | an observer's metadata fetch | see [`super::observer`] |
//!
//! The leader answers a heartbeat with a [`MessageKind::ControllerReply`]
//! `[4][u64 broker epoch][u64 metadata index]`: the broker's lease is
//! renewed on its side too (`replica::state::Lease`), so that one cut off
//! from the leader stops taking writes for its partitions when the leader
//! fences it. The index is the last metadata entry the leader had applied
//! when it answered; the broker renews its lease only once it has carried
//! out that entry itself. A broker that was paused or cut off past its
//! lease, and fenced meanwhile, hears an answer as soon as it runs again,
//! before the entries that moved its partitions reach it: renewed then, it
//! would take writes as a leader the metadata no longer names.
//!
//! A request that does not decode is refused (logged) and changes nothing.

use std::{
    rc::Rc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use sluice_replication::quorum::QuorumError;
use sluice_storage::NodeId;

use super::{
    driver::{controller, propose, propose_unanswered},
    state::{Controller, DriverEvent, LogEnds},
};
use crate::{
    cluster_metadata::{
        entries::decode_proposal, records::BrokerRegistration, Metadata, MetadataRecord,
    },
    peer::{MessageKind, PeerMessage, PeerNetwork},
    shard::Shard,
};

/// A broker heartbeats this often.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(200);
/// A broker the leader has not heard from for this long is fenced, and its
/// partitions' leadership moves to an in-sync follower: five missed
/// heartbeats, about as long as the controller quorum's own election
/// timeout (0.5 to 1 s), so that `acks=all` writes resume within about a
/// second of a leader's death. Kafka's `broker.session.timeout.ms` is 9 s.
pub const LEASE: Duration = Duration::from_secs(1);
/// How long a broker holds its lease on its own side after the
/// controller leader last answered its heartbeat: twice [`LEASE`], so that
/// a controller leader's death (an election of 0.5 to 1 s, then a whole
/// lease granted afresh) does not make every broker drop its partitions,
/// while one cut off from the others, fenced at [`LEASE`], stops taking
/// writes a second later.
pub const BROKER_LEASE: Duration = Duration::from_secs(2);
/// A fence or unfence proposed and not yet applied is not proposed again
/// before this long.
const FENCE_RETRY: Duration = Duration::from_secs(1);

const REQUEST_PROPOSAL: u8 = 1;
const REQUEST_HEARTBEAT: u8 = 2;
/// How far does each node hold the metadata log? `[4][u64 question id]`,
/// to the leader, which answers [`REPLY_LOG_ENDS`].
const REQUEST_LOG_ENDS: u8 = 4;
const LOG_ENDS_REQUEST_BYTES: usize = 1 + 8;
/// `[3][u64 question id][u32 count]` then per node `[i32 node][u64 end]`.
/// (Replies 1 and 2 are the observer's.)
const REPLY_LOG_ENDS: u8 = 3;
/// `[4][u64 broker epoch][u64 metadata index]`: a heartbeat heard, and
/// the last metadata entry the leader had applied.
const REPLY_HEARTBEAT: u8 = 4;
const HEARTBEAT_REPLY_BYTES: usize = 1 + 8 + 8;
const LOG_ENDS_REPLY_HEADER_BYTES: usize = 1 + 8 + 4;
const LOG_END_BYTES: usize = 4 + 8;
/// Nodes in one answer, at most: far more than a cluster has.
const LOG_ENDS_MAX: usize = 4096;
/// How long a node waits for the leader's answer before it answers
/// "unknown" itself.
pub const LOG_ENDS_TIMEOUT: Duration = Duration::from_secs(1);
const HEARTBEAT_BYTES: usize = 1 + 4 + 8 + 16;

/// Whether this node runs as part of a cluster (a quorum of several
/// voters): then it listens on its peer port, registers and heartbeats.
pub fn clustered(shard: &Shard) -> bool {
    shard
        .config
        .voters
        .iter()
        .any(|voter| voter.node_id != shard.config.node_id)
}

/// Starts the peer network on `listener` and serves what it brings until
/// the shard stops (the task is dropped).
pub async fn serve_peers(shard: Rc<Shard>, listener: glommio::net::TcpListener) {
    let controller = controller(&shard);
    let (inbound, messages) = async_channel::bounded(PEER_INBOX_MAX);
    let place = crate::peer::Place {
        node: shard.config.node_id,
        shard: 0,
        shard_count: shard.shard_count() as u32,
    };
    // Connections for other shards (their partitions' replication) are
    // handed to them.
    let network = PeerNetwork::start_on_shard(
        place,
        shard.cluster_id.clone(),
        Some(listener),
        inbound,
        Some(hand_over(shard.peers.clone())),
        shard.peer_tls.get().cloned(),
    );
    for voter in &shard.config.voters {
        network.set_address(voter.node_id, voter.peer_addr.clone());
    }
    *controller.network.borrow_mut() = Some(network.clone());
    shard.replicas.set_network(network.clone());
    let _stop = StopOnDrop(network);
    while let Ok(message) = messages.recv().await {
        on_message(&shard, controller, message);
    }
}

/// Hands a connection shard 0 accepted to the shard it is for.
fn hand_over(
    peers: Vec<async_channel::Sender<crate::shard::ShardMessage>>,
) -> Box<dyn Fn(crate::peer::HandedOver)> {
    Box::new(move |handed: crate::peer::HandedOver| {
        let Some(inbox) = peers.get(handed.shard) else {
            return;
        };
        let adopt = move |shard: Rc<Shard>| shard.replicas.adopt(handed);
        if inbox
            .try_send(crate::shard::ShardMessage::Run(Box::new(adopt)))
            .is_err()
        {
            tracing::debug!("a peer connection not handed over: its shard's inbox is full");
        }
    })
}

/// Messages from peers waiting for shard 0: raft's traffic is a few
/// messages per peer per tick.
const PEER_INBOX_MAX: usize = 4096;

struct StopOnDrop(Rc<PeerNetwork>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

fn on_message(shard: &Rc<Shard>, controller: &Controller, message: PeerMessage) {
    match message.kind {
        MessageKind::Quorum => {
            let _ = controller.events.0.try_send(DriverEvent::Peer {
                from: message.from,
                bytes: message.body,
            });
        }
        MessageKind::ControllerRequest => {
            if let Err(reason) = on_request(shard, controller, message.from, &message.body) {
                tracing::warn!(from = %message.from, reason, "controller request refused");
            }
        }
        MessageKind::ControllerReply if message.body.first() == Some(&REPLY_HEARTBEAT) => {
            let from_leader = controller.leader() == Some(message.from);
            if message.body.len() == HEARTBEAT_REPLY_BYTES && from_leader {
                let index = u64::from_le_bytes(message.body[9..17].try_into().expect("8 bytes"));
                renew_once_caught_up(shard, controller, index);
            }
        }
        MessageKind::ControllerReply if message.body.first() == Some(&REPLY_LOG_ENDS) => {
            match decode_log_ends(&message.body) {
                Ok((question, ends)) => {
                    if let Some(asker) = controller.log_ends_asked.borrow_mut().remove(&question) {
                        let _ = asker.send(ends);
                    }
                }
                Err(reason) => {
                    tracing::warn!(from = %message.from, reason, "controller reply refused")
                }
            }
        }
        // Shard 0's partitions' and transaction coordinators' messages,
        // as every other shard's, are read by its replication task.
        MessageKind::Replication | MessageKind::Transaction => {
            if shard.replicas.inbox().try_send(message).is_err() {
                tracing::debug!("a replication frame dropped: shard 0's replication is behind");
            }
        }
        MessageKind::ControllerReply => match controller.observer() {
            Some(observer) => observer.on_reply(message.from, message.body),
            None => tracing::warn!(from = %message.from, "controller reply not expected; dropped"),
        },
    }
}

fn on_request(
    shard: &Rc<Shard>,
    controller: &Controller,
    from: NodeId,
    body: &[u8],
) -> Result<(), &'static str> {
    match body.first() {
        Some(&REQUEST_PROPOSAL) => {
            let payload = &body[1..];
            let proposal =
                decode_proposal(payload).map_err(|_| "a proposal that does not decode")?;
            if proposal.origin != from {
                return Err("a proposal in another node's name");
            }
            if let MetadataRecord::BrokerRegistered(registration) = &proposal.record {
                if registration.node != from {
                    return Err("a registration in another node's name");
                }
                if held_by_another(shard, controller, from, registration.incarnation) {
                    tracing::error!(
                        node = %from,
                        "a second process claims node {from}, which a live process holds: its registration is refused (give each node its own --node-id)"
                    );
                    return Err("a registration of a node a live process holds");
                }
            }
            let Some(quorum) = controller.quorum() else {
                return Err("a proposal sent to a broker that is not a voter");
            };
            let proposed = quorum.borrow_mut().propose(payload.to_vec());
            match proposed {
                Ok(_) => {
                    let _ = controller.events.0.try_send(DriverEvent::Proposed);
                    Ok(())
                }
                // The proposer asks again, of the leader it learns of.
                Err(QuorumError::NotLeader { .. }) => Ok(()),
                Err(error) => {
                    tracing::debug!(%from, %error, "forwarded proposal not taken");
                    Ok(())
                }
            }
        }
        Some(&REQUEST_HEARTBEAT) => {
            if body.len() != HEARTBEAT_BYTES {
                return Err("a heartbeat of the wrong size");
            }
            let node = i32::from_le_bytes(body[1..5].try_into().expect("4 bytes"));
            let epoch = u64::from_le_bytes(body[5..13].try_into().expect("8 bytes"));
            let incarnation = u128::from_le_bytes(body[13..29].try_into().expect("16 bytes"));
            if node != from.0 {
                return Err("a heartbeat in another node's name");
            }
            let registered = shard
                .metadata()
                .brokers
                .get(&from)
                .is_some_and(|broker| broker.registration.incarnation == incarnation);
            if !registered {
                return Err("a heartbeat of a process that is not the registered one");
            }
            heard_from(shard, controller, from, epoch);
            let mut reply = Vec::with_capacity(HEARTBEAT_REPLY_BYTES);
            reply.push(REPLY_HEARTBEAT);
            reply.extend_from_slice(&epoch.to_le_bytes());
            reply.extend_from_slice(&controller.applied.get().to_le_bytes());
            send(controller, from, MessageKind::ControllerReply, reply.into());
            Ok(())
        }
        Some(&super::observer::REQUEST_FETCH) => {
            super::observer::on_fetch(shard, controller, from, body)
        }
        Some(&REQUEST_LOG_ENDS) => {
            let question: [u8; 8] = body
                .get(1..)
                .filter(|rest| rest.len() == LOG_ENDS_REQUEST_BYTES - 1)
                .and_then(|rest| rest.try_into().ok())
                .ok_or("a log ends question of the wrong size")?;
            if !controller.leads() {
                // The asker times out and answers "unknown", as Kafka's
                // non-leaders do.
                return Ok(());
            }
            let ends = controller.log_ends();
            let mut reply =
                Vec::with_capacity(LOG_ENDS_REPLY_HEADER_BYTES + ends.len() * LOG_END_BYTES);
            reply.push(REPLY_LOG_ENDS);
            reply.extend_from_slice(&question);
            let count = ends.len().min(LOG_ENDS_MAX);
            reply.extend_from_slice(&(count as u32).to_le_bytes());
            for (node, end) in ends.iter().take(count) {
                reply.extend_from_slice(&node.0.to_le_bytes());
                reply.extend_from_slice(&end.to_le_bytes());
            }
            send(controller, from, MessageKind::ControllerReply, reply.into());
            Ok(())
        }
        _ => Err("an unknown controller request"),
    }
}

/// An answer to a log ends question: its id and the ends, every length
/// checked before anything is allocated.
fn decode_log_ends(body: &[u8]) -> Result<(u64, LogEnds), &'static str> {
    if body.len() < LOG_ENDS_REPLY_HEADER_BYTES {
        return Err("a log ends answer cut short");
    }
    let question = u64::from_le_bytes(body[1..9].try_into().expect("8 bytes"));
    let count = u32::from_le_bytes(body[9..13].try_into().expect("4 bytes")) as usize;
    if count > LOG_ENDS_MAX {
        return Err("a log ends answer of too many nodes");
    }
    let entries = &body[LOG_ENDS_REPLY_HEADER_BYTES..];
    if entries.len() != count * LOG_END_BYTES {
        return Err("a log ends answer whose count and length disagree");
    }
    let ends = entries
        .chunks_exact(LOG_END_BYTES)
        .map(|entry| {
            let node = i32::from_le_bytes(entry[..4].try_into().expect("4 bytes"));
            let end = u64::from_le_bytes(entry[4..].try_into().expect("8 bytes"));
            (NodeId(node), end)
        })
        .collect();
    Ok((question, ends))
}

/// How far each voter and observer holds the metadata log, as the
/// controller leader tracks it: this node's own figures when it leads, else
/// the leader's answer (Kafka's brokers forward DescribeQuorum to the
/// active controller). Empty when no leader is known or it does not
/// answer within [`LOG_ENDS_TIMEOUT`]. On shard 0.
pub async fn leader_log_ends(shard: &Rc<Shard>) -> LogEnds {
    let Some(controller) = shard.controller.as_ref() else {
        return Vec::new();
    };
    if controller.leads() {
        return controller.log_ends();
    }
    let Some(leader) = controller
        .leader()
        .filter(|leader| *leader != controller.node_id)
    else {
        return Vec::new();
    };
    let question = controller.next_question.get();
    controller.next_question.set(question + 1);
    let (answer, answered) = futures_channel::oneshot::channel();
    controller
        .log_ends_asked
        .borrow_mut()
        .insert(question, answer);
    let mut body = Vec::with_capacity(LOG_ENDS_REQUEST_BYTES);
    body.push(REQUEST_LOG_ENDS);
    body.extend_from_slice(&question.to_le_bytes());
    let ends = if send(
        controller,
        leader,
        MessageKind::ControllerRequest,
        body.into(),
    ) {
        futures_lite::future::or(async { answered.await.ok() }, async {
            glommio::timer::sleep(LOG_ENDS_TIMEOUT).await;
            None
        })
        .await
    } else {
        None
    };
    controller.log_ends_asked.borrow_mut().remove(&question);
    ends.unwrap_or_default()
}

/// Sends `body` of `kind` to node `to`; false if it could not be queued.
pub fn send(controller: &Controller, to: NodeId, kind: MessageKind, body: Bytes) -> bool {
    let network = controller.network.borrow();
    let Some(network) = network.as_ref() else {
        return false;
    };
    match network.send(to, kind, body) {
        Ok(()) => true,
        Err(error) => {
            tracing::debug!(%to, %error, "peer message not sent");
            false
        }
    }
}

/// Sends this node's proposal (`payload`) to the leader, `leader`.
pub fn forward_proposal(controller: &Controller, leader: NodeId, payload: &[u8]) -> bool {
    let mut body = Vec::with_capacity(1 + payload.len());
    body.push(REQUEST_PROPOSAL);
    body.extend_from_slice(payload);
    send(
        controller,
        leader,
        MessageKind::ControllerRequest,
        body.into(),
    )
}

/// Whether `node` is registered by another process than `incarnation`
/// whose lease still holds on this leader.
pub(super) fn held_by_another(
    shard: &Shard,
    controller: &Controller,
    node: NodeId,
    incarnation: u128,
) -> bool {
    let metadata = shard.metadata();
    let Some(current) = metadata.brokers.get(&node) else {
        return false;
    };
    if current.registration.incarnation == incarnation || current.fenced {
        return false;
    }
    controller
        .leases
        .borrow()
        .get(&node)
        .is_some_and(|(epoch, heard)| *epoch == current.epoch && heard.elapsed() < LEASE)
}

/// The leader heard from broker `node` at broker epoch `epoch`.
fn heard_from(shard: &Rc<Shard>, controller: &Controller, node: NodeId, epoch: u64) {
    controller
        .leases
        .borrow_mut()
        .insert(node, (epoch, Instant::now()));
    let metadata = shard.metadata();
    if let Some(broker) = metadata.brokers.get(&node) {
        if broker.fenced && broker.epoch == epoch {
            change_fence(shard, controller, node, epoch, false);
        }
    }
}

/// This node's registration, as it starts.
pub fn registration(shard: &Shard) -> BrokerRegistration {
    // The addresses with their ports resolved (see `crate::listeners`).
    let config = &shard.config;
    BrokerRegistration {
        node: config.node_id,
        incarnation: controller(shard).incarnation,
        rack: config.rack.clone(),
        kafka_listeners: crate::cluster_view::endpoints(&config.kafka_listeners),
        native_addr: config.native_addr.clone(),
        peer_addr: config.peer_addr.clone(),
        admin_addr: config.admin_addr.clone().unwrap_or_default(),
    }
}

/// Registers this broker (again, if the metadata has an older
/// registration of it), then heartbeats to the controller leader every
/// [`HEARTBEAT_INTERVAL`] until the shard stops.
pub async fn register_and_heartbeat(shard: Rc<Shard>) {
    let controller = controller(&shard);
    let registration = registration(&shard);
    loop {
        let current = shard.metadata();
        let registered = current
            .brokers
            .get(&registration.node)
            .is_some_and(|broker| broker.registration == registration);
        if registered {
            break;
        }
        match propose(
            &shard,
            MetadataRecord::BrokerRegistered(registration.clone()),
        )
        .await
        {
            Ok(()) => {
                tracing::info!(node = %registration.node, "broker registered");
                break;
            }
            Err(failure) => {
                tracing::info!(message = %failure.message, "broker not registered yet; trying again");
                glommio::timer::sleep(HEARTBEAT_INTERVAL).await;
            }
        }
    }
    loop {
        let metadata = shard.metadata();
        if let Some(broker) = metadata.brokers.get(&registration.node) {
            heartbeat(&shard, controller, broker.epoch);
        }
        glommio::timer::sleep(HEARTBEAT_INTERVAL).await;
    }
}

fn heartbeat(shard: &Rc<Shard>, controller: &Controller, epoch: u64) {
    if shard
        .quorum_view
        .leaving
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        return;
    }
    let node = shard.config.node_id;
    match controller.leader() {
        Some(leader) if leader == node => {
            heard_from(shard, controller, node, epoch);
            // A leader the others have replaced (it was paused, or cut
            // off) still believes it leads until it hears of its
            // successor: it renews its own lease only while a majority of
            // the voters heartbeat it.
            if heard_by_a_majority(controller) {
                renew_once_caught_up(shard, controller, controller.applied.get());
            }
        }
        Some(leader) => {
            let mut body = Vec::with_capacity(HEARTBEAT_BYTES);
            body.push(REQUEST_HEARTBEAT);
            body.extend_from_slice(&node.0.to_le_bytes());
            body.extend_from_slice(&epoch.to_le_bytes());
            body.extend_from_slice(&controller.incarnation.to_le_bytes());
            send(
                controller,
                leader,
                MessageKind::ControllerRequest,
                body.into(),
            );
        }
        None => {}
    }
}

/// How long a node shutting down waits for its own fence to be applied
/// before it stops anyway (its lease then runs out as after a crash). A
/// quorum takes a change in milliseconds; a whole cluster stopped at once
/// loses its quorum on the way, and its last nodes wait this long.
pub const LEAVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Controlled shutdown (Kafka's `controlled.shutdown`): when this broker
/// leads a partition that another live in-sync replica can lead, it stops
/// heartbeating and has itself fenced, so that the controller moves that
/// leadership now rather than when its lease runs out, and the writes
/// resume on the new leader while this node finishes its shutdown.
/// Returns once the fence is applied here, or after [`LEAVE_TIMEOUT`]. A
/// broker whose partitions' leadership cannot move (one replica each, or
/// no other in sync) is not fenced: they would only show offline until it
/// is back, which a restart makes longer.
pub async fn leave(shard: &Rc<Shard>) {
    if !clustered(shard) {
        return;
    }
    let controller = controller(shard);
    let node = shard.config.node_id;
    let metadata = shard.metadata();
    let Some(broker) = metadata.brokers.get(&node).filter(|broker| !broker.fenced) else {
        return;
    };
    let alive = |other: NodeId| {
        metadata
            .brokers
            .get(&other)
            .is_some_and(|broker| !broker.fenced)
    };
    let me = crate::cluster_metadata::image::node(node);
    let movable = metadata.topics.values().any(|topic| {
        topic.control.iter().any(|control| {
            control.leader == Some(me)
                && control.in_sync.iter().any(|other| {
                    *other != me && alive(crate::cluster_metadata::image::node_id(*other))
                })
        })
    });
    if !movable || controller.leader().is_none() {
        return;
    }
    shard
        .quorum_view
        .leaving
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let epoch = broker.epoch;
    let began = Instant::now();
    let fence = propose(shard, MetadataRecord::BrokerFenced { node, epoch });
    let outcome = futures_lite::future::or(async { Some(fence.await) }, async {
        glommio::timer::sleep(LEAVE_TIMEOUT).await;
        None
    })
    .await;
    let took_ms = began.elapsed().as_millis() as u64;
    match outcome {
        Some(Ok(())) => {
            tracing::info!(%node, epoch, took_ms, "fenced for shutdown: leadership moved")
        }
        Some(Err(failure)) => {
            tracing::warn!(%node, message = %failure.message, "not fenced for shutdown; the lease will run out")
        }
        None => {
            tracing::warn!(%node, took_ms, "no fence for shutdown in time; the lease will run out")
        }
    }
}

/// Renews this broker's lease once the effects of metadata entry `index`
/// (the last the controller leader had applied as it answered a
/// heartbeat) are carried out here: at once if they are, else when they
/// are, for what is left of the lease from now.
fn renew_once_caught_up(shard: &Shard, controller: &Controller, index: u64) {
    if controller.carried_out.get() >= index {
        shard.quorum_view.lease.renew(BROKER_LEASE);
        return;
    }
    // The oldest answer waiting is the first the metadata reaches.
    if controller.renewal_pending.get().is_none() {
        controller
            .renewal_pending
            .set(Some((index, Instant::now())));
    }
}

/// The effects of another metadata entry are carried out: renews the lease
/// that an answer waited on them for.
pub(super) fn renew_if_caught_up(shard: &Shard, controller: &Controller) {
    let Some((index, answered)) = controller.renewal_pending.get() else {
        return;
    };
    if controller.carried_out.get() >= index {
        controller.renewal_pending.set(None);
        shard
            .quorum_view
            .lease
            .renew(BROKER_LEASE.saturating_sub(answered.elapsed()));
    }
}

/// On the controller leader: whether a majority of the voters (itself
/// among them) have heartbeated it within a lease (or it took the lead
/// within one, elected by a majority).
fn heard_by_a_majority(controller: &Controller) -> bool {
    let Some(quorum) = controller.quorum() else {
        return false;
    };
    let voters: Vec<NodeId> = quorum
        .borrow()
        .voters()
        .iter()
        .map(|voter| super::open::node_of(*voter))
        .collect();
    let now = Instant::now();
    let leases = controller.leases.borrow();
    let heard = voters
        .iter()
        .filter(|voter| {
            **voter == controller.node_id
                || leases
                    .get(voter)
                    .is_some_and(|(_, at)| now.duration_since(*at) <= LEASE)
        })
        .count();
    heard > voters.len() / 2
}

/// On the leader, each tick: fences the brokers whose lease ran out. A
/// node that has just become leader gives every broker a whole lease.
pub fn check_leases(shard: &Rc<Shard>, controller: &Controller) {
    let leading = controller.leads();
    let was_leading = controller.leading_since.get().is_some();
    if !leading {
        controller.leading_since.set(None);
        return;
    }
    let now = Instant::now();
    if !was_leading {
        controller.leading_since.set(Some(now));
        controller.leases.borrow_mut().clear();
    }
    let since = controller.leading_since.get().expect("set above");
    let metadata: std::sync::Arc<Metadata> = shard.metadata();
    for broker in metadata.brokers.values() {
        if broker.fenced {
            continue;
        }
        let node = broker.registration.node;
        // A broker at an epoch this leader has not heard of yet (it has
        // just registered, again) gets a whole lease from now.
        let heard = *controller
            .leases
            .borrow_mut()
            .entry(node)
            .and_modify(|lease| {
                if lease.0 != broker.epoch {
                    *lease = (broker.epoch, now.max(since));
                }
            })
            .or_insert((broker.epoch, since));
        let heard = heard.1;
        if now.duration_since(heard) > LEASE {
            tracing::warn!(%node, epoch = broker.epoch, silent_ms = now.duration_since(heard).as_millis() as u64, "broker lease ran out: fencing it");
            change_fence(shard, controller, node, broker.epoch, true);
        }
    }
}

/// Proposes fencing (or unfencing) `node` at `epoch`, unless the same was
/// proposed less than [`FENCE_RETRY`] ago.
fn change_fence(shard: &Rc<Shard>, controller: &Controller, node: NodeId, epoch: u64, fence: bool) {
    let key = (node, epoch, fence);
    let now = Instant::now();
    {
        let mut pending = controller.fences_pending.borrow_mut();
        pending.retain(|_, at| now.duration_since(*at) < FENCE_RETRY);
        if pending.contains_key(&key) {
            return;
        }
        pending.insert(key, now);
    }
    let record = if fence {
        MetadataRecord::BrokerFenced { node, epoch }
    } else {
        tracing::info!(%node, epoch, "broker heard from again: unfencing it");
        MetadataRecord::BrokerUnfenced { node, epoch }
    };
    propose_unanswered(shard, record);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(question: u64, ends: &[(i32, u64)]) -> Vec<u8> {
        let mut body = vec![REPLY_LOG_ENDS];
        body.extend_from_slice(&question.to_le_bytes());
        body.extend_from_slice(&(ends.len() as u32).to_le_bytes());
        for (node, end) in ends {
            body.extend_from_slice(&node.to_le_bytes());
            body.extend_from_slice(&end.to_le_bytes());
        }
        body
    }

    #[test]
    fn a_log_ends_answer_reads_back_and_a_bad_one_is_refused() {
        let body = answer(7, &[(0, 40), (2, 38)]);
        assert_eq!(
            decode_log_ends(&body),
            Ok((7, vec![(NodeId(0), 40), (NodeId(2), 38)]))
        );
        for end in 0..body.len() {
            assert!(decode_log_ends(&body[..end]).is_err(), "cut at {end}");
        }
        let mut longer = body.clone();
        longer.push(0);
        assert!(decode_log_ends(&longer).is_err(), "a byte left over");
        // A count of four billion allocates nothing.
        let mut huge = answer(7, &[]);
        huge[9..13].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            decode_log_ends(&huge),
            Err("a log ends answer of too many nodes")
        );
    }
}
