//! Produce: each partition's record batches go to its owner shard, which
//! checks each (CRC, version, counts) and stores it verbatim, compressed or
//! not; the answers are gathered here. Every batch is sent before any answer
//! is awaited, so the batches of one connection reach a partition in the
//! order they were sent (an idempotent producer relies on it).

use std::{collections::HashMap, rc::Rc};

use bytes::Bytes;
use kafka_protocol::{
    error::ResponseError,
    messages::{
        produce_response::{
            LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
        },
        ProduceRequest, ProduceResponse,
    },
};

use sluice_replication::txn::{Producer, TopicPartition, TxnError};

use super::{current_leader, failure_code, metadata::auto_create, route, str_bytes};
use crate::{
    cluster_metadata::Metadata,
    partition::{
        ask, produce_timeout, Acks, ErrorKind, Failure, FanOut, PartitionOp, Produced, TxnCheck,
        WireFormat,
    },
    request_order::Turn,
    shard::Shard,
    txn::{self, markers::Joining},
};

/// The fixed header of a Kafka RecordBatch v2, and the attributes bit
/// that marks a transactional one.
const KAFKA_HEADER_BYTES: usize = 61;
const ATTRIBUTE_TRANSACTIONAL: i16 = 0x10;

/// The fixed part of a Kafka RecordBatch v2 up to and including its
/// `batchLength` field: baseOffset (8) and batchLength (4).
const LENGTH_PREFIX_BYTES: usize = 12;

/// `None` when acks=0: the batches are stored but nothing is answered.
/// The batches are all sent before `turn` is marked dispatched, so the next
/// produce on the connection sends its own after them.
pub async fn handle(
    shard: &Rc<Shard>,
    request: ProduceRequest,
    version: i16,
    turn: &Turn,
    listener: &str,
) -> Option<ProduceResponse> {
    let acks = request.acks;
    let transactional = request.topic_data.iter().any(|topic| {
        topic.partition_data.iter().any(|part| {
            part.records
                .as_ref()
                .is_some_and(|records| transactional_producer(records).is_some())
        })
    });
    if transactional && request.transactional_id.is_none() {
        return respond_all(
            acks,
            request,
            version,
            ResponseError::TransactionalIdAuthorizationFailed.code(),
            "transactional batches from a producer with no transactional id",
        );
    }
    if !(-1..=1).contains(&acks) {
        return respond_all(
            acks,
            request,
            version,
            ResponseError::InvalidRequiredAcks.code(),
            "acks must be 0, 1 or -1",
        );
    }
    let mut metadata = shard.metadata();
    if shard.config.auto_create_topics {
        let missing: Vec<String> = request
            .topic_data
            .iter()
            .map(|topic| topic.name.0.to_string())
            .filter(|name| metadata.topic(name).is_none())
            .collect();
        if !missing.is_empty() {
            auto_create(shard, &missing).await;
            metadata = shard.metadata();
        }
    }

    let (mut refused, mut guards) = match &request.transactional_id {
        Some(id) if transactional => {
            // Produce v12 is a KIP-890 part 2 client's: it sent no
            // AddPartitionsToTxn, the partitions join here.
            let joining = if version >= 12 {
                Joining::Add
            } else {
                Joining::Verify
            };
            join_transactions(shard, &metadata, &id.0, &request, joining).await
        }
        _ => Default::default(),
    };
    let wait = if acks == -1 { Acks::All } else { Acks::Leader };
    let timeout = produce_timeout(request.timeout_ms);
    let mut parts = FanOut::<i32, Produced>::default();
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        for part in topic.partition_data {
            if let Some(failure) = refused.remove(&(name.clone(), part.index)) {
                parts.part(part.index, Err(failure));
                continue;
            }
            let transactions = if transactional {
                TxnCheck::Joining {
                    guard: guards.remove(&(name.clone(), part.index)),
                }
            } else {
                TxnCheck::Unchecked
            };
            let answer = split(part.records.unwrap_or_default()).and_then(|batches| {
                let route = route(shard, &metadata, &name, part.index)?;
                Ok(ask(shard, route, |reply| PartitionOp::Produce {
                    batches,
                    format: WireFormat::Kafka,
                    leader_epoch: route.leader_epoch,
                    acks: wait,
                    timeout,
                    transactions,
                    reply,
                }))
            });
            parts.part(part.index, answer);
        }
        parts.end_topic(name);
    }
    turn.dispatched();

    let mut responses = Vec::new();
    let mut endpoints: Vec<NodeEndpoint> = Vec::new();
    let metadata = shard.metadata();
    for (name, answers) in parts.gather().await {
        let mut partitions = Vec::new();
        for (index, result) in answers {
            let mut response = PartitionProduceResponse::default().with_index(index);
            match result {
                Ok(produced) => {
                    response.base_offset = produced.base_offset.0 as i64;
                    if version >= 5 {
                        response.log_start_offset = produced.log_start.0 as i64;
                    }
                }
                Err(failure) => {
                    response.error_code = failure_code(&failure);
                    response.base_offset = -1;
                    if failure.kind == ErrorKind::NotLeader && version >= 10 {
                        // KIP-951: where the leader is, so the client
                        // need not ask for metadata first.
                        let (leader, epoch, endpoint) =
                            current_leader(shard, &metadata, &name, index, listener);
                        response.current_leader = LeaderIdAndEpoch::default()
                            .with_leader_id(leader)
                            .with_leader_epoch(epoch);
                        if let Some(broker) = endpoint {
                            if !endpoints.iter().any(|known| known.node_id == broker.node) {
                                endpoints.push(
                                    NodeEndpoint::default()
                                        .with_node_id(broker.node)
                                        .with_host(str_bytes(broker.host))
                                        .with_port(broker.port)
                                        .with_rack(broker.rack.map(str_bytes)),
                                );
                            }
                        }
                    }
                    if version >= 8 {
                        response.error_message = Some(str_bytes(failure.message));
                    }
                }
            }
            partitions.push(response);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(super::topic_name(&name))
                .with_partition_responses(partitions),
        );
    }
    (acks != 0).then(|| {
        ProduceResponse::default()
            .with_responses(responses)
            .with_node_endpoints(endpoints)
    })
}

/// The producer of the first transactional batch of a partition's
/// records, if one is. Every produce asks, so the batches' headers are
/// walked in place, nothing allocated; records that do not split are the
/// owner's to refuse.
fn transactional_producer(records: &[u8]) -> Option<Producer> {
    let mut rest = records;
    while rest.len() >= LENGTH_PREFIX_BYTES {
        let length = i32::from_be_bytes(rest[8..12].try_into().expect("4 bytes"));
        let whole = usize::try_from(length)
            .ok()?
            .checked_add(LENGTH_PREFIX_BYTES)
            .filter(|whole| *whole <= rest.len())?;
        let (batch, after) = rest.split_at(whole);
        let header = batch.get(..KAFKA_HEADER_BYTES)?;
        let attributes = i16::from_be_bytes(header[21..23].try_into().expect("2 bytes"));
        if attributes & ATTRIBUTE_TRANSACTIONAL != 0 {
            return Some(Producer::new(
                i64::from_be_bytes(header[43..51].try_into().expect("8 bytes")),
                i16::from_be_bytes(header[51..53].try_into().expect("2 bytes")),
            ));
        }
        rest = after;
    }
    None
}

/// The partitions of a request, by topic and index.
type ByPartition<T> = HashMap<(String, i32), T>;

/// KIP-890: where each partition with transactional batches stands before
/// they are sent. A partition where their producer has a transaction open
/// takes them as they are. Any other gets a guard from its leader, and
/// the coordinator of `transactional_id` is asked to verify that the
/// partition is in the producer's ongoing transaction (part 1) or to add
/// it (part 2); the batches then carry the guard, which no longer holds if
/// the transaction ended meanwhile.
///
/// Answers the partitions refused, and why (a partition not in the
/// transaction is `INVALID_TXN_STATE`, a fenced producer
/// `INVALID_PRODUCER_EPOCH`, a coordinator that could not answer
/// `NOT_ENOUGH_REPLICAS`, Kafka's choice: every producer retries it), and
/// the guards of those verified. A partition whose leader could not be
/// asked is left to its produce, which meets the same refusal.
async fn join_transactions(
    shard: &Rc<Shard>,
    metadata: &Metadata,
    transactional_id: &str,
    request: &ProduceRequest,
    joining: Joining,
) -> (ByPartition<Failure>, ByPartition<u64>) {
    let mut asked = Vec::new();
    for topic in &request.topic_data {
        let name = topic.name.0.to_string();
        for part in &topic.partition_data {
            let Some(producer) = part.records.as_deref().and_then(transactional_producer) else {
                continue;
            };
            let Ok(route) = route(shard, metadata, &name, part.index) else {
                continue;
            };
            let guard = ask(shard, route, |reply| PartitionOp::TransactionGuard {
                producer_id: producer.id,
                epoch: producer.epoch,
                reply,
            });
            asked.push((
                TopicPartition::new(name.clone(), part.index),
                producer,
                guard,
            ));
        }
    }
    let mut refused = HashMap::new();
    let mut guards = HashMap::new();
    let mut unverified: HashMap<Producer, Vec<TopicPartition>> = HashMap::new();
    for (tp, producer, guard) in asked {
        match guard.await {
            Ok(None) => {}
            Ok(Some(guard)) => {
                guards.insert((tp.topic.clone(), tp.partition), guard);
                unverified.entry(producer).or_default().push(tp);
            }
            Err(failure) => {
                refused.insert((tp.topic, tp.partition), failure);
            }
        }
    }
    for (producer, partitions) in unverified {
        let joined = txn::markers::join(
            shard,
            transactional_id,
            producer,
            partitions.clone(),
            joining,
        )
        .await;
        let results: Vec<(TopicPartition, Result<(), TxnError>)> = match joined {
            Ok(joined) => joined,
            Err(error) => partitions
                .into_iter()
                .map(|tp| (tp, Err(error.clone())))
                .collect(),
        };
        for (tp, result) in results {
            let Err(error) = result else {
                continue;
            };
            let kind = match &error {
                TxnError::ProducerFenced | TxnError::InvalidProducerEpoch => {
                    ErrorKind::ProducerFenced
                }
                error if error.is_retriable() => ErrorKind::NotEnoughReplicas,
                _ => ErrorKind::InvalidTxnState,
            };
            let message = format!(
                "partition {} of {}: not in an ongoing transaction of {transactional_id} (producer {} epoch {}): {error}",
                tp.partition, tp.topic, producer.id, producer.epoch
            );
            let key = (tp.topic, tp.partition);
            guards.remove(&key);
            refused.insert(key, Failure::new(kind, message));
        }
    }
    (refused, guards)
}

/// Splits a partition's records into its RecordBatches by their
/// `batchLength`, each checked to lie within the bytes; slices, no copies.
fn split(mut records: Bytes) -> Result<Vec<Bytes>, Failure> {
    let corrupt = |message: String| Failure::new(ErrorKind::CorruptBatch, message);
    let mut batches = Vec::new();
    while !records.is_empty() {
        if records.len() < LENGTH_PREFIX_BYTES {
            return Err(corrupt(format!(
                "{} bytes after the last record batch",
                records.len()
            )));
        }
        let length = i32::from_be_bytes(records[8..12].try_into().expect("4 bytes"));
        let whole = usize::try_from(length)
            .ok()
            .and_then(|length| length.checked_add(LENGTH_PREFIX_BYTES))
            .filter(|whole| *whole <= records.len())
            .ok_or_else(|| {
                corrupt(format!(
                    "a record batch of length {length} in {} bytes",
                    records.len()
                ))
            })?;
        batches.push(records.split_to(whole));
    }
    if batches.is_empty() {
        return Err(corrupt("no record batch".to_string()));
    }
    Ok(batches)
}

/// Every partition of the request answered with the same error.
fn respond_all(
    acks: i16,
    request: ProduceRequest,
    version: i16,
    code: i16,
    message: &str,
) -> Option<ProduceResponse> {
    let responses = request
        .topic_data
        .into_iter()
        .map(|topic| {
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_partition_responses(
                    topic
                        .partition_data
                        .iter()
                        .map(|part| {
                            PartitionProduceResponse::default()
                                .with_index(part.index)
                                .with_error_code(code)
                                .with_error_message((version >= 8).then(|| str_bytes(message)))
                                .with_base_offset(-1)
                        })
                        .collect(),
                )
        })
        .collect();
    (acks != 0).then(|| ProduceResponse::default().with_responses(responses))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(length: i32, body: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; 8];
        bytes.extend_from_slice(&length.to_be_bytes());
        bytes.resize(12 + body, 7);
        bytes
    }

    #[test]
    fn records_split_into_whole_batches_or_fail() {
        let mut two = batch(50, 50);
        two.extend(batch(60, 60));
        let parts = split(Bytes::from(two)).unwrap();
        assert_eq!(parts.iter().map(Bytes::len).collect::<Vec<_>>(), [62, 72]);
        assert!(split(Bytes::new()).is_err());
        assert!(split(Bytes::from(batch(51, 50))).is_err());
        assert!(split(Bytes::from(batch(-1, 50))).is_err());
        assert!(split(Bytes::from(vec![0u8; 11])).is_err());
        let mut trailing = batch(50, 50);
        trailing.push(1);
        assert!(split(Bytes::from(trailing)).is_err());
    }
}
