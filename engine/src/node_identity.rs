//! Which cluster and which node a data directory belongs to.
//!
//! A data directory holds one node's partitions and metadata. Started with
//! the data of another node (another `--node-id`), a broker would serve that
//! node's partitions under the wrong name and, once it is in a cluster, claim
//! another node's place; so the directory records its node and cluster in a
//! small file, `DATA/node.identity`, written once when the directory is first
//! used, and every later start checks it.
//!
//! The file is text, one `key=value` a line: `format.version`, `cluster.id`
//! (22 characters of URL-safe base64 of 16 random bytes, as Kafka's cluster
//! ids are) and `node.id`. It is written to a temporary file, synced, renamed
//! into place and its directory synced, so a crash leaves either no file
//! (and the next start writes one) or the whole file.

use std::{
    fs::{self, File},
    io::{self, Write},
    path::{Path, PathBuf},
};

use sluice_storage::NodeId;

/// The file's name in the data directory.
pub const IDENTITY_FILE: &str = "node.identity";

/// The format this release writes and reads.
const FORMAT_VERSION: u32 = 1;

/// The file is a few short lines; a larger one is not an identity file.
const IDENTITY_FILE_BYTES_MAX: u64 = 4096;

/// What a data directory says of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    pub cluster_id: String,
    pub node_id: NodeId,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(
        "data directory {dir} belongs to node {recorded} of cluster {cluster_id}, not node {configured}: \
         start it with --node-id {recorded}, or give node {configured} a data directory of its own"
    )]
    OtherNode {
        dir: PathBuf,
        cluster_id: String,
        recorded: NodeId,
        configured: NodeId,
    },
    #[error(
        "data directory {dir} belongs to cluster {recorded}, not cluster {configured}: \
         give this node a data directory of its own, or start it with --cluster-id {recorded}"
    )]
    OtherCluster {
        dir: PathBuf,
        recorded: String,
        configured: String,
    },
    #[error("cluster id {given:?} is not one: 22 characters of URL-safe base64 (as `sluice cluster id` prints)")]
    InvalidClusterId { given: String },
    #[error("{path} is not a node identity file: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

impl NodeIdentity {
    /// The identity `data_dir` records, checked against `node_id`; a
    /// directory without one (new, or written by a release before
    /// identities) is given one now: `node_id` in cluster `cluster_id`, or
    /// in a new cluster when that is `None`.
    ///
    /// Errors: `OtherNode` when the directory is another node's;
    /// `OtherCluster` when it is of a cluster other than `cluster_id`;
    /// `InvalidClusterId` when `cluster_id` is not one; `Corrupt`
    /// when the file does not parse; `Io` when it cannot be read or written.
    pub fn load_or_create(
        data_dir: &Path,
        node_id: NodeId,
        cluster_id: Option<&str>,
    ) -> Result<NodeIdentity, IdentityError> {
        if let Some(given) = cluster_id.filter(|given| !is_cluster_id(given)) {
            return Err(IdentityError::InvalidClusterId {
                given: given.to_string(),
            });
        }
        let path = data_dir.join(IDENTITY_FILE);
        let identity = match read(&path)? {
            Some(identity) => identity,
            None => {
                let identity = NodeIdentity {
                    cluster_id: cluster_id.map_or_else(new_cluster_id, str::to_string),
                    node_id,
                };
                write(data_dir, &path, &identity)?;
                tracing::info!(cluster_id = %identity.cluster_id, %node_id, "data directory given its identity");
                identity
            }
        };
        if let Some(configured) = cluster_id.filter(|given| *given != identity.cluster_id) {
            return Err(IdentityError::OtherCluster {
                dir: data_dir.to_path_buf(),
                recorded: identity.cluster_id,
                configured: configured.to_string(),
            });
        }
        if identity.node_id != node_id {
            return Err(IdentityError::OtherNode {
                dir: data_dir.to_path_buf(),
                cluster_id: identity.cluster_id,
                recorded: identity.node_id,
                configured: node_id,
            });
        }
        Ok(identity)
    }

    fn to_text(&self) -> String {
        format!(
            "format.version={FORMAT_VERSION}\ncluster.id={}\nnode.id={}\n",
            self.cluster_id, self.node_id
        )
    }

    fn parse(text: &str) -> Result<NodeIdentity, String> {
        let mut version = None;
        let mut cluster_id = None;
        let mut node_id = None;
        for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
            let Some((key, value)) = line.split_once('=') else {
                return Err(format!("line {line:?} is not key=value"));
            };
            let slot = match key {
                "format.version" => &mut version,
                "cluster.id" => &mut cluster_id,
                "node.id" => &mut node_id,
                other => return Err(format!("unknown key {other:?}")),
            };
            if slot.replace(value.to_string()).is_some() {
                return Err(format!("{key} is given twice"));
            }
        }
        match version.as_deref() {
            Some("1") => {}
            Some(other) => {
                return Err(format!(
                    "format.version {other} is not one this release reads ({FORMAT_VERSION})"
                ))
            }
            None => return Err("no format.version".to_string()),
        }
        let cluster_id = cluster_id.ok_or("no cluster.id")?;
        if !is_cluster_id(&cluster_id) {
            return Err(format!(
                "cluster.id {cluster_id:?} is not 22 characters of URL-safe base64"
            ));
        }
        let node_id = node_id.ok_or("no node.id")?;
        let node_id = node_id
            .parse::<i32>()
            .ok()
            .filter(|id| *id >= 0)
            .ok_or_else(|| format!("node.id {node_id:?} is not a node id (0 to {})", i32::MAX))?;
        Ok(NodeIdentity {
            cluster_id,
            node_id: NodeId(node_id),
        })
    }
}

fn read(path: &Path) -> Result<Option<NodeIdentity>, IdentityError> {
    let io_error = |source| IdentityError::Io {
        path: path.to_path_buf(),
        source,
    };
    let metadata = match fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error(error)),
    };
    if metadata.len() > IDENTITY_FILE_BYTES_MAX {
        return Err(IdentityError::Corrupt {
            path: path.to_path_buf(),
            reason: format!(
                "{} bytes, over the {IDENTITY_FILE_BYTES_MAX} an identity takes",
                metadata.len()
            ),
        });
    }
    let text = fs::read_to_string(path).map_err(io_error)?;
    NodeIdentity::parse(&text)
        .map(Some)
        .map_err(|reason| IdentityError::Corrupt {
            path: path.to_path_buf(),
            reason,
        })
}

fn write(data_dir: &Path, path: &Path, identity: &NodeIdentity) -> Result<(), IdentityError> {
    let temporary = data_dir.join(format!("{IDENTITY_FILE}.tmp"));
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| IdentityError::Io { path, source }
    };
    let mut file = File::create(&temporary).map_err(io_error(&temporary))?;
    file.write_all(identity.to_text().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_error(&temporary))?;
    fs::rename(&temporary, path).map_err(io_error(path))?;
    File::open(data_dir)
        .and_then(|dir| dir.sync_all())
        .map_err(io_error(data_dir))
}

/// 16 random bytes as 22 characters of URL-safe base64 without padding.
pub fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bits = rand::random::<u128>();
    // 22 characters of 6 bits hold 132 bits: the 128 random ones, then
    // zeros, as base64 of 16 bytes ends.
    (0..22)
        .map(|index| {
            let shift = 128i32 - 6 * (index + 1);
            let sextet = if shift >= 0 {
                (bits >> shift) & 0x3f
            } else {
                (bits << -shift) & 0x3f
            };
            ALPHABET[sextet as usize] as char
        })
        .collect()
}

pub fn is_cluster_id(text: &str) -> bool {
    text.len() == 22
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_directory_gets_an_identity_that_later_starts_keep() {
        let dir = tempfile::tempdir().unwrap();
        let first = NodeIdentity::load_or_create(dir.path(), NodeId(3), None).unwrap();
        assert_eq!(first.node_id, NodeId(3));
        assert!(is_cluster_id(&first.cluster_id), "{}", first.cluster_id);
        let again = NodeIdentity::load_or_create(dir.path(), NodeId(3), None).unwrap();
        assert_eq!(again, first);
        assert!(!dir.path().join("node.identity.tmp").exists());
        let other = tempfile::tempdir().unwrap();
        let elsewhere = NodeIdentity::load_or_create(other.path(), NodeId(3), None).unwrap();
        assert_ne!(elsewhere.cluster_id, first.cluster_id);
    }

    #[test]
    fn another_node_id_is_refused_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let first = NodeIdentity::load_or_create(dir.path(), NodeId(1), None).unwrap();
        let path = dir.path().join(IDENTITY_FILE);
        let before = fs::read(&path).unwrap();
        let error = NodeIdentity::load_or_create(dir.path(), NodeId(2), None).unwrap_err();
        let message = error.to_string();
        assert!(matches!(
            error,
            IdentityError::OtherNode {
                recorded: NodeId(1),
                configured: NodeId(2),
                ..
            }
        ));
        assert!(message.contains(&first.cluster_id), "{message}");
        assert!(message.contains("--node-id 1"), "{message}");
        assert_eq!(fs::read(&path).unwrap(), before);
    }

    #[test]
    fn a_given_cluster_id_is_taken_by_a_new_directory_and_checked_by_an_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = "Zm9vYmFyYmF6cXV4cXV1eA";
        let first = NodeIdentity::load_or_create(dir.path(), NodeId(2), Some(cluster)).unwrap();
        assert_eq!(first.cluster_id, cluster);
        let again = NodeIdentity::load_or_create(dir.path(), NodeId(2), None).unwrap();
        assert_eq!(again, first, "no cluster id given: the recorded one");
        let path = dir.path().join(IDENTITY_FILE);
        let before = fs::read(&path).unwrap();
        let other = "b3RoZXJjbHVzdGVyaWRpZA";
        let error = NodeIdentity::load_or_create(dir.path(), NodeId(2), Some(other)).unwrap_err();
        assert!(
            matches!(error, IdentityError::OtherCluster { .. }),
            "{error}"
        );
        let message = error.to_string();
        assert!(
            message.contains(cluster) && message.contains(other),
            "{message}"
        );
        assert_eq!(fs::read(&path).unwrap(), before);
        let fresh = tempfile::tempdir().unwrap();
        let error =
            NodeIdentity::load_or_create(fresh.path(), NodeId(2), Some("not an id")).unwrap_err();
        assert!(
            matches!(error, IdentityError::InvalidClusterId { .. }),
            "{error}"
        );
        assert!(!fresh.path().join(IDENTITY_FILE).exists());
    }

    #[test]
    fn a_damaged_file_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(IDENTITY_FILE);
        let cases = [
            "",
            "format.version=1\nnode.id=1\n",
            "format.version=2\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\nnode.id=1\n",
            "format.version=1\ncluster.id=short\nnode.id=1\n",
            "format.version=1\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\nnode.id=-1\n",
            "format.version=1\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\nnode.id=1\nnode.id=1\n",
            "format.version=1\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\nnode.id=1\ncolour=blue\n",
            "garbage",
        ];
        for text in cases {
            fs::write(&path, text).unwrap();
            let error = NodeIdentity::load_or_create(dir.path(), NodeId(1), None).unwrap_err();
            assert!(
                matches!(error, IdentityError::Corrupt { .. }),
                "{text:?}: {error}"
            );
            assert_eq!(fs::read_to_string(&path).unwrap(), text);
        }
        fs::write(&path, vec![b'a'; 5000]).unwrap();
        assert!(matches!(
            NodeIdentity::load_or_create(dir.path(), NodeId(1), None),
            Err(IdentityError::Corrupt { .. })
        ));
        let valid = "format.version=1\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\nnode.id=7\n";
        fs::write(&path, valid).unwrap();
        let identity = NodeIdentity::load_or_create(dir.path(), NodeId(7), None).unwrap();
        assert_eq!(identity.cluster_id, "A".repeat(22));
    }

    #[test]
    fn cluster_ids_use_every_bit_and_only_the_alphabet() {
        let ids: Vec<String> = (0..64).map(|_| new_cluster_id()).collect();
        for id in &ids {
            assert!(is_cluster_id(id), "{id}");
            // The last character holds 2 random bits and 4 zeros.
            assert!(b"AQgw".contains(&id.as_bytes()[21]), "{id}");
        }
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
    }
}
