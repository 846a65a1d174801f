//! The peer port's bytes: the hello that opens a connection, the status
//! byte that answers it, and the frames after it (layout in the module doc
//! of [`super`]). Pure functions over bytes; no socket, no clock.

use bytes::{Buf, Bytes, BytesMut};
use sluice_replication::quorum::MESSAGE_BYTES_MAX;
use sluice_storage::NodeId;

use super::MessageKind;

/// The first bytes of every hello: a connection that starts otherwise is
/// not a Sluice node's.
pub const MAGIC: [u8; 4] = *b"SLPR";
/// The layout of the hello and the frames; a change of either bumps it.
/// Version 1 connects shard 0 of one node to shard 0 of another (the
/// controller's traffic); [`VERSION_SHARDS`] names the shards.
pub const VERSION: u8 = 1;
/// A hello that names the connecting shard and the shard it is for. A
/// connection between the two shards 0 says version 1, so that a node of
/// the release before still takes it.
pub const VERSION_SHARDS: u8 = 2;
/// A cluster id is 22 characters of URL-safe base64 (see
/// `node_identity::new_cluster_id`).
pub const CLUSTER_ID_BYTES: usize = 22;
/// Magic and version: what says how long the rest of a hello is.
pub const HELLO_PREFIX_BYTES: usize = MAGIC.len() + 1;
/// A version 1 hello: magic, version, cluster id, the connecting node, the
/// node it meant.
pub const HELLO_BYTES: usize = HELLO_PREFIX_BYTES + CLUSTER_ID_BYTES + 4 + 4;
/// A [`VERSION_SHARDS`] hello: version 1's fields, then the connecting
/// shard and the shard it meant, `u32` each.
pub const HELLO_SHARDS_BYTES: usize = HELLO_BYTES + 4 + 4;
/// The status byte that accepts a hello; any other is a [`Refusal`].
pub const STATUS_OK: u8 = 0;
/// A frame's length prefix.
pub const FRAME_LENGTH_BYTES: usize = 4;
/// The length prefix and the kind byte.
pub const FRAME_HEADER_BYTES: usize = FRAME_LENGTH_BYTES + 1;
/// A body is at most a quorum message at its largest (a snapshot) with
/// room for a small envelope the layer above may wrap it in. A declared
/// length beyond this is refused before anything is allocated for it.
pub const BODY_BYTES_MAX: usize = MESSAGE_BYTES_MAX + 64 * 1024;
/// What a frame's length field may declare: the kind byte and a body.
pub const FRAME_LENGTH_MAX: usize = 1 + BODY_BYTES_MAX;

/// What opens a connection: who connects, to whom, in which cluster.
///
/// Shards are named as a partition's placement names them
/// (`sluice_storage::ShardId`): the acceptor serves the connection on the
/// shard that number means on its node (taken modulo its shard count),
/// so nodes need not run as many shards as each other. A connecting
/// shard names itself by its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    pub cluster_id: [u8; CLUSTER_ID_BYTES],
    pub from: NodeId,
    pub to: NodeId,
    pub from_shard: u32,
    pub to_shard: u32,
}

/// Why an acceptor refused a hello: the status byte it answers with before
/// closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[repr(u8)]
pub enum Refusal {
    #[error("the connection does not start with the peer magic")]
    BadMagic = 1,
    #[error("a hello of a version this node does not speak")]
    UnsupportedVersion = 2,
    #[error("a hello from another cluster")]
    OtherCluster = 3,
    #[error("a hello meant for another node")]
    NotThisNode = 4,
    #[error("a hello that claims to come from this node")]
    FromThisNode = 5,
    #[error("the node holds as many peer connections as it takes")]
    TooManyConnections = 6,
}

impl Refusal {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The refusal a status byte names; `None` for [`STATUS_OK`] and for a
    /// code this version does not know.
    pub fn from_code(code: u8) -> Option<Refusal> {
        Some(match code {
            1 => Refusal::BadMagic,
            2 => Refusal::UnsupportedVersion,
            3 => Refusal::OtherCluster,
            4 => Refusal::NotThisNode,
            5 => Refusal::FromThisNode,
            6 => Refusal::TooManyConnections,
            _ => return None,
        })
    }
}

/// A hello's bytes: version 1 between the two shards 0, else
/// [`VERSION_SHARDS`].
pub fn encode_hello(hello: &Hello) -> Vec<u8> {
    let shards = hello.from_shard != 0 || hello.to_shard != 0;
    let mut out = Vec::with_capacity(HELLO_SHARDS_BYTES);
    out.extend_from_slice(&MAGIC);
    out.push(if shards { VERSION_SHARDS } else { VERSION });
    out.extend_from_slice(&hello.cluster_id);
    out.extend_from_slice(&hello.from.0.to_le_bytes());
    out.extend_from_slice(&hello.to.0.to_le_bytes());
    if shards {
        out.extend_from_slice(&hello.from_shard.to_le_bytes());
        out.extend_from_slice(&hello.to_shard.to_le_bytes());
    }
    out
}

/// How long the hello that starts with `prefix` is: `BadMagic` or
/// `UnsupportedVersion` when it is not a hello this version speaks.
pub fn hello_length(prefix: &[u8; HELLO_PREFIX_BYTES]) -> Result<usize, Refusal> {
    if prefix[..MAGIC.len()] != MAGIC {
        return Err(Refusal::BadMagic);
    }
    match prefix[MAGIC.len()] {
        VERSION => Ok(HELLO_BYTES),
        VERSION_SHARDS => Ok(HELLO_SHARDS_BYTES),
        _ => Err(Refusal::UnsupportedVersion),
    }
}

/// Reads a whole hello (its length as [`hello_length`] says).
pub fn decode_hello(bytes: &[u8]) -> Result<Hello, Refusal> {
    let prefix: &[u8; HELLO_PREFIX_BYTES] = bytes
        .get(..HELLO_PREFIX_BYTES)
        .and_then(|prefix| prefix.try_into().ok())
        .ok_or(Refusal::BadMagic)?;
    let length = hello_length(prefix)?;
    if bytes.len() != length {
        return Err(Refusal::UnsupportedVersion);
    }
    let rest = &bytes[HELLO_PREFIX_BYTES..];
    let (cluster_id, rest) = rest.split_at(CLUSTER_ID_BYTES);
    let word = |at: usize| -> [u8; 4] { rest[at..at + 4].try_into().expect("4 bytes") };
    let (from_shard, to_shard) = match length {
        HELLO_SHARDS_BYTES => (u32::from_le_bytes(word(8)), u32::from_le_bytes(word(12))),
        _ => (0, 0),
    };
    Ok(Hello {
        cluster_id: cluster_id.try_into().expect("split at CLUSTER_ID_BYTES"),
        from: NodeId(i32::from_le_bytes(word(0))),
        to: NodeId(i32::from_le_bytes(word(4))),
        from_shard,
        to_shard,
    })
}

/// Decodes a hello and checks it is for `this_node` of `cluster_id` from
/// another node: the hello, or why it is refused.
pub fn accept_hello(
    bytes: &[u8],
    cluster_id: &[u8; CLUSTER_ID_BYTES],
    this_node: NodeId,
) -> Result<Hello, Refusal> {
    let hello = decode_hello(bytes)?;
    if hello.cluster_id != *cluster_id {
        return Err(Refusal::OtherCluster);
    }
    if hello.to != this_node {
        return Err(Refusal::NotThisNode);
    }
    if hello.from == this_node {
        return Err(Refusal::FromThisNode);
    }
    Ok(hello)
}

/// The length prefix and kind byte of a frame carrying `body_bytes`.
///
/// Panics if `body_bytes` is over [`BODY_BYTES_MAX`]: callers check it
/// when a message is queued.
pub fn encode_frame_header(kind: MessageKind, body_bytes: usize) -> [u8; FRAME_HEADER_BYTES] {
    assert!(
        body_bytes <= BODY_BYTES_MAX,
        "a body of {body_bytes} bytes is over BODY_BYTES_MAX"
    );
    let length = u32::try_from(1 + body_bytes).expect("BODY_BYTES_MAX fits u32");
    let mut out = [0u8; FRAME_HEADER_BYTES];
    out[..FRAME_LENGTH_BYTES].copy_from_slice(&length.to_le_bytes());
    out[FRAME_LENGTH_BYTES] = kind as u8;
    out
}

/// Why the bytes at the start of a connection's buffer are not a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("a frame length of {declared} is over the cap of {max}")]
    TooLarge { declared: usize, max: usize },
    #[error("a frame length of 0 leaves no room for its kind")]
    Empty,
    #[error("unknown message kind {kind}")]
    UnknownKind { kind: u8 },
}

/// What the start of a buffer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A whole frame, now removed from the buffer.
    Frame { kind: MessageKind, body: Bytes },
    /// The next frame has not all arrived: this many bytes more make it
    /// whole (at least one).
    Incomplete { bytes_missing: usize },
}

/// Takes the next frame off the front of `buffer`.
///
/// The length and the kind are checked as soon as their bytes are in the
/// buffer, before the body has arrived, so a reader never reserves room
/// for a frame it will refuse. On an error the buffer is left as it was.
pub fn decode_frame(buffer: &mut BytesMut) -> Result<Decoded, FrameError> {
    if buffer.len() < FRAME_LENGTH_BYTES {
        return Ok(Decoded::Incomplete {
            bytes_missing: FRAME_HEADER_BYTES - buffer.len(),
        });
    }
    let prefix: [u8; FRAME_LENGTH_BYTES] = buffer[..FRAME_LENGTH_BYTES]
        .try_into()
        .expect("length prefix");
    let declared = u32::from_le_bytes(prefix) as usize;
    if declared > FRAME_LENGTH_MAX {
        return Err(FrameError::TooLarge {
            declared,
            max: FRAME_LENGTH_MAX,
        });
    }
    if declared == 0 {
        return Err(FrameError::Empty);
    }
    let whole = FRAME_LENGTH_BYTES + declared;
    let Some(&kind_byte) = buffer.get(FRAME_LENGTH_BYTES) else {
        return Ok(Decoded::Incomplete {
            bytes_missing: whole - buffer.len(),
        });
    };
    let kind =
        MessageKind::from_byte(kind_byte).ok_or(FrameError::UnknownKind { kind: kind_byte })?;
    if buffer.len() < whole {
        return Ok(Decoded::Incomplete {
            bytes_missing: whole - buffer.len(),
        });
    }
    buffer.advance(FRAME_HEADER_BYTES);
    let body = buffer.split_to(whole - FRAME_HEADER_BYTES).freeze();
    Ok(Decoded::Frame { kind, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER: [u8; CLUSTER_ID_BYTES] = *b"AAAAAAAAAAAAAAAAAAAAAA";

    fn hello(from: i32, to: i32) -> Vec<u8> {
        encode_hello(&Hello {
            cluster_id: CLUSTER,
            from: NodeId(from),
            to: NodeId(to),
            from_shard: 0,
            to_shard: 0,
        })
    }

    fn frame(kind: MessageKind, body: &[u8]) -> Vec<u8> {
        let mut out = encode_frame_header(kind, body.len()).to_vec();
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn a_hello_reads_back_as_written() {
        let written = Hello {
            cluster_id: *b"0123456789abcdefghij-_",
            from: NodeId(-7),
            to: NodeId(i32::MAX),
            from_shard: 0,
            to_shard: 0,
        };
        let bytes = encode_hello(&written);
        assert_eq!(bytes.len(), HELLO_BYTES);
        assert_eq!(&bytes[..5], b"SLPR\x01");
        assert_eq!(&bytes[27..31], &(-7i32).to_le_bytes());
        assert_eq!(decode_hello(&bytes), Ok(written));
        // Between other shards: version 2, the shards after the nodes.
        let shards = Hello {
            from_shard: 3,
            to_shard: 70_000,
            ..written
        };
        let bytes = encode_hello(&shards);
        assert_eq!(bytes.len(), HELLO_SHARDS_BYTES);
        assert_eq!(&bytes[..5], b"SLPR\x02");
        assert_eq!(&bytes[35..39], &3u32.to_le_bytes());
        assert_eq!(&bytes[39..43], &70_000u32.to_le_bytes());
        assert_eq!(decode_hello(&bytes), Ok(shards));
        // A hello cut short or run long is not one.
        assert!(decode_hello(&bytes[..HELLO_BYTES]).is_err());
        assert!(decode_hello(&bytes[..3]).is_err());
    }

    #[test]
    fn a_hello_is_accepted_only_from_another_node_of_this_cluster_to_this_one() {
        assert_eq!(
            accept_hello(&hello(2, 1), &CLUSTER, NodeId(1)).map(|hello| hello.from),
            Ok(NodeId(2))
        );
        let other = *b"BAAAAAAAAAAAAAAAAAAAAA";
        assert_eq!(
            accept_hello(&hello(2, 1), &other, NodeId(1)),
            Err(Refusal::OtherCluster)
        );
        assert_eq!(
            accept_hello(&hello(2, 3), &CLUSTER, NodeId(1)),
            Err(Refusal::NotThisNode)
        );
        assert_eq!(
            accept_hello(&hello(1, 1), &CLUSTER, NodeId(1)),
            Err(Refusal::FromThisNode)
        );
    }

    #[test]
    fn garbage_and_other_versions_are_not_hellos() {
        let mut garbage = [0u8; HELLO_BYTES];
        for (at, byte) in garbage.iter_mut().enumerate() {
            *byte = (at as u8).wrapping_mul(37).wrapping_add(11);
        }
        assert_eq!(decode_hello(&garbage), Err(Refusal::BadMagic));
        // A Kafka or native request on the wrong port starts with a length.
        let mut request = [0u8; HELLO_BYTES];
        request[..4].copy_from_slice(&20u32.to_be_bytes());
        assert_eq!(decode_hello(&request), Err(Refusal::BadMagic));
        let mut later = hello(2, 1);
        later[4] = VERSION_SHARDS + 1;
        assert_eq!(
            accept_hello(&later, &CLUSTER, NodeId(1)),
            Err(Refusal::UnsupportedVersion)
        );
    }

    #[test]
    fn refusal_codes_read_back_and_ok_is_none_of_them() {
        for refusal in [
            Refusal::BadMagic,
            Refusal::UnsupportedVersion,
            Refusal::OtherCluster,
            Refusal::NotThisNode,
            Refusal::FromThisNode,
            Refusal::TooManyConnections,
        ] {
            assert_ne!(refusal.code(), STATUS_OK);
            assert_eq!(Refusal::from_code(refusal.code()), Some(refusal));
        }
        assert_eq!(Refusal::from_code(STATUS_OK), None);
        assert_eq!(Refusal::from_code(200), None);
    }

    #[test]
    fn frames_read_back_in_order_and_leave_what_follows() {
        let mut buffer = BytesMut::new();
        buffer.extend_from_slice(&frame(MessageKind::Quorum, b"first"));
        buffer.extend_from_slice(&frame(MessageKind::ControllerReply, b""));
        buffer.extend_from_slice(&frame(MessageKind::ControllerRequest, b"third"));
        buffer.extend_from_slice(&[9, 0]);
        let expected = [
            (MessageKind::Quorum, &b"first"[..]),
            (MessageKind::ControllerReply, &b""[..]),
            (MessageKind::ControllerRequest, &b"third"[..]),
        ];
        for (kind, body) in expected {
            assert_eq!(
                decode_frame(&mut buffer),
                Ok(Decoded::Frame {
                    kind,
                    body: Bytes::copy_from_slice(body)
                })
            );
        }
        assert_eq!(&buffer[..], &[9, 0]);
    }

    #[test]
    fn a_truncated_frame_waits_for_exactly_its_missing_bytes() {
        let whole = frame(MessageKind::Quorum, b"0123456789");
        for cut in 0..whole.len() {
            let mut buffer = BytesMut::from(&whole[..cut]);
            let expected = match cut {
                // Until the length is in, a reader asks for the header.
                0..=3 => FRAME_HEADER_BYTES - cut,
                _ => whole.len() - cut,
            };
            assert_eq!(
                decode_frame(&mut buffer),
                Ok(Decoded::Incomplete {
                    bytes_missing: expected
                }),
                "cut at {cut}"
            );
            assert_eq!(buffer.len(), cut, "an incomplete frame stays buffered");
        }
        let mut buffer = BytesMut::from(&whole[..]);
        assert!(matches!(
            decode_frame(&mut buffer),
            Ok(Decoded::Frame { .. })
        ));
        assert!(buffer.is_empty());
    }

    #[test]
    fn an_oversize_length_is_refused_from_the_prefix_alone() {
        let mut buffer = BytesMut::from(&((FRAME_LENGTH_MAX + 1) as u32).to_le_bytes()[..]);
        assert_eq!(
            decode_frame(&mut buffer),
            Err(FrameError::TooLarge {
                declared: FRAME_LENGTH_MAX + 1,
                max: FRAME_LENGTH_MAX
            })
        );
        let mut buffer = BytesMut::from(&u32::MAX.to_le_bytes()[..]);
        assert!(matches!(
            decode_frame(&mut buffer),
            Err(FrameError::TooLarge { .. })
        ));
        // The largest body is a length the reader waits for.
        let mut buffer =
            BytesMut::from(&encode_frame_header(MessageKind::Quorum, BODY_BYTES_MAX)[..]);
        assert_eq!(
            decode_frame(&mut buffer),
            Ok(Decoded::Incomplete {
                bytes_missing: BODY_BYTES_MAX
            })
        );
    }

    #[test]
    fn an_unknown_kind_or_an_empty_frame_is_refused_before_its_body() {
        for kind in [0u8, 6, 0xff] {
            let mut buffer = BytesMut::new();
            buffer.extend_from_slice(&1000u32.to_le_bytes());
            buffer.extend_from_slice(&[kind]);
            assert_eq!(
                decode_frame(&mut buffer),
                Err(FrameError::UnknownKind { kind })
            );
            assert_eq!(buffer.len(), 5, "a refused frame is left as it was");
        }
        let mut buffer = BytesMut::from(&0u32.to_le_bytes()[..]);
        assert_eq!(decode_frame(&mut buffer), Err(FrameError::Empty));
    }

    #[test]
    fn garbage_never_panics_and_ends_in_a_refusal_or_a_wait() {
        // A fixed pseudo-random sequence, so a failure replays.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            let mut bytes = Vec::new();
            for _ in 0..(state % 64) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                bytes.push(state as u8);
            }
            let mut buffer = BytesMut::from(&bytes[..]);
            loop {
                let before = buffer.len();
                match decode_frame(&mut buffer) {
                    Ok(Decoded::Frame { body, .. }) => {
                        assert!(buffer.len() + FRAME_HEADER_BYTES + body.len() == before);
                    }
                    Ok(Decoded::Incomplete { bytes_missing }) => {
                        assert!(bytes_missing >= 1);
                        break;
                    }
                    Err(_) => break,
                }
            }
            let mut hello = [0u8; HELLO_BYTES];
            let take = bytes.len().min(HELLO_BYTES);
            hello[..take].copy_from_slice(&bytes[..take]);
            assert_eq!(
                accept_hello(&hello, &CLUSTER, NodeId(1)),
                Err(Refusal::BadMagic)
            );
        }
    }

    #[test]
    #[should_panic(expected = "over BODY_BYTES_MAX")]
    fn a_body_over_the_cap_is_never_framed() {
        encode_frame_header(MessageKind::Quorum, BODY_BYTES_MAX + 1);
    }
}
