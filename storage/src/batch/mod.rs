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
//! 16  crc                u32   CRC-32C, see below
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
//! ## Payload formats and what the CRC covers
//!
//! A **native** payload is an rkyv archive of the records, read in place. The
//! CRC is the CRC-32C of bytes `[20, batch_bytes)`: everything after the CRC
//! field.
//!
//! A **kafka** payload is a Kafka RecordBatch v2 exactly as a Kafka producer
//! sent it ([`Batch::from_kafka`]). It carries its own copies of the base
//! offset (`payload[0..8]`) and leader epoch (`payload[12..16]`), big-endian,
//! which [`Batch::assign`] sets in place beside the header's, so the CRC
//! skips them too. It is the CRC-32C of, in this order:
//!
//! 1. `payload[21..]`: what the Kafka CRC covers (attributes to the last record),
//! 2. `header[20..64]`: the header after its CRC field,
//! 3. `payload[8..12]`: Kafka's batchLength,
//! 4. `payload[16..21]`: Kafka's magic and CRC.
//!
//! The records come first so that one pass over them gives both CRCs: the
//! Kafka CRC, then the Sluice CRC by extending it over 53 more bytes. The
//! header of a kafka batch repeats what the Kafka header says (base offset,
//! leader epoch, counts, timestamps, producer; `flags` holds the compression
//! codec, the transactional and control bits, and a marker's commit), and
//! [`Batch::validate`] checks that they agree. A transactional batch must
//! carry its producer; a control batch (a transaction marker, made by
//! [`Batch::marker`]) is taken from a log, never from a producer.
//!
//! [`Batch::validate`] is the one gate every foreign batch passes: lengths, CRC,
//! caps and the payload (the rkyv archive of a native one; the Kafka header
//! and CRC of a kafka one). What passed it is a [`Batch`], and nothing checks
//! it again. [`Batch::from_kafka`] is the gate for a Kafka producer's batch.
//!
//! A client that reads a batch stored in the other format gets it converted:
//! [`Batch::write_kafka`] writes a native batch as a Kafka one; the reverse
//! needs the records decompressed and lives in `sluice-net`.

mod builder;
pub mod compression;
pub mod filter;
mod header;
mod kafka;
mod native;

pub use builder::BatchBuilder;
pub use header::{
    BatchHeader, Marker, PayloadFormat, BATCH_HEADER_BYTES, BATCH_MAGIC, CRC_FIELD_END,
    FLAGS_COMMIT, FLAGS_COMPRESSION_MASK, FLAGS_CONTROL, FLAGS_TRANSACTIONAL,
};
pub use kafka::{KAFKA_BATCH_HEADER_BYTES, KAFKA_MAGIC};
pub use native::{HeaderView, RecordView, Records};

use bytes::{Bytes, BytesMut};

use crate::Offset;
use kafka::Origin;

/// A batch is at most this large. It bounds the memory one produce can pin and
/// matches Kafka's default `message.max.bytes` order of magnitude (1 MiB) with
/// room for large records; larger batches are refused before they are stored.
pub const BATCH_BYTES_MAX: usize = 16 * 1024 * 1024;

/// The bytes of a transaction marker ([`Batch::marker`]), header included:
/// the smallest batch a log holds many of in a row.
pub const MARKER_BATCH_BYTES: usize = BATCH_HEADER_BYTES + kafka::MARKER_KAFKA_BYTES;

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
    #[error(
        "kafka batch too short: {bytes} bytes, its header alone is {KAFKA_BATCH_HEADER_BYTES}"
    )]
    KafkaTooShort { bytes: usize },
    #[error("kafka batchLength {batch_length} does not fit the {available} bytes given")]
    KafkaLengthMismatch { batch_length: i32, available: usize },
    #[error("kafka record batch version {magic}, only {KAFKA_MAGIC} is accepted")]
    KafkaUnknownMagic { magic: i8 },
    #[error("kafka batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    KafkaCrcMismatch { stored: u32, computed: u32 },
    #[error("kafka compression codec {codec} is unknown")]
    KafkaUnknownCompression { codec: u16 },
    #[error(
        "transactional kafka batch without a producer id, epoch or (from a producer) sequence (producer id {producer_id})"
    )]
    KafkaTransactional { producer_id: i64 },
    #[error("kafka control batch (attributes {attributes:#x}) from a producer: only the broker writes transaction markers")]
    KafkaControl { attributes: i16 },
    #[error("kafka control batch is not a transaction marker: {reason}")]
    KafkaBadControl { reason: &'static str },
    #[error("uncompressed kafka records of {bytes} bytes cannot hold {record_count} records")]
    KafkaRecordsTooShort { record_count: u32, bytes: usize },
    #[error("header field {field} is {header} but the kafka payload says {payload}")]
    KafkaHeaderMismatch {
        field: &'static str,
        header: i64,
        payload: i64,
    },
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
    /// a native payload must be a valid archive whose record count agrees
    /// with the header, and a kafka payload must pass the checks of
    /// [`Batch::from_kafka`] (its own CRC too) and agree with the header. On
    /// success the batch is never checked again.
    ///
    /// A client's batch: a kafka payload may not be a control batch (see
    /// [`Batch::validate_run`] for a log's).
    pub fn validate(bytes: Bytes) -> Result<Batch, BatchError> {
        Batch::validate_from(bytes, Origin::Producer)
    }

    fn validate_from(bytes: Bytes, origin: Origin) -> Result<Batch, BatchError> {
        check(&bytes, origin)?;
        Ok(Batch {
            bytes,
            archive_checked: true,
        })
    }

    /// Validates `bytes` as whole stored batches one after another, the
    /// first at or past offset `base` and each at or past where the one
    /// before ended (what a leader pushes to a replica; the gaps are a
    /// compacted log's): each as [`Batch::validate`] does, and
    /// its kafka payload's offsets and epoch agreeing with its header
    /// ([`Batch::check_assigned`]). Each batch is a slice of `bytes`; a
    /// length is checked against what is left before it is taken.
    pub fn validate_run(mut bytes: Bytes, base: Offset) -> Result<Vec<Batch>, BatchError> {
        let mut batches = Vec::new();
        let mut expected = base.0;
        while !bytes.is_empty() {
            let header = BatchHeader::parse(&bytes)?;
            let length = header.batch_bytes as usize;
            if length > bytes.len() {
                return Err(BatchError::LengthMismatch {
                    declared: length,
                    available: bytes.len(),
                });
            }
            // At or past where the one before ended: a compacted log has
            // gaps between its batches.
            if header.base_offset < expected {
                return Err(BatchError::OffsetOutOfSequence {
                    base_offset: header.base_offset,
                    expected,
                });
            }
            let batch = Batch::validate_from(bytes.split_to(length), Origin::Log)?;
            batch.check_assigned()?;
            expected = header.next_offset();
            batches.push(batch);
        }
        Ok(batches)
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

    /// Makes a batch of one whole Kafka RecordBatch v2 as a Kafka producer
    /// sent it: its `batchLength` must cover `kafka` exactly, its version
    /// must be 2, its CRC must match, it must hold at least one record and at
    /// most [`BATCH_RECORDS_MAX`] (and, uncompressed, no more than its bytes
    /// can hold), be dense (`lastOffsetDelta` is the count minus one), use a
    /// known compression codec, and not be a control batch (a transactional
    /// one must carry its producer's id, epoch and sequence). The batch, header included, must fit [`BATCH_BYTES_MAX`]; that
    /// is checked before anything is allocated.
    ///
    /// The records are not decompressed. The Sluice header is made from the
    /// Kafka one, and header and payload are copied into one new buffer. The
    /// result is validated: nothing checks it again.
    pub fn from_kafka(kafka: &[u8]) -> Result<Batch, BatchError> {
        Batch::from_kafka_from(kafka, Origin::Producer)
    }

    /// A transaction marker (a Kafka control batch) for the partition's
    /// log: `marker` ends the transaction of `producer_id` at
    /// `producer_epoch`, as the transaction coordinator of
    /// `coordinator_epoch` asked, stamped `timestamp`. What Kafka's
    /// WriteTxnMarkers appends.
    pub fn marker(
        producer_id: i64,
        producer_epoch: i16,
        marker: Marker,
        coordinator_epoch: i32,
        timestamp: i64,
    ) -> Result<Batch, BatchError> {
        let kafka = kafka::write_marker(
            producer_id,
            producer_epoch,
            marker,
            coordinator_epoch,
            timestamp,
        );
        Batch::from_kafka_from(&kafka, Origin::Log)
    }

    fn from_kafka_from(kafka: &[u8], origin: Origin) -> Result<Batch, BatchError> {
        let batch_bytes = BATCH_HEADER_BYTES + kafka.len();
        if batch_bytes > BATCH_BYTES_MAX {
            return Err(BatchError::TooLarge {
                bytes: batch_bytes,
                max: BATCH_BYTES_MAX,
            });
        }
        let kafka_header = kafka::KafkaHeader::parse(kafka)?;
        kafka_header.check(kafka.len(), true, origin)?;
        let kafka_crc = kafka::kafka_crc(kafka);
        if kafka_crc != kafka_header.crc {
            return Err(BatchError::KafkaCrcMismatch {
                stored: kafka_header.crc,
                computed: kafka_crc,
            });
        }
        let header = kafka_header
            .batch_header(u32::try_from(batch_bytes).expect("a batch under the cap fits u32"));
        check_counts(&header)?;

        let mut bytes = Vec::with_capacity(batch_bytes);
        bytes.resize(BATCH_HEADER_BYTES, 0);
        header.write(&mut bytes);
        bytes.extend_from_slice(kafka);
        let crc = kafka::sluice_crc(&bytes, kafka_crc);
        header::write_u32(&mut bytes, header::CRC_AT, crc);
        debug_assert_eq!(
            check(&bytes, origin).err(),
            None,
            "a kafka batch made must validate"
        );
        Ok(Batch {
            bytes: Bytes::from(bytes),
            archive_checked: true,
        })
    }

    /// Wraps bytes that a [`BatchBuilder`] just made. Checked in debug builds.
    pub(crate) fn from_built(bytes: Bytes) -> Batch {
        debug_assert_eq!(
            check(&bytes, Origin::Log).err(),
            None,
            "a built batch must validate"
        );
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

    /// Whether the batch is part of a transaction: its records, or its
    /// marker. Reads one field.
    pub fn is_transactional(&self) -> bool {
        header::read_u16(&self.bytes, header::FLAGS_AT) & FLAGS_TRANSACTIONAL != 0
    }

    /// The epoch of the leader that appended the batch.
    pub fn leader_epoch(&self) -> u32 {
        header::read_u32(&self.bytes, header::LEADER_EPOCH_AT)
    }

    /// Checks that a kafka payload agrees with the header in every field,
    /// as validation checks it: above all the base offset and leader epoch,
    /// which neither CRC covers and [`Batch::assign`] sets in both. A batch
    /// a replica stores as its leader assigned it, without assigning it
    /// again, is checked so; a native batch has no copies.
    pub fn check_assigned(&self) -> Result<(), BatchError> {
        if !self.is_kafka() {
            return Ok(());
        }
        let kafka = kafka::KafkaHeader::parse(self.payload())?;
        kafka::check_agreement(&self.header(), &kafka)
    }

    /// The first record's timestamp (Kafka's `baseTimestamp`).
    pub fn first_timestamp(&self) -> i64 {
        self.header().first_timestamp
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

    fn is_kafka(&self) -> bool {
        self.bytes[header::PAYLOAD_FORMAT_AT] == PayloadFormat::Kafka as u8
    }

    /// The Kafka RecordBatch v2 of a kafka batch, as stored (with the base
    /// offset and leader epoch assigned to it); `None` for a native batch.
    /// A slice of the batch's bytes: no copy.
    pub fn kafka_payload(&self) -> Option<Bytes> {
        self.is_kafka()
            .then(|| self.bytes.slice(BATCH_HEADER_BYTES..))
    }

    /// Appends the batch to `out` as one Kafka RecordBatch v2. A kafka batch
    /// appends its payload as stored. A native batch is written uncompressed
    /// with its base offset, leader epoch, timestamps and producer; each
    /// record with attributes 0, its timestamp and offset deltas, key (length
    /// -1 if none), value and headers (a header without a value gets length
    /// -1), and the Kafka CRC set. Nothing is allocated per record.
    ///
    /// Fails only if a native batch read back from disk holds an archive that
    /// does not validate ([`BatchError::InvalidPayload`]).
    pub fn write_kafka(&self, out: &mut BytesMut) -> Result<(), BatchError> {
        if self.is_kafka() {
            out.extend_from_slice(self.payload());
            return Ok(());
        }
        let records = self.records()?;
        kafka::write_native(&self.header(), records, out);
        Ok(())
    }

    /// Marks a kafka payload's timestamps as the broker's (Kafka's
    /// `message.timestamp.type=LogAppendTime`): the timestamp-type attribute
    /// set and the max timestamp, which Kafka clients then give every record,
    /// made `now_ms` in both headers; both CRCs recomputed. A native payload
    /// has no timestamp type: it is returned as it is.
    pub fn stamp_log_append_time(self, now_ms: i64) -> Batch {
        if !self.is_kafka() {
            return self;
        }
        let archive_checked = self.archive_checked;
        let mut bytes = BytesMut::from(self.bytes);
        kafka::stamp_log_append_time(&mut bytes[BATCH_HEADER_BYTES..], now_ms);
        header::write_u64(&mut bytes, header::MAX_TIMESTAMP_AT, now_ms as u64);
        let kafka_crc = kafka::kafka_crc(&bytes[BATCH_HEADER_BYTES..]);
        let crc = kafka::sluice_crc(&bytes, kafka_crc);
        header::write_u32(&mut bytes, header::CRC_AT, crc);
        let batch = Batch {
            bytes: bytes.freeze(),
            archive_checked,
        };
        debug_assert_eq!(
            check(&batch.bytes, Origin::Log).err(),
            None,
            "a stamped batch must validate"
        );
        batch
    }

    /// Sets the broker-assigned fields in place: in the header, where they
    /// precede the CRC field, and in a kafka payload, where neither CRC covers
    /// them. No checksum is recomputed. Copies only if the bytes are shared.
    pub fn assign(self, base_offset: Offset, leader_epoch: u32) -> Batch {
        let archive_checked = self.archive_checked;
        let is_kafka = self.is_kafka();
        let mut bytes = BytesMut::from(self.bytes);
        header::write_u64(&mut bytes, header::BASE_OFFSET_AT, base_offset.0);
        header::write_u32(&mut bytes, header::LEADER_EPOCH_AT, leader_epoch);
        if is_kafka {
            kafka::assign(
                &mut bytes[BATCH_HEADER_BYTES..],
                base_offset.0,
                leader_epoch,
            );
        }
        Batch {
            bytes: bytes.freeze(),
            archive_checked,
        }
    }
}

/// What [`check_frame`] learnt on its way.
struct Frame {
    header: BatchHeader,
    /// The CRC over a kafka payload's records: the Kafka CRC if the payload
    /// is right. Computed for the Sluice CRC and kept, so that checking the
    /// Kafka CRC costs no second pass.
    kafka_crc: Option<u32>,
}

/// Checks everything that does not need the payload decoded.
fn check_frame(bytes: &[u8]) -> Result<Frame, BatchError> {
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
    let (computed, kafka_crc) = match header.payload_format {
        PayloadFormat::Native => (crc32c::crc32c(&bytes[CRC_FIELD_END..]), None),
        PayloadFormat::Kafka => {
            let payload = &bytes[BATCH_HEADER_BYTES..];
            if payload.len() < KAFKA_BATCH_HEADER_BYTES {
                return Err(BatchError::KafkaTooShort {
                    bytes: payload.len(),
                });
            }
            let kafka_crc = kafka::kafka_crc(payload);
            (kafka::sluice_crc(bytes, kafka_crc), Some(kafka_crc))
        }
    };
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    check_counts(&header)?;
    Ok(Frame { header, kafka_crc })
}

/// The record count under its cap, the offsets in range.
fn check_counts(header: &BatchHeader) -> Result<(), BatchError> {
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
    Ok(())
}

fn check(bytes: &[u8], origin: Origin) -> Result<BatchHeader, BatchError> {
    let Frame { header, kafka_crc } = check_frame(bytes)?;
    match header.payload_format {
        PayloadFormat::Native => {
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
        PayloadFormat::Kafka => {
            let payload = &bytes[BATCH_HEADER_BYTES..];
            let kafka_header = kafka::KafkaHeader::parse(payload)?;
            kafka_header.check(payload.len(), false, origin)?;
            let computed = kafka_crc.expect("check_frame computes a kafka payload's CRC");
            if computed != kafka_header.crc {
                return Err(BatchError::KafkaCrcMismatch {
                    stored: kafka_header.crc,
                    computed,
                });
            }
            kafka::check_agreement(&header, &kafka_header)?;
        }
    }
    Ok(header)
}

#[cfg(test)]
mod kafka_tests;
#[cfg(test)]
mod tests;
