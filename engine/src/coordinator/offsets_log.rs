//! The group coordinator's log: `__consumer_offsets`, one partition per
//! shard of each broker, each replicated as other topics are. Records are
//! appended by the partition's leader, and what they say is applied to
//! memory once the in-sync replicas hold them (acks=all) ([`persist`]).
//! The topic is compacted (`cleanup.policy=compact`, as Kafka's is): each
//! record is keyed by group, and topic and partition for an offset, and a
//! deletion is a tombstone, so the partition's cleaner keeps the latest
//! record of each key. A partition created before, without that policy, is
//! compacted here instead once enough was appended since its last snapshot
//! ([`compact`]; not while a transaction has offsets pending), the
//! snapshot committed before the log start moves past what it replaces.
//! A transaction's offsets are a transactional batch of its producer's
//! ([`super::transactional`]). Reading a partition back when this node
//! comes to lead it is [`super::holding`]'s.

use std::{collections::HashMap, rc::Rc, time::Duration};

use sluice_storage::{
    batch::filter::{kafka_batch, transactional_kafka_batch, KeyValue},
    log::{AppendError, Log},
    Offset,
};

use super::{
    error::GroupError, records::GroupRecord, routing::offsets_partition, transactional::Producer,
    Group,
};
use crate::{
    error::{ErrorKind, Failure},
    partition::{Acks, PartitionKey},
    shard::Shard,
};

/// How long a write of the coordinator waits for the in-sync replicas of
/// its offsets partition to hold it before the client is told to try
/// again (Kafka's `offsets.commit.timeout.ms`).
const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Records per batch of a snapshot.
const SNAPSHOT_BATCH_RECORDS: usize = 4096;

pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as i64)
}

/// The log of `group`'s offsets partition, which must be this shard's.
pub(super) fn offsets_log(
    shard: &Shard,
    group: &str,
) -> Result<(PartitionKey, Rc<Log>), GroupError> {
    let (owner, key) = offsets_partition(shard, &shard.metadata(), group)
        .ok_or(GroupError::CoordinatorNotAvailable)?;
    if owner != shard.id {
        return Err(GroupError::CoordinatorNotAvailable);
    }
    let log = shard
        .partitions
        .borrow()
        .get(&key)
        .cloned()
        .ok_or(GroupError::CoordinatorNotAvailable)?;
    Ok((key, log))
}

/// The records as one Kafka batch, a deletion (an empty value) as a
/// tombstone (a null value), so that the partition's cleaner keeps the
/// latest record of each key and, after `delete.retention.ms`, forgets the
/// deleted ones (`__consumer_offsets` is compacted, as Kafka's is). A
/// transaction's (`producer`'s) is transactional, without a sequence, as
/// Kafka's coordinator writes it: the log opens the producer's transaction
/// with it, never takes it for a retry, and the cleaner keeps it whole.
fn batch_of(
    records: &[GroupRecord],
    producer: Option<Producer>,
) -> Result<sluice_storage::batch::Batch, GroupError> {
    let encoded: Vec<(Vec<u8>, Vec<u8>)> = records.iter().map(GroupRecord::encode).collect();
    let pairs: Vec<KeyValue<'_>> = encoded
        .iter()
        .map(|(key, value)| (Some(&key[..]), (!value.is_empty()).then_some(&value[..])))
        .collect();
    let batch = match producer {
        None => kafka_batch(&pairs, 0, now_ms()),
        Some(producer) => {
            transactional_kafka_batch(&pairs, 0, now_ms(), producer.id, producer.epoch)
        }
    };
    batch.map_err(|error| {
        tracing::warn!(%error, records = records.len(), "coordinator records do not make a batch");
        GroupError::StorageError
    })
}

/// Records appended to an offsets partition and held by its in-sync
/// replicas.
pub(super) struct Persisted<'a> {
    /// Held while they are applied to memory, so that a compaction never
    /// snapshots memory without them.
    _guard: glommio::sync::RwLockReadGuard<'a, ()>,
    /// Where the first is in the log; the others follow it.
    pub base_offset: Offset,
    /// The partition's log.
    pub log: Rc<Log>,
}

/// A transaction's offsets: its producer, and the guard its offsets
/// partition gave when the producer had no transaction open there (see
/// [`Log::append_to_transaction`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct InTransaction {
    pub producer: Producer,
    pub guard: Option<u64>,
}

/// Appends `records` for `group` to its offsets partition (this shard's),
/// durably, in the transaction `transaction` if one is given. The caller
/// applies them to memory while it holds what is returned (`None` for no
/// records).
pub(super) async fn persist<'a>(
    shard: &'a Rc<Shard>,
    group: &str,
    records: &[GroupRecord],
    transaction: Option<InTransaction>,
) -> Result<Option<Persisted<'a>>, GroupError> {
    if records.is_empty() {
        return Ok(None);
    }
    let guard = shard
        .groups
        .compacting
        .read()
        .await
        .map_err(|_| GroupError::CoordinatorNotAvailable)?;
    let (key, log) = offsets_log(shard, group)?;
    let partition = key.partition.0;
    let batch = batch_of(records, transaction.map(|t| t.producer))?;
    let bytes = batch.len() as u64;
    // Only the leader appends, and only while enough replicas are in sync
    // to commit it; nothing yields between this and the append.
    shard
        .replicas
        .admit(key, Acks::All)
        .map_err(|failure| refused(group, &failure))?;
    let appended = match transaction {
        None => log.append(batch).await,
        Some(transaction) => log.append_to_transaction(batch, transaction.guard).await,
    };
    let appended = appended.map_err(|error| match error {
        AppendError::Unverified { .. } | AppendError::NotInTransaction { .. } => {
            GroupError::InvalidTxnState
        }
        error => {
            tracing::warn!(%group, %error, "committed offsets not stored");
            GroupError::StorageError
        }
    })?;
    shard.replicas.touched(key);
    replicated(shard, key, appended.last_offset.next()).await?;
    let due = {
        let mut appended = shard.groups.appended.borrow_mut();
        let entry = appended.entry(partition).or_insert((0, false));
        entry.0 += bytes;
        // Compacted once this much was appended since the last snapshot:
        // every live record of its groups written again, the rest deleted
        // (DeleteRecords). Replay at start reads about this plus a snapshot.
        // A partition created compacted (`cleanup.policy=compact`, every
        // one since compaction exists) is left to its cleaner.
        let due = entry.0 >= shard.config.group_offsets_compact_bytes
            && !entry.1
            && !log.config().cleanup_policy.compact;
        if due {
            entry.1 = true;
        }
        due
    };
    if due {
        let shard = shard.clone();
        let group = group.to_string();
        glommio::spawn_local(async move { compact(&shard, &group).await }).detach();
    }
    Ok(Some(Persisted {
        _guard: guard,
        base_offset: appended.base_offset,
        log,
    }))
}

/// Why a write of the coordinator is refused, in the terms its clients
/// retry on, as Kafka's coordinator answers them: another node leads the
/// partition (find the coordinator again), or too few replicas are in sync
/// or they did not all hold it in time (try again).
fn refused(group: &str, failure: &Failure) -> GroupError {
    tracing::debug!(%group, %failure, "a write of the group coordinator refused");
    match failure.kind {
        ErrorKind::NotLeader => GroupError::NotCoordinator,
        ErrorKind::NotEnoughReplicas | ErrorKind::TimedOut => GroupError::CoordinatorNotAvailable,
        _ => GroupError::StorageError,
    }
}

/// Waits until the in-sync replicas of offsets partition `key` hold
/// everything below `end` (at once for a partition of one replica), at
/// most [`COMMIT_TIMEOUT`].
async fn replicated(shard: &Shard, key: PartitionKey, end: Offset) -> Result<(), GroupError> {
    let Some(committed) = shard.replicas.committed(key, end) else {
        return Ok(());
    };
    let timed_out = async {
        glommio::timer::sleep(COMMIT_TIMEOUT).await;
        None
    };
    match futures_lite::future::or(async { Some(committed.await) }, timed_out).await {
        Some(Ok(())) => Ok(()),
        // This node stopped leading it: the new leader coordinates.
        Some(Err(_)) => Err(GroupError::NotCoordinator),
        // It may still be committed; the client asks again.
        None => Err(GroupError::CoordinatorNotAvailable),
    }
}

/// Compacts the offsets partition of `group`: a snapshot of every live
/// record of the groups on it, then the log start moved to the snapshot.
///
/// Not while a transaction has offsets pending on it: the snapshot's
/// records would come after the transaction's in the log, so that, the
/// later record winning, a commit of the transaction would lose to the
/// snapshot's copies of the offsets it replaces; and moving the log start
/// past them would delete the transaction's records themselves. It is
/// tried again once as many bytes more were appended.
async fn compact(shard: &Rc<Shard>, group: &str) {
    let Ok((key, log)) = offsets_log(shard, group) else {
        return;
    };
    let partition = key.partition.0;
    // The number of records of the snapshot; `None`: not now.
    let outcome: Result<Option<u64>, String> =
        async {
            let _exclusive = shard
                .groups
                .compacting
                .write()
                .await
                .map_err(|error| error.to_string())?;
            let metadata = shard.metadata();
            let on_partition = |group: &&Group| {
                offsets_partition(shard, &metadata, &group.id)
                    .is_some_and(|(_, key)| key.partition.0 == partition)
            };
            let live: Vec<GroupRecord> =
                {
                    let groups = shard.groups.groups.borrow();
                    if groups
                        .values()
                        .filter(on_partition)
                        .any(|group| !group.transactional.is_empty())
                    {
                        return Ok(None);
                    }
                    groups
                        .values()
                        .filter(on_partition)
                        .flat_map(|group| {
                            let kind = group.protocol_type.clone().map(|protocol_type| {
                                GroupRecord::Group {
                                    group: group.id.clone(),
                                    protocol_type: Some(protocol_type),
                                }
                            });
                            kind.into_iter()
                                .chain(group.offsets.iter().map(|(key, committed)| {
                                    GroupRecord::Offset {
                                        group: group.id.clone(),
                                        key: key.clone(),
                                        committed: Some(committed.clone()),
                                    }
                                }))
                        })
                        .collect()
                };
            let mut first = None;
            let mut end = None;
            for chunk in live.chunks(SNAPSHOT_BATCH_RECORDS) {
                shard
                    .replicas
                    .admit(key, Acks::All)
                    .map_err(|failure| failure.to_string())?;
                let batch = batch_of(chunk, None).map_err(|error| error.to_string())?;
                let appended = log.append(batch).await.map_err(|error| error.to_string())?;
                first.get_or_insert(appended.base_offset);
                end = Some(appended.last_offset.next());
            }
            // The snapshot is committed before what it replaces goes: a
            // replica that leads next has one or the other.
            if let Some(end) = end {
                shard.replicas.touched(key);
                replicated(shard, key, end)
                    .await
                    .map_err(|error| format!("the snapshot was not replicated: {error}"))?;
            }
            // Nothing live: everything before the end can go.
            let start = first.unwrap_or_else(|| log.visible_end());
            log.delete_records(start)
                .await
                .map_err(|error| error.to_string())?;
            Ok(Some(live.len() as u64))
        }
        .await;
    let mut appended = shard.groups.appended.borrow_mut();
    let entry = appended.entry(partition).or_insert((0, false));
    entry.1 = false;
    match outcome {
        Ok(Some(records)) => {
            entry.0 = 0;
            tracing::info!(partition, records, "consumer offsets compacted");
        }
        Ok(None) => {
            entry.0 = 0;
            tracing::info!(
                partition,
                "consumer offsets not compacted while transactions have offsets pending"
            );
        }
        Err(error) => tracing::warn!(partition, %error, "consumer offsets not compacted"),
    }
}

/// Applies `written`, a record at `record` in the log outside any
/// transaction, to `groups`.
pub(super) fn apply(groups: &mut HashMap<String, Group>, written: GroupRecord, record: Offset) {
    match written {
        GroupRecord::Offset {
            group,
            key,
            committed,
        } => {
            let entry = groups
                .entry(group.clone())
                .or_insert_with(|| Group::new(&group));
            match committed {
                Some(committed) => {
                    entry.set_committed(key, committed, record);
                }
                None => entry.delete_offset(&key, record),
            }
            if entry.is_gone() {
                groups.remove(&group);
            }
        }
        GroupRecord::Group {
            group,
            protocol_type,
        } => match protocol_type {
            Some(protocol_type) => {
                let entry = groups
                    .entry(group.clone())
                    .or_insert_with(|| Group::new(&group));
                entry.protocol_type.get_or_insert(protocol_type);
            }
            None => {
                groups.remove(&group);
            }
        },
    }
}
