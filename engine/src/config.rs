//! The broker's settings, and topic configs with their Kafka names.

use std::{path::PathBuf, time::Duration};

use sluice_storage::NodeId;

/// How the broker runs. Built by the `sluice` command from flags, `SLUICE_*`
/// environment variables, a TOML file and these defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// This node's id in its cluster (Kafka's `node.id`), recorded in the
    /// data directory at its first start and checked at every later one.
    pub node_id: NodeId,
    /// Where topics and metadata live.
    pub data_dir: PathBuf,
    /// HOST:PORT of the native protocol listener.
    pub native_addr: String,
    /// HOST:PORT of the Kafka protocol listener; `None`: no Kafka listener.
    pub kafka_addr: Option<String>,
    /// HOST:PORT that Kafka clients are told to connect to (Metadata,
    /// FindCoordinator); `None`: `kafka_addr`.
    pub kafka_advertised_addr: Option<String>,
    /// HOST:PORT of the admin HTTP listener (`/metrics`); `None`: none.
    pub admin_addr: Option<String>,
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
    /// A connection that sends nothing for this long is closed.
    pub connection_idle_timeout: Duration,
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
    /// Bytes appended to a partition of `__consumer_offsets` before it is
    /// compacted (its live records written again, the rest deleted).
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
    /// The pace at which deleted files give their space back, bytes/s; 0:
    /// each file at once (see `sluice_storage::deleter`).
    pub delete_bytes_per_s: u64,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            node_id: NodeId(0),
            data_dir: PathBuf::from("./sluice-data"),
            native_addr: "127.0.0.1:9192".to_string(),
            // Off for an embedded broker; `sluice serve` listens on 9092.
            kafka_addr: None,
            kafka_advertised_addr: None,
            // Off for an embedded broker; `sluice serve` listens on 9644.
            admin_addr: None,
            ready_file: None,
            auto_create_topics: true,
            auto_create_partitions: 4,
            cores: None,
            default_partitions: 1,
            connection_idle_timeout: Duration::from_secs(600),
            partial_frame_timeout: Duration::from_secs(30),
            connections_max: 10_000,
            in_flight_per_connection_max: 128,
            frame_bytes_max: sluice_net::native::frame::FRAME_BYTES_MAX,
            group_initial_rebalance_delay: Duration::from_secs(3),
            group_offsets_compact_bytes: 64 * 1024 * 1024,
            group_consumer_heartbeat_interval: Duration::from_secs(5),
            group_consumer_session_timeout: Duration::from_secs(45),
            retention_check_interval: Duration::from_secs(300),
            delete_bytes_per_s: sluice_storage::deleter::DELETE_BYTES_PER_S,
        }
    }
}
