//! What the transaction coordinator answers instead of success.

/// A refused request, named after the Kafka error the engine answers with
/// (`TxnError::ConcurrentTransactions` is `CONCURRENT_TRANSACTIONS`, and so
/// on), so that the mapping to codes is one line each. A refused request
/// changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    /// Another change of this transactional id is in flight (a record not
    /// yet durable, markers not yet all written): retriable, the client
    /// backs off and retries.
    #[error("another change of this transactional id is in progress")]
    ConcurrentTransactions,
    /// The producer's epoch is not the current one, for clients that
    /// predate `PRODUCER_FENCED` (see [`TxnError::for_legacy_client`]).
    #[error("the producer epoch is not the current one")]
    InvalidProducerEpoch,
    /// A newer producer with this transactional id has taken over, or the
    /// coordinator aborted the transaction and bumped the epoch: this
    /// producer is a zombie.
    #[error("the producer has been fenced by a newer epoch")]
    ProducerFenced,
    /// The request does not fit the transaction's state (commit of an
    /// aborted transaction, abort of one being committed, ...).
    #[error("the request does not fit the transaction's state")]
    InvalidTxnState,
    /// The producer id is not the one this transactional id holds.
    #[error("the producer id is not the one of this transactional id")]
    InvalidProducerIdMapping,
    /// This node is not (or no longer) the coordinator of the id.
    #[error("not the transaction coordinator")]
    NotCoordinator,
    /// The coordinator cannot write its log now (the record's append
    /// failed); retriable.
    #[error("the transaction coordinator is not available")]
    CoordinatorNotAvailable,
    /// The coordinator is still loading its partition of
    /// `__transaction_state`; retriable.
    #[error("the transaction coordinator is loading")]
    CoordinatorLoadInProgress,
    /// DescribeTransactions of an id this coordinator does not hold.
    #[error("no such transactional id")]
    TransactionalIdNotFound,
    /// The timeout is not positive or is above
    /// `transaction.max.timeout.ms`.
    #[error("transaction timeout {timeout_ms} ms is not in 1..={max_ms}")]
    InvalidTransactionTimeout { timeout_ms: i32, max_ms: u32 },
    /// A transaction would span more partitions than
    /// [`super::PARTITIONS_PER_TXN_MAX`]; the engine answers
    /// `INVALID_REQUEST`.
    #[error("a transaction of {partitions} partitions, over the cap of {max}")]
    TooManyPartitions { partitions: usize, max: usize },
    /// The request itself is malformed (an empty or oversize
    /// transactional id, a bad topic name or partition index); the engine
    /// answers `INVALID_REQUEST`.
    #[error("invalid request: {reason}")]
    InvalidRequest { reason: &'static str },
}

impl TxnError {
    /// The error a client that predates `PRODUCER_FENCED` (KIP-588:
    /// InitProducerId below v4, AddPartitionsToTxn, AddOffsetsToTxn and
    /// EndTxn below v2) understands: `INVALID_PRODUCER_EPOCH` in its place.
    pub fn for_legacy_client(self) -> TxnError {
        match self {
            TxnError::ProducerFenced => TxnError::InvalidProducerEpoch,
            other => other,
        }
    }

    /// True when the client retries the same request after a backoff.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            TxnError::ConcurrentTransactions
                | TxnError::NotCoordinator
                | TxnError::CoordinatorNotAvailable
                | TxnError::CoordinatorLoadInProgress
        )
    }
}
