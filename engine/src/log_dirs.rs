//! The directories a node keeps partitions in (Kafka's `log.dirs`), one
//! per disk: the data directory, which also holds the node's metadata,
//! then each `--log-dirs` directory. Each is a node's own: it records the
//! node and cluster it belongs to (see [`crate::node_identity`]) and is
//! locked while the node runs.
//!
//! A partition lives in one of them, under `topics/NAME-ID/N`, whichever
//! holds it; a new one goes to the directory holding the fewest partitions
//! (Kafka's choice), so partitions spread over the disks. Which directory
//! holds a partition is this node's own business, not the cluster's
//! metadata: it is found on disk at each start. A partition moves to
//! another directory of its node with Kafka's AlterReplicaLogDirs.

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
};

use crate::cluster_metadata::TopicMeta;

/// The node's log directories and how many partitions each holds.
#[derive(Debug)]
pub struct LogDirs {
    dirs: Vec<PathBuf>,
    partitions: Vec<AtomicUsize>,
}

impl LogDirs {
    /// `dirs` (absolute, the data directory first), their partitions
    /// counted from what is on disk; the partial copy of a move a crash
    /// cut short (`N.moving`, beside the partition it copied, which is
    /// whole) is removed.
    pub fn new(dirs: Vec<PathBuf>) -> LogDirs {
        let partitions = dirs.iter().map(|dir| AtomicUsize::new(scan(dir))).collect();
        LogDirs { dirs, partitions }
    }

    /// Every log directory, the data directory first.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The log directory (its index) that holds partition `partition` of
    /// `topic`, if one does.
    pub fn find(&self, topic: &TopicMeta, partition: u32) -> Option<usize> {
        self.dirs
            .iter()
            .position(|dir| topic.partition_dir(dir, partition).is_dir())
    }

    /// Where partition `partition` of `topic` lives: the directory that
    /// holds it, or, if none does, the one holding the fewest partitions
    /// (counted as holding it from now).
    pub fn place(&self, topic: &TopicMeta, partition: u32) -> PathBuf {
        let index = self.find(topic, partition).unwrap_or_else(|| {
            let index = (0..self.dirs.len())
                .min_by_key(|index| (self.partitions[*index].load(Ordering::Relaxed), *index))
                .expect("a node has a data directory");
            self.partitions[index].fetch_add(1, Ordering::Relaxed);
            index
        });
        topic.partition_dir(&self.dirs[index], partition)
    }

    /// A partition moved into log directory `to` from `from`.
    pub fn moved(&self, from: usize, to: usize) {
        self.forget(from);
        self.partitions[to].fetch_add(1, Ordering::Relaxed);
    }

    /// A partition in log directory `index` was removed.
    pub fn forget(&self, index: usize) {
        let _ = self.partitions[index].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            Some(n.saturating_sub(1))
        });
    }

    /// The log directory (its index) that `path`, a partition's directory,
    /// is in.
    pub fn index_of(&self, path: &Path) -> Option<usize> {
        self.dirs.iter().position(|dir| path.starts_with(dir))
    }

    /// The index of the log directory `path` names.
    pub fn index_named(&self, path: &Path) -> Option<usize> {
        self.dirs.iter().position(|dir| dir == path)
    }
}

/// Where a move copies a partition before renaming it into place.
pub const MOVING_SUFFIX: &str = "moving";

/// Partitions under `dir/topics`, topics being deleted left out; partial
/// copies of moves removed.
fn scan(dir: &Path) -> usize {
    let Ok(topics) = std::fs::read_dir(dir.join("topics")) else {
        return 0;
    };
    topics
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path())
        .filter(|path| {
            let deleting = path
                .extension()
                .is_some_and(|ext| ext == sluice_storage::deleter::DELETED_SUFFIX);
            path.is_dir() && !deleting
        })
        .map(|topic| {
            std::fs::read_dir(topic).map_or(0, |partitions| {
                partitions
                    .filter_map(|entry| entry.ok())
                    .filter(|entry| {
                        let path = entry.path();
                        if path.extension().is_some_and(|ext| ext == MOVING_SUFFIX) {
                            tracing::info!(dir = %path.display(), "removing the partial copy of a move a stop cut short");
                            if let Err(error) = std::fs::remove_dir_all(&path) {
                                tracing::warn!(dir = %path.display(), %error, "not removed");
                            }
                            return false;
                        }
                        path.is_dir() && entry.file_name().to_string_lossy().parse::<u32>().is_ok()
                    })
                    .count()
            })
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, sync::Arc};

    use sluice_storage::{NodeId, ShardId, TopicId};

    use super::*;

    fn topic(partitions: u32) -> TopicMeta {
        TopicMeta::new(
            TopicId(7),
            "t".to_string(),
            vec![ShardId(0); partitions as usize],
            vec![vec![NodeId(0)]; partitions as usize],
            BTreeMap::new(),
            |_| true,
        )
    }

    #[test]
    fn new_partitions_go_to_the_emptiest_directory_and_stay_where_they_are() {
        let disks: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let topic = Arc::new(topic(6));
        // One partition already on the third disk.
        std::fs::create_dir_all(topic.partition_dir(disks[2].path(), 5)).unwrap();
        let dirs = LogDirs::new(disks.iter().map(|d| d.path().to_path_buf()).collect());
        let placed: Vec<PathBuf> = (0..6).map(|p| dirs.place(&topic, p)).collect();
        assert_eq!(placed[5], topic.partition_dir(disks[2].path(), 5));
        let per_disk: Vec<usize> = disks
            .iter()
            .map(|disk| placed.iter().filter(|p| p.starts_with(disk.path())).count())
            .collect();
        assert_eq!(per_disk, [2, 2, 2]);
        // Found again where it is.
        std::fs::create_dir_all(&placed[0]).unwrap();
        assert_eq!(dirs.place(&topic, 0), placed[0]);
        assert_eq!(dirs.find(&topic, 0), dirs.index_of(&placed[0]));
        assert_eq!(dirs.find(&topic, 1), None, "not made on disk yet");
    }

    #[test]
    fn partitions_on_disk_are_counted_at_start() {
        let disk = tempfile::tempdir().unwrap();
        let topic = topic(3);
        for partition in 0..3 {
            std::fs::create_dir_all(topic.partition_dir(disk.path(), partition)).unwrap();
        }
        std::fs::create_dir_all(disk.path().join("topics/gone-1.deleted/0")).unwrap();
        let partial = topic
            .partition_dir(disk.path(), 1)
            .with_extension(MOVING_SUFFIX);
        std::fs::create_dir_all(&partial).unwrap();
        let empty = tempfile::tempdir().unwrap();
        let dirs = LogDirs::new(vec![disk.path().to_path_buf(), empty.path().to_path_buf()]);
        let other = TopicMeta {
            id: TopicId(8),
            ..topic
        };
        for partition in 0..3 {
            assert!(dirs.place(&other, partition).starts_with(empty.path()));
        }
        assert!(!partial.exists(), "a move's partial copy is removed");
    }
}
