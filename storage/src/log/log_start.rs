//! Moving the log start on request (Kafka's DeleteRecords), and the
//! checkpoint that makes the moved start survive a close or a crash.
//!
//! Retention moves the log start by deleting whole segments, so the first
//! segment's base says where the log starts. [`delete_records`] moves it to
//! any offset up to the high watermark, inside a segment too, so the start
//! is also kept in a file of the partition directory, [`CHECKPOINT_NAME`]
//! (format at [`CHECKPOINT_MAGIC`]). The order of a move:
//!
//! 1. wait until everything below the new start is durable (only the
//!    `interval` policy ever waits: a start must never be past what a crash
//!    can leave of the log);
//! 2. write the checkpoint to a temporary file, fsync it, rename it into
//!    place, fsync the directory: the move is durable, and acknowledged from
//!    here on;
//! 3. move the start in memory (reads below it are out of range from now);
//! 4. delete the segments wholly below it, as retention does (retention
//!    deletes any that this leaves, such as one not yet sealed).
//!
//! A crash before 2 completes leaves the old start or the new one, either is
//! right as nothing was acknowledged; after it, the new one. On open the
//! start is the larger of the first segment's base and the checkpoint.
//!
//! The checkpoint only ever grows: each write takes the larger of what is
//! asked and what was written, and the write (file, fsync, rename) has no
//! await in it, so two moves in flight cannot reorder their files.

use std::{future::poll_fn, io, path::Path, task::Poll};

use super::{
    disk_errors::{fence, is_disk_full},
    retention,
    segment::{replace_file, sync_dir},
    DeleteRecordsError, LogFailure, OpenError, Shared,
};
use crate::Offset;

/// The file of a partition directory that holds the log start.
pub const CHECKPOINT_NAME: &str = "log-start.checkpoint";
/// The checkpoint being written; one left behind by a crash is deleted on
/// open.
const TEMPORARY_NAME: &str = "log-start.checkpoint.tmp";

/// The first bytes of the log start checkpoint. The format, little-endian:
///
/// ```text
///  0  magic      [u8; 4]  "SLLS"
///  4  crc        u32      CRC-32C of bytes [8, 24)
///  8  version    u16      1
/// 10  reserved   [u8; 6]  zero
/// 16  log_start  u64      no record below it is readable
/// ```
pub const CHECKPOINT_MAGIC: [u8; 4] = *b"SLLS";
const CHECKPOINT_VERSION: u16 = 1;
const CHECKPOINT_CRC_AT: usize = 4;
const CHECKPOINT_CRC_END: usize = 8;
const CHECKPOINT_BYTES: usize = 24;

/// Why a checkpoint file was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("{bytes} bytes, not {CHECKPOINT_BYTES}")]
    WrongSize { bytes: usize },
    #[error("not a log start checkpoint")]
    BadMagic,
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("unknown checkpoint version {version}")]
    UnknownVersion { version: u16 },
}

fn encode(log_start: Offset) -> [u8; CHECKPOINT_BYTES] {
    let mut out = [0; CHECKPOINT_BYTES];
    out[..4].copy_from_slice(&CHECKPOINT_MAGIC);
    out[8..10].copy_from_slice(&CHECKPOINT_VERSION.to_le_bytes());
    out[16..24].copy_from_slice(&log_start.0.to_le_bytes());
    let crc = crc32c::crc32c(&out[CHECKPOINT_CRC_END..]);
    out[CHECKPOINT_CRC_AT..CHECKPOINT_CRC_END].copy_from_slice(&crc.to_le_bytes());
    out
}

fn decode(bytes: &[u8]) -> Result<Offset, CheckpointError> {
    let bytes: &[u8; CHECKPOINT_BYTES] = bytes
        .try_into()
        .map_err(|_| CheckpointError::WrongSize { bytes: bytes.len() })?;
    if bytes[..4] != CHECKPOINT_MAGIC {
        return Err(CheckpointError::BadMagic);
    }
    let stored = u32::from_le_bytes(
        bytes[CHECKPOINT_CRC_AT..CHECKPOINT_CRC_END]
            .try_into()
            .expect("4 bytes"),
    );
    let computed = crc32c::crc32c(&bytes[CHECKPOINT_CRC_END..]);
    if stored != computed {
        return Err(CheckpointError::CrcMismatch { stored, computed });
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != CHECKPOINT_VERSION {
        return Err(CheckpointError::UnknownVersion { version });
    }
    Ok(Offset(u64::from_le_bytes(
        bytes[16..24].try_into().expect("8 bytes"),
    )))
}

/// Replaces the checkpoint of `dir` with `log_start`, whatever it held (a
/// log emptied to start over elsewhere, see `replica`). The directory is
/// not synced here. Blocking.
pub(super) fn write_checkpoint_blocking(dir: &Path, log_start: Offset) -> io::Result<()> {
    replace_file(
        &dir.join(CHECKPOINT_NAME),
        &dir.join(TEMPORARY_NAME),
        &encode(log_start),
    )
}

/// On open: the log start of `dir` given its first segment's base and its
/// end. A checkpoint that does not read back is an error, not ignored: the
/// records below it were deleted on request and must not come back.
///
/// Returns the start and what the checkpoint file holds (0 without one).
pub(super) async fn recover(
    dir: &Path,
    first_base: Offset,
    end: Offset,
) -> Result<(Offset, Offset), OpenError> {
    let path = dir.join(CHECKPOINT_NAME);
    match std::fs::remove_file(dir.join(TEMPORARY_NAME)) {
        Ok(()) => {
            tracing::info!(log = %dir.display(), "deleted a log start checkpoint left by a crash")
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => {
            return Err(OpenError::Io {
                operation: "delete",
                path: dir.join(TEMPORARY_NAME),
                source: error,
            })
        }
    }
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Ok((first_base, Offset(0)));
        }
        Err(source) => {
            return Err(OpenError::Io {
                operation: "read",
                path,
                source,
            })
        }
    };
    let checkpoint = decode(&bytes).map_err(|reason| OpenError::Checkpoint {
        path: path.clone(),
        reason,
    })?;
    if checkpoint <= end {
        return Ok((first_base.max(checkpoint), checkpoint));
    }
    // A start is checkpointed only once the log is durable up to it, so the
    // log lost what it had made durable (or its files were changed by
    // hand). Appends go on from the end the files hold; the checkpoint is
    // brought back to it, so that they are not hidden at the next open.
    tracing::error!(
        log = %dir.display(), %checkpoint, log_end = %end,
        "the log start checkpoint is past the log end: the log starts at its end"
    );
    let io_error = |operation, path: &Path| {
        let path = path.to_path_buf();
        move |source| OpenError::Io {
            operation,
            path,
            source,
        }
    };
    replace_file(&path, &dir.join(TEMPORARY_NAME), &encode(end))
        .map_err(io_error("write", &path))?;
    sync_dir(dir)
        .await
        .map_err(io_error("sync directory", dir))?;
    Ok((end, end))
}

/// Moves the log start to `before`: see the module documentation and
/// [`super::Log::delete_records`].
pub(super) async fn delete_records(
    shared: &Shared,
    before: Offset,
) -> Result<Offset, DeleteRecordsError> {
    // Checks, then waits until `before` is durable.
    let moves = poll_fn(|cx| {
        let mut state = shared.borrow_mut();
        if state.closing {
            return Poll::Ready(Err(DeleteRecordsError::Closed));
        }
        if let Some(failure) = &state.failure {
            return Poll::Ready(Err(DeleteRecordsError::Fenced(failure.clone())));
        }
        if state.truncating {
            // The end is about to move back: the start is checked against
            // where it lands.
            state.waiters.push(cx.waker().clone());
            return Poll::Pending;
        }
        let high_watermark = state.visible_end();
        if before > high_watermark {
            return Poll::Ready(Err(DeleteRecordsError::OffsetOutOfRange {
                before,
                log_start: state.log_start,
                high_watermark,
            }));
        }
        if before <= state.log_start {
            return Poll::Ready(Ok(false));
        }
        if before <= state.durable_end {
            return Poll::Ready(Ok(true));
        }
        state.waiters.push(cx.waker().clone());
        Poll::Pending
    })
    .await?;
    if !moves {
        return Ok(shared.borrow().log_start);
    }

    let dir = {
        let mut state = shared.borrow_mut();
        if before > state.log_start_checkpoint {
            let path = state.dir.join(CHECKPOINT_NAME);
            let temporary = state.dir.join(TEMPORARY_NAME);
            match replace_file(&path, &temporary, &encode(before)) {
                Ok(()) => state.log_start_checkpoint = before,
                Err(error) if is_disk_full(&error) => {
                    return Err(DeleteRecordsError::DiskFull {
                        message: format!("{}: {error}", path.display()),
                    });
                }
                Err(error) => {
                    let failure = LogFailure::new("write", &path, &error);
                    fence(&mut state, failure.clone());
                    return Err(DeleteRecordsError::Fenced(failure));
                }
            }
        }
        state.dir.clone()
    };
    // Also when another move wrote a checkpoint at or past `before`: its
    // rename is durable only once the directory is synced, by whichever
    // finishes first.
    if let Err(error) = sync_dir(&dir).await {
        let failure = LogFailure::new("fsync", &dir, &error);
        fence(&mut shared.borrow_mut(), failure.clone());
        return Err(DeleteRecordsError::Fenced(failure));
    }

    {
        let mut state = shared.borrow_mut();
        assert!(
            state.log_start_checkpoint >= before,
            "the log start moves to {before} past its checkpoint {}",
            state.log_start_checkpoint
        );
        if before > state.log_start {
            assert!(
                before <= state.durable_end,
                "the log start moves to {before} past the durable end {}",
                state.durable_end
            );
            state.log_start = before;
            // Written with the next flush round or on close; opening
            // applies the start to the file's entries in any case.
            let end = state.end;
            state.epochs.start_at(before, end);
            retention::drop_cached_below(&mut state, before);
            tracing::info!(log = %dir.display(), log_start = %before, "log start moved");
        }
    }
    // The move is durable and visible; deleting the files only frees space,
    // and what is not deleted now is at the next retention pass.
    if let Err(error) = retention::delete_below_start(shared).await {
        tracing::warn!(
            log = %dir.display(), %error,
            "could not delete the segments below the log start; retention tries again"
        );
    }
    Ok(shared.borrow().log_start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_read_back_and_damage_is_caught() {
        let bytes = encode(Offset(1234));
        assert_eq!(decode(&bytes), Ok(Offset(1234)));
        for at in 0..CHECKPOINT_BYTES {
            let mut damaged = bytes;
            damaged[at] ^= 0x10;
            assert!(
                decode(&damaged).is_err(),
                "a flipped bit at byte {at} passed"
            );
        }
        assert_eq!(
            decode(&bytes[..20]),
            Err(CheckpointError::WrongSize { bytes: 20 })
        );
    }
}
