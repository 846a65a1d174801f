//! What the cleaner of a compacted log remembers between passes, in the
//! file `cleaner-checkpoint` of the log's directory: where the cleaned part
//! of the log ends (the dirty part starts there), and when each recent pass
//! reached how far, so that a tombstone is removed only once
//! `delete.retention.ms` has passed since the pass that first cleaned it
//! (consumers that read the log from its start get that long to see it),
//! and the markers of transactions found removable (their records all
//! gone) with when each was first found so, so that a marker too goes only
//! `delete.retention.ms` later: Kafka's delete horizon of a control batch.
//!
//! ```text
//! magic     u32  "SLC2" ("SLCC": the same without markers)
//! cleaned   u64  the end of the cleaned part
//! count     u32  passes, at most PASSES_MAX
//! passes    count × (end u64, at_ms i64), ends rising
//! markers   u32  count, at most REMOVABLE_MARKERS_MAX, and as many
//!                (offset u64, since_ms i64), offsets rising
//! crc       u32  CRC-32C of all before
//! ```
//!
//! Little-endian. A missing file is a log never cleaned; a file that does
//! not check out is treated so too (the next pass cleans everything again,
//! and keeps every tombstone for another `delete.retention.ms`: safe, if
//! slower).

use std::{io, path::Path};

use super::segment::replace_file;
use crate::Offset;

pub const CLEANER_CHECKPOINT_NAME: &str = "cleaner-checkpoint";
const TEMPORARY_NAME: &str = "cleaner-checkpoint.tmp";
pub const CLEANER_CHECKPOINT_MAGIC: u32 = 0x3243_4c53; // "SLC2"
/// The checkpoint before markers were removed: read as one without any.
const CLEANER_CHECKPOINT_MAGIC_V1: u32 = 0x4343_4c53; // "SLCC"

/// The removable markers remembered (16 bytes each on disk, 1 MiB). One
/// found past it is not remembered in that pass, and is found again by a
/// later one: it only stays longer.
pub const REMOVABLE_MARKERS_MAX: usize = 65_536;

/// The passes remembered. A pass every 15 s for a day of
/// `delete.retention.ms` is 5,760; past this the two oldest merge into one
/// that took place at the later time, which only keeps tombstones longer.
pub const PASSES_MAX: usize = 1024;

const FIXED_BYTES: usize = 4 + 8 + 4 + 4;
const PASS_BYTES: usize = 16;
const MARKER_BYTES: usize = 16;

/// One cleaning pass: it cleaned the log up to `end` at `at_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub end: Offset,
    pub at_ms: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanerCheckpoint {
    /// The end of the cleaned part of the log.
    pub cleaned: Offset,
    /// Recent passes, ends rising.
    pub passes: Vec<Pass>,
    /// The markers the last pass found removable and kept, by offset:
    /// when each was first found so.
    pub removable_markers: std::collections::BTreeMap<Offset, i64>,
}

impl CleanerCheckpoint {
    /// When the record at `offset`, in the cleaned part, was first cleaned;
    /// `None` if it is not in the cleaned part.
    pub fn first_cleaned_ms(&self, offset: Offset) -> Option<i64> {
        if offset >= self.cleaned {
            return None;
        }
        let after = self.passes.partition_point(|pass| pass.end <= offset);
        // The last pass ends where the cleaned part does; a checkpoint
        // without one knows nothing, and says "just now".
        Some(self.passes.get(after).map_or(i64::MAX, |pass| pass.at_ms))
    }

    /// Records a pass that cleaned up to `end` at `at_ms`, forgetting the
    /// passes older than `forget_before_ms` (their tombstones are gone)
    /// but the newest of those.
    pub fn record(&mut self, end: Offset, at_ms: i64, forget_before_ms: i64) {
        assert!(
            end >= self.cleaned,
            "the cleaned part went back: {end} < {}",
            self.cleaned
        );
        if end > self.cleaned {
            self.passes.push(Pass { end, at_ms });
            self.cleaned = end;
        }
        let expired = self
            .passes
            .partition_point(|pass| pass.at_ms < forget_before_ms);
        if expired > 1 {
            self.passes.drain(..expired - 1);
        }
        while self.passes.len() > PASSES_MAX {
            let older = self.passes.remove(0);
            assert!(older.end < self.passes[0].end, "pass ends must rise");
        }
    }

    /// The cleaned part ends at most at `end` (a log truncated below it).
    pub fn clamp(&mut self, end: Offset) {
        if self.cleaned > end {
            self.cleaned = end;
            // The first pass past `end` cleaned the offsets just below it.
            let after = self.passes.partition_point(|pass| pass.end <= end);
            self.passes.truncate(after + 1);
            if let Some(last) = self.passes.last_mut() {
                last.end = last.end.min(end);
            }
            self.passes.dedup_by_key(|pass| pass.end);
        }
        // A marker past the end is gone, or another at its offset.
        self.removable_markers.split_off(&end);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED_BYTES + self.passes.len() * PASS_BYTES);
        out.extend_from_slice(&CLEANER_CHECKPOINT_MAGIC.to_le_bytes());
        out.extend_from_slice(&self.cleaned.0.to_le_bytes());
        out.extend_from_slice(&(self.passes.len() as u32).to_le_bytes());
        for pass in &self.passes {
            out.extend_from_slice(&pass.end.0.to_le_bytes());
            out.extend_from_slice(&pass.at_ms.to_le_bytes());
        }
        assert!(
            self.removable_markers.len() <= REMOVABLE_MARKERS_MAX,
            "{} removable markers, over the cap",
            self.removable_markers.len()
        );
        out.extend_from_slice(&(self.removable_markers.len() as u32).to_le_bytes());
        for (offset, since_ms) in &self.removable_markers {
            out.extend_from_slice(&offset.0.to_le_bytes());
            out.extend_from_slice(&since_ms.to_le_bytes());
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// `None` for bytes that are not a checkpoint.
    pub fn decode(bytes: &[u8]) -> Option<CleanerCheckpoint> {
        if bytes.len() < FIXED_BYTES {
            return None;
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().ok()?) {
            return None;
        }
        let u64_at = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().expect("8"));
        let with_markers = match u32::from_le_bytes(body[0..4].try_into().ok()?) {
            CLEANER_CHECKPOINT_MAGIC => true,
            CLEANER_CHECKPOINT_MAGIC_V1 => false,
            _ => return None,
        };
        let cleaned = Offset(u64_at(4));
        let count = u32::from_le_bytes(body[12..16].try_into().ok()?) as usize;
        let passes_end = 16 + count * PASS_BYTES;
        if count > PASSES_MAX || body.len() < passes_end {
            return None;
        }
        let mut removable_markers = std::collections::BTreeMap::new();
        if with_markers {
            let markers =
                u32::from_le_bytes(body.get(passes_end..passes_end + 4)?.try_into().ok()?) as usize;
            let markers_at = passes_end + 4;
            if markers > REMOVABLE_MARKERS_MAX || body.len() != markers_at + markers * MARKER_BYTES
            {
                return None;
            }
            for index in 0..markers {
                let at = markers_at + index * MARKER_BYTES;
                let offset = Offset(u64_at(at));
                if removable_markers
                    .last_key_value()
                    .is_some_and(|(&last, _)| last >= offset)
                {
                    return None;
                }
                removable_markers.insert(offset, u64_at(at + 8) as i64);
            }
        } else if body.len() != passes_end {
            return None;
        }
        let passes: Vec<Pass> = (0..count)
            .map(|index| {
                let at = 16 + index * PASS_BYTES;
                Pass {
                    end: Offset(u64_at(at)),
                    at_ms: u64_at(at + 8) as i64,
                }
            })
            .collect();
        if passes.windows(2).any(|pair| pair[0].end >= pair[1].end)
            || passes.last().is_some_and(|last| last.end > cleaned)
        {
            return None;
        }
        Some(CleanerCheckpoint {
            cleaned,
            passes,
            removable_markers,
        })
    }
}

/// The checkpoint in `dir`, or a log never cleaned.
pub fn read(dir: &Path) -> CleanerCheckpoint {
    match std::fs::read(dir.join(CLEANER_CHECKPOINT_NAME)) {
        Ok(bytes) => CleanerCheckpoint::decode(&bytes).unwrap_or_else(|| {
            tracing::warn!(log = %dir.display(), "cleaner checkpoint does not check out; cleaning from the start");
            CleanerCheckpoint::default()
        }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => CleanerCheckpoint::default(),
        Err(error) => {
            tracing::warn!(log = %dir.display(), %error, "cleaner checkpoint not read; cleaning from the start");
            CleanerCheckpoint::default()
        }
    }
}

/// Writes `checkpoint` into `dir`, whole or not at all (the directory is
/// not synced here).
pub fn write(dir: &Path, checkpoint: &CleanerCheckpoint) -> io::Result<()> {
    replace_file(
        &dir.join(CLEANER_CHECKPOINT_NAME),
        &dir.join(TEMPORARY_NAME),
        &checkpoint.encode(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_reads_back_and_a_damaged_one_does_not() {
        let mut checkpoint = CleanerCheckpoint::default();
        checkpoint.record(Offset(10), 1_000, 0);
        checkpoint.record(Offset(25), 2_000, 0);
        checkpoint.removable_markers.insert(Offset(3), 1_000);
        checkpoint.removable_markers.insert(Offset(12), 2_000);
        let bytes = checkpoint.encode();
        assert_eq!(CleanerCheckpoint::decode(&bytes), Some(checkpoint.clone()));
        // One written before markers were kept reads without any.
        let mut old = CleanerCheckpoint::default();
        old.record(Offset(10), 1_000, 0);
        let mut old_bytes = old.encode();
        old_bytes.truncate(old_bytes.len() - 8);
        old_bytes[..4].copy_from_slice(&CLEANER_CHECKPOINT_MAGIC_V1.to_le_bytes());
        let crc = crc32c::crc32c(&old_bytes);
        old_bytes.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(CleanerCheckpoint::decode(&old_bytes), Some(old));
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 1;
            assert_eq!(CleanerCheckpoint::decode(&damaged), None, "byte {at}");
        }
        assert_eq!(CleanerCheckpoint::decode(&bytes[..bytes.len() - 1]), None);
    }

    #[test]
    fn a_record_was_first_cleaned_by_the_first_pass_past_it() {
        let mut checkpoint = CleanerCheckpoint::default();
        checkpoint.record(Offset(10), 1_000, 0);
        checkpoint.record(Offset(25), 2_000, 0);
        assert_eq!(checkpoint.first_cleaned_ms(Offset(0)), Some(1_000));
        assert_eq!(checkpoint.first_cleaned_ms(Offset(9)), Some(1_000));
        assert_eq!(checkpoint.first_cleaned_ms(Offset(10)), Some(2_000));
        assert_eq!(checkpoint.first_cleaned_ms(Offset(25)), None);
        // Forgetting passes keeps the newest expired one: offsets below it
        // read as at least that old.
        checkpoint.record(Offset(40), 9_000, 5_000);
        assert_eq!(checkpoint.passes.len(), 2);
        assert_eq!(checkpoint.first_cleaned_ms(Offset(3)), Some(2_000));
        assert_eq!(checkpoint.first_cleaned_ms(Offset(30)), Some(9_000));
        checkpoint.clamp(Offset(30));
        assert_eq!(checkpoint.cleaned, Offset(30));
        assert_eq!(checkpoint.first_cleaned_ms(Offset(29)), Some(9_000));
        assert_eq!(checkpoint.first_cleaned_ms(Offset(24)), Some(2_000));
    }
}
