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
//!   the cluster id, then raft's protobuf). A message of another cluster, an
//!   unknown sender, garbage or a stale term is refused with a typed error.
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
