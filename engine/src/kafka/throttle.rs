//! Client quotas on the Kafka listener ([`crate::quota`]): a request's
//! bytes and the time the shard spent serving it, counted against the
//! client's quotas, and the throttle time answered.
//!
//! **Request time** (`request_percentage`, Kafka's request quota) is the
//! time the shard spent running the request's handler: the sum of its
//! polls ([`timed`]), not the time it waited (for followers, for a long
//! poll's records). That is the share of a core the client took, as
//! Kafka's is the share of a request handler thread's time: a quota of
//! 100 is one core's whole time over the window, 50 half of it.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use kafka_protocol::messages::*;

use super::{authorize, KafkaRequest};
use crate::{quota, server::Connection, shard::Shard};

/// A response that tells the client how long it is throttled.
pub(crate) trait ThrottleTime {
    fn throttle_time_ms(&mut self) -> Option<&mut i32>;
}

macro_rules! throttle_time {
    ($($response:ty),* $(,)?) => {
        $(impl ThrottleTime for $response {
            fn throttle_time_ms(&mut self) -> Option<&mut i32> {
                Some(&mut self.throttle_time_ms)
            }
        })*
    };
}

throttle_time!(
    AddOffsetsToTxnResponse,
    AddPartitionsToTxnResponse,
    AlterClientQuotasResponse,
    AlterConfigsResponse,
    AlterPartitionReassignmentsResponse,
    AlterReplicaLogDirsResponse,
    AlterUserScramCredentialsResponse,
    ConsumerGroupDescribeResponse,
    ConsumerGroupHeartbeatResponse,
    CreateAclsResponse,
    CreatePartitionsResponse,
    CreateTopicsResponse,
    DeleteAclsResponse,
    DeleteGroupsResponse,
    DeleteRecordsResponse,
    DeleteTopicsResponse,
    DescribeAclsResponse,
    DescribeClientQuotasResponse,
    DescribeClusterResponse,
    DescribeConfigsResponse,
    DescribeGroupsResponse,
    DescribeLogDirsResponse,
    DescribeProducersResponse,
    DescribeTopicPartitionsResponse,
    DescribeTransactionsResponse,
    DescribeUserScramCredentialsResponse,
    ElectLeadersResponse,
    EndTxnResponse,
    FetchResponse,
    FindCoordinatorResponse,
    HeartbeatResponse,
    IncrementalAlterConfigsResponse,
    InitProducerIdResponse,
    JoinGroupResponse,
    LeaveGroupResponse,
    ListGroupsResponse,
    ListOffsetsResponse,
    ListPartitionReassignmentsResponse,
    ListTransactionsResponse,
    MetadataResponse,
    OffsetCommitResponse,
    OffsetDeleteResponse,
    OffsetFetchResponse,
    OffsetForLeaderEpochResponse,
    ProduceResponse,
    SyncGroupResponse,
    TxnOffsetCommitResponse,
);

/// Kafka's responses without a throttle time: the connection is muted all
/// the same.
macro_rules! no_throttle_time {
    ($($response:ty),* $(,)?) => {
        $(impl ThrottleTime for $response {
            fn throttle_time_ms(&mut self) -> Option<&mut i32> {
                None
            }
        })*
    };
}

no_throttle_time!(DescribeQuorumResponse, WriteTxnMarkersResponse);

/// Sets `response`'s throttle time to `throttle` (ms) if that is longer.
pub(crate) fn answer(response: &mut impl ThrottleTime, throttle: i32) {
    if let Some(time) = response.throttle_time_ms() {
        *time = (*time).max(throttle);
    }
}

/// Runs `future`, measuring the time spent in its polls when `timing`.
pub(crate) async fn timed<F: Future>(timing: bool, future: F) -> (F::Output, Duration) {
    if !timing {
        return (future.await, Duration::ZERO);
    }
    let mut future = std::pin::pin!(future);
    let mut spent = Duration::ZERO;
    let output = std::future::poll_fn(|context| {
        let started = Instant::now();
        let poll = future.as_mut().poll(context);
        spent += started.elapsed();
        poll
    })
    .await;
    (output, spent)
}

/// Whether requests are to be timed: some quota exists.
pub(crate) fn timing(access: &authorize::Access<'_>) -> bool {
    !access.metadata.quotas.is_empty()
}

/// Records `amount` against the client's `key` quota, if one applies: the
/// throttle time to answer (ms), for which the connection reads nothing
/// more. Without quotas, nothing is counted.
pub(crate) fn record(
    access: &authorize::Access<'_>,
    shard: &Shard,
    connection: &Connection,
    request: &KafkaRequest,
    key: &str,
    amount: impl FnOnce() -> f64,
) -> i32 {
    let quotas = &access.metadata.quotas;
    if quotas.is_empty() {
        return 0;
    }
    let client_id = request.client_id.as_deref().unwrap_or_default();
    let requester = connection.requester();
    let user = requester
        .principal
        .split_once(':')
        .map_or(requester.principal.as_str(), |(_, name)| name);
    let Some((rate, meter)) = quota::resolve(quotas, user, client_id, key) else {
        return 0;
    };
    let throttle = shard
        .quota_meters
        .record(meter, amount(), rate, &shard.config.quota_window);
    if throttle.is_zero() {
        return 0;
    }
    quota::THROTTLED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    connection.mute_for(throttle);
    i32::try_from(throttle.as_millis()).unwrap_or(i32::MAX)
}

/// Records the request's handling time against the client's
/// `request_percentage` quota: the throttle time (ms).
pub(crate) fn request_time(
    access: &authorize::Access<'_>,
    shard: &Shard,
    connection: &Connection,
    request: &KafkaRequest,
    spent: Duration,
) -> i32 {
    // A quota of N percent allows N/100 of a second a second: the
    // amount is in percent-seconds.
    record(
        access,
        shard,
        connection,
        request,
        quota::REQUEST_PERCENTAGE,
        || {
            let us = u64::try_from(spent.as_micros()).unwrap_or(u64::MAX);
            quota::REQUEST_TIME_US.fetch_add(us, std::sync::atomic::Ordering::Relaxed);
            spent.as_secs_f64() * 100.0
        },
    )
}
