//! Builds a native batch by writing records straight into the buffer that
//! becomes the batch.

use super::{
    header::{seal_crc, BatchHeader, PayloadFormat, BATCH_HEADER_BYTES},
    native, Batch,
};
use bytes::Bytes;

/// A record's out-of-line parts, as positions in the builder's buffer.
struct PendingRecord {
    timestamp_delta: i64,
    key: Option<(usize, usize)>,
    value: (usize, usize),
    headers: (usize, usize),
}

/// Writes records into one growing buffer: each record's key, value and
/// headers are copied in once, as they are pushed; [`BatchBuilder::finish`]
/// then appends the fixed-size archived records and the root, fills in the
/// header and the CRC, and hands the same buffer over as a [`Batch`].
///
/// Memory: one buffer for the batch and one small vector of positions (16
/// words per record), both reused as they grow; nothing per record.
pub struct BatchBuilder {
    buffer: Vec<u8>,
    records: Vec<PendingRecord>,
    first_timestamp: i64,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        BatchBuilder::with_capacity(16 * 1024)
    }
}

impl BatchBuilder {
    /// A builder whose buffer starts with room for `bytes` (it grows past it).
    pub fn with_capacity(bytes: usize) -> BatchBuilder {
        let mut buffer = Vec::with_capacity(bytes.max(BATCH_HEADER_BYTES));
        buffer.resize(BATCH_HEADER_BYTES, 0);
        BatchBuilder {
            buffer,
            records: Vec::new(),
            first_timestamp: 0,
            max_timestamp: i64::MIN,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
        }
    }

    /// Marks the batch as coming from an idempotent producer.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    pub fn record_count(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The size the batch would have if finished now.
    pub fn estimated_bytes(&self) -> usize {
        self.buffer.len()
            + (self.records.len() + 1) * std::mem::size_of::<super::native::ArchivedRecord>()
            + 16
    }

    /// Appends one record. `timestamp` is in milliseconds since the Unix epoch.
    pub fn push(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: &[u8],
        headers: &[(&[u8], Option<&[u8]>)],
    ) {
        if self.records.is_empty() {
            self.first_timestamp = timestamp;
        }
        self.max_timestamp = self.max_timestamp.max(timestamp);
        let key = key.map(|key| self.write_bytes(key));
        let value = self.write_bytes(value);
        let headers = self.write_headers(headers);
        self.records.push(PendingRecord {
            timestamp_delta: timestamp.wrapping_sub(self.first_timestamp),
            key,
            value,
            headers,
        });
    }

    fn write_bytes(&mut self, bytes: &[u8]) -> (usize, usize) {
        let position = self.buffer.len();
        self.buffer.extend_from_slice(bytes);
        (position, bytes.len())
    }

    fn write_headers(&mut self, headers: &[(&[u8], Option<&[u8]>)]) -> (usize, usize) {
        // The names and values first, then the fixed-size archived headers
        // that point back at them. Positions are recomputed rather than kept,
        // so no scratch space is needed.
        let mut parts_start = self.buffer.len();
        for (name, value) in headers {
            self.buffer.extend_from_slice(name);
            if let Some(value) = value {
                self.buffer.extend_from_slice(value);
            }
        }
        let array_start = self.buffer.len();
        for (name, value) in headers {
            let name_at = parts_start;
            parts_start += name.len();
            let value = value.map(|value| {
                let value_at = parts_start;
                parts_start += value.len();
                (value_at, value.len())
            });
            native::write_header(&mut self.buffer, (name_at, name.len()), value);
        }
        (array_start, headers.len())
    }

    /// Completes the batch: the archived records, the root, the header and the
    /// CRC. The base offset and leader epoch are left zero for the log to set.
    ///
    /// Panics if no record was pushed: an empty batch is not a batch.
    pub fn finish(mut self) -> Batch {
        assert!(
            !self.records.is_empty(),
            "a batch needs at least one record"
        );
        let array_start = self.buffer.len();
        for record in &self.records {
            native::write_record(
                &mut self.buffer,
                record.timestamp_delta,
                record.key,
                record.value,
                record.headers,
            );
        }
        native::write_root(&mut self.buffer, (array_start, self.records.len()));

        let record_count = u32::try_from(self.records.len()).expect("record count fits u32");
        let header = BatchHeader {
            base_offset: 0,
            batch_bytes: u32::try_from(self.buffer.len()).expect("batch fits u32"),
            leader_epoch: 0,
            crc: 0,
            payload_format: PayloadFormat::Native,
            flags: 0,
            record_count,
            last_offset_delta: record_count - 1,
            first_timestamp: self.first_timestamp,
            max_timestamp: self.max_timestamp,
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence: self.base_sequence,
        };
        header.write(&mut self.buffer);
        seal_crc(&mut self.buffer);
        Batch::from_built(Bytes::from(self.buffer))
    }
}
