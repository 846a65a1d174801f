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
//! Drivers, each one [`Driver`] over the same pinned executors, schedule
//! and counters ([`driver`], [`harness`]): `native` (Sluice's own client,
//! [`native`]), `kafka` (any Kafka-compatible broker through librdkafka,
//! [`kafka`]), `redis` (Redis Streams, [`redis`], over the small RESP
//! client of [`resp`]) and `nats` (NATS JetStream, [`nats`]). Clients with
//! threads of their own report back through [`forward`]; the native
//! driver hears outcomes that come out of send order through
//! [`outstanding`]. The peers'
//! scripts are in `bench/peers/`; `bench/peers/side-by-side.sh` runs one
//! workload against all of them and writes `bench/RESULTS.md`'s tables.

pub mod chaos;
pub mod cluster;
pub mod driver;
pub mod error;
pub mod forward;
pub mod harness;
pub mod kafka;
pub mod latency;
pub mod metrics;
pub mod native;
pub mod nats;
pub mod outstanding;
pub mod plot;
pub mod random;
pub mod redis;
pub mod resp;
pub mod result;
pub mod run;
pub mod schedule;
pub mod txn;
pub mod workload;

pub use driver::Driver;
pub use error::BenchError;
pub use result::RunResult;
pub use run::{parse_cores, run, DriverKind, RunOptions};
pub use workload::Workload;
