//! Records the fuzzer chooses, through [`BatchBuilder`] and back.
//!
//! What must hold: the built batch validates as foreign bytes would be
//! validated, its header says what was pushed, and every record (timestamp,
//! key, value, headers) reads back equal, both through [`Batch::validate`]
//! and through [`Batch::validate_stored`] after the log has assigned the
//! batch its base offset and leader epoch.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sluice_storage::{
    batch::{Batch, BatchBuilder, HeaderView, PayloadFormat, Records},
    Offset,
};

#[derive(Debug, Arbitrary)]
struct Input {
    /// (producer id, producer epoch, base sequence) of an idempotent producer.
    producer: Option<(i64, i16, i32)>,
    records: Vec<Record>,
}

#[derive(Debug, Arbitrary)]
struct Record {
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

fuzz_target!(|input: Input| {
    // An empty batch is not a batch: `finish` refuses it by contract.
    let Some(first) = input.records.first() else {
        return;
    };
    let mut builder = BatchBuilder::default();
    if let Some((producer_id, producer_epoch, base_sequence)) = input.producer {
        builder = builder.producer(producer_id, producer_epoch, base_sequence);
    }
    for record in &input.records {
        let headers: Vec<(&[u8], Option<&[u8]>)> = record
            .headers
            .iter()
            .map(|(name, value)| (name.as_slice(), value.as_deref()))
            .collect();
        builder.push(
            record.timestamp,
            record.key.as_deref(),
            &record.value,
            &headers,
        );
    }
    assert_eq!(builder.record_count(), input.records.len());
    let estimated_bytes = builder.estimated_bytes();
    let built = builder.finish();
    assert!(
        built.len() <= estimated_bytes,
        "estimated {estimated_bytes} bytes, built {}",
        built.len()
    );

    let header = built.header();
    let record_count = input.records.len() as u32;
    let max_timestamp = input.records.iter().map(|record| record.timestamp).max();
    let (producer_id, producer_epoch, base_sequence) = input.producer.unwrap_or((-1, -1, -1));
    assert_eq!(header.base_offset, 0);
    assert_eq!(header.leader_epoch, 0);
    assert_eq!(header.batch_bytes as usize, built.len());
    assert_eq!(header.payload_format, PayloadFormat::Native);
    assert_eq!(header.flags, 0);
    assert_eq!(header.record_count, record_count);
    assert_eq!(header.last_offset_delta, record_count - 1);
    assert_eq!(header.first_timestamp, first.timestamp);
    assert_eq!(Some(header.max_timestamp), max_timestamp);
    assert_eq!(header.producer_id, producer_id);
    assert_eq!(header.producer_epoch, producer_epoch);
    assert_eq!(header.base_sequence, base_sequence);

    let validated = Batch::validate(built.as_bytes().clone())
        .unwrap_or_else(|error| panic!("a built batch failed validation: {error}"));
    assert_eq!(validated, built);
    assert_reads_back(&input.records, validated.records().expect("native"));

    let assigned = validated.assign(Offset(1_000_000), 3);
    let stored = Batch::validate_stored(assigned.into_bytes())
        .unwrap_or_else(|error| panic!("an assigned batch failed its frame check: {error}"));
    assert_eq!(stored.base_offset(), Offset(1_000_000));
    assert_eq!(
        stored.last_offset(),
        Offset(1_000_000 + u64::from(record_count) - 1)
    );
    assert_eq!(stored.header().leader_epoch, 3);
    assert_reads_back(&input.records, stored.records().expect("native"));
});

fn assert_reads_back(pushed: &[Record], records: Records<'_>) {
    assert_eq!(records.len(), pushed.len());
    let first_timestamp = pushed[0].timestamp;
    for (index, (record, view)) in pushed.iter().zip(records.iter()).enumerate() {
        assert_eq!(
            view.timestamp_delta(),
            record.timestamp.wrapping_sub(first_timestamp),
            "record {index}: timestamp delta"
        );
        assert_eq!(view.key(), record.key.as_deref(), "record {index}: key");
        assert_eq!(
            view.value(),
            record.value.as_slice(),
            "record {index}: value"
        );
        let headers: Vec<HeaderView<'_>> = view.headers().collect();
        let expected: Vec<HeaderView<'_>> = record
            .headers
            .iter()
            .map(|(name, value)| HeaderView {
                name,
                value: value.as_deref(),
            })
            .collect();
        assert_eq!(headers, expected, "record {index}: headers");
    }
}
