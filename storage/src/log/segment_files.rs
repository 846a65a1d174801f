//! The files of segments: creating and preallocating them, sealing them, and
//! their index files.

use std::io::{self, Write};

use glommio::io::OpenOptions;

use super::{
    disk_errors::{disk_full, fence, is_disk_full},
    flusher::sync,
    segment::{segment_path, SegmentFile, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX},
    LogFailure, Shared, State, PREALLOCATE_STEP_BYTES,
};
use crate::Offset;

/// Extends the segment's allocation, a step at a time, to cover a write that
/// ends at `write_end`. A full disk here fails the round before any byte of
/// it is written.
pub(super) async fn allocate_ahead(
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

/// Before the first write to segment `next`, seals the segment before it:
/// syncs its data, writes its sealed indexes, truncates it to its length.
pub(super) async fn seal_previous(shared: &Shared, next: Offset) -> Result<(), ()> {
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
    // On the executor's blocking thread: two small files written and
    // synced take about a millisecond, which the shard's other partitions
    // and connections need not wait for.
    let indexes = [(INDEX_SUFFIX, index_bytes), (TIME_INDEX_SUFFIX, time_bytes)]
        .map(|(suffix, bytes)| (segment_path(&dir, base, suffix), bytes));
    glommio::executor()
        .spawn_blocking(move || {
            for (path, bytes) in indexes {
                if let Err(error) = write_file_synced(&path, &bytes) {
                    // Indexes are rebuilt from the log when missing or bad:
                    // a failure here costs time at the next open, not data.
                    tracing::warn!(path = %path.display(), %error, "could not write a sealed index");
                    let _ = std::fs::remove_file(&path);
                }
            }
        })
        .await;
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

/// Renames the ready spare at `spare` to `path`, opens it and syncs the
/// directory. On error `path` does not exist.
async fn adopt_spare(
    spare: &std::path::Path,
    path: &std::path::Path,
    faults: Option<std::rc::Rc<super::IoFaults>>,
) -> io::Result<SegmentFile> {
    std::fs::rename(spare, path)?;
    let opened = async {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .dma_open(path)
            .await
            .map_err(super::segment::to_io_error)?;
        let file = SegmentFile::new(path.to_path_buf(), file, faults);
        let dir = path.parent().expect("a segment path has a directory");
        super::segment::sync_dir(dir).await?;
        Ok(file)
    }
    .await;
    if opened.is_err() {
        let _ = crate::deleter::delete(path, std::time::Duration::ZERO);
    }
    opened
}

fn write_file_synced(path: &std::path::Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_data()
}

/// Creates the file of segment `base` (by renaming the spare into place, if
/// one is ready), preallocates it and syncs the directory, so the segment
/// exists on disk before any offset in it is reported durable.
pub(super) async fn create_segment_file(shared: &Shared, base: Offset) -> Result<(), ()> {
    let (dir, preallocate_bytes, faults, spare) = {
        let mut state = shared.borrow_mut();
        let preallocate = state
            .config
            .preallocate
            .then_some(PREALLOCATE_STEP_BYTES.min(state.config.segment_bytes_max));
        let spare = state.spare.take_if(|spare| spare.is_ready());
        (state.dir.clone(), preallocate, state.faults.clone(), spare)
    };
    let path = segment_path(&dir, base, LOG_SUFFIX);
    for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
        let _ = std::fs::remove_file(segment_path(&dir, base, suffix));
    }
    let mut adopted = None;
    if let Some(spare) = spare {
        match adopt_spare(spare.path(), &path, faults.clone()).await {
            Ok(file) => {
                tracing::info!(path = %path.display(), "segment created from the spare");
                adopted = Some((file, spare.bytes));
            }
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "spare segment not used");
                spare.discard();
            }
        }
    }
    let created = async {
        if let Some(adopted) = adopted {
            return Ok(adopted);
        }
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
        Ok((file, preallocate_bytes.unwrap_or(0)))
    }
    .await;
    match created {
        Ok((file, allocated_bytes)) => {
            let mut state = shared.borrow_mut();
            let segment = state.segments.get_mut(&base).expect("segment to create");
            segment.file = Some(file);
            segment.allocated_bytes = allocated_bytes;
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
pub(super) fn persist_index_hints(state: &mut State, base: Offset) {
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
