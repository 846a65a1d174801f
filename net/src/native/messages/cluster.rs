//! DescribeCluster: the cluster as the answering node sees it: its id, the
//! controller quorum's leader and term, how far this node applied the
//! metadata log, and every node it knows of (the controller voters and
//! the registered brokers) with its addresses and state.
//!
//! Every node answers from its own view, so asking each node tells how far
//! each one applied the metadata log. Strings are capped by
//! [`STRING_BYTES_MAX`](crate::native::codec::STRING_BYTES_MAX) and lists
//! by [`LIST_ENTRIES_MAX`](crate::native::codec::LIST_ENTRIES_MAX), as
//! everywhere on this wire.

use super::Message;
use crate::native::wire::{wire_struct, IfPresent};

wire_struct! {
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct DescribeClusterRequest {}
}

impl Message for DescribeClusterRequest {}

wire_struct! {
    /// One node of the cluster. Addresses are `HOST:PORT`, empty where
    /// the node has no such listener or the answering node does not know
    /// it (a voter that has not registered has only its peer address, from
    /// the voters list).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct ClusterNode {
        pub id: u32,
        /// A controller quorum voter.
        pub voter: bool,
        /// It registered as a broker with the quorum.
        pub registered: bool,
        /// Its registration's lease ran out.
        pub fenced: bool,
        /// Clients may be sent to it: registered and not fenced, or the
        /// answering node itself while it has not registered yet.
        pub alive: bool,
        pub rack: Option<String> as IfPresent,
        pub kafka_addr: String,
        pub native_addr: String,
        pub admin_addr: String,
        pub peer_addr: String,
    }
}

wire_struct! {
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct DescribeClusterResponse {
        pub cluster_id: String,
        /// The controller quorum's leader, as the answering node knows it.
        pub controller: Option<u32> as IfPresent,
        /// The quorum's term (the controller's epoch).
        pub term: u64,
        /// The answering node.
        pub node_id: u32,
        /// The index of the last metadata log entry the answering node
        /// applied.
        pub applied: u64,
        /// The highest metadata log index the answering node knows
        /// committed.
        pub committed: u64,
        /// Sorted by id.
        pub nodes: Vec<ClusterNode>,
    }
}

impl Message for DescribeClusterResponse {}
