//! Topic configs: Kafka's names where Kafka has one, Sluice's own for the
//! flush policy, checked and turned into a partition log's config.

use std::{collections::BTreeMap, time::Duration};

use sluice_replication::partition::control::ControlConfig;
use sluice_storage::{
    batch::compression::Codec,
    log::{CleanupPolicy, DirtyRatio, FlushPolicy, LogConfig, Recompression},
};

/// How a config's value reads: Kafka's config types, with their codes in
/// DescribeConfigs (v3+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
    Class = 8,
}

impl ConfigType {
    /// Kafka's code for the type.
    pub fn code(self) -> i8 {
        self as i8
    }
}

/// What a value must be.
enum Check {
    Boolean,
    /// An integer within the bounds.
    Range(i64, i64),
    /// A number within [0, 1].
    Ratio,
    /// One of these words.
    OneOf(&'static [&'static str]),
    /// A comma-separated list of these words, at least one.
    ListOf(&'static [&'static str]),
    /// A replication throttle's replicas: `*`, empty, or
    /// `partition:broker` pairs.
    ThrottledReplicas,
    /// Anything the function accepts.
    Custom(fn(&str) -> Result<(), String>),
}

/// One topic config: its name, type and default as Kafka documents them
/// (Sluice's own default where Sluice's differs), the broker setting whose
/// value is its default (Kafka's "server default property"), and what it
/// means here.
pub struct TopicConfig {
    pub name: &'static str,
    pub config_type: ConfigType,
    /// The broker setting that gives the default, if Kafka has one.
    pub synonym: Option<&'static str>,
    pub doc: &'static str,
    check: Check,
    default: fn(&LogConfig) -> String,
}

/// Kafka's `Long.MAX_VALUE`, which its configs use for "no limit".
pub const LONG_MAX: i64 = i64::MAX;

/// The largest `max.message.bytes`: Sluice's cap on a batch.
const MAX_MESSAGE_BYTES_CAP: i64 = sluice_storage::batch::BATCH_BYTES_MAX as i64;

fn ms_or_forever(ms: Option<u64>) -> String {
    ms.map_or("-1".to_string(), |ms| ms.to_string())
}

fn ms_or_max(ms: Option<u64>) -> String {
    ms.map_or(LONG_MAX.to_string(), |ms| ms.to_string())
}

/// The configs a topic accepts, in Kafka's order, then Sluice's own.
pub const TOPIC_CONFIGS: &[TopicConfig] = &[
    TopicConfig {
        name: "cleanup.policy",
        config_type: ConfigType::List,
        synonym: Some("log.cleanup.policy"),
        doc: "`delete` (the default) deletes old segments by retention.ms and retention.bytes; `compact` keeps the latest record per key; `compact,delete` does both",
        check: Check::ListOf(&["compact", "delete"]),
        default: |config| match (config.cleanup_policy.compact, config.cleanup_policy.delete) {
            (true, true) => "compact,delete".to_string(),
            (true, false) => "compact".to_string(),
            _ => "delete".to_string(),
        },
    },
    TopicConfig {
        name: "compression.gzip.level",
        config_type: ConfigType::Int,
        synonym: Some("compression.gzip.level"),
        doc: "the gzip level when the broker compresses with gzip (compression.type=gzip): 1 to 9, or -1 for the codec's default",
        check: Check::Custom(|value| match value.trim().parse::<i64>() {
            Ok(-1 | 1..=9) => Ok(()),
            _ => Err("must be -1 or within [1, 9]".to_string()),
        }),
        default: |_| "-1".to_string(),
    },
    TopicConfig {
        name: "compression.lz4.level",
        config_type: ConfigType::Int,
        synonym: Some("compression.lz4.level"),
        doc: "the lz4 level when the broker compresses with lz4 (compression.type=lz4)",
        check: Check::Range(1, 17),
        default: |_| "9".to_string(),
    },
    TopicConfig {
        name: "compression.type",
        config_type: ConfigType::String,
        synonym: Some("compression.type"),
        doc: "`producer` keeps each batch as its producer compressed it; `uncompressed`, `gzip`, `snappy`, `lz4` or `zstd` stores Kafka batches so, recompressing on the broker a batch its producer compressed otherwise (at the codec's compression.*.level); native batches are kept as sent",
        check: Check::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
        default: |_| "producer".to_string(),
    },
    TopicConfig {
        name: "compression.zstd.level",
        config_type: ConfigType::Int,
        synonym: Some("compression.zstd.level"),
        doc: "the zstd level when the broker compresses with zstd (compression.type=zstd)",
        check: Check::Range(-131_072, 22),
        default: |_| "3".to_string(),
    },
    TopicConfig {
        name: "delete.retention.ms",
        config_type: ConfigType::Long,
        synonym: Some("log.cleaner.delete.retention.ms"),
        doc: "in a compacted topic, how long a tombstone (a record with a key and no value) stays once compaction has reached it",
        check: Check::Range(0, LONG_MAX),
        default: |config| config.compaction.delete_retention_ms.to_string(),
    },
    TopicConfig {
        name: "file.delete.delay.ms",
        config_type: ConfigType::Long,
        synonym: Some("log.segment.delete.delay.ms"),
        doc: "how long a deleted segment's file stays on disk before its space is given back, a step at a time",
        check: Check::Range(0, LONG_MAX),
        default: |config| config.file_delete_delay_ms.to_string(),
    },
    TopicConfig {
        name: "flush.messages",
        config_type: ConfigType::Long,
        synonym: Some("log.flush.interval.messages"),
        doc: "1 (the default): every write is fdatasync'ed before it is acknowledged; 9223372036854775807: writes are fdatasync'ed by time (flush.ms, 1000 ms unless set); other counts are refused",
        check: Check::Custom(|value| match value.trim().parse::<i64>() {
            Ok(1 | LONG_MAX) => Ok(()),
            Ok(count) if count >= 1 => Err(
                "fdatasync after a count of writes other than 1 is not offered: 1 fsyncs every write, flush.ms bounds the time".to_string(),
            ),
            _ => Err("must be at least 1".to_string()),
        }),
        default: |config| match config.flush {
            FlushPolicy::Always => "1".to_string(),
            FlushPolicy::Interval(_) => LONG_MAX.to_string(),
        },
    },
    TopicConfig {
        name: "flush.ms",
        config_type: ConfigType::Long,
        synonym: Some("log.flush.interval.ms"),
        doc: "with flush.messages other than 1: fdatasync at most this long after a write; 0 fdatasyncs every write",
        check: Check::Range(0, LONG_MAX),
        default: |config| match config.flush {
            FlushPolicy::Always => LONG_MAX.to_string(),
            FlushPolicy::Interval(interval) => interval.as_millis().to_string(),
        },
    },
    TopicConfig {
        name: "follower.replication.throttled.replicas",
        config_type: ConfigType::List,
        synonym: Some("follower.replication.throttled.replicas"),
        doc: "replicas (`partition:broker`, or `*`) whose catching up is throttled: a move adding one is paced at the follower.replication.throttled.rate of its broker (and the leader's leader.replication.throttled.rate), the least of those set",
        check: Check::ThrottledReplicas,
        default: |_| String::new(),
    },
    TopicConfig {
        name: "index.interval.bytes",
        config_type: ConfigType::Int,
        synonym: Some("log.index.interval.bytes"),
        doc: "bytes of log between two index entries",
        check: Check::Range(1, i32::MAX as i64),
        default: |config| config.index_interval_bytes.to_string(),
    },
    TopicConfig {
        name: "leader.replication.throttled.replicas",
        config_type: ConfigType::List,
        synonym: Some("leader.replication.throttled.replicas"),
        doc: "replicas (`partition:broker`, or `*`) whose sending as leader is throttled: a move from a listed leader is paced at its broker's leader.replication.throttled.rate too",
        check: Check::ThrottledReplicas,
        default: |_| String::new(),
    },
    TopicConfig {
        name: "local.retention.bytes",
        config_type: ConfigType::Long,
        synonym: Some("log.local.retention.bytes"),
        doc: "with tiered storage, the bytes kept on local disk; without it (always here) retention.bytes applies, as in Kafka",
        check: Check::Range(-2, LONG_MAX),
        default: |_| "-2".to_string(),
    },
    TopicConfig {
        name: "local.retention.ms",
        config_type: ConfigType::Long,
        synonym: Some("log.local.retention.ms"),
        doc: "with tiered storage, how long records stay on local disk; without it (always here) retention.ms applies, as in Kafka",
        check: Check::Range(-2, LONG_MAX),
        default: |_| "-2".to_string(),
    },
    TopicConfig {
        name: "max.compaction.lag.ms",
        config_type: ConfigType::Long,
        synonym: Some("log.cleaner.max.compaction.lag.ms"),
        doc: "in a compacted topic, the longest a record stays uncompacted, whatever min.cleanable.dirty.ratio says",
        check: Check::Range(1, LONG_MAX),
        default: |config| config.compaction.max_compaction_lag_ms.to_string(),
    },
    TopicConfig {
        name: "max.message.bytes",
        config_type: ConfigType::Int,
        synonym: Some("message.max.bytes"),
        doc: "the largest record batch a producer may write (MESSAGE_TOO_LARGE beyond it); at most 16 MiB",
        check: Check::Range(0, MAX_MESSAGE_BYTES_CAP),
        default: |config| config.batch_bytes_max.to_string(),
    },
    TopicConfig {
        name: "message.timestamp.after.max.ms",
        config_type: ConfigType::Long,
        synonym: Some("log.message.timestamp.after.max.ms"),
        doc: "with CreateTime, a batch with a timestamp further ahead of the broker's clock than this is refused (INVALID_TIMESTAMP)",
        check: Check::Range(0, LONG_MAX),
        default: |config| ms_or_max(config.timestamps.after_max_ms),
    },
    TopicConfig {
        name: "message.timestamp.before.max.ms",
        config_type: ConfigType::Long,
        synonym: Some("log.message.timestamp.before.max.ms"),
        doc: "with CreateTime, a batch with a timestamp older than this against the broker's clock is refused (INVALID_TIMESTAMP)",
        check: Check::Range(0, LONG_MAX),
        default: |config| ms_or_max(config.timestamps.before_max_ms),
    },
    TopicConfig {
        name: "message.timestamp.type",
        config_type: ConfigType::String,
        synonym: Some("log.message.timestamp.type"),
        doc: "`CreateTime`: records keep their producer's timestamps; `LogAppendTime`: the broker stamps each batch with the time of its append",
        check: Check::OneOf(&["CreateTime", "LogAppendTime"]),
        default: |config| {
            if config.timestamps.log_append_time {
                "LogAppendTime".to_string()
            } else {
                "CreateTime".to_string()
            }
        },
    },
    TopicConfig {
        name: "min.cleanable.dirty.ratio",
        config_type: ConfigType::Double,
        synonym: Some("log.cleaner.min.cleanable.ratio"),
        doc: "in a compacted topic, compaction starts once this share of the log has not been compacted yet",
        check: Check::Ratio,
        default: |config| config.compaction.min_cleanable_dirty_ratio.get().to_string(),
    },
    TopicConfig {
        name: "min.compaction.lag.ms",
        config_type: ConfigType::Long,
        synonym: Some("log.cleaner.min.compaction.lag.ms"),
        doc: "in a compacted topic, the least time a record stays uncompacted",
        check: Check::Range(0, LONG_MAX),
        default: |config| config.compaction.min_compaction_lag_ms.to_string(),
    },
    TopicConfig {
        name: "min.insync.replicas",
        config_type: ConfigType::Int,
        synonym: Some("min.insync.replicas"),
        doc: "acks=all writes need this many replicas in sync, or get NOT_ENOUGH_REPLICAS",
        check: Check::Range(1, i32::MAX as i64),
        default: |_| MIN_IN_SYNC_DEFAULT.to_string(),
    },
    TopicConfig {
        name: "preallocate",
        config_type: ConfigType::Boolean,
        synonym: Some("log.preallocate"),
        doc: "`true`: allocate the active segment's file ahead of writes (fallocate, 16 MiB at a time)",
        check: Check::Boolean,
        default: |config| config.preallocate.to_string(),
    },
    TopicConfig {
        name: "remote.log.copy.disable",
        config_type: ConfigType::Boolean,
        synonym: None,
        doc: "tiered storage: stop copying segments to remote storage; tiered storage is not offered here, so it has nothing to stop",
        check: Check::Boolean,
        default: |_| "false".to_string(),
    },
    TopicConfig {
        name: "remote.log.delete.on.disable",
        config_type: ConfigType::Boolean,
        synonym: None,
        doc: "tiered storage: delete remote data when it is disabled; tiered storage is not offered here, so there is none",
        check: Check::Boolean,
        default: |_| "false".to_string(),
    },
    TopicConfig {
        name: "remote.storage.enable",
        config_type: ConfigType::Boolean,
        synonym: None,
        doc: "tiered storage; not offered here: `true` is refused",
        check: Check::Custom(|value| match value.trim() {
            "false" => Ok(()),
            "true" => Err("tiered storage is not offered by this broker".to_string()),
            _ => Err("must be `true` or `false`".to_string()),
        }),
        default: |_| "false".to_string(),
    },
    TopicConfig {
        name: "retention.bytes",
        config_type: ConfigType::Long,
        synonym: Some("log.retention.bytes"),
        doc: "delete the oldest sealed segments while a partition is larger; -1 for no limit",
        check: Check::Range(-1, LONG_MAX),
        default: |config| ms_or_forever(config.retention_bytes),
    },
    TopicConfig {
        name: "retention.ms",
        config_type: ConfigType::Long,
        synonym: Some("log.retention.ms"),
        doc: "delete sealed segments older than this; -1 keeps forever",
        check: Check::Range(-1, LONG_MAX),
        default: |config| ms_or_forever(config.retention_ms),
    },
    TopicConfig {
        name: "segment.bytes",
        config_type: ConfigType::Int,
        synonym: Some("log.segment.bytes"),
        doc: "roll to a new segment before one grows past this",
        check: Check::Range(4096, sluice_storage::log::SEGMENT_BYTES_CAP as i64),
        default: |config| config.segment_bytes_max.to_string(),
    },
    TopicConfig {
        name: "segment.index.bytes",
        config_type: ConfigType::Int,
        synonym: Some("log.index.size.max.bytes"),
        doc: "Kafka's cap on a segment's index file; kept and shown; a segment's index here grows with its segment (one entry per index.interval.bytes), so it never forces a roll",
        check: Check::Range(4, i32::MAX as i64),
        default: |_| "10485760".to_string(),
    },
    TopicConfig {
        name: "segment.jitter.ms",
        config_type: ConfigType::Long,
        synonym: Some("log.roll.jitter.ms"),
        doc: "a segment rolls up to this much before segment.ms, by an amount drawn per segment, so that partitions created together do not all roll at once",
        check: Check::Range(0, LONG_MAX),
        default: |config| config.segment_jitter_ms.to_string(),
    },
    TopicConfig {
        name: "segment.ms",
        config_type: ConfigType::Long,
        synonym: Some("log.roll.ms"),
        doc: "roll to a new segment once the active one is this old",
        check: Check::Range(1, LONG_MAX),
        default: |config| ms_or_forever(config.segment_ms),
    },
    TopicConfig {
        name: "unclean.leader.election.enable",
        config_type: ConfigType::Boolean,
        synonym: Some("unclean.leader.election.enable"),
        doc: "`true`: elect a replica that is not in sync when none is (may lose acknowledged records)",
        check: Check::Boolean,
        default: |_| "false".to_string(),
    },
    TopicConfig {
        name: "flush.policy",
        config_type: ConfigType::String,
        synonym: None,
        doc: "Sluice's name for the flush configs: `always` (acknowledge once fdatasync'ed) or `interval`",
        check: Check::OneOf(&["always", "interval"]),
        default: |config| match config.flush {
            FlushPolicy::Always => "always".to_string(),
            FlushPolicy::Interval(_) => "interval".to_string(),
        },
    },
    TopicConfig {
        name: "flush.interval.ms",
        config_type: ConfigType::Long,
        synonym: None,
        doc: "with flush.policy=interval: fdatasync at most this often",
        check: Check::Range(1, LONG_MAX),
        default: |config| match config.flush {
            FlushPolicy::Interval(interval) => interval.as_millis().to_string(),
            FlushPolicy::Always => FLUSH_INTERVAL_DEFAULT_MS.to_string(),
        },
    },
    TopicConfig {
        name: "segment.prepare",
        config_type: ConfigType::Boolean,
        synonym: None,
        doc: "`true`: a partition that fills segments fast writes into the next segment's file, zero-filled ahead by a side thread",
        check: Check::Boolean,
        default: |config| config.prepare_segments.to_string(),
    },
];

/// Configs Kafka 4 still accepts but ignores, and drops from a topic's
/// configs: accepted here and dropped too.
pub const IGNORED_CONFIGS: &[&str] = &["message.downconversion.enable", "message.format.version"];

/// Configs Kafka removed, with what replaced them: refused with that said.
const REMOVED_CONFIGS: &[(&str, &str)] = &[(
    "message.timestamp.difference.max.ms",
    "removed in Kafka 4.0: use message.timestamp.before.max.ms and message.timestamp.after.max.ms",
)];

/// The topic config whose broker default is broker setting `name`.
pub fn by_synonym(name: &str) -> Option<&'static TopicConfig> {
    TOPIC_CONFIGS
        .iter()
        .find(|config| config.synonym == Some(name))
}

/// Dynamic broker defaults (by broker names) as topic configs.
pub fn topic_defaults(broker: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    broker
        .iter()
        .filter_map(|(name, value)| Some((by_synonym(name)?.name.to_string(), value.clone())))
        .collect()
}

/// The replication throttle rates (Kafka's names), bytes per second each
/// broker sends (as leader) or takes (as follower) for the replicas a
/// topic's `*.replication.throttled.replicas` list. Dynamic broker configs,
/// cluster-wide or per broker; unset: unthrottled.
pub const THROTTLE_RATES: [&str; 2] = [
    "leader.replication.throttled.rate",
    "follower.replication.throttled.rate",
];

/// Checks dynamic broker configs: the cluster-wide defaults
/// (`cluster_wide`) may be the broker default of a topic config, with a
/// value that config takes, or a throttle rate; one broker's own, a
/// throttle rate.
pub fn check_broker_configs(
    cluster_wide: bool,
    broker: &BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    for (name, value) in broker {
        if THROTTLE_RATES.contains(&name.as_str()) {
            match value.trim().parse::<i64>() {
                Ok(rate) if rate >= 0 => continue,
                _ => {
                    return Err(invalid(
                        name,
                        value,
                        "must be a number of bytes per second, at least 0",
                    ))
                }
            }
        }
        if !cluster_wide {
            return Err(invalid(
                name,
                value,
                "one broker's own dynamic configs are the replication throttle rates; the broker defaults of topic configs change cluster-wide (the BROKER resource named \"\")",
            ));
        }
        if by_synonym(name).is_none() {
            return Err(invalid(
                name,
                value,
                "not a dynamic broker config: the broker defaults of topic configs (log.retention.ms, log.cleanup.policy, message.max.bytes, ...) and the replication throttle rates change at run time; the other settings are static (sluice serve flags, environment or file)",
            ));
        }
    }
    log_config(&topic_defaults(broker)).map(|_| ())
}

/// The definition of config `name`, if topics have it.
pub fn definition(name: &str) -> Option<&'static TopicConfig> {
    TOPIC_CONFIGS.iter().find(|config| config.name == name)
}

impl TopicConfig {
    /// Checks `value` for this config.
    fn check(&self, value: &str) -> Result<(), ConfigError> {
        let refuse = |reason: String| Err(invalid(self.name, value, reason));
        let trimmed = value.trim();
        match &self.check {
            Check::Boolean => boolean(self.name, value).map(|_| ()),
            Check::Range(min, max) => match trimmed.parse::<i64>() {
                Ok(number) if (*min..=*max).contains(&number) => Ok(()),
                Ok(_) => refuse(format!("must be within [{min}, {max}]")),
                Err(_) => refuse("not an integer".to_string()),
            },
            Check::Ratio => match trimmed.parse::<f64>() {
                Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(()),
                _ => refuse("must be a number within [0, 1]".to_string()),
            },
            Check::OneOf(words) => {
                if words.contains(&trimmed) {
                    Ok(())
                } else {
                    refuse(format!("must be one of {}", words.join(", ")))
                }
            }
            Check::ListOf(words) => {
                let items = list_items(value);
                if items.is_empty() {
                    return refuse(format!("must list at least one of {}", words.join(", ")));
                }
                match items.iter().find(|item| !words.contains(item)) {
                    Some(item) => refuse(format!("{item} is not one of {}", words.join(", "))),
                    None => Ok(()),
                }
            }
            Check::ThrottledReplicas => {
                if trimmed == "*" {
                    return Ok(());
                }
                let pair = |item: &str| {
                    let (partition, broker) = item.split_once(':')?;
                    partition.trim().parse::<u32>().ok()?;
                    broker.trim().parse::<u32>().ok()
                };
                match list_items(value)
                    .into_iter()
                    .find(|item| pair(item).is_none())
                {
                    Some(item) => {
                        refuse(format!("{item}: must be `*` or a list of partition:broker"))
                    }
                    None => Ok(()),
                }
            }
            Check::Custom(check) => check(value).or_else(refuse),
        }
    }

    /// This config's value when a topic does not set it.
    pub fn default_value(&self) -> String {
        (self.default)(&LogConfig::default())
    }
}

/// The items of a list config's value, trimmed, empty ones left out.
pub fn list_items(value: &str) -> Vec<&str> {
    // `[a,b]` is how Kafka's tools write a list on the command line.
    value
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect()
}

/// `min.insync.replicas` when a topic does not set it: Kafka's default.
pub const MIN_IN_SYNC_DEFAULT: usize = 1;

/// The election rules a topic with `configs` sets (values checked when they
/// were set; a value that does not read is the default).
pub fn control_config(configs: &BTreeMap<String, String>) -> ControlConfig {
    let min_in_sync = configs
        .get("min.insync.replicas")
        .and_then(|value| value.trim().parse::<usize>().ok())
        .filter(|min| *min >= 1)
        .unwrap_or(MIN_IN_SYNC_DEFAULT);
    let unclean = configs
        .get("unclean.leader.election.enable")
        .is_some_and(|value| value.trim() == "true");
    ControlConfig {
        min_in_sync,
        unclean,
    }
}

/// A topic's configs as they are kept: those Kafka ignores dropped.
pub fn kept(mut configs: BTreeMap<String, String>) -> BTreeMap<String, String> {
    configs.retain(|name, _| !IGNORED_CONFIGS.contains(&name.as_str()));
    configs
}

/// Every topic config's value for a topic with `configs` set: the value
/// set, or the default (the effective one: Sluice's flush configs and
/// Kafka's describe the same policy); and whether it was set.
pub fn effective(configs: &BTreeMap<String, String>) -> Vec<(&'static TopicConfig, String, bool)> {
    let log = log_config(configs).unwrap_or_default();
    TOPIC_CONFIGS
        .iter()
        .map(|config| match configs.get(config.name) {
            Some(value) => (config, value.clone(), true),
            None => (config, (config.default)(&log), false),
        })
        .collect()
}

/// `flush.interval.ms` when `flush.policy=interval` is set without it.
pub const FLUSH_INTERVAL_DEFAULT_MS: u64 = 1000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid config {name}={value}: {reason}")]
pub struct ConfigError {
    pub name: String,
    pub value: String,
    pub reason: String,
}

fn invalid(name: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        name: name.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn boolean(name: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(name, value, "must be `true` or `false`")),
    }
}

/// Sets `config` from one of the compaction configs (`cleanup.policy`,
/// `min.cleanable.dirty.ratio`, `min.compaction.lag.ms`,
/// `max.compaction.lag.ms`, `delete.retention.ms`); `Ok(false)` for a name
/// that is not one of them.
pub fn compaction_config(
    name: &str,
    value: &str,
    config: &mut LogConfig,
) -> Result<bool, ConfigError> {
    let ms = |value: &str| match number(name, value)? {
        ms if ms >= 0 => Ok(ms as u64),
        _ => Err(invalid(name, value, "must not be negative")),
    };
    match name {
        "cleanup.policy" => {
            let mut policy = CleanupPolicy {
                delete: false,
                compact: false,
            };
            for part in value.trim().trim_matches(['[', ']']).split(',') {
                match part.trim() {
                    "delete" => policy.delete = true,
                    "compact" => policy.compact = true,
                    _ => {
                        return Err(invalid(
                            name,
                            value,
                            "must be `delete`, `compact` or `compact,delete`",
                        ))
                    }
                }
            }
            config.cleanup_policy = policy;
        }
        "min.cleanable.dirty.ratio" => {
            config.compaction.min_cleanable_dirty_ratio = value
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(DirtyRatio::new)
                .ok_or_else(|| invalid(name, value, "must be a number from 0 to 1"))?;
        }
        "min.compaction.lag.ms" => config.compaction.min_compaction_lag_ms = ms(value)?,
        "max.compaction.lag.ms" => {
            let max = ms(value)?;
            if max < 1 {
                return Err(invalid(name, value, "must be at least 1"));
            }
            config.compaction.max_compaction_lag_ms = max;
        }
        "delete.retention.ms" => config.compaction.delete_retention_ms = ms(value)?,
        _ => return Ok(false),
    }
    Ok(true)
}

fn number(name: &str, value: &str) -> Result<i64, ConfigError> {
    value
        .trim()
        .parse::<i64>()
        .map_err(|_| invalid(name, value, "not an integer"))
}

/// Builds the log config of a topic's partitions from its configs (names
/// and values as given), on top of the defaults. Unknown names and bad
/// values are errors; configs Kafka ignores are ignored.
pub fn log_config(configs: &BTreeMap<String, String>) -> Result<LogConfig, ConfigError> {
    let mut config = LogConfig::default();
    for (name, value) in configs {
        if IGNORED_CONFIGS.contains(&name.as_str()) {
            continue;
        }
        if let Some((_, why)) = REMOVED_CONFIGS.iter().find(|(removed, _)| removed == name) {
            return Err(invalid(name, value, *why));
        }
        let Some(definition) = definition(name) else {
            let known: Vec<&str> = TOPIC_CONFIGS.iter().map(|config| config.name).collect();
            return Err(invalid(
                name,
                value,
                format!("unknown config; known: {}", known.join(", ")),
            ));
        };
        definition.check(value)?;
        let number = || value.trim().parse::<i64>().unwrap_or_default();
        let unbounded = |number: i64| (number >= 0).then_some(number as u64);
        match name.as_str() {
            "retention.ms" => config.retention_ms = unbounded(number()),
            "retention.bytes" => config.retention_bytes = unbounded(number()),
            "segment.bytes" => config.segment_bytes_max = number() as u64,
            "segment.ms" => config.segment_ms = Some(number() as u64),
            "segment.jitter.ms" => config.segment_jitter_ms = number() as u64,
            "index.interval.bytes" => config.index_interval_bytes = number() as u64,
            "preallocate" => config.preallocate = value.trim() == "true",
            "segment.prepare" => config.prepare_segments = value.trim() == "true",
            "file.delete.delay.ms" => config.file_delete_delay_ms = number() as u64,
            "max.message.bytes" => config.batch_bytes_max = number() as usize,
            "cleanup.policy"
            | "min.cleanable.dirty.ratio"
            | "min.compaction.lag.ms"
            | "max.compaction.lag.ms"
            | "delete.retention.ms" => {
                compaction_config(name, value, &mut config)?;
            }
            "message.timestamp.type" => {
                config.timestamps.log_append_time = value.trim() == "LogAppendTime"
            }
            "message.timestamp.before.max.ms" => {
                config.timestamps.before_max_ms = (number() != LONG_MAX).then_some(number() as u64)
            }
            "message.timestamp.after.max.ms" => {
                config.timestamps.after_max_ms = (number() != LONG_MAX).then_some(number() as u64)
            }
            _ => {}
        }
    }
    config.flush = flush_policy(configs)?;
    config.recompression = recompression(configs);
    Ok(config)
}

/// The codec and level `compression.type` and `compression.*.level` ask
/// for (checked), `None` for `producer`.
fn recompression(configs: &BTreeMap<String, String>) -> Option<Recompression> {
    let level = |name: &str| {
        configs
            .get(name)
            .and_then(|value| value.trim().parse::<i32>().ok())
    };
    let (codec, level) = match configs.get("compression.type").map(|value| value.trim()) {
        None | Some("producer") => return None,
        Some("gzip") => (
            Some(Codec::Gzip),
            level("compression.gzip.level").filter(|level| *level != -1),
        ),
        Some("snappy") => (Some(Codec::Snappy), None),
        Some("lz4") => (Some(Codec::Lz4), level("compression.lz4.level")),
        Some("zstd") => (Some(Codec::Zstd), level("compression.zstd.level")),
        Some(_) => (None, None),
    };
    Some(Recompression { codec, level })
}

/// The flush policy `configs` ask for, by Kafka's names (`flush.messages`,
/// `flush.ms`) or Sluice's (`flush.policy`, `flush.interval.ms`), not both.
fn flush_policy(configs: &BTreeMap<String, String>) -> Result<FlushPolicy, ConfigError> {
    let get = |name: &str| configs.get(name).map(|value| value.trim());
    let millis = |value: &str| Duration::from_millis(value.parse::<u64>().unwrap_or_default());
    let kafka = (get("flush.messages"), get("flush.ms"));
    let sluice = (get("flush.policy"), get("flush.interval.ms"));
    match (kafka, sluice) {
        ((None, None), (None, None) | (Some("always"), None)) => Ok(FlushPolicy::Always),
        ((None, None), (Some("interval"), interval)) => Ok(FlushPolicy::Interval(
            interval.map_or(Duration::from_millis(FLUSH_INTERVAL_DEFAULT_MS), millis),
        )),
        ((None, None), (_, Some(interval))) => Err(invalid(
            "flush.interval.ms",
            interval,
            "only applies with flush.policy=interval",
        )),
        ((None, None), (Some(policy), None)) => Err(invalid(
            "flush.policy",
            policy,
            "must be `always` or `interval`",
        )),
        ((messages, ms), (None, None)) => {
            if messages == Some("1") || ms == Some("0") {
                return Ok(FlushPolicy::Always);
            }
            // Not every write: by time, and Sluice always bounds that time.
            match ms {
                Some(ms) if ms != LONG_MAX.to_string() => Ok(FlushPolicy::Interval(millis(ms))),
                _ => Ok(FlushPolicy::Interval(Duration::from_millis(
                    FLUSH_INTERVAL_DEFAULT_MS,
                ))),
            }
        }
        (_, (policy, interval)) => Err(invalid(
            if policy.is_some() {
                "flush.policy"
            } else {
                "flush.interval.ms"
            },
            policy.or(interval).unwrap_or_default(),
            "set either Kafka's flush.messages and flush.ms or flush.policy and flush.interval.ms, not both",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kafka_names_map_onto_the_log_config() {
        let config = log_config(&configs(&[
            ("retention.ms", "60000"),
            ("retention.bytes", "-1"),
            ("segment.bytes", "1048576"),
            ("flush.policy", "interval"),
            ("flush.interval.ms", "5"),
            ("preallocate", "true"),
            ("segment.prepare", "false"),
            ("file.delete.delay.ms", "0"),
        ]))
        .unwrap();
        assert!(config.preallocate);
        assert_eq!(config.file_delete_delay_ms, 0);
        assert!(!config.prepare_segments);
        assert_eq!(config.retention_ms, Some(60_000));
        assert_eq!(config.retention_bytes, None);
        assert_eq!(config.segment_bytes_max, 1 << 20);
        assert_eq!(
            config.flush,
            FlushPolicy::Interval(Duration::from_millis(5))
        );
        assert_eq!(log_config(&configs(&[])).unwrap(), LogConfig::default());
    }

    #[test]
    fn unknown_names_and_bad_values_are_refused() {
        assert!(log_config(&configs(&[("retention.mss", "1")])).is_err());
        assert!(log_config(&configs(&[("segment.bytes", "12")])).is_err());
        assert!(log_config(&configs(&[("retention.ms", "soon")])).is_err());
        assert!(log_config(&configs(&[("flush.policy", "sometimes")])).is_err());
        assert!(log_config(&configs(&[("flush.interval.ms", "5")])).is_err());
        assert!(log_config(&configs(&[("preallocate", "yes")])).is_err());
        assert!(log_config(&configs(&[("segment.prepare", "1")])).is_err());
        assert!(log_config(&configs(&[("file.delete.delay.ms", "-1")])).is_err());
        assert!(log_config(&configs(&[("cleanup.policy", "compact,archive")])).is_err());
        assert!(log_config(&configs(&[("cleanup.policy", " , ")])).is_err());
        assert!(log_config(&configs(&[("min.cleanable.dirty.ratio", "1.5")])).is_err());
        assert!(log_config(&configs(&[("compression.type", "brotli")])).is_err());
        assert!(log_config(&configs(&[("compression.gzip.level", "0")])).is_err());
        assert!(log_config(&configs(&[("max.message.bytes", "20000000")])).is_err());
        assert!(log_config(&configs(&[("remote.storage.enable", "true")])).is_err());
        assert!(log_config(&configs(&[(
            "leader.replication.throttled.replicas",
            "0:x"
        )]))
        .is_err());
        assert!(log_config(&configs(&[("flush.messages", "100")])).is_err());
        assert!(log_config(&configs(&[("flush.ms", "5"), ("flush.policy", "interval")])).is_err());
        let removed = log_config(&configs(&[("message.timestamp.difference.max.ms", "1")]));
        assert!(removed
            .unwrap_err()
            .reason
            .contains("message.timestamp.before.max.ms"));
    }

    #[test]
    fn every_kafka_topic_config_is_accepted_with_its_default() {
        let defaults: BTreeMap<String, String> = TOPIC_CONFIGS
            .iter()
            .map(|config| (config.name.to_string(), config.default_value()))
            .filter(|(name, _)| !name.starts_with("flush."))
            .collect();
        assert_eq!(log_config(&defaults).unwrap(), LogConfig::default());
        let names: Vec<&str> = TOPIC_CONFIGS.iter().map(|config| config.name).collect();
        for kafka in [
            "cleanup.policy",
            "compression.type",
            "delete.retention.ms",
            "max.message.bytes",
            "message.timestamp.type",
            "message.timestamp.before.max.ms",
            "message.timestamp.after.max.ms",
            "min.cleanable.dirty.ratio",
            "min.compaction.lag.ms",
            "max.compaction.lag.ms",
            "segment.jitter.ms",
            "segment.index.bytes",
            "flush.messages",
            "flush.ms",
        ] {
            assert!(names.contains(&kafka), "{kafka} is not known");
        }
    }

    #[test]
    fn kafkas_flush_configs_set_the_flush_policy() {
        let policy = |pairs: &[(&str, &str)]| log_config(&configs(pairs)).unwrap().flush;
        assert_eq!(policy(&[("flush.messages", "1")]), FlushPolicy::Always);
        assert_eq!(policy(&[("flush.ms", "0")]), FlushPolicy::Always);
        assert_eq!(
            policy(&[
                ("flush.messages", &LONG_MAX.to_string()),
                ("flush.ms", "20")
            ]),
            FlushPolicy::Interval(Duration::from_millis(20))
        );
        // Not every write and no time given: Sluice still bounds the time.
        assert_eq!(
            policy(&[("flush.messages", &LONG_MAX.to_string())]),
            FlushPolicy::Interval(Duration::from_millis(FLUSH_INTERVAL_DEFAULT_MS))
        );
        // Described back by both names.
        let described = effective(&configs(&[
            ("flush.ms", "20"),
            ("flush.messages", &LONG_MAX.to_string()),
        ]));
        let value = |name: &str| {
            described
                .iter()
                .find(|(config, _, _)| config.name == name)
                .map(|(_, value, _)| value.clone())
                .unwrap()
        };
        assert_eq!(value("flush.policy"), "interval");
        assert_eq!(value("flush.interval.ms"), "20");
    }

    #[test]
    fn timestamp_and_size_configs_reach_the_log_config() {
        let config = log_config(&configs(&[
            ("message.timestamp.type", "LogAppendTime"),
            ("message.timestamp.before.max.ms", "1000"),
            ("message.timestamp.after.max.ms", &LONG_MAX.to_string()),
            ("max.message.bytes", "10000"),
            ("segment.jitter.ms", "500"),
        ]))
        .unwrap();
        assert!(config.timestamps.log_append_time);
        assert_eq!(config.timestamps.before_max_ms, Some(1000));
        assert_eq!(config.timestamps.after_max_ms, None);
        assert_eq!(config.batch_bytes_max, 10_000);
        assert_eq!(config.segment_jitter_ms, 500);
    }

    #[test]
    fn configs_kafka_ignores_are_accepted_and_dropped() {
        let given = configs(&[("message.format.version", "3.0-IV1"), ("retention.ms", "5")]);
        assert!(log_config(&given).is_ok());
        assert_eq!(kept(given), configs(&[("retention.ms", "5")]));
    }

    #[test]
    fn compaction_configs_map_onto_the_log_config() {
        let config = log_config(&configs(&[
            ("cleanup.policy", "compact"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("min.compaction.lag.ms", "5"),
            ("max.compaction.lag.ms", "60000"),
            ("delete.retention.ms", "0"),
        ]))
        .unwrap();
        assert_eq!(
            config.cleanup_policy,
            CleanupPolicy {
                delete: false,
                compact: true
            }
        );
        assert_eq!(config.compaction.min_cleanable_dirty_ratio.get(), 0.01);
        assert_eq!(config.compaction.min_compaction_lag_ms, 5);
        assert_eq!(config.compaction.max_compaction_lag_ms, 60_000);
        assert_eq!(config.compaction.delete_retention_ms, 0);
        for both in ["compact,delete", "delete, compact", "[compact,delete]"] {
            let policy = log_config(&configs(&[("cleanup.policy", both)]))
                .unwrap()
                .cleanup_policy;
            assert!(policy.delete && policy.compact, "{both}");
        }
        for (name, value) in [
            ("cleanup.policy", "shred"),
            ("cleanup.policy", ""),
            ("min.cleanable.dirty.ratio", "1.5"),
            ("min.cleanable.dirty.ratio", "NaN"),
            ("min.compaction.lag.ms", "-1"),
            ("max.compaction.lag.ms", "0"),
            ("delete.retention.ms", "soon"),
        ] {
            assert!(
                log_config(&configs(&[(name, value)])).is_err(),
                "{name}={value}"
            );
        }
        let value = |name: &str| {
            effective(&configs(&[]))
                .into_iter()
                .find(|(config, _, _)| config.name == name)
                .map(|(_, value, set)| (value, set))
                .unwrap()
        };
        assert_eq!(value("cleanup.policy"), ("delete".to_string(), false));
        assert_eq!(
            value("delete.retention.ms"),
            ("86400000".to_string(), false)
        );
    }
}
