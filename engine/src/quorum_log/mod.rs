//! The controller quorum's log on disk: a [`QuorumLog`] implements
//! [`QuorumStorage`](sluice_replication::quorum::QuorumStorage) (and so
//! `raft::Storage`) over a directory, e.g. `DATA/metadata/quorum/`.
//!
//! A [`MemoryStorage`](sluice_replication::quorum::MemoryStorage) is the
//! working view raft-rs reads; every call also writes to files:
//!
//! * `log-<generation>`: append-only frames `[u32 length][u32 CRC-32C]
//!   [u8 kind][body]` (see `format.rs`): a base (the format version and
//!   the snapshot the entries follow), raft entries (an entry replaces any
//!   at its index and after), hard states, the caught-up marker. Each
//!   declared length is checked against a named cap before anything is
//!   read for it.
//! * `snapshot`: the latest snapshot (it holds the metadata state, and may
//!   be large), one frame, written to a temporary file, synced, renamed and
//!   the directory synced. After a snapshot compacts the log, the log is
//!   rewritten as the next generation the same way, and the old generation
//!   removed only once the new one is durable.
//!
//! [`QuorumLog::make_durable`] (or `sync`) fdatasyncs the log. Opening
//! replays: the state after replay is the state before the process stopped,
//! for everything synced. A torn frame at the very end is cut off (and
//! logged); a bad frame with intact frames after it, or an intact frame
//! that does not decode, is [`QuorumLogError::Corrupt`], never skipped. A
//! failed write or sync is not retried: the log refuses further writes
//! ([`QuorumLogError::Failed`]).
//!
//! Plain `std::fs` I/O, blocking: like the metadata log, it runs on shard 0
//! and rarely (a metadata change, an election), so the direct-I/O path of
//! partition logs is not worth its complexity here.

mod file;
mod format;
mod recovery;
#[cfg(test)]
mod tests;

use std::io;
use std::path::PathBuf;

pub use file::QuorumLog;

/// Why the quorum log failed or refused.
#[derive(Debug, thiserror::Error)]
pub enum QuorumLogError {
    /// A file operation failed.
    #[error("quorum log {path}: {operation}: {source}")]
    Io {
        path: PathBuf,
        operation: &'static str,
        source: io::Error,
    },
    /// The files are not a log this release wrote whole.
    #[error("quorum log {path} is corrupt at byte {position}: {reason}")]
    Corrupt {
        path: PathBuf,
        position: u64,
        reason: String,
    },
    /// A record is larger than its file's cap; nothing was written.
    #[error("quorum log: {what} of {bytes} bytes over the cap of {max}")]
    FrameTooLarge {
        what: &'static str,
        bytes: usize,
        max: usize,
    },
    /// An earlier write or sync failed; the log takes no more writes.
    #[error("quorum log in {dir} refuses writes: an earlier {operation} failed: {reason}")]
    Failed {
        dir: PathBuf,
        operation: &'static str,
        reason: String,
    },
    /// [`QuorumLog::bootstrap`] on a directory that already holds a log.
    #[error("quorum log in {dir} already exists; a cluster is bootstrapped once")]
    AlreadyExists { dir: PathBuf },
}
