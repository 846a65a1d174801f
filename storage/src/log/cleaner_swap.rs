//! Swapping a cleaned segment in for the one it was cleaned from, so that a
//! crash at any point leaves one of the two whole, and completing or
//! discarding on open a swap a crash interrupted.
//!
//! The cleaned segment `<base>.log.cleaned` is written and fsynced by the
//! cleaner's thread. Then, on the shard:
//!
//! 1. `<base>.log.cleaned` is renamed `<base>.log.swap`, and the directory
//!    fsynced: the point of no return. Before it, a crash leaves the old
//!    segment and a `.cleaned` file that the next open removes; after it,
//!    the next open completes the swap.
//! 2. The segment's index files are removed (an index left from the old
//!    segment must never describe the new one).
//! 3. The old `<base>.log` is handed to the deleter (renamed
//!    `*.deleted`, its space given back after `file.delete.delay.ms`:
//!    readers that have it open finish reading it).
//! 4. `<base>.log.swap` is renamed `<base>.log`, the new indexes written,
//!    the directory fsynced.
//!
//! [`complete_interrupted`], at open, removes every `.cleaned` file and, for
//! every `.swap` file, does steps 2 to 4. The segment keeps its base offset
//! and its name, so the producer snapshots and the segments around it are
//! untouched.
//!
//! While a swap is under way (`State::swapping`), retention deletes nothing
//! and truncations and closes wait: none of them then finds a segment
//! between its two files.

use std::{future::poll_fn, io, path::Path, task::Poll};

use glommio::io::OpenOptions;

use super::{
    cleaner::{Cleaned, CLEANED_SUFFIX, SWAP_SUFFIX},
    segment::{
        segment_path, sync_dir, to_io_error, SegmentFile, INDEX_SUFFIX, LOG_SUFFIX,
        TIME_INDEX_SUFFIX,
    },
    Shared,
};
use crate::Offset;

use super::cleaner::CompactError;

/// Clears `swapping` (and wakes the waiters) however the swap ends.
struct Swapping(Shared);

impl Drop for Swapping {
    fn drop(&mut self) {
        let mut state = self.0.borrow_mut();
        state.swapping = false;
        state.wake_waiters();
    }
}

/// Swaps `cleaned` in for the segment whose file is `old`. `Ok(false)`
/// when that segment is gone (retention, a truncation) or the log is
/// closing: the cleaned file is removed and nothing changes.
pub(super) async fn swap(
    shared: &Shared,
    old: &SegmentFile,
    cleaned: Cleaned,
) -> Result<bool, CompactError> {
    let dir = shared.borrow().dir.clone();
    let base = cleaned.base;
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CompactError::Io { path, source }
    };
    // Wait for a truncation to end; then hold retention, truncations and
    // closes off.
    let current = poll_fn(|cx| {
        let mut state = shared.borrow_mut();
        if state.truncating {
            state.waiters.push(cx.waker().clone());
            return Poll::Pending;
        }
        let current = !state.closing
            && state.failure.is_none()
            && state.segments.get(&base).is_some_and(|segment| {
                segment.sealed
                    && segment
                        .file
                        .as_ref()
                        .is_some_and(|file| std::rc::Rc::ptr_eq(&file.path, &old.path))
            });
        if current {
            state.swapping = true;
        }
        Poll::Ready(current)
    })
    .await;
    if !current {
        let _ = std::fs::remove_file(&cleaned.path);
        return Ok(false);
    }
    let swapping = Swapping(shared.clone());
    let log_path = segment_path(&dir, base, LOG_SUFFIX);
    let swap_path = segment_path(&dir, base, SWAP_SUFFIX);
    let faults = shared.borrow().faults.clone();
    if let Some(faults) = &faults {
        faults
            .before_swap_step(SwapStep::Commit)
            .map_err(io_error(&swap_path))?;
    }
    // 1. The point of no return.
    if let Err(source) = std::fs::rename(&cleaned.path, &swap_path) {
        let _ = std::fs::remove_file(&cleaned.path);
        return Err(CompactError::Io {
            path: swap_path,
            source,
        });
    }
    sync_dir(&dir).await.map_err(io_error(&dir))?;
    let file = OpenOptions::new()
        .read(true)
        .dma_open(&swap_path)
        .await
        .map_err(to_io_error)
        .map_err(io_error(&swap_path))?;
    let file = SegmentFile::new(log_path.clone(), file, faults.clone());
    if let Some(faults) = &faults {
        faults
            .before_swap_step(SwapStep::Replace)
            .map_err(io_error(&log_path))?;
    }
    // 2 to 4, with nothing in between on this shard.
    let delay = std::time::Duration::from_millis(shared.borrow().config.file_delete_delay_ms);
    replace(&dir, base, delay).map_err(io_error(&log_path))?;
    let (offsets, times) = {
        let mut state = shared.borrow_mut();
        let state = &mut *state;
        let segment = state
            .segments
            .get_mut(&base)
            .expect("a segment being swapped stays");
        segment.file = Some(file);
        segment.bytes = cleaned.bytes;
        segment.written_bytes = cleaned.bytes;
        segment.allocated_bytes = cleaned.bytes;
        segment.index = cleaned.index;
        segment.max_timestamp = cleaned.max_timestamp;
        segment.written_max_timestamp = cleaned.max_timestamp;
        let next_offset = segment.next_offset;
        let offsets = segment.index.encode_sealed_offsets(cleaned.bytes);
        let times = segment.index.encode_sealed_times(cleaned.bytes);
        // Cached batches of the segment are the old ones: read anew.
        if state
            .cache
            .front()
            .is_some_and(|front| front.base_offset() < next_offset)
        {
            super::retention::drop_cached_below(state, next_offset);
        }
        (offsets, times)
    };
    if let Some(faults) = &faults {
        faults
            .before_swap_step(SwapStep::Indexes)
            .map_err(io_error(&log_path))?;
    }
    for (suffix, bytes) in [(INDEX_SUFFIX, offsets), (TIME_INDEX_SUFFIX, times)] {
        let path = segment_path(&dir, base, suffix);
        if let Err(error) = std::fs::write(&path, bytes) {
            // Rebuilt from the segment at the next open.
            tracing::warn!(path = %path.display(), %error, "could not write a cleaned segment's index");
            let _ = std::fs::remove_file(&path);
        }
    }
    sync_dir(&dir).await.map_err(io_error(&dir))?;
    drop(swapping);
    Ok(true)
}

/// Steps 2 to 4 of a swap whose `.swap` file is in place.
fn replace(dir: &Path, base: Offset, delay: std::time::Duration) -> io::Result<()> {
    for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
        match std::fs::remove_file(segment_path(dir, base, suffix)) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
            _ => {}
        }
    }
    let log_path = segment_path(dir, base, LOG_SUFFIX);
    match crate::deleter::delete(&log_path, delay) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    std::fs::rename(segment_path(dir, base, SWAP_SUFFIX), log_path)
}

/// At open, before the segments are listed: removes the `.cleaned` files
/// of passes a crash interrupted before their point of no return, and
/// completes the swaps it interrupted after it.
pub(super) async fn complete_interrupted(dir: &Path) -> io::Result<()> {
    let mut changed = false;
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(&format!(".{CLEANED_SUFFIX}")) {
            if parse_base(stem).is_some() {
                tracing::info!(log = %dir.display(), name, "removing a segment whose cleaning was interrupted");
                std::fs::remove_file(dir.join(name))?;
                changed = true;
            }
        } else if let Some(stem) = name.strip_suffix(&format!(".{SWAP_SUFFIX}")) {
            if let Some(base) = parse_base(stem) {
                tracing::info!(log = %dir.display(), name, "completing the swap of a cleaned segment");
                replace(dir, base, std::time::Duration::ZERO)?;
                changed = true;
            }
        }
    }
    if changed {
        sync_dir(dir).await?;
    }
    Ok(())
}

fn parse_base(stem: &str) -> Option<Offset> {
    super::segment::parse_segment_name(&format!("{stem}.log"))
}

/// The steps of a swap a test can make fail (see `IoFaults`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapStep {
    /// Before the cleaned file is renamed `.swap`.
    Commit,
    /// After the point of no return, before the old file goes.
    Replace,
    /// After the new file is in place, before its indexes are written.
    Indexes,
}
