//! A follower replica's side of the protocol.
//!
//! A follower learns its leader and leader epoch from the controller's
//! metadata. It first reconciles by epoch: it asks the leader where its
//! latest epoch ends, truncates there, and asks again until its log is a
//! prefix of the leader's ([`super::epochs::reconcile`]). Only then does
//! it take pushes, and only those of its leader's epoch that start at its
//! own log end; a push it already holds (a duplicate, or a resend) is
//! acknowledged again and changes nothing. Its high watermark is the
//! leader's, capped at its own log end, and never goes back.
//!
//! The log and its epoch cache belong to the caller; this decides what is
//! done with them.

use super::{
    epochs::{reconcile, Epoch, EpochCache, EpochEnd, Reconciled},
    leader::Node,
    wire::AckStatus,
};

/// What the follower does next with its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowerStep {
    /// Ask the leader where this epoch ends in its log.
    Ask(Epoch),
    /// Its log is a prefix of the leader's: take pushes from its end.
    Follow,
}

/// What to do with the leader's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    /// Not an answer to the question outstanding: nothing.
    Ignored,
    /// Truncate the log (and the cache) to end here, then take the next
    /// step ([`FollowerState::next_step`]).
    TruncateTo(u64),
    /// Nothing is known to be shared: empty the log and start again at
    /// the leader's log start.
    Restart,
    /// The log is a prefix of the leader's.
    Follow,
}

/// What to do with a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushVerdict {
    /// Append its batches at the log end, then acknowledge.
    Append,
    /// Already held: acknowledge again.
    Held,
    /// Answer with this status and the log's ends.
    Refuse(AckStatus),
    /// Say nothing: the follower is still reconciling, or does not know
    /// the push's epoch yet (its metadata is behind); the leader resends.
    Ignore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Asking(Epoch),
    Following,
}

#[derive(Debug, Clone)]
pub struct FollowerState {
    node: Node,
    leader: Node,
    leader_epoch: Epoch,
    phase: Phase,
    high_watermark: u64,
}

impl FollowerState {
    /// Node `node` follows `leader` in `leader_epoch`, its log (`cache`,
    /// `log_end`) with high watermark `high_watermark` (at most its end).
    pub fn new(
        node: Node,
        leader: Node,
        leader_epoch: Epoch,
        cache: &EpochCache,
        log_end: u64,
        high_watermark: u64,
    ) -> (FollowerState, FollowerStep) {
        let mut state = FollowerState {
            node,
            leader,
            leader_epoch,
            phase: Phase::Following,
            high_watermark: high_watermark.min(log_end),
        };
        let step = state.next_step(cache);
        (state, step)
    }

    pub fn node(&self) -> Node {
        self.node
    }

    pub fn leader(&self) -> Node {
        self.leader
    }

    pub fn leader_epoch(&self) -> Epoch {
        self.leader_epoch
    }

    pub fn high_watermark(&self) -> u64 {
        self.high_watermark
    }

    pub fn following(&self) -> bool {
        self.phase == Phase::Following
    }

    /// The epoch asked about, while reconciling.
    pub fn asking(&self) -> Option<Epoch> {
        match self.phase {
            Phase::Asking(epoch) => Some(epoch),
            Phase::Following => None,
        }
    }

    /// The step after a reconciliation or a truncation: ask about the
    /// latest epoch left, or follow when the log is empty.
    pub fn next_step(&mut self, cache: &EpochCache) -> FollowerStep {
        match cache.latest() {
            Some((epoch, _)) => {
                self.phase = Phase::Asking(epoch);
                FollowerStep::Ask(epoch)
            }
            None => {
                self.phase = Phase::Following;
                FollowerStep::Follow
            }
        }
    }

    /// The leader of `leader_epoch` answered that the epoch asked about
    /// ends at `answer` in its log.
    pub fn answered(
        &mut self,
        leader_epoch: Epoch,
        asked: Epoch,
        answer: Option<EpochEnd>,
        cache: &EpochCache,
        log_end: u64,
    ) -> Answered {
        if leader_epoch != self.leader_epoch || self.phase != Phase::Asking(asked) {
            return Answered::Ignored;
        }
        match reconcile(cache, log_end, answer) {
            Reconciled::Done => {
                self.phase = Phase::Following;
                Answered::Follow
            }
            Reconciled::TruncateTo(end) => {
                self.high_watermark = self.high_watermark.min(end);
                Answered::TruncateTo(end)
            }
            Reconciled::Empty => {
                self.high_watermark = 0;
                Answered::Restart
            }
        }
    }

    /// A push of `leader_epoch` carrying offsets `base..end` arrived, the
    /// log ending at `log_end`.
    pub fn push(&self, leader_epoch: Epoch, base: u64, end: u64, log_end: u64) -> PushVerdict {
        if leader_epoch < self.leader_epoch {
            return PushVerdict::Refuse(AckStatus::StaleEpoch);
        }
        if leader_epoch > self.leader_epoch || self.phase != Phase::Following {
            return PushVerdict::Ignore;
        }
        if end <= log_end && base <= end {
            // Reconciled in this epoch, the log is a prefix of this
            // leader's, which only grows while it leads: the same records.
            return PushVerdict::Held;
        }
        if base != log_end {
            return PushVerdict::Refuse(AckStatus::NotContiguous);
        }
        PushVerdict::Append
    }

    /// Where the follower must start again, empty, before it can take its
    /// leader's pushes: at the leader's log start `leader_log_start` when
    /// its own log ends before it (what it lacks is gone from the leader,
    /// by retention or DeleteRecords). `None` when its log reaches it, or
    /// when the push is not its leader's current one.
    pub fn start_again_at(
        &self,
        leader_epoch: Epoch,
        leader_log_start: u64,
        log_end: u64,
    ) -> Option<u64> {
        let current = leader_epoch == self.leader_epoch && self.phase == Phase::Following;
        (current && log_end < leader_log_start).then_some(leader_log_start)
    }

    /// The leader's high watermark as a push of the current epoch carried
    /// it, the log now ending at `log_end`.
    pub fn leader_high_watermark(
        &mut self,
        leader_epoch: Epoch,
        high_watermark: u64,
        log_end: u64,
    ) {
        if leader_epoch == self.leader_epoch && self.phase == Phase::Following {
            self.high_watermark = self.high_watermark.max(high_watermark.min(log_end));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_follower_reconciles_before_it_takes_pushes() {
        // Wrote epoch 1 to offset 12; the leader went on in epoch 2 at 8.
        let mut cache = EpochCache::from_entries(&[(1, 0)]).unwrap();
        let leader = EpochCache::from_entries(&[(1, 0), (2, 8)]).unwrap();
        let (mut state, step) = FollowerState::new(3, 2, 2, &cache, 12, 5);
        assert_eq!(step, FollowerStep::Ask(1));
        assert_eq!(
            state.push(2, 12, 14, 12),
            PushVerdict::Ignore,
            "still asking"
        );
        let answer = leader.end_of(1, 20);
        assert_eq!(
            state.answered(1, 1, answer, &cache, 12),
            Answered::Ignored,
            "old epoch"
        );
        assert_eq!(
            state.answered(2, 1, answer, &cache, 12),
            Answered::TruncateTo(8)
        );
        cache.truncate_from(8);
        assert_eq!(state.next_step(&cache), FollowerStep::Ask(1));
        assert_eq!(state.answered(2, 1, answer, &cache, 8), Answered::Follow);
        assert!(state.following());
        assert_eq!(
            state.push(1, 8, 9, 8),
            PushVerdict::Refuse(AckStatus::StaleEpoch)
        );
        assert_eq!(
            state.push(3, 8, 9, 8),
            PushVerdict::Ignore,
            "metadata behind"
        );
        assert_eq!(
            state.push(2, 9, 10, 8),
            PushVerdict::Refuse(AckStatus::NotContiguous)
        );
        assert_eq!(state.push(2, 6, 8, 8), PushVerdict::Held);
        assert_eq!(state.push(2, 8, 10, 8), PushVerdict::Append);
        state.leader_high_watermark(2, 20, 10);
        assert_eq!(state.high_watermark(), 10, "capped at the log end");
        state.leader_high_watermark(2, 7, 10);
        assert_eq!(state.high_watermark(), 10, "never back");
        assert_eq!(state.start_again_at(2, 10, 10), None, "its log reaches it");
        assert_eq!(state.start_again_at(2, 30, 10), Some(30));
        assert_eq!(state.start_again_at(1, 30, 10), None, "an old leader's");
    }

    #[test]
    fn an_empty_follower_follows_at_once_and_one_with_nothing_shared_restarts() {
        let (state, step) = FollowerState::new(3, 2, 4, &EpochCache::default(), 0, 0);
        assert_eq!(step, FollowerStep::Follow);
        assert!(state.following());
        let cache = EpochCache::from_entries(&[(1, 0)]).unwrap();
        let (mut state, step) = FollowerState::new(3, 2, 4, &cache, 5, 3);
        assert_eq!(step, FollowerStep::Ask(1));
        assert_eq!(state.answered(4, 1, None, &cache, 5), Answered::Restart);
        assert_eq!(state.high_watermark(), 0);
    }
}
