//! A seeded simulation of the controller quorum: 1, 3 and 5 voters over a
//! network that loses, delays, reorders and duplicates messages and splits
//! into partitions that heal; voters crash and restart from what they had
//! persisted, and one at a time lose their disk. Clients propose records.
//!
//! Invariants are checked after every step (see [`Sim::check`]); after the
//! chaos, the network heals and every node restarts, and liveness is
//! checked: a new proposal commits and every node applies everything that
//! was acknowledged.
//!
//! `SLUICE_TEST_SEED=<n>` replays one seed (for every voter count);
//! `SLUICE_TEST_TRACE=1` prints its events.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::Rng;

use sluice_replication::quorum::{
    Committed, MemoryStorage, NodeId, Outputs, ProposalId, Quorum, QuorumConfig, QuorumError,
    QuorumStorage, Role,
};

/// Seeds per voter count when no seed is given: enough schedules to find
/// ordering bugs, bounded so the suite stays a few seconds in debug builds.
/// `SLUICE_TEST_SEEDS=<n>` runs more (a longer soak).
const SEEDS_PER_VOTER_COUNT: u64 = 150;
/// Ticks of chaos per run.
const CHAOS_TICKS: u64 = 400;
/// Ticks allowed, after healing, for every node to catch up and for a new
/// proposal to commit (many election timeouts).
const HEAL_TICKS_MAX: u64 = 400;
const ELECTION_TICKS: usize = 10;
/// A client that saw no commit of its record in this many ticks proposes
/// it again (to whichever node leads then).
const PROBE_RETRY_TICKS: u64 = 5 * ELECTION_TICKS as u64;
/// Small, so snapshots and catch-up by snapshot happen in every run.
const SNAPSHOT_INTERVAL_ENTRIES: u64 = 8;
const CLUSTER_ID: u64 = 7;

/// A node's applied state machine: the records it applied, by index.
type StateMachine = BTreeMap<u64, (u64, Vec<u8>)>;

fn encode_state(state: &StateMachine) -> Vec<u8> {
    let mut out = Vec::new();
    for (index, (term, payload)) in state {
        out.extend_from_slice(&index.to_le_bytes());
        out.extend_from_slice(&term.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(payload);
    }
    out
}

fn decode_state(mut bytes: &[u8]) -> StateMachine {
    let mut state = StateMachine::new();
    while !bytes.is_empty() {
        let index = u64::from_le_bytes(bytes[0..8].try_into().expect("8 bytes"));
        let term = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes")) as usize;
        state.insert(index, (term, bytes[20..20 + len].to_vec()));
        bytes = &bytes[20 + len..];
    }
    state
}

struct Node {
    id: NodeId,
    quorum: Option<Quorum<MemoryStorage>>,
    /// What survives a crash: written from `Outputs::persist` before sends.
    disk: MemoryStorage,
    disk_id: u64,
    state: StateMachine,
}

struct InFlight {
    deliver_at: u64,
    from: NodeId,
    to: NodeId,
    bytes: Vec<u8>,
}

struct Sim {
    seed: u64,
    rng: Rng,
    voters: Vec<NodeId>,
    nodes: Vec<Node>,
    network: Vec<InFlight>,
    /// `side[i]`: node i's side of the partition; messages cross only
    /// between equal sides.
    side: Vec<u8>,
    now: u64,
    loss_per_mille: u64,
    /// The first payload applied at each index, by any node.
    history: BTreeMap<u64, (u64, Vec<u8>)>,
    leaders: HashMap<u64, NodeId>,
    /// Proposals taken by a leader, not yet seen applied.
    proposed: Vec<(ProposalId, Vec<u8>)>,
    /// Proposals applied somewhere (committed, acknowledged to the client).
    acknowledged: BTreeMap<u64, Vec<u8>>,
    next_payload: u64,
    /// Faults and recoveries that happened, to show the schedule covers them.
    counts: Counts,
}

#[derive(Default, Debug, Clone, Copy)]
struct Counts {
    crashes: u64,
    wipes: u64,
    partitions: u64,
    snapshots_installed: u64,
}

fn config(seed: u64, disk_id: u64) -> QuorumConfig {
    QuorumConfig {
        cluster_id: CLUSTER_ID,
        election_ticks: ELECTION_TICKS,
        heartbeat_ticks: 2,
        snapshot_interval_entries: SNAPSHOT_INTERVAL_ENTRIES,
        election_seed: seed,
        disk_id,
    }
}

impl Sim {
    fn new(seed: u64, voter_count: u64) -> Self {
        let voters: Vec<NodeId> = (0..voter_count).map(NodeId).collect();
        let nodes = voters
            .iter()
            .map(|&id| {
                let disk = MemoryStorage::bootstrap(&voters);
                let disk_id = (id.0 + 1) << 32;
                let quorum = Quorum::new(id, &voters, disk.clone(), config(seed, disk_id))
                    .expect("a bootstrapped voter starts");
                Node {
                    id,
                    quorum: Some(quorum),
                    disk,
                    disk_id,
                    state: StateMachine::new(),
                }
            })
            .collect();
        Sim {
            seed,
            rng: Rng(seed),
            side: vec![0; voters.len()],
            voters,
            nodes,
            network: Vec::new(),
            now: 0,
            loss_per_mille: 50,
            history: BTreeMap::new(),
            leaders: HashMap::new(),
            proposed: Vec::new(),
            acknowledged: BTreeMap::new(),
            next_payload: 0,
            counts: Counts::default(),
        }
    }

    fn up(&self, i: usize) -> bool {
        self.nodes[i].quorum.is_some()
    }

    fn trace(&self, what: &str) {
        if std::env::var_os("SLUICE_TEST_TRACE").is_some() {
            let roles: Vec<String> = self
                .nodes
                .iter()
                .map(|n| match &n.quorum {
                    Some(q) => format!(
                        "{}:{:?}{}/t{}/c{}/l{}/d{}",
                        n.id,
                        q.role(),
                        if q.catching_up() { "(catching up)" } else { "" },
                        q.term(),
                        q.committed_index(),
                        q.storage().entries_held().last().map_or(0, |e| e.index),
                        n.disk.entries_held().last().map_or(0, |e| e.index)
                    ),
                    None => format!("{}:down", n.id),
                })
                .collect();
            eprintln!("t{} {what} | {}", self.now, roles.join(" "));
        }
    }

    fn crash(&mut self, i: usize) {
        self.trace(&format!("crash {i}"));
        self.counts.crashes += 1;
        self.nodes[i].quorum = None;
        self.nodes[i].state.clear();
    }

    fn restart(&mut self, i: usize) {
        self.trace(&format!("restart {i}"));
        let node = &mut self.nodes[i];
        assert!(node.quorum.is_none());
        let quorum = Quorum::new(
            node.id,
            &self.voters,
            node.disk.clone(),
            config(self.seed ^ self.now, node.disk_id),
        )
        .unwrap_or_else(|e| panic!("seed {}: node {} restarts: {e}", self.seed, node.id));
        node.state = decode_state(&node.disk.latest_snapshot().data);
        node.quorum = Some(quorum);
    }

    fn wipe(&mut self, i: usize) {
        self.trace(&format!("wipe {i}"));
        self.crash(i);
        self.counts.wipes += 1;
        self.nodes[i].disk = MemoryStorage::new();
        self.nodes[i].disk_id += 1;
        self.restart(i);
    }

    /// Does what one `Outputs` asks, in its order. `crash_point` 1 crashes
    /// before persisting, 2 after persisting and before sending.
    fn handle(&mut self, i: usize, out: Outputs, crash_point: u8) -> bool {
        if crash_point == 1 {
            self.crash(i);
            return false;
        }
        let node = &mut self.nodes[i];
        if let Some(snapshot) = &out.persist.snapshot {
            node.disk
                .install_snapshot(snapshot.clone())
                .expect("disk installs snapshot");
        }
        node.disk
            .append(&out.persist.entries)
            .expect("disk appends");
        if let Some(hard_state) = &out.persist.hard_state {
            node.disk
                .set_hard_state(hard_state.clone())
                .expect("disk sets hard state");
        }
        if out.persist.caught_up {
            node.disk.set_caught_up().expect("disk records catch-up");
        }
        if crash_point == 2 {
            self.crash(i);
            return false;
        }
        let from = self.nodes[i].id;
        for message in out.messages {
            self.send(from, message.to, message.bytes);
        }
        for committed in out.committed {
            self.apply(i, committed);
        }
        if let Some(snapshot) = out.snapshot {
            self.counts.snapshots_installed += 1;
            let state = decode_state(&snapshot.state);
            for (index, (term, payload)) in &state {
                self.record(i, *index, *term, payload);
            }
            self.nodes[i].state = state;
        }
        true
    }

    fn apply(&mut self, i: usize, committed: Committed) {
        let Committed {
            index,
            term,
            payload,
        } = committed;
        if let Some((&last, _)) = self.nodes[i].state.last_key_value() {
            assert!(
                index > last,
                "seed {}: node {i} applied {index} after {last}",
                self.seed
            );
        }
        self.record(i, index, term, &payload);
        self.nodes[i].state.insert(index, (term, payload.to_vec()));
    }

    fn record(&mut self, i: usize, index: u64, term: u64, payload: &[u8]) {
        match self.history.get(&index) {
            Some((t, p)) => assert!(
                *t == term && p.as_slice() == payload,
                "seed {}: node {i} applied another record at index {index} (term {term} vs {t})",
                self.seed
            ),
            None => {
                self.trace(&format!("node {i} applies {index} term {term}"));
                self.history.insert(index, (term, payload.to_vec()));
            }
        }
        if let Some(position) = self
            .proposed
            .iter()
            .position(|(id, p)| id.index == index && id.term == term && p.as_slice() == payload)
        {
            let (_, p) = self.proposed.swap_remove(position);
            self.acknowledged.insert(index, p);
        }
    }

    fn send(&mut self, from: NodeId, to: NodeId, bytes: Vec<u8>) {
        if self.rng.chance(self.loss_per_mille) {
            return;
        }
        let copies = if self.rng.chance(30) { 2 } else { 1 };
        for _ in 0..copies {
            let delay = self.rng.below(4);
            self.network.push(InFlight {
                deliver_at: self.now + delay,
                from,
                to,
                bytes: bytes.clone(),
            });
        }
    }

    fn drain_ready(&mut self, i: usize, crash_per_mille: u64) {
        loop {
            let Some(quorum) = self.nodes[i].quorum.as_mut() else {
                return;
            };
            if !quorum.has_ready() {
                break;
            }
            let out = quorum.ready().expect("memory storage never fails");
            let crash_point = if self.rng.chance(crash_per_mille) {
                1 + self.rng.below(2) as u8
            } else {
                0
            };
            if !self.handle(i, out, crash_point) {
                return;
            }
            let node = &mut self.nodes[i];
            let quorum = node.quorum.as_mut().expect("up");
            quorum.advance();
            if quorum.snapshot_due() {
                let snapshot = quorum
                    .compact(encode_state(&node.state))
                    .expect("snapshot at the applied index");
                node.disk
                    .store_snapshot_and_compact(snapshot)
                    .expect("disk compacts");
            }
        }
    }

    /// One tick: time passes, due messages arrive, every node does its work.
    fn step(&mut self, crash_per_mille: u64) {
        self.now += 1;
        for i in 0..self.nodes.len() {
            if let Some(q) = self.nodes[i].quorum.as_mut() {
                q.tick();
            }
            self.drain_ready(i, crash_per_mille);
        }
        let (due, later): (Vec<InFlight>, Vec<InFlight>) = std::mem::take(&mut self.network)
            .into_iter()
            .partition(|m| m.deliver_at <= self.now);
        self.network = later;
        for message in due {
            let (f, t) = (message.from.0 as usize, message.to.0 as usize);
            if self.side[f] != self.side[t] || !self.up(t) {
                continue;
            }
            let quorum = self.nodes[t].quorum.as_mut().expect("up");
            let term_before = quorum.term();
            match quorum.receive(message.from, &message.bytes) {
                Ok(())
                | Err(QuorumError::VoteRefusedNotCaughtUp)
                | Err(QuorumError::RetiredDisk { .. }) => {}
                Err(QuorumError::StaleTerm { .. }) => {
                    assert_eq!(
                        quorum.term(),
                        term_before,
                        "a stale message changed the term"
                    );
                }
                Err(e) => panic!("seed {}: a well-formed message refused: {e}", self.seed),
            }
            self.drain_ready(t, crash_per_mille);
        }
        self.check();
    }

    /// Invariants, after every step.
    fn check(&mut self) {
        for node in &self.nodes {
            let Some(quorum) = &node.quorum else { continue };
            if quorum.role() != Role::Leader {
                continue;
            }
            let term = quorum.term();
            let previous = *self.leaders.entry(term).or_insert(node.id);
            assert_eq!(
                previous, node.id,
                "seed {}: two leaders in term {term}: {previous} and {}",
                self.seed, node.id
            );
            // What anyone applied is the leader's committed log.
            let committed = quorum.committed_index();
            for entry in quorum.storage().entries_held() {
                if entry.index > committed || entry.data.is_empty() {
                    continue;
                }
                if let Some((t, p)) = self.history.get(&entry.index) {
                    assert!(
                        *t == entry.term && p.as_slice() == &entry.data[..],
                        "seed {}: leader {} holds another committed record at {}",
                        self.seed,
                        node.id,
                        entry.index
                    );
                }
            }
            let held = quorum.storage().entries_held();
            if let Some(first) = held.first().map(|e| e.index).filter(|&f| f <= committed) {
                for (index, (t, p)) in self.history.range(first..=committed) {
                    let entry = &held[(index - first) as usize];
                    assert!(
                        entry.term == *t && &entry.data[..] == p.as_slice(),
                        "seed {}: applied record {index} (term {t}) is not in leader {}'s log (term {} at tick {}; leader term {term})",
                        self.seed,
                        node.id,
                        entry.term,
                        self.now
                    );
                }
            }
        }
        for node in &self.nodes {
            for (index, (term, payload)) in &node.state {
                let (t, p) = self.history.get(index).expect("recorded on apply");
                assert!(
                    t == term && p == payload,
                    "seed {}: state differs",
                    self.seed
                );
            }
        }
    }

    fn propose(&mut self, i: usize) {
        let payload = format!("record-{}", self.next_payload).into_bytes();
        let Some(quorum) = self.nodes[i].quorum.as_mut() else {
            return;
        };
        match quorum.propose(payload.clone()) {
            Ok(id) => {
                self.next_payload += 1;
                self.proposed.push((id, payload));
            }
            Err(QuorumError::NotLeader { leader }) => {
                assert_ne!(leader, Some(quorum.node_id()), "not leader names itself");
            }
            Err(QuorumError::ProposalDropped) => {}
            Err(e) => panic!("seed {}: propose: {e}", self.seed),
        }
        self.drain_ready(i, 0);
    }

    fn anyone_empty(&self) -> bool {
        self.nodes.iter().any(|n| n.disk.catching_up())
    }

    fn chaos(&mut self) {
        let n = self.nodes.len();
        for _ in 0..CHAOS_TICKS {
            let i = self.rng.below(n as u64) as usize;
            match self.rng.below(1000) {
                0..=9 if self.up(i) => self.crash(i),
                10..=59 if !self.up(i) => self.restart(i),
                60..=64 if n > 1 && self.up(i) && !self.anyone_empty() => self.wipe(i),
                65..=79 => {
                    self.trace("partition");
                    self.counts.partitions += 1;
                    for side in self.side.iter_mut() {
                        *side = (self.rng.0 % 2) as u8;
                        self.rng.next();
                    }
                }
                80..=119 => self.side.iter_mut().for_each(|s| *s = 0),
                120..=399 => self.propose(i),
                _ => {}
            }
            self.step(3);
        }
    }

    /// Heals everything and checks liveness and durability.
    fn heal(&mut self) {
        self.side.iter_mut().for_each(|s| *s = 0);
        self.loss_per_mille = 0;
        for i in 0..self.nodes.len() {
            if !self.up(i) {
                self.restart(i);
            }
        }
        // A client's probe record; proposed again (as a client retries) if
        // the leader that took it lost it before committing it.
        let mut probes: Vec<Vec<u8>> = Vec::new();
        let mut proposed_at = 0;
        for tick in 0..HEAL_TICKS_MAX {
            self.step(0);
            if tick % 25 == 0 {
                self.trace("healing");
            }
            let committed = probes
                .iter()
                .any(|p| self.history.values().any(|(_, q)| q == p));
            let retry = probes.is_empty() || (!committed && tick - proposed_at > PROBE_RETRY_TICKS);
            if retry {
                if let Some(i) = (0..self.nodes.len()).find(|&i| {
                    self.nodes[i]
                        .quorum
                        .as_ref()
                        .is_some_and(|q| q.role() == Role::Leader)
                }) {
                    let before = self.next_payload;
                    self.propose(i);
                    if self.next_payload > before {
                        probes.push(format!("record-{before}").into_bytes());
                        proposed_at = tick;
                    }
                }
            }
            let caught_up = self
                .nodes
                .iter()
                .all(|n| n.quorum.as_ref().is_some_and(|q| !q.catching_up()));
            let done = caught_up
                && probes.iter().any(|p| {
                    self.nodes
                        .iter()
                        .all(|n| n.state.values().any(|(_, q)| q == p))
                        && self.acknowledged.iter().all(|(index, p)| {
                            self.nodes
                                .iter()
                                .all(|n| n.state.get(index).is_some_and(|(_, q)| q == p))
                        })
                });
            if done {
                return;
            }
        }
        panic!(
            "seed {}: {} voters: after healing, the cluster did not commit a new proposal, catch up every wiped voter and apply every acknowledged record on every node within {HEAL_TICKS_MAX} ticks (acknowledged {}, probes proposed {})",
            self.seed,
            self.nodes.len(),
            self.acknowledged.len(),
            probes.len()
        );
    }
}

fn seeds() -> Vec<u64> {
    common::seeds(0x51_u64 << 32, SEEDS_PER_VOTER_COUNT)
}

fn run(voter_count: u64) {
    let started = std::time::Instant::now();
    let mut acknowledged = 0;
    let mut total = Counts::default();
    for seed in seeds() {
        eprintln!("quorum simulation: {voter_count} voters, seed {seed} (SLUICE_TEST_SEED={seed} replays)");
        let mut sim = Sim::new(seed, voter_count);
        sim.chaos();
        sim.heal();
        acknowledged += sim.acknowledged.len();
        total.crashes += sim.counts.crashes;
        total.wipes += sim.counts.wipes;
        total.partitions += sim.counts.partitions;
        total.snapshots_installed += sim.counts.snapshots_installed;
    }
    assert!(acknowledged > 0, "no proposal was ever acknowledged");
    if seeds().len() > 1 {
        assert!(
            total.crashes > 0 && total.partitions > 0,
            "no faults: {total:?}"
        );
        if voter_count > 1 {
            assert!(
                total.wipes > 0 && total.snapshots_installed > 0,
                "no disk wipe caught up by snapshot: {total:?}"
            );
        }
    }
    eprintln!(
        "quorum simulation: {voter_count} voters, {} seeds, {acknowledged} records acknowledged, {total:?}, {:?}",
        seeds().len(),
        started.elapsed()
    );
}

#[test]
fn one_voter() {
    run(1);
}

#[test]
fn three_voters() {
    run(3);
}

#[test]
fn five_voters() {
    run(5);
}
