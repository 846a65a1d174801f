//! AlterReassignments and ListReassignments: moves of partitions to other
//! brokers (Kafka's AlterPartitionReassignments and
//! ListPartitionReassignments, as `sluice topic move` asks for them).
//! A move is answered once it has started; the copy goes on while the
//! partition serves, and ListReassignments shows it until it is done.
//! Each partition answers with its own code: `None` once started (or
//! cancelled), `UnknownTopic`, `NoSuchPartition`,
//! `InvalidReplicaAssignment`, `InvalidReplicationFactor`,
//! `NoReassignmentInProgress`, or `NotController` when the change was not
//! committed.

use super::Message;
use crate::native::{
    wire::{wire_struct, IfPresent},
    ErrorCode,
};

wire_struct! {
    /// One partition to move.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct PartitionMove {
        pub topic: String,
        pub partition: u32,
        /// The new replicas, the preferred leader first; `None` cancels
        /// the partition's move in progress.
        pub replicas: Option<Vec<u32>> as IfPresent,
    }
}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AlterReassignmentsRequest {
        pub moves: Vec<PartitionMove>,
        /// Bytes per second each new replica is sent while it catches up;
        /// 0: as fast as it can.
        pub throttle_bytes_per_s: u64,
        /// A move may change a partition's number of replicas.
        pub allow_replication_factor_change: bool,
    }
}

impl Message for AlterReassignmentsRequest {}

wire_struct! {
    /// One partition's answer.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct MoveResult {
        pub topic: String,
        pub partition: u32,
        pub error: ErrorCode,
        /// Why it was not started; empty once it was.
        pub message: String,
    }
}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AlterReassignmentsResponse {
        /// In the order the request named them.
        pub results: Vec<MoveResult>,
    }
}

impl Message for AlterReassignmentsResponse {}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ListReassignmentsRequest {
        /// Empty: every topic.
        pub topics: Vec<String>,
    }
}

impl Message for ListReassignmentsRequest {}

wire_struct! {
    /// A partition's move in progress.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Reassignment {
        pub topic: String,
        pub partition: u32,
        /// Every replica while it moves: the new ones, then those leaving.
        pub replicas: Vec<u32>,
        pub adding: Vec<u32>,
        pub removing: Vec<u32>,
        pub throttle_bytes_per_s: u64,
    }
}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ListReassignmentsResponse {
        /// By topic and partition.
        pub reassignments: Vec<Reassignment>,
    }
}

impl Message for ListReassignmentsResponse {}
