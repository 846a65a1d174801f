//! Black box: the ACL matrix. For each Kafka API, the principal alice asks
//! without the ACL it needs (refused with Kafka's error), with it (served),
//! and after the ACL is deleted (refused again), over raw requests on an
//! authenticated SASL connection, against the built `sluice` binary with
//! `authorizer = "acl"` and the super user admin. Then prefixed ACLs, deny
//! over allow, what listings leave out, authorized operations, and a
//! broker without an authorizer answering SECURITY_DISABLED.

mod common;
mod kafka_raw;

use std::net::TcpStream;

use kafka_protocol::{
    messages::{
        create_acls_request::AclCreation,
        create_partitions_request::CreatePartitionsTopic,
        delete_acls_request::DeleteAclsFilter,
        delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic},
        delete_topics_request::DeleteTopicState,
        describe_configs_request::DescribeConfigsResource,
        describe_producers_request::TopicRequest,
        fetch_request::{FetchPartition, FetchTopic},
        incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig},
        list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
        metadata_request::MetadataRequestTopic,
        offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic},
        offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic},
        offset_fetch_request::OffsetFetchRequestTopic,
        ApiKey, BrokerId, CreateAclsRequest, CreateAclsResponse, CreatePartitionsRequest,
        CreatePartitionsResponse, DeleteAclsRequest, DeleteAclsResponse, DeleteGroupsRequest,
        DeleteGroupsResponse, DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest,
        DeleteTopicsResponse, DescribeAclsRequest, DescribeAclsResponse, DescribeClusterRequest,
        DescribeClusterResponse, DescribeConfigsRequest, DescribeConfigsResponse,
        DescribeGroupsRequest, DescribeGroupsResponse, DescribeLogDirsRequest,
        DescribeLogDirsResponse, DescribeProducersRequest, DescribeProducersResponse,
        DescribeTransactionsRequest, DescribeTransactionsResponse, FetchRequest, FetchResponse,
        FindCoordinatorRequest, FindCoordinatorResponse, GroupId, IncrementalAlterConfigsRequest,
        IncrementalAlterConfigsResponse, InitProducerIdRequest, InitProducerIdResponse,
        JoinGroupRequest, JoinGroupResponse, ListGroupsRequest, ListGroupsResponse,
        ListOffsetsRequest, ListOffsetsResponse, ListPartitionReassignmentsRequest,
        ListPartitionReassignmentsResponse, MetadataRequest, MetadataResponse, OffsetCommitRequest,
        OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest,
        OffsetFetchResponse, ProducerId, TopicName, TransactionalId,
    },
    protocol::StrBytes,
};
use kafka_raw::{call, create_topic, login, produce_one as produce, sasl_broker as broker};

const TOPIC_DENIED: i16 = 29;
const GROUP_DENIED: i16 = 30;
const CLUSTER_DENIED: i16 = 31;
const TRANSACTIONAL_ID_DENIED: i16 = 53;
const SECURITY_DISABLED: i16 = 54;

// Kafka's codes in ACL bindings.
const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const CLUSTER: i8 = 4;
const TRANSACTIONAL_ID: i8 = 5;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const READ: i8 = 3;
const WRITE: i8 = 4;
const CREATE: i8 = 5;
const DELETE: i8 = 6;
const ALTER: i8 = 7;
const DESCRIBE: i8 = 8;
const CLUSTER_ACTION: i8 = 9;
const DESCRIBE_CONFIGS: i8 = 10;
const ALTER_CONFIGS: i8 = 11;
const IDEMPOTENT_WRITE: i8 = 12;
const ALL: i8 = 2;
const DENY: i8 = 2;
const ALLOW: i8 = 3;

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

fn topic(name: &str) -> TopicName {
    TopicName(text(name))
}

fn group(name: &str) -> GroupId {
    GroupId(text(name))
}

/// One binding for `principal`: (resource type, name, pattern, operation,
/// permission).
type Binding = (i8, &'static str, i8, i8, i8);

fn create_acls(admin: &mut TcpStream, principal: &str, bindings: &[Binding]) -> Vec<i16> {
    let creations = bindings
        .iter()
        .map(|(kind, name, pattern, operation, permission)| {
            AclCreation::default()
                .with_resource_type(*kind)
                .with_resource_name(text(name))
                .with_resource_pattern_type(*pattern)
                .with_principal(text(principal))
                .with_host(text("*"))
                .with_operation(*operation)
                .with_permission_type(*permission)
        })
        .collect();
    let answer: CreateAclsResponse = call(
        admin,
        ApiKey::CreateAcls,
        3,
        &CreateAclsRequest::default().with_creations(creations),
    );
    answer
        .results
        .iter()
        .map(|result| result.error_code)
        .collect()
}

/// Deletes every binding of `principal`: how many there were.
fn delete_acls(admin: &mut TcpStream, principal: &str) -> usize {
    let filter = DeleteAclsFilter::default()
        .with_resource_type_filter(1)
        .with_resource_name_filter(None)
        .with_pattern_type_filter(1)
        .with_principal_filter(Some(text(principal)))
        .with_host_filter(None)
        .with_operation(1)
        .with_permission_type(1);
    let answer: DeleteAclsResponse = call(
        admin,
        ApiKey::DeleteAcls,
        3,
        &DeleteAclsRequest::default().with_filters(vec![filter]),
    );
    assert_eq!(answer.filter_results[0].error_code, 0);
    answer.filter_results[0].matching_acls.len()
}

fn fetch(stream: &mut TcpStream, name: &str) -> i16 {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic(name))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let answer: FetchResponse = call(stream, ApiKey::Fetch, 12, &request);
    answer.responses[0].partitions[0].error_code
}

fn list_offsets(stream: &mut TcpStream, name: &str) -> i16 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic(name))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-1)])]);
    let answer: ListOffsetsResponse = call(stream, ApiKey::ListOffsets, 7, &request);
    answer.topics[0].partitions[0].error_code
}

fn metadata(stream: &mut TcpStream, names: Option<&[&str]>) -> MetadataResponse {
    let request = MetadataRequest::default()
        .with_topics(names.map(|names| {
            names
                .iter()
                .map(|name| MetadataRequestTopic::default().with_name(Some(topic(name))))
                .collect()
        }))
        .with_allow_auto_topic_creation(false)
        .with_include_topic_authorized_operations(true);
    call(stream, ApiKey::Metadata, 12, &request)
}

fn metadata_code(stream: &mut TcpStream, name: &str) -> i16 {
    metadata(stream, Some(&[name])).topics[0].error_code
}

fn offset_commit(stream: &mut TcpStream, group_id: &str, name: &str) -> i16 {
    let request = OffsetCommitRequest::default()
        .with_group_id(group(group_id))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(text(""))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic(name))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(0)])]);
    let answer: OffsetCommitResponse = call(stream, ApiKey::OffsetCommit, 8, &request);
    answer.topics[0].partitions[0].error_code
}

fn offset_fetch(stream: &mut TcpStream, group_id: &str, name: &str) -> i16 {
    let request = OffsetFetchRequest::default()
        .with_group_id(group(group_id))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(topic(name))
            .with_partition_indexes(vec![0])]));
    let answer: OffsetFetchResponse = call(stream, ApiKey::OffsetFetch, 7, &request);
    if answer.error_code != 0 {
        return answer.error_code;
    }
    answer.topics[0].partitions[0].error_code
}

fn find_coordinator(stream: &mut TcpStream, key: &str, key_type: i8) -> i16 {
    let request = FindCoordinatorRequest::default()
        .with_key(text(key))
        .with_key_type(key_type);
    let answer: FindCoordinatorResponse = call(stream, ApiKey::FindCoordinator, 3, &request);
    answer.error_code
}

fn join_group(stream: &mut TcpStream, group_id: &str) -> i16 {
    let request = JoinGroupRequest::default()
        .with_group_id(group(group_id))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(text(""))
        .with_protocol_type(text("consumer"))
        .with_protocols(vec![
            kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol::default()
                .with_name(text("range")),
        ]);
    let answer: JoinGroupResponse = call(stream, ApiKey::JoinGroup, 9, &request);
    answer.error_code
}

fn describe_group(stream: &mut TcpStream, group_id: &str) -> i16 {
    let request = DescribeGroupsRequest::default().with_groups(vec![group(group_id)]);
    let answer: DescribeGroupsResponse = call(stream, ApiKey::DescribeGroups, 5, &request);
    answer.groups[0].error_code
}

fn delete_group(stream: &mut TcpStream, group_id: &str) -> i16 {
    let request = DeleteGroupsRequest::default().with_groups_names(vec![group(group_id)]);
    let answer: DeleteGroupsResponse = call(stream, ApiKey::DeleteGroups, 2, &request);
    answer.results[0].error_code
}

fn offset_delete(stream: &mut TcpStream, group_id: &str, name: &str) -> i16 {
    let request = OffsetDeleteRequest::default()
        .with_group_id(group(group_id))
        .with_topics(vec![OffsetDeleteRequestTopic::default()
            .with_name(topic(name))
            .with_partitions(vec![
                OffsetDeleteRequestPartition::default().with_partition_index(0)
            ])]);
    let answer: OffsetDeleteResponse = call(stream, ApiKey::OffsetDelete, 0, &request);
    answer.error_code
}

fn delete_topic(stream: &mut TcpStream, name: &str) -> i16 {
    let request = DeleteTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![
            DeleteTopicState::default().with_name(Some(topic(name)))
        ]);
    let answer: DeleteTopicsResponse = call(stream, ApiKey::DeleteTopics, 6, &request);
    answer.responses[0].error_code
}

fn create_partitions(stream: &mut TcpStream, name: &str) -> i16 {
    let request = CreatePartitionsRequest::default()
        .with_timeout_ms(10_000)
        .with_validate_only(true)
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(topic(name))
            .with_count(2)
            .with_assignments(None)]);
    let answer: CreatePartitionsResponse = call(stream, ApiKey::CreatePartitions, 3, &request);
    answer.results[0].error_code
}

fn delete_records(stream: &mut TcpStream, name: &str) -> i16 {
    let request = DeleteRecordsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(topic(name))
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(0)
                .with_offset(0)])]);
    let answer: DeleteRecordsResponse = call(stream, ApiKey::DeleteRecords, 2, &request);
    answer.topics[0].partitions[0].error_code
}

fn describe_configs(stream: &mut TcpStream, resource_type: i8, name: &str) -> i16 {
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(text(name))]);
    let answer: DescribeConfigsResponse = call(stream, ApiKey::DescribeConfigs, 4, &request);
    answer.results[0].error_code
}

fn alter_configs(stream: &mut TcpStream, name: &str) -> i16 {
    let request = IncrementalAlterConfigsRequest::default()
        .with_validate_only(true)
        .with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(text(name))
            .with_configs(vec![AlterableConfig::default()
                .with_name(text("retention.ms"))
                .with_config_operation(0)
                .with_value(Some(text("60000")))])]);
    let answer: IncrementalAlterConfigsResponse =
        call(stream, ApiKey::IncrementalAlterConfigs, 1, &request);
    answer.responses[0].error_code
}

fn init_producer_id(stream: &mut TcpStream, transactional_id: Option<&str>) -> i16 {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(transactional_id.map(|id| TransactionalId(text(id))))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    kafka_raw::until_settled(
        || -> InitProducerIdResponse { call(stream, ApiKey::InitProducerId, 4, &request) },
        |answer| answer.error_code,
    )
    .error_code
}

fn describe_transaction(stream: &mut TcpStream, transactional_id: &str) -> i16 {
    let request = DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![TransactionalId(text(transactional_id))]);
    let answer: DescribeTransactionsResponse =
        call(stream, ApiKey::DescribeTransactions, 0, &request);
    answer.transaction_states[0].error_code
}

fn describe_producers(stream: &mut TcpStream, name: &str) -> i16 {
    let request = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
        .with_name(topic(name))
        .with_partition_indexes(vec![0])]);
    let answer: DescribeProducersResponse = call(stream, ApiKey::DescribeProducers, 0, &request);
    answer.topics[0].partitions[0].error_code
}

fn describe_log_dirs(stream: &mut TcpStream) -> i16 {
    let answer: DescribeLogDirsResponse = call(
        stream,
        ApiKey::DescribeLogDirs,
        4,
        &DescribeLogDirsRequest::default(),
    );
    answer.error_code
}

fn list_reassignments(stream: &mut TcpStream) -> i16 {
    let answer: ListPartitionReassignmentsResponse = call(
        stream,
        ApiKey::ListPartitionReassignments,
        0,
        &ListPartitionReassignmentsRequest::default().with_timeout_ms(10_000),
    );
    answer.error_code
}

fn describe_acls(stream: &mut TcpStream) -> DescribeAclsResponse {
    let request = DescribeAclsRequest::default()
        .with_resource_type_filter(1)
        .with_resource_name_filter(None)
        .with_pattern_type_filter(1)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(1)
        .with_permission_type(1);
    call(stream, ApiKey::DescribeAcls, 3, &request)
}

fn end_txn(stream: &mut TcpStream) -> i16 {
    use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};
    let request = EndTxnRequest::default()
        .with_transactional_id(TransactionalId(text("tx")))
        .with_producer_id(ProducerId(5000))
        .with_producer_epoch(0);
    let answer: EndTxnResponse = call(stream, ApiKey::EndTxn, 3, &request);
    answer.error_code
}

fn add_offsets_to_txn(stream: &mut TcpStream) -> i16 {
    use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
    let request = AddOffsetsToTxnRequest::default()
        .with_transactional_id(TransactionalId(text("tx")))
        .with_producer_id(ProducerId(5000))
        .with_group_id(group("g"));
    let answer: AddOffsetsToTxnResponse = call(stream, ApiKey::AddOffsetsToTxn, 3, &request);
    answer.error_code
}

fn add_partitions_to_txn(stream: &mut TcpStream) -> i16 {
    use kafka_protocol::messages::{
        add_partitions_to_txn_request::AddPartitionsToTxnTopic, AddPartitionsToTxnRequest,
        AddPartitionsToTxnResponse,
    };
    let request = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(text("tx")))
        .with_v3_and_below_producer_id(ProducerId(5000))
        .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
            .with_name(topic("t"))
            .with_partitions(vec![0])]);
    let answer: AddPartitionsToTxnResponse = call(stream, ApiKey::AddPartitionsToTxn, 3, &request);
    answer.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
}

fn txn_offset_commit(stream: &mut TcpStream) -> i16 {
    use kafka_protocol::messages::{
        txn_offset_commit_request::{TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic},
        TxnOffsetCommitRequest, TxnOffsetCommitResponse,
    };
    let request = TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(text("tx")))
        .with_group_id(group("g"))
        .with_producer_id(ProducerId(5000))
        .with_topics(vec![TxnOffsetCommitRequestTopic::default()
            .with_name(topic("t"))
            .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(0)])]);
    let answer: TxnOffsetCommitResponse = call(stream, ApiKey::TxnOffsetCommit, 3, &request);
    answer.topics[0].partitions[0].error_code
}

fn heartbeat(stream: &mut TcpStream) -> i16 {
    use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
    let request = HeartbeatRequest::default()
        .with_group_id(group("g"))
        .with_member_id(text("nobody"));
    let answer: HeartbeatResponse = call(stream, ApiKey::Heartbeat, 4, &request);
    answer.error_code
}

fn consumer_group_heartbeat(stream: &mut TcpStream) -> i16 {
    use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
    let request = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(group("g848"))
        .with_member_id(text("m-1"))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(10_000)
        .with_subscribed_topic_names(Some(vec![topic("t")]))
        .with_topic_partitions(Some(vec![]));
    let answer: ConsumerGroupHeartbeatResponse =
        call(stream, ApiKey::ConsumerGroupHeartbeat, 0, &request);
    answer.error_code
}

fn offset_for_leader_epoch(stream: &mut TcpStream) -> i16 {
    use kafka_protocol::messages::{
        offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic},
        OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
    };
    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![OffsetForLeaderTopic::default()
            .with_topic(topic("t"))
            .with_partitions(vec![OffsetForLeaderPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(-1)
                .with_leader_epoch(0)])]);
    let answer: OffsetForLeaderEpochResponse =
        call(stream, ApiKey::OffsetForLeaderEpoch, 4, &request);
    answer.topics[0].partitions[0].error_code
}

fn describe_topic_partitions(stream: &mut TcpStream) -> i16 {
    use kafka_protocol::messages::{
        describe_topic_partitions_request::TopicRequest, DescribeTopicPartitionsRequest,
        DescribeTopicPartitionsResponse,
    };
    let request = DescribeTopicPartitionsRequest::default()
        .with_topics(vec![TopicRequest::default().with_name(topic("t"))])
        .with_response_partition_limit(100);
    let answer: DescribeTopicPartitionsResponse =
        call(stream, ApiKey::DescribeTopicPartitions, 0, &request);
    answer.topics[0].error_code
}

fn describe_quorum(stream: &mut TcpStream) -> i16 {
    use kafka_protocol::messages::{DescribeQuorumRequest, DescribeQuorumResponse};
    let answer: DescribeQuorumResponse = call(
        stream,
        ApiKey::DescribeQuorum,
        1,
        &DescribeQuorumRequest::default(),
    );
    answer.error_code
}

fn elect_leaders(stream: &mut TcpStream) -> i16 {
    use kafka_protocol::messages::{
        elect_leaders_request::TopicPartitions, ElectLeadersRequest, ElectLeadersResponse,
    };
    let request = ElectLeadersRequest::default()
        .with_election_type(0)
        .with_timeout_ms(10_000)
        .with_topic_partitions(Some(vec![TopicPartitions::default()
            .with_topic(topic("t"))
            .with_partitions(vec![0])]));
    let answer: ElectLeadersResponse = call(stream, ApiKey::ElectLeaders, 2, &request);
    answer.error_code
}

fn alter_configs_v2(stream: &mut TcpStream) -> i16 {
    use kafka_protocol::messages::{
        alter_configs_request::{AlterConfigsResource, AlterableConfig},
        AlterConfigsRequest, AlterConfigsResponse,
    };
    let request = AlterConfigsRequest::default()
        .with_validate_only(true)
        .with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(text("t"))
            .with_configs(vec![AlterableConfig::default()
                .with_name(text("retention.ms"))
                .with_value(Some(text("60000")))])]);
    let answer: AlterConfigsResponse = call(stream, ApiKey::AlterConfigs, 2, &request);
    answer.responses[0].error_code
}

fn alter_reassignments(stream: &mut TcpStream) -> i16 {
    use kafka_protocol::messages::{
        AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
    };
    let answer: AlterPartitionReassignmentsResponse = call(
        stream,
        ApiKey::AlterPartitionReassignments,
        0,
        &AlterPartitionReassignmentsRequest::default().with_timeout_ms(10_000),
    );
    answer.error_code
}

fn alter_replica_log_dirs(stream: &mut TcpStream) -> i16 {
    use kafka_protocol::messages::{
        alter_replica_log_dirs_request::{AlterReplicaLogDir, AlterReplicaLogDirTopic},
        AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse,
    };
    let request =
        AlterReplicaLogDirsRequest::default().with_dirs(vec![AlterReplicaLogDir::default()
            .with_path(text("/nowhere"))
            .with_topics(vec![AlterReplicaLogDirTopic::default()
                .with_name(topic("t"))
                .with_partitions(vec![0])])]);
    let answer: AlterReplicaLogDirsResponse =
        call(stream, ApiKey::AlterReplicaLogDirs, 1, &request);
    answer.results[0].partitions[0].error_code
}

fn write_txn_markers(stream: &mut TcpStream) -> i16 {
    use kafka_protocol::messages::{
        write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic},
        WriteTxnMarkersRequest, WriteTxnMarkersResponse,
    };
    let request =
        WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
            .with_producer_id(ProducerId(5000))
            .with_topics(vec![WritableTxnMarkerTopic::default()
                .with_name(topic("t"))
                .with_partition_indexes(vec![0])])]);
    let answer: WriteTxnMarkersResponse = call(stream, ApiKey::WriteTxnMarkers, 1, &request);
    answer.markers[0].topics[0].partitions[0].error_code
}

fn sync_group(stream: &mut TcpStream) -> i16 {
    use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
    let request = SyncGroupRequest::default()
        .with_group_id(group("g"))
        .with_member_id(text("nobody"))
        .with_protocol_type(Some(text("consumer")))
        .with_protocol_name(Some(text("range")));
    let answer: SyncGroupResponse = call(stream, ApiKey::SyncGroup, 5, &request);
    answer.error_code
}

fn leave_group(stream: &mut TcpStream) -> i16 {
    use kafka_protocol::messages::{
        leave_group_request::MemberIdentity, LeaveGroupRequest, LeaveGroupResponse,
    };
    let request = LeaveGroupRequest::default()
        .with_group_id(group("g"))
        .with_members(vec![
            MemberIdentity::default().with_member_id(text("nobody"))
        ]);
    let answer: LeaveGroupResponse = call(stream, ApiKey::LeaveGroup, 4, &request);
    answer.error_code
}

fn consumer_group_describe(stream: &mut TcpStream) -> i16 {
    use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse};
    let request = ConsumerGroupDescribeRequest::default().with_group_ids(vec![group("g")]);
    let answer: ConsumerGroupDescribeResponse =
        call(stream, ApiKey::ConsumerGroupDescribe, 0, &request);
    answer.groups[0].error_code
}

/// A DeleteAcls of a principal that has none (so that what the row grants
/// stays).
fn delete_acls_as(stream: &mut TcpStream) -> i16 {
    let filter = DeleteAclsFilter::default()
        .with_resource_type_filter(1)
        .with_resource_name_filter(None)
        .with_pattern_type_filter(1)
        .with_principal_filter(Some(text("User:nobody")))
        .with_host_filter(None)
        .with_operation(1)
        .with_permission_type(1);
    let answer: DeleteAclsResponse = call(
        stream,
        ApiKey::DeleteAcls,
        3,
        &DeleteAclsRequest::default().with_filters(vec![filter]),
    );
    answer.filter_results[0].error_code
}

fn describe_quotas(stream: &mut TcpStream) -> i16 {
    use kafka_protocol::messages::{DescribeClientQuotasRequest, DescribeClientQuotasResponse};
    let answer: DescribeClientQuotasResponse = call(
        stream,
        ApiKey::DescribeClientQuotas,
        1,
        &DescribeClientQuotasRequest::default(),
    );
    answer.error_code
}

fn alter_quotas(stream: &mut TcpStream) -> i16 {
    use kafka_protocol::messages::{
        alter_client_quotas_request::{EntityData, EntryData, OpData},
        AlterClientQuotasRequest, AlterClientQuotasResponse,
    };
    let request = AlterClientQuotasRequest::default()
        .with_validate_only(true)
        .with_entries(vec![EntryData::default()
            .with_entity(vec![EntityData::default()
                .with_entity_type(text("client-id"))
                .with_entity_name(Some(text("app")))])
            .with_ops(vec![OpData::default()
                .with_key(text("producer_byte_rate"))
                .with_value(1000.0)])]);
    let answer: AlterClientQuotasResponse = call(stream, ApiKey::AlterClientQuotas, 1, &request);
    answer.entries[0].error_code
}

fn describe_scram(stream: &mut TcpStream) -> i16 {
    use kafka_protocol::messages::{
        DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
    };
    let answer: DescribeUserScramCredentialsResponse = call(
        stream,
        ApiKey::DescribeUserScramCredentials,
        0,
        &DescribeUserScramCredentialsRequest::default().with_users(None),
    );
    answer.error_code
}

fn alter_scram(stream: &mut TcpStream) -> i16 {
    use kafka_protocol::messages::{
        alter_user_scram_credentials_request::ScramCredentialDeletion,
        AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    };
    let request = AlterUserScramCredentialsRequest::default().with_deletions(vec![
        ScramCredentialDeletion::default()
            .with_name(text("nobody"))
            .with_mechanism(2),
    ]);
    let answer: AlterUserScramCredentialsResponse =
        call(stream, ApiKey::AlterUserScramCredentials, 0, &request);
    answer.results[0].error_code
}

fn create_acl_as(stream: &mut TcpStream) -> i16 {
    create_acls(stream, "User:alice", &[(TOPIC, "t", LITERAL, READ, ALLOW)])[0]
}

/// One row of the matrix: what alice asks, the error when refused, and
/// the bindings that let her.
struct Row {
    api: &'static str,
    ask: fn(&mut TcpStream) -> i16,
    refused: i16,
    /// Granted before she asks: what the row does not test.
    given: &'static [Binding],
    grants: &'static [Binding],
}

/// The rows, one or more per API. The topic `t` exists with a record,
/// topics `doomed-*` wait to be deleted, the group `g` has a committed
/// offset.
fn matrix() -> Vec<Row> {
    vec![
        Row {
            api: "Produce",
            ask: |s| produce(s, "t"),
            refused: TOPIC_DENIED,
            given: &[],
            grants: &[(TOPIC, "t", LITERAL, WRITE, ALLOW)],
        },
        Row {
            api: "Fetch",
            ask: |s| fetch(s, "t"),
            refused: TOPIC_DENIED,
            given: &[],
            grants: &[(TOPIC, "t", LITERAL, READ, ALLOW)],
        },
        Row {
            api: "ListOffsets",
            ask: |s| list_offsets(s, "t"),
            refused: TOPIC_DENIED,
            given: &[],
            grants: &[(TOPIC, "t", LITERAL, DESCRIBE, ALLOW)],
        },
        Row {
            api: "Metadata (DESCRIBE implied by READ)",
            ask: |s| metadata_code(s, "t"),
            refused: TOPIC_DENIED,
            given: &[],
            grants: &[(TOPIC, "t", LITERAL, READ, ALLOW)],
        },
        Row {
            api: "OffsetCommit (the group)",
            ask: |s| offset_commit(s, "g", "t"),
            refused: GROUP_DENIED,
            given: &[(TOPIC, "t", LITERAL, READ, ALLOW)],
            grants: &[(GROUP, "g", LITERAL, READ, ALLOW)],
        },
        Row {
            api: "OffsetCommit (the topic)",
            ask: |s| offset_commit(s, "g", "t"),
            refused: TOPIC_DENIED,
            given: &[(GROUP, "g", LITERAL, READ, ALLOW)],
            grants: &[(TOPIC, "t", LITERAL, READ, ALLOW)],
        },
        Row {
            api: "OffsetFetch",
            ask: |s| offset_fetch(s, "g", "t"),
            refused: GROUP_DENIED,
            given: &[],
            grants: &[
                (GROUP, "g", LITERAL, DESCRIBE, ALLOW),
                (TOPIC, "t", LITERAL, DESCRIBE, ALLOW),
            ],
        },
        Row {
            api: "FindCoordinator (group)",
            ask: |s| find_coordinator(s, "g", 0),
            refused: GROUP_DENIED,
            given: &[],
            grants: &[(GROUP, "g", LITERAL, DESCRIBE, ALLOW)],
        },
        Row {
            api: "FindCoordinator (transaction)",
            ask: |s| find_coordinator(s, "tx", 1),
            refused: TRANSACTIONAL_ID_DENIED,
            given: &[],
            grants: &[(TRANSACTIONAL_ID, "tx", LITERAL, DESCRIBE, ALLOW)],
        },
        Row {
            api: "JoinGroup",
            ask: |s| join_group(s, "g2"),
            refused: GROUP_DENIED,
            given: &[],
            grants: &[(GROUP, "g2", LITERAL, READ, ALLOW)],
        },
        Row {
            api: "DescribeGroups",
            ask: |s| describe_group(s, "g"),
            refused: GROUP_DENIED,
            given: &[],
            grants: &[(GROUP, "g", LITERAL, DESCRIBE, ALLOW)],
        },
        Row {
            api: "OffsetDelete",
            ask: |s| offset_delete(s, "g", "t"),
            refused: GROUP_DENIED,
            given: &[],
            grants: &[
                (GROUP, "g", LITERAL, DELETE, ALLOW),
                (TOPIC, "t", LITERAL, READ, ALLOW),
            ],
        },
        Row {
            api: "DeleteGroups",
            ask: |s| delete_group(s, "g"),
            refused: GROUP_DENIED,
            given: &[],
            grants: &[(GROUP, "g", LITERAL, DELETE, ALLOW)],
        },
        Row {
            api: "CreateTopics (CREATE on the cluster)",
            ask: |s| create_topic(s, "made-1"),
            refused: TOPIC_DENIED,
            given: &[],
            grants: &[(CLUSTER, "kafka-cluster", LITERAL, CREATE, ALLOW)],
        },
        Row {
            api: "CreateTopics (CREATE on a prefix)",
            ask: |s| create_topic(s, "made-2"),
            refused: TOPIC_DENIED,
            given: &[],
            grants: &[(TOPIC, "made-", PREFIXED, CREATE, ALLOW)],
        },
        Row {
            api: "DeleteTopics",
            ask: |s| delete_topic(s, "doomed-1"),
            refused: TOPIC_DENIED,
            given: &[],
            grants: &[(TOPIC, "doomed-1", LITERAL, DELETE, ALLOW)],
        },
        Row {
            api: "CreatePartitions",
            ask: |s| create_partitions(s, "t"),
            refused: TOPIC_DENIED,
            given: &[],
            grants: &[(TOPIC, "t", LITERAL, ALTER, ALLOW)],
        },
        Row {
            api: "DeleteRecords",
            ask: |s| delete_records(s, "t"),
            refused: TOPIC_DENIED,
            given: &[],
            grants: &[(TOPIC, "t", LITERAL, DELETE, ALLOW)],
        },
        Row {
            api: "DescribeConfigs (topic)",
            ask: |s| describe_configs(s, 2, "t"),
            refused: TOPIC_DENIED,
            given: &[],
            grants: &[(TOPIC, "t", LITERAL, DESCRIBE_CONFIGS, ALLOW)],
        },
        Row {
            api: "DescribeConfigs (broker; implied by ALTER_CONFIGS)",
            ask: |s| describe_configs(s, 4, "0"),
            refused: CLUSTER_DENIED,
            given: &[],
            grants: &[(CLUSTER, "kafka-cluster", LITERAL, ALTER_CONFIGS, ALLOW)],
        },
        Row {
            api: "IncrementalAlterConfigs",
            ask: |s| alter_configs(s, "t"),
            refused: TOPIC_DENIED,
            given: &[],
            grants: &[(TOPIC, "t", LITERAL, ALTER_CONFIGS, ALLOW)],
        },
        Row {
            api: "InitProducerId (idempotent: IDEMPOTENT_WRITE)",
            ask: |s| init_producer_id(s, None),
            refused: CLUSTER_DENIED,
            given: &[],
            grants: &[(CLUSTER, "kafka-cluster", LITERAL, IDEMPOTENT_WRITE, ALLOW)],
        },
        Row {
            api: "InitProducerId (idempotent: WRITE on some topic)",
            ask: |s| init_producer_id(s, None),
            refused: CLUSTER_DENIED,
            given: &[],
            grants: &[(TOPIC, "any-", PREFIXED, WRITE, ALLOW)],
        },
        Row {
            api: "InitProducerId (transactional)",
            ask: |s| init_producer_id(s, Some("tx")),
            refused: TRANSACTIONAL_ID_DENIED,
            given: &[],
            grants: &[(TRANSACTIONAL_ID, "tx", LITERAL, WRITE, ALLOW)],
        },
        Row {
            api: "DescribeTransactions",
            ask: |s| describe_transaction(s, "tx"),
            refused: TRANSACTIONAL_ID_DENIED,
            given: &[],
            grants: &[(TRANSACTIONAL_ID, "tx", LITERAL, DESCRIBE, ALLOW)],
        },
        Row {
            api: "DescribeProducers",
            ask: |s| describe_producers(s, "t"),
            refused: TOPIC_DENIED,
            given: &[],
            grants: &[(TOPIC, "t", LITERAL, READ, ALLOW)],
        },
        Row {
            api: "DescribeLogDirs",
            ask: describe_log_dirs,
            refused: CLUSTER_DENIED,
            given: &[],
            grants: &[(CLUSTER, "kafka-cluster", LITERAL, DESCRIBE, ALLOW)],
        },
        Row {
            api: "ListPartitionReassignments",
            ask: list_reassignments,
            refused: CLUSTER_DENIED,
            given: &[],
            grants: &[(CLUSTER, "kafka-cluster", LITERAL, DESCRIBE, ALLOW)],
        },
        Row {
            api: "DescribeAcls",
            ask: |s| describe_acls(s).error_code,
            refused: CLUSTER_DENIED,
            given: &[],
            grants: &[(CLUSTER, "kafka-cluster", LITERAL, DESCRIBE, ALLOW)],
        },
        Row {
            api: "EndTxn",
            ask: end_txn,
            refused: TRANSACTIONAL_ID_DENIED,
            given: &[],
            grants: &[(TRANSACTIONAL_ID, "tx", LITERAL, WRITE, ALLOW)],
        },
        Row {
            api: "AddOffsetsToTxn (the transactional id)",
            ask: add_offsets_to_txn,
            refused: TRANSACTIONAL_ID_DENIED,
            given: &[(GROUP, "g", LITERAL, READ, ALLOW)],
            grants: &[(TRANSACTIONAL_ID, "tx", LITERAL, WRITE, ALLOW)],
        },
        Row {
            api: "AddOffsetsToTxn (the group)",
            ask: add_offsets_to_txn,
            refused: GROUP_DENIED,
            given: &[(TRANSACTIONAL_ID, "tx", LITERAL, WRITE, ALLOW)],
            grants: &[(GROUP, "g", LITERAL, READ, ALLOW)],
        },
        Row {
            api: "AddPartitionsToTxn (the topic)",
            ask: add_partitions_to_txn,
            refused: TOPIC_DENIED,
            given: &[(TRANSACTIONAL_ID, "tx", LITERAL, WRITE, ALLOW)],
            grants: &[(TOPIC, "t", LITERAL, WRITE, ALLOW)],
        },
        Row {
            api: "TxnOffsetCommit",
            ask: txn_offset_commit,
            refused: TRANSACTIONAL_ID_DENIED,
            given: &[
                (GROUP, "g", LITERAL, READ, ALLOW),
                (TOPIC, "t", LITERAL, READ, ALLOW),
            ],
            grants: &[(TRANSACTIONAL_ID, "tx", LITERAL, WRITE, ALLOW)],
        },
        Row {
            api: "Heartbeat",
            ask: heartbeat,
            refused: GROUP_DENIED,
            given: &[],
            grants: &[(GROUP, "g", LITERAL, READ, ALLOW)],
        },
        Row {
            api: "ConsumerGroupHeartbeat (the group)",
            ask: consumer_group_heartbeat,
            refused: GROUP_DENIED,
            given: &[(TOPIC, "t", LITERAL, DESCRIBE, ALLOW)],
            grants: &[(GROUP, "g848", LITERAL, READ, ALLOW)],
        },
        Row {
            api: "ConsumerGroupHeartbeat (a subscribed topic)",
            ask: consumer_group_heartbeat,
            refused: TOPIC_DENIED,
            given: &[(GROUP, "g848", LITERAL, READ, ALLOW)],
            grants: &[(TOPIC, "t", LITERAL, DESCRIBE, ALLOW)],
        },
        Row {
            api: "OffsetForLeaderEpoch",
            ask: offset_for_leader_epoch,
            refused: TOPIC_DENIED,
            given: &[],
            grants: &[(TOPIC, "t", LITERAL, DESCRIBE, ALLOW)],
        },
        Row {
            api: "DescribeTopicPartitions",
            ask: describe_topic_partitions,
            refused: TOPIC_DENIED,
            given: &[],
            grants: &[(TOPIC, "t", LITERAL, DESCRIBE, ALLOW)],
        },
        Row {
            api: "DescribeQuorum",
            ask: describe_quorum,
            refused: CLUSTER_DENIED,
            given: &[],
            grants: &[(CLUSTER, "kafka-cluster", LITERAL, DESCRIBE, ALLOW)],
        },
        Row {
            api: "ElectLeaders",
            ask: elect_leaders,
            refused: CLUSTER_DENIED,
            given: &[],
            grants: &[(CLUSTER, "kafka-cluster", LITERAL, ALTER, ALLOW)],
        },
        Row {
            api: "AlterConfigs",
            ask: alter_configs_v2,
            refused: TOPIC_DENIED,
            given: &[],
            grants: &[(TOPIC, "t", LITERAL, ALTER_CONFIGS, ALLOW)],
        },
        Row {
            api: "AlterPartitionReassignments",
            ask: alter_reassignments,
            refused: CLUSTER_DENIED,
            given: &[],
            grants: &[(CLUSTER, "kafka-cluster", LITERAL, ALTER, ALLOW)],
        },
        Row {
            api: "AlterReplicaLogDirs",
            ask: alter_replica_log_dirs,
            refused: CLUSTER_DENIED,
            given: &[],
            grants: &[(CLUSTER, "kafka-cluster", LITERAL, ALTER, ALLOW)],
        },
        Row {
            api: "WriteTxnMarkers",
            ask: write_txn_markers,
            refused: CLUSTER_DENIED,
            given: &[],
            grants: &[(CLUSTER, "kafka-cluster", LITERAL, CLUSTER_ACTION, ALLOW)],
        },
        Row {
            api: "SyncGroup",
            ask: sync_group,
            refused: GROUP_DENIED,
            given: &[],
            grants: &[(GROUP, "g", LITERAL, READ, ALLOW)],
        },
        Row {
            api: "LeaveGroup",
            ask: leave_group,
            refused: GROUP_DENIED,
            given: &[],
            grants: &[(GROUP, "g", LITERAL, READ, ALLOW)],
        },
        Row {
            api: "ConsumerGroupDescribe",
            ask: consumer_group_describe,
            refused: GROUP_DENIED,
            given: &[],
            grants: &[(GROUP, "g", LITERAL, DESCRIBE, ALLOW)],
        },
        Row {
            api: "DeleteAcls",
            ask: delete_acls_as,
            refused: CLUSTER_DENIED,
            given: &[],
            grants: &[(CLUSTER, "kafka-cluster", LITERAL, ALTER, ALLOW)],
        },
        Row {
            api: "DescribeClientQuotas",
            ask: describe_quotas,
            refused: CLUSTER_DENIED,
            given: &[],
            grants: &[(CLUSTER, "kafka-cluster", LITERAL, DESCRIBE_CONFIGS, ALLOW)],
        },
        Row {
            api: "AlterClientQuotas",
            ask: alter_quotas,
            refused: CLUSTER_DENIED,
            given: &[],
            grants: &[(CLUSTER, "kafka-cluster", LITERAL, ALTER_CONFIGS, ALLOW)],
        },
        Row {
            api: "DescribeUserScramCredentials",
            ask: describe_scram,
            refused: CLUSTER_DENIED,
            given: &[],
            grants: &[(CLUSTER, "kafka-cluster", LITERAL, DESCRIBE, ALLOW)],
        },
        Row {
            api: "AlterUserScramCredentials",
            ask: alter_scram,
            refused: CLUSTER_DENIED,
            given: &[],
            grants: &[(CLUSTER, "kafka-cluster", LITERAL, ALTER, ALLOW)],
        },
        Row {
            api: "CreateAcls",
            ask: create_acl_as,
            refused: CLUSTER_DENIED,
            given: &[],
            grants: &[(CLUSTER, "kafka-cluster", LITERAL, ALTER, ALLOW)],
        },
    ]
}

#[test]
fn every_api_checks_what_kafka_checks() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(
        dir.path(),
        &[
            ("SLUICE_AUTHORIZER", "acl"),
            ("SLUICE_SUPER_USERS", "User:admin"),
        ],
    );
    let mut admin = login(&broker, "admin");
    for name in ["t", "doomed-1"] {
        assert_eq!(create_topic(&mut admin, name), 0, "{name}");
    }
    assert_eq!(produce(&mut admin, "t"), 0);
    assert_eq!(offset_commit(&mut admin, "g", "t"), 0);
    let mut alice = login(&broker, "alice");
    for row in matrix() {
        if !row.given.is_empty() {
            let codes = create_acls(&mut admin, "User:alice", row.given);
            assert!(codes.iter().all(|code| *code == 0), "{}: given", row.api);
        }
        let refused = (row.ask)(&mut alice);
        assert_eq!(refused, row.refused, "{}: without the ACL", row.api);
        assert!(
            create_acls(&mut admin, "User:alice", row.grants)
                .iter()
                .all(|code| *code == 0),
            "{}: the grants",
            row.api
        );
        let served = (row.ask)(&mut alice);
        assert!(
            ![
                TOPIC_DENIED,
                GROUP_DENIED,
                CLUSTER_DENIED,
                TRANSACTIONAL_ID_DENIED
            ]
            .contains(&served),
            "{}: with the ACL, answered {served}",
            row.api
        );
        assert_eq!(
            delete_acls(&mut admin, "User:alice"),
            row.given.len() + row.grants.len() + usize::from(row.api == "CreateAcls"),
            "{}: the grants deleted",
            row.api
        );
        if row.given.is_empty()
            && row.api != "DeleteTopics"
            && row.api != "DeleteGroups"
            && !row.api.starts_with("Create")
        {
            assert_eq!(
                (row.ask)(&mut alice),
                row.refused,
                "{}: after the ACL is deleted",
                row.api
            );
        }
        eprintln!("{}: refused {refused}, then served {served}", row.api);
    }
}

#[test]
fn prefixes_deny_listings_and_authorized_operations() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(
        dir.path(),
        &[
            ("SLUICE_AUTHORIZER", "acl"),
            ("SLUICE_SUPER_USERS", "User:admin;User:ops"),
        ],
    );
    let mut admin = login(&broker, "admin");
    for name in ["pay-eu", "pay-us", "payroll", "other"] {
        assert_eq!(create_topic(&mut admin, name), 0, "{name}");
    }
    let codes = create_acls(
        &mut admin,
        "User:alice",
        &[
            (TOPIC, "pay", PREFIXED, ALL, ALLOW),
            (TOPIC, "payroll", LITERAL, WRITE, DENY),
            (GROUP, "any-", PREFIXED, READ, ALLOW),
        ],
    );
    assert_eq!(codes, [0, 0, 0]);
    let mut alice = login(&broker, "alice");
    assert_eq!(produce(&mut alice, "pay-eu"), 0, "the prefix");
    assert_eq!(produce(&mut alice, "payroll"), TOPIC_DENIED, "deny wins");
    assert_eq!(fetch(&mut alice, "payroll"), 0, "only WRITE is denied");
    assert_eq!(produce(&mut alice, "other"), TOPIC_DENIED, "no ACL");
    assert_eq!(join_group(&mut alice, "any-group"), 79, "the group prefix");

    // Metadata for every topic lists only what alice may describe, with
    // her operations on each.
    let listed = metadata(&mut alice, None);
    let mut names: Vec<String> = listed
        .topics
        .iter()
        .map(|topic| topic.name.as_ref().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["pay-eu", "pay-us", "payroll"]);
    let payroll = listed
        .topics
        .iter()
        .find(|topic| topic.name.as_ref().unwrap().as_str() == "payroll")
        .unwrap();
    let bit = |operation: i8| 1 << operation;
    assert_ne!(payroll.topic_authorized_operations & bit(READ), 0);
    assert_eq!(payroll.topic_authorized_operations & bit(WRITE), 0);
    let everything = metadata(&mut admin, None);
    assert!(everything.topics.len() >= 4, "the super user sees all");

    // ListGroups: without DESCRIBE on the cluster, only the groups she may
    // describe.
    assert_eq!(offset_commit(&mut admin, "hidden", "other"), 0);
    let groups: ListGroupsResponse = call(
        &mut alice,
        ApiKey::ListGroups,
        4,
        &ListGroupsRequest::default(),
    );
    assert!(
        groups
            .groups
            .iter()
            .all(|listed| listed.group_id.as_str() != "hidden"),
        "a group alice may not describe is listed"
    );
    let groups: ListGroupsResponse = call(
        &mut admin,
        ApiKey::ListGroups,
        4,
        &ListGroupsRequest::default(),
    );
    assert!(groups
        .groups
        .iter()
        .any(|listed| listed.group_id.as_str() == "hidden"));

    // DescribeCluster's authorized operations: none for bob, all for a
    // super user.
    let ask = DescribeClusterRequest::default().with_include_cluster_authorized_operations(true);
    let mut bob = login(&broker, "bob");
    let cluster: DescribeClusterResponse = call(&mut bob, ApiKey::DescribeCluster, 1, &ask);
    assert_eq!(cluster.cluster_authorized_operations, 0);
    let mut ops = login(&broker, "ops");
    let cluster: DescribeClusterResponse = call(&mut ops, ApiKey::DescribeCluster, 1, &ask);
    assert_ne!(cluster.cluster_authorized_operations & bit(ALTER), 0);
    assert_eq!(produce(&mut ops, "other"), 0, "the second super user");

    // A binding that makes no sense is refused, and nothing is stored.
    let codes = create_acls(&mut admin, "alice", &[(TOPIC, "t", LITERAL, READ, ALLOW)]);
    assert_eq!(codes, [42], "a principal without its type");
    let codes = create_acls(
        &mut admin,
        "User:alice",
        &[(GROUP, "g", LITERAL, WRITE, ALLOW)],
    );
    assert_eq!(codes, [42], "WRITE on a group");
    let all = describe_acls(&mut admin);
    let count: usize = all
        .resources
        .iter()
        .map(|resource| resource.acls.len())
        .sum();
    assert_eq!(count, 3, "{all:?}");

    // The bindings are in the replicated metadata: they survive a restart.
    drop((admin, alice, bob, ops));
    let mut broker = broker;
    broker.restart();
    let mut alice = login(&broker, "alice");
    assert_eq!(produce(&mut alice, "pay-us"), 0, "after a restart");
    assert_eq!(
        produce(&mut alice, "payroll"),
        TOPIC_DENIED,
        "after a restart"
    );
}

#[test]
fn without_an_authorizer_acl_requests_say_security_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path(), &[]);
    let mut alice = login(&broker, "alice");
    assert_eq!(create_topic(&mut alice, "open"), 0, "everything is allowed");
    assert_eq!(produce(&mut alice, "open"), 0);
    assert_eq!(
        create_acls(
            &mut alice,
            "User:bob",
            &[(TOPIC, "t", LITERAL, READ, ALLOW)]
        ),
        [SECURITY_DISABLED]
    );
    assert_eq!(describe_acls(&mut alice).error_code, SECURITY_DISABLED);
}

#[test]
fn the_native_protocol_and_the_admin_api_authorize_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(
        dir.path(),
        &[
            ("SLUICE_AUTHORIZER", "acl"),
            ("SLUICE_SUPER_USERS", "User:admin"),
            ("SLUICE_ADMIN_ADDR", "127.0.0.1:0"),
        ],
    );
    let mut admin = login(&broker, "admin");
    assert_eq!(create_topic(&mut admin, "t"), 0);

    // The native protocol has no authentication: its clients are
    // User:ANONYMOUS, refused whole with the reason.
    let refused = broker.cli(&["topic", "create", "native"], None);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("authorization failed") && said.contains("User:ANONYMOUS may not Create"),
        "{said}"
    );
    let refused = broker.cli(&["produce", "t"], Some(b"one\n"));
    assert!(!refused.status.success(), "a native produce without WRITE");
    let names = |listing: &str| -> Vec<String> {
        listing
            .lines()
            .filter_map(|line| line.split_whitespace().next().map(str::to_string))
            .collect()
    };
    let listed = broker.cli_ok(&["topic", "list"], None);
    assert!(
        !names(&listed).contains(&"t".to_string()),
        "t listed: {listed}"
    );

    // Granted to User:ANONYMOUS, the same requests are served.
    assert_eq!(
        create_acls(
            &mut admin,
            "User:ANONYMOUS",
            &[
                (CLUSTER, "kafka-cluster", LITERAL, CREATE, ALLOW),
                (TOPIC, "t", LITERAL, WRITE, ALLOW),
                (TOPIC, "t", LITERAL, READ, ALLOW),
            ],
        ),
        [0, 0, 0]
    );
    broker.cli_ok(&["topic", "create", "native"], None);
    broker.cli_ok(&["produce", "t"], Some(b"one\ntwo\n"));
    let listed = broker.cli_ok(&["topic", "list"], None);
    assert!(names(&listed).contains(&"t".to_string()), "{listed}");
    let read = broker.cli_ok(&["consume", "t", "--count", "2"], None);
    assert!(read.contains("one") && read.contains("two"), "{read}");

    // The admin API: /metrics needs DESCRIBE on the cluster. Without
    // credentials, 401 asking for them; with a user's that are not
    // allowed, 403; wrong ones, 401; a super user's, 200.
    let http = broker.admin_addr.as_deref().expect("an admin listener");
    let (status, text) = common::admin_get(http, "/metrics", None);
    assert!(status.contains(" 401 "), "{status}");
    assert!(text.contains("WWW-Authenticate: Basic"), "{text}");
    let (status, _) = common::admin_get(http, "/metrics", Some(("alice", "alice-secret")));
    assert!(status.contains(" 403 "), "{status}");
    let (status, _) = common::admin_get(http, "/metrics", Some(("alice", "wrong")));
    assert!(status.contains(" 401 "), "{status}");
    assert_eq!(
        create_acls(
            &mut admin,
            "User:alice",
            &[(CLUSTER, "kafka-cluster", LITERAL, DESCRIBE, ALLOW)],
        ),
        [0]
    );
    let denials = common::metric_as(
        http,
        "sluice_authorization_denials_total",
        Some(("alice", "alice-secret")),
    );
    assert!(denials >= 4, "{denials}");
}
