//! Produce: each partition's batch goes to its owner shard, which validates
//! it once and appends it; the answers are gathered here.

use std::rc::Rc;

use sluice_net::native::{
    messages::{
        Acks, ProducePartitionResponse, ProduceRequest, ProduceResponse, ProduceTopicResponse,
    },
    ErrorCode,
};

use super::error_code;
use crate::{
    partition::{ask, route, FanOut, PartitionOp, Produced, TxnCheck, WireFormat},
    shard::Shard,
};

/// `None` when acks=none: the batches are stored but nothing is answered.
pub async fn handle(shard: &Rc<Shard>, request: ProduceRequest) -> Option<ProduceResponse> {
    let metadata = shard.metadata();
    let wait = match request.acks {
        Acks::All => crate::partition::Acks::All,
        Acks::Leader | Acks::None => crate::partition::Acks::Leader,
    };
    let timeout = crate::partition::produce_timeout(request.timeout_ms as i32);
    let mut parts = FanOut::<u32, Produced>::default();
    for topic in request.topics {
        for part in topic.partitions {
            let batch = part.batch;
            let answer = route(shard, &metadata, &topic.name, part.partition).map(|route| {
                ask(shard, route, |reply| PartitionOp::Produce {
                    batches: vec![batch],
                    format: WireFormat::Native,
                    leader_epoch: route.leader_epoch,
                    acks: wait,
                    timeout,
                    transactions: TxnCheck::Unchecked,
                    reply,
                })
            });
            parts.part(part.partition, answer);
        }
        parts.end_topic(topic.name);
    }
    let topics = parts
        .gather()
        .await
        .into_iter()
        .map(|(name, answers)| ProduceTopicResponse {
            name,
            partitions: answers
                .into_iter()
                .map(|(partition, answer)| match answer {
                    Ok(produced) => ProducePartitionResponse {
                        partition,
                        error: ErrorCode::None,
                        message: String::new(),
                        base_offset: produced.base_offset.0,
                        log_start: produced.log_start.0,
                    },
                    Err(failure) => ProducePartitionResponse {
                        partition,
                        error: error_code(failure.kind),
                        message: failure.message,
                        base_offset: 0,
                        log_start: 0,
                    },
                })
                .collect(),
        })
        .collect();
    match request.acks {
        Acks::None => None,
        Acks::Leader | Acks::All => Some(ProduceResponse { topics }),
    }
}
