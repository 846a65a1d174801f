//! The broker's settings, and topic configs with their Kafka names.

use std::{path::PathBuf, time::Duration};

use sluice_storage::NodeId;

pub use crate::security_protocol::SecurityProtocol;

/// How the broker runs. Built by the `sluice` command from flags, `SLUICE_*`
/// environment variables, a TOML file and these defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// This node's id in its cluster (Kafka's `node.id`), recorded in the
    /// data directory at its first start and checked at every later one.
    pub node_id: NodeId,
    /// HOST:PORT where this node listens for other nodes (the controller
    /// quorum's traffic, later replication's).
    pub peer_addr: String,
    /// The controller quorum's voters; empty: this node alone (at
    /// `peer_addr`). See [`Voter::parse_list`] and [`check_quorum`].
    pub voters: Vec<Voter>,
    /// The cluster a new data directory joins (Kafka's cluster id: 22
    /// characters of URL-safe base64); `None`: a new one is drawn. Every
    /// node of a cluster is started with the same one; a data directory of
    /// another cluster is refused.
    pub cluster_id: Option<String>,
    /// This voter lost its data directory: it starts empty and is caught
    /// up by the quorum's leader (and votes again only then), instead of
    /// forming a new quorum as a new data directory does. Ignored when the
    /// directory still holds its quorum log.
    pub rejoin: bool,
    /// This broker's rack (Kafka's `broker.rack`): placement spreads a
    /// partition's replicas over racks; clients see it in metadata.
    pub rack: Option<String>,
    /// Where topics and metadata live.
    pub data_dir: PathBuf,
    /// More directories for partitions (Kafka's `log.dirs`), one per disk;
    /// new partitions go to the one (the data directory among them) that
    /// holds the fewest.
    pub log_dirs: Vec<PathBuf>,
    /// HOST:PORT of the native protocol listener.
    pub native_addr: String,
    /// The native listener speaks TLS, with `tls` (its client
    /// certificate, under mutual TLS, names the principal).
    pub native_tls: bool,
    /// The Kafka protocol listeners (Kafka's `listeners` and
    /// `advertised.listeners`), each with a name of its own, in the order
    /// given; empty: no Kafka listener.
    pub kafka_listeners: Vec<KafkaListener>,
    /// The broker's TLS (certificate, key, client authorities): of the
    /// Kafka listeners whose security protocol is `SSL` or `SASL_SSL`, of
    /// the native listener when `native_tls`, and of the admin listener
    /// when `admin_tls`; `None` when none has TLS.
    pub tls: Option<crate::tls::TlsSettings>,
    /// The SASL of the Kafka listeners whose security protocol is
    /// `SASL_PLAINTEXT` or `SASL_SSL`; `None` when there is none.
    pub kafka_sasl: Option<crate::sasl::SaslSettings>,
    /// The ACL authorizer ([`crate::acl`]); `None`: every request is
    /// allowed.
    pub authorizer: Option<crate::acl::AuthorizerSettings>,
    /// The window client quotas are measured over (Kafka's
    /// `quota.window.num` × `quota.window.size.seconds`).
    pub quota_window: crate::quota::Window,
    /// Connections one IP address may hold open to this broker (Kafka's
    /// `max.connections.per.ip`); 0: no limit but `connections_max`.
    pub connections_max_per_ip: usize,
    /// HOST:PORT of the admin HTTP listener (`/metrics`); `None`: none.
    pub admin_addr: Option<String>,
    /// The admin listener speaks HTTPS, with `tls`.
    pub admin_tls: bool,
    /// Mutual TLS between nodes on the peer port; `None`: plaintext.
    pub peer_tls: Option<crate::tls::PeerTlsSettings>,
    /// Where [`crate::run`] writes the addresses it listens on once it
    /// serves (see [`crate::ListenAddrs::write_ready_file`]); a port of 0
    /// in any address above is one the kernel chooses, found there.
    pub ready_file: Option<PathBuf>,
    /// Whether a Kafka Metadata or Produce request for an unknown topic
    /// creates it (Kafka's `auto.create.topics.enable`).
    pub auto_create_topics: bool,
    /// Partitions of a topic created automatically.
    pub auto_create_partitions: u32,
    /// Shards (one per core); `None`: every available core.
    pub cores: Option<usize>,
    /// Defaults for topics created without them.
    pub default_partitions: u32,
    /// Replicas of a topic created without a replication factor.
    pub default_replication_factor: u16,
    /// `min.insync.replicas` given to a topic created without it.
    pub min_insync_replicas: u32,
    /// Replicas of each partition of `__consumer_offsets` (Kafka's
    /// `offsets.topic.replication.factor`); `None`: the
    /// `default_replication_factor`. Either way no more than the live
    /// brokers when the topic is created.
    pub offsets_topic_replication_factor: Option<u16>,
    /// Replicas of each partition of `__transaction_state` (Kafka's
    /// `transaction.state.log.replication.factor`); `None`: the
    /// `default_replication_factor`, capped as the offsets topic's.
    pub transaction_state_log_replication_factor: Option<u16>,
    /// The transaction protocol ApiVersions tells clients to use (Kafka's
    /// `transaction.version` feature level): 2 is KIP-890 part 2 (an epoch
    /// bump at every EndTxn, partitions and offsets added implicitly by
    /// Produce v12 and TxnOffsetCommit v5), 0 or 1 the classic protocol.
    /// Both are served whatever this says: it only picks what a client
    /// that negotiates it uses.
    pub transaction_version: i16,
    /// A connection that sends nothing for this long is closed.
    pub connection_idle_timeout: Duration,
    /// How long a SASL authentication holds before the client must
    /// authenticate again on its connection (KIP-368, Kafka's
    /// `connections.max.reauth.ms`); `None`: for the connection's life.
    pub connections_max_reauth: Option<Duration>,
    /// A connection that stops in the middle of a frame for this long is
    /// closed.
    pub partial_frame_timeout: Duration,
    /// Open connections per broker, over all shards.
    pub connections_max: usize,
    /// Requests being served at once on one connection.
    pub in_flight_per_connection_max: usize,
    /// Bytes of one frame.
    pub frame_bytes_max: usize,
    /// How long the first rebalance of an empty consumer group waits for
    /// more members (Kafka's `group.initial.rebalance.delay.ms`).
    pub group_initial_rebalance_delay: Duration,
    /// The shortest session timeout a classic group member may ask for
    /// (Kafka's `group.min.session.timeout.ms`).
    pub group_min_session_timeout: Duration,
    /// The longest session timeout a classic group member may ask for
    /// (Kafka's `group.max.session.timeout.ms`).
    pub group_max_session_timeout: Duration,
    /// The segment size of `__consumer_offsets`, whose sealed segments the
    /// cleaner compacts; for a partition created before the topic was
    /// compacted, the bytes appended before it is compacted by the
    /// coordinator (its live records written again, the rest deleted).
    pub group_offsets_compact_bytes: u64,
    /// How often a member of a consumer-protocol group (KIP-848) is told to
    /// heartbeat (Kafka's `group.consumer.heartbeat.interval.ms`).
    pub group_consumer_heartbeat_interval: Duration,
    /// A consumer-protocol member silent this long is dropped (Kafka's
    /// `group.consumer.session.timeout.ms`).
    pub group_consumer_session_timeout: Duration,
    /// How often each shard applies retention to its partitions (Kafka's
    /// `log.retention.check.interval.ms`).
    pub retention_check_interval: Duration,
    /// How often each shard looks for compacted partitions due for a pass
    /// of the cleaner (Kafka's `log.cleaner.backoff.ms`).
    pub cleaner_check_interval: Duration,
    /// The pace of the cleaner's reads and writes, bytes/s, over the
    /// process; 0: unpaced (Kafka's
    /// `log.cleaner.io.max.bytes.per.second`).
    pub cleaner_bytes_per_s: u64,
    /// The pace at which deleted files give their space back, bytes/s; 0:
    /// each file at once (see `sluice_storage::deleter`).
    pub delete_bytes_per_s: u64,
    /// Whether the controller leader moves leadership back to preferred
    /// replicas when a broker's share of partitions led elsewhere grows
    /// too large (Kafka's `auto.leader.rebalance.enable`; see
    /// `crate::controller::balance`).
    pub auto_leader_rebalance: bool,
    /// How often the controller leader checks leader balance (Kafka's
    /// `leader.imbalance.check.interval.seconds`).
    pub leader_imbalance_check_interval: Duration,
    /// Which replica a Kafka consumer reads from (Kafka's
    /// `replica.selector.class`).
    pub replica_selector: ReplicaSelector,
}

/// Which replica a Kafka consumer reads from (Kafka's
/// `replica.selector.class`, KIP-392). Whatever it is, a follower serves a
/// consumer that comes to it (Fetch v11 and later) while it is in sync;
/// this decides whether a leader sends consumers there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReplicaSelector {
    /// The leader, always: Kafka's default.
    #[default]
    Leader,
    /// A follower in the consumer's rack (its `client.rack`) when the
    /// leader is not there and one there is in sync and holds the offset
    /// asked for, the most caught up of them; else the leader (Kafka's
    /// `RackAwareReplicaSelector`).
    RackAware,
}

impl ReplicaSelector {
    /// The class name Kafka's brokers are configured with.
    pub const KAFKA_RACK_AWARE: &'static str =
        "org.apache.kafka.common.replica.RackAwareReplicaSelector";
}

impl std::str::FromStr for ReplicaSelector {
    type Err = &'static str;

    /// `leader` (or empty) or `rack-aware`, or Kafka's class name
    /// [`ReplicaSelector::KAFKA_RACK_AWARE`].
    fn from_str(name: &str) -> Result<ReplicaSelector, &'static str> {
        match name.trim() {
            "" | "leader" => Ok(ReplicaSelector::Leader),
            "rack-aware" | ReplicaSelector::KAFKA_RACK_AWARE => Ok(ReplicaSelector::RackAware),
            _ => Err("expected leader, rack-aware or org.apache.kafka.common.replica.RackAwareReplicaSelector"),
        }
    }
}

/// The highest `transaction.version` served (KIP-890 part 2).
pub const TRANSACTION_VERSION_MAX: i16 = 2;

impl BrokerConfig {
    /// Replicas of each partition of `__consumer_offsets`, before the
    /// cap of the live brokers.
    pub fn offsets_replication_factor(&self) -> u16 {
        self.offsets_topic_replication_factor
            .unwrap_or(self.default_replication_factor)
    }

    /// Replicas of each partition of `__transaction_state`, before the
    /// cap of the live brokers.
    pub fn transaction_state_replication_factor(&self) -> u16 {
        self.transaction_state_log_replication_factor
            .unwrap_or(self.default_replication_factor)
    }
}

/// How often the controller leader checks leader balance, by default.
/// Kafka checks every 300 s (`leader.imbalance.check.interval.seconds`);
/// here a broker's lease is 1 s, so leadership leaves a stopped broker
/// within about a second and a restarted one is back in sync within
/// seconds, and until the check the others carry its partitions' produce,
/// fetch and fdatasync load, which a 2 ms latency target feels for the
/// whole wait. A check reads the image once (no I/O) and proposes only
/// elections that are due, so checking ten times as often costs nothing
/// while the cluster is balanced; 30 s still leaves a restarted broker
/// time to settle before it leads again.
pub const LEADER_IMBALANCE_CHECK_INTERVAL: Duration = Duration::from_secs(30);

/// One Kafka listener: Kafka clients that connect to `addr` are told of
/// the brokers' addresses of the listener of the same `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaListener {
    /// Its name (Kafka's listener name: the security protocol's, unless
    /// `listener_security_protocol_map` names it otherwise), upper case.
    pub name: String,
    pub protocol: SecurityProtocol,
    /// HOST:PORT it listens on.
    pub addr: String,
    /// HOST:PORT clients are told to connect to (Metadata,
    /// FindCoordinator, DescribeCluster); `None`: `addr`.
    pub advertised: Option<String>,
}

impl KafkaListener {
    /// A `PLAINTEXT` listener on `addr`.
    pub fn plaintext(addr: impl Into<String>) -> KafkaListener {
        KafkaListener {
            name: SecurityProtocol::Plaintext.name().to_string(),
            protocol: SecurityProtocol::Plaintext,
            addr: addr.into(),
            advertised: None,
        }
    }

    /// The address clients are told of.
    pub fn advertised(&self) -> &str {
        self.advertised.as_deref().unwrap_or(&self.addr)
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            node_id: NodeId(0),
            peer_addr: "127.0.0.1:9193".to_string(),
            voters: Vec::new(),
            cluster_id: None,
            rejoin: false,
            rack: None,
            data_dir: PathBuf::from("./sluice-data"),
            log_dirs: Vec::new(),
            native_addr: "127.0.0.1:9192".to_string(),
            native_tls: false,
            // Off for an embedded broker; `sluice serve` listens on 9092.
            kafka_listeners: Vec::new(),
            tls: None,
            kafka_sasl: None,
            authorizer: None,
            quota_window: Default::default(),
            connections_max_per_ip: 0,
            // Off for an embedded broker; `sluice serve` listens on 9644.
            admin_addr: None,
            admin_tls: false,
            peer_tls: None,
            ready_file: None,
            auto_create_topics: true,
            auto_create_partitions: 4,
            cores: None,
            default_partitions: 1,
            default_replication_factor: 1,
            min_insync_replicas: 1,
            offsets_topic_replication_factor: None,
            transaction_state_log_replication_factor: None,
            transaction_version: TRANSACTION_VERSION_MAX,
            connection_idle_timeout: Duration::from_secs(600),
            connections_max_reauth: None,
            partial_frame_timeout: Duration::from_secs(30),
            connections_max: 10_000,
            in_flight_per_connection_max: 128,
            frame_bytes_max: sluice_net::native::frame::FRAME_BYTES_MAX,
            group_initial_rebalance_delay: Duration::from_secs(3),
            group_min_session_timeout: Duration::from_secs(6),
            group_max_session_timeout: Duration::from_secs(30 * 60),
            group_offsets_compact_bytes: 64 * 1024 * 1024,
            group_consumer_heartbeat_interval: Duration::from_secs(5),
            group_consumer_session_timeout: Duration::from_secs(45),
            retention_check_interval: Duration::from_secs(300),
            cleaner_check_interval: Duration::from_secs(15),
            cleaner_bytes_per_s: sluice_storage::log::CLEAN_BYTES_PER_S,
            delete_bytes_per_s: sluice_storage::deleter::DELETE_BYTES_PER_S,
            auto_leader_rebalance: true,
            leader_imbalance_check_interval: LEADER_IMBALANCE_CHECK_INTERVAL,
            replica_selector: ReplicaSelector::Leader,
        }
    }
}

/// One voter of the controller quorum: a node id and its peer address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    pub node_id: NodeId,
    pub peer_addr: String,
}

/// Why a list of voters is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VotersError {
    #[error("voter {entry:?} is not ID@HOST:PORT")]
    Malformed { entry: String },
    #[error("{count} voters: a quorum has 1, 3 or 5 (an even count adds a node that must agree without adding a failure it survives)")]
    Count { count: usize },
    #[error("node {node_id} is a voter twice")]
    DuplicateNode { node_id: NodeId },
    #[error("{peer_addr} is the address of two voters")]
    DuplicateAddress { peer_addr: String },
    #[error("node {node_id} is a voter at {voter_addr}, but its --peer-addr is {peer_addr}")]
    OwnAddress {
        node_id: NodeId,
        voter_addr: String,
        peer_addr: String,
    },
}

impl Voter {
    /// Voters written `ID@HOST:PORT[,ID@HOST:PORT...]` (Kafka's
    /// `controller.quorum.voters`), checked: 1, 3 or 5 of them, no node id
    /// or address twice.
    pub fn parse_list(text: &str) -> Result<Vec<Voter>, VotersError> {
        let voters = text
            .split(',')
            .map(str::trim)
            .map(|entry| {
                let malformed = || VotersError::Malformed {
                    entry: entry.to_string(),
                };
                let (id, addr) = entry.split_once('@').ok_or_else(malformed)?;
                let node_id = id
                    .parse::<i32>()
                    .ok()
                    .filter(|id| *id >= 0)
                    .ok_or_else(malformed)?;
                let (host, port) = addr.rsplit_once(':').ok_or_else(malformed)?;
                if host.is_empty() || port.parse::<u16>().is_err() {
                    return Err(malformed());
                }
                Ok(Voter {
                    node_id: NodeId(node_id),
                    peer_addr: addr.to_string(),
                })
            })
            .collect::<Result<Vec<Voter>, VotersError>>()?;
        if !matches!(voters.len(), 1 | 3 | 5) {
            return Err(VotersError::Count {
                count: voters.len(),
            });
        }
        for (index, voter) in voters.iter().enumerate() {
            let earlier = &voters[..index];
            if earlier.iter().any(|other| other.node_id == voter.node_id) {
                return Err(VotersError::DuplicateNode {
                    node_id: voter.node_id,
                });
            }
            if earlier
                .iter()
                .any(|other| other.peer_addr == voter.peer_addr)
            {
                return Err(VotersError::DuplicateAddress {
                    peer_addr: voter.peer_addr.clone(),
                });
            }
        }
        Ok(voters)
    }
}

/// Checks `config`'s quorum against this node: a voter that is this node
/// must be at its `peer_addr`. A node not among the voters is a broker
/// that follows the quorum (an observer); no voters given is this node
/// alone.
pub fn check_quorum(config: &BrokerConfig) -> Result<(), VotersError> {
    let node_id = config.node_id;
    if let Some(own) = config.voters.iter().find(|voter| voter.node_id == node_id) {
        if own.peer_addr != config.peer_addr {
            return Err(VotersError::OwnAddress {
                node_id,
                voter_addr: own.peer_addr.clone(),
                peer_addr: config.peer_addr.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voter(id: i32, addr: &str) -> Voter {
        Voter {
            node_id: NodeId(id),
            peer_addr: addr.to_string(),
        }
    }

    #[test]
    fn voters_parse_as_kafka_writes_them() {
        assert_eq!(
            Voter::parse_list("1@a:9193, 2@b:9193,3@[::1]:9194").unwrap(),
            [
                voter(1, "a:9193"),
                voter(2, "b:9193"),
                voter(3, "[::1]:9194")
            ]
        );
        assert_eq!(Voter::parse_list("0@h:1").unwrap(), [voter(0, "h:1")]);
    }

    #[test]
    fn bad_voter_lists_are_refused_with_what_is_wrong() {
        let malformed = [
            "",
            "1",
            "1@",
            "@h:1",
            "x@h:1",
            "-1@h:1",
            "1@h",
            "1@:5",
            "1@h:99999",
        ];
        for text in malformed {
            assert!(
                matches!(Voter::parse_list(text), Err(VotersError::Malformed { .. })),
                "{text:?}"
            );
        }
        assert_eq!(
            Voter::parse_list("1@a:1,2@b:1"),
            Err(VotersError::Count { count: 2 })
        );
        assert_eq!(
            Voter::parse_list("1@a:1,2@b:1,3@c:1,4@d:1,5@e:1,6@f:1,7@g:1"),
            Err(VotersError::Count { count: 7 })
        );
        assert_eq!(
            Voter::parse_list("1@a:1,2@b:1,1@c:1"),
            Err(VotersError::DuplicateNode { node_id: NodeId(1) })
        );
        assert_eq!(
            Voter::parse_list("1@a:1,2@b:1,3@a:1"),
            Err(VotersError::DuplicateAddress {
                peer_addr: "a:1".to_string()
            })
        );
    }

    #[test]
    fn a_voter_is_at_its_own_peer_address() {
        let config = |node: i32, voters: &str| BrokerConfig {
            node_id: NodeId(node),
            peer_addr: "h:9193".to_string(),
            voters: if voters.is_empty() {
                Vec::new()
            } else {
                Voter::parse_list(voters).unwrap()
            },
            ..BrokerConfig::default()
        };
        assert_eq!(check_quorum(&config(1, "")), Ok(()));
        assert_eq!(check_quorum(&config(1, "1@h:9193")), Ok(()));
        assert!(matches!(
            check_quorum(&config(1, "1@other:9193")),
            Err(VotersError::OwnAddress { .. })
        ));
        assert_eq!(
            check_quorum(&config(1, "1@h:9193,2@i:9193,3@j:9193")),
            Ok(())
        );
        assert_eq!(
            check_quorum(&config(4, "1@h:9193,2@i:9193,3@j:9193")),
            Ok(()),
            "a broker that is not a voter follows the quorum"
        );
    }
}
