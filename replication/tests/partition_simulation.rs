//! Seeded simulations of partition replication's core.
//!
//! - Epochs: three replicas whose leaders change at random (any replica
//!   may be elected, so logs diverge), leaders append, followers copy part
//!   of the leader's log. Each time a follower rejoins it reconciles with
//!   its leader by epoch; afterwards its log must be a prefix of the
//!   leader's, record by record (a record is its offset and the epoch that
//!   wrote it: one leader per epoch).
//! - High watermark: a leader and two followers acknowledging at random,
//!   time passing, in-sync changes proposed and confirmed (some stale).
//!   The high watermark never goes back, never passes the leader's durable
//!   end, and every offset below it is durable on `min.insync.replicas`
//!   replicas at least.
//!
//! `SLUICE_TEST_SEED=<n>` replays one seed; `SLUICE_TEST_SEEDS=<n>` runs
//! more.

mod common;

use std::collections::BTreeSet;

use common::Rng;

use sluice_replication::partition::{
    epochs::{reconcile, Epoch, EpochCache, Reconciled},
    leader::{LeaderConfig, LeaderState, LogPosition},
};

const SEEDS: u64 = 300;
const STEPS: u64 = 400;

fn seeds() -> Vec<u64> {
    common::seeds(0, SEEDS)
}

/// A replica's log: the epoch of each record, and its epoch cache.
#[derive(Clone, Default)]
struct Replica {
    log: Vec<Epoch>,
    cache: EpochCache,
}

impl Replica {
    fn append(&mut self, epoch: Epoch) {
        self.cache
            .assign(epoch, self.log.len() as u64)
            .expect("epochs rise");
        self.log.push(epoch);
    }

    fn truncate(&mut self, end: u64) {
        self.log.truncate(end as usize);
        self.cache.truncate_from(end);
    }
}

/// Reconciles `follower` with `leader`; returns the rounds it took.
fn rejoin(follower: &mut Replica, leader: &Replica, seed: u64) -> u32 {
    for round in 1..=64 {
        let answer = follower
            .cache
            .latest()
            .and_then(|(epoch, _)| leader.cache.end_of(epoch, leader.log.len() as u64));
        match reconcile(&follower.cache, follower.log.len() as u64, answer) {
            Reconciled::Done => return round,
            Reconciled::TruncateTo(end) => {
                let before = (follower.log.len(), follower.cache.entries().len());
                follower.truncate(end);
                assert_ne!(
                    before,
                    (follower.log.len(), follower.cache.entries().len()),
                    "seed {seed}: a truncation that changes nothing"
                );
            }
            Reconciled::Empty => follower.truncate(0),
        }
    }
    panic!("seed {seed}: reconciliation did not converge");
}

#[test]
fn followers_reconciled_by_epoch_hold_a_prefix_of_their_leader() {
    for seed in seeds() {
        let mut rng = Rng(seed);
        let mut replicas = vec![Replica::default(); 3];
        let mut leader = 0usize;
        let mut epoch: Epoch = 1;
        // Followers reconciled with the current leader.
        let mut joined = [false; 3];
        joined[leader] = true;
        let mut rounds_max = 0;
        for _ in 0..STEPS {
            match rng.below(10) {
                0..=3 => {
                    for _ in 0..=rng.below(4) {
                        replicas[leader].append(epoch);
                    }
                }
                4..=7 => {
                    let follower = rng.below(3) as usize;
                    if follower == leader {
                        continue;
                    }
                    let source = replicas[leader].clone();
                    let target = &mut replicas[follower];
                    if !joined[follower] {
                        rounds_max = rounds_max.max(rejoin(target, &source, seed));
                        joined[follower] = true;
                        assert!(
                            source.log.starts_with(&target.log),
                            "seed {seed}: follower {follower} {:?} is not a prefix of leader {leader} {:?}",
                            target.log,
                            source.log
                        );
                    }
                    // Copies part of what it lacks.
                    let lacking = source.log.len() - target.log.len();
                    let take = rng.below(lacking as u64 + 1) as usize;
                    for at in target.log.len()..target.log.len() + take {
                        target.append(source.log[at]);
                    }
                }
                _ => {
                    // Any replica may win: logs diverge.
                    leader = rng.below(3) as usize;
                    epoch += 1;
                    joined = [false; 3];
                    joined[leader] = true;
                }
            }
        }
        assert!(rounds_max <= 64, "seed {seed}");
    }
}

#[test]
fn the_high_watermark_rises_only_over_enough_durable_replicas() {
    for seed in seeds() {
        let mut rng = Rng(seed);
        let min_in_sync = 1 + rng.below(3) as usize;
        let config = LeaderConfig {
            min_in_sync,
            lag_max_ms: 50,
            propose_resend_ms: 30,
        };
        let log = LogPosition {
            log_end: 0,
            durable_end: 0,
            high_watermark: 0,
        };
        let mut state = LeaderState::new(1, &[1, 2, 3], &[1, 2, 3].into(), 0, log, config, 0);
        let mut now = 0u64;
        let mut durable = [0u64; 4];
        let mut controller_epoch = 0u32;
        let mut pending: Vec<(u32, BTreeSet<u32>)> = Vec::new();
        let mut previous = 0;
        for _ in 0..STEPS {
            now += rng.below(20);
            match rng.below(8) {
                0..=2 => {
                    durable[1] += rng.below(5);
                    state.leader_durable(durable[1], now);
                }
                3..=5 => {
                    let node = 2 + rng.below(2) as usize;
                    // A follower makes durable some of what the leader has
                    // (node 3 is slower).
                    if node == 2 || rng.below(3) == 0 {
                        let lacking = durable[1] - durable[node];
                        durable[node] += rng.below(lacking + 1);
                        state
                            .follower_durable(node as u32, durable[node], now)
                            .unwrap();
                    }
                }
                6 => {
                    if let Some(proposal) = state.propose(now) {
                        assert_eq!(proposal.partition_epoch, state.partition_epoch());
                        controller_epoch += 1;
                        pending.push((controller_epoch, proposal.in_sync));
                    }
                }
                _ => {
                    // The controller confirms a pending change, perhaps
                    // out of order: an older one changes nothing.
                    if !pending.is_empty() {
                        let index = rng.below(pending.len() as u64) as usize;
                        let (epoch, in_sync) = pending.remove(index);
                        let before = state.partition_epoch();
                        let applied = state.confirmed(epoch, &in_sync);
                        assert_eq!(applied, epoch > before, "seed {seed}");
                        if !applied {
                            assert_eq!(state.partition_epoch(), before);
                        }
                    }
                }
            }
            let high = state.high_watermark();
            assert!(
                high >= previous,
                "seed {seed}: the high watermark went back"
            );
            assert!(high <= durable[1], "seed {seed}: past the leader's log");
            let holding = durable[1..].iter().filter(|end| **end >= high).count();
            assert!(
                high == 0 || holding >= min_in_sync,
                "seed {seed}: offset {high} is durable on {holding} replicas, fewer than {min_in_sync}"
            );
            if !state.accepts_all_acks() {
                assert!(state.in_sync().len() < min_in_sync);
            }
            previous = high;
        }
    }
}
