//! The requests and responses of the native protocol and their encoding.
//!
//! One file per API family (`versions`, `metadata`, `topics`, `produce`,
//! `fetch`, `offsets`, `groups`, `cluster`, `elections`, `reassignments`,
//! `transactions`); every type is used from here, as `messages::X`. Each
//! message is declared once, with `wire_struct!`: its
//! field list gives both its encoding and its decoding (see
//! [`crate::native::wire`]), so the two cannot drift apart. Lists are a
//! u32 count then the entries, strings and byte runs a u32 length then the
//! bytes, integers little-endian. Record batches travel as the stored batch
//! bytes, sliced out of the frame without a copy.

use bytes::{Bytes, BytesMut};

use super::{
    codec::{DecodeError, Reader, Writer},
    wire::Wire,
};

mod cluster;
mod elections;
mod fetch;
mod groups;
mod metadata;
mod offsets;
mod produce;
mod reassignments;
mod topics;
mod transactions;
mod versions;

pub use cluster::*;
pub use elections::*;
pub use fetch::*;
pub use groups::*;
pub use metadata::*;
pub use offsets::*;
pub use produce::*;
pub use reassignments::*;
pub use topics::*;
pub use transactions::*;
pub use versions::*;

/// The APIs of the native protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ApiKey {
    ApiVersions = 0,
    Metadata = 1,
    CreateTopics = 2,
    DeleteTopics = 3,
    Produce = 4,
    Fetch = 5,
    ListOffsets = 6,
    DescribeTopics = 7,
    AlterConfigs = 8,
    ListGroups = 9,
    DescribeGroup = 10,
    ResetGroupOffsets = 11,
    DeleteGroup = 12,
    DescribeCluster = 13,
    ElectLeaders = 14,
    AlterReassignments = 15,
    ListReassignments = 16,
    FindTxnCoordinator = 17,
    ListTransactions = 18,
    DescribeTransaction = 19,
    AbortTransaction = 20,
    AbortPartitionTransaction = 21,
}

impl ApiKey {
    pub const ALL: [ApiKey; 22] = [
        ApiKey::ApiVersions,
        ApiKey::Metadata,
        ApiKey::CreateTopics,
        ApiKey::DeleteTopics,
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::ListOffsets,
        ApiKey::DescribeTopics,
        ApiKey::AlterConfigs,
        ApiKey::ListGroups,
        ApiKey::DescribeGroup,
        ApiKey::ResetGroupOffsets,
        ApiKey::DeleteGroup,
        ApiKey::DescribeCluster,
        ApiKey::ElectLeaders,
        ApiKey::AlterReassignments,
        ApiKey::ListReassignments,
        ApiKey::FindTxnCoordinator,
        ApiKey::ListTransactions,
        ApiKey::DescribeTransaction,
        ApiKey::AbortTransaction,
        ApiKey::AbortPartitionTransaction,
    ];

    pub fn from_u16(key: u16) -> Option<ApiKey> {
        ApiKey::ALL.get(key as usize).copied()
    }

    /// The versions this code speaks: (min, max). A client and a broker
    /// use the highest version both speak (the client learns the broker's
    /// from ApiVersions); a message whose layout changed keeps its older
    /// layouts readable and writable under their versions.
    pub fn versions(self) -> (u16, u16) {
        match self {
            ApiKey::DescribeTopics => (0, DESCRIBE_TOPICS_PLACEMENT_VERSION),
            ApiKey::CreateTopics => (0, CREATE_TOPICS_PLACEMENT_VERSION),
            ApiKey::Fetch => (0, FETCH_NEXT_OFFSET_VERSION),
            ApiKey::DescribeGroup => (0, DESCRIBE_GROUP_STABLE_VERSION),
            _ => (0, 0),
        }
    }
}

/// One message body of the protocol: a whole request or response. It is
/// written as its [`Wire`] encoding, with nothing before or after it.
pub trait Message: Wire {
    fn to_bytes(&self) -> BytesMut {
        let mut out = BytesMut::new();
        self.encode(&mut Writer::new(&mut out));
        out
    }

    /// Decodes a whole body: trailing bytes are an error.
    fn from_bytes(bytes: Bytes) -> Result<Self, DecodeError> {
        let mut input = Reader::new(bytes);
        let message = Self::decode(&mut input, "message")?;
        input.finish()?;
        Ok(message)
    }
}

#[cfg(test)]
mod tests;
