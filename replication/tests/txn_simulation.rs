//! Seeded simulations of the transaction coordinator.
//!
//! Producers of three transactional ids (each id with a current producer
//! and the zombies it replaced, classic and version 2 clients) init, add
//! partitions and offsets, commit and abort, and retry, in random
//! interleavings. Around them the log's appends become durable late, fail,
//! or are cut off by a failover; markers are written, fail transiently,
//! are lost, or find their partition gone; time jumps past transaction
//! timeouts and id expiry; and the coordinator fails over (a new one, with
//! a new coordinator epoch, loads the durable records alone, decoded from
//! their bytes).
//!
//! Half the schedules start with an id a few epochs short of exhaustion,
//! so that its producer id moves on (at InitProducerId, and at a version
//! 2 EndTxn).
//!
//! After every step:
//! - the coordinator's state is exactly the last durable record of each
//!   id (nothing takes effect before it is durable, and a load rebuilds
//!   it);
//! - a producer id's epoch never goes down, and an id moves to a new
//!   producer id only with the old one as its previous;
//! - a decided transaction (PrepareCommit/PrepareAbort durable) only ever
//!   completes, with the same outcome, and only once every one of its
//!   partitions has its marker (or is gone);
//! - every marker sent matches the durable decision of its id: producer,
//!   epoch, outcome, partition; no partition gets both a commit and an
//!   abort marker for one transaction;
//! - a success only goes to the current producer of an id: a zombie
//!   (replaced by a later InitProducerId) or a fenced epoch never gets
//!   one; a commit answered is PrepareCommit or CompleteCommit durably,
//!   an abort answered is an abort (or no transaction at all);
//! - after a tick, no ongoing transaction is past its timeout;
//! - every request is answered at most once.
//!
//! After the schedule the faults stop and time runs: every request is
//! answered, every decided transaction completes with its markers on all
//! its partitions, and no transaction is left open.
//!
//! `SLUICE_TEST_SEED=<n>` replays one seed; `SLUICE_TEST_SEEDS=<n>` runs
//! more.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::Rng;

use sluice_replication::txn::{
    AppendId, CoordinatorEpoch, Effect, End, ListFilter, Marker, MarkerResult, Outcome, Producer,
    Reply, RequestId, TopicPartition, TxnConfig, TxnCoordinator, TxnError, TxnMetadata, TxnRecord,
    TxnState, PRODUCER_EPOCH_EXHAUSTED,
};

const SEEDS: u64 = 500;
const STEPS: u64 = 300;
const IDS: [&str; 3] = ["alpha", "beta", "gamma"];
/// Rounds of fault-free running after the schedule, at most.
const QUIESCE_ROUNDS_MAX: u32 = 200;

fn config() -> TxnConfig {
    TxnConfig {
        transaction_timeout_max_ms: 900_000,
        transactional_id_expiration_ms: 60_000,
        markers_resend_ms: 300,
    }
}

#[derive(Debug, Clone)]
enum Op {
    Init { expected: Option<Producer> },
    Add(Vec<TopicPartition>),
    Offsets(i32),
    End(Outcome),
}

#[derive(Debug, Clone)]
struct Client {
    id: &'static str,
    producer: Option<Producer>,
    version: i16,
    timeout_ms: i32,
    last: Option<Op>,
}

#[derive(Debug, Clone)]
struct Request {
    client: usize,
    op: Op,
    /// The producer the request was made as.
    producer: Option<Producer>,
}

/// A transaction decided in the log.
#[derive(Debug, Clone)]
struct Decision {
    producer: Producer,
    outcome: Outcome,
    partitions: BTreeSet<TopicPartition>,
    /// Partitions whose marker a coordinator was told is written (or whose
    /// partition is gone).
    done: BTreeSet<TopicPartition>,
    completed: bool,
}

struct Sim {
    seed: u64,
    rng: Rng,
    now_ms: u64,
    coordinator: TxnCoordinator,
    coordinator_epoch: CoordinatorEpoch,
    /// The durable records, as bytes.
    log: Vec<(Vec<u8>, Vec<u8>)>,
    /// The last durable record of each id.
    durable: BTreeMap<String, TxnMetadata>,
    /// Appends asked for and not yet reported, oldest first.
    appends: Vec<(AppendId, TxnRecord)>,
    /// Markers sent and not yet answered: id, decision index, marker.
    markers: Vec<(String, usize, Marker)>,
    requests: BTreeMap<RequestId, Request>,
    next_request: RequestId,
    next_producer_id: i64,
    clients: Vec<Client>,
    /// The client an id's last successful InitProducerId went to.
    current: BTreeMap<String, usize>,
    decisions: BTreeMap<String, Vec<Decision>>,
    /// What each partition was marked with, per transaction.
    partition_markers: BTreeMap<(TopicPartition, String, usize), Outcome>,
    stats: Stats,
}

#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    /// Moves to a new producer id on epoch exhaustion.
    rotations: u64,
    commits: u64,
    aborts: u64,
    fenced: u64,
    failovers: u64,
    timeouts: u64,
}

fn partitions() -> Vec<TopicPartition> {
    ["orders", "payments"]
        .into_iter()
        .flat_map(|topic| (0..3).map(move |p| TopicPartition::new(topic, p)))
        .collect()
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut coordinator = TxnCoordinator::new(config(), 1);
        // Half the schedules start with "gamma" a few epochs short of
        // exhaustion, so that its producer id moves on.
        let mut log = Vec::new();
        let mut durable = BTreeMap::new();
        if seed % 2 == 1 {
            let mut worn = TxnMetadata::fresh(999, 5_000, 0);
            worn.producer_epoch = PRODUCER_EPOCH_EXHAUSTED - 3;
            let record = TxnRecord {
                transactional_id: "gamma".to_string(),
                metadata: Some(worn.clone()),
            };
            log.push(record.encode());
            durable.insert("gamma".to_string(), worn);
        }
        let records = log
            .iter()
            .map(|(key, value)| TxnRecord::decode(key, value).expect("decodes"));
        let effects = coordinator.load(records, 0);
        assert!(effects.is_empty());
        Sim {
            seed,
            rng: Rng(seed),
            now_ms: 0,
            coordinator,
            coordinator_epoch: 1,
            log,
            durable,
            appends: Vec::new(),
            markers: Vec::new(),
            requests: BTreeMap::new(),
            next_request: 0,
            next_producer_id: 1000,
            clients: Vec::new(),
            current: BTreeMap::new(),
            decisions: BTreeMap::new(),
            partition_markers: BTreeMap::new(),
            stats: Stats::default(),
        }
    }

    fn fail(&self, what: String) -> ! {
        panic!(
            "seed {} at {} ms: {what}\nreplay: SLUICE_TEST_SEED={}",
            self.seed, self.now_ms, self.seed
        );
    }

    // ---- the coordinator's effects ----

    fn apply(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Append { append, record } => {
                    let (key, value) = record.encode();
                    match TxnRecord::decode(&key, &value) {
                        Ok(back) if back == record => {}
                        other => self.fail(format!("{record:?} reads back as {other:?}")),
                    }
                    self.appends.push((append, record));
                }
                Effect::Respond { request, result } => self.answered(request, result),
                Effect::SendMarkers {
                    transactional_id,
                    markers,
                } => self.markers_sent(transactional_id, markers),
            }
        }
    }

    fn markers_sent(&mut self, id: String, markers: Vec<Marker>) {
        let Some(durable) = self.durable.get(&id) else {
            self.fail(format!("markers for {id}, which has no durable record"));
        };
        let Some(outcome) = durable.state.preparing() else {
            self.fail(format!("markers for {id} in {:?}", durable.state));
        };
        let index = self.decisions[&id].len() - 1;
        let decision = &self.decisions[&id][index];
        assert!(!decision.completed);
        for marker in &markers {
            if marker.producer != decision.producer
                || marker.outcome != outcome
                || marker.outcome != decision.outcome
                || !decision.partitions.contains(&marker.topic_partition)
                || marker.coordinator_epoch != self.coordinator_epoch
            {
                self.fail(format!(
                    "marker {marker:?} does not match {id}'s decision {decision:?}"
                ));
            }
        }
        for marker in markers {
            self.markers.push((id.clone(), index, marker));
        }
    }

    fn answered(&mut self, request: RequestId, result: Result<Reply, TxnError>) {
        let Some(asked) = self.requests.remove(&request) else {
            self.fail(format!("request {request} answered twice, or never asked"));
        };
        let client = self.clients[asked.client].clone();
        let id = client.id;
        let is_current = self.current.get(id) == Some(&asked.client);
        let durable = self.durable.get(id).cloned();
        let Ok(reply) = result else {
            if result == Err(TxnError::ProducerFenced) {
                self.stats.fenced += 1;
            }
            return;
        };
        let Some(durable) = durable else {
            self.fail(format!(
                "{reply:?} to {asked:?} of {id}, which has no durable record"
            ));
        };
        match (&asked.op, reply) {
            (Op::Init { .. }, Reply::ProducerId(producer)) => {
                if durable.producer() != producer || durable.state != TxnState::Empty {
                    self.fail(format!(
                        "init of {id} answered {producer:?}, durable {durable:?}"
                    ));
                }
                if producer.epoch == i16::MAX {
                    self.fail(format!(
                        "the fence's epoch handed to a client: {producer:?}"
                    ));
                }
                self.clients[asked.client].producer = Some(producer);
                self.current.insert(id.to_string(), asked.client);
            }
            (Op::Add(partitions), Reply::Added) => {
                self.check_current(is_current, &asked, &durable);
                if durable.state != TxnState::Ongoing
                    || !partitions.iter().all(|tp| durable.partitions.contains(tp))
                {
                    self.fail(format!(
                        "add {partitions:?} to {id} answered, durable {durable:?}"
                    ));
                }
            }
            (Op::Offsets(group), Reply::Added) => {
                self.check_current(is_current, &asked, &durable);
                if durable.state != TxnState::Ongoing || !durable.has_offsets_of(*group) {
                    self.fail(format!("offsets of {group} answered, durable {durable:?}"));
                }
            }
            (Op::End(outcome), Reply::Ended(next)) => {
                if !is_current {
                    self.fail(format!("a zombie's end answered: {asked:?}, {durable:?}"));
                }
                let fits = match outcome {
                    Outcome::Commit => matches!(
                        durable.state,
                        TxnState::PrepareCommit | TxnState::CompleteCommit
                    ),
                    Outcome::Abort => matches!(
                        durable.state,
                        TxnState::PrepareAbort | TxnState::CompleteAbort | TxnState::Empty
                    ),
                };
                if !fits {
                    self.fail(format!("{outcome:?} answered, durable {durable:?}"));
                }
                if next != durable.producer() && next != durable.producer_after_end() {
                    self.fail(format!("end answered {next:?}, durable {durable:?}"));
                }
                match outcome {
                    Outcome::Commit => self.stats.commits += 1,
                    Outcome::Abort => self.stats.aborts += 1,
                }
                self.clients[asked.client].producer = Some(next);
            }
            (op, reply) => self.fail(format!("{op:?} answered {reply:?}")),
        }
    }

    fn check_current(&self, is_current: bool, asked: &Request, durable: &TxnMetadata) {
        if !is_current || asked.producer != Some(durable.producer()) {
            self.fail(format!(
                "a success to a fenced producer: {asked:?}, durable {durable:?}"
            ));
        }
    }

    // ---- the log ----

    /// `record` is durable: into the log and the view of it, with the
    /// checks on what a record may follow.
    fn durable_record(&mut self, record: &TxnRecord) {
        self.log.push(record.encode());
        let id = record.transactional_id.clone();
        let previous = self.durable.get(&id).cloned();
        let Some(next) = record.metadata.clone() else {
            match &previous {
                Some(p) if p.state.is_idle() => {}
                other => self.fail(format!("{id}'s tombstone after {other:?}")),
            }
            self.durable.remove(&id);
            return;
        };
        if let Some(p) = &previous {
            if next.producer_id == p.producer_id {
                if next.producer_epoch < p.producer_epoch {
                    self.fail(format!("{id}'s epoch went down: {p:?} then {next:?}"));
                }
            } else if next.previous_producer_id != p.producer_id {
                self.fail(format!(
                    "{id} moved producer id without a trace: {p:?} then {next:?}"
                ));
            } else {
                self.stats.rotations += 1;
            }
        }
        let was = previous.as_ref().map(|p| p.state);
        let decisions = self.decisions.entry(id.clone()).or_default();
        match (was.and_then(TxnState::preparing), next.state) {
            (None, TxnState::PrepareCommit | TxnState::PrepareAbort) => {
                decisions.push(Decision {
                    producer: next.producer(),
                    outcome: next.state.preparing().expect("preparing"),
                    partitions: next.partitions.clone(),
                    done: BTreeSet::new(),
                    completed: false,
                });
            }
            (Some(outcome), TxnState::CompleteCommit | TxnState::CompleteAbort) => {
                let decision = decisions.last_mut().expect("a decision before its end");
                let completed_as = if next.state == TxnState::CompleteCommit {
                    Outcome::Commit
                } else {
                    Outcome::Abort
                };
                let missing: Vec<_> = decision.partitions.difference(&decision.done).collect();
                if completed_as != outcome || decision.completed || !missing.is_empty() {
                    let message = format!(
                        "{id} completed as {completed_as:?}: {decision:?}, missing {missing:?}"
                    );
                    self.fail(message);
                }
                decision.completed = true;
            }
            (Some(_), state) => {
                self.fail(format!("{id} went from {was:?} to {state:?}"));
            }
            (None, TxnState::CompleteCommit | TxnState::CompleteAbort) => {
                self.fail(format!("{id} completed from {was:?}"));
            }
            (None, _) => {}
        }
        self.durable.insert(id, next);
    }

    fn resolve_append(&mut self, index: usize, durable: bool) {
        let (append, record) = self.appends.remove(index);
        if durable {
            self.durable_record(&record);
            let effects = self.coordinator.log_appended(append, self.now_ms);
            self.apply(effects);
        } else {
            let error = if self.rng.chance(500) {
                TxnError::CoordinatorNotAvailable
            } else {
                TxnError::NotCoordinator
            };
            let effects = self.coordinator.log_failed(append, error);
            self.apply(effects);
        }
    }

    // ---- markers ----

    fn deliver_marker(&mut self, index: usize, result: MarkerResult) {
        let (id, decision, marker) = self.markers.remove(index);
        if matches!(result, MarkerResult::Written) {
            let key = (marker.topic_partition.clone(), id.clone(), decision);
            if let Some(before) = self.partition_markers.insert(key, marker.outcome) {
                if before != marker.outcome {
                    self.fail(format!("{marker:?} after a {before:?} marker"));
                }
            }
        }
        if matches!(
            result,
            MarkerResult::Written | MarkerResult::PartitionGone | MarkerResult::Unsupported
        ) {
            let open = &mut self.decisions.get_mut(&id).expect("decided")[decision];
            open.done.insert(marker.topic_partition.clone());
        }
        let effects = self.coordinator.markers_written(
            &id,
            marker.decision,
            &[(marker.topic_partition, result)],
            self.now_ms,
        );
        self.apply(effects);
    }

    // ---- clients ----

    fn ask(&mut self, client: usize, op: Op) {
        let request = self.next_request;
        self.next_request += 1;
        let c = self.clients[client].clone();
        self.clients[client].last = Some(op.clone());
        self.requests.insert(
            request,
            Request {
                client,
                op: op.clone(),
                producer: c.producer,
            },
        );
        let now = self.now_ms;
        // Requests with no producer yet go out as one that never existed.
        let producer = c.producer.unwrap_or(Producer::new(-1, -1));
        let mut next_producer_id = self.next_producer_id;
        let mut allocate = || {
            next_producer_id += 1;
            next_producer_id
        };
        let effects = match op {
            Op::Init { expected } => self.coordinator.init_producer_id(
                request,
                c.id,
                c.timeout_ms,
                expected,
                now,
                &mut allocate,
            ),
            Op::Add(partitions) => {
                self.coordinator
                    .add_partitions(request, c.id, producer, &partitions, now)
            }
            Op::Offsets(group) => self
                .coordinator
                .add_offsets(request, c.id, producer, group, now),
            Op::End(outcome) => {
                let end = End {
                    outcome,
                    transaction_version: c.version,
                };
                self.coordinator
                    .end_txn(request, c.id, producer, end, now, &mut allocate)
            }
        };
        self.next_producer_id = next_producer_id;
        self.apply(effects);
    }

    /// The newest client of `id` mostly, sometimes an older one (a zombie).
    fn pick_client(&mut self, id: &'static str) -> Option<usize> {
        let of_id: Vec<usize> = (0..self.clients.len())
            .filter(|c| self.clients[*c].id == id)
            .collect();
        let last = *of_id.last()?;
        if self.rng.chance(850) {
            Some(last)
        } else {
            Some(of_id[self.rng.below(of_id.len() as u64) as usize])
        }
    }

    fn client_step(&mut self) {
        let id = IDS[self.rng.below(IDS.len() as u64) as usize];
        let picked = self.pick_client(id);
        let roll = self.rng.below(100);
        let Some(client) = picked.filter(|_| roll >= 6) else {
            // A new producer instance of `id`.
            let version = if self.rng.chance(500) { 2 } else { 0 };
            let timeout_ms = 2_000 + self.rng.below(10_000) as i32;
            self.clients.push(Client {
                id,
                producer: None,
                version,
                timeout_ms,
                last: None,
            });
            let client = self.clients.len() - 1;
            self.ask(client, Op::Init { expected: None });
            return;
        };
        let op = match roll {
            6..=11 => {
                // KIP-360: a client re-inits with the producer it held.
                let expected = if self.rng.chance(700) {
                    self.clients[client].producer
                } else {
                    None
                };
                Op::Init { expected }
            }
            12..=54 => {
                let all = partitions();
                let count = 1 + self.rng.below(3) as usize;
                let chosen = (0..count)
                    .map(|_| all[self.rng.below(all.len() as u64) as usize].clone())
                    .collect();
                Op::Add(chosen)
            }
            55..=64 => Op::Offsets(self.rng.below(2) as i32),
            65..=87 => Op::End(Outcome::Commit),
            _ => Op::End(Outcome::Abort),
        };
        self.ask(client, op);
    }

    fn retry_step(&mut self) {
        if self.clients.is_empty() {
            return;
        }
        let client = self.rng.below(self.clients.len() as u64) as usize;
        if let Some(op) = self.clients[client].last.clone() {
            self.ask(client, op);
        }
    }

    // ---- time and failover ----

    fn advance(&mut self, by_ms: u64) {
        self.now_ms += by_ms;
        let effects = self.coordinator.tick(self.now_ms);
        self.stats.timeouts += effects
            .iter()
            .filter(|e| {
                matches!(e, Effect::Append { record, .. }
                if record.metadata.as_ref().is_some_and(|m| m.state == TxnState::PrepareAbort))
            })
            .count() as u64;
        self.apply(effects);
        for (id, metadata) in self.coordinator.transactions() {
            if metadata.has_timed_out(self.now_ms) && !self.coordinator.is_pending(id) {
                self.fail(format!("{id} past its timeout after a tick: {metadata:?}"));
            }
        }
    }

    fn failover(&mut self) {
        self.stats.failovers += 1;
        let effects = self.coordinator.unload();
        self.apply(effects);
        // What reached the log before the old leader went: a prefix.
        let reached = self.rng.below(self.appends.len() as u64 + 1) as usize;
        for (_, record) in std::mem::take(&mut self.appends).iter().take(reached) {
            self.durable_record(record);
        }
        // Markers in flight are the old coordinator's: abandoned.
        self.markers.clear();
        self.coordinator_epoch += 1;
        self.coordinator = TxnCoordinator::new(config(), self.coordinator_epoch);
        if self.rng.chance(300) {
            // A request while it loads.
            let id = IDS[self.rng.below(IDS.len() as u64) as usize];
            let effects = self
                .coordinator
                .init_producer_id(u64::MAX, id, 1000, None, 0, || 1);
            if effects
                != [Effect::Respond {
                    request: u64::MAX,
                    result: Err(TxnError::CoordinatorLoadInProgress),
                }]
            {
                self.fail(format!("a request while loading: {effects:?}"));
            }
        }
        let mut records = Vec::with_capacity(self.log.len());
        for (key, value) in &self.log {
            match TxnRecord::decode(key, value) {
                Ok(record) => records.push(record),
                Err(error) => self.fail(format!("a durable record does not decode: {error}")),
            }
        }
        let effects = self.coordinator.load(records, self.now_ms);
        self.apply(effects);
    }

    // ---- checks ----

    fn check(&self) {
        let held: BTreeMap<String, TxnMetadata> = self
            .coordinator
            .transactions()
            .map(|(id, m)| (id.to_string(), m.clone()))
            .collect();
        if held != self.durable {
            self.fail(format!(
                "the coordinator holds {held:#?}\nthe log says {:#?}",
                self.durable
            ));
        }
        for (id, decisions) in &self.decisions {
            let deciding = self
                .durable
                .get(id)
                .is_some_and(|m| m.state.preparing().is_some());
            let open = decisions.iter().filter(|d| !d.completed).count();
            let allowed = usize::from(deciding);
            let last_open = decisions.last().is_some_and(|d| !d.completed);
            if open > allowed || (deciding && !last_open) {
                self.fail(format!(
                    "{id}: decisions {decisions:?} with {deciding} deciding"
                ));
            }
        }
    }

    fn query_step(&mut self) {
        for id in IDS {
            match (self.coordinator.describe(id), self.durable.get(id)) {
                (Ok(description), Some(durable)) => {
                    assert_eq!(description.state_name(), durable.state.name());
                    assert_eq!(description.producer, durable.producer());
                }
                (Err(TxnError::TransactionalIdNotFound), None) => {}
                (answer, durable) => self.fail(format!("describe {id}: {answer:?}, {durable:?}")),
            }
        }
        let ongoing = ListFilter {
            states: [TxnState::Ongoing].into(),
            ..ListFilter::default()
        };
        let listed = self
            .coordinator
            .list(&ongoing, self.now_ms)
            .expect("active");
        let expected = self
            .durable
            .values()
            .filter(|m| m.state == TxnState::Ongoing)
            .count();
        assert_eq!(listed.len(), expected, "seed {}", self.seed);
        // A partition leader verifies a producer (KIP-890 part 1).
        if let Some(client) = self.pick_client(IDS[0]) {
            if let (Some(producer), Some(durable)) =
                (self.clients[client].producer, self.durable.get(IDS[0]))
            {
                let asked = partitions();
                if let Ok(answers) = self.coordinator.verify_partitions(IDS[0], producer, &asked) {
                    for (tp, answer) in answers {
                        let held = durable.state == TxnState::Ongoing
                            && durable.producer() == producer
                            && durable.partitions.contains(&tp);
                        if held != answer.is_ok() {
                            self.fail(format!("verify of {tp:?} for {producer:?}: {answer:?}"));
                        }
                    }
                }
            }
        }
    }

    fn step(&mut self) {
        match self.rng.below(100) {
            0..=39 => self.client_step(),
            40..=54 => {
                if !self.appends.is_empty() {
                    let index = if self.rng.chance(700) {
                        0
                    } else {
                        self.rng.below(self.appends.len() as u64) as usize
                    };
                    let durable = self.rng.chance(800);
                    self.resolve_append(index, durable);
                }
            }
            55..=69 => {
                if !self.markers.is_empty() {
                    let index = self.rng.below(self.markers.len() as u64) as usize;
                    let result = match self.rng.below(100) {
                        0..=69 => Some(MarkerResult::Written),
                        70..=84 => Some(MarkerResult::Retriable),
                        85..=94 => None,
                        95..=97 => Some(MarkerResult::PartitionGone),
                        _ => Some(MarkerResult::Unsupported),
                    };
                    match result {
                        Some(result) => self.deliver_marker(index, result),
                        // Lost: the coordinator sends it again in time.
                        None => {
                            self.markers.remove(index);
                        }
                    }
                }
            }
            70..=84 => {
                let by = 1 + self.rng.below(200);
                self.advance(by);
            }
            85..=88 => {
                let by = 500 + self.rng.below(4_000);
                self.advance(by);
            }
            89..=93 => self.retry_step(),
            94..=95 => self.failover(),
            _ => self.query_step(),
        }
        self.check();
    }

    /// No more faults: appends become durable, markers are written, time
    /// runs, until nothing is left to do.
    fn quiesce(&mut self) {
        for _ in 0..QUIESCE_ROUNDS_MAX {
            while !self.appends.is_empty() {
                self.resolve_append(0, true);
                self.check();
            }
            while !self.markers.is_empty() {
                self.deliver_marker(0, MarkerResult::Written);
                self.check();
            }
            let settled = self.durable.values().all(|m| m.state.is_idle())
                && self.requests.is_empty()
                && self.appends.is_empty();
            if settled {
                break;
            }
            self.advance(config().markers_resend_ms + 500);
            self.check();
        }
        if !self.requests.is_empty() {
            self.fail(format!("requests never answered: {:?}", self.requests));
        }
        for (id, metadata) in &self.durable {
            if !metadata.state.is_idle() {
                self.fail(format!("{id} left {:?} after quiescing", metadata.state));
            }
        }
        for (id, decisions) in &self.decisions {
            for decision in decisions {
                if !decision.completed {
                    self.fail(format!("{id}'s decision never completed: {decision:?}"));
                }
            }
        }
    }
}

fn run(seed: u64) -> Stats {
    let mut sim = Sim::new(seed);
    for _ in 0..STEPS {
        sim.step();
    }
    sim.quiesce();
    sim.stats
}

#[test]
fn transactions_stay_decided_and_complete_through_faults_and_failovers() {
    let mut total = Stats::default();
    for seed in common::seeds(0, SEEDS) {
        let stats = run(seed);
        total.commits += stats.commits;
        total.aborts += stats.aborts;
        total.fenced += stats.fenced;
        total.failovers += stats.failovers;
        total.timeouts += stats.timeouts;
        total.rotations += stats.rotations;
    }
    // The schedules reach what they are meant to test.
    assert!(total.commits > 0, "{total:?}");
    assert!(total.aborts > 0, "{total:?}");
    assert!(total.fenced > 0, "{total:?}");
    assert!(total.failovers > 0, "{total:?}");
    assert!(total.timeouts > 0, "{total:?}");
    assert!(total.rotations > 0, "{total:?}");
    eprintln!("{total:?}");
}
