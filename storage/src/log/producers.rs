//! Idempotent producers: what a partition remembers of each producer id, so
//! that a retried batch is answered with the offsets it got the first time
//! instead of being stored twice, and a batch that skips sequences is refused.
//!
//! A Kafka producer with `enable.idempotence` stamps every batch with its
//! producer id, its epoch and the sequence number of the batch's first record
//! (sequences count records, per partition, from 0, and wrap from `i32::MAX`
//! to 0). The log checks each such batch where it assigns offsets, so in
//! append order:
//!
//! * an epoch below the one known is fenced ([`AppendError::ProducerFenced`]);
//! * the same epoch with the first and last sequence of one of the last
//!   [`PRODUCER_BATCHES_MAX`] batches is a duplicate, answered with that
//!   batch's offsets;
//! * the same epoch and the sequence after the last one known is appended;
//! * a higher epoch is appended only from sequence 0, and starts the producer
//!   over;
//! * a producer id not known is appended from any sequence (its state may
//!   have been evicted or deleted with old segments);
//! * anything else is out of order ([`AppendError::OutOfOrderSequence`]).
//!
//! A transaction marker of a higher epoch than the producer's (the
//! coordinator bumped it: KIP-890 part 2 ends every transaction so, and a
//! fencing abort does too) starts the producer over at that epoch with no
//! batch, so its next batch must start at sequence 0, and a late batch of
//! the epoch before is fenced here, on the partition.
//!
//! Batches without a producer id (or without a sequence) are not looked at.
//!
//! The state is rebuilt on open from a snapshot and the batch headers after
//! it (see `producer_snapshots`). An append that is undone (a full disk) undoes
//! what it changed here: each queued append keeps an [`Undo`].

use std::collections::{BTreeMap, HashMap};

use super::{
    transactions::{Transactions, TransactionsDecodeError, OPEN_ENTRY_BYTES},
    AppendError, OPEN_TRANSACTIONS_MAX,
};
use crate::{batch::BatchHeader, Offset};

/// Batches remembered per producer. With idempotence a Kafka client keeps at
/// most 5 requests in flight per connection
/// (`max.in.flight.requests.per.connection`), so the batch it retries is one
/// of its last 5.
pub const PRODUCER_BATCHES_MAX: usize = 5;

/// Producers remembered per partition; past this, the least recently used
/// (the one whose last append is oldest) is forgotten. An entry costs under
/// 200 bytes in memory (its batches, its map slots) and at most 136 in a
/// snapshot, so a partition's state stays under 1 MiB whatever the rate of
/// new producer ids, and its snapshot under 600 KiB. A client creates one producer id per producer instance, so a
/// partition written by more live producers than this is unusual; a producer
/// forgotten is treated as unknown, so only a retry of one of its last
/// batches could then be stored twice.
pub const PRODUCERS_MAX: usize = 4096;

/// The next sequence `increment` records after `sequence`, as Kafka counts:
/// sequences are non-negative and wrap from `i32::MAX` to 0.
pub fn sequence_after(sequence: i32, increment: u32) -> i32 {
    debug_assert!(sequence >= 0, "negative sequence {sequence}");
    (i64::from(sequence) + i64::from(increment)).rem_euclid(1 << 31) as i32
}

/// The producer fields of a batch from an idempotent producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProducerAppend {
    pub producer_id: i64,
    pub epoch: i16,
    pub first_sequence: i32,
    pub last_sequence: i32,
}

impl ProducerAppend {
    /// The producer fields of `header`, or `None` for a batch without a
    /// producer id or without a sequence.
    pub fn of(header: &BatchHeader) -> Option<ProducerAppend> {
        if header.producer_id < 0 || header.base_sequence < 0 {
            return None;
        }
        Some(ProducerAppend {
            producer_id: header.producer_id,
            epoch: header.producer_epoch,
            first_sequence: header.base_sequence,
            last_sequence: sequence_after(header.base_sequence, header.last_offset_delta),
        })
    }
}

/// One batch a producer appended, as remembered: its sequences and where it
/// landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub base_offset: Offset,
    pub last_offset: Offset,
}

/// What a partition remembers of one producer (see [`super::Log::producer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerState {
    pub epoch: i16,
    /// Its last batches of `epoch`, oldest first: at least one, at most
    /// [`PRODUCER_BATCHES_MAX`].
    pub batches: Vec<ProducerBatch>,
}

impl ProducerState {
    /// The sequence the producer's next batch must start at.
    pub fn next_sequence(&self) -> i32 {
        self.batches
            .last()
            .expect("a producer has a batch")
            .next_sequence()
    }
}

impl ProducerBatch {
    /// What a marker that moved its producer to a new epoch leaves: no
    /// batch of that epoch yet, remembered where the marker is (sequences
    /// -1, Kafka's "no sequence"). Never a duplicate of anything: a
    /// batch's sequences are not negative.
    fn epoch_start(marker_offset: Offset) -> ProducerBatch {
        ProducerBatch {
            first_sequence: -1,
            last_sequence: -1,
            base_offset: marker_offset,
            last_offset: marker_offset,
        }
    }

    fn is_epoch_start(&self) -> bool {
        self.last_sequence < 0
    }

    /// The sequence the batch after this one starts at.
    fn next_sequence(&self) -> i32 {
        if self.is_epoch_start() {
            0
        } else {
            sequence_after(self.last_sequence, 1)
        }
    }
}

/// One producer's entry: its epoch and its last batches, in a fixed array so
/// that copying an entry (to undo a change) allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    epoch: i16,
    /// Oldest first; `batches[..count]` are meaningful.
    batches: [ProducerBatch; PRODUCER_BATCHES_MAX],
    count: usize,
}

impl Entry {
    fn new(epoch: i16, batch: ProducerBatch) -> Entry {
        Entry {
            epoch,
            batches: [batch; PRODUCER_BATCHES_MAX],
            count: 1,
        }
    }

    fn batches(&self) -> &[ProducerBatch] {
        &self.batches[..self.count]
    }

    fn newest(&self) -> &ProducerBatch {
        &self.batches[self.count - 1]
    }

    /// Remembers `batch` as the newest; returns the oldest if it had to go.
    fn push(&mut self, batch: ProducerBatch) -> Option<ProducerBatch> {
        let newest = self.newest();
        assert!(
            batch.base_offset > newest.last_offset,
            "a producer's batches went back: {} after {}",
            batch.base_offset,
            newest.last_offset
        );
        if self.count < PRODUCER_BATCHES_MAX {
            self.batches[self.count] = batch;
            self.count += 1;
            return None;
        }
        let dropped = self.batches[0];
        self.batches.copy_within(1.., 0);
        self.batches[PRODUCER_BATCHES_MAX - 1] = batch;
        Some(dropped)
    }

    /// Undoes [`Entry::push`]: forgets the newest batch and takes back the
    /// one it pushed out.
    fn pop(&mut self, dropped: Option<ProducerBatch>) {
        assert!(
            self.count > 1 || dropped.is_some(),
            "popping the only batch"
        );
        match dropped {
            None => self.count -= 1,
            Some(dropped) => {
                self.batches.copy_within(..PRODUCER_BATCHES_MAX - 1, 1);
                self.batches[0] = dropped;
            }
        }
    }

    fn state(&self) -> ProducerState {
        ProducerState {
            epoch: self.epoch,
            batches: self.batches().to_vec(),
        }
    }
}

/// What [`Producers::check`] decided for a batch that passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Append it, then [`Producers::record`] it.
    Append,
    /// A retry of this batch: store nothing, answer with its offsets.
    Duplicate(ProducerBatch),
}

/// How to undo one [`Producers::record`], kept with the queued append until
/// it is written. Small: the common case holds one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Undo {
    /// A batch was pushed onto a producer's entry, pushing out `dropped`.
    Pushed {
        producer_id: i64,
        dropped: Option<ProducerBatch>,
    },
    /// A new epoch started the producer over; this was its entry.
    Restarted {
        producer_id: i64,
        previous: Box<Entry>,
    },
    /// A producer was new; `evicted` made room for it.
    Created {
        producer_id: i64,
        evicted: Option<Box<(i64, Entry)>>,
    },
}

/// The producers of one partition. One per partition, on the partition's
/// owner shard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Producers {
    entries: HashMap<i64, Entry>,
    /// Every producer by the last offset it appended: least recently used
    /// first. Offsets are unique, so this orders producers totally, and the
    /// same way after a snapshot and a replay as before.
    by_recency: BTreeMap<Offset, i64>,
}

impl Producers {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The base offset of each producer's last batch: the batches the
    /// cleaner of a compacted log keeps whole.
    pub fn last_batch_bases(&self) -> std::collections::HashSet<u64> {
        self.entries
            .values()
            .map(Entry::newest)
            .filter(|batch| !batch.is_epoch_start())
            .map(|batch| batch.base_offset.0)
            .collect()
    }

    /// The epoch the partition knows for `producer_id`.
    pub fn epoch(&self, producer_id: i64) -> Option<i16> {
        self.entries.get(&producer_id).map(|entry| entry.epoch)
    }

    pub fn get(&self, producer_id: i64) -> Option<ProducerState> {
        self.entries.get(&producer_id).map(Entry::state)
    }

    /// Every producer remembered, in producer id order.
    pub fn all(&self) -> Vec<(i64, ProducerState)> {
        let mut all: Vec<(i64, ProducerState)> = self
            .entries
            .iter()
            .map(|(producer_id, entry)| (*producer_id, entry.state()))
            .collect();
        all.sort_unstable_by_key(|(producer_id, _)| *producer_id);
        all
    }

    /// Decides whether `append` may be appended (see the module
    /// documentation). Changes nothing.
    pub fn check(&self, append: &ProducerAppend) -> Result<Verdict, AppendError> {
        let Some(entry) = self.entries.get(&append.producer_id) else {
            return Ok(Verdict::Append);
        };
        let out_of_order = |expected| AppendError::OutOfOrderSequence {
            producer_id: append.producer_id,
            expected,
            got: append.first_sequence,
        };
        if append.epoch < entry.epoch {
            return Err(AppendError::ProducerFenced {
                producer_id: append.producer_id,
                epoch: append.epoch,
                current_epoch: entry.epoch,
            });
        }
        if append.epoch > entry.epoch {
            return match append.first_sequence {
                0 => Ok(Verdict::Append),
                _ => Err(out_of_order(0)),
            };
        }
        if let Some(original) = entry.batches().iter().find(|batch| {
            batch.first_sequence == append.first_sequence
                && batch.last_sequence == append.last_sequence
        }) {
            return Ok(Verdict::Duplicate(*original));
        }
        let expected = entry.newest().next_sequence();
        if append.first_sequence == expected {
            Ok(Verdict::Append)
        } else {
            Err(out_of_order(expected))
        }
    }

    /// Remembers that `append` landed at `[base_offset, last_offset]`, the
    /// newest offsets of the log: a batch of another epoch starts its
    /// producer over, a new producer may push out the least recently used.
    /// Records without checking, as replaying the log needs; appends are
    /// [`Producers::check`]ed first.
    pub fn record(
        &mut self,
        append: &ProducerAppend,
        base_offset: Offset,
        last_offset: Offset,
    ) -> Undo {
        let batch = ProducerBatch {
            first_sequence: append.first_sequence,
            last_sequence: append.last_sequence,
            base_offset,
            last_offset,
        };
        let producer_id = append.producer_id;
        let undo = match self.entries.get_mut(&producer_id) {
            Some(entry) => {
                let previous_key = entry.newest().last_offset;
                let undo = if entry.epoch == append.epoch {
                    Undo::Pushed {
                        producer_id,
                        dropped: entry.push(batch),
                    }
                } else {
                    assert!(
                        base_offset > previous_key,
                        "producer {producer_id} went back: {base_offset} after {previous_key}"
                    );
                    let previous = Box::new(*entry);
                    *entry = Entry::new(append.epoch, batch);
                    Undo::Restarted {
                        producer_id,
                        previous,
                    }
                };
                self.forget_recency(previous_key, producer_id);
                undo
            }
            None => {
                let evicted = if self.entries.len() >= PRODUCERS_MAX {
                    let (_, oldest) = self
                        .by_recency
                        .pop_first()
                        .expect("a full table has a least recent producer");
                    let entry = self
                        .entries
                        .remove(&oldest)
                        .expect("recency names an entry");
                    Some(Box::new((oldest, entry)))
                } else {
                    None
                };
                self.entries
                    .insert(producer_id, Entry::new(append.epoch, batch));
                Undo::Created {
                    producer_id,
                    evicted,
                }
            }
        };
        self.remember_recency(last_offset, producer_id);
        undo
    }

    /// Records a batch read back from the log, as [`Producers::record`]
    /// does: unchecked, as it was checked when it was appended. An epoch
    /// that went back (batches of an older leader's era) is taken as it is,
    /// and said.
    pub fn replay(&mut self, append: &ProducerAppend, base_offset: Offset, last_offset: Offset) {
        if let Some(entry) = self.entries.get(&append.producer_id) {
            if append.epoch < entry.epoch {
                tracing::warn!(
                    producer_id = append.producer_id, epoch = append.epoch,
                    previous_epoch = entry.epoch, %base_offset,
                    "a producer's epoch goes back in the log"
                );
            }
        }
        self.record(append, base_offset, last_offset);
    }

    /// Takes a transaction marker of `producer_id` at `epoch`, at
    /// `offset`, the newest of the log (appended, replicated or replayed:
    /// a marker is checked against the producer's epoch by the
    /// transactions, not here). A higher epoch than the one known, or a
    /// producer not known, starts the producer over at `epoch` with no
    /// batch; anything else changes nothing (`None`).
    pub fn record_marker(&mut self, producer_id: i64, epoch: i16, offset: Offset) -> Option<Undo> {
        let start = ProducerBatch::epoch_start(offset);
        if self
            .entries
            .get(&producer_id)
            .is_some_and(|entry| entry.epoch >= epoch)
        {
            return None;
        }
        let append = ProducerAppend {
            producer_id,
            epoch,
            first_sequence: start.first_sequence,
            last_sequence: start.last_sequence,
        };
        Some(self.record(&append, offset, offset))
    }

    /// Undoes one [`Producers::record`]. Undos must come newest first.
    pub fn undo(&mut self, undo: &Undo) {
        match undo {
            Undo::Pushed {
                producer_id,
                dropped,
            } => {
                let entry = self
                    .entries
                    .get_mut(producer_id)
                    .expect("an undone producer exists");
                let newest = entry.newest().last_offset;
                entry.pop(*dropped);
                let restored = entry.newest().last_offset;
                self.forget_recency(newest, *producer_id);
                self.remember_recency(restored, *producer_id);
            }
            Undo::Restarted {
                producer_id,
                previous,
            } => {
                let entry = self
                    .entries
                    .get_mut(producer_id)
                    .expect("an undone producer exists");
                let newest = entry.newest().last_offset;
                *entry = **previous;
                let restored = entry.newest().last_offset;
                self.forget_recency(newest, *producer_id);
                self.remember_recency(restored, *producer_id);
            }
            Undo::Created {
                producer_id,
                evicted,
            } => {
                let entry = self
                    .entries
                    .remove(producer_id)
                    .expect("an undone producer exists");
                self.forget_recency(entry.newest().last_offset, *producer_id);
                if let Some(evicted) = evicted {
                    let (evicted_id, entry) = **evicted;
                    self.remember_recency(entry.newest().last_offset, evicted_id);
                    let previous = self.entries.insert(evicted_id, entry);
                    assert!(
                        previous.is_none(),
                        "evicted producer {evicted_id} came back"
                    );
                }
            }
        }
        debug_assert_eq!(self.entries.len(), self.by_recency.len());
    }

    fn forget_recency(&mut self, last_offset: Offset, producer_id: i64) {
        let removed = self.by_recency.remove(&last_offset);
        assert_eq!(
            removed,
            Some(producer_id),
            "producer {producer_id} was not last used at {last_offset}"
        );
    }

    fn remember_recency(&mut self, last_offset: Offset, producer_id: i64) {
        let previous = self.by_recency.insert(last_offset, producer_id);
        assert!(
            previous.is_none(),
            "producers {previous:?} and {producer_id} both appended offset {last_offset}"
        );
    }

    /// The snapshot of this state, and of the partition's open
    /// `transactions`, as that of the log below `offset`: see
    /// [`SNAPSHOT_MAGIC`] for the format.
    pub fn encode(&self, offset: Offset, transactions: &Transactions) -> Vec<u8> {
        let producers_bytes = SNAPSHOT_HEADER_BYTES
            + self
                .entries
                .values()
                .map(|entry| SNAPSHOT_ENTRY_BYTES + entry.count * SNAPSHOT_BATCH_BYTES)
                .sum::<usize>();
        let mut out = Vec::with_capacity(producers_bytes + 4);
        out.extend_from_slice(&SNAPSHOT_MAGIC);
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        out.extend_from_slice(&[0; 2]);
        let count = u32::try_from(self.entries.len()).expect("producer count fits u32");
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&offset.0.to_le_bytes());
        for producer_id in self.by_recency.values() {
            let entry = &self.entries[producer_id];
            assert!(
                entry.newest().last_offset < offset,
                "producer {producer_id} appended at {} past the snapshot offset {offset}",
                entry.newest().last_offset
            );
            out.extend_from_slice(&producer_id.to_le_bytes());
            out.extend_from_slice(&entry.epoch.to_le_bytes());
            out.push(entry.count as u8);
            out.extend_from_slice(&[0; 5]);
            for batch in entry.batches() {
                out.extend_from_slice(&batch.first_sequence.to_le_bytes());
                out.extend_from_slice(&batch.last_sequence.to_le_bytes());
                out.extend_from_slice(&batch.base_offset.0.to_le_bytes());
                out.extend_from_slice(&batch.last_offset.0.to_le_bytes());
            }
        }
        assert_eq!(out.len(), producers_bytes, "snapshot size miscounted");
        transactions.encode_open(&mut out);
        let crc = crc32c::crc32c(&out[SNAPSHOT_CRC_END..]);
        out[SNAPSHOT_CRC_AT..SNAPSHOT_CRC_END].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Reads a snapshot made by [`Producers::encode`]: the offset it is the
    /// state below, and the state. Checks everything it can: the CRC, the
    /// counts against their caps, and that each producer's batches are in
    /// order and below the offset. A version 1 snapshot (written before
    /// transactions) has none open.
    pub fn decode(bytes: &[u8]) -> Result<(Offset, Producers, Transactions), SnapshotError> {
        if bytes.len() < SNAPSHOT_HEADER_BYTES {
            return Err(SnapshotError::TooShort { bytes: bytes.len() });
        }
        if bytes[..4] != SNAPSHOT_MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let stored = u32::from_le_bytes(read(bytes, SNAPSHOT_CRC_AT));
        let computed = crc32c::crc32c(&bytes[SNAPSHOT_CRC_END..]);
        if stored != computed {
            return Err(SnapshotError::CrcMismatch { stored, computed });
        }
        let version = u16::from_le_bytes(read(bytes, 8));
        if !(1..=SNAPSHOT_VERSION).contains(&version) {
            return Err(SnapshotError::UnknownVersion { version });
        }
        let count = u32::from_le_bytes(read(bytes, 12)) as usize;
        if count > PRODUCERS_MAX {
            return Err(SnapshotError::TooManyProducers {
                count,
                max: PRODUCERS_MAX,
            });
        }
        let offset = Offset(u64::from_le_bytes(read(bytes, 16)));
        let mut producers = Producers::default();
        let mut at = SNAPSHOT_HEADER_BYTES;
        for _ in 0..count {
            if bytes.len() < at + SNAPSHOT_ENTRY_BYTES {
                return Err(SnapshotError::Truncated);
            }
            let producer_id = i64::from_le_bytes(read(bytes, at));
            let epoch = i16::from_le_bytes(read(bytes, at + 8));
            let batches = usize::from(bytes[at + 10]);
            let bad = |reason| SnapshotError::BadEntry {
                producer_id,
                reason,
            };
            if !(1..=PRODUCER_BATCHES_MAX).contains(&batches) {
                return Err(bad("batch count out of range"));
            }
            if producer_id < 0 {
                return Err(bad("negative producer id"));
            }
            at += SNAPSHOT_ENTRY_BYTES;
            if bytes.len() < at + batches * SNAPSHOT_BATCH_BYTES {
                return Err(SnapshotError::Truncated);
            }
            let mut entry: Option<Entry> = None;
            for _ in 0..batches {
                let batch = ProducerBatch {
                    first_sequence: i32::from_le_bytes(read(bytes, at)),
                    last_sequence: i32::from_le_bytes(read(bytes, at + 4)),
                    base_offset: Offset(u64::from_le_bytes(read(bytes, at + 8))),
                    last_offset: Offset(u64::from_le_bytes(read(bytes, at + 16))),
                };
                at += SNAPSHOT_BATCH_BYTES;
                let epoch_start = batch.first_sequence == -1 && batch.last_sequence == -1;
                if (batch.first_sequence < 0 || batch.last_sequence < 0)
                    && !(epoch_start && entry.is_none())
                {
                    return Err(bad("negative sequence"));
                }
                if batch.base_offset > batch.last_offset || batch.last_offset >= offset {
                    return Err(bad("batch offsets out of range"));
                }
                match &mut entry {
                    None => entry = Some(Entry::new(epoch, batch)),
                    Some(entry) if batch.base_offset > entry.newest().last_offset => {
                        entry.push(batch);
                    }
                    Some(_) => return Err(bad("batches out of order")),
                }
            }
            let entry = entry.expect("at least one batch");
            let last_offset = entry.newest().last_offset;
            if producers
                .by_recency
                .last_key_value()
                .is_some_and(|(&newest, _)| newest >= last_offset)
            {
                return Err(bad("producers out of order"));
            }
            if producers.entries.insert(producer_id, entry).is_some() {
                return Err(bad("producer listed twice"));
            }
            producers.by_recency.insert(last_offset, producer_id);
        }
        let transactions = match version {
            1 => Transactions::default(),
            _ => {
                let (transactions, used) = Transactions::decode_open(&bytes[at..], offset)
                    .map_err(SnapshotError::Transactions)?;
                at += used;
                transactions
            }
        };
        if at != bytes.len() {
            return Err(SnapshotError::TrailingBytes {
                bytes: bytes.len() - at,
            });
        }
        Ok((offset, producers, transactions))
    }
}

fn read<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    bytes[at..at + N].try_into().expect("in bounds")
}

/// The first bytes of a producer snapshot file. The format, little-endian:
///
/// ```text
///  0  magic           [u8; 4]  "SLPS"
///  4  crc             u32      CRC-32C of bytes [8, end)
///  8  version         u16      2 (1: without the open transactions)
/// 10  reserved        u16      zero
/// 12  producer_count  u32      at most PRODUCERS_MAX
/// 16  offset          u64      the state is that of the log below it
/// 24  producers, least recently used first, each:
///      0  producer_id  i64
///      8  epoch        i16
///     10  batch_count  u8      1 to PRODUCER_BATCHES_MAX
///     11  reserved     [u8; 5] zero
///     16  batches, oldest first, each:
///          0  first_sequence  i32
///          4  last_sequence   i32
///          8  base_offset     u64
///         16  last_offset     u64
/// then, from version 2, the transactions open on the partition:
///      0  open_count   u32     at most OPEN_TRANSACTIONS_MAX
///      4  each, oldest first (OPEN_ENTRY_BYTES):
///          0  producer_id   i64
///          8  epoch         i16
///         10  reserved      [u8; 6] zero
///         16  first_offset  u64
/// ```
pub const SNAPSHOT_MAGIC: [u8; 4] = *b"SLPS";
const SNAPSHOT_VERSION: u16 = 2;
const SNAPSHOT_CRC_AT: usize = 4;
const SNAPSHOT_CRC_END: usize = 8;
const SNAPSHOT_HEADER_BYTES: usize = 24;
const SNAPSHOT_ENTRY_BYTES: usize = 16;
const SNAPSHOT_BATCH_BYTES: usize = 24;

/// The largest snapshot: every producer with every batch, and every open
/// transaction.
pub const SNAPSHOT_BYTES_MAX: usize = SNAPSHOT_HEADER_BYTES
    + PRODUCERS_MAX * (SNAPSHOT_ENTRY_BYTES + PRODUCER_BATCHES_MAX * SNAPSHOT_BATCH_BYTES)
    + 4
    + OPEN_TRANSACTIONS_MAX * OPEN_ENTRY_BYTES;

/// Why a snapshot file was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("{bytes} bytes, shorter than the header")]
    TooShort { bytes: usize },
    #[error("not a producer snapshot")]
    BadMagic,
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("unknown snapshot version {version}")]
    UnknownVersion { version: u16 },
    #[error("{count} producers, over the cap of {max}")]
    TooManyProducers { count: usize, max: usize },
    #[error("the file ends inside a producer")]
    Truncated,
    #[error("producer {producer_id}: {reason}")]
    BadEntry {
        producer_id: i64,
        reason: &'static str,
    },
    #[error("{bytes} bytes after the last producer")]
    TrailingBytes { bytes: usize },
    #[error("the file is named for offset {named} but holds the state at {holds}")]
    MisNamed { named: Offset, holds: Offset },
    #[error("its open transactions: {0}")]
    Transactions(TransactionsDecodeError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(producer_id: i64, epoch: i16, first_sequence: i32, records: u32) -> ProducerAppend {
        ProducerAppend {
            producer_id,
            epoch,
            first_sequence,
            last_sequence: sequence_after(first_sequence, records - 1),
        }
    }

    /// Checks and records `append` at the end `*end`, as the log does.
    fn apply(
        producers: &mut Producers,
        end: &mut u64,
        append: ProducerAppend,
        records: u64,
    ) -> Result<(Verdict, Option<Undo>), AppendError> {
        let verdict = producers.check(&append)?;
        if verdict != Verdict::Append {
            return Ok((verdict, None));
        }
        let undo = producers.record(&append, Offset(*end), Offset(*end + records - 1));
        *end += records;
        Ok((verdict, Some(undo)))
    }

    #[test]
    fn sequences_wrap_from_the_largest_to_zero() {
        assert_eq!(sequence_after(0, 0), 0);
        assert_eq!(sequence_after(5, 3), 8);
        assert_eq!(sequence_after(i32::MAX, 1), 0);
        assert_eq!(sequence_after(i32::MAX - 2, 5), 2);
        assert_eq!(sequence_after(i32::MAX, u32::MAX), i32::MAX - 1);
    }

    #[test]
    fn the_rules_of_an_idempotent_producer() {
        let mut producers = Producers::default();
        let mut end = 0;
        // Unknown: any first sequence.
        assert_eq!(
            apply(&mut producers, &mut end, append(7, 0, 40, 3), 3).unwrap(),
            (Verdict::Append, producers_undo_created(7))
        );
        // Next sequence.
        apply(&mut producers, &mut end, append(7, 0, 43, 2), 2).unwrap();
        assert_eq!(producers.get(7).unwrap().next_sequence(), 45);
        // A gap, and a repeat that is not a whole cached batch.
        for (first, records) in [(46, 1), (44, 1), (40, 1), (43, 3)] {
            assert_eq!(
                apply(&mut producers, &mut end, append(7, 0, first, records), 1).unwrap_err(),
                AppendError::OutOfOrderSequence {
                    producer_id: 7,
                    expected: 45,
                    got: first
                }
            );
        }
        // Duplicates.
        assert_eq!(
            producers.check(&append(7, 0, 40, 3)).unwrap(),
            Verdict::Duplicate(ProducerBatch {
                first_sequence: 40,
                last_sequence: 42,
                base_offset: Offset(0),
                last_offset: Offset(2)
            })
        );
        // A lower epoch is fenced, a higher one must start at 0.
        assert_eq!(
            producers.check(&append(7, -1, 45, 1)).unwrap_err(),
            AppendError::ProducerFenced {
                producer_id: 7,
                epoch: -1,
                current_epoch: 0
            }
        );
        assert_eq!(
            producers.check(&append(7, 1, 45, 1)).unwrap_err(),
            AppendError::OutOfOrderSequence {
                producer_id: 7,
                expected: 0,
                got: 45
            }
        );
        apply(&mut producers, &mut end, append(7, 1, 0, 4), 4).unwrap();
        let state = producers.get(7).unwrap();
        assert_eq!(state.epoch, 1);
        assert_eq!(state.batches.len(), 1, "a new epoch starts over");
        assert_eq!(
            producers.check(&append(7, 0, 40, 3)).unwrap_err(),
            AppendError::ProducerFenced {
                producer_id: 7,
                epoch: 0,
                current_epoch: 1
            }
        );
        assert_eq!(producers.len(), 1);
    }

    fn producers_undo_created(producer_id: i64) -> Option<Undo> {
        Some(Undo::Created {
            producer_id,
            evicted: None,
        })
    }

    #[test]
    fn the_last_five_batches_are_duplicates_and_older_ones_out_of_order() {
        let mut producers = Producers::default();
        let mut end = 0;
        let mut sequence = i32::MAX - 9;
        let mut appended = Vec::new();
        for batch in 0..8u32 {
            let records = 1 + batch % 3;
            let request = append(3, 2, sequence, records);
            apply(&mut producers, &mut end, request, u64::from(records)).unwrap();
            appended.push((request, end - u64::from(records), end - 1));
            sequence = sequence_after(sequence, records);
        }
        assert!(sequence < 10, "the sequences wrapped");
        for (back, (request, base, last)) in appended.iter().rev().enumerate() {
            let verdict = producers.check(request);
            if back < PRODUCER_BATCHES_MAX {
                assert_eq!(
                    verdict.unwrap(),
                    Verdict::Duplicate(ProducerBatch {
                        first_sequence: request.first_sequence,
                        last_sequence: request.last_sequence,
                        base_offset: Offset(*base),
                        last_offset: Offset(*last),
                    })
                );
            } else {
                assert!(matches!(
                    verdict,
                    Err(AppendError::OutOfOrderSequence { expected, .. }) if expected == sequence
                ));
            }
        }
    }

    #[test]
    fn undo_restores_the_state_before_each_change() {
        let mut producers = Producers::default();
        let mut end = 0;
        // Fill one producer's batches, then a mix of changes of every kind.
        for batch in 0..5 {
            apply(&mut producers, &mut end, append(1, 0, batch, 1), 1).unwrap();
        }
        apply(&mut producers, &mut end, append(2, 0, 9, 2), 2).unwrap();
        let before = producers.clone();
        let mut undos = Vec::new();
        for request in [
            append(1, 0, 5, 1),
            append(3, 0, 0, 1),
            append(2, 1, 0, 1),
            append(1, 0, 6, 2),
            append(4, 5, 100, 1),
        ] {
            let (_, undo) = apply(&mut producers, &mut end, request, 1).unwrap();
            undos.push(undo.expect("appended"));
        }
        assert_ne!(producers, before);
        for undo in undos.iter().rev() {
            producers.undo(undo);
        }
        assert_eq!(producers, before);
    }

    #[test]
    fn the_least_recently_used_producer_is_evicted_and_undo_brings_it_back() {
        let mut producers = Producers::default();
        let mut end = 0;
        for producer_id in 0..PRODUCERS_MAX as i64 {
            apply(&mut producers, &mut end, append(producer_id, 0, 0, 1), 1).unwrap();
        }
        // Producer 0 appends again: producer 1 is now the least recent.
        apply(&mut producers, &mut end, append(0, 0, 1, 1), 1).unwrap();
        let before = producers.clone();
        let newcomer = PRODUCERS_MAX as i64 + 1;
        let (_, undo) = apply(&mut producers, &mut end, append(newcomer, 0, 77, 1), 1).unwrap();
        assert_eq!(producers.len(), PRODUCERS_MAX);
        assert!(producers.get(1).is_none(), "the least recent was evicted");
        assert!(producers.get(0).is_some() && producers.get(2).is_some());
        assert!(producers.get(newcomer).is_some());
        producers.undo(&undo.unwrap());
        assert_eq!(producers, before);
    }

    #[test]
    fn a_marker_of_a_higher_epoch_starts_its_producer_over_and_fences_the_epoch_before() {
        let mut producers = Producers::default();
        let mut end = 0;
        apply(&mut producers, &mut end, append(7, 3, 0, 4), 4).unwrap();
        // A marker at the epoch the producer writes in changes nothing.
        assert_eq!(producers.record_marker(7, 3, Offset(end)), None);
        end += 1;
        let before = producers.clone();
        // The coordinator ended the transaction at a bumped epoch.
        let undo = producers.record_marker(7, 4, Offset(end)).unwrap();
        end += 1;
        assert_eq!(producers.epoch(7), Some(4));
        assert_eq!(producers.get(7).unwrap().next_sequence(), 0);
        assert!(
            producers.last_batch_bases().is_empty(),
            "a marker is no data batch"
        );
        // A late batch of the transaction before, at the sequence it would
        // have had: fenced.
        assert!(matches!(
            producers.check(&append(7, 3, 4, 1)).unwrap_err(),
            AppendError::ProducerFenced {
                current_epoch: 4,
                ..
            }
        ));
        // The producer's next transaction starts at sequence 0, not later.
        assert!(matches!(
            producers.check(&append(7, 4, 1, 1)).unwrap_err(),
            AppendError::OutOfOrderSequence { expected: 0, .. }
        ));
        let bytes = producers.encode(Offset(end), &Transactions::default());
        assert_eq!(Producers::decode(&bytes).unwrap().1, producers);
        apply(&mut producers, &mut end, append(7, 4, 0, 2), 2).unwrap();
        assert_eq!(producers.get(7).unwrap().next_sequence(), 2);
        assert_eq!(producers.last_batch_bases().len(), 1);
        // A retry of that batch is still a duplicate.
        assert!(matches!(
            producers.check(&append(7, 4, 0, 2)).unwrap(),
            Verdict::Duplicate(_)
        ));
        let bytes = producers.encode(Offset(end), &Transactions::default());
        assert_eq!(Producers::decode(&bytes).unwrap().1, producers);
        // Undone (the marker never reached the disk): as before.
        let mut undone = before.clone();
        undone.record_marker(7, 4, Offset(5)).unwrap();
        undone.undo(&undo);
        assert_eq!(undone, before);
        // A producer the partition does not know starts at the marker's
        // epoch.
        producers.record_marker(99, 2, Offset(end)).unwrap();
        assert_eq!(producers.epoch(99), Some(2));
    }

    #[test]
    fn a_snapshot_reads_back_as_the_state_it_was_made_of() {
        let mut producers = Producers::default();
        let mut end = 0;
        for round in 0..7 {
            for producer_id in [5, 900, i64::MAX] {
                let request = append(producer_id, 3, round * 2, 2);
                apply(&mut producers, &mut end, request, 2).unwrap();
            }
        }
        apply(&mut producers, &mut end, append(900, 4, 0, 1), 1).unwrap();
        let bytes = producers.encode(Offset(end), &Transactions::default());
        let (offset, decoded, transactions) = Producers::decode(&bytes).unwrap();
        assert_eq!(offset, Offset(end));
        assert_eq!(decoded, producers);
        assert_eq!(transactions, Transactions::default());
        assert_eq!(
            Producers::decode(&Producers::default().encode(Offset(0), &Transactions::default()))
                .unwrap(),
            (Offset(0), Producers::default(), Transactions::default())
        );
    }

    #[test]
    fn a_damaged_snapshot_is_refused() {
        let mut producers = Producers::default();
        let mut end = 0;
        for producer_id in 0..3 {
            apply(&mut producers, &mut end, append(producer_id, 0, 0, 2), 2).unwrap();
        }
        let bytes = producers.encode(Offset(end), &Transactions::default());
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x20;
            assert!(Producers::decode(&damaged).is_err(), "flipped byte {at}");
        }
        for cut in 0..bytes.len() {
            assert!(Producers::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        // A well-framed snapshot of a state that cannot be: a batch past the
        // snapshot's offset.
        let mut past = producers.encode(Offset(end), &Transactions::default());
        past[16..24].copy_from_slice(&1u64.to_le_bytes());
        let crc = crc32c::crc32c(&past[SNAPSHOT_CRC_END..]);
        past[SNAPSHOT_CRC_AT..SNAPSHOT_CRC_END].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            Producers::decode(&past),
            Err(SnapshotError::BadEntry { .. })
        ));
    }

    #[test]
    fn a_snapshot_keeps_the_open_transactions_and_one_from_before_them_reads() {
        use crate::batch::{BatchHeader, PayloadFormat, FLAGS_TRANSACTIONAL};
        let mut producers = Producers::default();
        let mut transactions = Transactions::default();
        let mut end = 0;
        for producer_id in 0..3 {
            let base = end;
            apply(&mut producers, &mut end, append(producer_id, 1, 0, 2), 2).unwrap();
            let header = BatchHeader {
                base_offset: base,
                batch_bytes: 0,
                leader_epoch: 0,
                crc: 0,
                payload_format: PayloadFormat::Kafka,
                flags: FLAGS_TRANSACTIONAL,
                record_count: 2,
                last_offset_delta: 1,
                first_timestamp: 0,
                max_timestamp: 0,
                producer_id,
                producer_epoch: 1,
                base_sequence: 0,
            };
            transactions.record(&header, Offset(base), Offset(end - 1));
        }
        let bytes = producers.encode(Offset(end), &transactions);
        assert_eq!(
            Producers::decode(&bytes).unwrap(),
            (Offset(end), producers.clone(), transactions)
        );
        // Version 1: the same producers, no transactions section.
        let mut old = producers.encode(Offset(end), &Transactions::default());
        old.truncate(old.len() - 4);
        old[8..10].copy_from_slice(&1_u16.to_le_bytes());
        let crc = crc32c::crc32c(&old[SNAPSHOT_CRC_END..]);
        old[SNAPSHOT_CRC_AT..SNAPSHOT_CRC_END].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            Producers::decode(&old).unwrap(),
            (Offset(end), producers, Transactions::default())
        );
    }
}
