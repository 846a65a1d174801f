//! The coordinator's transitions, one request at a time: what each input
//! writes, when it answers, and its errors.

use super::*;

const TIMEOUT_MS: i32 = 60_000;

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

/// A loaded coordinator, and a producer id allocator.
struct Harness {
    coordinator: TxnCoordinator,
    next_producer_id: ProducerId,
    /// Every durable record, oldest first.
    log: Vec<TxnRecord>,
    /// Every marker sent, oldest first.
    sent: Vec<Marker>,
}

impl Harness {
    fn new() -> Harness {
        let mut coordinator = TxnCoordinator::new(TxnConfig::default(), 1);
        assert!(coordinator.load([], 0).is_empty());
        Harness {
            coordinator,
            next_producer_id: 1000,
            log: Vec::new(),
            sent: Vec::new(),
        }
    }

    /// Makes every append in `effects` durable (and those that follow),
    /// returning everything else.
    fn settle(&mut self, mut effects: Vec<Effect>, now_ms: u64) -> Vec<Effect> {
        let mut out = Vec::new();
        while let Some(effect) = (!effects.is_empty()).then(|| effects.remove(0)) {
            match effect {
                Effect::Append { append, record } => {
                    self.log.push(record);
                    effects.extend(self.coordinator.log_appended(append, now_ms));
                }
                other => {
                    self.sent.extend(markers(std::slice::from_ref(&other)));
                    out.push(other)
                }
            }
        }
        out
    }

    fn answer(effects: &[Effect], request: RequestId) -> Option<Result<Reply, TxnError>> {
        effects.iter().find_map(|effect| match effect {
            Effect::Respond { request: r, result } if *r == request => Some(result.clone()),
            _ => None,
        })
    }

    fn init(
        &mut self,
        id: &str,
        expected: Option<Producer>,
        now_ms: u64,
    ) -> Result<Reply, TxnError> {
        let mut next = self.next_producer_id;
        let effects =
            self.coordinator
                .init_producer_id(1, id, TIMEOUT_MS, expected, now_ms, || {
                    next += 1;
                    next
                });
        self.next_producer_id = next;
        let effects = self.settle(effects, now_ms);
        Harness::answer(&effects, 1).expect("init answered")
    }

    fn producer(&mut self, id: &str, now_ms: u64) -> Producer {
        match self.init(id, None, now_ms) {
            Ok(Reply::ProducerId(producer)) => producer,
            other => panic!("init of {id}: {other:?}"),
        }
    }

    fn add(
        &mut self,
        id: &str,
        producer: Producer,
        partitions: &[TopicPartition],
        now_ms: u64,
    ) -> Result<Reply, TxnError> {
        let effects = self
            .coordinator
            .add_partitions(2, id, producer, partitions, now_ms);
        let effects = self.settle(effects, now_ms);
        Harness::answer(&effects, 2).expect("add answered")
    }

    /// Ends and returns the answer and the markers sent.
    fn end(
        &mut self,
        id: &str,
        producer: Producer,
        outcome: Outcome,
        version: i16,
        now_ms: u64,
    ) -> (Result<Reply, TxnError>, Vec<Marker>) {
        let end = End {
            outcome,
            transaction_version: version,
        };
        let mut next = self.next_producer_id;
        let effects = self.coordinator.end_txn(3, id, producer, end, now_ms, || {
            next += 1;
            next
        });
        self.next_producer_id = next;
        let effects = self.settle(effects, now_ms);
        (
            Harness::answer(&effects, 3).expect("end answered"),
            markers(&effects),
        )
    }

    fn write_markers(
        &mut self,
        id: &str,
        markers: &[Marker],
        result: MarkerResult,
        now_ms: u64,
    ) -> Vec<Effect> {
        let Some(first) = markers.first() else {
            return Vec::new();
        };
        let results: Vec<_> = markers
            .iter()
            .map(|marker| (marker.topic_partition.clone(), result))
            .collect();
        let effects = self
            .coordinator
            .markers_written(id, first.decision, &results, now_ms);
        self.settle(effects, now_ms)
    }

    fn state(&self, id: &str) -> TxnState {
        self.coordinator.metadata(id).expect("id held").state
    }
}

fn markers(effects: &[Effect]) -> Vec<Marker> {
    effects
        .iter()
        .flat_map(|effect| match effect {
            Effect::SendMarkers { markers, .. } => markers.clone(),
            _ => Vec::new(),
        })
        .collect()
}

#[test]
fn nothing_is_served_before_load_or_after_unload() {
    let mut coordinator = TxnCoordinator::new(TxnConfig::default(), 3);
    let effects = coordinator.init_producer_id(7, "a", TIMEOUT_MS, None, 0, || 1);
    assert_eq!(
        effects,
        vec![Effect::Respond {
            request: 7,
            result: Err(TxnError::CoordinatorLoadInProgress)
        }]
    );
    assert_eq!(
        coordinator.describe("a"),
        Err(TxnError::CoordinatorLoadInProgress)
    );
    coordinator.load([], 0);
    let effects = coordinator.init_producer_id(8, "a", TIMEOUT_MS, None, 0, || 1);
    assert!(matches!(effects[0], Effect::Append { .. }));
    // Unloaded with the init pending: it is answered NOT_COORDINATOR.
    assert_eq!(
        coordinator.unload(),
        vec![Effect::Respond {
            request: 8,
            result: Err(TxnError::NotCoordinator)
        }]
    );
    let effects = coordinator.init_producer_id(9, "a", TIMEOUT_MS, None, 0, || 1);
    assert_eq!(
        effects,
        vec![Effect::Respond {
            request: 9,
            result: Err(TxnError::NotCoordinator)
        }]
    );
    // The durable report of the append made before the unload is ignored.
    assert!(coordinator.log_appended(0, 0).is_empty());
}

#[test]
fn an_answer_waits_for_its_record_to_be_durable() {
    let mut coordinator = TxnCoordinator::new(TxnConfig::default(), 1);
    coordinator.load([], 0);
    let effects = coordinator.init_producer_id(1, "a", TIMEOUT_MS, None, 5, || 77);
    let [Effect::Append { append, record }] = effects.as_slice() else {
        panic!("one append: {effects:?}");
    };
    let written = record.metadata.clone().unwrap();
    assert_eq!(written.producer(), Producer::new(77, 0));
    assert_eq!(
        coordinator.metadata("a"),
        None,
        "not applied before durable"
    );
    // Meanwhile: retry.
    let effects = coordinator.init_producer_id(2, "a", TIMEOUT_MS, None, 5, || 78);
    assert_eq!(
        effects,
        vec![Effect::Respond {
            request: 2,
            result: Err(TxnError::ConcurrentTransactions)
        }]
    );
    assert_eq!(
        coordinator.log_appended(*append, 6),
        vec![Effect::Respond {
            request: 1,
            result: Ok(Reply::ProducerId(Producer::new(77, 0)))
        }]
    );
    assert_eq!(coordinator.metadata("a"), Some(&written));
}

#[test]
fn a_failed_append_rolls_back_and_answers_the_error() {
    let mut h = Harness::new();
    let producer = h.producer("a", 0);
    let before = h.coordinator.metadata("a").cloned();
    let effects = h
        .coordinator
        .add_partitions(5, "a", producer, &[tp("t", 0)], 10);
    let [Effect::Append { append, .. }] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    assert_eq!(
        h.coordinator
            .log_failed(*append, TxnError::CoordinatorNotAvailable),
        vec![Effect::Respond {
            request: 5,
            result: Err(TxnError::CoordinatorNotAvailable)
        }]
    );
    assert_eq!(h.coordinator.metadata("a").cloned(), before);
    assert!(!h.coordinator.is_pending("a"));
    // A new id whose first record failed is not held at all.
    let effects = h
        .coordinator
        .init_producer_id(6, "b", TIMEOUT_MS, None, 0, || 5);
    let [Effect::Append { append, .. }] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    h.coordinator.log_failed(*append, TxnError::NotCoordinator);
    assert_eq!(
        h.coordinator.describe("b"),
        Err(TxnError::TransactionalIdNotFound)
    );
}

#[test]
fn a_transaction_commits_through_its_markers() {
    let mut h = Harness::new();
    let producer = h.producer("a", 0);
    assert_eq!(
        h.add("a", producer, &[tp("t", 0), tp("t", 1)], 1),
        Ok(Reply::Added)
    );
    let effects = h.coordinator.add_offsets(4, "a", producer, 7, 2);
    let effects = h.settle(effects, 2);
    assert_eq!(Harness::answer(&effects, 4), Some(Ok(Reply::Added)));
    assert!(h.coordinator.metadata("a").unwrap().has_offsets_of(7));
    assert_eq!(h.state("a"), TxnState::Ongoing);
    let (answer, sent) = h.end("a", producer, Outcome::Commit, 0, 3);
    assert_eq!(answer, Ok(Reply::Ended(producer)));
    assert_eq!(h.state("a"), TxnState::PrepareCommit);
    assert_eq!(sent.len(), 3);
    for marker in &sent {
        assert_eq!(marker.outcome, Outcome::Commit);
        assert_eq!(marker.producer, producer);
        assert_eq!(marker.coordinator_epoch, 1);
    }
    assert!(sent
        .iter()
        .any(|m| m.topic_partition == tp(OFFSETS_TOPIC, 7)));
    // A retry while the markers are written: retry later.
    assert_eq!(
        h.end("a", producer, Outcome::Commit, 0, 4).0,
        Err(TxnError::ConcurrentTransactions)
    );
    // One marker fails transiently: it alone is sent again.
    let effects = h.write_markers("a", &sent[..1], MarkerResult::Retriable, 5);
    assert_eq!(markers(&effects), sent[..1].to_vec());
    h.write_markers("a", &sent[1..], MarkerResult::Written, 6);
    assert_eq!(h.state("a"), TxnState::PrepareCommit);
    h.write_markers("a", &sent[..1], MarkerResult::Written, 7);
    assert_eq!(h.state("a"), TxnState::CompleteCommit);
    assert!(h.coordinator.metadata("a").unwrap().partitions.is_empty());
    // The retry now answers success; the other outcome is refused.
    assert_eq!(
        h.end("a", producer, Outcome::Commit, 0, 8).0,
        Ok(Reply::Ended(producer))
    );
    assert_eq!(
        h.end("a", producer, Outcome::Abort, 0, 8).0,
        Err(TxnError::InvalidTxnState)
    );
    let kinds: Vec<_> = h
        .log
        .iter()
        .map(|record| record.metadata.as_ref().unwrap().state)
        .collect();
    assert_eq!(
        kinds,
        [
            TxnState::Empty,
            TxnState::Ongoing,
            TxnState::Ongoing,
            TxnState::PrepareCommit,
            TxnState::CompleteCommit
        ]
    );
}

#[test]
fn markers_of_deleted_or_refusing_partitions_are_dropped_and_stale_answers_ignored() {
    let mut h = Harness::new();
    let producer = h.producer("a", 0);
    h.add("a", producer, &[tp("t", 0), tp("gone", 0), tp("old", 0)], 1)
        .unwrap();
    let (_, sent) = h.end("a", producer, Outcome::Abort, 0, 2);
    let result = |tp: &TopicPartition| match tp.topic.as_str() {
        "gone" => MarkerResult::PartitionGone,
        "old" => MarkerResult::Unsupported,
        _ => MarkerResult::CoordinatorFenced,
    };
    let results: Vec<_> = sent
        .iter()
        .map(|m| (m.topic_partition.clone(), result(&m.topic_partition)))
        .collect();
    assert!(h
        .coordinator
        .markers_written("a", sent[0].decision, &results, 3)
        .is_empty());
    // An answer for another transaction changes nothing.
    let stale = [(tp("t", 0), MarkerResult::Written)];
    assert!(h
        .coordinator
        .markers_written("a", sent[0].decision + 1, &stale, 3)
        .is_empty());
    assert_eq!(h.state("a"), TxnState::PrepareAbort);
    // Unanswered: tick sends the last one again once markers_resend_ms passed.
    assert!(markers(&h.coordinator.tick(4)).is_empty());
    let resend_at = 3 + TxnConfig::default().markers_resend_ms;
    let again = markers(&h.coordinator.tick(resend_at));
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].topic_partition, tp("t", 0));
    h.write_markers("a", &again, MarkerResult::Written, resend_at);
    assert_eq!(h.state("a"), TxnState::CompleteAbort);
}

#[test]
fn a_late_marker_answer_of_an_earlier_transaction_is_not_taken_for_the_next() {
    // The classic protocol keeps the producer's epoch across transactions.
    let mut h = Harness::new();
    let producer = h.producer("a", 0);
    h.add("a", producer, &[tp("t", 0)], 1).unwrap();
    let (_, first) = h.end("a", producer, Outcome::Commit, 0, 2);
    h.write_markers("a", &first, MarkerResult::Written, 3);
    h.add("a", producer, &[tp("t", 0)], 4).unwrap();
    let (_, second) = h.end("a", producer, Outcome::Abort, 0, 5);
    assert_eq!(first[0].producer, second[0].producer);
    // A duplicate answer to the first transaction's marker arrives late.
    h.write_markers("a", &first, MarkerResult::Written, 6);
    assert_eq!(h.state("a"), TxnState::PrepareAbort);
    h.write_markers("a", &second, MarkerResult::Written, 7);
    assert_eq!(h.state("a"), TxnState::CompleteAbort);
}

#[test]
fn init_during_a_transaction_aborts_it_and_asks_to_retry() {
    let mut h = Harness::new();
    let old = h.producer("a", 0);
    h.add("a", old, &[tp("t", 0)], 1).unwrap();
    assert_eq!(h.init("a", None, 2), Err(TxnError::ConcurrentTransactions));
    let fenced = h.coordinator.metadata("a").unwrap().clone();
    assert_eq!(fenced.state, TxnState::PrepareAbort);
    assert_eq!(fenced.producer_epoch, old.epoch + 1);
    // Still writing markers: retry.
    assert_eq!(h.init("a", None, 3), Err(TxnError::ConcurrentTransactions));
    // The zombie cannot commit.
    assert_eq!(
        h.end("a", old, Outcome::Commit, 0, 3).0,
        Err(TxnError::ProducerFenced)
    );
    let markers = h.sent.clone();
    assert_eq!(markers.len(), 1);
    assert_eq!(markers[0].producer, fenced.producer());
    assert_eq!(markers[0].outcome, Outcome::Abort);
    h.write_markers("a", &markers, MarkerResult::Written, 4);
    assert_eq!(h.state("a"), TxnState::CompleteAbort);
    let new = h.producer("a", 5);
    assert_eq!(new, Producer::new(old.id, old.epoch + 2));
    assert_eq!(
        h.add("a", old, &[tp("t", 1)], 6),
        Err(TxnError::ProducerFenced)
    );
}

#[test]
fn a_transaction_past_its_timeout_is_aborted_by_tick() {
    let mut h = Harness::new();
    let producer = h.producer("a", 0);
    h.add("a", producer, &[tp("t", 0)], 1_000).unwrap();
    assert!(h.coordinator.tick(1_000 + TIMEOUT_MS as u64).is_empty());
    let effects = h.coordinator.tick(1_001 + TIMEOUT_MS as u64);
    let effects = h.settle(effects, 1_001 + TIMEOUT_MS as u64);
    let sent = markers(&effects);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].outcome, Outcome::Abort);
    assert_eq!(
        sent[0].producer,
        Producer::new(producer.id, producer.epoch + 1)
    );
    // The producer wakes up and commits: fenced, with either protocol.
    assert_eq!(
        h.end("a", producer, Outcome::Commit, 0, 70_000).0,
        Err(TxnError::ProducerFenced)
    );
    h.write_markers("a", &sent, MarkerResult::Written, 70_000);
    assert_eq!(
        h.end("a", producer, Outcome::Commit, 2, 70_000).0,
        Err(TxnError::ProducerFenced)
    );
    assert_eq!(
        h.end("a", producer, Outcome::Commit, 0, 70_000).0,
        Err(TxnError::ProducerFenced)
    );
}

#[test]
fn version_2_ends_carry_the_bumped_epoch_and_markers_use_it() {
    let mut h = Harness::new();
    let producer = h.producer("a", 0);
    h.add("a", producer, &[tp("t", 0)], 1).unwrap();
    let (answer, sent) = h.end("a", producer, Outcome::Commit, 2, 2);
    let next = Producer::new(producer.id, producer.epoch + 1);
    assert_eq!(answer, Ok(Reply::Ended(next)));
    assert_eq!(sent[0].producer, next);
    h.write_markers("a", &sent, MarkerResult::Written, 3);
    // The retry with the old epoch: success, the new producer.
    assert_eq!(
        h.end("a", producer, Outcome::Commit, 2, 4).0,
        Ok(Reply::Ended(next))
    );
    // Abort with nothing added bumps again, with no markers to write.
    let (answer, sent) = h.end("a", next, Outcome::Abort, 2, 5);
    assert_eq!(
        answer,
        Ok(Reply::Ended(Producer::new(producer.id, producer.epoch + 2)))
    );
    assert!(sent.is_empty());
    assert_eq!(h.state("a"), TxnState::CompleteAbort);
}

#[test]
fn invalid_requests() {
    let mut h = Harness::new();
    let answer = |effects: Vec<Effect>| Harness::answer(&effects, 1).unwrap();
    let big = "x".repeat(TRANSACTIONAL_ID_BYTES_MAX + 1);
    assert!(matches!(
        answer(
            h.coordinator
                .init_producer_id(1, "", TIMEOUT_MS, None, 0, || 1)
        ),
        Err(TxnError::InvalidRequest { .. })
    ));
    assert!(matches!(
        answer(
            h.coordinator
                .init_producer_id(1, &big, TIMEOUT_MS, None, 0, || 1)
        ),
        Err(TxnError::InvalidRequest { .. })
    ));
    for timeout_ms in [0, -5, 900_001] {
        assert_eq!(
            answer(
                h.coordinator
                    .init_producer_id(1, "a", timeout_ms, None, 0, || 1)
            ),
            Err(TxnError::InvalidTransactionTimeout {
                timeout_ms,
                max_ms: 900_000
            })
        );
    }
    let producer = h.producer("a", 0);
    let long_topic = "t".repeat(TOPIC_NAME_BYTES_MAX + 1);
    for bad in [tp("", 0), tp(&long_topic, 0), tp("t", -1)] {
        assert!(matches!(
            h.add("a", producer, &[bad], 1),
            Err(TxnError::InvalidRequest { .. })
        ));
    }
    assert_eq!(
        h.add("nobody", producer, &[tp("t", 0)], 1),
        Err(TxnError::InvalidProducerIdMapping)
    );
    assert_eq!(
        h.end("nobody", producer, Outcome::Commit, 0, 1).0,
        Err(TxnError::InvalidProducerIdMapping)
    );
    assert_eq!(
        h.coordinator.verify_partitions("nobody", producer, &[]),
        Err(TxnError::InvalidProducerIdMapping)
    );
}

#[test]
fn verify_only_sees_durable_partitions() {
    let mut h = Harness::new();
    let producer = h.producer("a", 0);
    h.add("a", producer, &[tp("t", 0)], 1).unwrap();
    let effects = h
        .coordinator
        .add_partitions(9, "a", producer, &[tp("t", 1)], 2);
    let check = h
        .coordinator
        .verify_partitions("a", producer, &[tp("t", 0), tp("t", 1)])
        .unwrap();
    assert_eq!(check[0].1, Ok(()));
    assert_eq!(
        check[1].1,
        Err(TxnError::InvalidTxnState),
        "not yet durable"
    );
    h.settle(effects, 2);
    let check = h
        .coordinator
        .verify_partitions("a", producer, &[tp("t", 1)])
        .unwrap();
    assert_eq!(check[0].1, Ok(()));
}

#[test]
fn load_takes_the_last_record_of_each_id_and_finishes_what_was_decided() {
    let mut h = Harness::new();
    let a = h.producer("a", 0);
    h.add("a", a, &[tp("t", 0), tp("t", 1)], 1).unwrap();
    let (_, sent) = h.end("a", a, Outcome::Commit, 0, 2);
    h.write_markers("a", &sent[..1], MarkerResult::Written, 3);
    h.producer("c", 4);
    let now = 4 + TxnConfig::default().transactional_id_expiration_ms;
    let expired = h.coordinator.tick(now);
    assert!(
        expired
            .iter()
            .any(|e| matches!(e, Effect::Append { record, .. }
            if record.transactional_id == "c" && record.metadata.is_none())),
        "{expired:?}"
    );
    h.settle(expired, now);
    assert_eq!(h.coordinator.metadata("c"), None);
    let b = h.producer("b", now + 1);
    h.add("b", b, &[tp("u", 0)], now + 5).unwrap();
    let durable: Vec<_> = h
        .coordinator
        .transactions()
        .map(|(id, m)| (id.to_string(), m.clone()))
        .collect();
    // A new coordinator from the records alone.
    let mut next = TxnCoordinator::new(TxnConfig::default(), 2);
    let effects = next.load(h.log.clone(), now + 10);
    let loaded: Vec<_> = next
        .transactions()
        .map(|(id, m)| (id.to_string(), m.clone()))
        .collect();
    assert_eq!(loaded, durable);
    // "a" was decided: all its markers are sent again, at the new epoch.
    let again = markers(&effects);
    assert_eq!(again.len(), 2);
    assert!(again
        .iter()
        .all(|m| m.coordinator_epoch == 2 && m.outcome == Outcome::Commit));
    // "b" keeps its start, so it times out on schedule.
    assert_eq!(next.metadata("b").unwrap().start_ms, Some(now + 5));
    assert_eq!(next.describe("c"), Err(TxnError::TransactionalIdNotFound));
}

#[test]
fn describe_list_and_admin_abort() {
    let mut h = Harness::new();
    let a = h.producer("a", 0);
    h.add("a", a, &[tp("t", 0)], 100).unwrap();
    let b = h.producer("b", 0);
    let description = h.coordinator.describe("a").unwrap();
    assert_eq!(description.state_name(), "Ongoing");
    assert_eq!(description.producer, a);
    assert_eq!(description.start_ms, Some(100));
    assert_eq!(description.partitions, [tp("t", 0)].into());
    let all = h.coordinator.list(&ListFilter::default(), 200).unwrap();
    assert_eq!(all.len(), 2);
    let ongoing = ListFilter {
        states: [TxnState::Ongoing].into(),
        ..ListFilter::default()
    };
    let listed = h.coordinator.list(&ongoing, 200).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].transactional_id, "a");
    let by_producer = ListFilter {
        producer_ids: [b.id].into(),
        ..ListFilter::default()
    };
    assert_eq!(
        h.coordinator.list(&by_producer, 200).unwrap()[0].transactional_id,
        "b"
    );
    let long = |at_least| ListFilter {
        running_at_least_ms: Some(at_least),
        ..ListFilter::default()
    };
    assert_eq!(h.coordinator.list(&long(100), 200).unwrap().len(), 1);
    assert_eq!(h.coordinator.list(&long(101), 200).unwrap().len(), 0);
    // The admin aborts the hanging one.
    let effects = h.coordinator.admin_abort(11, "a", 300);
    let effects = h.settle(effects, 300);
    assert_eq!(Harness::answer(&effects, 11), Some(Ok(Reply::Aborted)));
    assert_eq!(h.state("a"), TxnState::PrepareAbort);
    assert_eq!(markers(&effects)[0].producer.epoch, a.epoch + 1);
    let effects = h.coordinator.admin_abort(12, "b", 300);
    assert_eq!(
        Harness::answer(&effects, 12),
        Some(Err(TxnError::InvalidTxnState))
    );
    let effects = h.coordinator.admin_abort(13, "zz", 300);
    assert_eq!(
        Harness::answer(&effects, 13),
        Some(Err(TxnError::TransactionalIdNotFound))
    );
}

#[test]
fn a_failed_completion_is_written_again_by_tick() {
    let mut h = Harness::new();
    let a = h.producer("a", 0);
    h.add("a", a, &[tp("t", 0)], 1).unwrap();
    let (_, sent) = h.end("a", a, Outcome::Commit, 0, 2);
    let results = [(sent[0].topic_partition.clone(), MarkerResult::Written)];
    let effects = h
        .coordinator
        .markers_written("a", sent[0].decision, &results, 3);
    let [Effect::Append { append, .. }] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    assert!(h
        .coordinator
        .log_failed(*append, TxnError::CoordinatorNotAvailable)
        .is_empty());
    assert_eq!(h.state("a"), TxnState::PrepareCommit);
    let effects = h.coordinator.tick(4);
    h.settle(effects, 4);
    assert_eq!(h.state("a"), TxnState::CompleteCommit);
}

#[test]
fn legacy_clients_get_invalid_producer_epoch() {
    assert_eq!(
        TxnError::ProducerFenced.for_legacy_client(),
        TxnError::InvalidProducerEpoch
    );
    assert_eq!(
        TxnError::InvalidTxnState.for_legacy_client(),
        TxnError::InvalidTxnState
    );
    assert!(TxnError::ConcurrentTransactions.is_retriable());
    assert!(!TxnError::ProducerFenced.is_retriable());
}
