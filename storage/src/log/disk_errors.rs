//! When the disk says no: a full disk undoes what was not written (or, under
//! `interval`, keeps it to retry), any other failure fences the log.

use std::io;

use super::{segment::SegmentFile, AppendError, FlushPolicy, LogFailure, Shared, State};
use crate::Offset;

pub(super) fn is_disk_full(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::WriteZero
    ) || error.raw_os_error() == Some(libc::ENOSPC)
        || error.raw_os_error() == Some(libc::EDQUOT)
}

/// A write or allocation met a full disk. Under `always` nothing pending was
/// acknowledged: undo it all, so the log ends where it ended before. Under
/// `interval` the pending batches were acknowledged: keep them and retry.
pub(super) fn disk_full(shared: &Shared, path: &std::path::Path, error: io::Error) {
    let mut state = shared.borrow_mut();
    let message = format!("{}: {error}", path.display());
    tracing::warn!(log = %state.dir.display(), %message, "disk full");
    // Spares hold space for data not yet written, deleted files space
    // being given back slowly: data comes first.
    super::spare::give_back_all();
    crate::deleter::hurry();
    if matches!(state.config.flush, FlushPolicy::Interval(_)) {
        state.disk_full = Some(message);
        return;
    }
    let failed = AppendError::DiskFull { message };
    let written_end = state.written_end;
    roll_back_to(&mut state, written_end, &failed);
}

/// Forgets everything from `end` (the written end) on: pending batches fail
/// with `error` and leave the producer state, segments are cut back, the
/// cache loses what was never written.
fn roll_back_to(state: &mut State, end: Offset, error: &AppendError) {
    assert_eq!(
        end, state.written_end,
        "only unwritten batches can be undone"
    );
    let mut producer_undos = Vec::new();
    let mut transaction_undos = Vec::new();
    for pending in state.pending.drain(..) {
        if let Some(completion) = pending.completion {
            completion.complete(Err(error.clone()));
        }
        producer_undos.extend(pending.producer_undo);
        transaction_undos.extend(pending.transaction_undo);
    }
    // Newest first: each undo restores the state its append found.
    for undo in producer_undos.iter().rev() {
        state.producers.undo(undo);
    }
    for undo in transaction_undos.iter().rev() {
        state.transactions.undo(undo);
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
    state.epochs.truncate(end);
    state.end = end;
    state.wake_waiters();
}

/// A write or sync failed: the file's state is unknown. Stop taking appends,
/// fail everything not durable, keep serving what is. The producer state is
/// left as it is: no append is checked against it any more, and the next
/// open rebuilds it from what the files hold.
pub(super) fn fence(state: &mut State, failure: LogFailure) {
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

/// After a write failed for lack of space, some of its bytes may be in the
/// file anyway, whole batches among them, which a recovery scan would take
/// for the log. The appends they belong to are being failed, so they must
/// not come back: cut the file at the last byte written for good. Cutting
/// needs no space; if it fails all the same, the log is fenced.
pub(super) async fn forget_unwritten(
    shared: &Shared,
    base: Offset,
    file: &SegmentFile,
) -> Result<(), ()> {
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
