//! Transactions: the Kafka transactions the brokers coordinate, seen and
//! managed by an operator. Find the node that coordinates a transactional
//! id, list the ids a node coordinates, describe one, abort its ongoing
//! transaction; and abort a transaction left open on one partition that
//! no coordinator knows (a hanging one, KIP-664), on the partition's
//! leader.
//!
//! Each node answers for itself: a listing is what the asked node
//! coordinates (a client asks every node and joins the answers), and a
//! describe or an abort of an id is `NotCoordinator` on any node but the
//! one FindTxnCoordinator names.

use super::Message;
use crate::native::{wire::wire_struct, ErrorCode};

/// A node lists at most this many bytes of transactional ids in one
/// answer: a quarter of a frame, so that the answer always fits one. A
/// listing cut there says so ([`ListTransactionsResponse::truncated`]):
/// ids are up to 32 KiB each, and a node may coordinate many.
pub const TRANSACTIONS_LISTED_BYTES_MAX: usize = crate::native::frame::FRAME_BYTES_MAX / 4;

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct FindTxnCoordinatorRequest {
        pub transactional_id: String,
    }
}

impl Message for FindTxnCoordinatorRequest {}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct FindTxnCoordinatorResponse {
        /// `UnknownTransactionalId` when the cluster has never had one
        /// (no `__transaction_state` topic); `CoordinatorNotAvailable`
        /// while the id's partition has no leader.
        pub error: ErrorCode,
        pub message: String,
        /// The node that coordinates the id (meaningful without an error).
        pub node: u32,
    }
}

impl Message for FindTxnCoordinatorResponse {}

wire_struct! {
    /// The transactional ids the asked node coordinates that pass every
    /// filter given; an empty filter passes everything.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct ListTransactionsRequest {
        /// Kafka's names of the states (`Ongoing`, `CompleteAbort`...); a
        /// name the broker does not know is `InvalidRequest`.
        pub states: Vec<String>,
        pub producer_ids: Vec<i64>,
        /// Only transactions open for at least this long (KIP-994): ids
        /// with no transaction open never pass.
        pub running_at_least_ms: Option<u64>,
    }
}

impl Message for ListTransactionsRequest {}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct TransactionListing {
        pub transactional_id: String,
        /// The node that coordinates it: the node that listed it.
        pub coordinator: u32,
        pub producer_id: i64,
        /// Kafka's name of the state.
        pub state: String,
    }
}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ListTransactionsResponse {
        /// `CoordinatorNotAvailable` while one of the node's coordinators
        /// is loading: nothing is listed then.
        pub error: ErrorCode,
        pub message: String,
        /// Sorted by transactional id.
        pub transactions: Vec<TransactionListing>,
        /// The listing stopped at [`TRANSACTIONS_LISTED_BYTES_MAX`]: the
        /// ids after the last one listed are left out.
        pub truncated: bool,
    }
}

impl Message for ListTransactionsResponse {}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribeTransactionRequest {
        pub transactional_id: String,
    }
}

impl Message for DescribeTransactionRequest {}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
    pub struct TransactionPartition {
        pub topic: String,
        pub partition: u32,
    }
}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribeTransactionResponse {
        /// `NotCoordinator` from any node but the id's coordinator;
        /// `UnknownTransactionalId` when its coordinator does not know it.
        pub error: ErrorCode,
        pub message: String,
        pub transactional_id: String,
        /// The node that answered: the id's coordinator.
        pub coordinator: u32,
        /// Kafka's name of the state.
        pub state: String,
        pub producer_id: i64,
        pub producer_epoch: i16,
        pub timeout_ms: u32,
        /// When its transaction started (ms since the epoch); `None` when
        /// none has since the producer started.
        pub start_ms: Option<u64>,
        /// The partitions its transaction wrote to (or whose offsets it
        /// commits), sorted.
        pub partitions: Vec<TransactionPartition>,
    }
}

impl Message for DescribeTransactionResponse {}

wire_struct! {
    /// Aborts the ongoing transaction of an id, on its coordinator: the
    /// producer's epoch is bumped (it is fenced, as on a timeout), and
    /// the abort markers written after the answer.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AbortTransactionRequest {
        pub transactional_id: String,
    }
}

impl Message for AbortTransactionRequest {}

wire_struct! {
    /// Writes an abort marker for a transaction open on one partition, on
    /// the partition's leader, for a transaction that no coordinator will
    /// end (KIP-664's hanging transaction). Refused with `InvalidTxnState`
    /// when the producer has no transaction open on the partition.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AbortPartitionTransactionRequest {
        pub topic: String,
        pub partition: u32,
        pub producer_id: i64,
        /// The epoch of the open transaction (DescribeProducers tells it);
        /// an older one is `ProducerFenced`.
        pub producer_epoch: i16,
        /// Written in the marker.
        pub coordinator_epoch: i32,
    }
}

impl Message for AbortPartitionTransactionRequest {}

wire_struct! {
    /// The outcome of an abort.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct TransactionResult {
        pub error: ErrorCode,
        pub message: String,
    }
}

impl Message for TransactionResult {}
