//! The broker's settings as Kafka's admin clients see them (DescribeConfigs
//! on the BROKER resource): Kafka's names, each with its value on this
//! broker, whether it was set or is the default, and its type. The broker
//! defaults of the topic configs (`log.retention.ms` for `retention.ms`, and
//! so on) are among them.
//!
//! Most are static: given to `sluice serve` by flag, environment or file,
//! and changed by a restart; IncrementalAlterConfigs refuses them, saying
//! so. The broker defaults of topic configs are dynamic too: the cluster's
//! dynamic defaults (in the replicated metadata) come before the static
//! value.

use std::{collections::BTreeMap, time::Duration};

use crate::{
    topic_config::{ConfigType, LONG_MAX, THROTTLE_RATES, TOPIC_CONFIGS},
    BrokerConfig,
};

/// Where a dynamic setting's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dynamic {
    ClusterDefault,
    ThisBroker,
}

/// One broker setting as described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerSetting {
    pub name: &'static str,
    pub value: Option<String>,
    /// Set for this broker (a flag, the environment or the file) rather
    /// than the default.
    pub set: bool,
    /// Set dynamically (over `set`): by the cluster's defaults, or for
    /// this broker.
    pub dynamic: Option<Dynamic>,
    /// Changes only with a restart.
    pub read_only: bool,
    pub config_type: ConfigType,
    pub doc: &'static str,
}

fn millis(duration: Duration) -> String {
    duration.as_millis().to_string()
}

/// Every setting of a broker started with `config`, in a cluster whose
/// dynamic broker defaults are `dynamic` and whose dynamic configs for
/// this broker are `own`.
pub fn broker_settings(
    config: &BrokerConfig,
    dynamic: &BTreeMap<String, String>,
    own: &BTreeMap<String, String>,
) -> Vec<BrokerSetting> {
    let defaults = BrokerConfig::default();
    let mut settings = Vec::new();
    let mut add = |name: &'static str,
                   value: Option<String>,
                   default: Option<String>,
                   config_type: ConfigType,
                   doc: &'static str| {
        settings.push(BrokerSetting {
            name,
            set: value != default,
            dynamic: None,
            read_only: true,
            value,
            config_type,
            doc,
        });
    };
    let node = Some(config.node_id.0.to_string());
    add(
        "node.id",
        node.clone(),
        None,
        ConfigType::Int,
        "this node's id in its cluster",
    );
    add(
        "broker.id",
        node,
        None,
        ConfigType::Int,
        "this node's id in its cluster (node.id)",
    );
    add(
        "broker.rack",
        config.rack.clone(),
        None,
        ConfigType::String,
        "this broker's rack: placement spreads replicas over racks",
    );
    let log_dirs = std::iter::once(&config.data_dir)
        .chain(&config.log_dirs)
        .map(|dir| dir.display().to_string())
        .collect::<Vec<_>>()
        .join(",");
    add(
        "log.dirs",
        Some(log_dirs),
        None,
        ConfigType::List,
        "the directories partitions live in",
    );
    let listeners = |addr: fn(&crate::config::KafkaListener) -> &str| {
        (!config.kafka_listeners.is_empty()).then(|| {
            config
                .kafka_listeners
                .iter()
                .map(|listener| format!("{}://{}", listener.name, addr(listener)))
                .collect::<Vec<_>>()
                .join(",")
        })
    };
    add(
        "listeners",
        listeners(|listener| &listener.addr),
        None,
        ConfigType::List,
        "where the Kafka protocol is served",
    );
    add(
        "advertised.listeners",
        listeners(crate::config::KafkaListener::advertised),
        None,
        ConfigType::List,
        "the addresses Kafka clients are told to connect to",
    );
    add(
        "listener.security.protocol.map",
        listeners(|listener| listener.protocol.name()).map(|map| map.replace("://", ":")),
        None,
        ConfigType::List,
        "each Kafka listener's security protocol",
    );
    let number = |value: u64| Some(value.to_string());
    add(
        "num.partitions",
        number(config.default_partitions.into()),
        number(defaults.default_partitions.into()),
        ConfigType::Int,
        "partitions of a topic created without a count",
    );
    add(
        "default.replication.factor",
        number(config.default_replication_factor.into()),
        number(defaults.default_replication_factor.into()),
        ConfigType::Int,
        "replicas of a topic created without a replication factor",
    );
    add(
        "offsets.topic.replication.factor",
        number(config.offsets_replication_factor().into()),
        number(defaults.offsets_replication_factor().into()),
        ConfigType::Short,
        "replicas of each partition of __consumer_offsets (at most the live brokers)",
    );
    add(
        "transaction.state.log.replication.factor",
        number(config.transaction_state_replication_factor().into()),
        number(defaults.transaction_state_replication_factor().into()),
        ConfigType::Short,
        "replicas of each partition of __transaction_state (at most the live brokers)",
    );
    add(
        "auto.create.topics.enable",
        Some(config.auto_create_topics.to_string()),
        Some(defaults.auto_create_topics.to_string()),
        ConfigType::Boolean,
        "a Metadata or Produce request for an unknown topic creates it",
    );
    add(
        "auto.leader.rebalance.enable",
        Some(config.auto_leader_rebalance.to_string()),
        Some(defaults.auto_leader_rebalance.to_string()),
        ConfigType::Boolean,
        "the controller moves leadership back to preferred replicas",
    );
    add(
        "leader.imbalance.check.interval.seconds",
        number(config.leader_imbalance_check_interval.as_secs()),
        number(defaults.leader_imbalance_check_interval.as_secs()),
        ConfigType::Long,
        "how often the controller checks leader balance",
    );
    add(
        "replica.selector.class",
        Some(match config.replica_selector {
            crate::ReplicaSelector::Leader => String::new(),
            crate::ReplicaSelector::RackAware => {
                crate::ReplicaSelector::KAFKA_RACK_AWARE.to_string()
            }
        }),
        Some(String::new()),
        ConfigType::Class,
        "which replica a consumer reads from (KIP-392)",
    );
    add(
        "group.initial.rebalance.delay.ms",
        Some(millis(config.group_initial_rebalance_delay)),
        Some(millis(defaults.group_initial_rebalance_delay)),
        ConfigType::Int,
        "how long the first rebalance of an empty classic group waits for more members",
    );
    add(
        "group.min.session.timeout.ms",
        Some(millis(config.group_min_session_timeout)),
        Some(millis(defaults.group_min_session_timeout)),
        ConfigType::Int,
        "the shortest session timeout a classic group member may ask for",
    );
    add(
        "group.max.session.timeout.ms",
        Some(millis(config.group_max_session_timeout)),
        Some(millis(defaults.group_max_session_timeout)),
        ConfigType::Int,
        "the longest session timeout a classic group member may ask for",
    );
    add(
        "group.consumer.heartbeat.interval.ms",
        Some(millis(config.group_consumer_heartbeat_interval)),
        Some(millis(defaults.group_consumer_heartbeat_interval)),
        ConfigType::Int,
        "how often a consumer-protocol (KIP-848) member heartbeats",
    );
    add(
        "group.consumer.session.timeout.ms",
        Some(millis(config.group_consumer_session_timeout)),
        Some(millis(defaults.group_consumer_session_timeout)),
        ConfigType::Int,
        "a consumer-protocol member silent this long is dropped",
    );
    add(
        "connections.max.idle.ms",
        Some(millis(config.connection_idle_timeout)),
        Some(millis(defaults.connection_idle_timeout)),
        ConfigType::Long,
        "a connection that sends nothing for this long is closed",
    );
    add(
        "max.connections",
        number(config.connections_max as u64),
        number(defaults.connections_max as u64),
        ConfigType::Int,
        "open connections per broker",
    );
    add(
        "socket.request.max.bytes",
        number(config.frame_bytes_max as u64),
        number(defaults.frame_bytes_max as u64),
        ConfigType::Int,
        "the largest request",
    );
    add(
        "log.retention.check.interval.ms",
        Some(millis(config.retention_check_interval)),
        Some(millis(defaults.retention_check_interval)),
        ConfigType::Long,
        "how often retention is applied",
    );
    add(
        "replica.lag.time.max.ms",
        Some(millis(crate::replica::state::LAG_MAX)),
        Some(millis(crate::replica::state::LAG_MAX)),
        ConfigType::Long,
        "a follower this far behind leaves the in-sync set",
    );
    // The topic configs' broker defaults: this broker's where it has its
    // own (min.insync.replicas), else the topic config's default.
    for topic_config in TOPIC_CONFIGS {
        let Some(name) = topic_config.synonym else {
            continue;
        };
        let (value, default) = match name {
            "min.insync.replicas" => (
                config.min_insync_replicas.to_string(),
                defaults.min_insync_replicas.to_string(),
            ),
            _ => (topic_config.default_value(), topic_config.default_value()),
        };
        settings.push(BrokerSetting {
            name,
            set: value != default,
            dynamic: dynamic
                .contains_key(name)
                .then_some(Dynamic::ClusterDefault),
            read_only: false,
            value: Some(dynamic.get(name).cloned().unwrap_or(value)),
            config_type: topic_config.config_type,
            doc: topic_config.doc,
        });
    }
    for name in THROTTLE_RATES {
        let (value, dynamic) = match (own.get(name), dynamic.get(name)) {
            (Some(value), _) => (value.clone(), Some(Dynamic::ThisBroker)),
            (None, Some(value)) => (value.clone(), Some(Dynamic::ClusterDefault)),
            (None, None) => (LONG_MAX.to_string(), None),
        };
        settings.push(BrokerSetting {
            name,
            set: false,
            dynamic,
            read_only: false,
            value: Some(value),
            config_type: ConfigType::Long,
            doc: "bytes per second of replication this broker sends as leader (leader.*) or takes as follower (follower.*) for the replicas its topics list in leader/follower.replication.throttled.replicas while a partition moves",
        });
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_named_once_and_the_ones_given_are_marked_set() {
        let config = BrokerConfig {
            default_partitions: 6,
            ..BrokerConfig::default()
        };
        let dynamic = [("log.retention.ms".to_string(), "5".to_string())].into();
        let own = [(
            "leader.replication.throttled.rate".to_string(),
            "1000".to_string(),
        )]
        .into();
        let settings = broker_settings(&config, &dynamic, &own);
        let mut names: Vec<&str> = settings.iter().map(|setting| setting.name).collect();
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "a setting named twice");
        let find = |name: &str| {
            settings
                .iter()
                .find(|setting| setting.name == name)
                .unwrap()
        };
        assert_eq!(find("num.partitions").value.as_deref(), Some("6"));
        assert!(find("num.partitions").set);
        assert!(!find("auto.create.topics.enable").set);
        assert_eq!(find("log.cleanup.policy").value.as_deref(), Some("delete"));
        assert_eq!(
            find("group.min.session.timeout.ms").value.as_deref(),
            Some("6000")
        );
        assert!(find("group.min.session.timeout.ms").read_only);
        let retention = find("log.retention.ms");
        assert_eq!(retention.value.as_deref(), Some("5"));
        assert!(retention.dynamic == Some(Dynamic::ClusterDefault) && !retention.read_only);
        let rate = find("leader.replication.throttled.rate");
        assert_eq!(rate.value.as_deref(), Some("1000"));
        assert_eq!(rate.dynamic, Some(Dynamic::ThisBroker));
        assert_eq!(
            find("follower.replication.throttled.rate").value.as_deref(),
            Some("9223372036854775807")
        );
    }
}
