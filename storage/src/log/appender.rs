//! Appending: offsets are assigned at once; the flusher writes and syncs in
//! rounds (group commit), rolls and seals segments, and handles failures.

use std::{
    cell::{Cell, RefCell},
    future::{poll_fn, Future},
    io::{self, Write},
    pin::Pin,
    rc::Rc,
    task::{Context, Poll, Waker},
    time::Duration,
};

use glommio::io::OpenOptions;

use super::{
    segment::{segment_path, Segment, SegmentFile, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX},
    AppendError, Appended, FlushPolicy, LogFailure, Shared, State, FLUSH_BYTES_MAX, PAGE_BYTES,
    PENDING_BYTES_MAX, PREALLOCATE_STEP_BYTES,
};
use crate::{batch::Batch, Offset};

/// How long the flusher waits before it tries again to write batches that
/// were acknowledged (interval policy) but met a full disk.
const DISK_FULL_RETRY: Duration = Duration::from_millis(100);

/// The outcome of one append, filled in by the flusher.
#[derive(Default)]
pub(crate) struct Completion {
    result: RefCell<Option<Result<(), AppendError>>>,
    waker: Cell<Option<Waker>>,
}

impl Completion {
    fn complete(&self, result: Result<(), AppendError>) {
        *self.result.borrow_mut() = Some(result);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

struct Completed(Rc<Completion>);

impl Future for Completed {
    type Output = Result<(), AppendError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.0.result.borrow_mut().take() {
            Some(result) => Poll::Ready(result),
            None => {
                self.0.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        }
    }
}

/// A batch with its offsets and position assigned, not yet written.
pub(crate) struct Pending {
    pub batch: Batch,
    pub segment_base: Offset,
    pub position: u64,
    /// Present under the `always` policy: the append waits on it.
    pub completion: Option<Rc<Completion>>,
}

pub(super) async fn append(shared: &Shared, batch: Batch) -> Result<Appended, AppendError> {
    // Wait for queue space first: the one place an append can wait before
    // it is assigned offsets.
    poll_fn(|cx| {
        let mut state = shared.borrow_mut();
        if let Err(error) = refuse(&state) {
            return Poll::Ready(Err(error));
        }
        if state.pending_bytes > 0 && state.pending_bytes + batch.len() > PENDING_BYTES_MAX {
            state.waiters.push(cx.waker().clone());
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    })
    .await?;

    let (appended, completion) = assign(&mut shared.borrow_mut(), batch);
    if let Some(completion) = completion {
        Completed(completion).await?;
    }
    Ok(appended)
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

/// Assigns offsets and a position to `batch`, rolling to a new segment when
/// the active one is full, old, or a roll was asked for; queues it.
fn assign(state: &mut State, batch: Batch) -> (Appended, Option<Rc<Completion>>) {
    let now_ms = state.clock.now_ms();
    let base = state.end;
    let batch = batch.assign(base, state.leader_epoch);
    let bytes = batch.len() as u64;
    let roll = match state.active() {
        None => true,
        Some(active) => {
            active.sealed
                || (active.bytes > 0
                    && (state.roll_requested
                        || active.bytes + bytes > state.config.segment_bytes_max
                        || state
                            .config
                            .segment_ms
                            .is_some_and(|age_ms| now_ms - active.created_ms >= age_ms as i64)))
        }
    };
    if roll {
        state.roll_requested = false;
        state.segments.insert(base, Segment::new(base, now_ms));
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
    });
    state.ring_flusher();
    if completion.is_none() {
        // Under the interval policy the batch is visible now.
        state.wake_waiters();
    }
    let appended = Appended {
        base_offset: base,
        last_offset,
    };
    (appended, completion)
}

pub(super) fn request_roll(shared: &Shared) {
    shared.borrow_mut().roll_requested = true;
}

/// What the flusher should do next.
enum Work {
    Write,
    Sync,
    RetryAfterDiskFull,
    /// Closing while acknowledged batches cannot be written: fence and stop.
    GiveUp(String),
    Wait(Option<Duration>),
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
            _ if state.closing => Work::Sync,
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
        Work::Finish
    } else {
        Work::Wait(None)
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
        if seal_previous(shared, segment_base).await.is_err() {
            return;
        }
        if create_segment_file(shared, segment_base).await.is_err() {
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
    let result = file.write(buffer, write_at).await;
    match result {
        Ok(()) => {
            let policy = {
                let mut state = shared.borrow_mut();
                written(&mut state, segment_base, count, written_bytes, new_end);
                state.tail = new_tail;
                persist_index_hints(&mut state, segment_base);
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

/// Extends the segment's allocation, a step at a time, to cover a write that
/// ends at `write_end`. A full disk here fails the round before any byte of
/// it is written.
async fn allocate_ahead(
    shared: &Shared,
    base: Offset,
    file: &SegmentFile,
    write_end: u64,
) -> Result<(), ()> {
    let target = {
        let state = shared.borrow();
        let allocated = state.segments[&base].allocated_bytes;
        if !state.config.preallocate || write_end <= allocated {
            return Ok(());
        }
        // A step at a time, but never past the segment's size (unless one
        // batch alone is larger).
        let step_end = write_end.div_ceil(PREALLOCATE_STEP_BYTES) * PREALLOCATE_STEP_BYTES;
        step_end.min(state.config.segment_bytes_max.max(write_end))
    };
    match file.pre_allocate(target).await {
        Ok(()) => {
            let mut state = shared.borrow_mut();
            state
                .segments
                .get_mut(&base)
                .expect("segment exists")
                .allocated_bytes = target;
            Ok(())
        }
        Err(error) if is_disk_full(&error) => {
            disk_full(shared, &file.path, error);
            Err(())
        }
        Err(error) if error.raw_os_error() == Some(libc::EOPNOTSUPP) => {
            // The file system cannot preallocate: write without it.
            tracing::info!(path = %file.path.display(), "no preallocation on this file system");
            shared.borrow_mut().config.preallocate = false;
            Ok(())
        }
        Err(error) => {
            fence(
                &mut shared.borrow_mut(),
                LogFailure::new("fallocate", &file.path, &error),
            );
            Err(())
        }
    }
}

/// After a write failed for lack of space, some of its bytes may be in the
/// file anyway, whole batches among them, which a recovery scan would take
/// for the log. The appends they belong to are being failed, so they must
/// not come back: cut the file at the last byte written for good. Cutting
/// needs no space; if it fails all the same, the log is fenced.
async fn forget_unwritten(shared: &Shared, base: Offset, file: &SegmentFile) -> Result<(), ()> {
    let written_bytes = shared.borrow().segments[&base].written_bytes;
    let cut = async {
        file.truncate(written_bytes).await?;
        file.fdatasync().await
    }
    .await;
    match cut {
        Ok(()) => {
            let mut state = shared.borrow_mut();
            state
                .segments
                .get_mut(&base)
                .expect("segment exists")
                .allocated_bytes = written_bytes;
            Ok(())
        }
        Err(error) => {
            fence(
                &mut shared.borrow_mut(),
                LogFailure::new("truncate", &file.path, &error),
            );
            Err(())
        }
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

async fn sync(shared: &Shared) {
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
    match file.fdatasync().await {
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

fn is_disk_full(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::WriteZero
    ) || error.raw_os_error() == Some(libc::ENOSPC)
        || error.raw_os_error() == Some(libc::EDQUOT)
}

/// A write or allocation met a full disk. Under `always` nothing pending was
/// acknowledged: undo it all, so the log ends where it ended before. Under
/// `interval` the pending batches were acknowledged: keep them and retry.
fn disk_full(shared: &Shared, path: &std::path::Path, error: io::Error) {
    let mut state = shared.borrow_mut();
    let message = format!("{}: {error}", path.display());
    tracing::warn!(log = %state.dir.display(), %message, "disk full");
    if matches!(state.config.flush, FlushPolicy::Interval(_)) {
        state.disk_full = Some(message);
        return;
    }
    let failed = AppendError::DiskFull { message };
    let written_end = state.written_end;
    roll_back_to(&mut state, written_end, &failed);
}

/// Forgets everything from `end` (the written end) on: pending batches fail
/// with `error`, segments are cut back, the cache loses what was never
/// written.
fn roll_back_to(state: &mut State, end: Offset, error: &AppendError) {
    assert_eq!(
        end, state.written_end,
        "only unwritten batches can be undone"
    );
    for pending in state.pending.drain(..) {
        if let Some(completion) = pending.completion {
            completion.complete(Err(error.clone()));
        }
    }
    state.pending_bytes = 0;
    while let Some((unsynced_end, _)) = state.unsynced.back() {
        if *unsynced_end <= end {
            break;
        }
        let (_, completion) = state.unsynced.pop_back().expect("back exists");
        completion.complete(Err(error.clone()));
    }
    let doomed: Vec<Offset> = state
        .segments
        .range(end..)
        .filter(|(_, segment)| segment.written_bytes == 0)
        .map(|(base, _)| *base)
        .collect();
    for base in doomed {
        if let Some(segment) = state.segments.remove(&base) {
            if let Some(file) = segment.file {
                // Created but never written: remove it, as it was never used.
                let _ = std::fs::remove_file(&*file.path);
            }
        }
    }
    if let Some(active) = state.segments.values_mut().next_back() {
        if active.next_offset > end {
            let relative_end = active.relative(end);
            active.bytes = active.written_bytes;
            active.next_offset = end;
            active.max_timestamp = active.written_max_timestamp;
            active.index.truncate(active.written_bytes, relative_end);
            active.index.offsets_persisted = 0;
            active.index.times_persisted = 0;
            active.index_hints_stale = true;
        }
    }
    while let Some(batch) = state.cache.back() {
        if batch.base_offset() < end {
            break;
        }
        state.cache_bytes -= batch.len();
        state.cache.pop_back();
    }
    state.end = end;
    state.wake_waiters();
}

/// A write or sync failed: the file's state is unknown. Stop taking appends,
/// fail everything not durable, keep serving what is.
fn fence(state: &mut State, failure: LogFailure) {
    tracing::error!(log = %state.dir.display(), %failure, "log fenced");
    state.failure = Some(failure.clone());
    let error = AppendError::Fenced(failure);
    for pending in state.pending.drain(..) {
        if let Some(completion) = pending.completion {
            completion.complete(Err(error.clone()));
        }
    }
    state.pending_bytes = 0;
    for (_, completion) in state.unsynced.drain(..) {
        completion.complete(Err(error.clone()));
    }
    // Readers see only what is durable from now on (`State::visible_end`);
    // the cache keeps only that.
    let durable_end = state.durable_end;
    while let Some(batch) = state.cache.back() {
        if batch.base_offset() < durable_end {
            break;
        }
        state.cache_bytes -= batch.len();
        state.cache.pop_back();
    }
    state.wake_waiters();
}

/// Before the first write to segment `next`, seals the segment before it:
/// syncs its data, writes its sealed indexes, truncates it to its length.
async fn seal_previous(shared: &Shared, next: Offset) -> Result<(), ()> {
    let (file, bytes, index_bytes, time_bytes, dir, base, unsynced) = {
        let mut state = shared.borrow_mut();
        let state = &mut *state;
        let Some((base, segment)) = state.segments.range_mut(..next).next_back() else {
            return Ok(());
        };
        if segment.sealed {
            return Ok(());
        }
        let Some(file) = segment.file.clone() else {
            return Ok(());
        };
        assert_eq!(
            segment.bytes, segment.written_bytes,
            "sealing a segment with pending batches"
        );
        segment.hint_files = None;
        if let Some(max) = segment.max_timestamp {
            let last = segment.relative(Offset(segment.next_offset.0 - 1));
            segment.index.seal_times(max, last);
        }
        (
            file,
            segment.bytes,
            segment.index.encode_sealed_offsets(segment.bytes),
            segment.index.encode_sealed_times(segment.bytes),
            state.dir.clone(),
            *base,
            state.written_end > state.durable_end,
        )
    };
    if unsynced {
        sync(shared).await;
        if shared.borrow().failure.is_some() {
            return Err(());
        }
    }
    for (suffix, bytes) in [(INDEX_SUFFIX, index_bytes), (TIME_INDEX_SUFFIX, time_bytes)] {
        let path = segment_path(&dir, base, suffix);
        if let Err(error) = write_file_synced(&path, &bytes) {
            // Indexes are rebuilt from the log when missing or bad: a failure
            // here costs time at the next open, not data.
            tracing::warn!(path = %path.display(), %error, "could not write a sealed index");
            let _ = std::fs::remove_file(&path);
        }
    }
    let truncated = async {
        file.truncate(bytes).await?;
        file.fdatasync().await
    }
    .await;
    if let Err(error) = truncated {
        fence(
            &mut shared.borrow_mut(),
            LogFailure::new("truncate", &file.path, &error),
        );
        return Err(());
    }
    let mut state = shared.borrow_mut();
    let segment = state
        .segments
        .get_mut(&base)
        .expect("sealed segment exists");
    segment.sealed = true;
    state.tail.clear();
    Ok(())
}

fn write_file_synced(path: &std::path::Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_data()
}

/// Creates the file of segment `base`, preallocates it and syncs the
/// directory, so the segment exists on disk before any offset in it is
/// reported durable.
async fn create_segment_file(shared: &Shared, base: Offset) -> Result<(), ()> {
    let (dir, preallocate_bytes, faults) = {
        let state = shared.borrow();
        let preallocate = state
            .config
            .preallocate
            .then_some(PREALLOCATE_STEP_BYTES.min(state.config.segment_bytes_max));
        (state.dir.clone(), preallocate, state.faults.clone())
    };
    let path = segment_path(&dir, base, LOG_SUFFIX);
    for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
        let _ = std::fs::remove_file(segment_path(&dir, base, suffix));
    }
    let created = async {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .dma_open(&path)
            .await
            .map_err(super::segment::to_io_error)?;
        let file = SegmentFile::new(path.clone(), file, faults);
        if let Some(bytes) = preallocate_bytes {
            if let Err(error) = file.pre_allocate(bytes).await {
                let _ = std::fs::remove_file(&path);
                return Err(error);
            }
        }
        super::segment::sync_dir(&dir).await?;
        Ok(file)
    }
    .await;
    match created {
        Ok(file) => {
            let mut state = shared.borrow_mut();
            let segment = state.segments.get_mut(&base).expect("segment to create");
            segment.file = Some(file);
            segment.allocated_bytes = preallocate_bytes.unwrap_or(0);
            state.tail.clear();
            Ok(())
        }
        Err(error) if is_disk_full(&error) => {
            disk_full(shared, &path, error);
            Err(())
        }
        Err(error) => {
            fence(
                &mut shared.borrow_mut(),
                LogFailure::new("create", &path, &error),
            );
            Err(())
        }
    }
}

/// Appends the active segment's new index entries to its hint files. They
/// are not synced: recovery checks them and rebuilds what is wrong.
fn persist_index_hints(state: &mut State, base: Offset) {
    let dir = state.dir.clone();
    let segment = state.segments.get_mut(&base).expect("segment exists");
    let rewrite = std::mem::take(&mut segment.index_hints_stale);
    let offsets = segment.index.encode_offset_hints();
    let times = segment.index.encode_time_hints();
    if offsets.is_empty() && times.is_empty() && !rewrite {
        return;
    }
    let written = (|| -> io::Result<()> {
        if segment.hint_files.is_none() {
            let open = |suffix| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(segment_path(&dir, base, suffix))
            };
            segment.hint_files = Some([open(INDEX_SUFFIX)?, open(TIME_INDEX_SUFFIX)?]);
        }
        let files = segment.hint_files.as_mut().expect("opened above");
        for (file, bytes) in files.iter_mut().zip([&offsets, &times]) {
            if rewrite {
                file.set_len(0)?;
            }
            file.write_all(bytes)?;
        }
        Ok(())
    })();
    if let Err(error) = written {
        tracing::debug!(log = %dir.display(), %error, "index hints not written");
        segment.hint_files = None;
    }
    segment.index.offsets_persisted = segment.index.offsets.len();
    segment.index.times_persisted = segment.index.times.len();
}

/// The flusher's last act on close: the active segment's index hints are
/// brought up to date so the next open scans little.
async fn finish(shared: &Shared) {
    finish_hints(shared);
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
