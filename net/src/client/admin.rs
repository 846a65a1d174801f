//! Admin calls: topics, their configs, metadata and offsets; consumer
//! groups.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    call_on,
    routing::{backoff, is_not_leader, is_unreachable, join_all},
    Client, ClientError, ProtocolError, LEADER_RETRIES_MAX,
};
use crate::native::{
    messages::{
        AlterConfigsRequest, AlterReassignmentsRequest, AlterReassignmentsResponse, ApiKey,
        CreateTopicsRequest, DeleteGroupRequest, DeleteTopicsRequest, DescribeClusterRequest,
        DescribeClusterResponse, DescribeGroupRequest, DescribeGroupResponse, ElectLeadersRequest,
        ElectLeadersResponse, ElectionResult, ElectionTopic, ElectionType, GroupListing,
        GroupResult, ListGroupsRequest, ListGroupsResponse, ListOffsetsRequest,
        ListOffsetsResponse, ListReassignmentsRequest, ListReassignmentsResponse, ListedOffset,
        MetadataRequest, MetadataResponse, MoveResult, NewTopic, OffsetSpec, PartitionMove,
        Reassignment, ResetGroupOffsetsRequest, ResetGroupOffsetsResponse, ResetPartition, ResetTo,
        TopicDescription, TopicInfo, TopicResults, CREATE_TOPICS_PLACEMENT_VERSION,
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
        self.create_topic_placed(NewTopic {
            name: name.to_string(),
            partitions,
            configs: configs.to_vec(),
            replication_factor: 0,
            assignment: Vec::new(),
        })
        .await
    }

    /// Creates a topic with a replication factor or the nodes of each
    /// partition (see [`NewTopic`]). A broker that speaks only version 0
    /// of CreateTopics is asked for neither: asking it for one is an
    /// `InvalidArgument` here.
    pub async fn create_topic_placed(&self, topic: NewTopic) -> Result<(), ClientError> {
        let name = topic.name.clone();
        let request = CreateTopicsRequest {
            topics: vec![topic],
        };
        let results: TopicResults = if self.connection.version(ApiKey::CreateTopics)
            >= CREATE_TOPICS_PLACEMENT_VERSION
        {
            self.request(ApiKey::CreateTopics, &request).await?
        } else {
            let old = request.to_v0().ok_or_else(|| {
                    ClientError::InvalidArgument(
                        "this broker speaks CreateTopics version 0, which takes no replication factor or replica assignment"
                            .to_string(),
                    )
                })?;
            self.request(ApiKey::CreateTopics, &old).await?
        };
        one_topic_result(results, &name)
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
    ///
    /// The topics and where their partitions live come from the connected
    /// node; each partition's shard and log figures from its leader (asked
    /// once per leading node, again after a failed connection, at most
    /// [`LEADER_RETRIES_MAX`] times). A partition with no live leader keeps
    /// the connected node's answer: its error is `NotLeader`.
    pub async fn describe_topics(
        &self,
        names: &[String],
    ) -> Result<Vec<TopicDescription>, ClientError> {
        let mut response = self.describe_on(&self.connection, names).await?;
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
        for topic in &response.topics {
            self.learn_leaders(topic);
        }
        self.stats_from_leaders(&mut response.topics).await?;
        response.topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(response.topics)
    }

    /// Replaces the figures of every partition led by another node than
    /// the connected one with that node's.
    async fn stats_from_leaders(&self, topics: &mut [TopicDescription]) -> Result<(), ClientError> {
        let home = self.home();
        // The topics to ask each other leading node about.
        let mut asks: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
        for topic in topics.iter() {
            for partition in &topic.partitions {
                match partition.leader {
                    Some(leader) if leader != home => {
                        asks.entry(leader).or_default().insert(topic.name.clone());
                    }
                    _ => {}
                }
            }
        }
        let asked = join_all(asks.into_iter().map(|(node, names)| {
            let client = self.clone();
            async move {
                let names: Vec<String> = names.into_iter().collect();
                let mut tries = 0;
                loop {
                    let answer = match client.connection_to(node).await {
                        Ok(connection) => client.describe_on(&connection, &names).await,
                        Err(error) => Err(error),
                    };
                    match answer {
                        Err(error) if is_unreachable(&error) && tries < LEADER_RETRIES_MAX => {
                            client.forget_node(node);
                            backoff(tries).await;
                            tries += 1;
                        }
                        answer => return answer.map(|answer| (node, answer)),
                    }
                }
            }
        }))
        .await;
        for answer in asked {
            let (node, answer) = answer?;
            for described in answer.topics {
                let Some(topic) = topics.iter_mut().find(|topic| topic.name == described.name)
                else {
                    continue;
                };
                for figures in described.partitions {
                    let Some(partition) = topic.partitions.iter_mut().find(|partition| {
                        partition.partition == figures.partition && partition.leader == Some(node)
                    }) else {
                        continue;
                    };
                    partition.shard = figures.shard;
                    partition.error = if described.error.is_ok() {
                        figures.error
                    } else {
                        described.error
                    };
                    partition.log_start = figures.log_start;
                    partition.log_end = figures.log_end;
                    partition.size_bytes = figures.size_bytes;
                    partition.segments = figures.segments;
                }
            }
        }
        Ok(())
    }

    /// The cluster as the connected node sees it: the controller leader
    /// and term, how far this node applied the metadata log, and every
    /// node it knows of.
    pub async fn describe_cluster(&self) -> Result<DescribeClusterResponse, ClientError> {
        self.request(ApiKey::DescribeCluster, &DescribeClusterRequest {})
            .await
    }

    /// Holds `election` for the partitions `topics` name (a topic with no
    /// partitions: each of its partitions; no topics: every partition,
    /// and only those that needed an election are answered). A result per
    /// partition, each with its own code (see [`ElectLeadersRequest`]).
    pub async fn elect_leaders(
        &self,
        election: ElectionType,
        topics: Vec<ElectionTopic>,
    ) -> Result<Vec<ElectionResult>, ClientError> {
        let request = ElectLeadersRequest { election, topics };
        let response: ElectLeadersResponse = self.request(ApiKey::ElectLeaders, &request).await?;
        Ok(response.results)
    }

    /// Starts moving each partition of `moves` to its new replicas (or
    /// cancels its move, for `None` replicas), each new replica sent at
    /// most `throttle_bytes_per_s` while it catches up (0: unthrottled). A
    /// result per move, each with its own code (see
    /// [`AlterReassignmentsRequest`]); [`Client::list_reassignments`]
    /// tells when a move is done.
    pub async fn alter_reassignments(
        &self,
        moves: Vec<PartitionMove>,
        throttle_bytes_per_s: u64,
        allow_replication_factor_change: bool,
    ) -> Result<Vec<MoveResult>, ClientError> {
        let request = AlterReassignmentsRequest {
            moves,
            throttle_bytes_per_s,
            allow_replication_factor_change,
        };
        let response: AlterReassignmentsResponse =
            self.request(ApiKey::AlterReassignments, &request).await?;
        Ok(response.results)
    }

    /// The moves in progress of `topics` (empty: every topic).
    pub async fn list_reassignments(
        &self,
        topics: Vec<String>,
    ) -> Result<Vec<Reassignment>, ClientError> {
        let request = ListReassignmentsRequest { topics };
        let response: ListReassignmentsResponse =
            self.request(ApiKey::ListReassignments, &request).await?;
        Ok(response.reassignments)
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

    /// Offsets of several partitions of one topic, in the order asked, each
    /// asked of its partition's leader (one request per leading node, at
    /// once). Partitions refused as `NotLeader`, or whose leader could not
    /// be reached, are asked again of the leader the connected node names,
    /// at most [`LEADER_RETRIES_MAX`] times. Any other partition error
    /// fails the call.
    pub async fn list_offsets(
        &self,
        topic: &str,
        partitions: &[(u32, OffsetSpec)],
    ) -> Result<Vec<ListedOffset>, ClientError> {
        let mut listed: Vec<Option<ListedOffset>> = vec![None; partitions.len()];
        let mut pending: Vec<usize> = (0..partitions.len()).collect();
        let mut tries = 0;
        loop {
            let groups = self.by_leader(topic, pending, |index| partitions[*index].0);
            let answers = join_all(groups.into_iter().map(|(node, indexes)| {
                let client = self.clone();
                let request = ListOffsetsRequest {
                    topics: vec![(
                        topic.to_string(),
                        indexes.iter().map(|index| partitions[*index]).collect(),
                    )],
                };
                async move {
                    let answer = match client.connection_to(node).await {
                        Ok(connection) => {
                            call_on::<ListOffsetsResponse>(
                                &connection,
                                ApiKey::ListOffsets,
                                &request,
                                client.options.request_timeout,
                            )
                            .await
                        }
                        Err(error) => Err(error),
                    };
                    (node, indexes, answer)
                }
            }))
            .await;
            let mut again = Vec::new();
            let mut last_error = None;
            for (node, indexes, answer) in answers {
                let response = match answer {
                    Ok(response) => response,
                    Err(error) if is_not_leader(&error) || is_unreachable(&error) => {
                        if is_unreachable(&error) {
                            self.forget_node(node);
                        }
                        again.extend(indexes);
                        last_error = Some(error);
                        continue;
                    }
                    Err(error) => return Err(error),
                };
                let (_, mut answered) = response
                    .topics
                    .into_iter()
                    .find(|(name, _)| name == topic)
                    .ok_or_else(|| missing("list offsets", topic))?;
                for index in indexes {
                    let partition = partitions[index].0;
                    let Some(at) = answered
                        .iter()
                        .position(|listed| listed.partition == partition)
                    else {
                        return Err(ClientError::Protocol(ProtocolError::Unexpected(format!(
                            "list offsets does not mention {topic}/{partition}"
                        ))));
                    };
                    let answer = answered.swap_remove(at);
                    match answer.error {
                        ErrorCode::None => listed[index] = Some(answer),
                        ErrorCode::NotLeader => {
                            last_error = Some(ClientError::broker(
                                answer.error,
                                partition_message(topic, partition, &answer.message),
                            ));
                            again.push(index);
                        }
                        code => {
                            return Err(ClientError::broker(
                                code,
                                partition_message(topic, partition, &answer.message),
                            ))
                        }
                    }
                }
            }
            let Some(error) = last_error else { break };
            if tries >= LEADER_RETRIES_MAX {
                return Err(error);
            }
            tracing::debug!(topic, %error, tries, "list offsets follows the leaders");
            backoff(tries).await;
            tries += 1;
            self.refresh_leaders(topic).await;
            pending = again;
        }
        Ok(listed.into_iter().flatten().collect())
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
    /// its partition's log end and last stable offset (so its lag).
    /// `UnknownGroup` when the group has neither members nor offsets.
    pub async fn describe_group(&self, group: &str) -> Result<DescribeGroupResponse, ClientError> {
        let request = DescribeGroupRequest {
            group: group.to_string(),
        };
        let version = self.connection.version(ApiKey::DescribeGroup);
        let bytes = self
            .connection
            .call(
                ApiKey::DescribeGroup,
                &request,
                true,
                self.options.request_timeout,
            )
            .await?;
        let response = DescribeGroupResponse::from_version_bytes(version, bytes)?;
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
