//! What the coordinator writes to `__consumer_offsets`: one record per
//! committed offset (a tombstone, an empty value, when it is deleted) and
//! one per group that exists without members (a tombstone when deleted).
//! Replayed in order at start, the records give back every group's
//! committed offsets.
//!
//! Key: version u8 (0), kind u8, group (u16 length + UTF-8), and for an
//! offset the topic (u16 length + UTF-8) and partition (u32), little-endian.
//! Offset value: offset u64, leader epoch i32, commit time i64 (ms), and
//! metadata (u16 length + UTF-8). Group value: protocol type (u16 length +
//! UTF-8).

/// Where a committed offset lives: (topic, partition).
pub type OffsetKey = (String, u32);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub offset: u64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_time: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRecord {
    Offset {
        group: String,
        key: OffsetKey,
        /// `None`: deleted.
        committed: Option<Committed>,
    },
    Group {
        group: String,
        /// `None`: deleted, with its offsets.
        protocol_type: Option<String>,
    },
}

const VERSION: u8 = 0;
const KIND_OFFSET: u8 = 0;
const KIND_GROUP: u8 = 1;

fn put_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    let len = bytes.len().min(u16::MAX as usize);
    out.extend_from_slice(&(len as u16).to_le_bytes());
    out.extend_from_slice(&bytes[..len]);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    fn str(&mut self) -> Option<String> {
        let len = self.u16()? as usize;
        self.take(len)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .map(str::to_string)
    }
}

impl GroupRecord {
    /// The record's key and value.
    pub fn encode(&self) -> (Vec<u8>, Vec<u8>) {
        let mut key = vec![VERSION];
        let mut value = Vec::new();
        match self {
            GroupRecord::Offset {
                group,
                key: (topic, partition),
                committed,
            } => {
                key.push(KIND_OFFSET);
                put_str(&mut key, group);
                put_str(&mut key, topic);
                key.extend_from_slice(&partition.to_le_bytes());
                if let Some(committed) = committed {
                    value.extend_from_slice(&committed.offset.to_le_bytes());
                    value.extend_from_slice(&committed.leader_epoch.to_le_bytes());
                    value.extend_from_slice(&committed.commit_time.to_le_bytes());
                    put_str(&mut value, &committed.metadata);
                }
            }
            GroupRecord::Group {
                group,
                protocol_type,
            } => {
                key.push(KIND_GROUP);
                put_str(&mut key, group);
                if let Some(protocol_type) = protocol_type {
                    put_str(&mut value, protocol_type);
                }
            }
        }
        (key, value)
    }

    /// `None` for a record this version does not know or that is damaged:
    /// it is skipped, never fatal.
    pub fn decode(key: &[u8], value: &[u8]) -> Option<GroupRecord> {
        let mut key = Reader(key);
        if key.u8()? != VERSION {
            return None;
        }
        let kind = key.u8()?;
        let group = key.str()?;
        let mut value_reader = Reader(value);
        match kind {
            KIND_OFFSET => {
                let topic = key.str()?;
                let partition = key.u32()?;
                let committed = if value.is_empty() {
                    None
                } else {
                    let offset = value_reader.u64()?;
                    let leader_epoch = value_reader.u32()? as i32;
                    let commit_time = value_reader.u64()? as i64;
                    let metadata = value_reader.str()?;
                    Some(Committed {
                        offset,
                        leader_epoch,
                        metadata,
                        commit_time,
                    })
                };
                Some(GroupRecord::Offset {
                    group,
                    key: (topic, partition),
                    committed,
                })
            }
            KIND_GROUP => Some(GroupRecord::Group {
                group,
                protocol_type: if value.is_empty() {
                    None
                } else {
                    Some(value_reader.str()?)
                },
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_damage_is_skipped() {
        let records = [
            GroupRecord::Offset {
                group: "g".into(),
                key: ("orders".into(), 7),
                committed: Some(Committed {
                    offset: 42,
                    leader_epoch: -1,
                    metadata: "m".into(),
                    commit_time: 1_700_000_000_000,
                }),
            },
            GroupRecord::Offset {
                group: "g".into(),
                key: ("orders".into(), 7),
                committed: None,
            },
            GroupRecord::Group {
                group: "g".into(),
                protocol_type: Some("consumer".into()),
            },
            GroupRecord::Group {
                group: "g".into(),
                protocol_type: None,
            },
        ];
        for record in records {
            let (key, value) = record.encode();
            assert_eq!(GroupRecord::decode(&key, &value), Some(record.clone()));
            for cut in 0..key.len() {
                assert_eq!(GroupRecord::decode(&key[..cut], &value), None);
            }
        }
        assert_eq!(GroupRecord::decode(&[9, 0, 0, 0], &[]), None);
    }
}
