//! Replication for Sluice: the controller quorum's consensus, and the
//! copies of each partition on other nodes.
//!
//! The dependency rule: `replication → storage`, and the engine depends on
//! this crate, never the reverse. Everything here is a sans-IO state
//! machine: it takes messages and ticks and returns what to persist, what
//! to send and what to apply. No socket, file or clock inside, so that a
//! seeded simulation can drive thousands of fault schedules and replay a
//! failing one; the engine drives them with real I/O.
//!
//! # What it holds
//!
//! * [`quorum`]: the controller quorum's consensus core, a wrapper over
//!   TiKV's raft-rs (no home-made consensus). The metadata log is its log;
//!   snapshots of the metadata state bound it; a voter that lost its disk
//!   catches up from a snapshot and votes only once caught up. The
//!   engine's controller drives it on shard 0.
//! * [`partition`]: partition replication, which the engine's owner shard
//!   of each partition drives with real I/O (`engine/src/replica/`):
//!   leader epochs and the follower's truncation by epoch (KIP-101,
//!   KIP-279); the leader's high watermark and in-sync set (with
//!   `min.insync.replicas` and `replica.lag.time.max.ms`); what it pushes
//!   to each follower and when; the controller's elections from the
//!   in-sync set and the eligible replicas (KIP-966); and the frames two
//!   nodes' shards exchange.
//! * [`txn`]: the transaction coordinator of one `__transaction_state`
//!   partition (Kafka's transactions, KIP-98 with KIP-360, KIP-447 and
//!   KIP-890): producer ids and epochs, the partitions of each
//!   transaction, the decision written before any marker, markers until
//!   every partition has one, timeouts, expiry, and the log's records.
//!
//! # The protocol
//!
//! (ARCHITECTURE.md, "Replication".)
//!
//! * **Push, pipelined, batched per core**: the leader's owner shard sends
//!   the stored batches to each follower's owner shard, one connection per
//!   (node, shard) pair and one frame per round for all the partitions of
//!   that pair, several in flight; followers append as the leader wrote
//!   and ack their stored log end. A follower behind reads from the
//!   leader's log through the same pushes (from disk once past the tail
//!   cache).
//! * **Kafka's semantics**: the high watermark is the lowest stored end
//!   over the in-sync set; `acks=all` answers once it passes the batch;
//!   `min.insync.replicas` refuses writes when the set is too small; a
//!   rejoining follower truncates where its leader epoch ends (KIP-101,
//!   KIP-279), never to its own high watermark.

pub mod partition;
pub mod quorum;
pub mod txn;
