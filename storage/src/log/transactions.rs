//! Transactions on one partition: which producers have a transaction open
//! here and from which offset, the last stable offset that follows, and
//! the transactions that were aborted, which a `read_committed` reader
//! must skip.
//!
//! A transactional producer's batches carry the transactional bit; its
//! transaction on this partition opens at the first of them and ends at a
//! marker (a control batch the transaction coordinator has written) that
//! commits or aborts it. Until the marker, nothing at or after the
//! transaction's first offset is stable: a `read_committed` fetch stops at
//! the **last stable offset**, the first offset of the oldest open
//! transaction (or the high watermark, whichever is lower). As Kafka's, a
//! transaction stays unstable past its marker until the high watermark
//! passes the marker: a marker a failover could still lose (a new leader
//! without it leaves the transaction open, and may abort it) never lets a
//! reader see the transaction as ended. Such transactions are
//! **completing**; [`Transactions::replicated_to`] forgets them once the
//! marker is below the high watermark. An abort is
//! remembered as an [`AbortedTransaction`] — its producer, its first
//! offset, its marker's offset, and the last stable offset once it ended —
//! so that a fetch can list the aborted transactions among the batches it
//! returns, and the reader drop their records ([`Transactions::aborted`]).
//!
//! The state follows the log in append order, as the producers' does:
//! [`Transactions::record`] for each batch appended (or replayed from the
//! headers on open), [`Transactions::undo`] for an append undone. Kafka's
//! rules for the marker's epoch: a marker older than the producer's epoch
//! is fenced ([`Transactions::check`]).
//!
//! On disk, the open transactions go with the producer snapshot
//! ([`Transactions::encode_open`]), and the aborted ones with the segment
//! that holds their markers ([`encode_aborted`]), so that opening a log
//! replays no more than it does for the producers.
//!
//! Memory: an open transaction costs under 100 bytes and there are at
//! most [`OPEN_TRANSACTIONS_MAX`]; an aborted one costs 32 bytes for as long
//! as the segment holding its marker is kept (retention bounds them, as it
//! bounds the log).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::{
    batch::{BatchHeader, Marker},
    Offset,
};

/// Transactions open on a partition at once. A transactional producer has
/// at most one, and the coordinator aborts one that stays open past its
/// timeout (15 minutes at most, by default), so this many producers each
/// writing to the partition within one timeout is far past real use; a
/// new one past it is refused, not tracked wrongly.
pub const OPEN_TRANSACTIONS_MAX: usize = 4096;

/// An aborted transaction, as a fetch reports it (Kafka's
/// `AbortedTransaction`, with the marker's offset and the last stable
/// offset it left, as Kafka's transaction index keeps them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTransaction {
    pub producer_id: i64,
    /// The offset of the transaction's first batch on this partition.
    pub first_offset: Offset,
    /// The offset of its abort marker.
    pub last_offset: Offset,
    /// The last stable offset once it was aborted: the first offset of the
    /// oldest transaction still open then, or the one after the marker.
    pub last_stable_offset: Offset,
}

/// An open transaction: the epoch of the batch that opened it, and its
/// first offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Open {
    epoch: i16,
    first_offset: Offset,
}

/// Why a batch may not change the transactions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    /// Kafka's `INVALID_PRODUCER_EPOCH`: a marker for an epoch older than
    /// the producer's.
    #[error(
        "a marker of producer {producer_id} at epoch {epoch}: epoch {current_epoch} is current"
    )]
    MarkerFenced {
        producer_id: i64,
        epoch: i16,
        current_epoch: i16,
    },
    #[error("{OPEN_TRANSACTIONS_MAX} transactions are open on the partition")]
    TooManyOpen,
}

/// How to undo one [`Transactions::record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TransactionUndo {
    /// A transaction opened.
    Opened { producer_id: i64 },
    /// A marker ended `open` (if one was open), aborted or not.
    Ended {
        producer_id: i64,
        open: Option<Open>,
        marker_offset: Offset,
    },
}

/// One partition's transactions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Transactions {
    open: HashMap<i64, Open>,
    /// The open transactions by first offset: the oldest gives the last
    /// stable offset.
    by_first: BTreeSet<(Offset, i64)>,
    /// The ended transactions whose markers may not be replicated yet: the
    /// first offset of each, by its marker's offset. They are the markers
    /// between the high watermark and the log end (what followers still
    /// lack, which a replica's lag bounds), so they are few; not persisted:
    /// on open, those replayed past the producer snapshot come back, and a
    /// replica's high watermark is set anew before it serves reads.
    completing: BTreeMap<Offset, Offset>,
    /// The aborted transactions by their marker's offset.
    aborted: BTreeMap<Offset, AbortedTransaction>,
}

impl Transactions {
    /// Whether the batch of `header` may be appended, for a producer whose
    /// epoch this partition knows as `known_epoch`: a marker may not be
    /// older than it, and a new transaction needs room.
    pub fn check(
        &self,
        header: &BatchHeader,
        known_epoch: Option<i16>,
    ) -> Result<(), TransactionError> {
        let producer_id = header.producer_id;
        if header.marker().is_some() {
            let current = known_epoch
                .into_iter()
                .chain(self.open.get(&producer_id).map(|open| open.epoch))
                .max();
            if let Some(current_epoch) = current.filter(|&epoch| header.producer_epoch < epoch) {
                return Err(TransactionError::MarkerFenced {
                    producer_id,
                    epoch: header.producer_epoch,
                    current_epoch,
                });
            }
        } else if header.is_transactional()
            && !self.open.contains_key(&producer_id)
            && self.open.len() >= OPEN_TRANSACTIONS_MAX
        {
            return Err(TransactionError::TooManyOpen);
        }
        Ok(())
    }

    /// Takes the batch of `header`, at `[base, last]`, the newest offsets
    /// of the log: a transactional batch opens its producer's transaction
    /// if none is open, a marker ends it (and an abort is remembered).
    /// Other batches change nothing. Unchecked, as replaying needs.
    pub fn record(
        &mut self,
        header: &BatchHeader,
        base: Offset,
        last: Offset,
    ) -> Option<TransactionUndo> {
        let producer_id = header.producer_id;
        match header.marker() {
            Some(marker) => {
                let open = self.open.remove(&producer_id);
                if let Some(open) = open {
                    self.by_first.remove(&(open.first_offset, producer_id));
                    self.completing.insert(last, open.first_offset);
                    if marker == Marker::Abort {
                        let last_stable_offset = self.first_unstable().unwrap_or(last.next());
                        self.aborted.insert(
                            last,
                            AbortedTransaction {
                                producer_id,
                                first_offset: open.first_offset,
                                last_offset: last,
                                last_stable_offset,
                            },
                        );
                    }
                }
                Some(TransactionUndo::Ended {
                    producer_id,
                    open,
                    marker_offset: last,
                })
            }
            None if header.is_transactional() => {
                if self.open.contains_key(&producer_id) {
                    // Its transaction goes on, from the first offset it
                    // opened at (a later epoch too: the producer's epoch
                    // is the producers' state to keep).
                    return None;
                }
                self.open.insert(
                    producer_id,
                    Open {
                        epoch: header.producer_epoch,
                        first_offset: base,
                    },
                );
                self.by_first.insert((base, producer_id));
                Some(TransactionUndo::Opened { producer_id })
            }
            None => None,
        }
    }

    /// Undoes one [`Transactions::record`]; undos must come newest first.
    pub fn undo(&mut self, undo: &TransactionUndo) {
        match *undo {
            TransactionUndo::Opened { producer_id } => {
                let open = self
                    .open
                    .remove(&producer_id)
                    .expect("an undone transaction is open");
                self.by_first.remove(&(open.first_offset, producer_id));
            }
            TransactionUndo::Ended {
                producer_id,
                open,
                marker_offset,
            } => {
                self.aborted.remove(&marker_offset);
                self.completing.remove(&marker_offset);
                if let Some(open) = open {
                    self.open.insert(producer_id, open);
                    self.by_first.insert((open.first_offset, producer_id));
                }
            }
        }
    }

    /// Forgets `producer_id`'s open transaction, if there is one: a
    /// snapshot's, whose marker the cleaner removes. Whether there was.
    pub fn close_open(&mut self, producer_id: i64) -> bool {
        match self.open.remove(&producer_id) {
            Some(open) => {
                self.by_first.remove(&(open.first_offset, producer_id));
                true
            }
            None => false,
        }
    }

    /// The epoch of `producer_id`'s transaction open here, if one is.
    pub fn open_epoch(&self, producer_id: i64) -> Option<i16> {
        self.open.get(&producer_id).map(|open| open.epoch)
    }

    /// The first offset of the oldest open transaction, if any is open.
    pub fn first_unstable(&self) -> Option<Offset> {
        self.by_first.first().map(|&(offset, _)| offset)
    }

    /// The last stable offset under `high_watermark`: a `read_committed`
    /// reader reads below it. It is the first offset of the oldest
    /// transaction open, or ended by a marker at or past `high_watermark`,
    /// if that is lower.
    pub fn last_stable_offset(&self, high_watermark: Offset) -> Offset {
        let completing = self
            .completing
            .range(high_watermark..)
            .map(|(_, &first)| first)
            .min();
        [self.first_unstable(), completing]
            .into_iter()
            .flatten()
            .fold(high_watermark, Offset::min)
    }

    /// Forgets the completing transactions whose markers are below `end`,
    /// the high watermark (or what is stored, for a partition of one
    /// replica): replicated, they are ended for good. The high watermark
    /// does not go back below a marker once passed, so forgetting is for
    /// ever.
    pub fn replicated_to(&mut self, end: Offset) {
        self.completing = self.completing.split_off(&end);
    }

    /// The open transactions: producer id, the epoch that opened each, and
    /// its first offset.
    pub fn open(&self) -> impl Iterator<Item = (i64, i16, Offset)> + '_ {
        self.by_first.iter().map(|&(first_offset, producer_id)| {
            (producer_id, self.open[&producer_id].epoch, first_offset)
        })
    }

    /// The aborted transactions with records in `[from, to)`: those whose
    /// marker is at or after `from` and whose first offset is before `to`.
    /// Reads the aborts in marker order from `from` and stops at the first
    /// that left the last stable offset at or past `to`: every later one
    /// opened at or after it.
    pub fn aborted(&self, from: Offset, to: Offset) -> Vec<AbortedTransaction> {
        let mut found = Vec::new();
        for aborted in self.aborted.range(from..).map(|(_, aborted)| aborted) {
            if aborted.first_offset < to {
                found.push(*aborted);
            }
            if aborted.last_stable_offset >= to {
                break;
            }
        }
        found
    }

    /// The aborted transactions whose markers are in `[from, to)`: what
    /// the segment of those offsets keeps on disk.
    pub fn aborted_in_segment(&self, from: Offset, to: Offset) -> Vec<AbortedTransaction> {
        self.aborted
            .range(from..to)
            .map(|(_, aborted)| *aborted)
            .collect()
    }

    /// Remembers aborts read back from a segment's file; one known already
    /// (replayed from the headers too) is the same abort.
    pub fn restore_aborted(&mut self, aborted: &[AbortedTransaction]) {
        for aborted in aborted {
            self.aborted.insert(aborted.last_offset, *aborted);
        }
    }

    /// Forgets the aborts whose markers are at `markers`: the cleaner
    /// removes those markers, the records of their transactions gone.
    pub fn forget_aborts(&mut self, markers: &[Offset]) {
        for marker in markers {
            self.aborted.remove(marker);
        }
    }

    /// Forgets the aborts whose markers are below `first_base`, the base of
    /// the first segment kept: their segments are deleted.
    pub fn forget_below(&mut self, first_base: Offset) {
        self.aborted = self.aborted.split_off(&first_base);
    }

    /// The open transactions as the producer snapshot keeps them: a count
    /// and, oldest first, each one's producer id, epoch and first offset
    /// (little-endian, [`OPEN_ENTRY_BYTES`] each).
    pub fn encode_open(&self, out: &mut Vec<u8>) {
        let count = u32::try_from(self.open.len()).expect("open transactions fit u32");
        out.extend_from_slice(&count.to_le_bytes());
        for (producer_id, epoch, first_offset) in self.open() {
            out.extend_from_slice(&producer_id.to_le_bytes());
            out.extend_from_slice(&epoch.to_le_bytes());
            out.extend_from_slice(&[0; 6]);
            out.extend_from_slice(&first_offset.0.to_le_bytes());
        }
    }

    /// Reads what [`Transactions::encode_open`] wrote at the start of
    /// `bytes`, as the state of the log below `offset`; returns it and the
    /// bytes it took. Checks the count against its cap and the bytes left
    /// before it allocates.
    pub fn decode_open(
        bytes: &[u8],
        offset: Offset,
    ) -> Result<(Transactions, usize), TransactionsDecodeError> {
        let count = bytes
            .get(..4)
            .map(|count| u32::from_le_bytes(count.try_into().expect("4 bytes")) as usize)
            .ok_or(TransactionsDecodeError::Truncated)?;
        if count > OPEN_TRANSACTIONS_MAX {
            return Err(TransactionsDecodeError::TooMany {
                count,
                max: OPEN_TRANSACTIONS_MAX,
            });
        }
        let used = 4 + count * OPEN_ENTRY_BYTES;
        let entries = bytes
            .get(4..used)
            .ok_or(TransactionsDecodeError::Truncated)?;
        let mut transactions = Transactions::default();
        let mut previous = None;
        for entry in entries.chunks_exact(OPEN_ENTRY_BYTES) {
            let producer_id = i64::from_le_bytes(entry[..8].try_into().expect("8 bytes"));
            let epoch = i16::from_le_bytes(entry[8..10].try_into().expect("2 bytes"));
            let first_offset = Offset(u64::from_le_bytes(
                entry[16..24].try_into().expect("8 bytes"),
            ));
            let bad = |reason| TransactionsDecodeError::BadEntry {
                producer_id,
                reason,
            };
            if producer_id < 0 || epoch < 0 {
                return Err(bad("negative producer id or epoch"));
            }
            if first_offset >= offset || previous.is_some_and(|previous| previous > first_offset) {
                return Err(bad("first offset out of order or past the snapshot"));
            }
            previous = Some(first_offset);
            let open = Open {
                epoch,
                first_offset,
            };
            if transactions.open.insert(producer_id, open).is_some() {
                return Err(bad("producer listed twice"));
            }
            transactions.by_first.insert((first_offset, producer_id));
        }
        Ok((transactions, used))
    }
}

/// Bytes of one open transaction in a producer snapshot.
pub const OPEN_ENTRY_BYTES: usize = 24;

/// The first bytes of a segment's file of aborted transactions
/// (`<base>.aborted`). The format, little-endian:
///
/// ```text
///  0  magic    [u8; 4]  "SLAT"
///  4  crc      u32      CRC-32C of bytes [8, end)
///  8  version  u16      1
/// 10  reserved u16      zero
/// 12  count    u32
/// 16  aborts, by marker offset, each (ABORTED_ENTRY_BYTES):
///      0  producer_id         i64
///      8  first_offset        u64
///     16  last_offset         u64  the marker
///     24  last_stable_offset  u64
/// ```
pub const ABORTED_MAGIC: [u8; 4] = *b"SLAT";
const ABORTED_VERSION: u16 = 1;
const ABORTED_HEADER_BYTES: usize = 16;
/// Bytes of one aborted transaction in a segment's file.
pub const ABORTED_ENTRY_BYTES: usize = 32;

/// A segment's aborts as its file holds them (see [`ABORTED_MAGIC`]).
pub fn encode_aborted(aborted: &[AbortedTransaction]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ABORTED_HEADER_BYTES + aborted.len() * ABORTED_ENTRY_BYTES);
    out.extend_from_slice(&ABORTED_MAGIC);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&ABORTED_VERSION.to_le_bytes());
    out.extend_from_slice(&[0; 2]);
    let count = u32::try_from(aborted.len()).expect("a segment's aborts fit u32");
    out.extend_from_slice(&count.to_le_bytes());
    for aborted in aborted {
        out.extend_from_slice(&aborted.producer_id.to_le_bytes());
        for offset in [
            aborted.first_offset,
            aborted.last_offset,
            aborted.last_stable_offset,
        ] {
            out.extend_from_slice(&offset.0.to_le_bytes());
        }
    }
    let crc = crc32c::crc32c(&out[8..]);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Reads a segment's file of aborts: every field checked, the count
/// against the bytes there before anything is allocated.
pub fn decode_aborted(bytes: &[u8]) -> Result<Vec<AbortedTransaction>, TransactionsDecodeError> {
    if bytes.len() < ABORTED_HEADER_BYTES {
        return Err(TransactionsDecodeError::Truncated);
    }
    if bytes[..4] != ABORTED_MAGIC {
        return Err(TransactionsDecodeError::BadMagic);
    }
    let stored = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    let computed = crc32c::crc32c(&bytes[8..]);
    if stored != computed {
        return Err(TransactionsDecodeError::CrcMismatch { stored, computed });
    }
    let version = u16::from_le_bytes(bytes[8..10].try_into().expect("2 bytes"));
    if version != ABORTED_VERSION {
        return Err(TransactionsDecodeError::UnknownVersion { version });
    }
    let count = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes")) as usize;
    let entries = &bytes[ABORTED_HEADER_BYTES..];
    if entries.len() != count.saturating_mul(ABORTED_ENTRY_BYTES) {
        return Err(TransactionsDecodeError::Truncated);
    }
    let mut aborted: Vec<AbortedTransaction> = Vec::with_capacity(count);
    for entry in entries.chunks_exact(ABORTED_ENTRY_BYTES) {
        let offset_at = |at: usize| {
            Offset(u64::from_le_bytes(
                entry[at..at + 8].try_into().expect("8 bytes"),
            ))
        };
        let producer_id = i64::from_le_bytes(entry[..8].try_into().expect("8 bytes"));
        let (first_offset, last_offset, last_stable_offset) =
            (offset_at(8), offset_at(16), offset_at(24));
        let bad = |reason| TransactionsDecodeError::BadEntry {
            producer_id,
            reason,
        };
        if producer_id < 0 {
            return Err(bad("negative producer id"));
        }
        if first_offset >= last_offset || last_stable_offset > last_offset.next() {
            return Err(bad("offsets out of order"));
        }
        if aborted
            .last()
            .is_some_and(|previous| previous.last_offset >= last_offset)
        {
            return Err(bad("markers out of order"));
        }
        aborted.push(AbortedTransaction {
            producer_id,
            first_offset,
            last_offset,
            last_stable_offset,
        });
    }
    Ok(aborted)
}

/// Why stored transactions were not read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionsDecodeError {
    #[error("the bytes end inside the transactions")]
    Truncated,
    #[error("not a file of aborted transactions")]
    BadMagic,
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("unknown version {version}")]
    UnknownVersion { version: u16 },
    #[error("{count} open transactions, over the cap of {max}")]
    TooMany { count: usize, max: usize },
    #[error("producer {producer_id}: {reason}")]
    BadEntry {
        producer_id: i64,
        reason: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use rand::{rngs::StdRng, Rng, SeedableRng};

    use super::*;
    use crate::batch::{PayloadFormat, FLAGS_COMMIT, FLAGS_CONTROL, FLAGS_TRANSACTIONAL};

    fn header(producer_id: i64, epoch: i16, flags: u16) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_bytes: 0,
            leader_epoch: 0,
            crc: 0,
            payload_format: PayloadFormat::Kafka,
            flags,
            record_count: 1,
            last_offset_delta: 0,
            first_timestamp: 0,
            max_timestamp: 0,
            producer_id,
            producer_epoch: epoch,
            base_sequence: 0,
        }
    }

    fn data(producer_id: i64) -> BatchHeader {
        header(producer_id, 0, FLAGS_TRANSACTIONAL)
    }

    fn marker(producer_id: i64, marker: Marker) -> BatchHeader {
        let commit = if marker == Marker::Commit {
            FLAGS_COMMIT
        } else {
            0
        };
        header(producer_id, 0, FLAGS_TRANSACTIONAL | FLAGS_CONTROL | commit)
    }

    #[test]
    fn an_open_transaction_holds_the_last_stable_offset_until_its_marker() {
        let mut txns = Transactions::default();
        let hw = Offset(100);
        assert_eq!(txns.last_stable_offset(hw), hw);
        txns.record(&header(9, 0, 0), Offset(0), Offset(4));
        assert_eq!(
            txns.last_stable_offset(hw),
            hw,
            "a plain batch holds nothing"
        );
        txns.record(&data(1), Offset(5), Offset(9));
        txns.record(&data(2), Offset(10), Offset(14));
        txns.record(&data(1), Offset(15), Offset(19));
        assert_eq!(txns.last_stable_offset(hw), Offset(5));
        assert_eq!(txns.last_stable_offset(Offset(3)), Offset(3));
        assert_eq!(
            txns.open().collect::<Vec<_>>(),
            vec![(1, 0, Offset(5)), (2, 0, Offset(10))]
        );
        // Producer 2 aborts while 1 is open: the abort leaves the last
        // stable offset at 1's first offset.
        txns.record(&marker(2, Marker::Abort), Offset(20), Offset(20));
        assert_eq!(txns.last_stable_offset(hw), Offset(5));
        txns.record(&marker(1, Marker::Commit), Offset(21), Offset(21));
        assert_eq!(txns.last_stable_offset(hw), hw);
        let aborted = AbortedTransaction {
            producer_id: 2,
            first_offset: Offset(10),
            last_offset: Offset(20),
            last_stable_offset: Offset(5),
        };
        assert_eq!(txns.aborted(Offset(0), Offset(100)), vec![aborted]);
        assert_eq!(
            txns.aborted(Offset(0), Offset(10)),
            vec![],
            "before it opened"
        );
        assert_eq!(
            txns.aborted(Offset(21), Offset(100)),
            vec![],
            "after its marker"
        );
        assert_eq!(
            txns.aborted_in_segment(Offset(20), Offset(21)),
            vec![aborted]
        );
        txns.forget_below(Offset(21));
        assert_eq!(txns.aborted(Offset(0), Offset(100)), vec![]);
    }

    #[test]
    fn a_marker_older_than_the_producer_is_fenced_and_open_transactions_are_capped() {
        let mut txns = Transactions::default();
        txns.record(&header(1, 3, FLAGS_TRANSACTIONAL), Offset(0), Offset(0));
        let stale = header(1, 2, FLAGS_TRANSACTIONAL | FLAGS_CONTROL);
        let fenced = TransactionError::MarkerFenced {
            producer_id: 1,
            epoch: 2,
            current_epoch: 3,
        };
        assert_eq!(txns.check(&stale, None), Err(fenced));
        assert_eq!(
            txns.check(&header(1, 4, FLAGS_TRANSACTIONAL | FLAGS_CONTROL), Some(4)),
            Ok(())
        );
        assert!(txns.check(&header(7, 2, FLAGS_CONTROL), Some(5)).is_err());
        for producer_id in 2..OPEN_TRANSACTIONS_MAX as i64 + 1 {
            let at = Offset(producer_id as u64);
            assert_eq!(txns.check(&data(producer_id), None), Ok(()));
            txns.record(&data(producer_id), at, at);
        }
        let next = data(OPEN_TRANSACTIONS_MAX as i64 + 1);
        assert_eq!(txns.check(&next, None), Err(TransactionError::TooManyOpen));
        assert_eq!(txns.check(&data(1), None), Ok(()), "an open one goes on");
    }

    /// Random schedules of producers' batches, markers and undos against
    /// a model that keeps every transaction whole: the open ones, the last
    /// stable offset, and the aborted ones any fetch range sees.
    #[test]
    fn the_state_follows_a_model_of_whole_transactions() {
        for seed in 0..200 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut txns = Transactions::default();
            // Model: open (producer → first offset), aborted (pid, first,
            // marker), ended (first, marker), and the high watermark.
            let mut open: BTreeMap<i64, Offset> = BTreeMap::new();
            let mut aborted: Vec<(i64, Offset, Offset)> = Vec::new();
            let mut ended: Vec<(Offset, Offset)> = Vec::new();
            let mut replicated = 0_u64;
            let mut end = 0_u64;
            for _ in 0..200 {
                let producer_id = rng.random_range(0..5_i64);
                let len = rng.random_range(1..4_u64);
                let (base, last) = (Offset(end), Offset(end + len - 1));
                let header = match rng.random_range(0..10) {
                    0..=4 => data(producer_id),
                    5 | 6 => marker(producer_id, Marker::Abort),
                    7 | 8 => marker(producer_id, Marker::Commit),
                    _ => header(producer_id, 0, 0),
                };
                let (base, last) = match header.marker() {
                    Some(_) => (base, base),
                    None => (base, last),
                };
                let before = txns.clone();
                let undo = txns.record(&header, base, last);
                if rng.random_bool(0.1) {
                    if let Some(undo) = &undo {
                        txns.undo(undo);
                    }
                    assert_eq!(txns, before, "seed {seed}: undo restores");
                    continue;
                }
                end = last.0 + 1;
                match header.marker() {
                    Some(marker) => {
                        if let Some(first) = open.remove(&producer_id) {
                            ended.push((first, last));
                            if marker == Marker::Abort {
                                aborted.push((producer_id, first, last));
                            }
                        }
                    }
                    None if header.is_transactional() => {
                        open.entry(producer_id).or_insert(base);
                    }
                    None => {}
                }
                let oldest = open.values().min().copied();
                assert_eq!(txns.first_unstable(), oldest, "seed {seed}");
                // An ended transaction holds the last stable offset until
                // the high watermark passes its marker.
                if rng.random_bool(0.2) {
                    replicated = rng.random_range(replicated..=end);
                    txns.replicated_to(Offset(replicated));
                }
                let high_watermark = Offset(rng.random_range(replicated..=end));
                let completing = ended
                    .iter()
                    .filter(|(_, marker)| *marker >= high_watermark)
                    .map(|(first, _)| *first);
                let stable = oldest
                    .into_iter()
                    .chain(completing)
                    .fold(high_watermark, Offset::min);
                assert_eq!(
                    txns.last_stable_offset(high_watermark),
                    stable,
                    "seed {seed}: last stable offset under {high_watermark}"
                );
                let mut listed: Vec<_> = txns.open().map(|(id, _, first)| (id, first)).collect();
                listed.sort();
                assert_eq!(
                    listed,
                    open.iter()
                        .map(|(&id, &first)| (id, first))
                        .collect::<Vec<_>>()
                );
                for _ in 0..5 {
                    let from = rng.random_range(0..=end);
                    let to = rng.random_range(from..=end + 1);
                    let expected: Vec<_> = aborted
                        .iter()
                        .filter(|(_, first, marker)| marker.0 >= from && first.0 < to)
                        .copied()
                        .collect();
                    let got: Vec<_> = txns
                        .aborted(Offset(from), Offset(to))
                        .iter()
                        .map(|aborted| {
                            (
                                aborted.producer_id,
                                aborted.first_offset,
                                aborted.last_offset,
                            )
                        })
                        .collect();
                    assert_eq!(got, expected, "seed {seed}: aborted in [{from}, {to})");
                }
            }
            // Stored and read back: the same open transactions and aborts
            // (the completing ones are not stored: all replicated here).
            txns.replicated_to(Offset(end));
            let mut bytes = Vec::new();
            txns.encode_open(&mut bytes);
            let (mut read, used) = Transactions::decode_open(&bytes, Offset(end)).unwrap();
            assert_eq!(used, bytes.len());
            let all = txns.aborted_in_segment(Offset(0), Offset(end));
            read.restore_aborted(&decode_aborted(&encode_aborted(&all)).unwrap());
            assert_eq!(read, txns, "seed {seed}: read back");
        }
    }

    #[test]
    fn damaged_stored_transactions_are_refused_without_a_panic() {
        let mut txns = Transactions::default();
        for (producer_id, at) in [(1, 0), (2, 3), (3, 6)] {
            txns.record(&data(producer_id), Offset(at), Offset(at + 1));
        }
        txns.record(&marker(2, Marker::Abort), Offset(8), Offset(8));
        txns.record(&marker(3, Marker::Abort), Offset(9), Offset(9));
        let mut open = Vec::new();
        txns.encode_open(&mut open);
        let aborted = encode_aborted(&txns.aborted_in_segment(Offset(0), Offset(10)));
        for cut in 0..open.len() {
            assert!(
                Transactions::decode_open(&open[..cut], Offset(10)).is_err(),
                "cut {cut}"
            );
        }
        for cut in 0..aborted.len() {
            assert!(decode_aborted(&aborted[..cut]).is_err(), "cut {cut}");
        }
        for at in 0..aborted.len() {
            let mut flipped = aborted.clone();
            flipped[at] ^= 0x10;
            assert!(decode_aborted(&flipped).is_err(), "flipped byte {at}");
        }
        // A huge count claims nothing it does not hold.
        let mut huge = open.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            Transactions::decode_open(&huge, Offset(10)),
            Err(TransactionsDecodeError::TooMany { .. })
        ));
        assert!(
            Transactions::decode_open(&open, Offset(0)).is_err(),
            "past the snapshot"
        );
    }
}
