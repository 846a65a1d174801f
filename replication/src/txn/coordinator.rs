//! The coordinator of one partition of `__transaction_state`: the
//! metadata of every transactional id hashed to it, the requests it
//! serves and the markers it has to write.
//!
//! One per partition this node leads, on that partition's owner shard.
//! Nothing here does I/O: each input returns the [`Effect`]s for the
//! engine to carry out, and the engine reports back (an append durable or
//! failed, markers written).
//!
//! Write first, then apply: a change is a record appended to the log, held
//! as the id's pending change, and applied (and its request answered)
//! only once the engine says the record is durable. While a change is
//! pending, every other request for the id is told
//! `CONCURRENT_TRANSACTIONS`. A failed append drops the pending change and
//! answers its request with the engine's error; the id is as it was.
//!
//! A failed append must be one that will never be read back by
//! [`TxnCoordinator::load`] under a later coordinator: the engine reports
//! failure only when the record is not in the log (refused, or truncated
//! away), and otherwise waits or gives the partition up ([`TxnCoordinator::unload`]).

use std::collections::{BTreeMap, BTreeSet};

use super::outputs::{
    AppendId, CoordinatorEpoch, DecisionId, Effect, Marker, MarkerResult, Reply, RequestId,
};
use super::record::TxnRecord;
use super::state::{
    EndStep, InitStep, Outcome, Producer, ProducerId, TopicPartition, TxnMetadata, TxnState,
    Verified, NO_PRODUCER_ID, OFFSETS_TOPIC,
};
use super::{TxnError, PARTITIONS_PER_TXN_MAX, TOPIC_NAME_BYTES_MAX, TRANSACTIONAL_ID_BYTES_MAX};

/// The coordinator's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms`: a producer asking for a longer
    /// timeout is refused.
    pub transaction_timeout_max_ms: u32,
    /// `transactional.id.expiration.ms`: an id with no transaction, not
    /// updated for this long, is removed (a tombstone is written).
    pub transactional_id_expiration_ms: u64,
    /// How long markers go unanswered before [`TxnCoordinator::tick`]
    /// sends them again (a lost request, a leader that never answered).
    pub markers_resend_ms: u64,
}

impl Default for TxnConfig {
    /// Kafka's defaults: 15 minutes, 7 days; markers resent after 10 s.
    fn default() -> TxnConfig {
        TxnConfig {
            transaction_timeout_max_ms: 900_000,
            transactional_id_expiration_ms: 7 * 24 * 60 * 60 * 1000,
            markers_resend_ms: 10_000,
        }
    }
}

/// How an EndTxn asks to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct End {
    pub outcome: Outcome,
    /// The client's transaction version (EndTxn v5 and later: 2).
    pub transaction_version: i16,
}

/// DescribeTransactions' view of one id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnDescription {
    pub transactional_id: String,
    pub state: TxnState,
    pub producer: Producer,
    pub timeout_ms: u32,
    /// When the transaction started (`None`: no transaction; Kafka's -1).
    pub start_ms: Option<u64>,
    pub partitions: BTreeSet<TopicPartition>,
}

impl TxnDescription {
    /// The state as Kafka's DescribeTransactions spells it.
    pub fn state_name(&self) -> &'static str {
        self.state.name()
    }
}

/// ListTransactions' filters: an empty set matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    pub states: BTreeSet<TxnState>,
    pub producer_ids: BTreeSet<ProducerId>,
    /// KIP-994: only transactions running for at least this long (those
    /// with no transaction never match).
    pub running_at_least_ms: Option<u64>,
}

/// ListTransactions' view of one id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnListing {
    pub transactional_id: String,
    pub producer_id: ProducerId,
    pub state: TxnState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for [`TxnCoordinator::load`].
    Loading,
    Active,
    /// Given up: every request is `NOT_COORDINATOR`.
    Unloaded,
}

/// What to do once a pending record is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    /// Answer InitProducerId with the new producer.
    Init(RequestId),
    /// The abort that fences an ongoing transaction for an
    /// InitProducerId: answer it `CONCURRENT_TRANSACTIONS`, send markers.
    InitFence(RequestId),
    Added(RequestId),
    Ended(RequestId),
    AdminAbort(RequestId),
    /// The coordinator's abort of a transaction past its timeout.
    Timeout,
    /// Every marker written: the complete state.
    Complete,
    /// The tombstone of an expired id.
    Expire,
}

impl Then {
    fn request(self) -> Option<RequestId> {
        match self {
            Then::Init(request)
            | Then::InitFence(request)
            | Then::Added(request)
            | Then::Ended(request)
            | Then::AdminAbort(request) => Some(request),
            Then::Timeout | Then::Complete | Then::Expire => None,
        }
    }
}

#[derive(Debug, Clone)]
struct Pending {
    append: AppendId,
    /// `None`: a tombstone.
    target: Option<TxnMetadata>,
    then: Then,
}

/// The markers of a transaction in PrepareCommit/PrepareAbort.
#[derive(Debug, Clone)]
struct Markers {
    decision: DecisionId,
    /// The partitions still without their marker.
    remaining: BTreeSet<TopicPartition>,
    /// When they were last sent.
    sent_ms: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    /// The metadata as durable; `None` while the id's first record is
    /// pending.
    durable: Option<TxnMetadata>,
    pending: Option<Pending>,
    /// Present while `durable` is PrepareCommit/PrepareAbort.
    markers: Option<Markers>,
}

/// The transaction coordinator of one `__transaction_state` partition, on
/// that partition's owner shard.
#[derive(Debug, Clone)]
pub struct TxnCoordinator {
    config: TxnConfig,
    coordinator_epoch: CoordinatorEpoch,
    phase: Phase,
    ids: BTreeMap<String, Entry>,
    /// Appends in flight, to their id.
    appends: BTreeMap<AppendId, String>,
    next_append: AppendId,
    next_decision: DecisionId,
}

fn respond(request: RequestId, result: Result<Reply, TxnError>) -> Effect {
    Effect::Respond { request, result }
}

fn check_id(transactional_id: &str) -> Result<(), TxnError> {
    if transactional_id.is_empty() {
        return Err(TxnError::InvalidRequest {
            reason: "an empty transactional id",
        });
    }
    if transactional_id.len() > TRANSACTIONAL_ID_BYTES_MAX {
        return Err(TxnError::InvalidRequest {
            reason: "a transactional id over TRANSACTIONAL_ID_BYTES_MAX",
        });
    }
    Ok(())
}

fn check_partitions(partitions: &[TopicPartition]) -> Result<(), TxnError> {
    if partitions.len() > PARTITIONS_PER_TXN_MAX {
        return Err(TxnError::TooManyPartitions {
            partitions: partitions.len(),
            max: PARTITIONS_PER_TXN_MAX,
        });
    }
    for tp in partitions {
        if tp.topic.is_empty() || tp.topic.len() > TOPIC_NAME_BYTES_MAX {
            return Err(TxnError::InvalidRequest {
                reason: "a topic name empty or over TOPIC_NAME_BYTES_MAX",
            });
        }
        if tp.partition < 0 {
            return Err(TxnError::InvalidRequest {
                reason: "a negative partition index",
            });
        }
    }
    Ok(())
}

impl TxnCoordinator {
    /// The coordinator of a partition this node took over at
    /// `coordinator_epoch`; it answers `COORDINATOR_LOAD_IN_PROGRESS`
    /// until [`TxnCoordinator::load`].
    pub fn new(config: TxnConfig, coordinator_epoch: CoordinatorEpoch) -> TxnCoordinator {
        TxnCoordinator {
            config,
            coordinator_epoch,
            phase: Phase::Loading,
            ids: BTreeMap::new(),
            appends: BTreeMap::new(),
            next_append: 0,
            next_decision: 0,
        }
    }

    pub fn coordinator_epoch(&self) -> CoordinatorEpoch {
        self.coordinator_epoch
    }

    /// True once loaded and until unloaded.
    pub fn is_active(&self) -> bool {
        self.phase == Phase::Active
    }

    /// The durable metadata of `transactional_id`.
    pub fn metadata(&self, transactional_id: &str) -> Option<&TxnMetadata> {
        self.ids.get(transactional_id)?.durable.as_ref()
    }

    /// Every id's durable metadata, in id order.
    pub fn transactions(&self) -> impl Iterator<Item = (&str, &TxnMetadata)> + '_ {
        self.ids
            .iter()
            .filter_map(|(id, entry)| Some((id.as_str(), entry.durable.as_ref()?)))
    }

    /// True while a record of `transactional_id` is being appended.
    pub fn is_pending(&self, transactional_id: &str) -> bool {
        self.ids
            .get(transactional_id)
            .is_some_and(|entry| entry.pending.is_some())
    }

    /// Takes the partition's records, oldest first (the last record of an
    /// id wins; a tombstone removes it), and starts serving: a transaction
    /// left in PrepareCommit/PrepareAbort has its markers sent again and
    /// is completed; an ongoing one keeps its start, so its timeout runs
    /// on. Only the first call after [`TxnCoordinator::new`] loads.
    pub fn load(
        &mut self,
        records: impl IntoIterator<Item = TxnRecord>,
        now_ms: u64,
    ) -> Vec<Effect> {
        if self.phase != Phase::Loading {
            return Vec::new();
        }
        let mut latest: BTreeMap<String, Option<TxnMetadata>> = BTreeMap::new();
        for record in records {
            latest.insert(record.transactional_id, record.metadata);
        }
        for (id, metadata) in latest {
            if let Some(metadata) = metadata {
                self.ids.insert(
                    id,
                    Entry {
                        durable: Some(metadata),
                        pending: None,
                        markers: None,
                    },
                );
            }
        }
        self.phase = Phase::Active;
        let preparing: Vec<String> = self
            .ids
            .iter()
            .filter(|(_, entry)| {
                entry
                    .durable
                    .as_ref()
                    .is_some_and(|m| m.state.preparing().is_some())
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut effects = Vec::new();
        for id in preparing {
            self.start_markers(&id, now_ms, &mut effects);
        }
        effects
    }

    /// Gives the partition up: every request waiting on an append is
    /// answered `NOT_COORDINATOR`, and the state is dropped (the next
    /// coordinator loads it from the log).
    pub fn unload(&mut self) -> Vec<Effect> {
        let effects = self
            .ids
            .values()
            .filter_map(|entry| entry.pending.as_ref()?.then.request())
            .map(|request| respond(request, Err(TxnError::NotCoordinator)))
            .collect();
        self.ids.clear();
        self.appends.clear();
        self.phase = Phase::Unloaded;
        effects
    }

    fn serving(&self) -> Result<(), TxnError> {
        match self.phase {
            Phase::Loading => Err(TxnError::CoordinatorLoadInProgress),
            Phase::Active => Ok(()),
            Phase::Unloaded => Err(TxnError::NotCoordinator),
        }
    }

    /// The durable metadata of an id with no change pending.
    fn settled(&self, transactional_id: &str) -> Result<Option<&TxnMetadata>, TxnError> {
        match self.ids.get(transactional_id) {
            None => Ok(None),
            Some(entry) if entry.pending.is_some() => Err(TxnError::ConcurrentTransactions),
            Some(entry) => Ok(entry.durable.as_ref()),
        }
    }

    /// Makes `target` the pending change of `transactional_id` and asks
    /// for its record.
    fn write(&mut self, transactional_id: &str, target: Option<TxnMetadata>, then: Then) -> Effect {
        let append = self.next_append;
        self.next_append += 1;
        let entry = self
            .ids
            .entry(transactional_id.to_string())
            .or_insert(Entry {
                durable: None,
                pending: None,
                markers: None,
            });
        assert!(
            entry.pending.is_none(),
            "a second change of {transactional_id} while one is pending"
        );
        entry.pending = Some(Pending {
            append,
            target: target.clone(),
            then,
        });
        self.appends.insert(append, transactional_id.to_string());
        Effect::Append {
            append,
            record: TxnRecord {
                transactional_id: transactional_id.to_string(),
                metadata: target,
            },
        }
    }

    /// InitProducerId for `transactional_id` with `timeout_ms`; from a
    /// client recovering (KIP-360), `expected` is the producer it held.
    /// `new_producer_id` is called when the id is new or its epoch is
    /// exhausted.
    ///
    /// Answered (by `request`) once the record is durable, with the
    /// producer id and epoch; if a transaction was ongoing, it is aborted
    /// at a bumped epoch first and the answer is `CONCURRENT_TRANSACTIONS`
    /// (the client retries and gets a second bump).
    pub fn init_producer_id(
        &mut self,
        request: RequestId,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<Producer>,
        now_ms: u64,
        new_producer_id: impl FnOnce() -> ProducerId,
    ) -> Vec<Effect> {
        let step = self.serving().and_then(|()| {
            check_id(transactional_id)?;
            let max_ms = self.config.transaction_timeout_max_ms;
            let timeout = u32::try_from(timeout_ms)
                .ok()
                .filter(|timeout| (1..=max_ms).contains(timeout))
                .ok_or(TxnError::InvalidTransactionTimeout { timeout_ms, max_ms })?;
            match self.settled(transactional_id)? {
                Some(current) => current.init(timeout, expected, now_ms, new_producer_id),
                None => TxnMetadata::fresh(new_producer_id(), timeout, now_ms).init(
                    timeout,
                    expected,
                    now_ms,
                    || NO_PRODUCER_ID,
                ),
            }
        });
        match step {
            Err(error) => vec![respond(request, Err(error))],
            Ok(InitStep::Ready(target)) => {
                vec![self.write(transactional_id, Some(target), Then::Init(request))]
            }
            Ok(InitStep::Fence(target)) => {
                vec![self.write(transactional_id, Some(target), Then::InitFence(request))]
            }
        }
    }

    /// AddPartitionsToTxn: `partitions` join `producer`'s transaction
    /// (which this opens if none is ongoing). Answered once durable, or at
    /// once if they are all in already.
    pub fn add_partitions(
        &mut self,
        request: RequestId,
        transactional_id: &str,
        producer: Producer,
        partitions: &[TopicPartition],
        now_ms: u64,
    ) -> Vec<Effect> {
        let step = self.serving().and_then(|()| {
            check_id(transactional_id)?;
            check_partitions(partitions)?;
            self.settled(transactional_id)?
                .ok_or(TxnError::InvalidProducerIdMapping)?
                .add_partitions(producer, partitions, now_ms)
        });
        match step {
            Err(error) => vec![respond(request, Err(error))],
            Ok(None) => vec![respond(request, Ok(Reply::Added))],
            Ok(Some(target)) => {
                vec![self.write(transactional_id, Some(target), Then::Added(request))]
            }
        }
    }

    /// AddOffsetsToTxn: the group's partition of `__consumer_offsets`
    /// (`group_partition`, which the caller computes from the group id)
    /// joins the transaction, so that its offset commits are committed or
    /// aborted with it.
    pub fn add_offsets(
        &mut self,
        request: RequestId,
        transactional_id: &str,
        producer: Producer,
        group_partition: i32,
        now_ms: u64,
    ) -> Vec<Effect> {
        let partition = TopicPartition::new(OFFSETS_TOPIC, group_partition);
        self.add_partitions(request, transactional_id, producer, &[partition], now_ms)
    }

    /// KIP-890 part 1, AddPartitionsToTxn's verify-only form: a partition
    /// leader asks, before it appends a transactional batch, whether
    /// `producer`'s transaction is ongoing and holds each partition.
    /// Answered at once from the durable state; writes nothing.
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer: Producer,
        partitions: &[TopicPartition],
    ) -> Result<Verified, TxnError> {
        self.serving()?;
        check_id(transactional_id)?;
        check_partitions(partitions)?;
        self.ids
            .get(transactional_id)
            .and_then(|entry| entry.durable.as_ref())
            .ok_or(TxnError::InvalidProducerIdMapping)?
            .verify(producer, partitions)
    }

    /// EndTxn: `producer` commits or aborts. Answered once the
    /// PrepareCommit/PrepareAbort record is durable (the outcome is then
    /// decided; markers follow), with the producer to use next; a retry of
    /// an end already complete is answered at once.
    /// `new_producer_id` is called when a version 2 end exhausts the epoch.
    pub fn end_txn(
        &mut self,
        request: RequestId,
        transactional_id: &str,
        producer: Producer,
        end: End,
        now_ms: u64,
        new_producer_id: impl FnOnce() -> ProducerId,
    ) -> Vec<Effect> {
        let step = self.serving().and_then(|()| {
            check_id(transactional_id)?;
            let current = self
                .settled(transactional_id)?
                .ok_or(TxnError::InvalidProducerIdMapping)?;
            let step = current.end(
                producer,
                end.outcome,
                end.transaction_version,
                now_ms,
                new_producer_id,
            )?;
            Ok((step, current.producer()))
        });
        match step {
            Err(error) => vec![respond(request, Err(error))],
            Ok((EndStep::Done, current)) => vec![respond(request, Ok(Reply::Ended(current)))],
            Ok((EndStep::Prepare(target), _)) => {
                vec![self.write(transactional_id, Some(target), Then::Ended(request))]
            }
        }
    }

    /// An operator's abort of `transactional_id`'s ongoing transaction (a
    /// hanging one, say): aborted at a bumped epoch, as on a timeout, and
    /// answered once durable. `InvalidTxnState` when none is ongoing.
    ///
    /// KIP-664's abort of a partition's hanging transaction that no
    /// coordinator knows of is a marker written to that partition
    /// directly: the engine's, not this.
    pub fn admin_abort(
        &mut self,
        request: RequestId,
        transactional_id: &str,
        now_ms: u64,
    ) -> Vec<Effect> {
        let step = self.serving().and_then(|()| {
            check_id(transactional_id)?;
            let current = self
                .settled(transactional_id)?
                .ok_or(TxnError::TransactionalIdNotFound)?;
            match current.state {
                TxnState::Ongoing => Ok(current.fence(now_ms)),
                state if state.preparing().is_some() => Err(TxnError::ConcurrentTransactions),
                _ => Err(TxnError::InvalidTxnState),
            }
        });
        match step {
            Err(error) => vec![respond(request, Err(error))],
            Ok(target) => {
                vec![self.write(transactional_id, Some(target), Then::AdminAbort(request))]
            }
        }
    }

    /// The id whose change `append` wrote, and that change, no longer
    /// pending; `None` for an append this coordinator does not know (it
    /// was unloaded since).
    fn take_pending(&mut self, append: AppendId) -> Option<(String, Pending)> {
        let id = self.appends.remove(&append)?;
        let pending = self
            .ids
            .get_mut(&id)
            .expect("an id with an append in flight is held")
            .pending
            .take()
            .expect("an append in flight is its id's pending change");
        assert_eq!(pending.append, append, "{id}: appends crossed");
        Some((id, pending))
    }

    /// The record `append` is durable: its change takes effect and its
    /// request is answered. An append this coordinator does not know (it
    /// was unloaded since) changes nothing.
    pub fn log_appended(&mut self, append: AppendId, now_ms: u64) -> Vec<Effect> {
        let Some((id, pending)) = self.take_pending(append) else {
            return Vec::new();
        };
        let entry = self.ids.get_mut(&id).expect("take_pending keeps the id");
        entry.durable = pending.target;
        let Some(durable) = entry.durable.clone() else {
            self.ids.remove(&id);
            return Vec::new();
        };
        entry.markers = None;
        let mut effects = Vec::new();
        match pending.then {
            Then::Init(request) => {
                effects.push(respond(request, Ok(Reply::ProducerId(durable.producer()))))
            }
            Then::InitFence(request) => {
                effects.push(respond(request, Err(TxnError::ConcurrentTransactions)))
            }
            Then::Added(request) => effects.push(respond(request, Ok(Reply::Added))),
            Then::Ended(request) => effects.push(respond(
                request,
                Ok(Reply::Ended(durable.producer_after_end())),
            )),
            Then::AdminAbort(request) => effects.push(respond(request, Ok(Reply::Aborted))),
            Then::Timeout | Then::Complete | Then::Expire => {}
        }
        if durable.state.preparing().is_some() {
            self.start_markers(&id, now_ms, &mut effects);
        }
        effects
    }

    /// The record `append` will never be durable: its change is dropped
    /// and its request answered `error` (`NOT_COORDINATOR` when the
    /// partition's leadership is lost, `COORDINATOR_NOT_AVAILABLE`
    /// otherwise). A completion or expiry is tried again by
    /// [`TxnCoordinator::tick`].
    pub fn log_failed(&mut self, append: AppendId, error: TxnError) -> Vec<Effect> {
        let Some((id, pending)) = self.take_pending(append) else {
            return Vec::new();
        };
        let entry = self.ids.get_mut(&id).expect("take_pending keeps the id");
        if entry.durable.is_none() {
            self.ids.remove(&id);
        }
        match pending.then.request() {
            Some(request) => vec![respond(request, Err(error))],
            None => Vec::new(),
        }
    }

    /// Sends the markers of `transactional_id`'s decided transaction, or
    /// writes its completion if it has no partition.
    fn start_markers(&mut self, transactional_id: &str, now_ms: u64, effects: &mut Vec<Effect>) {
        let decision = self.next_decision;
        self.next_decision += 1;
        let Some(entry) = self.ids.get_mut(transactional_id) else {
            return;
        };
        let Some(durable) = &entry.durable else {
            return;
        };
        entry.markers = Some(Markers {
            decision,
            remaining: durable.partitions.clone(),
            sent_ms: now_ms,
        });
        self.send_or_complete(transactional_id, now_ms, effects);
    }

    /// Sends every marker still missing, or, with none missing, writes the
    /// completion.
    fn send_or_complete(&mut self, transactional_id: &str, now_ms: u64, effects: &mut Vec<Effect>) {
        let coordinator_epoch = self.coordinator_epoch;
        let Some(entry) = self.ids.get_mut(transactional_id) else {
            return;
        };
        let (Some(durable), Some(markers)) = (&entry.durable, &mut entry.markers) else {
            return;
        };
        let Some(outcome) = durable.state.preparing() else {
            return;
        };
        if entry.pending.is_some() {
            return;
        }
        if markers.remaining.is_empty() {
            let target = durable.complete(now_ms);
            effects.push(self.write(transactional_id, target, Then::Complete));
            return;
        }
        markers.sent_ms = now_ms;
        let producer = durable.producer();
        let decision = markers.decision;
        effects.push(Effect::SendMarkers {
            transactional_id: transactional_id.to_string(),
            markers: markers
                .remaining
                .iter()
                .map(|tp| Marker {
                    decision,
                    topic_partition: tp.clone(),
                    producer,
                    outcome,
                    coordinator_epoch,
                })
                .collect(),
        });
    }

    /// The partitions' leaders answered the markers of
    /// `transactional_id`'s transaction `decision`. Written
    /// markers, and those of partitions gone or refusing permanently, are
    /// done; transient failures are sent again. With every marker done,
    /// the completion is written. An answer for another transaction (an
    /// older one, a duplicate) changes nothing.
    pub fn markers_written(
        &mut self,
        transactional_id: &str,
        decision: DecisionId,
        results: &[(TopicPartition, MarkerResult)],
        now_ms: u64,
    ) -> Vec<Effect> {
        if self.serving().is_err() {
            return Vec::new();
        }
        let coordinator_epoch = self.coordinator_epoch;
        let Some(entry) = self.ids.get_mut(transactional_id) else {
            return Vec::new();
        };
        let (Some(durable), Some(markers)) = (&entry.durable, &mut entry.markers) else {
            return Vec::new();
        };
        let Some(outcome) = durable.state.preparing() else {
            return Vec::new();
        };
        if markers.decision != decision {
            return Vec::new();
        }
        let producer = durable.producer();
        let mut again = Vec::new();
        for (tp, result) in results {
            match result {
                MarkerResult::Written | MarkerResult::PartitionGone | MarkerResult::Unsupported => {
                    markers.remaining.remove(tp);
                }
                MarkerResult::Retriable => {
                    if markers.remaining.contains(tp) && !again.contains(tp) {
                        again.push(tp.clone());
                    }
                }
                MarkerResult::CoordinatorFenced => {}
            }
        }
        let mut effects = Vec::new();
        if markers.remaining.is_empty() {
            self.send_or_complete(transactional_id, now_ms, &mut effects);
        } else if !again.is_empty() {
            markers.sent_ms = now_ms;
            effects.push(Effect::SendMarkers {
                transactional_id: transactional_id.to_string(),
                markers: again
                    .into_iter()
                    .map(|topic_partition| Marker {
                        decision,
                        topic_partition,
                        producer,
                        outcome,
                        coordinator_epoch,
                    })
                    .collect(),
            });
        }
        effects
    }

    /// Time passes: an ongoing transaction past its timeout is aborted at
    /// a bumped epoch (its producer is fenced); markers unanswered for
    /// `markers_resend_ms` are sent again; a completion whose append
    /// failed is written again; an idle id not updated for
    /// `transactional_id_expiration_ms` is removed with a tombstone. An id
    /// with a change pending waits for the next tick.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Effect> {
        if self.serving().is_err() {
            return Vec::new();
        }
        let mut effects = Vec::new();
        let ids: Vec<String> = self.ids.keys().cloned().collect();
        for id in ids {
            let entry = &self.ids[&id];
            if entry.pending.is_some() {
                continue;
            }
            let Some(durable) = &entry.durable else {
                continue;
            };
            if durable.has_timed_out(now_ms) {
                let target = durable.fence(now_ms);
                effects.push(self.write(&id, Some(target), Then::Timeout));
            } else if durable.state.preparing().is_some() {
                let resend = entry.markers.as_ref().is_none_or(|markers| {
                    markers.remaining.is_empty()
                        || now_ms.saturating_sub(markers.sent_ms) >= self.config.markers_resend_ms
                });
                if entry.markers.is_none() {
                    self.start_markers(&id, now_ms, &mut effects);
                } else if resend {
                    self.send_or_complete(&id, now_ms, &mut effects);
                }
            } else if durable.state.is_idle()
                && durable
                    .last_update_ms
                    .saturating_add(self.config.transactional_id_expiration_ms)
                    <= now_ms
            {
                effects.push(self.write(&id, None, Then::Expire));
            }
        }
        effects
    }

    /// DescribeTransactions of one id, from its durable state.
    pub fn describe(&self, transactional_id: &str) -> Result<TxnDescription, TxnError> {
        self.serving()?;
        let metadata = self
            .metadata(transactional_id)
            .ok_or(TxnError::TransactionalIdNotFound)?;
        Ok(TxnDescription {
            transactional_id: transactional_id.to_string(),
            state: metadata.state,
            producer: metadata.producer(),
            timeout_ms: metadata.timeout_ms,
            start_ms: metadata.start_ms,
            partitions: metadata.partitions.clone(),
        })
    }

    /// ListTransactions over this partition's ids, from their durable
    /// state, in id order.
    pub fn list(&self, filter: &ListFilter, now_ms: u64) -> Result<Vec<TxnListing>, TxnError> {
        self.serving()?;
        Ok(self
            .transactions()
            .filter(|(_, m)| filter.states.is_empty() || filter.states.contains(&m.state))
            .filter(|(_, m)| {
                filter.producer_ids.is_empty() || filter.producer_ids.contains(&m.producer_id)
            })
            .filter(|(_, m)| match filter.running_at_least_ms {
                None => true,
                Some(at_least) => {
                    m.state != TxnState::Empty
                        && m.state != TxnState::CompleteCommit
                        && m.state != TxnState::CompleteAbort
                        && m.start_ms
                            .is_some_and(|start| now_ms.saturating_sub(start) >= at_least)
                }
            })
            .map(|(id, m)| TxnListing {
                transactional_id: id.to_string(),
                producer_id: m.producer_id,
                state: m.state,
            })
            .collect())
    }
}
