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
//! Null header values stay null: native headers have optional values. The
//! Kafka decoder used here reads header names as UTF-8 and keeps one value
//! per name (the last), so a batch with repeated header names converts with
//! one of each; one with a name that is not UTF-8 does not convert.
//!
//! Cost: the decoder decompresses the records whole and allocates per
//! record. Only a read across formats pays it; same-format reads are
//! zero-copy.

use kafka_protocol::records::{RecordBatchDecoder, TimestampType};
use sluice_storage::batch::{Batch, BatchBuilder, BATCH_BYTES_MAX};

/// Why a stored batch could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("the batch is not in the kafka format")]
    NotKafka,
    #[error("kafka records do not decode: {reason}")]
    Decode { reason: String },
    #[error("kafka record {index} has offset delta {offset_delta}: a dense batch's is its index")]
    OffsetGap { index: usize, offset_delta: i64 },
    #[error("kafka batch holds {decoded} records but its header says {declared}")]
    RecordCountMismatch { decoded: usize, declared: u32 },
    #[error("kafka records make a native batch of more than {max} bytes")]
    TooLarge { max: usize },
}

/// Converts a kafka-format batch into a native one with the same base
/// offset, leader epoch, producer (id, epoch, base sequence), and records:
/// timestamps, keys, values and headers, in order (see the module doc for
/// what the native format cannot say). Compressed payloads (gzip, snappy,
/// lz4, zstd) are decompressed.
///
/// Fails with [`ConvertError::NotKafka`] for a native batch, and when the
/// records do not decode, are not dense, or would make a native batch over
/// [`BATCH_BYTES_MAX`].
pub fn kafka_to_native(batch: &Batch) -> Result<Batch, ConvertError> {
    let mut payload = batch.kafka_payload().ok_or(ConvertError::NotKafka)?;
    let header = batch.header();
    let record_set =
        RecordBatchDecoder::decode(&mut payload).map_err(|error| ConvertError::Decode {
            reason: format!("{error:#}"),
        })?;
    if record_set.records.len() != header.record_count as usize {
        return Err(ConvertError::RecordCountMismatch {
            decoded: record_set.records.len(),
            declared: header.record_count,
        });
    }

    let base_offset = header.base_offset as i64;
    let mut builder = BatchBuilder::with_capacity(batch.len()).producer(
        header.producer_id,
        header.producer_epoch,
        header.base_sequence,
    );
    // One vector of header slices, reused for every record.
    let mut headers: Vec<(&[u8], Option<&[u8]>)> = Vec::new();
    for (index, record) in record_set.records.iter().enumerate() {
        let offset_delta = record.offset.wrapping_sub(base_offset);
        if offset_delta != index as i64 {
            return Err(ConvertError::OffsetGap {
                index,
                offset_delta,
            });
        }
        let timestamp = match record.timestamp_type {
            TimestampType::Creation => record.timestamp,
            TimestampType::LogAppend => header.max_timestamp,
        };
        headers.clear();
        headers.extend(
            record
                .headers
                .iter()
                .map(|(name, value)| (name.as_bytes(), value.as_deref())),
        );
        builder.push(
            timestamp,
            record.key.as_deref(),
            record.value.as_deref().unwrap_or_default(),
            &headers,
        );
        if builder.estimated_bytes() > BATCH_BYTES_MAX {
            return Err(ConvertError::TooLarge {
                max: BATCH_BYTES_MAX,
            });
        }
    }
    Ok(builder
        .finish()
        .assign(batch.base_offset(), header.leader_epoch))
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::{
        indexmap::IndexMap,
        protocol::StrBytes,
        records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions},
    };
    use sluice_storage::{batch::PayloadFormat, Offset};

    use super::*;

    const CODECS: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// Records of varied shapes, as a Kafka producer would batch them: dense
    /// offsets from 0, one idempotent producer, timestamps out of order.
    fn kafka_records(count: usize) -> Vec<Record> {
        (0..count)
            .map(|i| {
                let mut headers = IndexMap::new();
                if i % 3 == 0 {
                    headers.insert(
                        StrBytes::from_static_str("trace"),
                        Some(Bytes::from(format!("t-{i}"))),
                    );
                    headers.insert(StrBytes::from_static_str("null"), None);
                }
                Record {
                    transactional: false,
                    control: false,
                    delete_horizon: false,
                    partition_leader_epoch: -1,
                    producer_id: 4_242,
                    producer_epoch: 2,
                    timestamp_type: TimestampType::Creation,
                    offset: i as i64,
                    sequence: 100 + i as i32,
                    timestamp: 1_700_000_000_000 + ((i * 7) % 5) as i64,
                    key: (i % 4 != 0).then(|| Bytes::from(format!("key-{i}"))),
                    value: Some(Bytes::from(vec![i as u8; (i * 13) % 300])),
                    headers,
                }
            })
            .collect()
    }

    fn encode(records: &[Record], compression: Compression) -> BytesMut {
        let mut out = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut out,
            records,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .expect("encodes");
        out
    }

    fn assert_same_records(kafka: &[Record], native: &Batch) {
        let header = native.header();
        let records = native.records().expect("a native batch");
        assert_eq!(records.len(), kafka.len());
        for (index, (kafka, native)) in kafka.iter().zip(records.iter()).enumerate() {
            assert_eq!(
                header.first_timestamp + native.timestamp_delta(),
                kafka.timestamp,
                "record {index}: timestamp"
            );
            assert_eq!(native.key(), kafka.key.as_deref(), "record {index}: key");
            assert_eq!(
                native.value(),
                kafka.value.as_deref().unwrap_or_default(),
                "record {index}: value"
            );
            let native_headers: Vec<(&[u8], Option<&[u8]>)> = native
                .headers()
                .map(|header| (header.name, header.value))
                .collect();
            let kafka_headers: Vec<(&[u8], Option<&[u8]>)> = kafka
                .headers
                .iter()
                .map(|(name, value)| (name.as_bytes(), value.as_deref()))
                .collect();
            assert_eq!(native_headers, kafka_headers, "record {index}: headers");
        }
    }

    #[test]
    fn kafka_batches_of_every_codec_convert_to_the_same_records() {
        let records = kafka_records(40);
        for compression in CODECS {
            let kafka = encode(&records, compression);
            let stored = Batch::from_kafka(&kafka)
                .unwrap_or_else(|error| panic!("{compression:?}: {error}"))
                .assign(Offset(5_000), 6);
            assert_eq!(stored.header().flags, compression as u16);

            let native =
                kafka_to_native(&stored).unwrap_or_else(|error| panic!("{compression:?}: {error}"));
            let header = native.header();
            assert_eq!(header.payload_format, PayloadFormat::Native);
            assert_eq!(native.base_offset(), Offset(5_000));
            assert_eq!(native.last_offset(), Offset(5_039));
            assert_eq!(header.leader_epoch, 6);
            assert_eq!(header.max_timestamp, stored.max_timestamp());
            assert_eq!(
                (
                    header.producer_id,
                    header.producer_epoch,
                    header.base_sequence
                ),
                (4_242, 2, 100)
            );
            assert_same_records(&records, &native);
            Batch::validate(native.into_bytes()).expect("the converted batch validates");
        }
    }

    #[test]
    fn native_batches_written_as_kafka_decode_to_the_same_records() {
        let mut builder = BatchBuilder::default().producer(9, 1, 50);
        let mut pushed = Vec::new();
        for i in 0..60_usize {
            let key = format!("k{i}");
            let value = vec![(i * 3) as u8; (i * 17) % 500];
            let trace = format!("{i}");
            let headers: Vec<(&[u8], Option<&[u8]>)> = match i % 3 {
                0 => vec![],
                1 => vec![(b"trace", Some(trace.as_bytes()))],
                _ => vec![(b"a", Some(b"")), (b"b", None)],
            };
            let timestamp = 1_000_000 - (i as i64 % 4) * 10;
            let key = (i % 5 != 0).then_some(key.as_bytes());
            builder.push(timestamp, key, &value, &headers);
            pushed.push((timestamp, key.map(<[u8]>::to_vec), value.clone()));
        }
        let native = builder.finish().assign(Offset(77), 12);
        let mut out = BytesMut::new();
        native.write_kafka(&mut out).unwrap();
        let mut kafka = out.freeze();

        let record_set = RecordBatchDecoder::decode(&mut kafka).expect("decodes");
        assert!(kafka.is_empty(), "one batch, nothing after it");
        assert_eq!(record_set.version, 2);
        assert_eq!(record_set.compression, Compression::None);
        assert_eq!(record_set.records.len(), 60);
        for (index, record) in record_set.records.iter().enumerate() {
            assert_eq!(record.offset, 77 + index as i64);
            assert_eq!(record.partition_leader_epoch, 12);
            assert_eq!((record.producer_id, record.producer_epoch), (9, 1));
            assert_eq!(record.sequence, 50 + index as i32);
            assert!(!record.transactional && !record.control);
            assert_eq!(record.timestamp_type, TimestampType::Creation);
            let (timestamp, key, value) = &pushed[index];
            assert_eq!(record.timestamp, *timestamp, "record {index}");
            assert_eq!(record.key.as_deref(), key.as_deref(), "record {index}");
            assert_eq!(record.value.as_deref(), Some(&value[..]), "record {index}");
        }
        assert_same_records(&record_set.records, &native);
    }

    #[test]
    fn a_tombstone_becomes_an_empty_value() {
        let mut records = kafka_records(2);
        records[1].value = None;
        let stored = Batch::from_kafka(&encode(&records, Compression::None)).unwrap();
        let native = kafka_to_native(&stored).unwrap();
        let converted = native.records().unwrap();
        assert_eq!(converted.get(1).unwrap().value(), b"");
    }

    #[test]
    fn log_append_time_gives_every_record_the_max_timestamp() {
        let records = kafka_records(5);
        let mut kafka = encode(&records, Compression::Lz4).to_vec();
        kafka[22] |= 0b1000;
        reseal(&mut kafka);
        let stored = Batch::from_kafka(&kafka).unwrap();
        let native = kafka_to_native(&stored).unwrap();
        let header = native.header();
        for record in native.records().unwrap().iter() {
            assert_eq!(
                header.first_timestamp + record.timestamp_delta(),
                stored.max_timestamp()
            );
        }
    }

    /// The Kafka CRC: CRC-32C (Castagnoli), bit by bit.
    fn crc32c(bytes: &[u8]) -> u32 {
        let mut crc = !0_u32;
        for byte in bytes {
            crc ^= u32::from(*byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0x82f6_3b78
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// `kafka` with its Kafka CRC made right again after an edit.
    fn reseal(kafka: &mut [u8]) {
        let crc = crc32c(&kafka[21..]);
        kafka[17..21].copy_from_slice(&crc.to_be_bytes());
    }

    #[test]
    fn records_that_do_not_decompress_are_refused() {
        let mut kafka = encode(&kafka_records(20), Compression::Gzip).to_vec();
        let middle = 61 + (kafka.len() - 61) / 2;
        for byte in &mut kafka[middle..middle + 8] {
            *byte ^= 0x5a;
        }
        reseal(&mut kafka);
        // Produce does not decompress: the batch is accepted as it is.
        let stored = Batch::from_kafka(&kafka).expect("a whole kafka batch");
        assert!(matches!(
            kafka_to_native(&stored).unwrap_err(),
            ConvertError::Decode { .. }
        ));
    }

    #[test]
    fn records_whose_offsets_are_not_dense_are_refused() {
        let mut records = kafka_records(2);
        // Offsets 1 then 0: the batch's header is dense (base 0, last
        // delta 1) but its records are not in order.
        records[0].offset = 1;
        records[0].sequence = 1;
        records[1].offset = 0;
        records[1].sequence = 0;
        let stored = Batch::from_kafka(&encode(&records, Compression::None)).unwrap();
        assert_eq!(
            kafka_to_native(&stored).unwrap_err(),
            ConvertError::OffsetGap {
                index: 0,
                offset_delta: 1
            }
        );
    }

    #[test]
    fn records_over_the_native_cap_are_refused() {
        // 17 MiB of zeros compresses to a small kafka batch.
        let records: Vec<Record> = kafka_records(17)
            .into_iter()
            .map(|mut record| {
                record.value = Some(Bytes::from(vec![0_u8; 1 << 20]));
                record
            })
            .collect();
        let kafka = encode(&records, Compression::Zstd);
        assert!(kafka.len() < 1 << 20);
        let stored = Batch::from_kafka(&kafka).unwrap();
        assert_eq!(
            kafka_to_native(&stored).unwrap_err(),
            ConvertError::TooLarge {
                max: BATCH_BYTES_MAX
            }
        );
    }

    #[test]
    fn a_native_batch_is_not_converted() {
        let mut builder = BatchBuilder::default();
        builder.push(0, None, b"v", &[]);
        assert_eq!(
            kafka_to_native(&builder.finish()).unwrap_err(),
            ConvertError::NotKafka
        );
    }
}
