//! A stored kafka batch as a native one, for a native client that fetches
//! what a Kafka producer produced.
//!
//! A kafka batch is kept as the producer sent it, compressed or not (see
//! `sluice_storage::batch`); reading its records means decoding and perhaps
//! decompressing them, which is why this lives on the fetch side and not in
//! storage. The other way, a native batch for a Kafka client, needs no
//! decompression and is `Batch::write_kafka`.
//!
//! What the native format cannot say, and what becomes of it:
//! - a null record value (a Kafka tombstone) becomes an empty value;
//! - with log-append time (attributes bit 3), every record takes the batch's
//!   max timestamp, as Kafka readers do.
//!
//! Headers convert as they are: in order, repeated names included (Kafka
//! allows them and their order matters), names as bytes (Kafka reads them as
//! UTF-8; nothing here needs to), null values null.
//!
//! The records are decoded here rather than by a general Kafka decoder so
//! that nothing a producer sent can take the broker down: the records
//! section decompresses into at most [`RECORDS_BYTES_MAX`] bytes (see
//! `decompress`), and every count and length is checked against the bytes
//! left before it is used. Any input gives a batch or an error, never a
//! panic.
//!
//! Cost: compressed records are decompressed whole into one buffer; the
//! record fields are read in place from it (or from the stored batch when
//! uncompressed) and copied once, into the native batch. One vector of
//! header slices is reused for every record: nothing is allocated per
//! record. Only a read across formats pays this; same-format reads are
//! zero-copy.

use sluice_storage::batch::{
    Batch, BatchBuilder, BATCH_BYTES_MAX, BATCH_HEADER_BYTES, KAFKA_BATCH_HEADER_BYTES,
};

use super::decompress::{decompress, Codec, DecompressError};

/// The most bytes a kafka batch's records may decompress to: the native
/// batch cap. A native batch holding the records stores their keys, values
/// and headers plus a fixed-size entry per record and per header that is
/// larger than a Kafka record's varint framing, so records that decompress
/// to more than this would not fit a native batch either (forged overlong
/// varints aside, and those are refused just the same).
pub const RECORDS_BYTES_MAX: usize = BATCH_BYTES_MAX;

/// Where the Kafka batch header keeps its attributes (`i16`, big-endian);
/// see the layout in `sluice_storage::batch`'s kafka module.
const ATTRIBUTES_AT: usize = 21;
/// Attributes bits 0..3: the compression codec.
const ATTRIBUTES_COMPRESSION_MASK: i16 = 0b111;
/// Attributes bit 3: the broker's append time stands for every record's.
const ATTRIBUTES_LOG_APPEND_TIME: i16 = 1 << 3;

/// A Kafka varint (`i32`, zigzag) takes at most 5 bytes, a varlong (`i64`)
/// at most 10; Kafka refuses longer ones.
const VARINT_BYTES_MAX: usize = 5;
const VARLONG_BYTES_MAX: usize = 10;
/// The smallest header: a one-byte name length (an empty name) and a
/// one-byte value length. It bounds the header count a record can claim.
const HEADER_BYTES_MIN: usize = 2;

/// Why a stored batch could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("the batch is not in the kafka format")]
    NotKafka,
    #[error("unknown kafka compression codec {codec}")]
    UnknownCompression { codec: u16 },
    /// The compressed records are not a whole stream of their codec.
    #[error("kafka records do not decode: {reason}")]
    Decode { reason: String },
    #[error("{codec} kafka records decompress to more than {max} bytes")]
    DecompressedTooLarge { codec: &'static str, max: usize },
    #[error("kafka record {index} ends inside its {field}")]
    RecordTruncated { index: usize, field: &'static str },
    #[error("kafka record {index}: its {field} is a varint longer than Kafka's")]
    VarintTooLong { index: usize, field: &'static str },
    #[error("kafka record {index}: {field} {length} is negative or more than the {remaining} bytes left")]
    BadLength {
        index: usize,
        field: &'static str,
        length: i64,
        remaining: usize,
    },
    #[error("kafka record {index} says it takes {declared} bytes but its fields take {read}")]
    RecordLengthMismatch {
        index: usize,
        declared: usize,
        read: usize,
    },
    #[error("{bytes} bytes follow the last of the kafka batch's {record_count} records")]
    TrailingBytes { bytes: usize, record_count: u32 },
    #[error("kafka record {index} has offset delta {offset_delta}: not past the record before it and within the batch, or a gap where a dense batch is asked for")]
    OffsetGap { index: usize, offset_delta: i64 },
    #[error("kafka batch holds {decoded} records but its header says {declared}")]
    RecordCountMismatch { decoded: usize, declared: u32 },
    #[error("kafka records make a native batch of more than {max} bytes")]
    TooLarge { max: usize },
}

impl From<DecompressError> for ConvertError {
    fn from(error: DecompressError) -> ConvertError {
        match error {
            DecompressError::UnknownCodec { codec } => ConvertError::UnknownCompression { codec },
            DecompressError::TooLarge { codec, max } => ConvertError::DecompressedTooLarge {
                codec: codec.name(),
                max,
            },
            DecompressError::Corrupt { .. } => ConvertError::Decode {
                reason: error.to_string(),
            },
        }
    }
}

/// Converts a kafka-format batch into a native one with the same base
/// offset, leader epoch, producer (id, epoch, base sequence), and records:
/// timestamps, keys, values and headers, in order (see the module doc for
/// what the native format cannot say). Compressed payloads (gzip, snappy,
/// lz4, zstd) are decompressed, into at most [`RECORDS_BYTES_MAX`] bytes.
///
/// Fails with [`ConvertError::NotKafka`] for a native batch; when the
/// records do not decompress ([`ConvertError::Decode`]) or decompress to
/// more than [`RECORDS_BYTES_MAX`]; when a record does not decode (a field
/// cut short, an overlong varint, a length past its record, a record length
/// that its fields do not fill); when the records are not as many as the
/// header says, or bytes follow them; when they are not dense; and when
/// they would make a native batch over [`BATCH_BYTES_MAX`]. Never panics.
pub fn kafka_to_native(batch: &Batch) -> Result<Batch, ConvertError> {
    let mut runs = convert(batch, true)?;
    assert_eq!(runs.len(), 1, "a dense batch converts to one");
    Ok(runs.swap_remove(0))
}

/// [`kafka_to_native`] for a batch a compacted log may hold: one whose
/// records have gaps between their offsets (the cleaner removed the
/// records between). A native batch's records are dense, so each run of
/// consecutive offsets becomes a native batch of its own, at its offset and
/// with the base sequence of its first record. A dense batch gives one.
pub fn kafka_to_native_runs(batch: &Batch) -> Result<Vec<Batch>, ConvertError> {
    convert(batch, false)
}

/// The native batches of a kafka one: one per run of offsets, or, if
/// `dense`, one, a gap being an error.
fn convert(batch: &Batch, dense: bool) -> Result<Vec<Batch>, ConvertError> {
    let payload = batch.kafka_payload().ok_or(ConvertError::NotKafka)?;
    let header = batch.header();
    assert!(
        payload.len() >= KAFKA_BATCH_HEADER_BYTES,
        "a validated kafka batch holds a kafka header, not {} bytes",
        payload.len()
    );
    let attributes = i16::from_be_bytes([payload[ATTRIBUTES_AT], payload[ATTRIBUTES_AT + 1]]);
    let log_append_time = attributes & ATTRIBUTES_LOG_APPEND_TIME != 0;
    let section = &payload[KAFKA_BATCH_HEADER_BYTES..];
    let decompressed;
    let records = match Codec::from_kafka((attributes & ATTRIBUTES_COMPRESSION_MASK) as u16)? {
        None => section,
        Some(codec) => {
            decompressed = decompress(codec, section, RECORDS_BYTES_MAX)?;
            &decompressed[..]
        }
    };

    let builder_at = |delta: u32| {
        let sequence = if header.base_sequence >= 0 {
            sluice_storage::log::sequence_after(header.base_sequence, delta)
        } else {
            header.base_sequence
        };
        BatchBuilder::with_capacity(records.len() + BATCH_HEADER_BYTES).producer(
            header.producer_id,
            header.producer_epoch,
            sequence,
        )
    };
    let mut runs = Vec::new();
    let mut run_start = 0_u32;
    let mut next_delta = 0_i64;
    let mut builder = builder_at(0);
    let mut cursor = Cursor::new(records);
    // One vector of header slices, reused for every record.
    let mut headers: Vec<(&[u8], Option<&[u8]>)> = Vec::new();
    for index in 0..header.record_count as usize {
        if cursor.remaining() == 0 {
            return Err(ConvertError::RecordCountMismatch {
                decoded: index,
                declared: header.record_count,
            });
        }
        let record = read_record(&mut cursor, index, &mut headers)?;
        let offset_delta = i64::from(record.offset_delta);
        if (dense && offset_delta != index as i64)
            || offset_delta < next_delta
            || offset_delta > i64::from(header.last_offset_delta)
        {
            return Err(ConvertError::OffsetGap {
                index,
                offset_delta: record.offset_delta.into(),
            });
        }
        if offset_delta > next_delta && builder.is_empty() {
            builder = builder_at(offset_delta as u32);
            run_start = offset_delta as u32;
        } else if offset_delta > next_delta {
            // A gap: the run so far is a batch, a new one starts here.
            runs.push(
                std::mem::replace(&mut builder, builder_at(offset_delta as u32))
                    .finish()
                    .assign(
                        sluice_storage::Offset(batch.base_offset().0 + u64::from(run_start)),
                        header.leader_epoch,
                    ),
            );
            run_start = offset_delta as u32;
        }
        next_delta = offset_delta + 1;
        let timestamp = if log_append_time {
            header.max_timestamp
        } else {
            header.first_timestamp.wrapping_add(record.timestamp_delta)
        };
        let value = record.value.unwrap_or_default();
        // What the record adds to the native batch at least: refused before
        // it is copied in.
        let parts_bytes = record.key.map_or(0, <[u8]>::len)
            + value.len()
            + headers
                .iter()
                .map(|(name, value)| name.len() + value.map_or(0, <[u8]>::len))
                .sum::<usize>();
        if builder.estimated_bytes() + parts_bytes > BATCH_BYTES_MAX {
            return Err(ConvertError::TooLarge {
                max: BATCH_BYTES_MAX,
            });
        }
        builder.push(timestamp, record.key, value, &headers);
        if builder.estimated_bytes() > BATCH_BYTES_MAX {
            return Err(ConvertError::TooLarge {
                max: BATCH_BYTES_MAX,
            });
        }
    }
    if cursor.remaining() != 0 {
        return Err(ConvertError::TrailingBytes {
            bytes: cursor.remaining(),
            record_count: header.record_count,
        });
    }
    runs.push(builder.finish().assign(
        sluice_storage::Offset(batch.base_offset().0 + u64::from(run_start)),
        header.leader_epoch,
    ));
    Ok(runs)
}

/// A Kafka record's fields but its headers, read in place.
struct KafkaRecord<'a> {
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
}

/// Reads record `index` at the cursor, and its headers into `headers`
/// (cleared first), in order:
///
/// ```text
/// length          varint  bytes after this field
/// attributes      i8      unused
/// timestampDelta  varlong
/// offsetDelta     varint
/// keyLength       varint  -1: null key
/// key             bytes
/// valueLength     varint  -1: null value
/// value           bytes
/// headerCount     varint
/// headers         headerKeyLength varint, headerKey bytes,
///                 headerValueLength varint (-1: null), headerValue bytes
/// ```
fn read_record<'a>(
    records: &mut Cursor<'a>,
    index: usize,
    headers: &mut Vec<(&'a [u8], Option<&'a [u8]>)>,
) -> Result<KafkaRecord<'a>, ConvertError> {
    let length = records.varint(index, "length")?;
    let body = records.bytes(index, "length", length)?;
    let mut body = Cursor::new(body);
    body.byte(index, "attributes")?;
    let timestamp_delta = body.varlong(index, "timestamp delta")?;
    let offset_delta = body.varint(index, "offset delta")?;
    let key = body.nullable_bytes(index, "key length")?;
    let value = body.nullable_bytes(index, "value length")?;
    let header_count = body.varint(index, "header count")?;
    if header_count < 0 || header_count as usize > body.remaining() / HEADER_BYTES_MIN {
        return Err(ConvertError::BadLength {
            index,
            field: "header count",
            length: header_count.into(),
            remaining: body.remaining(),
        });
    }
    headers.clear();
    for _ in 0..header_count {
        let name_length = body.varint(index, "header name length")?;
        let name = body.bytes(index, "header name length", name_length)?;
        let value = body.nullable_bytes(index, "header value length")?;
        headers.push((name, value));
    }
    if body.remaining() != 0 {
        return Err(ConvertError::RecordLengthMismatch {
            index,
            declared: body.bytes.len(),
            read: body.at,
        });
    }
    Ok(KafkaRecord {
        timestamp_delta,
        offset_delta,
        key,
        value,
    })
}

/// Reads Kafka's record fields from a slice, each checked against the bytes
/// left. Errors name the record (`index`) and the field.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8]) -> Cursor<'a> {
        Cursor { bytes, at: 0 }
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn byte(&mut self, index: usize, field: &'static str) -> Result<u8, ConvertError> {
        let byte = *self
            .bytes
            .get(self.at)
            .ok_or(ConvertError::RecordTruncated { index, field })?;
        self.at += 1;
        Ok(byte)
    }

    /// An unsigned LEB128 of at most `bytes_max` bytes. Bits past 64 are
    /// dropped, as Kafka's reader drops those past its integer's width.
    fn unsigned(
        &mut self,
        index: usize,
        field: &'static str,
        bytes_max: usize,
    ) -> Result<u64, ConvertError> {
        let mut raw = 0_u64;
        for byte_index in 0..bytes_max {
            let byte = self.byte(index, field)?;
            raw |= u64::from(byte & 0x7f) << (7 * byte_index);
            if byte & 0x80 == 0 {
                return Ok(raw);
            }
        }
        Err(ConvertError::VarintTooLong { index, field })
    }

    /// A zigzag varint (`i32`).
    fn varint(&mut self, index: usize, field: &'static str) -> Result<i32, ConvertError> {
        let raw = self.unsigned(index, field, VARINT_BYTES_MAX)? as u32;
        Ok((raw >> 1) as i32 ^ -((raw & 1) as i32))
    }

    /// A zigzag varlong (`i64`).
    fn varlong(&mut self, index: usize, field: &'static str) -> Result<i64, ConvertError> {
        let raw = self.unsigned(index, field, VARLONG_BYTES_MAX)?;
        Ok((raw >> 1) as i64 ^ -((raw & 1) as i64))
    }

    /// `length` bytes, where `length` was read as field `field`.
    fn bytes(
        &mut self,
        index: usize,
        field: &'static str,
        length: i32,
    ) -> Result<&'a [u8], ConvertError> {
        let remaining = self.remaining();
        match usize::try_from(length) {
            Ok(length) if length <= remaining => {
                let bytes = &self.bytes[self.at..self.at + length];
                self.at += length;
                Ok(bytes)
            }
            _ => Err(ConvertError::BadLength {
                index,
                field,
                length: length.into(),
                remaining,
            }),
        }
    }

    /// A varint length `field`, then that many bytes; length -1 is null.
    fn nullable_bytes(
        &mut self,
        index: usize,
        field: &'static str,
    ) -> Result<Option<&'a [u8]>, ConvertError> {
        match self.varint(index, field)? {
            -1 => Ok(None),
            length => self.bytes(index, field, length).map(Some),
        }
    }
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
