//! Committed offsets: commit (by a member, or for a group without
//! members, or in a transaction: see [`super::transactional`]), end a
//! transaction's, read (stable ones only if asked: none a transaction has
//! pending), reset by an operator, delete (one group's, or some
//! partitions'). Each runs on the group's coordinator shard and writes
//! through [`super::offsets_log`] before it answers.

use std::rc::Rc;

use sluice_storage::{batch::Marker, Offset};

use super::{
    classic, consumer,
    error::GroupError,
    offsets_log::{apply, now_ms, offsets_log, persist, InTransaction, Persisted},
    records::{Committed, GroupRecord, OffsetKey},
    routing::offsets_partition,
    transactional::{self, apply_pending, end_if_loaded, Producer},
    Committer, Group, OffsetToCommit,
};
use crate::{cluster_metadata::Metadata, partition::PartitionKey, shard::Shard};

/// Metadata stored with a committed offset is at most this long (Kafka's
/// `offset.metadata.max.bytes`).
pub const OFFSET_METADATA_BYTES_MAX: usize = 4096;

/// Commits offsets for `group`; runs on its coordinator shard. The
/// group-level error, or one result per offset, in order.
pub async fn commit(
    shard: &Rc<Shard>,
    group: &str,
    committer: Committer,
    offsets: Vec<OffsetToCommit>,
) -> Result<Vec<Result<(), GroupError>>, GroupError> {
    {
        let groups = shard.groups.groups.borrow();
        if let Some(existing) = groups.get(group) {
            if existing.consumer.is_empty() {
                classic::check_committer(existing, &committer)?;
            } else {
                consumer::check_committer(existing, &committer, &offsets)?;
            }
        } else if !committer.member_id.is_empty() {
            return Err(GroupError::UnknownMemberId);
        }
    }
    let (results, records) = records_of(&shard.metadata(), group, &offsets);
    let Some(persisted) = persist(shard, group, &records, None).await? else {
        return Ok(results);
    };
    let mut groups = shard.groups.groups.borrow_mut();
    let entry = groups
        .entry(group.to_string())
        .or_insert_with(|| Group::new(group));
    for (index, written) in records.into_iter().enumerate() {
        if let GroupRecord::Offset {
            key,
            committed: Some(committed),
            ..
        } = written
        {
            entry.set_committed(key, committed, record_at(&persisted, index));
        }
    }
    Ok(results)
}

/// The records committing `offsets` of `group`, and the result of each
/// offset, in order: those refused ([`check_offset`]) have no record.
fn records_of(
    metadata: &Metadata,
    group: &str,
    offsets: &[OffsetToCommit],
) -> (Vec<Result<(), GroupError>>, Vec<GroupRecord>) {
    let now = now_ms();
    let mut results = Vec::with_capacity(offsets.len());
    let mut records = Vec::new();
    for offset in offsets {
        let checked = check_offset(metadata, offset);
        if checked.is_ok() {
            records.push(GroupRecord::Offset {
                group: group.to_string(),
                key: (offset.topic.clone(), offset.partition as u32),
                committed: Some(Committed {
                    offset: offset.offset as u64,
                    leader_epoch: offset.leader_epoch,
                    metadata: offset.metadata.clone().unwrap_or_default(),
                    commit_time: now,
                }),
            });
        }
        results.push(checked);
    }
    (results, records)
}

/// Where the record `index` of the batch persisted is in the log.
fn record_at(persisted: &Persisted<'_>, index: usize) -> Offset {
    Offset(persisted.base_offset.0 + index as u64)
}

/// Why `offset` cannot be committed: a partition that does not exist, a
/// negative offset, metadata over [`OFFSET_METADATA_BYTES_MAX`].
fn check_offset(metadata: &Metadata, offset: &OffsetToCommit) -> Result<(), GroupError> {
    let known = metadata.topic(&offset.topic).is_some_and(|topic| {
        offset.partition >= 0 && (offset.partition as u32) < topic.partition_count()
    });
    if !known {
        return Err(GroupError::UnknownTopicOrPartition);
    }
    if offset.offset < 0 {
        return Err(GroupError::InvalidCommitOffset);
    }
    if offset
        .metadata
        .as_ref()
        .is_some_and(|m| m.len() > OFFSET_METADATA_BYTES_MAX)
    {
        return Err(GroupError::OffsetMetadataTooLarge);
    }
    Ok(())
}

/// The committed offsets of `group`: of `partitions`, or all of them.
pub fn committed(
    shard: &Shard,
    group: &str,
    partitions: Option<&[OffsetKey]>,
) -> Vec<(OffsetKey, Option<Committed>)> {
    let groups = shard.groups.groups.borrow();
    let offsets = groups.get(group).map(|group| &group.offsets);
    match partitions {
        Some(partitions) => partitions
            .iter()
            .map(|key| (key.clone(), offsets.and_then(|o| o.get(key)).cloned()))
            .collect(),
        None => offsets
            .map(|offsets| {
                offsets
                    .iter()
                    .map(|(key, committed)| (key.clone(), Some(committed.clone())))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The offsets of `group` as OffsetFetch answers them: [`committed`], and
/// when `require_stable` (KIP-447), [`GroupError::UnstableOffsetCommit`]
/// for a partition an open transaction committed an offset of, as Kafka's
/// coordinator answers (the client asks again once the transaction ended).
/// Asked for all partitions, those with a committed offset.
pub fn fetch_offsets(
    shard: &Shard,
    group: &str,
    partitions: Option<&[OffsetKey]>,
    require_stable: bool,
) -> Vec<(OffsetKey, Result<Option<Committed>, GroupError>)> {
    let offsets = committed(shard, group, partitions);
    let groups = shard.groups.groups.borrow();
    let pending = |key: &OffsetKey| {
        require_stable
            && groups
                .get(group)
                .is_some_and(|group| group.transactional.is_pending(key))
    };
    offsets
        .into_iter()
        .map(|(key, committed)| {
            let answer = if pending(&key) {
                Err(GroupError::UnstableOffsetCommit)
            } else {
                Ok(committed)
            };
            (key, answer)
        })
        .collect()
}

/// Deletes `group` with its offsets; only when it has no members.
pub async fn delete_group(shard: &Rc<Shard>, group: &str) -> Result<(), GroupError> {
    let keys: Vec<OffsetKey> = {
        let groups = shard.groups.groups.borrow();
        let Some(existing) = groups.get(group) else {
            return Err(GroupError::GroupIdNotFound);
        };
        if !existing.members.is_empty() || !existing.consumer.is_empty() {
            return Err(GroupError::NonEmptyGroup);
        }
        existing.offsets.keys().cloned().collect()
    };
    let mut records: Vec<GroupRecord> = keys
        .into_iter()
        .map(|key| GroupRecord::Offset {
            group: group.to_string(),
            key,
            committed: None,
        })
        .collect();
    records.push(GroupRecord::Group {
        group: group.to_string(),
        protocol_type: None,
    });
    let _persisted = persist(shard, group, &records, None).await?;
    let mut groups = shard.groups.groups.borrow_mut();
    if groups
        .get(group)
        .is_some_and(|existing| existing.members.is_empty() && existing.consumer.is_empty())
    {
        groups.remove(group);
    }
    Ok(())
}

/// Deletes committed offsets of `group` for topics it is not subscribed to.
pub async fn delete_offsets(
    shard: &Rc<Shard>,
    group: &str,
    partitions: Vec<OffsetKey>,
) -> Result<Vec<Result<(), GroupError>>, GroupError> {
    let (results, records) = {
        let groups = shard.groups.groups.borrow();
        let Some(existing) = groups.get(group) else {
            return Err(GroupError::GroupIdNotFound);
        };
        let subscribed = existing.subscribed_topics();
        let mut results = Vec::new();
        let mut records = Vec::new();
        for key in partitions {
            if subscribed.contains(&key.0) {
                results.push(Err(GroupError::GroupSubscribedToTopic));
                continue;
            }
            // A tombstone also for an offset only a transaction committed,
            // as Kafka writes: the transaction's commit then leaves the
            // partition deleted.
            if existing.offsets.contains_key(&key) || existing.transactional.is_pending(&key) {
                records.push(GroupRecord::Offset {
                    group: group.to_string(),
                    key,
                    committed: None,
                });
            }
            results.push(Ok(()));
        }
        (results, records)
    };
    let Some(persisted) = persist(shard, group, &records, None).await? else {
        return Ok(results);
    };
    let mut groups = shard.groups.groups.borrow_mut();
    for (index, written) in records.into_iter().enumerate() {
        apply(&mut groups, written, record_at(&persisted, index));
    }
    Ok(results)
}

/// Sets committed offsets of an empty group (an operator's reset).
pub async fn reset_offsets(
    shard: &Rc<Shard>,
    group: &str,
    offsets: Vec<(OffsetKey, u64)>,
) -> Result<(), GroupError> {
    let committer = Committer {
        generation: -1,
        member_id: String::new(),
        instance_id: None,
    };
    {
        let groups = shard.groups.groups.borrow();
        if groups
            .get(group)
            .is_some_and(|existing| !existing.members.is_empty() || !existing.consumer.is_empty())
        {
            return Err(GroupError::NonEmptyGroup);
        }
    }
    let offsets = offsets
        .into_iter()
        .map(|((topic, partition), offset)| OffsetToCommit {
            topic,
            partition: partition as i32,
            offset: offset as i64,
            leader_epoch: -1,
            metadata: None,
        })
        .collect();
    for result in commit(shard, group, committer, offsets).await? {
        result?;
    }
    Ok(())
}

/// Commits `offsets` of `group` in the transaction of `producer` (Kafka's
/// TxnOffsetCommit); runs on the group's coordinator shard. They are
/// stored durably as one transactional batch of the producer's and kept
/// pending until the transaction's marker ends them
/// ([`transaction_ended`]). Where the producer has no transaction open on
/// the group's offsets partition, `join` is called first with that
/// partition's index (KIP-890: the caller asks the transaction's
/// coordinator to verify that the partition is in the transaction, or to
/// add it), and the batch is appended only if no marker of the producer
/// came meanwhile. The group-level error, or one result per offset, in
/// order.
pub async fn commit_transactional<J, Joined>(
    shard: &Rc<Shard>,
    group: &str,
    committer: Committer,
    producer: Producer,
    join: J,
    offsets: Vec<OffsetToCommit>,
) -> Result<Vec<Result<(), GroupError>>, GroupError>
where
    J: FnOnce(i32) -> Joined,
    Joined: std::future::Future<Output = Result<(), GroupError>>,
{
    if producer.id < 0 || producer.epoch < 0 {
        return Err(GroupError::InvalidRequest);
    }
    {
        let groups = shard.groups.groups.borrow();
        transactional::check_committer(groups.get(group), &committer, &offsets)?;
    }
    if shard
        .groups
        .open
        .borrow()
        .epoch(producer.id)
        .is_some_and(|epoch| producer.epoch < epoch)
    {
        return Err(GroupError::InvalidProducerEpoch);
    }
    let (results, records) = records_of(&shard.metadata(), group, &offsets);
    if records.is_empty() {
        return Ok(results);
    }
    let (key, log) = offsets_log(shard, group)?;
    let guard = log.transaction_guard(producer.id, producer.epoch);
    if guard.is_some() {
        join(key.partition.0 as i32).await?;
    }
    let transaction = InTransaction { producer, guard };
    let Some(persisted) = persist(shard, group, &records, Some(transaction)).await? else {
        return Ok(results);
    };
    // Its transaction's coordinator may have ended the transaction while
    // the batch was replicated (aborted it on a timeout): the marker, after
    // the batch in the log, then left nothing of it pending, and a load
    // reads it so.
    let still_open = persisted
        .log
        .open_transactions()
        .iter()
        .any(|&(id, _, first)| id == producer.id && first <= persisted.base_offset);
    if !still_open {
        tracing::debug!(
            %group, producer_id = producer.id,
            "transactional offsets stored after their transaction ended"
        );
        return Ok(results);
    }
    let mut groups = shard.groups.groups.borrow_mut();
    let mut open = shard.groups.open.borrow_mut();
    for (index, written) in records.into_iter().enumerate() {
        let record = record_at(&persisted, index);
        apply_pending(&mut groups, &mut open, producer, written, record);
    }
    Ok(results)
}

/// Ends the transaction of `producer_id` in the groups of offsets
/// partition `key` as `marker` says: a commit makes the offsets it
/// committed for them the committed ones (each unless a later record in
/// the log committed its partition), an abort drops them. Called on the
/// partition's owner shard once the transaction's marker is durable in the
/// partition's log (its in-sync replicas hold it); a second call for the
/// same marker changes nothing. A partition this node does not lead, or
/// is still reading back, is left alone: its load reads the marker from
/// the log. The number of offsets ended.
pub(crate) fn transaction_ended(
    shard: &Shard,
    key: PartitionKey,
    producer_id: i64,
    marker: Marker,
) -> usize {
    let held = shard.groups.held.borrow().get(&key.partition.0).copied();
    let metadata = shard.metadata();
    let on_partition =
        |group: &str| offsets_partition(shard, &metadata, group).is_some_and(|(_, of)| of == key);
    let ended = end_if_loaded(
        held,
        shard.replicas.leadership(key),
        &mut shard.groups.groups.borrow_mut(),
        &mut shard.groups.open.borrow_mut(),
        producer_id,
        marker,
        on_partition,
    );
    tracing::debug!(%key, producer_id, ?marker, ended, "transactional offsets ended");
    ended
}
