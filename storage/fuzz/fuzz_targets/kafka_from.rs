//! Untrusted bytes through [`Batch::from_kafka`], the gate a Kafka
//! producer's batch passes.
//!
//! Each input is tried twice: as given, and sealed (its Kafka batchLength set
//! to the input's length and its Kafka CRC recomputed), so that the fuzzer
//! gets past the length and CRC checks and spends its time on the header
//! checks behind them.
//!
//! What must hold for bytes that are accepted: the payload is the input byte
//! for byte; the Sluice header says what the Kafka header says; the batch
//! passes [`Batch::validate`] and [`Batch::validate_stored`] as it is;
//! `write_kafka` gives the input back; assigning a base offset and leader
//! epoch sets them in both headers and keeps the batch valid, with every
//! other byte unchanged. Bytes that are refused are refused with an error,
//! never a panic.

#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use sluice_storage::{
    batch::{
        Batch, PayloadFormat, BATCH_BYTES_MAX, BATCH_HEADER_BYTES, KAFKA_BATCH_HEADER_BYTES,
        KAFKA_MAGIC,
    },
    Offset,
};

/// Where the Kafka header keeps its fields (big-endian; see
/// `storage/src/batch/kafka.rs`).
const BATCH_LENGTH_AT: usize = 8;
const LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORD_COUNT_AT: usize = 57;

fuzz_target!(|data: &[u8]| {
    let accepted = check(data);
    if !accepted {
        if let Some(sealed) = seal(data) {
            check(&sealed);
        }
    }
});

/// Runs every check on `kafka`; returns whether `Batch::from_kafka` accepted it.
fn check(kafka: &[u8]) -> bool {
    let Ok(batch) = Batch::from_kafka(kafka) else {
        return false;
    };
    assert_eq!(batch.len(), BATCH_HEADER_BYTES + kafka.len());
    assert_eq!(
        batch.kafka_payload().as_deref(),
        Some(kafka),
        "the payload is not the input"
    );
    assert_eq!(kafka[MAGIC_AT] as i8, KAFKA_MAGIC);
    assert!(
        batch.records().is_err(),
        "a kafka batch has no native records"
    );

    let header = batch.header();
    assert_eq!(header.payload_format, PayloadFormat::Kafka);
    assert_eq!(header.batch_bytes as usize, batch.len());
    assert_eq!(header.base_offset, read_u64(kafka, 0));
    assert_eq!(header.leader_epoch, read_u32(kafka, LEADER_EPOCH_AT));
    assert_eq!(
        header.flags,
        u16::from_be_bytes([kafka[ATTRIBUTES_AT], kafka[ATTRIBUTES_AT + 1]]) & 0b111
    );
    assert!(header.flags <= 4, "unknown codec {} accepted", header.flags);
    assert_eq!(
        kafka[ATTRIBUTES_AT + 1] & 0b11_0000,
        0,
        "a transactional or control batch"
    );
    assert_eq!(header.record_count, read_u32(kafka, RECORD_COUNT_AT));
    assert!(header.record_count > 0);
    assert_eq!(
        header.last_offset_delta,
        read_u32(kafka, LAST_OFFSET_DELTA_AT)
    );
    assert_eq!(header.last_offset_delta, header.record_count - 1);
    assert_eq!(
        header.first_timestamp,
        read_u64(kafka, BASE_TIMESTAMP_AT) as i64
    );
    assert_eq!(
        header.max_timestamp,
        read_u64(kafka, MAX_TIMESTAMP_AT) as i64
    );
    assert_eq!(header.producer_id, read_u64(kafka, PRODUCER_ID_AT) as i64);
    assert_eq!(
        header.producer_epoch,
        i16::from_be_bytes([kafka[PRODUCER_EPOCH_AT], kafka[PRODUCER_EPOCH_AT + 1]])
    );
    assert_eq!(
        header.base_sequence,
        read_u32(kafka, BASE_SEQUENCE_AT) as i32
    );
    assert_eq!(
        read_u32(kafka, CRC_AT),
        crc32c::crc32c(&kafka[ATTRIBUTES_AT..]),
        "a bad Kafka CRC accepted"
    );

    let validated = Batch::validate(batch.as_bytes().clone())
        .unwrap_or_else(|error| panic!("from_kafka made a batch validate refuses: {error}"));
    assert_eq!(validated, batch);
    let stored = Batch::validate_stored(batch.as_bytes().clone())
        .unwrap_or_else(|error| panic!("from_kafka made a batch validate_stored refuses: {error}"));
    assert_eq!(stored.header(), header);

    let mut written = BytesMut::new();
    batch
        .write_kafka(&mut written)
        .expect("a kafka batch writes as stored");
    assert_eq!(&written[..], kafka);

    // Any offset with room for the batch below the largest offset.
    let assigned = batch.assign(Offset(1 << 40), 0x8000_0001);
    let assigned = Batch::validate(assigned.into_bytes())
        .unwrap_or_else(|error| panic!("assign broke a kafka batch: {error}"));
    assert_eq!(assigned.base_offset(), Offset(1 << 40));
    assert_eq!(assigned.header().leader_epoch, 0x8000_0001);
    let payload: Bytes = assigned.kafka_payload().expect("still a kafka batch");
    assert_eq!(read_u64(&payload, 0), 1 << 40);
    assert_eq!(read_u32(&payload, LEADER_EPOCH_AT), 0x8000_0001);
    assert_eq!(
        &payload[BATCH_LENGTH_AT..LEADER_EPOCH_AT],
        &kafka[BATCH_LENGTH_AT..LEADER_EPOCH_AT]
    );
    assert_eq!(&payload[MAGIC_AT..], &kafka[MAGIC_AT..]);
    true
}

/// `data` with its batchLength and Kafka CRC made right, if it can hold a
/// Kafka header and is under the cap.
fn seal(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < KAFKA_BATCH_HEADER_BYTES || data.len() > BATCH_BYTES_MAX - BATCH_HEADER_BYTES {
        return None;
    }
    let mut kafka = data.to_vec();
    let batch_length = (kafka.len() - LEADER_EPOCH_AT) as u32;
    kafka[BATCH_LENGTH_AT..LEADER_EPOCH_AT].copy_from_slice(&batch_length.to_be_bytes());
    let crc = crc32c::crc32c(&kafka[ATTRIBUTES_AT..]);
    kafka[CRC_AT..ATTRIBUTES_AT].copy_from_slice(&crc.to_be_bytes());
    Some(kafka)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}
