//! Fetch with long polling, through the native fetch's reading and waiting:
//! every partition read at once (its owner turns native batches into Kafka
//! ones), and if that is less than `min_bytes`, a wait for data on any of
//! them up to `max_wait_ms`. Topics are named by id from v13. No fetch
//! sessions: the answer's session id is 0, so clients send full fetches.
//!
//! Transactions as Kafka's brokers serve them: a `READ_COMMITTED` fetch
//! (`isolation_level` 1) reads up to the last stable offset, waits for it
//! to move, and lists the aborted transactions whose records it returns
//! (markers included in the records: the client drops both); a
//! `READ_UNCOMMITTED` one reads up to the high watermark with no list.
//! Every answer carries the last stable offset.

use std::{rc::Rc, time::Duration};

use bytes::Bytes;
use kafka_protocol::{
    error::ResponseError,
    messages::{
        fetch_response::{
            AbortedTransaction, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint,
            PartitionData,
        },
        BrokerId, FetchRequest, FetchResponse, ProducerId,
    },
};
use sluice_storage::Offset;
use uuid::Uuid;

use super::{check_leader_epoch, current_leader, failure_code, str_bytes, topic_name};
use crate::{
    config::ReplicaSelector,
    partition::{
        read::{read_or_wait, Target, FETCH_RESPONSE_BYTES_MAX},
        route_read, ErrorKind, Failure, FetchOutcome, Isolation, ReadFrom, WireFormat,
    },
    replica::reads::closer_replicas,
    shard::Shard,
};

pub async fn handle(
    shard: &Rc<Shard>,
    request: FetchRequest,
    version: i16,
    listener: &str,
) -> FetchResponse {
    let metadata = shard.metadata();
    let replica_id = match version {
        15.. => request.replica_state.replica_id.0,
        _ => request.replica_id.0,
    };
    // A consumer's fetch may be served by a follower from v11, which
    // carries its rack (KIP-392); Kafka's debugging consumer (-2) always.
    let any_replica = replica_id == -2 || (replica_id < 0 && version >= 11);
    let rack = match version {
        11.. => request.rack_id.as_str(),
        _ => "",
    };
    let me = (
        shard.config.node_id,
        shard.config.rack.as_deref(),
        shard.config.replica_selector == ReplicaSelector::RackAware,
    );
    let response_max = usize::try_from(request.max_bytes)
        .unwrap_or(0)
        .clamp(1, FETCH_RESPONSE_BYTES_MAX);
    let partitions: usize = request.topics.iter().map(|t| t.partitions.len()).sum();
    // Partitions are read at once, so each gets a share of the budget.
    let share = (response_max / partitions.max(1)).max(1);
    let isolation = Isolation::from_kafka(request.isolation_level);
    let mut targets = Vec::new();
    // Per target: the topic's id (v13+) as asked.
    let mut ids = Vec::new();
    for topic in &request.topics {
        let name = if version >= 13 {
            metadata
                .topics
                .values()
                .find(|meta| Uuid::from_u128(meta.id.0) == topic.topic_id)
                .map(|meta| meta.name.clone())
        } else {
            Some(topic.topic.0.to_string())
        };
        for part in &topic.partitions {
            let route = match (&name, u32::try_from(part.partition)) {
                (None, _) => Err(Failure::new(ErrorKind::UnknownTopic, "unknown topic id")),
                (Some(_), Err(_)) => Err(Failure::new(
                    ErrorKind::NoSuchPartition,
                    "negative partition",
                )),
                (Some(name), Ok(partition)) => {
                    route_read(shard, &metadata, name, partition, any_replica).and_then(|route| {
                        let epoch = if version >= 9 {
                            part.current_leader_epoch
                        } else {
                            -1
                        };
                        check_leader_epoch(&route, name, part.partition, epoch)?;
                        Ok(route)
                    })
                }
            };
            let offset = u64::try_from(part.fetch_offset).map_err(|_| {
                Failure::new(
                    ErrorKind::OffsetOutOfRange,
                    format!("offset {}", part.fetch_offset),
                )
            });
            let from = match (any_replica, &name, u32::try_from(part.partition)) {
                (true, Some(name), Ok(partition)) => ReadFrom::AnyReplica {
                    closer: closer_replicas(me, &metadata, name, partition, rack),
                },
                _ => ReadFrom::Leader,
            };
            targets.push(Target {
                topic: name.clone().unwrap_or_default(),
                partition: part.partition.max(0) as u32,
                offset: Offset(*offset.as_ref().unwrap_or(&0)),
                max_bytes: usize::try_from(part.partition_max_bytes)
                    .unwrap_or(0)
                    .min(share)
                    .max(1),
                format: WireFormat::Kafka,
                isolation,
                from,
                route: offset.and(route),
            });
            ids.push((topic.topic_id, name.is_none(), part.partition));
        }
    }
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let max_wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0));
    let outcomes = read_or_wait(shard, &targets, min_bytes, max_wait).await;

    let mut responses: Vec<FetchableTopicResponse> = Vec::new();
    let mut endpoints: Vec<NodeEndpoint> = Vec::new();
    let mut total = 0usize;
    for ((target, (topic_id, unknown_id, partition)), outcome) in
        targets.into_iter().zip(ids).zip(outcomes)
    {
        let data = PartitionData::default().with_partition_index(partition);
        let data = match outcome {
            Ok(outcome) => read_data(data, outcome, version, &mut total, response_max),
            Err(_) if unknown_id => data.with_error_code(ResponseError::UnknownTopicId.code()),
            Err(failure) => {
                let mut data = data
                    .with_error_code(failure_code(&failure))
                    .with_high_watermark(-1);
                if failure.kind == ErrorKind::NotLeader && version >= 12 {
                    // KIP-951 (the leader since v12, its endpoint since
                    // v16): where to fetch from instead.
                    let (leader, epoch, endpoint) =
                        current_leader(shard, &metadata, &target.topic, partition, listener);
                    data.current_leader = LeaderIdAndEpoch::default()
                        .with_leader_id(leader)
                        .with_leader_epoch(epoch);
                    match endpoint {
                        Some(broker)
                            if version >= 16
                                && !endpoints.iter().any(|known| known.node_id == broker.node) =>
                        {
                            endpoints.push(
                                NodeEndpoint::default()
                                    .with_node_id(broker.node)
                                    .with_host(str_bytes(broker.host))
                                    .with_port(broker.port)
                                    .with_rack(broker.rack.map(str_bytes)),
                            );
                        }
                        _ => {}
                    }
                }
                data
            }
        };
        let same_topic = match responses.last() {
            Some(last) if version >= 13 => last.topic_id == topic_id,
            Some(last) => last.topic.0.as_str() == target.topic,
            None => false,
        };
        if same_topic {
            responses.last_mut().expect("a topic").partitions.push(data);
        } else {
            let topic = FetchableTopicResponse::default().with_partitions(vec![data]);
            responses.push(if version >= 13 {
                topic.with_topic_id(topic_id)
            } else {
                topic.with_topic(topic_name(&target.topic))
            });
        }
    }
    FetchResponse::default()
        .with_session_id(0)
        .with_responses(responses)
        .with_node_endpoints(endpoints)
}

/// A partition's answer from what its owner read: its offsets; its records
/// (its owner joined its batches, each read within the partition's share
/// of the budget) if they fit what is left of the response's budget,
/// `total` of `max_bytes` used so far (the first records of the response
/// always go, however large, so a reader always moves on); and for a
/// committed read the aborted transactions among them.
fn read_data(
    data: PartitionData,
    outcome: FetchOutcome,
    version: i16,
    total: &mut usize,
    max_bytes: usize,
) -> PartitionData {
    let log_start = outcome.log_start.0 as i64;
    // Only a v11+ consumer is ever named a closer replica.
    let read_from = outcome.read_from.map_or(-1, |node| node.0);
    let data = data
        .with_high_watermark(outcome.high_watermark.0 as i64)
        .with_last_stable_offset(outcome.last_stable_offset.0 as i64)
        .with_preferred_read_replica(BrokerId(read_from))
        .with_log_start_offset(if version >= 5 { log_start } else { -1 });
    let records = outcome.batches.into_iter().next().unwrap_or_default();
    if *total > 0 && *total + records.len() > max_bytes {
        // Left for the next fetch, and their aborts with them.
        return data
            .with_records(Some(Bytes::new()))
            .with_aborted_transactions(outcome.aborted.map(|_| Vec::new()));
    }
    *total += records.len();
    let aborted = outcome.aborted.map(|aborted| {
        aborted
            .iter()
            .map(|aborted| {
                AbortedTransaction::default()
                    .with_producer_id(ProducerId(aborted.producer_id))
                    .with_first_offset(aborted.first_offset.0 as i64)
            })
            .collect()
    });
    data.with_records(Some(records))
        .with_aborted_transactions(aborted)
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::protocol::{Decodable, Encodable};
    use sluice_storage::{log::AbortedTransaction as Aborted, Offset};

    use super::*;

    fn outcome(records: &'static [u8], aborted: Option<Vec<Aborted>>) -> FetchOutcome {
        FetchOutcome {
            batches: vec![Bytes::from_static(records)],
            high_watermark: Offset(80),
            last_stable_offset: Offset(50),
            log_start: Offset(3),
            read_end: Offset(40),
            aborted,
            read_from: None,
        }
    }

    fn aborted(producer_id: i64, first: u64) -> Aborted {
        Aborted {
            producer_id,
            first_offset: Offset(first),
            last_offset: Offset(first + 5),
            last_stable_offset: Offset(first + 6),
        }
    }

    /// `data` as a client reads it back at `version`.
    fn round_trip(data: &PartitionData, version: i16) -> PartitionData {
        let mut out = BytesMut::new();
        data.encode(&mut out, version).unwrap();
        PartitionData::decode(&mut out.freeze(), version).unwrap()
    }

    #[test]
    fn a_committed_read_answers_its_last_stable_offset_and_aborts_at_every_version() {
        let mut total = 0;
        let data = read_data(
            PartitionData::default(),
            outcome(b"batches", Some(vec![aborted(7, 10), aborted(9, 12)])),
            4,
            &mut total,
            1024,
        );
        assert_eq!(total, 7);
        for version in [4, 11, 12, 18] {
            let read = round_trip(&data, version);
            assert_eq!(
                (read.high_watermark, read.last_stable_offset),
                (80, 50),
                "v{version}"
            );
            let aborts: Vec<(i64, i64)> = read
                .aborted_transactions
                .expect("a list")
                .iter()
                .map(|aborted| (aborted.producer_id.0, aborted.first_offset))
                .collect();
            assert_eq!(aborts, [(7, 10), (9, 12)], "v{version}");
        }
    }

    #[test]
    fn an_uncommitted_read_answers_no_list_and_records_left_over_take_their_aborts() {
        let mut total = 0;
        let uncommitted = read_data(
            PartitionData::default(),
            outcome(b"batches", None),
            12,
            &mut total,
            1024,
        );
        let read = round_trip(&uncommitted, 12);
        assert_eq!(read.aborted_transactions, None);
        assert_eq!(read.last_stable_offset, 50);

        // Over what is left of the response: no records, no aborts.
        let left_over = read_data(
            PartitionData::default(),
            outcome(b"more batches", Some(vec![aborted(7, 10)])),
            12,
            &mut total,
            10,
        );
        assert_eq!(left_over.records.as_deref(), Some(&b""[..]));
        assert_eq!(left_over.aborted_transactions, Some(Vec::new()));
        assert_eq!(left_over.last_stable_offset, 50);
    }
}
