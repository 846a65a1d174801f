//! The Sluice broker.
//!
//! One glommio executor per core (a shard), each pinned. Every partition is
//! owned by one shard, chosen when the partition is created; only that
//! shard touches its log. Every shard accepts connections on the same port
//! (SO_REUSEPORT) and decodes the requests that arrive on them; each
//! partition's part of a request goes to its owner shard over a cross-shard
//! channel, with its payload as `Bytes` (moved, not copied), and the answers
//! are gathered where the request arrived.
//!
//! # Adapters over a core
//!
//! Two protocol adapters, `native/` and `kafka/`, decode requests, call the
//! core and encode its answers, turning the engine's `ErrorKind` into their
//! wire's codes. The core knows neither protocol: `shard.rs` (a shard's
//! state and its inbox), `partition/` (route a partition's part to its
//! owner, fan out and gather, the owner's work, read or wait),
//! `controller.rs` and `cluster_metadata/` (the one place metadata changes,
//! and its log), `coordinator/` (consumer groups). Arrows point from the
//! adapters to the core, never back.
//!
//! # A produce, from socket to disk and back
//!
//! 1. `server.rs`: the shard's accept loop hands the connection to `serve`,
//!    which reads a frame (its length checked against `frame_bytes_max`
//!    before anything is allocated) and starts a task for the request, at
//!    most `in_flight_per_connection_max` at a time.
//! 2. `native/mod.rs` (or `kafka/mod.rs`) checks the API and version and
//!    decodes the body; `native/produce.rs` (or `kafka/produce.rs`, which
//!    first splits a partition's records into RecordBatches, slices of the
//!    frame) takes each partition in turn.
//! 3. `partition/route.rs`: `route` finds the owner shard in the shard's
//!    metadata snapshot; `ask` sends a `PartitionOp::Produce` there, run in
//!    place when the owner is this shard. `partition/fan_out.rs` sends every
//!    partition's part before it awaits any answer.
//! 4. On the owner, `shard.rs`'s `pump` takes the op from the inbox and
//!    `partition/owner.rs` runs it: the batch is checked once (the native
//!    archive's bytes, or Kafka's CRC) and appended with `Log::append`.
//! 5. `sluice_storage::log` (`appender.rs`, `flusher.rs`): the append is
//!    given its offsets, queued, written with O_DIRECT together with the
//!    appends queued beside it, and fdatasync'ed; then its answer resolves.
//! 6. Back on the connection's shard, the adapter encodes the response with
//!    the base offset, and `serve`'s writer sends it (Kafka's in request
//!    order, native ones as they are ready).
//!
//! # A fetch
//!
//! Steps 1 and 2 as above, to `native/fetch.rs` or `kafka/fetch.rs`. Then
//! `partition/read.rs`'s `read_or_wait` sends a `PartitionOp::Fetch` to the
//! owner of every partition asked for; `partition/fetch.rs` reads whole
//! batches with `Log::read` (`sluice_storage::log::reader`: the tail from
//! memory, older data by DMA reads), or with `Log::read_stable` up to the
//! last stable offset for a `read_committed` reader, and converts them if
//! they were stored in the other protocol's format. If that is less than
//! the fetch's `min_bytes`, `read_or_wait` sends `PartitionOp::WaitForData`
//! to each owner, which resolves when an append (a marker, for a
//! `read_committed` reader) makes data visible there (`Log::wait_for_data`,
//! `Log::wait_for_stable_data`) or the fetch's wait runs out, and reads
//! again.
//! The adapter puts the batches in its response within the response's byte
//! budget.
//!
//! # Metadata
//!
//! Topic metadata is a log of metadata records (`cluster_metadata/`, in an
//! encoding of its own, versioned, not a wire protocol's), replayed at
//! start and appended to by shard 0 (the controller); every shard holds an
//! immutable snapshot of it, replaced when it changes.
//!
//! `quorum_log/` is the controller quorum's log on disk (raft entries, hard
//! state, snapshots, over `sluice_replication::quorum`); the controller will
//! drive it in cluster mode, where the metadata log becomes the Raft log.
//! `peer/` is the node-to-node transport its messages travel on.

pub mod acl;
mod admin_http;
pub mod alloc;
pub(crate) mod authorization;
mod broker;
mod broker_configs;
mod cluster_metadata;
mod cluster_view;
mod config;
pub mod controller;
mod coordinator;
mod error;
mod kafka;
mod listeners;
pub mod log_dirs;
mod metrics;
mod native;
pub mod node_identity;
mod partition;
pub mod peer;
pub mod quorum_log;
pub mod quota;
mod replica;
mod request_latency;
mod request_order;
pub mod sasl;
mod security_protocol;
mod server;
mod shard;
pub mod tls;
mod topic_config;
mod txn;

pub use broker::{run, Broker, EngineError};
pub use config::{
    check_quorum, BrokerConfig, KafkaListener, ReplicaSelector, SecurityProtocol, Voter,
    VotersError, TRANSACTION_VERSION_MAX,
};
pub use listeners::{describe_kafka as describe_kafka_listeners, ListenAddrs, ReadyFileError};
pub use topic_config::TOPIC_CONFIGS;
