//! The flusher: one task per log, the only writer of its files. Each round
//! writes everything queued for one segment in one aligned write (the partial
//! tail page first) and, under `always`, fdatasyncs once and completes every
//! append the write covered: appends that arrive meanwhile share the next
//! round (group commit).

use std::{
    future::poll_fn,
    io,
    task::Poll,
    time::{Duration, Instant},
};

use super::{
    disk_errors::{disk_full, fence, forget_unwritten, is_disk_full},
    leader_epochs, producer_snapshots,
    segment::SegmentFile,
    segment_files::{allocate_ahead, create_segment_file, persist_index_hints, seal_previous},
    slow_io, spare, FlushPolicy, LogFailure, Shared, State, FLUSH_BYTES_MAX, PAGE_BYTES,
};
use crate::Offset;

/// How long the flusher waits before it tries again to write batches that
/// were acknowledged (interval policy) but met a full disk.
const DISK_FULL_RETRY: Duration = Duration::from_millis(100);

/// What the flusher should do next.
enum Work {
    Write,
    Sync,
    RetryAfterDiskFull,
    /// Closing while acknowledged batches cannot be written: fence and stop.
    GiveUp(String),
    Wait(Option<Duration>),
    /// The log has been idle for long: its spare goes.
    GiveBackSpare,
    Finish,
}

fn next_work(state: &State) -> Work {
    let unsynced = state.written_end > state.durable_end;
    if state.failure.is_some() {
        return if state.closing {
            Work::Finish
        } else {
            Work::Wait(None)
        };
    }
    if let Some(message) = &state.disk_full {
        if state.closing {
            return Work::GiveUp(format!(
                "closing with {} acknowledged bytes unwritten: {message}",
                state.pending_bytes
            ));
        }
        return Work::RetryAfterDiskFull;
    }
    if !state.pending.is_empty() {
        return Work::Write;
    }
    if unsynced {
        return match state.config.flush {
            FlushPolicy::Always => Work::Sync,
            _ if state.closing || state.truncating => Work::Sync,
            FlushPolicy::Interval(interval) => {
                let due_ms = state.last_sync_ms + interval.as_millis() as i64;
                let now_ms = state.clock.now_ms();
                if now_ms >= due_ms {
                    Work::Sync
                } else {
                    Work::Wait(Some(Duration::from_millis((due_ms - now_ms) as u64)))
                }
            }
        };
    }
    if state.closing {
        return Work::Finish;
    }
    match spare::idle_deadline_ms(state) {
        None => Work::Wait(None),
        Some(deadline_ms) => {
            let now_ms = state.clock.now_ms();
            if now_ms >= deadline_ms {
                Work::GiveBackSpare
            } else {
                Work::Wait(Some(Duration::from_millis((deadline_ms - now_ms) as u64)))
            }
        }
    }
}

/// The flusher: one task per log, the only writer of its files.
pub(super) async fn run_flusher(shared: Shared) {
    loop {
        let work = next_work(&shared.borrow());
        match work {
            Work::Write => write_round(&shared).await,
            Work::Sync => sync(&shared).await,
            Work::RetryAfterDiskFull => {
                glommio::timer::sleep(DISK_FULL_RETRY).await;
                write_round(&shared).await;
            }
            Work::GiveUp(message) => {
                let mut state = shared.borrow_mut();
                let path = state.dir.clone();
                let error = io::Error::new(io::ErrorKind::StorageFull, message);
                fence(&mut state, LogFailure::new("write", &path, &error));
            }
            Work::Wait(timeout) => wait_for_ring(&shared, timeout).await,
            Work::GiveBackSpare => spare::give_back_idle(&mut shared.borrow_mut()),
            Work::Finish => {
                finish(&shared).await;
                return;
            }
        }
    }
}

async fn wait_for_ring(shared: &Shared, timeout: Option<Duration>) {
    let rung = poll_fn(|cx| {
        let mut state = shared.borrow_mut();
        if state.flusher_rung {
            state.flusher_rung = false;
            return Poll::Ready(());
        }
        state.flusher_waker = Some(cx.waker().clone());
        Poll::Pending
    });
    match timeout {
        None => rung.await,
        Some(timeout) => futures_lite::future::or(rung, glommio::timer::sleep(timeout)).await,
    }
}

/// Writes the pending batches of one segment (up to `FLUSH_BYTES_MAX`) in
/// one aligned write, the partial tail page first. Under `always`, syncs.
async fn write_round(shared: &Shared) {
    let segment_base = match shared.borrow().pending.front() {
        Some(pending) => pending.segment_base,
        None => return,
    };

    let needs_file = shared.borrow().segments[&segment_base].file.is_none();
    if needs_file {
        let began = Instant::now();
        if seal_previous(shared, segment_base).await.is_err() {
            return;
        }
        slow_io::note(&mut shared.borrow_mut(), "seal", began.elapsed());
        let began = Instant::now();
        producer_snapshots::write_at_roll(shared, segment_base).await;
        let created = create_segment_file(shared, segment_base).await;
        slow_io::note(&mut shared.borrow_mut(), "new segment", began.elapsed());
        if created.is_err() {
            return;
        }
    }

    // A new leader epoch reaches the checkpoint before its first batch
    // reaches the segment, so that every batch on disk has its entry. Until
    // no epoch is left unwritten: appends go on during the write, and the
    // batches are gathered without an await after the last check.
    while shared.borrow().epochs.dirty {
        if let Err(error) = leader_epochs::write_if_changed(shared).await {
            let path = shared.borrow().dir.join(leader_epochs::LEADER_EPOCHS_NAME);
            // A full disk is met as by a segment write: nothing of the
            // round was written.
            if is_disk_full(&error) {
                disk_full(shared, &path, error);
            } else {
                fence(
                    &mut shared.borrow_mut(),
                    LogFailure::new("write", &path, &error),
                );
            }
            return;
        }
    }

    // Gather the batches and build the buffer (no borrow across awaits).
    let (file, buffer, write_at, count, written_bytes, new_end, new_tail) = {
        let state = shared.borrow();
        let segment = &state.segments[&segment_base];
        let file = segment.file.clone().expect("segment file created");
        let mut count = 0;
        let mut bytes = 0usize;
        for pending in &state.pending {
            if pending.segment_base != segment_base
                || (count > 0 && bytes + pending.batch.len() > FLUSH_BYTES_MAX)
            {
                break;
            }
            assert_eq!(
                pending.position,
                segment.written_bytes + bytes as u64,
                "pending batch out of place"
            );
            bytes += pending.batch.len();
            count += 1;
        }
        let tail = &state.tail;
        assert_eq!(
            tail.len() as u64,
            segment.written_bytes % PAGE_BYTES as u64,
            "tail page out of step"
        );
        let write_at = segment.written_bytes - tail.len() as u64;
        let total = tail.len() + bytes;
        let mut buffer = file.alloc(total.div_ceil(PAGE_BYTES) * PAGE_BYTES);
        let out = buffer.as_bytes_mut();
        out[..tail.len()].copy_from_slice(tail);
        let mut at = tail.len();
        let mut new_end = state.written_end;
        for pending in state.pending.iter().take(count) {
            let batch = pending.batch.as_bytes();
            out[at..at + batch.len()].copy_from_slice(batch);
            at += batch.len();
            new_end = pending.batch.last_offset().next();
        }
        out[at..].fill(0);
        let new_tail = out[total - total % PAGE_BYTES..total].to_vec();
        let written_bytes = segment.written_bytes + bytes as u64;
        (
            file,
            buffer,
            write_at,
            count,
            written_bytes,
            new_end,
            new_tail,
        )
    };

    let write_end = write_at + buffer.len() as u64;
    if allocate_ahead(shared, segment_base, &file, write_end)
        .await
        .is_err()
    {
        return;
    }
    let began = Instant::now();
    let result = file.write(buffer, write_at).await;
    slow_io::note(&mut shared.borrow_mut(), "write", began.elapsed());
    match result {
        Ok(()) => {
            let policy = {
                let mut state = shared.borrow_mut();
                written(&mut state, segment_base, count, written_bytes, new_end);
                state.tail = new_tail;
                persist_index_hints(&mut state, segment_base);
                spare::after_write(&mut state);
                state.config.flush
            };
            if policy == FlushPolicy::Always {
                sync(shared).await;
            }
        }
        Err(error) if is_disk_full(&error) => {
            if shared.borrow().config.flush == FlushPolicy::Always
                && forget_unwritten(shared, segment_base, &file).await.is_err()
            {
                return;
            }
            disk_full(shared, &file.path, error)
        }
        Err(error) => fence(
            &mut shared.borrow_mut(),
            LogFailure::new("write", &file.path, &error),
        ),
    }
}

/// Book-keeping after `count` pending batches were written.
fn written(
    state: &mut State,
    segment_base: Offset,
    count: usize,
    written_bytes: u64,
    new_end: Offset,
) {
    let mut last_max = None;
    for _ in 0..count {
        let pending = state.pending.pop_front().expect("counted pending batch");
        state.pending_bytes -= pending.batch.len();
        last_max = last_max.max(Some(pending.batch.max_timestamp()));
        if let Some(completion) = pending.completion {
            state
                .unsynced
                .push_back((pending.batch.last_offset().next(), completion));
        }
    }
    let segment = state
        .segments
        .get_mut(&segment_base)
        .expect("segment written");
    segment.written_bytes = written_bytes;
    segment.written_max_timestamp = segment.written_max_timestamp.max(last_max);
    assert!(
        new_end > state.written_end,
        "written end went back: {new_end} <= {}",
        state.written_end
    );
    state.written_end = new_end;
    state.disk_full = None;
    if let Some(hook) = state.on_written.clone() {
        hook();
    }

    evict_cache(state);
    state.wake_waiters();
}

/// Drops written batches from the front of the cache beyond its budget.
fn evict_cache(state: &mut State) {
    while state.cache_bytes > state.config.tail_cache_bytes_max {
        match state.cache.front() {
            Some(batch) if batch.last_offset() < state.written_end => {
                state.cache_bytes -= batch.len();
                state.cache.pop_front();
            }
            _ => break,
        }
    }
}

pub(super) async fn sync(shared: &Shared) {
    let (file, synced_end) = {
        let state = shared.borrow();
        let file = state
            .segments
            .values()
            .rev()
            .find_map(|segment| segment.file.clone())
            .expect("written data has a file");
        (file, state.written_end)
    };
    let began = Instant::now();
    let synced = file.fdatasync().await;
    slow_io::note(&mut shared.borrow_mut(), "fdatasync", began.elapsed());
    match synced {
        Ok(()) => {
            let mut state = shared.borrow_mut();
            state.durable_end = state.durable_end.max(synced_end);
            state.last_sync_ms = state.clock.now_ms();
            while let Some((end, _)) = state.unsynced.front() {
                if *end > synced_end {
                    break;
                }
                let (_, completion) = state.unsynced.pop_front().expect("front exists");
                completion.complete(Ok(()));
            }
            state.wake_waiters();
        }
        Err(error) => fence(
            &mut shared.borrow_mut(),
            LogFailure::new("fdatasync", &file.path, &error),
        ),
    }
}

/// The flusher's last act on close: the active segment's index hints are
/// brought up to date and the producer state is snapshot, so the next open
/// scans little.
async fn finish(shared: &Shared) {
    let spare = shared.borrow_mut().spare.take();
    if let Some(spare) = spare {
        spare.remove().await;
    }
    finish_hints(shared);
    producer_snapshots::write_on_close(shared).await;
    if shared.borrow().failure.is_none() {
        if let Err(error) = leader_epochs::write_if_changed(shared).await {
            // Opening reconciles the file with the log: a stale one costs a
            // rebuild, not data.
            let dir = shared.borrow().dir.clone();
            tracing::warn!(log = %dir.display(), %error, "could not write the leader epochs on close");
        }
    }
    // Close the files now rather than when glommio next runs its reactor,
    // which may be never if the executor ends: open descriptors would keep
    // deleted segments' space and block unmounts.
    let files: Vec<SegmentFile> = shared
        .borrow_mut()
        .segments
        .values_mut()
        .filter_map(|segment| segment.file.take())
        .collect();
    for file in files {
        file.close().await;
    }
}

fn finish_hints(shared: &Shared) {
    let mut state = shared.borrow_mut();
    if let Some(base) = state.segments.keys().next_back().copied() {
        if state.segments[&base].file.is_some() {
            persist_index_hints(&mut state, base);
        }
        state
            .segments
            .get_mut(&base)
            .expect("segment exists")
            .hint_files = None;
    }
    state.wake_waiters();
}
