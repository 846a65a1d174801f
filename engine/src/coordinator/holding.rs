//! Which partitions of `__consumer_offsets` this shard coordinates: those
//! whose log it holds and whose leader this node is (a partition of one
//! replica is always led by its holder). A partition this node comes to
//! lead is loaded, its groups read back from its log to the log's end,
//! which after an election is what the in-sync replicas hold, and its
//! groups are served once it is loaded
//! ([`GroupError::CoordinatorLoadInProgress`] until then); a partition it
//! stops leading is dropped with its groups, and their requests get
//! [`GroupError::NotCoordinator`], so that clients find the new leader.
//!
//! [`hold`] makes one pass (at start, before the shard serves, and then
//! after each change of the roles, in [`hold_loop`]); [`serves`] is the
//! check every group request passes on its coordinator shard.

use std::{collections::HashMap, rc::Rc, time::Duration};

use sluice_storage::{batch::Batch, log::Log, Offset};

use super::{
    error::GroupError,
    offsets_log::apply,
    records::GroupRecord,
    routing::offsets_partition,
    state::Hold,
    transactional::{apply_pending, OpenTransactions, Producer},
    Group, OFFSETS_TOPIC,
};
use crate::{
    cluster_metadata::TopicMeta, partition::PartitionKey, replica::state::Leadership, shard::Shard,
};

/// A pass is also made this often: a lost lease changes leadership with
/// no metadata change.
const PASS_INTERVAL: Duration = Duration::from_millis(100);

/// Bytes read from the log at a time while loading.
const LOAD_READ_BYTES: usize = 1 << 20;

/// How long a load waits for the appends of its log that are queued but
/// not yet written (a follower's last pushes, when it became leader)
/// before it loads what is written.
const LOAD_WAIT_WRITTEN: Duration = Duration::from_secs(5);

/// How often a load waiting for such appends looks again.
const LOAD_WAIT_STEP: Duration = Duration::from_millis(10);

fn leads(leadership: Leadership) -> bool {
    !matches!(leadership, Leadership::Not)
}

/// Whether this shard serves the groups of offsets partition `key` now:
/// `Ok` once it loaded it under the leadership it has. A partition this
/// node leads and has not begun to load (its leadership is newer than the
/// last pass, or it was just created) is loaded first.
pub(super) async fn serves(shard: &Rc<Shard>, key: PartitionKey) -> Result<(), GroupError> {
    if !shard.partitions.borrow().contains_key(&key) {
        return Err(GroupError::NotCoordinator);
    }
    let topic = shard
        .metadata()
        .topic(OFFSETS_TOPIC)
        .filter(|topic| topic.id == key.topic)
        .cloned();
    let claimed = topic.and_then(|topic| claim(shard, &topic, key.partition.0));
    if let Some((key, log, leadership)) = claimed {
        if let Err(error) = load(shard, key, &log, leadership).await {
            tracing::error!(%key, %error, "consumer groups not loaded");
        }
    }
    let leadership = shard.replicas.leadership(key);
    match shard.groups.held.borrow().get(&key.partition.0) {
        Some(Hold::Loaded(held)) if *held == leadership => Ok(()),
        // Led, and being loaded.
        _ if leads(leadership) => Err(GroupError::CoordinatorLoadInProgress),
        _ => Err(GroupError::NotCoordinator),
    }
}

/// Makes a pass after every change of the roles on this shard, and every
/// [`PASS_INTERVAL`], until the shard stops (the task is dropped).
pub async fn hold_loop(shard: Rc<Shard>) {
    loop {
        let changed = shard.replicas.roles_set();
        let interval = glommio::timer::sleep(PASS_INTERVAL);
        futures_lite::future::or(changed, interval).await;
        if let Err(error) = hold(&shard).await {
            tracing::error!(shard = shard.id, %error, "consumer groups not loaded");
        }
    }
}

/// One pass over the offsets partitions whose log this shard holds: drops
/// those it no longer leads (with their groups), loads those it came to
/// lead. The number of records loaded, or the first partition that did
/// not load (it stays unserved until its leadership changes; the others
/// are loaded all the same).
pub async fn hold(shard: &Rc<Shard>) -> Result<usize, String> {
    let metadata = shard.metadata();
    let topic = metadata.topic(OFFSETS_TOPIC);
    let partitions = topic.map_or(0, |topic| topic.partition_count());
    // A topic gone (or fewer partitions): nothing of it is held.
    let gone: Vec<u32> = shard
        .groups
        .held
        .borrow()
        .keys()
        .copied()
        .filter(|partition| topic.is_none() || *partition >= partitions)
        .collect();
    for partition in gone {
        shard.groups.held.borrow_mut().remove(&partition);
        drop_groups(shard, partition);
    }
    let to_load: Vec<_> = topic
        .into_iter()
        .flat_map(|topic| (0..partitions).filter_map(|partition| claim(shard, topic, partition)))
        .collect();
    let mut loaded = 0;
    let mut failed = None;
    for (key, log, leadership) in to_load {
        match load(shard, key, &log, leadership).await {
            Ok(records) => loaded += records,
            Err(error) => {
                failed.get_or_insert(error);
            }
        }
    }
    match failed {
        None => Ok(loaded),
        Some(error) => Err(error),
    }
}

/// Brings the hold on offsets partition `partition` of `topic` in line
/// with this node's leadership of it: dropped if it was taken under
/// another, and, if this node leads it and had not begun to load it,
/// marked as loading and returned to be loaded.
fn claim(
    shard: &Shard,
    topic: &TopicMeta,
    partition: u32,
) -> Option<(PartitionKey, Rc<Log>, Leadership)> {
    let key = PartitionKey::new(topic.id, partition);
    let log = shard.partitions.borrow().get(&key).cloned();
    let leadership = match &log {
        Some(_) => shard.replicas.leadership(key),
        None => Leadership::Not,
    };
    let held = shard.groups.held.borrow().get(&partition).copied();
    match held {
        Some(Hold::Loading(was) | Hold::Loaded(was)) if was == leadership => return None,
        Some(_) => {
            shard.groups.held.borrow_mut().remove(&partition);
            drop_groups(shard, partition);
            tracing::info!(
                partition,
                ?leadership,
                "consumer groups of an offsets partition dropped"
            );
        }
        None => {}
    }
    let log = log.filter(|_| leads(leadership))?;
    shard
        .groups
        .held
        .borrow_mut()
        .insert(partition, Hold::Loading(leadership));
    Some((key, log, leadership))
}

/// Reads the groups of offsets partition `key` from its log and serves
/// them, if this node still leads it as it did (`leadership`) when the
/// load began; else the next pass sees to it.
async fn load(
    shard: &Rc<Shard>,
    key: PartitionKey,
    log: &Log,
    leadership: Leadership,
) -> Result<usize, String> {
    let partition = key.partition.0;
    let still = |shard: &Shard| {
        shard.groups.held.borrow().get(&partition) == Some(&Hold::Loading(leadership))
            && shard.replicas.leadership(key) == leadership
    };
    if !still(shard) {
        return Ok(0);
    }
    // To the log's end as it is when the groups are served: a transaction's
    // marker appended while the log was read (its end is not served yet,
    // so it finds nothing to end) is read too.
    let mut replayed = Replayed::default();
    let mut next = log.start_offset();
    loop {
        let end = log.end_offset();
        if next >= end {
            break;
        }
        let reached = replay(log, &mut replayed, next, end).await?;
        if !still(shard) {
            return Ok(0);
        }
        if reached < end {
            break;
        }
        next = reached;
    }
    let Replayed {
        groups,
        open,
        records,
    } = replayed;
    {
        let mut all = shard.groups.groups.borrow_mut();
        let metadata = shard.metadata();
        all.retain(|id, _| offsets_partition(shard, &metadata, id).is_none_or(|(_, of)| of != key));
        all.extend(groups);
        shard.groups.open.borrow_mut().merge(open);
    }
    shard
        .groups
        .appended
        .borrow_mut()
        .insert(partition, (log.size_bytes(), false));
    shard
        .groups
        .held
        .borrow_mut()
        .insert(partition, Hold::Loaded(leadership));
    // A partition of one replica loads at start only; a replicated one
    // each time this node comes to lead it, which is worth telling.
    match leadership {
        Leadership::Leads(epoch) => tracing::info!(
            partition,
            records,
            epoch,
            "consumer groups of an offsets partition this node leads loaded"
        ),
        _ => tracing::debug!(
            partition,
            records,
            "consumer groups of an offsets partition loaded"
        ),
    }
    Ok(records)
}

/// Forgets the groups of offsets partition `partition`: another node
/// coordinates them now. Their members waiting for a rebalance are
/// answered as their channels close; they find the new coordinator.
fn drop_groups(shard: &Shard, partition: u32) {
    let metadata = shard.metadata();
    let mut groups = shard.groups.groups.borrow_mut();
    groups.retain(|id, _| {
        offsets_partition(shard, &metadata, id).is_none_or(|(_, key)| key.partition.0 != partition)
    });
    shard
        .groups
        .open
        .borrow_mut()
        .retain(|group| groups.contains_key(group));
    shard.groups.appended.borrow_mut().remove(&partition);
}

/// The groups of an offsets partition as its log reads back, batch after
/// batch: committed offsets, the offsets of transactions still open at
/// the point read (with the groups each producer's marker would end), and
/// the number of records read.
#[derive(Default)]
pub(super) struct Replayed {
    pub groups: HashMap<String, Group>,
    pub open: OpenTransactions,
    pub records: usize,
}

impl Replayed {
    /// Applies one batch of the log: its records (pending in their
    /// producer's transaction for a transactional batch), or a marker's
    /// commit or abort of its producer's transaction. Native batches
    /// (written before the topic was compacted) and Kafka ones alike; a
    /// tombstone (a null value) is a deletion, as an empty value is. A
    /// batch that does not read is skipped.
    pub fn batch(&mut self, batch: &Batch) {
        let header = batch.header();
        if let Some(marker) = header.marker() {
            self.open
                .end(&mut self.groups, header.producer_id, marker, |_| true);
            return;
        }
        let producer = header.is_transactional().then_some(Producer {
            id: header.producer_id,
            epoch: header.producer_epoch,
        });
        let Replayed {
            groups,
            open,
            records,
        } = self;
        let read = sluice_storage::batch::filter::for_each_record(batch, |record| {
            let Some(decoded) = GroupRecord::decode(
                record.key.unwrap_or_default(),
                record.value.unwrap_or_default(),
            ) else {
                return;
            };
            match producer {
                None => apply(groups, decoded, record.offset),
                Some(producer) => apply_pending(groups, open, producer, decoded, record.offset),
            }
            *records += 1;
        });
        if let Err(error) = read {
            tracing::warn!(
                offset = header.base_offset, %error,
                "an offsets batch does not read; skipped"
            );
        }
    }
}

/// Reads the groups `log` holds from `from` to `end` into `replayed`:
/// every batch appended to it, written, whether or not the high watermark
/// passed it yet (after an election its leader's log is what the in-sync
/// replicas hold). Where it stopped: `end`, or before it if what was
/// appended was not written in time or the log was cut.
async fn replay(
    log: &Log,
    replayed: &mut Replayed,
    from: Offset,
    end: Offset,
) -> Result<Offset, String> {
    read_back(log, OFFSETS_TOPIC, from, end, |batch| replayed.batch(batch)).await
}

/// Hands each batch of `log` (a coordinator's internal topic `topic`)
/// from `from` up to `end` to `each`, in order: every batch appended,
/// written, whether or not the high watermark passed it yet (after an
/// election its leader's log is what the in-sync replicas hold). Where
/// it stopped: `end`, or before appends not written after
/// [`LOAD_WAIT_WRITTEN`].
pub(crate) async fn read_back(
    log: &Log,
    topic: &str,
    from: Offset,
    end: Offset,
    mut each: impl FnMut(&Batch),
) -> Result<Offset, String> {
    let mut offset = from;
    let waited_since = std::time::Instant::now();
    while offset < end {
        let batches = log
            .read_replicable(offset, LOAD_READ_BYTES)
            .await
            .map_err(|error| format!("{topic}: {error}"))?;
        let Some(last) = batches.last() else {
            // Appended, not written yet: it will be shortly.
            if log.end_offset() < end || waited_since.elapsed() > LOAD_WAIT_WRITTEN {
                break;
            }
            glommio::timer::sleep(LOAD_WAIT_STEP).await;
            continue;
        };
        offset = last.last_offset().next();
        for batch in &batches {
            each(batch);
        }
    }
    Ok(offset)
}

#[cfg(test)]
mod tests {
    use sluice_storage::batch::{
        filter::{kafka_batch, transactional_kafka_batch, KeyValue},
        Marker,
    };

    use super::*;
    use crate::coordinator::records::{Committed, OffsetKey};

    /// The offsets partition's log as a list of batches, each assigned the
    /// offsets after the one before.
    #[derive(Default)]
    struct Written {
        batches: Vec<Batch>,
        end: u64,
    }

    impl Written {
        fn push(&mut self, batch: Batch) {
            let batch = batch.assign(Offset(self.end), 1);
            self.end = batch.last_offset().next().0;
            self.batches.push(batch);
        }

        /// Offsets of (group, partition of "t", offset), committed by
        /// `producer`'s transaction or by none.
        fn commit(&mut self, producer: Option<Producer>, offsets: &[(&str, u32, u64)]) {
            let encoded: Vec<(Vec<u8>, Vec<u8>)> = offsets
                .iter()
                .map(|&(group, partition, offset)| {
                    GroupRecord::Offset {
                        group: group.into(),
                        key: ("t".into(), partition),
                        committed: Some(Committed {
                            offset,
                            leader_epoch: -1,
                            metadata: String::new(),
                            commit_time: 0,
                        }),
                    }
                    .encode()
                })
                .collect();
            let pairs: Vec<KeyValue<'_>> = encoded
                .iter()
                .map(|(key, value)| (Some(&key[..]), Some(&value[..])))
                .collect();
            self.push(match producer {
                None => kafka_batch(&pairs, 0, 0).unwrap(),
                Some(producer) => {
                    transactional_kafka_batch(&pairs, 0, 0, producer.id, producer.epoch).unwrap()
                }
            });
        }

        fn marker(&mut self, producer: Producer, marker: Marker) {
            self.push(Batch::marker(producer.id, producer.epoch, marker, 0, 0).unwrap());
        }

        fn replayed(&self) -> Replayed {
            let mut replayed = Replayed::default();
            for batch in &self.batches {
                replayed.batch(batch);
            }
            replayed
        }
    }

    const P1: Producer = Producer { id: 1, epoch: 0 };
    const P2: Producer = Producer { id: 2, epoch: 5 };
    const P3: Producer = Producer { id: 3, epoch: 0 };

    fn key(partition: u32) -> OffsetKey {
        ("t".to_string(), partition)
    }

    fn committed(replayed: &Replayed, group: &str, partition: u32) -> Option<u64> {
        replayed.groups[group]
            .offsets
            .get(&key(partition))
            .map(|committed| committed.offset)
    }

    #[test]
    fn reading_back_keeps_transactions_pending_until_their_markers() {
        let mut log = Written::default();
        log.commit(None, &[("g", 0, 5)]);
        log.commit(Some(P1), &[("g", 0, 7), ("h", 0, 70)]);
        log.commit(None, &[("g", 1, 9)]);
        log.commit(Some(P2), &[("g", 1, 10)]);
        let replayed = log.replayed();
        assert_eq!(committed(&replayed, "g", 0), Some(5));
        assert_eq!(committed(&replayed, "h", 0), None);
        assert!(replayed.groups["h"].transactional.is_pending(&key(0)));
        assert_eq!(replayed.open.epoch(P2.id), Some(5));

        log.marker(P1, Marker::Commit);
        // A plain commit after P2's record: P2's commit does not replace it.
        log.commit(None, &[("g", 1, 11)]);
        log.marker(P2, Marker::Commit);
        // A marker of a producer without offsets here changes nothing.
        log.marker(P3, Marker::Abort);
        log.commit(Some(P3), &[("g", 2, 30)]);
        log.marker(P3, Marker::Abort);
        // Open at the log's end: pending.
        log.commit(Some(P1), &[("g", 2, 20)]);
        let replayed = log.replayed();
        assert_eq!(committed(&replayed, "g", 0), Some(7));
        assert_eq!(committed(&replayed, "h", 0), Some(70));
        assert_eq!(committed(&replayed, "g", 1), Some(11));
        assert_eq!(committed(&replayed, "g", 2), None);
        let pending = replayed.groups["g"].transactional.pending(P1.id).unwrap();
        assert_eq!(pending[&key(2)].committed.offset, 20);
        assert_eq!(pending[&key(2)].record, Offset(log.end - 1));
        assert!(replayed.groups["g"].transactional.pending(P3.id).is_none());
        assert_eq!(replayed.open.epoch(P1.id), Some(0));
        assert_eq!(replayed.open.epoch(P2.id), None);
        // Markers are not records of the coordinator's.
        assert_eq!(replayed.records, 8);
    }
}
