//! The kafka payload: a Kafka RecordBatch v2, kept byte for byte as a Kafka
//! producer sent it, behind the Sluice header that describes it.
//!
//! The Kafka batch header is big-endian:
//!
//! ```text
//!  0  baseOffset            i64   set in place by [`assign`]
//!  8  batchLength           i32   bytes after this field
//! 12  partitionLeaderEpoch  i32   set in place by [`assign`]
//! 16  magic                 i8    2
//! 17  crc                   u32   CRC-32C of bytes [21, end)
//! 21  attributes            i16   bits 0..3 compression, 3 timestamp type,
//!                                 4 transactional, 5 control
//! 23  lastOffsetDelta       i32
//! 27  baseTimestamp         i64
//! 35  maxTimestamp          i64
//! 43  producerId            i64
//! 51  producerEpoch         i16
//! 53  baseSequence          i32
//! 57  recordCount           i32
//! 61  records               (compressed as a whole when attributes say so)
//! ```
//!
//! The broker never decompresses a kafka payload on produce: it checks the
//! header and the Kafka CRC, and describes the batch in the Sluice header.
//! Decoding the records is the fetch side's business (`sluice-net`).
//!
//! This file also writes a native batch as a Kafka batch ([`write_native`]),
//! for a Kafka client that fetches a batch a native client produced.

use bytes::BytesMut;

use super::{
    header::{
        BatchHeader, Marker, PayloadFormat, BATCH_HEADER_BYTES, CRC_FIELD_END, FLAGS_COMMIT,
        FLAGS_CONTROL, FLAGS_TRANSACTIONAL,
    },
    BatchError, Records, BATCH_RECORDS_MAX,
};

/// The fixed part of a Kafka RecordBatch v2, before its records.
pub const KAFKA_BATCH_HEADER_BYTES: usize = 61;
/// The record batch version this broker accepts: v2, the only one with
/// producer ids, headers and a CRC-32C (Kafka 0.11 and later).
pub const KAFKA_MAGIC: i8 = 2;

const BASE_OFFSET_AT: usize = 0;
const BATCH_LENGTH_AT: usize = 8;
const LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
/// Kafka's CRC covers every byte from here to the end of the batch.
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORD_COUNT_AT: usize = 57;

/// `batchLength` counts the bytes after itself.
const BATCH_LENGTH_END: usize = BATCH_LENGTH_AT + 4;

const ATTRIBUTES_COMPRESSION_MASK: i16 = 0b111;
const ATTRIBUTES_TRANSACTIONAL: i16 = 1 << 4;
const ATTRIBUTES_CONTROL: i16 = 1 << 5;
/// The largest compression codec Kafka defines: 0 none, 1 gzip, 2 snappy,
/// 3 lz4, 4 zstd.
const COMPRESSION_CODEC_MAX: u16 = 4;

/// The smallest uncompressed Kafka record: a one-byte length, attributes,
/// timestamp delta, offset delta, key length, value length and header count.
/// It bounds the record count an uncompressed batch can claim.
const KAFKA_RECORD_BYTES_MIN: usize = 7;

/// Where a Kafka batch comes from, which decides whether it may be a
/// control batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    /// A producer's request: control batches are the broker's alone.
    Producer,
    /// A log: stored, replicated, or a marker the broker wrote.
    Log,
}

/// The control record of a marker: its key is a version (0) and the
/// control type; its value a version (0) and the coordinator's epoch.
const CONTROL_KEY_BYTES: usize = 4;
const CONTROL_VALUE_BYTES: usize = 6;
/// A marker's record: attributes, timestamp and offset deltas, key length,
/// key, value length, value, header count (each varint one byte).
const CONTROL_RECORD_BYTES: usize = 4 + CONTROL_KEY_BYTES + 1 + CONTROL_VALUE_BYTES + 1;
/// A marker's Kafka bytes: the header, the record's length varint (one
/// byte) and the record.
pub(super) const MARKER_KAFKA_BYTES: usize = KAFKA_BATCH_HEADER_BYTES + 1 + CONTROL_RECORD_BYTES;

/// A Kafka batch header's fields, decoded. Parsing checks only that the
/// bytes hold a header; [`KafkaHeader::check`] checks the rest but the CRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct KafkaHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
    /// A control batch's marker, read from its record's key; `None` for a
    /// batch of records, and for a control batch whose record does not
    /// read as a marker (which [`KafkaHeader::check`] refuses).
    pub marker: Option<Marker>,
}

impl KafkaHeader {
    pub fn parse(kafka: &[u8]) -> Result<KafkaHeader, BatchError> {
        if kafka.len() < KAFKA_BATCH_HEADER_BYTES {
            return Err(BatchError::KafkaTooShort { bytes: kafka.len() });
        }
        Ok(KafkaHeader {
            base_offset: read_i64(kafka, BASE_OFFSET_AT),
            batch_length: read_i32(kafka, BATCH_LENGTH_AT),
            leader_epoch: read_i32(kafka, LEADER_EPOCH_AT),
            magic: kafka[MAGIC_AT] as i8,
            crc: read_i32(kafka, CRC_AT) as u32,
            attributes: read_i16(kafka, ATTRIBUTES_AT),
            last_offset_delta: read_i32(kafka, LAST_OFFSET_DELTA_AT),
            base_timestamp: read_i64(kafka, BASE_TIMESTAMP_AT),
            max_timestamp: read_i64(kafka, MAX_TIMESTAMP_AT),
            producer_id: read_i64(kafka, PRODUCER_ID_AT),
            producer_epoch: read_i16(kafka, PRODUCER_EPOCH_AT),
            base_sequence: read_i32(kafka, BASE_SEQUENCE_AT),
            record_count: read_i32(kafka, RECORD_COUNT_AT),
            marker: match read_i16(kafka, ATTRIBUTES_AT) & ATTRIBUTES_CONTROL {
                0 => None,
                _ => control_marker(&kafka[KAFKA_BATCH_HEADER_BYTES..]),
            },
        })
    }

    /// Checks everything the header of a `kafka_bytes`-long batch can tell,
    /// but the CRC: the length, the version, the attributes and the counts.
    /// A producer's batch must be `dense`; a stored one may have gaps where
    /// the cleaner of a compacted log removed records (`lastOffsetDelta` is
    /// then past the count).
    ///
    /// A transactional batch must carry a producer id and an epoch, and,
    /// from a producer, a sequence (a transactional producer is
    /// idempotent). One the broker wrote for a transaction (the group
    /// coordinator's offsets of a TxnOffsetCommit) carries no sequence
    /// (-1): a log checks sequences only of the batches that have one, and
    /// the broker's own need no check, as Kafka's coordinator's writes get
    /// none. A control batch
    /// comes from a log only, never from a producer, and must be what a
    /// broker writes: transactional, uncompressed, one control record whose
    /// key is a commit or an abort.
    pub fn check(&self, kafka_bytes: usize, dense: bool, origin: Origin) -> Result<(), BatchError> {
        if i64::from(self.batch_length) + BATCH_LENGTH_END as i64 != kafka_bytes as i64 {
            return Err(BatchError::KafkaLengthMismatch {
                batch_length: self.batch_length,
                available: kafka_bytes,
            });
        }
        if self.magic != KAFKA_MAGIC {
            return Err(BatchError::KafkaUnknownMagic { magic: self.magic });
        }
        let compression = self.compression();
        if compression > COMPRESSION_CODEC_MAX {
            return Err(BatchError::KafkaUnknownCompression { codec: compression });
        }
        let transactional = self.attributes & ATTRIBUTES_TRANSACTIONAL != 0;
        if self.attributes & ATTRIBUTES_CONTROL != 0 {
            if origin == Origin::Producer {
                return Err(BatchError::KafkaControl {
                    attributes: self.attributes,
                });
            }
            let bad = |reason| Err(BatchError::KafkaBadControl { reason });
            if !transactional {
                return bad("not transactional");
            }
            if compression != 0 {
                return bad("compressed");
            }
            if self.record_count != 1 || self.last_offset_delta != 0 {
                return bad("not one record");
            }
            if self.producer_id < 0 || self.producer_epoch < 0 {
                return bad("no producer id or epoch");
            }
            if self.marker.is_none() {
                return bad("its record is not a commit or abort marker");
            }
        } else if transactional
            && (self.producer_id < 0
                || self.producer_epoch < 0
                || (self.base_sequence < 0 && origin == Origin::Producer))
        {
            return Err(BatchError::KafkaTransactional {
                producer_id: self.producer_id,
            });
        }
        // Negative counts read as unsigned are over every cap.
        let record_count = self.record_count as u32;
        if record_count == 0 {
            return Err(BatchError::Empty);
        }
        if record_count > BATCH_RECORDS_MAX {
            return Err(BatchError::TooManyRecords {
                count: record_count,
                max: BATCH_RECORDS_MAX,
            });
        }
        // A producer's batch is dense: Kafka refuses one whose offsets do
        // not match its count, and so does this broker, which assigns
        // `last_offset_delta + 1` offsets to it without reading its records.
        let delta = self.last_offset_delta as u32;
        if (dense && delta != record_count - 1) || delta < record_count - 1 {
            return Err(BatchError::BadOffsetDelta {
                last_offset_delta: self.last_offset_delta as u32,
                record_count,
            });
        }
        let records_bytes = kafka_bytes - KAFKA_BATCH_HEADER_BYTES;
        if compression == 0 && records_bytes / KAFKA_RECORD_BYTES_MIN < record_count as usize {
            return Err(BatchError::KafkaRecordsTooShort {
                record_count,
                bytes: records_bytes,
            });
        }
        Ok(())
    }

    /// The compression codec: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression(&self) -> u16 {
        (self.attributes & ATTRIBUTES_COMPRESSION_MASK) as u16
    }

    /// The Sluice header of a batch whose payload has this Kafka header: the
    /// same base offset, leader epoch, counts, timestamps and producer, the
    /// compression codec, the transactional and control bits and a
    /// marker's commit in `flags`. The CRC is left zero.
    pub fn batch_header(&self, batch_bytes: u32) -> BatchHeader {
        let mut flags = self.compression();
        if self.attributes & ATTRIBUTES_TRANSACTIONAL != 0 {
            flags |= FLAGS_TRANSACTIONAL;
        }
        if self.attributes & ATTRIBUTES_CONTROL != 0 {
            flags |= FLAGS_CONTROL;
        }
        if self.marker == Some(Marker::Commit) {
            flags |= FLAGS_COMMIT;
        }
        BatchHeader {
            base_offset: self.base_offset as u64,
            batch_bytes,
            leader_epoch: self.leader_epoch as u32,
            crc: 0,
            payload_format: PayloadFormat::Kafka,
            flags,
            record_count: self.record_count as u32,
            last_offset_delta: self.last_offset_delta as u32,
            first_timestamp: self.base_timestamp,
            max_timestamp: self.max_timestamp,
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence: self.base_sequence,
        }
    }
}

/// Checks that a stored Sluice header says what its kafka payload's header
/// says (see [`KafkaHeader::batch_header`]). The CRC and length fields are
/// checked elsewhere.
pub(super) fn check_agreement(stored: &BatchHeader, kafka: &KafkaHeader) -> Result<(), BatchError> {
    let expected = kafka.batch_header(stored.batch_bytes);
    // Each pair compares the Sluice field with the Kafka one as the same
    // bits, so a u64 base offset and Kafka's i64 agree when their bits do.
    let fields: [(&'static str, i64, i64); 11] = [
        (
            "base_offset",
            stored.base_offset as i64,
            expected.base_offset as i64,
        ),
        (
            "leader_epoch",
            i64::from(stored.leader_epoch),
            i64::from(expected.leader_epoch),
        ),
        ("flags", i64::from(stored.flags), i64::from(expected.flags)),
        (
            "record_count",
            i64::from(stored.record_count),
            i64::from(expected.record_count),
        ),
        (
            "last_offset_delta",
            i64::from(stored.last_offset_delta),
            i64::from(expected.last_offset_delta),
        ),
        (
            "first_timestamp",
            stored.first_timestamp,
            expected.first_timestamp,
        ),
        (
            "max_timestamp",
            stored.max_timestamp,
            expected.max_timestamp,
        ),
        ("producer_id", stored.producer_id, expected.producer_id),
        (
            "producer_epoch",
            i64::from(stored.producer_epoch),
            i64::from(expected.producer_epoch),
        ),
        (
            "base_sequence",
            i64::from(stored.base_sequence),
            i64::from(expected.base_sequence),
        ),
        (
            "payload_format",
            stored.payload_format as i64,
            expected.payload_format as i64,
        ),
    ];
    for (field, header, payload) in fields {
        if header != payload {
            return Err(BatchError::KafkaHeaderMismatch {
                field,
                header,
                payload,
            });
        }
    }
    Ok(())
}

/// The marker of an uncompressed control batch's records section: exactly
/// one record, whose key is version 0 and a control type and whose value is
/// version 0 and a coordinator epoch, without headers. `None` when the
/// section is anything else.
fn control_marker(records: &[u8]) -> Option<Marker> {
    // Every varint of a marker's record is one byte: its length is under
    // 64, its deltas 0, its key and value lengths 4 and 6, its header
    // count 0 (a varint's zigzag doubles its value).
    let [length, _attributes, 0, 0, key_length, rest @ ..] = records else {
        return None;
    };
    if usize::from(*length) != 2 * (records.len() - 1)
        || usize::from(*key_length) != 2 * CONTROL_KEY_BYTES
    {
        return None;
    }
    let (key, rest) = rest.split_at_checked(CONTROL_KEY_BYTES)?;
    let [value_length, rest @ ..] = rest else {
        return None;
    };
    if usize::from(*value_length) != 2 * CONTROL_VALUE_BYTES {
        return None;
    }
    let (value, headers) = rest.split_at_checked(CONTROL_VALUE_BYTES)?;
    if headers != [0] || key[..2] != [0, 0] || value[..2] != [0, 0] {
        return None;
    }
    Marker::from_control_type(i16::from_be_bytes([key[2], key[3]]))
}

/// A control batch: `marker` for the transaction of `producer_id` at
/// `producer_epoch`, as a transaction coordinator of `coordinator_epoch`
/// asked for it, stamped `timestamp`. Its base offset and leader epoch are
/// zero until the batch is assigned.
pub(super) fn write_marker(
    producer_id: i64,
    producer_epoch: i16,
    marker: Marker,
    coordinator_epoch: i32,
    timestamp: i64,
) -> Vec<u8> {
    let mut record = vec![
        0, // attributes
        0, // timestamp delta
        0, // offset delta
        (CONTROL_KEY_BYTES * 2) as u8,
    ];
    record.extend_from_slice(&0_i16.to_be_bytes());
    record.extend_from_slice(&marker.control_type().to_be_bytes());
    record.push((CONTROL_VALUE_BYTES * 2) as u8);
    record.extend_from_slice(&0_i16.to_be_bytes());
    record.extend_from_slice(&coordinator_epoch.to_be_bytes());
    record.push(0); // no headers
    let mut kafka = Vec::with_capacity(KAFKA_BATCH_HEADER_BYTES + 1 + record.len());
    kafka.extend_from_slice(&0_i64.to_be_bytes());
    let batch_length = KAFKA_BATCH_HEADER_BYTES - BATCH_LENGTH_END + 1 + record.len();
    kafka.extend_from_slice(&(batch_length as i32).to_be_bytes());
    kafka.extend_from_slice(&0_i32.to_be_bytes());
    kafka.push(KAFKA_MAGIC as u8);
    kafka.extend_from_slice(&[0; 4]);
    kafka.extend_from_slice(&(ATTRIBUTES_TRANSACTIONAL | ATTRIBUTES_CONTROL).to_be_bytes());
    kafka.extend_from_slice(&0_i32.to_be_bytes());
    kafka.extend_from_slice(&timestamp.to_be_bytes());
    kafka.extend_from_slice(&timestamp.to_be_bytes());
    kafka.extend_from_slice(&producer_id.to_be_bytes());
    kafka.extend_from_slice(&producer_epoch.to_be_bytes());
    kafka.extend_from_slice(&(-1_i32).to_be_bytes());
    kafka.extend_from_slice(&1_i32.to_be_bytes());
    kafka.push((record.len() * 2) as u8);
    kafka.extend_from_slice(&record);
    let crc = kafka_crc(&kafka);
    kafka[CRC_AT..ATTRIBUTES_AT].copy_from_slice(&crc.to_be_bytes());
    kafka
}

/// The Kafka CRC of a Kafka batch: CRC-32C of `kafka[21..]`. The one pass
/// over the records; [`sluice_crc`] extends it.
pub(super) fn kafka_crc(kafka: &[u8]) -> u32 {
    crc32c::crc32c(&kafka[ATTRIBUTES_AT..])
}

/// The Sluice CRC of a batch with a kafka payload, from the payload's Kafka
/// CRC (`kafka_crc`, computed by [`kafka_crc`]). It is the CRC-32C of, in
/// this order:
///
/// 1. `payload[21..]`: what Kafka's CRC covers (attributes to the last record),
/// 2. `header[20..64]`: the Sluice header after its CRC field,
/// 3. `payload[8..12]`: Kafka's batchLength,
/// 4. `payload[16..21]`: Kafka's magic and CRC.
///
/// Every byte of the batch is covered but the fields set in place (the base
/// offset and leader epoch, in both headers) and the Sluice length and CRC
/// fields. The payload's records come first so that the CRC over them is the
/// Kafka CRC, extended by 53 bytes rather than computed twice.
pub(super) fn sluice_crc(batch: &[u8], kafka_crc: u32) -> u32 {
    let payload = &batch[BATCH_HEADER_BYTES..];
    let crc = crc32c::crc32c_append(kafka_crc, &batch[CRC_FIELD_END..BATCH_HEADER_BYTES]);
    let crc = crc32c::crc32c_append(crc, &payload[BATCH_LENGTH_AT..BATCH_LENGTH_END]);
    crc32c::crc32c_append(crc, &payload[MAGIC_AT..ATTRIBUTES_AT])
}

/// The attribute bit that marks a batch's timestamps as the broker's.
const ATTRIBUTES_LOG_APPEND_TIME: i16 = 1 << 3;

/// Sets a kafka payload's timestamp type to LogAppendTime and its max
/// timestamp to `now_ms`, its CRC recomputed.
pub(super) fn stamp_log_append_time(kafka: &mut [u8], now_ms: i64) {
    let attributes = read_i16(kafka, ATTRIBUTES_AT) | ATTRIBUTES_LOG_APPEND_TIME;
    kafka[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    kafka[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = kafka_crc(kafka);
    kafka[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Writes the broker-assigned fields into a kafka payload, as Kafka keeps
/// them: big-endian, the epoch as an `i32`. Neither CRC covers them.
pub(super) fn assign(kafka: &mut [u8], base_offset: u64, leader_epoch: u32) {
    kafka[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
    kafka[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// Appends to `out` a native batch's records as one uncompressed Kafka
/// RecordBatch v2 with the batch's base offset, leader epoch, timestamps and
/// producer. Each record keeps its timestamp delta, key (a missing key is
/// written as length -1), value and headers (a missing header value too);
/// its offset delta is its index, as native batches are dense.
///
/// The size is computed first and `out` grown once; the records are then
/// written into that slice, and the CRC is computed over them at the end.
pub(super) fn write_native(header: &BatchHeader, records: Records<'_>, out: &mut BytesMut) {
    let records_bytes: usize = records
        .iter()
        .enumerate()
        .map(|(index, record)| {
            let body = record_body_bytes(index, &record);
            varint_bytes(body as i64) + body
        })
        .sum();
    let kafka_bytes = KAFKA_BATCH_HEADER_BYTES + records_bytes;
    let batch_length =
        i32::try_from(kafka_bytes - BATCH_LENGTH_END).expect("a batch under the cap fits i32");
    let start = out.len();
    out.resize(start + kafka_bytes, 0);
    let kafka = &mut out[start..];

    let mut cursor = Cursor {
        bytes: kafka,
        at: 0,
    };
    cursor.put(&(header.base_offset as i64).to_be_bytes());
    cursor.put(&batch_length.to_be_bytes());
    cursor.put(&(header.leader_epoch as i32).to_be_bytes());
    cursor.put(&[KAFKA_MAGIC as u8]);
    cursor.put(&[0; 4]);
    cursor.put(&0_i16.to_be_bytes());
    cursor.put(&(header.last_offset_delta as i32).to_be_bytes());
    cursor.put(&header.first_timestamp.to_be_bytes());
    cursor.put(&header.max_timestamp.to_be_bytes());
    cursor.put(&header.producer_id.to_be_bytes());
    cursor.put(&header.producer_epoch.to_be_bytes());
    cursor.put(&header.base_sequence.to_be_bytes());
    cursor.put(&(header.record_count as i32).to_be_bytes());
    debug_assert_eq!(cursor.at, KAFKA_BATCH_HEADER_BYTES);

    for (index, record) in records.iter().enumerate() {
        cursor.put_varint(record_body_bytes(index, &record) as i64);
        cursor.put(&[0]);
        cursor.put_varint(record.timestamp_delta());
        cursor.put_varint(index as i64);
        match record.key() {
            Some(key) => cursor.put_bytes(key),
            None => cursor.put_varint(-1),
        }
        cursor.put_bytes(record.value());
        cursor.put_varint(record.header_count() as i64);
        for header in record.headers() {
            cursor.put_bytes(header.name);
            match header.value {
                Some(value) => cursor.put_bytes(value),
                None => cursor.put_varint(-1),
            }
        }
    }
    assert_eq!(
        cursor.at, kafka_bytes,
        "kafka batch written is not the size computed"
    );
    let crc = kafka_crc(kafka);
    kafka[CRC_AT..ATTRIBUTES_AT].copy_from_slice(&crc.to_be_bytes());
}

/// Writes forward into a slice sized beforehand.
struct Cursor<'a> {
    bytes: &'a mut [u8],
    at: usize,
}

impl Cursor<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.bytes[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }

    /// A length varint and the bytes it counts.
    fn put_bytes(&mut self, bytes: &[u8]) {
        self.put_varint(bytes.len() as i64);
        self.put(bytes);
    }

    fn put_varint(&mut self, value: i64) {
        self.at += put_varint(&mut self.bytes[self.at..], value);
    }
}

/// The bytes of one Kafka record after its length varint.
fn record_body_bytes(index: usize, record: &super::RecordView<'_>) -> usize {
    let mut bytes = 1 + varint_bytes(record.timestamp_delta()) + varint_bytes(index as i64);
    bytes += record.key().map_or(1, |key| bytes_field_bytes(key.len()));
    bytes += bytes_field_bytes(record.value().len());
    bytes += varint_bytes(record.header_count() as i64);
    for header in record.headers() {
        bytes += bytes_field_bytes(header.name.len());
        bytes += header
            .value
            .map_or(1, |value| bytes_field_bytes(value.len()));
    }
    bytes
}

/// A length varint and the bytes it counts.
fn bytes_field_bytes(len: usize) -> usize {
    varint_bytes(len as i64) + len
}

/// Writes Kafka's zigzag varint (`varint` and `varlong` are the same bytes
/// for the same value) at the start of `out`; returns its length.
pub(super) fn put_varint(out: &mut [u8], value: i64) -> usize {
    let mut zigzag = zigzag(value);
    let mut at = 0;
    while zigzag >= 0x80 {
        out[at] = zigzag as u8 | 0x80;
        zigzag >>= 7;
        at += 1;
    }
    out[at] = zigzag as u8;
    at + 1
}

pub(super) fn varint_bytes(value: i64) -> usize {
    let significant_bits = 64 - zigzag(value).leading_zeros() as usize;
    significant_bits.max(1).div_ceil(7)
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn read_i64(bytes: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

fn read_i32(bytes: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn read_i16(bytes: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(bytes[at..at + 2].try_into().expect("2 bytes"))
}
