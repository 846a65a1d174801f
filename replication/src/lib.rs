//! Replication for Sluice: the controller quorum's consensus today; copies
//! of each partition on other nodes next.
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
//!   catches up from a snapshot and votes only once caught up. Nothing in
//!   the engine drives it yet.
//! * [`partition`]: the first pieces of partition replication: leader
//!   epochs and the follower's truncation by epoch (KIP-101, KIP-279), and
//!   the leader's high watermark and in-sync set (with
//!   `min.insync.replicas` and `replica.lag.time.max.ms`).
//!
//! # What it will hold
//!
//! (ARCHITECTURE.md, "Replication".)
//!
//! * **Sans-IO state machines** for the partition leader, the follower, the
//!   high watermark, the in-sync set and leader epochs, generic over
//!   transport, storage and clock. The engine's owner shard of each
//!   partition drives them with real I/O.
//! * **Push, pipelined, batched per core**: the leader's owner shard sends
//!   the batch bytes it appended to each follower's owner shard, one
//!   connection per (node, shard) pair and one frame per flush round for all
//!   the partitions of that pair; followers append durably and ack their
//!   durable log end. A follower far behind catches up by reading the
//!   leader's log, then joins the push.
//! * **Kafka's semantics**: the high watermark is the lowest durable log end
//!   over the in-sync set; `acks=all` answers once it passes the batch;
//!   `min.insync.replicas` refuses writes when the set is too small; a
//!   rejoining follower truncates where its leader epoch ends (KIP-101,
//!   KIP-279), never to its own high watermark.

pub mod partition;
pub mod quorum;
