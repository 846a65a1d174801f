//! A workload: what a run sends, how fast and for how long, read from a
//! TOML file (see `bench/workloads/`).
//!
//! ```toml
//! name = "1-topic-1-partition-100b"
//! topics = 1
//! partitions_per_topic = 1
//! message_size = 100                  # or { distribution = "uniform", min = 64, max = 1024 }
//! keys = "none"                       # or "random", or { space = 1000 }
//! producers_per_topic = 1
//! consumers_per_topic = 1
//! batch_bytes = 131072
//! linger_ms = 1
//! max_in_flight = 5                   # batches in flight per partition (default 5)
//! acks = "all"                        # or "leader", "none"
//! rate = 20000                        # records/s over all producers, or "max"
//! warm_up_s = 5
//! duration_s = 60
//! ```

use std::{collections::BTreeMap, path::Path};

use serde::{Deserialize, Serialize};
use sluice_net::client::Acks;

use crate::BenchError;

/// Every record value starts with its intended send time (nanoseconds since
/// the Unix epoch, little-endian), read back by the consumer for the
/// end-to-end latency; a value is never shorter.
pub const STAMP_BYTES: usize = 8;

/// A value cannot be larger than a native batch holds (1 MiB) minus room
/// for the batch header, key and record overhead.
pub const MESSAGE_BYTES_MAX: u32 = 1024 * 1024 - 4096;

/// More would be a typo: a Kafka-style topic with this many partitions is
/// already beyond what one machine of this harness drives.
pub const PARTITIONS_PER_TOPIC_MAX: u32 = 10_000;

/// One client connection each; more than this on one machine measures the
/// harness, not the broker.
pub const CLIENTS_PER_TOPIC_MAX: u32 = 1_000;

/// What `max_in_flight` is when a workload does not say: Kafka's idempotent
/// producers keep up to 5 requests in flight per connection.
pub const MAX_IN_FLIGHT_DEFAULT: usize = 5;

/// More batches in flight per partition than this only queue: the broker
/// serves at most 128 requests per connection at once
/// (`in_flight_per_connection_max`), shared by every partition.
pub const MAX_IN_FLIGHT_MAX: usize = 32;

/// A run longer than a day is a mistake in the file.
pub const DURATION_S_MAX: u64 = 24 * 3600;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    pub name: String,
    pub topics: u32,
    pub partitions_per_topic: u32,
    pub message_size: MessageSize,
    #[serde(default)]
    pub keys: Keys,
    pub producers_per_topic: u32,
    pub consumers_per_topic: u32,
    /// A producer sends a partition's batch once it holds this many bytes...
    pub batch_bytes: usize,
    /// ...or this long after its first record.
    pub linger_ms: u64,
    /// Batches a producer keeps in flight per partition: the native
    /// driver's `in_flight_per_partition_max`, librdkafka's
    /// `max.in.flight.requests.per.connection` (per connection, and one
    /// request carries a batch of every partition of that broker).
    #[serde(default = "max_in_flight_default")]
    pub max_in_flight: usize,
    #[serde(default)]
    pub acks: AckLevel,
    pub rate: Rate,
    pub warm_up_s: u64,
    pub duration_s: u64,
    /// Topic configs set on creation (`flush.policy`, `retention.ms`, ...),
    /// passed to the broker as they are.
    #[serde(default)]
    pub topic_configs: BTreeMap<String, String>,
    /// Replicas of each partition (0: the broker's default); more than one
    /// needs a cluster of that many brokers.
    #[serde(default)]
    pub replication_factor: u16,
}

fn max_in_flight_default() -> usize {
    MAX_IN_FLIGHT_DEFAULT
}

/// How large each record's value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageSize {
    Fixed(u32),
    Distributed(SizeDistribution),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "distribution", rename_all = "lowercase", deny_unknown_fields)]
pub enum SizeDistribution {
    /// Every size from `min` to `max` (inclusive) equally likely.
    Uniform { min: u32, max: u32 },
}

impl MessageSize {
    pub fn min_bytes(self) -> u32 {
        match self {
            MessageSize::Fixed(bytes) => bytes,
            MessageSize::Distributed(SizeDistribution::Uniform { min, .. }) => min,
        }
    }

    pub fn max_bytes(self) -> u32 {
        match self {
            MessageSize::Fixed(bytes) => bytes,
            MessageSize::Distributed(SizeDistribution::Uniform { max, .. }) => max,
        }
    }

    /// A size drawn from the distribution with the 64 random bits `draw`.
    pub fn sample(self, draw: u64) -> usize {
        match self {
            MessageSize::Fixed(bytes) => bytes as usize,
            MessageSize::Distributed(SizeDistribution::Uniform { min, max }) => {
                let span = u64::from(max - min) + 1;
                (u64::from(min) + draw % span) as usize
            }
        }
    }
}

/// Record keys, which choose the partition (Kafka's hash of the key).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Keys {
    /// No key: a producer sends to the partitions in turn.
    #[default]
    None,
    /// A fresh random 8-byte key per record.
    Random,
    /// One of this many keys, chosen at random per record.
    Space(u64),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckLevel {
    None,
    Leader,
    #[default]
    All,
}

impl From<AckLevel> for Acks {
    fn from(level: AckLevel) -> Acks {
        match level {
            AckLevel::None => Acks::None,
            AckLevel::Leader => Acks::Leader,
            AckLevel::All => Acks::All,
        }
    }
}

/// The offered load, over all producers together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Rate {
    RecordsPerSecond(u64),
    /// As fast as the producers' buffers let them.
    Max(MaxRate),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaxRate {
    Max,
}

impl Rate {
    /// `"max"` or a number of records per second.
    pub fn parse(text: &str) -> Result<Rate, BenchError> {
        if text.eq_ignore_ascii_case("max") {
            return Ok(Rate::Max(MaxRate::Max));
        }
        match text.replace('_', "").parse::<u64>() {
            Ok(rate) if rate > 0 => Ok(Rate::RecordsPerSecond(rate)),
            _ => Err(BenchError::Workload(format!(
                "rate {text:?}: expected a positive number of records per second or \"max\""
            ))),
        }
    }

    pub fn records_per_second(self) -> Option<u64> {
        match self {
            Rate::RecordsPerSecond(rate) => Some(rate),
            Rate::Max(_) => None,
        }
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rate::RecordsPerSecond(rate) => write!(f, "{rate} records/s"),
            Rate::Max(_) => f.write_str("max"),
        }
    }
}

impl Workload {
    pub fn load(path: &Path) -> Result<Workload, BenchError> {
        let text = std::fs::read_to_string(path).map_err(|source| BenchError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Workload::parse(&text)
            .map_err(|error| BenchError::Workload(format!("{}: {error}", path.display())))
    }

    pub fn parse(text: &str) -> Result<Workload, BenchError> {
        let workload: Workload =
            toml::from_str(text).map_err(|error| BenchError::Workload(error.to_string()))?;
        workload.validate()?;
        Ok(workload)
    }

    /// Checks every field against its limit, so that a run never starts
    /// with a workload it cannot carry out.
    pub fn validate(&self) -> Result<(), BenchError> {
        let fail = |text: String| Err(BenchError::Workload(text));
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        {
            return fail(format!(
                "name {:?} must be a non-empty run of [a-zA-Z0-9._-] (it names the topics)",
                self.name
            ));
        }
        if self.topics == 0 || self.topics > CLIENTS_PER_TOPIC_MAX {
            return fail(format!(
                "topics = {}: expected 1..={CLIENTS_PER_TOPIC_MAX}",
                self.topics
            ));
        }
        if !(1..=PARTITIONS_PER_TOPIC_MAX).contains(&self.partitions_per_topic) {
            return fail(format!(
                "partitions_per_topic = {}: expected 1..={PARTITIONS_PER_TOPIC_MAX}",
                self.partitions_per_topic
            ));
        }
        let (min, max) = (self.message_size.min_bytes(), self.message_size.max_bytes());
        if min < STAMP_BYTES as u32 || max > MESSAGE_BYTES_MAX || min > max {
            return fail(format!(
                "message_size {min}..={max}: expected {STAMP_BYTES} <= min <= max <= {MESSAGE_BYTES_MAX} (a value carries its send time in its first {STAMP_BYTES} bytes)"
            ));
        }
        if let Keys::Space(0) = self.keys {
            return fail("keys = { space = 0 }: a key space needs at least one key".into());
        }
        if !(1..=CLIENTS_PER_TOPIC_MAX).contains(&self.producers_per_topic) {
            return fail(format!(
                "producers_per_topic = {}: expected 1..={CLIENTS_PER_TOPIC_MAX}",
                self.producers_per_topic
            ));
        }
        if self.consumers_per_topic > self.partitions_per_topic {
            return fail(format!(
                "consumers_per_topic = {} > partitions_per_topic = {}: a consumer would have no partition",
                self.consumers_per_topic, self.partitions_per_topic
            ));
        }
        if self.batch_bytes == 0 {
            return fail("batch_bytes = 0: expected at least one byte".into());
        }
        if !(1..=MAX_IN_FLIGHT_MAX).contains(&self.max_in_flight) {
            return fail(format!(
                "max_in_flight = {}: expected 1..={MAX_IN_FLIGHT_MAX}",
                self.max_in_flight
            ));
        }
        if let Rate::RecordsPerSecond(0) = self.rate {
            return fail("rate = 0: expected a positive rate or \"max\"".into());
        }
        if self.duration_s == 0 || self.duration_s + self.warm_up_s > DURATION_S_MAX {
            return fail(format!(
                "duration_s = {}, warm_up_s = {}: expected a duration of at least 1 s and at most {DURATION_S_MAX} s in all",
                self.duration_s, self.warm_up_s
            ));
        }
        Ok(())
    }

    pub fn producer_count(&self) -> u32 {
        self.topics * self.producers_per_topic
    }

    pub fn consumer_count(&self) -> u32 {
        self.topics * self.consumers_per_topic
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
        name = "w"
        topics = 2
        partitions_per_topic = 16
        message_size = { distribution = "uniform", min = 64, max = 1024 }
        keys = { space = 1000 }
        producers_per_topic = 2
        consumers_per_topic = 4
        batch_bytes = 65536
        linger_ms = 2
        max_in_flight = 3
        acks = "leader"
        rate = "max"
        warm_up_s = 1
        duration_s = 10
        topic_configs = { "retention.ms" = "60000" }
    "#;

    #[test]
    fn parses_every_field() {
        let workload = Workload::parse(FULL).unwrap();
        assert_eq!(
            workload.message_size,
            MessageSize::Distributed(SizeDistribution::Uniform { min: 64, max: 1024 })
        );
        assert_eq!(workload.keys, Keys::Space(1000));
        assert_eq!(workload.acks, AckLevel::Leader);
        assert_eq!(workload.max_in_flight, 3);
        assert_eq!(workload.rate, Rate::Max(MaxRate::Max));
        assert_eq!(workload.topic_configs["retention.ms"], "60000");
        assert_eq!(workload.producer_count(), 4);
        assert_eq!(workload.consumer_count(), 8);
    }

    #[test]
    fn short_forms() {
        let text = FULL
            .replace(
                r#"{ distribution = "uniform", min = 64, max = 1024 }"#,
                "100",
            )
            .replace("{ space = 1000 }", "\"random\"")
            .replace("\"max\"", "20_000");
        let workload = Workload::parse(&text).unwrap();
        assert_eq!(workload.message_size, MessageSize::Fixed(100));
        assert_eq!(workload.keys, Keys::Random);
        assert_eq!(workload.rate, Rate::RecordsPerSecond(20_000));
        let text = FULL.replace("max_in_flight = 3\n", "");
        let workload = Workload::parse(&text).unwrap();
        assert_eq!(workload.max_in_flight, MAX_IN_FLIGHT_DEFAULT);
    }

    #[test]
    fn refuses_what_cannot_run() {
        for (from, to) in [
            ("max = 1024", "max = 1000000000"),
            ("min = 64", "min = 4"),
            ("consumers_per_topic = 4", "consumers_per_topic = 17"),
            ("duration_s = 10", "duration_s = 0"),
            ("rate = \"max\"", "rate = \"fast\""),
            ("name = \"w\"", "name = \"a b\""),
            ("linger_ms = 2", "linger_ms = 2\nlinger = 3"),
            ("{ space = 1000 }", "{ space = 0 }"),
            ("max_in_flight = 3", "max_in_flight = 0"),
            ("max_in_flight = 3", "max_in_flight = 33"),
        ] {
            let text = FULL.replace(from, to);
            assert!(Workload::parse(&text).is_err(), "accepted {to}");
        }
    }

    #[test]
    fn sizes_stay_in_their_range() {
        let size = MessageSize::Distributed(SizeDistribution::Uniform { min: 10, max: 12 });
        let sizes: Vec<usize> = (0..100).map(|draw| size.sample(draw)).collect();
        assert!(sizes.iter().all(|size| (10..=12).contains(size)));
        assert!(sizes.contains(&10) && sizes.contains(&12));
        assert_eq!(MessageSize::Fixed(100).sample(7), 100);
    }

    #[test]
    fn rate_from_the_command_line() {
        assert_eq!(Rate::parse("max").unwrap(), Rate::Max(MaxRate::Max));
        assert_eq!(
            Rate::parse("20_000").unwrap(),
            Rate::RecordsPerSecond(20_000)
        );
        assert!(Rate::parse("0").is_err());
        assert!(Rate::parse("x").is_err());
    }

    #[test]
    fn shipped_workloads_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads");
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            if stem.starts_with("chaos-") {
                // A chaos run's workload (`sluice-bench chaos`).
                let text = std::fs::read_to_string(&path).unwrap();
                crate::chaos::run::ChaosWorkload::parse(&text)
                    .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
                continue;
            }
            if path.extension().is_some_and(|ext| ext == "toml") {
                let workload = Workload::load(&path).unwrap();
                assert_eq!(
                    path.file_stem().unwrap().to_str().unwrap(),
                    workload.name,
                    "a workload file is named after its workload"
                );
                count += 1;
            }
        }
        assert!(count >= 3, "{count} workloads in {}", dir.display());
    }
}
