//! Partition replication's sans-IO core: leader epochs and a follower's
//! reconciliation by epoch ([`epochs`]), and the leader's view of its
//! replicas, in-sync set and high watermark ([`leader`]), and the frames
//! two nodes' shards exchange ([`wire`]: pushes of batches with the high
//! watermark, acknowledgements of durable ends, epoch-end questions).
//! Nothing here does I/O or reads a clock; the engine's owner shard of
//! each partition will drive it (the connections and the follower's append
//! path come next), and `tests/partition_simulation.rs` drives it through seeded
//! schedules of appends, acknowledgements, crashes and elections.

pub mod epochs;
pub mod leader;
pub mod wire;
