//! DescribeProducers (KIP-664): the producers each partition's log knows,
//! as its leader answers, for an admin tool that looks for a hanging
//! transaction (one open on a partition that no coordinator will end).
//!
//! Each partition is asked of its owner shard ([`PartitionOp::Producers`]).
//! A partition this node does not lead is `NOT_LEADER_OR_FOLLOWER`, an
//! unknown one `UNKNOWN_TOPIC_OR_PARTITION`.
//!
//! A producer's `last_timestamp` is the largest timestamp of its last
//! batch or marker, read from the log (-1 once that is gone, or not yet
//! replicated). Its `coordinator_epoch`, the epoch of the coordinator that
//! last wrote a marker for it, is not kept, and is answered as Kafka
//! answers it unknown: -1.

use std::rc::Rc;

use kafka_protocol::messages::{
    describe_producers_response::{PartitionResponse, ProducerState, TopicResponse},
    DescribeProducersRequest, DescribeProducersResponse, ProducerId,
};

use super::{failure_code, on_partition, str_bytes, topic_name};
use crate::{
    partition::{ActiveProducer, FanOut, PartitionOp},
    shard::Shard,
};

/// What is not known, answered as unknown.
const UNKNOWN: i64 = -1;

fn producer_state(producer: &ActiveProducer) -> ProducerState {
    ProducerState::default()
        .with_producer_id(ProducerId(producer.producer_id))
        .with_producer_epoch(i32::from(producer.epoch))
        .with_last_sequence(producer.last_sequence.unwrap_or(-1))
        .with_last_timestamp(producer.last_timestamp.unwrap_or(UNKNOWN))
        .with_coordinator_epoch(UNKNOWN as i32)
        .with_current_txn_start_offset(producer.txn_start.map_or(UNKNOWN, |offset| offset.0 as i64))
}

pub async fn describe_producers(
    shard: &Rc<Shard>,
    request: DescribeProducersRequest,
    _version: i16,
) -> DescribeProducersResponse {
    let metadata = shard.metadata();
    let mut parts = FanOut::<i32, Vec<ActiveProducer>>::default();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        for partition in topic.partition_indexes {
            let answer = on_partition(shard, &metadata, &name, partition, |reply| {
                PartitionOp::Producers { reply }
            });
            parts.part(partition, answer);
        }
        parts.end_topic(name);
    }
    let mut topics = Vec::new();
    for (name, answers) in parts.gather().await {
        let partitions = answers
            .into_iter()
            .map(|(partition, answer)| {
                let response = PartitionResponse::default().with_partition_index(partition);
                match answer {
                    Ok(producers) => response
                        .with_active_producers(producers.iter().map(producer_state).collect()),
                    Err(failure) => response
                        .with_error_code(failure_code(&failure))
                        .with_error_message(Some(str_bytes(failure.message))),
                }
            })
            .collect();
        topics.push(
            TopicResponse::default()
                .with_name(topic_name(&name))
                .with_partitions(partitions),
        );
    }
    DescribeProducersResponse::default().with_topics(topics)
}
