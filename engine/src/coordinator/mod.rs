//! The group coordinator: consumer groups, their members and their committed
//! offsets.
//!
//! A group lives on one shard of one node: the owner of its partition of
//! the internal topic `__consumer_offsets` (the partition is a hash of the
//! group id) on the node that leads that partition. Requests about a
//! group, on whatever shard they arrive, run there ([`on_coordinator`]);
//! another node answers NOT_COORDINATOR. Committed offsets are appended
//! to that partition and acknowledged once its in-sync replicas hold them
//! (acks=all); a node that comes to lead the partition (at start, or when
//! its leader fails) reads its groups back from it before it serves them
//! ([`hold`]), and one that stops leading it drops them. Membership lives
//! in memory (members rejoin after a restart or a failover, as they do
//! when a Kafka coordinator moves). Offsets committed in a transaction are
//! appended as the transaction's and stay pending until its marker on the
//! partition commits or aborts them ([`transactional`]).
//!
//! The classic protocol's state machine is in [`classic`]: members join,
//! the leader assigns, everyone syncs, heartbeats keep members alive; a
//! member that joins, leaves or falls silent past its session timeout
//! starts a rebalance.
//!
//! Its files, one role each:
//!
//! - this one: a group's state ([`Group`]), a shard's groups
//!   ([`Coordinator`]) and the tick that expires members;
//! - [`routing`]: which shard coordinates a group, and running work there;
//! - [`holding`]: which offsets partitions this shard coordinates, loaded
//!   when this node comes to lead them and dropped when it stops;
//! - [`classic`]: the classic protocol's state machine;
//! - [`consumer`]: the consumer protocol's (KIP-848) state machine, and
//!   [`assignor`], the pure functions that compute its target assignments;
//! - [`offsets`]: committing (in a transaction too), ending a
//!   transaction's, reading, resetting and deleting offsets;
//! - [`transactional`]: offsets committed in a transaction, pending until
//!   its marker commits or aborts them (the state and its rules);
//! - [`offsets_log`]: `__consumer_offsets` on disk (append, wait for the
//!   in-sync replicas, compact), in the records of [`records`];
//! - [`describe`]: groups listed and described; [`lag`]: consumer lag;
//! - [`error`]: why a group request failed.
//!
//! Dependencies between these files point one way: `error`, `records` and
//! `assignor` use none of the others; `routing` uses `error` and
//! `holding`'s check; `holding` uses `routing`, `records`,
//! `offsets_log` and `transactional`; `classic` and `consumer` use this
//! file's types (`consumer` also `assignor`); `transactional` uses them
//! and `consumer`; `offsets_log` uses `routing` and `records`; `offsets`
//! uses `offsets_log`, `transactional` and both protocols; `describe`
//! uses `consumer` and `routing`; `lag` uses `routing`.

pub mod assignor;
pub mod classic;
pub mod consumer;
mod describe;
mod error;
mod holding;
pub mod lag;
pub(crate) mod offsets;
mod offsets_log;
pub mod records;
pub(crate) mod routing;
pub(crate) mod state;
mod transactional;

use std::time::{Duration, Instant};

pub use describe::{describe_local, list_all, list_local};
pub use error::GroupError;
pub(crate) use holding::read_back;
pub use holding::{hold, hold_loop};
pub use offsets::{
    commit, commit_transactional, committed, delete_group, delete_offsets, fetch_offsets,
    reset_offsets,
};
pub use routing::{on_coordinator, run_on};
pub use state::{Committer, Coordinator, Group, GroupState, OffsetToCommit};
pub use transactional::Producer;

/// The internal topic of committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// How often the coordinator looks for expired members and rebalances due.
const TICK: Duration = Duration::from_millis(100);

/// Expires silent members and completes rebalances that are due, in the
/// groups of `coordinator` (a shard's), forever.
pub async fn tick_loop(coordinator: &Coordinator) {
    loop {
        glommio::timer::sleep(TICK).await;
        let now = Instant::now();
        let mut groups = coordinator.groups.borrow_mut();
        for group in groups.values_mut() {
            classic::tick(group, now);
            consumer::tick(group, now);
        }
        groups.retain(|_, group| !group.is_gone());
    }
}
