//! Truncation, for a follower whose log went further than its leader's
//! (KIP-101, KIP-279): [`truncate_to`] cuts the log back to the start of the
//! batch containing an offset, [`truncate_fully`] empties it to start over
//! elsewhere.
//!
//! # Order
//!
//! 1. New appends wait; what is queued is written and synced (under the
//!    `interval` policy too), so the flusher is idle and every end is the
//!    log end.
//! 2. The cut is found: the batch containing the offset, read from its
//!    segment's headers, its segment and byte position.
//! 3. The intent, [`TRUNCATION_NAME`] (format at [`TRUNCATION_MAGIC`]), is
//!    written to a temporary file, fsynced, renamed into place and the
//!    directory fsynced. From here the truncation happens, crash or not.
//! 4. The log's ends move back in memory, with the tail cache; the
//!    segments after the cut leave the log.
//! 5. The files are cut: the segments after the cut are deleted (renamed
//!    away, given back later, see `crate::deleter`), the segment of the cut
//!    is truncated to the cut (its file shrinks, so no stale batch past the
//!    cut is left for a recovery scan to find, preallocated or not) and
//!    synced, the producer snapshots past the cut are deleted, and the
//!    directory is synced.
//! 6. The segment of the cut is opened again as the active one, as recovery
//!    opens it (index hints rewritten first, so the scan is short); the
//!    producer state is rebuilt as on open, from the snapshots left and the
//!    log; the leader epochs lose their entries at or past the cut and
//!    their file is rewritten.
//! 7. The intent is removed and the directory synced; appends go on.
//!
//! A crash before 3 completes leaves the old log, and nothing was
//! acknowledged. After it, opening the log finds the intent and does 5
//! again before anything else (every step of it can be done twice), so the
//! log is the truncated one. A failure during 4 to 7 fences the log: the
//! files are in a state the next open completes.
//!
//! Emptying the log is the same with all segments and snapshots deleted, an
//! empty segment file created at the new start, the log start checkpoint
//! written with it and the leader epochs cleared.

use std::{
    collections::BTreeMap,
    future::poll_fn,
    io,
    path::{Path, PathBuf},
    task::Poll,
    time::Duration,
};

use super::{
    disk_errors::{fence, is_disk_full},
    leader_epochs::{self, LeaderEpochs},
    log_start, producer_snapshots,
    recovery::open_active,
    segment::{
        delete_segment_files, parse_segment_name, replace_file, segment_path, Segment, SegmentFile,
        ABORTED_SUFFIX, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX,
    },
    segment_files::persist_index_hints,
    LogFailure, LogOptions, OpenError, ReadError, Shared, TruncateError,
};
use crate::{
    batch::{BatchError, BatchHeader, BATCH_BYTES_MAX, BATCH_HEADER_BYTES},
    Offset,
};

/// The file of a partition directory that holds a truncation under way.
pub const TRUNCATION_NAME: &str = "truncation.intent";
/// The intent being written; one left behind by a crash is deleted on open
/// (the truncation it was for never began).
const TEMPORARY_NAME: &str = "truncation.intent.tmp";

/// The first bytes of a truncation intent. The format, little-endian:
///
/// ```text
///  0  magic         [u8; 4]  "SLTR"
///  4  crc           u32      CRC-32C of bytes [8, 40)
///  8  version       u16      1
/// 10  kind          u16      1 cut, 2 empty
/// 12  reserved      u32      zero
/// 16  offset        u64      cut: the new end; empty: the new start
/// 24  segment_base  u64      cut: the segment the cut falls in
/// 32  position      u64      cut: the cut's byte in that segment
/// ```
pub const TRUNCATION_MAGIC: [u8; 4] = *b"SLTR";
const VERSION: u16 = 1;
const INTENT_BYTES: usize = 40;
const KIND_CUT: u16 = 1;
const KIND_EMPTY: u16 = 2;

/// What a truncation does to the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intent {
    /// The log ends at `end`, which is byte `position` of the segment at
    /// `segment_base`.
    Cut {
        end: Offset,
        segment_base: Offset,
        position: u64,
    },
    /// The log is empty and starts at `start`.
    Empty { start: Offset },
}

impl Intent {
    fn encode(self) -> [u8; INTENT_BYTES] {
        let (kind, offset, segment_base, position) = match self {
            Intent::Cut {
                end,
                segment_base,
                position,
            } => (KIND_CUT, end.0, segment_base.0, position),
            Intent::Empty { start } => (KIND_EMPTY, start.0, 0, 0),
        };
        let mut out = [0; INTENT_BYTES];
        out[..4].copy_from_slice(&TRUNCATION_MAGIC);
        out[8..10].copy_from_slice(&VERSION.to_le_bytes());
        out[10..12].copy_from_slice(&kind.to_le_bytes());
        out[16..24].copy_from_slice(&offset.to_le_bytes());
        out[24..32].copy_from_slice(&segment_base.to_le_bytes());
        out[32..40].copy_from_slice(&position.to_le_bytes());
        let crc = crc32c::crc32c(&out[8..]);
        out[4..8].copy_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Result<Intent, String> {
        let bytes: &[u8; INTENT_BYTES] = bytes
            .try_into()
            .map_err(|_| format!("{} bytes, not {INTENT_BYTES}", bytes.len()))?;
        if bytes[..4] != TRUNCATION_MAGIC {
            return Err("not a truncation intent".into());
        }
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8"));
        let stored = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
        let computed = crc32c::crc32c(&bytes[8..]);
        if stored != computed {
            return Err(format!(
                "CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ));
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if version != VERSION {
            return Err(format!("unknown version {version}"));
        }
        match u16::from_le_bytes([bytes[10], bytes[11]]) {
            KIND_CUT => {
                let intent = Intent::Cut {
                    end: Offset(u64_at(16)),
                    segment_base: Offset(u64_at(24)),
                    position: u64_at(32),
                };
                match intent {
                    Intent::Cut {
                        end, segment_base, ..
                    } if end < segment_base => {
                        Err(format!("the cut {end} is below its segment {segment_base}"))
                    }
                    intent => Ok(intent),
                }
            }
            KIND_EMPTY => Ok(Intent::Empty {
                start: Offset(u64_at(16)),
            }),
            kind => Err(format!("unknown kind {kind}")),
        }
    }
}

/// Set while a truncation runs; cleared (and waiters woken) when it ends,
/// however it ends.
struct Truncating(Shared);

impl Drop for Truncating {
    fn drop(&mut self) {
        let mut state = self.0.borrow_mut();
        state.truncating = false;
        state.wake_waiters();
    }
}

/// Step 1: holds new appends and waits until everything queued is durable.
async fn begin(shared: &Shared) -> Result<Truncating, TruncateError> {
    poll_fn(|cx| {
        let mut state = shared.borrow_mut();
        if state.closing {
            return Poll::Ready(Err(TruncateError::Closed));
        }
        if state.truncating || state.swapping {
            state.waiters.push(cx.waker().clone());
            return Poll::Pending;
        }
        state.truncating = true;
        Poll::Ready(Ok(()))
    })
    .await?;
    let truncating = Truncating(shared.clone());
    poll_fn(|cx| {
        let mut state = shared.borrow_mut();
        if state.closing {
            return Poll::Ready(Err(TruncateError::Closed));
        }
        if let Some(failure) = &state.failure {
            return Poll::Ready(Err(TruncateError::Fenced(failure.clone())));
        }
        if let Some(message) = &state.disk_full {
            return Poll::Ready(Err(TruncateError::DiskFull {
                message: message.clone(),
            }));
        }
        if state.pending.is_empty() && state.durable_end == state.end {
            return Poll::Ready(Ok(()));
        }
        state.waiters.push(cx.waker().clone());
        state.ring_flusher();
        Poll::Pending
    })
    .await?;
    Ok(truncating)
}

pub(super) async fn truncate_to(shared: &Shared, offset: Offset) -> Result<Offset, TruncateError> {
    let truncating = begin(shared).await?;
    let (end, log_start) = {
        let state = shared.borrow();
        (state.end, state.log_start)
    };
    if offset >= end {
        return Ok(end);
    }
    if offset < log_start {
        return run(truncating, Intent::Empty { start: offset }).await;
    }
    let (segment_base, position, cut) = find_cut(shared, offset)
        .await
        .map_err(|source| TruncateError::Read { offset, source })?;
    if cut < log_start {
        // The batch straddles the start: nothing readable is left.
        return run(truncating, Intent::Empty { start: log_start }).await;
    }
    let intent = Intent::Cut {
        end: cut,
        segment_base,
        position,
    };
    run(truncating, intent).await
}

pub(super) async fn truncate_fully(
    shared: &Shared,
    start: Offset,
) -> Result<Offset, TruncateError> {
    let truncating = begin(shared).await?;
    run(truncating, Intent::Empty { start }).await
}

/// Steps 3 to 7, in a task of their own: a caller that stops waiting does
/// not stop a truncation half done.
async fn run(truncating: Truncating, intent: Intent) -> Result<Offset, TruncateError> {
    let shared = truncating.0.clone();
    glommio::spawn_local(async move {
        let done = cut(&shared, intent).await;
        drop(truncating);
        done
    })
    .detach()
    .await
    // `None`: the executor is going away with the task.
    .unwrap_or(Err(TruncateError::Closed))
}

/// Step 2: the segment, byte position and base offset of the batch that
/// contains `offset`, which is below the end and at or past the log start.
async fn find_cut(shared: &Shared, offset: Offset) -> Result<(Offset, u64, Offset), ReadError> {
    let (file, base, mut position, end_position) = {
        let state = shared.borrow();
        let (_, segment) = state
            .segments
            .range(..=offset)
            .next_back()
            .expect("an offset below the end is in a segment");
        if segment.base == offset {
            return Ok((segment.base, 0, offset));
        }
        (
            segment.file.clone().expect("a written segment has a file"),
            segment.base,
            segment.index.position_for(segment.relative(offset)),
            segment.written_bytes,
        )
    };
    let corrupt = |position, reason| ReadError::Corruption {
        segment: file.path.to_path_buf(),
        position,
        reason,
    };
    loop {
        if position + BATCH_HEADER_BYTES as u64 > end_position {
            let bytes = (end_position.saturating_sub(position)) as usize;
            return Err(corrupt(position, BatchError::TooShort { bytes }));
        }
        let read = file
            .read_at(position, BATCH_HEADER_BYTES)
            .await
            .map_err(|source| ReadError::Io {
                segment: file.path.to_path_buf(),
                source,
            })?;
        let header = BatchHeader::parse(&read).map_err(|reason| corrupt(position, reason))?;
        let length = u64::from(header.batch_bytes);
        if !(BATCH_HEADER_BYTES as u64..=BATCH_BYTES_MAX as u64).contains(&length)
            || position + length > end_position
        {
            let reason = BatchError::LengthMismatch {
                declared: length as usize,
                available: (end_position - position) as usize,
            };
            return Err(corrupt(position, reason));
        }
        if header.base_offset > offset.0 {
            let reason = BatchError::OffsetOutOfSequence {
                base_offset: header.base_offset,
                expected: offset.0,
            };
            return Err(corrupt(position, reason));
        }
        if header.next_offset() > offset.0 {
            return Ok((base, position, Offset(header.base_offset)));
        }
        position += length;
    }
}

/// Fences the log for a failure of `operation` on `path`.
fn failed(
    shared: &Shared,
    operation: &'static str,
    path: &Path,
    error: &io::Error,
) -> TruncateError {
    let failure = LogFailure::new(operation, path, error);
    fence(&mut shared.borrow_mut(), failure.clone());
    TruncateError::Fenced(failure)
}

/// Fences the log for a failure to open again what it cut.
fn failed_reopen(shared: &Shared, path: &Path, error: &OpenError) -> TruncateError {
    let failure = LogFailure {
        operation: "reopen",
        path: path.to_path_buf(),
        errno: None,
        message: error.to_string(),
    };
    fence(&mut shared.borrow_mut(), failure.clone());
    TruncateError::Fenced(failure)
}

/// Steps 3 to 7.
async fn cut(shared: &Shared, intent: Intent) -> Result<Offset, TruncateError> {
    let (dir, delay) = {
        let state = shared.borrow();
        let delay = Duration::from_millis(state.config.file_delete_delay_ms);
        (state.dir.clone(), delay)
    };
    let intent_path = dir.join(TRUNCATION_NAME);

    // 3: the intent, durable.
    let written = blocking({
        let dir = dir.clone();
        move || write_intent(&dir, intent)
    })
    .await;
    match written {
        Ok(()) => {}
        Err(IntentError::Write(error)) if is_disk_full(&error) => {
            return Err(TruncateError::DiskFull {
                message: format!("{}: {error}", intent_path.display()),
            });
        }
        Err(IntentError::Write(error)) => {
            return Err(failed(shared, "write", &intent_path, &error))
        }
        Err(IntentError::SyncDir(error)) => return Err(failed(shared, "fsync", &dir, &error)),
    }

    // 4: the log ends at the cut in memory.
    let closing = forget_in_memory(shared, intent);

    // 5: the files.
    let cut_result = blocking({
        let dir = dir.clone();
        move || cut_files(&dir, intent, delay)
    })
    .await;
    for file in closing {
        file.close().await;
    }
    if let Err(error) = cut_result {
        return Err(failed(shared, "truncate", &dir, &error));
    }

    // 6: the segment of the cut, the producers and the leader epochs.
    let end = reopen(shared, intent).await?;

    // 7: done.
    let removed = blocking({
        let dir = dir.clone();
        move || {
            std::fs::remove_file(dir.join(TRUNCATION_NAME))?;
            std::fs::File::open(&dir)?.sync_all()
        }
    })
    .await;
    if let Err(error) = removed {
        return Err(failed(shared, "remove", &intent_path, &error));
    }
    tracing::info!(log = %dir.display(), ?intent, "log truncated");
    Ok(end)
}

/// Runs `work` on the executor's blocking thread, so that the shard's other
/// partitions do not wait for file system calls and their syncs.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    glommio::executor().spawn_blocking(work).await
}

enum IntentError {
    Write(io::Error),
    SyncDir(io::Error),
}

fn write_intent(dir: &Path, intent: Intent) -> Result<(), IntentError> {
    replace_file(
        &dir.join(TRUNCATION_NAME),
        &dir.join(TEMPORARY_NAME),
        &intent.encode(),
    )
    .map_err(IntentError::Write)?;
    sync_dir_blocking(dir).map_err(IntentError::SyncDir)
}

fn sync_dir_blocking(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Step 4: the ends, the cache and the segments after the cut. Returns the
/// files of the segments that left, to close.
fn forget_in_memory(shared: &Shared, intent: Intent) -> Vec<SegmentFile> {
    let mut state = shared.borrow_mut();
    let state = &mut *state;
    let (end, doomed_from) = match intent {
        Intent::Cut {
            end,
            segment_base,
            position,
        } => {
            let first = *state
                .segments
                .keys()
                .next()
                .expect("a cut log has segments");
            let whole = position == 0 && segment_base != first;
            let doomed_from = if whole {
                segment_base
            } else {
                let segment = state
                    .segments
                    .get_mut(&segment_base)
                    .expect("the segment of the cut");
                let relative_end = segment.relative(end);
                segment.index.truncate(position, relative_end);
                segment.bytes = position;
                segment.written_bytes = position;
                segment.next_offset = end;
                // Its hint files are rewritten whole once the file is cut.
                segment.hint_files = None;
                segment.index.offsets_persisted = 0;
                segment.index.times_persisted = 0;
                segment.index_hints_stale = true;
                Offset(segment_base.0 + 1)
            };
            (end, doomed_from)
        }
        Intent::Empty { start } => {
            state.log_start = start;
            state.log_start_checkpoint = start;
            (start, Offset(0))
        }
    };
    state.end = end;
    state.written_end = end;
    state.durable_end = end;
    state.tail.clear();
    while let Some(batch) = state.cache.back() {
        if batch.base_offset() < end && matches!(intent, Intent::Cut { .. }) {
            break;
        }
        state.cache_bytes -= batch.len();
        state.cache.pop_back();
    }
    let doomed: Vec<Offset> = state
        .segments
        .range(doomed_from..)
        .map(|(&base, _)| base)
        .collect();
    let mut files = Vec::new();
    for base in doomed {
        let segment = state.segments.remove(&base).expect("listed above");
        files.extend(segment.file);
    }
    state.wake_waiters();
    files
}

/// Step 5 (and what opening does with an intent it finds): every step may
/// have been done before. Blocking.
fn cut_files(dir: &Path, intent: Intent, delay: Duration) -> io::Result<()> {
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        if let Some(base) = entry?.file_name().to_str().and_then(parse_segment_name) {
            bases.push(base);
        }
    }
    bases.sort();
    match intent {
        Intent::Cut {
            end,
            segment_base,
            position,
        } => {
            // Newest first: the segments left are a prefix of the log.
            for &base in bases.iter().rev().filter(|&&base| base > segment_base) {
                delete_segment_files(dir, base, delay)?;
            }
            let first = bases.first().copied();
            if bases.contains(&segment_base) {
                if position == 0 && Some(segment_base) != first {
                    delete_segment_files(dir, segment_base, delay)?;
                } else {
                    let path = segment_path(dir, segment_base, LOG_SUFFIX);
                    let file = std::fs::OpenOptions::new().write(true).open(&path)?;
                    if file.metadata()?.len() > position {
                        file.set_len(position)?;
                    }
                    file.sync_all()?;
                    cut_aborted(dir, segment_base, end)?;
                }
            }
            producer_snapshots::delete_past(dir, Some(end))?;
        }
        Intent::Empty { start } => {
            for &base in bases.iter().rev() {
                delete_segment_files(dir, base, delay)?;
            }
            producer_snapshots::delete_past(dir, None)?;
            for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX, ABORTED_SUFFIX] {
                remove_if_present(&segment_path(dir, start, suffix))?;
            }
            std::fs::File::create(segment_path(dir, start, LOG_SUFFIX))?.sync_all()?;
            log_start::write_checkpoint_blocking(dir, start)?;
            leader_epochs::write_blocking(dir, &LeaderEpochs::default().encode())?;
        }
    }
    sync_dir_blocking(dir)
}

/// The file of aborted transactions of the segment at `base` keeps only
/// the aborts whose markers are below `end`: those past it are gone with
/// their batches, and other batches will take their offsets. A file that
/// does not read is left for opening to find (and replay its segment).
fn cut_aborted(dir: &Path, base: Offset, end: Offset) -> io::Result<()> {
    let path = segment_path(dir, base, ABORTED_SUFFIX);
    match producer_snapshots::read_aborted(&path) {
        Ok(Some(mut aborted)) => {
            aborted.retain(|aborted| aborted.last_offset < end);
            producer_snapshots::write_aborted(dir, base, &aborted)
        }
        Ok(None) => Ok(()),
        Err(reason) => {
            tracing::warn!(file = %path.display(), %reason, "a file of aborted transactions does not read: left for opening to replay");
            Ok(())
        }
    }
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// A copy of what replaying headers needs of `segment`: its file, bounds
/// and (with `indexed`) its offset index, to start inside it.
fn for_headers(segment: &Segment, indexed: bool) -> Segment {
    let mut copy = Segment::new(segment.base, segment.created_ms);
    copy.next_offset = segment.next_offset;
    copy.bytes = segment.bytes;
    copy.written_bytes = segment.written_bytes;
    copy.file = segment.file.clone();
    if indexed {
        copy.index.offsets = segment.index.offsets.clone();
    }
    copy
}

/// Step 6.
async fn reopen(shared: &Shared, intent: Intent) -> Result<Offset, TruncateError> {
    let (dir, config, options) = {
        let state = shared.borrow();
        let options = LogOptions {
            clock: state.clock.clone(),
            faults: state.faults.clone(),
        };
        (state.dir.clone(), state.config.clone(), options)
    };
    let end = match intent {
        Intent::Cut { end, .. } => end,
        Intent::Empty { start } => start,
    };
    // The segment of the cut, or the empty one of an emptied log, becomes
    // the active one again, as recovery opens it. (A segment cut whole
    // leaves the one before it last, sealed: the next append rolls.)
    let active_base = {
        let mut state = shared.borrow_mut();
        let last = state.segments.keys().next_back().copied();
        match (intent, last) {
            (Intent::Cut { segment_base, .. }, Some(last)) if last == segment_base => {
                persist_index_hints(&mut state, segment_base);
                Some(segment_base)
            }
            (Intent::Cut { .. }, _) => None,
            (Intent::Empty { start }, _) => Some(start),
        }
    };
    if let Some(base) = active_base {
        let path = segment_path(&dir, base, LOG_SUFFIX);
        let active = open_active(&dir, base, &config, &options)
            .await
            .map_err(|error| failed_reopen(shared, &path, &error))?;
        if active.segment.next_offset != end {
            let error = io::Error::other(format!(
                "the segment ends at {} after the cut to {end}",
                active.segment.next_offset
            ));
            return Err(failed(shared, "reopen", &path, &error));
        }
        let previous = {
            let mut state = shared.borrow_mut();
            state.tail = active.tail;
            state.segments.insert(base, active.segment)
        };
        if let Some(file) = previous.and_then(|previous| previous.file) {
            file.close().await;
        }
    }

    // The producers as of the new end, as opening rebuilds them: the
    // newest snapshot at or below it, and the headers after.
    let (segments, first_base) = {
        let state = shared.borrow();
        let newest_snapshot = newest_snapshot_at_or_below(&dir, end);
        let segments: BTreeMap<Offset, Segment> = state
            .segments
            .iter()
            .map(|(&base, segment)| {
                let indexed = segment.next_offset > newest_snapshot;
                (base, for_headers(segment, indexed))
            })
            .collect();
        let first_base = segments.keys().next().copied().unwrap_or(end);
        (segments, first_base)
    };
    let (producers, transactions) = producer_snapshots::load(&dir, &segments, first_base, end)
        .await
        .map_err(|error| failed_reopen(shared, &dir, &error))?;
    {
        let mut state = shared.borrow_mut();
        state.producers = producers;
        state.transactions = transactions;
        match intent {
            Intent::Cut { end, .. } => state.epochs.truncate(end),
            // Written with the files.
            Intent::Empty { .. } => state.epochs = LeaderEpochs::default(),
        }
        state.epochs.dirty = matches!(intent, Intent::Cut { .. });
    }
    if let Err(error) = leader_epochs::write_if_changed(shared).await {
        let path = dir.join(leader_epochs::LEADER_EPOCHS_NAME);
        return Err(failed(shared, "write", &path, &error));
    }
    Ok(end)
}

/// The offset of the newest producer snapshot at or below `end`, or 0.
fn newest_snapshot_at_or_below(dir: &Path, end: Offset) -> Offset {
    producer_snapshots::snapshot_offsets(dir)
        .unwrap_or_default()
        .into_iter()
        .filter(|&offset| offset <= end)
        .max()
        .unwrap_or(Offset(0))
}

/// On open, before anything reads the files: completes a truncation that a
/// crash interrupted, if its intent is there.
pub(super) async fn complete_interrupted(dir: &Path, delay_ms: u64) -> Result<(), OpenError> {
    let path: PathBuf = dir.join(TRUNCATION_NAME);
    let io_error = |operation| {
        let path = path.clone();
        move |source| OpenError::Io {
            operation,
            path,
            source,
        }
    };
    remove_if_present(&dir.join(TEMPORARY_NAME)).map_err(io_error("delete"))?;
    let bytes = match std::fs::metadata(&path) {
        Ok(metadata) if metadata.len() != INTENT_BYTES as u64 => {
            return Err(OpenError::Truncation {
                path,
                reason: format!("{} bytes, not {INTENT_BYTES}", metadata.len()),
            });
        }
        Ok(_) => std::fs::read(&path).map_err(io_error("read"))?,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(io_error("stat")(error)),
    };
    let intent = Intent::decode(&bytes).map_err(|reason| OpenError::Truncation {
        path: path.clone(),
        reason,
    })?;
    tracing::warn!(log = %dir.display(), ?intent, "completing a truncation a crash interrupted");
    cut_files(dir, intent, Duration::from_millis(delay_ms)).map_err(io_error("truncate"))?;
    std::fs::remove_file(&path).map_err(io_error("remove"))?;
    super::segment::sync_dir(dir)
        .await
        .map_err(io_error("sync directory"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_read_back_and_damage_is_caught() {
        for intent in [
            Intent::Cut {
                end: Offset(1234),
                segment_base: Offset(1000),
                position: 77_000,
            },
            Intent::Empty { start: Offset(99) },
        ] {
            let bytes = intent.encode();
            assert_eq!(Intent::decode(&bytes), Ok(intent));
            for at in 0..INTENT_BYTES {
                let mut damaged = bytes;
                damaged[at] ^= 0x08;
                assert!(
                    Intent::decode(&damaged).is_err(),
                    "a flipped bit at byte {at} passed"
                );
            }
            assert!(Intent::decode(&bytes[..INTENT_BYTES - 1]).is_err());
        }
    }
}
