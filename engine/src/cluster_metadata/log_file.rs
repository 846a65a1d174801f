//! The metadata log on disk: `metadata/metadata.log` in the data directory.
//!
//! A sequence of frames, each `[u32 length][u32 CRC-32C of the body][body]`
//! (little-endian), the body one entry of [`super::encoding`]. Each change
//! is appended and fdatasync'ed before it takes effect. A log starts with a
//! format version entry (one written before logs declared their version
//! has none, and is version 1).
//!
//! At replay, a frame that is short or fails its CRC is a torn write when
//! nothing valid follows it (a crash mid-append): it is cut off. With a
//! valid frame after it, it is corruption and stops the broker. A frame
//! whose CRC holds was written whole, so one that does not decode, or that
//! names a format version this release does not read, is never cut off: it
//! stops the broker with the reason. It is a log, not a mutable file, so
//! that a controller quorum can replicate it later.

use std::{
    fs::{File, OpenOptions},
    io::{self, Read, Write},
    path::{Path, PathBuf},
};

use super::{
    encoding::{self, DecodeError, Entry, FORMAT_VERSION, FORMAT_VERSION_UNDECLARED},
    image::Metadata,
};

/// A frame's body is at most this large: a topic with the most partitions
/// and configs fits many times over. A larger declared length is a torn or
/// corrupt frame, refused before anything is read into memory for it.
const RECORD_BYTES_MAX: usize = 16 * 1024 * 1024;

/// A frame's length and CRC.
const FRAME_HEADER_BYTES: usize = 8;

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
    #[error("metadata log {path} is in format version {version} from byte {position}; this release reads versions 1 to {FORMAT_VERSION} (was it written by a newer release?)")]
    UnsupportedVersion {
        path: PathBuf,
        position: u64,
        version: u16,
    },
}

/// The metadata log file, appended to by the controller (shard 0).
pub struct MetadataLog {
    path: PathBuf,
    file: File,
}

impl MetadataLog {
    /// Opens (or creates) the log and replays it into a snapshot. A new log
    /// (or one of an older format version) gets a format version entry for
    /// what this release appends.
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
        let replayed = replay(&bytes).map_err(|error| match error {
            ReplayError::Corrupt { position, reason } => MetadataError::Corrupt {
                path: path.clone(),
                position: position as u64,
                reason,
            },
            ReplayError::UnsupportedVersion { position, version } => {
                MetadataError::UnsupportedVersion {
                    path: path.clone(),
                    position: position as u64,
                    version,
                }
            }
        })?;
        if let Some((position, reason)) = &replayed.torn {
            tracing::warn!(path = %path.display(), position, %reason, "torn metadata record cut off");
            file.set_len(*position as u64).map_err(io_error)?;
            file.sync_all().map_err(io_error)?;
        }
        let mut log = MetadataLog {
            path: path.clone(),
            file,
        };
        if replayed.entries == 0 || replayed.version != FORMAT_VERSION {
            log.append_body(&encoding::encode_version(FORMAT_VERSION))?;
        }
        // The directory entry of a new log must survive a crash too.
        File::open(&dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error)?;
        let metadata = replayed.metadata;
        tracing::info!(path = %log.path.display(), records = replayed.records, topics = metadata.topics.len(), "metadata replayed");
        Ok((log, metadata))
    }

    /// Appends a record and makes it durable. Since cluster mode, only
    /// tests write this log (a release before it wrote it).
    #[cfg(test)]
    pub fn append(&mut self, record: &super::MetadataRecord) -> Result<(), MetadataError> {
        self.append_body(&encoding::encode_record(record))
    }

    fn append_body(&mut self, body: &[u8]) -> Result<(), MetadataError> {
        assert!(
            body.len() <= RECORD_BYTES_MAX,
            "a metadata record of {} bytes, over the cap of {RECORD_BYTES_MAX}",
            body.len()
        );
        let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + body.len());
        frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
        frame.extend_from_slice(body);
        self.file
            .write_all(&frame)
            .and_then(|()| self.file.sync_data())
            .map_err(|source| MetadataError::Io {
                path: self.path.clone(),
                source,
            })
    }
}

/// What a log's bytes replay to.
struct Replayed {
    metadata: Metadata,
    /// The format version in force at the end.
    version: u16,
    /// Frames read, version entries included.
    entries: usize,
    records: usize,
    /// Where a torn last frame starts, and why it is one: the log is to be
    /// cut there.
    torn: Option<(usize, String)>,
}

#[derive(Debug)]
enum ReplayError {
    Corrupt { position: usize, reason: String },
    UnsupportedVersion { position: usize, version: u16 },
}

fn replay(bytes: &[u8]) -> Result<Replayed, ReplayError> {
    let mut replayed = Replayed {
        metadata: Metadata::default(),
        version: FORMAT_VERSION_UNDECLARED,
        entries: 0,
        records: 0,
        torn: None,
    };
    let mut at = 0;
    while at < bytes.len() {
        let body = match frame(&bytes[at..]) {
            Ok(body) => body,
            Err(reason) => {
                // A torn end is cut off; a bad frame before good ones is not.
                if any_valid_frame_after(bytes, at, replayed.version) {
                    return Err(ReplayError::Corrupt {
                        position: at,
                        reason,
                    });
                }
                replayed.torn = Some((at, reason));
                break;
            }
        };
        let entry = encoding::decode(body, replayed.version).map_err(|error| match error {
            DecodeError::UnsupportedVersion { version } => ReplayError::UnsupportedVersion {
                position: at,
                version,
            },
            error => ReplayError::Corrupt {
                position: at,
                reason: format!("a whole frame that does not decode: {error}"),
            },
        })?;
        match entry {
            Entry::FormatVersion(version) => {
                if !(1..=FORMAT_VERSION).contains(&version) {
                    return Err(ReplayError::UnsupportedVersion {
                        position: at,
                        version,
                    });
                }
                replayed.version = version;
            }
            Entry::Record(record) => {
                replayed.records += 1;
                // Refused: a change to a topic deleted before it, which
                // this log's release let change nothing, as now.
                if let Err(refused) = replayed.metadata.apply(&record, replayed.records as u64) {
                    tracing::debug!(position = at, %refused, "metadata record changes nothing");
                }
            }
        }
        replayed.entries += 1;
        at += FRAME_HEADER_BYTES + body.len();
    }
    Ok(replayed)
}

/// The body of the frame at the start of `bytes`, if it is whole: its
/// length fits and its CRC holds. Otherwise why not.
fn frame(bytes: &[u8]) -> Result<&[u8], String> {
    if bytes.len() < FRAME_HEADER_BYTES {
        return Err(format!("{} bytes, short of a frame header", bytes.len()));
    }
    let length = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    if length > RECORD_BYTES_MAX || bytes.len() - FRAME_HEADER_BYTES < length {
        return Err(format!("record of {length} bytes does not fit"));
    }
    let body = &bytes[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + length];
    if crc32c::crc32c(body) != crc {
        return Err("CRC mismatch".to_string());
    }
    Ok(body)
}

/// Whether a whole frame that decodes (in `version`) starts anywhere after
/// byte `at`: if so, the bad frame at `at` is not a torn end.
fn any_valid_frame_after(bytes: &[u8], at: usize, version: u16) -> bool {
    (at + 1..bytes.len()).any(|start| {
        frame(&bytes[start..]).is_ok_and(|body| encoding::decode(body, version).is_ok())
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use sluice_storage::{NodeId, ProducerId, ShardId, TopicId};

    use super::*;
    use crate::cluster_metadata::{MetadataRecord, PRODUCER_ID_FIRST};

    fn topic(name: &str, id: u128) -> MetadataRecord {
        MetadataRecord::TopicCreated {
            topic_id: TopicId(id),
            name: name.to_string(),
            shards: [0, 1, 0].map(ShardId).to_vec(),
            replicas: vec![vec![NodeId(0)]; 3],
            configs: [("retention.ms".to_string(), "1000".to_string())].into(),
        }
    }

    fn shards(ids: &[u32]) -> Vec<ShardId> {
        ids.iter().copied().map(ShardId).collect()
    }

    fn log_path(data_dir: &Path) -> PathBuf {
        data_dir.join("metadata/metadata.log")
    }

    /// A frame around `body`, as the log writes it.
    fn framed(body: &[u8]) -> Vec<u8> {
        let mut frame = (body.len() as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
        frame.extend_from_slice(body);
        frame
    }

    #[test]
    fn records_replay_into_the_same_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, metadata) = MetadataLog::open(dir.path()).unwrap();
        assert!(metadata.topics.is_empty());
        log.append(&topic("a", 1)).unwrap();
        log.append(&topic("b", 2)).unwrap();
        log.append(&MetadataRecord::ConfigsAltered {
            topic_id: TopicId(2),
            configs: BTreeMap::new(),
        })
        .unwrap();
        log.append(&MetadataRecord::TopicDeleted {
            topic_id: TopicId(1),
        })
        .unwrap();
        drop(log);
        let (_, metadata) = MetadataLog::open(dir.path()).unwrap();
        assert_eq!(metadata.topics.len(), 1);
        let b = metadata.topic("b").unwrap();
        assert_eq!(b.shards, shards(&[0, 1, 0]));
        assert!(b.configs.is_empty());
        assert_eq!(metadata.load(NodeId(0), 2), vec![2, 1]);
    }

    #[test]
    fn added_partitions_and_producer_ids_replay_into_the_same_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, mut live) = MetadataLog::open(dir.path()).unwrap();
        assert_eq!(live.producer_id_next, PRODUCER_ID_FIRST);
        let records = [
            topic("a", 1),
            topic("b", 2),
            MetadataRecord::PartitionsAdded {
                topic_id: TopicId(1),
                first: None,
                shards: shards(&[1, 1]),
                replicas: Vec::new(),
            },
            MetadataRecord::ProducerIdsAllocated {
                first: None,
                next: ProducerId(2000),
            },
            MetadataRecord::PartitionsAdded {
                topic_id: TopicId(1),
                first: None,
                shards: shards(&[0]),
                replicas: Vec::new(),
            },
            MetadataRecord::ProducerIdsAllocated {
                first: None,
                next: ProducerId(3000),
            },
            // An unknown topic (deleted since) changes nothing.
            MetadataRecord::PartitionsAdded {
                topic_id: TopicId(9),
                first: None,
                shards: shards(&[0]),
                replicas: Vec::new(),
            },
            MetadataRecord::ProducerIdsAllocated {
                first: None,
                next: ProducerId(i64::MAX),
            },
        ];
        for record in &records {
            log.append(record).unwrap();
            let _ = live.apply(record, 0);
        }
        drop(log);
        let (_, replayed) = MetadataLog::open(dir.path()).unwrap();
        assert_eq!(replayed, live);
        assert_eq!(
            replayed.topic("a").unwrap().shards,
            shards(&[0, 1, 0, 1, 1, 0])
        );
        assert_eq!(replayed.topic("b").unwrap().shards, shards(&[0, 1, 0]));
        assert_eq!(replayed.topics.len(), 2);
        assert_eq!(replayed.producer_id_next, ProducerId(i64::MAX));
    }

    /// A log written by the release before the metadata log had an encoding
    /// of its own (version 1, no version entry), with every record type
    /// (see `tests/fixtures/README.md` for how it was made), replays to the
    /// state it described, and is appended to without a version entry.
    #[test]
    fn a_log_written_before_replays() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metadata-v1.log");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("metadata")).unwrap();
        let path = log_path(dir.path());
        std::fs::copy(&fixture, &path).unwrap();
        let (mut log, metadata) = MetadataLog::open(dir.path()).unwrap();
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
                shards(&[0, 1]),
                configs(&[("retention.ms", "-1")]),
            ),
            (
                "audit",
                0xae5cc8fcf382a74cd090b18bc787eef3,
                shards(&[1]),
                configs(&[("retention.bytes", "1048576")]),
            ),
            (
                "events",
                0xc649db2c0f921b46a8261664063eef5f,
                shards(&[0, 1]),
                configs(&[("segment.ms", "600000")]),
            ),
            (
                "orders",
                0x3013330e082e68b2930f29718cc23093,
                shards(&[0, 1, 0, 0, 1]),
                configs(&[("retention.ms", "7200000"), ("segment.bytes", "1048576")]),
            ),
        ];
        let topics: Vec<_> = metadata.topics.keys().map(String::as_str).collect();
        assert_eq!(topics, ["__consumer_offsets", "audit", "events", "orders"]);
        for (name, id, shards, configs) in expected {
            let topic = metadata.topic(name).unwrap();
            assert_eq!(topic.name, name);
            assert_eq!(topic.id, TopicId(id), "{name}");
            assert_eq!(topic.shards, shards, "{name}");
            assert_eq!(topic.configs, configs, "{name}");
        }
        assert_eq!(metadata.producer_id_next, ProducerId(2000));
        // Replay read every byte: nothing was cut off as torn; the log is
        // version 1, so what this release appends follows a version entry.
        let fixture_bytes = std::fs::read(&fixture).unwrap();
        let mut expected_bytes = fixture_bytes.clone();
        expected_bytes.extend(framed(&encoding::encode_version(FORMAT_VERSION)));
        assert_eq!(std::fs::read(&path).unwrap(), expected_bytes);
        // What is appended now follows on and replays with the rest.
        let deleted = MetadataRecord::TopicDeleted {
            topic_id: TopicId(0x3013330e082e68b2930f29718cc23093),
        };
        log.append(&deleted).unwrap();
        drop(log);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes[..expected_bytes.len()], expected_bytes);
        assert_eq!(
            bytes[expected_bytes.len()..],
            framed(&encoding::encode_record(&deleted))
        );
        let (_, replayed) = MetadataLog::open(dir.path()).unwrap();
        let mut expected = metadata;
        expected.apply(&deleted, 0).unwrap();
        assert_eq!(replayed, expected);
        assert!(replayed.topic("orders").is_none());
    }

    #[test]
    fn a_new_log_starts_with_its_format_version() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = MetadataLog::open(dir.path()).unwrap();
        log.append(&topic("a", 1)).unwrap();
        drop(log);
        let bytes = std::fs::read(log_path(dir.path())).unwrap();
        let version = framed(&encoding::encode_version(FORMAT_VERSION));
        assert_eq!(bytes[..version.len()], version);
        assert_eq!(
            bytes[version.len()..],
            framed(&encoding::encode_record(&topic("a", 1)))
        );
        // Opened again, it is not declared twice.
        drop(MetadataLog::open(dir.path()).unwrap());
        assert_eq!(std::fs::read(log_path(dir.path())).unwrap(), bytes);
    }

    /// A log declaring a version this release does not know stops the
    /// broker, wherever the declaration is, and is left as it is.
    #[test]
    fn a_later_format_version_is_refused_not_misread() {
        for at_the_end in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let (mut log, _) = MetadataLog::open(dir.path()).unwrap();
            log.append(&topic("a", 1)).unwrap();
            drop(log);
            let path = log_path(dir.path());
            let mut bytes = std::fs::read(&path).unwrap();
            let declared_at = bytes.len();
            bytes.extend(framed(&encoding::encode_version(FORMAT_VERSION + 1)));
            if !at_the_end {
                // A record in the later version's encoding, unknown here.
                bytes.extend(framed(&[0x2a, 1, 2, 3]));
            }
            std::fs::write(&path, &bytes).unwrap();
            match MetadataLog::open(dir.path()) {
                Err(MetadataError::UnsupportedVersion {
                    position, version, ..
                }) => {
                    assert_eq!(position, declared_at as u64);
                    assert_eq!(version, FORMAT_VERSION + 1);
                }
                other => panic!("{:?}", other.map(|(_, metadata)| metadata)),
            }
            assert_eq!(std::fs::read(&path).unwrap(), bytes);
        }
    }

    /// A last frame whose CRC holds was written whole: one that does not
    /// decode is not cut off as torn.
    #[test]
    fn a_whole_last_frame_that_does_not_decode_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        drop(MetadataLog::open(dir.path()).unwrap());
        let path = log_path(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len();
        bytes.extend(framed(&[0x2a]));
        std::fs::write(&path, &bytes).unwrap();
        match MetadataLog::open(dir.path()) {
            Err(MetadataError::Corrupt { position, .. }) => assert_eq!(position, at as u64),
            other => panic!("{:?}", other.map(|(_, metadata)| metadata)),
        }
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn a_torn_last_record_is_cut_and_a_bad_middle_one_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = MetadataLog::open(dir.path()).unwrap();
        log.append(&topic("a", 1)).unwrap();
        log.append(&topic("b", 2)).unwrap();
        drop(log);
        let path = log_path(dir.path());
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let (mut log, metadata) = MetadataLog::open(dir.path()).unwrap();
        assert_eq!(metadata.topics.len(), 1);
        log.append(&topic("c", 3)).unwrap();
        drop(log);
        let mut bytes = std::fs::read(&path).unwrap();
        // Inside the first record, after the version entry.
        let version_frame_bytes = framed(&encoding::encode_version(FORMAT_VERSION)).len();
        bytes[version_frame_bytes + 10] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            MetadataLog::open(dir.path()),
            Err(MetadataError::Corrupt { .. })
        ));
    }
}
