//! Transactions for an operator: which node coordinates an id, the ids
//! this node coordinates, one described, one's ongoing transaction
//! aborted ([`crate::txn::admin`] does each); and a transaction hanging on
//! a partition this node leads aborted with a marker
//! ([`crate::txn::markers::write_here`]).

use std::{collections::BTreeSet, rc::Rc};

use sluice_net::native::{
    messages::{
        AbortPartitionTransactionRequest, AbortTransactionRequest, DescribeTransactionRequest,
        DescribeTransactionResponse, FindTxnCoordinatorRequest, FindTxnCoordinatorResponse,
        ListTransactionsRequest, ListTransactionsResponse, TransactionListing,
        TransactionPartition, TransactionResult, TRANSACTIONS_LISTED_BYTES_MAX,
    },
    wire::Wire,
    ErrorCode,
};
use sluice_replication::txn::{
    ListFilter, Outcome, Producer, TxnError, TxnState, TOPIC_NAME_BYTES_MAX,
    TRANSACTIONAL_ID_BYTES_MAX,
};

use super::error_code;
use crate::{
    partition::{ask, route, ErrorKind, Failure, PartitionOp},
    shard::Shard,
    txn::{
        admin,
        markers::{self, MarkerWrite},
        routing, TXN_TOPIC,
    },
};

/// The native code for a coordinator's refusal.
fn txn_code(error: &TxnError) -> ErrorCode {
    match error {
        TxnError::ConcurrentTransactions => ErrorCode::ConcurrentTransactions,
        TxnError::InvalidProducerEpoch | TxnError::ProducerFenced => ErrorCode::ProducerFenced,
        TxnError::InvalidTxnState => ErrorCode::InvalidTxnState,
        TxnError::NotCoordinator => ErrorCode::NotCoordinator,
        TxnError::CoordinatorNotAvailable | TxnError::CoordinatorLoadInProgress => {
            ErrorCode::CoordinatorNotAvailable
        }
        TxnError::TransactionalIdNotFound => ErrorCode::UnknownTransactionalId,
        TxnError::InvalidProducerIdMapping
        | TxnError::InvalidTransactionTimeout { .. }
        | TxnError::TooManyPartitions { .. }
        | TxnError::InvalidRequest { .. } => ErrorCode::InvalidRequest,
    }
}

/// An id (or a name) as a message shows it: whole up to [`ID_SHOWN_CHARS_MAX`]
/// characters, cut with `...` past that, so that a message about the
/// longest id still fits a string of the wire.
fn shown(transactional_id: &str) -> String {
    match transactional_id.char_indices().nth(ID_SHOWN_CHARS_MAX) {
        None => transactional_id.to_string(),
        Some((cut, _)) => format!("{}...", &transactional_id[..cut]),
    }
}

/// Characters of an id a message shows.
const ID_SHOWN_CHARS_MAX: usize = 256;

/// A coordinator's refusal about `transactional_id` on node `node`, for
/// people.
fn txn_message(node: i32, transactional_id: &str, error: &TxnError) -> String {
    let transactional_id = shown(transactional_id);
    match error {
        TxnError::NotCoordinator => {
            format!("node {node} does not coordinate transactional id {transactional_id}")
        }
        TxnError::TransactionalIdNotFound => format!("no transactional id {transactional_id}"),
        TxnError::CoordinatorLoadInProgress => format!(
            "the coordinator of transactional id {transactional_id} on node {node} is loading; try again"
        ),
        error => format!("transactional id {transactional_id}: {error}"),
    }
}

/// The id's length as the coordinator checks it, so that a malformed one
/// is refused as such before anything is looked up.
fn check_id(transactional_id: &str) -> Result<(), TxnError> {
    if transactional_id.is_empty() || transactional_id.len() > TRANSACTIONAL_ID_BYTES_MAX {
        return Err(TxnError::InvalidRequest {
            reason: "a transactional id is 1 to 32767 bytes (TRANSACTIONAL_ID_BYTES_MAX)",
        });
    }
    Ok(())
}

/// Whether the cluster has ever had a transactional id: without
/// `__transaction_state` there is none, and looking one up must not
/// create the topic.
fn no_transactions_yet(shard: &Shard) -> bool {
    shard.metadata().topic(TXN_TOPIC).is_none()
}

pub async fn find_coordinator(
    shard: &Rc<Shard>,
    request: FindTxnCoordinatorRequest,
) -> FindTxnCoordinatorResponse {
    let id = request.transactional_id;
    let found = match check_id(&id) {
        Err(error) => Err(error),
        Ok(()) if no_transactions_yet(shard) => Err(TxnError::TransactionalIdNotFound),
        Ok(()) => routing::coordinator_node(shard, &id).await,
    };
    match found {
        Ok(node) => FindTxnCoordinatorResponse {
            error: ErrorCode::None,
            message: String::new(),
            node: node.0 as u32,
        },
        Err(error) => FindTxnCoordinatorResponse {
            error: txn_code(&error),
            message: match &error {
                TxnError::CoordinatorNotAvailable => format!(
                    "the partition of {TXN_TOPIC} of transactional id {} has no leader now; try again",
                    shown(&id)
                ),
                error => txn_message(shard.config.node_id.0, &id, error),
            },
            node: 0,
        },
    }
}

/// The ids this node coordinates that pass the request's filters, in id
/// order, up to [`TRANSACTIONS_LISTED_BYTES_MAX`].
pub async fn list(shard: &Rc<Shard>, request: ListTransactionsRequest) -> ListTransactionsResponse {
    let failed = |error: ErrorCode, message: String| ListTransactionsResponse {
        error,
        message,
        transactions: Vec::new(),
        truncated: false,
    };
    let mut states = BTreeSet::new();
    for name in &request.states {
        match TxnState::from_name(name) {
            Some(state) => {
                states.insert(state);
            }
            None => {
                let known: Vec<&str> = TxnState::ALL.iter().map(|state| state.name()).collect();
                return failed(
                    ErrorCode::InvalidRequest,
                    format!(
                        "no transaction state {:?}; the states are {}",
                        shown(name),
                        known.join(", ")
                    ),
                );
            }
        }
    }
    let filter = ListFilter {
        states,
        producer_ids: request.producer_ids.into_iter().collect(),
        running_at_least_ms: request.running_at_least_ms,
    };
    let node = shard.config.node_id.0;
    let listed = match admin::list(shard, filter).await {
        Ok(listed) => listed,
        Err(error) => {
            let message = match &error {
                TxnError::CoordinatorLoadInProgress => {
                    format!("a transaction coordinator on node {node} is loading; try again")
                }
                error => format!("node {node}: {error}"),
            };
            return failed(txn_code(&error), message);
        }
    };
    let mut transactions = Vec::with_capacity(listed.len());
    let mut bytes = 0;
    let mut truncated = false;
    for listing in listed {
        let listing = TransactionListing {
            transactional_id: listing.transactional_id,
            coordinator: node as u32,
            producer_id: listing.producer_id,
            state: listing.state.name().to_string(),
        };
        // Its encoded size: the fixed part and its two strings.
        bytes +=
            TransactionListing::MIN_BYTES + listing.transactional_id.len() + listing.state.len();
        if bytes > TRANSACTIONS_LISTED_BYTES_MAX {
            truncated = true;
            break;
        }
        transactions.push(listing);
    }
    ListTransactionsResponse {
        error: ErrorCode::None,
        message: String::new(),
        transactions,
        truncated,
    }
}

pub async fn describe(
    shard: &Rc<Shard>,
    request: DescribeTransactionRequest,
) -> DescribeTransactionResponse {
    let id = request.transactional_id;
    let node = shard.config.node_id.0;
    let described = match check_id(&id) {
        Err(error) => Err(error),
        Ok(()) if no_transactions_yet(shard) => Err(TxnError::TransactionalIdNotFound),
        Ok(()) => admin::describe(shard, &id).await,
    };
    match described {
        Ok(described) => DescribeTransactionResponse {
            error: ErrorCode::None,
            message: String::new(),
            transactional_id: described.transactional_id,
            coordinator: node as u32,
            state: described.state.name().to_string(),
            producer_id: described.producer.id,
            producer_epoch: described.producer.epoch,
            timeout_ms: described.timeout_ms,
            start_ms: described.start_ms,
            partitions: described
                .partitions
                .into_iter()
                .map(|tp| TransactionPartition {
                    topic: tp.topic,
                    // The coordinator takes no negative index in.
                    partition: tp.partition as u32,
                })
                .collect(),
        },
        Err(error) => DescribeTransactionResponse {
            error: txn_code(&error),
            message: txn_message(node, &id, &error),
            transactional_id: id,
            coordinator: node as u32,
            state: String::new(),
            producer_id: -1,
            producer_epoch: -1,
            timeout_ms: 0,
            start_ms: None,
            partitions: Vec::new(),
        },
    }
}

pub async fn abort(shard: &Rc<Shard>, request: AbortTransactionRequest) -> TransactionResult {
    let id = request.transactional_id;
    let node = shard.config.node_id.0;
    let aborted = match check_id(&id) {
        Err(error) => Err(error),
        Ok(()) if no_transactions_yet(shard) => Err(TxnError::TransactionalIdNotFound),
        Ok(()) => admin::abort(shard, &id).await,
    };
    match aborted {
        Ok(()) => TransactionResult {
            error: ErrorCode::None,
            message: String::new(),
        },
        Err(TxnError::InvalidTxnState) => {
            // Say what state it is in instead.
            let state = admin::describe(shard, &id)
                .await
                .map(|described| described.state.name())
                .unwrap_or("unknown");
            TransactionResult {
                error: ErrorCode::InvalidTxnState,
                message: format!(
                    "transactional id {} has no ongoing transaction to abort (it is {state})",
                    shown(&id)
                ),
            }
        }
        Err(error) => TransactionResult {
            error: txn_code(&error),
            message: txn_message(node, &id, &error),
        },
    }
}

pub async fn abort_partition(
    shard: &Rc<Shard>,
    request: AbortPartitionTransactionRequest,
) -> TransactionResult {
    match abort_partition_checked(shard, request).await {
        Ok(()) => TransactionResult {
            error: ErrorCode::None,
            message: String::new(),
        },
        Err(failure) => TransactionResult {
            error: error_code(failure.kind),
            message: failure.message,
        },
    }
}

async fn abort_partition_checked(
    shard: &Rc<Shard>,
    request: AbortPartitionTransactionRequest,
) -> Result<(), Failure> {
    let AbortPartitionTransactionRequest {
        topic,
        partition,
        producer_id,
        producer_epoch,
        coordinator_epoch,
    } = request;
    if topic.len() > TOPIC_NAME_BYTES_MAX {
        return Err(Failure::new(
            ErrorKind::UnknownTopic,
            format!(
                "no topic of {} bytes: a name is at most {TOPIC_NAME_BYTES_MAX}",
                topic.len()
            ),
        ));
    }
    if producer_id < 0 || producer_epoch < 0 {
        return Err(Failure::new(
            ErrorKind::InvalidRequest,
            format!(
                "producer id {producer_id} and epoch {producer_epoch}: neither may be negative"
            ),
        ));
    }
    let what = format!("producer {producer_id} on {topic}/{partition}");
    // Only a transaction open there is aborted: a marker for none would
    // end nothing, and one that ended should not be ended twice.
    let routed = route(shard, &shard.metadata(), &topic, partition)?;
    let producers = ask(shard, routed, |reply| PartitionOp::Producers { reply }).await?;
    let Some(open) = producers
        .iter()
        .find(|producer| producer.producer_id == producer_id)
        .and_then(|producer| producer.txn_start.map(|start| (producer, start)))
    else {
        return Err(Failure::new(
            ErrorKind::InvalidTxnState,
            format!("{what}: no transaction of the producer is open there"),
        ));
    };
    let (open, start) = open;
    tracing::info!(
        topic,
        partition,
        producer_id,
        producer_epoch,
        coordinator_epoch,
        first_offset = start.0,
        epoch = open.epoch,
        "an operator aborts a transaction on a partition"
    );
    let write = MarkerWrite {
        topic: topic.clone(),
        partition: partition as i32,
        producer: Producer::new(producer_id, producer_epoch),
        outcome: Outcome::Abort,
        coordinator_epoch,
        // An operator's: no coordinator's fence applies.
        coordinator: None,
    };
    let written = markers::write_here(shard, &[write]).await;
    match written.into_iter().next() {
        Some(Ok(())) => Ok(()),
        Some(Err(failure)) => Err(Failure::new(
            failure.kind,
            format!("{what}: {}", failure.message),
        )),
        None => unreachable!("one marker written, one answer"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_retriable_on_the_wire_when_it_is_for_the_coordinator() {
        let errors = [
            TxnError::ConcurrentTransactions,
            TxnError::InvalidProducerEpoch,
            TxnError::ProducerFenced,
            TxnError::InvalidTxnState,
            TxnError::InvalidProducerIdMapping,
            TxnError::NotCoordinator,
            TxnError::CoordinatorNotAvailable,
            TxnError::CoordinatorLoadInProgress,
            TxnError::TransactionalIdNotFound,
            TxnError::InvalidTransactionTimeout {
                timeout_ms: 0,
                max_ms: 1,
            },
            TxnError::TooManyPartitions {
                partitions: 2,
                max: 1,
            },
            TxnError::InvalidRequest { reason: "test" },
        ];
        for error in errors {
            let code = txn_code(&error);
            assert_ne!(code, ErrorCode::None, "{error:?}");
            assert_eq!(code.is_retriable(), error.is_retriable(), "{error:?}");
        }
    }

    #[test]
    fn a_long_id_is_shown_cut_and_a_message_about_it_fits_the_wire() {
        assert_eq!(shown("payments-1"), "payments-1");
        let longest = "é".repeat(TRANSACTIONAL_ID_BYTES_MAX / 2);
        let message = txn_message(7, &longest, &TxnError::NotCoordinator);
        assert!(message.ends_with("..."), "{message}");
        assert!(
            message.len() < sluice_net::native::codec::STRING_BYTES_MAX / 16,
            "{} bytes",
            message.len()
        );
    }
}
