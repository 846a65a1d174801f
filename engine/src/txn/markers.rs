//! Markers written to the partitions of a transaction, and the check a
//! partition's leader makes before it appends a transactional write.
//!
//! A coordinator's markers go to each partition's leader: those this node
//! leads are appended here ([`write_here`]), the others are sent to their
//! leader's node in one WriteTxnMarkers per node, over the peer network
//! ([`super::peer`]). A marker is written with `acks=all` and counts as
//! written once the partition's in-sync replicas hold it; on a partition
//! of `__consumer_offsets` it then also completes the transaction's
//! offset commits there.
//!
//! KIP-890: a transactional produce is appended only into a transaction
//! its coordinator knows. A partition where the producer has no
//! transaction open asks the coordinator (here or on another node)
//! ([`join`]): part 1 verifies that the producer's transaction is ongoing
//! and holds the partition; part 2 (Produce v12 and TxnOffsetCommit v5,
//! whose clients send no AddPartitionsToTxn) adds it. A late write of a
//! transaction that ended thus cannot open a transaction that no
//! coordinator will ever end.

use std::{collections::BTreeMap, rc::Rc, time::Duration};

use kafka_protocol::{
    messages::{
        add_partitions_to_txn_request::AddPartitionsToTxnTopic,
        add_partitions_to_txn_response::{
            AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult,
            AddPartitionsToTxnTopicResult,
        },
        write_txn_markers_response::{
            WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
        },
        AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, TopicName, WriteTxnMarkersRequest,
        WriteTxnMarkersResponse,
    },
    protocol::StrBytes,
};
use sluice_replication::txn::{
    Marker, MarkerResult, Outcome, Producer, TopicPartition, TxnError, Verified,
};
use sluice_storage::NodeId;

use super::{
    codes::{marker_code, marker_result, txn_error_code},
    driver, peer, routing, TXN_TOPIC,
};
use crate::{
    coordinator::{offsets::transaction_ended, run_on, OFFSETS_TOPIC},
    error::{ErrorKind, Failure},
    partition::{ask, gather_all, route, Answer, PartitionOp},
    shard::Shard,
};

/// How long a marker waits for its partition's in-sync replicas.
const MARKER_TIMEOUT: Duration = Duration::from_secs(5);

/// One marker to append, as WriteTxnMarkers names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerWrite {
    pub topic: String,
    pub partition: i32,
    pub producer: Producer,
    pub outcome: Outcome,
    pub coordinator_epoch: i32,
    /// The `__transaction_state` partition of the coordinator that sends
    /// it, whose leader epoch `coordinator_epoch` is; `None` for a marker
    /// an operator writes (WriteTxnMarkers from an admin tool).
    pub coordinator: Option<u32>,
}

impl MarkerWrite {
    fn of(marker: &Marker, coordinator: u32) -> MarkerWrite {
        MarkerWrite {
            topic: marker.topic_partition.topic.clone(),
            partition: marker.topic_partition.partition,
            producer: marker.producer,
            outcome: marker.outcome,
            coordinator_epoch: marker.coordinator_epoch,
            coordinator: Some(coordinator),
        }
    }
}

/// Whether a marker from the coordinator of `__transaction_state`
/// partition `coordinator` in `coordinator_epoch` is too old to write: a
/// newer coordinator of that partition has written markers through this
/// shard (for any of its partitions: all of a partition's markers pass
/// its owner shard), or the metadata names a newer leader epoch. Without
/// this, a deposed coordinator's marker for a transaction that is
/// complete, delivered late (a network partition heals), would end the
/// producer's next transaction on that partition (the classic protocol
/// keeps its epoch from one transaction to the next). The highest epoch
/// is remembered per shard from then on.
fn fenced(shard: &Shard, coordinator: u32, coordinator_epoch: i32) -> bool {
    let in_metadata = shard
        .metadata()
        .topic(TXN_TOPIC)
        .and_then(|topic| topic.partition(coordinator))
        .map_or(0, |control| {
            i32::try_from(control.leader_epoch).unwrap_or(i32::MAX)
        });
    let mut seen = shard.txns.coordinator_epochs.borrow_mut();
    let newest = seen.entry(coordinator).or_insert(coordinator_epoch);
    *newest = (*newest).max(coordinator_epoch);
    let fenced = coordinator_epoch < (*newest).max(in_metadata);
    if fenced {
        tracing::warn!(
            coordinator,
            coordinator_epoch,
            newest = *newest,
            in_metadata,
            "a marker of a replaced transaction coordinator refused"
        );
    }
    fenced
}

/// Writes `markers` (one transaction's, from the coordinator of
/// `__transaction_state` partition `coordinator`) to their partitions'
/// leaders: each partition's result.
pub async fn write(
    shard: &Rc<Shard>,
    coordinator: u32,
    markers: &[Marker],
) -> Vec<(TopicPartition, MarkerResult)> {
    let metadata = shard.metadata();
    let mut results = Vec::new();
    let mut by_node: BTreeMap<NodeId, Vec<MarkerWrite>> = BTreeMap::new();
    for marker in markers {
        let tp = &marker.topic_partition;
        let topic = metadata.topic(&tp.topic);
        let exists = topic.is_some_and(|topic| {
            u32::try_from(tp.partition).is_ok_and(|p| p < topic.partition_count())
        });
        if !exists {
            results.push((tp.clone(), MarkerResult::PartitionGone));
            continue;
        }
        match topic.and_then(|topic| topic.leader(tp.partition as u32)) {
            Some(node) => by_node
                .entry(node)
                .or_default()
                .push(MarkerWrite::of(marker, coordinator)),
            None => results.push((tp.clone(), MarkerResult::Retriable)),
        }
    }
    let me = shard.config.node_id;
    // Other nodes' first, each in a task of its own, then this node's.
    let remote: Vec<_> = by_node
        .iter()
        .filter(|(node, _)| **node != me)
        .map(|(node, writes)| {
            let (shard, node, writes) = (shard.clone(), *node, writes.clone());
            glommio::spawn_local(async move { peer::write_markers(&shard, node, &writes).await })
        })
        .collect();
    if let Some(writes) = by_node.get(&me) {
        let answers = write_here(shard, writes).await;
        for (write, answer) in writes.iter().zip(answers) {
            if let Err(failure) = &answer {
                tracing::debug!(topic = %write.topic, partition = write.partition, %failure, "a marker not written");
            }
            let code = marker_code(&answer);
            let tp = TopicPartition::new(write.topic.clone(), write.partition);
            results.push((tp, marker_result(code)));
        }
    }
    for task in remote {
        results.extend(task.await);
    }
    results
}

/// Appends the marker of each of `writes` to its partition, which this
/// node must lead, all at once; each answers once its partition's in-sync
/// replicas hold it. On a partition of `__consumer_offsets`, the
/// transaction's offset commits there are then completed.
pub async fn write_here(shard: &Rc<Shard>, writes: &[MarkerWrite]) -> Vec<Result<(), Failure>> {
    let metadata = shard.metadata();
    let parts = writes
        .iter()
        .map(|write| {
            let partition = u32::try_from(write.partition).map_err(|_| {
                Failure::new(ErrorKind::NoSuchPartition, "a negative partition index")
            })?;
            let routed = route(shard, &metadata, &write.topic, partition)?;
            let (shard, write) = (shard.clone(), write.clone());
            // Started now, so that every marker is on its way before any
            // answer is awaited.
            let task = glommio::spawn_local(async move {
                // On the partition's owner, which sees all its markers.
                let written = run_on(&shard, routed.owner, move |there| async move {
                    if let Some(coordinator) = write.coordinator {
                        if fenced(&there, coordinator, write.coordinator_epoch) {
                            return Err(Failure::new(
                                ErrorKind::CoordinatorFenced,
                                format!(
                                    "a marker of coordinator epoch {} of {TXN_TOPIC} partition {coordinator}: a newer coordinator has written",
                                    write.coordinator_epoch
                                ),
                            ));
                        }
                    }
                    let marker = match write.outcome {
                        Outcome::Commit => sluice_storage::batch::Marker::Commit,
                        Outcome::Abort => sluice_storage::batch::Marker::Abort,
                    };
                    ask(&there, routed, |reply| PartitionOp::WriteMarker {
                        producer_id: write.producer.id,
                        producer_epoch: write.producer.epoch,
                        marker,
                        coordinator_epoch: write.coordinator_epoch,
                        leader_epoch: routed.leader_epoch,
                        timeout: MARKER_TIMEOUT,
                        reply,
                    })
                    .await?;
                    // Durable: the group coordinator of an offsets
                    // partition commits or drops the transaction's
                    // offsets there.
                    if write.topic == OFFSETS_TOPIC {
                        transaction_ended(&there, routed.key, write.producer.id, marker);
                    }
                    Ok(())
                })
                .await;
                written.unwrap_or_else(|_| {
                    Err(Failure::new(ErrorKind::ShuttingDown, "the owner shard stopped"))
                })
            });
            let answer: Answer<Result<(), Failure>> = Box::pin(task);
            Ok(answer)
        })
        .collect();
    gather_all(parts).await
}

/// What a partition leader asks a transaction's coordinator (KIP-890).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joining {
    /// Part 1: is the producer's transaction ongoing, and does it hold the
    /// partitions? Writes nothing.
    Verify,
    /// Part 2: the partitions join the producer's transaction (which this
    /// starts if none is ongoing), as AddPartitionsToTxn would.
    Add,
}

/// KIP-890: each of `partitions` verified to be in `producer`'s ongoing
/// transaction `transactional_id`, or added to it, by its coordinator, on
/// this node or another.
pub async fn join(
    shard: &Rc<Shard>,
    transactional_id: &str,
    producer: Producer,
    partitions: Vec<TopicPartition>,
    joining: Joining,
) -> Result<Verified, TxnError> {
    let node = routing::coordinator_node(shard, transactional_id).await?;
    if node != shard.config.node_id {
        return peer::join(shard, node, transactional_id, producer, partitions, joining).await;
    }
    let id = transactional_id.to_string();
    routing::on_coordinator(
        shard,
        transactional_id,
        move |there, partition| async move {
            match joining {
                Joining::Verify => driver::inspect(&there, partition, |core| {
                    core.verify_partitions(&id, producer, &partitions)
                }),
                Joining::Add => {
                    driver::call_when_settled(&there, partition, &id, |core, request, now| {
                        core.add_partitions(request, &id, producer, &partitions, now)
                    })
                    .await?;
                    Ok(partitions.into_iter().map(|tp| (tp, Ok(()))).collect())
                }
            }
        },
    )
    .await?
}

/// WriteTxnMarkers served: each marker of `request` (from the coordinator
/// of `__transaction_state` partition `coordinator`, or an operator's)
/// written here, each partition answered with `code` of its outcome.
pub async fn serve(
    shard: &Rc<Shard>,
    request: WriteTxnMarkersRequest,
    coordinator: Option<u32>,
    code: impl Fn(&Result<(), Failure>) -> i16,
) -> WriteTxnMarkersResponse {
    let mut results = Vec::new();
    for marker in request.markers {
        let producer = Producer::new(marker.producer_id.0, marker.producer_epoch);
        let outcome = if marker.transaction_result {
            Outcome::Commit
        } else {
            Outcome::Abort
        };
        let writes: Vec<MarkerWrite> = marker
            .topics
            .iter()
            .flat_map(|topic| {
                topic.partition_indexes.iter().map(|partition| MarkerWrite {
                    topic: topic.name.0.to_string(),
                    partition: *partition,
                    producer,
                    outcome,
                    coordinator_epoch: marker.coordinator_epoch,
                    coordinator,
                })
            })
            .collect();
        let answers = write_here(shard, &writes).await;
        let mut topics: Vec<WritableTxnMarkerTopicResult> = Vec::new();
        for (write, answer) in writes.iter().zip(answers) {
            let result = WritableTxnMarkerPartitionResult::default()
                .with_partition_index(write.partition)
                .with_error_code(code(&answer));
            match topics.last_mut() {
                Some(topic) if topic.name.0.as_str() == write.topic => {
                    topic.partitions.push(result)
                }
                _ => topics.push(
                    WritableTxnMarkerTopicResult::default()
                        .with_name(TopicName(StrBytes::from_string(write.topic.clone())))
                        .with_partitions(vec![result]),
                ),
            }
        }
        results.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(marker.producer_id)
                .with_topics(topics),
        );
    }
    WriteTxnMarkersResponse::default().with_markers(results)
}

/// A partition leader's question (KIP-890): each transaction of
/// `request` verified (`verify_only`, part 1) or added (part 2) by its
/// coordinator.
pub async fn serve_join(
    shard: &Rc<Shard>,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let mut results = Vec::new();
    for transaction in request.transactions {
        let partitions = partitions_of(&transaction.topics);
        let producer = Producer::new(transaction.producer_id.0, transaction.producer_epoch);
        let id = transaction.transactional_id.0.to_string();
        let joining = if transaction.verify_only {
            Joining::Verify
        } else {
            Joining::Add
        };
        let codes = match join(shard, &id, producer, partitions.clone(), joining).await {
            Ok(verified) => verified
                .into_iter()
                .map(|(_, result)| result.err().map_or(0, |e| txn_error_code(e, false)))
                .collect(),
            Err(error) => vec![txn_error_code(error, false); partitions.len()],
        };
        results.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(transaction.transactional_id)
                .with_topic_results(topic_results(&partitions, codes)),
        );
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
}

/// The partitions AddPartitionsToTxn names, topic by topic.
pub fn partitions_of(topics: &[AddPartitionsToTxnTopic]) -> Vec<TopicPartition> {
    topics
        .iter()
        .flat_map(|topic| {
            topic
                .partitions
                .iter()
                .map(|partition| TopicPartition::new(topic.name.0.to_string(), *partition))
        })
        .collect()
}

/// AddPartitionsToTxn's per-topic answer: each of `partitions` with its
/// code, grouped by topic in their order.
pub fn topic_results(
    partitions: &[TopicPartition],
    codes: Vec<i16>,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut results: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for (tp, code) in partitions.iter().zip(codes) {
        let result = AddPartitionsToTxnPartitionResult::default()
            .with_partition_index(tp.partition)
            .with_partition_error_code(code);
        match results.last_mut() {
            Some(topic) if topic.name.0.as_str() == tp.topic => {
                topic.results_by_partition.push(result)
            }
            _ => results.push(
                AddPartitionsToTxnTopicResult::default()
                    .with_name(TopicName(StrBytes::from_string(tp.topic.clone())))
                    .with_results_by_partition(vec![result]),
            ),
        }
    }
    results
}
