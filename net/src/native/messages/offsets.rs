//! ListOffsets: a partition's offset by position (log start, log end) or
//! by time.

use super::Message;
use crate::native::{
    codec::{DecodeError, Reader, Writer},
    wire::{wire_struct, Wire},
    ErrorCode,
};

/// Which offset to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    Earliest,
    Latest,
    /// The first record with a timestamp at or after this (ms since epoch).
    Timestamp(i64),
    /// The first record with the largest timestamp.
    MaxTimestamp,
}

/// An i64, as Kafka's: -2 earliest, -1 latest, -3 max timestamp, a
/// timestamp otherwise (other negatives refused).
impl Wire for OffsetSpec {
    const MIN_BYTES: usize = 8;
    fn encode(&self, out: &mut Writer<'_>) {
        out.i64(match *self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(timestamp) => timestamp,
            OffsetSpec::MaxTimestamp => -3,
        });
    }
    fn decode(input: &mut Reader, field: &'static str) -> Result<OffsetSpec, DecodeError> {
        match input.i64(field)? {
            -2 => Ok(OffsetSpec::Earliest),
            -1 => Ok(OffsetSpec::Latest),
            -3 => Ok(OffsetSpec::MaxTimestamp),
            value if value >= 0 => Ok(OffsetSpec::Timestamp(value)),
            value => Err(DecodeError::InvalidValue { field, value }),
        }
    }
}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ListOffsetsRequest {
        /// (topic, [(partition, spec)])
        pub topics: Vec<(String, Vec<(u32, OffsetSpec)>)>,
    }
}

impl Message for ListOffsetsRequest {}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ListedOffset {
        pub partition: u32,
        pub error: ErrorCode,
        pub message: String,
        /// `None` when no record is at or after the timestamp.
        pub offset: Option<u64>,
    }
}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ListOffsetsResponse {
        pub topics: Vec<(String, Vec<ListedOffset>)>,
    }
}

impl Message for ListOffsetsResponse {}
