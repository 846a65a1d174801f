//! Topic metadata and producer id blocks: a log of metadata records,
//! replayed at start into an immutable snapshot that every shard holds.
//!
//! The log is `metadata/metadata.log` in the data directory: frames of
//! (length u32, CRC-32C u32, record). Each change is appended and
//! fdatasync'ed before it takes effect. A torn last frame (a crash mid-write)
//! is cut off at replay; a bad frame with good ones after it is corruption
//! and stops the broker. It is a log, not a mutable file, so that a
//! controller quorum can replicate it later.

use std::{
    collections::BTreeMap,
    fs::{File, OpenOptions},
    io::{self, Read, Write},
    path::{Path, PathBuf},
    sync::Arc,
};

use bytes::{Bytes, BytesMut};
use sluice_net::native::codec::{DecodeError, Reader, Writer};

/// A metadata record is at most this large: a topic with the most
/// partitions and configs fits many times over.
const RECORD_BYTES_MAX: usize = 16 * 1024 * 1024;

/// A topic: its id, name, the owner shard of each partition, and configs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    pub id: u128,
    pub name: String,
    /// `shards[p]` owns partition `p` (taken modulo the running shard count).
    pub shards: Vec<u32>,
    pub configs: BTreeMap<String, String>,
}

impl TopicMeta {
    pub fn partition_count(&self) -> u32 {
        self.shards.len() as u32
    }

    /// The directory of partition `partition` under `data_dir`.
    pub fn partition_dir(&self, data_dir: &Path, partition: u32) -> PathBuf {
        data_dir
            .join("topics")
            .join(format!("{}-{:032x}", self.name, self.id))
            .join(partition.to_string())
    }

    pub fn topic_dir(&self, data_dir: &Path) -> PathBuf {
        data_dir
            .join("topics")
            .join(format!("{}-{:032x}", self.name, self.id))
    }
}

/// The first producer id handed out. Kafka's `-1` means "no producer id";
/// ids start well clear of it and of the small numbers tests and clients
/// use as placeholders.
pub const PRODUCER_ID_FIRST: i64 = 1000;

/// Every topic, and how far producer ids have been handed out, as of one
/// point in the metadata log. Immutable; shared by `Arc` between shards and
/// replaced whole when it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub topics: BTreeMap<String, Arc<TopicMeta>>,
    /// The lowest producer id never handed out: every id below it (from
    /// [`PRODUCER_ID_FIRST`]) has been, in a block recorded in the log.
    pub producer_id_next: i64,
}

impl Default for Metadata {
    fn default() -> Metadata {
        Metadata {
            topics: BTreeMap::new(),
            producer_id_next: PRODUCER_ID_FIRST,
        }
    }
}

impl Metadata {
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicMeta>> {
        self.topics.get(name)
    }

    /// Partitions owned by each of `shard_count` shards.
    pub fn load(&self, shard_count: usize) -> Vec<usize> {
        let mut load = vec![0; shard_count];
        for topic in self.topics.values() {
            for shard in &topic.shards {
                load[*shard as usize % shard_count] += 1;
            }
        }
        load
    }

    pub fn apply(&mut self, record: &MetadataRecord) {
        match record {
            MetadataRecord::TopicCreated(topic) => {
                self.topics
                    .insert(topic.name.clone(), Arc::new(topic.clone()));
            }
            MetadataRecord::TopicDeleted { topic_id } => {
                self.topics.retain(|_, topic| topic.id != *topic_id);
            }
            MetadataRecord::ConfigsAltered { topic_id, configs } => {
                if let Some(topic) = self.topics.values_mut().find(|topic| topic.id == *topic_id) {
                    let mut altered = (**topic).clone();
                    altered.configs = configs.clone();
                    *topic = Arc::new(altered);
                }
            }
            MetadataRecord::PartitionsAdded { topic_id, shards } => {
                if let Some(topic) = self.topics.values_mut().find(|topic| topic.id == *topic_id) {
                    let mut grown = (**topic).clone();
                    grown.shards.extend_from_slice(shards);
                    *topic = Arc::new(grown);
                }
            }
            MetadataRecord::ProducerIdsAllocated { next } => {
                // Never back: an id handed out stays handed out, even if a
                // record were written twice.
                self.producer_id_next = self.producer_id_next.max(*next);
            }
        }
    }
}

/// One change to the metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataRecord {
    TopicCreated(TopicMeta),
    TopicDeleted {
        topic_id: u128,
    },
    /// The topic's whole config set after the change.
    ConfigsAltered {
        topic_id: u128,
        configs: BTreeMap<String, String>,
    },
    /// Partitions appended to a topic: `shards[i]` owns its partition
    /// `count + i`, where `count` is the topic's partition count before.
    PartitionsAdded {
        topic_id: u128,
        shards: Vec<u32>,
    },
    /// Producer ids below `next` have been handed out; the next block
    /// starts at `next`.
    ProducerIdsAllocated {
        next: i64,
    },
}

fn write_configs(out: &mut Writer<'_>, configs: &BTreeMap<String, String>) {
    out.count(configs.len());
    for (name, value) in configs {
        out.string(name);
        out.string(value);
    }
}

fn read_configs(input: &mut Reader) -> Result<BTreeMap<String, String>, DecodeError> {
    Ok(input
        .list("configs", 8, |input| {
            Ok((input.string("name")?, input.string("value")?))
        })?
        .into_iter()
        .collect())
}

impl MetadataRecord {
    fn encode(&self) -> BytesMut {
        let mut body = BytesMut::new();
        let mut out = Writer::new(&mut body);
        match self {
            MetadataRecord::TopicCreated(topic) => {
                out.u8(1);
                out.u128(topic.id);
                out.string(&topic.name);
                out.list(&topic.shards, |out, shard| out.u32(*shard));
                write_configs(&mut out, &topic.configs);
            }
            MetadataRecord::TopicDeleted { topic_id } => {
                out.u8(2);
                out.u128(*topic_id);
            }
            MetadataRecord::ConfigsAltered { topic_id, configs } => {
                out.u8(3);
                out.u128(*topic_id);
                write_configs(&mut out, configs);
            }
            MetadataRecord::PartitionsAdded { topic_id, shards } => {
                out.u8(4);
                out.u128(*topic_id);
                out.list(shards, |out, shard| out.u32(*shard));
            }
            MetadataRecord::ProducerIdsAllocated { next } => {
                out.u8(5);
                out.i64(*next);
            }
        }
        body
    }

    fn decode(body: Bytes) -> Result<MetadataRecord, DecodeError> {
        let mut input = Reader::new(body);
        let record = match input.u8("record type")? {
            1 => MetadataRecord::TopicCreated(TopicMeta {
                id: input.u128("topic id")?,
                name: input.string("name")?,
                shards: input.list("shards", 4, |input| input.u32("shard"))?,
                configs: read_configs(&mut input)?,
            }),
            2 => MetadataRecord::TopicDeleted {
                topic_id: input.u128("topic id")?,
            },
            3 => MetadataRecord::ConfigsAltered {
                topic_id: input.u128("topic id")?,
                configs: read_configs(&mut input)?,
            },
            4 => MetadataRecord::PartitionsAdded {
                topic_id: input.u128("topic id")?,
                shards: input.list("shards", 4, |input| input.u32("shard"))?,
            },
            5 => {
                let next = input.i64("next producer id")?;
                if next < PRODUCER_ID_FIRST {
                    return Err(DecodeError::InvalidValue {
                        field: "next producer id",
                        value: next,
                    });
                }
                MetadataRecord::ProducerIdsAllocated { next }
            }
            other => {
                return Err(DecodeError::InvalidValue {
                    field: "record type",
                    value: i64::from(other),
                })
            }
        };
        input.finish()?;
        Ok(record)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("metadata log {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("metadata log {path} is corrupt at byte {position}: {reason}")]
    Corrupt {
        path: PathBuf,
        position: u64,
        reason: String,
    },
}

/// The metadata log file, appended to by the controller (shard 0).
pub struct MetadataLog {
    path: PathBuf,
    file: File,
}

impl MetadataLog {
    /// Opens (or creates) the log and replays it into a snapshot.
    pub fn open(data_dir: &Path) -> Result<(MetadataLog, Metadata), MetadataError> {
        let dir = data_dir.join("metadata");
        let path = dir.join("metadata.log");
        let io_error = |source| MetadataError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io_error)?;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io_error)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_error)?;
        let mut metadata = Metadata::default();
        let mut at = 0usize;
        let mut records = 0;
        while at < bytes.len() {
            let frame = parse_frame(&bytes[at..]);
            match frame {
                Ok((record, length)) => {
                    metadata.apply(&record);
                    at += length;
                    records += 1;
                }
                Err(reason) => {
                    // A torn end is cut off; a bad frame before good ones is not.
                    if any_valid_frame_after(&bytes, at) {
                        return Err(MetadataError::Corrupt {
                            path,
                            position: at as u64,
                            reason,
                        });
                    }
                    tracing::warn!(path = %path.display(), position = at, %reason, "torn metadata record cut off");
                    file.set_len(at as u64).map_err(io_error)?;
                    file.sync_all().map_err(io_error)?;
                    break;
                }
            }
        }
        // The directory entry of a new log must survive a crash too.
        File::open(&dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error)?;
        tracing::info!(path = %path.display(), records, topics = metadata.topics.len(), "metadata replayed");
        Ok((MetadataLog { path, file }, metadata))
    }

    /// Appends a record and makes it durable.
    pub fn append(&mut self, record: &MetadataRecord) -> Result<(), MetadataError> {
        let body = record.encode();
        let mut frame = Vec::with_capacity(body.len() + 8);
        frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        frame.extend_from_slice(&body);
        self.file
            .write_all(&frame)
            .and_then(|()| self.file.sync_data())
            .map_err(|source| MetadataError::Io {
                path: self.path.clone(),
                source,
            })
    }
}

fn parse_frame(bytes: &[u8]) -> Result<(MetadataRecord, usize), String> {
    if bytes.len() < 8 {
        return Err(format!("{} bytes, short of a frame header", bytes.len()));
    }
    let length = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    if length > RECORD_BYTES_MAX || bytes.len() < 8 + length {
        return Err(format!("record of {length} bytes does not fit"));
    }
    let body = &bytes[8..8 + length];
    if crc32c::crc32c(body) != crc {
        return Err("CRC mismatch".to_string());
    }
    let record =
        MetadataRecord::decode(Bytes::copy_from_slice(body)).map_err(|error| error.to_string())?;
    Ok((record, 8 + length))
}

fn any_valid_frame_after(bytes: &[u8], at: usize) -> bool {
    (at + 1..bytes.len()).any(|start| parse_frame(&bytes[start..]).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str, id: u128) -> TopicMeta {
        TopicMeta {
            id,
            name: name.to_string(),
            shards: vec![0, 1, 0],
            configs: [("retention.ms".to_string(), "1000".to_string())].into(),
        }
    }

    #[test]
    fn records_replay_into_the_same_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, metadata) = MetadataLog::open(dir.path()).unwrap();
        assert!(metadata.topics.is_empty());
        log.append(&MetadataRecord::TopicCreated(topic("a", 1)))
            .unwrap();
        log.append(&MetadataRecord::TopicCreated(topic("b", 2)))
            .unwrap();
        log.append(&MetadataRecord::ConfigsAltered {
            topic_id: 2,
            configs: BTreeMap::new(),
        })
        .unwrap();
        log.append(&MetadataRecord::TopicDeleted { topic_id: 1 })
            .unwrap();
        drop(log);
        let (_, metadata) = MetadataLog::open(dir.path()).unwrap();
        assert_eq!(metadata.topics.len(), 1);
        let b = metadata.topic("b").unwrap();
        assert_eq!(b.shards, vec![0, 1, 0]);
        assert!(b.configs.is_empty());
        assert_eq!(metadata.load(2), vec![2, 1]);
    }

    #[test]
    fn added_partitions_and_producer_ids_replay_into_the_same_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, mut live) = MetadataLog::open(dir.path()).unwrap();
        assert_eq!(live.producer_id_next, PRODUCER_ID_FIRST);
        let records = [
            MetadataRecord::TopicCreated(topic("a", 1)),
            MetadataRecord::TopicCreated(topic("b", 2)),
            MetadataRecord::PartitionsAdded {
                topic_id: 1,
                shards: vec![1, 1],
            },
            MetadataRecord::ProducerIdsAllocated { next: 2000 },
            MetadataRecord::PartitionsAdded {
                topic_id: 1,
                shards: vec![0],
            },
            MetadataRecord::ProducerIdsAllocated { next: 3000 },
            // An unknown topic (deleted since) changes nothing.
            MetadataRecord::PartitionsAdded {
                topic_id: 9,
                shards: vec![0],
            },
            MetadataRecord::ProducerIdsAllocated { next: i64::MAX },
        ];
        for record in &records {
            log.append(record).unwrap();
            live.apply(record);
        }
        drop(log);
        let (_, replayed) = MetadataLog::open(dir.path()).unwrap();
        assert_eq!(replayed, live);
        assert_eq!(replayed.topic("a").unwrap().shards, vec![0, 1, 0, 1, 1, 0]);
        assert_eq!(replayed.topic("b").unwrap().shards, vec![0, 1, 0]);
        assert_eq!(replayed.topics.len(), 2);
        assert_eq!(replayed.producer_id_next, i64::MAX);
    }

    #[test]
    fn producer_ids_never_go_back() {
        let mut metadata = Metadata::default();
        metadata.apply(&MetadataRecord::ProducerIdsAllocated { next: 5000 });
        metadata.apply(&MetadataRecord::ProducerIdsAllocated { next: 4000 });
        assert_eq!(metadata.producer_id_next, 5000);
        // A record below the first id does not decode.
        let mut body = BytesMut::new();
        let mut out = Writer::new(&mut body);
        out.u8(5);
        out.i64(PRODUCER_ID_FIRST - 1);
        assert!(MetadataRecord::decode(body.freeze()).is_err());
    }

    /// The bytes of the records written before partitions could be added:
    /// logs written then must still load.
    #[test]
    fn earlier_records_keep_their_encoding() {
        let hex = |bytes: &[u8]| -> String { bytes.iter().map(|b| format!("{b:02x}")).collect() };
        let created = MetadataRecord::TopicCreated(TopicMeta {
            id: 0x0102,
            name: "t".to_string(),
            shards: vec![0, 1],
            configs: [("k".to_string(), "v".to_string())].into(),
        });
        let deleted = MetadataRecord::TopicDeleted { topic_id: 0x0102 };
        let altered = MetadataRecord::ConfigsAltered {
            topic_id: 0x0102,
            configs: BTreeMap::new(),
        };
        // Little-endian integers; strings and lists after a u32 count.
        let golden = [
            (
                &created,
                "01 02010000000000000000000000000000 01000000 74 02000000 00000000 01000000 01000000 01000000 6b 01000000 76",
            ),
            (&deleted, "02 02010000000000000000000000000000"),
            (&altered, "03 02010000000000000000000000000000 00000000"),
        ];
        for (record, bytes) in golden {
            assert_eq!(hex(&record.encode()), bytes.replace(' ', ""), "{record:?}");
        }
    }

    /// A log written by the release before, with every record type (see
    /// `tests/fixtures/README.md` for how it was made), replays to the
    /// state it described.
    #[test]
    fn a_log_written_before_replays() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metadata-v1.log");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("metadata")).unwrap();
        let path = dir.path().join("metadata/metadata.log");
        std::fs::copy(&fixture, &path).unwrap();
        let (_, metadata) = MetadataLog::open(dir.path()).unwrap();
        let configs = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect()
        };
        let expected = [
            (
                "__consumer_offsets",
                0xf62d0bb6784ba9dc4554f1ae52594e9e,
                vec![0, 1],
                configs(&[("retention.ms", "-1")]),
            ),
            (
                "audit",
                0xae5cc8fcf382a74cd090b18bc787eef3,
                vec![1],
                configs(&[("retention.bytes", "1048576")]),
            ),
            (
                "events",
                0xc649db2c0f921b46a8261664063eef5f,
                vec![0, 1],
                configs(&[("segment.ms", "600000")]),
            ),
            (
                "orders",
                0x3013330e082e68b2930f29718cc23093,
                vec![0, 1, 0, 0, 1],
                configs(&[("retention.ms", "7200000"), ("segment.bytes", "1048576")]),
            ),
        ];
        let topics: Vec<_> = metadata.topics.keys().map(String::as_str).collect();
        assert_eq!(topics, ["__consumer_offsets", "audit", "events", "orders"]);
        for (name, id, shards, configs) in expected {
            let topic = metadata.topic(name).unwrap();
            assert_eq!(topic.name, name);
            assert_eq!(topic.id, id, "{name}");
            assert_eq!(topic.shards, shards, "{name}");
            assert_eq!(topic.configs, configs, "{name}");
        }
        assert_eq!(metadata.producer_id_next, 2000);
        // Replay read every byte: nothing was cut off as torn.
        assert_eq!(
            std::fs::read(&path).unwrap(),
            std::fs::read(&fixture).unwrap()
        );
    }

    #[test]
    fn a_torn_last_record_is_cut_and_a_bad_middle_one_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = MetadataLog::open(dir.path()).unwrap();
        log.append(&MetadataRecord::TopicCreated(topic("a", 1)))
            .unwrap();
        log.append(&MetadataRecord::TopicCreated(topic("b", 2)))
            .unwrap();
        drop(log);
        let path = dir.path().join("metadata/metadata.log");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let (mut log, metadata) = MetadataLog::open(dir.path()).unwrap();
        assert_eq!(metadata.topics.len(), 1);
        log.append(&MetadataRecord::TopicCreated(topic("c", 3)))
            .unwrap();
        drop(log);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[10] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            MetadataLog::open(dir.path()),
            Err(MetadataError::Corrupt { .. })
        ));
    }
}
