//! Fetch: whole stored batches from an offset on, back to back, as they
//! lie in the log.

use bytes::Bytes;

use super::Message;
use crate::native::{
    wire::{wire_struct, Joined},
    ErrorCode,
};

/// A fetch response carries at most this many bytes of batches per
/// partition: a client's whole budget, and the first batch always fits.
pub const FETCH_PARTITION_BYTES_MAX: usize = 64 * 1024 * 1024;

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct FetchPartition {
        pub partition: u32,
        pub offset: u64,
        pub max_bytes: u32,
    }
}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct FetchTopic {
        pub name: String,
        pub partitions: Vec<FetchPartition>,
    }
}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct FetchRequest {
        /// How long to wait for `min_bytes` when there is less.
        pub max_wait_ms: u32,
        pub min_bytes: u32,
        /// The whole response's budget; the first batch is always returned.
        pub max_bytes: u32,
        pub topics: Vec<FetchTopic>,
    }
}

impl Message for FetchRequest {}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct FetchPartitionResponse {
        pub partition: u32,
        pub error: ErrorCode,
        pub message: String,
        pub high_watermark: u64,
        pub log_start: u64,
        /// Whole stored batches, back to back on the wire. A broker fills it
        /// with the batches as they are (no copy until the frame is encoded); a
        /// decoded response holds one run of bytes.
        pub batches: Vec<Bytes> as Joined<FETCH_PARTITION_BYTES_MAX>,
    }
}

impl FetchPartitionResponse {
    /// The batches as one run of bytes: as they are when decoded (one
    /// part), joined otherwise.
    pub fn batch_bytes(&self) -> Bytes {
        match self.batches.as_slice() {
            [] => Bytes::new(),
            [one] => one.clone(),
            many => Bytes::from(many.concat()),
        }
    }
}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct FetchTopicResponse {
        pub name: String,
        pub partitions: Vec<FetchPartitionResponse>,
    }
}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct FetchResponse {
        pub topics: Vec<FetchTopicResponse>,
    }
}

impl Message for FetchResponse {}
