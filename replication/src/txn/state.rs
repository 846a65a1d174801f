//! One transactional id's metadata and the rules of its transitions.
//!
//! Every transition is a pure function from the current (durable)
//! metadata to the metadata to write, or the error to answer: nothing
//! here changes state. The coordinator writes the result to the log and
//! applies it once durable (see [`super::coordinator`]).
//!
//! ```text
//!            init                add partitions / offsets
//!   Empty ──────────▶ Empty ─────────────────────────▶ Ongoing ──┐ add
//!     ▲                                                   │  ◀───┘
//!     │ init      end(commit) / end(abort) / timeout / init (fence)
//!     │                                                   ▼
//!   CompleteCommit / CompleteAbort ◀── all markers ── PrepareCommit / PrepareAbort
//! ```
//!
//! Epochs: a new id starts at epoch 0, every InitProducerId bumps the
//! epoch (so the previous holder's epoch is refused from then on), a
//! coordinator's abort of an ongoing transaction (timeout, or an
//! InitProducerId while it runs) bumps it too, and with transaction
//! version 2 (KIP-890) every EndTxn does. An epoch at
//! [`PRODUCER_EPOCH_EXHAUSTED`] or above is exhausted: the next
//! InitProducerId (or, version 2, EndTxn) moves to a new producer id at
//! epoch 0 and remembers the old one as the previous producer id, so that
//! a retry of that very request is recognised. `i16::MAX` itself is never
//! handed to a client: it is kept so that the coordinator can always fence.

use std::collections::BTreeSet;

use super::error::TxnError;

/// A producer id (Kafka's `int64`); [`NO_PRODUCER_ID`] for none.
pub type ProducerId = i64;
/// A producer epoch (Kafka's `int16`); [`NO_PRODUCER_EPOCH`] for none.
pub type ProducerEpoch = i16;

/// Kafka's "no producer id".
pub const NO_PRODUCER_ID: ProducerId = -1;
/// Kafka's "no producer epoch".
pub const NO_PRODUCER_EPOCH: ProducerEpoch = -1;
/// An epoch at or above this is exhausted: bumping it past would reach
/// `i16::MAX`, the one epoch kept for the coordinator's fence.
pub const PRODUCER_EPOCH_EXHAUSTED: ProducerEpoch = i16::MAX - 1;
/// Transaction version 2 (KIP-890 part 2): the epoch is bumped at every
/// EndTxn, so that the markers of each transaction carry an epoch of their
/// own. Versions below it are the classic protocol.
pub const TRANSACTION_VERSION_EPOCH_BUMP: i16 = 2;
/// Where AddOffsetsToTxn's partition lives: the group's partition of the
/// offsets topic, computed by the caller.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// A partition of a topic, by name (as the transaction log names it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

/// A producer as a request names it: its id and epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Producer {
    pub id: ProducerId,
    pub epoch: ProducerEpoch,
}

impl Producer {
    pub fn new(id: ProducerId, epoch: ProducerEpoch) -> Producer {
        Producer { id, epoch }
    }
}

/// How a transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Commit,
    Abort,
}

impl Outcome {
    pub fn is_commit(self) -> bool {
        self == Outcome::Commit
    }
}

/// A transactional id's state, with Kafka's ids (the log's
/// `TransactionStatus`) and names (DescribeTransactions' and
/// ListTransactions' strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxnState {
    /// No transaction since the last InitProducerId.
    Empty,
    /// Partitions have been added; the producer writes.
    Ongoing,
    /// Commit decided and durable; markers being written.
    PrepareCommit,
    /// Abort decided and durable; markers being written.
    PrepareAbort,
    /// Every partition has its commit marker.
    CompleteCommit,
    /// Every partition has its abort marker.
    CompleteAbort,
    /// Expired; its tombstone is being written. Never in a live record.
    Dead,
    /// Kafka's in-memory state of an ongoing transaction being aborted to
    /// fence its producer. Here the fence is written directly as a
    /// PrepareAbort with the bumped epoch, so no metadata is ever in this
    /// state; it exists for the name and the log id, which are refused on
    /// load.
    PrepareEpochFence,
}

impl TxnState {
    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    /// The name Kafka's admin APIs use.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// The state a ListTransactions filter names, if any.
    pub fn from_name(name: &str) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|state| state.name() == name)
    }

    /// The id in the log's `TransactionStatus` field.
    pub fn id(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    pub fn from_id(id: i8) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|state| state.id() == id)
    }

    /// The outcome decided, in PrepareCommit or PrepareAbort.
    pub fn preparing(self) -> Option<Outcome> {
        match self {
            TxnState::PrepareCommit => Some(Outcome::Commit),
            TxnState::PrepareAbort => Some(Outcome::Abort),
            _ => None,
        }
    }

    /// True where no transaction is open or ending: a new one may begin and
    /// the id may expire.
    pub fn is_idle(self) -> bool {
        matches!(
            self,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        )
    }

    fn prepare(outcome: Outcome) -> TxnState {
        match outcome {
            Outcome::Commit => TxnState::PrepareCommit,
            Outcome::Abort => TxnState::PrepareAbort,
        }
    }
}

/// One transactional id's metadata: what a record of `__transaction_state`
/// holds, and all the coordinator knows of the id once the record is
/// durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub producer_id: ProducerId,
    /// The producer id before the last move to a new one on epoch
    /// exhaustion ([`NO_PRODUCER_ID`] if none): a retry of the request that
    /// moved is recognised by it.
    pub previous_producer_id: ProducerId,
    /// With transaction version 2, the producer id the transaction being
    /// ended moves to once complete (its epoch was exhausted);
    /// [`NO_PRODUCER_ID`] otherwise.
    pub next_producer_id: ProducerId,
    pub producer_epoch: ProducerEpoch,
    /// The epoch before the last bump, when a client asked for it with its
    /// current epoch (KIP-360): a retry of that InitProducerId gets the
    /// same answer rather than a second bump. [`NO_PRODUCER_EPOCH`] once a
    /// new producer or the coordinator bumped it.
    pub last_producer_epoch: ProducerEpoch,
    pub timeout_ms: u32,
    pub state: TxnState,
    /// The partitions in the transaction (the group's offsets partition
    /// among them after AddOffsetsToTxn); empty once complete.
    pub partitions: BTreeSet<TopicPartition>,
    /// When the first partition was added; `None` with no transaction.
    pub start_ms: Option<u64>,
    pub last_update_ms: u64,
    /// The client's transaction version at its last EndTxn (0: classic,
    /// 2: the epoch is bumped at every EndTxn).
    pub transaction_version: i16,
}

/// KIP-890 part 1's answer: each partition asked about, and whether it
/// is in the ongoing transaction (`InvalidTxnState` if not).
pub type Verified = Vec<(TopicPartition, Result<(), TxnError>)>;

/// What InitProducerId does to an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitStep {
    /// Write this (Empty, new epoch or new producer id), then answer with
    /// its producer id and epoch.
    Ready(TxnMetadata),
    /// A transaction is ongoing: write this (its abort, at a bumped epoch,
    /// which fences the producer running it), then answer
    /// `CONCURRENT_TRANSACTIONS` so the client retries once it completes.
    Fence(TxnMetadata),
}

/// What EndTxn does to an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndStep {
    /// Write this (PrepareCommit or PrepareAbort), answer once durable,
    /// then write the markers.
    Prepare(TxnMetadata),
    /// Nothing to write: a retry of an end already complete, or (classic
    /// protocol) an abort with no transaction. Answer success now.
    Done,
}

impl TxnMetadata {
    /// A new id under `producer_id`, before its first epoch (Kafka creates
    /// it at epoch -1 and bumps it to 0 in the same InitProducerId).
    pub fn fresh(producer_id: ProducerId, timeout_ms: u32, now_ms: u64) -> TxnMetadata {
        TxnMetadata {
            producer_id,
            previous_producer_id: NO_PRODUCER_ID,
            next_producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: None,
            last_update_ms: now_ms,
            transaction_version: 0,
        }
    }

    /// The producer id and epoch a client holds in this state.
    pub fn producer(&self) -> Producer {
        Producer::new(self.producer_id, self.producer_epoch)
    }

    /// The id and epoch the client is given once the end being written
    /// completes: the next producer id at epoch 0 when the epoch was
    /// exhausted, else the current ones.
    pub fn producer_after_end(&self) -> Producer {
        if self.next_producer_id != NO_PRODUCER_ID {
            Producer::new(self.next_producer_id, 0)
        } else {
            self.producer()
        }
    }

    /// True when the group's offsets partition `group_partition` is in
    /// the transaction (AddOffsetsToTxn was answered).
    pub fn has_offsets_of(&self, group_partition: i32) -> bool {
        self.partitions
            .contains(&TopicPartition::new(OFFSETS_TOPIC, group_partition))
    }

    /// True when an ongoing transaction has run past its timeout at
    /// `now_ms` (Kafka: start + timeout < now).
    pub fn has_timed_out(&self, now_ms: u64) -> bool {
        self.state == TxnState::Ongoing
            && self
                .start_ms
                .is_some_and(|start| start.saturating_add(u64::from(self.timeout_ms)) < now_ms)
    }

    fn epoch_exhausted(&self) -> bool {
        self.producer_epoch >= PRODUCER_EPOCH_EXHAUSTED
    }

    /// InitProducerId with timeout `timeout_ms` and, from a client
    /// recovering (KIP-360), the producer it held. `new_producer_id` is
    /// called only when the epoch is exhausted.
    ///
    /// Errors: `ProducerFenced` when `expected` is neither this id's
    /// producer nor a retry of the request that moved it off its previous
    /// one, or its epoch is neither the current nor the one before the
    /// last bump; `ConcurrentTransactions` while an end is being written.
    pub fn init(
        &self,
        timeout_ms: u32,
        expected: Option<Producer>,
        now_ms: u64,
        new_producer_id: impl FnOnce() -> ProducerId,
    ) -> Result<InitStep, TxnError> {
        if let Some(expected) = expected {
            let known = self.producer_epoch == NO_PRODUCER_EPOCH
                || expected.id == self.producer_id
                || (expected.id == self.previous_producer_id
                    && expected.epoch >= PRODUCER_EPOCH_EXHAUSTED);
            if !known {
                return Err(TxnError::ProducerFenced);
            }
        }
        match self.state {
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {}
            TxnState::Ongoing => return Ok(InitStep::Fence(self.fence(now_ms))),
            TxnState::PrepareCommit
            | TxnState::PrepareAbort
            | TxnState::Dead
            | TxnState::PrepareEpochFence => return Err(TxnError::ConcurrentTransactions),
        }
        let mut next = TxnMetadata {
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: None,
            last_update_ms: now_ms,
            next_producer_id: NO_PRODUCER_ID,
            ..self.clone()
        };
        let expected_epoch = expected.map(|producer| producer.epoch);
        if self.epoch_exhausted() && expected_epoch.is_none_or(|e| e == self.producer_epoch) {
            next.previous_producer_id = self.producer_id;
            next.producer_id = new_producer_id();
            next.producer_epoch = 0;
            next.last_producer_epoch = match expected {
                Some(_) => self.producer_epoch,
                None => NO_PRODUCER_EPOCH,
            };
            return Ok(InitStep::Ready(next));
        }
        // An exhausted epoch moved to a new producer id above; one that
        // reaches here is never bumped into the fence's epoch.
        let bumped = || {
            if self.epoch_exhausted() {
                Err(TxnError::ProducerFenced)
            } else {
                Ok(self.producer_epoch + 1)
            }
        };
        let (epoch, last) = match expected_epoch {
            None => (bumped()?, NO_PRODUCER_EPOCH),
            Some(e) if self.producer_epoch == NO_PRODUCER_EPOCH || e == self.producer_epoch => {
                (bumped()?, self.producer_epoch)
            }
            // A retry of a bump that succeeded: the same answer again.
            Some(e) if e == self.last_producer_epoch && e != NO_PRODUCER_EPOCH => {
                (self.producer_epoch, self.last_producer_epoch)
            }
            Some(_) => return Err(TxnError::ProducerFenced),
        };
        next.producer_epoch = epoch;
        next.last_producer_epoch = last;
        Ok(InitStep::Ready(next))
    }

    /// The coordinator's abort of an ongoing transaction at a bumped epoch
    /// (timeout, InitProducerId, admin): the producer running it is fenced,
    /// and the markers carry the new epoch. The epoch stays at `i16::MAX`
    /// if already there (never handed to a client, so nothing to fence).
    pub fn fence(&self, now_ms: u64) -> TxnMetadata {
        TxnMetadata {
            producer_epoch: self.producer_epoch.saturating_add(1),
            last_producer_epoch: NO_PRODUCER_EPOCH,
            state: TxnState::PrepareAbort,
            last_update_ms: now_ms,
            ..self.clone()
        }
    }

    /// Checks a request's producer against the current one, with Kafka's
    /// errors; a producer that already holds the next id of an end being
    /// written is told to retry.
    fn check_producer(&self, producer: Producer) -> Result<(), TxnError> {
        if self.state.preparing().is_some()
            && (producer == self.producer_after_end() || producer == self.producer())
        {
            return Err(TxnError::ConcurrentTransactions);
        }
        if producer.id != self.producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if producer.epoch != self.producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        Ok(())
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, with the group's offsets
    /// partition): `None` when every partition is already in the ongoing
    /// transaction (answer success, write nothing).
    pub fn add_partitions(
        &self,
        producer: Producer,
        partitions: &[TopicPartition],
        now_ms: u64,
    ) -> Result<Option<TxnMetadata>, TxnError> {
        self.check_producer(producer)?;
        match self.state {
            TxnState::Empty | TxnState::Ongoing => {}
            TxnState::CompleteCommit | TxnState::CompleteAbort => {}
            TxnState::PrepareCommit
            | TxnState::PrepareAbort
            | TxnState::Dead
            | TxnState::PrepareEpochFence => return Err(TxnError::ConcurrentTransactions),
        }
        if self.state == TxnState::Ongoing
            && partitions.iter().all(|tp| self.partitions.contains(tp))
        {
            return Ok(None);
        }
        let mut all = self.partitions.clone();
        all.extend(partitions.iter().cloned());
        if all.len() > super::PARTITIONS_PER_TXN_MAX {
            return Err(TxnError::TooManyPartitions {
                partitions: all.len(),
                max: super::PARTITIONS_PER_TXN_MAX,
            });
        }
        let start_ms = match self.state {
            TxnState::Ongoing => self.start_ms.or(Some(now_ms)),
            _ => Some(now_ms),
        };
        Ok(Some(TxnMetadata {
            state: TxnState::Ongoing,
            partitions: all,
            start_ms,
            last_update_ms: now_ms,
            ..self.clone()
        }))
    }

    /// KIP-890 part 1: a partition leader asks whether `producer`'s
    /// transaction is ongoing and holds each of `partitions`. The answer
    /// is per partition: `Ok` if it is in the transaction, else
    /// `InvalidTxnState`; a producer that is not the current one gets its
    /// error for the whole request.
    pub fn verify(
        &self,
        producer: Producer,
        partitions: &[TopicPartition],
    ) -> Result<Verified, TxnError> {
        self.check_producer(producer)?;
        Ok(partitions
            .iter()
            .map(|tp| {
                let held = self.state == TxnState::Ongoing && self.partitions.contains(tp);
                let result = if held {
                    Ok(())
                } else {
                    Err(TxnError::InvalidTxnState)
                };
                (tp.clone(), result)
            })
            .collect())
    }

    /// EndTxn from `producer` with `outcome`, by a client of
    /// `transaction_version`. `new_producer_id` is called only when a
    /// version 2 end exhausts the epoch.
    ///
    /// Classic protocol: the epoch must be the current one (else
    /// `ProducerFenced`, which is what a producer whose transaction timed
    /// out gets); a retry of an end being written is
    /// `ConcurrentTransactions`, of one complete is success, and an end of
    /// the other outcome is `InvalidTxnState`. An abort with no
    /// transaction is a success that writes nothing.
    ///
    /// Version 2 (KIP-890 part 2, Kafka's table): every end bumps the
    /// epoch; a retry carries the epoch before the bump (or the last epoch
    /// of the previous producer id) and gets success if it matches the
    /// completed outcome (only a version 2 end's own retry is taken for
    /// one: a zombie one epoch behind is fenced); an abort with no transaction (Empty, or right
    /// after a complete one) writes an empty abort to bump the epoch.
    pub fn end(
        &self,
        producer: Producer,
        outcome: Outcome,
        transaction_version: i16,
        now_ms: u64,
        new_producer_id: impl FnOnce() -> ProducerId,
    ) -> Result<EndStep, TxnError> {
        if transaction_version < TRANSACTION_VERSION_EPOCH_BUMP {
            return self.end_classic(producer, outcome, transaction_version, now_ms);
        }
        if self.state.preparing().is_some() && producer == self.producer_after_end() {
            return Err(TxnError::ConcurrentTransactions);
        }
        // A retry is recognised only when the end being retried was a
        // version 2 end from that very epoch: an epoch one below the
        // current is also what a zombie holds once its successor's init
        // (or a classic end) left the epoch one up, and it must not be
        // told that a transaction it did not end committed.
        let ended_by_bump = self.transaction_version >= TRANSACTION_VERSION_EPOCH_BUMP;
        let retry_on_overflow = ended_by_bump
            && producer.id == self.previous_producer_id
            && producer.id != self.producer_id
            && producer.epoch == PRODUCER_EPOCH_EXHAUSTED
            && self.producer_epoch == 0
            && self.state.preparing().is_none();
        let retry_on_bump = ended_by_bump
            && producer.id == self.producer_id
            && producer.epoch == self.last_producer_epoch
            && i32::from(self.producer_epoch) == i32::from(producer.epoch) + 1;
        if producer.id != self.producer_id && !retry_on_overflow {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        let current = producer.epoch == self.producer_epoch && producer.id == self.producer_id;
        let valid = match self.state {
            TxnState::Ongoing | TxnState::Empty | TxnState::Dead | TxnState::PrepareEpochFence => {
                current
            }
            TxnState::PrepareCommit | TxnState::PrepareAbort => retry_on_bump,
            TxnState::CompleteCommit | TxnState::CompleteAbort => {
                retry_on_bump || retry_on_overflow || current
            }
        };
        if !valid {
            return Err(TxnError::ProducerFenced);
        }
        let retry = retry_on_bump || retry_on_overflow;
        let prepare = |outcome: Outcome, partitions_added: bool| {
            if self.producer_epoch == i16::MAX {
                // Only a fence reaches i16::MAX, and it leaves no epoch a
                // client holds to bump from.
                return Err(TxnError::ProducerFenced);
            }
            let next_producer_id = if self.epoch_exhausted() {
                new_producer_id()
            } else {
                NO_PRODUCER_ID
            };
            Ok(EndStep::Prepare(TxnMetadata {
                next_producer_id,
                producer_epoch: self.producer_epoch + 1,
                last_producer_epoch: self.producer_epoch,
                state: TxnState::prepare(outcome),
                start_ms: if partitions_added {
                    self.start_ms
                } else {
                    Some(now_ms)
                },
                last_update_ms: now_ms,
                transaction_version,
                ..self.clone()
            }))
        };
        match (self.state, outcome) {
            (TxnState::Ongoing, _) => prepare(outcome, true),
            (TxnState::CompleteCommit, Outcome::Commit)
            | (TxnState::CompleteAbort, Outcome::Abort)
                if retry =>
            {
                Ok(EndStep::Done)
            }
            (TxnState::CompleteCommit, Outcome::Abort)
            | (TxnState::CompleteAbort, Outcome::Abort)
            | (TxnState::Empty, Outcome::Abort)
                if !retry =>
            {
                prepare(Outcome::Abort, false)
            }
            (TxnState::PrepareCommit, Outcome::Commit)
            | (TxnState::PrepareAbort, Outcome::Abort) => Err(TxnError::ConcurrentTransactions),
            (TxnState::Dead, _) | (TxnState::PrepareEpochFence, _) => {
                Err(TxnError::ConcurrentTransactions)
            }
            _ => Err(TxnError::InvalidTxnState),
        }
    }

    fn end_classic(
        &self,
        producer: Producer,
        outcome: Outcome,
        transaction_version: i16,
        now_ms: u64,
    ) -> Result<EndStep, TxnError> {
        if producer.id != self.producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if producer.epoch != self.producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        match (self.state, outcome) {
            (TxnState::Ongoing, _) => Ok(EndStep::Prepare(TxnMetadata {
                state: TxnState::prepare(outcome),
                last_update_ms: now_ms,
                transaction_version,
                ..self.clone()
            })),
            (TxnState::CompleteCommit, Outcome::Commit)
            | (TxnState::CompleteAbort, Outcome::Abort)
            | (TxnState::Empty, Outcome::Abort) => Ok(EndStep::Done),
            (TxnState::PrepareCommit, Outcome::Commit)
            | (TxnState::PrepareAbort, Outcome::Abort)
            | (TxnState::Dead, _)
            | (TxnState::PrepareEpochFence, _) => Err(TxnError::ConcurrentTransactions),
            _ => Err(TxnError::InvalidTxnState),
        }
    }

    /// Every marker of the transaction being ended is written: its
    /// complete state, with no partitions, under the next producer id if
    /// the end moved to one. `None` outside PrepareCommit/PrepareAbort.
    pub fn complete(&self, now_ms: u64) -> Option<TxnMetadata> {
        let state = match self.state.preparing()? {
            Outcome::Commit => TxnState::CompleteCommit,
            Outcome::Abort => TxnState::CompleteAbort,
        };
        let mut done = TxnMetadata {
            state,
            partitions: BTreeSet::new(),
            last_update_ms: now_ms,
            next_producer_id: NO_PRODUCER_ID,
            ..self.clone()
        };
        if self.next_producer_id != NO_PRODUCER_ID {
            done.previous_producer_id = self.producer_id;
            done.producer_id = self.next_producer_id;
            done.producer_epoch = 0;
            done.last_producer_epoch = NO_PRODUCER_EPOCH;
        }
        Some(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PID: ProducerId = 1000;
    const NOW: u64 = 10_000;

    fn no_id() -> ProducerId {
        panic!("no new producer id expected")
    }

    fn ready(step: Result<InitStep, TxnError>) -> TxnMetadata {
        match step {
            Ok(InitStep::Ready(next)) => next,
            other => panic!("expected Ready, got {other:?}"),
        }
    }

    fn prepared(step: Result<EndStep, TxnError>) -> TxnMetadata {
        match step {
            Ok(EndStep::Prepare(next)) => next,
            other => panic!("expected Prepare, got {other:?}"),
        }
    }

    fn at_epoch(epoch: ProducerEpoch, state: TxnState) -> TxnMetadata {
        let mut meta = TxnMetadata::fresh(PID, 60_000, NOW);
        meta.producer_epoch = epoch;
        meta.state = state;
        if state == TxnState::Ongoing || state.preparing().is_some() {
            meta.partitions.insert(TopicPartition::new("t", 0));
            meta.start_ms = Some(NOW);
        }
        meta
    }

    #[test]
    fn a_new_id_starts_at_epoch_zero_and_each_init_bumps_it() {
        let fresh = TxnMetadata::fresh(PID, 60_000, NOW);
        let first = ready(fresh.init(60_000, None, NOW, no_id));
        assert_eq!(first.producer(), Producer::new(PID, 0));
        assert_eq!(first.state, TxnState::Empty);
        let second = ready(first.init(30_000, None, NOW + 1, no_id));
        assert_eq!(second.producer(), Producer::new(PID, 1));
        assert_eq!(second.timeout_ms, 30_000);
        assert_eq!(second.last_producer_epoch, NO_PRODUCER_EPOCH);
    }

    #[test]
    fn kip_360_expected_producer_is_checked_and_a_retry_gets_the_same_epoch() {
        let meta = at_epoch(4, TxnState::CompleteAbort);
        let bumped = ready(meta.init(60_000, Some(Producer::new(PID, 4)), NOW, no_id));
        assert_eq!(bumped.producer(), Producer::new(PID, 5));
        assert_eq!(bumped.last_producer_epoch, 4);
        // The same request again: not bumped twice.
        let again = ready(bumped.init(60_000, Some(Producer::new(PID, 4)), NOW, no_id));
        assert_eq!(again.producer(), Producer::new(PID, 5));
        // An epoch that is neither current nor the last: fenced.
        assert_eq!(
            bumped.init(60_000, Some(Producer::new(PID, 2)), NOW, no_id),
            Err(TxnError::ProducerFenced)
        );
        // Another producer id altogether: fenced.
        assert_eq!(
            bumped.init(60_000, Some(Producer::new(7, 5)), NOW, no_id),
            Err(TxnError::ProducerFenced)
        );
        // A new producer (no expected) after a KIP-360 bump: the old epoch
        // is forgotten, and the old producer's retry is fenced.
        let taken = ready(bumped.init(60_000, None, NOW, no_id));
        assert_eq!(taken.producer(), Producer::new(PID, 6));
        assert_eq!(
            taken.init(60_000, Some(Producer::new(PID, 4)), NOW, no_id),
            Err(TxnError::ProducerFenced)
        );
    }

    #[test]
    fn init_during_a_transaction_fences_it_with_an_abort_at_a_bumped_epoch() {
        let meta = at_epoch(3, TxnState::Ongoing);
        let Ok(InitStep::Fence(fence)) = meta.init(60_000, None, NOW, no_id) else {
            panic!("expected a fence");
        };
        assert_eq!(fence.state, TxnState::PrepareAbort);
        assert_eq!(fence.producer_epoch, 4);
        assert_eq!(fence.partitions, meta.partitions);
        for state in [TxnState::PrepareCommit, TxnState::PrepareAbort] {
            assert_eq!(
                at_epoch(3, state).init(60_000, None, NOW, no_id),
                Err(TxnError::ConcurrentTransactions)
            );
        }
    }

    #[test]
    fn an_exhausted_epoch_moves_to_a_new_producer_id_and_a_retry_is_recognised() {
        let meta = at_epoch(PRODUCER_EPOCH_EXHAUSTED, TxnState::CompleteCommit);
        let expected = Producer::new(PID, PRODUCER_EPOCH_EXHAUSTED);
        let moved = ready(meta.init(60_000, Some(expected), NOW, || 2000));
        assert_eq!(moved.producer(), Producer::new(2000, 0));
        assert_eq!(moved.previous_producer_id, PID);
        let again = ready(moved.init(60_000, Some(expected), NOW, no_id));
        assert_eq!(again.producer(), Producer::new(2000, 0));
        // With no expected producer, the move also happens.
        let moved = ready(meta.init(60_000, None, NOW, || 3000));
        assert_eq!(moved.producer(), Producer::new(3000, 0));
        // A fence of an ongoing transaction at the last epoch reaches
        // i16::MAX, and the retry then moves.
        let fence = at_epoch(PRODUCER_EPOCH_EXHAUSTED, TxnState::Ongoing).fence(NOW);
        assert_eq!(fence.producer_epoch, i16::MAX);
        let done = fence.complete(NOW).unwrap();
        let moved = ready(done.init(60_000, None, NOW, || 4000));
        assert_eq!(moved.producer(), Producer::new(4000, 0));
    }

    #[test]
    fn adding_partitions_opens_the_transaction_and_checks_the_producer() {
        let meta = at_epoch(2, TxnState::Empty);
        let tp = |p| TopicPartition::new("orders", p);
        let me = Producer::new(PID, 2);
        let ongoing = meta
            .add_partitions(me, &[tp(0), tp(1)], NOW + 5)
            .unwrap()
            .unwrap();
        assert_eq!(ongoing.state, TxnState::Ongoing);
        assert_eq!(ongoing.start_ms, Some(NOW + 5));
        assert_eq!(ongoing.add_partitions(me, &[tp(1)], NOW + 6), Ok(None));
        let more = ongoing
            .add_partitions(me, &[tp(2)], NOW + 7)
            .unwrap()
            .unwrap();
        assert_eq!(more.start_ms, Some(NOW + 5), "the start does not move");
        assert_eq!(more.partitions.len(), 3);
        assert_eq!(
            ongoing.add_partitions(Producer::new(PID, 1), &[tp(3)], NOW),
            Err(TxnError::ProducerFenced)
        );
        assert_eq!(
            ongoing.add_partitions(Producer::new(9, 2), &[tp(3)], NOW),
            Err(TxnError::InvalidProducerIdMapping)
        );
        let preparing = prepared(ongoing.end(me, Outcome::Commit, 0, NOW, no_id));
        assert_eq!(
            preparing.add_partitions(me, &[tp(3)], NOW),
            Err(TxnError::ConcurrentTransactions)
        );
        let with_offsets = ongoing
            .add_partitions(me, &[TopicPartition::new(OFFSETS_TOPIC, 7)], NOW)
            .unwrap()
            .unwrap();
        assert!(with_offsets.has_offsets_of(7));
        assert!(!with_offsets.has_offsets_of(8));
    }

    #[test]
    fn too_many_partitions_are_refused() {
        let meta = at_epoch(0, TxnState::Empty);
        let many: Vec<_> = (0..=super::super::PARTITIONS_PER_TXN_MAX as i32)
            .map(|p| TopicPartition::new("t", p))
            .collect();
        assert!(matches!(
            meta.add_partitions(Producer::new(PID, 0), &many, NOW),
            Err(TxnError::TooManyPartitions { .. })
        ));
    }

    #[test]
    fn verify_answers_per_partition_from_the_durable_transaction() {
        let meta = at_epoch(1, TxnState::Ongoing);
        let me = Producer::new(PID, 1);
        let answer = meta
            .verify(
                me,
                &[TopicPartition::new("t", 0), TopicPartition::new("t", 9)],
            )
            .unwrap();
        assert_eq!(answer[0].1, Ok(()));
        assert_eq!(answer[1].1, Err(TxnError::InvalidTxnState));
        assert_eq!(
            meta.verify(Producer::new(PID, 0), &[]),
            Err(TxnError::ProducerFenced)
        );
        let empty = at_epoch(1, TxnState::Empty);
        assert_eq!(
            empty.verify(me, &[TopicPartition::new("t", 0)]).unwrap()[0].1,
            Err(TxnError::InvalidTxnState)
        );
    }

    #[test]
    fn classic_end_transitions_and_retries() {
        let me = Producer::new(PID, 3);
        let ongoing = at_epoch(3, TxnState::Ongoing);
        let commit = prepared(ongoing.end(me, Outcome::Commit, 0, NOW, no_id));
        assert_eq!(commit.state, TxnState::PrepareCommit);
        assert_eq!(commit.producer(), me, "no bump in the classic protocol");
        assert_eq!(
            commit.end(me, Outcome::Commit, 0, NOW, no_id),
            Err(TxnError::ConcurrentTransactions)
        );
        assert_eq!(
            commit.end(me, Outcome::Abort, 0, NOW, no_id),
            Err(TxnError::InvalidTxnState)
        );
        let done = commit.complete(NOW).unwrap();
        assert_eq!(done.state, TxnState::CompleteCommit);
        assert!(done.partitions.is_empty());
        assert_eq!(
            done.end(me, Outcome::Commit, 0, NOW, no_id),
            Ok(EndStep::Done)
        );
        assert_eq!(
            done.end(me, Outcome::Abort, 0, NOW, no_id),
            Err(TxnError::InvalidTxnState)
        );
        let empty = at_epoch(3, TxnState::Empty);
        assert_eq!(
            empty.end(me, Outcome::Abort, 0, NOW, no_id),
            Ok(EndStep::Done)
        );
        assert_eq!(
            empty.end(me, Outcome::Commit, 0, NOW, no_id),
            Err(TxnError::InvalidTxnState)
        );
        assert_eq!(
            ongoing.end(Producer::new(PID, 2), Outcome::Commit, 0, NOW, no_id),
            Err(TxnError::ProducerFenced)
        );
        assert_eq!(
            ongoing.end(Producer::new(5, 3), Outcome::Commit, 0, NOW, no_id),
            Err(TxnError::InvalidProducerIdMapping)
        );
    }

    #[test]
    fn a_commit_after_a_timeout_abort_is_refused() {
        let me = Producer::new(PID, 3);
        let ongoing = at_epoch(3, TxnState::Ongoing);
        let aborted = ongoing.fence(NOW).complete(NOW).unwrap();
        assert_eq!(aborted.state, TxnState::CompleteAbort);
        assert_eq!(
            aborted.end(me, Outcome::Commit, 0, NOW, no_id),
            Err(TxnError::ProducerFenced)
        );
        assert_eq!(
            aborted.end(me, Outcome::Commit, 2, NOW, no_id),
            Err(TxnError::ProducerFenced)
        );
        assert_eq!(
            aborted.add_partitions(me, &[TopicPartition::new("t", 1)], NOW),
            Err(TxnError::ProducerFenced)
        );
    }

    #[test]
    fn version_2_bumps_the_epoch_at_every_end() {
        let me = Producer::new(PID, 3);
        let ongoing = at_epoch(3, TxnState::Ongoing);
        let commit = prepared(ongoing.end(me, Outcome::Commit, 2, NOW, no_id));
        assert_eq!(commit.producer(), Producer::new(PID, 4));
        assert_eq!(commit.last_producer_epoch, 3);
        // The retry, with the epoch before the bump: wait, then success.
        assert_eq!(
            commit.end(me, Outcome::Commit, 2, NOW, no_id),
            Err(TxnError::ConcurrentTransactions)
        );
        let done = commit.complete(NOW).unwrap();
        assert_eq!(
            done.end(me, Outcome::Commit, 2, NOW, no_id),
            Ok(EndStep::Done)
        );
        assert_eq!(
            done.end(me, Outcome::Abort, 2, NOW, no_id),
            Err(TxnError::InvalidTxnState)
        );
        // With the new epoch, an abort with no transaction bumps again.
        let next = Producer::new(PID, 4);
        let abort = prepared(done.end(next, Outcome::Abort, 2, NOW, no_id));
        assert_eq!(abort.producer(), Producer::new(PID, 5));
        assert!(abort.partitions.is_empty());
        assert_eq!(
            done.end(next, Outcome::Commit, 2, NOW, no_id),
            Err(TxnError::InvalidTxnState)
        );
        // An older epoch still: fenced.
        assert_eq!(
            done.end(Producer::new(PID, 1), Outcome::Commit, 2, NOW, no_id),
            Err(TxnError::ProducerFenced)
        );
    }

    #[test]
    fn a_zombie_one_epoch_behind_is_not_taken_for_a_version_2_retry() {
        // The zombie held epoch 3; its successor's init made it 4, and the
        // successor committed with the classic protocol.
        let zombie = Producer::new(PID, 3);
        let mut done = at_epoch(4, TxnState::CompleteCommit);
        done.partitions.clear();
        assert_eq!(
            done.end(zombie, Outcome::Commit, 2, NOW, no_id),
            Err(TxnError::ProducerFenced)
        );
        // Nor after a fence by timeout, which bumps without a client.
        let mut ongoing = at_epoch(3, TxnState::Ongoing);
        ongoing.transaction_version = 2;
        let aborted = ongoing.fence(NOW).complete(NOW).unwrap();
        assert_eq!(
            aborted.end(zombie, Outcome::Abort, 2, NOW, no_id),
            Err(TxnError::ProducerFenced)
        );
    }

    #[test]
    fn version_2_end_at_an_exhausted_epoch_moves_to_the_next_producer_id() {
        let me = Producer::new(PID, PRODUCER_EPOCH_EXHAUSTED);
        let ongoing = at_epoch(PRODUCER_EPOCH_EXHAUSTED, TxnState::Ongoing);
        let commit = prepared(ongoing.end(me, Outcome::Commit, 2, NOW, || 5000));
        assert_eq!(commit.next_producer_id, 5000);
        assert_eq!(commit.producer_after_end(), Producer::new(5000, 0));
        assert_eq!(
            commit.add_partitions(Producer::new(5000, 0), &[], NOW),
            Err(TxnError::ConcurrentTransactions)
        );
        let done = commit.complete(NOW).unwrap();
        assert_eq!(done.producer(), Producer::new(5000, 0));
        assert_eq!(done.previous_producer_id, PID);
        assert_eq!(
            done.end(me, Outcome::Commit, 2, NOW, no_id),
            Ok(EndStep::Done)
        );
    }

    #[test]
    fn timeouts() {
        let mut meta = at_epoch(0, TxnState::Ongoing);
        meta.timeout_ms = 100;
        assert!(!meta.has_timed_out(NOW + 100));
        assert!(meta.has_timed_out(NOW + 101));
        meta.state = TxnState::PrepareCommit;
        assert!(!meta.has_timed_out(NOW + 1_000));
    }

    #[test]
    fn state_names_and_ids_are_kafkas() {
        for state in TxnState::ALL {
            assert_eq!(TxnState::from_id(state.id()), Some(state));
            assert_eq!(TxnState::from_name(state.name()), Some(state));
        }
        assert_eq!(TxnState::CompleteAbort.name(), "CompleteAbort");
        assert_eq!(TxnState::PrepareCommit.id(), 2);
        assert_eq!(TxnState::from_id(8), None);
    }
}
