//! The controller quorum's consensus core: a sans-IO wrapper over raft-rs.
//!
//! raft-rs (TiKV's `raft` crate) does elections, log replication and
//! commitment; this module gives it what Sluice needs around it:
//!
//! * [`Quorum`]: one voter. Propose payload bytes, step messages, tick, and
//!   take [`Outputs`] (persist, send, apply, install), then advance.
//! * [`QuorumStorage`]: the seam for the log, hard state and snapshot, with
//!   [`MemoryStorage`] for simulations (and as an engine's working view).
//! * [`encode_message`]/[`decode_message`]: the wire format (a header with
//!   the cluster id and both ends' disk ids, then raft's protobuf). A
//!   message of another cluster, an unknown sender, garbage, a stale term or
//!   a lost disk is refused with a typed error and changes nothing.
//!
//! What raft-rs does not cover, the wrapper adds: a voter that lost its
//! disk neither votes nor stands for election until a leader that heard
//! from its new disk has caught it up (see [`Quorum`]); deterministic
//! election timeouts from a seed (raft-rs draws them from the thread's
//! RNG); a follower whose log is shorter than its leader believes asks to
//! be caught up (raft-rs would panic on the heartbeat's commit index, and
//! its leader would ignore the follower's rejections as stale).
//!
//! No socket, file, clock or task here: the engine drives a [`Quorum`] on
//! shard 0 with real I/O; a seeded simulation drives many with faults.

mod codec;
mod error;
mod node;
mod outputs;
mod storage;

pub use codec::{decode_message, encode_message, Envelope, MESSAGE_BYTES_MAX, WIRE_VERSION};
pub use error::QuorumError;
pub use node::{NodeId, ProposalId, Quorum, QuorumConfig, Role, PROPOSAL_BYTES_MAX, VOTERS_MAX};
pub use outputs::{Committed, Outbound, Outputs, Persist, SnapshotToInstall};
pub use storage::{MemoryStorage, QuorumStorage, BOOTSTRAP_INDEX, BOOTSTRAP_TERM};

/// raft-rs's protobuf types, for storages and tests.
pub use raft::eraftpb;
