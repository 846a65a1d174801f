//! Groups as seen from outside: listed (every shard's) and described
//! (members, assignments, committed offsets), under either protocol.

use std::rc::Rc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::{
    messages::{
        consumer_protocol_assignment::TopicPartition as AssignedTopic, ConsumerProtocolAssignment,
        TopicName,
    },
    protocol::{Encodable, StrBytes},
};

use super::{
    consumer,
    records::{Committed, OffsetKey},
    routing::run_on,
    Group, GroupState,
};
use crate::shard::Shard;

/// A group as seen from outside.
#[derive(Debug, Clone)]
pub struct GroupSummary {
    pub id: String,
    pub state: GroupState,
    pub protocol_type: String,
    /// The state of a consumer-protocol group (KIP-848); `None`: classic.
    pub consumer_state: Option<consumer::ConsumerGroupState>,
}

impl GroupSummary {
    /// The state's name under the group's protocol.
    pub fn state_name(&self) -> &'static str {
        self.consumer_state
            .map_or(self.state.name(), consumer::ConsumerGroupState::name)
    }

    /// "classic" or "consumer", as ListGroups names the type.
    pub fn group_type(&self) -> &'static str {
        if self.consumer_state.is_some() {
            "consumer"
        } else {
            "classic"
        }
    }
}

/// This shard's groups.
pub fn list_local(shard: &Shard) -> Vec<GroupSummary> {
    shard
        .groups
        .groups
        .borrow()
        .values()
        .map(|group| GroupSummary {
            id: group.id.clone(),
            state: group.state,
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            consumer_state: consumer::is_consumer_group(group).then(|| group.consumer.state()),
        })
        .collect()
}

/// Every shard's groups.
pub async fn list_all(shard: &Rc<Shard>) -> Vec<GroupSummary> {
    let mut all = Vec::new();
    for owner in 0..shard.shard_count() {
        if let Ok(groups) = run_on(shard, owner, |there| async move { list_local(&there) }).await {
            all.extend(groups);
        }
    }
    all.sort_by(|a, b| a.id.cmp(&b.id));
    all
}

/// A member as described.
#[derive(Debug, Clone)]
pub struct MemberSummary {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: bytes::Bytes,
    pub assignment: bytes::Bytes,
}

/// A group described: `None` if it does not exist.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub id: String,
    pub state: GroupState,
    /// The state of a consumer-protocol group (KIP-848); `None`: classic.
    pub consumer_state: Option<consumer::ConsumerGroupState>,
    pub protocol_type: String,
    pub protocol: String,
    pub generation: i32,
    pub members: Vec<MemberSummary>,
    pub offsets: Vec<(OffsetKey, Committed)>,
}

impl GroupDescription {
    /// The state's name under the group's protocol.
    pub fn state_name(&self) -> &'static str {
        self.consumer_state
            .map_or(self.state.name(), consumer::ConsumerGroupState::name)
    }
}

pub fn describe_local(shard: &Shard, group: &str) -> Option<GroupDescription> {
    let groups = shard.groups.groups.borrow();
    let group = groups.get(group)?;
    if consumer::is_consumer_group(group) {
        return Some(describe_consumer_group(group));
    }
    Some(GroupDescription {
        id: group.id.clone(),
        state: group.state,
        consumer_state: None,
        protocol_type: group.protocol_type.clone().unwrap_or_default(),
        protocol: group.protocol.clone().unwrap_or_default(),
        generation: group.generation,
        members: group
            .members
            .values()
            .map(|member| MemberSummary {
                member_id: member.id.clone(),
                instance_id: member.instance_id.clone(),
                client_id: member.client_id.clone(),
                client_host: member.client_host.clone(),
                metadata: member
                    .metadata(group.protocol.as_deref())
                    .cloned()
                    .unwrap_or_default(),
                assignment: member.assignment.clone(),
            })
            .collect(),
        offsets: group
            .offsets
            .iter()
            .map(|(key, committed)| (key.clone(), committed.clone()))
            .collect(),
    })
}

/// A consumer-protocol group as DescribeGroups shows it: the assignor as
/// its protocol, the group epoch as its generation, each member's
/// assignment encoded as a classic consumer's (ConsumerProtocolAssignment
/// v0).
fn describe_consumer_group(group: &Group) -> GroupDescription {
    let consumer = &group.consumer;
    let members = consumer
        .members
        .values()
        .map(|member| MemberSummary {
            member_id: member.id.clone(),
            instance_id: member.instance_id.clone(),
            client_id: member.client_id.clone(),
            client_host: member.client_host.clone(),
            metadata: Bytes::new(),
            assignment: encode_assignment(&consumer.named(&member.assigned)),
        })
        .collect();
    GroupDescription {
        id: group.id.clone(),
        state: group.state,
        consumer_state: Some(consumer.state()),
        protocol_type: "consumer".to_string(),
        protocol: consumer.assignor.name().to_string(),
        generation: consumer.epoch,
        members,
        offsets: group
            .offsets
            .iter()
            .map(|(key, committed)| (key.clone(), committed.clone()))
            .collect(),
    }
}

fn encode_assignment(named: &[(String, Vec<u32>)]) -> Bytes {
    let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(
        named
            .iter()
            .map(|(topic, partitions)| {
                AssignedTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partitions(partitions.iter().map(|p| *p as i32).collect())
            })
            .collect(),
    );
    let mut buffer = BytesMut::new();
    buffer.put_i16(0);
    match assignment.encode(&mut buffer, 0) {
        Ok(()) => buffer.freeze(),
        Err(_) => Bytes::new(),
    }
}
