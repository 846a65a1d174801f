//! One module per command, and what the commands that speak Kafka's
//! protocol share.

pub mod acl;
pub mod cluster;
pub mod consume;
pub mod group;
pub mod kafka_admin;
pub mod produce;
pub mod serve;
pub mod topic;
pub mod txn;
pub mod user;
