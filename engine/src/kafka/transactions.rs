//! Kafka's transaction APIs: InitProducerId with a transactional id,
//! AddPartitionsToTxn (a producer's, and a partition leader's
//! `verify_only` check of KIP-890), AddOffsetsToTxn, EndTxn, and the
//! admin's DescribeTransactions and ListTransactions, each run on the
//! shard that coordinates its transactional id
//! ([`txn::routing::on_coordinator`]); and WriteTxnMarkers, served by a
//! partition's leader (the coordinators send theirs on the peer network,
//! an admin tool's abort of a hanging transaction sends it here).

use std::{collections::BTreeSet, rc::Rc};

use kafka_protocol::{
    error::ResponseError,
    messages::{
        add_partitions_to_txn_request::AddPartitionsToTxnTopic,
        add_partitions_to_txn_response::{AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult},
        describe_transactions_response::{self, TopicData},
        list_transactions_response, AddOffsetsToTxnRequest, AddOffsetsToTxnResponse,
        AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, DescribeTransactionsRequest,
        DescribeTransactionsResponse, EndTxnRequest, EndTxnResponse, InitProducerIdRequest,
        InitProducerIdResponse, ListTransactionsRequest, ListTransactionsResponse, ProducerId,
        TransactionalId, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
    },
};
use sluice_replication::txn::{
    Effect, End, ListFilter, Outcome, Producer, Reply, RequestId, TopicPartition, TxnCoordinator,
    TxnError, TxnState, TRANSACTION_VERSION_EPOCH_BUMP,
};

use super::{failure_code, str_bytes, topic_name};
use crate::{
    coordinator::{self, routing::offsets_partition},
    shard::Shard,
    txn::{admin, codes::txn_error_code, driver, markers, routing},
};

fn transactional_id(id: &TransactionalId) -> String {
    id.0.to_string()
}

/// InitProducerId for a transactional id: the producer id and the epoch
/// to use, the id's previous producer fenced.
pub async fn init_producer_id(
    shard: &Rc<Shard>,
    request: InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    let id = request
        .transactional_id
        .as_ref()
        .map(transactional_id)
        .unwrap_or_default();
    let timeout = request.transaction_timeout_ms;
    // A producer recovering from an error gives back what it held
    // (KIP-360).
    let expected = (request.producer_id.0 >= 0 && request.producer_epoch >= 0)
        .then(|| Producer::new(request.producer_id.0, request.producer_epoch));
    let asked = id.clone();
    let result = call_with_ids(shard, &id, move |core, request, now, next_id| {
        core.init_producer_id(request, &asked, timeout, expected, now, next_id)
    })
    .await;
    let response = InitProducerIdResponse::default();
    match result {
        Ok(Reply::ProducerId(producer)) => response
            .with_producer_id(ProducerId(producer.id))
            .with_producer_epoch(producer.epoch),
        other => response
            .with_error_code(code_of(other, version < 4))
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    }
}

/// Runs `ask` on the coordinator of `id` with a new producer id at hand,
/// should it need one (a new id, an epoch used up): this shard's block is
/// made ready first, so that taking one cannot wait.
async fn call_with_ids<A>(shard: &Rc<Shard>, id: &str, ask: A) -> Result<Reply, TxnError>
where
    A: FnOnce(&mut TxnCoordinator, RequestId, u64, &dyn Fn() -> i64) -> Vec<Effect>
        + Send
        + 'static,
{
    routing::on_coordinator(shard, id, move |there, partition| async move {
        super::producer_id::ensure_ids(&there)
            .await
            .map_err(|_| TxnError::CoordinatorNotAvailable)?;
        let ids = there.clone();
        let next_id = move || {
            ids.producer_ids
                .borrow_mut()
                .next()
                .expect("a producer id was made ready just before")
        };
        driver::call(&there, partition, move |core, request, now| {
            ask(core, request, now, &next_id)
        })
        .await
    })
    .await
    .and_then(|result| result)
}

/// The code of a request's result (0 for success).
fn code_of(result: Result<Reply, TxnError>, legacy: bool) -> i16 {
    result
        .err()
        .map_or(0, |error| txn_error_code(error, legacy))
}

/// AddPartitionsToTxn: a producer's partitions join its transaction
/// (versions 0 to 3), or, from version 4, a batch of transactions, each
/// added or (`verify_only`, KIP-890) only checked.
pub async fn add_partitions_to_txn(
    shard: &Rc<Shard>,
    request: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    let response = AddPartitionsToTxnResponse::default();
    if version <= 3 {
        let producer = Producer::new(
            request.v3_and_below_producer_id.0,
            request.v3_and_below_producer_epoch,
        );
        let id = transactional_id(&request.v3_and_below_transactional_id);
        let results = add_or_verify(
            shard,
            &id,
            producer,
            false,
            &request.v3_and_below_topics,
            version < 2,
        )
        .await;
        return response.with_results_by_topic_v3_and_below(results);
    }
    let mut transactions = Vec::new();
    for transaction in request.transactions {
        let id = transactional_id(&transaction.transactional_id);
        let producer = Producer::new(transaction.producer_id.0, transaction.producer_epoch);
        let results = add_or_verify(
            shard,
            &id,
            producer,
            transaction.verify_only,
            &transaction.topics,
            false,
        )
        .await;
        transactions.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(transaction.transactional_id)
                .with_topic_results(results),
        );
    }
    response.with_results_by_transaction(transactions)
}

/// One transaction's partitions added (or verified), each partition's
/// code. Partitions that do not exist make the whole request fail, as in
/// Kafka: `UNKNOWN_TOPIC_OR_PARTITION` for them, `OPERATION_NOT_ATTEMPTED`
/// for the others.
async fn add_or_verify(
    shard: &Rc<Shard>,
    id: &str,
    producer: Producer,
    verify_only: bool,
    topics: &[AddPartitionsToTxnTopic],
    legacy: bool,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let metadata = shard.metadata();
    let partitions = markers::partitions_of(topics);
    let exists = |tp: &TopicPartition| {
        metadata.topic(&tp.topic).is_some_and(|topic| {
            u32::try_from(tp.partition).is_ok_and(|p| p < topic.partition_count())
        })
    };
    let codes: Vec<i16> = if !verify_only && !partitions.iter().all(exists) {
        partitions
            .iter()
            .map(|tp| {
                if exists(tp) {
                    ResponseError::OperationNotAttempted.code()
                } else {
                    ResponseError::UnknownTopicOrPartition.code()
                }
            })
            .collect()
    } else if verify_only {
        match markers::join(
            shard,
            id,
            producer,
            partitions.clone(),
            markers::Joining::Verify,
        )
        .await
        {
            Ok(verified) => verified
                .into_iter()
                .map(|(_, result)| result.err().map_or(0, |e| txn_error_code(e, legacy)))
                .collect(),
            Err(error) => vec![txn_error_code(error, legacy); partitions.len()],
        }
    } else {
        let asked = (id.to_string(), partitions.clone());
        let result = routing::on_coordinator(shard, id, move |there, partition| async move {
            let (id, partitions) = asked;
            driver::call_when_settled(&there, partition, &id, |core, request, now| {
                core.add_partitions(request, &id, producer, &partitions, now)
            })
            .await
        })
        .await
        .and_then(|result| result);
        vec![code_of(result, legacy); partitions.len()]
    };
    markers::topic_results(&partitions, codes)
}

/// AddOffsetsToTxn: the group's partition of `__consumer_offsets` joins
/// the transaction, so that the offsets the producer commits for the
/// group (TxnOffsetCommit) are committed or aborted with it.
pub async fn add_offsets_to_txn(
    shard: &Rc<Shard>,
    request: AddOffsetsToTxnRequest,
    version: i16,
) -> AddOffsetsToTxnResponse {
    let legacy = version < 2;
    let group = request.group_id.0.to_string();
    let response = AddOffsetsToTxnResponse::default();
    // The offsets topic exists once the group has a coordinator.
    if let Err(error) = coordinator::routing::coordinator_node(shard, &group).await {
        return response.with_error_code(super::group_error_code(error));
    }
    let Some((_, group_key)) = offsets_partition(shard, &shard.metadata(), &group) else {
        return response.with_error_code(ResponseError::CoordinatorNotAvailable.code());
    };
    let group_partition = group_key.partition.0 as i32;
    let id = transactional_id(&request.transactional_id);
    let producer = Producer::new(request.producer_id.0, request.producer_epoch);
    let asked = id.clone();
    let result = routing::on_coordinator(shard, &id, move |there, partition| async move {
        driver::call_when_settled(&there, partition, &asked, |core, request, now| {
            core.add_offsets(request, &asked, producer, group_partition, now)
        })
        .await
    })
    .await
    .and_then(|result| result);
    response.with_error_code(code_of(result, legacy))
}

/// EndTxn: the producer commits or aborts; answered once the outcome is
/// durable (the markers follow). From version 5 (KIP-890 part 2) every
/// end bumps the producer's epoch, and the answer carries the producer to
/// use next.
pub async fn end_txn(shard: &Rc<Shard>, request: EndTxnRequest, version: i16) -> EndTxnResponse {
    let id = transactional_id(&request.transactional_id);
    let producer = Producer::new(request.producer_id.0, request.producer_epoch);
    let end = End {
        outcome: if request.committed {
            Outcome::Commit
        } else {
            Outcome::Abort
        },
        transaction_version: if version >= 5 {
            TRANSACTION_VERSION_EPOCH_BUMP
        } else {
            0
        },
    };
    let asked = id.clone();
    let result = call_with_ids(shard, &id, move |core, request, now, next_id| {
        core.end_txn(request, &asked, producer, end, now, next_id)
    })
    .await;
    let response = EndTxnResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    match result {
        Ok(Reply::Ended(next)) => response
            .with_producer_id(ProducerId(next.id))
            .with_producer_epoch(next.epoch),
        other => response.with_error_code(code_of(other, version < 2)),
    }
}

/// WriteTxnMarkers: markers appended to partitions this node leads, each
/// answered once its in-sync replicas hold it (an operator's: no
/// coordinator's fence applies).
pub async fn write_txn_markers(
    shard: &Rc<Shard>,
    request: WriteTxnMarkersRequest,
    _version: i16,
) -> WriteTxnMarkersResponse {
    markers::serve(shard, request, None, |answer| {
        answer.as_ref().err().map_or(0, failure_code)
    })
    .await
}

/// DescribeTransactions: each id's state, from its coordinator.
pub async fn describe_transactions(
    shard: &Rc<Shard>,
    request: DescribeTransactionsRequest,
    _version: i16,
) -> DescribeTransactionsResponse {
    let mut states = Vec::new();
    for id in request.transactional_ids {
        let described = admin::describe(shard, &transactional_id(&id)).await;
        let state =
            describe_transactions_response::TransactionState::default().with_transactional_id(id);
        states.push(match described {
            Ok(described) => {
                let mut topics: Vec<TopicData> = Vec::new();
                for tp in &described.partitions {
                    match topics.last_mut() {
                        Some(topic) if topic.topic.0.as_str() == tp.topic => {
                            topic.partitions.push(tp.partition)
                        }
                        _ => topics.push(
                            TopicData::default()
                                .with_topic(topic_name(&tp.topic))
                                .with_partitions(vec![tp.partition]),
                        ),
                    }
                }
                state
                    .with_transaction_state(str_bytes(described.state_name()))
                    .with_transaction_timeout_ms(
                        i32::try_from(described.timeout_ms).unwrap_or(i32::MAX),
                    )
                    .with_transaction_start_time_ms(
                        described.start_ms.map_or(-1, |start| start as i64),
                    )
                    .with_producer_id(ProducerId(described.producer.id))
                    .with_producer_epoch(described.producer.epoch)
                    .with_topics(topics)
            }
            Err(error) => state
                .with_error_code(txn_error_code(error, false))
                .with_transaction_state(str_bytes(""))
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        });
    }
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

/// ListTransactions: the transactional ids this node coordinates (an admin
/// client asks every broker), filtered by state, producer id and, from
/// version 1, how long they have run.
pub async fn list_transactions(
    shard: &Rc<Shard>,
    request: ListTransactionsRequest,
    _version: i16,
) -> ListTransactionsResponse {
    let mut filter = ListFilter::default();
    let mut unknown = Vec::new();
    for name in request.state_filters {
        match TxnState::from_name(name.as_str()) {
            Some(state) => {
                filter.states.insert(state);
            }
            None => unknown.push(name),
        }
    }
    filter.producer_ids = request
        .producer_id_filters
        .iter()
        .map(|id| id.0)
        .collect::<BTreeSet<_>>();
    filter.running_at_least_ms = u64::try_from(request.duration_filter).ok();
    let listed = admin::list(shard, filter).await;
    let response = ListTransactionsResponse::default().with_unknown_state_filters(unknown);
    match listed {
        Ok(listed) => response.with_transaction_states(
            listed
                .into_iter()
                .map(|listing| {
                    list_transactions_response::TransactionState::default()
                        .with_transactional_id(TransactionalId(str_bytes(listing.transactional_id)))
                        .with_producer_id(ProducerId(listing.producer_id))
                        .with_transaction_state(str_bytes(listing.state.name()))
                })
                .collect(),
        ),
        Err(error) => response.with_error_code(txn_error_code(error, false)),
    }
}
