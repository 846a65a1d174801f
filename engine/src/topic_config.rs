//! Topic configs: Kafka's names where Kafka has one, Sluice's own for the
//! flush policy, checked and turned into a partition log's config.

use std::{collections::BTreeMap, time::Duration};

use sluice_replication::partition::control::ControlConfig;
use sluice_storage::log::{CleanupPolicy, DirtyRatio, FlushPolicy, LogConfig};

/// The configs a topic accepts, with what each means.
pub const TOPIC_CONFIGS: &[(&str, &str)] = &[
    (
        "retention.ms",
        "delete sealed segments older than this; -1 keeps forever",
    ),
    (
        "retention.bytes",
        "delete the oldest sealed segments while a partition is larger; -1 for no limit",
    ),
    (
        "segment.bytes",
        "roll to a new segment before one grows past this",
    ),
    (
        "segment.ms",
        "roll to a new segment once the active one is this old",
    ),
    (
        "index.interval.bytes",
        "bytes of log between two index entries",
    ),
    (
        "flush.policy",
        "`always` (acknowledge once fdatasync'ed) or `interval`",
    ),
    (
        "flush.interval.ms",
        "with flush.policy=interval: fdatasync at most this often",
    ),
    (
        "preallocate",
        "`true`: allocate the active segment's file ahead of writes (fallocate, 16 MiB at a time)",
    ),
    (
        "segment.prepare",
        "`true`: a partition that fills segments fast writes into the next segment's file, zero-filled ahead by a side thread",
    ),
    (
        "file.delete.delay.ms",
        "how long a deleted segment's file stays on disk before its space is given back, a step at a time",
    ),
    (
        "min.insync.replicas",
        "acks=all writes need this many replicas in sync, or get NOT_ENOUGH_REPLICAS",
    ),
    (
        "unclean.leader.election.enable",
        "`true`: elect a replica that is not in sync when none is (may lose acknowledged records)",
    ),
];

/// The configs of compaction (Kafka's names and defaults), parsed by
/// [`compaction_config`].
pub const COMPACTION_CONFIGS: &[(&str, &str)] = &[
    (
        "cleanup.policy",
        "`delete` (retention by time and size), `compact` (the latest record of each key stays), or `compact,delete`",
    ),
    (
        "min.cleanable.dirty.ratio",
        "with compact: clean once the uncleaned part is this share of the log (0 to 1)",
    ),
    (
        "min.compaction.lag.ms",
        "with compact: a record stays uncompacted at least this long",
    ),
    (
        "max.compaction.lag.ms",
        "with compact: a record is compacted within about this long, whatever the ratio",
    ),
    (
        "delete.retention.ms",
        "with compact: how long a tombstone (a null value) stays after it was first cleaned",
    ),
];

/// Sets `config` from one of [`COMPACTION_CONFIGS`]; `Ok(false)` for a
/// name that is not one of them.
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

/// The default of one of [`COMPACTION_CONFIGS`], as Kafka writes it.
fn compaction_default(name: &str) -> Option<String> {
    let defaults = LogConfig::default();
    let compaction = &defaults.compaction;
    Some(match name {
        "cleanup.policy" => "delete".to_string(),
        "min.cleanable.dirty.ratio" => compaction.min_cleanable_dirty_ratio.get().to_string(),
        "min.compaction.lag.ms" => compaction.min_compaction_lag_ms.to_string(),
        "max.compaction.lag.ms" => compaction.max_compaction_lag_ms.to_string(),
        "delete.retention.ms" => compaction.delete_retention_ms.to_string(),
        _ => return None,
    })
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

/// Every topic config's value for a topic with `configs` set: the value
/// set, or the default; and whether it was set.
pub fn effective(configs: &BTreeMap<String, String>) -> Vec<(&'static str, String, bool)> {
    let defaults = LogConfig::default();
    let ms_or_forever = |ms: Option<u64>| ms.map_or("-1".to_string(), |ms| ms.to_string());
    TOPIC_CONFIGS
        .iter()
        .chain(COMPACTION_CONFIGS)
        .map(|(name, _)| {
            if let Some(value) = configs.get(*name) {
                return (*name, value.clone(), true);
            }
            let default = match *name {
                "retention.ms" => ms_or_forever(defaults.retention_ms),
                "retention.bytes" => ms_or_forever(defaults.retention_bytes),
                "segment.bytes" => defaults.segment_bytes_max.to_string(),
                "segment.ms" => ms_or_forever(defaults.segment_ms),
                "index.interval.bytes" => defaults.index_interval_bytes.to_string(),
                "flush.policy" => match defaults.flush {
                    FlushPolicy::Always => "always".to_string(),
                    FlushPolicy::Interval(_) => "interval".to_string(),
                },
                "flush.interval.ms" => match defaults.flush {
                    FlushPolicy::Interval(interval) => interval.as_millis().to_string(),
                    FlushPolicy::Always => FLUSH_INTERVAL_DEFAULT_MS.to_string(),
                },
                "preallocate" => defaults.preallocate.to_string(),
                "segment.prepare" => defaults.prepare_segments.to_string(),
                "file.delete.delay.ms" => defaults.file_delete_delay_ms.to_string(),
                "min.insync.replicas" => MIN_IN_SYNC_DEFAULT.to_string(),
                "unclean.leader.election.enable" => "false".to_string(),
                name => compaction_default(name).unwrap_or_default(),
            };
            (*name, default, false)
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

fn number(name: &str, value: &str) -> Result<i64, ConfigError> {
    value
        .trim()
        .parse::<i64>()
        .map_err(|_| invalid(name, value, "not an integer"))
}

fn boolean(name: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(name, value, "must be `true` or `false`")),
    }
}

/// Builds the log config of a topic's partitions from its configs (names
/// and values as given), on top of the defaults. Unknown names and bad
/// values are errors.
pub fn log_config(configs: &BTreeMap<String, String>) -> Result<LogConfig, ConfigError> {
    let mut config = LogConfig::default();
    let mut interval_ms = None;
    let mut interval_policy = false;
    for (name, value) in configs {
        match name.as_str() {
            "retention.ms" => {
                config.retention_ms = match number(name, value)? {
                    -1 => None,
                    ms if ms >= 0 => Some(ms as u64),
                    _ => return Err(invalid(name, value, "must be -1 or at least 0")),
                }
            }
            "retention.bytes" => {
                config.retention_bytes = match number(name, value)? {
                    -1 => None,
                    bytes if bytes >= 0 => Some(bytes as u64),
                    _ => return Err(invalid(name, value, "must be -1 or at least 0")),
                }
            }
            "segment.bytes" => {
                let bytes = number(name, value)?;
                let (min, max) = (4096, sluice_storage::log::SEGMENT_BYTES_CAP as i64);
                if !(min..=max).contains(&bytes) {
                    return Err(invalid(
                        name,
                        value,
                        format!("must be within [{min}, {max}]"),
                    ));
                }
                config.segment_bytes_max = bytes as u64;
            }
            "segment.ms" => {
                let ms = number(name, value)?;
                if ms < 1 {
                    return Err(invalid(name, value, "must be at least 1"));
                }
                config.segment_ms = Some(ms as u64);
            }
            "index.interval.bytes" => {
                let bytes = number(name, value)?;
                if bytes < 1 {
                    return Err(invalid(name, value, "must be at least 1"));
                }
                config.index_interval_bytes = bytes as u64;
            }
            "flush.policy" => match value.trim() {
                "always" => interval_policy = false,
                "interval" => interval_policy = true,
                _ => return Err(invalid(name, value, "must be `always` or `interval`")),
            },
            "flush.interval.ms" => {
                let ms = number(name, value)?;
                if ms < 1 {
                    return Err(invalid(name, value, "must be at least 1"));
                }
                interval_ms = Some(ms as u64);
            }
            "preallocate" => config.preallocate = boolean(name, value)?,
            "segment.prepare" => config.prepare_segments = boolean(name, value)?,
            "file.delete.delay.ms" => {
                let ms = number(name, value)?;
                if ms < 0 {
                    return Err(invalid(name, value, "must not be negative"));
                }
                config.file_delete_delay_ms = ms as u64;
            }
            // Not the log's: the controller's (see `control_config`).
            "min.insync.replicas" => {
                if number(name, value)? < 1 {
                    return Err(invalid(name, value, "must be at least 1"));
                }
            }
            "unclean.leader.election.enable" => {
                boolean(name, value)?;
            }
            name if compaction_config(name, value, &mut config)? => {}
            _ => {
                let known: Vec<&str> = TOPIC_CONFIGS
                    .iter()
                    .chain(COMPACTION_CONFIGS)
                    .map(|(name, _)| *name)
                    .collect();
                return Err(invalid(
                    name,
                    value,
                    format!("unknown config; known: {}", known.join(", ")),
                ));
            }
        }
    }
    if interval_policy {
        config.flush = FlushPolicy::Interval(Duration::from_millis(
            interval_ms.unwrap_or(FLUSH_INTERVAL_DEFAULT_MS),
        ));
    } else if interval_ms.is_some() {
        return Err(invalid(
            "flush.interval.ms",
            &interval_ms.unwrap_or_default().to_string(),
            "only applies with flush.policy=interval",
        ));
    }
    Ok(config)
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
        let effective = effective(&configs(&[]));
        assert!(effective.contains(&("cleanup.policy", "delete".to_string(), false)));
        assert!(effective.contains(&("delete.retention.ms", "86400000".to_string(), false)));
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
    }
}
