//! Kafka's consumer group protocol (KIP-848, `group.protocol=consumer`) on
//! the wire: ConsumerGroupHeartbeat and ConsumerGroupDescribe. Each request
//! runs on its group's coordinator shard ([`coordinator::on_coordinator`]),
//! where [`consumer`] keeps the state; topics travel as ids
//! (`Uuid::from_u128` of the topic's id), as in Metadata and Fetch. The
//! classic protocol's APIs are in [`super::classic_groups`], the offsets
//! APIs (for both) in [`super::group_offsets`].

use std::{rc::Rc, time::Instant};

use kafka_protocol::messages::{
    consumer_group_describe_response::{
        Assignment as DescribedAssignment, DescribedGroup, Member as DescribedMember,
        TopicPartitions as DescribedPartitions,
    },
    consumer_group_heartbeat_response::{Assignment, TopicPartitions},
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse,
};
use uuid::Uuid;

use super::{group_error_code, str_bytes, topic_name};
use crate::{
    cluster_metadata::Metadata,
    coordinator::{
        self,
        assignor::{Partitions, TopicId},
        consumer::{self, HeartbeatOutcome, HeartbeatRequest, Settings},
        GroupError,
    },
    shard::Shard,
};

fn partitions_of(topics: &[(Uuid, &[i32])]) -> Partitions {
    let mut partitions = Partitions::new();
    for (topic, indexes) in topics {
        for index in indexes.iter().filter(|index| **index >= 0) {
            partitions
                .entry(TopicId(topic.as_u128()))
                .or_default()
                .insert(*index as u32);
        }
    }
    partitions
}

pub async fn heartbeat(
    shard: &Rc<Shard>,
    request: ConsumerGroupHeartbeatRequest,
    _version: i16,
    client_id: String,
    client_host: String,
) -> ConsumerGroupHeartbeatResponse {
    let interval_ms = shard.config.group_consumer_heartbeat_interval.as_millis() as i32;
    let settings = Settings {
        session_timeout: shard.config.group_consumer_session_timeout,
    };
    let group = request.group_id.0.to_string();
    let beat = HeartbeatRequest {
        member_id: request.member_id.to_string(),
        epoch: request.member_epoch,
        instance_id: request.instance_id.as_ref().map(ToString::to_string),
        rack_id: request.rack_id.as_ref().map(ToString::to_string),
        rebalance_timeout: (request.rebalance_timeout_ms >= 0)
            .then(|| std::time::Duration::from_millis(request.rebalance_timeout_ms as u64)),
        subscribed_topics: request
            .subscribed_topic_names
            .as_ref()
            .map(|names| names.iter().map(|name| name.0.to_string()).collect()),
        subscribed_regex: request
            .subscribed_topic_regex
            .as_ref()
            .map(ToString::to_string),
        server_assignor: request.server_assignor.as_ref().map(ToString::to_string),
        owned: request.topic_partitions.as_ref().map(|owned| {
            let topics: Vec<(Uuid, &[i32])> = owned
                .iter()
                .map(|topic| (topic.topic_id, topic.partitions.as_slice()))
                .collect();
            partitions_of(&topics)
        }),
        client_id,
        client_host,
    };
    let fallback = beat.member_id.clone();
    let outcome = if group.is_empty() {
        HeartbeatOutcome {
            error: Some(GroupError::InvalidRequest),
            member_id: fallback,
            epoch: request.member_epoch,
            assignment: None,
        }
    } else {
        coordinator::on_coordinator(shard, &group.clone(), move |there| async move {
            let metadata = there.metadata();
            let lookup = |name: &str| {
                metadata
                    .topic(name)
                    .map(|topic| (topic.id, topic.partition_count()))
            };
            let mut all = there.groups.groups.borrow_mut();
            let entry = all
                .entry(group.clone())
                .or_insert_with(|| coordinator::Group::new(&group));
            consumer::heartbeat(entry, beat, &lookup, Instant::now(), settings)
        })
        .await
        .unwrap_or_else(|error| HeartbeatOutcome {
            error: Some(error),
            member_id: fallback,
            epoch: request.member_epoch,
            assignment: None,
        })
    };
    let response = ConsumerGroupHeartbeatResponse::default()
        .with_heartbeat_interval_ms(interval_ms)
        .with_member_id(Some(str_bytes(outcome.member_id)))
        .with_member_epoch(outcome.epoch);
    if let Some(error) = outcome.error {
        return response
            .with_error_code(group_error_code(error))
            .with_error_message(Some(str_bytes(error.to_string())));
    }
    response.with_assignment(outcome.assignment.map(|assigned| {
        Assignment::default().with_topic_partitions(
            assigned
                .iter()
                .map(|(topic, partitions)| {
                    TopicPartitions::default()
                        .with_topic_id(Uuid::from_u128(topic.0))
                        .with_partitions(partitions.iter().map(|p| *p as i32).collect())
                })
                .collect(),
        )
    }))
}

/// What ConsumerGroupDescribe shows of one group, made on its coordinator.
struct Described {
    state: &'static str,
    epoch: i32,
    assignment_epoch: i32,
    assignor: &'static str,
    members: Vec<DescribedMember>,
}

fn described_assignment(metadata: &Metadata, partitions: &Partitions) -> DescribedAssignment {
    DescribedAssignment::default().with_topic_partitions(
        partitions
            .iter()
            .map(|(topic, set)| {
                let name = metadata
                    .topics
                    .values()
                    .find(|meta| meta.id.0 == topic.0)
                    .map(|meta| meta.name.clone())
                    .unwrap_or_default();
                DescribedPartitions::default()
                    .with_topic_id(Uuid::from_u128(topic.0))
                    .with_topic_name(topic_name(&name))
                    .with_partitions(set.iter().map(|p| *p as i32).collect())
            })
            .collect(),
    )
}

fn describe_local(shard: &Shard, group: &str) -> Option<Described> {
    let groups = shard.groups.groups.borrow();
    let group = groups.get(group)?;
    if !consumer::is_consumer_group(group) {
        return None;
    }
    let metadata = shard.metadata();
    let consumer = &group.consumer;
    Some(Described {
        state: consumer.state().name(),
        epoch: consumer.epoch,
        assignment_epoch: consumer.assignment_epoch,
        assignor: consumer.assignor.name(),
        members: consumer
            .members
            .values()
            .map(|member| {
                DescribedMember::default()
                    .with_member_id(str_bytes(member.id.clone()))
                    .with_instance_id(member.instance_id.clone().map(str_bytes))
                    .with_rack_id(member.rack_id.clone().map(str_bytes))
                    .with_member_epoch(member.epoch)
                    .with_client_id(str_bytes(member.client_id.clone()))
                    .with_client_host(str_bytes(member.client_host.clone()))
                    .with_subscribed_topic_names(
                        member
                            .subscribed
                            .iter()
                            .map(|name| topic_name(name))
                            .collect(),
                    )
                    .with_assignment(described_assignment(&metadata, &member.assigned))
                    .with_target_assignment(described_assignment(
                        &metadata,
                        &consumer.target_of(&member.id),
                    ))
                    // 1: a member of the consumer protocol (v1 on).
                    .with_member_type(1)
            })
            .collect(),
    })
}

pub async fn describe(
    shard: &Rc<Shard>,
    request: ConsumerGroupDescribeRequest,
    _version: i16,
) -> ConsumerGroupDescribeResponse {
    let mut described = Vec::new();
    for group_id in request.group_ids {
        let id = group_id.0.to_string();
        let found = coordinator::on_coordinator(shard, &id.clone(), move |there| async move {
            describe_local(&there, &id)
        })
        .await;
        let group = DescribedGroup::default()
            .with_group_id(group_id)
            .with_authorized_operations(super::authorized_operations(
                super::Resource::Group,
                request.include_authorized_operations,
            ));
        described.push(match found {
            Err(error) => group
                .with_error_code(group_error_code(error))
                .with_error_message(Some(str_bytes(error.to_string()))),
            Ok(None) => group
                .with_error_code(group_error_code(GroupError::GroupIdNotFound))
                .with_error_message(Some(str_bytes("not a consumer group"))),
            Ok(Some(found)) => group
                .with_group_state(str_bytes(found.state))
                .with_group_epoch(found.epoch)
                .with_assignment_epoch(found.assignment_epoch)
                .with_assignor_name(str_bytes(found.assignor))
                .with_members(found.members),
        });
    }
    ConsumerGroupDescribeResponse::default().with_groups(described)
}
