//! The ids the whole broker speaks: newtypes, so that a partition id is
//! never passed where an offset or a shard is meant.
//!
//! They live here, in the bottom crate, because the log itself speaks
//! offsets, leader epochs and producer ids (every batch header carries them)
//! and every crate above names topics, partitions, shards and nodes. Each
//! wraps the integer the Kafka protocol uses for it, except where a note
//! says otherwise; the inner value is public, as a wire or disk format
//! needs it.

use std::fmt;

/// The position of a record in its partition. Offsets start at zero and grow
/// by one per record; they are never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset(pub u64);

impl Offset {
    pub fn next(self) -> Offset {
        Offset(self.0 + 1)
    }
}

/// A topic's id: 128 random bits given when the topic is created, never
/// reused (a topic created again under the same name has a new one). Kafka
/// clients see it as a UUID. Displayed as 32 lowercase hex digits, as in
/// the topic's directory name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicId(pub u128);

/// A partition's index within its topic: `0..partition count`. Unsigned:
/// Kafka's `-1` ("any partition") is a request's, never a partition's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionId(pub u32);

/// A shard, as the metadata log records a partition's placement: taken
/// modulo the running shard count to find the owner, so a broker restarted
/// with fewer cores still finds every partition.
///
/// A `u32`, not a `usize`: it is written to the metadata log, whose bytes
/// must not depend on the platform, and no machine has 2^32 cores.
/// [`ShardId::index`] gives the `usize` to index a list of shards with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId(pub u32);

impl ShardId {
    /// The index of this shard's owner among `shard_count` running shards.
    ///
    /// Panics if `shard_count` is zero: a broker has at least one shard.
    pub fn index(self, shard_count: usize) -> usize {
        assert!(shard_count > 0, "no shards to place shard {self} on");
        self.0 as usize % shard_count
    }
}

/// A broker in a cluster (Kafka's `broker.id` / `node.id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub i32);

/// The epoch of a partition's leader: it grows each time leadership moves,
/// and every batch carries the epoch it was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaderEpoch(pub i32);

/// An idempotent or transactional producer, as handed out by Kafka's
/// InitProducerId. Ids are never handed out twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProducerId(pub i64);

/// The epoch of a producer id: it grows when a producer with the same
/// transactional id starts again, fencing the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProducerEpoch(pub i16);

/// Displays the inner number as it is.
macro_rules! display_as_number {
    ($($id:ty),*) => {
        $(
            impl fmt::Display for $id {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    self.0.fmt(f)
                }
            }
        )*
    };
}

display_as_number!(
    Offset,
    PartitionId,
    ShardId,
    NodeId,
    LeaderEpoch,
    ProducerId,
    ProducerEpoch
);

impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_id_shows_as_32_hex_digits() {
        assert_eq!(TopicId(0x0102).to_string(), format!("{:0>32}", "102"));
        assert_eq!(TopicId(u128::MAX).to_string(), "f".repeat(32));
        assert_eq!(TopicId(0).to_string().len(), 32);
    }

    #[test]
    fn ids_show_as_their_numbers() {
        assert_eq!(Offset(7).to_string(), "7");
        assert_eq!(NodeId(-1).to_string(), "-1");
        assert_eq!(ProducerEpoch(-1).to_string(), "-1");
        assert_eq!(Offset(7).next(), Offset(8));
    }

    #[test]
    fn a_shard_id_places_modulo_the_running_shards() {
        assert_eq!(ShardId(0).index(3), 0);
        assert_eq!(ShardId(4).index(3), 1);
        assert_eq!(ShardId(u32::MAX).index(1), 0);
    }
}
