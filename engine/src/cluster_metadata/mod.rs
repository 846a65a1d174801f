//! The cluster's metadata: topics (their partitions' placement and their
//! configs) and the producer ids handed out, as a log of records replayed
//! at start into an immutable image that every shard holds.
//!
//! - [`image`]: the image ([`Metadata`], one [`TopicMeta`] per topic) and
//!   how a record changes it.
//! - [`records`]: the records ([`MetadataRecord`]), one per change.
//! - [`encoding`]: the records' bytes, versioned, owned here and by no
//!   wire protocol, so that a change to a protocol never changes the disk.
//! - [`log_file`]: the log on disk ([`MetadataLog`]): frames, durability,
//!   replay, and what a torn or corrupt frame means.
//! - [`entries`]: what the controller quorum's log entries and snapshots
//!   hold (a record with the node that proposed it; the image as records).
//!
//! The controller quorum's log (`crate::quorum_log`) holds the records
//! since cluster mode; [`log_file`] is the single node's log of releases
//! before it, read once to import it. Only the controller (on shard 0)
//! changes the metadata; the protocol adapters read the image, and never
//! the log.

pub mod encoding;
pub mod entries;
pub mod image;
pub mod log_file;
pub mod records;

pub use image::{check_credential, Metadata, Refused, TopicMeta, PRODUCER_ID_FIRST};
pub use log_file::{MetadataError, MetadataLog};
pub use records::{Election, MetadataRecord};
