//! The Sluice broker.
//!
//! One glommio executor per core (a shard), each pinned. Every partition is
//! owned by one shard, chosen when the partition is created; only that
//! shard touches its log. Every shard accepts connections on the same port
//! (SO_REUSEPORT) and decodes the requests that arrive on them; each
//! partition's part of a request goes to its owner shard over a cross-shard
//! channel, with its payload as `Bytes` (moved, not copied), and the answers
//! are gathered where the request arrived.
//!
//! Topic metadata is a log of metadata records, replayed at start and owned by
//! shard 0 (the controller); every shard holds an immutable snapshot of it,
//! replaced when it changes.

mod admin_http;
pub mod alloc;
mod broker;
mod config;
mod controller;
mod groups;
mod handlers;
mod kafka;
mod listeners;
mod metadata;
mod metrics;
mod request_latency;
mod server;
mod shard;
mod topic_config;

pub use broker::{run, Broker, EngineError};
pub use config::BrokerConfig;
pub use listeners::{ListenAddrs, ReadyFileError};
pub use topic_config::TOPIC_CONFIGS;
