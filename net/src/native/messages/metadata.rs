//! Metadata: the brokers, and each topic's id and partitions with the
//! broker and shard that lead them.

use super::Message;
use crate::native::{
    wire::{wire_struct, IfPresent},
    ErrorCode,
};

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct MetadataRequest {
        /// `None`: every topic.
        pub topics: Option<Vec<String>> as IfPresent,
    }
}

impl Message for MetadataRequest {}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct BrokerInfo {
        pub id: u32,
        pub host: String,
        pub port: u16,
    }
}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct PartitionInfo {
        pub partition: u32,
        pub leader: u32,
        pub shard: u32,
    }
}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct TopicInfo {
        pub name: String,
        pub error: ErrorCode,
        pub topic_id: u128,
        pub partitions: Vec<PartitionInfo>,
    }
}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct MetadataResponse {
        pub brokers: Vec<BrokerInfo>,
        pub topics: Vec<TopicInfo>,
    }
}

impl Message for MetadataResponse {}
