//! Black box: the group coordinator's APIs on the Kafka listener of the
//! built `sluice` binary, over raw TCP with requests made by
//! `kafka-protocol`. Each bad request gets Kafka's error code and changes
//! nothing, which OffsetFetch and DescribeGroups show afterwards.
//!
//! Versions are the highest the broker advertises within what each check
//! needs (JoinGroup v4+ for MEMBER_ID_REQUIRED, ListGroups v4+ for states,
//! FindCoordinator v3 and v4, OffsetFetch v8).

mod common;
mod kafka_common;

use std::{collections::BTreeMap, net::TcpStream, time::Duration};

use bytes::{BufMut, Bytes, BytesMut};
use common::Broker;
use kafka_common::create_topic;
use kafka_protocol::{
    messages::{
        join_group_request::JoinGroupRequestProtocol,
        leave_group_request::MemberIdentity,
        offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic},
        offset_fetch_request::{
            OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
        },
        sync_group_request::SyncGroupRequestAssignment,
        ApiKey, ApiVersionsRequest, ApiVersionsResponse, DeleteGroupsRequest, DeleteGroupsResponse,
        DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest,
        FindCoordinatorResponse, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
        JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
        ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
        OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse, TopicName,
    },
    protocol::{Decodable, Encodable, StrBytes},
};

/// A JoinGroup may wait for Kafka's initial rebalance delay (3 s) and for
/// other members; far more than that is a hang.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Session and rebalance timeouts of the members made here: long enough
/// that none expires during a test without heartbeats.
const MEMBER_TIMEOUT_MS: i32 = 30_000;

const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const ILLEGAL_GENERATION: i16 = 22;
const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
const UNKNOWN_MEMBER_ID: i16 = 25;
const NON_EMPTY_GROUP: i16 = 68;
const GROUP_ID_NOT_FOUND: i16 = 69;
const MEMBER_ID_REQUIRED: i16 = 79;

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

fn group_id(value: &str) -> GroupId {
    GroupId(text(value))
}

fn topic_name(value: &str) -> TopicName {
    TopicName(text(value))
}

/// A connection to the Kafka listener that knows which versions the
/// broker serves.
struct Client {
    stream: TcpStream,
    versions: BTreeMap<i16, (i16, i16)>,
    correlation_id: i32,
}

impl Client {
    fn connect(broker: &Broker) -> Client {
        let stream = TcpStream::connect(&broker.kafka_addr).expect("connects");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut client = Client {
            stream,
            versions: BTreeMap::new(),
            correlation_id: 0,
        };
        let answer: ApiVersionsResponse =
            client.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
        assert_eq!(answer.error_code, NONE);
        client.versions = answer
            .api_keys
            .iter()
            .map(|api| (api.api_key, (api.min_version, api.max_version)))
            .collect();
        client
    }

    /// The highest version of `api` the broker serves within
    /// [lowest, highest]; fails the test if it serves none.
    fn version(&self, api: ApiKey, lowest: i16, highest: i16) -> i16 {
        let (min, max) = *self
            .versions
            .get(&(api as i16))
            .unwrap_or_else(|| panic!("the broker does not advertise {api:?}"));
        let version = max.min(highest);
        assert!(
            version >= lowest && version >= min,
            "{api:?}: the broker serves v{min}-v{max}, the test needs v{lowest}-v{highest}"
        );
        version
    }

    fn call<T: Encodable, R: Decodable>(&mut self, api: ApiKey, version: i16, body: &T) -> R {
        self.correlation_id += 1;
        let correlation_id = self.correlation_id;
        common::kafka_exchange(
            &mut self.stream,
            api,
            version,
            correlation_id,
            "group-protocol",
            body,
        )
    }

    fn join(
        &mut self,
        group: &str,
        member_id: &str,
        protocol_type: &str,
        protocols: &[(&str, Bytes)],
    ) -> JoinGroupResponse {
        let version = self.version(ApiKey::JoinGroup, 4, 9);
        let request = JoinGroupRequest::default()
            .with_group_id(group_id(group))
            .with_session_timeout_ms(MEMBER_TIMEOUT_MS)
            .with_rebalance_timeout_ms(MEMBER_TIMEOUT_MS)
            .with_member_id(text(member_id))
            .with_protocol_type(text(protocol_type))
            .with_protocols(
                protocols
                    .iter()
                    .map(|(name, metadata)| {
                        JoinGroupRequestProtocol::default()
                            .with_name(text(name))
                            .with_metadata(metadata.clone())
                    })
                    .collect(),
            );
        self.call(ApiKey::JoinGroup, version, &request)
    }

    fn sync(
        &mut self,
        group: &str,
        generation: i32,
        member_id: &str,
        assignments: &[(&str, Bytes)],
    ) -> SyncGroupResponse {
        let version = self.version(ApiKey::SyncGroup, 0, 5);
        let request = SyncGroupRequest::default()
            .with_group_id(group_id(group))
            .with_generation_id(generation)
            .with_member_id(text(member_id))
            .with_assignments(
                assignments
                    .iter()
                    .map(|(member, assignment)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(text(member))
                            .with_assignment(assignment.clone())
                    })
                    .collect(),
            );
        self.call(ApiKey::SyncGroup, version, &request)
    }

    fn heartbeat(&mut self, group: &str, generation: i32, member_id: &str) -> i16 {
        let version = self.version(ApiKey::Heartbeat, 0, 4);
        let request = HeartbeatRequest::default()
            .with_group_id(group_id(group))
            .with_generation_id(generation)
            .with_member_id(text(member_id));
        let answer: HeartbeatResponse = self.call(ApiKey::Heartbeat, version, &request);
        answer.error_code
    }

    fn leave(&mut self, group: &str, member_id: &str) -> i16 {
        let version = self.version(ApiKey::LeaveGroup, 0, 5);
        let mut request = LeaveGroupRequest::default().with_group_id(group_id(group));
        if version >= 3 {
            request = request.with_members(vec![
                MemberIdentity::default().with_member_id(text(member_id))
            ]);
        } else {
            request = request.with_member_id(text(member_id));
        }
        let answer: LeaveGroupResponse = self.call(ApiKey::LeaveGroup, version, &request);
        if version >= 3 && answer.error_code == NONE {
            return answer.members[0].error_code;
        }
        answer.error_code
    }

    /// Commits `offsets` (topic, partition, offset); the error code of
    /// each, in order.
    fn commit(
        &mut self,
        group: &str,
        generation: i32,
        member_id: &str,
        offsets: &[(&str, i32, i64)],
    ) -> Vec<((String, i32), i16)> {
        let version = self.version(ApiKey::OffsetCommit, 2, 9);
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for (topic, partition, offset) in offsets {
            let partition = OffsetCommitRequestPartition::default()
                .with_partition_index(*partition)
                .with_committed_offset(*offset)
                .with_committed_metadata(Some(text("m")));
            match topics.iter_mut().find(|t| t.name.0.as_str() == *topic) {
                Some(existing) => existing.partitions.push(partition),
                None => topics.push(
                    OffsetCommitRequestTopic::default()
                        .with_name(topic_name(topic))
                        .with_partitions(vec![partition]),
                ),
            }
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(group_id(group))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(text(member_id))
            .with_topics(topics);
        let answer: OffsetCommitResponse = self.call(ApiKey::OffsetCommit, version, &request);
        let mut out = Vec::new();
        for topic in &answer.topics {
            for partition in &topic.partitions {
                out.push((
                    (topic.name.0.to_string(), partition.partition_index),
                    partition.error_code,
                ));
            }
        }
        out.sort();
        out
    }

    /// The committed offset of each (topic, partition), -1 for none,
    /// through the broker's highest OffsetFetch.
    fn committed(&mut self, group: &str, partitions: &[(&str, i32)]) -> Vec<i64> {
        let version = self.version(ApiKey::OffsetFetch, 1, 9);
        if version >= 8 {
            let answer = self.fetch_offsets_batched(version, &[group], partitions);
            return partitions
                .iter()
                .map(|(topic, partition)| {
                    answer[&(group.to_string(), topic.to_string(), *partition)]
                })
                .collect();
        }
        let mut topics: Vec<OffsetFetchRequestTopic> = Vec::new();
        for (topic, partition) in partitions {
            match topics.iter_mut().find(|t| t.name.0.as_str() == *topic) {
                Some(existing) => existing.partition_indexes.push(*partition),
                None => topics.push(
                    OffsetFetchRequestTopic::default()
                        .with_name(topic_name(topic))
                        .with_partition_indexes(vec![*partition]),
                ),
            }
        }
        let request = OffsetFetchRequest::default()
            .with_group_id(group_id(group))
            .with_topics(Some(topics));
        let answer: OffsetFetchResponse = self.call(ApiKey::OffsetFetch, version, &request);
        if version >= 2 {
            assert_eq!(answer.error_code, NONE, "OffsetFetch {group}");
        }
        partitions
            .iter()
            .map(|(topic, partition)| {
                let found = answer
                    .topics
                    .iter()
                    .filter(|t| t.name.0.as_str() == *topic)
                    .flat_map(|t| &t.partitions)
                    .find(|p| p.partition_index == *partition)
                    .unwrap_or_else(|| panic!("OffsetFetch left out {topic}/{partition}"));
                assert!(
                    [NONE, UNKNOWN_TOPIC_OR_PARTITION].contains(&found.error_code),
                    "OffsetFetch {topic}/{partition}: error {}",
                    found.error_code
                );
                found.committed_offset
            })
            .collect()
    }

    /// OffsetFetch v8+: several groups at once. (group, topic, partition)
    /// -> committed offset, -1 for none.
    fn fetch_offsets_batched(
        &mut self,
        version: i16,
        groups: &[&str],
        partitions: &[(&str, i32)],
    ) -> BTreeMap<(String, String, i32), i64> {
        let mut topics: Vec<OffsetFetchRequestTopics> = Vec::new();
        for (topic, partition) in partitions {
            match topics.iter_mut().find(|t| t.name.0.as_str() == *topic) {
                Some(existing) => existing.partition_indexes.push(*partition),
                None => topics.push(
                    OffsetFetchRequestTopics::default()
                        .with_name(topic_name(topic))
                        .with_partition_indexes(vec![*partition]),
                ),
            }
        }
        let request = OffsetFetchRequest::default().with_groups(
            groups
                .iter()
                .map(|group| {
                    OffsetFetchRequestGroup::default()
                        .with_group_id(group_id(group))
                        .with_topics(Some(topics.clone()))
                })
                .collect(),
        );
        let answer: OffsetFetchResponse = self.call(ApiKey::OffsetFetch, version, &request);
        let mut out = BTreeMap::new();
        assert_eq!(answer.groups.len(), groups.len(), "groups answered");
        for group in &answer.groups {
            assert_eq!(group.error_code, NONE, "OffsetFetch {:?}", group.group_id);
            for topic in &group.topics {
                for partition in &topic.partitions {
                    assert!(
                        [NONE, UNKNOWN_TOPIC_OR_PARTITION].contains(&partition.error_code),
                        "OffsetFetch {:?} {:?}/{}: error {}",
                        group.group_id,
                        topic.name,
                        partition.partition_index,
                        partition.error_code
                    );
                    out.insert(
                        (
                            group.group_id.0.to_string(),
                            topic.name.0.to_string(),
                            partition.partition_index,
                        ),
                        partition.committed_offset,
                    );
                }
            }
        }
        out
    }

    /// (state, protocol type, protocol, member ids) of `group`, asserting
    /// that DescribeGroups reports no error.
    fn describe(&mut self, group: &str) -> (String, String, String, Vec<String>) {
        let version = self.version(ApiKey::DescribeGroups, 0, 5);
        let request = DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
        let answer: DescribeGroupsResponse = self.call(ApiKey::DescribeGroups, version, &request);
        assert_eq!(answer.groups.len(), 1, "DescribeGroups {group}");
        let described = &answer.groups[0];
        assert_eq!(described.error_code, NONE, "DescribeGroups {group}");
        assert_eq!(described.group_id.0.as_str(), group);
        let mut members: Vec<String> = described
            .members
            .iter()
            .map(|member| member.member_id.to_string())
            .collect();
        members.sort();
        (
            described.group_state.to_string(),
            described.protocol_type.to_string(),
            described.protocol_data.to_string(),
            members,
        )
    }

    /// (group, state) of each group ListGroups answers, with `states`
    /// as its filter.
    fn list(&mut self, states: &[&str]) -> BTreeMap<String, String> {
        let version = self.version(ApiKey::ListGroups, 4, 5);
        let request = ListGroupsRequest::default()
            .with_states_filter(states.iter().map(|state| text(state)).collect());
        let answer: ListGroupsResponse = self.call(ApiKey::ListGroups, version, &request);
        assert_eq!(answer.error_code, NONE, "ListGroups");
        answer
            .groups
            .iter()
            .map(|group| (group.group_id.0.to_string(), group.group_state.to_string()))
            .collect()
    }

    fn delete(&mut self, group: &str) -> i16 {
        let version = self.version(ApiKey::DeleteGroups, 0, 2);
        let request = DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]);
        let answer: DeleteGroupsResponse = self.call(ApiKey::DeleteGroups, version, &request);
        assert_eq!(answer.results.len(), 1);
        answer.results[0].error_code
    }
}

/// ConsumerProtocolSubscription v0: the topics a member subscribes to.
fn subscription(topics: &[&str]) -> Bytes {
    let mut bytes = BytesMut::new();
    bytes.put_i16(0);
    bytes.put_i32(topics.len() as i32);
    for topic in topics {
        bytes.put_i16(topic.len() as i16);
        bytes.put_slice(topic.as_bytes());
    }
    bytes.put_i32(-1);
    bytes.freeze()
}

/// ConsumerProtocolAssignment v0: partitions of one topic.
fn assignment(topic: &str, partitions: &[i32]) -> Bytes {
    let mut bytes = BytesMut::new();
    bytes.put_i16(0);
    bytes.put_i32(1);
    bytes.put_i16(topic.len() as i16);
    bytes.put_slice(topic.as_bytes());
    bytes.put_i32(partitions.len() as i32);
    for partition in partitions {
        bytes.put_i32(*partition);
    }
    bytes.put_i32(-1);
    bytes.freeze()
}

/// A stable group of one member, made the way a consumer does: JoinGroup
/// without a member id (MEMBER_ID_REQUIRED, with one to use), JoinGroup
/// with it, SyncGroup as leader. Returns (member id, generation).
fn join_alone(client: &mut Client, group: &str, topic: &str, partitions: &[i32]) -> (String, i32) {
    let protocols = [("range", subscription(&[topic]))];
    let first = client.join(group, "", "consumer", &protocols);
    assert_eq!(
        first.error_code, MEMBER_ID_REQUIRED,
        "JoinGroup without a member id"
    );
    let member_id = first.member_id.to_string();
    assert!(
        !member_id.is_empty(),
        "MEMBER_ID_REQUIRED comes with a member id"
    );
    assert_eq!(
        client.describe(group).3,
        Vec::<String>::new(),
        "a member id handed out is not yet a member"
    );

    let joined = client.join(group, &member_id, "consumer", &protocols);
    assert_eq!(
        joined.error_code, NONE,
        "JoinGroup with the member id given"
    );
    assert_eq!(joined.member_id.as_str(), member_id);
    assert_eq!(joined.leader.as_str(), member_id, "the only member leads");
    assert!(
        joined.generation_id >= 1,
        "generation {}",
        joined.generation_id
    );
    assert_eq!(
        joined.protocol_name.as_ref().map(|p| p.as_str()),
        Some("range")
    );
    assert_eq!(joined.members.len(), 1, "the leader gets the members");
    assert_eq!(joined.members[0].metadata, protocols[0].1);

    let given = assignment(topic, partitions);
    let synced = client.sync(
        group,
        joined.generation_id,
        &member_id,
        &[(&member_id, given.clone())],
    );
    assert_eq!(synced.error_code, NONE, "SyncGroup as leader");
    assert_eq!(synced.assignment, given, "the assignment handed back");
    assert_eq!(
        client.heartbeat(group, joined.generation_id, &member_id),
        NONE
    );
    (member_id, joined.generation_id)
}

/// What a group looks like, to compare before and after a bad request.
fn snapshot(client: &mut Client, group: &str, partitions: &[(&str, i32)]) -> String {
    format!(
        "{:?} {:?}",
        client.describe(group),
        client.committed(group, partitions)
    )
}

#[test]
fn offset_commits_to_unknown_topics_or_partitions_are_refused_and_store_nothing() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    create_topic(&broker, "known", 2);
    let mut client = Client::connect(&broker);
    let group = "standalone";
    // A standalone consumer's commit: no member, generation -1.
    let answer = client.commit(
        group,
        -1,
        "",
        &[("known", 0, 7), ("known", 99, 5), ("unknown-topic", 0, 3)],
    );
    assert_eq!(
        answer,
        vec![
            (("known".to_string(), 0), NONE),
            (("known".to_string(), 99), UNKNOWN_TOPIC_OR_PARTITION),
            (("unknown-topic".to_string(), 0), UNKNOWN_TOPIC_OR_PARTITION),
        ]
    );
    assert_eq!(
        client.committed(
            group,
            &[
                ("known", 0),
                ("known", 1),
                ("known", 99),
                ("unknown-topic", 0)
            ]
        ),
        vec![7, -1, -1, -1]
    );
    // Refused alone, too.
    let answer = client.commit(group, -1, "", &[("unknown-topic", 1, 3)]);
    assert_eq!(
        answer,
        vec![(("unknown-topic".to_string(), 1), UNKNOWN_TOPIC_OR_PARTITION)]
    );
    assert_eq!(
        client.committed(group, &[("unknown-topic", 1), ("known", 0)]),
        vec![-1, 7]
    );
}

#[test]
fn members_with_a_stale_generation_or_an_unknown_id_are_refused() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    create_topic(&broker, "members", 2);
    let mut client = Client::connect(&broker);
    let group = "members-group";
    let (member, generation) = join_alone(&mut client, group, "members", &[0, 1]);
    let answer = client.commit(group, generation, &member, &[("members", 0, 5)]);
    assert_eq!(answer, vec![(("members".to_string(), 0), NONE)]);
    let partitions = [("members", 0), ("members", 1)];
    let before = snapshot(&mut client, group, &partitions);
    assert!(before.contains("Stable"), "{before}");

    for stale in [generation - 1, generation + 1] {
        let answer = client.commit(
            group,
            stale,
            &member,
            &[("members", 0, 9), ("members", 1, 9)],
        );
        assert_eq!(
            answer,
            vec![
                (("members".to_string(), 0), ILLEGAL_GENERATION),
                (("members".to_string(), 1), ILLEGAL_GENERATION)
            ],
            "OffsetCommit with generation {stale} of {generation}"
        );
    }
    let answer = client.commit(group, generation, "nobody", &[("members", 0, 9)]);
    assert_eq!(
        answer,
        vec![(("members".to_string(), 0), UNKNOWN_MEMBER_ID)]
    );
    assert_eq!(
        client.heartbeat(group, generation, "nobody"),
        UNKNOWN_MEMBER_ID
    );
    let synced = client.sync(
        group,
        generation + 1,
        &member,
        &[(&member, assignment("members", &[0]))],
    );
    assert_eq!(
        synced.error_code, ILLEGAL_GENERATION,
        "SyncGroup with a wrong generation"
    );
    assert_eq!(
        client.heartbeat(group, generation + 1, &member),
        ILLEGAL_GENERATION
    );

    assert_eq!(
        snapshot(&mut client, group, &partitions),
        before,
        "after the bad requests"
    );
    // The member is still in good standing.
    assert_eq!(client.heartbeat(group, generation, &member), NONE);
    assert_eq!(client.committed(group, &partitions), vec![5, -1]);
}

#[test]
fn joins_with_no_or_foreign_protocols_are_inconsistent() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    create_topic(&broker, "protocols", 2);
    let mut client = Client::connect(&broker);

    // A new group and no protocols at all.
    let answer = client.join("no-protocols", "", "consumer", &[]);
    assert_eq!(
        answer.error_code, INCONSISTENT_GROUP_PROTOCOL,
        "no protocols"
    );
    let (state, _, _, members) = client.describe("no-protocols");
    assert!(
        members.is_empty(),
        "a refused join made members {members:?}"
    );
    assert!(["Dead", "Empty"].contains(&state.as_str()), "state {state}");

    let group = "protocols-group";
    let (member, generation) = join_alone(&mut client, group, "protocols", &[0, 1]);
    let partitions = [("protocols", 0), ("protocols", 1)];
    let before = snapshot(&mut client, group, &partitions);

    let mut other = Client::connect(&broker);
    for (protocol_type, protocols) in [
        ("connect", vec![("range", subscription(&["protocols"]))]),
        (
            "consumer",
            vec![("no-such-assignor", subscription(&["protocols"]))],
        ),
        ("consumer", vec![]),
    ] {
        let answer = other.join(group, "", protocol_type, &protocols);
        assert_eq!(
            answer.error_code,
            INCONSISTENT_GROUP_PROTOCOL,
            "joining a consumer group using range with {protocol_type} {:?}",
            protocols.iter().map(|(name, _)| *name).collect::<Vec<_>>()
        );
    }
    assert_eq!(
        snapshot(&mut client, group, &partitions),
        before,
        "after the bad joins"
    );
    assert_eq!(
        client.heartbeat(group, generation, &member),
        NONE,
        "no rebalance started"
    );
}

#[test]
fn groups_with_members_are_not_deleted_and_empty_ones_are() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    create_topic(&broker, "deleting", 1);
    let mut client = Client::connect(&broker);
    let group = "deleting-group";
    let (member, generation) = join_alone(&mut client, group, "deleting", &[0]);
    let answer = client.commit(group, generation, &member, &[("deleting", 0, 4)]);
    assert_eq!(answer, vec![(("deleting".to_string(), 0), NONE)]);
    let before = snapshot(&mut client, group, &[("deleting", 0)]);

    assert_eq!(client.delete(group), NON_EMPTY_GROUP);
    assert_eq!(
        snapshot(&mut client, group, &[("deleting", 0)]),
        before,
        "after DeleteGroups"
    );
    assert_eq!(client.heartbeat(group, generation, &member), NONE);

    assert_eq!(client.leave(group, &member), NONE);
    let (state, _, _, members) = client.describe(group);
    assert_eq!(
        (state.as_str(), members.len()),
        ("Empty", 0),
        "after LeaveGroup"
    );
    assert_eq!(
        client.committed(group, &[("deleting", 0)]),
        vec![4],
        "offsets outlive members"
    );

    assert_eq!(client.delete(group), NONE);
    assert_eq!(
        client.committed(group, &[("deleting", 0)]),
        vec![-1],
        "deleted with its group"
    );
    assert_eq!(client.describe(group).0, "Dead");
    assert_eq!(client.delete(group), GROUP_ID_NOT_FOUND, "deleted twice");
}

#[test]
fn an_unknown_group_is_described_as_dead() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    let mut client = Client::connect(&broker);
    let (state, protocol_type, protocol, members) = client.describe("never-seen");
    assert_eq!(state, "Dead");
    assert!(members.is_empty() && protocol_type.is_empty() && protocol.is_empty());
    assert!(
        !client.list(&[]).contains_key("never-seen"),
        "describing a group does not make it"
    );
}

#[test]
fn find_coordinator_answers_this_broker() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    let mut client = Client::connect(&broker);
    let (host, port) = broker.kafka_addr.rsplit_once(':').unwrap();
    let port: i32 = port.parse().unwrap();
    // broker_id's default.
    let node_id = 0;

    let version = client.version(ApiKey::FindCoordinator, 3, 3);
    let request = FindCoordinatorRequest::default().with_key(text("some-group"));
    let answer: FindCoordinatorResponse = client.call(ApiKey::FindCoordinator, version, &request);
    assert_eq!(
        answer.error_code, NONE,
        "FindCoordinator v3: {:?}",
        answer.error_message
    );
    assert_eq!(
        (answer.node_id.0, answer.host.as_str(), answer.port),
        (node_id, host, port)
    );

    let version = client.version(ApiKey::FindCoordinator, 4, 6);
    let request = FindCoordinatorRequest::default().with_coordinator_keys(vec![
        text("group-one"),
        text("group-two"),
        text("group-three"),
    ]);
    let answer: FindCoordinatorResponse = client.call(ApiKey::FindCoordinator, version, &request);
    let mut keys: Vec<&str> = answer.coordinators.iter().map(|c| c.key.as_str()).collect();
    keys.sort();
    assert_eq!(keys, ["group-one", "group-three", "group-two"]);
    for coordinator in &answer.coordinators {
        assert_eq!(
            (
                coordinator.error_code,
                coordinator.node_id.0,
                coordinator.host.as_str(),
                coordinator.port
            ),
            (NONE, node_id, host, port),
            "FindCoordinator v{version} for {:?}",
            coordinator.key
        );
    }
}

#[test]
fn offset_fetch_v8_answers_several_groups_and_list_groups_their_states() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    create_topic(&broker, "batched", 3);
    let mut client = Client::connect(&broker);
    let (member, generation) = join_alone(&mut client, "stable-group", "batched", &[0, 1, 2]);
    let answer = client.commit(
        "stable-group",
        generation,
        &member,
        &[("batched", 0, 11), ("batched", 2, 13)],
    );
    assert!(answer.iter().all(|(_, error)| *error == NONE), "{answer:?}");
    let answer = client.commit("empty-group", -1, "", &[("batched", 1, 21)]);
    assert!(answer.iter().all(|(_, error)| *error == NONE), "{answer:?}");

    let version = client.version(ApiKey::OffsetFetch, 8, 8);
    let partitions = [("batched", 0), ("batched", 1), ("batched", 2)];
    let answer = client.fetch_offsets_batched(
        version,
        &["stable-group", "empty-group", "unknown-group"],
        &partitions,
    );
    let expected: BTreeMap<(String, String, i32), i64> = [
        ("stable-group", [11, -1, 13]),
        ("empty-group", [-1, 21, -1]),
        ("unknown-group", [-1, -1, -1]),
    ]
    .iter()
    .flat_map(|(group, offsets)| {
        offsets.iter().enumerate().map(move |(partition, offset)| {
            (
                (group.to_string(), "batched".to_string(), partition as i32),
                *offset,
            )
        })
    })
    .collect();
    assert_eq!(answer, expected, "OffsetFetch v8");

    let listed = client.list(&[]);
    assert_eq!(
        listed.get("stable-group").map(String::as_str),
        Some("Stable"),
        "{listed:?}"
    );
    assert_eq!(
        listed.get("empty-group").map(String::as_str),
        Some("Empty"),
        "{listed:?}"
    );
    assert!(!listed.contains_key("unknown-group"), "{listed:?}");
    let empty = client.list(&["Empty"]);
    assert!(
        empty.contains_key("empty-group") && !empty.contains_key("stable-group"),
        "ListGroups of the Empty state: {empty:?}"
    );
}
