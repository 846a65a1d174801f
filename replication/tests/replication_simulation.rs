//! Seeded simulation of the whole replication protocol of one partition:
//! three replicas and a controller, driven only through the library's
//! state machines (`control`, `leader`, `push`, `follower`, `epochs`).
//!
//! With moves on, the controller also moves the partition between four
//! nodes (Kafka's reassignment) and cancels moves: a node added copies
//! the log from nothing, a node removed deletes its copy.
//!
//! Every message may be lost, delayed, reordered or duplicated. Nodes
//! crash (losing what they had not synced) and restart; a restarted node
//! registers anew and the controller fences its old self first, as a
//! broker's new incarnation is. Nodes are isolated from everyone while
//! they keep running: a deposed leader goes on taking writes it can never
//! acknowledge. Clients write `acks=all` to whichever node believes it
//! leads; a write is acknowledged when that leader's high watermark
//! passes it.
//!
//! Checked after every step:
//! - at most one node leads any epoch, and no node's epochs go back;
//! - every record below any replica's high watermark (what consumers may
//!   read) is the same record on every replica that shows it, for ever:
//!   nothing read is ever changed or lost;
//! - a newly elected leader's durable log holds every such record;
//! - the high watermark never passes the leader's durable end.
//!
//! At the end every fault heals and the cluster runs quietly: one leader,
//! every replica's log the same, everything written by then committed, and
//! every acknowledged record at its offset.
//!
//! `SLUICE_TEST_SEED=<n>` replays one seed; `SLUICE_TEST_SEEDS=<n>` runs
//! more.

mod common;

use std::collections::BTreeSet;

use common::Rng;

use sluice_replication::partition::{
    control::{ControlConfig, PartitionControl},
    epochs::{Epoch, EpochCache, EpochEnd},
    follower::{Answered, FollowerState, FollowerStep, PushVerdict},
    leader::{InSyncProposal, LeaderConfig, LeaderState, LogPosition, Node},
    push::{PushConfig, Pushes},
    wire::AckStatus,
};

const SEEDS: u64 = 400;
const STEPS: u64 = 1_500;
const QUIET_STEPS: u64 = 2_000;
const NODES: Node = 4;
/// The partition's first replicas; node 3 holds none until a move adds it.
const REPLICAS: [Node; 3] = [0, 1, 2];
const CONTROLLER: Node = 99;
/// A node unheard by the controller this long is fenced.
const LEASE_MS: u64 = 60;
const LEADER: LeaderConfig = LeaderConfig {
    min_in_sync: 2,
    lag_max_ms: 40,
    propose_resend_ms: 20,
};
const PUSH: PushConfig = PushConfig {
    records_max: 8,
    in_flight_max: 3,
    heartbeat_ms: 10,
    resend_ms: 25,
};
const ASK_RESEND_MS: u64 = 25;

/// `SLUICE_TEST_TRACE=1` prints what the controller does, and faults.
fn trace(what: std::fmt::Arguments) {
    if std::env::var_os("SLUICE_TEST_TRACE").is_some() {
        eprintln!("{what}");
    }
}

fn seeds() -> Vec<u64> {
    common::seeds(10_000, SEEDS)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Record {
    epoch: Epoch,
    id: u64,
    /// The last record of its batch: logs hold, push, recover and cut
    /// whole batches.
    batch_end: bool,
}

/// The end of the batch holding offset `at - 1`, or past: the first batch
/// boundary at or after `at` (`at` itself when it is one).
fn batch_boundary_at_or_after(log: &[Record], at: usize) -> usize {
    let mut end = at;
    while end > 0 && end < log.len() && !log[end - 1].batch_end {
        end += 1;
    }
    end
}

/// The start of the batch holding offset `at`.
fn batch_start(log: &[Record], at: usize) -> usize {
    let mut start = at.min(log.len());
    while start > 0 && !log[start - 1].batch_end {
        start -= 1;
    }
    start
}

#[derive(Debug, Clone)]
enum Message {
    Push {
        epoch: Epoch,
        base: u64,
        records: Vec<Record>,
        high_watermark: u64,
    },
    Ack {
        epoch: Epoch,
        status: AckStatus,
        log_end: u64,
        durable_end: u64,
    },
    Ask {
        epoch: Epoch,
        asked: Epoch,
    },
    Answer {
        epoch: Epoch,
        asked: Epoch,
        end: Option<EpochEnd>,
    },
    AlterInSync {
        leader_epoch: Epoch,
        proposal: InSyncProposal,
    },
}

struct InFlight {
    at: u64,
    from: Node,
    to: Node,
    message: Message,
}

#[allow(clippy::large_enum_variant)] // three of them, for a test
enum Role {
    Idle,
    Leader {
        epoch: Epoch,
        followers: Vec<Node>,
        state: LeaderState,
        pushes: Pushes,
        /// Writes taken and not yet acknowledged: (offset, id).
        waiting: Vec<(u64, u64)>,
        /// Each node's incarnation as the leader last learned it: a
        /// follower started again is counted on what it says again.
        incarnations: [u64; NODES as usize],
    },
    Follower {
        state: FollowerState,
        asked_ms: u64,
    },
}

struct Replica {
    node: Node,
    log: Vec<Record>,
    durable: usize,
    /// Acknowledged to the leader as durable (a follower's last ack).
    durable_acked: usize,
    cache: EpochCache,
    up: bool,
    isolated: bool,
    incarnation: u64,
    /// The partition epoch of the metadata it applied; `None` until it has
    /// applied any since it started.
    applied: Option<u32>,
    role: Role,
    /// The high watermark it last showed.
    high_watermark: u64,
    /// How much of the log is known to match the exposed records.
    verified: usize,
    /// The highest leader epoch it ever applied.
    epoch_seen: Option<Epoch>,
}

impl Replica {
    fn new(node: Node) -> Replica {
        Replica {
            node,
            log: Vec::new(),
            durable: 0,
            durable_acked: 0,
            cache: EpochCache::default(),
            up: true,
            isolated: false,
            incarnation: 0,
            applied: None,
            role: Role::Idle,
            high_watermark: 0,
            verified: 0,
            epoch_seen: None,
        }
    }

    fn reachable(&self) -> bool {
        self.up && !self.isolated
    }

    /// Deletes its copy of the partition: a move left it out.
    fn wipe(&mut self) {
        self.log.clear();
        self.durable = 0;
        self.durable_acked = 0;
        self.cache = EpochCache::default();
        self.role = Role::Idle;
        self.high_watermark = 0;
        self.verified = 0;
    }

    fn truncate(&mut self, end: u64) {
        let end = end as usize;
        self.log.truncate(end);
        self.durable = self.durable.min(end);
        self.durable_acked = self.durable_acked.min(end);
        self.verified = self.verified.min(end);
        self.cache.truncate_from(end as u64);
    }
}

struct Controller {
    control: PartitionControl,
    config: ControlConfig,
    alive: [bool; NODES as usize],
    heard_ms: [u64; NODES as usize],
    incarnation: [u64; NODES as usize],
    /// Leader of each epoch it elected.
    leaders: Vec<(Epoch, Node)>,
}

impl Controller {
    fn record_leader(&mut self, seed: u64) {
        if let Some(leader) = self.control.leader {
            let epoch = self.control.leader_epoch;
            match self.leaders.iter().find(|(e, _)| *e == epoch) {
                Some((_, held)) => {
                    assert_eq!(*held, leader, "seed {seed}: epoch {epoch} has two leaders")
                }
                None => self.leaders.push((epoch, leader)),
            }
        }
    }

    fn fence(&mut self, node: Node, seed: u64) {
        trace(format_args!("fence {node}"));
        self.alive[node as usize] = false;
        let alive = self.alive;
        self.control.fence(node, |n| alive[n as usize], self.config);
        trace(format_args!("  -> {:?}", self.control));
        self.record_leader(seed);
    }

    /// Starts a move to `target`, or with `None` cancels the one in
    /// progress.
    fn moves(&mut self, target: Option<Vec<Node>>, seed: u64) {
        let alive = self.alive;
        let result = match &target {
            Some(target) => self
                .control
                .start_move(target, 0, |n| alive[n as usize], self.config)
                .map(|_| ()),
            None => self.control.cancel_move(|n| alive[n as usize], self.config),
        };
        trace(format_args!(
            "move to {target:?}: {result:?} -> {:?}",
            self.control
        ));
        self.record_leader(seed);
    }

    fn unfence(&mut self, node: Node, seed: u64) {
        trace(format_args!("unfence {node}"));
        self.alive[node as usize] = true;
        let alive = self.alive;
        self.control
            .unfence(node, |n| alive[n as usize], self.config);
        trace(format_args!("  -> {:?}", self.control));
        self.record_leader(seed);
    }
}

struct Sim {
    seed: u64,
    rng: Rng,
    now: u64,
    replicas: Vec<Replica>,
    controller: Controller,
    network: Vec<InFlight>,
    /// Records consumers may have read: those below some high watermark.
    exposed: Vec<Record>,
    /// Acknowledged writes: (offset, id).
    acked: Vec<(u64, u64)>,
    next_id: u64,
    drop_per_mille: u64,
    duplicate_per_mille: u64,
    /// The controller moves the partition between the nodes.
    moves: bool,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        Sim::with_moves(seed, false)
    }

    fn with_moves(seed: u64, moves: bool) -> Sim {
        let mut rng = Rng(seed);
        let config = ControlConfig {
            min_in_sync: LEADER.min_in_sync,
            unclean: false,
        };
        let drop_per_mille = rng.below(150);
        let duplicate_per_mille = rng.below(80);
        let mut controller = Controller {
            control: PartitionControl::new(&REPLICAS, |_| true),
            config,
            alive: [true; NODES as usize],
            heard_ms: [0; NODES as usize],
            incarnation: [0; NODES as usize],
            leaders: Vec::new(),
        };
        controller.record_leader(seed);
        Sim {
            seed,
            rng,
            now: 0,
            replicas: (0..NODES).map(Replica::new).collect(),
            controller,
            network: Vec::new(),
            exposed: Vec::new(),
            acked: Vec::new(),
            next_id: 0,
            drop_per_mille,
            duplicate_per_mille,
            moves,
        }
    }

    fn send(&mut self, from: Node, to: Node, message: Message) {
        if self.rng.chance(self.drop_per_mille) {
            return;
        }
        let copies = if self.rng.chance(self.duplicate_per_mille) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let at = self.now + self.rng.below(12);
            self.network.push(InFlight {
                at,
                from,
                to,
                message: message.clone(),
            });
        }
    }

    fn reachable(&self, node: Node) -> bool {
        node == CONTROLLER || self.replicas[node as usize].reachable()
    }

    /// Delivers what is due, in a random order.
    fn deliver(&mut self) {
        let mut due = Vec::new();
        let mut index = 0;
        while index < self.network.len() {
            if self.network[index].at <= self.now {
                due.push(self.network.swap_remove(index));
            } else {
                index += 1;
            }
        }
        while !due.is_empty() {
            let pick = self.rng.below(due.len() as u64) as usize;
            let message = due.swap_remove(pick);
            if self.reachable(message.from) && self.reachable(message.to) {
                self.receive(message);
            }
        }
    }

    fn receive(
        &mut self,
        InFlight {
            from, to, message, ..
        }: InFlight,
    ) {
        if to == CONTROLLER {
            if let Message::AlterInSync {
                leader_epoch,
                proposal,
            } = message
            {
                let alive = self.controller.alive;
                let config = self.controller.config;
                // A refusal changes nothing; the leader learns the state
                // from the metadata.
                let result = self.controller.control.alter_in_sync(
                    from,
                    leader_epoch,
                    proposal.partition_epoch,
                    &proposal.in_sync,
                    |n| alive[n as usize],
                    config,
                );
                trace(format_args!(
                    "{from} asks in sync {:?}: {result:?} -> {:?}",
                    proposal.in_sync, self.controller.control
                ));
            }
            return;
        }
        let now = self.now;
        let seed = self.seed;
        let replica = &mut self.replicas[to as usize];
        let mut role = std::mem::replace(&mut replica.role, Role::Idle);
        let mut replies = Vec::new();
        match (&mut role, message) {
            (
                Role::Follower { state, .. },
                Message::Push {
                    epoch,
                    base,
                    records,
                    high_watermark,
                },
            ) if from == state.leader() => {
                let end = base + records.len() as u64;
                let verdict = state.push(epoch, base, end, replica.log.len() as u64);
                let status = match verdict {
                    PushVerdict::Append => {
                        let epoch = state.leader_epoch();
                        for record in records {
                            replica
                                .cache
                                .assign(record.epoch, replica.log.len() as u64)
                                .unwrap_or_else(|e| panic!("seed {seed}: node {to}: {e}"));
                            replica.log.push(record);
                        }
                        state.leader_high_watermark(
                            epoch,
                            high_watermark,
                            replica.log.len() as u64,
                        );
                        Some(AckStatus::Ok)
                    }
                    PushVerdict::Held => {
                        let epoch = state.leader_epoch();
                        state.leader_high_watermark(
                            epoch,
                            high_watermark,
                            replica.log.len() as u64,
                        );
                        Some(AckStatus::Ok)
                    }
                    PushVerdict::Refuse(status) => Some(status),
                    PushVerdict::Ignore => None,
                };
                if let Some(status) = status {
                    replica.durable_acked = replica.durable;
                    replies.push((
                        from,
                        Message::Ack {
                            epoch,
                            status,
                            log_end: replica.log.len() as u64,
                            durable_end: replica.durable as u64,
                        },
                    ));
                }
            }
            (Role::Follower { state, asked_ms }, Message::Answer { epoch, asked, end })
                if from == state.leader() =>
            {
                let log_end = replica.log.len() as u64;
                let shown = replica.high_watermark;
                let point = match state.answered(epoch, asked, end, &replica.cache, log_end) {
                    Answered::Ignored | Answered::Follow => None,
                    Answered::TruncateTo(point) => Some(point),
                    // Every log here starts at 0.
                    Answered::Restart => Some(0),
                };
                if let Some(point) = point {
                    // Never below what it showed consumers.
                    assert!(
                        point >= shown,
                        "seed {seed}: node {to} truncates to {point}, below its high watermark {shown}"
                    );
                    replica.truncate(point);
                    if let FollowerStep::Ask(asked) = state.next_step(&replica.cache) {
                        replies.push((state.leader(), Message::Ask { epoch, asked }));
                    }
                    *asked_ms = now;
                }
            }
            (
                Role::Leader {
                    epoch,
                    followers,
                    pushes,
                    state,
                    ..
                },
                Message::Ack {
                    epoch: acked_epoch,
                    status,
                    log_end,
                    durable_end,
                },
            ) if acked_epoch == *epoch && followers.contains(&from) => {
                // (A replica a move removed in this epoch is no follower:
                // its late acknowledgements count for nothing.)
                pushes.answered(from, status, log_end, now);
                if status == AckStatus::Ok {
                    state
                        .follower_durable(from, durable_end, now)
                        .unwrap_or_else(|e| panic!("seed {seed}: leader {to}: {e}"));
                }
            }
            (
                Role::Leader { epoch, .. },
                Message::Ask {
                    epoch: asked_epoch,
                    asked,
                },
            ) if asked_epoch == *epoch => {
                let end = replica.cache.end_of(asked, replica.log.len() as u64);
                replies.push((
                    from,
                    Message::Answer {
                        epoch: asked_epoch,
                        asked,
                        end,
                    },
                ));
            }
            _ => {}
        }
        replica.role = role;
        for (peer, reply) in replies {
            self.send(to, peer, reply);
        }
        self.settle(to as usize);
    }

    /// After a change at `index`: the high watermark shown, acknowledgements
    /// and the exposure check.
    fn settle(&mut self, index: usize) {
        let seed = self.seed;
        let replica = &mut self.replicas[index];
        let high = match &mut replica.role {
            Role::Idle => replica.high_watermark.min(replica.log.len() as u64),
            Role::Follower { state, .. } => state.high_watermark(),
            Role::Leader { state, waiting, .. } => {
                let high = state.high_watermark();
                assert!(
                    high <= replica.durable as u64,
                    "seed {seed}: leader {index} shows {high}, past its durable {}",
                    replica.durable
                );
                waiting.retain(|(offset, id)| {
                    if *offset < high {
                        assert_eq!(replica.log[*offset as usize].id, *id, "seed {seed}");
                        self.acked.push((*offset, *id));
                        false
                    } else {
                        true
                    }
                });
                high
            }
        };
        replica.high_watermark = high;
        let high = high as usize;
        assert!(
            high <= replica.log.len(),
            "seed {seed}: node {index} shows {high} past its log"
        );
        while replica.verified < high {
            let at = replica.verified;
            match self.exposed.get(at) {
                Some(read) => assert_eq!(
                    *read, replica.log[at],
                    "seed {seed}: node {index} shows at offset {at} a record other than the one read"
                ),
                None => self.exposed.push(replica.log[at]),
            }
            replica.verified += 1;
        }
    }

    /// A node applies the controller's current metadata.
    fn apply_metadata(&mut self, index: usize) {
        let seed = self.seed;
        let now = self.now;
        let control = self.controller.control.clone();
        let replica = &mut self.replicas[index];
        if !replica.reachable()
            || self.controller.incarnation[index] != replica.incarnation
            || replica.applied == Some(control.partition_epoch)
        {
            return;
        }
        if let Some(seen) = replica.epoch_seen {
            assert!(
                control.leader_epoch >= seen,
                "seed {seed}: node {index}'s epoch went back"
            );
        }
        replica.epoch_seen = Some(control.leader_epoch);
        replica.applied = Some(control.partition_epoch);
        trace(format_args!(
            "{now} node {index} applies {control:?}: log {} durable {} hw {}",
            replica.log.len(),
            replica.durable,
            replica.high_watermark
        ));
        let node = replica.node;
        if !control.replicas.contains(&node) {
            replica.wipe();
            self.settle(index);
            return;
        }
        let followers: Vec<Node> = (control.replicas.iter().copied())
            .filter(|n| *n != node)
            .collect();
        let incarnations = self.controller.incarnation;
        let mut messages = Vec::new();
        let mut role = std::mem::replace(&mut replica.role, Role::Idle);
        let mut waiting_kept = Vec::new();
        let keep = match (&mut role, control.leader) {
            (
                Role::Leader {
                    epoch,
                    followers: pushed,
                    waiting,
                    ..
                },
                Some(leader),
            ) if leader == node && *epoch == control.leader_epoch && *pushed != followers => {
                // A move changed the replicas: the leader starts over,
                // its waiting writes kept.
                waiting_kept = std::mem::take(waiting);
                false
            }
            (
                Role::Leader {
                    epoch,
                    followers: pushed,
                    state,
                    incarnations: seen,
                    ..
                },
                Some(leader),
            ) if leader == node && *epoch == control.leader_epoch => {
                for follower in pushed.iter().copied() {
                    if seen[follower as usize] != incarnations[follower as usize] {
                        state.restarted(follower);
                    }
                }
                *seen = incarnations;
                state.confirmed(control.partition_epoch, &control.in_sync);
                true
            }
            (Role::Follower { state, .. }, Some(leader)) => {
                leader == state.leader() && state.leader_epoch() == control.leader_epoch
            }
            _ => false,
        };
        replica.role = if keep {
            role
        } else {
            match control.leader {
                Some(leader) if leader == node => {
                    // Elected: its durable log must hold every record read.
                    let read = self.exposed.len();
                    assert!(
                        replica.durable >= read && replica.log[..read] == self.exposed[..],
                        "seed {seed}: node {index} elected in epoch {} without every record read \
                         (durable {}, read {read})",
                        control.leader_epoch,
                        replica.durable
                    );
                    replica
                        .cache
                        .assign(control.leader_epoch, replica.log.len() as u64)
                        .unwrap_or_else(|e| panic!("seed {seed}: node {index}: {e}"));
                    let log = LogPosition {
                        log_end: replica.log.len() as u64,
                        durable_end: replica.durable as u64,
                        high_watermark: replica.high_watermark,
                    };
                    Role::Leader {
                        epoch: control.leader_epoch,
                        followers: followers.clone(),
                        state: LeaderState::new(
                            node,
                            &control.replicas,
                            &control.in_sync,
                            control.partition_epoch,
                            log,
                            LEADER,
                            now,
                        ),
                        pushes: Pushes::new(&followers, replica.log.len() as u64, PUSH, now),
                        waiting: waiting_kept,
                        incarnations,
                    }
                }
                Some(leader) => {
                    let (state, step) = FollowerState::new(
                        node,
                        leader,
                        control.leader_epoch,
                        &replica.cache,
                        replica.log.len() as u64,
                        replica.high_watermark,
                    );
                    if let FollowerStep::Ask(asked) = step {
                        messages.push((
                            leader,
                            Message::Ask {
                                epoch: control.leader_epoch,
                                asked,
                            },
                        ));
                    }
                    Role::Follower {
                        state,
                        asked_ms: now,
                    }
                }
                None => Role::Idle,
            }
        };
        for (to, message) in messages {
            self.send(node, to, message);
        }
        self.settle(index);
    }

    /// What each node does on its own as time passes.
    fn tick(&mut self) {
        let now = self.now;
        for index in 0..self.replicas.len() {
            // Pushes the byte cap cuts after their first batch.
            let capped: Vec<bool> = (0..NODES).map(|_| self.rng.chance(300)).collect();
            let replica = &mut self.replicas[index];
            if !replica.up {
                continue;
            }
            let node = replica.node;
            let mut messages = Vec::new();
            match &mut replica.role {
                Role::Leader {
                    epoch,
                    followers,
                    state,
                    pushes,
                    ..
                } => {
                    for follower in followers.iter().copied() {
                        let log = &replica.log;
                        let log_end = log.len() as u64;
                        if let Some(range) = pushes.next(follower, log_end, now) {
                            // Whole batches, as a read of the log gives
                            // them: from the one holding the start, to the
                            // end of the one the range ends in, or of the
                            // first when the byte cap comes first.
                            let start = batch_start(log, range.start as usize);
                            let end = if range.is_empty() {
                                start
                            } else if capped[follower as usize] {
                                batch_boundary_at_or_after(log, start + 1)
                            } else {
                                batch_boundary_at_or_after(log, range.end as usize)
                            };
                            pushes.sent(follower, end as u64);
                            messages.push((
                                follower,
                                Message::Push {
                                    epoch: *epoch,
                                    base: start as u64,
                                    records: log[start..end].to_vec(),
                                    high_watermark: state.high_watermark(),
                                },
                            ));
                        }
                    }
                    if let Some(proposal) = state.propose(now) {
                        messages.push((
                            CONTROLLER,
                            Message::AlterInSync {
                                leader_epoch: *epoch,
                                proposal,
                            },
                        ));
                    }
                }
                Role::Follower { state, asked_ms } => {
                    if let Some(asked) = state.asking() {
                        if *asked_ms + ASK_RESEND_MS <= now {
                            *asked_ms = now;
                            messages.push((
                                state.leader(),
                                Message::Ask {
                                    epoch: state.leader_epoch(),
                                    asked,
                                },
                            ));
                        }
                    }
                }
                Role::Idle => {}
            }
            if replica.reachable() {
                self.controller.heard_ms[index] = now;
                if self.controller.incarnation[index] != replica.incarnation {
                    // A new incarnation: its old self is fenced first.
                    self.controller.incarnation[index] = replica.incarnation;
                    self.controller.fence(node, self.seed);
                }
                if !self.controller.alive[index] {
                    self.controller.unfence(node, self.seed);
                }
            }
            for (to, message) in messages {
                self.send(node, to, message);
            }
            self.settle(index);
        }
        for index in 0..self.replicas.len() {
            if self.controller.alive[index] && self.controller.heard_ms[index] + LEASE_MS < now {
                self.controller.fence(index as Node, self.seed);
            }
        }
    }

    fn produce(&mut self, index: usize) {
        let count = 1 + self.rng.below(4);
        let replica = &mut self.replicas[index];
        if !replica.up {
            return;
        }
        let Role::Leader {
            epoch,
            state,
            waiting,
            ..
        } = &mut replica.role
        else {
            return;
        };
        if !state.accepts_all_acks() {
            return;
        }
        for written in 0..count {
            let record = Record {
                epoch: *epoch,
                id: self.next_id,
                batch_end: written + 1 == count,
            };
            self.next_id += 1;
            waiting.push((replica.log.len() as u64, record.id));
            replica.log.push(record);
        }
        state.leader_appended(replica.log.len() as u64);
    }

    fn flush(&mut self, index: usize) {
        let now = self.now;
        let replica = &mut self.replicas[index];
        if !replica.up {
            return;
        }
        replica.durable = replica.log.len();
        let node = replica.node;
        let mut ack = None;
        match &mut replica.role {
            Role::Leader { state, .. } => state.leader_durable(replica.durable as u64, now),
            Role::Follower { state, .. }
                if state.following() && replica.durable_acked < replica.durable =>
            {
                replica.durable_acked = replica.durable;
                ack = Some((
                    state.leader(),
                    Message::Ack {
                        epoch: state.leader_epoch(),
                        status: AckStatus::Ok,
                        log_end: replica.log.len() as u64,
                        durable_end: replica.durable as u64,
                    },
                ));
            }
            _ => {}
        }
        if let Some((to, message)) = ack {
            self.send(node, to, message);
        }
        self.settle(index);
    }

    fn crash(&mut self, index: usize) {
        let replica = &mut self.replicas[index];
        if !replica.up {
            return;
        }
        trace(format_args!(
            "{} crash {index}: log {} durable {}",
            self.now,
            replica.log.len(),
            replica.durable
        ));
        // What was not synced is lost, perhaps only part of it.
        let kept = replica.durable
            + self
                .rng
                .below((replica.log.len() - replica.durable) as u64 + 1) as usize;
        let kept = if self.rng.chance(500) {
            replica.durable
        } else {
            // A torn batch does not pass its checksum: recovery drops it.
            batch_start(&replica.log, kept)
        };
        replica.log.truncate(kept);
        replica.durable = kept;
        replica.durable_acked = replica.durable_acked.min(kept);
        replica.verified = replica.verified.min(kept);
        // The epoch cache is rebuilt from the batches' epochs.
        replica.cache = EpochCache::default();
        for (offset, record) in replica.log.iter().enumerate() {
            replica
                .cache
                .assign(record.epoch, offset as u64)
                .expect("the log's epochs rise");
        }
        replica.up = false;
        replica.role = Role::Idle;
        replica.applied = None;
        // Only the part of the log it knows committed shows after a restart.
        replica.high_watermark = replica.high_watermark.min(kept as u64);
    }

    fn restart(&mut self, index: usize) {
        let replica = &mut self.replicas[index];
        if replica.up {
            return;
        }
        replica.up = true;
        replica.incarnation += 1;
    }

    fn step(&mut self, quiet: bool) {
        self.now += self.rng.below(4);
        let index = self.rng.below(NODES as u64) as usize;
        let roll = self.rng.below(100);
        match roll {
            0..=24 => self.produce(index),
            25..=44 => self.flush(index),
            45..=54 => self.apply_metadata(index),
            55..=57 if !quiet => self.crash(index),
            58..=61 if !quiet => self.restart(index),
            62 if !quiet => {
                trace(format_args!("{} isolate {index}", self.now));
                self.replicas[index].isolated = true
            }
            63..=65 if !quiet => self.replicas[index].isolated = false,
            66 if !quiet && self.moves => self.random_move(),
            _ => {}
        }
        self.tick();
        self.deliver();
        for index in 0..self.replicas.len() {
            self.settle(index);
        }
        for (index, replica) in self.replicas.iter().enumerate() {
            if let Some(seen) = replica.epoch_seen {
                assert!(
                    seen <= self.controller.control.leader_epoch,
                    "seed {}: node {index}",
                    self.seed
                );
            }
        }
    }

    /// The controller moves the partition to two or three of the nodes,
    /// in a random order, or cancels the move in progress.
    fn random_move(&mut self) {
        if self.controller.control.moving.is_some() && self.rng.chance(300) {
            self.controller.moves(None, self.seed);
            return;
        }
        let mut nodes: Vec<Node> = (0..NODES).collect();
        for at in (1..nodes.len()).rev() {
            let pick = self.rng.below(at as u64 + 1) as usize;
            nodes.swap(at, pick);
        }
        nodes.truncate(2 + self.rng.below(2) as usize);
        self.controller.moves(Some(nodes), self.seed);
    }

    fn heal(&mut self) {
        self.drop_per_mille = 0;
        self.duplicate_per_mille = 0;
        for index in 0..self.replicas.len() {
            self.restart(index);
            self.replicas[index].isolated = false;
        }
    }

    /// After the quiet run: one leader, equal logs, all of them committed,
    /// every acknowledged write where it was acknowledged.
    fn check_converged(&mut self) {
        let seed = self.seed;
        for _ in 0..200 {
            self.now += 5;
            for index in 0..self.replicas.len() {
                self.flush(index);
                self.apply_metadata(index);
            }
            self.tick();
            self.deliver();
        }
        let leader = self.controller.control.leader.unwrap_or_else(|| {
            panic!(
                "seed {seed}: no leader after healing: {:?}",
                self.controller.control
            )
        });
        assert_eq!(
            self.controller.control.moving, None,
            "seed {seed}: a move is still in progress after healing"
        );
        let leader_log = self.replicas[leader as usize].log.clone();
        let holders = self.controller.control.replicas.clone();
        for replica in self.replicas.iter().filter(|r| holders.contains(&r.node)) {
            assert_eq!(
                replica.log.len(),
                leader_log.len(),
                "seed {seed}: node {} holds {} records, the leader {}: {:?}",
                replica.node,
                replica.log.len(),
                leader_log.len(),
                self.controller.control
            );
            assert!(
                replica.log == leader_log,
                "seed {seed}: node {}'s log differs",
                replica.node
            );
        }
        let Role::Leader { state, .. } = &self.replicas[leader as usize].role else {
            panic!("seed {seed}: node {leader} does not lead");
        };
        assert_eq!(
            state.high_watermark(),
            leader_log.len() as u64,
            "seed {seed}: not all committed; in sync {:?}",
            state.in_sync()
        );
        for (offset, id) in &self.acked {
            assert_eq!(
                leader_log[*offset as usize].id, *id,
                "seed {seed}: acknowledged write {id} is not at offset {offset}"
            );
        }
    }
}

#[test]
fn no_acknowledged_or_read_record_is_lost_or_changed_under_faults() {
    let mut acked = 0;
    let mut elections = 0;
    for seed in seeds() {
        let mut sim = Sim::new(seed);
        for _ in 0..STEPS {
            sim.step(false);
        }
        sim.heal();
        for _ in 0..QUIET_STEPS {
            sim.step(true);
        }
        sim.check_converged();
        acked += sim.acked.len();
        elections += sim.controller.leaders.len();
    }
    // The schedules do exercise the protocol: writes are acknowledged and
    // leaders change.
    let runs = seeds().len();
    println!("{runs} schedules: {acked} writes acknowledged, {elections} leaders elected");
    assert!(
        acked >= runs * 20,
        "only {acked} writes acknowledged over {runs} runs"
    );
    assert!(
        elections >= runs * 2,
        "only {elections} elections over {runs} runs"
    );
}

#[test]
fn one_node_lost_for_good_loses_nothing_and_the_rest_go_on() {
    for seed in common::seeds(20_000, SEEDS / 4) {
        let mut sim = Sim::new(seed);
        for _ in 0..STEPS / 2 {
            sim.step(false);
        }
        sim.heal();
        for _ in 0..QUIET_STEPS {
            sim.step(true);
        }
        // Node 0 dies for good; the other two still make two in sync.
        sim.crash(0);
        let before = sim.acked.len();
        for _ in 0..QUIET_STEPS {
            sim.now += sim.rng.below(4);
            let index = 1 + sim.rng.below(2) as usize;
            match sim.rng.below(10) {
                0..=3 => sim.produce(index),
                4..=7 => sim.flush(index),
                _ => sim.apply_metadata(index),
            }
            sim.tick();
            sim.deliver();
            for index in 0..3 {
                sim.settle(index);
            }
        }
        assert!(
            sim.acked.len() > before,
            "seed {seed}: nothing acknowledged with two of three replicas: {:?}",
            sim.controller.control
        );
        let leader = sim.controller.control.leader.expect("a leader") as usize;
        assert_ne!(leader, 0, "seed {seed}");
        for (offset, id) in &sim.acked {
            assert_eq!(
                sim.replicas[leader].log[*offset as usize].id, *id,
                "seed {seed}"
            );
        }
    }
}

#[test]
fn moves_between_nodes_lose_nothing_acknowledged_or_read_under_faults() {
    let mut acked = 0;
    let mut moved = 0;
    let seeds = common::seeds(30_000, SEEDS / 2);
    for &seed in &seeds {
        let mut sim = Sim::with_moves(seed, true);
        let first = sim.controller.control.replicas.clone();
        for _ in 0..STEPS {
            sim.step(false);
        }
        sim.heal();
        for _ in 0..QUIET_STEPS {
            sim.step(true);
        }
        sim.check_converged();
        acked += sim.acked.len();
        moved += usize::from(sim.controller.control.replicas != first);
    }
    let runs = SEEDS as usize / 2;
    println!(
        "{runs} schedules with moves: {acked} writes acknowledged, {moved} ended on other replicas"
    );
    assert!(acked >= runs * 20, "only {acked} writes acknowledged");
    assert!(
        moved >= runs / 2,
        "only {moved} of {runs} runs moved the partition"
    );
}

/// Sanity of the harness itself: a set of nodes written as a `BTreeSet`.
#[test]
fn the_controller_starts_with_every_replica_in_sync() {
    let sim = Sim::new(1);
    let all: BTreeSet<Node> = REPLICAS.into();
    assert_eq!(sim.controller.control.in_sync, all);
}
