//! The pace of a partition's move (Kafka's reassignment throttle): while
//! new replicas catch up, the leader sends each of them at most the
//! move's bytes per second, so the copy does not take the disks and the
//! network from the partitions that serve. Replicas already in the set
//! before the move are never throttled.

use sluice_replication::partition::{control::Move, leader::Node};

/// How much a bucket may save up while its follower is idle or answered
/// slowly: this many milliseconds of the rate. A burst larger than that
/// would exceed the rate over a short window.
const BURST_MS: u64 = 100;

/// One per partition a leader moves with a throttle, on the partition's
/// owner shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Throttle {
    bytes_per_s: u64,
    /// A token bucket per new replica: bytes it may be sent now (below
    /// zero after a batch larger than what was saved), and when it was
    /// last filled.
    buckets: Vec<(Node, i64, u64)>,
}

impl Throttle {
    /// The throttle of `moving`, if it has one: `previous` kept if it is
    /// the same move.
    pub(super) fn of(
        moving: Option<&Move>,
        previous: Option<Throttle>,
        now_ms: u64,
    ) -> Option<Throttle> {
        let moving = moving.filter(|moving| moving.throttle_bytes_per_s > 0)?;
        let adding = moving.adding();
        if let Some(previous) = previous.filter(|previous| {
            previous.bytes_per_s == moving.throttle_bytes_per_s
                && previous.buckets.len() == adding.len()
                && previous
                    .buckets
                    .iter()
                    .all(|(node, ..)| adding.contains(node))
        }) {
            return Some(previous);
        }
        Some(Throttle {
            bytes_per_s: moving.throttle_bytes_per_s,
            buckets: adding.into_iter().map(|node| (node, 0, now_ms)).collect(),
        })
    }

    /// What `follower` may be sent now, in bytes: `None` if it is not
    /// throttled, `Some(0)` if it must wait.
    pub(super) fn allowance(&mut self, follower: Node, now_ms: u64) -> Option<usize> {
        let rate = self.bytes_per_s;
        let (_, tokens, filled_ms) = self
            .buckets
            .iter_mut()
            .find(|(node, ..)| *node == follower)?;
        let elapsed_ms = now_ms.saturating_sub(*filled_ms);
        let burst = i64::try_from((rate * BURST_MS / 1000).max(1)).unwrap_or(i64::MAX);
        let earned = i64::try_from(rate.saturating_mul(elapsed_ms) / 1000).unwrap_or(i64::MAX);
        *tokens = tokens.saturating_add(earned).min(burst);
        *filled_ms = now_ms;
        Some(usize::try_from(*tokens).unwrap_or(0))
    }

    /// `bytes` were sent to `follower`.
    pub(super) fn spend(&mut self, follower: Node, bytes: usize) {
        if let Some((_, tokens, _)) = self.buckets.iter_mut().find(|(node, ..)| *node == follower) {
            *tokens = tokens.saturating_sub(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moving(throttle_bytes_per_s: u64) -> Move {
        Move {
            original: vec![1, 2],
            target: vec![2, 3],
            throttle_bytes_per_s,
        }
    }

    #[test]
    fn only_new_replicas_of_a_throttled_move_are_paced_at_its_rate() {
        assert_eq!(Throttle::of(Some(&moving(0)), None, 0), None);
        assert_eq!(Throttle::of(None, None, 0), None);
        let mut throttle = Throttle::of(Some(&moving(10_000)), None, 0).unwrap();
        assert_eq!(throttle.allowance(2, 0), None, "an original replica");
        assert_eq!(throttle.allowance(3, 0), Some(0), "nothing saved yet");
        assert_eq!(throttle.allowance(3, 50), Some(500));
        assert_eq!(
            throttle.allowance(3, 10_000),
            Some(1_000),
            "a burst is 100 ms of the rate"
        );
        // A batch larger than the allowance is sent whole, and paid for
        // before the next.
        throttle.spend(3, 4_000);
        assert_eq!(throttle.allowance(3, 10_000), Some(0));
        assert_eq!(throttle.allowance(3, 10_300), Some(0));
        assert_eq!(throttle.allowance(3, 10_400), Some(1_000));
        // Over a long run, what is sent is the rate.
        let mut sent = 0;
        for now_ms in (20_000..30_000).step_by(10) {
            let allowed = throttle.allowance(3, now_ms).unwrap();
            if allowed > 0 {
                let batch = 700;
                throttle.spend(3, batch);
                sent += batch;
            }
        }
        assert!(
            (95_000..=105_000).contains(&sent),
            "{sent} bytes in 10 s at 10,000/s"
        );
    }

    #[test]
    fn the_same_move_keeps_its_buckets_and_another_starts_afresh() {
        let mut throttle = Throttle::of(Some(&moving(10_000)), None, 0).unwrap();
        throttle.allowance(3, 50);
        let kept = Throttle::of(Some(&moving(10_000)), Some(throttle.clone()), 60).unwrap();
        assert_eq!(kept, throttle);
        let faster = Throttle::of(Some(&moving(20_000)), Some(throttle), 60).unwrap();
        assert_eq!(faster.buckets, vec![(3, 0, 60)]);
    }
}
