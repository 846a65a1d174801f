//! Offsets committed inside a transaction (KIP-98's TxnOffsetCommit, with
//! KIP-447's check of the group's generation): a producer that reads from
//! one topic and writes to another commits what it read as part of the
//! transaction it wrote in, so that both count or neither does.
//!
//! The offsets are appended to the group's offsets partition as a
//! transactional batch of the producer's (its id and epoch, no sequence)
//! and acknowledged once the in-sync replicas hold them, as other commits
//! are. They then stay *pending*, per producer, beside the group's
//! committed offsets: OffsetFetch does not answer them, and answers
//! UNSTABLE_OFFSET_COMMIT for their partitions when the client asks for
//! stable offsets only (KIP-447, `require_stable`). The transaction's
//! marker, a control batch its coordinator appends to the same partition,
//! ends them: [`super::offsets::transaction_ended`] is called once it is
//! durable, and a commit makes each the committed offset of its partition,
//! an abort drops them. Reading the partition back ([`super::holding`])
//! does the same with the batches and markers it meets, and leaves pending
//! what the log's end leaves open.
//!
//! Whichever of two commits of a partition is later in the log wins, as
//! Kafka's coordinator decides: a transaction committed after a plain
//! commit that came after its offsets keeps the plain one. So each
//! committed offset keeps where its record is in the log
//! ([`TransactionalOffsets`]), and a pending one where its own is.
//!
//! This file holds that state and its rules, on no shard's I/O (so that a
//! shard's [`super::Coordinator`] can hold it); committing and ending on a
//! shard are [`super::offsets`]'.
//!
//! Not checked here: that the transaction's coordinator added the group to
//! the transaction (AddOffsetsToTxn). An older epoch of a producer whose
//! transaction has offsets pending on this shard is refused
//! (INVALID_PRODUCER_EPOCH), as the offsets partition's producer state
//! refuses it in Kafka; an older epoch of a producer with none pending here
//! is not known here.
//!
//! The open transactions on an offsets partition are bounded by its log
//! ([`sluice_storage::log::OPEN_TRANSACTIONS_MAX`] refuses the batch of one
//! more), and each transaction's pending offsets by the partitions it
//! commits: one per group and partition, a later write replacing it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sluice_storage::{batch::Marker, Offset};

use super::{
    consumer,
    error::GroupError,
    records::{Committed, GroupRecord, OffsetKey},
    state::{Committer, Group, Hold, OffsetToCommit},
};
use crate::replica::state::Leadership;

/// The producer of a transaction: its id and epoch (InitProducerId's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Producer {
    pub id: i64,
    pub epoch: i16,
}

/// An offset a transaction committed, and where its record is in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingOffset {
    pub committed: Committed,
    pub record: Offset,
}

/// What one producer's open transaction committed for a group.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pending {
    /// The producer's epoch at its latest commit.
    epoch: i16,
    offsets: BTreeMap<OffsetKey, PendingOffset>,
}

/// One group's offsets of open transactions, per producer, and where in
/// the log the record of each of its committed offsets is. Changed through
/// [`Group`]'s methods of this file, which keep both in step with
/// [`Group::offsets`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransactionalOffsets {
    pending: BTreeMap<i64, Pending>,
    committed_at: BTreeMap<OffsetKey, Offset>,
}

impl TransactionalOffsets {
    /// Whether no transaction has offsets pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Whether some open transaction committed an offset of `key`.
    pub fn is_pending(&self, key: &OffsetKey) -> bool {
        self.pending
            .values()
            .any(|pending| pending.offsets.contains_key(key))
    }

    /// The producers with offsets pending, and their epochs.
    pub fn producers(&self) -> impl Iterator<Item = Producer> + '_ {
        self.pending.iter().map(|(&id, pending)| Producer {
            id,
            epoch: pending.epoch,
        })
    }

    /// The offsets the open transaction of `producer_id` committed.
    pub fn pending(&self, producer_id: i64) -> Option<&BTreeMap<OffsetKey, PendingOffset>> {
        self.pending
            .get(&producer_id)
            .map(|pending| &pending.offsets)
    }
}

impl Group {
    /// Makes `committed`, whose record is at `record` in the log, the
    /// committed offset of `key`, unless the one committed now has its
    /// record later in the log (commits applied out of the log's order, or
    /// a transaction committed after a plain commit that came after its
    /// offsets). Whether it did.
    pub(super) fn set_committed(
        &mut self,
        key: OffsetKey,
        committed: Committed,
        record: Offset,
    ) -> bool {
        if self
            .transactional
            .committed_at
            .get(&key)
            .is_some_and(|&at| at > record)
        {
            return false;
        }
        self.transactional.committed_at.insert(key.clone(), record);
        self.offsets.insert(key, committed);
        true
    }

    /// Deletes the offsets of `key` whose records are before `record`, a
    /// tombstone's place in the log: the committed one and those open
    /// transactions committed (Kafka's coordinator forgets them too, so
    /// that a later commit of their transaction does not bring the
    /// partition back).
    pub(super) fn delete_offset(&mut self, key: &OffsetKey, record: Offset) {
        if self
            .transactional
            .committed_at
            .get(key)
            .is_none_or(|&at| at < record)
        {
            self.offsets.remove(key);
            self.transactional.committed_at.remove(key);
        }
        self.transactional.pending.retain(|_, pending| {
            if pending
                .offsets
                .get(key)
                .is_some_and(|offset| offset.record < record)
            {
                pending.offsets.remove(key);
            }
            !pending.offsets.is_empty()
        });
    }

    /// Keeps `committed` pending for `key` in the open transaction of
    /// `producer`, its record at `record` in the log; a later record of
    /// the same transaction for `key` replaces it.
    pub(super) fn add_pending(
        &mut self,
        producer: Producer,
        key: OffsetKey,
        committed: Committed,
        record: Offset,
    ) {
        let pending = self
            .transactional
            .pending
            .entry(producer.id)
            .or_insert_with(|| Pending {
                epoch: producer.epoch,
                offsets: BTreeMap::new(),
            });
        pending.epoch = pending.epoch.max(producer.epoch);
        if pending
            .offsets
            .get(&key)
            .is_none_or(|offset| offset.record < record)
        {
            pending
                .offsets
                .insert(key, PendingOffset { committed, record });
        }
    }

    /// Ends the open transaction of `producer_id` in this group as its
    /// `marker` says: a commit makes each of its offsets the committed one
    /// of its partition (unless a later record committed that, see
    /// [`Group::set_committed`]), an abort drops them. The number of its
    /// offsets ended.
    pub(super) fn end_transaction(&mut self, producer_id: i64, marker: Marker) -> usize {
        let Some(pending) = self.transactional.pending.remove(&producer_id) else {
            return 0;
        };
        let ended = pending.offsets.len();
        if marker == Marker::Commit {
            for (key, offset) in pending.offsets {
                self.set_committed(key, offset.committed, offset.record);
            }
        }
        ended
    }
}

/// The groups holding offsets of each producer's open transaction, with
/// the producer's latest epoch among them: those its marker ends. One per
/// shard (and one per offsets partition being read back). A group listed
/// may since have ended the transaction or gone: a superset, checked
/// against the groups when used.
#[derive(Debug, Default)]
pub struct OpenTransactions {
    groups: HashMap<i64, (i16, BTreeSet<String>)>,
}

impl OpenTransactions {
    /// Notes that the transaction of `producer` committed offsets of
    /// `group`.
    pub fn opened(&mut self, producer: Producer, group: &str) {
        let (epoch, groups) = self
            .groups
            .entry(producer.id)
            .or_insert_with(|| (producer.epoch, BTreeSet::new()));
        *epoch = (*epoch).max(producer.epoch);
        if !groups.contains(group) {
            groups.insert(group.to_string());
        }
    }

    /// The latest epoch of `producer_id` among its open transactions'
    /// offsets.
    pub fn epoch(&self, producer_id: i64) -> Option<i16> {
        self.groups.get(&producer_id).map(|(epoch, _)| *epoch)
    }

    /// Ends the transaction of `producer_id` as `marker` says in each of
    /// its groups that `on_partition` (the marker's offsets partition)
    /// holds (see [`Group::end_transaction`]); a group left with nothing is
    /// forgotten. The number of offsets ended.
    pub fn end(
        &mut self,
        groups: &mut HashMap<String, Group>,
        producer_id: i64,
        marker: Marker,
        on_partition: impl Fn(&str) -> bool,
    ) -> usize {
        let Some((epoch, listed)) = self.groups.remove(&producer_id) else {
            return 0;
        };
        let mut ended = 0;
        let mut elsewhere = BTreeSet::new();
        for id in listed {
            if !on_partition(&id) {
                elsewhere.insert(id);
                continue;
            }
            if let Some(group) = groups.get_mut(&id) {
                ended += group.end_transaction(producer_id, marker);
                if group.is_gone() {
                    groups.remove(&id);
                }
            }
        }
        if !elsewhere.is_empty() {
            self.groups.insert(producer_id, (epoch, elsewhere));
        }
        ended
    }

    /// Adds what `other` lists (an offsets partition read back).
    pub fn merge(&mut self, other: OpenTransactions) {
        for (producer_id, (epoch, groups)) in other.groups {
            for group in groups {
                self.opened(
                    Producer {
                        id: producer_id,
                        epoch,
                    },
                    &group,
                );
            }
        }
    }

    /// Forgets the groups `keep` does not keep (dropped with their
    /// partition).
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.groups.retain(|_, (_, groups)| {
            groups.retain(|group| keep(group));
            !groups.is_empty()
        });
    }
}

/// Applies an offset record of a transactional batch of `producer`, at
/// `record` in the log, to `groups`: pending in its group, which `open`
/// notes. A transaction of the coordinator's carries committed offsets
/// only; anything else in one is not the coordinator's and is skipped.
pub(super) fn apply_pending(
    groups: &mut HashMap<String, Group>,
    open: &mut OpenTransactions,
    producer: Producer,
    written: GroupRecord,
    record: Offset,
) {
    let GroupRecord::Offset {
        group,
        key,
        committed: Some(committed),
    } = written
    else {
        tracing::debug!(
            ?written,
            "a transaction's record that is not an offset skipped"
        );
        return;
    };
    groups
        .entry(group.clone())
        .or_insert_with(|| Group::new(&group))
        .add_pending(producer, key, committed, record);
    open.opened(producer, &group);
}

/// Whether `committer` may commit offsets of `group` (`None`: no such
/// group) in a transaction, as Kafka's coordinator checks a TxnOffsetCommit
/// (KIP-447). Its generation, member id and instance id are checked only
/// when given (a client before v3 sends none): without a group, a
/// generation of -1 commits (a group without members is made); a classic
/// group takes any committer while it has no members and the generation is
/// -1, else needs the member (by instance id for a static one:
/// FENCED_INSTANCE_ID if another member holds it) and its generation; a
/// consumer-protocol group needs its member at its epoch (or an older one
/// for partitions it still owns), a stale epoch being ILLEGAL_GENERATION
/// here. A rebalance under way does not stop a transaction's commit.
pub fn check_committer(
    group: Option<&Group>,
    committer: &Committer,
    offsets: &[OffsetToCommit],
) -> Result<(), GroupError> {
    let Some(group) = group else {
        return if committer.generation < 0 {
            Ok(())
        } else {
            Err(GroupError::IllegalGeneration)
        };
    };
    let given = committer.generation >= 0
        || !committer.member_id.is_empty()
        || committer.instance_id.is_some();
    if consumer::is_consumer_group(group) {
        if committer.generation < 0 && group.consumer.is_empty() {
            return Ok(());
        }
        if committer.generation == -1
            && committer.member_id.is_empty()
            && committer.instance_id.is_none()
        {
            return Ok(());
        }
        return consumer::check_committer(group, committer, offsets).map_err(|error| match error {
            GroupError::StaleMemberEpoch => GroupError::IllegalGeneration,
            error => error,
        });
    }
    if (committer.generation < 0 && group.members.is_empty()) || !given {
        return Ok(());
    }
    match &committer.instance_id {
        Some(instance) => match group.statics.get(instance) {
            None => return Err(GroupError::UnknownMemberId),
            Some(member) if *member != committer.member_id => {
                return Err(GroupError::FencedInstanceId)
            }
            Some(_) => {}
        },
        None if !group.members.contains_key(&committer.member_id) => {
            return Err(GroupError::UnknownMemberId)
        }
        None => {}
    }
    if committer.generation != group.generation {
        return Err(GroupError::IllegalGeneration);
    }
    Ok(())
}

/// [`super::offsets::transaction_ended`] on a shard's groups and their
/// open transactions, given its hold on the marker's partition (`held`)
/// and this node's leadership of it now: nothing unless the partition's
/// groups are loaded under that leadership.
pub(super) fn end_if_loaded(
    held: Option<Hold>,
    leadership: Leadership,
    groups: &mut HashMap<String, Group>,
    open: &mut OpenTransactions,
    producer_id: i64,
    marker: Marker,
    on_partition: impl Fn(&str) -> bool,
) -> usize {
    if held != Some(Hold::Loaded(leadership)) {
        return 0;
    }
    open.end(groups, producer_id, marker, on_partition)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::coordinator::{
        assignor::TopicId,
        classic::{self, JoinRequest},
        consumer::{HeartbeatRequest, Settings},
    };

    const P1: Producer = Producer { id: 1, epoch: 0 };
    const P2: Producer = Producer { id: 2, epoch: 0 };

    fn at(offset: u64) -> Committed {
        Committed {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_time: 0,
        }
    }

    fn key(partition: u32) -> OffsetKey {
        ("t".to_string(), partition)
    }

    fn committed(group: &Group, partition: u32) -> Option<u64> {
        group.offsets.get(&key(partition)).map(|c| c.offset)
    }

    #[test]
    fn a_commit_marker_makes_pending_offsets_committed_unless_a_later_record_committed_them() {
        let mut group = Group::new("g");
        assert!(group.set_committed(key(0), at(5), Offset(10)));
        group.add_pending(P1, key(0), at(7), Offset(11));
        assert!(group.transactional.is_pending(&key(0)));
        assert!(!group.transactional.is_pending(&key(1)));
        assert_eq!(committed(&group, 0), Some(5), "pending is not committed");
        assert_eq!(group.end_transaction(P1.id, Marker::Commit), 1);
        assert_eq!(committed(&group, 0), Some(7));
        assert!(group.transactional.is_empty());

        // A plain commit after the transaction's record stays when the
        // transaction commits; one before it is replaced.
        group.add_pending(P1, key(0), at(9), Offset(20));
        group.add_pending(P1, key(1), at(90), Offset(20));
        assert!(group.set_committed(key(0), at(8), Offset(21)));
        assert!(group.set_committed(key(1), at(80), Offset(19)));
        assert_eq!(group.end_transaction(P1.id, Marker::Commit), 2);
        assert_eq!(
            (committed(&group, 0), committed(&group, 1)),
            (Some(8), Some(90))
        );

        // An abort drops them; a marker without offsets pending changes
        // nothing (a second call for the same marker).
        group.add_pending(P2, key(0), at(100), Offset(30));
        assert_eq!(group.end_transaction(P2.id, Marker::Abort), 1);
        assert_eq!(group.end_transaction(P2.id, Marker::Commit), 0);
        assert_eq!(committed(&group, 0), Some(8));

        // Two transactions of one partition: the later record wins,
        // whichever commits first.
        group.add_pending(P1, key(2), at(12), Offset(40));
        group.add_pending(P2, key(2), at(13), Offset(41));
        group.end_transaction(P2.id, Marker::Commit);
        group.end_transaction(P1.id, Marker::Commit);
        assert_eq!(committed(&group, 2), Some(13));

        // A commit applied out of the log's order keeps the later record.
        assert!(!group.set_committed(key(2), at(11), Offset(35)));
        assert_eq!(committed(&group, 2), Some(13));
    }

    #[test]
    fn a_tombstone_deletes_the_committed_and_pending_offsets_before_it() {
        let mut group = Group::new("g");
        group.set_committed(key(0), at(5), Offset(1));
        group.add_pending(P1, key(0), at(6), Offset(2));
        group.add_pending(P1, key(1), at(60), Offset(2));
        group.add_pending(P2, key(0), at(7), Offset(4));
        group.delete_offset(&key(0), Offset(3));
        assert_eq!(committed(&group, 0), None);
        assert!(group
            .transactional
            .pending(P1.id)
            .unwrap()
            .get(&key(0))
            .is_none());
        // A record after the tombstone stays.
        assert_eq!(
            group.transactional.pending(P2.id).unwrap()[&key(0)],
            PendingOffset {
                committed: at(7),
                record: Offset(4)
            }
        );
        group.end_transaction(P1.id, Marker::Commit);
        assert_eq!(
            (committed(&group, 0), committed(&group, 1)),
            (None, Some(60))
        );
        group.end_transaction(P2.id, Marker::Commit);
        assert_eq!(committed(&group, 0), Some(7));
        group.delete_offset(&key(0), Offset(5));
        group.delete_offset(&key(1), Offset(5));
        assert!(group.is_gone());
    }

    #[test]
    fn a_marker_ends_its_producers_transaction_in_the_groups_of_its_partition_only() {
        let mut groups: HashMap<String, Group> = HashMap::new();
        let mut open = OpenTransactions::default();
        for (id, record) in [("a", 1), ("b", 2), ("c", 3)] {
            let written = GroupRecord::Offset {
                group: id.to_string(),
                key: key(0),
                committed: Some(at(record)),
            };
            apply_pending(&mut groups, &mut open, P1, written, Offset(record));
        }
        let later = Producer { id: 1, epoch: 3 };
        apply_pending(
            &mut groups,
            &mut open,
            later,
            GroupRecord::Group {
                group: "a".into(),
                protocol_type: None,
            },
            Offset(4),
        );
        assert_eq!(
            open.epoch(P1.id),
            Some(0),
            "only offsets open a transaction"
        );
        let written = GroupRecord::Offset {
            group: "a".into(),
            key: key(1),
            committed: Some(at(5)),
        };
        apply_pending(&mut groups, &mut open, later, written, Offset(5));
        assert_eq!(open.epoch(P1.id), Some(3));
        assert_eq!(open.epoch(P2.id), None);
        // "b" is gone meanwhile (deleted): the marker skips it.
        groups.remove("b");
        let on_partition = |group: &str| group != "c";
        assert_eq!(
            open.end(&mut groups, P1.id, Marker::Commit, on_partition),
            2
        );
        assert_eq!(committed(&groups["a"], 0), Some(1));
        assert_eq!(committed(&groups["a"], 1), Some(5));
        assert!(groups["c"].transactional.is_pending(&key(0)));
        // The other partition's marker comes later; an abort forgets a
        // group left with nothing.
        assert_eq!(open.end(&mut groups, P1.id, Marker::Abort, |_| true), 1);
        assert!(!groups.contains_key("c"));
        assert_eq!(open.epoch(P1.id), None);
        assert_eq!(open.end(&mut groups, P1.id, Marker::Abort, |_| true), 0);

        let mut merged = OpenTransactions::default();
        let mut other = OpenTransactions::default();
        other.opened(P2, "x");
        other.opened(Producer { id: 2, epoch: 4 }, "y");
        merged.opened(P2, "z");
        merged.merge(other);
        assert_eq!(merged.epoch(P2.id), Some(4));
        merged.retain(|group| group == "y");
        assert_eq!(merged.groups[&P2.id].1, BTreeSet::from(["y".to_string()]));
        merged.retain(|_| false);
        assert_eq!(merged.epoch(P2.id), None);
    }

    fn committer(generation: i32, member_id: &str, instance_id: Option<&str>) -> Committer {
        Committer {
            generation,
            member_id: member_id.to_string(),
            instance_id: instance_id.map(str::to_string),
        }
    }

    fn offset(partition: i32) -> OffsetToCommit {
        OffsetToCommit {
            topic: "t".into(),
            partition,
            offset: 1,
            leader_epoch: -1,
            metadata: None,
        }
    }

    #[test]
    fn a_transactions_committer_is_checked_only_for_what_it_gives() {
        let check = |group: Option<&Group>, committer: Committer| {
            check_committer(group, &committer, &[offset(0)])
        };
        // No group: generation -1 makes one; another is illegal.
        assert_eq!(check(None, committer(-1, "", None)), Ok(()));
        assert_eq!(
            check(None, committer(3, "m", None)),
            Err(GroupError::IllegalGeneration)
        );

        // A classic group without members.
        let mut group = Group::new("g");
        assert_eq!(check(Some(&group), committer(-1, "m", None)), Ok(()));
        assert_eq!(
            check(Some(&group), committer(0, "m", None)),
            Err(GroupError::UnknownMemberId)
        );

        // With a static member, during its first rebalance.
        let now = Instant::now();
        let join = JoinRequest {
            member_id: String::new(),
            instance_id: Some("i1".into()),
            client_id: "c".into(),
            client_host: "h".into(),
            session_timeout: Duration::from_secs(30),
            rebalance_timeout: Duration::from_secs(30),
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), bytes::Bytes::new())],
            require_known_member: true,
            initial_delay: Duration::ZERO,
            session_timeout_bounds: (Duration::from_secs(1), Duration::from_secs(60)),
        };
        let _joined = classic::join(&mut group, join, now);
        let member = group.statics["i1"].clone();
        let generation = group.generation;
        assert_eq!(
            check(Some(&group), committer(generation, &member, Some("i1"))),
            Ok(()),
            "a rebalance under way does not stop it"
        );
        assert_eq!(
            check(Some(&group), committer(-1, "", None)),
            Ok(()),
            "nothing given (before v3): not checked"
        );
        assert_eq!(
            check(Some(&group), committer(generation + 1, &member, None)),
            Err(GroupError::IllegalGeneration)
        );
        assert_eq!(
            check(Some(&group), committer(generation, "other", None)),
            Err(GroupError::UnknownMemberId)
        );
        assert_eq!(
            check(Some(&group), committer(generation, "other", Some("i1"))),
            Err(GroupError::FencedInstanceId)
        );
        assert_eq!(
            check(Some(&group), committer(generation, &member, Some("i2"))),
            Err(GroupError::UnknownMemberId)
        );
        assert_eq!(
            check(Some(&group), committer(-1, &member, None)),
            Err(GroupError::IllegalGeneration),
            "a member id given is checked, with the generation"
        );

        // A consumer-protocol group: its member at its epoch; a stale epoch
        // is an illegal generation.
        let mut group = Group::new("c");
        let lookup = |name: &str| (name == "t").then_some((TopicId(1), 4));
        let outcome = consumer::heartbeat(
            &mut group,
            HeartbeatRequest {
                epoch: 0,
                subscribed_topics: Some(vec!["t".into()]),
                rebalance_timeout: Some(Duration::from_secs(60)),
                ..HeartbeatRequest::default()
            },
            &lookup,
            now,
            Settings {
                session_timeout: Duration::from_secs(45),
            },
        );
        assert_eq!(outcome.error, None);
        let (member, epoch) = (outcome.member_id, outcome.epoch);
        assert_eq!(check(Some(&group), committer(epoch, &member, None)), Ok(()));
        assert_eq!(check(Some(&group), committer(-1, "", None)), Ok(()));
        assert_eq!(
            check(Some(&group), committer(epoch + 1, &member, None)),
            Err(GroupError::IllegalGeneration)
        );
        assert_eq!(
            check(Some(&group), committer(epoch, "nobody", None)),
            Err(GroupError::UnknownMemberId)
        );
    }

    #[test]
    fn a_marker_ends_offsets_only_of_a_partition_loaded_under_the_leadership_it_has() {
        let mut groups: HashMap<String, Group> = HashMap::new();
        let mut open = OpenTransactions::default();
        let written = GroupRecord::Offset {
            group: "g".into(),
            key: key(0),
            committed: Some(at(3)),
        };
        apply_pending(&mut groups, &mut open, P1, written, Offset(8));
        let mut end = |held, leadership| {
            end_if_loaded(
                held,
                leadership,
                &mut groups,
                &mut open,
                P1.id,
                Marker::Commit,
                |_| true,
            )
        };
        // Being read back, or loaded under an earlier epoch: the load reads
        // the marker from the log.
        assert_eq!(end(None, Leadership::Leads(4)), 0);
        assert_eq!(
            end(
                Some(Hold::Loading(Leadership::Leads(4))),
                Leadership::Leads(4)
            ),
            0
        );
        assert_eq!(
            end(
                Some(Hold::Loaded(Leadership::Leads(3))),
                Leadership::Leads(4)
            ),
            0
        );
        assert_eq!(
            end(Some(Hold::Loaded(Leadership::Leads(4))), Leadership::Not),
            0
        );
        assert_eq!(
            end(
                Some(Hold::Loaded(Leadership::Leads(4))),
                Leadership::Leads(4)
            ),
            1
        );
        assert_eq!(
            end(Some(Hold::Loaded(Leadership::Sole)), Leadership::Sole),
            0
        );
        assert_eq!(committed(&groups["g"], 0), Some(3));
    }
}
