//! Kafka's error codes for the transaction coordinator's answers, which
//! its peers read back as well as its Kafka clients: the peer network
//! carries Kafka's own messages between nodes ([`super::peer`]).

use kafka_protocol::error::ResponseError;
use sluice_replication::txn::{MarkerResult, TxnError};

use crate::error::{ErrorKind, Failure};

/// Kafka's code for `error`; a client that predates `PRODUCER_FENCED`
/// (`legacy`) gets `INVALID_PRODUCER_EPOCH` instead.
pub fn txn_error_code(error: TxnError, legacy: bool) -> i16 {
    let error = if legacy {
        error.for_legacy_client()
    } else {
        error
    };
    let code = match error {
        TxnError::ConcurrentTransactions => ResponseError::ConcurrentTransactions,
        TxnError::InvalidProducerEpoch => ResponseError::InvalidProducerEpoch,
        TxnError::ProducerFenced => ResponseError::ProducerFenced,
        TxnError::InvalidTxnState => ResponseError::InvalidTxnState,
        TxnError::InvalidProducerIdMapping => ResponseError::InvalidProducerIdMapping,
        TxnError::NotCoordinator => ResponseError::NotCoordinator,
        TxnError::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
        TxnError::CoordinatorLoadInProgress => ResponseError::CoordinatorLoadInProgress,
        TxnError::TransactionalIdNotFound => ResponseError::TransactionalIdNotFound,
        TxnError::InvalidTransactionTimeout { .. } => ResponseError::InvalidTransactionTimeout,
        TxnError::TooManyPartitions { .. } | TxnError::InvalidRequest { .. } => {
            ResponseError::InvalidRequest
        }
    };
    code.code()
}

/// The error a coordinator's code names, for a verification answered by
/// another node.
pub fn txn_error_of_code(code: i16) -> TxnError {
    [
        TxnError::ConcurrentTransactions,
        TxnError::InvalidProducerEpoch,
        TxnError::ProducerFenced,
        TxnError::InvalidTxnState,
        TxnError::InvalidProducerIdMapping,
        TxnError::NotCoordinator,
        TxnError::CoordinatorLoadInProgress,
        TxnError::TransactionalIdNotFound,
    ]
    .into_iter()
    .find(|error| txn_error_code(error.clone(), false) == code)
    .unwrap_or(TxnError::CoordinatorNotAvailable)
}

/// The code a partition's leader answers a coordinator's marker with:
/// written, the partition gone, the producer's epoch newer here, the
/// coordinator fenced, or a passing failure (as `NOT_LEADER_OR_FOLLOWER`).
pub fn marker_code(answer: &Result<(), Failure>) -> i16 {
    let Err(failure) = answer else {
        return 0;
    };
    let code = match failure.kind {
        ErrorKind::UnknownTopic | ErrorKind::NoSuchPartition => {
            ResponseError::UnknownTopicOrPartition
        }
        ErrorKind::ProducerFenced => ResponseError::InvalidProducerEpoch,
        ErrorKind::CoordinatorFenced => ResponseError::TransactionCoordinatorFenced,
        _ => ResponseError::NotLeaderOrFollower,
    };
    code.code()
}

/// How the coordinator takes a partition's answer to its marker: done,
/// dropped (the partition is gone, or has seen a newer epoch of the
/// producer, which only a completed transaction allows), or sent again.
pub fn marker_result(code: i16) -> MarkerResult {
    match code {
        0 => MarkerResult::Written,
        code if code == ResponseError::UnknownTopicOrPartition.code()
            || code == ResponseError::UnknownTopicId.code() =>
        {
            MarkerResult::PartitionGone
        }
        code if code == ResponseError::InvalidProducerEpoch.code()
            || code == ResponseError::UnsupportedForMessageFormat.code() =>
        {
            MarkerResult::Unsupported
        }
        code if code == ResponseError::TransactionCoordinatorFenced.code() => {
            MarkerResult::CoordinatorFenced
        }
        _ => MarkerResult::Retriable,
    }
}
