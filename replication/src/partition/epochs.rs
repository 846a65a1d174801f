//! Leader epochs of one partition replica: which epoch each offset range
//! was written in (Kafka's leader-epoch checkpoint), and the follower's
//! reconciliation with its leader by epoch (KIP-101, KIP-279).
//!
//! Every batch carries the epoch of the leader that appended it; the cache
//! keeps, per epoch, the first offset written in it. A follower that
//! rejoins asks its leader where the follower's latest epoch ends in the
//! leader's log, truncates there, and asks again until its log is a
//! prefix of the leader's. It never truncates to its own high watermark:
//! a high watermark can be behind what was acknowledged, and truncating to
//! it loses acknowledged records (KIP-101's first scenario).

/// A leader epoch.
pub type Epoch = u32;

/// The cache's entries violate its order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EpochError {
    #[error("epoch {epoch} is older than the latest, {latest}")]
    OlderEpoch { epoch: Epoch, latest: Epoch },
    #[error("epoch {epoch} starting at {start} starts before epoch {latest} at {latest_start}")]
    StartsEarlier {
        epoch: Epoch,
        start: u64,
        latest: Epoch,
        latest_start: u64,
    },
}

/// Where an epoch ends, as a leader answers a follower's question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEnd {
    /// The largest epoch the answering log has at or below the one asked.
    pub epoch: Epoch,
    /// The first offset after that epoch: the next epoch's start, or the
    /// log end when it is the latest.
    pub end: u64,
}

/// Epoch → first offset, both rising.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpochCache {
    entries: Vec<(Epoch, u64)>,
}

impl EpochCache {
    /// A cache of `entries` (as checkpointed), checked to rise.
    pub fn from_entries(entries: &[(Epoch, u64)]) -> Result<EpochCache, EpochError> {
        let mut cache = EpochCache::default();
        for (epoch, start) in entries {
            cache.assign(*epoch, *start)?;
        }
        Ok(cache)
    }

    pub fn entries(&self) -> &[(Epoch, u64)] {
        &self.entries
    }

    /// The latest epoch and its first offset.
    pub fn latest(&self) -> Option<(Epoch, u64)> {
        self.entries.last().copied()
    }

    /// Records that epoch `epoch` writes from `start` on. The same epoch
    /// again changes nothing; an older epoch, or a start before the
    /// latest's, is refused.
    pub fn assign(&mut self, epoch: Epoch, start: u64) -> Result<(), EpochError> {
        if let Some((latest, latest_start)) = self.latest() {
            if epoch < latest {
                return Err(EpochError::OlderEpoch { epoch, latest });
            }
            if epoch == latest {
                return Ok(());
            }
            if start < latest_start {
                return Err(EpochError::StartsEarlier {
                    epoch,
                    start,
                    latest,
                    latest_start,
                });
            }
        }
        self.entries.push((epoch, start));
        Ok(())
    }

    /// The epoch a record at `offset` was written in.
    pub fn epoch_at(&self, offset: u64) -> Option<Epoch> {
        let after = self.entries.partition_point(|(_, start)| *start <= offset);
        after.checked_sub(1).map(|index| self.entries[index].0)
    }

    /// Where `epoch` ends in a log that ends at `log_end`: the largest
    /// epoch held at or below it, and the offset after it (KIP-279's
    /// answer). `None`: every epoch held is newer than `epoch`.
    pub fn end_of(&self, epoch: Epoch, log_end: u64) -> Option<EpochEnd> {
        let after = self.entries.partition_point(|(held, _)| *held <= epoch);
        let (found, _) = *self.entries.get(after.checked_sub(1)?)?;
        let end = self
            .entries
            .get(after)
            .map_or(log_end, |(_, next_start)| *next_start);
        Some(EpochEnd {
            epoch: found,
            end: end.min(log_end),
        })
    }

    /// The log was truncated to end at `offset`: epochs that start at or
    /// after it are gone.
    pub fn truncate_from(&mut self, offset: u64) {
        self.entries.retain(|(_, start)| *start < offset);
    }

    /// The log now starts at `offset`: epochs that end at or before it are
    /// gone, and the one it falls in starts there.
    pub fn truncate_before(&mut self, offset: u64) {
        let after = self.entries.partition_point(|(_, start)| *start <= offset);
        if after > 0 {
            self.entries.drain(..after - 1);
            self.entries[0].1 = self.entries[0].1.max(offset);
        }
    }
}

/// What a follower does with its leader's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconciled {
    /// Its log is a prefix of the leader's: it fetches from its end.
    Done,
    /// Truncate the log (and the cache) to end at this offset, then ask
    /// again with the latest epoch left.
    TruncateTo(u64),
    /// The leader holds no epoch as old as the follower's oldest: nothing
    /// is known to be shared; start again from the leader's log start.
    Empty,
}

/// The follower's next step, its log (`cache`, ending at `log_end`) and
/// the leader's `answer` to "where does my latest epoch end?".
pub fn reconcile(cache: &EpochCache, log_end: u64, answer: Option<EpochEnd>) -> Reconciled {
    let Some((latest, _)) = cache.latest() else {
        return Reconciled::Done;
    };
    let Some(answer) = answer else {
        return Reconciled::Empty;
    };
    if answer.epoch == latest && answer.end >= log_end {
        return Reconciled::Done;
    }
    // The follower's own end of the epoch the leader found: below it, the
    // follower wrote in epochs the leader also had up to that point.
    let ours = cache.end_of(answer.epoch, log_end);
    let point = match ours {
        Some(ours) if ours.epoch == answer.epoch => ours.end.min(answer.end),
        // The follower never had the leader's epoch: its log up to where
        // its older epochs end may still diverge; truncate to that point
        // and ask again with the older epoch.
        Some(ours) => ours.end.min(answer.end),
        None => return Reconciled::Empty,
    };
    Reconciled::TruncateTo(point.min(log_end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_rise_and_answer_where_they_end() {
        let mut cache = EpochCache::from_entries(&[(1, 0), (3, 10), (4, 25)]).unwrap();
        assert_eq!(cache.epoch_at(0), Some(1));
        assert_eq!(cache.epoch_at(9), Some(1));
        assert_eq!(cache.epoch_at(10), Some(3));
        assert_eq!(cache.epoch_at(99), Some(4));
        let end = |epoch| cache.end_of(epoch, 40);
        assert_eq!(end(1), Some(EpochEnd { epoch: 1, end: 10 }));
        assert_eq!(end(2), Some(EpochEnd { epoch: 1, end: 10 }));
        assert_eq!(end(3), Some(EpochEnd { epoch: 3, end: 25 }));
        assert_eq!(end(4), Some(EpochEnd { epoch: 4, end: 40 }));
        assert_eq!(end(9), Some(EpochEnd { epoch: 4, end: 40 }));
        assert_eq!(cache.end_of(0, 40), None);
        assert_eq!(
            cache.assign(2, 30),
            Err(EpochError::OlderEpoch {
                epoch: 2,
                latest: 4
            })
        );
        assert!(matches!(
            cache.assign(5, 20),
            Err(EpochError::StartsEarlier { .. })
        ));
        cache.assign(4, 99).unwrap();
        assert_eq!(
            cache.latest(),
            Some((4, 25)),
            "the same epoch keeps its start"
        );
        cache.truncate_from(25);
        assert_eq!(cache.entries(), [(1, 0), (3, 10)]);
        cache.truncate_before(12);
        assert_eq!(cache.entries(), [(3, 12)]);
    }

    #[test]
    fn a_follower_ahead_in_an_epoch_the_leader_cut_short_truncates_there() {
        // KIP-101's second scenario: both wrote in epoch 1; the follower
        // got further (unacknowledged), then the leader went on in epoch 2.
        let follower = EpochCache::from_entries(&[(1, 0)]).unwrap();
        let leader = EpochCache::from_entries(&[(1, 0), (2, 8)]).unwrap();
        let answer = leader.end_of(1, 20);
        assert_eq!(reconcile(&follower, 12, answer), Reconciled::TruncateTo(8));
        // A follower behind the leader's epoch end keeps everything.
        assert_eq!(reconcile(&follower, 5, answer), Reconciled::Done);
    }
}
