//! The group coordinator: consumer groups, their members and their committed
//! offsets.
//!
//! A group lives on one shard: the owner of its partition of the internal
//! topic `__consumer_offsets` (the partition is a hash of the group id).
//! Requests about a group, on whatever shard they arrive, run there
//! ([`on_coordinator`]). Committed offsets are appended to that partition,
//! durably, before they are acknowledged, and replayed from it at start
//! ([`recover`]); membership lives in memory (members rejoin after a
//! restart, as they do when a Kafka coordinator moves).
//!
//! The classic protocol's state machine is in [`classic`]: members join,
//! the leader assigns, everyone syncs, heartbeats keep members alive; a
//! member that joins, leaves or falls silent past its session timeout
//! starts a rebalance.

pub mod classic;
pub mod consumer;
pub mod lag;
pub mod records;

use std::{
    cell::RefCell,
    collections::{BTreeMap, HashMap},
    future::Future,
    rc::Rc,
    time::{Duration, Instant},
};

use futures_channel::oneshot;
use sluice_net::native::ErrorCode;
use sluice_storage::{batch::BatchBuilder, log::Log};

use crate::{
    cluster_metadata::Metadata,
    controller::{ControllerOp, NewTopicSpec},
    handlers::admin::to_controller,
    shard::{PartitionKey, Shard, ShardMessage},
};
pub use classic::Member;
use records::{Committed, GroupRecord, OffsetKey};

/// The internal topic of committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// A group id is at most this long (it is in every offset record's key).
pub const GROUP_ID_BYTES_MAX: usize = 1024;

/// Metadata stored with a committed offset is at most this long (Kafka's
/// `offset.metadata.max.bytes`).
pub const OFFSET_METADATA_BYTES_MAX: usize = 4096;

/// How often the coordinator looks for expired members and rebalances due.
const TICK: Duration = Duration::from_millis(100);

/// Why a group request failed, in Kafka's terms (the native protocol maps
/// them to its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupError {
    UnknownMemberId,
    IllegalGeneration,
    RebalanceInProgress,
    InconsistentGroupProtocol,
    MemberIdRequired,
    InvalidSessionTimeout,
    NonEmptyGroup,
    GroupIdNotFound,
    InvalidGroupId,
    UnknownTopicOrPartition,
    CoordinatorNotAvailable,
    FencedInstanceId,
    GroupSubscribedToTopic,
    OffsetMetadataTooLarge,
    InvalidCommitOffset,
    StorageError,
    StaleMemberEpoch,
    UnsupportedAssignor,
    UnreleasedInstanceId,
    FencedMemberEpoch,
    GroupMaxSizeReached,
    InvalidRequest,
}

impl GroupError {
    pub fn kafka_code(self) -> i16 {
        match self {
            GroupError::UnknownMemberId => 25,
            GroupError::IllegalGeneration => 22,
            GroupError::RebalanceInProgress => 27,
            GroupError::InconsistentGroupProtocol => 23,
            GroupError::MemberIdRequired => 79,
            GroupError::InvalidSessionTimeout => 26,
            GroupError::NonEmptyGroup => 68,
            GroupError::GroupIdNotFound => 69,
            GroupError::InvalidGroupId => 24,
            GroupError::UnknownTopicOrPartition => 3,
            GroupError::CoordinatorNotAvailable => 15,
            GroupError::FencedInstanceId => 82,
            GroupError::GroupSubscribedToTopic => 86,
            GroupError::OffsetMetadataTooLarge => 12,
            GroupError::InvalidCommitOffset => 28,
            GroupError::StorageError => 56,
            GroupError::StaleMemberEpoch => 113,
            GroupError::UnsupportedAssignor => 112,
            GroupError::UnreleasedInstanceId => 111,
            GroupError::FencedMemberEpoch => 110,
            GroupError::GroupMaxSizeReached => 81,
            GroupError::InvalidRequest => 42,
        }
    }

    pub fn native_code(self) -> ErrorCode {
        match self {
            GroupError::UnknownTopicOrPartition => ErrorCode::NoSuchPartition,
            GroupError::StorageError => ErrorCode::StorageFailed,
            GroupError::CoordinatorNotAvailable => ErrorCode::ShuttingDown,
            GroupError::GroupIdNotFound => ErrorCode::UnknownGroup,
            GroupError::NonEmptyGroup => ErrorCode::GroupNotEmpty,
            _ => ErrorCode::InvalidRequest,
        }
    }
}

impl std::fmt::Display for GroupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            GroupError::UnknownMemberId => "unknown member id",
            GroupError::IllegalGeneration => "illegal generation",
            GroupError::RebalanceInProgress => "rebalance in progress",
            GroupError::InconsistentGroupProtocol => "inconsistent group protocol",
            GroupError::MemberIdRequired => "member id required",
            GroupError::InvalidSessionTimeout => "invalid session timeout",
            GroupError::NonEmptyGroup => "the group has members",
            GroupError::GroupIdNotFound => "no such group",
            GroupError::InvalidGroupId => "invalid group id",
            GroupError::UnknownTopicOrPartition => "unknown topic or partition",
            GroupError::CoordinatorNotAvailable => "coordinator not available",
            GroupError::FencedInstanceId => "fenced instance id",
            GroupError::GroupSubscribedToTopic => "the group is subscribed to the topic",
            GroupError::OffsetMetadataTooLarge => "offset metadata too large",
            GroupError::InvalidCommitOffset => "invalid offset",
            GroupError::StorageError => "the offsets could not be stored",
            GroupError::StaleMemberEpoch => "stale member epoch",
            GroupError::UnsupportedAssignor => "unsupported assignor",
            GroupError::UnreleasedInstanceId => "unreleased instance id",
            GroupError::FencedMemberEpoch => "fenced member epoch",
            GroupError::GroupMaxSizeReached => "the group is full",
            GroupError::InvalidRequest => "invalid request",
        };
        f.write_str(text)
    }
}

/// A group's state, with Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// One group: its members (classic protocol), its committed offsets.
pub struct Group {
    pub id: String,
    pub state: GroupState,
    pub protocol_type: Option<String>,
    /// The protocol chosen at the last join (the assignor, for consumers).
    pub protocol: Option<String>,
    pub generation: i32,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Member ids handed out (KIP-394) and not yet used to join, with when
    /// they expire (the session timeout of the join that asked, as Kafka).
    pub pending: HashMap<String, Instant>,
    /// group.instance.id → member id, for static members.
    pub statics: HashMap<String, String>,
    pub offsets: BTreeMap<OffsetKey, Committed>,
    /// When a rebalance being prepared completes at the latest.
    pub rebalance_deadline: Option<Instant>,
    /// Whether the rebalance being prepared waits out the initial delay.
    pub initial_delay: bool,
    /// When the leader must have sent the assignment.
    pub sync_deadline: Option<Instant>,
    /// Its members under the consumer protocol (KIP-848); empty for a
    /// classic group.
    pub consumer: consumer::ConsumerGroup,
}

impl Group {
    pub fn new(id: &str) -> Group {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            protocol_type: None,
            protocol: None,
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            pending: HashMap::new(),
            statics: HashMap::new(),
            offsets: BTreeMap::new(),
            rebalance_deadline: None,
            initial_delay: false,
            sync_deadline: None,
            consumer: consumer::ConsumerGroup::default(),
        }
    }

    /// A group is forgotten once it has neither members nor offsets.
    fn is_gone(&self) -> bool {
        self.members.is_empty()
            && self.offsets.is_empty()
            && self.pending.is_empty()
            && self.consumer.is_empty()
    }

    /// The topics the group's members subscribe to (consumer groups).
    pub fn subscribed_topics(&self) -> std::collections::BTreeSet<String> {
        let mut topics = std::collections::BTreeSet::new();
        for member in self.members.values() {
            if let Some(metadata) = member.metadata(self.protocol.as_deref()) {
                topics.extend(classic::subscription_topics(metadata));
            }
        }
        topics.extend(self.consumer.subscribed_topics());
        topics
    }
}

/// The groups of one shard.
pub struct Coordinator {
    pub groups: RefCell<HashMap<String, Group>>,
    /// Held shared while records are appended and applied, exclusively
    /// while a partition is compacted: a compaction's snapshot then holds
    /// every record appended before it.
    compacting: glommio::sync::RwLock<()>,
    /// Per offsets partition of this shard: bytes appended since its last
    /// snapshot, and whether a compaction is under way.
    appended: RefCell<HashMap<u32, (u64, bool)>>,
}

impl Default for Coordinator {
    fn default() -> Coordinator {
        Coordinator {
            groups: RefCell::default(),
            compacting: glommio::sync::RwLock::new(()),
            appended: RefCell::default(),
        }
    }
}

/// Records per batch of a snapshot.
const SNAPSHOT_BATCH_RECORDS: usize = 4096;

fn group_hash(group: &str) -> u32 {
    crc32c::crc32c(group.as_bytes())
}

/// The key of the offsets partition of `group`, and its owner shard; `None`
/// if the offsets topic does not exist yet.
pub fn offsets_partition(
    shard: &Shard,
    metadata: &Metadata,
    group: &str,
) -> Option<(usize, PartitionKey)> {
    let topic = metadata.topic(OFFSETS_TOPIC)?;
    let count = topic.partition_count().max(1);
    let partition = group_hash(group) % count;
    let owner = shard.owner(*topic.shards.get(partition as usize)?);
    Some((owner, (topic.id, partition)))
}

/// Creates the offsets topic if it is missing: one partition per shard.
async fn ensure_offsets_topic(shard: &Rc<Shard>) -> Result<(), GroupError> {
    if shard.metadata().topic(OFFSETS_TOPIC).is_some() {
        return Ok(());
    }
    let (reply, answer) = oneshot::channel();
    let topic = NewTopicSpec {
        name: OFFSETS_TOPIC.to_string(),
        partitions: shard.shard_count() as u32,
        configs: [("retention.ms".to_string(), "-1".to_string())].into(),
    };
    let op = ControllerOp::CreateTopics {
        topics: vec![topic],
        reply,
    };
    to_controller(shard, op).await;
    let _ = answer.await;
    match shard.metadata().topic(OFFSETS_TOPIC) {
        Some(_) => Ok(()),
        None => Err(GroupError::CoordinatorNotAvailable),
    }
}

/// Runs `work` on the coordinator shard of `group` and returns what it
/// returns. `work` is made here and run there: what it captures must be
/// `Send`; the future it returns need not be.
pub async fn on_coordinator<T, F, W>(
    shard: &Rc<Shard>,
    group: &str,
    work: W,
) -> Result<T, GroupError>
where
    T: Send + 'static,
    F: Future<Output = T> + 'static,
    W: FnOnce(Rc<Shard>) -> F + Send + 'static,
{
    if group.len() > GROUP_ID_BYTES_MAX {
        return Err(GroupError::InvalidGroupId);
    }
    ensure_offsets_topic(shard).await?;
    let (owner, _) = offsets_partition(shard, &shard.metadata(), group)
        .ok_or(GroupError::CoordinatorNotAvailable)?;
    run_on(shard, owner, work).await
}

/// Runs `work` on shard `owner` (here if it is this one).
pub async fn run_on<T, F, W>(shard: &Rc<Shard>, owner: usize, work: W) -> Result<T, GroupError>
where
    T: Send + 'static,
    F: Future<Output = T> + 'static,
    W: FnOnce(Rc<Shard>) -> F + Send + 'static,
{
    if owner == shard.id {
        return Ok(work(shard.clone()).await);
    }
    let (reply, answer) = oneshot::channel();
    let task: Box<dyn FnOnce(Rc<Shard>) + Send> = Box::new(move |there: Rc<Shard>| {
        glommio::spawn_local(async move {
            let _ = reply.send(work(there).await);
        })
        .detach();
    });
    shard.peers[owner]
        .send(ShardMessage::Run(task))
        .await
        .map_err(|_| GroupError::CoordinatorNotAvailable)?;
    answer
        .await
        .map_err(|_| GroupError::CoordinatorNotAvailable)
}

fn now_ms() -> i64 {
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
async fn persist<'a>(
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
    let ((_, partition), log) = offsets_log(shard, group)?;
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
    let Ok(((_, partition), log)) = offsets_log(shard, group) else {
        return;
    };
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
                                .is_some_and(|(_, (_, p))| p == partition)
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

fn apply(groups: &mut HashMap<String, Group>, record: GroupRecord) {
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
        let key = (topic.id, partition);
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

/// Expires silent members and completes rebalances that are due, forever.
pub async fn tick_loop(shard: Rc<Shard>) {
    loop {
        glommio::timer::sleep(TICK).await;
        let now = Instant::now();
        let mut groups = shard.groups.groups.borrow_mut();
        for group in groups.values_mut() {
            classic::tick(group, now);
            consumer::tick(group, now);
        }
        groups.retain(|_, group| !group.is_gone());
    }
}

/// One offset to commit.
#[derive(Debug, Clone)]
pub struct OffsetToCommit {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// Who commits: a member of the group's current generation, or nobody
/// (generation -1, empty member id) for a group without members.
#[derive(Debug, Clone)]
pub struct Committer {
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
}

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
    let metadata = shard.metadata();
    let now = now_ms();
    let mut results = Vec::new();
    let mut records = Vec::new();
    for offset in &offsets {
        let checked = check_offset(&metadata, offset);
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
    let _appended = persist(shard, group, &records).await?;
    let mut groups = shard.groups.groups.borrow_mut();
    let entry = groups
        .entry(group.to_string())
        .or_insert_with(|| Group::new(group));
    for record in records {
        if let GroupRecord::Offset {
            key,
            committed: Some(committed),
            ..
        } = record
        {
            entry.offsets.insert(key, committed);
        }
    }
    Ok(results)
}

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
    let _appended = persist(shard, group, &records).await?;
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
            if existing.offsets.contains_key(&key) {
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
    let _appended = persist(shard, group, &records).await?;
    let mut groups = shard.groups.groups.borrow_mut();
    for record in records {
        apply(&mut groups, record);
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

/// A group as seen from outside.
#[derive(Debug, Clone)]
pub struct GroupSummary {
    pub id: String,
    pub state: GroupState,
    pub protocol_type: String,
    /// The state of a consumer-protocol group (KIP-848); `None`: classic.
    pub consumer_state: Option<consumer::ConsumerGroupState>,
}

impl GroupSummary {
    /// The state's name under the group's protocol.
    pub fn state_name(&self) -> &'static str {
        self.consumer_state
            .map_or(self.state.name(), consumer::ConsumerGroupState::name)
    }

    /// "classic" or "consumer", as ListGroups names the type.
    pub fn group_type(&self) -> &'static str {
        if self.consumer_state.is_some() {
            "consumer"
        } else {
            "classic"
        }
    }
}

/// This shard's groups.
pub fn list_local(shard: &Shard) -> Vec<GroupSummary> {
    shard
        .groups
        .groups
        .borrow()
        .values()
        .map(|group| GroupSummary {
            id: group.id.clone(),
            state: group.state,
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            consumer_state: consumer::is_consumer_group(group).then(|| group.consumer.state()),
        })
        .collect()
}

/// Every shard's groups.
pub async fn list_all(shard: &Rc<Shard>) -> Vec<GroupSummary> {
    let mut all = Vec::new();
    for owner in 0..shard.shard_count() {
        if let Ok(groups) = run_on(shard, owner, |there| async move { list_local(&there) }).await {
            all.extend(groups);
        }
    }
    all.sort_by(|a, b| a.id.cmp(&b.id));
    all
}

/// A member as described.
#[derive(Debug, Clone)]
pub struct MemberSummary {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: bytes::Bytes,
    pub assignment: bytes::Bytes,
}

/// A group described: `None` if it does not exist.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub id: String,
    pub state: GroupState,
    /// The state of a consumer-protocol group (KIP-848); `None`: classic.
    pub consumer_state: Option<consumer::ConsumerGroupState>,
    pub protocol_type: String,
    pub protocol: String,
    pub generation: i32,
    pub members: Vec<MemberSummary>,
    pub offsets: Vec<(OffsetKey, Committed)>,
}

impl GroupDescription {
    /// The state's name under the group's protocol.
    pub fn state_name(&self) -> &'static str {
        self.consumer_state
            .map_or(self.state.name(), consumer::ConsumerGroupState::name)
    }
}

pub fn describe_local(shard: &Shard, group: &str) -> Option<GroupDescription> {
    let groups = shard.groups.groups.borrow();
    let group = groups.get(group)?;
    if consumer::is_consumer_group(group) {
        return Some(consumer::describe(group));
    }
    Some(GroupDescription {
        id: group.id.clone(),
        state: group.state,
        consumer_state: None,
        protocol_type: group.protocol_type.clone().unwrap_or_default(),
        protocol: group.protocol.clone().unwrap_or_default(),
        generation: group.generation,
        members: group
            .members
            .values()
            .map(|member| MemberSummary {
                member_id: member.id.clone(),
                instance_id: member.instance_id.clone(),
                client_id: member.client_id.clone(),
                client_host: member.client_host.clone(),
                metadata: member
                    .metadata(group.protocol.as_deref())
                    .cloned()
                    .unwrap_or_default(),
                assignment: member.assignment.clone(),
            })
            .collect(),
        offsets: group
            .offsets
            .iter()
            .map(|(key, committed)| (key.clone(), committed.clone()))
            .collect(),
    })
}
