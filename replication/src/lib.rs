//! Replication for Sluice: copies of each partition on other nodes, kept in
//! step with the partition's leader.
//!
//! **This crate is empty until replication lands.** Today a broker is one
//! node and every partition has one replica (topics are created with
//! replication factor 1); nothing depends on this crate yet. It exists so
//! that the workspace has the place, and the dependency rule, ready:
//! `replication → storage`, and the engine depends on it, never the reverse.
//!
//! # What it will hold
//!
//! (ARCHITECTURE.md, "Replication".)
//!
//! * **Sans-IO state machines** for the leader, the follower, the high
//!   watermark, the in-sync set and leader epochs: they take messages and
//!   ticks and return what to send, what to append and which acks to give.
//!   No socket, file or clock inside: they are generic over transport,
//!   storage and clock, so that a seeded simulation can drive thousands of
//!   fault schedules and replay a failing one. The engine's owner shard of
//!   each partition drives them with real I/O.
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
//!
//! Later, the controller quorum's replicated metadata log may live here too.
