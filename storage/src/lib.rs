//! Sluice's storage: the record batch format and the partition log.
//!
//! A partition's data is a [`log::Log`]: a directory of segments written with
//! O_DIRECT through glommio's DMA files, with a sparse offset index and a time
//! index per segment, group commit, a durability policy, crash recovery and
//! retention. What is stored is a [`batch::Batch`]: a fixed header and a
//! payload, either an rkyv archive of records (the native format, read in
//! place) or a Kafka RecordBatch v2 kept verbatim.
//!
//! This crate knows nothing of networking, topics or Kafka requests. A log
//! lives on one glommio executor (the partition's owner shard) and is neither
//! `Send` nor `Sync`: the thread-per-core design needs no locks here.
//!
//! Being the bottom crate, it also holds the typed ids every crate above
//! shares ([`Offset`], [`TopicId`], [`PartitionId`], [`ShardId`], [`NodeId`],
//! [`LeaderEpoch`], [`ProducerId`], [`ProducerEpoch`]): names only, no
//! knowledge of what a topic or a node is.

pub mod batch;
pub mod deleter;
pub mod log;
mod side_threads;
#[cfg(test)]
mod test_files;

mod ids;

pub use ids::{
    LeaderEpoch, NodeId, Offset, PartitionId, ProducerEpoch, ProducerId, ShardId, TopicId,
};
