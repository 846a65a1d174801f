//! Produce: stored-format batches, one per partition, carried as the bytes
//! that will be stored (sliced out of the request frame without a copy).

use bytes::Bytes;
use sluice_storage::batch::BATCH_BYTES_MAX;

use super::Message;
use crate::native::{
    codec::{DecodeError, Reader, Writer},
    wire::{wire_struct, Capped, Wire},
    ErrorCode,
};

/// How much of the write a producer waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// No response at all.
    None,
    /// The leader stored the batch (under its flush policy).
    Leader,
    /// Every in-sync replica stored it. On one broker, the same as `Leader`.
    All,
}

/// An i8, as Kafka's `acks`: 0, 1, or -1 for all.
impl Wire for Acks {
    const MIN_BYTES: usize = 1;
    fn encode(&self, out: &mut Writer<'_>) {
        out.i8(match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        });
    }
    fn decode(input: &mut Reader, field: &'static str) -> Result<Acks, DecodeError> {
        match input.i8(field)? {
            0 => Ok(Acks::None),
            1 => Ok(Acks::Leader),
            -1 => Ok(Acks::All),
            value => Err(DecodeError::InvalidValue {
                field,
                value: i64::from(value),
            }),
        }
    }
}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ProducePartition {
        pub partition: u32,
        /// One stored-format batch (header and payload).
        pub batch: Bytes as Capped<BATCH_BYTES_MAX>,
    }
}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ProduceTopic {
        pub name: String,
        pub partitions: Vec<ProducePartition>,
    }
}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ProduceRequest {
        pub acks: Acks,
        pub timeout_ms: u32,
        pub topics: Vec<ProduceTopic>,
    }
}

impl Message for ProduceRequest {}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ProducePartitionResponse {
        pub partition: u32,
        pub error: ErrorCode,
        pub message: String,
        pub base_offset: u64,
        pub log_start: u64,
    }
}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ProduceTopicResponse {
        pub name: String,
        pub partitions: Vec<ProducePartitionResponse>,
    }
}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ProduceResponse {
        pub topics: Vec<ProduceTopicResponse>,
    }
}

impl Message for ProduceResponse {}
