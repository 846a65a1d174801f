//! The controller at start: its quorum log opened (formed with the quorum
//! on a node's first start, imported from the single node's metadata log
//! of a release before cluster mode), and the metadata image its committed
//! entries make, before any shard opens a partition.

use std::path::{Path, PathBuf};

use sluice_replication::quorum::{self, QuorumConfig, QuorumStorage};
use sluice_storage::NodeId;

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
        "{path} holds a single node's metadata, which cannot form a quorum of {voters} voters: \
         start this node alone first (no --voters), or give it an empty data directory"
    )]
    LegacyInCluster { path: PathBuf, voters: usize },
}

/// What the controller starts from: its log, the image of its committed
/// entries, and the quorum's settings. Made before the shards start, so
/// that each opens its partitions from the image.
pub struct ControllerStart {
    pub log: QuorumLog,
    pub image: Metadata,
    /// The index of the last committed entry in `image`.
    pub applied: u64,
    pub voters: Vec<quorum::NodeId>,
    pub config: QuorumConfig,
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

/// Opens (or forms) the quorum log under `config.data_dir` and replays it.
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
        log,
        image,
        applied,
        voters,
        config: QuorumConfig {
            cluster_id: wire_cluster_id(cluster_id),
            election_ticks: ELECTION_TICKS,
            heartbeat_ticks: HEARTBEAT_TICKS,
            snapshot_interval_entries: SNAPSHOT_INTERVAL_ENTRIES,
            election_seed: rand::random(),
            disk_id,
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
        let mut placed = (**topic).clone();
        placed.replicas = vec![vec![node]; placed.shards.len()];
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
