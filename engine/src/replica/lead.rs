//! A leader's side: the push rounds, acknowledgements, the answers to
//! where an epoch ends, and the in-sync changes it asks the controller
//! for.

use std::{collections::HashMap, ops::Range, rc::Rc};

use bytes::Bytes;
use sluice_replication::partition::{
    epochs::Epoch,
    leader::{InSyncProposal, Node},
    wire::{Ack, AckStatus, EpochEndAnswer, EpochEndAsk, Frame, Push},
};
use sluice_storage::{
    log::{Log, ReadError},
    Offset,
};

use super::{
    concat, epochs, key_of,
    roles::settle,
    state::{partition_ref, ASK_RESEND_MS, FRAME_BYTES, PUSH_BYTES, TICK},
    Role,
};
use crate::{
    cluster_metadata::{image::node_id, records::MetadataRecord},
    partition::PartitionKey,
    shard::{Shard, ShardMessage},
};

/// One push planned under the roles' borrow, read after it.
struct Planned {
    key: PartitionKey,
    log: Rc<Log>,
    follower: Node,
    shard: u32,
    epoch: Epoch,
    high_watermark: u64,
    range: Range<u64>,
    /// The most a throttled move lets this push carry.
    bytes_max: usize,
}

/// Runs the leaders' rounds: at once when woken (an append, an
/// acknowledgement), else every [`TICK`].
pub(super) async fn rounds(shard: Rc<Shard>) {
    let woken = shard.replicas.wake.1.clone();
    loop {
        let tick = async {
            glommio::timer::sleep(TICK).await;
        };
        let wake = async {
            let _ = woken.recv().await;
        };
        futures_lite::future::or(wake, tick).await;
        round(&shard).await;
    }
}

/// One round: every leader's followers get what they lack (or a
/// heartbeat), one frame per (node, shard); laggards and returners are
/// proposed to the controller.
async fn round(shard: &Rc<Shard>) {
    let replicas = &shard.replicas;
    let now = replicas.now_ms();
    let mut planned = Vec::new();
    let mut proposals = Vec::new();
    let mut asks = Vec::new();
    {
        let partitions = shard.partitions.borrow();
        let mut roles = replicas.roles.borrow_mut();
        let lease_held = replicas.lease.held();
        // A round between sweeps looks up the partitions touched, and
        // never walks the others.
        let visit: Vec<PartitionKey> = match replicas.to_visit(now) {
            None => roles.keys().copied().collect(),
            Some(touched) => touched.into_iter().collect(),
        };
        for key in &visit {
            let (Some(role), Some(log)) = (roles.get_mut(key), partitions.get(key)) else {
                continue;
            };
            match role {
                Role::Leader(leading) => {
                    if !lease_held {
                        // Fenced at the controller by now: the writes
                        // waiting are told to find the new leader.
                        leading.waiting.clear();
                    }
                    // Pushed once written: the followers write while this
                    // leader syncs; the high watermark waits for both.
                    let replicable = log.replicable_end().0;
                    leading.state.leader_appended(log.end_offset().0);
                    leading.state.leader_durable(log.stored_end().0, now);
                    settle(leading, log);
                    if let Some(proposal) = leading.state.propose(now) {
                        proposals.push((*key, leading.epoch, proposal));
                    }
                    let leading = &mut **leading;
                    for &follower in &leading.followers {
                        let allowance = (leading.throttle.as_mut())
                            .and_then(|throttle| throttle.allowance(follower, now));
                        if allowance == Some(0) {
                            // A new replica of a throttled move waits for
                            // its pace.
                            continue;
                        }
                        if let Some(range) = leading.pushes.next(follower, replicable, now) {
                            planned.push(Planned {
                                key: *key,
                                log: log.clone(),
                                follower,
                                shard: leading.shard,
                                epoch: leading.epoch,
                                high_watermark: leading.state.high_watermark(),
                                range,
                                bytes_max: allowance.unwrap_or(PUSH_BYTES).min(PUSH_BYTES),
                            });
                        }
                    }
                }
                Role::Follower(following) => {
                    let due = following
                        .asked_ms
                        .is_some_and(|asked| asked + ASK_RESEND_MS <= now);
                    if due && !following.busy {
                        if let Some(epoch) = following.state.asking() {
                            following.asked_ms = Some(now);
                            asks.push((
                                following.state.leader(),
                                following.shard,
                                EpochEndAsk {
                                    partition: partition_ref(*key),
                                    current_epoch: following.state.leader_epoch(),
                                    epoch,
                                },
                            ));
                        }
                    }
                }
                Role::Idle => {}
            }
        }
    }
    shard
        .replicas
        .send_asks((shard.config.node_id, shard.id), asks);
    for (key, epoch, proposal) in proposals {
        propose(shard, key, epoch, proposal);
    }
    if planned.is_empty() {
        return;
    }
    let mut frames: HashMap<(Node, u32), (Vec<Push>, usize)> = HashMap::new();
    for plan in planned {
        let frame = frames.entry((plan.follower, plan.shard)).or_default();
        let room = FRAME_BYTES.saturating_sub(frame.1);
        let (base, batches) = if plan.range.is_empty() || room == 0 {
            (plan.range.start, Bytes::new())
        } else {
            read_push(&plan.log, plan.range.start, plan.bytes_max.min(room)).await
        };
        let end = end_of(base, &batches);
        frame.1 += batches.len();
        // Where this push's batches ended, should the role still be it.
        if let Some(Role::Leader(leading)) = replicas.roles.borrow_mut().get_mut(&plan.key) {
            if leading.epoch == plan.epoch {
                leading
                    .pushes
                    .sent(plan.follower, end.max(plan.range.start));
                if let Some(throttle) = leading.throttle.as_mut() {
                    throttle.spend(plan.follower, batches.len());
                }
            }
        }
        frame.0.push(Push {
            partition: partition_ref(plan.key),
            leader_epoch: plan.epoch,
            high_watermark: plan.high_watermark,
            base_offset: base,
            log_start: plan.log.start_offset().0,
            batches,
        });
    }
    let me = (shard.config.node_id, shard.id);
    for ((follower, to_shard), (pushes, _)) in frames {
        replicas.send(me, follower, to_shard, &Frame::Push(pushes));
    }
}

/// The stored batches from `offset` on, up to `max_bytes` (one at least),
/// and where they start (at `offset`, if a compacted log's gap is there);
/// none (a heartbeat at `offset`) when there is
/// nothing to read there: past the log start is the follower's to mend
/// (it starts again at the log start the push carries).
async fn read_push(log: &Log, offset: u64, max_bytes: usize) -> (u64, Bytes) {
    match log.read_replicable(Offset(offset), max_bytes).await {
        // A compacted log may have a gap at `offset`: the push still
        // starts there, where the follower's log ends, and its first batch
        // after the gap.
        Ok(batches) if !batches.is_empty() => {
            (offset.min(batches[0].base_offset().0), concat(&batches))
        }
        Ok(_) | Err(ReadError::OffsetOutOfRange { .. }) => (offset, Bytes::new()),
        Err(error) => {
            tracing::warn!(log = %log.dir().display(), %error, "a push not read");
            (offset, Bytes::new())
        }
    }
}

/// Where batches that start at `base` end (stored batches, whole).
fn end_of(base: u64, batches: &Bytes) -> u64 {
    let mut end = base;
    let mut rest = &batches[..];
    while let Ok(header) = sluice_storage::batch::BatchHeader::parse(rest) {
        end = header.next_offset();
        let length = (header.batch_bytes as usize).min(rest.len());
        if length == 0 {
            break;
        }
        rest = &rest[length..];
    }
    end
}

/// Acknowledgements from follower `from`: its log ends, the high
/// watermark, the `acks=all` writes it passes.
pub(super) fn on_acks(shard: &Rc<Shard>, from: Node, acks: Vec<Ack>) {
    let replicas = &shard.replicas;
    let now = replicas.now_ms();
    let mut proposals = Vec::new();
    {
        let partitions = shard.partitions.borrow();
        let mut roles = replicas.roles.borrow_mut();
        for ack in acks {
            let key = key_of(ack.partition);
            let (Some(Role::Leader(leading)), Some(log)) =
                (roles.get_mut(&key), partitions.get(&key))
            else {
                continue;
            };
            if ack.leader_epoch != leading.epoch || !leading.followers.contains(&from) {
                continue;
            }
            leading.pushes.answered(from, ack.status, ack.log_end, now);
            replicas.touched.borrow_mut().insert(key);
            if ack.status == AckStatus::Ok {
                leading.state.leader_appended(log.end_offset().0);
                if let Err(error) = leading.state.follower_durable(from, ack.durable_end, now) {
                    tracing::warn!(%key, %error, "an acknowledgement refused");
                    continue;
                }
                settle(leading, log);
                if let Some(proposal) = leading.state.propose(now) {
                    proposals.push((key, leading.epoch, proposal));
                }
            }
        }
    }
    for (key, epoch, proposal) in proposals {
        propose(shard, key, epoch, proposal);
    }
    let _ = replicas.wake.0.try_send(());
}

/// A follower asks where its epochs end in this leader's log.
pub(super) fn on_asks(shard: &Rc<Shard>, from: (Node, u32), asks: Vec<EpochEndAsk>) {
    let replicas = &shard.replicas;
    let mut answers = Vec::new();
    {
        let partitions = shard.partitions.borrow();
        let roles = replicas.roles.borrow();
        for ask in asks {
            let key = key_of(ask.partition);
            let (Some(Role::Leader(leading)), Some(log)) = (roles.get(&key), partitions.get(&key))
            else {
                continue;
            };
            // A leader of another epoch does not answer: the follower's
            // metadata or its own is behind, and it asks again.
            if leading.epoch != ask.current_epoch {
                continue;
            }
            let Some(cache) = epochs(log) else {
                continue;
            };
            answers.push(EpochEndAnswer {
                partition: ask.partition,
                asked: ask.epoch,
                end: cache
                    .end_of(ask.epoch, log.end_offset().0)
                    .map(|end| (end.epoch, end.end)),
                log_start: log.start_offset().0,
            });
        }
    }
    if !answers.is_empty() {
        let me = (shard.config.node_id, shard.id);
        replicas.send(me, from.0, from.1, &Frame::EpochEndAnswers(answers));
    }
}

/// Asks the controller (on shard 0) for the in-sync set `proposal` of
/// partition `key`, which this node leads in `epoch`. Unanswered: the
/// metadata says what became of it, and the leader proposes again.
fn propose(shard: &Rc<Shard>, key: PartitionKey, epoch: Epoch, proposal: InSyncProposal) {
    let record = MetadataRecord::InSyncAltered {
        topic_id: key.topic,
        partition: key.partition.0,
        leader: shard.config.node_id,
        leader_epoch: epoch,
        partition_epoch: proposal.partition_epoch,
        in_sync: proposal.in_sync.iter().copied().map(node_id).collect(),
    };
    tracing::info!(%key, epoch, in_sync = ?proposal.in_sync, "in-sync set change proposed");
    let task = move |shard: Rc<Shard>| {
        glommio::spawn_local(async move {
            if let Err(failure) = crate::controller::driver::propose(&shard, record).await {
                tracing::debug!(%failure, "in-sync set change not made");
            }
        })
        .detach();
    };
    if shard.id == 0 {
        task(shard.clone());
    } else if shard.peers[0]
        .try_send(ShardMessage::Run(Box::new(task)))
        .is_err()
    {
        tracing::debug!("in-sync set change not proposed: shard 0's inbox is full");
    }
}
