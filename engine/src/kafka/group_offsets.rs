//! Kafka's offsets APIs for groups of either protocol: OffsetCommit,
//! TxnOffsetCommit, OffsetFetch and OffsetDelete. Each request runs on its
//! group's coordinator shard ([`coordinator::on_coordinator`]), which
//! checks the committer (a classic member's generation or a
//! consumer-protocol member's epoch) and stores the offsets durably before
//! it answers.

use std::rc::Rc;

use kafka_protocol::messages::{
    offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic},
    offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic},
    offset_fetch_response::{
        OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
        OffsetFetchResponseTopic, OffsetFetchResponseTopics,
    },
    txn_offset_commit_response::{TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic},
    OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse,
    OffsetFetchRequest, OffsetFetchResponse, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};

use sluice_replication::txn::{Producer as TxnProducer, TopicPartition, TxnError};

use super::{group_code, group_error_code, str_bytes, text, topic_name};
use crate::{
    coordinator::{
        self,
        records::{Committed, OffsetKey},
        Committer, GroupError, OffsetToCommit, Producer, OFFSETS_TOPIC,
    },
    shard::Shard,
    txn::{self, markers::Joining},
};

pub async fn offset_commit(
    shard: &Rc<Shard>,
    request: OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    let group = text(&request.group_id.0);
    let committer = Committer {
        generation: request.generation_id_or_member_epoch,
        member_id: text(&request.member_id),
        instance_id: request.group_instance_id.as_ref().map(text),
    };
    let mut offsets = Vec::new();
    for topic in &request.topics {
        for partition in &topic.partitions {
            offsets.push(OffsetToCommit {
                topic: topic.name.0.to_string(),
                partition: partition.partition_index,
                offset: partition.committed_offset,
                leader_epoch: if version >= 6 {
                    partition.committed_leader_epoch
                } else {
                    -1
                },
                metadata: partition.committed_metadata.as_ref().map(text),
            });
        }
    }
    let count = offsets.len();
    let results = coordinator::on_coordinator(shard, &group.clone(), move |there| async move {
        coordinator::commit(&there, &group, committer, offsets).await
    })
    .await
    .and_then(|results| results)
    .unwrap_or_else(|error| vec![Err(error); count]);
    let mut results = results.into_iter();
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            OffsetCommitResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(
                    topic
                        .partitions
                        .iter()
                        .map(|partition| {
                            let result = results.next().unwrap_or(Ok(()));
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(partition.partition_index)
                                .with_error_code(group_code(&result))
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// TxnOffsetCommit (KIP-98; KIP-447's member fields from v3): offsets
/// committed in the producer's transaction, pending until its marker.
/// Before v5 the group must be in the transaction already
/// (AddOffsetsToTxn; verified with its coordinator, KIP-890 part 1); from
/// v5 (KIP-890 part 2) its client sends no AddOffsetsToTxn and the
/// group's offsets partition joins the transaction here.
pub async fn txn_offset_commit(
    shard: &Rc<Shard>,
    request: TxnOffsetCommitRequest,
    version: i16,
) -> TxnOffsetCommitResponse {
    let group = text(&request.group_id.0);
    let transactional_id = text(&request.transactional_id.0);
    let joining = if version >= 5 {
        Joining::Add
    } else {
        Joining::Verify
    };
    let committer = Committer {
        generation: request.generation_id,
        member_id: text(&request.member_id),
        instance_id: request.group_instance_id.as_ref().map(text),
    };
    let producer = Producer {
        id: request.producer_id.0,
        epoch: request.producer_epoch,
    };
    let mut offsets = Vec::new();
    for topic in &request.topics {
        for partition in &topic.partitions {
            offsets.push(OffsetToCommit {
                topic: topic.name.0.to_string(),
                partition: partition.partition_index,
                offset: partition.committed_offset,
                // -1 before v2, which has no leader epoch.
                leader_epoch: partition.committed_leader_epoch,
                metadata: partition.committed_metadata.as_ref().map(text),
            });
        }
    }
    let count = offsets.len();
    let results = coordinator::on_coordinator(shard, &group.clone(), move |there| async move {
        let join = |partition: i32| {
            let there = there.clone();
            let group = group.clone();
            async move {
                join_transaction(
                    &there,
                    &group,
                    &transactional_id,
                    producer,
                    partition,
                    joining,
                )
                .await
            }
        };
        coordinator::commit_transactional(&there, &group, committer, producer, join, offsets).await
    })
    .await
    .and_then(|results| results)
    .unwrap_or_else(|error| vec![Err(error); count]);
    let mut results = results.into_iter();
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(
                    topic
                        .partitions
                        .iter()
                        .map(|partition| {
                            let result = results.next().unwrap_or(Ok(()));
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(partition.partition_index)
                                .with_error_code(group_code(&result))
                        })
                        .collect(),
                )
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// KIP-890: the group's offsets partition `partition` verified to be in
/// `producer`'s ongoing transaction `transactional_id`, or added to it, by
/// the transaction's coordinator; its refusal in the terms TxnOffsetCommit
/// answers (a fenced producer, a previous transaction still ending, a
/// coordinator to ask again, or a group not in the transaction).
async fn join_transaction(
    shard: &Rc<Shard>,
    group: &str,
    transactional_id: &str,
    producer: Producer,
    partition: i32,
    joining: Joining,
) -> Result<(), GroupError> {
    let asker = TxnProducer::new(producer.id, producer.epoch);
    let offsets = TopicPartition::new(OFFSETS_TOPIC, partition);
    let joined = txn::markers::join(shard, transactional_id, asker, vec![offsets], joining)
        .await
        .and_then(|mut joined| joined.pop().map_or(Ok(()), |(_, result)| result));
    joined.map_err(|error| {
        tracing::debug!(%group, transactional_id, %error, ?joining, "transactional offsets refused");
        match error {
            TxnError::ProducerFenced | TxnError::InvalidProducerEpoch => {
                GroupError::InvalidProducerEpoch
            }
            TxnError::ConcurrentTransactions => GroupError::ConcurrentTransactions,
            error if error.is_retriable() => GroupError::CoordinatorNotAvailable,
            _ => GroupError::InvalidTxnState,
        }
    })
}

/// What OffsetFetch answers for one partition: its committed offset (if
/// any), or why not (a transaction's pending, with `require_stable`).
type FetchedOffset = Result<Option<Committed>, GroupError>;

/// The offsets of one group, as OffsetFetch answers them.
struct Fetched {
    error: Option<GroupError>,
    offsets: Vec<(OffsetKey, FetchedOffset)>,
}

async fn fetch_group(
    shard: &Rc<Shard>,
    group: String,
    partitions: Option<Vec<OffsetKey>>,
    require_stable: bool,
) -> Fetched {
    let result = coordinator::on_coordinator(shard, &group.clone(), move |there| async move {
        coordinator::fetch_offsets(&there, &group, partitions.as_deref(), require_stable)
    })
    .await;
    match result {
        Ok(offsets) => Fetched {
            error: None,
            offsets,
        },
        Err(error) => Fetched {
            error: Some(error),
            offsets: Vec::new(),
        },
    }
}

fn wanted(topics: impl Iterator<Item = (String, Vec<i32>)>) -> Vec<OffsetKey> {
    topics
        .flat_map(|(topic, partitions)| {
            partitions
                .into_iter()
                .filter(|partition| *partition >= 0)
                .map(move |partition| (topic.clone(), partition as u32))
        })
        .collect()
}

/// A topic's partitions and what is answered for each.
type PartitionOffsets = Vec<(u32, FetchedOffset)>;

/// Fetched offsets grouped by topic, in the order asked (or by name).
fn by_topic(offsets: Vec<(OffsetKey, FetchedOffset)>) -> Vec<(String, PartitionOffsets)> {
    let mut topics: Vec<(String, PartitionOffsets)> = Vec::new();
    for ((topic, partition), committed) in offsets {
        match topics.iter_mut().find(|(name, _)| *name == topic) {
            Some((_, partitions)) => partitions.push((partition, committed)),
            None => topics.push((topic, vec![(partition, committed)])),
        }
    }
    topics
}

/// The topics of an OffsetFetch answer, in either of its shapes (v0–7 and
/// v8+ name the same fields with different types).
macro_rules! fetched_topics {
    ($topic:ident, $partition:ident, $offsets:expr, $version:expr) => {
        by_topic($offsets)
            .into_iter()
            .map(|(topic, partitions)| {
                $topic::default()
                    .with_name(topic_name(&topic))
                    .with_partitions(
                        partitions
                            .into_iter()
                            .map(|(partition, fetched)| {
                                // Unstable: no offset, as Kafka answers.
                                let error = fetched.as_ref().err().copied();
                                let committed = fetched.ok().flatten();
                                let epoch = committed
                                    .as_ref()
                                    .filter(|_| $version >= 5)
                                    .map_or(-1, |c| c.leader_epoch);
                                $partition::default()
                                    .with_partition_index(partition as i32)
                                    .with_committed_offset(
                                        committed.as_ref().map_or(-1, |c| c.offset as i64),
                                    )
                                    .with_committed_leader_epoch(epoch)
                                    .with_metadata(Some(str_bytes(
                                        committed.map(|c| c.metadata).unwrap_or_default(),
                                    )))
                                    .with_error_code(error.map_or(0, group_error_code))
                            })
                            .collect(),
                    )
            })
            .collect()
    };
}

/// OffsetFetch. From v7 a client may ask for stable offsets only
/// (`require_stable`, KIP-447, for every group asked at v8+): a partition
/// a transaction has an offset pending of is then answered
/// UNSTABLE_OFFSET_COMMIT, and the client asks again.
pub async fn offset_fetch(
    shard: &Rc<Shard>,
    request: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    // Decoded false before v7.
    let require_stable = request.require_stable;
    if version >= 8 {
        let mut groups_out = Vec::new();
        for group in request.groups {
            let partitions = group.topics.as_ref().map(|topics| {
                wanted(
                    topics
                        .iter()
                        .map(|t| (t.name.0.to_string(), t.partition_indexes.clone())),
                )
            });
            let fetched = fetch_group(
                shard,
                group.group_id.0.to_string(),
                partitions,
                require_stable,
            )
            .await;
            groups_out.push(
                OffsetFetchResponseGroup::default()
                    .with_group_id(group.group_id)
                    .with_error_code(fetched.error.map_or(0, group_error_code))
                    .with_topics(fetched_topics!(
                        OffsetFetchResponseTopics,
                        OffsetFetchResponsePartitions,
                        fetched.offsets,
                        version
                    )),
            );
        }
        return OffsetFetchResponse::default().with_groups(groups_out);
    }
    let partitions = request.topics.as_ref().map(|topics| {
        wanted(
            topics
                .iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes.clone())),
        )
    });
    let fetched = fetch_group(
        shard,
        request.group_id.0.to_string(),
        partitions,
        require_stable,
    )
    .await;
    let error = fetched.error.map_or(0, group_error_code);
    OffsetFetchResponse::default()
        .with_topics(fetched_topics!(
            OffsetFetchResponseTopic,
            OffsetFetchResponsePartition,
            fetched.offsets,
            version
        ))
        .with_error_code(if version >= 2 { error } else { 0 })
}
pub async fn offset_delete(
    shard: &Rc<Shard>,
    request: OffsetDeleteRequest,
    _version: i16,
) -> OffsetDeleteResponse {
    let group = request.group_id.0.to_string();
    let partitions: Vec<OffsetKey> = request
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(move |partition| {
                (
                    topic.name.0.to_string(),
                    partition.partition_index.max(0) as u32,
                )
            })
        })
        .collect();
    let results = coordinator::on_coordinator(shard, &group.clone(), move |there| async move {
        coordinator::delete_offsets(&there, &group, partitions).await
    })
    .await
    .and_then(|results| results);
    let results = match results {
        Ok(results) => results,
        Err(error) => {
            return OffsetDeleteResponse::default().with_error_code(group_error_code(error))
        }
    };
    let mut results = results.into_iter();
    OffsetDeleteResponse::default().with_topics(
        request
            .topics
            .iter()
            .map(|topic| {
                OffsetDeleteResponseTopic::default()
                    .with_name(topic.name.clone())
                    .with_partitions(
                        topic
                            .partitions
                            .iter()
                            .map(|partition| {
                                OffsetDeleteResponsePartition::default()
                                    .with_partition_index(partition.partition_index)
                                    .with_error_code(group_code(&results.next().unwrap_or(Ok(()))))
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}
