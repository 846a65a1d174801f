//! A partition leader's view of its replicas: each follower's durable log
//! end and when it was last caught up, the in-sync set, and the high
//! watermark, with Kafka's rules.
//!
//! - The high watermark is the lowest durable log end over the in-sync
//!   set (the leader's own included). It never goes back.
//! - While the in-sync set is smaller than `min.insync.replicas`, the high
//!   watermark does not move and `acks=all` writes are refused (KIP-966's
//!   strict rule): a record acknowledged then would be on fewer disks than
//!   promised.
//! - A follower is caught up as of the last time the leader's log ended
//!   at or below what the follower has made durable (Kafka's
//!   `lastCaughtUpTime`): under steady load a follower is never equal to
//!   the leader's end, but it passes every end the leader had a moment
//!   ago. One not caught up for `replica.lag.time.max.ms` leaves the set;
//!   one caught up, at the high watermark and at the leader's log end as
//!   it took over rejoins it. The last is Kafka's rule too: a new leader's
//!   high watermark may be behind what its predecessor committed, and a
//!   member must hold all of that, which the leader's log held.
//! - The set changes only through the controller: the leader proposes, and
//!   applies a set the controller confirms with a newer partition epoch.
//!   A stale confirmation changes nothing. Until then the high watermark
//!   counts every member of the confirmed set and of every set proposed
//!   under its epoch (Kafka's maximal in-sync set): a member being removed
//!   may still be elected, and so may one being added, whose confirmation
//!   the leader may not live to hear. A proposal the leader has since
//!   given up on may still reach the controller, so it counts until a
//!   newer epoch says what the controller did.
//! - A follower joins only once it has answered this leader: at takeover
//!   the leader knows nothing of where the others' logs end.
//!
//! Times are milliseconds of the caller's clock; nothing here reads one.

use std::collections::{BTreeSet, VecDeque};

/// A node id.
pub type Node = u32;

/// Why a follower's message changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaderError {
    #[error("node {0} is not a replica of this partition")]
    NotAReplica(Node),
    #[error("node {node} says it holds up to {end}, past the leader's log end {leader_end}")]
    PastLeader {
        node: Node,
        end: u64,
        leader_end: u64,
    },
}

/// A change of the in-sync set the leader asks the controller for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InSyncProposal {
    /// The partition epoch the proposal was made under.
    pub partition_epoch: u32,
    pub in_sync: BTreeSet<Node>,
}

/// The topic settings the leader works to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderConfig {
    /// `min.insync.replicas`.
    pub min_in_sync: usize,
    /// `replica.lag.time.max.ms`.
    pub lag_max_ms: u64,
    /// How long a proposal goes unconfirmed before it is sent again.
    pub propose_resend_ms: u64,
}

/// Where the leader's log stands when it takes over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogPosition {
    pub log_end: u64,
    pub durable_end: u64,
    pub high_watermark: u64,
}

/// What the leader knows of one follower's progress, for figures: how far
/// behind it is, in offsets and in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerProgress {
    pub node: Node,
    /// The end of what it has acknowledged as durable (0 until it has
    /// answered this leader).
    pub durable_end: u64,
    /// The last time (the caller's clock) it was caught up: its durable
    /// end at or past the leader's end as of then.
    pub caught_up_ms: u64,
}

impl FollowerProgress {
    /// Offsets it lacks of a leader whose log ends at `leader_end`.
    pub fn lag_offsets(&self, leader_end: u64) -> u64 {
        leader_end.saturating_sub(self.durable_end)
    }

    /// Milliseconds since it was last caught up, as of `now_ms`: 0 while
    /// it holds all that the leader has made durable (`leader_durable_end`).
    pub fn lag_ms(&self, leader_durable_end: u64, now_ms: u64) -> u64 {
        if self.durable_end >= leader_durable_end {
            return 0;
        }
        now_ms.saturating_sub(self.caught_up_ms)
    }
}

#[derive(Debug, Clone)]
struct Follower {
    node: Node,
    durable_end: u64,
    caught_up_ms: u64,
    /// Whether it has acknowledged anything to this leader.
    heard: bool,
    /// Fenced at the controller, as the leader last heard: it is not
    /// proposed to join (the controller would leave it out, and the high
    /// watermark would wait on it meanwhile).
    fenced: bool,
}

#[derive(Debug, Clone)]
pub struct LeaderState {
    node: Node,
    min_in_sync: usize,
    lag_max_ms: u64,
    propose_resend_ms: u64,
    partition_epoch: u32,
    in_sync: BTreeSet<Node>,
    /// The last change proposed and not yet confirmed, and when it was
    /// sent.
    pending: Option<(BTreeSet<Node>, u64)>,
    /// Every node of every set proposed under `partition_epoch`.
    proposed: BTreeSet<Node>,
    followers: Vec<Follower>,
    log_end: u64,
    /// The log end when this leader took over.
    epoch_start: u64,
    durable_end: u64,
    high_watermark: u64,
    /// (time, the leader's durable end from then on), oldest first, over
    /// the last `lag_max_ms`: what "caught up as of" is measured against.
    ends: VecDeque<(u64, u64)>,
}

impl LeaderState {
    /// Node `node` leads replicas `replicas` (itself among them) with
    /// in-sync set `in_sync` under partition epoch `partition_epoch`, its
    /// log at `log`. Followers count as caught up at `now_ms`.
    pub fn new(
        node: Node,
        replicas: &[Node],
        in_sync: &BTreeSet<Node>,
        partition_epoch: u32,
        log: LogPosition,
        config: LeaderConfig,
        now_ms: u64,
    ) -> LeaderState {
        let LogPosition {
            log_end,
            durable_end,
            high_watermark,
        } = log;
        LeaderState {
            node,
            min_in_sync: config.min_in_sync.max(1),
            lag_max_ms: config.lag_max_ms,
            propose_resend_ms: config.propose_resend_ms,
            partition_epoch,
            in_sync: in_sync.iter().copied().chain([node]).collect(),
            pending: None,
            proposed: BTreeSet::new(),
            followers: replicas
                .iter()
                .filter(|replica| **replica != node)
                .map(|replica| Follower {
                    node: *replica,
                    durable_end: 0,
                    caught_up_ms: now_ms,
                    heard: false,
                    fenced: false,
                })
                .collect(),
            log_end: log_end.max(durable_end),
            epoch_start: log_end.max(durable_end),
            durable_end,
            high_watermark: high_watermark.min(durable_end),
            ends: VecDeque::from([(now_ms, durable_end)]),
        }
    }

    pub fn high_watermark(&self) -> u64 {
        self.high_watermark
    }

    pub fn in_sync(&self) -> &BTreeSet<Node> {
        &self.in_sync
    }

    pub fn partition_epoch(&self) -> u32 {
        self.partition_epoch
    }

    /// `min.insync.replicas`, as this leader applies it.
    pub fn min_in_sync(&self) -> usize {
        self.min_in_sync
    }

    /// The end of what the leader's own log holds durably, as it was last
    /// told.
    pub fn durable_end(&self) -> u64 {
        self.durable_end
    }

    /// Each follower's progress, in replica order.
    pub fn followers(&self) -> impl Iterator<Item = FollowerProgress> + '_ {
        self.followers.iter().map(|follower| FollowerProgress {
            node: follower.node,
            durable_end: follower.durable_end,
            caught_up_ms: follower.caught_up_ms,
        })
    }

    /// Whether an `acks=all` write may be taken now.
    pub fn accepts_all_acks(&self) -> bool {
        self.in_sync.len() >= self.min_in_sync
    }

    /// The leader's log now ends at `end` (appended, not yet durable).
    pub fn leader_appended(&mut self, end: u64) {
        self.log_end = self.log_end.max(end);
    }

    /// The leader's own log is durable to `end` at `now_ms`.
    pub fn leader_durable(&mut self, end: u64, now_ms: u64) {
        self.log_end = self.log_end.max(end);
        if end > self.durable_end {
            self.durable_end = end;
            self.ends.push_back((now_ms, end));
            // Keep one sample older than the window: the end as of its
            // start.
            while self.ends.len() > 1 && self.ends[1].0 + self.lag_max_ms < now_ms {
                self.ends.pop_front();
            }
        }
        self.advance();
    }

    /// Follower `node` has made its log durable to `end` at `now_ms`.
    pub fn follower_durable(
        &mut self,
        node: Node,
        end: u64,
        now_ms: u64,
    ) -> Result<(), LeaderError> {
        // A follower may have made durable more than the leader has, but
        // never more than the leader wrote.
        if end > self.log_end {
            return Err(LeaderError::PastLeader {
                node,
                end,
                leader_end: self.log_end,
            });
        }
        // The latest time the leader's end was at or below `end`.
        let caught_up = self
            .ends
            .iter()
            .rev()
            .find(|(_, leader_end)| *leader_end <= end)
            .map(|(at, _)| *at);
        let latest = self.ends.back().map(|(at, _)| *at);
        let follower = self
            .followers
            .iter_mut()
            .find(|f| f.node == node)
            .ok_or(LeaderError::NotAReplica(node))?;
        follower.durable_end = follower.durable_end.max(end);
        follower.heard = true;
        if let Some(at) = caught_up {
            // Caught up with the latest end means caught up now.
            let at = if Some(at) == latest { now_ms } else { at };
            follower.caught_up_ms = follower.caught_up_ms.max(at);
        }
        self.advance();
        Ok(())
    }

    /// Whether follower `node` is fenced at the controller, as the metadata
    /// says: a fenced follower is not proposed to join the in-sync set.
    pub fn set_fenced(&mut self, node: Node, fenced: bool) {
        if let Some(follower) = self.followers.iter_mut().find(|f| f.node == node) {
            follower.fenced = fenced;
        }
    }

    /// Follower `node` runs as another process than the one the leader
    /// has heard from (it started again): what that one said of its log
    /// says nothing of this one's, which recovery may have cut short (a
    /// torn tail). It counts as not heard from, so it joins the in-sync
    /// set only on what it says itself.
    pub fn restarted(&mut self, node: Node) {
        if let Some(follower) = self.followers.iter_mut().find(|f| f.node == node) {
            follower.durable_end = 0;
            follower.heard = false;
        }
    }

    /// The in-sync set the leader would have at `now_ms`: laggards out,
    /// caught-up followers at the high watermark in. `Some` when it
    /// differs from the current one and was not proposed in the last
    /// `propose_resend_ms`: send it to the controller.
    pub fn propose(&mut self, now_ms: u64) -> Option<InSyncProposal> {
        let mut wanted: BTreeSet<Node> = [self.node].into();
        for follower in &self.followers {
            let lagging = follower.caught_up_ms + self.lag_max_ms < now_ms;
            let member = self.in_sync.contains(&follower.node);
            let keep = member && !lagging;
            let complete =
                follower.heard && follower.durable_end >= self.high_watermark.max(self.epoch_start);
            let join = !member && !lagging && complete && !follower.fenced;
            if keep || join {
                wanted.insert(follower.node);
            }
        }
        if wanted == self.in_sync {
            self.pending = None;
            return None;
        }
        if let Some((pending, sent_ms)) = &self.pending {
            if *pending == wanted && sent_ms + self.propose_resend_ms > now_ms {
                return None;
            }
        }
        self.proposed.extend(wanted.iter().copied());
        self.pending = Some((wanted.clone(), now_ms));
        self.advance();
        Some(InSyncProposal {
            partition_epoch: self.partition_epoch,
            in_sync: wanted,
        })
    }

    /// The controller confirmed `in_sync` under `partition_epoch`; an
    /// epoch not newer than the current one changes nothing. Returns
    /// whether it was applied.
    pub fn confirmed(&mut self, partition_epoch: u32, in_sync: &BTreeSet<Node>) -> bool {
        if partition_epoch <= self.partition_epoch {
            return false;
        }
        self.partition_epoch = partition_epoch;
        self.in_sync = in_sync.iter().copied().chain([self.node]).collect();
        self.pending = None;
        self.proposed.clear();
        self.advance();
        true
    }

    /// Moves the high watermark to the lowest durable end of the maximal
    /// in-sync set (the confirmed set and every one proposed under its
    /// epoch), when the confirmed set is large enough.
    fn advance(&mut self) {
        if self.in_sync.len() < self.min_in_sync {
            return;
        }
        let lowest = self
            .followers
            .iter()
            .filter(|f| self.in_sync.contains(&f.node) || self.proposed.contains(&f.node))
            .map(|f| f.durable_end)
            .chain([self.durable_end])
            .min()
            .unwrap_or(self.durable_end);
        self.high_watermark = self.high_watermark.max(lowest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader(min_in_sync: usize) -> LeaderState {
        let log = LogPosition {
            log_end: 0,
            durable_end: 0,
            high_watermark: 0,
        };
        let config = LeaderConfig {
            min_in_sync,
            lag_max_ms: 100,
            propose_resend_ms: 50,
        };
        LeaderState::new(1, &[1, 2, 3], &[1, 2, 3].into(), 0, log, config, 0)
    }

    #[test]
    fn the_high_watermark_is_the_slowest_in_sync_replica() {
        let mut state = leader(2);
        state.leader_durable(10, 1);
        assert_eq!(state.high_watermark(), 0);
        state.follower_durable(2, 10, 2).unwrap();
        assert_eq!(state.high_watermark(), 0, "node 3 is in sync and at 0");
        state.follower_durable(3, 6, 2).unwrap();
        assert_eq!(state.high_watermark(), 6);
        assert_eq!(
            state.follower_durable(3, 11, 3),
            Err(LeaderError::PastLeader {
                node: 3,
                end: 11,
                leader_end: 10
            })
        );
        assert_eq!(
            state.follower_durable(9, 1, 3),
            Err(LeaderError::NotAReplica(9))
        );
    }

    #[test]
    fn a_laggard_leaves_the_set_and_rejoins_when_caught_up() {
        let mut state = leader(2);
        for t in 1..=300 {
            state.leader_durable(t, t);
            state.follower_durable(2, t - 1, t).unwrap();
        }
        // Node 3 never acknowledged: it lags past 100 ms.
        let proposal = state.propose(300).unwrap();
        assert_eq!(proposal.in_sync, [1, 2].into());
        assert!(!state.confirmed(0, &proposal.in_sync), "a stale epoch");
        assert!(state.confirmed(1, &proposal.in_sync));
        assert_eq!(state.high_watermark(), 299, "node 2 is one behind");
        assert_eq!(state.propose(300), None);
        // Node 3 catches up to where the leader was a moment ago; it joins
        // unless it is fenced.
        state.follower_durable(3, 299, 301).unwrap();
        state.set_fenced(3, true);
        assert_eq!(state.propose(301), None, "a fenced node is not proposed");
        state.set_fenced(3, false);
        assert_eq!(state.propose(301).unwrap().in_sync, [1, 2, 3].into());
    }

    #[test]
    fn a_follower_started_again_joins_on_what_it_says_not_on_what_it_said() {
        let mut state = leader(2);
        state.leader_durable(10, 1);
        state.follower_durable(2, 10, 1).unwrap();
        state.follower_durable(3, 10, 1).unwrap();
        assert_eq!(state.high_watermark(), 10);
        // Node 2 starts again, its log cut to 6 by recovery; the
        // controller takes it out of the set.
        assert!(state.confirmed(1, &[1, 3].into()));
        let mut forgetful = state.clone();
        assert_eq!(
            forgetful.propose(2).map(|proposal| proposal.in_sync),
            Some([1, 2, 3].into()),
            "on what its last process said, it would join at once"
        );
        state.restarted(2);
        assert_eq!(state.propose(2), None, "not heard from since");
        state.follower_durable(2, 6, 3).unwrap();
        assert_eq!(state.propose(3), None, "it lacks records below 10");
        state.follower_durable(2, 10, 4).unwrap();
        assert_eq!(state.propose(4).unwrap().in_sync, [1, 2, 3].into());
    }

    #[test]
    fn a_followers_lag_is_what_it_lacks_and_how_long_since_it_was_caught_up() {
        let mut state = leader(2);
        state.leader_durable(10, 5);
        state.follower_durable(2, 10, 6).unwrap();
        state.follower_durable(3, 4, 6).unwrap();
        state.leader_durable(30, 20);
        let progress: Vec<FollowerProgress> = state.followers().collect();
        assert_eq!(progress[0].node, 2);
        assert_eq!(progress[0].lag_offsets(30), 20);
        assert_eq!(
            progress[0].lag_ms(state.durable_end(), 50),
            44,
            "caught up at 6"
        );
        assert_eq!(progress[1].lag_offsets(30), 26);
        assert_eq!(
            progress[1].lag_ms(state.durable_end(), 50),
            50,
            "never caught up since 0"
        );
        state.follower_durable(2, 30, 60).unwrap();
        let caught_up = state.followers().next().unwrap();
        assert_eq!(caught_up.lag_offsets(30), 0);
        assert_eq!(caught_up.lag_ms(state.durable_end(), 70), 0, "holds it all");
    }

    #[test]
    fn below_min_in_sync_the_high_watermark_stands_and_acks_all_are_refused() {
        let mut state = leader(2);
        state.leader_durable(10, 1);
        state.follower_durable(2, 5, 1).unwrap();
        state.follower_durable(3, 5, 1).unwrap();
        assert_eq!(state.high_watermark(), 5);
        assert!(state.confirmed(1, &[1].into()));
        assert!(!state.accepts_all_acks());
        state.leader_durable(20, 2);
        assert_eq!(state.high_watermark(), 5, "frozen while alone");
        assert!(state.confirmed(2, &[1, 2].into()));
        assert!(state.accepts_all_acks());
        assert_eq!(state.high_watermark(), 5, "node 2 is at 5");
        state.follower_durable(2, 20, 3).unwrap();
        assert_eq!(state.high_watermark(), 20);
    }
}
