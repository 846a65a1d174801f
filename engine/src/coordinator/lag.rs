//! Consumer lag: how far a group's committed offsets are behind the ends of
//! their partitions' logs.
//!
//! Committed offsets live on each group's coordinator shard, log ends on
//! each partition's owner shard: a lag is gathered from both, and is a
//! snapshot (records keep arriving). What `sluice group describe` shows,
//! and what a metrics exporter reads with [`group_lag`].
//!
//! The lag is counted to the last stable offset, not the high watermark:
//! the broker does not know a group's isolation level (each consumer
//! chooses its own, per fetch), and a `read_committed` consumer can never
//! pass the last stable offset, so a transaction left open does not show
//! as lag that no consumer could catch up. Without open transactions the
//! two are the same; the high watermark is kept beside it as the log end.

use std::rc::Rc;

use super::{records::OffsetKey, run_on};
use crate::{
    partition::{ask, gather_all, route, PartitionOp},
    shard::Shard,
};

/// Log ends asked of owner shards at once: enough to keep every shard busy,
/// few enough not to fill their inboxes (a group may have committed
/// offsets in thousands of partitions).
const LOG_END_CALLS_IN_FLIGHT_MAX: usize = 256;

/// One committed offset of a group and how far behind its partition's end
/// it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub group: String,
    pub topic: String,
    pub partition: u32,
    pub committed: u64,
    /// The partition's high watermark; `None` when it cannot be read (its
    /// topic was deleted, its shard is stopping).
    pub log_end: Option<u64>,
    /// The partition's last stable offset (at most `log_end`); `None` with
    /// it.
    pub last_stable: Option<u64>,
    /// `last_stable - committed`: negative when the committed offset is
    /// past it (a transaction is open, or the log was truncated after the
    /// commit).
    pub lag: Option<i64>,
}

/// Where a partition's log ends for its readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogEnds {
    pub high_watermark: u64,
    pub last_stable: u64,
}

impl PartitionLag {
    pub fn new(
        group: &str,
        key: &OffsetKey,
        committed: u64,
        ends: Option<LogEnds>,
    ) -> PartitionLag {
        PartitionLag {
            group: group.to_string(),
            topic: key.0.clone(),
            partition: key.1,
            committed,
            log_end: ends.map(|ends| ends.high_watermark),
            last_stable: ends.map(|ends| ends.last_stable),
            lag: ends.map(|ends| ends.last_stable as i64 - committed as i64),
        }
    }
}

/// The log ends (high watermark and last stable offset) of each partition
/// of `keys`, in order, asked of its owner shard; `None` for a partition
/// that cannot be read.
pub async fn log_ends(shard: &Rc<Shard>, keys: &[OffsetKey]) -> Vec<Option<LogEnds>> {
    let metadata = shard.metadata();
    let mut ends = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(LOG_END_CALLS_IN_FLIGHT_MAX) {
        let parts = chunk
            .iter()
            .map(|(topic, partition)| {
                route(shard, &metadata, topic, *partition)
                    .map(|route| ask(shard, route, |reply| PartitionOp::Stats { reply }))
            })
            .collect();
        for answer in gather_all(parts).await {
            ends.push(answer.ok().map(|stats| LogEnds {
                high_watermark: stats.log_end.0,
                last_stable: stats.last_stable_offset.0,
            }));
        }
    }
    ends
}

/// The lag of each of `offsets` (committed offsets of `group`).
pub async fn lag_of(
    shard: &Rc<Shard>,
    group: &str,
    offsets: &[(OffsetKey, u64)],
) -> Vec<PartitionLag> {
    let keys: Vec<OffsetKey> = offsets.iter().map(|(key, _)| key.clone()).collect();
    let ends = log_ends(shard, &keys).await;
    offsets
        .iter()
        .zip(ends)
        .map(|((key, committed), end)| PartitionLag::new(group, key, *committed, end))
        .collect()
}

/// Every committed offset of every group of the broker, with its lag;
/// sorted by group, topic and partition. Gathered from every shard, so it
/// costs a round trip to each: for a scrape, not for every request.
pub async fn group_lag(shard: &Rc<Shard>) -> Vec<PartitionLag> {
    let mut committed: Vec<(String, OffsetKey, u64)> = Vec::new();
    for owner in 0..shard.shard_count() {
        let local = run_on(shard, owner, |there| async move {
            let groups = there.groups.groups.borrow();
            groups
                .values()
                .flat_map(|group| {
                    group
                        .offsets
                        .iter()
                        .map(|(key, committed)| (group.id.clone(), key.clone(), committed.offset))
                })
                .collect::<Vec<_>>()
        })
        .await;
        // A shard that stopped has nothing to say: its groups are left out.
        committed.extend(local.unwrap_or_default());
    }
    committed.sort();
    let keys: Vec<OffsetKey> = committed.iter().map(|(_, key, _)| key.clone()).collect();
    let ends = log_ends(shard, &keys).await;
    committed
        .iter()
        .zip(ends)
        .map(|((group, key, offset), end)| PartitionLag::new(group, key, *offset, end))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends(high_watermark: u64, last_stable: u64) -> Option<LogEnds> {
        Some(LogEnds {
            high_watermark,
            last_stable,
        })
    }

    #[test]
    fn lag_is_last_stable_minus_committed_and_unknown_without_an_end() {
        let key = ("orders".to_string(), 2);
        let lag = PartitionLag::new("billing", &key, 4, ends(10, 10));
        assert_eq!((lag.topic.as_str(), lag.partition), ("orders", 2));
        assert_eq!(lag.lag, Some(6));
        let open = PartitionLag::new("billing", &key, 4, ends(10, 7));
        assert_eq!(
            (open.log_end, open.last_stable, open.lag),
            (Some(10), Some(7), Some(3))
        );
        assert_eq!(PartitionLag::new("g", &key, 12, ends(10, 10)).lag, Some(-2));
        let none = PartitionLag::new("g", &key, 4, None);
        assert_eq!(
            (none.log_end, none.last_stable, none.lag),
            (None, None, None)
        );
    }
}
