//! DescribeCluster: the cluster as this node sees it (see
//! [`crate::cluster_view`]).

use sluice_net::native::messages::{ClusterNode, DescribeClusterRequest, DescribeClusterResponse};

use crate::{cluster_view, shard::Shard};

pub fn describe(shard: &Shard, _request: DescribeClusterRequest) -> DescribeClusterResponse {
    let quorum = cluster_view::quorum(shard);
    let nodes = cluster_view::nodes(&shard.config, &shard.metadata())
        .into_iter()
        .map(|node| ClusterNode {
            id: node.id.0 as u32,
            voter: node.voter,
            registered: node.registered,
            fenced: node.fenced,
            alive: node.alive,
            rack: node.rack,
            kafka_addr: node.kafka_addr,
            native_addr: node.native_addr,
            admin_addr: node.admin_addr,
            peer_addr: node.peer_addr,
        })
        .collect();
    DescribeClusterResponse {
        cluster_id: shard.cluster_id.to_string(),
        controller: quorum.leader.map(|node| node.0 as u32),
        term: quorum.term,
        node_id: shard.config.node_id.0 as u32,
        applied: quorum.applied,
        committed: quorum.committed,
        nodes,
    }
}
