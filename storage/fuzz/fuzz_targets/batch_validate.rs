//! Untrusted bytes through [`Batch::validate`], the one gate every foreign
//! batch passes.
//!
//! Each input is tried twice: as given, and sealed (its length field set to
//! the input's length and its CRC recomputed; for a kafka payload, its Kafka
//! batchLength and CRC too), so that the fuzzer gets past the frame checks
//! and spends its time on the header, archive and Kafka checks behind them.
//!
//! What must hold for bytes that validate: every record, key, value and header
//! reads without a panic and lies inside the batch; [`Batch::validate_stored`]
//! accepts the same bytes and reads the same records; the broker-assigned
//! fields can be set without breaking the CRC. For bytes that only pass
//! `validate_stored` (a frame whose archive is checked lazily), reading the
//! records either fails with an error or reads them safely.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice_storage::{
    batch::{
        Batch, PayloadFormat, RecordView, BATCH_BYTES_MAX, BATCH_HEADER_BYTES, CRC_FIELD_END,
        KAFKA_BATCH_HEADER_BYTES,
    },
    Offset,
};

/// Where the header keeps the batch's length (see the layout in
/// `storage/src/batch/mod.rs`).
const BATCH_BYTES_AT: usize = 8;
/// The CRC is the four bytes just before the range it covers.
const CRC_AT: usize = CRC_FIELD_END - 4;
/// Where the header keeps the payload format.
const PAYLOAD_FORMAT_AT: usize = 21;
/// Where a Kafka header keeps its batchLength and CRC, and where what its CRC
/// covers starts (see `storage/src/batch/kafka.rs`).
const KAFKA_BATCH_LENGTH_AT: usize = 8;
const KAFKA_MAGIC_AT: usize = 16;
const KAFKA_CRC_AT: usize = 17;
const KAFKA_ATTRIBUTES_AT: usize = 21;

fuzz_target!(|data: &[u8]| {
    let validated = check(Bytes::copy_from_slice(data));
    if !validated {
        if let Some(sealed) = seal(data) {
            check(sealed);
        }
    }
});

/// Runs every check on `bytes`; returns whether `Batch::validate` accepted them.
fn check(bytes: Bytes) -> bool {
    let Ok(batch) = Batch::validate(bytes.clone()) else {
        check_stored_only(bytes);
        return false;
    };
    let header = batch.header();
    assert_eq!(
        header.batch_bytes as usize,
        bytes.len(),
        "length field disagrees"
    );
    assert_eq!(batch.len(), bytes.len());
    assert_eq!(batch.base_offset().0, header.base_offset);
    assert_eq!(batch.max_timestamp(), header.max_timestamp);
    assert_eq!(
        batch.offset_count(),
        u64::from(header.last_offset_delta) + 1
    );
    let last_offset = batch.last_offset();
    assert_eq!(
        last_offset.0 - batch.base_offset().0,
        u64::from(header.last_offset_delta),
        "last offset {last_offset} is not base offset + last offset delta"
    );

    let stored = Batch::validate_stored(bytes.clone())
        .expect("validate_stored refused bytes that validate accepted");
    assert_eq!(
        stored.header(),
        header,
        "validate_stored read another header"
    );

    match header.payload_format {
        PayloadFormat::Native => {
            let records = batch
                .records()
                .expect("a validated native batch has records");
            let stored_records = stored
                .records()
                .expect("validate_stored's batch refused records that validate accepted");
            assert_eq!(records.len() as u64, u64::from(header.record_count));
            assert_eq!(records.len(), stored_records.len());
            for (record, stored_record) in records.iter().zip(stored_records.iter()) {
                touch(record, &bytes);
                assert_same(record, stored_record);
            }
        }
        PayloadFormat::Kafka => {
            assert!(
                batch.records().is_err(),
                "a kafka batch has no native records"
            );
        }
    }

    // The base offset and leader epoch sit before the CRC's range: setting
    // them keeps the batch valid.
    // Any offset with room for the batch below the largest offset.
    let assigned = batch.assign(Offset(1 << 40), 7);
    let assigned = Batch::validate(assigned.into_bytes())
        .expect("assigning the base offset and leader epoch broke the batch");
    assert_eq!(assigned.base_offset(), Offset(1 << 40));
    true
}

/// Bytes that `validate` refused but whose frame is whole: reading their
/// records validates the archive then, and must not read out of bounds.
fn check_stored_only(bytes: Bytes) {
    let Ok(stored) = Batch::validate_stored(bytes.clone()) else {
        return;
    };
    if let Ok(records) = stored.records() {
        for record in records.iter() {
            touch(record, &bytes);
        }
    }
}

/// Reads every part of a record and checks that it lies inside the batch.
fn touch(record: RecordView<'_>, batch: &[u8]) {
    let _ = std::hint::black_box(record.timestamp_delta());
    if let Some(key) = record.key() {
        assert_inside(key, batch, "key");
    }
    assert_inside(record.value(), batch, "value");
    assert_eq!(record.headers().len(), record.header_count());
    for header in record.headers() {
        assert_inside(header.name, batch, "header name");
        if let Some(value) = header.value {
            assert_inside(value, batch, "header value");
        }
    }
}

fn assert_inside(part: &[u8], batch: &[u8], what: &str) {
    let payload = batch[BATCH_HEADER_BYTES..].as_ptr_range();
    let part_range = part.as_ptr_range();
    assert!(
        part.is_empty() || (part_range.start >= payload.start && part_range.end <= payload.end),
        "{what} of {} bytes at {:?} is outside the payload {:?}",
        part.len(),
        part_range,
        payload
    );
    let _ = std::hint::black_box(part.iter().fold(0u8, |sum, byte| sum.wrapping_add(*byte)));
}

fn assert_same(a: RecordView<'_>, b: RecordView<'_>) {
    assert_eq!(a.timestamp_delta(), b.timestamp_delta());
    assert_eq!(a.key(), b.key());
    assert_eq!(a.value(), b.value());
    assert!(a.headers().eq(b.headers()), "headers differ");
}

/// `data` with its length field and CRC made right, if it can hold a header
/// and is under the cap. A kafka payload long enough for a Kafka header gets
/// its batchLength and Kafka CRC made right too, and the CRC is computed over
/// what the module doc of `storage/src/batch/mod.rs` says it covers.
fn seal(data: &[u8]) -> Option<Bytes> {
    if data.len() < BATCH_HEADER_BYTES || data.len() > BATCH_BYTES_MAX {
        return None;
    }
    let mut bytes = data.to_vec();
    let batch_bytes = u32::try_from(bytes.len()).expect("under the cap");
    bytes[BATCH_BYTES_AT..BATCH_BYTES_AT + 4].copy_from_slice(&batch_bytes.to_le_bytes());
    let kafka = bytes[PAYLOAD_FORMAT_AT] == PayloadFormat::Kafka as u8
        && bytes.len() >= BATCH_HEADER_BYTES + KAFKA_BATCH_HEADER_BYTES;
    let crc = if kafka {
        let (header, payload) = bytes.split_at_mut(BATCH_HEADER_BYTES);
        let batch_length = (payload.len() - KAFKA_BATCH_LENGTH_AT - 4) as u32;
        payload[KAFKA_BATCH_LENGTH_AT..KAFKA_BATCH_LENGTH_AT + 4]
            .copy_from_slice(&batch_length.to_be_bytes());
        let kafka_crc = crc32c::crc32c(&payload[KAFKA_ATTRIBUTES_AT..]);
        payload[KAFKA_CRC_AT..KAFKA_ATTRIBUTES_AT].copy_from_slice(&kafka_crc.to_be_bytes());
        let mut covered = payload[KAFKA_ATTRIBUTES_AT..].to_vec();
        covered.extend_from_slice(&header[CRC_FIELD_END..]);
        covered.extend_from_slice(&payload[KAFKA_BATCH_LENGTH_AT..KAFKA_BATCH_LENGTH_AT + 4]);
        covered.extend_from_slice(&payload[KAFKA_MAGIC_AT..KAFKA_ATTRIBUTES_AT]);
        crc32c::crc32c(&covered)
    } else {
        crc32c::crc32c(&bytes[CRC_FIELD_END..])
    };
    bytes[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
    Some(Bytes::from(bytes))
}
