//! ListOffsets: earliest, latest, or the first offset at or after a time,
//! as a native reader sees the partition (it reads committed records
//! only): the latest is the last stable offset, and an offset found by
//! time at or past it is none.

use std::rc::Rc;

use sluice_net::native::{
    messages::{ListOffsetsRequest, ListOffsetsResponse, ListedOffset, OffsetSpec},
    ErrorCode,
};

use super::error_code;
use crate::{
    partition::{ask, route, FanOut, Isolation, Listed, OffsetQuery, PartitionOp},
    shard::Shard,
};

pub async fn handle(shard: &Rc<Shard>, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let metadata = shard.metadata();
    let mut parts = FanOut::<u32, Option<Listed>>::default();
    for (name, partitions) in request.topics {
        for (partition, spec) in partitions {
            let query = offset_query(spec);
            let answer = route(shard, &metadata, &name, partition).map(|route| {
                ask(shard, route, |reply| PartitionOp::ListOffset {
                    query,
                    isolation: Isolation::Committed,
                    reply,
                })
            });
            parts.part(partition, answer);
        }
        parts.end_topic(name);
    }
    let topics = parts
        .gather()
        .await
        .into_iter()
        .map(|(name, answers)| {
            let listed = answers
                .into_iter()
                .map(|(partition, answer)| match answer {
                    Ok(listed) => ListedOffset {
                        partition,
                        error: ErrorCode::None,
                        message: String::new(),
                        offset: listed.map(|listed| listed.offset.0),
                    },
                    Err(failure) => ListedOffset {
                        partition,
                        error: error_code(failure.kind),
                        message: failure.message,
                        offset: None,
                    },
                })
                .collect();
            (name, listed)
        })
        .collect();
    ListOffsetsResponse { topics }
}

/// The engine's form of the native protocol's offset spec.
pub(crate) fn offset_query(spec: OffsetSpec) -> OffsetQuery {
    match spec {
        OffsetSpec::Earliest => OffsetQuery::Earliest,
        OffsetSpec::Latest => OffsetQuery::Latest,
        OffsetSpec::Timestamp(timestamp) => OffsetQuery::Timestamp(timestamp),
        OffsetSpec::MaxTimestamp => OffsetQuery::MaxTimestamp,
    }
}
