//! Kafka's classic group APIs, served by the group coordinator:
//! FindCoordinator, JoinGroup, SyncGroup, Heartbeat and LeaveGroup (the
//! classic protocol's members, [`coordinator::classic`]), and ListGroups,
//! DescribeGroups and DeleteGroups, which also show and delete groups of
//! the consumer protocol (KIP-848). Each request runs on its group's
//! coordinator shard ([`coordinator::on_coordinator`]) and its answer comes
//! back here to be encoded. FindCoordinator names the node that leads the
//! group's partition of `__consumer_offsets` (any shard of it serves the
//! group, forwarding within the node). Offsets are in
//! [`super::group_offsets`].

use std::{
    rc::Rc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use kafka_protocol::{
    error::ResponseError,
    messages::{
        delete_groups_response::DeletableGroupResult,
        describe_groups_response::{DescribedGroup, DescribedGroupMember},
        find_coordinator_response::Coordinator,
        join_group_response::JoinGroupResponseMember,
        leave_group_response::MemberResponse,
        list_groups_response::ListedGroup,
        DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
        FindCoordinatorRequest, FindCoordinatorResponse, GroupId, HeartbeatRequest,
        HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
        LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse, SyncGroupRequest,
        SyncGroupResponse,
    },
};

use super::{group_code, group_error_code, str_bytes, text};
use crate::{
    coordinator::{
        self,
        classic::{self, JoinOutcome, JoinRequest, Joined, SyncRequest, Synced},
        GroupError, GroupState,
    },
    shard::Shard,
};

/// FindCoordinator's key types: a group id, a transactional id.
const KEY_GROUP: i8 = 0;
const KEY_TRANSACTION: i8 = 1;

pub async fn find_coordinator(
    shard: &Rc<Shard>,
    request: FindCoordinatorRequest,
    version: i16,
    listener: &str,
) -> FindCoordinatorResponse {
    let response = FindCoordinatorResponse::default();
    if version >= 4 {
        let mut coordinators = Vec::new();
        for key in request.coordinator_keys {
            let located = locate(shard, request.key_type, &key, listener).await;
            let coordinator = Coordinator::default().with_key(key);
            coordinators.push(match located {
                Ok(broker) => coordinator
                    .with_node_id(broker.node)
                    .with_host(str_bytes(broker.host))
                    .with_port(broker.port),
                Err((error, message)) => coordinator
                    .with_error_code(error)
                    .with_error_message(Some(str_bytes(message)))
                    .with_node_id(kafka_protocol::messages::BrokerId(-1))
                    .with_port(-1),
            });
        }
        return response.with_coordinators(coordinators);
    }
    let key_type = if version >= 1 {
        request.key_type
    } else {
        KEY_GROUP
    };
    match locate(shard, key_type, &request.key, listener).await {
        Ok(broker) => response
            .with_node_id(broker.node)
            .with_host(str_bytes(broker.host))
            .with_port(broker.port),
        Err((error, message)) => response
            .with_error_code(error)
            .with_error_message((version >= 1).then(|| str_bytes(message)))
            .with_node_id(kafka_protocol::messages::BrokerId(-1))
            .with_port(-1),
    }
}

/// The broker that coordinates `key` (a group id, or a transactional id
/// with key type 1), or the error and why.
async fn locate(
    shard: &Rc<Shard>,
    key_type: i8,
    key: &str,
    listener: &str,
) -> Result<super::KafkaBroker, (i16, String)> {
    let node = match key_type {
        KEY_GROUP => coordinator::routing::coordinator_node(shard, key)
            .await
            .map_err(|error| (group_error_code(error), error.to_string()))?,
        KEY_TRANSACTION => crate::txn::routing::coordinator_node(shard, key)
            .await
            .map_err(|error| {
                let message = error.to_string();
                (crate::txn::codes::txn_error_code(error, false), message)
            })?,
        _ => {
            return Err((
                ResponseError::InvalidRequest.code(),
                format!(
                "coordinator key type {key_type}: only groups (0) and transactions (1) have one"
            ),
            ))
        }
    };
    super::live_brokers(shard, &shard.metadata(), listener)
        .into_iter()
        .find(|broker| broker.node.0 == node.0)
        .ok_or_else(|| {
            (
                ResponseError::CoordinatorNotAvailable.code(),
                format!("node {node}, which coordinates {key}, is not available"),
            )
        })
}

pub async fn join_group(
    shard: &Rc<Shard>,
    request: JoinGroupRequest,
    version: i16,
    client_id: String,
    client_host: String,
) -> JoinGroupResponse {
    let group = text(&request.group_id.0);
    let session_timeout = Duration::from_millis(request.session_timeout_ms.max(0) as u64);
    // v0 has no rebalance timeout: it is the session timeout.
    let rebalance_timeout = if version >= 1 {
        Duration::from_millis(request.rebalance_timeout_ms.max(0) as u64)
    } else {
        session_timeout
    };
    let join = JoinRequest {
        member_id: text(&request.member_id),
        instance_id: request.group_instance_id.as_ref().map(text),
        client_id,
        client_host,
        session_timeout,
        rebalance_timeout,
        protocol_type: text(&request.protocol_type),
        protocols: request
            .protocols
            .iter()
            .map(|protocol| (text(&protocol.name), protocol.metadata.clone()))
            .collect(),
        require_known_member: version >= 4,
        initial_delay: shard.config.group_initial_rebalance_delay,
        session_timeout_bounds: (
            shard.config.group_min_session_timeout,
            shard.config.group_max_session_timeout,
        ),
    };
    let member_id = join.member_id.clone();
    let outcome = coordinator::on_coordinator(shard, &group.clone(), move |there| async move {
        let joined = {
            let mut all = there.groups.groups.borrow_mut();
            let entry = all
                .entry(group.clone())
                .or_insert_with(|| coordinator::Group::new(&group));
            classic::join(entry, join, Instant::now())
        };
        match joined {
            Joined::Now(outcome) => outcome,
            Joined::Wait(answer) => answer.await.unwrap_or_else(|_| JoinOutcome {
                error: Some(GroupError::UnknownMemberId),
                generation: -1,
                member_id,
                ..JoinOutcome::default()
            }),
        }
    })
    .await
    .unwrap_or_else(|error| JoinOutcome {
        error: Some(error),
        generation: -1,
        ..JoinOutcome::default()
    });
    let members = outcome
        .members
        .into_iter()
        .map(|(id, instance, metadata)| {
            JoinGroupResponseMember::default()
                .with_member_id(str_bytes(id))
                .with_group_instance_id(instance.filter(|_| version >= 5).map(str_bytes))
                .with_metadata(metadata)
        })
        .collect();
    JoinGroupResponse::default()
        .with_error_code(outcome.error.map_or(0, group_error_code))
        .with_generation_id(outcome.generation)
        .with_protocol_type(
            outcome
                .protocol_type
                .filter(|_| version >= 7)
                .map(str_bytes),
        )
        .with_protocol_name(match (outcome.protocol, version >= 7) {
            (Some(protocol), _) => Some(str_bytes(protocol)),
            (None, true) => None,
            (None, false) => Some(str_bytes("")),
        })
        .with_leader(str_bytes(outcome.leader))
        .with_member_id(str_bytes(outcome.member_id))
        .with_members(members)
}

pub async fn sync_group(
    shard: &Rc<Shard>,
    request: SyncGroupRequest,
    version: i16,
) -> SyncGroupResponse {
    let group = text(&request.group_id.0);
    let sync = SyncRequest {
        generation: request.generation_id,
        member_id: text(&request.member_id),
        protocol_type: request.protocol_type.as_ref().map(text),
        protocol: request.protocol_name.as_ref().map(text),
        assignments: request
            .assignments
            .iter()
            .map(|assignment| (text(&assignment.member_id), assignment.assignment.clone()))
            .collect(),
    };
    let outcome = coordinator::on_coordinator(shard, &group.clone(), move |there| async move {
        let synced = {
            let mut all = there.groups.groups.borrow_mut();
            match all.get_mut(&group) {
                None => Synced::Now(Err(GroupError::UnknownMemberId)),
                Some(entry) => classic::sync(entry, sync, Instant::now()),
            }
        };
        let protocol = {
            let all = there.groups.groups.borrow();
            all.get(&group)
                .map(|g| (g.protocol_type.clone(), g.protocol.clone()))
        };
        let assignment = match synced {
            Synced::Now(result) => result,
            Synced::Wait(answer) => answer.await.unwrap_or(Err(GroupError::UnknownMemberId)),
        };
        (assignment, protocol.unwrap_or_default())
    })
    .await
    .unwrap_or_else(|error| (Err(error), (None, None)));
    let ((assignment, (protocol_type, protocol)), flexible) = (outcome, version >= 5);
    let response = SyncGroupResponse::default()
        .with_protocol_type(protocol_type.filter(|_| flexible).map(str_bytes))
        .with_protocol_name(protocol.filter(|_| flexible).map(str_bytes));
    match assignment {
        Ok(assignment) => response.with_assignment(assignment),
        Err(error) => response
            .with_error_code(group_error_code(error))
            .with_assignment(Bytes::new()),
    }
}

pub async fn heartbeat(
    shard: &Rc<Shard>,
    request: HeartbeatRequest,
    _version: i16,
) -> HeartbeatResponse {
    let group = text(&request.group_id.0);
    let member_id = text(&request.member_id);
    let generation = request.generation_id;
    let result = coordinator::on_coordinator(shard, &group.clone(), move |there| async move {
        let mut all = there.groups.groups.borrow_mut();
        match all.get_mut(&group) {
            None => Err(GroupError::UnknownMemberId),
            Some(entry) => classic::heartbeat(entry, &member_id, generation, Instant::now()),
        }
    })
    .await
    .and_then(|result| result);
    HeartbeatResponse::default().with_error_code(group_code(&result))
}

pub async fn leave_group(
    shard: &Rc<Shard>,
    request: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let group = text(&request.group_id.0);
    let leaving: Vec<(String, Option<String>)> = if version >= 3 {
        request
            .members
            .iter()
            .map(|member| {
                (
                    text(&member.member_id),
                    member.group_instance_id.as_ref().map(text),
                )
            })
            .collect()
    } else {
        vec![(text(&request.member_id), None)]
    };
    let asked = leaving.clone();
    let results = coordinator::on_coordinator(shard, &group.clone(), move |there| async move {
        let mut all = there.groups.groups.borrow_mut();
        match all.get_mut(&group) {
            None => vec![Err(GroupError::UnknownMemberId); leaving.len()],
            Some(entry) => classic::leave(entry, &leaving, Instant::now()),
        }
    })
    .await;
    let results = match results {
        Ok(results) => results,
        Err(error) => {
            return LeaveGroupResponse::default().with_error_code(group_error_code(error));
        }
    };
    if version < 3 {
        return LeaveGroupResponse::default().with_error_code(group_code(&results[0]));
    }
    LeaveGroupResponse::default().with_members(
        asked
            .into_iter()
            .zip(results)
            .map(|((member_id, instance_id), result)| {
                MemberResponse::default()
                    .with_member_id(str_bytes(member_id))
                    .with_group_instance_id(instance_id.map(str_bytes))
                    .with_error_code(group_code(&result))
            })
            .collect(),
    )
}
pub async fn describe_groups(
    shard: &Rc<Shard>,
    request: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let mut described = Vec::new();
    for group_id in request.groups {
        let id = group_id.0.to_string();
        let description =
            coordinator::on_coordinator(shard, &id.clone(), move |there| async move {
                coordinator::describe_local(&there, &id)
            })
            .await;
        let group = DescribedGroup::default()
            .with_group_id(group_id)
            .with_authorized_operations(super::authorized_operations(
                super::Resource::Group,
                version >= 3 && request.include_authorized_operations,
            ));
        described.push(match description {
            Err(error) => group
                .with_error_code(group_error_code(error))
                .with_group_state(str_bytes("")),
            // Kafka describes a group it does not know as Dead.
            Ok(None) => group.with_group_state(str_bytes(GroupState::Dead.name())),
            Ok(Some(description)) => group
                .with_group_state(str_bytes(description.state_name()))
                .with_protocol_type(str_bytes(description.protocol_type))
                .with_protocol_data(str_bytes(description.protocol))
                .with_members(
                    description
                        .members
                        .into_iter()
                        .map(|member| {
                            DescribedGroupMember::default()
                                .with_member_id(str_bytes(member.member_id))
                                .with_group_instance_id(
                                    member.instance_id.filter(|_| version >= 4).map(str_bytes),
                                )
                                .with_client_id(str_bytes(member.client_id))
                                .with_client_host(str_bytes(member.client_host))
                                .with_member_metadata(member.metadata)
                                .with_member_assignment(member.assignment)
                        })
                        .collect(),
                ),
        });
    }
    DescribeGroupsResponse::default().with_groups(described)
}

pub async fn list_groups(
    shard: &Rc<Shard>,
    request: ListGroupsRequest,
    version: i16,
) -> ListGroupsResponse {
    let states: Vec<String> = request.states_filter.iter().map(text).collect();
    let types: Vec<String> = request
        .types_filter
        .iter()
        .map(|t| text(t).to_lowercase())
        .collect();
    let listed = coordinator::list_all(shard)
        .await
        .into_iter()
        .filter(|group| {
            states.is_empty()
                || states
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(group.state_name()))
        })
        .filter(|group| types.is_empty() || types.iter().any(|t| t == group.group_type()))
        .map(|group| {
            let (state, group_type) = (group.state_name(), group.group_type());
            let listed = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(group.id)))
                .with_protocol_type(str_bytes(group.protocol_type));
            let listed = if version >= 4 {
                listed.with_group_state(str_bytes(state))
            } else {
                listed
            };
            if version >= 5 {
                listed.with_group_type(str_bytes(group_type))
            } else {
                listed
            }
        })
        .collect();
    ListGroupsResponse::default().with_groups(listed)
}

pub async fn delete_groups(
    shard: &Rc<Shard>,
    request: DeleteGroupsRequest,
    _version: i16,
) -> DeleteGroupsResponse {
    let mut results = Vec::new();
    for group_id in request.groups_names {
        let id = group_id.0.to_string();
        let result = coordinator::on_coordinator(shard, &id.clone(), move |there| async move {
            coordinator::delete_group(&there, &id).await
        })
        .await
        .and_then(|result| result);
        results.push(
            DeletableGroupResult::default()
                .with_group_id(group_id)
                .with_error_code(group_code(&result)),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
