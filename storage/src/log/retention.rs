//! Deleting old segments: retention deletes whole sealed segments by age and
//! by total size, and those wholly below the log start (moved by
//! `Log::delete_records`, see `log_start`); the last segment never goes. The
//! log start moves to the first segment kept, unless it is past it already.
//! Reads below it are out of range. Producer snapshots below the first
//! segment kept go with the segments; the one at its base keeps the
//! producers of the deleted segments.

use std::{io, time::Duration};

use super::{segment::Segment, Shared, State};
use crate::Offset;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionOutcome {
    pub segments_deleted: usize,
    pub bytes_deleted: u64,
    pub log_start: Offset,
}

/// Deletes the oldest segments that are past `retention.ms`, beyond
/// `retention.bytes`, or wholly below the log start.
pub(super) async fn apply(shared: &Shared) -> io::Result<RetentionOutcome> {
    let (now_ms, retention_ms, retention_bytes) = {
        let state = shared.borrow();
        let config = &state.config;
        // `cleanup.policy=compact` alone: segments go only below the start.
        let delete = config.cleanup_policy.delete;
        (
            state.clock.now_ms(),
            config.retention_ms.filter(|_| delete),
            config.retention_bytes.filter(|_| delete),
        )
    };
    let doomed = |segment: &Segment, log_start: Offset, kept_bytes: u64| {
        let below_start = segment.next_offset <= log_start;
        let expired = retention_ms.is_some_and(|retention_ms| {
            segment
                .max_timestamp
                .is_none_or(|max| max < now_ms.saturating_sub(retention_ms as i64))
        });
        let oversized = retention_bytes.is_some_and(|max| kept_bytes - segment.bytes >= max);
        below_start || expired || oversized
    };
    delete_oldest(shared, "retention", doomed).await
}

/// Deletes the oldest segments wholly below the log start.
pub(super) async fn delete_below_start(shared: &Shared) -> io::Result<RetentionOutcome> {
    let doomed = |segment: &Segment, log_start: Offset, _| segment.next_offset <= log_start;
    delete_oldest(shared, "log start", doomed).await
}

/// Drops the cached batches that end below `log_start`.
pub(super) fn drop_cached_below(state: &mut State, log_start: Offset) {
    while let Some(batch) = state.cache.front() {
        if batch.last_offset() >= log_start {
            break;
        }
        assert!(
            batch.last_offset() < state.written_end,
            "a batch below the log start {log_start} is not written: {}",
            batch.base_offset()
        );
        state.cache_bytes -= batch.len();
        state.cache.pop_front();
    }
}

/// Deletes sealed segments, oldest first, while `doomed(segment, log start,
/// bytes of the log kept so far)` says so; stops at the first that stays,
/// so the log stays contiguous, and before the last. Moves the log start to
/// the first segment kept if it is below it.
async fn delete_oldest(
    shared: &Shared,
    why: &'static str,
    doomed: impl Fn(&Segment, Offset, u64) -> bool,
) -> io::Result<RetentionOutcome> {
    let (dir, removed, log_start, first_base, delay) = {
        let mut state = shared.borrow_mut();
        let state = &mut *state;
        if state.truncating || state.swapping {
            // A truncation decides which segments stay; the next pass
            // deletes what it leaves. A segment being swapped is left to
            // the next pass too.
            return Ok(RetentionOutcome {
                log_start: state.log_start,
                ..RetentionOutcome::default()
            });
        }
        let mut kept_bytes = state.size_bytes();
        let mut bases = Vec::new();
        // The last segment stays: the log's end is where it ends.
        let deletable = state.segments.len().saturating_sub(1);
        for segment in state.segments.values().take(deletable) {
            if !segment.sealed
                || segment.file.is_none()
                || !doomed(segment, state.log_start, kept_bytes)
            {
                break;
            }
            kept_bytes -= segment.bytes;
            bases.push(segment.base);
        }
        if bases.is_empty() {
            return Ok(RetentionOutcome {
                log_start: state.log_start,
                ..RetentionOutcome::default()
            });
        }
        let mut removed = Vec::new();
        for base in &bases {
            let segment = state.segments.remove(base).expect("doomed segment exists");
            removed.push((segment.base, segment.next_offset, segment.bytes));
        }
        let first_base = *state
            .segments
            .keys()
            .next()
            .expect("the last segment stays");
        let (_, last_removed_end, _) = removed.last().expect("a segment was removed");
        assert_eq!(
            *last_removed_end, first_base,
            "the segments kept do not follow those deleted"
        );
        let log_start = state.log_start.max(first_base);
        state.log_start = log_start;
        state.transactions.forget_below(first_base);
        let end = state.end;
        state.epochs.start_at(log_start, end);
        drop_cached_below(state, log_start);
        let delay = Duration::from_millis(state.config.file_delete_delay_ms);
        (state.dir.clone(), removed, log_start, first_base, delay)
    };

    let mut outcome = RetentionOutcome {
        log_start,
        ..RetentionOutcome::default()
    };
    for (base, _, bytes) in removed {
        // Renamed out of the way now, given back to the disk later and
        // slowly (readers may have the files open; see crate::deleter).
        super::segment::delete_segment_files(&dir, base, delay)?;
        outcome.segments_deleted += 1;
        outcome.bytes_deleted += bytes;
    }
    super::producer_snapshots::delete_below(&dir, first_base);
    super::segment::sync_dir(&dir).await?;
    tracing::info!(
        log = %dir.display(), segments = outcome.segments_deleted,
        bytes = outcome.bytes_deleted, %log_start, why, "deleted segments"
    );
    Ok(outcome)
}
