//! Fetch with long polling: read every partition at once; if that is less
//! than `min_bytes`, ask each owner to wake us when its partition has data
//! (the append itself wakes it, no timer tick), up to `max_wait`, and read
//! again.

use std::{rc::Rc, time::Duration};

use bytes::Bytes;
use sluice_net::native::{
    messages::{FetchPartitionResponse, FetchRequest, FetchResponse, FetchTopicResponse},
    ErrorCode,
};

use super::route;
use crate::shard::{Answer, Failure, FetchOutcome, PartitionKey, PartitionOp, Shard, WireFormat};

/// A fetch waits at most this long, whatever it asks: a bound on how long a
/// request holds a slot on its connection.
pub(crate) const FETCH_WAIT_MAX: Duration = Duration::from_secs(30);

/// One partition a fetch reads.
pub(crate) struct Target {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub max_bytes: usize,
    pub format: WireFormat,
    pub route: Result<(usize, PartitionKey), Failure>,
}

/// A fetch response carries at most this many bytes of batches, whatever
/// the request asks (and at least one batch). With the read budget split
/// between the partitions asked for, it bounds the memory one fetch pins to
/// this plus one batch per partition.
pub(crate) const FETCH_RESPONSE_BYTES_MAX: usize = 32 * 1024 * 1024;

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
                offset: part.offset,
                max_bytes: (part.max_bytes as usize).min(share).max(1),
                format: WireFormat::Native,
                route: route(shard, &metadata, &topic.name, part.partition),
            });
        }
    }

    let max_wait = Duration::from_millis(u64::from(request.max_wait_ms));
    let outcomes = read_or_wait(shard, &targets, request.min_bytes as usize, max_wait).await;
    respond(targets, outcomes, response_max)
}

/// Reads every target; if that is less than `min_bytes` and nothing failed,
/// waits up to `max_wait` (at most [`FETCH_WAIT_MAX`]) for data on any of
/// them, and reads again.
pub(crate) async fn read_or_wait(
    shard: &Rc<Shard>,
    targets: &[Target],
    min_bytes: usize,
    max_wait: Duration,
) -> Vec<Result<FetchOutcome, Failure>> {
    let outcomes = read_all(shard, targets).await;
    let bytes: usize = outcomes
        .iter()
        .flatten()
        .flat_map(|o| &o.batches)
        .map(Bytes::len)
        .sum();
    let max_wait = max_wait.min(FETCH_WAIT_MAX);
    let any_error = outcomes.iter().any(Result::is_err);
    if bytes >= min_bytes || max_wait.is_zero() || any_error {
        return outcomes;
    }
    wait_for_any(shard, targets, max_wait).await;
    read_all(shard, targets).await
}

async fn read_all(shard: &Rc<Shard>, targets: &[Target]) -> Vec<Result<FetchOutcome, Failure>> {
    let answers: Vec<Result<Answer<Result<FetchOutcome, Failure>>, Failure>> = targets
        .iter()
        .map(|target| {
            let (owner, key) = target.route.clone()?;
            let (offset, max_bytes, format) = (target.offset, target.max_bytes, target.format);
            Ok(shard.ask(owner, key, |reply| PartitionOp::Fetch {
                offset,
                max_bytes,
                format,
                reply,
            }))
        })
        .collect();
    let mut outcomes = Vec::new();
    for answer in answers {
        outcomes.push(match answer {
            Ok(answer) => answer.await,
            Err(failure) => Err(failure),
        });
    }
    outcomes
}

/// Resolves when any partition has data at its fetch offset, or at `max_wait`.
async fn wait_for_any(shard: &Rc<Shard>, targets: &[Target], max_wait: Duration) {
    let mut waits: Vec<Answer<()>> = targets
        .iter()
        .filter_map(|target| {
            let (owner, key) = target.route.clone().ok()?;
            let offset = target.offset;
            Some(shard.call(
                owner,
                key,
                |reply| PartitionOp::WaitForData {
                    offset,
                    timeout: max_wait,
                    reply,
                },
                (),
            ))
        })
        .collect();
    if waits.is_empty() {
        return;
    }
    let any = std::future::poll_fn(|cx| {
        for wait in waits.iter_mut() {
            if wait.as_mut().poll(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    });
    futures_lite::future::or(any, glommio::timer::sleep(max_wait)).await;
    // Dropping the other waits cancels them on their owners.
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
                let mut batches = Vec::new();
                for batch in outcome.batches {
                    if total > 0 && total + batch.len() > max_bytes {
                        break;
                    }
                    total += batch.len();
                    batches.push(batch);
                }
                FetchPartitionResponse {
                    partition: target.partition,
                    error: ErrorCode::None,
                    message: String::new(),
                    high_watermark: outcome.high_watermark,
                    log_start: outcome.log_start,
                    batches,
                }
            }
            Err(failure) => FetchPartitionResponse {
                partition: target.partition,
                error: failure.code,
                message: failure.message,
                high_watermark: 0,
                log_start: 0,
                batches: Vec::new(),
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
