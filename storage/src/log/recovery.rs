//! Opening a log: finding its segments, checking and rebuilding their
//! indexes, scanning the active segment to find where the log ends, reading
//! where it starts (see `log_start`) and rebuilding the producer state (see
//! `producer_snapshots`).
//!
//! * A sealed segment's indexes are trusted when their footer checks out and
//!   matches the segment's size; otherwise the segment is scanned and its
//!   indexes rebuilt. A bad batch in a sealed segment is corruption.
//! * The active (last) segment is scanned from its last index entry that
//!   still points at the right batch. Where the scan stops at a bad batch,
//!   the rest of the file is searched for any valid batch: if there is one,
//!   the bad batch is corruption (reported, nothing truncated); if not, it is
//!   a torn write at the end, and the log is truncated there (and says so).

use std::{
    collections::{BTreeMap, VecDeque},
    io,
    path::Path,
};

use bytes::Bytes;
use glommio::io::OpenOptions;

use super::{
    index::{decode_offsets, decode_times, Decoded, OffsetEntry},
    segment::{
        parse_segment_name, segment_path, to_io_error, Segment, SegmentFile, INDEX_SUFFIX,
        LOG_SUFFIX, TIME_INDEX_SUFFIX,
    },
    LogConfig, LogOptions, OpenError, State, PAGE_BYTES,
};
use crate::{
    batch::{Batch, BatchError, BatchHeader, BATCH_BYTES_MAX, BATCH_HEADER_BYTES},
    Offset,
};

/// Bytes read at a time when scanning a segment.
const SCAN_CHUNK_BYTES: usize = 1024 * 1024;

/// Where a scan stopped.
#[derive(Debug)]
pub(super) enum Stop {
    /// Zeros or the end of the file: a clean end.
    End,
    /// A batch that does not check out.
    Invalid { position: u64, reason: BatchError },
}

#[derive(Debug)]
pub(super) struct Scan {
    pub batches: u64,
    /// Just past the last valid batch.
    pub end_position: u64,
    pub next_offset: Offset,
    pub stop: Stop,
}

/// Reads batches from `position` until `file_end`, checking each one's
/// header, length, CRC and base offset (which must be `expected`, then each
/// batch's next offset). Calls `on_batch` for each valid batch.
pub(super) async fn scan(
    file: &SegmentFile,
    mut position: u64,
    file_end: u64,
    mut expected: Offset,
    mut on_batch: impl FnMut(&Batch, u64),
) -> io::Result<Scan> {
    let mut batches = 0;
    let mut chunk_bytes = SCAN_CHUNK_BYTES;
    loop {
        if position + BATCH_HEADER_BYTES as u64 > file_end {
            let stop = if position < file_end && !is_zero(file, position, file_end).await? {
                Stop::Invalid {
                    position,
                    reason: BatchError::TooShort {
                        bytes: (file_end - position) as usize,
                    },
                }
            } else {
                Stop::End
            };
            return Ok(Scan {
                batches,
                end_position: position,
                next_offset: expected,
                stop,
            });
        }
        let size = chunk_bytes.min((file_end - position) as usize);
        let read = file.read_at(position, size).await?;
        let data = Bytes::copy_from_slice(&read);
        let mut at = 0usize;
        let mut stop = None;
        while data.len() - at >= BATCH_HEADER_BYTES {
            let here = position + at as u64;
            if data[at..at + BATCH_HEADER_BYTES]
                .iter()
                .all(|&byte| byte == 0)
            {
                stop = Some(Stop::End);
                break;
            }
            let header = match BatchHeader::parse(&data[at..]) {
                Ok(header) => header,
                Err(reason) => {
                    stop = Some(Stop::Invalid {
                        position: here,
                        reason,
                    });
                    break;
                }
            };
            let length = header.batch_bytes as usize;
            if !(BATCH_HEADER_BYTES..=BATCH_BYTES_MAX).contains(&length)
                || here + length as u64 > file_end
            {
                let reason = if length > BATCH_BYTES_MAX {
                    BatchError::TooLarge {
                        bytes: length,
                        max: BATCH_BYTES_MAX,
                    }
                } else {
                    BatchError::LengthMismatch {
                        declared: length,
                        available: (file_end - here) as usize,
                    }
                };
                stop = Some(Stop::Invalid {
                    position: here,
                    reason,
                });
                break;
            }
            if at + length > data.len() {
                break; // continue from this batch with the next read
            }
            let batch = match Batch::validate_stored(data.slice(at..at + length)) {
                Ok(batch) => batch,
                Err(reason) => {
                    stop = Some(Stop::Invalid {
                        position: here,
                        reason,
                    });
                    break;
                }
            };
            // Above the previous batch's end, not at it: a compacted
            // log keeps its offsets with the gaps the cleaner left.
            if batch.base_offset() < expected {
                let reason = BatchError::OffsetOutOfSequence {
                    base_offset: batch.base_offset().0,
                    expected: expected.0,
                };
                stop = Some(Stop::Invalid {
                    position: here,
                    reason,
                });
                break;
            }
            on_batch(&batch, here);
            expected = batch.last_offset().next();
            batches += 1;
            at += length;
        }
        if let Some(stop) = stop {
            let end_position = position + at as u64;
            return Ok(Scan {
                batches,
                end_position,
                next_offset: expected,
                stop,
            });
        }
        if at == 0 {
            // One batch larger than the chunk: read it whole next time.
            let length = BatchHeader::parse(&data)
                .map(|h| h.batch_bytes as usize)
                .unwrap_or(0);
            chunk_bytes = length.max(SCAN_CHUNK_BYTES);
        } else {
            chunk_bytes = SCAN_CHUNK_BYTES;
        }
        position += at as u64;
    }
}

/// Scans `range` of a segment as [`scan`] does, adding every batch to the
/// segment's `index` and its max timestamp to `running_max`, and showing it
/// to `seen`.
#[allow(clippy::too_many_arguments)]
async fn scan_into_index(
    file: &SegmentFile,
    (start, end): (u64, u64),
    base: Offset,
    expected: Offset,
    index: &mut super::index::SegmentIndex,
    running_max: &mut Option<i64>,
    interval_bytes: u64,
    mut seen: impl FnMut(&Batch),
) -> io::Result<Scan> {
    scan(file, start, end, expected, |batch, position| {
        seen(batch);
        *running_max = (*running_max).max(Some(batch.max_timestamp()));
        let relative = (batch.base_offset().0 - base.0) as u32;
        index.on_batch(
            relative,
            position,
            batch.len() as u64,
            *running_max,
            interval_bytes,
        );
    })
    .await
}

async fn is_zero(file: &SegmentFile, from: u64, to: u64) -> io::Result<bool> {
    let read = file.read_at(from, (to - from) as usize).await?;
    Ok(read.iter().all(|&byte| byte == 0))
}

/// Searches `(from, file_end)` for any batch that checks out and whose base
/// offset is at least `expected`: proof that what stopped a scan at `from`
/// is not a torn end but corruption. Returns its position.
async fn valid_batch_after(
    file: &SegmentFile,
    from: u64,
    file_end: u64,
    expected: Offset,
) -> io::Result<Option<u64>> {
    let mut chunk_start = from + 1;
    while chunk_start + BATCH_HEADER_BYTES as u64 <= file_end {
        let size = SCAN_CHUNK_BYTES.min((file_end - chunk_start) as usize);
        let read = file.read_at(chunk_start, size).await?;
        let data: &[u8] = &read;
        if data.iter().all(|&byte| byte == 0) {
            chunk_start += size as u64;
            continue;
        }
        for at in 0..data.len().saturating_sub(BATCH_HEADER_BYTES - 1) {
            let Ok(header) = BatchHeader::parse(&data[at..]) else {
                continue;
            };
            let length = header.batch_bytes as u64;
            let here = chunk_start + at as u64;
            if header.base_offset < expected.0
                || !(BATCH_HEADER_BYTES as u64..=BATCH_BYTES_MAX as u64).contains(&length)
                || here + length > file_end
            {
                continue;
            }
            let candidate = file.read_at(here, length as usize).await?;
            if Batch::validate_stored(Bytes::copy_from_slice(&candidate)).is_ok() {
                return Ok(Some(here));
            }
        }
        // Overlap by a header so a batch straddling chunks is seen.
        chunk_start += (size - (BATCH_HEADER_BYTES - 1)).max(1) as u64;
    }
    Ok(None)
}

fn io_error<'a>(
    operation: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> OpenError + 'a {
    move |source| OpenError::Io {
        operation,
        path: path.to_path_buf(),
        source,
    }
}

pub(super) async fn recover(
    dir: &Path,
    config: LogConfig,
    options: LogOptions,
) -> Result<State, OpenError> {
    // Absolute, so that the log's files and glommio's directory handles do
    // not depend on the working directory.
    let dir = &std::path::absolute(dir).map_err(io_error("resolve", dir))?;
    let created = !dir.exists();
    std::fs::create_dir_all(dir).map_err(io_error("create directory", dir))?;
    if created {
        if let Some(parent) = dir.parent() {
            super::segment::sync_dir(parent)
                .await
                .map_err(io_error("sync directory", parent))?;
        }
    }
    // A truncation a crash interrupted is completed before anything else
    // reads the files.
    super::replica::complete_interrupted(dir, config.file_delete_delay_ms).await?;
    super::cleaner_swap::complete_interrupted(dir)
        .await
        .map_err(io_error("complete the swap of cleaned segments in", dir))?;
    crate::deleter::delete_leftovers(dir).map_err(io_error("delete leftovers in", dir))?;
    super::spare::remove_leftovers(dir).map_err(io_error("remove spare segments in", dir))?;
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error("list", dir))? {
        let entry = entry.map_err(io_error("list", dir))?;
        if let Some(base) = entry.file_name().to_str().and_then(parse_segment_name) {
            bases.push(base);
        }
    }
    bases.sort();
    prime_iopoll_probe(dir)
        .await
        .map_err(io_error("probe", dir))?;

    let mut segments = BTreeMap::new();
    let mut tail = Vec::new();
    let mut epoch_changes = Vec::new();
    for (i, &base) in bases.iter().enumerate() {
        let next_base = bases.get(i + 1).copied();
        let segment = match next_base {
            Some(next_base) => open_sealed(dir, base, next_base, &config, &options).await?,
            None => {
                let active = open_active(dir, base, &config, &options).await?;
                tail = active.tail;
                epoch_changes = active.epoch_changes;
                active.segment
            }
        };
        if let Some(previous) = segments.values().next_back() {
            let previous: &Segment = previous;
            if previous.next_offset != segment.base {
                return Err(OpenError::Inconsistent {
                    segment: segment_path(dir, segment.base, LOG_SUFFIX),
                    detail: format!("the previous segment ends at {}", previous.next_offset),
                });
            }
        }
        segments.insert(base, segment);
    }

    let first_base = bases.first().copied().unwrap_or_default();
    let end = segments
        .values()
        .next_back()
        .map(|s: &Segment| s.next_offset)
        .unwrap_or_default();
    let (log_start, log_start_checkpoint) = super::log_start::recover(dir, first_base, end).await?;
    assert!(
        first_base <= log_start && log_start <= end,
        "the log start {log_start} is outside [{first_base}, {end}]"
    );
    let (producers, transactions) =
        super::producer_snapshots::load(dir, &segments, first_base, end).await?;
    let epochs =
        super::leader_epochs::recover(dir, &segments, log_start, end, &epoch_changes).await?;
    let now_ms = options.clock.now_ms();
    Ok(State {
        dir: dir.to_path_buf(),
        config,
        clock: options.clock,
        faults: options.faults,
        segments,
        log_start,
        log_start_checkpoint,
        end,
        written_end: end,
        durable_end: end,
        pending: VecDeque::new(),
        pending_bytes: 0,
        unsynced: VecDeque::new(),
        cache: VecDeque::new(),
        cache_bytes: 0,
        tail,
        failure: None,
        disk_full: None,
        leader_epoch: epochs.last_epoch().unwrap_or(0),
        epochs,
        truncating: false,
        swapping: false,
        cleaner_checkpoint: None,
        producers,
        transactions,
        verifications: Default::default(),
        roll_requested: false,
        closing: false,
        last_sync_ms: now_ms,
        flusher_rung: false,
        flusher_waker: None,
        high_watermark: None,
        on_written: None,
        waiters: Vec::new(),
        spare: None,
        spare_refused_for: None,
        slow_io: Default::default(),
    })
}

thread_local! {
    /// Devices whose polled-I/O support this thread's executor has probed.
    static PROBED_DEVICES: std::cell::RefCell<std::collections::HashSet<u64>> =
        Default::default();
}

/// glommio decides once per device and thread whether DMA reads go to the
/// polled ring, by reading from the first file opened there. If that file is
/// empty or unwritten, the read succeeds without reaching the device, the
/// device is wrongly taken as pollable, and every later read fails with
/// EOPNOTSUPP. So before any segment file is opened, a file with real data
/// on the same device is opened first, and the probe tells the truth.
async fn prime_iopoll_probe(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let device = std::fs::metadata(dir)?.dev();
    if PROBED_DEVICES.with(|probed| probed.borrow().contains(&device)) {
        return Ok(());
    }
    let path = dir.join(".iopoll-probe");
    let written = async {
        let mut file = std::fs::File::create(&path)?;
        std::io::Write::write_all(&mut file, &[0x5a; PAGE_BYTES])?;
        file.sync_all()?;
        let probe = OpenOptions::new()
            .read(true)
            .dma_open(&path)
            .await
            .map_err(to_io_error)?;
        probe.close().await.map_err(to_io_error)
    }
    .await;
    let _ = std::fs::remove_file(&path);
    written?;
    PROBED_DEVICES.with(|probed| probed.borrow_mut().insert(device));
    Ok(())
}

async fn open_file(
    path: &Path,
    write: bool,
    options: &LogOptions,
) -> Result<SegmentFile, OpenError> {
    let file = OpenOptions::new()
        .read(true)
        .write(write)
        .dma_open(path)
        .await
        .map_err(|error| OpenError::Io {
            operation: "open",
            path: path.to_path_buf(),
            source: to_io_error(error),
        })?;
    Ok(SegmentFile::new(
        path.to_path_buf(),
        file,
        options.faults.clone(),
    ))
}

fn created_ms(path: &Path, fallback: i64) -> i64 {
    std::fs::metadata(path)
        .and_then(|metadata| metadata.created().or_else(|_| metadata.modified()))
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(fallback)
}

fn read_index(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

/// A sealed segment: trusted indexes, or a full scan that rebuilds them.
async fn open_sealed(
    dir: &Path,
    base: Offset,
    next_base: Offset,
    config: &LogConfig,
    options: &LogOptions,
) -> Result<Segment, OpenError> {
    let path = segment_path(dir, base, LOG_SUFFIX);
    let file = open_file(&path, false, options).await?;
    let bytes = file.file_size().await.map_err(io_error("stat", &path))?;
    let mut segment = Segment::new(base, created_ms(&path, options.clock.now_ms()));
    segment.bytes = bytes;
    segment.written_bytes = bytes;
    segment.next_offset = next_base;
    segment.sealed = true;

    let offsets = decode_offsets(&read_index(&segment_path(dir, base, INDEX_SUFFIX)), bytes);
    let times = decode_times(
        &read_index(&segment_path(dir, base, TIME_INDEX_SUFFIX)),
        bytes,
    );
    match (offsets, times) {
        (Decoded::Sealed(offsets), Decoded::Sealed(times)) => {
            segment.index.offsets = offsets;
            segment.index.times = times;
            segment.max_timestamp = segment.index.times.last().map(|entry| entry.timestamp);
        }
        _ => {
            tracing::info!(segment = %path.display(), "rebuilding the indexes of a sealed segment");
            let mut running_max = None;
            let scan = scan_into_index(
                &file,
                (0, bytes),
                base,
                base,
                &mut segment.index,
                &mut running_max,
                config.index_interval_bytes,
                |_| {},
            )
            .await
            .map_err(io_error("read", &path))?;
            if let Stop::Invalid { position, reason } = scan.stop {
                return Err(OpenError::Corruption {
                    segment: path,
                    position,
                    reason,
                });
            }
            if scan.end_position != bytes || scan.next_offset > next_base {
                return Err(OpenError::Inconsistent {
                    segment: path,
                    detail: format!(
                        "sealed segment ends at byte {} of {bytes} and offset {} but the next segment starts at {next_base}",
                        scan.end_position, scan.next_offset
                    ),
                });
            }
            segment.max_timestamp = running_max;
            if let Some(max) = running_max {
                segment
                    .index
                    .seal_times(max, segment.relative(Offset(next_base.0 - 1)));
            }
            for (suffix, encoded) in [
                (INDEX_SUFFIX, segment.index.encode_sealed_offsets(bytes)),
                (TIME_INDEX_SUFFIX, segment.index.encode_sealed_times(bytes)),
            ] {
                let index_path = segment_path(dir, base, suffix);
                if let Err(error) = std::fs::write(&index_path, encoded) {
                    tracing::warn!(path = %index_path.display(), %error, "could not write a rebuilt index");
                }
            }
        }
    }
    segment.written_max_timestamp = segment.max_timestamp;
    segment.file = Some(file);
    Ok(segment)
}

/// What opening the active segment found.
pub(super) struct Active {
    pub segment: Segment,
    /// Its partial last page.
    pub tail: Vec<u8>,
    /// (base offset, leader epoch) of each batch the scan read whose epoch
    /// differs from the batch before it: where epochs change in the tail.
    pub epoch_changes: Vec<(Offset, u32)>,
}

/// The active segment: scanned from its last good index entry to its end;
/// a torn tail is cut off, corruption is reported.
pub(super) async fn open_active(
    dir: &Path,
    base: Offset,
    config: &LogConfig,
    options: &LogOptions,
) -> Result<Active, OpenError> {
    let path = segment_path(dir, base, LOG_SUFFIX);
    let file = open_file(&path, true, options).await?;
    let file_end = file.file_size().await.map_err(io_error("stat", &path))?;
    let mut segment = Segment::new(base, created_ms(&path, options.clock.now_ms()));

    // The index entries on disk are hints: find the last one that points at
    // the batch it names, and scan from there.
    let hints = match decode_offsets(
        &read_index(&segment_path(dir, base, INDEX_SUFFIX)),
        file_end,
    ) {
        Decoded::Sealed(entries) | Decoded::Hints(entries) => entries,
    };
    let times = match decode_times(
        &read_index(&segment_path(dir, base, TIME_INDEX_SUFFIX)),
        file_end,
    ) {
        Decoded::Sealed(entries) | Decoded::Hints(entries) => entries,
    };
    let mut start: Option<OffsetEntry> = None;
    for (i, entry) in hints.iter().enumerate().rev().take(4) {
        let monotonic = hints[..i]
            .windows(2)
            .all(|w| w[0].relative_offset < w[1].relative_offset && w[0].position < w[1].position)
            && hints[..i].last().is_none_or(|previous| {
                previous.relative_offset < entry.relative_offset
                    && previous.position < entry.position
            });
        // The entry is usable only with its time entry (the hint files are
        // not synced, and may have lost different tails).
        let timed = times
            .iter()
            .any(|time| time.relative_offset == entry.relative_offset);
        if monotonic && timed && points_at(&file, *entry, base, file_end).await {
            segment.index.offsets = hints[..i].to_vec();
            start = Some(*entry);
            break;
        }
    }
    let (start_position, start_offset) = match start {
        Some(entry) => (
            u64::from(entry.position),
            Offset(base.0 + u64::from(entry.relative_offset)),
        ),
        None => (0, base),
    };
    // Time entries are kept up to the scan start (an offset entry, where the
    // time index has an entry for the max of everything up to it); the scan
    // records the rest.
    segment.index.times = times
        .into_iter()
        .filter(|entry| start.is_some_and(|start| entry.relative_offset <= start.relative_offset))
        .collect();
    segment
        .index
        .times
        .dedup_by(|later, earlier| later.timestamp <= earlier.timestamp);
    let mut running_max = segment.index.times.last().map(|entry| entry.timestamp);
    let interval = config.index_interval_bytes;
    let index = &mut segment.index;
    if start.is_some() {
        // The entry itself: scanning re-adds it below.
        index.bytes_since_offset_entry = interval;
    }
    let mut epoch_changes: Vec<(Offset, u32)> = Vec::new();
    let scanned = scan_into_index(
        &file,
        (start_position, file_end),
        base,
        start_offset,
        index,
        &mut running_max,
        interval,
        |batch| {
            let epoch = batch.leader_epoch();
            if epoch_changes.last().is_none_or(|&(_, last)| last != epoch) {
                epoch_changes.push((batch.base_offset(), epoch));
            }
        },
    )
    .await
    .map_err(io_error("read", &path))?;

    if let Stop::Invalid { position, reason } = scanned.stop {
        let later = valid_batch_after(&file, position, file_end, scanned.next_offset)
            .await
            .map_err(io_error("read", &path))?;
        if let Some(later) = later {
            tracing::error!(
                segment = %path.display(), position, %reason, valid_batch_at = later,
                "corrupt batch followed by valid ones; nothing truncated"
            );
            return Err(OpenError::Corruption {
                segment: path,
                position,
                reason,
            });
        }
        tracing::warn!(
            segment = %path.display(), position, %reason,
            "torn batch at the end of the log: truncated"
        );
        erase_from(&file, position, file_end)
            .await
            .map_err(io_error("truncate", &path))?;
    }

    let end_position = scanned.end_position;
    segment.bytes = end_position;
    segment.written_bytes = end_position;
    segment.allocated_bytes = file_end;
    segment.next_offset = scanned.next_offset;
    segment.max_timestamp = running_max;
    segment.written_max_timestamp = running_max;
    segment.index.offsets_persisted = 0;
    segment.index.times_persisted = 0;
    segment.index_hints_stale = true;

    // What was recovered is made durable before anyone is told it exists.
    file.fdatasync()
        .await
        .map_err(io_error("fdatasync", &path))?;
    let tail_start = end_position - end_position % PAGE_BYTES as u64;
    let tail = if tail_start < end_position {
        file.read_at(tail_start, (end_position - tail_start) as usize)
            .await
            .map_err(io_error("read", &path))?
            .to_vec()
    } else {
        Vec::new()
    };
    segment.file = Some(file);
    Ok(Active {
        segment,
        tail,
        epoch_changes,
    })
}

/// Whether the index entry names a valid batch at its position.
async fn points_at(file: &SegmentFile, entry: OffsetEntry, base: Offset, file_end: u64) -> bool {
    let position = u64::from(entry.position);
    if position + BATCH_HEADER_BYTES as u64 > file_end {
        return false;
    }
    let Ok(read) = file.read_at(position, BATCH_HEADER_BYTES).await else {
        return false;
    };
    let Ok(header) = BatchHeader::parse(&read) else {
        return false;
    };
    if header.base_offset != base.0 + u64::from(entry.relative_offset)
        || position + u64::from(header.batch_bytes) > file_end
    {
        return false;
    }
    let Ok(read) = file.read_at(position, header.batch_bytes as usize).await else {
        return false;
    };
    Batch::validate_stored(Bytes::copy_from_slice(&read)).is_ok()
}

/// Zeroes the file from `position` to the end of the nonzero bytes after it,
/// keeping the bytes before `position` in its page, and syncs: the torn
/// batch is gone from disk, not only from memory.
async fn erase_from(file: &SegmentFile, position: u64, file_end: u64) -> io::Result<()> {
    let page = PAGE_BYTES as u64;
    let start = position - position % page;
    let mut at = start;
    while at < file_end {
        let size = (SCAN_CHUNK_BYTES as u64).min(file_end - at) as usize;
        let read = file.read_at(at, size).await?;
        if at > start && read.iter().all(|&byte| byte == 0) {
            break;
        }
        let mut buffer = file.alloc(size.div_ceil(PAGE_BYTES) * PAGE_BYTES);
        let out = buffer.as_bytes_mut();
        out.fill(0);
        if at == start {
            let keep = (position - start) as usize;
            out[..keep].copy_from_slice(&read[..keep]);
        }
        file.write(buffer, at).await?;
        at += size as u64;
    }
    file.fdatasync().await
}
