//! Reading: by offset (from the tail cache or the segment files), by
//! timestamp, waiting for data, and a full verification scan.

use std::{future::poll_fn, task::Poll};

use bytes::Bytes;

use super::{recovery, ReadError, Shared, State};
use crate::{
    batch::{Batch, BatchError, BatchHeader, PayloadFormat, BATCH_BYTES_MAX, BATCH_HEADER_BYTES},
    Offset,
};

/// The most bytes read from a segment file for one read call beyond the
/// caller's budget: the distance back to the index entry before the offset.
const READ_SLACK_BYTES: usize = 64 * 1024;

/// A read of a segment file, planned under the state borrow and done after.
struct DiskRead {
    file: super::segment::SegmentFile,
    position: u64,
    end_position: u64,
    visible_end: Offset,
}

fn out_of_range(state: &State, offset: Offset, log_end: Offset) -> ReadError {
    ReadError::OffsetOutOfRange {
        offset,
        log_start: state.log_start,
        log_end,
    }
}

/// Reads from `offset` up to the end `end` gives (the visible end, or the
/// stored end for a replica's push).
pub(super) async fn read(
    shared: &Shared,
    mut offset: Offset,
    max_bytes: usize,
    end: fn(&State) -> Offset,
) -> Result<Vec<Batch>, ReadError> {
    loop {
        let (disk, segment_end) = match plan_read(shared, offset, max_bytes, end)? {
            Planned::Done(batches) => return Ok(batches),
            Planned::Disk(disk, segment_end) => (disk, segment_end),
        };
        let visible_end = disk.visible_end;
        let batches = from_disk(disk, offset, max_bytes, visible_end).await?;
        // A compacted segment may hold nothing from `offset` to its end:
        // the next segment has what follows.
        if !batches.is_empty() || segment_end >= visible_end || segment_end <= offset {
            return Ok(batches);
        }
        offset = segment_end;
    }
}

/// What a read finds under the state borrow: its answer, or the read of a
/// segment file to do (and where that segment ends).
enum Planned {
    Done(Vec<Batch>),
    Disk(DiskRead, Offset),
}

fn plan_read(
    shared: &Shared,
    offset: Offset,
    max_bytes: usize,
    end: fn(&State) -> Offset,
) -> Result<Planned, ReadError> {
    {
        let state = shared.borrow();
        if state.closing {
            return Err(ReadError::Closed);
        }
        let visible_end = end(&state);
        // Out of range only past the log's end, as Kafka's logs answer:
        // an offset between the visible end (a replicated partition's high
        // watermark) and the log end is one a reader may have seen on
        // another leader, whose high watermark ran ahead of this one's; it
        // reads nothing until the visible end passes it.
        if offset < state.log_start || offset > state.end.max(visible_end) {
            return Err(out_of_range(&state, offset, visible_end));
        }
        if offset >= visible_end {
            return Ok(Planned::Done(Vec::new()));
        }
        if state
            .cache
            .front()
            .is_some_and(|front| front.base_offset() <= offset)
        {
            return Ok(Planned::Done(from_cache(
                &state,
                offset,
                max_bytes,
                visible_end,
            )));
        }
        // Below the first segment, at or past the log start: a replica of
        // a compacted log whose first batch came after a gap. The first
        // segment has what follows.
        let (_, segment) = state
            .segments
            .range(..=offset)
            .next_back()
            .or_else(|| state.segments.iter().next())
            .ok_or_else(|| out_of_range(&state, offset, visible_end))?;
        let file = segment
            .file
            .clone()
            .expect("a segment with written data has a file");
        let position = match offset >= segment.base {
            true => segment.index.position_for(segment.relative(offset)),
            false => 0,
        };
        Ok(Planned::Disk(
            DiskRead {
                file,
                position,
                end_position: segment.written_bytes,
                visible_end,
            },
            segment.next_offset,
        ))
    }
}

fn from_cache(state: &State, offset: Offset, max_bytes: usize, visible_end: Offset) -> Vec<Batch> {
    let first = state
        .cache
        .partition_point(|batch| batch.last_offset() < offset);
    let mut out = Vec::new();
    let mut total = 0;
    for batch in state.cache.range(first..) {
        if batch.base_offset() >= visible_end
            || (!out.is_empty() && total + batch.len() > max_bytes)
        {
            break;
        }
        total += batch.len();
        out.push(batch.clone());
    }
    out
}

async fn from_disk(
    disk: DiskRead,
    offset: Offset,
    max_bytes: usize,
    visible_end: Offset,
) -> Result<Vec<Batch>, ReadError> {
    let corrupt = |position: u64, reason: BatchError| ReadError::Corruption {
        segment: disk.file.path.to_path_buf(),
        position,
        reason,
    };
    let mut out = Vec::new();
    let mut total = 0usize;
    let mut position = disk.position;
    let mut chunk_bytes = max_bytes
        .saturating_add(READ_SLACK_BYTES)
        .min(BATCH_BYTES_MAX);
    while position + (BATCH_HEADER_BYTES as u64) <= disk.end_position {
        let size = chunk_bytes.min((disk.end_position - position) as usize);
        let read = disk
            .file
            .read_at(position, size)
            .await
            .map_err(|source| ReadError::Io {
                segment: disk.file.path.to_path_buf(),
                source,
            })?;
        // One copy out of the DMA buffer; every batch is a slice of it.
        let data = Bytes::copy_from_slice(&read);
        let mut at = 0usize;
        while data.len() - at >= BATCH_HEADER_BYTES {
            let here = position + at as u64;
            let header = BatchHeader::parse(&data[at..]).map_err(|reason| corrupt(here, reason))?;
            let length = header.batch_bytes as usize;
            if !(BATCH_HEADER_BYTES..=BATCH_BYTES_MAX).contains(&length) {
                let reason = BatchError::LengthMismatch {
                    declared: length,
                    available: data.len() - at,
                };
                return Err(corrupt(here, reason));
            }
            if at + length > data.len() {
                break;
            }
            if header.next_offset() <= offset.0 {
                at += length;
                continue;
            }
            if header.base_offset >= visible_end.0
                || (!out.is_empty() && total + length > max_bytes)
            {
                return Ok(out);
            }
            let batch = Batch::validate_stored(data.slice(at..at + length))
                .map_err(|reason| corrupt(here, reason))?;
            total += length;
            at += length;
            out.push(batch);
            if total >= max_bytes {
                return Ok(out);
            }
        }
        if at == 0 {
            // The next batch is larger than the chunk: read exactly it.
            let header = BatchHeader::parse(&data).map_err(|reason| corrupt(position, reason))?;
            chunk_bytes = header.batch_bytes as usize;
        } else if !out.is_empty() {
            // Whole batches only: the rest of the budget is not worth a read.
            return Ok(out);
        }
        position += at as u64;
    }
    Ok(out)
}

pub(super) async fn offset_for_timestamp(
    shared: &Shared,
    timestamp: i64,
) -> Result<Option<Offset>, ReadError> {
    let mut offset = {
        let state = shared.borrow();
        // Segments wholly below the start (not deleted yet) are not looked
        // at: nothing there can be answered.
        let found = state.segments.values().find(|segment| {
            segment.next_offset > state.log_start
                && segment.max_timestamp.is_some_and(|max| max >= timestamp)
        });
        match found {
            None => return Ok(None),
            Some(segment) => {
                let relative = segment.index.scan_start_for_timestamp(timestamp);
                Offset(segment.base.0 + u64::from(relative))
                    .max(state.log_start)
                    .min(segment.next_offset)
            }
        }
    };
    loop {
        let batches = match read(shared, offset, 1024 * 1024, State::visible_end).await {
            Ok(batches) => batches,
            // The start moved past `offset` meanwhile: go on from it.
            Err(ReadError::OffsetOutOfRange { log_start, .. }) if offset < log_start => {
                offset = log_start;
                continue;
            }
            Err(ReadError::OffsetOutOfRange { .. }) => return Ok(None),
            Err(error) => return Err(error),
        };
        let Some(last) = batches.last() else {
            return Ok(None);
        };
        let next = last.last_offset().next();
        for batch in batches {
            if batch.max_timestamp() >= timestamp {
                return Ok(Some(
                    first_record_at_or_after(&batch, timestamp).max(offset),
                ));
            }
        }
        offset = next;
    }
}

/// The offset of the first record of `batch` whose timestamp is at or after
/// `timestamp` (the batch's max timestamp is). Kafka payloads are resolved
/// to their base offset until their records are decoded here.
fn first_record_at_or_after(batch: &Batch, timestamp: i64) -> Offset {
    let header = batch.header();
    if header.payload_format == PayloadFormat::Native {
        if let Ok(records) = batch.records() {
            for (index, record) in records.iter().enumerate() {
                if header
                    .first_timestamp
                    .wrapping_add(record.timestamp_delta())
                    >= timestamp
                {
                    return Offset(header.base_offset + index as u64);
                }
            }
        }
    }
    batch.base_offset()
}

/// Resolves once the end `end` gives (the visible end, or the stable end)
/// is past `offset`, or the log is closing or failed.
pub(super) async fn wait_for_data(shared: &Shared, offset: Offset, end: fn(&State) -> Offset) {
    poll_fn(|cx| {
        let mut state = shared.borrow_mut();
        if end(&state) > offset || state.closing || state.failure.is_some() {
            return Poll::Ready(());
        }
        state.waiters.push(cx.waker().clone());
        Poll::Pending
    })
    .await
}

/// Scans every written byte of every segment; returns the batch count.
pub(super) async fn verify(shared: &Shared) -> Result<u64, ReadError> {
    let segments: Vec<_> = {
        let state = shared.borrow();
        state
            .segments
            .values()
            .filter_map(|segment| {
                segment
                    .file
                    .clone()
                    .map(|file| (file, segment.base, segment.written_bytes))
            })
            .collect()
    };
    let mut batches = 0;
    for (file, base, written_bytes) in segments {
        let scan = recovery::scan(&file, 0, written_bytes, base, |_, _| {})
            .await
            .map_err(|source| ReadError::Io {
                segment: file.path.to_path_buf(),
                source,
            })?;
        if let recovery::Stop::Invalid { position, reason } = scan.stop {
            return Err(ReadError::Corruption {
                segment: file.path.to_path_buf(),
                position,
                reason,
            });
        }
        batches += scan.batches;
    }
    Ok(batches)
}
