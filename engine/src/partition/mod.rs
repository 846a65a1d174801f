//! The partition layer: what both protocols use to reach a partition.
//!
//! A partition lives on one shard, its owner, which alone touches its log.
//! A request arrives on whatever shard holds the connection; its adapter
//! (`native`, `kafka`) decodes it and, for each partition it names:
//!
//! 1. [`route`] finds the partition's owner from the metadata snapshot;
//! 2. [`ask`] sends a [`PartitionOp`] there (run in place when the owner is
//!    this shard), the batch bytes moved as `Bytes`, never copied;
//! 3. [`FanOut`] sends every part of a multi-partition request before it
//!    awaits any answer, and gathers the answers in request order;
//! 4. on the owner, [`owner::run`] does the work on the log, a fetch's
//!    read in [`fetch`] (how far it reads by its [`Isolation`], and for a
//!    native reader without markers and aborted transactions:
//!    [`committed`]);
//! 5. [`read::read_or_wait`] is a fetch's read, and its long poll when there
//!    is too little to read.
//!
//! The layer speaks the engine's own types ([`Failure`], [`OffsetQuery`]);
//! the adapters turn them into their wire's codes and messages.

mod committed;
mod fan_out;
mod fetch;
pub(crate) mod ops;
pub(crate) mod owner;
pub(crate) mod read;
mod route;
#[cfg(test)]
pub(crate) mod test_batches;
#[cfg(test)]
mod tests;

pub use crate::error::{ErrorKind, Failure};
pub use fan_out::{gather_all, FanOut, Pending};
pub use ops::{
    produce_timeout, Acks, ActiveProducer, FetchOutcome, Isolation, LeaderEpochs, Listed,
    OffsetQuery, PartitionKey, PartitionOp, PartitionStats, Produced, ReadFrom, TxnCheck,
    WireFormat,
};
pub use route::{ask, route, route_read, Answer, Route};
