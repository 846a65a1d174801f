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
//!
//! Only the controller (on shard 0) appends; the
//! protocol adapters read the image, and never the log.

pub mod encoding;
pub mod image;
pub mod log_file;
pub mod records;

pub use image::{Metadata, TopicMeta, PRODUCER_ID_FIRST};
pub use log_file::{MetadataError, MetadataLog};
pub use records::MetadataRecord;
