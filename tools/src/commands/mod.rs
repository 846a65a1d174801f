//! One module per command.

pub mod acl;
pub mod cluster;
pub mod consume;
pub mod group;
pub mod produce;
pub mod serve;
pub mod topic;
pub mod txn;
