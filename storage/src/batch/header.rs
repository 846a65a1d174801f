//! The fixed 64-byte batch header: field positions, parsing and writing.

use super::{kafka, BatchError};

pub const BATCH_HEADER_BYTES: usize = 64;
/// Header version written by this code.
pub const BATCH_MAGIC: u8 = 1;
/// The CRC of a native batch covers every byte from here to the end of the
/// batch; that of a kafka batch skips the fields of its payload that are set
/// in place (see the module doc of [`super`]).
pub const CRC_FIELD_END: usize = CRC_AT + 4;
/// Bits of `flags` that carry a kafka payload's compression codec.
pub const FLAGS_COMPRESSION_MASK: u16 = 0b111;
/// A kafka payload that is part of a transaction (Kafka's attribute bit 4,
/// at the same place).
pub const FLAGS_TRANSACTIONAL: u16 = 1 << 4;
/// A kafka payload that is a control batch: a transaction marker (Kafka's
/// attribute bit 5, at the same place).
pub const FLAGS_CONTROL: u16 = 1 << 5;
/// A control batch that commits its transaction; without it, one that
/// aborts. Kafka keeps this in the control record's key; the header holds
/// it too, so that rebuilding a log's transactions reads headers only.
pub const FLAGS_COMMIT: u16 = 1 << 6;

pub(crate) const BASE_OFFSET_AT: usize = 0;
pub(crate) const BATCH_BYTES_AT: usize = 8;
pub(crate) const LEADER_EPOCH_AT: usize = 12;
pub(crate) const CRC_AT: usize = 16;
const MAGIC_AT: usize = 20;
pub(crate) const PAYLOAD_FORMAT_AT: usize = 21;
pub(crate) const FLAGS_AT: usize = 22;
const RECORD_COUNT_AT: usize = 24;
pub(crate) const LAST_OFFSET_DELTA_AT: usize = 28;
const FIRST_TIMESTAMP_AT: usize = 32;
pub(crate) const MAX_TIMESTAMP_AT: usize = 40;
const PRODUCER_ID_AT: usize = 48;
const PRODUCER_EPOCH_AT: usize = 56;
const RESERVED_AT: usize = 58;
const BASE_SEQUENCE_AT: usize = 60;

/// How the payload after the header is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PayloadFormat {
    /// An rkyv archive of records (see [`super::Records`]).
    Native = 0,
    /// A Kafka RecordBatch v2, kept exactly as a Kafka producer sent it.
    Kafka = 1,
}

impl PayloadFormat {
    fn from_u8(format: u8) -> Result<PayloadFormat, BatchError> {
        match format {
            0 => Ok(PayloadFormat::Native),
            1 => Ok(PayloadFormat::Kafka),
            format => Err(BatchError::UnknownPayloadFormat { format }),
        }
    }
}

/// The header's fields, decoded. Parsing checks only what the header alone can
/// tell (its size, version and payload format); [`super::Batch::validate`]
/// checks the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: u64,
    pub batch_bytes: u32,
    pub leader_epoch: u32,
    pub crc: u32,
    pub payload_format: PayloadFormat,
    pub flags: u16,
    pub record_count: u32,
    pub last_offset_delta: u32,
    pub first_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl BatchHeader {
    pub fn parse(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
        if bytes.len() < BATCH_HEADER_BYTES {
            return Err(BatchError::TooShort { bytes: bytes.len() });
        }
        let magic = bytes[MAGIC_AT];
        if magic != BATCH_MAGIC {
            return Err(BatchError::UnknownMagic { magic });
        }
        Ok(BatchHeader {
            base_offset: read_u64(bytes, BASE_OFFSET_AT),
            batch_bytes: read_u32(bytes, BATCH_BYTES_AT),
            leader_epoch: read_u32(bytes, LEADER_EPOCH_AT),
            crc: read_u32(bytes, CRC_AT),
            payload_format: PayloadFormat::from_u8(bytes[PAYLOAD_FORMAT_AT])?,
            flags: read_u16(bytes, FLAGS_AT),
            record_count: read_u32(bytes, RECORD_COUNT_AT),
            last_offset_delta: read_u32(bytes, LAST_OFFSET_DELTA_AT),
            first_timestamp: read_i64(bytes, FIRST_TIMESTAMP_AT),
            max_timestamp: read_i64(bytes, MAX_TIMESTAMP_AT),
            producer_id: read_i64(bytes, PRODUCER_ID_AT),
            producer_epoch: read_u16(bytes, PRODUCER_EPOCH_AT) as i16,
            base_sequence: read_u32(bytes, BASE_SEQUENCE_AT) as i32,
        })
    }

    /// Writes every field but the CRC into `out[..BATCH_HEADER_BYTES]`; the
    /// caller computes the CRC once the payload is in place.
    pub fn write(&self, out: &mut [u8]) {
        assert!(out.len() >= BATCH_HEADER_BYTES, "header buffer too short");
        write_u64(out, BASE_OFFSET_AT, self.base_offset);
        write_u32(out, BATCH_BYTES_AT, self.batch_bytes);
        write_u32(out, LEADER_EPOCH_AT, self.leader_epoch);
        write_u32(out, CRC_AT, self.crc);
        out[MAGIC_AT] = BATCH_MAGIC;
        out[PAYLOAD_FORMAT_AT] = self.payload_format as u8;
        out[FLAGS_AT..FLAGS_AT + 2].copy_from_slice(&self.flags.to_le_bytes());
        write_u32(out, RECORD_COUNT_AT, self.record_count);
        write_u32(out, LAST_OFFSET_DELTA_AT, self.last_offset_delta);
        write_u64(out, FIRST_TIMESTAMP_AT, self.first_timestamp as u64);
        write_u64(out, MAX_TIMESTAMP_AT, self.max_timestamp as u64);
        write_u64(out, PRODUCER_ID_AT, self.producer_id as u64);
        out[PRODUCER_EPOCH_AT..PRODUCER_EPOCH_AT + 2]
            .copy_from_slice(&self.producer_epoch.to_le_bytes());
        out[RESERVED_AT..RESERVED_AT + 2].copy_from_slice(&[0, 0]);
        write_u32(out, BASE_SEQUENCE_AT, self.base_sequence as u32);
    }

    /// The offset one past the batch's last record.
    pub fn next_offset(&self) -> u64 {
        self.base_offset + u64::from(self.last_offset_delta) + 1
    }

    /// Whether the batch's records are part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.flags & FLAGS_TRANSACTIONAL != 0
    }

    /// The transaction marker a control batch holds; `None` for a batch of
    /// records.
    pub fn marker(&self) -> Option<Marker> {
        if self.flags & FLAGS_CONTROL == 0 {
            return None;
        }
        Some(if self.flags & FLAGS_COMMIT != 0 {
            Marker::Commit
        } else {
            Marker::Abort
        })
    }
}

/// What a transaction marker (a control batch) says of its producer's
/// transaction on the partition. Kafka's control record types 0 and 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Marker {
    Abort,
    Commit,
}

impl Marker {
    /// Kafka's control record type: 0 abort, 1 commit.
    pub fn control_type(self) -> i16 {
        match self {
            Marker::Abort => 0,
            Marker::Commit => 1,
        }
    }

    pub fn from_control_type(control_type: i16) -> Option<Marker> {
        match control_type {
            0 => Some(Marker::Abort),
            1 => Some(Marker::Commit),
            _ => None,
        }
    }
}

/// Computes the CRC of a whole batch, as its payload format says, and stores
/// it in the header. A kafka batch's payload must hold a Kafka header.
pub fn seal_crc(batch: &mut [u8]) {
    let crc = if batch[PAYLOAD_FORMAT_AT] == PayloadFormat::Kafka as u8 {
        let kafka_crc = kafka::kafka_crc(&batch[BATCH_HEADER_BYTES..]);
        kafka::sluice_crc(batch, kafka_crc)
    } else {
        crc32c::crc32c(&batch[CRC_FIELD_END..])
    };
    write_u32(batch, CRC_AT, crc);
}

pub(crate) fn read_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

pub(crate) fn read_i64(bytes: &[u8], at: usize) -> i64 {
    read_u64(bytes, at) as i64
}

pub(crate) fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

pub(crate) fn read_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(bytes[at..at + 2].try_into().expect("2 bytes"))
}

pub(crate) fn write_u64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

pub(crate) fn write_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}
