//! Consumer groups for an operator: list, describe (with lag), reset
//! offsets, delete. A group's requests run on its coordinator shard
//! ([`crate::coordinator::on_coordinator`]); log ends come from each
//! partition's owner.

use std::rc::Rc;

use sluice_net::native::{
    messages::{
        DeleteGroupRequest, DescribeGroupRequest, DescribeGroupResponse, GroupListing,
        GroupMemberDescription, GroupOffsetDescription, GroupResult, ListGroupsRequest,
        ListGroupsResponse, OffsetSpec, ResetGroupOffsetsRequest, ResetGroupOffsetsResponse,
        ResetPartition, ResetTo,
    },
    ErrorCode,
};

use super::{error_code, list_offsets::offset_query};
use crate::{
    coordinator::{
        self, delete_group, describe_local, lag::lag_of, list_local, on_coordinator,
        records::OffsetKey, reset_offsets, run_on, GroupError, OFFSETS_TOPIC,
    },
    partition::{ask, route, ErrorKind, Failure, Isolation, PartitionOp},
    shard::Shard,
};

/// Every group of every shard, with its member count.
pub async fn list(shard: &Rc<Shard>, _request: ListGroupsRequest) -> ListGroupsResponse {
    let mut listed = Vec::new();
    for owner in 0..shard.shard_count() {
        let local = run_on(shard, owner, |there| async move {
            list_local(&there)
                .into_iter()
                .filter_map(|summary| describe_local(&there, &summary.id))
                .map(|group| GroupListing {
                    state: group.state_name().to_string(),
                    group: group.id,
                    protocol_type: group.protocol_type,
                    members: group.members.len() as u32,
                })
                .collect::<Vec<_>>()
        })
        .await;
        // A shard that stopped has nothing to list.
        listed.extend(local.unwrap_or_default());
    }
    listed.sort_by(|a, b| a.group.cmp(&b.group));
    ListGroupsResponse { groups: listed }
}

/// Why a group request failed, for the native protocol.
fn group_failure(group: &str, error: GroupError) -> Failure {
    let message = match error {
        GroupError::GroupIdNotFound => format!("no group {group}"),
        GroupError::NonEmptyGroup => {
            format!("group {group} has members: stop its consumers first")
        }
        error => format!("group {group}: {error}"),
    };
    Failure::new(group_error_kind(error), message)
}

/// The engine's kind of failure for a group error, which the native
/// protocol reports with its own codes.
fn group_error_kind(error: GroupError) -> ErrorKind {
    match error {
        GroupError::UnknownTopicOrPartition => ErrorKind::NoSuchPartition,
        GroupError::StorageError => ErrorKind::StorageFailed,
        GroupError::CoordinatorNotAvailable | GroupError::CoordinatorLoadInProgress => {
            ErrorKind::ShuttingDown
        }
        GroupError::NotCoordinator => ErrorKind::NotLeader,
        GroupError::GroupIdNotFound => ErrorKind::UnknownGroup,
        GroupError::NonEmptyGroup => ErrorKind::GroupNotEmpty,
        _ => ErrorKind::InvalidRequest,
    }
}

fn unknown_group(group: &str) -> Failure {
    group_failure(group, GroupError::GroupIdNotFound)
}

/// Whether the broker has ever held a group: without the offsets topic
/// there is none, and asking about one must not create the topic.
fn no_groups_yet(shard: &Shard) -> bool {
    shard.metadata().topic(OFFSETS_TOPIC).is_none()
}

pub async fn describe(shard: &Rc<Shard>, request: DescribeGroupRequest) -> DescribeGroupResponse {
    let group = request.group;
    let failed = |failure: Failure, group: String| DescribeGroupResponse {
        error: error_code(failure.kind),
        message: failure.message,
        group,
        state: String::new(),
        protocol_type: String::new(),
        protocol: String::new(),
        generation: -1,
        members: Vec::new(),
        offsets: Vec::new(),
    };
    if no_groups_yet(shard) {
        return failed(unknown_group(&group), group);
    }
    let id = group.clone();
    let described = on_coordinator(
        shard,
        &group,
        |there| async move { describe_local(&there, &id) },
    )
    .await;
    let description = match described {
        Ok(Some(description)) => description,
        Ok(None) => return failed(unknown_group(&group), group),
        Err(error) => return failed(group_failure(&group, error), group),
    };
    let committed: Vec<(OffsetKey, u64)> = description
        .offsets
        .iter()
        .map(|(key, committed)| (key.clone(), committed.offset))
        .collect();
    let lags = lag_of(shard, &group, &committed).await;
    DescribeGroupResponse {
        error: ErrorCode::None,
        message: String::new(),
        state: description.state_name().to_string(),
        protocol_type: description.protocol_type,
        protocol: description.protocol,
        generation: description.generation,
        members: description
            .members
            .into_iter()
            .map(|member| GroupMemberDescription {
                member_id: member.member_id,
                instance_id: member.instance_id,
                client_id: member.client_id,
                client_host: member.client_host,
                assignment: member.assignment,
            })
            .collect(),
        offsets: description
            .offsets
            .into_iter()
            .zip(lags)
            .map(|((key, committed), lag)| GroupOffsetDescription {
                topic: key.0,
                partition: key.1,
                committed: committed.offset,
                log_end: lag.log_end,
                metadata: committed.metadata,
                last_stable: lag.last_stable,
            })
            .collect(),
        group: description.id,
    }
}

/// One ListOffset of one partition, asked of its owner. Up to the high
/// watermark, as Kafka's `kafka-consumer-groups` lists them (its admin
/// client reads uncommitted): a group reset to the end is at the end of the
/// log, whatever its consumers' isolation.
async fn list_offset(
    shard: &Rc<Shard>,
    topic: &str,
    partition: u32,
    spec: OffsetSpec,
) -> Result<Option<u64>, Failure> {
    let route = route(shard, &shard.metadata(), topic, partition)?;
    let query = offset_query(spec);
    let answer = ask(shard, route, |reply| PartitionOp::ListOffset {
        query,
        isolation: Isolation::Uncommitted,
        reply,
    })
    .await?;
    Ok(answer.map(|listed| listed.offset.0))
}

/// The log start or end of one partition (always listed).
async fn log_bound(
    shard: &Rc<Shard>,
    topic: &str,
    partition: u32,
    spec: OffsetSpec,
) -> Result<u64, Failure> {
    list_offset(shard, topic, partition, spec)
        .await?
        .ok_or_else(|| {
            Failure::new(
                ErrorKind::Internal,
                format!("{topic}/{partition}: no {spec:?} offset listed"),
            )
        })
}

/// Where `to` puts a group in one partition, as Kafka's
/// `kafka-consumer-groups --reset-offsets` does: an offset outside the log
/// is brought to its nearer end, a time after every record is the end.
async fn resolve(
    shard: &Rc<Shard>,
    topic: &str,
    partition: u32,
    to: ResetTo,
) -> Result<u64, Failure> {
    match to {
        ResetTo::Earliest => log_bound(shard, topic, partition, OffsetSpec::Earliest).await,
        ResetTo::Latest => log_bound(shard, topic, partition, OffsetSpec::Latest).await,
        ResetTo::Offset(offset) => {
            let start = log_bound(shard, topic, partition, OffsetSpec::Earliest).await?;
            let end = log_bound(shard, topic, partition, OffsetSpec::Latest).await?;
            Ok(offset.clamp(start, end.max(start)))
        }
        ResetTo::Timestamp(timestamp) => {
            match list_offset(shard, topic, partition, OffsetSpec::Timestamp(timestamp)).await? {
                Some(offset) => Ok(offset),
                None => log_bound(shard, topic, partition, OffsetSpec::Latest).await,
            }
        }
    }
}

pub async fn reset(
    shard: &Rc<Shard>,
    request: ResetGroupOffsetsRequest,
) -> ResetGroupOffsetsResponse {
    match reset_checked(shard, request).await {
        Ok(partitions) => ResetGroupOffsetsResponse {
            error: ErrorCode::None,
            message: String::new(),
            partitions,
        },
        Err(failure) => ResetGroupOffsetsResponse {
            error: error_code(failure.kind),
            message: failure.message,
            partitions: Vec::new(),
        },
    }
}

async fn reset_checked(
    shard: &Rc<Shard>,
    request: ResetGroupOffsetsRequest,
) -> Result<Vec<ResetPartition>, Failure> {
    let ResetGroupOffsetsRequest {
        group,
        topic,
        partitions,
        to,
        dry_run,
    } = request;
    let Some(meta) = shard.metadata().topic(&topic).cloned() else {
        return Err(Failure::new(
            ErrorKind::UnknownTopic,
            format!("no topic {topic}"),
        ));
    };
    let count = meta.partition_count();
    let mut partitions = if partitions.is_empty() {
        (0..count).collect()
    } else {
        partitions
    };
    partitions.sort_unstable();
    partitions.dedup();
    if let Some(missing) = partitions.iter().find(|partition| **partition >= count) {
        return Err(Failure::new(
            ErrorKind::NoSuchPartition,
            format!("topic {topic} has {count} partitions, no partition {missing}"),
        ));
    }
    // Refused early while the group has members (and checked again where
    // the offsets are committed); the offsets before, to report.
    let id = group.clone();
    let keys: Vec<OffsetKey> = partitions
        .iter()
        .map(|partition| (topic.clone(), *partition))
        .collect();
    let wanted = keys.clone();
    let (members, previous) = on_coordinator(shard, &group, move |there| async move {
        let members = describe_local(&there, &id).map_or(0, |group| group.members.len());
        let previous: Vec<Option<u64>> = coordinator::committed(&there, &id, Some(&wanted))
            .into_iter()
            .map(|(_, committed)| committed.map(|committed| committed.offset))
            .collect();
        (members, previous)
    })
    .await
    .map_err(|error| group_failure(&group, error))?;
    if members > 0 {
        return Err(Failure::new(
            ErrorKind::GroupNotEmpty,
            format!(
                "group {group} has {members} member{}: stop its consumers before resetting its offsets",
                if members == 1 { "" } else { "s" }
            ),
        ));
    }
    let mut reset = Vec::with_capacity(partitions.len());
    for (partition, previous) in partitions.iter().zip(previous) {
        reset.push(ResetPartition {
            partition: *partition,
            previous,
            offset: resolve(shard, &topic, *partition, to).await?,
        });
    }
    if !dry_run {
        let offsets: Vec<(OffsetKey, u64)> = keys
            .into_iter()
            .zip(&reset)
            .map(|(key, reset)| (key, reset.offset))
            .collect();
        let id = group.clone();
        on_coordinator(shard, &group, move |there| async move {
            reset_offsets(&there, &id, offsets).await
        })
        .await
        .and_then(|result| result)
        .map_err(|error| group_failure(&group, error))?;
    }
    Ok(reset)
}

pub async fn delete(shard: &Rc<Shard>, request: DeleteGroupRequest) -> GroupResult {
    let group = request.group;
    let outcome = if no_groups_yet(shard) {
        Err(unknown_group(&group))
    } else {
        let id = group.clone();
        on_coordinator(shard, &group, move |there| async move {
            delete_group(&there, &id).await
        })
        .await
        .and_then(|result| result)
        .map_err(|error| group_failure(&group, error))
    };
    match outcome {
        Ok(()) => GroupResult {
            error: ErrorCode::None,
            message: String::new(),
        },
        Err(failure) => GroupResult {
            error: error_code(failure.kind),
            message: failure.message,
        },
    }
}
