//! ListOffsets (earliest, latest, the first offset at or after a time) and
//! OffsetForLeaderEpoch (every partition has had one leader epoch, 0).

use std::rc::Rc;

use super::{failure_code, on_partition_in_epoch, topic_name};
use crate::{
    partition::{ErrorKind, Failure, FanOut, Listed, OffsetQuery, PartitionOp, Pending},
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

/// Asks the owner of (topic, partition) for an offset, if its leader epoch
/// is `current_leader_epoch` (-1: any).
fn ask(
    shard: &Rc<Shard>,
    topic: &str,
    partition: i32,
    current_leader_epoch: i32,
    query: OffsetQuery,
) -> Pending<Option<Listed>> {
    let metadata = shard.metadata();
    on_partition_in_epoch(
        shard,
        &metadata,
        topic,
        partition,
        current_leader_epoch,
        |reply| PartitionOp::ListOffset { query, reply },
    )
}

pub async fn list_offsets(
    shard: &Rc<Shard>,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let mut parts = FanOut::<i32, Option<Listed>>::default();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        for part in &topic.partitions {
            let query = match part.timestamp {
                LATEST => Ok(OffsetQuery::Latest),
                EARLIEST => Ok(OffsetQuery::Earliest),
                MAX_TIMESTAMP if version >= 7 => Ok(OffsetQuery::MaxTimestamp),
                EARLIEST_LOCAL if version >= 8 => Ok(OffsetQuery::Earliest),
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
            let answer =
                query.and_then(|query| ask(shard, &name, part.partition_index, epoch, query));
            parts.part(part.partition_index, answer);
        }
        parts.end_topic(name);
    }
    let mut topics = Vec::new();
    for (name, answers) in parts.gather().await {
        let mut partitions = Vec::new();
        for (partition, result) in answers {
            let mut response =
                ListOffsetsPartitionResponse::default().with_partition_index(partition);
            if version >= 4 {
                response.leader_epoch = 0;
            }
            partitions.push(match result {
                // By time: the first record at or after it; none: -1.
                Ok(Some(listed)) => response
                    .with_offset(listed.offset.0 as i64)
                    .with_timestamp(listed.timestamp),
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

/// Every partition has had one leader epoch, 0, so its end is the log end;
/// an epoch after it is unknown (-1, -1), as Kafka answers.
pub async fn offset_for_leader_epoch(
    shard: &Rc<Shard>,
    request: OffsetForLeaderEpochRequest,
    version: i16,
) -> OffsetForLeaderEpochResponse {
    // Each part is labelled (partition, the leader epoch asked about).
    let mut parts = FanOut::<(i32, i32), Option<Listed>>::default();
    for topic in request.topics {
        let name = topic.topic.0.to_string();
        for part in &topic.partitions {
            let epoch = if version >= 2 {
                part.current_leader_epoch
            } else {
                -1
            };
            let answer = ask(shard, &name, part.partition, epoch, OffsetQuery::Latest);
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
                Ok(_) if epoch > 0 => response
                    .with_error_code(0)
                    .with_leader_epoch(-1)
                    .with_end_offset(-1),
                Ok(end) => response
                    .with_leader_epoch(0)
                    .with_end_offset(end.map_or(0, |end| end.offset.0 as i64)),
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
