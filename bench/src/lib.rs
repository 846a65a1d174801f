//! The Sluice load generator and latency harness, and the side-by-side runs
//! against other systems.
//!
//! A run reads a [`Workload`] (a TOML file: topics, partitions, message
//! sizes, keys, producers, consumers, batching, acks, rate, warm-up,
//! duration), creates fresh topics, and drives them with producers and
//! consumers on glommio executors pinned to the cores it is given, so that
//! the harness is thread-per-core like the broker it measures and says
//! which cores it had.
//!
//! It is an *open-loop* harness: producers send on a schedule at the target
//! rate and every latency is counted from the record's intended send time,
//! so a stall is measured, never hidden ([`schedule`]). Two latencies are
//! kept in HdrHistograms ([`latency`]): produce → acknowledgement at the
//! producer, and end to end, from the send time each record carries in the
//! first 8 bytes of its value to the moment a consumer reads it. The result
//! is a table for people and a JSON file ([`result`]) that
//! `sluice-bench compare` puts side by side with others, and SVG plots of
//! the latency percentile spectrum and of throughput over time ([`plot`]).
//!
//! Drivers: `native` (Sluice's own client, [`native`]) and `redis` (Redis
//! Streams, [`redis`], over the small RESP client of [`resp`]), both on
//! the same pinned executors and schedule ([`harness`]); the peer script
//! is `bench/peers/redis.sh`. The Kafka and NATS drivers and the other
//! peers' scripts come later.

pub mod error;
pub mod harness;
pub mod latency;
pub mod metrics;
pub mod native;
pub mod plot;
pub mod random;
pub mod redis;
pub mod resp;
pub mod result;
pub mod run;
pub mod schedule;
pub mod workload;

pub use error::BenchError;
pub use result::RunResult;
pub use run::{parse_cores, run, Driver, RunOptions};
pub use workload::Workload;
