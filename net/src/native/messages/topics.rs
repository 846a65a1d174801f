//! Managing topics: create, delete, describe (configs and each partition's
//! log), alter configs.

use super::Message;
use crate::native::{wire::wire_struct, ErrorCode};

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct NewTopic {
        pub name: String,
        /// 0: the broker's default partition count.
        pub partitions: u32,
        pub configs: Vec<(String, String)>,
    }
}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CreateTopicsRequest {
        pub topics: Vec<NewTopic>,
    }
}

impl Message for CreateTopicsRequest {}

wire_struct! {
    /// The outcome of an operation on one topic.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct TopicResult {
        pub name: String,
        pub error: ErrorCode,
        pub message: String,
    }
}

wire_struct! {
    /// The answer to a create, a delete or an alter: one result per topic.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct TopicResults {
        pub topics: Vec<TopicResult>,
    }
}

impl Message for TopicResults {}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DeleteTopicsRequest {
        pub names: Vec<String>,
    }
}

impl Message for DeleteTopicsRequest {}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribeTopicsRequest {
        /// Empty: every topic.
        pub names: Vec<String>,
    }
}

impl Message for DescribeTopicsRequest {}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct PartitionDescription {
        pub partition: u32,
        pub shard: u32,
        pub error: ErrorCode,
        pub log_start: u64,
        pub log_end: u64,
        pub size_bytes: u64,
        pub segments: u32,
    }
}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct TopicDescription {
        pub name: String,
        pub error: ErrorCode,
        pub message: String,
        pub topic_id: u128,
        pub configs: Vec<(String, String)>,
        pub partitions: Vec<PartitionDescription>,
    }
}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribeTopicsResponse {
        pub topics: Vec<TopicDescription>,
    }
}

impl Message for DescribeTopicsResponse {}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AlterConfigsRequest {
        pub topic: String,
        pub configs: Vec<(String, String)>,
    }
}

impl Message for AlterConfigsRequest {}
