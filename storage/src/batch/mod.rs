//! The stored record batch: a fixed little-endian header and a payload.
//!
//! A batch is the unit that is appended, written, replicated and served. Its
//! header is 64 bytes, laid out so that the fields the broker assigns on arrival
//! (base offset and leader epoch) sit *before* the CRC and are not covered by it:
//! they are set in place without recomputing the checksum, as Kafka does.
//!
//! ```text
//!  0  base_offset        u64   assigned by the log on append
//!  8  batch_bytes        u32   the whole batch, header included
//! 12  leader_epoch       u32   assigned by the leader on append
//! 16  crc                u32   CRC-32C of bytes [20, batch_bytes)
//! 20  magic              u8    header version, 1
//! 21  payload_format     u8    0 native (rkyv), 1 kafka (RecordBatch v2)
//! 22  flags              u16   bits 0..3: compression of a kafka payload
//! 24  record_count       u32
//! 28  last_offset_delta  u32   record_count - 1 for a dense batch
//! 32  first_timestamp    i64   milliseconds since the Unix epoch
//! 40  max_timestamp      i64
//! 48  producer_id        i64   -1 when not idempotent
//! 56  producer_epoch     i16
//! 58  reserved           u16   zero
//! 60  base_sequence      i32
//! 64  payload
//! ```
//!
//! [`Batch::validate`] is the one gate every foreign batch passes: lengths, CRC,
//! caps and (for native payloads) the rkyv archive. What passed it is a
//! [`Batch`], and nothing checks it again.

mod builder;
mod header;
mod native;

pub use builder::BatchBuilder;
pub use header::{
    BatchHeader, PayloadFormat, BATCH_HEADER_BYTES, BATCH_MAGIC, CRC_FIELD_END,
    FLAGS_COMPRESSION_MASK,
};
pub use native::{HeaderView, RecordView, Records};

use bytes::{Bytes, BytesMut};

use crate::Offset;

/// A batch is at most this large. It bounds the memory one produce can pin and
/// matches Kafka's default `message.max.bytes` order of magnitude (1 MiB) with
/// room for large records; larger batches are refused before they are stored.
pub const BATCH_BYTES_MAX: usize = 16 * 1024 * 1024;

/// The largest offset a record can have: Kafka's offsets are `i64`.
pub const OFFSET_MAX: u64 = i64::MAX as u64;

/// A batch holds at most this many records. A 100-byte record batch of the
/// largest size holds far fewer; the cap stops a forged count from driving a
/// reader's loops.
pub const BATCH_RECORDS_MAX: u32 = 1 << 20;

/// Why a batch's bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("batch too short: {bytes} bytes, the header alone is {BATCH_HEADER_BYTES}")]
    TooShort { bytes: usize },
    #[error("batch length field says {declared} bytes but {available} bytes are given")]
    LengthMismatch { declared: usize, available: usize },
    #[error("batch of {bytes} bytes is over the cap of {max} bytes")]
    TooLarge { bytes: usize, max: usize },
    #[error("batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("unknown batch header version {magic}")]
    UnknownMagic { magic: u8 },
    #[error("unknown payload format {format}")]
    UnknownPayloadFormat { format: u8 },
    #[error("record count {count} is over the cap of {max}")]
    TooManyRecords { count: u32, max: u32 },
    #[error("record count is zero")]
    Empty,
    #[error("last offset delta {last_offset_delta} does not fit {record_count} records")]
    BadOffsetDelta {
        last_offset_delta: u32,
        record_count: u32,
    },
    #[error("native payload failed validation: {reason}")]
    InvalidPayload { reason: String },
    #[error("native payload holds {archived} records but the header says {declared}")]
    RecordCountMismatch { archived: u32, declared: u32 },
    #[error("base offset {base_offset} plus last offset delta {last_offset_delta} passes the largest offset")]
    OffsetOverflow {
        base_offset: u64,
        last_offset_delta: u32,
    },
    #[error("batch base offset {base_offset} where {expected} was expected")]
    OffsetOutOfSequence { base_offset: u64, expected: u64 },
    #[error("compression flag {flags:#x} is not allowed on a native payload")]
    CompressedNative { flags: u16 },
}

/// A validated batch, owned as bytes: header and payload, ready to be stored or
/// sent. Cloning it is cheap (the bytes are shared).
#[derive(Clone)]
pub struct Batch {
    bytes: Bytes,
    /// Whether a native payload's archive has been validated (bytecheck).
    /// Batches read back from disk are checked by CRC only, and their archive
    /// is validated when someone first reads its records.
    archive_checked: bool,
}

impl PartialEq for Batch {
    fn eq(&self, other: &Batch) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for Batch {}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("header", &self.header())
            .finish()
    }
}

impl Batch {
    /// Validates `bytes` as one whole batch: the length field must equal
    /// `bytes.len()`, the CRC must match, the counts must be under their caps,
    /// and a native payload must be a valid archive whose record count agrees
    /// with the header. On success the batch is never checked again.
    pub fn validate(bytes: Bytes) -> Result<Batch, BatchError> {
        check(&bytes)?;
        Ok(Batch {
            bytes,
            archive_checked: true,
        })
    }

    /// Like [`Batch::validate`] but only the header, the length and the CRC:
    /// for bytes that were validated whole before and are now read back from
    /// disk, where the CRC catches what the disk did to them.
    pub fn validate_stored(bytes: Bytes) -> Result<Batch, BatchError> {
        check_frame(&bytes)?;
        Ok(Batch {
            bytes,
            archive_checked: false,
        })
    }

    /// Wraps bytes that a [`BatchBuilder`] just made. Checked in debug builds.
    pub(crate) fn from_built(bytes: Bytes) -> Batch {
        debug_assert_eq!(check(&bytes).err(), None, "a built batch must validate");
        Batch {
            bytes,
            archive_checked: true,
        }
    }

    pub fn header(&self) -> BatchHeader {
        BatchHeader::parse(&self.bytes).expect("a validated batch has a header")
    }

    pub fn base_offset(&self) -> Offset {
        Offset(header::read_u64(&self.bytes, header::BASE_OFFSET_AT))
    }

    /// The offset of the last record: `base_offset + last_offset_delta`.
    pub fn last_offset(&self) -> Offset {
        let delta = header::read_u32(&self.bytes, header::LAST_OFFSET_DELTA_AT);
        Offset(self.base_offset().0 + u64::from(delta))
    }

    /// How many offsets the batch occupies.
    pub fn offset_count(&self) -> u64 {
        u64::from(header::read_u32(&self.bytes, header::LAST_OFFSET_DELTA_AT)) + 1
    }

    pub fn max_timestamp(&self) -> i64 {
        header::read_i64(&self.bytes, header::MAX_TIMESTAMP_AT)
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    pub fn payload(&self) -> &[u8] {
        &self.bytes[BATCH_HEADER_BYTES..]
    }

    /// The records of a native batch, read in place. The archive is validated
    /// here only if it was not when the batch was made.
    pub fn records(&self) -> Result<Records<'_>, BatchError> {
        match self.header().payload_format {
            PayloadFormat::Native if self.archive_checked => {
                Ok(native::records_unchecked(self.payload()))
            }
            PayloadFormat::Native => native::validate(self.payload()).map(|_| {
                // Validated just now; the bytes cannot change underneath.
                native::records_unchecked(self.payload())
            }),
            PayloadFormat::Kafka => Err(BatchError::UnknownPayloadFormat {
                format: PayloadFormat::Kafka as u8,
            }),
        }
    }

    /// Sets the broker-assigned fields in place. They precede the CRC field, so
    /// the checksum stays valid. Copies only if the bytes are shared.
    pub fn assign(self, base_offset: Offset, leader_epoch: u32) -> Batch {
        let archive_checked = self.archive_checked;
        let mut bytes = BytesMut::from(self.bytes);
        header::write_u64(&mut bytes, header::BASE_OFFSET_AT, base_offset.0);
        header::write_u32(&mut bytes, header::LEADER_EPOCH_AT, leader_epoch);
        Batch {
            bytes: bytes.freeze(),
            archive_checked,
        }
    }
}

/// Checks everything that does not need the payload decoded.
fn check_frame(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(bytes)?;
    let declared = header.batch_bytes as usize;
    if declared > BATCH_BYTES_MAX {
        return Err(BatchError::TooLarge {
            bytes: declared,
            max: BATCH_BYTES_MAX,
        });
    }
    if declared != bytes.len() {
        return Err(BatchError::LengthMismatch {
            declared,
            available: bytes.len(),
        });
    }
    let computed = crc32c::crc32c(&bytes[CRC_FIELD_END..]);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    if header.record_count == 0 {
        return Err(BatchError::Empty);
    }
    if header.record_count > BATCH_RECORDS_MAX {
        return Err(BatchError::TooManyRecords {
            count: header.record_count,
            max: BATCH_RECORDS_MAX,
        });
    }
    let past_last = header
        .base_offset
        .checked_add(u64::from(header.last_offset_delta) + 1);
    if past_last.is_none_or(|past_last| past_last - 1 > OFFSET_MAX) {
        return Err(BatchError::OffsetOverflow {
            base_offset: header.base_offset,
            last_offset_delta: header.last_offset_delta,
        });
    }
    if header.last_offset_delta < header.record_count - 1 {
        return Err(BatchError::BadOffsetDelta {
            last_offset_delta: header.last_offset_delta,
            record_count: header.record_count,
        });
    }
    Ok(header)
}

fn check(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = check_frame(bytes)?;
    if header.payload_format == PayloadFormat::Native {
        if header.flags & FLAGS_COMPRESSION_MASK != 0 {
            return Err(BatchError::CompressedNative {
                flags: header.flags,
            });
        }
        let records = native::validate(&bytes[BATCH_HEADER_BYTES..])?;
        if records.len() as u64 != u64::from(header.record_count) {
            return Err(BatchError::RecordCountMismatch {
                archived: records.len().min(u32::MAX as usize) as u32,
                declared: header.record_count,
            });
        }
        if header.last_offset_delta != header.record_count - 1 {
            return Err(BatchError::BadOffsetDelta {
                last_offset_delta: header.last_offset_delta,
                record_count: header.record_count,
            });
        }
    }
    Ok(header)
}

#[cfg(test)]
mod tests;
