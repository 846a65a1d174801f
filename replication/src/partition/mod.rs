//! Partition replication's sans-IO core:
//!
//! - [`epochs`]: leader epochs and a follower's reconciliation by epoch;
//! - [`leader`]: the leader's view of its replicas, in-sync set and high
//!   watermark, and [`push`]: what it pushes to each follower, and when;
//! - [`follower`]: a follower's reconciliation, and which pushes it takes;
//! - [`control`]: the controller's rules: elections from the in-sync set
//!   and the eligible replicas, in-sync changes under partition epochs;
//! - [`wire`]: the frames two nodes' shards exchange.
//!
//! Nothing here does I/O or reads a clock; the engine's owner shard of
//! each partition drives it. `tests/partition_simulation.rs` drives the
//! parts through seeded schedules, and `tests/replication_simulation.rs`
//! the whole protocol: three replicas and a controller exchanging
//! messages that are lost, delayed, reordered and duplicated, through
//! crashes that lose unsynced writes, and isolations that leave a deposed
//! leader running.

pub mod control;
pub mod epochs;
pub mod follower;
pub mod leader;
pub mod push;
pub mod wire;
