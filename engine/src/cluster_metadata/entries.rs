//! What the controller quorum's log holds: each entry a [`Proposal`] (a
//! record and the node that proposed it), each snapshot the whole image as
//! records.
//!
//! A proposal is `[u16 format version][i32 origin node][u64 sequence]`
//! then the record's body ([`super::encoding`], in that format version). A
//! snapshot is `[u16 format version][u32 count]` then, per record,
//! `[u32 length][body]`; an empty snapshot (the one a cluster is formed
//! with) is the empty image. Every length is checked against its cap and
//! the bytes that remain before anything is allocated.

use sluice_storage::NodeId;

use super::{
    encoding::{self, DecodeError, Entry, FORMAT_VERSION},
    image::Metadata,
    records::MetadataRecord,
};

/// One record of a snapshot is at most this large: a topic of the most
/// partitions, each with a handful of replicas, fits many times over.
pub const SNAPSHOT_RECORD_BYTES_MAX: usize = 16 << 20;

/// A record as a node proposed it: `origin` learns the record's fate when
/// it applies the entry and finds its own `sequence` there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub origin: NodeId,
    pub sequence: u64,
    pub record: MetadataRecord,
}

pub fn encode_proposal(proposal: &Proposal) -> Vec<u8> {
    let body = encoding::encode_record(&proposal.record);
    let mut out = Vec::with_capacity(14 + body.len());
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&proposal.origin.0.to_le_bytes());
    out.extend_from_slice(&proposal.sequence.to_le_bytes());
    out.extend_from_slice(&body);
    out
}

pub fn decode_proposal(bytes: &[u8]) -> Result<Proposal, DecodeError> {
    let mut input = Input(bytes);
    let version = input.version()?;
    let origin = i32::from_le_bytes(input.array("origin node")?);
    if origin < 0 {
        return Err(DecodeError::InvalidValue {
            field: "origin node",
            value: i64::from(origin),
        });
    }
    let sequence = u64::from_le_bytes(input.array("sequence")?);
    Ok(Proposal {
        origin: NodeId(origin),
        sequence,
        record: record(input.0, version)?,
    })
}

/// The snapshot of `metadata`.
pub fn encode_snapshot(metadata: &Metadata) -> Vec<u8> {
    let records = metadata.to_records();
    let mut out = Vec::new();
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    for record in &records {
        let body = encoding::encode_record(record);
        assert!(
            body.len() <= SNAPSHOT_RECORD_BYTES_MAX,
            "a snapshot record of {} bytes, over the cap of {SNAPSHOT_RECORD_BYTES_MAX}",
            body.len()
        );
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
    }
    out
}

/// The image a snapshot holds (the empty image for no bytes). Records are
/// applied at index 0: a snapshot's records carry their own epochs.
pub fn decode_snapshot(bytes: &[u8]) -> Result<Metadata, DecodeError> {
    let mut metadata = Metadata::default();
    if bytes.is_empty() {
        return Ok(metadata);
    }
    let mut input = Input(bytes);
    let version = input.version()?;
    let count = u32::from_le_bytes(input.array("snapshot records")?) as usize;
    for _ in 0..count {
        let length = u32::from_le_bytes(input.array("snapshot record length")?) as usize;
        if length > SNAPSHOT_RECORD_BYTES_MAX {
            return Err(DecodeError::OverCap {
                field: "snapshot record",
                declared: length,
                max: SNAPSHOT_RECORD_BYTES_MAX,
            });
        }
        let body = input.take("snapshot record", length)?;
        let record = record(body, version)?;
        metadata
            .apply(&record, 0)
            .map_err(|_| DecodeError::InvalidValue {
                field: "snapshot record that does not fit the ones before it",
                value: 0,
            })?;
    }
    if !input.0.is_empty() {
        return Err(DecodeError::TrailingBytes {
            remaining: input.0.len(),
        });
    }
    Ok(metadata)
}

fn record(body: &[u8], version: u16) -> Result<MetadataRecord, DecodeError> {
    match encoding::decode(body, version)? {
        Entry::Record(record) => Ok(record),
        Entry::FormatVersion(_) => Err(DecodeError::InvalidValue {
            field: "format version entry in place of a record",
            value: 0,
        }),
    }
}

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, field: &'static str, count: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < count {
            return Err(DecodeError::Truncated {
                field,
                needed: count,
                available: self.0.len(),
            });
        }
        let (taken, rest) = self.0.split_at(count);
        self.0 = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        Ok(self.take(field, N)?.try_into().expect("took N bytes"))
    }

    fn version(&mut self) -> Result<u16, DecodeError> {
        let version = u16::from_le_bytes(self.array("format version")?);
        if !(2..=FORMAT_VERSION).contains(&version) {
            return Err(DecodeError::UnsupportedVersion { version });
        }
        Ok(version)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use sluice_storage::{ShardId, TopicId};

    use super::*;

    fn topic(name: &str) -> MetadataRecord {
        MetadataRecord::TopicCreated {
            topic_id: TopicId(7),
            name: name.to_string(),
            shards: vec![ShardId(0), ShardId(1)],
            replicas: vec![vec![NodeId(1)], vec![NodeId(2)]],
            configs: BTreeMap::new(),
        }
    }

    #[test]
    fn a_proposal_reads_back_and_damage_is_an_error() {
        let proposal = Proposal {
            origin: NodeId(3),
            sequence: 99,
            record: topic("t"),
        };
        let bytes = encode_proposal(&proposal);
        assert_eq!(decode_proposal(&bytes), Ok(proposal));
        for end in 0..bytes.len() {
            assert!(decode_proposal(&bytes[..end]).is_err(), "cut at {end}");
        }
        let mut other_version = bytes.clone();
        other_version[0] = 9;
        assert_eq!(
            decode_proposal(&other_version),
            Err(DecodeError::UnsupportedVersion { version: 9 })
        );
    }

    #[test]
    fn a_snapshot_is_its_image() {
        let mut metadata = Metadata::default();
        metadata.apply(&topic("t"), 1).unwrap();
        let bytes = encode_snapshot(&metadata);
        assert_eq!(decode_snapshot(&bytes), Ok(metadata));
        assert_eq!(decode_snapshot(&[]), Ok(Metadata::default()));
        for end in 1..bytes.len() {
            assert!(decode_snapshot(&bytes[..end]).is_err(), "cut at {end}");
        }
        // A huge record length is refused before anything is read for it.
        let mut huge = bytes[..6].to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_snapshot(&huge),
            Err(DecodeError::OverCap { .. })
        ));
    }
}
