//! The controller at start: its quorum log opened (formed with the quorum
//! on a node's first start, imported from the single node's metadata log
//! of a release before cluster mode), and the metadata image its committed
//! entries make, before any shard opens a partition. A broker that is not
//! a voter (an observer) starts from its own copy of the image instead
//! (see [`super::observer`]).

use std::path::{Path, PathBuf};

use std::cell::RefCell;

use sluice_replication::quorum::{self, Quorum, QuorumConfig, QuorumStorage};
use sluice_storage::NodeId;

use super::{
    observer,
    state::{Controller, Observer, Part},
};
use crate::{
    cluster_metadata::{
        entries::{decode_proposal, decode_snapshot, encode_snapshot},
        Metadata, MetadataError, MetadataLog,
    },
    quorum_log::{QuorumLog, QuorumLogError},
    BrokerConfig,
};

/// The quorum's ticks: elections, heartbeats and leases count in them.
pub const TICK_MS: u64 = 50;
/// A follower that hears no leader for 10 to 20 ticks (0.5 to 1 s)
/// stands for election: failover within about a second, without
/// elections on a loaded machine's ordinary pauses.
const ELECTION_TICKS: usize = 10;
/// The leader's heartbeat every 2 ticks (100 ms).
const HEARTBEAT_TICKS: usize = 2;
/// A snapshot every this many entries bounds the log (and what a restart
/// replays) to a few megabytes of small records.
const SNAPSHOT_INTERVAL_ENTRIES: u64 = 4096;

/// Why the controller could not start.
#[derive(Debug, thiserror::Error)]
pub enum ControllerStartError {
    #[error(transparent)]
    Log(#[from] QuorumLogError),
    #[error(transparent)]
    Legacy(#[from] MetadataError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the metadata of {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "{path} holds a controller voter's quorum log, but node {node} is not among the voters \
         ({voters}): start it with the voters it was formed with"
    )]
    VoterNoMore {
        path: PathBuf,
        node: NodeId,
        voters: String,
    },
    #[error(
        "{path} holds the metadata of a broker that was not a voter, but node {node} is now among \
         the voters: give it an empty data directory to make it a voter (with --rejoin)"
    )]
    ObserverNowVoter { path: PathBuf, node: NodeId },
    #[error(
        "{path} holds a single node's metadata, which cannot form a quorum of {voters} voters: \
         start this node alone first (no --voters), or give it an empty data directory"
    )]
    LegacyInCluster { path: PathBuf, voters: usize },
}

/// What the controller starts from: the image of the committed entries it
/// has, and its part in the quorum. Made before the shards start, so that
/// each opens its partitions from the image.
pub struct ControllerStart {
    pub image: Metadata,
    /// The index of the last committed entry in `image`.
    pub applied: u64,
    pub member: Member,
}

/// A node's part in the controller quorum.
pub enum Member {
    /// A voter: its log and the quorum's settings.
    Voter {
        log: Box<QuorumLog>,
        voters: Vec<quorum::NodeId>,
        config: QuorumConfig,
    },
    /// A broker that is not a voter: it follows the voters' committed
    /// entries and keeps the image they make at `image_path`.
    Observer {
        voters: Vec<NodeId>,
        image_path: PathBuf,
    },
}

impl ControllerStart {
    /// The controller of node `node` this start makes (on shard 0's
    /// executor: raft's node stays on the thread that drives it).
    pub fn into_controller(self, node: NodeId) -> Result<Controller, String> {
        let part = match self.member {
            Member::Voter {
                log,
                voters,
                config,
            } => Part::Voter(Box::new(RefCell::new(
                Quorum::new(quorum_id(node), &voters, *log, config)
                    .map_err(|error| format!("controller quorum: {error}"))?,
            ))),
            Member::Observer { voters, image_path } => {
                Part::Observer(Observer::new(voters, image_path))
            }
        };
        Ok(Controller::new(node, part, self.image, self.applied))
    }
}

/// The quorum's id of node `node`.
pub fn quorum_id(node: NodeId) -> quorum::NodeId {
    quorum::NodeId(u64::try_from(node.0).expect("node ids are not negative"))
}

/// The node of quorum id `id`.
pub fn node_of(id: quorum::NodeId) -> NodeId {
    NodeId(i32::try_from(id.0).expect("quorum ids are node ids"))
}

/// A cluster id (22 characters) as the quorum's wire carries it: 64 bits
/// of FNV-1a over its text.
pub fn wire_cluster_id(cluster_id: &str) -> u64 {
    cluster_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// Opens (or forms) the quorum log under `config.data_dir` and replays it;
/// on a broker that is not a voter, loads its copy of the image.
pub fn open(
    config: &BrokerConfig,
    cluster_id: &str,
) -> Result<ControllerStart, ControllerStartError> {
    let node = config.node_id;
    let voters: Vec<quorum::NodeId> = if config.voters.is_empty() {
        vec![quorum_id(node)]
    } else {
        config
            .voters
            .iter()
            .map(|voter| quorum_id(voter.node_id))
            .collect()
    };
    let metadata_dir = config.data_dir.join("metadata");
    let dir = metadata_dir.join("quorum");
    let image_path = metadata_dir.join(observer::IMAGE_FILE);
    if !voters.contains(&quorum_id(node)) {
        if holds_a_log(&dir)? {
            return Err(ControllerStartError::VoterNoMore {
                path: dir,
                node,
                voters: config
                    .voters
                    .iter()
                    .map(|voter| format!("{}@{}", voter.node_id, voter.peer_addr))
                    .collect::<Vec<_>>()
                    .join(","),
            });
        }
        std::fs::create_dir_all(&metadata_dir).map_err(|source| ControllerStartError::Io {
            path: metadata_dir.clone(),
            source,
        })?;
        let (image, applied) = observer::load(&image_path)?;
        tracing::info!(
            applied,
            topics = image.topics.len(),
            "a broker that is not a voter: following the controller quorum from its copy of the metadata"
        );
        return Ok(ControllerStart {
            image,
            applied,
            member: Member::Observer {
                voters: voters.into_iter().map(node_of).collect(),
                image_path,
            },
        });
    }
    if image_path.exists() {
        return Err(ControllerStartError::ObserverNowVoter {
            path: image_path,
            node,
        });
    }
    let log = if holds_a_log(&dir)? {
        if config.rejoin {
            tracing::warn!("--rejoin ignored: this data directory holds its quorum log");
        }
        QuorumLog::open(&dir)?
    } else if config.rejoin && voters.len() > 1 {
        tracing::warn!(
            "rejoining the controller quorum with an empty log: caught up by its leader before this node votes"
        );
        QuorumLog::open(&dir)?
    } else {
        form(&metadata_dir, &dir, node, &voters)?
    };
    let disk_id = disk_id(&metadata_dir)?;
    let (image, applied) = replay(&log, &dir)?;
    tracing::info!(
        applied,
        topics = image.topics.len(),
        brokers = image.brokers.len(),
        "controller metadata replayed"
    );
    Ok(ControllerStart {
        image,
        applied,
        member: Member::Voter {
            log: Box::new(log),
            voters,
            config: QuorumConfig {
                cluster_id: wire_cluster_id(cluster_id),
                election_ticks: ELECTION_TICKS,
                heartbeat_ticks: HEARTBEAT_TICKS,
                snapshot_interval_entries: SNAPSHOT_INTERVAL_ENTRIES,
                election_seed: rand::random(),
                disk_id,
            },
        },
    })
}

fn holds_a_log(dir: &Path) -> Result<bool, ControllerStartError> {
    match std::fs::read_dir(dir) {
        Ok(mut items) => Ok(items.any(|item| {
            item.is_ok_and(|item| item.file_name().to_string_lossy().starts_with("log-"))
        })),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(ControllerStartError::Io {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// A node's first start: the quorum log is made with the voters, and with
/// the metadata of a single node's log if there is one (then renamed
/// `metadata.log.imported`, kept for whoever wants to look).
fn form(
    metadata_dir: &Path,
    dir: &Path,
    node: NodeId,
    voters: &[quorum::NodeId],
) -> Result<QuorumLog, ControllerStartError> {
    let legacy = metadata_dir.join("metadata.log");
    if !legacy.exists() {
        tracing::info!(voters = voters.len(), "controller quorum formed");
        return Ok(QuorumLog::bootstrap(dir, voters)?);
    }
    if voters.len() > 1 {
        return Err(ControllerStartError::LegacyInCluster {
            path: legacy,
            voters: voters.len(),
        });
    }
    let (_, mut image) = MetadataLog::open(
        metadata_dir
            .parent()
            .expect("metadata is in a data directory"),
    )?;
    // That log's release ran one node: every partition is this node's.
    for topic in image.topics.values_mut() {
        let placed = crate::cluster_metadata::TopicMeta::new(
            topic.id,
            topic.name.clone(),
            topic.shards.clone(),
            vec![vec![node]; topic.shards.len()],
            topic.configs.clone(),
            |_| true,
        );
        *topic = std::sync::Arc::new(placed);
    }
    let log = QuorumLog::bootstrap_with_state(dir, voters, encode_snapshot(&image))?;
    let imported = metadata_dir.join("metadata.log.imported");
    std::fs::rename(&legacy, &imported)
        .and_then(|()| std::fs::File::open(metadata_dir)?.sync_all())
        .map_err(|source| ControllerStartError::Io {
            path: legacy.clone(),
            source,
        })?;
    tracing::info!(
        topics = image.topics.len(),
        from = %legacy.display(),
        "metadata imported into the controller quorum's log"
    );
    Ok(log)
}

/// The image of the log's snapshot and its committed entries after it.
fn replay(log: &QuorumLog, dir: &Path) -> Result<(Metadata, u64), ControllerStartError> {
    let corrupt = |reason: String| ControllerStartError::Corrupt {
        path: dir.to_path_buf(),
        reason,
    };
    let snapshot = log.latest_snapshot();
    let mut image =
        decode_snapshot(&snapshot.data).map_err(|error| corrupt(format!("snapshot: {error}")))?;
    let mut applied = snapshot.get_metadata().index;
    let commit = log.hard_state().commit;
    for entry in log.view().entries_held() {
        if entry.index > commit {
            break;
        }
        applied = entry.index;
        if entry.data.is_empty() {
            continue;
        }
        let proposal = decode_proposal(&entry.data)
            .map_err(|error| corrupt(format!("entry {}: {error}", entry.index)))?;
        let _ = image.apply(&proposal.record, entry.index);
    }
    Ok((image, applied))
}

/// This data directory's disk id (see [`QuorumConfig::disk_id`]): drawn
/// when the directory's metadata is first made, the same at every start.
fn disk_id(metadata_dir: &Path) -> Result<u64, ControllerStartError> {
    let path = metadata_dir.join("disk.id");
    let io_error = |source| ControllerStartError::Io {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|id| *id != 0)
            .ok_or_else(|| ControllerStartError::Corrupt {
                path: path.clone(),
                reason: format!("{text:?} is not a disk id"),
            }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let id = rand::random::<u64>().max(1);
            let temporary = metadata_dir.join("disk.id.tmp");
            std::fs::write(&temporary, format!("{id}\n"))
                .and_then(|()| std::fs::File::open(&temporary)?.sync_all())
                .and_then(|()| std::fs::rename(&temporary, &path))
                .and_then(|()| std::fs::File::open(metadata_dir)?.sync_all())
                .map_err(io_error)?;
            Ok(id)
        }
        Err(error) => Err(io_error(error)),
    }
}
