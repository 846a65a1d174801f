//! Admin calls: topics, their configs, metadata and offsets; consumer
//! groups.

use super::{Client, ClientError, ProtocolError};
use crate::native::{
    messages::{
        AlterConfigsRequest, ApiKey, CreateTopicsRequest, DeleteGroupRequest, DeleteTopicsRequest,
        DescribeClusterRequest, DescribeClusterResponse, DescribeGroupRequest,
        DescribeGroupResponse, DescribeTopicsRequest, DescribeTopicsResponse, GroupListing,
        GroupResult, ListGroupsRequest, ListGroupsResponse, ListOffsetsRequest,
        ListOffsetsResponse, ListedOffset, MetadataRequest, MetadataResponse, NewTopic, OffsetSpec,
        ResetGroupOffsetsRequest, ResetGroupOffsetsResponse, ResetPartition, ResetTo,
        TopicDescription, TopicInfo, TopicResults,
    },
    ErrorCode,
};

impl Client {
    /// Creates a topic. `configs` are topic configs by their names
    /// (`retention.ms`, ...); the broker refuses unknown names and bad values
    /// with `InvalidConfig`.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        configs: &[(String, String)],
    ) -> Result<(), ClientError> {
        let request = CreateTopicsRequest {
            topics: vec![NewTopic {
                name: name.to_string(),
                partitions,
                configs: configs.to_vec(),
            }],
        };
        let results: TopicResults = self.request(ApiKey::CreateTopics, &request).await?;
        one_topic_result(results, name)
    }

    pub async fn delete_topic(&self, name: &str) -> Result<(), ClientError> {
        let request = DeleteTopicsRequest {
            names: vec![name.to_string()],
        };
        let results: TopicResults = self.request(ApiKey::DeleteTopics, &request).await?;
        one_topic_result(results, name)
    }

    /// Sets configs of a topic; the others keep their values.
    pub async fn alter_configs(
        &self,
        topic: &str,
        configs: &[(String, String)],
    ) -> Result<(), ClientError> {
        let request = AlterConfigsRequest {
            topic: topic.to_string(),
            configs: configs.to_vec(),
        };
        let results: TopicResults = self.request(ApiKey::AlterConfigs, &request).await?;
        one_topic_result(results, topic)
    }

    /// The brokers and every topic with its partitions.
    pub async fn metadata(&self) -> Result<MetadataResponse, ClientError> {
        self.request(ApiKey::Metadata, &MetadataRequest { topics: None })
            .await
    }

    /// One topic's metadata; an error if the topic does not exist.
    pub async fn topic_metadata(&self, topic: &str) -> Result<TopicInfo, ClientError> {
        let request = MetadataRequest {
            topics: Some(vec![topic.to_string()]),
        };
        let response: MetadataResponse = self.request(ApiKey::Metadata, &request).await?;
        let info = response
            .topics
            .into_iter()
            .find(|info| info.name == topic)
            .ok_or_else(|| missing("metadata", topic))?;
        if !info.error.is_ok() {
            return Err(ClientError::broker(info.error, topic));
        }
        Ok(info)
    }

    /// Every topic, sorted by name.
    pub async fn list_topics(&self) -> Result<Vec<TopicInfo>, ClientError> {
        let mut topics = self.metadata().await?.topics;
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// The named topics (every topic when `names` is empty) with their
    /// configs and, per partition, shard, log start and end and size, and
    /// its leader, replicas, in-sync replicas and leader epoch (none, empty
    /// and 0 from a broker that speaks only version 0). A named topic the
    /// broker cannot describe is an error.
    pub async fn describe_topics(
        &self,
        names: &[String],
    ) -> Result<Vec<TopicDescription>, ClientError> {
        let request = DescribeTopicsRequest {
            names: names.to_vec(),
        };
        // The layout of the answer depends on the version spoken.
        let version = self.connection.version(ApiKey::DescribeTopics);
        let bytes = self
            .connection
            .call(
                ApiKey::DescribeTopics,
                &request,
                true,
                self.options.request_timeout,
            )
            .await?;
        let mut response = DescribeTopicsResponse::from_version_bytes(version, bytes)?;
        if let Some(failed) = response.topics.iter().find(|topic| !topic.error.is_ok()) {
            return Err(ClientError::broker(
                failed.error,
                topic_message(&failed.name, &failed.message),
            ));
        }
        for name in names {
            if !response.topics.iter().any(|topic| &topic.name == name) {
                return Err(missing("describe", name));
            }
        }
        response.topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(response.topics)
    }

    /// The cluster as the connected node sees it: the controller leader
    /// and term, how far this node applied the metadata log, and every
    /// node it knows of.
    pub async fn describe_cluster(&self) -> Result<DescribeClusterResponse, ClientError> {
        self.request(ApiKey::DescribeCluster, &DescribeClusterRequest {})
            .await
    }

    /// The offset `spec` names in one partition: `None` when a timestamp
    /// is after every record.
    pub async fn list_offset(
        &self,
        topic: &str,
        partition: u32,
        spec: OffsetSpec,
    ) -> Result<Option<u64>, ClientError> {
        let listed = self.list_offsets(topic, &[(partition, spec)]).await?;
        match listed.as_slice() {
            [listed] if listed.partition == partition => Ok(listed.offset),
            _ => Err(ClientError::Protocol(ProtocolError::Unexpected(format!(
                "list offsets for {topic}/{partition} answered {} partitions",
                listed.len()
            )))),
        }
    }

    /// Offsets of several partitions of one topic in one request, in the
    /// broker's order. A partition's error fails the call.
    pub async fn list_offsets(
        &self,
        topic: &str,
        partitions: &[(u32, OffsetSpec)],
    ) -> Result<Vec<ListedOffset>, ClientError> {
        let request = ListOffsetsRequest {
            topics: vec![(topic.to_string(), partitions.to_vec())],
        };
        let response: ListOffsetsResponse = self.request(ApiKey::ListOffsets, &request).await?;
        let (_, listed) = response
            .topics
            .into_iter()
            .find(|(name, _)| name == topic)
            .ok_or_else(|| missing("list offsets", topic))?;
        if let Some(failed) = listed.iter().find(|listed| !listed.error.is_ok()) {
            return Err(ClientError::broker(
                failed.error,
                partition_message(topic, failed.partition, &failed.message),
            ));
        }
        Ok(listed)
    }

    /// Every consumer group of the broker, sorted by id.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>, ClientError> {
        let mut response: ListGroupsResponse = self
            .request(ApiKey::ListGroups, &ListGroupsRequest {})
            .await?;
        response.groups.sort_by(|a, b| a.group.cmp(&b.group));
        Ok(response.groups)
    }

    /// A group's state, members and committed offsets, each offset with
    /// its partition's log end (so its lag). `UnknownGroup` when the group
    /// has neither members nor offsets.
    pub async fn describe_group(&self, group: &str) -> Result<DescribeGroupResponse, ClientError> {
        let request = DescribeGroupRequest {
            group: group.to_string(),
        };
        let response: DescribeGroupResponse = self.request(ApiKey::DescribeGroup, &request).await?;
        if !response.error.is_ok() {
            return Err(ClientError::broker(
                response.error,
                group_message(group, &response.message),
            ));
        }
        Ok(response)
    }

    /// Moves the committed offsets of `group` in `topic` (in `partitions`,
    /// or every partition when empty) to `to`, all or none, and answers
    /// where each went. Only while the group has no members: otherwise
    /// `GroupNotEmpty`. With `dry_run` nothing is committed.
    pub async fn reset_group_offsets(
        &self,
        group: &str,
        topic: &str,
        partitions: &[u32],
        to: ResetTo,
        dry_run: bool,
    ) -> Result<Vec<ResetPartition>, ClientError> {
        let request = ResetGroupOffsetsRequest {
            group: group.to_string(),
            topic: topic.to_string(),
            partitions: partitions.to_vec(),
            to,
            dry_run,
        };
        let response: ResetGroupOffsetsResponse =
            self.request(ApiKey::ResetGroupOffsets, &request).await?;
        if !response.error.is_ok() {
            return Err(ClientError::broker(
                response.error,
                group_message(group, &response.message),
            ));
        }
        Ok(response.partitions)
    }

    /// Deletes a group and its committed offsets: `GroupNotEmpty` while it
    /// has members, `UnknownGroup` if there is no such group.
    pub async fn delete_group(&self, group: &str) -> Result<(), ClientError> {
        let request = DeleteGroupRequest {
            group: group.to_string(),
        };
        let result: GroupResult = self.request(ApiKey::DeleteGroup, &request).await?;
        match result.error {
            ErrorCode::None => Ok(()),
            code => Err(ClientError::broker(
                code,
                group_message(group, &result.message),
            )),
        }
    }
}

/// The broker's message, or the group's name when the broker gave none.
fn group_message(group: &str, message: &str) -> String {
    if message.is_empty() {
        format!("group {group}")
    } else {
        message.to_string()
    }
}

fn one_topic_result(results: TopicResults, name: &str) -> Result<(), ClientError> {
    let result = results
        .topics
        .into_iter()
        .find(|result| result.name == name)
        .ok_or_else(|| missing("topic operation", name))?;
    match result.error {
        ErrorCode::None => Ok(()),
        code => Err(ClientError::broker(
            code,
            topic_message(name, &result.message),
        )),
    }
}

fn missing(what: &str, topic: &str) -> ClientError {
    ClientError::Protocol(ProtocolError::Unexpected(format!(
        "the {what} response does not mention topic {topic}"
    )))
}

/// The broker's message, or the topic's name when the broker gave none.
pub(crate) fn topic_message(topic: &str, message: &str) -> String {
    if message.is_empty() {
        topic.to_string()
    } else {
        message.to_string()
    }
}

pub(crate) fn partition_message(topic: &str, partition: u32, message: &str) -> String {
    if message.is_empty() {
        format!("{topic}/{partition}")
    } else {
        message.to_string()
    }
}
