//! The quorum on a perfect network: majorities, refusals of bad input, a
//! wiped voter caught up by snapshot.

use sluice_replication::quorum::eraftpb::{Message, MessageType};
use sluice_replication::quorum::{
    encode_message, Envelope, MemoryStorage, NodeId, Quorum, QuorumConfig, QuorumError,
    QuorumStorage, Role,
};

const CLUSTER_ID: u64 = 11;

fn config(node: u64, disk_generation: u64) -> QuorumConfig {
    QuorumConfig {
        cluster_id: CLUSTER_ID,
        election_ticks: 10,
        heartbeat_ticks: 2,
        snapshot_interval_entries: 4,
        election_seed: node,
        disk_id: ((node + 1) << 16) + disk_generation,
    }
}

struct Cluster {
    voters: Vec<NodeId>,
    nodes: Vec<Option<Quorum<MemoryStorage>>>,
    disks: Vec<MemoryStorage>,
    generations: Vec<u64>,
    applied: Vec<Vec<(u64, Vec<u8>)>>,
}

impl Cluster {
    fn new(n: u64) -> Self {
        let voters: Vec<NodeId> = (0..n).map(NodeId).collect();
        let disks: Vec<MemoryStorage> = voters
            .iter()
            .map(|_| MemoryStorage::bootstrap(&voters))
            .collect();
        let nodes = voters
            .iter()
            .map(|&v| {
                Some(
                    Quorum::new(v, &voters, disks[v.0 as usize].clone(), config(v.0, 0))
                        .expect("starts"),
                )
            })
            .collect();
        Cluster {
            applied: vec![Vec::new(); voters.len()],
            generations: vec![0; voters.len()],
            voters,
            nodes,
            disks,
        }
    }

    /// Runs `ticks` ticks; every message is delivered at once, in order.
    fn run(&mut self, ticks: u64) {
        for _ in 0..ticks {
            for i in 0..self.nodes.len() {
                if let Some(q) = self.nodes[i].as_mut() {
                    q.tick();
                }
            }
            self.settle();
        }
    }

    fn settle(&mut self) {
        loop {
            let mut mail = Vec::new();
            for i in 0..self.nodes.len() {
                let Some(q) = self.nodes[i].as_mut() else {
                    continue;
                };
                while q.has_ready() {
                    let out = q.ready().expect("ready");
                    let disk = &mut self.disks[i];
                    if let Some(s) = &out.persist.snapshot {
                        disk.install_snapshot(s.clone()).expect("disk");
                    }
                    disk.append(&out.persist.entries).expect("disk");
                    if let Some(h) = &out.persist.hard_state {
                        disk.set_hard_state(h.clone()).expect("disk");
                    }
                    if out.persist.caught_up {
                        disk.set_caught_up().expect("disk");
                    }
                    for m in out.messages {
                        mail.push((NodeId(i as u64), m.to, m.bytes));
                    }
                    for c in out.committed {
                        self.applied[i].push((c.index, c.payload.to_vec()));
                    }
                    if let Some(s) = out.snapshot {
                        self.applied[i].retain(|(index, _)| *index > s.index);
                    }
                    q.advance();
                    if q.snapshot_due() {
                        let snapshot = q.compact(b"state".to_vec()).expect("compacts");
                        disk.store_snapshot_and_compact(snapshot).expect("disk");
                    }
                }
            }
            if mail.is_empty() {
                return;
            }
            for (from, to, bytes) in mail {
                if let Some(q) = self.nodes[to.0 as usize].as_mut() {
                    match q.receive(from, &bytes) {
                        Ok(()) | Err(QuorumError::StaleTerm { .. }) => {}
                        Err(QuorumError::VoteRefusedNotCaughtUp) => {}
                        Err(e) => panic!("refused: {e}"),
                    }
                }
            }
        }
    }

    fn leader(&self) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| {
            self.nodes[i]
                .as_ref()
                .is_some_and(|q| q.role() == Role::Leader)
        })
    }

    fn crash(&mut self, i: usize) {
        self.nodes[i] = None;
    }

    fn restart(&mut self, i: usize) {
        self.nodes[i] = Some(
            Quorum::new(
                self.voters[i],
                &self.voters,
                self.disks[i].clone(),
                config(i as u64, self.generations[i]),
            )
            .expect("restarts"),
        );
    }

    fn committed_everywhere(&self, payload: &[u8]) -> bool {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_some())
            .all(|i| self.applied[i].iter().any(|(_, p)| p == payload))
    }
}

#[test]
fn five_voters_progress_with_two_down_and_stall_with_three() {
    let mut c = Cluster::new(5);
    c.run(40);
    let leader = c.leader().expect("a leader is elected");
    let others: Vec<usize> = (0..5).filter(|&i| i != leader).collect();
    c.crash(others[0]);
    c.crash(others[1]);
    c.nodes[leader]
        .as_mut()
        .expect("up")
        .propose(b"two-down".to_vec())
        .expect("the leader takes it");
    c.run(20);
    assert!(c.committed_everywhere(b"two-down"), "3 of 5 commit");

    c.crash(others[2]);
    let id = c.nodes[leader]
        .as_mut()
        .expect("up")
        .propose(b"three-down".to_vec())
        .expect("the leader takes it (it cannot know yet)");
    c.run(60);
    assert!(
        c.applied
            .iter()
            .all(|a| a.iter().all(|(_, p)| p != b"three-down")),
        "2 of 5 must not commit"
    );
    let q = c.nodes[leader].as_ref().expect("up");
    assert!(
        q.committed_index() < id.index,
        "committed without a majority"
    );
    // check_quorum: a leader that hears from no majority steps down.
    assert_ne!(
        q.role(),
        Role::Leader,
        "a leader without a majority steps down"
    );
    assert!(matches!(
        c.nodes[leader]
            .as_mut()
            .expect("up")
            .propose(b"refused".to_vec()),
        Err(QuorumError::NotLeader { .. })
    ));

    for &i in &others {
        c.restart(i);
    }
    c.run(60);
    let leader = c.leader().expect("a leader once a majority is back");
    c.nodes[leader]
        .as_mut()
        .expect("up")
        .propose(b"back".to_vec())
        .expect("the leader takes it");
    c.run(20);
    assert!(c.committed_everywhere(b"back"));
    assert!(
        c.committed_everywhere(b"two-down"),
        "nothing committed is lost"
    );
}

#[test]
fn wiped_voter_is_caught_up_by_snapshot_and_votes_only_then() {
    let mut c = Cluster::new(3);
    c.run(40);
    let leader = c.leader().expect("a leader");
    for k in 0..20 {
        c.nodes[leader]
            .as_mut()
            .expect("up")
            .propose(format!("r{k}").into_bytes())
            .expect("leader");
        c.run(1);
    }
    c.run(10);
    let wiped = (leader + 1) % 3;
    c.crash(wiped);
    c.disks[wiped] = MemoryStorage::new();
    c.generations[wiped] += 1;
    c.applied[wiped].clear();
    c.restart(wiped);
    {
        let q = c.nodes[wiped].as_ref().expect("up");
        assert!(q.catching_up() && q.is_empty());
    }
    // A vote request to the empty voter is refused and changes nothing.
    let mut vote = Message::default();
    vote.set_msg_type(MessageType::MsgRequestVote);
    vote.from = (leader as u64) + 1;
    vote.to = (wiped as u64) + 1;
    vote.term = 99;
    vote.index = 1000;
    vote.log_term = 99;
    let q = c.nodes[wiped].as_mut().expect("up");
    let term = q.term();
    assert_eq!(
        q.step(NodeId(leader as u64), vote),
        Err(QuorumError::VoteRefusedNotCaughtUp)
    );
    assert_eq!(q.term(), term);
    c.run(30);
    let q = c.nodes[wiped].as_ref().expect("up");
    assert!(
        !q.catching_up(),
        "the leader caught it up: empty {} stored {} committed {} snapshot {} leader committed {}",
        q.is_empty(),
        q.storage().catching_up(),
        q.committed_index(),
        q.storage().latest_snapshot().get_metadata().index,
        c.nodes[leader].as_ref().expect("up").committed_index()
    );
    assert!(
        q.storage().latest_snapshot().get_metadata().index > 1,
        "caught up from a snapshot, not from index 1"
    );
    assert!(!c.disks[wiped].catching_up(), "the catch-up is persisted");
    assert_eq!(
        q.committed_index(),
        c.nodes[leader].as_ref().expect("up").committed_index()
    );
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let mut c = Cluster::new(3);
    c.run(40);
    let leader = c.leader().expect("a leader");
    let follower = (leader + 1) % 3;
    let term = c.nodes[follower].as_ref().expect("up").term();
    let committed = c.nodes[follower].as_ref().expect("up").committed_index();

    let mut heartbeat = Message::default();
    heartbeat.set_msg_type(MessageType::MsgHeartbeat);
    heartbeat.from = leader as u64 + 1;
    heartbeat.to = follower as u64 + 1;
    heartbeat.term = term + 5;
    let envelope = Envelope {
        cluster_id: CLUSTER_ID,
        from_disk: 77,
        to_disk: 0,
    };
    let q = c.nodes[follower].as_mut().expect("up");
    let from = NodeId(leader as u64);

    assert!(matches!(
        q.receive(from, b"\x00garbage-bytes-on-the-peer-port......."),
        Err(QuorumError::Malformed { .. })
    ));
    assert!(matches!(
        q.receive(from, &[]),
        Err(QuorumError::Malformed { .. })
    ));
    let other = Envelope {
        cluster_id: CLUSTER_ID + 1,
        ..envelope
    };
    assert_eq!(
        q.receive(from, &encode_message(other, &heartbeat)),
        Err(QuorumError::OtherCluster {
            expected: CLUSTER_ID,
            got: CLUSTER_ID + 1
        })
    );
    // A node claiming another's id, and a node outside the quorum.
    let liar = NodeId(((leader + 2) % 3) as u64);
    assert!(matches!(
        q.receive(liar, &encode_message(envelope, &heartbeat)),
        Err(QuorumError::UnknownSender { .. })
    ));
    let mut stranger = heartbeat.clone();
    stranger.from = 42;
    assert!(matches!(
        q.receive(NodeId(41), &encode_message(envelope, &stranger)),
        Err(QuorumError::UnknownSender { .. })
    ));
    let mut local = heartbeat.clone();
    local.set_msg_type(MessageType::MsgHup);
    assert!(matches!(
        q.step(from, local),
        Err(QuorumError::LocalMessage { .. })
    ));
    let mut stale = heartbeat.clone();
    stale.term = term - 1;
    stale.commit = committed + 100;
    let real_disk = Envelope {
        from_disk: config(leader as u64, 0).disk_id,
        ..envelope
    };
    assert_eq!(
        q.receive(from, &encode_message(real_disk, &stale)),
        Err(QuorumError::StaleTerm {
            term: term - 1,
            current: term
        })
    );
    assert_eq!(q.term(), term, "nothing changed");
    assert_eq!(q.committed_index(), committed, "nothing changed");
    assert_eq!(q.role(), Role::Follower);
    // Proposals at a follower name the leader.
    assert_eq!(
        q.propose(b"x".to_vec()),
        Err(QuorumError::NotLeader {
            leader: Some(NodeId(leader as u64))
        })
    );
    assert_eq!(q.propose(Vec::new()), Err(QuorumError::EmptyProposal));
    // The cluster still works.
    c.nodes[leader]
        .as_mut()
        .expect("up")
        .propose(b"after".to_vec())
        .expect("leader");
    c.run(10);
    assert!(c.committed_everywhere(b"after"));
}

#[test]
fn retired_disk_messages_are_refused() {
    let mut c = Cluster::new(3);
    c.run(40);
    let leader = c.leader().expect("a leader");
    let follower = (leader + 1) % 3;
    let q = c.nodes[leader].as_mut().expect("up");
    let mut response = Message::default();
    response.set_msg_type(MessageType::MsgHeartbeatResponse);
    response.from = follower as u64 + 1;
    response.to = leader as u64 + 1;
    response.term = q.term();
    let old = Envelope {
        cluster_id: CLUSTER_ID,
        from_disk: config(follower as u64, 0).disk_id,
        to_disk: 0,
    };
    let new = Envelope {
        from_disk: config(follower as u64, 1).disk_id,
        ..old
    };
    let from = NodeId(follower as u64);
    q.receive(from, &encode_message(new, &response))
        .expect("the new disk is heard");
    assert_eq!(
        q.receive(from, &encode_message(old, &response)),
        Err(QuorumError::RetiredDisk {
            from,
            disk: old.from_disk
        })
    );
}

#[test]
fn a_stale_message_from_another_disk_retires_nothing() {
    let mut c = Cluster::new(3);
    c.run(40);
    let leader = c.leader().expect("a leader");
    let follower = (leader + 1) % 3;
    let q = c.nodes[leader].as_mut().expect("up");
    let term = q.term();
    assert!(term > 1, "elections raised the term");
    let mut stale = Message::default();
    stale.set_msg_type(MessageType::MsgHeartbeatResponse);
    stale.from = follower as u64 + 1;
    stale.to = leader as u64 + 1;
    stale.term = term - 1;
    let forged = Envelope {
        cluster_id: CLUSTER_ID,
        from_disk: 0xdead,
        to_disk: 0,
    };
    let from = NodeId(follower as u64);
    assert_eq!(
        q.receive(from, &encode_message(forged, &stale)),
        Err(QuorumError::StaleTerm {
            term: term - 1,
            current: term
        })
    );
    // The follower's own disk is still heard: nothing was retired.
    let mut current = stale.clone();
    current.term = term;
    let own = Envelope {
        from_disk: config(follower as u64, 0).disk_id,
        ..forged
    };
    q.receive(from, &encode_message(own, &current))
        .expect("the follower's disk is still its own");
    c.run(20);
    assert_eq!(c.leader(), Some(leader), "the cluster carries on");
}

#[test]
fn single_voter_commits_alone_and_restarts_from_its_disk() {
    let mut c = Cluster::new(1);
    c.run(30);
    assert_eq!(c.leader(), Some(0));
    for k in 0..10 {
        c.nodes[0]
            .as_mut()
            .expect("up")
            .propose(format!("r{k}").into_bytes())
            .expect("leader");
        c.run(1);
    }
    let committed = c.nodes[0].as_ref().expect("up").committed_index();
    c.crash(0);
    c.restart(0);
    c.run(30);
    let q = c.nodes[0].as_ref().expect("up");
    assert_eq!(q.role(), Role::Leader);
    assert!(q.committed_index() > committed, "a new term's entry on top");
    assert!(
        q.storage().latest_snapshot().get_metadata().index > 1,
        "compacted"
    );
}

#[test]
fn the_leader_knows_how_far_each_voter_holds_the_log() {
    let mut c = Cluster::new(3);
    c.run(40);
    let leader = c.leader().expect("a leader is elected");
    for i in (0..3).filter(|&i| i != leader) {
        assert!(
            c.nodes[i].as_ref().expect("up").voter_progress().is_empty(),
            "a follower tracks no progress"
        );
    }
    let follower = (0..3).find(|&i| i != leader).expect("a follower");
    c.crash(follower);
    for payload in [b"one".to_vec(), b"two".to_vec()] {
        c.nodes[leader]
            .as_mut()
            .expect("up")
            .propose(payload)
            .expect("the leader takes it");
        c.run(5);
    }
    let q = c.nodes[leader].as_ref().expect("up");
    let committed = q.committed_index();
    let progress = q.voter_progress();
    let nodes: Vec<u64> = progress.iter().map(|(node, _)| node.0).collect();
    assert_eq!(nodes, [0, 1, 2], "every voter, sorted");
    for (node, matched) in &progress {
        if node.0 as usize == follower {
            assert!(
                *matched < committed,
                "the crashed voter holds {matched}, not the committed {committed}"
            );
        } else {
            assert_eq!(*matched, committed, "voter {node} is caught up");
        }
    }
}
