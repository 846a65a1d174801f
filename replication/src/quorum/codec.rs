//! Quorum messages on the wire: a fixed header (format version, cluster
//! id, the sender's and the addressee's disk ids) and raft-rs's protobuf
//! encoding of the message.

use protobuf::Message as _;
use raft::eraftpb::Message;

use super::QuorumError;

/// The format of the header below; a change of layout bumps it.
pub const WIRE_VERSION: u8 = 1;
/// Version byte, cluster id, sender's disk id, addressee's disk id.
const HEADER_BYTES: usize = 1 + 8 + 8 + 8;
/// Snapshots of the metadata state travel in one message; the metadata of
/// a cluster of 10,000 partitions is a few megabytes, so 64 MiB leaves a
/// wide margin while bounding what a bad peer makes us parse.
pub const MESSAGE_BYTES_MAX: usize = 64 << 20;

/// The header of a quorum message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope {
    pub cluster_id: u64,
    /// The sender's disk id (see [`super::QuorumConfig::disk_id`]).
    pub from_disk: u64,
    /// The addressee's disk id as the sender knows it (0: unknown).
    pub to_disk: u64,
}

/// Encodes `message`: `[version][cluster id][from disk][to disk]` (LE u64s),
/// then the protobuf.
pub fn encode_message(envelope: Envelope, message: &Message) -> Vec<u8> {
    let body = message
        .write_to_bytes()
        .expect("a raft message always encodes");
    let mut out = Vec::with_capacity(HEADER_BYTES + body.len());
    out.push(WIRE_VERSION);
    out.extend_from_slice(&envelope.cluster_id.to_le_bytes());
    out.extend_from_slice(&envelope.from_disk.to_le_bytes());
    out.extend_from_slice(&envelope.to_disk.to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Decodes bytes made by [`encode_message`] into the envelope and the
/// message. Garbage, another version, or an oversize frame is
/// [`QuorumError::Malformed`]. Checks against this node (cluster, sender,
/// term) are [`super::Quorum::receive`]'s.
pub fn decode_message(bytes: &[u8]) -> Result<(Envelope, Message), QuorumError> {
    if bytes.len() > MESSAGE_BYTES_MAX {
        return Err(QuorumError::Malformed {
            reason: "message over MESSAGE_BYTES_MAX",
        });
    }
    if bytes.len() < HEADER_BYTES {
        return Err(QuorumError::Malformed {
            reason: "shorter than the header",
        });
    }
    if bytes[0] != WIRE_VERSION {
        return Err(QuorumError::Malformed {
            reason: "unknown wire version",
        });
    }
    let word = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let envelope = Envelope {
        cluster_id: word(1),
        from_disk: word(9),
        to_disk: word(17),
    };
    let message =
        Message::parse_from_bytes(&bytes[HEADER_BYTES..]).map_err(|_| QuorumError::Malformed {
            reason: "not a raft protobuf message",
        })?;
    Ok((envelope, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::eraftpb::MessageType;

    #[test]
    fn round_trip_and_garbage() {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgHeartbeat);
        m.from = 2;
        m.to = 3;
        m.term = 7;
        let envelope = Envelope {
            cluster_id: 42,
            from_disk: 5,
            to_disk: 6,
        };
        let bytes = encode_message(envelope, &m);
        let (got, back) = decode_message(&bytes).expect("decodes");
        assert_eq!(got, envelope);
        assert_eq!(back, m);
        assert!(decode_message(&[]).is_err());
        assert!(decode_message(&[9; 20]).is_err());
        let mut bad = bytes.clone();
        bad.push(0xff);
        bad.push(0xff);
        assert!(decode_message(&bad).is_err());
    }
}
