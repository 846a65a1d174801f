//! Fetch with long polling: read every partition at once; if that is less
//! than `min_bytes`, ask each owner to wake us when its partition has data
//! (the append itself wakes it, no timer tick), up to `max_wait`, and read
//! again.
//!
//! Committed records only: each partition is read up to its last stable
//! offset, without markers and aborted batches, and its answer's next
//! offset is past what its owner left out.

use std::{rc::Rc, time::Duration};

use sluice_net::native::{
    messages::{FetchPartitionResponse, FetchRequest, FetchResponse, FetchTopicResponse},
    ErrorCode,
};
use sluice_storage::Offset;

use super::error_code;
use crate::{
    partition::{
        read::{read_or_wait, Target, FETCH_RESPONSE_BYTES_MAX},
        route, Failure, FetchOutcome, Isolation, ReadFrom, WireFormat,
    },
    shard::Shard,
};

pub async fn handle(shard: &Rc<Shard>, request: FetchRequest) -> FetchResponse {
    let metadata = shard.metadata();
    let response_max = (request.max_bytes as usize).min(FETCH_RESPONSE_BYTES_MAX);
    let partitions: usize = request
        .topics
        .iter()
        .map(|topic| topic.partitions.len())
        .sum();
    // Partitions are read at once, so each gets a share of the budget.
    let share = (response_max / partitions.max(1)).max(1);
    let mut targets = Vec::new();
    for topic in &request.topics {
        for part in &topic.partitions {
            targets.push(Target {
                topic: topic.name.clone(),
                partition: part.partition,
                offset: Offset(part.offset),
                max_bytes: (part.max_bytes as usize).min(share).max(1),
                format: WireFormat::Native,
                isolation: Isolation::Committed,
                from: ReadFrom::Leader,
                route: route(shard, &metadata, &topic.name, part.partition),
            });
        }
    }

    let max_wait = Duration::from_millis(u64::from(request.max_wait_ms));
    let outcomes = read_or_wait(shard, &targets, request.min_bytes as usize, max_wait).await;
    respond(targets, outcomes, response_max)
}

fn respond(
    targets: Vec<Target>,
    outcomes: Vec<Result<FetchOutcome, Failure>>,
    max_bytes: usize,
) -> FetchResponse {
    let mut topics: Vec<FetchTopicResponse> = Vec::new();
    let mut total = 0usize;
    for (target, outcome) in targets.into_iter().zip(outcomes) {
        let response = match outcome {
            Ok(outcome) => {
                // Whole batches within the response's budget; the very first
                // batch of the response always goes, so a reader moves on.
                let read = outcome.batches.len();
                let mut batches = Vec::new();
                for batch in outcome.batches {
                    if total > 0 && total + batch.len() > max_bytes {
                        break;
                    }
                    total += batch.len();
                    batches.push(batch);
                }
                // Past what was skipped only if every batch read goes: the
                // reader moves on by the batches it gets otherwise.
                let next_offset = match batches.len() == read {
                    true => outcome.read_end,
                    false => target.offset,
                };
                FetchPartitionResponse {
                    partition: target.partition,
                    error: ErrorCode::None,
                    message: String::new(),
                    high_watermark: outcome.high_watermark.0,
                    log_start: outcome.log_start.0,
                    batches,
                    next_offset: next_offset.0,
                }
            }
            Err(failure) => FetchPartitionResponse {
                partition: target.partition,
                error: error_code(failure.kind),
                message: failure.message,
                high_watermark: 0,
                log_start: 0,
                batches: Vec::new(),
                next_offset: target.offset.0,
            },
        };
        match topics.last_mut() {
            Some(topic) if topic.name == target.topic => topic.partitions.push(response),
            _ => topics.push(FetchTopicResponse {
                name: target.topic,
                partitions: vec![response],
            }),
        }
    }
    FetchResponse { topics }
}
