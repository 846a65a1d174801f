//! The sparse offset index and the time index of one segment.
//!
//! Both live in memory for every segment (one entry per
//! `index_interval_bytes` of log, so a 1 GiB segment costs about 2 MiB) and
//! are persisted beside the segment: appended as hints while the segment is
//! active, rewritten whole with a checksummed footer when it is sealed. An
//! index that is missing, stale or fails its checks is rebuilt from the log.

/// One offset index entry: the batch whose base offset is `base + relative`
/// starts at byte `position` of the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

/// One time index entry: every batch up to and including the one at
/// `base + relative_offset` has a max timestamp of at most `timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    pub timestamp: i64,
    pub relative_offset: u32,
}

const OFFSET_ENTRY_BYTES: usize = 8;
const TIME_ENTRY_BYTES: usize = 12;
const FOOTER_MAGIC: u32 = 0x5853_4c53; // "SLSX"
/// magic u32, entry count u32, segment bytes u64, crc u32 of all before.
const FOOTER_BYTES: usize = 20;

/// The in-memory indexes of one segment, and how far they have been written
/// to their files.
#[derive(Debug, Default, Clone)]
pub struct SegmentIndex {
    pub offsets: Vec<OffsetEntry>,
    pub times: Vec<TimeEntry>,
    /// Segment bytes since the last offset index entry (or the start).
    pub bytes_since_offset_entry: u64,
    pub bytes_since_time_entry: u64,
    /// Entries already appended to the hint files of an active segment.
    pub offsets_persisted: usize,
    pub times_persisted: usize,
}

impl SegmentIndex {
    /// Records a batch of `bytes` at `position`, with the segment's running
    /// max timestamp after it.
    pub fn on_batch(
        &mut self,
        relative_offset: u32,
        position: u64,
        bytes: u64,
        running_max_timestamp: Option<i64>,
        interval_bytes: u64,
    ) {
        let indexed = position > 0 && self.bytes_since_offset_entry >= interval_bytes;
        if indexed {
            if let Some(last) = self.offsets.last() {
                assert!(
                    relative_offset > last.relative_offset,
                    "offset index went back: {relative_offset} <= {}",
                    last.relative_offset
                );
            }
            self.offsets.push(OffsetEntry {
                relative_offset,
                position: u32::try_from(position).expect("segment position fits u32"),
            });
            self.bytes_since_offset_entry = 0;
        }
        self.bytes_since_offset_entry += bytes;
        self.bytes_since_time_entry += bytes;
        if let Some(timestamp) = running_max_timestamp {
            let grew = self
                .times
                .last()
                .is_none_or(|last| timestamp > last.timestamp);
            let due = self.times.is_empty() || self.bytes_since_time_entry >= interval_bytes;
            // Also at every offset entry, grown or not: recovery scans from an
            // offset entry that has its time entry, and so knows the max
            // timestamp of everything before it.
            if (grew && due) || indexed {
                self.times.push(TimeEntry {
                    timestamp,
                    relative_offset,
                });
                self.bytes_since_time_entry = 0;
            }
        }
    }

    /// Completes the time index for sealing: its last entry carries the
    /// segment's max timestamp, so a sealed index alone tells it.
    pub fn seal_times(&mut self, max_timestamp: i64, last_relative_offset: u32) {
        if self
            .times
            .last()
            .is_none_or(|last| max_timestamp > last.timestamp)
        {
            self.times.push(TimeEntry {
                timestamp: max_timestamp,
                relative_offset: last_relative_offset,
            });
        }
    }

    /// The position to start reading from to find `relative_offset`: the
    /// greatest indexed batch at or before it, or the segment's start.
    pub fn position_for(&self, relative_offset: u32) -> u64 {
        let after = self
            .offsets
            .partition_point(|entry| entry.relative_offset <= relative_offset);
        match after {
            0 => 0,
            n => u64::from(self.offsets[n - 1].position),
        }
    }

    /// The relative offset from which to scan for the first batch with a max
    /// timestamp at or after `timestamp`: just past the last entry that is
    /// entirely older, or the segment's start.
    pub fn scan_start_for_timestamp(&self, timestamp: i64) -> u32 {
        let older = self
            .times
            .partition_point(|entry| entry.timestamp < timestamp);
        match older {
            0 => 0,
            n => self.times[n - 1].relative_offset + 1,
        }
    }

    /// Drops entries at or past `position` / `relative_end` (after a rollback
    /// or a truncated tail).
    pub fn truncate(&mut self, position: u64, relative_end: u32) {
        self.offsets.retain(|entry| {
            u64::from(entry.position) < position && entry.relative_offset < relative_end
        });
        self.times
            .retain(|entry| entry.relative_offset < relative_end);
        self.offsets_persisted = self.offsets_persisted.min(self.offsets.len());
        self.times_persisted = self.times_persisted.min(self.times.len());
    }

    /// Offset entries not yet appended to the hint file, encoded.
    pub fn encode_offset_hints(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for entry in &self.offsets[self.offsets_persisted..] {
            out.extend_from_slice(&entry.relative_offset.to_le_bytes());
            out.extend_from_slice(&entry.position.to_le_bytes());
        }
        out
    }

    pub fn encode_time_hints(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for entry in &self.times[self.times_persisted..] {
            out.extend_from_slice(&entry.timestamp.to_le_bytes());
            out.extend_from_slice(&entry.relative_offset.to_le_bytes());
        }
        out
    }

    /// The sealed form of the offset index: every entry and a footer.
    pub fn encode_sealed_offsets(&self, segment_bytes: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.offsets.len() * OFFSET_ENTRY_BYTES + FOOTER_BYTES);
        for entry in &self.offsets {
            out.extend_from_slice(&entry.relative_offset.to_le_bytes());
            out.extend_from_slice(&entry.position.to_le_bytes());
        }
        push_footer(&mut out, self.offsets.len(), segment_bytes);
        out
    }

    pub fn encode_sealed_times(&self, segment_bytes: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.times.len() * TIME_ENTRY_BYTES + FOOTER_BYTES);
        for entry in &self.times {
            out.extend_from_slice(&entry.timestamp.to_le_bytes());
            out.extend_from_slice(&entry.relative_offset.to_le_bytes());
        }
        push_footer(&mut out, self.times.len(), segment_bytes);
        out
    }
}

fn push_footer(out: &mut Vec<u8>, entries: usize, segment_bytes: u64) {
    out.extend_from_slice(&FOOTER_MAGIC.to_le_bytes());
    out.extend_from_slice(
        &u32::try_from(entries)
            .expect("entry count fits u32")
            .to_le_bytes(),
    );
    out.extend_from_slice(&segment_bytes.to_le_bytes());
    let crc = crc32c::crc32c(out);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// What an index file's bytes say: sealed entries that are trustworthy for a
/// segment of `segment_bytes`, or unchecked hints.
pub enum Decoded<T> {
    Sealed(Vec<T>),
    Hints(Vec<T>),
}

/// Decodes a sealed index (footer present, checksum good, written for a
/// segment of exactly `segment_bytes`) or else whole entries as hints.
fn decode<T>(
    bytes: &[u8],
    segment_bytes: u64,
    entry_bytes: usize,
    parse: impl Fn(&[u8]) -> T,
) -> Decoded<T> {
    if bytes.len() >= FOOTER_BYTES {
        let footer_at = bytes.len() - FOOTER_BYTES;
        let footer = &bytes[footer_at..];
        let magic = u32::from_le_bytes(footer[0..4].try_into().expect("4 bytes"));
        let count = u32::from_le_bytes(footer[4..8].try_into().expect("4 bytes")) as usize;
        let for_bytes = u64::from_le_bytes(footer[8..16].try_into().expect("8 bytes"));
        let crc = u32::from_le_bytes(footer[16..20].try_into().expect("4 bytes"));
        if magic == FOOTER_MAGIC
            && crc == crc32c::crc32c(&bytes[..bytes.len() - 4])
            && count.checked_mul(entry_bytes) == Some(footer_at)
        {
            let entries = bytes[..footer_at]
                .chunks_exact(entry_bytes)
                .map(&parse)
                .collect();
            if for_bytes == segment_bytes {
                return Decoded::Sealed(entries);
            }
            return Decoded::Hints(entries);
        }
    }
    Decoded::Hints(bytes.chunks_exact(entry_bytes).map(parse).collect())
}

pub fn decode_offsets(bytes: &[u8], segment_bytes: u64) -> Decoded<OffsetEntry> {
    decode(bytes, segment_bytes, OFFSET_ENTRY_BYTES, |chunk| {
        OffsetEntry {
            relative_offset: u32::from_le_bytes(chunk[0..4].try_into().expect("4 bytes")),
            position: u32::from_le_bytes(chunk[4..8].try_into().expect("4 bytes")),
        }
    })
}

pub fn decode_times(bytes: &[u8], segment_bytes: u64) -> Decoded<TimeEntry> {
    decode(bytes, segment_bytes, TIME_ENTRY_BYTES, |chunk| TimeEntry {
        timestamp: i64::from_le_bytes(chunk[0..8].try_into().expect("8 bytes")),
        relative_offset: u32::from_le_bytes(chunk[8..12].try_into().expect("4 bytes")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_every_interval_and_lookups() {
        let mut index = SegmentIndex::default();
        // 100 batches of 1000 bytes, 10 records each, interval 4096 bytes.
        for batch in 0..100u32 {
            index.on_batch(
                batch * 10,
                u64::from(batch) * 1000,
                1000,
                Some(i64::from(batch)),
                4096,
            );
        }
        assert!(
            index.offsets.len() >= 19 && index.offsets.len() <= 25,
            "{}",
            index.offsets.len()
        );
        assert_eq!(index.position_for(0), 0);
        for relative in 0..1000u32 {
            let position = index.position_for(relative);
            assert!(
                position <= u64::from(relative / 10) * 1000,
                "overshoots {relative}"
            );
            assert!(
                u64::from(relative / 10) * 1000 - position <= 5000,
                "too far back {relative}"
            );
        }
        let start = index.scan_start_for_timestamp(50);
        assert!(start <= 500 && start + 60 >= 500, "{start}");
    }

    #[test]
    fn sealed_encoding_round_trips_and_detects_staleness() {
        let mut index = SegmentIndex::default();
        for batch in 0..50u32 {
            index.on_batch(
                batch,
                u64::from(batch) * 5000,
                5000,
                Some(i64::from(batch) * 3),
                4096,
            );
        }
        let bytes = index.encode_sealed_offsets(250_000);
        match decode_offsets(&bytes, 250_000) {
            Decoded::Sealed(entries) => assert_eq!(entries, index.offsets),
            Decoded::Hints(_) => panic!("a sealed index decoded as hints"),
        }
        assert!(matches!(decode_offsets(&bytes, 249_999), Decoded::Hints(_)));
        let mut bad = bytes.clone();
        bad[3] ^= 1;
        assert!(matches!(decode_offsets(&bad, 250_000), Decoded::Hints(_)));
        let times = index.encode_sealed_times(250_000);
        match decode_times(&times, 250_000) {
            Decoded::Sealed(entries) => assert_eq!(entries, index.times),
            Decoded::Hints(_) => panic!("a sealed index decoded as hints"),
        }
    }
}
