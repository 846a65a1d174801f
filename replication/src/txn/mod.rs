//! The transaction coordinator's sans-IO core: Kafka transactions
//! (KIP-98), with the producer epoch rules of KIP-360, the offsets of
//! KIP-447's consumer-group-aware producers, and KIP-890's verification
//! (part 1) and epoch bump at every end (part 2).
//!
//! A transactional producer names itself with a transactional id. The
//! coordinator of the id (the leader of its partition of
//! `__transaction_state`) gives it a producer id and epoch, records which
//! partitions its transaction writes to (and which group's offsets it
//! commits), and when the producer ends the transaction, decides the
//! outcome, makes it durable, and has a marker (commit or abort) written
//! to every partition of the transaction. Consumers reading committed data
//! stop at an open transaction until its marker is there.
//!
//! Why these rules:
//!
//! * **The decision is the PrepareCommit/PrepareAbort record.** Once it is
//!   durable in the replicated log the outcome is fixed: the answer to
//!   EndTxn is sent, and markers of that outcome are written until every
//!   partition has one, across coordinator failovers (a new coordinator
//!   [`load`](TxnCoordinator::load)s the log and resumes). Nothing takes
//!   effect before its record is durable, so what a client was told always
//!   survives a failover.
//! * **Epochs fence zombies.** Every InitProducerId bumps the epoch, and a
//!   request with an older epoch is refused (`PRODUCER_FENCED`), so a
//!   producer that was paused or partitioned away cannot add to or end a
//!   transaction once its successor started. An InitProducerId that finds
//!   a transaction ongoing aborts it at a bumped epoch first, and so does
//!   the coordinator's timeout: the markers carry the new epoch, and the
//!   partitions refuse the old producer's late writes.
//! * **One change at a time per id.** A change waits for its record; any
//!   other request for the id meanwhile is told to retry
//!   (`CONCURRENT_TRANSACTIONS`), as in Kafka.
//!
//! # Parts
//!
//! * [`state`]: one id's [`TxnMetadata`] and its transitions, as pure
//!   functions (the rules above, and Kafka's errors).
//! * [`coordinator`]: [`TxnCoordinator`], one per `__transaction_state`
//!   partition this node leads: the requests, the pending writes, the
//!   markers, timeouts and expiry, loading and unloading, and the admin
//!   queries.
//! * [`outputs`]: the [`Effect`]s each input returns.
//! * [`record`]: the log's records, in Kafka's layout.
//! * [`error`]: [`TxnError`], named after Kafka's error codes.
//!
//! # What it does not do
//!
//! No I/O, clock, task or Kafka protocol type: times are milliseconds of
//! the caller's clock, requests are plain values, and the engine does the
//! appends and sends the markers (grouping them per partition leader, and
//! backing off between retries). Which partition an id hashes to, and
//! which partition a group's offsets live in, are the engine's too.
//! `tests/txn_simulation.rs` drives a coordinator through seeded schedules
//! of producers, zombies, failed and delayed appends, lost markers,
//! failovers and timeouts.

pub mod coordinator;
pub mod error;
pub mod outputs;
pub mod record;
pub mod state;

#[cfg(test)]
mod tests;

pub use coordinator::{End, ListFilter, TxnConfig, TxnCoordinator, TxnDescription, TxnListing};
pub use error::TxnError;
pub use outputs::{
    AppendId, CoordinatorEpoch, DecisionId, Effect, Marker, MarkerResult, Reply, RequestId,
};
pub use record::{RecordError, TxnRecord};
pub use state::{
    Outcome, Producer, ProducerEpoch, ProducerId, TopicPartition, TxnMetadata, TxnState, Verified,
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID, OFFSETS_TOPIC, PRODUCER_EPOCH_EXHAUSTED,
    TRANSACTION_VERSION_EPOCH_BUMP,
};

/// A transactional id is a Kafka string (i16 length): longer ones cannot
/// be written to the log's key.
pub const TRANSACTIONAL_ID_BYTES_MAX: usize = i16::MAX as usize;
/// Kafka's limit on a topic name.
pub const TOPIC_NAME_BYTES_MAX: usize = 249;
/// One transaction spans at most this many partitions. Each is in every
/// record of the transaction and gets a marker; a producer writing to more
/// in one transaction is far past any real use (Kafka has no limit, and
/// its records grow with it), and the cap bounds what a damaged record
/// makes the decoder allocate.
pub const PARTITIONS_PER_TXN_MAX: usize = 10_000;
