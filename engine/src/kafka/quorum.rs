//! DescribeQuorum (KIP-595; KIP-853 adds directory ids and the voters'
//! endpoints at v2): the controller quorum as Kafka's admin tools see it.
//! The quorum's log is Kafka's `__cluster_metadata` partition 0: its
//! leader and epoch (the quorum's term), high watermark (the committed
//! index), and the voters and observers with their log end offsets.
//!
//! Kafka's brokers forward this request to the active controller. Here the
//! node asked answers from what it knows of the quorum (see
//! [`crate::cluster_view`]), with the log end offsets only the leader
//! tracks (each voter's, and each observer's from its last fetch) asked of
//! the leader; an offset is -1 where it is not known (no leader, or none
//! that answers in time), as in Kafka.

use std::rc::Rc;

use kafka_protocol::{
    error::ResponseError,
    messages::{
        describe_quorum_response::{Listener, Node, PartitionData, ReplicaState, TopicData},
        BrokerId, DescribeQuorumRequest, DescribeQuorumResponse,
    },
};
use sluice_storage::NodeId;
use uuid::Uuid;

use super::{host_port, str_bytes};
use crate::{cluster_view, shard::Shard};

/// The name Kafka gives the controller quorum's log.
pub const METADATA_TOPIC: &str = "__cluster_metadata";
/// The listener name a voter's peer address is given at v2: the quorum's
/// traffic goes there, as Kafka's goes to its controller listener.
const PEER_LISTENER: &str = "PEER";
/// Kafka's value for an offset or a time not known.
const UNKNOWN: i64 = -1;

pub async fn describe_quorum(
    shard: &Rc<Shard>,
    request: DescribeQuorumRequest,
    version: i16,
) -> DescribeQuorumResponse {
    let log_ends = log_ends(shard).await;
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|partition| {
                    if &*topic.topic_name.0 == METADATA_TOPIC && partition.partition_index == 0 {
                        describe(shard, &log_ends, version)
                    } else {
                        refused(
                            partition.partition_index,
                            ResponseError::UnknownTopicOrPartition,
                            "only __cluster_metadata partition 0 is a quorum's log",
                            version,
                        )
                    }
                })
                .collect();
            TopicData::default()
                .with_topic_name(topic.topic_name.clone())
                .with_partitions(partitions)
        })
        .collect();
    let mut response = DescribeQuorumResponse::default().with_topics(topics);
    if version >= 2 {
        response.nodes = voter_endpoints(shard);
    }
    response
}

/// How far each voter and observer holds the metadata log, as the
/// controller leader tracks it, asked on shard 0 (see
/// `controller::cluster::leader_log_ends`): empty where it is not known,
/// and every log end offset then reads as unknown.
async fn log_ends(shard: &Rc<Shard>) -> Vec<(NodeId, u64)> {
    crate::coordinator::run_on(shard, 0, |there| async move {
        crate::controller::cluster::leader_log_ends(&there).await
    })
    .await
    .unwrap_or_default()
}

/// The quorum's partition as this node sees it.
fn describe(shard: &Shard, log_ends: &[(NodeId, u64)], version: i16) -> PartitionData {
    let quorum = cluster_view::quorum(shard);
    let Some(leader) = quorum.leader else {
        return refused(
            0,
            ResponseError::NotLeaderOrFollower,
            "no controller leader is known right now",
            version,
        );
    };
    let replica = |node: NodeId| {
        let log_end = log_ends
            .iter()
            .find(|(known, _)| *known == node)
            .map_or(UNKNOWN, |(_, index)| *index as i64);
        ReplicaState::default()
            .with_replica_id(BrokerId(node.0))
            .with_replica_directory_id(Uuid::nil())
            .with_log_end_offset(log_end)
            .with_last_fetch_timestamp(UNKNOWN)
            .with_last_caught_up_timestamp(UNKNOWN)
    };
    let voters = cluster_view::voters(&shard.config);
    let observers = cluster_view::nodes(&shard.config, &shard.metadata())
        .into_iter()
        .filter(|node| !node.voter && (node.registered || node.id == shard.config.node_id))
        .map(|node| replica(node.id))
        .collect();
    PartitionData::default()
        .with_partition_index(0)
        .with_leader_id(BrokerId(leader.0))
        .with_leader_epoch(i32::try_from(quorum.term).unwrap_or(i32::MAX))
        .with_high_watermark(i64::try_from(quorum.committed).unwrap_or(i64::MAX))
        .with_current_voters(voters.iter().map(|(node, _)| replica(*node)).collect())
        .with_observers(observers)
}

fn refused(partition: i32, error: ResponseError, message: &str, version: i16) -> PartitionData {
    PartitionData::default()
        .with_partition_index(partition)
        .with_error_code(error.code())
        .with_error_message((version >= 2).then(|| str_bytes(message)))
        .with_leader_id(BrokerId(-1))
        .with_leader_epoch(-1)
        .with_high_watermark(UNKNOWN)
}

/// Each voter's peer listener (v2): where the quorum reaches it.
fn voter_endpoints(shard: &Shard) -> Vec<Node> {
    let metadata = shard.metadata();
    cluster_view::nodes(&shard.config, &metadata)
        .into_iter()
        .filter(|node| node.voter && !node.peer_addr.is_empty())
        .map(|node| {
            let (host, port) = host_port(&node.peer_addr);
            Node::default()
                .with_node_id(BrokerId(node.id.0))
                .with_listeners(vec![Listener::default()
                    .with_name(str_bytes(PEER_LISTENER))
                    .with_host(str_bytes(host))
                    .with_port(u16::try_from(port).unwrap_or(0))])
        })
        .collect()
}
