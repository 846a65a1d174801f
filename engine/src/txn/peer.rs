//! The transaction coordinators' questions to other nodes, on the peer
//! network ([`MessageKind::Transaction`]): markers for partitions another
//! node leads, and a partition leader's verification of a transactional
//! write with a coordinator on another node.
//!
//! Each message is `[u8 type][u64 question id][body]`, the body one of
//! Kafka's own messages at a fixed version, served by the same code as the
//! Kafka API of that name:
//!
//! | type | body |
//! |---|---|
//! | 1 write markers | `[u32 coordinator partition]` WriteTxnMarkersRequest v1 |
//! | 2 markers written | WriteTxnMarkersResponse v1 |
//! | 3 verify | AddPartitionsToTxnRequest v5 (`verify_only`) |
//! | 4 verified | AddPartitionsToTxnResponse v5 |
//!
//! An answer goes back to the shard that asked, naming its question. An
//! answer that does not come within [`ANSWER_TIMEOUT`] (a lost message, a
//! node down) counts as a passing failure, and its asker tries again
//! later. A message that does not read is dropped with a warning and
//! changes nothing.

use std::{collections::BTreeMap, rc::Rc, time::Duration};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::{
    messages::{
        add_partitions_to_txn_request::{AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction},
        write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic},
        AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ProducerId, TopicName,
        TransactionalId, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
    },
    protocol::{Decodable, Encodable, StrBytes},
};
use sluice_replication::txn::{MarkerResult, Producer, TopicPartition, TxnError, Verified};
use sluice_storage::NodeId;

use super::{
    codes::{marker_code, marker_result, txn_error_of_code},
    markers::{self, MarkerWrite},
};
use crate::{
    peer::{MessageKind, PeerMessage},
    shard::Shard,
};

const WRITE_MARKERS: u8 = 1;
const MARKERS_WRITTEN: u8 = 2;
const VERIFY: u8 = 3;
const VERIFIED: u8 = 4;

const WRITE_MARKERS_VERSION: i16 = 1;
const VERIFY_VERSION: i16 = 5;

/// The type byte and the question id.
const HEADER_BYTES: usize = 9;

/// The coordinator partition of markers an operator wrote.
const NO_COORDINATOR: u32 = u32::MAX;

/// How long a question waits for its answer: longer than a marker waits
/// for its partition's replicas.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

fn encode(
    kind: u8,
    question: u64,
    prefix: &[u8],
    message: &impl Encodable,
    version: i16,
) -> Option<Bytes> {
    let mut body = BytesMut::new();
    body.put_u8(kind);
    body.put_u64_le(question);
    body.put_slice(prefix);
    match message.encode(&mut body, version) {
        Ok(()) => Some(body.freeze()),
        Err(error) => {
            tracing::warn!(%error, "a transaction message does not encode");
            None
        }
    }
}

/// Sends `message` (of type `kind`) to node `node` and waits for its
/// answer's body; `None` if it could not be sent or no answer came in
/// time.
async fn ask(
    shard: &Shard,
    node: NodeId,
    kind: u8,
    prefix: &[u8],
    message: &impl Encodable,
    version: i16,
) -> Option<Bytes> {
    let network = shard.replicas.network()?;
    let question = shard.txns.question();
    let body = encode(kind, question, prefix, message, version)?;
    let (reply, answer) = futures_channel::oneshot::channel();
    shard.txns.asked.borrow_mut().insert(question, reply);
    // The same shard index as the asker's: spreads the questions of a
    // node's shards over the shards of the other.
    if let Err(error) = network.send_to_shard(node, shard.id as u32, MessageKind::Transaction, body)
    {
        tracing::debug!(%node, %error, "a transaction message not sent");
        shard.txns.asked.borrow_mut().remove(&question);
        return None;
    }
    let timed_out = async {
        glommio::timer::sleep(ANSWER_TIMEOUT).await;
        None
    };
    let answered = futures_lite::future::or(async { answer.await.ok() }, timed_out).await;
    shard.txns.asked.borrow_mut().remove(&question);
    answered
}

/// Writes `writes` on node `node`, which leads their partitions: each
/// partition's result (a passing failure for any it did not answer).
pub async fn write_markers(
    shard: &Shard,
    node: NodeId,
    writes: &[MarkerWrite],
) -> Vec<(TopicPartition, MarkerResult)> {
    let markers = writes
        .iter()
        .map(|write| {
            WritableTxnMarker::default()
                .with_producer_id(ProducerId(write.producer.id))
                .with_producer_epoch(write.producer.epoch)
                .with_transaction_result(write.outcome.is_commit())
                .with_coordinator_epoch(write.coordinator_epoch)
                .with_topics(vec![WritableTxnMarkerTopic::default()
                    .with_name(TopicName(StrBytes::from_string(write.topic.clone())))
                    .with_partition_indexes(vec![write.partition])])
        })
        .collect();
    let request = WriteTxnMarkersRequest::default().with_markers(markers);
    let coordinator = writes
        .first()
        .and_then(|write| write.coordinator)
        .unwrap_or(NO_COORDINATOR);
    let prefix = coordinator.to_le_bytes();
    let answer = ask(
        shard,
        node,
        WRITE_MARKERS,
        &prefix,
        &request,
        WRITE_MARKERS_VERSION,
    )
    .await;
    let mut codes: BTreeMap<TopicPartition, i16> = BTreeMap::new();
    match answer.map(|mut body| WriteTxnMarkersResponse::decode(&mut body, WRITE_MARKERS_VERSION)) {
        Some(Ok(response)) => {
            for marker in response.markers {
                for topic in marker.topics {
                    for partition in topic.partitions {
                        let tp = TopicPartition::new(
                            topic.name.0.to_string(),
                            partition.partition_index,
                        );
                        codes.insert(tp, partition.error_code);
                    }
                }
            }
        }
        Some(Err(error)) => tracing::warn!(%node, %error, "an answer to markers does not read"),
        None => {}
    }
    writes
        .iter()
        .map(|write| {
            let tp = TopicPartition::new(write.topic.clone(), write.partition);
            let result = codes
                .get(&tp)
                .map_or(MarkerResult::Retriable, |code| marker_result(*code));
            (tp, result)
        })
        .collect()
}

/// Asks the coordinator on node `node` to verify that `producer`'s
/// transaction is ongoing and holds each of `partitions`, or to add them
/// (KIP-890, [`markers::join`]).
pub async fn join(
    shard: &Shard,
    node: NodeId,
    transactional_id: &str,
    producer: Producer,
    partitions: Vec<TopicPartition>,
    joining: markers::Joining,
) -> Result<Verified, TxnError> {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in &partitions {
        topics.entry(&tp.topic).or_default().push(tp.partition);
    }
    let transaction = AddPartitionsToTxnTransaction::default()
        .with_transactional_id(TransactionalId(StrBytes::from_string(
            transactional_id.to_string(),
        )))
        .with_producer_id(ProducerId(producer.id))
        .with_producer_epoch(producer.epoch)
        .with_verify_only(joining == markers::Joining::Verify)
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    AddPartitionsToTxnTopic::default()
                        .with_name(TopicName(StrBytes::from_string(name.to_string())))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    let request = AddPartitionsToTxnRequest::default().with_transactions(vec![transaction]);
    let mut body = ask(shard, node, VERIFY, &[], &request, VERIFY_VERSION)
        .await
        .ok_or(TxnError::CoordinatorNotAvailable)?;
    let response =
        AddPartitionsToTxnResponse::decode(&mut body, VERIFY_VERSION).map_err(|error| {
            tracing::warn!(%node, %error, "an answer to a verification does not read");
            TxnError::CoordinatorNotAvailable
        })?;
    if response.error_code != 0 {
        return Err(txn_error_of_code(response.error_code));
    }
    let mut codes: BTreeMap<TopicPartition, i16> = BTreeMap::new();
    for result in response.results_by_transaction {
        for topic in result.topic_results {
            for partition in topic.results_by_partition {
                let tp = TopicPartition::new(topic.name.0.to_string(), partition.partition_index);
                codes.insert(tp, partition.partition_error_code);
            }
        }
    }
    Ok(partitions
        .into_iter()
        .map(|tp| {
            let result = match codes.get(&tp) {
                Some(0) => Ok(()),
                Some(code) => Err(txn_error_of_code(*code)),
                None => Err(TxnError::CoordinatorNotAvailable),
            };
            (tp, result)
        })
        .collect())
}

/// Takes one transaction message from a peer: a question is served (in a
/// task of its own) and answered to the shard that asked; an answer goes
/// to its question's asker.
pub fn on_message(shard: &Rc<Shard>, message: PeerMessage) {
    let mut body = message.body;
    if body.len() < HEADER_BYTES {
        tracing::warn!(from = %message.from, bytes = body.len(), "a short transaction message; dropped");
        return;
    }
    let kind = body.get_u8();
    let question = body.get_u64_le();
    match kind {
        MARKERS_WRITTEN | VERIFIED => {
            if let Some(asker) = shard.txns.asked.borrow_mut().remove(&question) {
                let _ = asker.send(body);
            }
        }
        WRITE_MARKERS | VERIFY => {
            let shard = shard.clone();
            let (from, from_shard) = (message.from, message.from_shard);
            glommio::spawn_local(async move {
                let Some(answer) = serve(&shard, kind, question, body).await else {
                    return;
                };
                if let Some(network) = shard.replicas.network() {
                    if let Err(error) =
                        network.send_to_shard(from, from_shard, MessageKind::Transaction, answer)
                    {
                        tracing::debug!(%from, %error, "a transaction answer not sent");
                    }
                }
            })
            .detach();
        }
        _ => {
            tracing::warn!(from = %message.from, kind, "a transaction message of an unknown type; dropped")
        }
    }
}

/// The answer to question `question` of type `kind`.
async fn serve(shard: &Rc<Shard>, kind: u8, question: u64, mut body: Bytes) -> Option<Bytes> {
    if kind == WRITE_MARKERS {
        if body.len() < 4 {
            tracing::warn!("a markers request without its coordinator; dropped");
            return None;
        }
        let coordinator = Some(body.get_u32_le()).filter(|c| *c != NO_COORDINATOR);
        let request = WriteTxnMarkersRequest::decode(&mut body, WRITE_MARKERS_VERSION)
            .map_err(|error| tracing::warn!(%error, "a markers request does not read; dropped"))
            .ok()?;
        let response = markers::serve(shard, request, coordinator, marker_code).await;
        encode(
            MARKERS_WRITTEN,
            question,
            &[],
            &response,
            WRITE_MARKERS_VERSION,
        )
    } else {
        let request = AddPartitionsToTxnRequest::decode(&mut body, VERIFY_VERSION)
            .map_err(|error| tracing::warn!(%error, "a verification does not read; dropped"))
            .ok()?;
        let response = markers::serve_join(shard, request).await;
        encode(VERIFIED, question, &[], &response, VERIFY_VERSION)
    }
}
