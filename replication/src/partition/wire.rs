//! Partition replication's frames between two nodes' shards, as bytes.
//!
//! One connection per (node, shard) pair carries every partition the two
//! shards share. The leader's shard sends a [`Frame::Push`] per flush
//! round with, for each partition, the batches it appended (the bytes as
//! stored, sliced from the frame without a copy on the receiving side) and
//! its high watermark; a partition with nothing new still rides along
//! with its high watermark, as a heartbeat. The follower's shard answers
//! with a [`Frame::Ack`] of each partition's durable log end. A follower
//! rejoining asks where its epoch ends ([`Frame::EpochEnds`]) and the
//! leader answers ([`Frame::EpochEndAnswers`]).
//!
//! Layout, little-endian: version u8, kind u8, sender node u32, sender
//! shard u16, addressee shard u16, round u64 (rounds in flight are told
//! apart by it), then an entry count u32 and the entries. Every count is
//! checked against the bytes left (at the entry's smallest size) and every
//! length against its cap before anything is allocated; a frame with
//! bytes left over is refused.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::epochs::Epoch;

/// The layout's version; a change of layout bumps it.
pub const WIRE_VERSION: u8 = 1;
/// A frame is at most this large: a flush round of many partitions' batches.
pub const FRAME_BYTES_MAX: usize = 64 << 20;
/// One partition's batches in one push, at most.
pub const PUSH_BYTES_MAX: usize = 16 << 20;
const HEADER_BYTES: usize = 1 + 1 + 4 + 2 + 2 + 8;

/// A partition, by topic id and index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionRef {
    pub topic_id: u128,
    pub partition: u32,
}

/// Who sent a frame to whom, and in which round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub from_node: u32,
    pub from_shard: u16,
    pub to_shard: u16,
    pub round: u64,
}

/// One partition's part of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub partition: PartitionRef,
    /// The sender's leader epoch: a follower ignores an older one.
    pub leader_epoch: Epoch,
    pub high_watermark: u64,
    /// Where `batches` start in the log (the follower's end, or it
    /// refuses them as not following on).
    pub base_offset: u64,
    /// The leader's log start: a follower whose log ends before it starts
    /// again there (what it lacks is gone from the leader).
    pub log_start: u64,
    /// Stored batches, as appended; empty for a heartbeat.
    pub batches: Bytes,
}

/// How a follower took a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum AckStatus {
    Ok = 0,
    /// The push's epoch is older than the one the follower knows.
    StaleEpoch = 1,
    /// The batches do not start at the follower's end: it must reconcile
    /// by epoch (or was sent a gap).
    NotContiguous = 2,
    /// The node does not hold the partition as a follower.
    NotFollower = 3,
}

impl AckStatus {
    fn from_u16(value: u16) -> Option<AckStatus> {
        [
            AckStatus::Ok,
            AckStatus::StaleEpoch,
            AckStatus::NotContiguous,
            AckStatus::NotFollower,
        ]
        .into_iter()
        .find(|status| *status as u16 == value)
    }
}

/// One partition's acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    pub partition: PartitionRef,
    pub leader_epoch: Epoch,
    pub status: AckStatus,
    /// The follower's log end: where the leader's next push starts.
    pub log_end: u64,
    /// The follower's durable log end: what counts for the high watermark.
    pub durable_end: u64,
}

/// A follower's question: where does `epoch` end in the leader's log?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEndAsk {
    pub partition: PartitionRef,
    /// The leader epoch the follower follows (a leader of an older one
    /// does not answer).
    pub current_epoch: Epoch,
    pub epoch: Epoch,
}

/// The leader's answer: the largest epoch it holds at or below the one
/// asked and where it ends; `None` when it holds none that old or is not
/// the leader of `current_epoch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEndAnswer {
    pub partition: PartitionRef,
    /// The epoch asked about: an answer to an older question is told apart.
    pub asked: Epoch,
    pub end: Option<(Epoch, u64)>,
    /// The leader's log start: where a follower that shares no epoch with
    /// it starts again.
    pub log_start: u64,
}

/// A frame's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Push(Vec<Push>),
    Ack(Vec<Ack>),
    EpochEnds(Vec<EpochEndAsk>),
    EpochEndAnswers(Vec<EpochEndAnswer>),
}

/// Why bytes are not a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("a frame of {0} bytes is over the cap of {FRAME_BYTES_MAX}")]
    TooLarge(usize),
    #[error("the frame ends inside {0}")]
    Truncated(&'static str),
    #[error("wire version {0}, not {WIRE_VERSION}")]
    Version(u8),
    #[error("unknown frame kind {0}")]
    Kind(u8),
    #[error("{count} entries cannot fit in the {left} bytes left")]
    Count { count: u32, left: usize },
    #[error("a push of {0} bytes is over the cap of {PUSH_BYTES_MAX}")]
    PushTooLarge(usize),
    #[error("unknown acknowledgement status {0}")]
    Status(u16),
    #[error("{0} bytes after the last entry")]
    Trailing(usize),
}

const PARTITION_BYTES: usize = 16 + 4;
const PUSH_MIN_BYTES: usize = PARTITION_BYTES + 4 + 8 + 8 + 8 + 4;
const ACK_BYTES: usize = PARTITION_BYTES + 4 + 2 + 8 + 8;
const ASK_BYTES: usize = PARTITION_BYTES + 4 + 4;
const ANSWER_BYTES: usize = PARTITION_BYTES + 4 + 1 + 4 + 8 + 8;

fn put_partition(out: &mut BytesMut, partition: PartitionRef) {
    out.put_u128_le(partition.topic_id);
    out.put_u32_le(partition.partition);
}

/// `frame` from `header`, as bytes.
pub fn encode(header: Header, frame: &Frame) -> BytesMut {
    let mut out = BytesMut::with_capacity(HEADER_BYTES + 64);
    out.put_u8(WIRE_VERSION);
    let (kind, count) = match frame {
        Frame::Push(entries) => (1, entries.len()),
        Frame::Ack(entries) => (2, entries.len()),
        Frame::EpochEnds(entries) => (3, entries.len()),
        Frame::EpochEndAnswers(entries) => (4, entries.len()),
    };
    out.put_u8(kind);
    out.put_u32_le(header.from_node);
    out.put_u16_le(header.from_shard);
    out.put_u16_le(header.to_shard);
    out.put_u64_le(header.round);
    out.put_u32_le(count as u32);
    match frame {
        Frame::Push(entries) => {
            for push in entries {
                put_partition(&mut out, push.partition);
                out.put_u32_le(push.leader_epoch);
                out.put_u64_le(push.high_watermark);
                out.put_u64_le(push.base_offset);
                out.put_u64_le(push.log_start);
                out.put_u32_le(push.batches.len() as u32);
                out.put_slice(&push.batches);
            }
        }
        Frame::Ack(entries) => {
            for ack in entries {
                put_partition(&mut out, ack.partition);
                out.put_u32_le(ack.leader_epoch);
                out.put_u16_le(ack.status as u16);
                out.put_u64_le(ack.log_end);
                out.put_u64_le(ack.durable_end);
            }
        }
        Frame::EpochEnds(entries) => {
            for ask in entries {
                put_partition(&mut out, ask.partition);
                out.put_u32_le(ask.current_epoch);
                out.put_u32_le(ask.epoch);
            }
        }
        Frame::EpochEndAnswers(entries) => {
            for answer in entries {
                put_partition(&mut out, answer.partition);
                out.put_u32_le(answer.asked);
                let (epoch, end) = answer.end.unwrap_or((0, 0));
                out.put_u8(u8::from(answer.end.is_some()));
                out.put_u32_le(epoch);
                out.put_u64_le(end);
                out.put_u64_le(answer.log_start);
            }
        }
    }
    out
}

/// Reads fixed-size fields, refusing to run past the end.
struct Reader {
    bytes: Bytes,
}

impl Reader {
    fn need(&self, bytes: usize, what: &'static str) -> Result<(), WireError> {
        if self.bytes.remaining() < bytes {
            Err(WireError::Truncated(what))
        } else {
            Ok(())
        }
    }

    fn partition(&mut self) -> Result<PartitionRef, WireError> {
        self.need(PARTITION_BYTES, "a partition")?;
        Ok(PartitionRef {
            topic_id: self.bytes.get_u128_le(),
            partition: self.bytes.get_u32_le(),
        })
    }

    /// The entry count, checked against what is left at `min_bytes` an
    /// entry.
    fn count(&mut self, min_bytes: usize) -> Result<usize, WireError> {
        self.need(4, "the entry count")?;
        let count = self.bytes.get_u32_le();
        let left = self.bytes.remaining();
        if count as usize > left / min_bytes {
            return Err(WireError::Count { count, left });
        }
        Ok(count as usize)
    }
}

/// Bytes made by [`encode`], back into the header and the frame. The
/// pushes' batches are slices of `bytes`.
pub fn decode(bytes: Bytes) -> Result<(Header, Frame), WireError> {
    if bytes.len() > FRAME_BYTES_MAX {
        return Err(WireError::TooLarge(bytes.len()));
    }
    let mut reader = Reader { bytes };
    reader.need(HEADER_BYTES, "the header")?;
    let version = reader.bytes.get_u8();
    if version != WIRE_VERSION {
        return Err(WireError::Version(version));
    }
    let kind = reader.bytes.get_u8();
    let header = Header {
        from_node: reader.bytes.get_u32_le(),
        from_shard: reader.bytes.get_u16_le(),
        to_shard: reader.bytes.get_u16_le(),
        round: reader.bytes.get_u64_le(),
    };
    let frame = match kind {
        1 => {
            let count = reader.count(PUSH_MIN_BYTES)?;
            let mut entries = Vec::with_capacity(count);
            for _ in 0..count {
                let partition = reader.partition()?;
                reader.need(PUSH_MIN_BYTES - PARTITION_BYTES, "a push")?;
                let leader_epoch = reader.bytes.get_u32_le();
                let high_watermark = reader.bytes.get_u64_le();
                let base_offset = reader.bytes.get_u64_le();
                let log_start = reader.bytes.get_u64_le();
                let length = reader.bytes.get_u32_le() as usize;
                if length > PUSH_BYTES_MAX {
                    return Err(WireError::PushTooLarge(length));
                }
                reader.need(length, "a push's batches")?;
                entries.push(Push {
                    partition,
                    leader_epoch,
                    high_watermark,
                    base_offset,
                    log_start,
                    batches: reader.bytes.split_to(length),
                });
            }
            Frame::Push(entries)
        }
        2 => {
            let count = reader.count(ACK_BYTES)?;
            let mut entries = Vec::with_capacity(count);
            for _ in 0..count {
                let partition = reader.partition()?;
                let leader_epoch = reader.bytes.get_u32_le();
                let status = reader.bytes.get_u16_le();
                let status = AckStatus::from_u16(status).ok_or(WireError::Status(status))?;
                entries.push(Ack {
                    partition,
                    leader_epoch,
                    status,
                    log_end: reader.bytes.get_u64_le(),
                    durable_end: reader.bytes.get_u64_le(),
                });
            }
            Frame::Ack(entries)
        }
        3 => {
            let count = reader.count(ASK_BYTES)?;
            let mut entries = Vec::with_capacity(count);
            for _ in 0..count {
                entries.push(EpochEndAsk {
                    partition: reader.partition()?,
                    current_epoch: reader.bytes.get_u32_le(),
                    epoch: reader.bytes.get_u32_le(),
                });
            }
            Frame::EpochEnds(entries)
        }
        4 => {
            let count = reader.count(ANSWER_BYTES)?;
            let mut entries = Vec::with_capacity(count);
            for _ in 0..count {
                let partition = reader.partition()?;
                let asked = reader.bytes.get_u32_le();
                let known = reader.bytes.get_u8() != 0;
                let epoch = reader.bytes.get_u32_le();
                let end = reader.bytes.get_u64_le();
                entries.push(EpochEndAnswer {
                    partition,
                    asked,
                    end: known.then_some((epoch, end)),
                    log_start: reader.bytes.get_u64_le(),
                });
            }
            Frame::EpochEndAnswers(entries)
        }
        other => return Err(WireError::Kind(other)),
    };
    match reader.bytes.remaining() {
        0 => Ok((header, frame)),
        left => Err(WireError::Trailing(left)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: Header = Header {
        from_node: 3,
        from_shard: 1,
        to_shard: 0,
        round: 42,
    };

    fn partition(index: u32) -> PartitionRef {
        PartitionRef {
            topic_id: 0xfeed_u128 << 64 | 7,
            partition: index,
        }
    }

    fn frames() -> Vec<Frame> {
        vec![
            Frame::Push(vec![
                Push {
                    partition: partition(0),
                    leader_epoch: 4,
                    high_watermark: 100,
                    base_offset: 120,
                    log_start: 3,
                    batches: Bytes::from_static(b"stored batch bytes"),
                },
                Push {
                    partition: partition(5),
                    leader_epoch: 4,
                    high_watermark: 9,
                    base_offset: 9,
                    log_start: 0,
                    batches: Bytes::new(),
                },
            ]),
            Frame::Ack(vec![Ack {
                partition: partition(0),
                leader_epoch: 4,
                status: AckStatus::NotContiguous,
                log_end: 130,
                durable_end: 118,
            }]),
            Frame::EpochEnds(vec![EpochEndAsk {
                partition: partition(2),
                current_epoch: 5,
                epoch: 3,
            }]),
            Frame::EpochEndAnswers(vec![
                EpochEndAnswer {
                    partition: partition(2),
                    asked: 3,
                    end: Some((2, 77)),
                    log_start: 10,
                },
                EpochEndAnswer {
                    partition: partition(3),
                    asked: 1,
                    end: None,
                    log_start: 0,
                },
            ]),
        ]
    }

    #[test]
    fn frames_read_back_as_written_and_pushes_are_not_copied() {
        for frame in frames() {
            let bytes = encode(HEADER, &frame).freeze();
            let (header, back) = decode(bytes.clone()).unwrap();
            assert_eq!(header, HEADER);
            assert_eq!(back, frame);
            if let Frame::Push(pushes) = back {
                let start = bytes.as_ptr() as usize;
                let batch = pushes[0].batches.as_ptr() as usize;
                assert!((start..start + bytes.len()).contains(&batch), "a slice");
            }
        }
    }

    #[test]
    fn every_truncation_and_every_extra_byte_is_refused() {
        for frame in frames() {
            let bytes = encode(HEADER, &frame).freeze();
            for cut in 0..bytes.len() {
                assert!(
                    decode(bytes.slice(..cut)).is_err(),
                    "{frame:?} cut at {cut}"
                );
            }
            let mut longer = BytesMut::from(&bytes[..]);
            longer.put_u8(0);
            assert_eq!(decode(longer.freeze()), Err(WireError::Trailing(1)));
        }
    }

    #[test]
    fn bad_headers_counts_and_lengths_allocate_nothing() {
        let good = encode(HEADER, &frames()[0]).freeze();
        let with = |at: usize, value: &[u8]| {
            let mut bytes = BytesMut::from(&good[..]);
            bytes[at..at + value.len()].copy_from_slice(value);
            decode(bytes.freeze())
        };
        assert_eq!(with(0, &[9]), Err(WireError::Version(9)));
        assert_eq!(with(1, &[77]), Err(WireError::Kind(77)));
        assert!(matches!(
            with(HEADER_BYTES, &u32::MAX.to_le_bytes()),
            Err(WireError::Count {
                count: u32::MAX,
                ..
            })
        ));
        let length_at = HEADER_BYTES + 4 + PUSH_MIN_BYTES - 4;
        assert_eq!(
            with(length_at, &u32::MAX.to_le_bytes()),
            Err(WireError::PushTooLarge(u32::MAX as usize))
        );
        let ack = encode(HEADER, &frames()[1]).freeze();
        let mut bad = BytesMut::from(&ack[..]);
        let status_at = HEADER_BYTES + 4 + PARTITION_BYTES + 4;
        bad[status_at] = 9;
        assert_eq!(decode(bad.freeze()), Err(WireError::Status(9)));
        assert_eq!(
            decode(Bytes::from(vec![0u8; FRAME_BYTES_MAX + 1])),
            Err(WireError::TooLarge(FRAME_BYTES_MAX + 1))
        );
    }
}
