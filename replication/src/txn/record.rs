//! The records of `__transaction_state`, in Kafka's own layout, so that
//! the log reads the same to Kafka's tools and a log moved between the
//! two stays meaningful.
//!
//! Big-endian, as Kafka's protocol:
//!
//! * **Key** (`TransactionLogKey` v0): version i16 = 0, transactional id
//!   (i16 length + UTF-8).
//! * **Value v0** (`TransactionLogValue`): version i16 = 0, producer id
//!   i64, producer epoch i16, timeout ms i32, state i8 (Kafka's ids, see
//!   [`TxnState::id`]), partitions (i32 count, -1 for null, of: topic as
//!   i16 length + UTF-8, then an i32 count of i32 partition indexes),
//!   last update ms i64, start ms i64 (-1: none).
//! * **Value v1** (flexible, KIP-890), which is what is written: the same
//!   fields with compact lengths (unsigned varint of length + 1, 0 for
//!   null) and a tagged-field section after each partitions entry and at
//!   the end, holding the previous producer id (tag 0), the next producer
//!   id (tag 1) and the client's transaction version (tag 2), each written
//!   only when not its default (-1, -1, 0).
//! * **Sluice's addition**: the last producer epoch (KIP-360's retry of a
//!   bump) as tag [`TAG_LAST_PRODUCER_EPOCH`], written only when set.
//!   Kafka does not keep it, so a retry across a failover is fenced there;
//!   readers skip tags they do not know, so Kafka's tools read these
//!   records unchanged.
//! * **Tombstone**: an empty value; the id is gone.
//!
//! The decoder checks every count and length against the bytes left and
//! its cap before allocating, and every field against what the
//! coordinator can write; anything else is a [`RecordError`], never a
//! panic.

use std::collections::BTreeSet;

use super::state::{TopicPartition, TxnMetadata, TxnState, NO_PRODUCER_EPOCH, NO_PRODUCER_ID};
use super::{PARTITIONS_PER_TXN_MAX, TOPIC_NAME_BYTES_MAX, TRANSACTIONAL_ID_BYTES_MAX};

/// The key layout's only version.
pub const KEY_VERSION: i16 = 0;
/// The value layout written (v0 is read too).
pub const VALUE_VERSION: i16 = 1;
const TAG_PREVIOUS_PRODUCER_ID: u32 = 0;
const TAG_NEXT_PRODUCER_ID: u32 = 1;
const TAG_CLIENT_TRANSACTION_VERSION: u32 = 2;
/// Sluice's tag for the last producer epoch: far above Kafka's, which
/// adds tags from 3 upwards.
pub const TAG_LAST_PRODUCER_EPOCH: u32 = 10_000;
/// A tagged-field section holds at most this many fields: four are known;
/// a section claiming more than this is damage, not a future version.
const TAGGED_FIELDS_MAX: u32 = 64;

/// One record of `__transaction_state`: an id's metadata, or its
/// tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRecord {
    pub transactional_id: String,
    /// `None`: a tombstone (the id expired).
    pub metadata: Option<TxnMetadata>,
}

/// Why bytes are not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("the record ends inside {0}")]
    Truncated(&'static str),
    #[error("key version {0}, not {KEY_VERSION}")]
    KeyVersion(i16),
    #[error("value version {0} is not 0 or {VALUE_VERSION}")]
    ValueVersion(i16),
    #[error("{what} of {length} bytes is over the cap of {max}")]
    TooLong {
        what: &'static str,
        length: usize,
        max: usize,
    },
    #[error("{what}: {count} entries cannot fit in the {left} bytes left")]
    Count {
        what: &'static str,
        count: usize,
        left: usize,
    },
    #[error("{0} is not UTF-8")]
    Utf8(&'static str),
    #[error("an unsigned varint longer than 5 bytes or over u32")]
    Varint,
    #[error("unknown or unwritable transaction state {0}")]
    State(i8),
    #[error("invalid field: {0}")]
    Invalid(&'static str),
    #[error("{0} bytes after the end")]
    Trailing(usize),
}

impl TxnRecord {
    /// The record's key and value (empty for a tombstone).
    ///
    /// The metadata is the coordinator's, whose inputs were checked
    /// against the caps: a string over its cap here is a bug.
    pub fn encode(&self) -> (Vec<u8>, Vec<u8>) {
        (
            encode_key(&self.transactional_id),
            self.metadata.as_ref().map(encode_value).unwrap_or_default(),
        )
    }

    /// A record from its key and value; an empty value is a tombstone.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<TxnRecord, RecordError> {
        let transactional_id = decode_key(key)?;
        let metadata = if value.is_empty() {
            None
        } else {
            Some(decode_value(value)?)
        };
        Ok(TxnRecord {
            transactional_id,
            metadata,
        })
    }
}

/// The key of `transactional_id`'s records.
pub fn encode_key(transactional_id: &str) -> Vec<u8> {
    assert!(
        transactional_id.len() <= TRANSACTIONAL_ID_BYTES_MAX,
        "a transactional id of {} bytes reached the log",
        transactional_id.len()
    );
    let mut out = Vec::with_capacity(4 + transactional_id.len());
    out.extend_from_slice(&KEY_VERSION.to_be_bytes());
    out.extend_from_slice(&(transactional_id.len() as i16).to_be_bytes());
    out.extend_from_slice(transactional_id.as_bytes());
    out
}

fn put_uvarint(out: &mut Vec<u8>, mut value: u32) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_tag(out: &mut Vec<u8>, tag: u32, data: &[u8]) {
    put_uvarint(out, tag);
    put_uvarint(out, data.len() as u32);
    out.extend_from_slice(data);
}

fn clamp_ms(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// `metadata` as a v1 value.
pub fn encode_value(metadata: &TxnMetadata) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + metadata.partitions.len() * 8);
    out.extend_from_slice(&VALUE_VERSION.to_be_bytes());
    out.extend_from_slice(&metadata.producer_id.to_be_bytes());
    out.extend_from_slice(&metadata.producer_epoch.to_be_bytes());
    let timeout_ms = i32::try_from(metadata.timeout_ms).unwrap_or(i32::MAX);
    out.extend_from_slice(&timeout_ms.to_be_bytes());
    out.push(metadata.state.id() as u8);
    // Partitions grouped by topic, in order.
    let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
    for tp in &metadata.partitions {
        match topics.last_mut() {
            Some((topic, partitions)) if *topic == tp.topic => partitions.push(tp.partition),
            _ => topics.push((&tp.topic, vec![tp.partition])),
        }
    }
    if topics.is_empty() {
        put_uvarint(&mut out, 0);
    } else {
        put_uvarint(&mut out, topics.len() as u32 + 1);
        for (topic, partitions) in &topics {
            assert!(
                topic.len() <= TOPIC_NAME_BYTES_MAX,
                "a topic name of {} bytes reached the log",
                topic.len()
            );
            put_uvarint(&mut out, topic.len() as u32 + 1);
            out.extend_from_slice(topic.as_bytes());
            put_uvarint(&mut out, partitions.len() as u32 + 1);
            for partition in partitions {
                out.extend_from_slice(&partition.to_be_bytes());
            }
            put_uvarint(&mut out, 0);
        }
    }
    out.extend_from_slice(&clamp_ms(metadata.last_update_ms).to_be_bytes());
    let start = metadata.start_ms.map_or(-1, clamp_ms);
    out.extend_from_slice(&start.to_be_bytes());
    let mut tags: Vec<(u32, Vec<u8>)> = Vec::new();
    if metadata.previous_producer_id != NO_PRODUCER_ID {
        tags.push((
            TAG_PREVIOUS_PRODUCER_ID,
            metadata.previous_producer_id.to_be_bytes().to_vec(),
        ));
    }
    if metadata.next_producer_id != NO_PRODUCER_ID {
        tags.push((
            TAG_NEXT_PRODUCER_ID,
            metadata.next_producer_id.to_be_bytes().to_vec(),
        ));
    }
    if metadata.transaction_version != 0 {
        tags.push((
            TAG_CLIENT_TRANSACTION_VERSION,
            metadata.transaction_version.to_be_bytes().to_vec(),
        ));
    }
    if metadata.last_producer_epoch != NO_PRODUCER_EPOCH {
        tags.push((
            TAG_LAST_PRODUCER_EPOCH,
            metadata.last_producer_epoch.to_be_bytes().to_vec(),
        ));
    }
    put_uvarint(&mut out, tags.len() as u32);
    for (tag, data) in &tags {
        put_tag(&mut out, *tag, data);
    }
    out
}

/// Reads fields, refusing to run past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], RecordError> {
        if self.0.len() < n {
            return Err(RecordError::Truncated(what));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], RecordError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn i8(&mut self, what: &'static str) -> Result<i8, RecordError> {
        Ok(i8::from_be_bytes(self.array(what)?))
    }

    fn i16(&mut self, what: &'static str) -> Result<i16, RecordError> {
        Ok(i16::from_be_bytes(self.array(what)?))
    }

    fn i32(&mut self, what: &'static str) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }

    fn i64(&mut self, what: &'static str) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }

    fn uvarint(&mut self, what: &'static str) -> Result<u32, RecordError> {
        let mut value: u64 = 0;
        for shift in (0..35).step_by(7) {
            let byte = self.take(1, what)?[0];
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return u32::try_from(value).map_err(|_| RecordError::Varint);
            }
        }
        Err(RecordError::Varint)
    }

    /// A count of entries of at least `min_bytes` each, checked against
    /// the bytes left and `max`.
    fn count(
        &self,
        count: usize,
        min_bytes: usize,
        max: usize,
        what: &'static str,
    ) -> Result<usize, RecordError> {
        if count > max {
            return Err(RecordError::TooLong {
                what,
                length: count,
                max,
            });
        }
        let left = self.0.len();
        if count > left / min_bytes.max(1) {
            return Err(RecordError::Count { what, count, left });
        }
        Ok(count)
    }

    fn string(
        &mut self,
        length: usize,
        max: usize,
        what: &'static str,
    ) -> Result<String, RecordError> {
        if length > max {
            return Err(RecordError::TooLong { what, length, max });
        }
        let bytes = self.take(length, what)?;
        std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|_| RecordError::Utf8(what))
    }
}

/// The transactional id of a key.
pub fn decode_key(key: &[u8]) -> Result<String, RecordError> {
    let mut reader = Reader(key);
    let version = reader.i16("the key version")?;
    if version != KEY_VERSION {
        return Err(RecordError::KeyVersion(version));
    }
    let length = reader.i16("the transactional id's length")?;
    let length =
        usize::try_from(length).map_err(|_| RecordError::Invalid("a null transactional id"))?;
    let id = reader.string(length, TRANSACTIONAL_ID_BYTES_MAX, "the transactional id")?;
    if id.is_empty() {
        return Err(RecordError::Invalid("an empty transactional id"));
    }
    match reader.0.len() {
        0 => Ok(id),
        left => Err(RecordError::Trailing(left)),
    }
}

/// A value (v0 or v1) back into metadata.
pub fn decode_value(value: &[u8]) -> Result<TxnMetadata, RecordError> {
    let mut reader = Reader(value);
    let version = reader.i16("the value version")?;
    let flexible = match version {
        0 => false,
        1 => true,
        other => return Err(RecordError::ValueVersion(other)),
    };
    let producer_id = reader.i64("the producer id")?;
    let producer_epoch = reader.i16("the producer epoch")?;
    let timeout_ms = reader.i32("the timeout")?;
    let state_id = reader.i8("the state")?;
    let state = TxnState::from_id(state_id)
        .filter(|state| !matches!(state, TxnState::Dead | TxnState::PrepareEpochFence))
        .ok_or(RecordError::State(state_id))?;
    let topics = if flexible {
        match reader.uvarint("the partitions' count")? {
            0 => 0,
            n => n as usize - 1,
        }
    } else {
        // -1 is null: no partitions.
        usize::try_from(reader.i32("the partitions' count")?.max(0)).unwrap_or(0)
    };
    // A topic entry is at least a length and a partition count.
    let topic_min_bytes = if flexible { 2 } else { 6 };
    let topics = reader.count(topics, topic_min_bytes, PARTITIONS_PER_TXN_MAX, "topics")?;
    let mut partitions = BTreeSet::new();
    for _ in 0..topics {
        let length = if flexible {
            match reader.uvarint("a topic's length")? {
                0 => return Err(RecordError::Invalid("a null topic name")),
                n => n as usize - 1,
            }
        } else {
            usize::try_from(reader.i16("a topic's length")?)
                .map_err(|_| RecordError::Invalid("a null topic name"))?
        };
        let topic = reader.string(length, TOPIC_NAME_BYTES_MAX, "a topic name")?;
        if topic.is_empty() {
            return Err(RecordError::Invalid("an empty topic name"));
        }
        let count = if flexible {
            match reader.uvarint("a partition count")? {
                0 => return Err(RecordError::Invalid("a null partition array")),
                n => n as usize - 1,
            }
        } else {
            usize::try_from(reader.i32("a partition count")?)
                .map_err(|_| RecordError::Invalid("a null partition array"))?
        };
        let left_in_cap = PARTITIONS_PER_TXN_MAX - partitions.len();
        let count = reader.count(count, 4, left_in_cap, "partitions")?;
        for _ in 0..count {
            let partition = reader.i32("a partition index")?;
            if partition < 0 {
                return Err(RecordError::Invalid("a negative partition index"));
            }
            partitions.insert(TopicPartition::new(topic.clone(), partition));
        }
        if flexible {
            skip_tagged_fields(&mut reader)?;
        }
    }
    let last_update_ms = reader.i64("the last update time")?;
    let start_ms = reader.i64("the start time")?;
    let mut metadata = TxnMetadata {
        producer_id,
        previous_producer_id: NO_PRODUCER_ID,
        next_producer_id: NO_PRODUCER_ID,
        producer_epoch,
        last_producer_epoch: NO_PRODUCER_EPOCH,
        timeout_ms: u32::try_from(timeout_ms)
            .ok()
            .filter(|timeout| *timeout > 0)
            .ok_or(RecordError::Invalid("a timeout that is not positive"))?,
        state,
        partitions,
        start_ms: match start_ms {
            -1 => None,
            ms => {
                Some(u64::try_from(ms).map_err(|_| RecordError::Invalid("a negative start time"))?)
            }
        },
        last_update_ms: u64::try_from(last_update_ms)
            .map_err(|_| RecordError::Invalid("a negative update time"))?,
        transaction_version: 0,
    };
    if flexible {
        let count = reader.uvarint("the tagged fields' count")?;
        let count = reader.count(
            count as usize,
            2,
            TAGGED_FIELDS_MAX as usize,
            "tagged fields",
        )?;
        for _ in 0..count {
            let tag = reader.uvarint("a tag")?;
            let size = reader.uvarint("a tagged field's size")? as usize;
            let data = reader.take(size, "a tagged field")?;
            let mut field = Reader(data);
            match tag {
                TAG_PREVIOUS_PRODUCER_ID => {
                    metadata.previous_producer_id = field.i64("the previous producer id")?
                }
                TAG_NEXT_PRODUCER_ID => {
                    metadata.next_producer_id = field.i64("the next producer id")?
                }
                TAG_CLIENT_TRANSACTION_VERSION => {
                    metadata.transaction_version = field.i16("the transaction version")?
                }
                TAG_LAST_PRODUCER_EPOCH => {
                    metadata.last_producer_epoch = field.i16("the last producer epoch")?
                }
                // A field of a later version: skipped, as Kafka does.
                _ => continue,
            }
            if !field.0.is_empty() {
                return Err(RecordError::Invalid(
                    "a known tagged field of the wrong size",
                ));
            }
        }
    }
    if !reader.0.is_empty() {
        return Err(RecordError::Trailing(reader.0.len()));
    }
    check(&metadata)?;
    Ok(metadata)
}

fn skip_tagged_fields(reader: &mut Reader<'_>) -> Result<(), RecordError> {
    let count = reader.uvarint("the tagged fields' count")?;
    let count = reader.count(
        count as usize,
        2,
        TAGGED_FIELDS_MAX as usize,
        "tagged fields",
    )?;
    for _ in 0..count {
        reader.uvarint("a tag")?;
        let size = reader.uvarint("a tagged field's size")? as usize;
        reader.take(size, "a tagged field")?;
    }
    Ok(())
}

/// What the coordinator never writes.
fn check(metadata: &TxnMetadata) -> Result<(), RecordError> {
    if metadata.producer_id < 0 {
        return Err(RecordError::Invalid("a negative producer id"));
    }
    if metadata.producer_epoch < 0 {
        return Err(RecordError::Invalid("a negative producer epoch"));
    }
    if metadata.last_producer_epoch < NO_PRODUCER_EPOCH {
        return Err(RecordError::Invalid("a last producer epoch below -1"));
    }
    if metadata.previous_producer_id < NO_PRODUCER_ID || metadata.next_producer_id < NO_PRODUCER_ID
    {
        return Err(RecordError::Invalid("a producer id below -1"));
    }
    if metadata.state.is_idle() && !metadata.partitions.is_empty() {
        return Err(RecordError::Invalid(
            "partitions in a state that holds none",
        ));
    }
    if metadata.state == TxnState::Ongoing && metadata.start_ms.is_none() {
        return Err(RecordError::Invalid("an ongoing transaction with no start"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<TxnRecord> {
        let mut ongoing = TxnMetadata::fresh(42, 60_000, 1_000);
        ongoing.producer_epoch = 7;
        ongoing.state = TxnState::Ongoing;
        ongoing.start_ms = Some(900);
        for (topic, partition) in [
            ("orders", 0),
            ("orders", 3),
            ("__consumer_offsets", 12),
            ("z", 1),
        ] {
            ongoing
                .partitions
                .insert(TopicPartition::new(topic, partition));
        }
        let mut moving = ongoing.clone();
        moving.state = TxnState::PrepareCommit;
        moving.previous_producer_id = 41;
        moving.next_producer_id = 43;
        moving.last_producer_epoch = 6;
        moving.transaction_version = 2;
        let mut empty = TxnMetadata::fresh(5, 1, 0);
        empty.producer_epoch = 0;
        vec![
            TxnRecord {
                transactional_id: "payments-1".into(),
                metadata: Some(ongoing),
            },
            TxnRecord {
                transactional_id: "ü".into(),
                metadata: Some(moving),
            },
            TxnRecord {
                transactional_id: "e".into(),
                metadata: Some(empty),
            },
            TxnRecord {
                transactional_id: "gone".into(),
                metadata: None,
            },
        ]
    }

    #[test]
    fn records_read_back_as_written() {
        for record in samples() {
            let (key, value) = record.encode();
            assert_eq!(TxnRecord::decode(&key, &value), Ok(record));
        }
    }

    #[test]
    fn the_value_is_kafkas_layout() {
        let record = &samples()[0];
        let (key, value) = record.encode();
        assert_eq!(&key[..4], &[0, 0, 0, 10]);
        assert_eq!(&key[4..], b"payments-1");
        // version 1, producer id 42, epoch 7, timeout 60000, Ongoing.
        assert_eq!(&value[..2], &[0, 1]);
        assert_eq!(&value[2..10], &42i64.to_be_bytes());
        assert_eq!(&value[10..12], &7i16.to_be_bytes());
        assert_eq!(&value[12..16], &60_000i32.to_be_bytes());
        assert_eq!(value[16], 1);
        // Three topics: compact count 4; the first is __consumer_offsets.
        assert_eq!(value[17], 4);
        assert_eq!(value[18] as usize, "__consumer_offsets".len() + 1);
        // No tagged field at the end.
        assert_eq!(*value.last().unwrap(), 0);
    }

    #[test]
    fn a_v0_value_is_read() {
        let mut value = Vec::new();
        value.extend_from_slice(&0i16.to_be_bytes());
        value.extend_from_slice(&9i64.to_be_bytes());
        value.extend_from_slice(&2i16.to_be_bytes());
        value.extend_from_slice(&1000i32.to_be_bytes());
        value.push(TxnState::PrepareAbort.id() as u8);
        value.extend_from_slice(&1i32.to_be_bytes());
        value.extend_from_slice(&1i16.to_be_bytes());
        value.extend_from_slice(b"t");
        value.extend_from_slice(&2i32.to_be_bytes());
        value.extend_from_slice(&4i32.to_be_bytes());
        value.extend_from_slice(&5i32.to_be_bytes());
        value.extend_from_slice(&77i64.to_be_bytes());
        value.extend_from_slice(&70i64.to_be_bytes());
        let metadata = decode_value(&value).unwrap();
        assert_eq!(metadata.producer(), super::super::Producer::new(9, 2));
        assert_eq!(metadata.state, TxnState::PrepareAbort);
        assert_eq!(metadata.partitions.len(), 2);
        assert_eq!(metadata.start_ms, Some(70));
        assert_eq!(metadata.last_update_ms, 77);
    }

    #[test]
    fn every_truncation_is_an_error() {
        for record in samples() {
            let (key, value) = record.encode();
            for cut in 0..key.len() {
                assert!(decode_key(&key[..cut]).is_err(), "key cut at {cut}");
            }
            for cut in 1..value.len() {
                assert!(
                    decode_value(&value[..cut]).is_err(),
                    "{record:?} cut at {cut}"
                );
            }
            let mut longer = value.clone();
            longer.push(0);
            if !value.is_empty() {
                assert_eq!(decode_value(&longer), Err(RecordError::Trailing(1)));
            }
        }
    }

    #[test]
    fn every_corruption_decodes_to_a_value_or_an_error_never_a_panic() {
        for record in samples() {
            let (key, value) = record.encode();
            for at in 0..value.len() {
                for byte in [0x00, 0x01, 0x7f, 0x80, 0xff, value[at] ^ 0x55] {
                    let mut bad = value.clone();
                    bad[at] = byte;
                    let _ = TxnRecord::decode(&key, &bad);
                }
            }
            for at in 0..key.len() {
                let mut bad = key.clone();
                bad[at] ^= 0xff;
                let _ = decode_key(&bad);
            }
        }
    }

    #[test]
    fn huge_counts_and_lengths_are_refused_before_allocating() {
        let (_, value) = samples()[0].encode();
        let mut bad = value[..17].to_vec();
        // A compact count of u32::MAX - 1 topics.
        bad.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(matches!(
            decode_value(&bad),
            Err(RecordError::TooLong { what: "topics", .. })
        ));
        let mut bad = value[..17].to_vec();
        bad.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert_eq!(decode_value(&bad), Err(RecordError::Varint));
        let mut key = KEY_VERSION.to_be_bytes().to_vec();
        key.extend_from_slice(&i16::MAX.to_be_bytes());
        assert!(matches!(decode_key(&key), Err(RecordError::Truncated(_))));
        key.truncate(2);
        key.extend_from_slice(&(-1i16).to_be_bytes());
        assert!(decode_key(&key).is_err());
        assert_eq!(decode_key(&[0, 1, 0, 0]), Err(RecordError::KeyVersion(1)));
    }

    #[test]
    fn states_never_written_are_refused() {
        let (_, mut value) = samples()[2].encode();
        for state in [TxnState::Dead, TxnState::PrepareEpochFence] {
            value[16] = state.id() as u8;
            assert_eq!(decode_value(&value), Err(RecordError::State(state.id())));
        }
        value[16] = 99;
        assert_eq!(decode_value(&value), Err(RecordError::State(99)));
    }
}
