//! Fetch: whole stored batches from an offset on, back to back, as they
//! lie in the log, of committed records only: a native reader reads up to
//! the partition's last stable offset, and gets neither transaction markers
//! nor the batches of aborted transactions. Since version 1 each partition
//! says where to fetch from next, past the batches left out.

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
        /// Where to fetch from next: past the batches returned and the
        /// markers and aborted batches left out after them, which a reader
        /// moving on by the batches alone would read again and again. At
        /// most the end of the batches returned when the response's budget
        /// left some out; 0 from a broker of version 0. Since version 1.
        pub next_offset: u64,
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

/// The version of Fetch whose partitions say where to fetch from next.
pub const FETCH_NEXT_OFFSET_VERSION: u16 = 1;

impl FetchResponse {
    /// Reads an answer of `version`; one of version 0 reads with a next
    /// offset of 0.
    pub fn from_version_bytes(
        version: u16,
        bytes: Bytes,
    ) -> Result<FetchResponse, crate::native::codec::DecodeError> {
        if version >= FETCH_NEXT_OFFSET_VERSION {
            FetchResponse::from_bytes(bytes)
        } else {
            FetchResponseV0::from_bytes(bytes).map(FetchResponse::from)
        }
    }
}

wire_struct! {
    /// A partition as version 0 answers it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct FetchPartitionResponseV0 {
        pub partition: u32,
        pub error: ErrorCode,
        pub message: String,
        pub high_watermark: u64,
        pub log_start: u64,
        pub batches: Vec<Bytes> as Joined<FETCH_PARTITION_BYTES_MAX>,
    }
}

wire_struct! {
    /// A topic as version 0 answers it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct FetchTopicResponseV0 {
        pub name: String,
        pub partitions: Vec<FetchPartitionResponseV0>,
    }
}

wire_struct! {
    /// The answer at version 0.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct FetchResponseV0 {
        pub topics: Vec<FetchTopicResponseV0>,
    }
}

impl Message for FetchResponseV0 {}

impl From<FetchResponse> for FetchResponseV0 {
    fn from(response: FetchResponse) -> FetchResponseV0 {
        let topics = response
            .topics
            .into_iter()
            .map(|topic| FetchTopicResponseV0 {
                name: topic.name,
                partitions: topic
                    .partitions
                    .into_iter()
                    .map(|partition| FetchPartitionResponseV0 {
                        partition: partition.partition,
                        error: partition.error,
                        message: partition.message,
                        high_watermark: partition.high_watermark,
                        log_start: partition.log_start,
                        batches: partition.batches,
                    })
                    .collect(),
            })
            .collect();
        FetchResponseV0 { topics }
    }
}

impl From<FetchResponseV0> for FetchResponse {
    fn from(response: FetchResponseV0) -> FetchResponse {
        let topics = response
            .topics
            .into_iter()
            .map(|topic| FetchTopicResponse {
                name: topic.name,
                partitions: topic
                    .partitions
                    .into_iter()
                    .map(|partition| FetchPartitionResponse {
                        partition: partition.partition,
                        error: partition.error,
                        message: partition.message,
                        high_watermark: partition.high_watermark,
                        log_start: partition.log_start,
                        batches: partition.batches,
                        next_offset: 0,
                    })
                    .collect(),
            })
            .collect();
        FetchResponse { topics }
    }
}
