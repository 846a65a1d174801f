//! Managing topics: create, delete, describe (configs and each partition's
//! log and, since DescribeTopics version 1, its leader, replicas, in-sync
//! replicas and leader epoch), alter configs.

use super::Message;
use crate::native::{
    wire::{wire_struct, IfPresent},
    ErrorCode,
};

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct NewTopic {
        pub name: String,
        /// 0: the broker's default partition count (or, with an
        /// assignment, as many as it lists).
        pub partitions: u32,
        pub configs: Vec<(String, String)>,
        /// Replicas per partition; 0: the broker's default. Since version 1.
        pub replication_factor: u16,
        /// The nodes of each partition (one list per partition, the
        /// leader first); empty: placed by the controller. Since version 1.
        pub assignment: Vec<Vec<u32>>,
    }
}

wire_struct! {
    /// The request at version 1 (and later); version 0 is
    /// [`CreateTopicsRequestV0`].
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CreateTopicsRequest {
        pub topics: Vec<NewTopic>,
    }
}

impl Message for CreateTopicsRequest {}

/// The version of CreateTopics that carries a replication factor and
/// replica assignments.
pub const CREATE_TOPICS_PLACEMENT_VERSION: u16 = 1;

impl CreateTopicsRequest {
    /// Reads a request of `version`; one of version 0 reads with the
    /// default replication factor and no assignment.
    pub fn from_version_bytes(
        version: u16,
        bytes: bytes::Bytes,
    ) -> Result<CreateTopicsRequest, crate::native::codec::DecodeError> {
        if version >= CREATE_TOPICS_PLACEMENT_VERSION {
            CreateTopicsRequest::from_bytes(bytes)
        } else {
            CreateTopicsRequestV0::from_bytes(bytes).map(|request| CreateTopicsRequest {
                topics: request
                    .topics
                    .into_iter()
                    .map(|topic| NewTopic {
                        name: topic.name,
                        partitions: topic.partitions,
                        configs: topic.configs,
                        replication_factor: 0,
                        assignment: Vec::new(),
                    })
                    .collect(),
            })
        }
    }

    /// The request as version 0 writes it, if it asks nothing version 0
    /// cannot say (a replication factor or an assignment).
    pub fn to_v0(&self) -> Option<CreateTopicsRequestV0> {
        let topics = self
            .topics
            .iter()
            .map(|topic| {
                (topic.replication_factor == 0 && topic.assignment.is_empty()).then(|| NewTopicV0 {
                    name: topic.name.clone(),
                    partitions: topic.partitions,
                    configs: topic.configs.clone(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(CreateTopicsRequestV0 { topics })
    }
}

wire_struct! {
    /// A topic to create, as version 0 asks for it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct NewTopicV0 {
        pub name: String,
        pub partitions: u32,
        pub configs: Vec<(String, String)>,
    }
}

wire_struct! {
    /// The request at version 0.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CreateTopicsRequestV0 {
        pub topics: Vec<NewTopicV0>,
    }
}

impl Message for CreateTopicsRequestV0 {}

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
    /// One partition: its shard and log on the answering node (version 0
    /// has only these), then (since version 1) where it lives in the
    /// cluster.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct PartitionDescription {
        pub partition: u32,
        pub shard: u32,
        pub error: ErrorCode,
        pub log_start: u64,
        pub log_end: u64,
        pub size_bytes: u64,
        pub segments: u32,
        /// The node that leads it, if one is alive. Since version 1.
        pub leader: Option<u32> as IfPresent,
        /// The nodes holding it, its leader first. Since version 1.
        pub replicas: Vec<u32>,
        /// The replicas in sync with the leader. Since version 1.
        pub in_sync: Vec<u32>,
        /// Grows each time its leadership moves. Since version 1.
        pub leader_epoch: u32,
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
    /// The answer at version 1 (and later); a broker answers a request of
    /// version 0 with [`DescribeTopicsResponseV0`].
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribeTopicsResponse {
        pub topics: Vec<TopicDescription>,
    }
}

impl Message for DescribeTopicsResponse {}

/// The version of DescribeTopics whose partitions say where they live
/// (leader, replicas, in-sync replicas, leader epoch).
pub const DESCRIBE_TOPICS_PLACEMENT_VERSION: u16 = 1;

impl DescribeTopicsResponse {
    /// Reads an answer of `version`; one of version 0 reads with no
    /// leader, no replicas and epoch 0.
    pub fn from_version_bytes(
        version: u16,
        bytes: bytes::Bytes,
    ) -> Result<DescribeTopicsResponse, crate::native::codec::DecodeError> {
        if version >= DESCRIBE_TOPICS_PLACEMENT_VERSION {
            DescribeTopicsResponse::from_bytes(bytes)
        } else {
            DescribeTopicsResponseV0::from_bytes(bytes).map(DescribeTopicsResponse::from)
        }
    }
}

wire_struct! {
    /// A partition as version 0 describes it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct PartitionDescriptionV0 {
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
    /// A topic as version 0 describes it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct TopicDescriptionV0 {
        pub name: String,
        pub error: ErrorCode,
        pub message: String,
        pub topic_id: u128,
        pub configs: Vec<(String, String)>,
        pub partitions: Vec<PartitionDescriptionV0>,
    }
}

wire_struct! {
    /// The answer at version 0.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribeTopicsResponseV0 {
        pub topics: Vec<TopicDescriptionV0>,
    }
}

impl Message for DescribeTopicsResponseV0 {}

impl From<DescribeTopicsResponse> for DescribeTopicsResponseV0 {
    fn from(response: DescribeTopicsResponse) -> DescribeTopicsResponseV0 {
        let topics = response
            .topics
            .into_iter()
            .map(|topic| TopicDescriptionV0 {
                name: topic.name,
                error: topic.error,
                message: topic.message,
                topic_id: topic.topic_id,
                configs: topic.configs,
                partitions: topic
                    .partitions
                    .into_iter()
                    .map(|partition| PartitionDescriptionV0 {
                        partition: partition.partition,
                        shard: partition.shard,
                        error: partition.error,
                        log_start: partition.log_start,
                        log_end: partition.log_end,
                        size_bytes: partition.size_bytes,
                        segments: partition.segments,
                    })
                    .collect(),
            })
            .collect();
        DescribeTopicsResponseV0 { topics }
    }
}

impl From<DescribeTopicsResponseV0> for DescribeTopicsResponse {
    fn from(response: DescribeTopicsResponseV0) -> DescribeTopicsResponse {
        let topics = response
            .topics
            .into_iter()
            .map(|topic| TopicDescription {
                name: topic.name,
                error: topic.error,
                message: topic.message,
                topic_id: topic.topic_id,
                configs: topic.configs,
                partitions: topic
                    .partitions
                    .into_iter()
                    .map(|partition| PartitionDescription {
                        partition: partition.partition,
                        shard: partition.shard,
                        error: partition.error,
                        log_start: partition.log_start,
                        log_end: partition.log_end,
                        size_bytes: partition.size_bytes,
                        segments: partition.segments,
                        leader: None,
                        replicas: Vec::new(),
                        in_sync: Vec::new(),
                        leader_epoch: 0,
                    })
                    .collect(),
            })
            .collect();
        DescribeTopicsResponse { topics }
    }
}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AlterConfigsRequest {
        pub topic: String,
        pub configs: Vec<(String, String)>,
    }
}

impl Message for AlterConfigsRequest {}
