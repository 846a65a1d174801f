//! The frames of the quorum log and snapshot files.
//!
//! A frame is `[u32 length][u32 CRC-32C][u8 kind][body]`, integers
//! little-endian; `length` counts the kind byte and the body, and the CRC
//! covers both, so a flipped kind is caught like a flipped body byte.
//! Bodies are raft-rs's protobuf encodings (an entry, a hard state, a
//! snapshot), empty (the caught-up marker), or the generation's base.

use protobuf::Message as _;
use sluice_replication::quorum::eraftpb::{Entry, HardState, Snapshot};

/// The length and CRC words before the kind byte.
pub(super) const FRAME_HEADER_BYTES: usize = 8;

/// The format of the files; the base frame of every generation names it,
/// and a change of layout bumps it.
pub(super) const FORMAT_VERSION: u8 = 1;

/// A log frame holds one entry (a proposal is at most
/// `PROPOSAL_BYTES_MAX`, 1 MiB, plus raft's few fields) or a small record;
/// 2 MiB leaves room for raft's fields without letting a corrupt length
/// make replay allocate or read gigabytes.
pub(super) const LOG_FRAME_BYTES_MAX: usize = 2 << 20;

/// A snapshot travels in one quorum message, so it is never larger than
/// `MESSAGE_BYTES_MAX` (64 MiB); the file's frame is refused above it.
pub(super) const SNAPSHOT_FRAME_BYTES_MAX: usize = sluice_replication::quorum::MESSAGE_BYTES_MAX;

/// What a frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Kind {
    /// One raft entry; it replaces any entry at its index and after.
    Entry = 1,
    /// The term, vote and commit index.
    HardState = 2,
    /// A leader caught this node up after it started empty (no body).
    CaughtUp = 3,
    /// First frame of a log generation: the format version, then the
    /// index and term of the snapshot the generation's entries follow.
    Base = 4,
    /// The snapshot file's only frame.
    Snapshot = 5,
}

impl Kind {
    fn from_byte(byte: u8) -> Option<Kind> {
        Some(match byte {
            1 => Kind::Entry,
            2 => Kind::HardState,
            3 => Kind::CaughtUp,
            4 => Kind::Base,
            5 => Kind::Snapshot,
            _ => return None,
        })
    }
}

/// Appends the frame of `kind` and `body` to `out`. The caller checked the
/// body against the cap of the file it goes to.
pub(super) fn encode_frame(kind: Kind, body: &[u8], out: &mut Vec<u8>) {
    let length = u32::try_from(1 + body.len()).expect("frame bodies are capped far below 4 GiB");
    let mut crc = crc32c::crc32c(&[kind as u8]);
    crc = crc32c::crc32c_append(crc, body);
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.push(kind as u8);
    out.extend_from_slice(body);
}

/// Why the bytes at a position are not a whole, intact frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum FrameFault {
    /// The header or the declared body runs past the end of the bytes.
    Short { declared: usize, available: usize },
    /// The declared length is over the cap (refused before anything is
    /// read or allocated for it).
    TooLong { declared: usize, max: usize },
    /// A length of 0: not even a kind byte.
    Empty,
    /// The CRC does not match.
    Crc,
    /// The CRC holds but the kind is not one this release writes.
    UnknownKind(u8),
}

impl std::fmt::Display for FrameFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameFault::Short {
                declared,
                available,
            } => write!(f, "frame of {declared} bytes, {available} left in the file"),
            FrameFault::TooLong { declared, max } => {
                write!(f, "declared length {declared} over the cap of {max}")
            }
            FrameFault::Empty => write!(f, "frame of length 0"),
            FrameFault::Crc => write!(f, "CRC mismatch"),
            FrameFault::UnknownKind(kind) => write!(f, "unknown frame kind {kind}"),
        }
    }
}

/// A frame read from a file: its kind, its body, and where the next starts.
#[derive(Debug)]
pub(super) struct Frame<'a> {
    pub kind: Kind,
    pub body: &'a [u8],
    pub next: usize,
}

/// Reads the frame at `at` in `bytes`. The declared length is checked
/// against `cap` before the body is looked at; nothing is allocated.
pub(super) fn parse_frame(bytes: &[u8], at: usize, cap: usize) -> Result<Frame<'_>, FrameFault> {
    let available = bytes.len().saturating_sub(at);
    if available < FRAME_HEADER_BYTES {
        return Err(FrameFault::Short {
            declared: FRAME_HEADER_BYTES,
            available,
        });
    }
    let word = |from: usize| {
        let mut word = [0u8; 4];
        word.copy_from_slice(&bytes[from..from + 4]);
        u32::from_le_bytes(word)
    };
    let declared = word(at) as usize;
    let crc = word(at + 4);
    if declared == 0 {
        return Err(FrameFault::Empty);
    }
    if declared > cap {
        return Err(FrameFault::TooLong { declared, max: cap });
    }
    if available - FRAME_HEADER_BYTES < declared {
        return Err(FrameFault::Short {
            declared: FRAME_HEADER_BYTES + declared,
            available,
        });
    }
    let start = at + FRAME_HEADER_BYTES;
    let next = start + declared;
    let covered = &bytes[start..next];
    if crc32c::crc32c(covered) != crc {
        return Err(FrameFault::Crc);
    }
    let kind = Kind::from_byte(covered[0]).ok_or(FrameFault::UnknownKind(covered[0]))?;
    Ok(Frame {
        kind,
        body: &covered[1..],
        next,
    })
}

/// The body of a [`Kind::Base`] frame.
pub(super) fn encode_base(index: u64, term: u64) -> Vec<u8> {
    let mut body = Vec::with_capacity(17);
    body.push(FORMAT_VERSION);
    body.extend_from_slice(&index.to_le_bytes());
    body.extend_from_slice(&term.to_le_bytes());
    body
}

/// Decodes a [`Kind::Base`] body into the snapshot index and term.
pub(super) fn decode_base(body: &[u8]) -> Result<(u64, u64), String> {
    if body.len() != 17 {
        return Err(format!("base frame of {} bytes, not 17", body.len()));
    }
    if body[0] != FORMAT_VERSION {
        return Err(format!(
            "format version {}, this release reads {FORMAT_VERSION}",
            body[0]
        ));
    }
    let word = |at: usize| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&body[at..at + 8]);
        u64::from_le_bytes(word)
    };
    Ok((word(1), word(9)))
}

pub(super) fn encode_entry(entry: &Entry) -> Vec<u8> {
    entry.write_to_bytes().expect("a raft entry always encodes")
}

pub(super) fn encode_hard_state(hard_state: &HardState) -> Vec<u8> {
    hard_state
        .write_to_bytes()
        .expect("a raft hard state always encodes")
}

pub(super) fn encode_snapshot(snapshot: &Snapshot) -> Vec<u8> {
    snapshot
        .write_to_bytes()
        .expect("a raft snapshot always encodes")
}

pub(super) fn decode_entry(body: &[u8]) -> Result<Entry, String> {
    Entry::parse_from_bytes(body).map_err(|e| format!("undecodable entry: {e}"))
}

pub(super) fn decode_hard_state(body: &[u8]) -> Result<HardState, String> {
    HardState::parse_from_bytes(body).map_err(|e| format!("undecodable hard state: {e}"))
}

pub(super) fn decode_snapshot(body: &[u8]) -> Result<Snapshot, String> {
    Snapshot::parse_from_bytes(body).map_err(|e| format!("undecodable snapshot: {e}"))
}
