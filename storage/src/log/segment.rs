//! One segment of a partition log: its files and its in-memory state.
//!
//! A segment is `<base offset, 20 digits>.log` with `.index` and `.timeindex`
//! beside it. Batches are stored back to back from position 0. The active
//! (last) segment is written through O_DIRECT, into a spare filled with
//! zeros ahead (the `spare` module) or growing the file (preallocated, if the
//! log is configured so); a sealed segment is synced, truncated to its exact
//! length and never written again.

use std::{
    io,
    path::{Path, PathBuf},
    rc::Rc,
};

use glommio::io::{DmaBuffer, DmaFile, ReadResult};

use super::{index::SegmentIndex, injected_faults::IoFaults};
use crate::Offset;

pub const LOG_SUFFIX: &str = "log";
pub const INDEX_SUFFIX: &str = "index";
pub const TIME_INDEX_SUFFIX: &str = "timeindex";
/// A segment's file of aborted transactions: those whose abort markers the
/// segment holds (see `producer_snapshots`).
pub const ABORTED_SUFFIX: &str = "aborted";

/// Deletes the files of the segment at `base` (its log, its indexes, its
/// aborts) through the deleter, after `delay`; a file already gone is
/// fine. Blocking.
pub fn delete_segment_files(
    dir: &Path,
    base: Offset,
    delay: std::time::Duration,
) -> std::io::Result<()> {
    for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX, ABORTED_SUFFIX] {
        match crate::deleter::delete(&segment_path(dir, base, suffix), delay) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
            _ => {}
        }
    }
    Ok(())
}

/// The file of a segment with base offset `base`, with `suffix`.
pub fn segment_path(dir: &Path, base: Offset, suffix: &str) -> PathBuf {
    dir.join(format!("{:020}.{suffix}", base.0))
}

/// The base offset named by a segment's `.log` file name, if it is one.
pub fn parse_segment_name(name: &str) -> Option<Offset> {
    let stem = name.strip_suffix(".log")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok().map(Offset)
}

/// The in-memory state of one segment. One per segment, on the partition's
/// owner shard.
pub struct Segment {
    pub base: Offset,
    /// The offset one past the last batch assigned to this segment.
    pub next_offset: Offset,
    /// Bytes assigned to this segment (written or still pending).
    pub bytes: u64,
    /// Bytes written to the file (the rest are pending in memory).
    pub written_bytes: u64,
    /// The largest batch max timestamp in the segment, if it has batches.
    pub max_timestamp: Option<i64>,
    /// `max_timestamp` as of `written_bytes`, to roll back to.
    pub written_max_timestamp: Option<i64>,
    /// Bytes of the file allocated so far (preallocation runs ahead of
    /// `written_bytes`).
    pub allocated_bytes: u64,
    /// Wall-clock milliseconds when the segment was created (for `segment.ms`).
    pub created_ms: i64,
    /// How much before `segment.ms` this segment rolls: drawn when it is
    /// created (Kafka's `segment.jitter.ms`); 0 for a segment recovered.
    pub roll_jitter_ms: u64,
    pub index: SegmentIndex,
    /// The index hint files hold entries that were undone: rewrite them whole.
    pub index_hints_stale: bool,
    /// The active segment's index hint files, open for appending.
    pub hint_files: Option<[std::fs::File; 2]>,
    /// The open file; `None` until the flusher creates it.
    pub file: Option<SegmentFile>,
    pub sealed: bool,
}

impl Segment {
    pub fn new(base: Offset, created_ms: i64) -> Segment {
        Segment {
            base,
            next_offset: base,
            bytes: 0,
            written_bytes: 0,
            max_timestamp: None,
            written_max_timestamp: None,
            allocated_bytes: 0,
            created_ms,
            roll_jitter_ms: 0,
            index: SegmentIndex::default(),
            index_hints_stale: false,
            hint_files: None,
            file: None,
            sealed: false,
        }
    }

    /// Whether the file extends at least a page past what is written (a
    /// spare renamed into place, or preallocated), rather than growing with
    /// each write.
    pub fn allocated_ahead(&self) -> bool {
        self.allocated_bytes >= self.written_bytes + super::PAGE_BYTES as u64
    }

    pub fn relative(&self, offset: Offset) -> u32 {
        let relative = offset
            .0
            .checked_sub(self.base.0)
            .unwrap_or_else(|| panic!("offset {offset} is below segment base {}", self.base));
        u32::try_from(relative).expect("relative offset fits u32")
    }
}

/// A segment's `.log` file, opened for O_DIRECT I/O, shared with readers that
/// are in flight (so a file deleted by retention stays readable for them).
#[derive(Clone)]
pub struct SegmentFile {
    pub path: Rc<PathBuf>,
    file: Rc<DmaFile>,
    faults: Option<Rc<IoFaults>>,
}

/// An I/O error with the underlying errno kept (glommio's own error type
/// wraps it; the log needs the errno to tell a full disk from a failed one).
pub fn to_io_error<T>(error: glommio::GlommioError<T>) -> io::Error {
    match error {
        glommio::GlommioError::IoError(error) => error,
        glommio::GlommioError::EnhancedIoError { source, .. } => source,
        other => io::Error::other(other.to_string()),
    }
}

/// fsyncs a directory, so the files created or removed in it stay so.
pub async fn sync_dir(dir: &Path) -> io::Result<()> {
    let directory = glommio::io::Directory::open(dir)
        .await
        .map_err(to_io_error)?;
    directory.sync().await.map_err(to_io_error)
}

/// Replaces the file at `path` with `bytes`, whole or not at all: writes
/// them to `temporary`, fsyncs it and renames it over `path`. The directory
/// is not synced here: until it is ([`sync_dir`]), a crash may leave the old
/// file. On error the temporary file is removed and `path` is as it was.
pub fn replace_file(path: &Path, temporary: &Path, bytes: &[u8]) -> io::Result<()> {
    let written = (|| {
        let mut file = std::fs::File::create(temporary)?;
        io::Write::write_all(&mut file, bytes)?;
        file.sync_all()?;
        std::fs::rename(temporary, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(temporary);
    }
    written
}

impl SegmentFile {
    pub fn new(path: PathBuf, file: DmaFile, faults: Option<Rc<IoFaults>>) -> SegmentFile {
        SegmentFile {
            path: Rc::new(path),
            file: Rc::new(file),
            faults,
        }
    }

    /// A buffer for [`SegmentFile::write`], aligned for O_DIRECT. Its bytes
    /// are not zeroed.
    pub fn alloc(&self, bytes: usize) -> DmaBuffer {
        self.file.alloc_dma_buffer(bytes)
    }

    /// Writes the whole `buffer` at `position`, which must be aligned to the
    /// file's O_DIRECT alignment (as must the buffer's length). A short write
    /// is reported as an error of kind `WriteZero`: on a regular file it only
    /// happens when the disk is full.
    pub async fn write(&self, buffer: DmaBuffer, position: u64) -> io::Result<()> {
        let bytes = buffer.len();
        if let Some(faults) = &self.faults {
            faults.before_write(bytes)?;
        }
        let written = self
            .file
            .write_at(buffer, position)
            .await
            .map_err(to_io_error)?;
        if written < bytes {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short write at {position}: {written} of {bytes} bytes"),
            ));
        }
        Ok(())
    }

    pub async fn fdatasync(&self) -> io::Result<()> {
        if let Some(faults) = &self.faults {
            faults.before_sync()?;
        }
        self.file.fdatasync().await.map_err(to_io_error)
    }

    /// Reads up to `size` bytes at `position` (any alignment; glommio aligns
    /// the I/O and slices the result). Short at the end of the file.
    pub async fn read_at(&self, position: u64, size: usize) -> io::Result<ReadResult> {
        self.file.read_at(position, size).await.map_err(to_io_error)
    }

    pub async fn pre_allocate(&self, bytes: u64) -> io::Result<()> {
        if let Some(faults) = &self.faults {
            faults.before_allocate()?;
        }
        self.file
            .pre_allocate(bytes, false)
            .await
            .map_err(to_io_error)
    }

    pub async fn truncate(&self, bytes: u64) -> io::Result<()> {
        self.file.truncate(bytes).await.map_err(to_io_error)
    }

    /// Closes the file if this is its last handle (readers in flight keep
    /// it open until they finish).
    pub async fn close(self) {
        if let Err(error) = self.file.close_rc().await {
            tracing::debug!(path = %self.path.display(), %error, "closing a segment file");
        }
    }

    pub async fn file_size(&self) -> io::Result<u64> {
        self.file.file_size().await.map_err(to_io_error)
    }
}
