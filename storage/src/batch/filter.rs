//! The records of a stored batch one by one, and the batch rewritten with
//! some of them: what the cleaner of a compacted log needs (keys, offsets,
//! tombstones), for both payload formats.
//!
//! * A **kafka** batch keeps its Kafka header (base offset, base timestamp,
//!   `lastOffsetDelta`, producer id, epoch and base sequence): the records
//!   kept are copied byte for byte (each carries its offset and timestamp
//!   deltas from the base, which do not change), recompressed with the
//!   batch's codec, and the record count, lengths and both CRCs are set
//!   anew. Offsets keep their gaps, as Kafka's compacted batches do: the
//!   batch is no longer dense.
//! * A **native** batch's records have no offset of their own (a record's
//!   offset is the batch's base plus its index), so the records kept are
//!   written as one new native batch per run of consecutive offsets, each
//!   with the base sequence its first record had.
//!
//! A native record's value is never null, so only kafka records are
//! tombstones (a null value).
//!
//! Compressed records decompress into at most [`RECORDS_BYTES_MAX`] bytes,
//! and every length is checked against the bytes left before it is used.

use bytes::Bytes;

use super::{
    compression::{compress, compress_at, decompress, Codec, CompressError, DecompressError},
    header::{seal_crc, BatchHeader, PayloadFormat, BATCH_HEADER_BYTES, FLAGS_COMPRESSION_MASK},
    kafka::Origin,
    Batch, BatchBuilder, BatchError, BATCH_BYTES_MAX, KAFKA_BATCH_HEADER_BYTES,
};
use crate::Offset;

/// The most bytes a kafka batch's records may decompress to when the
/// cleaner reads them: four batches' worth. Records that compress better
/// than that are left as they are (a batch the cleaner cannot read is kept
/// whole, which is always safe).
pub const RECORDS_BYTES_MAX: usize = 4 * BATCH_BYTES_MAX;

const BATCH_LENGTH_AT: usize = 8;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const RECORD_COUNT_AT: usize = 57;
/// `batchLength` counts the bytes after itself.
const BATCH_LENGTH_END: usize = BATCH_LENGTH_AT + 4;
const ATTRIBUTES_COMPRESSION_MASK: i16 = 0b111;
const ATTRIBUTES_TRANSACTIONAL: i16 = 1 << 4;
/// A varint (`i32`) takes at most 5 bytes, a varlong at most 10.
const VARINT_BYTES_MAX: usize = 5;
const VARLONG_BYTES_MAX: usize = 10;

/// Why the records of a batch could not be read or rewritten.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error(transparent)]
    Decompress(#[from] DecompressError),
    #[error(transparent)]
    Compress(#[from] CompressError),
    #[error("kafka record {index}: {reason}")]
    BadRecord { index: usize, reason: &'static str },
    #[error("the batch holds {decoded} records but its header says {declared}")]
    RecordCountMismatch { decoded: usize, declared: u32 },
    #[error(transparent)]
    Batch(#[from] BatchError),
}

/// One record as the cleaner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordKey<'a> {
    pub offset: Offset,
    pub key: Option<&'a [u8]>,
    /// `None`: a null value, the key's delete marker (a tombstone).
    pub value: Option<&'a [u8]>,
    /// A null value.
    pub tombstone: bool,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
}

/// What [`filter`] made of a batch.
#[derive(Debug)]
pub enum Filtered {
    /// Every record is kept: the batch stays as it is.
    Unchanged,
    /// No record is kept.
    Empty,
    /// Some records are kept, in these batches (one for a kafka batch, one
    /// per run of consecutive offsets for a native one).
    Rewritten(Vec<Batch>),
}

/// Calls `each` with every record of `batch`, in offset order.
pub fn for_each_record(
    batch: &Batch,
    mut each: impl FnMut(RecordKey<'_>),
) -> Result<(), FilterError> {
    let header = batch.header();
    match header.payload_format {
        PayloadFormat::Native => {
            let records = batch.records()?;
            for (index, record) in records.iter().enumerate() {
                each(RecordKey {
                    offset: Offset(header.base_offset + index as u64),
                    key: record.key(),
                    value: Some(record.value()),
                    tombstone: false,
                    timestamp: header
                        .first_timestamp
                        .wrapping_add(record.timestamp_delta()),
                });
            }
            Ok(())
        }
        PayloadFormat::Kafka => {
            let payload = batch.payload();
            let records = kafka_records(payload)?;
            walk_kafka(&header, &records, |record, _| each(record))
        }
    }
}

/// Whether every record of `batch` has a key: a compacted log refuses a
/// batch with a record without one (Kafka's `INVALID_RECORD`).
pub fn all_keyed(batch: &Batch) -> Result<bool, FilterError> {
    let mut keyed = true;
    for_each_record(batch, |record| keyed &= record.key.is_some())?;
    Ok(keyed)
}

/// `batch` with only the records `keep` says yes to (called once per
/// record, in offset order).
pub fn filter(
    batch: &Batch,
    mut keep: impl FnMut(RecordKey<'_>) -> bool,
) -> Result<Filtered, FilterError> {
    let header = batch.header();
    match header.payload_format {
        PayloadFormat::Native => filter_native(batch, &header, keep),
        PayloadFormat::Kafka => {
            let payload = batch.payload();
            let records = kafka_records(payload)?;
            let mut kept: Vec<std::ops::Range<usize>> = Vec::new();
            let mut kept_bytes = 0;
            walk_kafka(&header, &records, |record, range| {
                if keep(record) {
                    kept_bytes += range.len();
                    kept.push(range);
                }
            })?;
            if kept.len() == header.record_count as usize {
                return Ok(Filtered::Unchanged);
            }
            if kept.is_empty() {
                return Ok(Filtered::Empty);
            }
            let mut section = Vec::with_capacity(kept_bytes);
            for range in &kept {
                section.extend_from_slice(&records[range.clone()]);
            }
            let rewritten = rewrite_kafka(&header, payload, &section, kept.len())?;
            Ok(Filtered::Rewritten(vec![rewritten]))
        }
    }
}

fn filter_native(
    batch: &Batch,
    header: &BatchHeader,
    mut keep: impl FnMut(RecordKey<'_>) -> bool,
) -> Result<Filtered, FilterError> {
    let records = batch.records()?;
    let mut kept = Vec::with_capacity(records.len());
    for (index, record) in records.iter().enumerate() {
        kept.push(keep(RecordKey {
            offset: Offset(header.base_offset + index as u64),
            key: record.key(),
            value: Some(record.value()),
            tombstone: false,
            timestamp: header
                .first_timestamp
                .wrapping_add(record.timestamp_delta()),
        }));
    }
    if kept.iter().all(|kept| *kept) {
        return Ok(Filtered::Unchanged);
    }
    if !kept.iter().any(|kept| *kept) {
        return Ok(Filtered::Empty);
    }
    let mut batches = Vec::new();
    let mut headers: Vec<(&[u8], Option<&[u8]>)> = Vec::new();
    let mut index = 0;
    while index < kept.len() {
        if !kept[index] {
            index += 1;
            continue;
        }
        let run_start = index;
        let mut builder = BatchBuilder::default();
        if header.producer_id >= 0 && header.base_sequence >= 0 {
            builder = builder.producer(
                header.producer_id,
                header.producer_epoch,
                crate::log::sequence_after(header.base_sequence, run_start as u32),
            );
        }
        while index < kept.len() && kept[index] {
            let record = records.get(index).expect("index within the records");
            headers.clear();
            headers.extend(record.headers().map(|header| (header.name, header.value)));
            builder.push(
                header
                    .first_timestamp
                    .wrapping_add(record.timestamp_delta()),
                record.key(),
                record.value(),
                &headers,
            );
            index += 1;
        }
        // A run of records of one batch is never larger than the batch.
        batches.push(builder.finish().assign(
            Offset(header.base_offset + run_start as u64),
            header.leader_epoch,
        ));
    }
    Ok(Filtered::Rewritten(batches))
}

/// The records section of a kafka payload, decompressed if it is
/// compressed.
fn kafka_records(payload: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, FilterError> {
    assert!(
        payload.len() >= KAFKA_BATCH_HEADER_BYTES,
        "a validated kafka batch holds a kafka header"
    );
    let section = &payload[KAFKA_BATCH_HEADER_BYTES..];
    match Codec::from_kafka(compression(payload))? {
        None => Ok(std::borrow::Cow::Borrowed(section)),
        Some(codec) => Ok(std::borrow::Cow::Owned(decompress(
            codec,
            section,
            RECORDS_BYTES_MAX,
        )?)),
    }
}

fn compression(payload: &[u8]) -> u16 {
    let attributes = i16::from_be_bytes([payload[ATTRIBUTES_AT], payload[ATTRIBUTES_AT + 1]]);
    (attributes & ATTRIBUTES_COMPRESSION_MASK) as u16
}

/// Calls `each` with every record of a kafka records section and the
/// bytes it takes there (its length varint included).
fn walk_kafka(
    header: &BatchHeader,
    records: &[u8],
    mut each: impl FnMut(RecordKey<'_>, std::ops::Range<usize>),
) -> Result<(), FilterError> {
    let mut cursor = Cursor {
        bytes: records,
        at: 0,
    };
    let declared = header.record_count;
    for index in 0..declared as usize {
        if cursor.remaining() == 0 {
            return Err(FilterError::RecordCountMismatch {
                decoded: index,
                declared,
            });
        }
        let start = cursor.at;
        let bad = |reason| FilterError::BadRecord { index, reason };
        let length = cursor.varint().ok_or(bad("length"))?;
        let body = cursor.bytes(length).ok_or(bad("length"))?;
        let mut body = Cursor { bytes: body, at: 0 };
        body.byte().ok_or(bad("attributes"))?;
        let timestamp_delta = body.varlong().ok_or(bad("timestamp delta"))?;
        let offset_delta = body.varint().ok_or(bad("offset delta"))?;
        if offset_delta < 0 || offset_delta as u32 > header.last_offset_delta {
            return Err(bad("offset delta outside the batch"));
        }
        let key = body.nullable_bytes().ok_or(bad("key"))?;
        let value = body.nullable_bytes().ok_or(bad("value"))?;
        each(
            RecordKey {
                offset: Offset(header.base_offset + offset_delta as u64),
                key,
                value,
                tombstone: value.is_none(),
                timestamp: header.first_timestamp.wrapping_add(timestamp_delta),
            },
            start..cursor.at,
        );
    }
    if cursor.remaining() != 0 {
        return Err(FilterError::BadRecord {
            index: declared as usize,
            reason: "bytes after the last record",
        });
    }
    Ok(())
}

/// A kafka batch like `header`/`payload` with records `section` (`count`
/// records, uncompressed) instead of its own, compressed with its codec.
fn rewrite_kafka(
    header: &BatchHeader,
    payload: &[u8],
    section: &[u8],
    count: usize,
) -> Result<Batch, FilterError> {
    let codec = compression(payload);
    let compressed;
    let records = match Codec::from_kafka(codec)? {
        None => section,
        Some(codec) => {
            compressed = compress(codec, section)?;
            &compressed[..]
        }
    };
    let count = u32::try_from(count).expect("fewer records than the batch held");
    assemble_kafka(header, payload, records, count, codec)
}

/// A kafka batch with `header`'s and `payload`'s fields, `records` as its
/// records section (`count` records, compressed with Kafka codec `codec`),
/// both headers' length, count and codec set and both CRCs computed.
fn assemble_kafka(
    header: &BatchHeader,
    payload: &[u8],
    records: &[u8],
    count: u32,
    codec: u16,
) -> Result<Batch, FilterError> {
    let kafka_bytes = KAFKA_BATCH_HEADER_BYTES + records.len();
    let batch_bytes = BATCH_HEADER_BYTES + kafka_bytes;
    if batch_bytes > BATCH_BYTES_MAX {
        return Err(BatchError::TooLarge {
            bytes: batch_bytes,
            max: BATCH_BYTES_MAX,
        }
        .into());
    }
    let mut bytes = vec![0; batch_bytes];
    let rewritten_header = BatchHeader {
        batch_bytes: batch_bytes as u32,
        record_count: count,
        flags: (header.flags & !FLAGS_COMPRESSION_MASK) | codec,
        crc: 0,
        ..*header
    };
    rewritten_header.write(&mut bytes);
    let kafka = &mut bytes[BATCH_HEADER_BYTES..];
    kafka[..KAFKA_BATCH_HEADER_BYTES].copy_from_slice(&payload[..KAFKA_BATCH_HEADER_BYTES]);
    kafka[KAFKA_BATCH_HEADER_BYTES..].copy_from_slice(records);
    let batch_length = (kafka_bytes - BATCH_LENGTH_END) as u32;
    kafka[BATCH_LENGTH_AT..BATCH_LENGTH_END].copy_from_slice(&batch_length.to_be_bytes());
    kafka[RECORD_COUNT_AT..RECORD_COUNT_AT + 4].copy_from_slice(&count.to_be_bytes());
    let attributes = i16::from_be_bytes([kafka[ATTRIBUTES_AT], kafka[ATTRIBUTES_AT + 1]]);
    let attributes = (attributes & !ATTRIBUTES_COMPRESSION_MASK) | codec as i16;
    kafka[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    let kafka_crc = crc32c::crc32c(&kafka[ATTRIBUTES_AT..]);
    kafka[CRC_AT..ATTRIBUTES_AT].copy_from_slice(&kafka_crc.to_be_bytes());
    seal_crc(&mut bytes);
    Ok(Batch::validate(Bytes::from(bytes))?)
}

/// `batch` with its records compressed with `codec` at `level` (`None`:
/// uncompressed), as a topic's `compression.type` asks: the records and
/// every header field kept, the codec in both headers, the CRCs
/// recomputed. A native batch, or a kafka batch already in that codec, is
/// returned as it is.
pub fn recompress(
    batch: &Batch,
    codec: Option<Codec>,
    level: Option<i32>,
) -> Result<Batch, FilterError> {
    let Some(payload) = batch.kafka_payload() else {
        return Ok(batch.clone());
    };
    let target = codec.map_or(0, |codec| codec as u16);
    if compression(&payload) == target {
        return Ok(batch.clone());
    }
    let section = kafka_records(&payload)?;
    let compressed;
    let records = match codec {
        None => &section[..],
        Some(codec) => {
            compressed = compress_at(codec, &section, level)?;
            &compressed[..]
        }
    };
    let header = batch.header();
    assemble_kafka(&header, &payload, records, header.record_count, target)
}

/// Reads Kafka's record fields from a slice; `None` where one is cut
/// short or malformed.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn byte(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    fn unsigned(&mut self, bytes_max: usize) -> Option<u64> {
        let mut raw = 0_u64;
        for byte_index in 0..bytes_max {
            let byte = self.byte()?;
            raw |= u64::from(byte & 0x7f) << (7 * byte_index);
            if byte & 0x80 == 0 {
                return Some(raw);
            }
        }
        None
    }

    fn varint(&mut self) -> Option<i32> {
        let raw = self.unsigned(VARINT_BYTES_MAX)? as u32;
        Some((raw >> 1) as i32 ^ -((raw & 1) as i32))
    }

    fn varlong(&mut self) -> Option<i64> {
        let raw = self.unsigned(VARLONG_BYTES_MAX)?;
        Some((raw >> 1) as i64 ^ -((raw & 1) as i64))
    }

    /// `length` bytes; a negative length or one past the end is `None`.
    fn bytes(&mut self, length: i32) -> Option<&'a [u8]> {
        let length = usize::try_from(length).ok()?;
        if length > self.remaining() {
            return None;
        }
        let bytes = &self.bytes[self.at..self.at + length];
        self.at += length;
        Some(bytes)
    }

    /// A length varint and its bytes; -1 is null (`Some(None)`).
    fn nullable_bytes(&mut self) -> Option<Option<&'a [u8]>> {
        match self.varint()? {
            -1 => Some(None),
            length => self.bytes(length).map(Some),
        }
    }
}

/// A record's key and value as [`kafka_batch`] takes them; `None` is null.
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// A Kafka RecordBatch v2 of `records` (key, value; `None` is null, a
/// value's null is a tombstone), compressed with `codec` (Kafka's codes),
/// all at `timestamp`, without producer or headers: the batch a writer of
/// the broker's own compacted logs (the group coordinator's) appends.
/// Fails if the batch would pass [`BATCH_BYTES_MAX`] (checked before the
/// batch is assembled) or has no record.
pub fn kafka_batch(
    records: &[KeyValue<'_>],
    codec: u16,
    timestamp: i64,
) -> Result<Batch, FilterError> {
    let kafka = kafka_batch_bytes(records, codec, timestamp, None)?;
    Ok(Batch::from_kafka(&kafka)?)
}

/// [`kafka_batch`] as a part of the transaction of `producer_id` at
/// `producer_epoch`: transactional, without a sequence (-1), which the
/// broker writes for a transaction (the group coordinator's offsets of a
/// TxnOffsetCommit, as Kafka's coordinator writes them). A log opens the
/// producer's transaction with it and checks no sequence; the marker of the
/// transaction ends it. A producer's transactional batch must carry a
/// sequence: this one is the broker's alone.
pub fn transactional_kafka_batch(
    records: &[KeyValue<'_>],
    codec: u16,
    timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
) -> Result<Batch, FilterError> {
    let kafka = kafka_batch_bytes(
        records,
        codec,
        timestamp,
        Some((producer_id, producer_epoch)),
    )?;
    Ok(Batch::from_kafka_from(&kafka, Origin::Log)?)
}

/// The Kafka RecordBatch v2 bytes of [`kafka_batch`], transactional for a
/// `producer` (id, epoch).
fn kafka_batch_bytes(
    records: &[KeyValue<'_>],
    codec: u16,
    timestamp: i64,
    producer: Option<(i64, i16)>,
) -> Result<Vec<u8>, FilterError> {
    fn varint(out: &mut Vec<u8>, value: i64) {
        let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
        while zigzag >= 0x80 {
            out.push(zigzag as u8 | 0x80);
            zigzag >>= 7;
        }
        out.push(zigzag as u8);
    }
    let codec_of = Codec::from_kafka(codec)?;
    if records.is_empty() {
        return Err(BatchError::Empty.into());
    }
    // Each record's framing takes at most 5 varints of 5 bytes and its
    // attributes byte.
    let section_bytes: usize = records
        .iter()
        .map(|(key, value)| 26 + key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len))
        .sum();
    if BATCH_HEADER_BYTES + KAFKA_BATCH_HEADER_BYTES + section_bytes > BATCH_BYTES_MAX {
        return Err(BatchError::TooLarge {
            bytes: BATCH_HEADER_BYTES + KAFKA_BATCH_HEADER_BYTES + section_bytes,
            max: BATCH_BYTES_MAX,
        }
        .into());
    }
    let mut section = Vec::with_capacity(section_bytes);
    for (index, (key, value)) in records.iter().enumerate() {
        let mut body = vec![0_u8];
        varint(&mut body, 0);
        varint(&mut body, index as i64);
        for part in [key, value] {
            match part {
                Some(bytes) => {
                    varint(&mut body, bytes.len() as i64);
                    body.extend_from_slice(bytes);
                }
                None => varint(&mut body, -1),
            }
        }
        varint(&mut body, 0);
        varint(&mut section, body.len() as i64);
        section.extend_from_slice(&body);
    }
    let records_bytes = match codec_of {
        None => section,
        Some(codec) => compress(codec, &section)?,
    };
    let mut kafka = Vec::new();
    kafka.extend_from_slice(&0_i64.to_be_bytes());
    kafka.extend_from_slice(
        &((KAFKA_BATCH_HEADER_BYTES - BATCH_LENGTH_END + records_bytes.len()) as i32).to_be_bytes(),
    );
    kafka.extend_from_slice(&0_i32.to_be_bytes());
    kafka.push(2);
    kafka.extend_from_slice(&[0; 4]);
    let transactional = if producer.is_some() {
        ATTRIBUTES_TRANSACTIONAL
    } else {
        0
    };
    let (producer_id, producer_epoch) = producer.unwrap_or((-1, -1));
    kafka.extend_from_slice(&(codec as i16 | transactional).to_be_bytes());
    kafka.extend_from_slice(&(records.len() as i32 - 1).to_be_bytes());
    kafka.extend_from_slice(&timestamp.to_be_bytes());
    kafka.extend_from_slice(&timestamp.to_be_bytes());
    kafka.extend_from_slice(&producer_id.to_be_bytes());
    kafka.extend_from_slice(&producer_epoch.to_be_bytes());
    kafka.extend_from_slice(&(-1_i32).to_be_bytes());
    kafka.extend_from_slice(&(records.len() as i32).to_be_bytes());
    kafka.extend_from_slice(&records_bytes);
    let crc = crc32c::crc32c(&kafka[ATTRIBUTES_AT..]);
    kafka[CRC_AT..ATTRIBUTES_AT].copy_from_slice(&crc.to_be_bytes());
    Ok(kafka)
}

/// [`kafka_batch`] for tests.
#[cfg(test)]
pub(crate) fn test_kafka_batch(records: &[KeyValue<'_>], codec: u16, timestamp: i64) -> Batch {
    kafka_batch(records, codec, timestamp).expect("a test batch")
}

#[cfg(test)]
mod tests {
    use super::*;

    type Record = (Offset, Option<Vec<u8>>, Option<Vec<u8>>);

    fn records_of(batch: &Batch) -> Vec<Record> {
        let mut out = Vec::new();
        for_each_record(batch, |record| {
            out.push((
                record.offset,
                record.key.map(<[u8]>::to_vec),
                record.value.map(<[u8]>::to_vec),
            ));
        })
        .unwrap();
        out
    }

    fn records(count: usize) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        (0..count)
            .map(|i| {
                let value =
                    (i % 5 != 3).then(|| format!("value-{i}").repeat(1 + i % 4).into_bytes());
                (format!("key-{}", i % 7).into_bytes(), value)
            })
            .collect()
    }

    #[test]
    fn a_recompressed_batch_holds_the_same_records_in_the_codec_asked() {
        let all = records(40);
        let borrowed: Vec<KeyValue<'_>> = all
            .iter()
            .map(|(key, value)| (Some(&key[..]), value.as_deref()))
            .collect();
        let codecs = [
            None,
            Some(Codec::Gzip),
            Some(Codec::Snappy),
            Some(Codec::Lz4),
            Some(Codec::Zstd),
        ];
        for from in 0..=4 {
            let batch = test_kafka_batch(&borrowed, from, 1_000);
            for to in codecs {
                for level in [None, Some(1)] {
                    let recompressed = recompress(&batch, to, level).unwrap();
                    let code = to.map_or(0, |codec| codec as u16);
                    assert_eq!(compression(&recompressed.kafka_payload().unwrap()), code);
                    assert_eq!(recompressed.header().flags & FLAGS_COMPRESSION_MASK, code);
                    assert_eq!(
                        records_of(&recompressed),
                        records_of(&batch),
                        "{from} to {to:?}"
                    );
                    Batch::from_kafka(&recompressed.kafka_payload().unwrap()).unwrap();
                }
            }
        }
    }

    #[test]
    fn a_kafka_batch_keeps_the_records_asked_with_their_offsets_in_every_codec() {
        let all = records(40);
        let borrowed: Vec<KeyValue<'_>> = all
            .iter()
            .map(|(key, value)| (Some(&key[..]), value.as_deref()))
            .collect();
        for codec in 0..=4 {
            let batch = test_kafka_batch(&borrowed, codec, 1_000).assign(Offset(500), 4);
            let before = records_of(&batch);
            assert_eq!(before.len(), 40);
            assert!(
                before.iter().any(|(_, _, value)| value.is_none()),
                "tombstones"
            );
            let Filtered::Rewritten(batches) =
                filter(&batch, |record| record.offset.0 % 3 == 0).unwrap()
            else {
                panic!("codec {codec}: a third kept is a rewrite");
            };
            assert_eq!(batches.len(), 1);
            let rewritten = &batches[0];
            // Validated as a stored and as a replicated batch.
            Batch::validate(rewritten.as_bytes().clone()).unwrap();
            rewritten.check_assigned().unwrap();
            let header = rewritten.header();
            assert_eq!(header.base_offset, 500);
            assert_eq!(header.last_offset_delta, 39, "the offsets keep their span");
            assert_eq!(header.record_count, 13);
            assert_eq!(header.flags, codec, "the same codec");
            assert_eq!(header.leader_epoch, 4);
            let after = records_of(rewritten);
            let expected: Vec<_> = before
                .into_iter()
                .filter(|(offset, _, _)| offset.0 % 3 == 0)
                .collect();
            assert_eq!(after, expected, "codec {codec}");
            assert!(matches!(
                filter(&batch, |_| true).unwrap(),
                Filtered::Unchanged
            ));
            assert!(matches!(
                filter(&batch, |_| false).unwrap(),
                Filtered::Empty
            ));
        }
    }

    #[test]
    fn a_native_batch_keeps_runs_of_offsets_as_batches_of_their_own() {
        let mut builder = BatchBuilder::default().producer(9, 2, 100);
        for i in 0..10_u8 {
            builder.push(
                2_000 + i64::from(i),
                Some(&[i]),
                &[i; 3],
                &[(b"h", Some(b"v"))],
            );
        }
        let batch = builder.finish().assign(Offset(50), 1);
        let kept = [0, 1, 4, 5, 6, 9];
        let Filtered::Rewritten(batches) =
            filter(&batch, |record| kept.contains(&(record.offset.0 - 50))).unwrap()
        else {
            panic!("a rewrite");
        };
        let runs: Vec<(u64, u32, i32)> = batches
            .iter()
            .map(|batch| {
                let header = batch.header();
                (
                    header.base_offset,
                    header.record_count,
                    header.base_sequence,
                )
            })
            .collect();
        assert_eq!(runs, [(50, 2, 100), (54, 3, 104), (59, 1, 109)]);
        let mut read = Vec::new();
        for batch in &batches {
            Batch::validate(batch.as_bytes().clone()).unwrap();
            for record in batch.records().unwrap().iter() {
                assert_eq!(record.headers().count(), 1);
                read.push((record.key().unwrap()[0], record.value().to_vec()));
            }
        }
        let expected: Vec<_> = kept.iter().map(|&i| (i as u8, vec![i as u8; 3])).collect();
        assert_eq!(read, expected);
    }

    #[test]
    fn a_record_without_a_key_is_found() {
        let keyed = test_kafka_batch(&[(Some(b"k"), Some(b"v"))], 1, 0);
        assert!(all_keyed(&keyed).unwrap());
        let keyless = test_kafka_batch(&[(Some(b"k"), Some(b"v")), (None, Some(b"v"))], 4, 0);
        assert!(!all_keyed(&keyless).unwrap());
        let mut builder = BatchBuilder::default();
        builder.push(0, None, b"v", &[]);
        assert!(!all_keyed(&builder.finish()).unwrap());
    }
}
