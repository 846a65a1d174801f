//! Produce: each partition's batch goes to its owner shard, which validates
//! it once and appends it; the answers are gathered here.

use std::rc::Rc;

use sluice_net::native::{
    messages::{
        Acks, ProducePartitionResponse, ProduceRequest, ProduceResponse, ProduceTopicResponse,
    },
    ErrorCode,
};

use super::route;
use crate::shard::{PartitionOp, Shard, WireFormat};

/// `None` when acks=none: the batches are stored but nothing is answered.
pub async fn handle(shard: &Rc<Shard>, request: ProduceRequest) -> Option<ProduceResponse> {
    let metadata = shard.metadata();
    let mut pending = Vec::new();
    for topic in request.topics {
        let mut partitions = Vec::new();
        for part in topic.partitions {
            let answer =
                route(shard, &metadata, &topic.name, part.partition).map(|(owner, key)| {
                    shard.ask(owner, key, |reply| PartitionOp::Produce {
                        batches: vec![part.batch],
                        format: WireFormat::Native,
                        reply,
                    })
                });
            partitions.push((part.partition, answer));
        }
        pending.push((topic.name, partitions));
    }
    // Every batch is on its way before any answer is awaited.
    let mut topics = Vec::new();
    for (name, partitions) in pending {
        let mut answers = Vec::new();
        for (partition, answer) in partitions {
            let result = match answer {
                Ok(answer) => answer.await,
                Err(failure) => Err(failure),
            };
            answers.push(match result {
                Ok(produced) => ProducePartitionResponse {
                    partition,
                    error: ErrorCode::None,
                    message: String::new(),
                    base_offset: produced.base_offset,
                    log_start: produced.log_start,
                },
                Err(failure) => ProducePartitionResponse {
                    partition,
                    error: failure.code,
                    message: failure.message,
                    base_offset: 0,
                    log_start: 0,
                },
            });
        }
        topics.push(ProduceTopicResponse {
            name,
            partitions: answers,
        });
    }
    match request.acks {
        Acks::None => None,
        Acks::Leader | Acks::All => Some(ProduceResponse { topics }),
    }
}
