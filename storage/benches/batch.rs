//! The batch hot paths: building a native batch on produce, validating and
//! reading one on arrival, and the kafka format: taking a Kafka producer's
//! batch (`from_kafka`) and writing a native batch for a Kafka consumer
//! (`write_kafka`).
//!
//! The shape is the spec's: a 16 KiB batch of 100-byte records (an 8-byte
//! key, a 100-byte value, no headers). Throughput is in records. The goal for
//! validate-and-iterate is at least 5 million records/s per core.
//!
//! Beside each measured path runs its baseline in the same run:
//! - `validate_stored`: the frame and CRC alone, the floor under `validate`;
//! - `iterate_validated`: reading the records of a batch validated before,
//!   so what is left of `validate_and_iterate` is the archive check;
//! - `kafka_crc_and_copy`: one CRC-32C pass over a Kafka batch and one copy
//!   of it, the floor under `from_kafka`, which does both and checks headers;
//! - `crc32c_combine`: deriving a CRC over reordered spans with
//!   `crc32c::crc32c_combine` instead, a design `from_kafka` does not use:
//!   for a 16 KiB batch it costs more than the CRC pass itself (see the module
//!   doc of `storage/src/batch/mod.rs` for the order the CRC covers).
//!
//! Run: `cargo bench -p sluice-storage --bench batch -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice_storage::batch::{Batch, BatchBuilder};

/// The batch size the spec measures at: a typical producer's linger batch.
const BATCH_BYTES_TARGET: usize = 16 * 1024;
const KEY_BYTES: usize = 8;
const VALUE_BYTES: usize = 100;

/// How many records of the spec's shape fit a batch of `BATCH_BYTES_TARGET`.
fn records_per_batch() -> usize {
    let value = [0xab_u8; VALUE_BYTES];
    let mut builder = BatchBuilder::with_capacity(BATCH_BYTES_TARGET);
    let mut count = 0_u64;
    loop {
        builder.push(0, Some(&count.to_le_bytes()), &value, &[]);
        if builder.estimated_bytes() > BATCH_BYTES_TARGET {
            return count as usize;
        }
        count += 1;
    }
}

fn build(record_count: usize) -> Batch {
    let value = [0xab_u8; VALUE_BYTES];
    let mut builder = BatchBuilder::with_capacity(BATCH_BYTES_TARGET);
    for index in 0..record_count as u64 {
        let key: [u8; KEY_BYTES] = index.to_le_bytes();
        builder.push(1_700_000_000_000 + index as i64, Some(&key), &value, &[]);
    }
    builder.finish()
}

/// Reads every record's key and value lengths: what a fetch or an index
/// builder touches per record.
fn read_lengths(batch: &Batch) -> usize {
    let records = batch.records().expect("a native batch");
    let mut bytes = 0;
    for record in records.iter() {
        bytes += record.key().map_or(0, <[u8]>::len) + record.value().len();
    }
    bytes
}

fn bench_batch(criterion: &mut Criterion) {
    let record_count = records_per_batch();
    let batch = build(record_count);
    let bytes: Bytes = batch.as_bytes().clone();
    assert!(
        bytes.len() <= BATCH_BYTES_TARGET,
        "batch of {} bytes is over {BATCH_BYTES_TARGET}",
        bytes.len()
    );
    assert_eq!(
        read_lengths(&batch),
        record_count * (KEY_BYTES + VALUE_BYTES)
    );
    println!(
        "batch: {record_count} records of {KEY_BYTES}-byte key + {VALUE_BYTES}-byte value, {} bytes",
        bytes.len()
    );

    let mut group = criterion.benchmark_group("batch");
    group.throughput(Throughput::Elements(record_count as u64));

    group.bench_function("build", |bencher| {
        bencher.iter(|| build(black_box(record_count)))
    });

    group.bench_function("validate_and_iterate", |bencher| {
        bencher.iter(|| {
            let batch = Batch::validate(black_box(bytes.clone())).expect("valid");
            read_lengths(&batch)
        })
    });

    group.bench_function("validate_stored", |bencher| {
        bencher.iter(|| Batch::validate_stored(black_box(bytes.clone())).expect("valid"))
    });

    group.bench_function("iterate_validated", |bencher| {
        bencher.iter(|| read_lengths(black_box(&batch)))
    });

    let mut kafka = BytesMut::new();
    batch.write_kafka(&mut kafka).expect("a native batch");
    let kafka = kafka.freeze();
    println!("the same records as a Kafka batch: {} bytes", kafka.len());

    group.bench_function("from_kafka", |bencher| {
        bencher.iter(|| Batch::from_kafka(black_box(&kafka)).expect("valid"))
    });

    group.bench_function("kafka_crc_and_copy", |bencher| {
        bencher.iter(|| {
            let crc = crc32c::crc32c(&black_box(&kafka)[21..]);
            let mut copy = Vec::with_capacity(64 + kafka.len());
            copy.resize(64, 0);
            copy.extend_from_slice(&kafka);
            (crc, copy)
        })
    });

    group.bench_function("crc32c_combine", |bencher| {
        bencher.iter(|| crc32c::crc32c_combine(black_box(0x1234_5678), 0x9abc_def0, kafka.len()))
    });

    let mut out = BytesMut::with_capacity(2 * BATCH_BYTES_TARGET);
    group.bench_function("write_kafka", |bencher| {
        bencher.iter(|| {
            out.clear();
            black_box(&batch)
                .write_kafka(&mut out)
                .expect("a native batch");
            out.len()
        })
    });

    group.finish();
}

criterion_group!(benches, bench_batch);
criterion_main!(benches);
