//! Replay of a log generation and its reconciliation with the snapshot.
//!
//! A frame that is short or fails its CRC is a torn write when no intact
//! frame follows it (a crash mid-append): it and everything after it are
//! cut off. With an intact frame after it, it is corruption, an error. A
//! frame whose CRC holds was written whole, so one that does not decode
//! (or breaks the log's order) is always corruption.

use sluice_replication::quorum::eraftpb::{Entry, HardState, Snapshot};

use super::format::{self, FrameFault, Kind, LOG_FRAME_BYTES_MAX};

/// A generation replayed.
#[derive(Debug, Default)]
pub(super) struct ReplayedLog {
    /// The snapshot index and term the generation's entries follow.
    pub base_index: u64,
    pub base_term: u64,
    /// `entries[i].index == base_index + 1 + i`.
    pub entries: Vec<Entry>,
    pub hard_state: Option<HardState>,
    pub caught_up: bool,
    /// Where a torn tail starts and why, if there is one: the file is to
    /// be cut there.
    pub torn: Option<(usize, FrameFault)>,
    /// Bytes of intact frames (the file's length once cut).
    pub valid_bytes: usize,
}

/// Why a generation cannot be replayed.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Corruption {
    pub position: usize,
    pub reason: String,
}

/// Replays the frames of one log generation.
pub(super) fn replay_log(bytes: &[u8]) -> Result<ReplayedLog, Corruption> {
    let mut log = ReplayedLog::default();
    let mut at = 0;
    let mut based = false;
    while at < bytes.len() {
        let frame = match format::parse_frame(bytes, at, LOG_FRAME_BYTES_MAX) {
            Ok(frame) => frame,
            Err(FrameFault::UnknownKind(kind)) => {
                return Err(Corruption {
                    position: at,
                    reason: format!("intact frame of unknown kind {kind}"),
                })
            }
            Err(fault) => {
                if let Some(later) = intact_frame_after(bytes, at) {
                    return Err(Corruption {
                        position: at,
                        reason: format!("{fault}, with an intact frame at byte {later} after it"),
                    });
                }
                log.torn = Some((at, fault));
                break;
            }
        };
        let corrupt = |reason: String| Corruption {
            position: at,
            reason,
        };
        match frame.kind {
            Kind::Base => {
                if based {
                    return Err(corrupt("a second base frame".to_owned()));
                }
                let (index, term) = format::decode_base(frame.body).map_err(corrupt)?;
                log.base_index = index;
                log.base_term = term;
                based = true;
            }
            _ if !based => return Err(corrupt("the first frame is not a base".to_owned())),
            Kind::Entry => {
                let entry = format::decode_entry(frame.body).map_err(corrupt)?;
                let last = log.base_index + log.entries.len() as u64;
                if entry.index <= log.base_index || entry.index > last + 1 {
                    return Err(corrupt(format!(
                        "entry at index {} outside {}..={}",
                        entry.index,
                        log.base_index + 1,
                        last + 1
                    )));
                }
                log.entries
                    .truncate((entry.index - log.base_index - 1) as usize);
                log.entries.push(entry);
            }
            Kind::HardState => {
                log.hard_state = Some(format::decode_hard_state(frame.body).map_err(corrupt)?);
            }
            Kind::CaughtUp => {
                if !frame.body.is_empty() {
                    return Err(corrupt("caught-up marker with a body".to_owned()));
                }
                log.caught_up = true;
            }
            Kind::Snapshot => return Err(corrupt("a snapshot frame in the log".to_owned())),
        }
        at = frame.next;
        log.valid_bytes = at;
    }
    if !based {
        return Err(Corruption {
            position: 0,
            reason: "no base frame".to_owned(),
        });
    }
    Ok(log)
}

/// The position of the first intact frame (CRC holds, known kind) that
/// starts after `at`, if any. Run only when a frame at `at` is bad, to
/// tell a torn tail from corruption.
fn intact_frame_after(bytes: &[u8], at: usize) -> Option<usize> {
    (at + 1..bytes.len())
        .find(|&from| format::parse_frame(bytes, from, LOG_FRAME_BYTES_MAX).is_ok())
}

/// Reconciles a replayed generation with the snapshot file: after a crash
/// between the snapshot's rename and the log's rewrite, the snapshot is
/// ahead of the generation's base. Entries it covers are dropped (all of
/// them if the log does not hold its index and term: a snapshot installed
/// from the leader replaces the log), and the commit index rises to it.
/// Returns true if anything changed (the log must then be rewritten).
pub(super) fn reconcile(log: &mut ReplayedLog, snapshot: &Snapshot) -> Result<bool, String> {
    let index = snapshot.get_metadata().index;
    let term = snapshot.get_metadata().term;
    if index < log.base_index {
        return Err(format!(
            "the log follows a snapshot at {} but the snapshot file is at {index}",
            log.base_index
        ));
    }
    if index == log.base_index {
        if term != log.base_term {
            return Err(format!(
                "the log follows a snapshot of term {} at {index}, the snapshot file's term is {term}",
                log.base_term
            ));
        }
        return Ok(false);
    }
    let held = log
        .entries
        .get((index - log.base_index - 1) as usize)
        .is_some_and(|entry| entry.index == index && entry.term == term);
    if held {
        log.entries.drain(..(index - log.base_index) as usize);
    } else {
        log.entries.clear();
    }
    log.base_index = index;
    log.base_term = term;
    let hard_state = log.hard_state.get_or_insert_with(HardState::default);
    hard_state.term = hard_state.term.max(term);
    hard_state.commit = hard_state.commit.max(index);
    Ok(true)
}
