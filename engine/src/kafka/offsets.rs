//! ListOffsets (earliest, latest, the first offset at or after a time) and
//! OffsetForLeaderEpoch (every partition has had one leader epoch, 0).

use std::rc::Rc;

use kafka_protocol::messages::{
    list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse},
    offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult},
    ListOffsetsRequest, ListOffsetsResponse, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
};
use sluice_net::native::{messages::OffsetSpec, ErrorCode};

use super::{failure_code, on_partition};
use crate::shard::{settle, Failure, Listed, PartitionOp, Pending, Shard};

/// Kafka's special timestamps in ListOffsets.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
/// The earliest offset on local storage (v8+): all storage is local here.
const EARLIEST_LOCAL: i64 = -4;

/// Asks the owner of (topic, partition) for an offset.
fn ask(
    shard: &Rc<Shard>,
    topic: &str,
    partition: i32,
    spec: OffsetSpec,
) -> Pending<Option<Listed>> {
    on_partition(shard, &shard.metadata(), topic, partition, |reply| {
        PartitionOp::ListOffset { spec, reply }
    })
}

pub async fn list_offsets(
    shard: &Rc<Shard>,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let mut pending = Vec::new();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let answers: Vec<_> = topic
            .partitions
            .iter()
            .map(|part| {
                let spec = match part.timestamp {
                    LATEST => Ok(OffsetSpec::Latest),
                    EARLIEST => Ok(OffsetSpec::Earliest),
                    MAX_TIMESTAMP if version >= 7 => Ok(OffsetSpec::MaxTimestamp),
                    EARLIEST_LOCAL if version >= 8 => Ok(OffsetSpec::Earliest),
                    at if at >= 0 => Ok(OffsetSpec::Timestamp(at)),
                    other => Err(Failure::new(
                        ErrorCode::InvalidRequest,
                        format!("timestamp {other}"),
                    )),
                };
                let answer = spec.and_then(|spec| ask(shard, &name, part.partition_index, spec));
                (part.partition_index, answer)
            })
            .collect();
        pending.push((topic.name, answers));
    }
    let mut topics = Vec::new();
    for (name, answers) in pending {
        let mut partitions = Vec::new();
        for (partition, answer) in answers {
            let result = settle(answer).await;
            let mut response =
                ListOffsetsPartitionResponse::default().with_partition_index(partition);
            if version >= 4 {
                response.leader_epoch = 0;
            }
            partitions.push(match result {
                // By time: the first record at or after it; none: -1.
                Ok(Some(listed)) => response
                    .with_offset(listed.offset as i64)
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
                .with_name(name)
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
    _version: i16,
) -> OffsetForLeaderEpochResponse {
    let mut pending = Vec::new();
    for topic in request.topics {
        let name = topic.topic.0.to_string();
        let answers: Vec<_> = topic
            .partitions
            .iter()
            .map(|part| {
                let answer = ask(shard, &name, part.partition, OffsetSpec::Latest);
                (part.partition, part.leader_epoch, answer)
            })
            .collect();
        pending.push((topic.topic, answers));
    }
    let mut topics = Vec::new();
    for (name, answers) in pending {
        let mut partitions = Vec::new();
        for (partition, epoch, answer) in answers {
            let result = settle(answer).await;
            let response = EpochEndOffset::default().with_partition(partition);
            partitions.push(match result {
                Ok(_) if epoch > 0 => response
                    .with_error_code(0)
                    .with_leader_epoch(-1)
                    .with_end_offset(-1),
                Ok(end) => response
                    .with_leader_epoch(0)
                    .with_end_offset(end.map_or(0, |end| end.offset as i64)),
                Err(failure) => response
                    .with_error_code(failure_code(&failure))
                    .with_leader_epoch(-1)
                    .with_end_offset(-1),
            });
        }
        topics.push(
            OffsetForLeaderTopicResult::default()
                .with_topic(name)
                .with_partitions(partitions),
        );
    }
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
