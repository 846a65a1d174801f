//! Producer snapshots: the idempotent producers' state, and the
//! transactions open on the partition, in a file, so that opening a log
//! replays a segment's batch headers at most, not the log. With them, each
//! segment's file of aborted transactions: the aborts whose markers it
//! holds, written before the snapshot that follows the segment, so that
//! what a snapshot does not replay is on disk.
//!
//! A snapshot `<offset, 20 digits>.producers` holds the state of the log
//! below `offset` (the format is at [`super::producers::SNAPSHOT_MAGIC`]). It
//! is written
//!
//! * when a segment rolls, at the new segment's base, once everything before
//!   it is durable (and before the new segment's file is created, whose
//!   directory sync makes the snapshot's name durable too);
//! * on a clean close, at the log end, once everything is durable.
//!
//! Each is written to a temporary file, fsynced and renamed into place.
//!
//! On open, the newest snapshot that reads back whole and is not past the
//! recovered log end is loaded, and the producer fields of every batch header
//! from its offset to the end are replayed. A snapshot that does not read
//! back is logged, deleted and the next older one tried; with none, the log
//! is replayed from its first segment's base. A snapshot is never needed for correctness,
//! only to remember producers of segments retention deleted and to keep the
//! replay short: a failure to write one is logged and the log goes on.
//!
//! Deleting segments (retention, or the log start moved by
//! `Log::delete_records`) deletes the snapshots below the first segment
//! left; a new snapshot deletes the older ones that are not at a segment
//! base (those of earlier clean closes).

use std::{collections::BTreeMap, io, path::Path};

use super::{
    producers::{ProducerAppend, Producers, SnapshotError, SNAPSHOT_BYTES_MAX},
    segment::{replace_file, segment_path, Segment, ABORTED_SUFFIX},
    transactions::{
        decode_aborted, encode_aborted, AbortedTransaction, Transactions, ABORTED_ENTRY_BYTES,
    },
    OpenError, Shared, SEGMENT_BYTES_CAP,
};
use crate::{
    batch::{BatchError, BatchHeader, BATCH_HEADER_BYTES, MARKER_BATCH_BYTES},
    Offset,
};

/// The suffix of a producer snapshot file.
pub const PRODUCERS_SUFFIX: &str = "producers";
/// A snapshot being written; one left behind by a crash is deleted on open.
const TEMPORARY_SUFFIX: &str = "producers.tmp";
/// Such a file being written.
const ABORTED_TEMPORARY_SUFFIX: &str = "aborted.tmp";
/// The largest file of aborted transactions: a segment of the largest size
/// made of nothing but abort markers.
const ABORTED_BYTES_MAX: u64 =
    16 + SEGMENT_BYTES_CAP / MARKER_BATCH_BYTES as u64 * ABORTED_ENTRY_BYTES as u64;

/// Bytes read at a time when replaying batch headers: whole batches of a
/// segment of small ones, one header and the data after it for large ones.
const REPLAY_CHUNK_BYTES: usize = 1024 * 1024;

/// The offset named by a snapshot's file name, if it is one.
fn parse_snapshot_name(name: &str) -> Option<Offset> {
    let stem = name.strip_suffix(PRODUCERS_SUFFIX)?.strip_suffix('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok().map(Offset)
}

/// The offsets of the snapshots in `dir`, oldest first.
pub(super) fn snapshot_offsets(dir: &Path) -> io::Result<Vec<Offset>> {
    let mut offsets = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        if let Some(offset) = entry?.file_name().to_str().and_then(parse_snapshot_name) {
            offsets.push(offset);
        }
    }
    offsets.sort();
    Ok(offsets)
}

fn remove(path: &Path, why: &str) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, why, "could not delete a producer snapshot")
        }
    }
}

/// Writes `bytes` as the snapshot at `offset`: a temporary file, fsynced,
/// renamed into place. The directory is not synced here.
fn write_snapshot(dir: &Path, offset: Offset, bytes: &[u8]) -> io::Result<()> {
    replace_file(
        &segment_path(dir, offset, PRODUCERS_SUFFIX),
        &segment_path(dir, offset, TEMPORARY_SUFFIX),
        bytes,
    )
}

/// Deletes the snapshots below `keep` that are not at a segment base.
fn prune(dir: &Path, keep: Offset, segment_bases: &[Offset]) {
    let offsets = match snapshot_offsets(dir) {
        Ok(offsets) => offsets,
        Err(error) => {
            tracing::warn!(log = %dir.display(), %error, "could not list producer snapshots");
            return;
        }
    };
    for offset in offsets {
        if offset < keep && segment_bases.binary_search(&offset).is_err() {
            remove(&segment_path(dir, offset, PRODUCERS_SUFFIX), "superseded");
        }
    }
}

/// Writes the aborts of the segment at `base` as its file (a temporary
/// file, fsynced, renamed), or removes the file when it has none.
/// Blocking; the directory is not synced here.
pub(super) fn write_aborted(
    dir: &Path,
    base: Offset,
    aborted: &[AbortedTransaction],
) -> io::Result<()> {
    let path = segment_path(dir, base, ABORTED_SUFFIX);
    if aborted.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        };
    }
    replace_file(
        &path,
        &segment_path(dir, base, ABORTED_TEMPORARY_SUFFIX),
        &encode_aborted(aborted),
    )
}

/// The aborts of `segment_base`'s segment, then the snapshot: a snapshot is
/// only written once the aborts below it are on disk, so that opening the
/// log finds below the snapshot it loads what it does not replay.
fn write_aborted_and_snapshot(
    dir: &Path,
    segment_base: Offset,
    aborted: &[AbortedTransaction],
    offset: Offset,
    bytes: &[u8],
    segment_bases: &[Offset],
) {
    match write_aborted(dir, segment_base, aborted) {
        Ok(()) => write_and_prune(dir, offset, bytes, segment_bases),
        Err(error) => tracing::warn!(
            log = %dir.display(), segment = %segment_base, %error,
            "could not write a segment's aborted transactions; no producer snapshot either, so the next open replays them"
        ),
    }
}

/// Writes `bytes`, producers encoded at `offset`, as the snapshot at
/// `offset` and prunes older ones; a failure is logged, not returned.
fn write_and_prune(dir: &Path, offset: Offset, bytes: &[u8], segment_bases: &[Offset]) {
    match write_snapshot(dir, offset, bytes) {
        Ok(()) => prune(dir, offset, segment_bases),
        Err(error) => tracing::warn!(
            log = %dir.display(), %offset, %error,
            "could not write a producer snapshot; the next open replays more"
        ),
    }
}

/// Before the first write to the segment at `segment_base`, with everything
/// before it durable: the snapshot at `segment_base`. The producer state in
/// memory holds the queued batches too (those at and after `segment_base`),
/// so their changes are undone on a copy first.
pub(super) async fn write_at_roll(shared: &Shared, segment_base: Offset) {
    let (dir, producers, transactions, sealed_base, segment_bases) = {
        let state = shared.borrow();
        let Some(&sealed_base) = state
            .segments
            .range(..segment_base)
            .next_back()
            .map(|(base, _)| base)
        else {
            // The first segment: nothing is before it.
            return;
        };
        assert!(
            state.durable_end >= segment_base,
            "a snapshot at {segment_base} before the log is durable there ({})",
            state.durable_end
        );
        if let Some(front) = state.pending.front() {
            assert_eq!(
                front.batch.base_offset(),
                segment_base,
                "the first batch queued does not start the new segment"
            );
        }
        let mut producers = state.producers.clone();
        let mut transactions = state.transactions.clone();
        for pending in state.pending.iter().rev() {
            if let Some(undo) = &pending.producer_undo {
                producers.undo(undo);
            }
            if let Some(undo) = &pending.transaction_undo {
                transactions.undo(undo);
            }
        }
        let bases: Vec<Offset> = state.segments.keys().copied().collect();
        (
            state.dir.clone(),
            producers,
            transactions,
            sealed_base,
            bases,
        )
    };
    // Written and synced on the executor's blocking thread, so that the
    // shard's other partitions and connections do not wait for it.
    let bytes = producers.encode(segment_base, &transactions);
    let aborted = transactions.aborted_in_segment(sealed_base, segment_base);
    glommio::executor()
        .spawn_blocking(move || {
            write_aborted_and_snapshot(
                &dir,
                sealed_base,
                &aborted,
                segment_base,
                &bytes,
                &segment_bases,
            )
        })
        .await;
}

/// On a clean close, with everything written and durable: the snapshot at
/// the log end, and a sync of the directory so that it is found next time.
pub(super) async fn write_on_close(shared: &Shared) {
    let (dir, end, bytes, active_base, aborted, segment_bases) = {
        let state = shared.borrow();
        if state.failure.is_some()
            || !state.pending.is_empty()
            || state.durable_end != state.end
            || state.segments.is_empty()
        {
            return;
        }
        let bases: Vec<Offset> = state.segments.keys().copied().collect();
        let active_base = *bases.last().expect("a segment exists");
        let bytes = state.producers.encode(state.end, &state.transactions);
        let aborted = state
            .transactions
            .aborted_in_segment(active_base, state.end);
        (
            state.dir.clone(),
            state.end,
            bytes,
            active_base,
            aborted,
            bases,
        )
    };
    write_aborted_and_snapshot(&dir, active_base, &aborted, end, &bytes, &segment_bases);
    if let Err(error) = super::segment::sync_dir(&dir).await {
        tracing::warn!(log = %dir.display(), %error, "could not sync the directory of a producer snapshot");
    }
}

/// After segments were deleted (retention, or a log start moved by
/// `Log::delete_records`), so that the first one left starts at
/// `first_base`: the snapshots below it go with their segments. The one at
/// `first_base` stays: it holds the producers of the deleted segments. It is
/// at or below the log start, which need not be a segment base; replaying
/// from it reads the first segment from its base, still on disk.
pub(super) fn delete_below(dir: &Path, first_base: Offset) {
    match snapshot_offsets(dir) {
        Ok(offsets) => {
            for offset in offsets.into_iter().filter(|&offset| offset < first_base) {
                remove(
                    &segment_path(dir, offset, PRODUCERS_SUFFIX),
                    "below the first segment",
                );
            }
        }
        Err(error) => {
            tracing::warn!(log = %dir.display(), %error, "could not list producer snapshots")
        }
    }
}

/// After a truncation to `end` (all of them for `None`, a log emptied):
/// the snapshots past it hold producers of batches that are gone. The one
/// at `end` is the state below it, which stays. Blocking; the directory is
/// not synced here.
pub(super) fn delete_past(dir: &Path, end: Option<Offset>) -> io::Result<()> {
    for offset in snapshot_offsets(dir)? {
        if end.is_none_or(|end| offset > end) {
            match std::fs::remove_file(segment_path(dir, offset, PRODUCERS_SUFFIX)) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(error),
            }
        }
    }
    Ok(())
}

/// Rewrites each snapshot `(offset, producer id)` of `closed` without
/// that producer's open transaction (the cleaner removed its marker, and
/// the transaction has no batch left). A snapshot not there is left so;
/// one that does not read back is deleted (a snapshot is never needed for
/// correctness). Blocking; the directory is not synced here.
pub(super) fn close_transactions(dir: &Path, closed: &[(Offset, i64)]) -> io::Result<()> {
    let mut by_snapshot: BTreeMap<Offset, Vec<i64>> = BTreeMap::new();
    for &(offset, producer_id) in closed {
        by_snapshot.entry(offset).or_default().push(producer_id);
    }
    for (offset, producers_closed) in by_snapshot {
        let path = segment_path(dir, offset, PRODUCERS_SUFFIX);
        if !path.exists() {
            continue;
        }
        let (producers, mut transactions) = match read_snapshot(&path, offset) {
            Ok(read) => read,
            Err(reason) => {
                tracing::warn!(snapshot = %path.display(), %reason, "unusable producer snapshot: deleted");
                remove(&path, "unusable");
                continue;
            }
        };
        let mut changed = false;
        for producer_id in producers_closed {
            changed |= transactions.close_open(producer_id);
        }
        if changed {
            write_snapshot(dir, offset, &producers.encode(offset, &transactions))?;
        }
    }
    Ok(())
}

/// Reads the snapshot at `offset`.
fn read_snapshot(path: &Path, offset: Offset) -> Result<(Producers, Transactions), String> {
    let bytes = std::fs::metadata(path)
        .map_err(|error| error.to_string())?
        .len();
    if bytes > SNAPSHOT_BYTES_MAX as u64 {
        return Err(format!(
            "{bytes} bytes, over the largest snapshot ({SNAPSHOT_BYTES_MAX})"
        ));
    }
    let bytes = std::fs::read(path).map_err(|error| error.to_string())?;
    let (holds, producers, transactions) =
        Producers::decode(&bytes).map_err(|error| error.to_string())?;
    if holds != offset {
        return Err(SnapshotError::MisNamed {
            named: offset,
            holds,
        }
        .to_string());
    }
    Ok((producers, transactions))
}

/// Reads the file of aborted transactions at `path`, if there is one.
pub(super) fn read_aborted(path: &Path) -> Result<Option<Vec<AbortedTransaction>>, String> {
    let bytes = match std::fs::metadata(path) {
        Ok(metadata) => metadata.len(),
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error.to_string()),
    };
    if bytes > ABORTED_BYTES_MAX {
        return Err(format!(
            "{bytes} bytes, over the largest ({ABORTED_BYTES_MAX})"
        ));
    }
    let bytes = std::fs::read(path).map_err(|error| error.to_string())?;
    decode_aborted(&bytes)
        .map(Some)
        .map_err(|error| error.to_string())
}

/// The producer state and the transactions of a recovered log: the newest
/// usable snapshot, the aborts of the segments' files, and the batch
/// headers from the snapshot's offset to `end` replayed onto them.
/// `first_base` is where the first segment starts, which may be below the
/// log start (`Log::delete_records` moves it inside a segment): the
/// producers of the batches between the two are remembered like those of
/// deleted segments. A segment whose file of aborts does not read back is
/// replayed instead: the snapshot loaded is then one at or below it.
pub(super) async fn load(
    dir: &Path,
    segments: &BTreeMap<Offset, Segment>,
    first_base: Offset,
    end: Offset,
) -> Result<(Producers, Transactions), OpenError> {
    let listed = |source| OpenError::Io {
        operation: "list",
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(listed)? {
        let name = entry.map_err(listed)?.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if name.ends_with(&format!(".{TEMPORARY_SUFFIX}"))
            || name.ends_with(&format!(".{ABORTED_TEMPORARY_SUFFIX}"))
        {
            remove(&dir.join(name), "left by a crash");
        }
        // The aborts of a segment that is gone (a crash while its files
        // were deleted): a later segment at that base must not find them.
        let aborted_base = name
            .strip_suffix(&format!(".{ABORTED_SUFFIX}"))
            .filter(|stem| stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|stem| stem.parse().ok())
            .map(Offset);
        if aborted_base.is_some_and(|base| !segments.contains_key(&base)) {
            remove(&dir.join(name), "its segment is gone");
        }
    }
    // The aborts each segment's file keeps; the first segment whose file
    // does not read bounds the snapshot to replay from.
    let mut aborted = Vec::new();
    let mut unreadable: Option<Offset> = None;
    for &base in segments.keys() {
        let path = segment_path(dir, base, ABORTED_SUFFIX);
        match read_aborted(&path) {
            Ok(None) => {}
            Ok(Some(read)) => aborted.extend(read),
            Err(reason) => {
                tracing::warn!(
                    file = %path.display(), %reason,
                    "unusable file of aborted transactions: deleted, its segment is replayed"
                );
                remove(&path, "unusable");
                unreadable.get_or_insert(base);
            }
        }
    }
    aborted.retain(|aborted| aborted.last_offset >= first_base && aborted.last_offset < end);
    let mut loaded = None;
    for offset in snapshot_offsets(dir).map_err(listed)?.into_iter().rev() {
        let path = segment_path(dir, offset, PRODUCERS_SUFFIX);
        if unreadable.is_some_and(|base| offset > base) && offset <= end {
            continue;
        }
        if offset > end {
            tracing::warn!(
                snapshot = %path.display(), log_end = %end,
                "producer snapshot past the log end: deleted"
            );
            remove(&path, "past the log end");
            continue;
        }
        match read_snapshot(&path, offset) {
            Ok(state) => {
                loaded = Some((offset, state));
                break;
            }
            Err(reason) => {
                tracing::warn!(
                    snapshot = %path.display(), %reason,
                    "unusable producer snapshot: deleted, an older one or the log is replayed"
                );
                remove(&path, "unusable");
            }
        }
    }
    let (snapshot, mut producers, mut transactions) = match loaded {
        Some((offset, (producers, transactions))) => (Some(offset), producers, transactions),
        None => (None, Producers::default(), Transactions::default()),
    };
    transactions.restore_aborted(&aborted);
    let from = snapshot.unwrap_or(first_base).max(first_base);
    let replayed = walk_headers(segments, from, |header| {
        let last_offset = Offset(header.next_offset() - 1);
        if let Some(append) = ProducerAppend::of(header) {
            producers.replay(&append, Offset(header.base_offset), last_offset);
        }
        if header.is_transactional() {
            if header.marker().is_some() {
                producers.record_marker(header.producer_id, header.producer_epoch, last_offset);
            }
            transactions.record(header, Offset(header.base_offset), last_offset);
        }
    })
    .await?;
    if snapshot.is_none_or(|snapshot| snapshot != end) {
        tracing::info!(
            log = %dir.display(), snapshot = ?snapshot.map(|offset| offset.0), %from,
            log_end = %end, batches = replayed, producers = producers.len(),
            "producer state rebuilt"
        );
    }
    Ok((producers, transactions))
}

/// Calls `on_header` with the header of every batch from `from` to the end
/// of the last segment, in offset order. Returns how many batches it read.
/// The segments were recovered, so a header that does not parse, or offsets
/// that do not follow, are corruption. Reads whole chunks, not a header at
/// a time: a segment of small batches is read in a few large reads.
pub(super) async fn walk_headers(
    segments: &BTreeMap<Offset, Segment>,
    from: Offset,
    mut on_header: impl FnMut(&BatchHeader),
) -> Result<u64, OpenError> {
    let mut batches = 0;
    for segment in segments
        .values()
        .filter(|segment| segment.next_offset > from)
    {
        let file = segment
            .file
            .as_ref()
            .expect("a recovered segment has its file");
        let path = file.path.to_path_buf();
        let corrupt = |position, reason| OpenError::Corruption {
            segment: path.clone(),
            position,
            reason,
        };
        let end_position = segment.bytes;
        let mut position = if segment.base >= from {
            0
        } else {
            segment.index.position_for(segment.relative(from))
        };
        let mut expected: Option<u64> = None;
        let mut chunk_start = position;
        let mut chunk: &[u8] = &[];
        let mut read;
        while position < end_position {
            if position + BATCH_HEADER_BYTES as u64 > end_position {
                return Err(corrupt(
                    position,
                    BatchError::TooShort {
                        bytes: (end_position - position) as usize,
                    },
                ));
            }
            if position < chunk_start
                || position + BATCH_HEADER_BYTES as u64 > chunk_start + chunk.len() as u64
            {
                let size = REPLAY_CHUNK_BYTES.min((end_position - position) as usize);
                read = file
                    .read_at(position, size)
                    .await
                    .map_err(|source| OpenError::Io {
                        operation: "read",
                        path: path.clone(),
                        source,
                    })?;
                chunk = &read;
                chunk_start = position;
            }
            let header = BatchHeader::parse(&chunk[(position - chunk_start) as usize..])
                .map_err(|reason| corrupt(position, reason))?;
            // At or above the previous batch's end: a compacted segment
            // keeps its offsets with the gaps the cleaner left.
            if expected.is_some_and(|expected| header.base_offset < expected) {
                let reason = BatchError::OffsetOutOfSequence {
                    base_offset: header.base_offset,
                    expected: expected.unwrap_or_default(),
                };
                return Err(corrupt(position, reason));
            }
            if (header.batch_bytes as usize) < BATCH_HEADER_BYTES {
                let reason = BatchError::LengthMismatch {
                    declared: header.batch_bytes as usize,
                    available: (end_position - position) as usize,
                };
                return Err(corrupt(position, reason));
            }
            if header.base_offset >= from.0 {
                on_header(&header);
                batches += 1;
            }
            expected = Some(header.next_offset());
            position += u64::from(header.batch_bytes);
        }
        // A cleaned segment may end in a gap (its last batches removed),
        // never past its end.
        if position != end_position
            || expected.is_some_and(|expected| expected > segment.next_offset.0)
        {
            return Err(OpenError::Inconsistent {
                segment: path,
                detail: format!(
                    "replaying producers: the batches end at byte {position} and offset {expected:?}, \
                     the segment at byte {end_position} and offset {}",
                    segment.next_offset
                ),
            });
        }
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_are_offsets() {
        assert_eq!(
            parse_snapshot_name("00000000000000001234.producers"),
            Some(Offset(1234))
        );
        assert_eq!(parse_snapshot_name("00000000000000001234.log"), None);
        assert_eq!(
            parse_snapshot_name("00000000000000001234.producers.tmp"),
            None
        );
        assert_eq!(parse_snapshot_name("1234.producers"), None);
        assert_eq!(parse_snapshot_name("0000000000000000123x.producers"), None);
    }
}
