use std::fs;
use std::path::Path;

use raft::Storage as _;
use sluice_replication::quorum::eraftpb::{ConfState, Entry, HardState, Snapshot};
use sluice_replication::quorum::{NodeId, Quorum, QuorumConfig, QuorumStorage, Role};

use super::file::{log_file_name, SNAPSHOT_FILE};
use super::format::{self, FrameFault, Kind, LOG_FRAME_BYTES_MAX};
use super::recovery;
use super::{QuorumLog, QuorumLogError};

fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
    Entry {
        index,
        term,
        data: data.to_vec().into(),
        ..Default::default()
    }
}

fn hard_state(term: u64, vote: u64, commit: u64) -> HardState {
    HardState {
        term,
        vote,
        commit,
        ..Default::default()
    }
}

fn snapshot(index: u64, term: u64, data: &[u8]) -> Snapshot {
    let mut snapshot = Snapshot {
        data: data.to_vec().into(),
        ..Default::default()
    };
    let metadata = snapshot.mut_metadata();
    metadata.index = index;
    metadata.term = term;
    metadata.set_conf_state(ConfState {
        voters: vec![1],
        ..Default::default()
    });
    snapshot
}

/// Everything a storage holds, for comparison.
#[derive(Debug, PartialEq)]
struct State {
    entries: Vec<Entry>,
    hard_state: HardState,
    snapshot: Snapshot,
    catching_up: bool,
    first: u64,
    last: u64,
}

fn state(log: &QuorumLog) -> State {
    State {
        entries: log.view().entries_held().to_vec(),
        hard_state: log.hard_state(),
        snapshot: log.latest_snapshot(),
        catching_up: log.catching_up(),
        first: log.first_index().expect("first index"),
        last: log.last_index().expect("last index"),
    }
}

/// Closes `log` and opens its directory again; the state must not change.
fn reopen_same(log: QuorumLog) -> QuorumLog {
    let before = state(&log);
    let dir = log.dir().to_owned();
    drop(log);
    let log = QuorumLog::open(&dir).expect("reopens");
    assert_eq!(state(&log), before, "state changed across a reopen");
    log
}

fn generations(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("lists")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("log-"))
        .collect();
    names.sort();
    names
}

#[test]
fn every_call_survives_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("metadata/quorum");
    let log = QuorumLog::open(&path).expect("creates");
    assert!(log.catching_up(), "a new log is a node without a disk");
    assert_eq!(log.last_index().expect("last"), 0);
    let mut log = reopen_same(log);

    log.install_snapshot(snapshot(5, 2, b"state at 5"))
        .expect("installs");
    assert_eq!(log.hard_state().commit, 5);
    let mut log = reopen_same(log);

    let batch: Vec<Entry> = (6..=10).map(|i| entry(i, 3, &[i as u8; 3])).collect();
    log.append(&batch).expect("appends");
    log.set_hard_state(hard_state(3, 1, 8)).expect("hard state");
    log.sync().expect("syncs");
    let mut log = reopen_same(log);
    assert_eq!(log.last_index().expect("last"), 10);

    // A conflict: 8 onwards replaced by a later term's entries.
    log.append(&[entry(8, 4, b"new 8"), entry(9, 4, b"new 9")])
        .expect("appends");
    log.set_caught_up().expect("caught up");
    log.set_hard_state(hard_state(4, 2, 9)).expect("hard state");
    log.sync().expect("syncs");
    let mut log = reopen_same(log);
    assert_eq!(log.last_index().expect("last"), 9);
    assert_eq!(log.term(8).expect("term"), 4);
    assert!(!log.catching_up());

    log.store_snapshot_and_compact(snapshot(8, 4, b"state at 8"))
        .expect("compacts");
    let log = reopen_same(log);
    assert_eq!(log.first_index().expect("first"), 9);
    assert_eq!(log.latest_snapshot().data.as_ref(), b"state at 8");
    assert_eq!(log.view().entries_held(), &[entry(9, 4, b"new 9")]);
    assert_eq!(generations(&path).len(), 1, "old generations removed");
}

#[test]
fn bootstrap_is_durable_and_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log =
        QuorumLog::bootstrap(dir.path(), &[NodeId(0), NodeId(1), NodeId(2)]).expect("bootstraps");
    assert!(!log.catching_up());
    let log = reopen_same(log);
    assert_eq!(
        log.initial_state().expect("state").conf_state.voters,
        vec![1, 2, 3]
    );
    drop(log);
    assert!(matches!(
        QuorumLog::bootstrap(dir.path(), &[NodeId(0)]),
        Err(QuorumLogError::AlreadyExists { .. })
    ));
}

/// Runs a ready loop to quiescence, syncing the log before "sending";
/// returns the committed payloads handed out.
fn drive(quorum: &mut Quorum<QuorumLog>) -> Vec<(u64, Vec<u8>)> {
    let mut committed = Vec::new();
    while quorum.has_ready() {
        let out = quorum.ready().expect("ready");
        quorum.storage().make_durable().expect("syncs");
        assert!(out.messages.is_empty(), "a single voter sends nothing");
        for record in out.committed {
            committed.push((record.index, record.payload.to_vec()));
        }
        quorum.advance();
    }
    committed
}

fn elect(quorum: &mut Quorum<QuorumLog>) {
    for _ in 0..100 {
        quorum.tick();
        drive(quorum);
        if quorum.role() == Role::Leader {
            return;
        }
    }
    panic!("a single voter did not become leader");
}

#[test]
fn single_voter_quorum_keeps_its_committed_records_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let me = NodeId(0);
    let log = QuorumLog::bootstrap(dir.path(), &[me]).expect("bootstraps");
    let mut quorum = Quorum::new(me, &[me], log, QuorumConfig::default()).expect("starts");
    elect(&mut quorum);
    let mut committed = Vec::new();
    for i in 0..20u8 {
        quorum.propose(vec![b'a', i]).expect("leader proposes");
        committed.extend(drive(&mut quorum));
    }
    let first: Vec<Vec<u8>> = committed.iter().map(|(_, p)| p.clone()).collect();
    assert_eq!(first, (0..20u8).map(|i| vec![b'a', i]).collect::<Vec<_>>());
    let committed_index = quorum.committed_index();
    drop(quorum);

    let log = QuorumLog::open(dir.path()).expect("reopens");
    assert!(log.hard_state().commit <= committed_index);
    let mut quorum = Quorum::new(me, &[me], log, QuorumConfig::default()).expect("restarts");
    // Committed records after the snapshot are handed out again to
    // rebuild the state machine.
    let mut replayed: Vec<Vec<u8>> = drive(&mut quorum).into_iter().map(|(_, p)| p).collect();
    elect(&mut quorum);
    for i in 0..5u8 {
        quorum.propose(vec![b'b', i]).expect("leader proposes");
        replayed.extend(drive(&mut quorum).into_iter().map(|(_, p)| p));
    }
    let mut expected = first;
    expected.extend((0..5u8).map(|i| vec![b'b', i]));
    assert_eq!(replayed, expected, "committed payloads lost or reordered");

    // Compact through the quorum, restart again: the snapshot replaces the
    // entries it covers.
    let snapshot = quorum
        .compact(b"the whole state".to_vec())
        .expect("compacts");
    let index = snapshot.get_metadata().index;
    drop(quorum);
    let log = QuorumLog::open(dir.path()).expect("reopens");
    assert_eq!(log.latest_snapshot().get_metadata().index, index);
    assert_eq!(log.first_index().expect("first"), index + 1);
    let mut quorum = Quorum::new(me, &[me], log, QuorumConfig::default()).expect("restarts");
    assert!(drive(&mut quorum).is_empty(), "nothing after the snapshot");
    elect(&mut quorum);
    quorum.propose(b"after".to_vec()).expect("proposes");
    let after = drive(&mut quorum);
    assert_eq!(after.len(), 1);
    assert!(after[0].0 > index);
}

/// A bootstrapped log with entries 2..=4 synced; returns the state then
/// and the log file's length then, after one more entry (5) was synced.
fn log_with_a_last_frame(dir: &Path) -> (State, u64) {
    let mut log = QuorumLog::bootstrap(dir, &[NodeId(0)]).expect("bootstraps");
    for i in 2..=4 {
        log.append(&[entry(i, 1, &[i as u8; 40])]).expect("appends");
    }
    log.sync().expect("syncs");
    let before = state(&log);
    let file = dir.join(log_file_name(log.generation()));
    let length = fs::metadata(&file).expect("stat").len();
    log.append(&[entry(5, 1, &[5; 40])]).expect("appends");
    log.sync().expect("syncs");
    (before, length)
}

#[test]
fn a_torn_last_frame_is_cut_at_every_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (before, last_start) = log_with_a_last_frame(dir.path());
    let file = dir.path().join(log_file_name(1));
    let whole = fs::read(&file).expect("reads");
    assert!(whole.len() as u64 > last_start + 9);
    for cut in last_start as usize..whole.len() {
        fs::write(&file, &whole[..cut]).expect("writes");
        let mut log = QuorumLog::open(dir.path()).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(state(&log), before, "cut at {cut}");
        assert_eq!(fs::metadata(&file).expect("stat").len(), last_start);
        // The log goes on after the cut.
        log.append(&[entry(5, 1, b"again")]).expect("appends");
        log.sync().expect("syncs");
        drop(log);
        let log = QuorumLog::open(dir.path()).expect("reopens");
        assert_eq!(log.last_index().expect("last"), 5, "cut at {cut}");
    }
}

#[test]
fn a_damaged_middle_frame_is_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, last_start) = log_with_a_last_frame(dir.path());
    let file = dir.path().join(log_file_name(1));
    let whole = fs::read(&file).expect("reads");
    // The frame before the last one (entry 4) is 8 + 1 + its body long;
    // damage a byte of its body, then its length, then its CRC.
    let body_len = format::encode_entry(&entry(4, 1, &[4; 40])).len();
    let start = last_start as usize - (format::FRAME_HEADER_BYTES + 1 + body_len);
    for at in [start + 12, start, start + 5] {
        let mut damaged = whole.clone();
        damaged[at] ^= 0x40;
        fs::write(&file, &damaged).expect("writes");
        match QuorumLog::open(dir.path()) {
            Err(QuorumLogError::Corrupt { position, .. }) => {
                assert_eq!(position, start as u64, "byte {at}")
            }
            Err(other) => panic!("byte {at}: {other}"),
            Ok(_) => panic!("byte {at}: a damaged frame was accepted"),
        }
        assert_eq!(fs::read(&file).expect("reads"), damaged, "nothing cut");
    }
    // An intact frame that does not decode is corruption even at the end.
    let mut undecodable = whole[..last_start as usize].to_vec();
    format::encode_frame(Kind::Entry, &[0xff, 0xff, 0xff], &mut undecodable);
    fs::write(&file, &undecodable).expect("writes");
    assert!(matches!(
        QuorumLog::open(dir.path()),
        Err(QuorumLogError::Corrupt { .. })
    ));
}

/// A log with entries 2..=10 of term 1, committed, and synced.
fn ten_entries(dir: &Path) -> QuorumLog {
    let mut log = QuorumLog::bootstrap(dir, &[NodeId(0)]).expect("bootstraps");
    let batch: Vec<Entry> = (2..=10).map(|i| entry(i, 1, &[i as u8; 8])).collect();
    log.append(&batch).expect("appends");
    log.set_hard_state(hard_state(1, 1, 10))
        .expect("hard state");
    log.sync().expect("syncs");
    log
}

#[test]
fn a_crash_between_the_snapshot_and_the_log_rewrite_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = ten_entries(dir.path());
    let old_log = fs::read(dir.path().join(log_file_name(1))).expect("reads");
    log.store_snapshot_and_compact(snapshot(6, 1, b"state at 6"))
        .expect("compacts");
    assert_eq!(log.generation(), 2);
    let after = state(&log);
    drop(log);
    let new_log = fs::read(dir.path().join(log_file_name(2))).expect("reads");

    // Both generations left (the old one not yet removed).
    fs::write(dir.path().join(log_file_name(1)), &old_log).expect("writes");
    let log = QuorumLog::open(dir.path()).expect("opens");
    assert_eq!(state(&log), after);
    assert_eq!(generations(dir.path()), vec![log_file_name(2)]);
    drop(log);

    // Only the old generation (the rewrite never happened), with a
    // temporary file of the new one half written.
    fs::remove_file(dir.path().join(log_file_name(2))).expect("removes");
    fs::write(dir.path().join(log_file_name(1)), &old_log).expect("writes");
    let mut temporary = log_file_name(2);
    temporary.push_str(".tmp");
    fs::write(dir.path().join(&temporary), &new_log[..new_log.len() / 2]).expect("writes");
    let log = QuorumLog::open(dir.path()).expect("opens");
    assert_eq!(state(&log), after);
    assert_eq!(generations(dir.path()).len(), 1);
    assert!(!dir.path().join(temporary).exists());
    reopen_same(log);
}

#[test]
fn an_installed_snapshot_past_the_log_recovers_after_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = ten_entries(dir.path());
    drop(log);
    let old_log = fs::read(dir.path().join(log_file_name(1))).expect("reads");
    let mut log = QuorumLog::open(dir.path()).expect("opens");
    log.install_snapshot(snapshot(20, 3, b"leader's state"))
        .expect("installs");
    let after = state(&log);
    assert!(after.entries.is_empty());
    drop(log);
    fs::remove_file(dir.path().join(log_file_name(2))).expect("removes");
    fs::write(dir.path().join(log_file_name(1)), &old_log).expect("writes");
    let log = QuorumLog::open(dir.path()).expect("opens");
    assert_eq!(state(&log), after);
    assert_eq!(log.hard_state().commit, 20);
}

#[test]
fn a_log_ahead_of_its_snapshot_file_is_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = ten_entries(dir.path());
    log.store_snapshot_and_compact(snapshot(6, 1, b"state at 6"))
        .expect("compacts");
    drop(log);
    // The snapshot file of an older run: the log follows a snapshot at 6.
    let mut frame = Vec::new();
    format::encode_frame(
        Kind::Snapshot,
        &format::encode_snapshot(&snapshot(1, 1, b"")),
        &mut frame,
    );
    fs::write(dir.path().join(SNAPSHOT_FILE), frame).expect("writes");
    assert!(matches!(
        QuorumLog::open(dir.path()),
        Err(QuorumLogError::Corrupt { .. })
    ));
}

#[test]
fn caps_refuse_absurd_lengths_before_allocating() {
    // A header declaring 4 GiB: refused by the length check alone.
    let mut bytes = u32::MAX.to_le_bytes().to_vec();
    bytes.extend_from_slice(&[0; 4]);
    assert_eq!(
        format::parse_frame(&bytes, 0, LOG_FRAME_BYTES_MAX).unwrap_err(),
        FrameFault::TooLong {
            declared: u32::MAX as usize,
            max: LOG_FRAME_BYTES_MAX
        }
    );

    // In a log: at the end, it is a torn tail; before intact frames, corruption.
    let mut log = Vec::new();
    format::encode_frame(Kind::Base, &format::encode_base(1, 1), &mut log);
    let base_end = log.len();
    log.extend_from_slice(&bytes);
    let replayed = recovery::replay_log(&log).expect("replays");
    assert_eq!(replayed.valid_bytes, base_end);
    assert!(matches!(
        replayed.torn,
        Some((_, FrameFault::TooLong { .. }))
    ));
    format::encode_frame(Kind::CaughtUp, &[], &mut log);
    assert_eq!(recovery::replay_log(&log).unwrap_err().position, base_end);

    // A snapshot file declaring more than its cap.
    let dir = tempfile::tempdir().expect("tempdir");
    QuorumLog::bootstrap(dir.path(), &[NodeId(0)]).expect("bootstraps");
    fs::write(dir.path().join(SNAPSHOT_FILE), &bytes).expect("writes");
    assert!(matches!(
        QuorumLog::open(dir.path()),
        Err(QuorumLogError::Corrupt { .. })
    ));

    // On the write side, an entry over the cap is refused and changes nothing.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = QuorumLog::bootstrap(dir.path(), &[NodeId(0)]).expect("bootstraps");
    let huge = entry(2, 1, &vec![0; LOG_FRAME_BYTES_MAX]);
    assert!(log.append(&[huge]).is_err());
    assert_eq!(log.last_index().expect("last"), 1);
    reopen_same(log);
}

#[test]
fn a_failed_write_refuses_every_later_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = QuorumLog::bootstrap(dir.path(), &[NodeId(0)]).expect("bootstraps");
    log.append(&[entry(2, 1, b"kept")]).expect("appends");
    log.sync().expect("syncs");
    log.break_file();
    let error = log.append(&[entry(3, 1, b"lost")]).unwrap_err();
    assert!(error.to_string().contains("write"), "{error}");
    for later in [
        log.set_hard_state(hard_state(2, 1, 2)).unwrap_err(),
        log.sync().unwrap_err(),
        log.store_snapshot_and_compact(snapshot(2, 1, b""))
            .unwrap_err(),
    ] {
        assert!(later.to_string().contains("refuses writes"), "{later}");
    }
    drop(log);
    let log = QuorumLog::open(dir.path()).expect("reopens");
    assert_eq!(log.last_index().expect("last"), 2, "only what was written");
}
