//! ElectLeaders: a preferred or unclean leader election for partitions,
//! held by the controller (Kafka's ElectLeaders, as `sluice topic
//! elect-leaders` asks for it). Each partition answers with its own code:
//! `None` once held, `ElectionNotNeeded`, `PreferredLeaderNotAvailable`,
//! `EligibleLeadersNotAvailable`, `UnknownTopic`, `NoSuchPartition`, or
//! `NotController` when the change was not committed.

use super::Message;
use crate::native::{
    codec::{DecodeError, Reader, Writer},
    wire::{wire_struct, IfPresent, Wire},
    ErrorCode,
};

/// Which election to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionType {
    /// The preferred replica (the first of the replica list) leads again,
    /// if it is alive and in sync.
    Preferred,
    /// A partition without a leader takes any alive replica, in sync or
    /// not: records only the lost replicas held are gone.
    Unclean,
}

/// A u8: 0 preferred, 1 unclean (Kafka's numbers); any other is refused.
impl Wire for ElectionType {
    const MIN_BYTES: usize = 1;
    fn encode(&self, out: &mut Writer<'_>) {
        out.u8(match self {
            ElectionType::Preferred => 0,
            ElectionType::Unclean => 1,
        });
    }
    fn decode(input: &mut Reader, field: &'static str) -> Result<ElectionType, DecodeError> {
        match input.u8(field)? {
            0 => Ok(ElectionType::Preferred),
            1 => Ok(ElectionType::Unclean),
            tag => Err(DecodeError::InvalidValue {
                field,
                value: i64::from(tag),
            }),
        }
    }
}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ElectionTopic {
        pub name: String,
        /// Empty: every partition of the topic.
        pub partitions: Vec<u32>,
    }
}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ElectLeadersRequest {
        pub election: ElectionType,
        /// Empty: every partition of every topic, and the answer leaves
        /// out those that needed no election (as Kafka's does).
        pub topics: Vec<ElectionTopic>,
    }
}

impl Message for ElectLeadersRequest {}

wire_struct! {
    /// One partition's election.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ElectionResult {
        pub topic: String,
        pub partition: u32,
        pub error: ErrorCode,
        /// Why it was not held; empty once it was.
        pub message: String,
        /// The partition's leader after the election, as the answering
        /// node knows it.
        pub leader: Option<u32> as IfPresent,
    }
}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ElectLeadersResponse {
        /// In the order the request named them.
        pub results: Vec<ElectionResult>,
    }
}

impl Message for ElectLeadersResponse {}
