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

pub mod batch;
pub mod deleter;
pub mod log;
mod side_threads;
#[cfg(test)]
mod test_files;

/// The position of a record in its partition. Offsets start at zero and grow
/// by one per record; they are never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset(pub u64);

impl Offset {
    pub fn next(self) -> Offset {
        Offset(self.0 + 1)
    }
}

impl std::fmt::Display for Offset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
