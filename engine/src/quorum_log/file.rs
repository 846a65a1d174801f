//! [`QuorumLog`]: the working view in memory, every change also written to
//! the directory's files.

use std::cell::{Cell, RefCell};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use sluice_replication::quorum::eraftpb::{Entry, HardState, Snapshot};
use sluice_replication::quorum::{MemoryStorage, NodeId, QuorumStorage};

use raft::{GetEntriesContext, RaftState, StorageError};

use super::format::{self, Kind, LOG_FRAME_BYTES_MAX, SNAPSHOT_FRAME_BYTES_MAX};
use super::recovery;
use super::QuorumLogError;

/// The snapshot file's name in the directory.
pub(super) const SNAPSHOT_FILE: &str = "snapshot";
/// A file being written, renamed into place once durable; one left at
/// open is from an interrupted write and removed.
const TEMPORARY_SUFFIX: &str = ".tmp";
/// Log generations are `log-<generation>`, the generation zero-padded so
/// that names sort as numbers.
const LOG_PREFIX: &str = "log-";

pub(super) fn log_file_name(generation: u64) -> String {
    format!("{LOG_PREFIX}{generation:020}")
}

/// The controller quorum's log on disk, one per node, on shard 0.
///
/// A [`MemoryStorage`] is the working view that raft-rs reads; every
/// [`QuorumStorage`] call changes it and writes the same change to the
/// files. Writes reach the page cache at once and the disk at
/// [`QuorumLog::make_durable`] (or [`QuorumStorage::sync`]); snapshots are
/// durable when their call returns.
///
/// After a failed write or sync, nothing more is written: every later
/// write or sync returns [`QuorumLogError::Failed`] with the first
/// failure's reason. The working view may then hold a change the disk
/// does not (the node must stop: a broken environment).
pub struct QuorumLog {
    dir: PathBuf,
    view: MemoryStorage,
    generation: u64,
    file: File,
    /// Bytes written since the last sync.
    unsynced: Cell<bool>,
    /// The first failed write or sync: why the log refuses writes.
    failed: RefCell<Option<(&'static str, String)>>,
}

impl QuorumLog {
    /// Opens the log in `dir` (created if missing) and replays it: the
    /// state is that of the last run, for everything it synced. A
    /// directory with no log is a node without a disk (or one that lost
    /// it): an empty storage that must be caught up
    /// ([`QuorumStorage::catching_up`]).
    ///
    /// Errors: I/O, or [`QuorumLogError::Corrupt`] (a bad frame with
    /// intact frames after it, an intact frame that does not decode, a
    /// snapshot file that does not match the log).
    pub fn open(dir: &Path) -> Result<QuorumLog, QuorumLogError> {
        create_dir(dir)?;
        let generations = scan(dir)?;
        let Some(&generation) = generations.last() else {
            // Nothing was ever made durable here: a snapshot left without
            // a log is an interrupted creation.
            remove_if_present(&dir.join(SNAPSHOT_FILE))?;
            return Self::create(dir, MemoryStorage::new());
        };
        for &old in &generations[..generations.len() - 1] {
            // A crash after the new generation was made durable and before
            // the old one was removed.
            remove_if_present(&dir.join(log_file_name(old)))?;
        }
        let snapshot = read_snapshot(dir)?;
        let path = dir.join(log_file_name(generation));
        let bytes = fs::read(&path).map_err(io_error(&path, "read"))?;
        let mut replayed =
            recovery::replay_log(&bytes).map_err(|corruption| QuorumLogError::Corrupt {
                path: path.clone(),
                position: corruption.position as u64,
                reason: corruption.reason,
            })?;
        if let Some((position, fault)) = &replayed.torn {
            tracing::warn!(path = %path.display(), position, %fault, "torn quorum log frame cut off");
        }
        let snapshot = snapshot.unwrap_or_default();
        let rewrite = recovery::reconcile(&mut replayed, &snapshot).map_err(|reason| {
            QuorumLogError::Corrupt {
                path: dir.join(SNAPSHOT_FILE),
                position: 0,
                reason,
            }
        })?;
        let view = build_view(snapshot, &replayed).map_err(|reason| QuorumLogError::Corrupt {
            path: path.clone(),
            position: 0,
            reason,
        })?;
        if rewrite {
            tracing::warn!(dir = %dir.display(), "quorum log rewritten after its snapshot (interrupted compaction)");
            let log = Self::create_generation(dir, generation + 1, view)?;
            remove_if_present(&path)?;
            return Ok(log);
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_error(&path, "open"))?;
        if replayed.torn.is_some() {
            file.set_len(replayed.valid_bytes as u64)
                .and_then(|()| file.sync_all())
                .map_err(io_error(&path, "cut the torn tail"))?;
        }
        let mut file = file;
        file.seek(io::SeekFrom::End(0))
            .map_err(io_error(&path, "seek"))?;
        tracing::info!(
            path = %path.display(),
            entries = replayed.entries.len(),
            snapshot_index = replayed.base_index,
            "quorum log replayed"
        );
        Ok(QuorumLog::at(dir, view, generation, file))
    }

    /// Creates the log of a voter of a newly formed cluster in `dir` (see
    /// [`MemoryStorage::bootstrap`]), durable when it returns. Refused if
    /// `dir` already holds a log ([`QuorumLogError::AlreadyExists`]).
    pub fn bootstrap(dir: &Path, voters: &[NodeId]) -> Result<QuorumLog, QuorumLogError> {
        Self::bootstrap_with_state(dir, voters, Vec::new())
    }

    /// [`QuorumLog::bootstrap`] with `state` as the bootstrap snapshot's
    /// state (see [`MemoryStorage::bootstrap_with_state`]).
    pub fn bootstrap_with_state(
        dir: &Path,
        voters: &[NodeId],
        state: Vec<u8>,
    ) -> Result<QuorumLog, QuorumLogError> {
        create_dir(dir)?;
        if !scan(dir)?.is_empty() {
            return Err(QuorumLogError::AlreadyExists {
                dir: dir.to_owned(),
            });
        }
        let view = MemoryStorage::bootstrap_with_state(voters, state);
        write_snapshot(dir, &view.latest_snapshot())?;
        Self::create(dir, view)
    }

    /// The directory the log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The working view (entries, hard state, snapshot), for inspection.
    pub fn view(&self) -> &MemoryStorage {
        &self.view
    }

    /// Makes every change so far durable (fdatasync of the log file; a
    /// new file's directory was synced when it was made). Takes `&self`
    /// because a [`sluice_replication::quorum::Quorum`] lends its storage
    /// by shared reference: the controller calls it through
    /// `quorum.storage()` before sending a ready's messages.
    pub fn make_durable(&self) -> Result<(), QuorumLogError> {
        self.check_failed()?;
        if !self.unsynced.get() {
            return Ok(());
        }
        if let Err(source) = self.file.sync_data() {
            return Err(self.fail("fdatasync", source));
        }
        self.unsynced.set(false);
        Ok(())
    }

    fn path(&self) -> PathBuf {
        self.dir.join(log_file_name(self.generation))
    }

    fn check_failed(&self) -> Result<(), QuorumLogError> {
        match &*self.failed.borrow() {
            Some((operation, reason)) => Err(QuorumLogError::Failed {
                dir: self.dir.clone(),
                operation,
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Records the first failure; returns the error for it.
    fn fail(&self, operation: &'static str, source: io::Error) -> QuorumLogError {
        let mut failed = self.failed.borrow_mut();
        if failed.is_none() {
            tracing::error!(dir = %self.dir.display(), operation, %source, "quorum log failed; it refuses further writes");
            *failed = Some((operation, source.to_string()));
        }
        QuorumLogError::Io {
            path: self.path(),
            operation,
            source,
        }
    }

    fn write(&mut self, frames: &[u8]) -> Result<(), QuorumLogError> {
        self.check_failed()?;
        if let Err(source) = self.file.write_all(frames) {
            return Err(self.fail("write", source));
        }
        self.unsynced.set(true);
        Ok(())
    }

    /// Writes `view` as generation `generation` (temporary file, synced,
    /// renamed, directory synced) and opens it for appending.
    fn create_generation(
        dir: &Path,
        generation: u64,
        view: MemoryStorage,
    ) -> Result<QuorumLog, QuorumLogError> {
        let frames = generation_frames(&view)?;
        let path = dir.join(log_file_name(generation));
        write_durably(dir, &path, &frames)?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_error(&path, "open"))?;
        Ok(QuorumLog::at(dir, view, generation, file))
    }

    /// A log over `file`, generation `generation` in `dir`, whose frames
    /// replay to `view`, with nothing unsynced and no failure.
    fn at(dir: &Path, view: MemoryStorage, generation: u64, file: File) -> QuorumLog {
        QuorumLog {
            dir: dir.to_owned(),
            view,
            generation,
            file,
            unsynced: Cell::new(false),
            failed: RefCell::new(None),
        }
    }

    fn create(dir: &Path, view: MemoryStorage) -> Result<QuorumLog, QuorumLogError> {
        Self::create_generation(dir, 1, view)
    }

    /// After the working view took a snapshot: the snapshot file is
    /// replaced durably, then the log is rewritten as the next generation,
    /// and the old one removed once the new one is durable. A crash between
    /// the steps is recovered by [`QuorumLog::open`].
    fn persist_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), QuorumLogError> {
        self.check_failed()?;
        let step = write_snapshot(&self.dir, snapshot).and_then(|()| {
            let frames = generation_frames(&self.view)?;
            let next = self.generation + 1;
            let path = self.dir.join(log_file_name(next));
            write_durably(&self.dir, &path, &frames)?;
            let file = OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(io_error(&path, "open"))?;
            Ok((next, file))
        });
        let (next, file) = match step {
            Ok(done) => done,
            Err(error) => {
                *self.failed.borrow_mut() = Some(("snapshot", error.to_string()));
                return Err(error);
            }
        };
        let old = self.path();
        self.generation = next;
        self.file = file;
        self.unsynced.set(false);
        if let Err(source) = fs::remove_file(&old) {
            // The new generation is durable; a stale old one is removed at
            // the next open.
            tracing::warn!(path = %old.display(), %source, "old quorum log generation not removed");
        }
        Ok(())
    }
}

#[cfg(test)]
impl QuorumLog {
    /// The current generation's number.
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// Swaps the log's file for a read-only handle, so the next write fails
    /// as a full or failing disk would.
    pub(super) fn break_file(&mut self) {
        self.file = File::open(self.path()).expect("the log file opens");
    }
}

/// The frames of a whole generation holding `view`.
fn generation_frames(view: &MemoryStorage) -> Result<Vec<u8>, QuorumLogError> {
    let snapshot = view.latest_snapshot();
    let metadata = snapshot.get_metadata();
    let mut frames = Vec::new();
    format::encode_frame(
        Kind::Base,
        &format::encode_base(metadata.index, metadata.term),
        &mut frames,
    );
    format::encode_frame(
        Kind::HardState,
        &format::encode_hard_state(&view.hard_state()),
        &mut frames,
    );
    if !view.catching_up() {
        format::encode_frame(Kind::CaughtUp, &[], &mut frames);
    }
    frames.extend_from_slice(&entry_frames(view.entries_held())?);
    Ok(frames)
}

/// The frames of `entries`, each checked against the cap.
fn entry_frames(entries: &[Entry]) -> Result<Vec<u8>, QuorumLogError> {
    let mut frames = Vec::new();
    for entry in entries {
        let body = format::encode_entry(entry);
        if 1 + body.len() > LOG_FRAME_BYTES_MAX {
            return Err(QuorumLogError::FrameTooLarge {
                what: "entry",
                bytes: 1 + body.len(),
                max: LOG_FRAME_BYTES_MAX,
            });
        }
        format::encode_frame(Kind::Entry, &body, &mut frames);
    }
    Ok(frames)
}

/// Rebuilds the working view from a snapshot and a replayed generation, or
/// says why the two do not fit together (entries that do not follow the
/// snapshot: a damaged directory, never a torn write).
fn build_view(
    snapshot: Snapshot,
    replayed: &recovery::ReplayedLog,
) -> Result<MemoryStorage, String> {
    let mut view = MemoryStorage::new();
    let hard_state = replayed.hard_state.clone().unwrap_or_default();
    if snapshot.get_metadata().index > 0 {
        view.install_snapshot(snapshot)
            .map_err(|error| format!("the snapshot does not install: {error}"))?;
    }
    view.append(&replayed.entries)
        .map_err(|error| format!("the entries do not follow the snapshot: {error}"))?;
    view.set_hard_state(hard_state)
        .map_err(|error| format!("the hard state does not apply: {error}"))?;
    if replayed.caught_up {
        view.set_caught_up()
            .map_err(|error| format!("the caught-up mark does not apply: {error}"))?;
    }
    Ok(view)
}

fn io_error<'a>(
    path: &'a Path,
    operation: &'static str,
) -> impl Fn(io::Error) -> QuorumLogError + 'a {
    move |source| QuorumLogError::Io {
        path: path.to_owned(),
        operation,
        source,
    }
}

/// Creates `dir` if missing; a new directory's entry is synced in its parent.
fn create_dir(dir: &Path) -> Result<(), QuorumLogError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(io_error(dir, "create directory"))?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), QuorumLogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir, "fsync directory"))
}

fn remove_if_present(path: &Path) -> Result<(), QuorumLogError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(QuorumLogError::Io {
            path: path.to_owned(),
            operation: "remove",
            source,
        }),
    }
}

/// The log generations in `dir`, ascending; temporary files are removed.
fn scan(dir: &Path) -> Result<Vec<u64>, QuorumLogError> {
    let mut generations = Vec::new();
    for item in fs::read_dir(dir).map_err(io_error(dir, "list directory"))? {
        let item = item.map_err(io_error(dir, "list directory"))?;
        let name = item.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(TEMPORARY_SUFFIX) {
            remove_if_present(&item.path())?;
        } else if let Some(number) = name.strip_prefix(LOG_PREFIX) {
            match number.parse::<u64>() {
                Ok(generation) => generations.push(generation),
                Err(_) => {
                    tracing::warn!(file = name, "unexpected file in the quorum log directory")
                }
            }
        }
    }
    generations.sort_unstable();
    Ok(generations)
}

/// Writes `bytes` to `path` durably: a temporary file, synced, renamed,
/// the directory synced.
fn write_durably(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), QuorumLogError> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(TEMPORARY_SUFFIX);
    let temporary = PathBuf::from(temporary);
    let mut file = File::create(&temporary).map_err(io_error(&temporary, "create"))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_error(&temporary, "write"))?;
    fs::rename(&temporary, path).map_err(io_error(path, "rename"))?;
    sync_dir(dir)
}

/// Replaces the snapshot file durably.
fn write_snapshot(dir: &Path, snapshot: &Snapshot) -> Result<(), QuorumLogError> {
    let body = format::encode_snapshot(snapshot);
    if 1 + body.len() > SNAPSHOT_FRAME_BYTES_MAX {
        return Err(QuorumLogError::FrameTooLarge {
            what: "snapshot",
            bytes: 1 + body.len(),
            max: SNAPSHOT_FRAME_BYTES_MAX,
        });
    }
    let mut frame = Vec::with_capacity(format::FRAME_HEADER_BYTES + 1 + body.len());
    format::encode_frame(Kind::Snapshot, &body, &mut frame);
    write_durably(dir, &dir.join(SNAPSHOT_FILE), &frame)
}

/// Reads the snapshot file, if there is one. Its size is checked against
/// the cap before it is read; it was renamed into place whole, so any
/// fault is corruption.
fn read_snapshot(dir: &Path) -> Result<Option<Snapshot>, QuorumLogError> {
    let path = dir.join(SNAPSHOT_FILE);
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(QuorumLogError::Io {
                path,
                operation: "open",
                source,
            })
        }
    };
    let corrupt = |reason: String| QuorumLogError::Corrupt {
        path: path.clone(),
        position: 0,
        reason,
    };
    let length = file.metadata().map_err(io_error(&path, "stat"))?.len();
    let max = (format::FRAME_HEADER_BYTES + SNAPSHOT_FRAME_BYTES_MAX) as u64;
    if length > max {
        return Err(corrupt(format!(
            "snapshot file of {length} bytes over the cap of {max}"
        )));
    }
    let mut bytes = Vec::with_capacity(length as usize);
    file.read_to_end(&mut bytes)
        .map_err(io_error(&path, "read"))?;
    let frame = format::parse_frame(&bytes, 0, SNAPSHOT_FRAME_BYTES_MAX)
        .map_err(|fault| corrupt(fault.to_string()))?;
    if frame.kind != Kind::Snapshot || frame.next != bytes.len() {
        return Err(corrupt("not one snapshot frame".to_owned()));
    }
    format::decode_snapshot(frame.body)
        .map(Some)
        .map_err(corrupt)
}

fn storage_error(error: QuorumLogError) -> StorageError {
    StorageError::Other(Box::new(error))
}

impl raft::Storage for QuorumLog {
    fn initial_state(&self) -> raft::Result<RaftState> {
        self.view.initial_state()
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        self.view.entries(low, high, max_size, context)
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        self.view.term(index)
    }

    fn first_index(&self) -> raft::Result<u64> {
        self.view.first_index()
    }

    fn last_index(&self) -> raft::Result<u64> {
        self.view.last_index()
    }

    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        self.view.snapshot(request_index, to)
    }
}

impl QuorumStorage for QuorumLog {
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.check_failed().map_err(storage_error)?;
        let frames = entry_frames(entries).map_err(storage_error)?;
        self.view.append(entries)?;
        self.write(&frames).map_err(storage_error)
    }

    fn set_hard_state(&mut self, hard_state: HardState) -> Result<(), StorageError> {
        self.check_failed().map_err(storage_error)?;
        let mut frame = Vec::new();
        format::encode_frame(
            Kind::HardState,
            &format::encode_hard_state(&hard_state),
            &mut frame,
        );
        self.view.set_hard_state(hard_state)?;
        self.write(&frame).map_err(storage_error)
    }

    fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<(), StorageError> {
        self.check_failed().map_err(storage_error)?;
        self.view.install_snapshot(snapshot.clone())?;
        self.persist_snapshot(&snapshot).map_err(storage_error)
    }

    fn store_snapshot_and_compact(&mut self, snapshot: Snapshot) -> Result<(), StorageError> {
        self.check_failed().map_err(storage_error)?;
        self.view.store_snapshot_and_compact(snapshot.clone())?;
        self.persist_snapshot(&snapshot).map_err(storage_error)
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.make_durable().map_err(storage_error)
    }

    fn catching_up(&self) -> bool {
        self.view.catching_up()
    }

    fn set_caught_up(&mut self) -> Result<(), StorageError> {
        self.check_failed().map_err(storage_error)?;
        if !self.view.catching_up() {
            return Ok(());
        }
        let mut frame = Vec::new();
        format::encode_frame(Kind::CaughtUp, &[], &mut frame);
        self.view.set_caught_up()?;
        self.write(&frame).map_err(storage_error)
    }

    fn latest_snapshot(&self) -> Snapshot {
        self.view.latest_snapshot()
    }

    fn hard_state(&self) -> HardState {
        self.view.hard_state()
    }
}
