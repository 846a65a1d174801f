//! Appending: an idempotent producer's batch is checked, offsets and
//! positions are assigned at once, in memory, and the batch is queued for the
//! flusher; under the `always` policy the append then waits for its
//! completion. A duplicate is queued nowhere: it waits for the completion of
//! the batch it repeats.

use std::{
    cell::{Cell, RefCell},
    future::{poll_fn, Future},
    pin::Pin,
    rc::Rc,
    task::{Context, Poll, Waker},
};

use super::{
    producers::{ProducerAppend, ProducerBatch, Undo, Verdict},
    segment::Segment,
    transactions::TransactionUndo,
    AppendError, Appended, FlushPolicy, Shared, State, PENDING_BYTES_MAX,
};
use crate::{batch::Batch, Offset};

/// The outcome of one append, filled in by the flusher, awaited by the
/// append and by any retry of it that arrives meanwhile.
#[derive(Default)]
pub(crate) struct Completion {
    result: RefCell<Option<Result<(), AppendError>>>,
    /// The append's own task.
    waker: Cell<Option<Waker>>,
    /// The tasks of retries waiting on it (rare: allocated only for them).
    retry_wakers: RefCell<Vec<Waker>>,
}

impl Completion {
    pub(super) fn complete(&self, result: Result<(), AppendError>) {
        *self.result.borrow_mut() = Some(result);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
        for waker in self.retry_wakers.take() {
            waker.wake();
        }
    }
}

/// Waits for a completion: as the append it belongs to, or as a retry.
struct Completed {
    completion: Rc<Completion>,
    retry: bool,
}

impl Future for Completed {
    type Output = Result<(), AppendError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let completion = &self.completion;
        if let Some(result) = &*completion.result.borrow() {
            return Poll::Ready(result.clone());
        }
        if self.retry {
            let mut wakers = completion.retry_wakers.borrow_mut();
            if !wakers.iter().any(|waker| waker.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
        } else {
            completion.waker.set(Some(cx.waker().clone()));
        }
        Poll::Pending
    }
}

/// A batch with its offsets and position assigned, not yet written.
pub(crate) struct Pending {
    pub batch: Batch,
    pub segment_base: Offset,
    pub position: u64,
    /// Present under the `always` policy: the append waits on it.
    pub completion: Option<Rc<Completion>>,
    /// How to take the batch back out of the producer state, for a batch of
    /// an idempotent producer, until it is written.
    pub producer_undo: Option<Undo>,
    /// And out of the transactions, for a batch that opened or ended one.
    pub transaction_undo: Option<TransactionUndo>,
}

/// `verified`: `None` for a plain append; `Some(guard)` for
/// [`super::Log::append_to_transaction`].
pub(super) async fn append(
    shared: &Shared,
    batch: Batch,
    verified: Option<Option<u64>>,
) -> Result<Appended, AppendError> {
    wait_for_room(shared, batch.len()).await?;
    let (appended, completion) = assign(&mut shared.borrow_mut(), batch, verified)?;
    if let Some(completion) = completion {
        let retry = appended.duplicate;
        Completed { completion, retry }.await?;
    }
    Ok(appended)
}

/// A follower's append of a batch its leader assigned: see
/// [`super::Log::append_replicated`].
pub(super) async fn append_replicated(
    shared: &Shared,
    batch: Batch,
    gap: bool,
) -> Result<Appended, AppendError> {
    wait_for_room(shared, batch.len()).await?;
    let (appended, completion) = assign_replicated(&mut shared.borrow_mut(), batch, gap)?;
    if let Some(completion) = completion {
        Completed {
            completion,
            retry: false,
        }
        .await?;
    }
    Ok(appended)
}

/// Waits for queue space, and for a truncation in progress to finish: the
/// one place an append can wait before it is assigned offsets.
async fn wait_for_room(shared: &Shared, batch_bytes: usize) -> Result<(), AppendError> {
    poll_fn(|cx| {
        let mut state = shared.borrow_mut();
        if let Err(error) = refuse(&state) {
            return Poll::Ready(Err(error));
        }
        if state.truncating
            || (state.pending_bytes > 0 && state.pending_bytes + batch_bytes > PENDING_BYTES_MAX)
        {
            state.waiters.push(cx.waker().clone());
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    })
    .await
}

fn refuse(state: &State) -> Result<(), AppendError> {
    if state.closing {
        return Err(AppendError::Closed);
    }
    if let Some(failure) = &state.failure {
        return Err(AppendError::Fenced(failure.clone()));
    }
    if let Some(message) = &state.disk_full {
        return Err(AppendError::DiskFull {
            message: message.clone(),
        });
    }
    Ok(())
}

/// Checks an idempotent producer's batch; assigns offsets and the leader
/// epoch to `batch` and queues it.
fn assign(
    state: &mut State,
    batch: Batch,
    verified: Option<Option<u64>>,
) -> Result<(Appended, Option<Rc<Completion>>), AppendError> {
    if let Some(last_epoch) = state.epochs.last_epoch() {
        if state.leader_epoch < last_epoch {
            return Err(AppendError::StaleLeaderEpoch {
                epoch: state.leader_epoch,
                last_epoch,
            });
        }
    }
    let header = batch.header();
    let producer = ProducerAppend::of(&header);
    if let Some(producer) = &producer {
        if let Verdict::Duplicate(original) = state.producers.check(producer)? {
            return Ok(duplicate(state, original));
        }
    }
    if header.is_transactional() {
        let known_epoch = state.producers.epoch(header.producer_id);
        state.transactions.check(&header, known_epoch)?;
        if let Some(guard) = verified {
            check_verified(state, &header, guard)?;
        }
    }
    let base = state.end;
    let batch = batch.assign(base, state.leader_epoch);
    Ok(queue(state, batch, producer))
}

/// A transactional data batch of a producer without a transaction open
/// here at its epoch needs a guard that holds (see the `verification`
/// module).
fn check_verified(
    state: &mut State,
    header: &crate::batch::BatchHeader,
    guard: Option<u64>,
) -> Result<(), AppendError> {
    let producer_id = header.producer_id;
    if header.marker().is_some()
        || state.transactions.open_epoch(producer_id) == Some(header.producer_epoch)
    {
        return Ok(());
    }
    match guard {
        Some(guard) if state.verifications.holds(producer_id, guard) => Ok(()),
        Some(_) => Err(AppendError::NotInTransaction { producer_id }),
        None => Err(AppendError::Unverified { producer_id }),
    }
}

/// Checks that a replicated batch follows the log, in offsets and epochs,
/// and queues it as it is. Its producer is recorded unchecked: its leader
/// checked it, and a follower that refused it would no longer hold its
/// leader's log.
fn assign_replicated(
    state: &mut State,
    batch: Batch,
    gap: bool,
) -> Result<(Appended, Option<Rc<Completion>>), AppendError> {
    let header = batch.header();
    let base = Offset(header.base_offset);
    if base < state.end || (base > state.end && !gap) {
        return Err(AppendError::NotContiguous {
            expected: state.end,
            got: base,
        });
    }
    if let Some(last_epoch) = state.epochs.last_epoch() {
        if header.leader_epoch < last_epoch {
            return Err(AppendError::StaleLeaderEpoch {
                epoch: header.leader_epoch,
                last_epoch,
            });
        }
    }
    batch
        .check_assigned()
        .map_err(|reason| AppendError::InvalidBatch { reason })?;
    // Should this replica lead next, its own appends go on in the epoch of
    // the log, not below it.
    state.leader_epoch = state.leader_epoch.max(header.leader_epoch);
    if base > state.end {
        // The leader's log is compacted: what was between is gone there.
        // The log ends where the batch starts.
        tracing::debug!(log = %state.dir.display(), from = %state.end, to = %base, "a gap in a replicated log");
        state.end = base;
    }
    let producer = ProducerAppend::of(&header);
    Ok(queue(state, batch, producer))
}

/// Queues `batch`, whose offsets and epoch are assigned and follow the
/// How much before `segment_ms` a new segment rolls (Kafka's
/// `segment.jitter.ms`): an amount below `jitter_ms`, drawn per segment so
/// that partitions created together do not all roll at once.
fn roll_jitter_ms(jitter_ms: u64) -> u64 {
    if jitter_ms == 0 {
        return 0;
    }
    // Each `RandomState` is keyed afresh: a draw without a generator.
    std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), jitter_ms)
        % jitter_ms
}

/// log: gives it a position, rolling to a new segment when the active one
/// is full, old, or a roll was asked for; records its producer and epoch.
fn queue(
    state: &mut State,
    batch: Batch,
    producer: Option<ProducerAppend>,
) -> (Appended, Option<Rc<Completion>>) {
    let now_ms = state.clock.now_ms();
    let base = state.end;
    assert_eq!(batch.base_offset(), base, "a batch queued off the log end");
    let bytes = batch.len() as u64;
    let roll = match state.active() {
        None => true,
        Some(active) => {
            active.sealed
                || (active.bytes > 0
                    && (state.roll_requested
                        || active.bytes + bytes > state.config.segment_bytes_max
                        || state.config.segment_ms.is_some_and(|age_ms| {
                            let age_ms = age_ms.saturating_sub(active.roll_jitter_ms);
                            now_ms - active.created_ms >= age_ms as i64
                        })))
        }
    };
    if roll {
        state.roll_requested = false;
        let mut segment = Segment::new(base, now_ms);
        segment.roll_jitter_ms = roll_jitter_ms(state.config.segment_jitter_ms);
        state.segments.insert(base, segment);
    }
    let interval_bytes = state.config.index_interval_bytes;
    let active = state
        .segments
        .values_mut()
        .next_back()
        .expect("a segment exists");
    assert_eq!(active.next_offset, base, "segment end and log end disagree");
    let position = active.bytes;
    let running_max = active.max_timestamp.max(Some(batch.max_timestamp()));
    active.index.on_batch(
        active.relative(base),
        position,
        bytes,
        running_max,
        interval_bytes,
    );
    active.bytes += bytes;
    active.max_timestamp = running_max;
    let last_offset = batch.last_offset();
    active.next_offset = last_offset.next();
    let segment_base = active.base;
    state.end = last_offset.next();
    let mut producer_undo =
        producer.map(|producer| state.producers.record(&producer, base, last_offset));
    // Markers are transactional too: one flag says whether to look.
    let transaction_undo = if batch.is_transactional() {
        let header = batch.header();
        if header.marker().is_some() {
            producer_undo = state.producers.record_marker(
                header.producer_id,
                header.producer_epoch,
                last_offset,
            );
        }
        let visible_end = state.visible_end();
        state.transactions.replicated_to(visible_end);
        let undo = state.transactions.record(&header, base, last_offset);
        if undo.is_some() {
            // Opened or ended: a guard handed out before no longer holds.
            state.verifications.forget(header.producer_id);
        }
        undo
    } else {
        None
    };
    state.epochs.on_batch(batch.leader_epoch(), base);

    let completion = match state.config.flush {
        FlushPolicy::Always => Some(Rc::new(Completion::default())),
        FlushPolicy::Interval(_) => None,
    };
    state.pending_bytes += batch.len();
    state.cache_bytes += batch.len();
    state.cache.push_back(batch.clone());
    state.pending.push_back(Pending {
        batch,
        segment_base,
        position,
        completion: completion.clone(),
        producer_undo,
        transaction_undo,
    });
    state.ring_flusher();
    if completion.is_none() {
        // Under the interval policy the batch is visible now.
        state.wake_waiters();
    }
    let appended = Appended {
        base_offset: base,
        last_offset,
        duplicate: false,
    };
    (appended, completion)
}

/// The answer to a retry of `original`: its offsets, once it is durable. If
/// it is still queued or unsynced, the retry waits on its completion (and
/// fails with it); otherwise it is durable already, or was never waited on
/// (the `interval` policy).
fn duplicate(state: &State, original: ProducerBatch) -> (Appended, Option<Rc<Completion>>) {
    let at = state
        .pending
        .partition_point(|pending| pending.batch.base_offset() < original.base_offset);
    let completion = match state.pending.get(at) {
        Some(pending) if pending.batch.base_offset() == original.base_offset => {
            pending.completion.clone()
        }
        _ => {
            assert!(
                state.written_end > original.last_offset,
                "the original of a duplicate, at {}, is neither queued nor written (written end {})",
                original.base_offset,
                state.written_end
            );
            let end = original.last_offset.next();
            let at = state
                .unsynced
                .partition_point(|(unsynced_end, _)| *unsynced_end < end);
            match state.unsynced.get(at) {
                Some((unsynced_end, completion)) if *unsynced_end == end => {
                    Some(completion.clone())
                }
                _ => None,
            }
        }
    };
    let appended = Appended {
        base_offset: original.base_offset,
        last_offset: original.last_offset,
        duplicate: true,
    };
    (appended, completion)
}

pub(super) fn request_roll(shared: &Shared) {
    shared.borrow_mut().roll_requested = true;
}
