//! What this node knows of the cluster, for the adapters that describe it
//! (native DescribeCluster and topic descriptions, Kafka DescribeQuorum)
//! and for metrics: the nodes (controller voters and registered brokers),
//! which of them are alive, and the controller quorum's state as this node
//! last saw it.
//!
//! Everything here is read on the shard that asks, from its metadata image,
//! its configuration and the node's [`QuorumView`](crate::shard::QuorumView):
//! no message to another shard or node.

use sluice_storage::NodeId;

use crate::{
    cluster_metadata::{image::node_id, records, Metadata, TopicMeta},
    shard::Shard,
    BrokerConfig,
};

/// One node as this node knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    pub id: NodeId,
    /// A controller quorum voter (`--voters`, or this node alone).
    pub voter: bool,
    /// It registered as a broker with the quorum.
    pub registered: bool,
    /// Its registration's lease ran out.
    pub fenced: bool,
    /// Clients may be sent to it (see [`is_live`]).
    pub alive: bool,
    pub rack: Option<String>,
    /// `HOST:PORT`; empty where it has no such listener or this node does
    /// not know it (a voter not registered has only its peer address).
    /// Several Kafka listeners are `NAME://HOST:PORT`, comma-separated
    /// ([`crate::cluster_metadata::records::endpoints_text`]).
    pub kafka_addr: String,
    pub native_addr: String,
    pub admin_addr: String,
    pub peer_addr: String,
}

/// The endpoints a broker of `listeners` registers.
pub fn endpoints(listeners: &[crate::config::KafkaListener]) -> Vec<records::Endpoint> {
    listeners
        .iter()
        .map(|listener| records::Endpoint {
            name: listener.name.clone(),
            protocol: listener.protocol,
            addr: listener.advertised().to_string(),
        })
        .collect()
}

/// Whether node `node` is one clients may be sent to: a registered broker
/// whose lease holds, or this node itself while it has not registered yet
/// (a node starting, or a single node).
pub fn is_live(metadata: &Metadata, this_node: NodeId, node: NodeId) -> bool {
    match metadata.brokers.get(&node) {
        Some(broker) => !broker.fenced,
        None => node == this_node,
    }
}

/// The controller quorum's voters with their peer addresses: `--voters`,
/// or this node alone at its peer address.
pub fn voters(config: &BrokerConfig) -> Vec<(NodeId, String)> {
    if config.voters.is_empty() {
        return vec![(config.node_id, config.peer_addr.clone())];
    }
    let mut voters: Vec<(NodeId, String)> = config
        .voters
        .iter()
        .map(|voter| (voter.node_id, voter.peer_addr.clone()))
        .collect();
    voters.sort();
    voters
}

/// Every node this node knows of, sorted by id: the voters, the registered
/// brokers, and this node itself. A node's addresses come from its
/// registration; this node's, while it has not registered, from its own
/// configuration; a voter's peer address, while it has not registered,
/// from the voters list.
pub fn nodes(config: &BrokerConfig, metadata: &Metadata) -> Vec<NodeView> {
    let voters = voters(config);
    let mut ids: Vec<NodeId> = voters
        .iter()
        .map(|(id, _)| *id)
        .chain(metadata.brokers.keys().copied())
        .chain(std::iter::once(config.node_id))
        .collect();
    ids.sort();
    ids.dedup();
    ids.into_iter()
        .map(|id| {
            let voter_addr = voters
                .iter()
                .find(|(voter, _)| *voter == id)
                .map(|(_, addr)| addr.clone());
            let mut view = NodeView {
                id,
                voter: voter_addr.is_some(),
                registered: false,
                fenced: false,
                alive: is_live(metadata, config.node_id, id),
                rack: None,
                kafka_addr: String::new(),
                native_addr: String::new(),
                admin_addr: String::new(),
                peer_addr: voter_addr.unwrap_or_default(),
            };
            if let Some(broker) = metadata.brokers.get(&id) {
                let registration = &broker.registration;
                view.registered = true;
                view.fenced = broker.fenced;
                view.rack = registration.rack.clone();
                view.kafka_addr = registration.kafka_listeners_text();
                view.native_addr = registration.native_addr.clone();
                view.admin_addr = registration.admin_addr.clone();
                view.peer_addr = registration.peer_addr.clone();
            } else if id == config.node_id {
                view.kafka_addr = records::endpoints_text(&endpoints(&config.kafka_listeners));
                view.native_addr = config.native_addr.clone();
                view.admin_addr = config.admin_addr.clone().unwrap_or_default();
                view.peer_addr = config.peer_addr.clone();
            }
            view
        })
        .collect()
}

/// Where one partition lives, as clients are told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Its leader, if that node is alive.
    pub leader: Option<NodeId>,
    /// Its replicas, the preferred leader first.
    pub replicas: Vec<NodeId>,
    /// The replicas in sync with the leader, as the controller records.
    pub in_sync: Vec<NodeId>,
    /// Replicas that may be elected though out of the in-sync set: they
    /// hold every committed record (KIP-966).
    pub eligible: Vec<NodeId>,
    /// Grows each time leadership moves.
    pub leader_epoch: u32,
}

/// Where partition `partition` of `topic` lives.
pub fn placement(
    metadata: &Metadata,
    this_node: NodeId,
    topic: &TopicMeta,
    partition: u32,
) -> Placement {
    let replicas = topic
        .replicas
        .get(partition as usize)
        .cloned()
        .unwrap_or_default();
    let Some(control) = topic.partition(partition) else {
        return Placement {
            leader: None,
            replicas,
            in_sync: Vec::new(),
            eligible: Vec::new(),
            leader_epoch: 0,
        };
    };
    let ids = |nodes: &std::collections::BTreeSet<u32>| {
        nodes.iter().copied().map(node_id).collect::<Vec<_>>()
    };
    Placement {
        leader: control
            .leader
            .map(node_id)
            .filter(|node| is_live(metadata, this_node, *node)),
        replicas,
        in_sync: ids(&control.in_sync),
        eligible: ids(&control.eligible),
        leader_epoch: control.leader_epoch,
    }
}

/// The controller quorum as this node last saw it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuorumState {
    pub leader: Option<NodeId>,
    pub term: u64,
    /// The last metadata log index this node applied.
    pub applied: u64,
    /// The highest metadata log index this node knows committed.
    pub committed: u64,
}

pub fn quorum(shard: &Shard) -> QuorumState {
    use std::sync::atomic::Ordering::Relaxed;
    let view = &shard.quorum_view;
    QuorumState {
        leader: view.leader(),
        term: view.term.load(Relaxed),
        applied: view.applied.load(Relaxed),
        committed: view.committed.load(Relaxed),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::{
        cluster_metadata::{image::BrokerMeta, records::BrokerRegistration},
        config::Voter,
    };

    fn registration(node: i32) -> BrokerRegistration {
        BrokerRegistration {
            node: NodeId(node),
            incarnation: 1,
            rack: Some(format!("rack-{node}")),
            kafka_listeners: vec![records::Endpoint {
                name: "PLAINTEXT".to_string(),
                protocol: crate::security_protocol::SecurityProtocol::Plaintext,
                addr: format!("k{node}:9092"),
            }],
            native_addr: format!("n{node}:9192"),
            peer_addr: format!("p{node}:9193"),
            admin_addr: String::new(),
        }
    }

    fn config(node: i32, voters: &[i32]) -> BrokerConfig {
        BrokerConfig {
            node_id: NodeId(node),
            peer_addr: format!("self{node}:9193"),
            native_addr: format!("self{node}:9192"),
            kafka_listeners: vec![crate::config::KafkaListener {
                name: "PLAINTEXT".to_string(),
                protocol: crate::security_protocol::SecurityProtocol::Plaintext,
                addr: format!("self{node}:9092"),
                advertised: None,
            }],
            admin_addr: None,
            voters: voters
                .iter()
                .map(|id| Voter {
                    node_id: NodeId(*id),
                    peer_addr: format!("v{id}:9193"),
                })
                .collect(),
            ..BrokerConfig::default()
        }
    }

    fn metadata(brokers: &[(i32, bool)]) -> Metadata {
        Metadata {
            brokers: brokers
                .iter()
                .map(|(node, fenced)| {
                    (
                        NodeId(*node),
                        BrokerMeta {
                            registration: registration(*node),
                            epoch: 3,
                            fenced: *fenced,
                        },
                    )
                })
                .collect::<BTreeMap<_, _>>(),
            ..Metadata::default()
        }
    }

    #[test]
    fn a_single_node_is_a_voter_alive_at_its_own_addresses() {
        let nodes = nodes(&config(4, &[]), &Metadata::default());
        assert_eq!(nodes.len(), 1);
        let node = &nodes[0];
        assert_eq!(node.id, NodeId(4));
        assert!(node.voter && node.alive && !node.registered && !node.fenced);
        assert_eq!(node.native_addr, "self4:9192");
        assert_eq!(node.kafka_addr, "self4:9092");
        assert_eq!(node.peer_addr, "self4:9193");
        assert_eq!(node.admin_addr, "");
    }

    #[test]
    fn voters_brokers_and_this_node_are_each_listed_once_with_what_is_known() {
        // Voters 0, 1, 2; 1 registered, 3 registered and fenced; this is 5.
        let nodes = nodes(&config(5, &[2, 0, 1]), &metadata(&[(1, false), (3, true)]));
        let ids: Vec<i32> = nodes.iter().map(|node| node.id.0).collect();
        assert_eq!(ids, [0, 1, 2, 3, 5]);
        let by_id = |id: i32| nodes.iter().find(|node| node.id.0 == id).unwrap();

        let unregistered_voter = by_id(0);
        assert!(unregistered_voter.voter && !unregistered_voter.registered);
        assert!(!unregistered_voter.alive);
        assert_eq!(unregistered_voter.peer_addr, "v0:9193");
        assert_eq!(unregistered_voter.native_addr, "");

        let registered_voter = by_id(1);
        assert!(registered_voter.voter && registered_voter.registered);
        assert!(registered_voter.alive && !registered_voter.fenced);
        assert_eq!(registered_voter.native_addr, "n1:9192");
        assert_eq!(
            registered_voter.peer_addr, "p1:9193",
            "the registration wins"
        );
        assert_eq!(registered_voter.rack.as_deref(), Some("rack-1"));

        let fenced = by_id(3);
        assert!(!fenced.voter && fenced.registered && fenced.fenced && !fenced.alive);

        let this = by_id(5);
        assert!(!this.voter && !this.registered && this.alive);
        assert_eq!(this.native_addr, "self5:9192");
    }

    #[test]
    fn leaders_in_sync_sets_and_epochs_follow_fences() {
        use crate::cluster_metadata::MetadataRecord;
        let mut metadata = Metadata::default();
        for (index, node) in [1, 3].into_iter().enumerate() {
            metadata
                .apply(
                    &MetadataRecord::BrokerRegistered(registration(node)),
                    index as u64 + 1,
                )
                .unwrap();
        }
        let created = MetadataRecord::TopicCreated {
            topic_id: sluice_storage::TopicId(1),
            name: "t".to_string(),
            shards: vec![sluice_storage::ShardId(0); 3],
            replicas: vec![
                vec![NodeId(1), NodeId(3)],
                vec![NodeId(3), NodeId(1)],
                vec![NodeId(5)],
            ],
            configs: [("min.insync.replicas".to_string(), "2".to_string())].into(),
        };
        metadata.apply(&created, 3).unwrap();
        let fence = MetadataRecord::BrokerFenced {
            node: NodeId(3),
            epoch: 2,
        };
        metadata.apply(&fence, 4).unwrap();
        let topic = metadata.topic("t").unwrap().clone();
        let this = NodeId(5);
        let first = placement(&metadata, this, &topic, 0);
        assert_eq!(first.leader, Some(NodeId(1)));
        assert_eq!(first.replicas, [NodeId(1), NodeId(3)]);
        assert_eq!(first.in_sync, [NodeId(1)]);
        assert_eq!(
            first.eligible,
            [NodeId(3)],
            "it left below min.insync.replicas"
        );
        assert_eq!(first.leader_epoch, 0);
        let moved = placement(&metadata, this, &topic, 1);
        assert_eq!(
            moved.leader,
            Some(NodeId(1)),
            "succeeded from the in-sync set"
        );
        assert_eq!(moved.leader_epoch, 1);
        assert_eq!(
            moved.replicas,
            [NodeId(3), NodeId(1)],
            "the preferred leader stays first"
        );
        let here = placement(&metadata, this, &topic, 2);
        assert_eq!(here.leader, Some(this), "this node, not registered yet");
        assert_eq!(placement(&metadata, this, &topic, 9).replicas, []);
    }
}
