//! A fetch's read, shared by both protocols: every partition read at once
//! on its owner and, when that is less than the fetch wants, a wait for data
//! on any of them (a long poll), then one more read.

use std::{rc::Rc, time::Duration};

use bytes::Bytes;
use sluice_storage::Offset;

use super::{
    ask, gather_all, Answer, Failure, FetchOutcome, Isolation, PartitionOp, ReadFrom, Route,
    WireFormat,
};
use crate::shard::Shard;

/// A fetch waits at most this long, whatever it asks: a bound on how long a
/// request holds a slot on its connection.
pub const FETCH_WAIT_MAX: Duration = Duration::from_secs(30);

/// A fetch response carries at most this many bytes of batches, whatever
/// the request asks (and at least one batch). With the read budget split
/// between the partitions asked for, it bounds the memory one fetch pins to
/// this plus one batch per partition.
pub const FETCH_RESPONSE_BYTES_MAX: usize = 32 * 1024 * 1024;

/// One partition a fetch reads.
pub struct Target {
    pub topic: String,
    pub partition: u32,
    pub offset: Offset,
    pub max_bytes: usize,
    pub format: WireFormat,
    pub isolation: Isolation,
    /// Which replicas may serve it.
    pub from: ReadFrom,
    pub route: Result<Route, Failure>,
}

/// Reads every target; if that is less than `min_bytes`, nothing failed
/// and no leader named another replica to read from, waits up to
/// `max_wait` (at most [`FETCH_WAIT_MAX`]) for data on any of them, and
/// reads again.
pub async fn read_or_wait(
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
    // A reader sent elsewhere is told at once, not after a long poll.
    let any_sent_elsewhere = outcomes
        .iter()
        .flatten()
        .any(|outcome| outcome.read_from.is_some());
    if bytes >= min_bytes || max_wait.is_zero() || any_error || any_sent_elsewhere {
        return outcomes;
    }
    // A read that returned nothing but skipped batches (a native reader's
    // markers) waits for data past them, not for what is there already.
    let wait_at: Vec<Offset> = targets
        .iter()
        .zip(&outcomes)
        .map(|(target, outcome)| match outcome {
            Ok(outcome) if outcome.batches.is_empty() => outcome.read_end.max(target.offset),
            _ => target.offset,
        })
        .collect();
    wait_for_any(shard, targets, &wait_at, max_wait).await;
    read_all(shard, targets).await
}

async fn read_all(shard: &Rc<Shard>, targets: &[Target]) -> Vec<Result<FetchOutcome, Failure>> {
    let parts = targets
        .iter()
        .map(|target| {
            let (offset, max_bytes, format) = (target.offset, target.max_bytes, target.format);
            let (isolation, from) = (target.isolation, target.from.clone());
            Ok(ask(shard, target.route.clone()?, |reply| {
                PartitionOp::Fetch {
                    offset,
                    max_bytes,
                    format,
                    isolation,
                    from,
                    reply,
                }
            }))
        })
        .collect();
    gather_all(parts).await
}

/// Resolves when any partition has data its reader sees at its offset in
/// `wait_at`, or at `max_wait`.
async fn wait_for_any(
    shard: &Rc<Shard>,
    targets: &[Target],
    wait_at: &[Offset],
    max_wait: Duration,
) {
    let mut waits: Vec<Answer<Result<(), Failure>>> = targets
        .iter()
        .zip(wait_at)
        .filter_map(|(target, &offset)| {
            let isolation = target.isolation;
            Some(ask(shard, target.route.clone().ok()?, |reply| {
                PartitionOp::WaitForData {
                    offset,
                    isolation,
                    timeout: max_wait,
                    reply,
                }
            }))
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
