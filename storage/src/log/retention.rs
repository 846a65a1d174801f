//! Retention: whole sealed segments are deleted by age and by total size;
//! the active segment never is. The log start moves to the first segment
//! kept, and reads below it are out of range. Producer snapshots below the
//! new start go with the segments; the one at the start keeps the producers
//! of the deleted segments.

use std::io;

use super::{
    segment::{segment_path, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX},
    Shared,
};
use crate::Offset;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionOutcome {
    pub segments_deleted: usize,
    pub bytes_deleted: u64,
    pub log_start: Offset,
}

pub(super) async fn apply(shared: &Shared) -> io::Result<RetentionOutcome> {
    let (dir, doomed, log_start) = {
        let mut state = shared.borrow_mut();
        let now_ms = state.clock.now_ms();
        let retention_ms = state.config.retention_ms;
        let retention_bytes = state.config.retention_bytes;
        let mut total = state.size_bytes();
        let mut doomed = Vec::new();
        // Oldest first; stop at the first segment that stays, so the log
        // stays contiguous.
        for segment in state.segments.values() {
            if !segment.sealed || segment.file.is_none() {
                break;
            }
            let expired = retention_ms.is_some_and(|retention_ms| {
                segment
                    .max_timestamp
                    .is_none_or(|max| max < now_ms.saturating_sub(retention_ms as i64))
            });
            let oversized = retention_bytes.is_some_and(|max| total - segment.bytes >= max);
            if !(expired || oversized) {
                break;
            }
            total -= segment.bytes;
            doomed.push(segment.base);
        }
        if doomed.is_empty() {
            return Ok(RetentionOutcome {
                log_start: state.log_start,
                ..RetentionOutcome::default()
            });
        }
        let mut removed = Vec::new();
        for base in &doomed {
            let segment = state.segments.remove(base).expect("doomed segment exists");
            removed.push((segment.base, segment.bytes));
        }
        let log_start = *state
            .segments
            .keys()
            .next()
            .expect("the active segment stays");
        assert!(log_start > state.log_start, "log start went back");
        state.log_start = log_start;
        state.cache_bytes -= {
            let mut dropped = 0;
            while state
                .cache
                .front()
                .is_some_and(|batch| batch.base_offset() < log_start)
            {
                dropped += state.cache.pop_front().expect("front exists").len();
            }
            dropped
        };
        (state.dir.clone(), removed, log_start)
    };

    let mut outcome = RetentionOutcome {
        log_start,
        ..RetentionOutcome::default()
    };
    for (base, bytes) in doomed {
        for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            match std::fs::remove_file(segment_path(&dir, base, suffix)) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(error),
            }
        }
        outcome.segments_deleted += 1;
        outcome.bytes_deleted += bytes;
    }
    super::producer_snapshots::delete_below(&dir, log_start);
    super::segment::sync_dir(&dir).await?;
    tracing::info!(
        log = %dir.display(), segments = outcome.segments_deleted,
        bytes = outcome.bytes_deleted, %log_start, "retention deleted segments"
    );
    Ok(outcome)
}
