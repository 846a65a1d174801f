//! ListOffsets: earliest, latest, or the first offset at or after a time.

use std::rc::Rc;

use sluice_net::native::{
    messages::{ListOffsetsRequest, ListOffsetsResponse, ListedOffset},
    ErrorCode,
};

use super::route;
use crate::shard::{PartitionOp, Shard};

pub async fn handle(shard: &Rc<Shard>, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let metadata = shard.metadata();
    let mut pending = Vec::new();
    for (name, partitions) in request.topics {
        let answers: Vec<_> = partitions
            .into_iter()
            .map(|(partition, spec)| {
                let answer = route(shard, &metadata, &name, partition).map(|(owner, key)| {
                    shard.ask(owner, key, |reply| PartitionOp::ListOffset { spec, reply })
                });
                (partition, answer)
            })
            .collect();
        pending.push((name, answers));
    }
    let mut topics = Vec::new();
    for (name, answers) in pending {
        let mut listed = Vec::new();
        for (partition, answer) in answers {
            let result = match answer {
                Ok(answer) => answer.await,
                Err(failure) => Err(failure),
            };
            listed.push(match result {
                Ok(listed) => ListedOffset {
                    partition,
                    error: ErrorCode::None,
                    message: String::new(),
                    offset: listed.map(|listed| listed.offset),
                },
                Err(failure) => ListedOffset {
                    partition,
                    error: failure.code,
                    message: failure.message,
                    offset: None,
                },
            });
        }
        topics.push((name, listed));
    }
    ListOffsetsResponse { topics }
}
