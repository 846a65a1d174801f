//! Leader epochs: for each leader epoch the log holds batches of, the offset
//! of its first batch (Kafka's `leader-epoch-checkpoint`). A follower that
//! rejoins asks its leader where its last epoch ends and truncates there
//! (KIP-101, KIP-279); the engine builds that answer from
//! [`super::Log::leader_epochs`].
//!
//! The entries rise in both epoch and offset. They are kept
//!
//! * on every append, leader's or replicated: a batch of an epoch above the
//!   last one starts an entry at its base offset;
//! * when the end moves back (a truncation, see `replica`; an append
//!   undone for a full disk): entries at or past the new end go;
//! * when the log start moves (retention, `Log::delete_records`): entries
//!   wholly below it go, and the one straddling it starts at it (KIP-101).
//!   The last entry stays even when the log start reaches the end, so that
//!   an emptied log still knows its last epoch: it is then *carried*, an
//!   entry with no batch of its own, and the file says so.
//!
//! # The checkpoint file
//!
//! [`LEADER_EPOCHS_NAME`] in the partition directory (format at
//! [`LEADER_EPOCHS_MAGIC`]), replaced whole (temporary file, fsync, rename,
//! fsync of the directory) whenever the entries change: when a new epoch
//! starts, on truncation and after the log start moved, never per append.
//! The flusher writes it before the first batch of a new epoch is written,
//! so every batch on disk has its entry in the file; a file can only hold
//! entries past the end (a crash before the batch was written, an append
//! undone for a full disk), which opening drops.
//!
//! On open the file is reconciled with the recovered log: entries at or
//! past the recovered end go (but a carried one at the log start), the log
//! start is applied, and the epochs of the batches
//! the recovery scan read are checked against the entries (and added where
//! the log goes further). A file that is missing, damaged or disagrees with
//! the log is rebuilt from the batch headers of the whole log (said with a
//! warning, but for a missing file on an empty log), then written.

use std::{collections::BTreeMap, io, path::Path};

use super::{
    producer_snapshots::walk_headers,
    segment::{replace_file, Segment},
    OpenError, Shared,
};
use crate::Offset;

/// The file of a partition directory that holds the leader epochs.
pub const LEADER_EPOCHS_NAME: &str = "leader-epoch.checkpoint";
/// The file being written; one left behind by a crash is deleted on open.
const TEMPORARY_NAME: &str = "leader-epoch.checkpoint.tmp";

/// Entries kept at most. An entry is one leader election that appended to
/// the partition within its retention: tens of thousands of elections are
/// far past any healthy cluster, and the file stays under 800 KiB. Past
/// this the oldest entry goes (and says so): a follower asking for an epoch
/// older than every entry is told the start of the oldest, and truncates
/// further back than it had to, which loses nothing its leader has.
pub const LEADER_EPOCHS_MAX: usize = 64 * 1024;

/// The first bytes of the leader epoch checkpoint. The format,
/// little-endian:
///
/// ```text
///  0  magic        [u8; 4]  "SLLE"
///  4  crc          u32      CRC-32C of bytes [8, end)
///  8  version      u16      1
/// 10  flags        u16      bit 0: the last entry is carried (no batch
///                           of its own, at the log start, which is the
///                           end); the other bits zero
/// 12  entry_count  u32      at most LEADER_EPOCHS_MAX
/// 16  entries, oldest first, each:
///      0  epoch         u32
///      4  reserved      u32     zero
///      8  start_offset  u64
/// ```
pub const LEADER_EPOCHS_MAGIC: [u8; 4] = *b"SLLE";
const VERSION: u16 = 1;
const CRC_AT: usize = 4;
const CRC_END: usize = 8;
const HEADER_BYTES: usize = 16;
const ENTRY_BYTES: usize = 16;
/// The largest file: every entry. Checked before the file is read.
const FILE_BYTES_MAX: usize = HEADER_BYTES + LEADER_EPOCHS_MAX * ENTRY_BYTES;
const FLAG_CARRIED: u16 = 1;

/// Why a leader epoch checkpoint was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaderEpochsError {
    #[error("{bytes} bytes, shorter than the header")]
    TooShort { bytes: usize },
    #[error("{bytes} bytes, over the largest checkpoint ({FILE_BYTES_MAX})")]
    TooLarge { bytes: u64 },
    #[error("not a leader epoch checkpoint")]
    BadMagic,
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("unknown leader epoch checkpoint version {version}")]
    UnknownVersion { version: u16 },
    #[error("unknown flags {flags:#x}")]
    UnknownFlags { flags: u16 },
    #[error("a carried entry in a file of none")]
    CarriedNothing,
    #[error("{count} entries, over the cap of {LEADER_EPOCHS_MAX}")]
    TooManyEntries { count: usize },
    #[error("{bytes} bytes where {count} entries take {expected}")]
    WrongSize {
        bytes: usize,
        count: usize,
        expected: usize,
    },
    #[error("entry {index} ({epoch}, {start}) does not rise above the one before it")]
    NotRising {
        index: usize,
        epoch: u32,
        start: Offset,
    },
}

/// The leader epochs of one log, on the partition's owner shard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LeaderEpochs {
    /// `(epoch, first offset)`, both strictly rising.
    entries: Vec<(u32, Offset)>,
    /// The last entry has no batch of its own: the log start reached the
    /// end and carried the last epoch there. Told apart on open from an
    /// entry whose batch a crash took, which goes.
    carried: bool,
    /// The entries changed since the file was last written.
    pub dirty: bool,
}

impl LeaderEpochs {
    pub fn entries(&self) -> &[(u32, Offset)] {
        &self.entries
    }

    pub fn last_epoch(&self) -> Option<u32> {
        self.entries.last().map(|&(epoch, _)| epoch)
    }

    /// A batch of `epoch` at `base`, the log end: starts an entry if its
    /// epoch is new. The caller has refused an epoch below the last one.
    pub fn on_batch(&mut self, epoch: u32, base: Offset) {
        if let Some(&(last_epoch, last_start)) = self.entries.last() {
            assert!(
                epoch >= last_epoch,
                "leader epoch went back: {epoch} < {last_epoch} at {base}"
            );
            assert!(
                base >= last_start,
                "a batch at {base} before the last epoch's start {last_start}"
            );
            if epoch == last_epoch {
                // A carried entry has a batch again.
                self.carried = false;
                return;
            }
            if last_start == base {
                assert!(self.carried, "an entry at {base} without a batch");
                // The new epoch takes the carried entry's place.
                self.entries.pop();
            }
        }
        self.carried = false;
        if self.entries.len() == LEADER_EPOCHS_MAX {
            let (epoch, start) = self.entries.remove(0);
            tracing::warn!(
                epoch, %start, max = LEADER_EPOCHS_MAX,
                "too many leader epochs: the oldest is forgotten"
            );
        }
        self.entries.push((epoch, base));
        self.dirty = true;
    }

    /// Drops the entries at or past `end` (truncation, or an append undone).
    pub fn truncate(&mut self, end: Offset) {
        let keep = self.entries.partition_point(|&(_, start)| start < end);
        if keep < self.entries.len() {
            self.entries.truncate(keep);
            self.carried = false;
            self.dirty = true;
        }
    }

    /// The log start moved to `log_start` (the log ends at `end`): entries
    /// wholly below it go, the one straddling it starts at it, carried if
    /// the start is the end.
    pub fn start_at(&mut self, log_start: Offset, end: Offset) {
        assert!(
            log_start <= end,
            "the log start {log_start} is past the end {end}"
        );
        self.move_start(log_start);
        let carried = log_start == end && !self.entries.is_empty();
        if carried != self.carried {
            self.carried = carried;
            self.dirty = true;
        }
    }

    fn move_start(&mut self, log_start: Offset) {
        // The entries starting at or below the start: all but the last of
        // them end at or below it.
        let below = self
            .entries
            .partition_point(|&(_, start)| start <= log_start);
        if below == 0 {
            return;
        }
        let straddling = below - 1;
        if straddling > 0 || self.entries[0].1 != log_start {
            self.entries.drain(..straddling);
            self.entries[0].1 = log_start;
            self.dirty = true;
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode(&self.entries, self.carried)
    }
}

fn encode(entries: &[(u32, Offset)], carried: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + entries.len() * ENTRY_BYTES);
    out.extend_from_slice(&LEADER_EPOCHS_MAGIC);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&VERSION.to_le_bytes());
    let flags = if carried { FLAG_CARRIED } else { 0 };
    out.extend_from_slice(&flags.to_le_bytes());
    let count = u32::try_from(entries.len()).expect("entry count fits u32");
    out.extend_from_slice(&count.to_le_bytes());
    for &(epoch, start) in entries {
        out.extend_from_slice(&epoch.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&start.0.to_le_bytes());
    }
    let crc = crc32c::crc32c(&out[CRC_END..]);
    out[CRC_AT..CRC_END].copy_from_slice(&crc.to_le_bytes());
    out
}

fn read<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    bytes[at..at + N].try_into().expect("in bounds")
}

/// What a checkpoint file holds: the entries, and whether the last is
/// carried.
type Decoded = (Vec<(u32, Offset)>, bool);

fn decode(bytes: &[u8]) -> Result<Decoded, LeaderEpochsError> {
    if bytes.len() < HEADER_BYTES {
        return Err(LeaderEpochsError::TooShort { bytes: bytes.len() });
    }
    if bytes[..4] != LEADER_EPOCHS_MAGIC {
        return Err(LeaderEpochsError::BadMagic);
    }
    let stored = u32::from_le_bytes(read(bytes, CRC_AT));
    let computed = crc32c::crc32c(&bytes[CRC_END..]);
    if stored != computed {
        return Err(LeaderEpochsError::CrcMismatch { stored, computed });
    }
    let version = u16::from_le_bytes(read(bytes, 8));
    if version != VERSION {
        return Err(LeaderEpochsError::UnknownVersion { version });
    }
    let flags = u16::from_le_bytes(read(bytes, 10));
    if flags & !FLAG_CARRIED != 0 {
        return Err(LeaderEpochsError::UnknownFlags { flags });
    }
    let carried = flags & FLAG_CARRIED != 0;
    let count = u32::from_le_bytes(read(bytes, 12)) as usize;
    if carried && count == 0 {
        return Err(LeaderEpochsError::CarriedNothing);
    }
    if count > LEADER_EPOCHS_MAX {
        return Err(LeaderEpochsError::TooManyEntries { count });
    }
    let expected = HEADER_BYTES + count * ENTRY_BYTES;
    if bytes.len() != expected {
        return Err(LeaderEpochsError::WrongSize {
            bytes: bytes.len(),
            count,
            expected,
        });
    }
    let mut entries: Vec<(u32, Offset)> = Vec::with_capacity(count);
    for index in 0..count {
        let at = HEADER_BYTES + index * ENTRY_BYTES;
        let epoch = u32::from_le_bytes(read(bytes, at));
        let start = Offset(u64::from_le_bytes(read(bytes, at + 8)));
        if entries
            .last()
            .is_some_and(|&(last_epoch, last_start)| epoch <= last_epoch || start <= last_start)
        {
            return Err(LeaderEpochsError::NotRising {
                index,
                epoch,
                start,
            });
        }
        entries.push((epoch, start));
    }
    Ok((entries, carried))
}

/// Replaces the checkpoint of `dir` with `bytes` (from
/// [`LeaderEpochs::encode`]) and syncs the directory: blocking, for the
/// executor's blocking thread.
pub(super) fn write_blocking(dir: &Path, bytes: &[u8]) -> io::Result<()> {
    replace_file(
        &dir.join(LEADER_EPOCHS_NAME),
        &dir.join(TEMPORARY_NAME),
        bytes,
    )?;
    std::fs::File::open(dir)?.sync_all()
}

/// Writes the entries if they changed since the last write, off the
/// shard's thread. On error the entries stay marked as changed.
pub(super) async fn write_if_changed(shared: &Shared) -> io::Result<()> {
    let (dir, bytes) = {
        let mut state = shared.borrow_mut();
        if !state.epochs.dirty {
            return Ok(());
        }
        state.epochs.dirty = false;
        (state.dir.clone(), state.epochs.encode())
    };
    let written = glommio::executor()
        .spawn_blocking({
            let dir = dir.clone();
            move || write_blocking(&dir, &bytes)
        })
        .await;
    if written.is_err() {
        shared.borrow_mut().epochs.dirty = true;
    }
    written
}

/// Reads the checkpoint of `dir`: `None` if there is none.
fn read_file(dir: &Path) -> Result<Option<Decoded>, String> {
    let path = dir.join(LEADER_EPOCHS_NAME);
    let bytes = match std::fs::metadata(&path) {
        Ok(metadata) => metadata.len(),
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error.to_string()),
    };
    if bytes > FILE_BYTES_MAX as u64 {
        return Err(LeaderEpochsError::TooLarge { bytes }.to_string());
    }
    let bytes = std::fs::read(&path).map_err(|error| error.to_string())?;
    decode(&bytes).map(Some).map_err(|error| error.to_string())
}

/// The entries a file holds (the last `carried` or not), reconciled with a
/// recovered log ending at `end` and starting at `log_start`, whose
/// recovery scan read batches `scanned` (base offset, epoch) in offset
/// order; `None` if they disagree.
fn reconcile(
    (mut entries, carried): Decoded,
    log_start: Offset,
    end: Offset,
    scanned: &[(Offset, u32)],
) -> Option<LeaderEpochs> {
    // At or past the end: batches the crash took (the flusher writes an
    // entry before its batch), but for an entry the log start carried to
    // an emptied log's end.
    let kept_carried = entries
        .last()
        .copied()
        .filter(|&(_, start)| carried && start == end && start == log_start);
    entries.retain(|&(_, start)| start < end);
    entries.extend(kept_carried);
    let mut epochs = LeaderEpochs {
        entries,
        carried: false,
        dirty: false,
    };
    epochs.start_at(log_start, end);
    epochs.dirty = false;
    for &(base, epoch) in scanned {
        let covering = epochs
            .entries
            .partition_point(|&(_, start)| start <= base)
            .checked_sub(1);
        match covering.map(|at| epochs.entries[at]) {
            Some((covering_epoch, _)) if covering_epoch == epoch => {}
            // A new epoch after every entry: its entry did not reach the
            // file, which the flusher's order rules out, but the log says.
            _ if epochs.last_epoch().is_none_or(|last| epoch > last) => {
                epochs.on_batch(epoch, base);
            }
            _ => return None,
        }
    }
    Some(epochs)
}

/// On open: the leader epochs of the recovered log, from the checkpoint
/// reconciled with it or rebuilt from its batch headers; written back if
/// that changed them. `scanned` are the (base offset, epoch) of the batches
/// the recovery scan of the active segment read.
pub(super) async fn recover(
    dir: &Path,
    segments: &BTreeMap<Offset, Segment>,
    log_start: Offset,
    end: Offset,
    scanned: &[(Offset, u32)],
) -> Result<LeaderEpochs, OpenError> {
    let _ = std::fs::remove_file(dir.join(TEMPORARY_NAME));
    let from_file = read_file(dir);
    let reconciled = match &from_file {
        Ok(Some(decoded)) => reconcile(decoded.clone(), log_start, end, scanned),
        Ok(None) | Err(_) => None,
    };
    let epochs = match reconciled {
        Some(epochs) => epochs,
        None => {
            let first_base = segments.keys().next().copied().unwrap_or_default();
            let mut epochs = LeaderEpochs::default();
            let batches = walk_headers(segments, first_base, |header| {
                let base = Offset(header.base_offset);
                if epochs
                    .last_epoch()
                    .is_some_and(|last| header.leader_epoch < last)
                {
                    // An older leader's batch after a newer one's: kept, as
                    // the log holds it, under the newer epoch.
                    tracing::warn!(
                        log = %dir.display(), %base, epoch = header.leader_epoch,
                        "a batch's leader epoch goes back in the log"
                    );
                    return;
                }
                epochs.on_batch(header.leader_epoch, base);
            })
            .await?;
            epochs.start_at(log_start, end);
            let quiet = matches!(from_file, Ok(None)) && end == first_base;
            if !quiet {
                let reason = match &from_file {
                    Ok(None) => "missing".to_string(),
                    Ok(Some(_)) => "it disagrees with the log".to_string(),
                    Err(reason) => reason.clone(),
                };
                tracing::warn!(
                    log = %dir.display(), %reason, batches, epochs = epochs.entries.len(),
                    "leader epoch checkpoint rebuilt from the log"
                );
            }
            epochs.dirty = true;
            epochs
        }
    };
    let mut epochs = epochs;
    let unchanged = matches!(&from_file,
        Ok(Some((entries, carried))) if *entries == epochs.entries && *carried == epochs.carried);
    if !unchanged {
        write_blocking(dir, &epochs.encode()).map_err(|source| OpenError::Io {
            operation: "write",
            path: dir.join(LEADER_EPOCHS_NAME),
            source,
        })?;
    }
    epochs.dirty = false;
    Ok(epochs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epochs(entries: &[(u32, u64)]) -> LeaderEpochs {
        LeaderEpochs {
            entries: entries.iter().map(|&(e, o)| (e, Offset(o))).collect(),
            carried: false,
            dirty: false,
        }
    }

    #[test]
    fn batches_start_entries_only_for_new_epochs() {
        let mut log = LeaderEpochs::default();
        log.on_batch(0, Offset(0));
        log.on_batch(0, Offset(5));
        log.on_batch(3, Offset(9));
        log.on_batch(3, Offset(12));
        log.on_batch(4, Offset(20));
        assert_eq!(log, {
            let mut expected = epochs(&[(0, 0), (3, 9), (4, 20)]);
            expected.dirty = true;
            expected
        });
        assert_eq!(log.last_epoch(), Some(4));
    }

    #[test]
    fn truncation_and_the_log_start_follow_kip_101() {
        let mut log = epochs(&[(1, 0), (3, 10), (5, 20), (6, 30)]);
        log.truncate(Offset(20));
        assert_eq!(log.entries, epochs(&[(1, 0), (3, 10)]).entries);
        assert!(log.dirty);
        let mut log = epochs(&[(1, 0), (3, 10), (5, 20), (6, 30)]);
        log.start_at(Offset(15), Offset(44));
        assert_eq!(log.entries, epochs(&[(3, 15), (5, 20), (6, 30)]).entries);
        log.start_at(Offset(20), Offset(44));
        assert_eq!(log.entries, epochs(&[(5, 20), (6, 30)]).entries);
        assert!(!log.carried);
        log.start_at(Offset(44), Offset(44));
        assert_eq!(log.entries, epochs(&[(6, 44)]).entries);
        assert!(
            log.carried,
            "the last epoch is carried to the emptied log's start"
        );
        // A new epoch on an emptied log takes the place of the carried entry.
        log.on_batch(7, Offset(44));
        assert_eq!(log.entries, epochs(&[(7, 44)]).entries);
        assert!(!log.carried);
    }

    #[test]
    fn the_file_reads_back_and_damage_is_caught() {
        let entries = epochs(&[(0, 0), (2, 100), (9, 1 << 40)]);
        let bytes = entries.encode();
        assert_eq!(decode(&bytes).unwrap(), (entries.entries.clone(), false));
        let carried = LeaderEpochs {
            carried: true,
            ..entries.clone()
        };
        assert_eq!(decode(&carried.encode()).unwrap(), (entries.entries, true));
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x04;
            assert!(
                decode(&damaged).is_err(),
                "a flipped bit at byte {at} passed"
            );
        }
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut} passed");
        }
        let falling = encode(&[(3, Offset(0)), (2, Offset(10))], false);
        assert!(matches!(
            decode(&falling),
            Err(LeaderEpochsError::NotRising { index: 1, .. })
        ));
    }

    #[test]
    fn reconciling_drops_what_the_log_lost_and_adds_what_it_has() {
        let file = (epochs(&[(1, 0), (2, 50), (3, 90)]).entries, false);
        // The batch of epoch 3 was lost; epoch 2's batches were scanned.
        let reconciled =
            reconcile(file.clone(), Offset(0), Offset(90), &[(Offset(60), 2)]).unwrap();
        assert_eq!(reconciled.entries, epochs(&[(1, 0), (2, 50)]).entries);
        // The first batch of an empty log was lost, or the log start
        // carried the last epoch to its end: the file tells which.
        let first = (epochs(&[(4, 0)]).entries, false);
        assert_eq!(
            reconcile(first, Offset(0), Offset(0), &[]).unwrap().entries,
            vec![]
        );
        let carried = (epochs(&[(1, 0), (4, 90)]).entries, true);
        let reconciled = reconcile(carried, Offset(90), Offset(90), &[]).unwrap();
        assert_eq!(reconciled.entries, epochs(&[(4, 90)]).entries);
        assert!(reconciled.carried);
        // The log went on in a new epoch the file does not know.
        let reconciled = reconcile(
            file.clone(),
            Offset(0),
            Offset(120),
            &[(Offset(95), 3), (Offset(100), 4)],
        )
        .unwrap();
        assert_eq!(
            reconciled.entries,
            epochs(&[(1, 0), (2, 50), (3, 90), (4, 100)]).entries
        );
        // A batch whose epoch is not its entry's: the file is not the log's.
        assert!(reconcile(file, Offset(0), Offset(120), &[(Offset(60), 3)]).is_none());
    }
}
