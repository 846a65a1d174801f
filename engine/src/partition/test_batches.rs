//! Batches of transactions for the partition layer's tests, in the Kafka
//! format a transactional producer and a coordinator write them.

use bytes::BytesMut;
use sluice_storage::{
    batch::{Batch, BatchBuilder, Marker},
    Offset,
};

/// A transactional batch of `records` records of `producer_id` (epoch 0,
/// from `sequence`), as a Kafka producer sends it: offsets not assigned.
pub fn transactional_unassigned(producer_id: i64, sequence: i32, records: u32) -> Batch {
    let mut builder = BatchBuilder::default().producer(producer_id, 0, sequence);
    for record in 0..records {
        let value = format!("{producer_id}/{sequence}/{record}");
        builder.push(1_000, Some(b"key"), value.as_bytes(), &[]);
    }
    let mut kafka = BytesMut::new();
    builder
        .finish()
        .write_kafka(&mut kafka)
        .expect("a built batch writes as Kafka's");
    // The transactional attribute (bit 4), under the CRC that follows it.
    let attributes = i16::from_be_bytes([kafka[21], kafka[22]]) | 1 << 4;
    kafka[21..23].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c::crc32c(&kafka[21..]);
    kafka[17..21].copy_from_slice(&crc.to_be_bytes());
    Batch::from_kafka(&kafka).expect("a transactional batch")
}

/// A transactional batch of one record of `producer_id` at `base`.
pub fn transactional(producer_id: i64, base: u64) -> Batch {
    transactional_unassigned(producer_id, 0, 1).assign(Offset(base), 0)
}

/// `marker` for the transaction of `producer_id` (epoch 0), unassigned.
pub fn marker_unassigned(producer_id: i64, marker: Marker) -> Batch {
    Batch::marker(producer_id, 0, marker, 1, 1_000).expect("a marker")
}

/// `marker` for the transaction of `producer_id` at `at`.
pub fn marker(producer_id: i64, marker: Marker, at: u64) -> Batch {
    marker_unassigned(producer_id, marker).assign(Offset(at), 0)
}

/// A native batch of one record outside any transaction, stamped
/// `timestamp_ms`, unassigned.
pub fn plain_unassigned(timestamp_ms: i64) -> Batch {
    let mut builder = BatchBuilder::default();
    builder.push(timestamp_ms, None, b"plain", &[]);
    builder.finish()
}

/// A native batch of one record outside any transaction at `base`.
pub fn plain(base: u64) -> Batch {
    plain_unassigned(1_000).assign(Offset(base), 0)
}
