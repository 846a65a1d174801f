//! ListOffsets (earliest, latest, the first offset at or after a time) and
//! OffsetForLeaderEpoch (where a leader epoch ends, KIP-320), both with the
//! leader epoch of what they answer.
//!
//! ListOffsets answers as its reader sees the partition (its
//! `isolation_level`, from v2): a `READ_COMMITTED` reader's latest offset is
//! the last stable offset and an offset found by time at or past it is
//! none (-1), as Kafka's brokers answer; a `READ_UNCOMMITTED` reader's is
//! the high watermark.

use std::rc::Rc;

use super::{failure_code, on_partition_in_epoch, topic_name};
use crate::{
    partition::{
        ErrorKind, Failure, FanOut, Isolation, LeaderEpochs, Listed, OffsetQuery, PartitionOp,
        Pending,
    },
    shard::Shard,
};
use kafka_protocol::messages::{
    list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse},
    offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult},
    ListOffsetsRequest, ListOffsetsResponse, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
};

/// Kafka's special timestamps in ListOffsets.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
/// The earliest offset on local storage (v8+): all storage is local here.
const EARLIEST_LOCAL: i64 = -4;
/// The latest offset in tiered storage (v9+, KIP-1005): none is tiered
/// here, so Kafka's answer without remote storage, offset -1, once the
/// partition is found led here.
const LATEST_TIERED: i64 = -5;

/// Asks the owner of (topic, partition) for an offset as a reader of
/// `isolation` sees it, if its leader epoch is `current_leader_epoch` (-1:
/// any).
fn ask(
    shard: &Rc<Shard>,
    topic: &str,
    partition: i32,
    current_leader_epoch: i32,
    query: OffsetQuery,
    isolation: Isolation,
) -> Pending<Option<Listed>> {
    let metadata = shard.metadata();
    on_partition_in_epoch(
        shard,
        &metadata,
        topic,
        partition,
        current_leader_epoch,
        |reply| PartitionOp::ListOffset {
            query,
            isolation,
            reply,
        },
    )
}

pub async fn list_offsets(
    shard: &Rc<Shard>,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    // A part is the partition and whether the tiered end was asked.
    let mut parts = FanOut::<(i32, bool), Option<Listed>>::default();
    // Decoded as 0 (uncommitted) before v2, which does not carry it.
    let isolation = Isolation::from_kafka(request.isolation_level);
    for topic in request.topics {
        let name = topic.name.0.to_string();
        for part in &topic.partitions {
            let query = match part.timestamp {
                LATEST => Ok(OffsetQuery::Latest),
                EARLIEST => Ok(OffsetQuery::Earliest),
                MAX_TIMESTAMP if version >= 7 => Ok(OffsetQuery::MaxTimestamp),
                EARLIEST_LOCAL if version >= 8 => Ok(OffsetQuery::Earliest),
                LATEST_TIERED if version >= 9 => Ok(OffsetQuery::Latest),
                at if at >= 0 => Ok(OffsetQuery::Timestamp(at)),
                other => Err(Failure::new(
                    ErrorKind::InvalidRequest,
                    format!("timestamp {other}"),
                )),
            };
            let epoch = if version >= 4 {
                part.current_leader_epoch
            } else {
                -1
            };
            let answer = query
                .and_then(|query| ask(shard, &name, part.partition_index, epoch, query, isolation));
            let tiered = version >= 9 && part.timestamp == LATEST_TIERED;
            parts.part((part.partition_index, tiered), answer);
        }
        parts.end_topic(name);
    }
    let mut topics = Vec::new();
    for (name, answers) in parts.gather().await {
        let mut partitions = Vec::new();
        for ((partition, tiered), result) in answers {
            let response = ListOffsetsPartitionResponse::default().with_partition_index(partition);
            partitions.push(match result {
                Ok(_) if tiered => response.with_offset(-1).with_timestamp(-1),
                // By time: the first record at or after it; none: -1.
                Ok(Some(listed)) => response
                    .with_offset(listed.offset.0 as i64)
                    .with_timestamp(listed.timestamp)
                    .with_leader_epoch(match (version >= 4, listed.leader_epoch) {
                        (true, Some(epoch)) => i32::try_from(epoch).unwrap_or(i32::MAX),
                        _ => -1,
                    }),
                Ok(None) => response.with_offset(-1).with_timestamp(-1),
                Err(failure) => response
                    .with_error_code(failure_code(&failure))
                    .with_offset(-1)
                    .with_timestamp(-1),
            });
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(topic_name(&name))
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}

/// Where each leader epoch asked about ends, as Kafka's leader answers
/// (KIP-320): the largest epoch of the log at or below it and the first
/// offset after that epoch.
pub async fn offset_for_leader_epoch(
    shard: &Rc<Shard>,
    request: OffsetForLeaderEpochRequest,
    version: i16,
) -> OffsetForLeaderEpochResponse {
    // Each part is labelled (partition, the leader epoch asked about).
    let mut parts = FanOut::<(i32, i32), LeaderEpochs>::default();
    let metadata = shard.metadata();
    for topic in request.topics {
        let name = topic.topic.0.to_string();
        for part in &topic.partitions {
            let current = if version >= 2 {
                part.current_leader_epoch
            } else {
                -1
            };
            let answer =
                on_partition_in_epoch(shard, &metadata, &name, part.partition, current, |reply| {
                    PartitionOp::LeaderEpochs { reply }
                });
            parts.part((part.partition, part.leader_epoch), answer);
        }
        parts.end_topic(name);
    }
    let mut topics = Vec::new();
    for (name, answers) in parts.gather().await {
        let mut partitions = Vec::new();
        for ((partition, epoch), result) in answers {
            let response = EpochEndOffset::default().with_partition(partition);
            partitions.push(match result {
                Ok(epochs) => {
                    let (epoch, end) = end_of_epoch(&epochs, epoch);
                    response.with_leader_epoch(epoch).with_end_offset(end)
                }
                Err(failure) => response
                    .with_error_code(failure_code(&failure))
                    .with_leader_epoch(-1)
                    .with_end_offset(-1),
            });
        }
        topics.push(
            OffsetForLeaderTopicResult::default()
                .with_topic(topic_name(&name))
                .with_partitions(partitions),
        );
    }
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

/// Kafka's answer for where `asked` ends in a log: KIP-279's (the
/// replication crate's `EpochCache::end_of`), except where Kafka's leader
/// answers otherwise: an epoch newer than the latest held, or none, is
/// unknown (-1, -1), and one older than any held ends where the first
/// held starts, answered as itself.
fn end_of_epoch(log: &LeaderEpochs, asked: i32) -> (i32, i64) {
    const UNKNOWN: (i32, i64) = (-1, -1);
    let (Ok(asked), Some((latest, _))) = (u32::try_from(asked), log.epochs.latest()) else {
        return UNKNOWN;
    };
    if asked > latest {
        return UNKNOWN;
    }
    let wide = |epoch: u32| i32::try_from(epoch).unwrap_or(i32::MAX);
    match log.epochs.end_of(asked, log.end.0) {
        Some(end) => (wide(end.epoch), end.end as i64),
        None => {
            let first_start = log.epochs.entries().first().map_or(0, |(_, start)| *start);
            (wide(asked), first_start.min(log.end.0) as i64)
        }
    }
}

#[cfg(test)]
mod tests {
    use sluice_replication::partition::epochs::EpochCache;
    use sluice_storage::Offset;

    use super::*;

    #[test]
    fn an_epoch_ends_where_the_next_one_held_starts() {
        let epochs = LeaderEpochs {
            epochs: EpochCache::from_entries(&[(1, 10), (3, 20), (4, 35)]).unwrap(),
            end: Offset(50),
        };
        assert_eq!(end_of_epoch(&epochs, 4), (4, 50), "the latest: the log end");
        assert_eq!(end_of_epoch(&epochs, 3), (3, 35));
        assert_eq!(end_of_epoch(&epochs, 2), (1, 20), "not held: the one below");
        assert_eq!(end_of_epoch(&epochs, 0), (0, 10), "older than any held");
        assert_eq!(end_of_epoch(&epochs, 5), (-1, -1), "newer than any held");
        assert_eq!(end_of_epoch(&epochs, -1), (-1, -1));
        let empty = LeaderEpochs {
            epochs: EpochCache::default(),
            end: Offset(0),
        };
        assert_eq!(end_of_epoch(&empty, 0), (-1, -1));
    }
}
