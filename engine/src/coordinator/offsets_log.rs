//! The group coordinator's log: `__consumer_offsets`, one partition per
//! shard. Records are appended durably before what they say is applied to
//! memory ([`persist`]); a partition is compacted once enough was appended
//! since its last snapshot ([`compact`]); at start each shard replays the
//! partitions it owns ([`recover`]).

use std::{collections::HashMap, rc::Rc};

use sluice_storage::{batch::BatchBuilder, log::Log};

use super::{
    error::GroupError, records::GroupRecord, routing::offsets_partition, Group, OFFSETS_TOPIC,
};
use crate::{partition::PartitionKey, shard::Shard};

/// Records per batch of a snapshot.
const SNAPSHOT_BATCH_RECORDS: usize = 4096;

pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as i64)
}

/// The log of `group`'s offsets partition, which must be this shard's.
fn offsets_log(shard: &Shard, group: &str) -> Result<(PartitionKey, Rc<Log>), GroupError> {
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

fn batch_of(records: &[GroupRecord]) -> sluice_storage::batch::Batch {
    let mut builder = BatchBuilder::with_capacity(256 * records.len());
    let now = now_ms();
    for record in records {
        let (key, value) = record.encode();
        builder.push(now, Some(&key), &value, &[]);
    }
    builder.finish()
}

/// Appends `records` for `group` to its offsets partition (this shard's),
/// durably. The caller applies them to memory while it holds the guard
/// returned, so a compaction never snapshots memory without them.
pub(super) async fn persist<'a>(
    shard: &'a Rc<Shard>,
    group: &str,
    records: &[GroupRecord],
) -> Result<Option<glommio::sync::RwLockReadGuard<'a, ()>>, GroupError> {
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
    let batch = batch_of(records);
    let bytes = batch.len() as u64;
    log.append(batch).await.map_err(|error| {
        tracing::warn!(%group, %error, "committed offsets not stored");
        GroupError::StorageError
    })?;
    let due = {
        let mut appended = shard.groups.appended.borrow_mut();
        let entry = appended.entry(partition).or_insert((0, false));
        entry.0 += bytes;
        // Compacted once this much was appended since the last snapshot:
        // every live record of its groups written again, the rest deleted
        // (DeleteRecords). Replay at start reads about this plus a snapshot.
        let due = entry.0 >= shard.config.group_offsets_compact_bytes && !entry.1;
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
    Ok(Some(guard))
}

/// Compacts the offsets partition of `group`: a snapshot of every live
/// record of the groups on it, then the log start moved to the snapshot.
async fn compact(shard: &Rc<Shard>, group: &str) {
    let Ok((key, log)) = offsets_log(shard, group) else {
        return;
    };
    let partition = key.partition.0;
    let outcome: Result<u64, String> =
        async {
            let _exclusive = shard
                .groups
                .compacting
                .write()
                .await
                .map_err(|error| error.to_string())?;
            let metadata = shard.metadata();
            let live: Vec<GroupRecord> =
                {
                    let groups = shard.groups.groups.borrow();
                    groups
                        .values()
                        .filter(|group| {
                            offsets_partition(shard, &metadata, &group.id)
                                .is_some_and(|(_, key)| key.partition.0 == partition)
                        })
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
            for chunk in live.chunks(SNAPSHOT_BATCH_RECORDS) {
                let appended = log
                    .append(batch_of(chunk))
                    .await
                    .map_err(|error| error.to_string())?;
                first.get_or_insert(appended.base_offset);
            }
            // Nothing live: everything before the end can go.
            let start = first.unwrap_or_else(|| log.visible_end());
            log.delete_records(start)
                .await
                .map_err(|error| error.to_string())?;
            Ok(live.len() as u64)
        }
        .await;
    let mut appended = shard.groups.appended.borrow_mut();
    let entry = appended.entry(partition).or_insert((0, false));
    entry.1 = false;
    match outcome {
        Ok(records) => {
            entry.0 = 0;
            tracing::info!(partition, records, "consumer offsets compacted");
        }
        Err(error) => tracing::warn!(partition, %error, "consumer offsets not compacted"),
    }
}

pub(super) fn apply(groups: &mut HashMap<String, Group>, record: GroupRecord) {
    match record {
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
                    entry.offsets.insert(key, committed);
                }
                None => {
                    entry.offsets.remove(&key);
                }
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

/// Rebuilds this shard's groups from the offsets partitions it owns.
pub async fn recover(shard: &Rc<Shard>) -> Result<usize, String> {
    let metadata = shard.metadata();
    let Some(topic) = metadata.topic(OFFSETS_TOPIC) else {
        return Ok(0);
    };
    let mut applied = 0;
    for partition in 0..topic.partition_count() {
        let key = PartitionKey::new(topic.id, partition);
        let Some(log) = shard.partitions.borrow().get(&key).cloned() else {
            continue;
        };
        applied += replay(shard, &log).await?;
        shard
            .groups
            .appended
            .borrow_mut()
            .insert(partition, (log.size_bytes(), false));
    }
    Ok(applied)
}

async fn replay(shard: &Rc<Shard>, log: &Log) -> Result<usize, String> {
    let mut offset = log.start_offset();
    let end = log.visible_end();
    let mut applied = 0;
    while offset < end {
        let batches = log
            .read(offset, 1 << 20)
            .await
            .map_err(|error| format!("{OFFSETS_TOPIC}: {error}"))?;
        let Some(last) = batches.last() else {
            break;
        };
        offset = last.last_offset().next();
        let mut groups = shard.groups.groups.borrow_mut();
        for batch in &batches {
            let Ok(records) = batch.records() else {
                tracing::warn!(
                    offset = batch.base_offset().0,
                    "an offsets batch does not read; skipped"
                );
                continue;
            };
            for record in records.iter() {
                if let Some(decoded) =
                    GroupRecord::decode(record.key().unwrap_or_default(), record.value())
                {
                    apply(&mut groups, decoded);
                    applied += 1;
                }
            }
        }
    }
    Ok(applied)
}
