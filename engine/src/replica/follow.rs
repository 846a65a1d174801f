//! A follower's side: pushes appended as the leader wrote them and
//! acknowledged once stored, questions of where an epoch ends, and the
//! truncations their answers call for.

use std::{future::Future, pin::Pin, rc::Rc, task::Poll};

use sluice_replication::partition::{
    epochs::EpochEnd,
    follower::{Answered, FollowerStep, PushVerdict},
    leader::Node,
    wire::{Ack, AckStatus, EpochEndAnswer, EpochEndAsk, Frame, PartitionRef, Push},
};
use sluice_storage::{
    batch::Batch,
    log::{AppendError, Appended, Log},
    Offset,
};

use super::{epochs, key_of, state::partition_ref, Following, Role};
use crate::{partition::PartitionKey, shard::Shard};

type Appending = Pin<Box<dyn Future<Output = Result<Appended, AppendError>>>>;

/// What one partition's push became.
enum Taken {
    /// Acknowledge now, with this status.
    Answer(PartitionRef, u32, AckStatus),
    /// Acknowledge once these appends are stored.
    Appending(PartitionRef, u32, Vec<Appending>),
    /// The log starts again at this offset first.
    StartAgain(PartitionKey, u32, u64),
}

/// A frame of pushes from `from`: each partition's batches are queued on
/// its log in the frame's order (before the next frame is looked at, so
/// the next push finds the log end it follows on), and one frame of
/// acknowledgements goes back once every one is stored.
pub(super) async fn on_pushes(shard: &Rc<Shard>, from: (Node, u32), pushes: Vec<Push>) {
    let mut taken = Vec::new();
    {
        let partitions = shard.partitions.borrow();
        let mut roles = shard.replicas.roles.borrow_mut();
        for push in pushes {
            let key = key_of(push.partition);
            let (Some(Role::Follower(following)), Some(log)) =
                (roles.get_mut(&key), partitions.get(&key))
            else {
                continue;
            };
            if following.state.leader() != from.0 || following.busy {
                continue;
            }
            if let Some(item) = take(&key, following, log, push) {
                if matches!(item, Taken::StartAgain(..)) {
                    following.busy = true;
                }
                taken.push(item);
            }
        }
    }
    if taken.is_empty() {
        return;
    }
    // Queue every append now: each one's first poll assigns it its place
    // in the log (or finds it refused).
    let mut appends: Vec<(PartitionRef, u32, Vec<Appending>)> = Vec::new();
    let mut answers = Vec::new();
    let mut restarts = Vec::new();
    for item in taken {
        match item {
            Taken::Answer(partition, epoch, status) => answers.push((partition, epoch, status)),
            Taken::Appending(partition, epoch, mut futures) => {
                std::future::poll_fn(|cx| {
                    for future in futures.iter_mut() {
                        let _ = future.as_mut().poll(cx);
                    }
                    Poll::Ready(())
                })
                .await;
                appends.push((partition, epoch, futures));
            }
            Taken::StartAgain(key, epoch, start) => restarts.push((key, epoch, start)),
        }
    }
    let shard = shard.clone();
    glommio::spawn_local(async move {
        for (partition, epoch, futures) in appends {
            let mut status = AckStatus::Ok;
            for future in futures {
                if let Err(error) = future.await {
                    tracing::warn!(partition = partition.partition, %error, "a pushed batch not appended");
                    status = AckStatus::NotContiguous;
                }
            }
            answers.push((partition, epoch, status));
        }
        for (key, epoch, start) in restarts {
            start_again(&shard, key, start).await;
            answers.push((partition_ref(key), epoch, AckStatus::NotContiguous));
        }
        acknowledge(&shard, from, answers);
    })
    .detach();
}

/// What to do with one partition's push, under the roles' borrow.
fn take(key: &PartitionKey, following: &mut Following, log: &Rc<Log>, push: Push) -> Option<Taken> {
    let epoch = push.leader_epoch;
    let log_end = log.end_offset().0;
    if let Some(start) = following
        .state
        .start_again_at(epoch, push.log_start, log_end)
    {
        return Some(Taken::StartAgain(*key, epoch, start));
    }
    let batches = if push.batches.is_empty() {
        Vec::new()
    } else {
        match Batch::validate_run(push.batches, Offset(push.base_offset)) {
            Ok(batches) => batches,
            Err(error) => {
                tracing::warn!(%key, %error, "pushed batches refused");
                return None;
            }
        }
    };
    let end = batches
        .last()
        .map_or(push.base_offset, |batch| batch.last_offset().0 + 1);
    follow_log_start(key, following, log, epoch, push.log_start);
    match following.state.push(epoch, push.base_offset, end, log_end) {
        PushVerdict::Append => {
            let futures: Vec<Appending> = batches
                .into_iter()
                .map(|batch| {
                    let log = log.clone();
                    // The push starts at this log's end; its batches
                    // may have the gaps of a compacted leader log.
                    Box::pin(async move { log.append_replicated_after_gap(batch).await })
                        as Appending
                })
                .collect();
            following
                .state
                .leader_high_watermark(epoch, push.high_watermark, end);
            log.set_high_watermark(Some(Offset(following.state.high_watermark())));
            Some(Taken::Appending(push.partition, epoch, futures))
        }
        PushVerdict::Held => {
            following
                .state
                .leader_high_watermark(epoch, push.high_watermark, log_end);
            log.set_high_watermark(Some(Offset(following.state.high_watermark())));
            Some(Taken::Answer(push.partition, epoch, AckStatus::Ok))
        }
        PushVerdict::Refuse(status) => Some(Taken::Answer(push.partition, epoch, status)),
        PushVerdict::Ignore => None,
    }
}

/// Moves the follower's log start up to its leader's (DeleteRecords and
/// retention on the leader), as far as the high watermark it shows, so
/// that a failover does not bring deleted records back.
fn follow_log_start(
    key: &PartitionKey,
    following: &Following,
    log: &Rc<Log>,
    epoch: u32,
    leader_log_start: u64,
) {
    let before = leader_log_start.min(following.state.high_watermark());
    let current = epoch == following.state.leader_epoch() && following.state.following();
    if !current || before <= log.start_offset().0 {
        return;
    }
    let (key, log) = (*key, log.clone());
    glommio::spawn_local(async move {
        if let Err(error) = log.delete_records(Offset(before)).await {
            tracing::debug!(%key, %error, "the follower's log start not moved");
        }
    })
    .detach();
}

/// Sends the leader `to` one frame of acknowledgements, each with its
/// partition's log end and stored end as they are now.
fn acknowledge(shard: &Rc<Shard>, to: (Node, u32), answers: Vec<(PartitionRef, u32, AckStatus)>) {
    let acks: Vec<Ack> = {
        let partitions = shard.partitions.borrow();
        answers
            .into_iter()
            .filter_map(|(partition, leader_epoch, status)| {
                let log = partitions.get(&key_of(partition))?;
                Some(Ack {
                    partition,
                    leader_epoch,
                    status,
                    log_end: log.end_offset().0,
                    durable_end: log.stored_end().0,
                })
            })
            .collect()
    };
    if !acks.is_empty() {
        let me = (shard.config.node_id, shard.id);
        shard.replicas.send(me, to.0, to.1, &Frame::Ack(acks));
    }
}

/// Empties the log of `key` and starts it at `start` (its leader's log
/// start), then lets it take pushes again.
async fn start_again(shard: &Rc<Shard>, key: PartitionKey, start: u64) {
    let log = shard.partitions.borrow().get(&key).cloned();
    if let Some(log) = log {
        tracing::info!(%key, start, "the follower's log starts again at its leader's log start");
        if let Err(error) = log.truncate_fully_and_start_at(Offset(start)).await {
            tracing::error!(%key, %error, "the follower's log did not start again");
        }
    }
    if let Some(Role::Follower(following)) = shard.replicas.roles.borrow_mut().get_mut(&key) {
        following.busy = false;
    }
}

/// The leader's answers to where epochs end: each follower still asking
/// that question truncates where its log parts from the leader's, and
/// asks again or follows.
pub(super) fn on_answers(shard: &Rc<Shard>, from: (Node, u32), answers: Vec<EpochEndAnswer>) {
    for answer in answers {
        let key = key_of(answer.partition);
        let log = shard.partitions.borrow().get(&key).cloned();
        let Some(log) = log else {
            continue;
        };
        let Some(cache) = epochs(&log) else {
            continue;
        };
        let outcome = {
            let mut roles = shard.replicas.roles.borrow_mut();
            let Some(Role::Follower(following)) = roles.get_mut(&key) else {
                continue;
            };
            if following.state.leader() != from.0 || following.busy {
                continue;
            }
            let epoch = following.state.leader_epoch();
            let end = answer.end.map(|(epoch, end)| EpochEnd { epoch, end });
            let outcome =
                following
                    .state
                    .answered(epoch, answer.asked, end, &cache, log.end_offset().0);
            match outcome {
                Answered::Ignored => continue,
                Answered::Follow => following.asked_ms = None,
                Answered::TruncateTo(_) | Answered::Restart => following.busy = true,
            }
            (outcome, epoch)
        };
        let shard = shard.clone();
        let log_start = answer.log_start;
        glommio::spawn_local(async move {
            reconcile(&shard, key, log, from, outcome, log_start).await;
        })
        .detach();
    }
}

/// Carries out an answer: truncates (or starts the log again), then asks
/// the next question or tells the leader where its log ends, so that the
/// pushes start there.
async fn reconcile(
    shard: &Rc<Shard>,
    key: PartitionKey,
    log: Rc<Log>,
    leader: (Node, u32),
    (outcome, epoch): (Answered, u32),
    leader_log_start: u64,
) {
    let cut = match outcome {
        Answered::TruncateTo(end) => {
            tracing::info!(%key, end, "the follower truncates where its epoch ends in its leader's log");
            log.truncate_to(Offset(end)).await.map(|_| ())
        }
        Answered::Restart => {
            tracing::info!(%key, start = leader_log_start, "the follower shares no epoch with its leader: it starts again");
            log.truncate_fully_and_start_at(Offset(leader_log_start))
                .await
                .map(|_| ())
        }
        Answered::Follow | Answered::Ignored => Ok(()),
    };
    if let Err(error) = cut {
        tracing::error!(%key, %error, "the follower's log was not truncated");
    }
    let next = {
        let mut roles = shard.replicas.roles.borrow_mut();
        let Some(Role::Follower(following)) = roles.get_mut(&key) else {
            return;
        };
        following.busy = false;
        if following.state.leader_epoch() != epoch {
            return;
        }
        match (&outcome, epochs(&log)) {
            (Answered::Follow, _) => None,
            (_, Some(cache)) => match following.state.next_step(&cache) {
                FollowerStep::Ask(asked) => {
                    following.asked_ms = Some(shard.replicas.now_ms());
                    Some(asked)
                }
                FollowerStep::Follow => {
                    following.asked_ms = None;
                    None
                }
            },
            (_, None) => None,
        }
    };
    match next {
        Some(asked) => shard.replicas.send_asks(
            (shard.config.node_id, shard.id),
            vec![(
                leader.0,
                leader.1,
                EpochEndAsk {
                    partition: partition_ref(key),
                    current_epoch: epoch,
                    epoch: asked,
                },
            )],
        ),
        None => acknowledge(
            shard,
            leader,
            vec![(partition_ref(key), epoch, AckStatus::NotContiguous)],
        ),
    }
}
