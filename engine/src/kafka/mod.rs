//! The Kafka protocol's adapter: one handler per API, each stating the
//! versions it serves; ApiVersions advertises exactly those. A handler runs
//! on the shard holding the connection and reaches partitions through the
//! partition layer, as the native handlers do; the engine's failures become
//! Kafka's codes here ([`error_code`]).

mod acls;
mod admin;
pub(crate) mod authorize;
mod classic_groups;
mod client_quotas;
mod consumer_group_protocol;
mod describe_producers;
mod elect_leaders;
mod fetch;
mod group_offsets;
mod log_dirs;
mod metadata;
mod offsets;
mod produce;
mod producer_id;
mod quorum;
mod reassignments;
mod sasl;
mod scram_credentials;
mod throttle;
mod topic_partitions;
pub(crate) mod transactions;

use std::{rc::Rc, time::Duration};

use bytes::{Bytes, BytesMut};
use kafka_protocol::{
    error::ResponseError,
    messages::{
        api_versions_response::{ApiVersion, FinalizedFeatureKey, SupportedFeatureKey},
        ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, TopicName,
    },
    protocol::{Decodable, Encodable, StrBytes},
};
use sluice_net::{
    kafka::frame::{encode_response, parse_request, KafkaRequest},
    native::frame::FrameReader,
};

use crate::{
    cluster_metadata::Metadata,
    coordinator::GroupError,
    partition::{self, ask, ErrorKind, Failure, PartitionOp, Pending, Route},
    quota,
    request_order::{Admission, Turn},
    server::Protocol,
    shard::Shard,
    BrokerConfig,
};

/// The Kafka protocol on a connection.
pub struct Kafka;

impl Protocol for Kafka {
    type Request = KafkaRequest;
    const NAME: &'static str = "kafka";
    const ORDERED: bool = true;

    fn frame_reader(config: &BrokerConfig) -> FrameReader {
        FrameReader::kafka(config.frame_bytes_max)
    }

    fn parse(frame: Bytes) -> Result<KafkaRequest, (Option<BytesMut>, String)> {
        // Kafka has no response to a request it cannot read: it closes.
        parse_request(frame).map_err(|error| (None, error.to_string()))
    }

    fn api(request: &KafkaRequest) -> i16 {
        request.api as i16
    }

    fn too_large(_declared: usize, _max: usize) -> Option<BytesMut> {
        None
    }

    fn refusal(_max: usize) -> Option<BytesMut> {
        None
    }

    /// Produces overlap (their batches keep their order); every other
    /// request waits for the ones before it to finish, as Kafka serves them.
    fn admission(request: &KafkaRequest) -> Admission {
        if request.api == ApiKey::Produce {
            Admission::Pipelined
        } else {
            Admission::Exclusive
        }
    }

    async fn handle(
        shard: Rc<Shard>,
        mut request: KafkaRequest,
        connection: &crate::server::Connection,
        turn: &Turn,
    ) -> Result<Option<BytesMut>, String> {
        if let Some(answer) = sasl::before_serving(&shard, &request, connection).await {
            return answer;
        }
        request.client_host = connection
            .peer
            .map(|ip| format!("/{ip}"))
            .unwrap_or_default();
        let api = request.api;
        let access = authorize::Access::new(&shard, || connection.requester(), &api);
        handle(&shard, request, &access, connection, turn).await
    }
}

/// The APIs served and the versions of each: what ApiVersions advertises.
pub const APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 12),
    (ApiKey::Fetch, 4, 16),
    (ApiKey::ListOffsets, 1, 9),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::SaslHandshake, 1, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 5),
    (ApiKey::WriteTxnMarkers, 1, 1),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::TxnOffsetCommit, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::AlterReplicaLogDirs, 1, 2),
    (ApiKey::DescribeQuorum, 0, 2),
    (ApiKey::AlterPartitionReassignments, 0, 1),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::DescribeTopicPartitions, 0, 0),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    (ApiKey::DescribeClientQuotas, 0, 1),
    (ApiKey::AlterClientQuotas, 0, 1),
];

fn versions(api: ApiKey) -> Option<(i16, i16)> {
    APIS.iter()
        .find(|(key, _, _)| *key == api)
        .map(|(_, min, max)| (*min, *max))
}

/// Serves one request: its response, `None` for a produce with acks=0, or
/// why the connection must close (a body that does not decode, a version
/// not served).
pub async fn handle(
    shard: &Rc<Shard>,
    request: KafkaRequest,
    access: &authorize::Access<'_>,
    connection: &crate::server::Connection,
    turn: &Turn,
) -> Result<Option<BytesMut>, String> {
    let (api, version) = (request.api, request.version);
    let Some((min, max)) = versions(api) else {
        return Err(format!("{api:?} is not served"));
    };
    if version < min || version > max {
        if api == ApiKey::ApiVersions {
            // A client newer than this broker: the error and the versions,
            // at v0, which every client reads (KIP-511).
            let mut response = api_versions(shard);
            response.error_code = ResponseError::UnsupportedVersion.code();
            return encode(&request, 0, &response).map(Some);
        }
        return Err(format!("{api:?} v{version} is not served ({min} to {max})"));
    }
    // Each request is checked by the authorizer first
    // ([`authorize::check`]): refused whole, it is answered without its
    // handler; refused in part, its handler serves the rest and the
    // refused part is put back into the response.
    // The time a handler runs counts against the client's request quota
    // ([`throttle`]).
    let timing = throttle::timing(access);
    let request_throttle =
        |spent| throttle::request_time(access, shard, connection, &request, spent);
    macro_rules! serve {
        ($handler:expr) => {{
            serve!(@call |body| $handler(shard, body, version))
        }};
        // Handlers that tell clients of brokers: the addresses of the
        // listener the request came in through.
        ($handler:expr, listener) => {{
            serve!(@call |body| $handler(shard, body, version, &connection.listener))
        }};
        // Handlers that keep who the client is (group members).
        ($handler:expr, client) => {{
            let client_id = request.client_id.clone().unwrap_or_default();
            let client_host = request.client_host.clone();
            serve!(@call |body| $handler(shard, body, version, client_id, client_host))
        }};
        (@call $call:expr) => {{
            let mut body = decode(&request)?;
            let response = match authorize::check(access, &mut body, version) {
                Err(refused) => refused,
                Ok(patch) => {
                    let (mut response, spent) = throttle::timed(timing, $call(body)).await;
                    patch(&mut response);
                    throttle::answer(&mut response, request_throttle(spent));
                    response
                }
            };
            encode(&request, version, &response).map(Some)
        }};
    }
    match api {
        ApiKey::ApiVersions => {
            let _: ApiVersionsRequest = decode(&request)?;
            encode(&request, version, &api_versions(shard)).map(Some)
        }
        ApiKey::Metadata => serve!(metadata::handle, listener),
        ApiKey::Produce => {
            let mut body: kafka_protocol::messages::ProduceRequest = decode(&request)?;
            let (response, spent) = match authorize::check(access, &mut body, version) {
                Err(refused) => (Some(refused), Duration::ZERO),
                // acks=0 has no response, refused part or not.
                Ok(patch) => {
                    let produced =
                        produce::handle(shard, body, version, turn, &connection.listener);
                    let (response, spent) = throttle::timed(timing, produced).await;
                    let response = response.map(|mut response| {
                        patch(&mut response);
                        response
                    });
                    (response, spent)
                }
            };
            // The request's bytes count against the producer's quota, and
            // its time against the request quota.
            let bytes = throttle::record(
                access,
                shard,
                connection,
                &request,
                quota::PRODUCER_BYTE_RATE,
                || request.body.len() as f64,
            );
            let time = request_throttle(spent);
            match response {
                Some(mut response) => {
                    throttle::answer(&mut response, bytes.max(time));
                    encode(&request, version, &response).map(Some)
                }
                None => Ok(None),
            }
        }
        ApiKey::Fetch => {
            let mut body = decode(&request)?;
            let (mut response, spent) = match authorize::check(access, &mut body, version) {
                Err(refused) => (refused, Duration::ZERO),
                Ok(patch) => {
                    let fetched = fetch::handle(shard, body, version, &connection.listener);
                    let (mut response, spent) = throttle::timed(timing, fetched).await;
                    patch(&mut response);
                    (response, spent)
                }
            };
            // The records sent count against the consumer's quota, and the
            // time against the request quota.
            let bytes = || {
                response
                    .responses
                    .iter()
                    .flat_map(|topic| &topic.partitions)
                    .filter_map(|partition| partition.records.as_ref().map(|records| records.len()))
                    .sum::<usize>() as f64
            };
            let bytes = throttle::record(
                access,
                shard,
                connection,
                &request,
                quota::CONSUMER_BYTE_RATE,
                bytes,
            );
            let time = request_throttle(spent);
            throttle::answer(&mut response, bytes.max(time));
            encode(&request, version, &response).map(Some)
        }
        ApiKey::ListOffsets => serve!(offsets::list_offsets),
        ApiKey::OffsetForLeaderEpoch => serve!(offsets::offset_for_leader_epoch),
        ApiKey::CreateTopics => serve!(admin::create_topics),
        ApiKey::DeleteTopics => serve!(admin::delete_topics),
        ApiKey::CreatePartitions => serve!(admin::create_partitions),
        ApiKey::DeleteRecords => serve!(admin::delete_records),
        ApiKey::DescribeConfigs => serve!(admin::describe_configs),
        ApiKey::AlterConfigs => serve!(admin::alter_configs),
        ApiKey::IncrementalAlterConfigs => serve!(admin::incremental_alter_configs),
        ApiKey::DescribeCluster => serve!(admin::describe_cluster, listener),
        ApiKey::DescribeLogDirs => serve!(log_dirs::describe_log_dirs),
        ApiKey::AlterReplicaLogDirs => serve!(log_dirs::alter_replica_log_dirs),
        ApiKey::DescribeQuorum => serve!(quorum::describe_quorum),
        ApiKey::AlterPartitionReassignments => {
            serve!(reassignments::alter_partition_reassignments)
        }
        ApiKey::ListPartitionReassignments => {
            serve!(reassignments::list_partition_reassignments)
        }
        ApiKey::DescribeTopicPartitions => serve!(topic_partitions::describe_topic_partitions),
        ApiKey::ElectLeaders => serve!(elect_leaders::elect_leaders),
        ApiKey::InitProducerId => serve!(producer_id::handle),
        ApiKey::AddPartitionsToTxn => serve!(transactions::add_partitions_to_txn),
        ApiKey::AddOffsetsToTxn => serve!(transactions::add_offsets_to_txn),
        ApiKey::EndTxn => serve!(transactions::end_txn),
        ApiKey::WriteTxnMarkers => serve!(transactions::write_txn_markers),
        ApiKey::DescribeTransactions => serve!(transactions::describe_transactions),
        ApiKey::ListTransactions => serve!(transactions::list_transactions),
        ApiKey::DescribeProducers => serve!(describe_producers::describe_producers),
        ApiKey::FindCoordinator => serve!(classic_groups::find_coordinator, listener),
        ApiKey::ListGroups => serve!(classic_groups::list_groups),
        ApiKey::JoinGroup => serve!(classic_groups::join_group, client),
        ApiKey::SyncGroup => serve!(classic_groups::sync_group),
        ApiKey::Heartbeat => serve!(classic_groups::heartbeat),
        ApiKey::LeaveGroup => serve!(classic_groups::leave_group),
        ApiKey::OffsetCommit => serve!(group_offsets::offset_commit),
        ApiKey::OffsetFetch => serve!(group_offsets::offset_fetch),
        ApiKey::TxnOffsetCommit => serve!(group_offsets::txn_offset_commit),
        ApiKey::DescribeGroups => serve!(classic_groups::describe_groups),
        ApiKey::DeleteGroups => serve!(classic_groups::delete_groups),
        ApiKey::OffsetDelete => serve!(group_offsets::offset_delete),
        ApiKey::ConsumerGroupHeartbeat => serve!(consumer_group_protocol::heartbeat, client),
        ApiKey::ConsumerGroupDescribe => serve!(consumer_group_protocol::describe),
        ApiKey::CreateAcls => serve!(acls::create_acls),
        ApiKey::DescribeAcls => serve!(acls::describe_acls),
        ApiKey::DeleteAcls => serve!(acls::delete_acls),
        ApiKey::DescribeUserScramCredentials => serve!(scram_credentials::describe),
        ApiKey::AlterUserScramCredentials => serve!(scram_credentials::alter),
        ApiKey::DescribeClientQuotas => serve!(client_quotas::describe),
        ApiKey::AlterClientQuotas => serve!(client_quotas::alter),
        _ => Err(format!("{api:?} is not served")),
    }
}

fn decode<T: Decodable>(request: &KafkaRequest) -> Result<T, String> {
    request.decode().map_err(|error| error.to_string())
}

fn encode<T: Encodable>(
    request: &KafkaRequest,
    version: i16,
    body: &T,
) -> Result<BytesMut, String> {
    encode_response(request.api, version, request.correlation_id, body)
        .map_err(|error| error.to_string())
}

/// The finalized features' epoch ApiVersions answers: a client takes a
/// broker's features once it sees an epoch above the last it read. They
/// are fixed by each broker's config, so one epoch, never -1 (none).
const FEATURES_EPOCH: i64 = 1;

fn api_versions(shard: &Shard) -> ApiVersionsResponse {
    let mut response = ApiVersionsResponse::default();
    // KIP-584 features: a Java client 4.x uses KIP-890 part 2 once
    // `transaction.version` is finalized at 2.
    let name = str_bytes("transaction.version");
    response.supported_features = vec![SupportedFeatureKey::default()
        .with_name(name.clone())
        .with_min_version(0)
        .with_max_version(crate::TRANSACTION_VERSION_MAX)];
    response.finalized_features_epoch = FEATURES_EPOCH;
    // A feature at level 0 is not finalized (Kafka lists none).
    let level = shard.config.transaction_version;
    response.finalized_features = (level > 0)
        .then(|| {
            FinalizedFeatureKey::default()
                .with_name(name)
                .with_min_version_level(level)
                .with_max_version_level(level)
        })
        .into_iter()
        .collect();
    response.api_keys = APIS
        .iter()
        .map(|(api, min, max)| {
            ApiVersion::default()
                .with_api_key(*api as i16)
                .with_min_version(*min)
                .with_max_version(*max)
        })
        .collect();
    response
}

/// Where a Kafka partition index lives (negative ones do not exist).
pub(crate) fn route(
    shard: &Shard,
    metadata: &Metadata,
    topic: &str,
    partition: i32,
) -> Result<Route, Failure> {
    let partition = u32::try_from(partition)
        .map_err(|_| Failure::new(ErrorKind::NoSuchPartition, "negative partition"))?;
    partition::route(shard, metadata, topic, partition)
}

/// Sends `make`'s op to the owner of `partition` of `topic` (a Kafka
/// partition index).
pub(crate) fn on_partition<T: 'static>(
    shard: &Rc<Shard>,
    metadata: &Metadata,
    topic: &str,
    partition: i32,
    make: impl FnOnce(futures_channel::oneshot::Sender<Result<T, Failure>>) -> PartitionOp,
) -> Pending<T> {
    Ok(ask(shard, route(shard, metadata, topic, partition)?, make))
}

/// [`on_partition`] for a request that names the leader epoch it expects
/// (KIP-320's `current_leader_epoch`; -1: none).
pub(crate) fn on_partition_in_epoch<T: 'static>(
    shard: &Rc<Shard>,
    metadata: &Metadata,
    topic: &str,
    partition: i32,
    current_leader_epoch: i32,
    make: impl FnOnce(futures_channel::oneshot::Sender<Result<T, Failure>>) -> PartitionOp,
) -> Pending<T> {
    let route = route(shard, metadata, topic, partition)?;
    check_leader_epoch(&route, topic, partition, current_leader_epoch)?;
    Ok(ask(shard, route, make))
}

/// KIP-320's check of the leader epoch a client names (-1: none) against
/// the partition's: an older one is FENCED_LEADER_EPOCH (the client's
/// metadata is stale), a newer one UNKNOWN_LEADER_EPOCH (this node's is).
/// Both are retriable: the client refreshes its metadata.
pub(crate) fn check_leader_epoch(
    route: &Route,
    topic: &str,
    partition: i32,
    current_leader_epoch: i32,
) -> Result<(), Failure> {
    let Ok(asked) = u32::try_from(current_leader_epoch) else {
        return Ok(());
    };
    let current = route.leader_epoch;
    match asked.cmp(&current) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Less => Err(Failure::new(
            ErrorKind::FencedLeaderEpoch,
            format!("leader epoch {asked} of partition {partition} of {topic} is older than its current {current}"),
        )),
        std::cmp::Ordering::Greater => Err(Failure::new(
            ErrorKind::UnknownLeaderEpoch,
            format!("leader epoch {asked} of partition {partition} of {topic} is newer than the {current} this node knows"),
        )),
    }
}

/// Kafka's code for a failure of `kind`.
pub(crate) fn error_code(kind: ErrorKind) -> i16 {
    let error = match kind {
        ErrorKind::UnknownTopic | ErrorKind::NoSuchPartition => {
            ResponseError::UnknownTopicOrPartition
        }
        ErrorKind::OffsetOutOfRange => ResponseError::OffsetOutOfRange,
        ErrorKind::CorruptBatch => ResponseError::CorruptMessage,
        ErrorKind::InvalidRecord => ResponseError::InvalidRecord,
        ErrorKind::TooLarge => ResponseError::MessageTooLarge,
        ErrorKind::InvalidConfig => ResponseError::InvalidConfig,
        ErrorKind::TopicExists => ResponseError::TopicAlreadyExists,
        ErrorKind::InvalidRequest => ResponseError::InvalidRequest,
        ErrorKind::DiskFull | ErrorKind::StorageFailed => ResponseError::KafkaStorageError,
        // The partition is going away from this broker for now: the client
        // refreshes its metadata and retries.
        ErrorKind::ShuttingDown => ResponseError::NotLeaderOrFollower,
        ErrorKind::InvalidTopicName => ResponseError::InvalidTopicException,
        ErrorKind::InvalidPartitionCount | ErrorKind::InvalidPartitions => {
            ResponseError::InvalidPartitions
        }
        ErrorKind::Internal => ResponseError::UnknownServerError,
        ErrorKind::ProducerFenced => ResponseError::InvalidProducerEpoch,
        ErrorKind::OutOfOrderSequence => ResponseError::OutOfOrderSequenceNumber,
        ErrorKind::UnknownGroup => ResponseError::GroupIdNotFound,
        ErrorKind::GroupNotEmpty => ResponseError::NonEmptyGroup,
        ErrorKind::NotLeader => ResponseError::NotLeaderOrFollower,
        // Kafka's brokers forward admin changes to the controller and
        // answer a timeout when it does not take them; clients retry.
        ErrorKind::NotController => ResponseError::RequestTimedOut,
        ErrorKind::InvalidReplicaAssignment => ResponseError::InvalidReplicaAssignment,
        ErrorKind::InvalidReplicationFactor => ResponseError::InvalidReplicationFactor,
        ErrorKind::FencedLeaderEpoch => ResponseError::FencedLeaderEpoch,
        ErrorKind::UnknownLeaderEpoch => ResponseError::UnknownLeaderEpoch,
        ErrorKind::NotEnoughReplicas => ResponseError::NotEnoughReplicas,
        ErrorKind::TimedOut => ResponseError::RequestTimedOut,
        ErrorKind::InvalidTimestamp => ResponseError::InvalidTimestamp,
        ErrorKind::InvalidTxnState => ResponseError::InvalidTxnState,
        ErrorKind::CoordinatorFenced => ResponseError::TransactionCoordinatorFenced,
    };
    error.code()
}

/// Kafka's code for a group error.
pub(crate) fn group_error_code(error: GroupError) -> i16 {
    match error {
        GroupError::UnknownMemberId => 25,
        GroupError::IllegalGeneration => 22,
        GroupError::RebalanceInProgress => 27,
        GroupError::InconsistentGroupProtocol => 23,
        GroupError::MemberIdRequired => 79,
        GroupError::InvalidSessionTimeout => 26,
        GroupError::NonEmptyGroup => 68,
        GroupError::GroupIdNotFound => 69,
        GroupError::InvalidGroupId => 24,
        GroupError::UnknownTopicOrPartition => 3,
        GroupError::CoordinatorNotAvailable => 15,
        GroupError::NotCoordinator => 16,
        GroupError::CoordinatorLoadInProgress => 14,
        GroupError::FencedInstanceId => 82,
        GroupError::GroupSubscribedToTopic => 86,
        GroupError::OffsetMetadataTooLarge => 12,
        GroupError::InvalidCommitOffset => 28,
        GroupError::StorageError => 56,
        GroupError::StaleMemberEpoch => 113,
        GroupError::UnsupportedAssignor => 112,
        GroupError::UnreleasedInstanceId => 111,
        GroupError::FencedMemberEpoch => 110,
        GroupError::GroupMaxSizeReached => 81,
        GroupError::InvalidRequest => 42,
        GroupError::UnstableOffsetCommit => 88,
        GroupError::InvalidProducerEpoch => 47,
        GroupError::InvalidTxnState => 48,
        GroupError::ConcurrentTransactions => 51,
    }
}

pub(crate) fn failure_code(failure: &Failure) -> i16 {
    error_code(failure.kind)
}

/// A kind of resource whose authorized operations a client may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resource {
    Topic,
    Group,
    Cluster,
}

/// Kafka's answer for "authorized operations" when the client did not ask.
pub(crate) const OPERATIONS_NOT_ASKED: i32 = i32::MIN;

/// The operations a client may perform on a `resource`, as the bit field
/// of Kafka's ACL operation codes (READ 3, WRITE 4, CREATE 5, DELETE 6,
/// ALTER 7, DESCRIBE 8, CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10,
/// ALTER_CONFIGS 11, IDEMPOTENT_WRITE 12) that Metadata, DescribeCluster,
/// DescribeTopicPartitions, DescribeGroups and ConsumerGroupDescribe answer
/// when asked. Sluice has no authorizer, so, as Kafka without one, every
/// operation the kind of resource supports; [`OPERATIONS_NOT_ASKED`] when
/// not `asked`.
pub(crate) fn authorized_operations(resource: Resource, asked: bool) -> i32 {
    if !asked {
        return OPERATIONS_NOT_ASKED;
    }
    let codes: &[u8] = match resource {
        Resource::Topic => &[3, 4, 5, 6, 7, 8, 10, 11],
        Resource::Group => &[3, 6, 8, 10, 11],
        Resource::Cluster => &[5, 7, 8, 9, 10, 11, 12],
    };
    codes.iter().fold(0, |field, code| field | 1 << code)
}

pub(crate) fn str_bytes(text: impl Into<String>) -> StrBytes {
    StrBytes::from_string(text.into())
}

pub(crate) fn topic_name(name: &str) -> TopicName {
    TopicName(str_bytes(name))
}

fn text(value: &StrBytes) -> String {
    value.to_string()
}

/// Kafka's code for one result of a group request (0: done).
fn group_code(result: &Result<(), GroupError>) -> i16 {
    result.err().map_or(0, group_error_code)
}

pub(crate) fn broker_id(shard: &Shard) -> BrokerId {
    BrokerId(shard.config.node_id.0)
}

/// The controller leader Kafka clients are told of (-1: none right now).
pub(crate) fn controller_id(shard: &Shard) -> BrokerId {
    BrokerId(shard.quorum_view.leader().map_or(-1, |node| node.0))
}

/// A broker as Kafka clients are told of it.
pub(crate) struct KafkaBroker {
    pub node: BrokerId,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// The brokers the clients of Kafka listener `listener` are told of: every
/// registered broker whose lease holds and that has an endpoint of that
/// listener ([`BrokerRegistration::endpoint`]); this broker itself while
/// it has not registered yet (a node starting).
///
/// [`BrokerRegistration::endpoint`]: crate::cluster_metadata::records::BrokerRegistration::endpoint
pub(crate) fn live_brokers(shard: &Shard, metadata: &Metadata, listener: &str) -> Vec<KafkaBroker> {
    let mut brokers: Vec<KafkaBroker> = metadata
        .live_brokers()
        .filter_map(|broker| {
            let endpoint = broker.registration.endpoint(listener)?;
            let (host, port) = host_port(&endpoint.addr);
            Some(KafkaBroker {
                node: BrokerId(broker.registration.node.0),
                host,
                port,
                rack: broker.registration.rack.clone(),
            })
        })
        .collect();
    if !metadata.brokers.contains_key(&shard.config.node_id) {
        let own = shard
            .config
            .kafka_listeners
            .iter()
            .find(|own| own.name == listener);
        if let Some(own) = own {
            let (host, port) = host_port(own.advertised());
            brokers.push(KafkaBroker {
                node: broker_id(shard),
                host,
                port,
                rack: None,
            });
            brokers.sort_by_key(|broker| broker.node.0);
        }
    }
    brokers
}

/// Whether node `node` is one Kafka clients may be sent to (see
/// [`live_brokers`]).
/// Where a client that sent a partition's request to a node that does not
/// lead it finds its leader (KIP-951): the live leader's id and epoch (-1
/// and -1 when none is live) and its Kafka endpoint.
pub(crate) fn current_leader(
    shard: &Shard,
    metadata: &Metadata,
    topic: &str,
    partition: i32,
    listener: &str,
) -> (BrokerId, i32, Option<KafkaBroker>) {
    let placement = metadata.topic(topic).and_then(|meta| {
        let partition = u32::try_from(partition).ok()?;
        (partition < meta.partition_count()).then(|| {
            crate::cluster_view::placement(metadata, shard.config.node_id, meta, partition)
        })
    });
    match placement {
        Some(crate::cluster_view::Placement {
            leader: Some(node),
            leader_epoch,
            ..
        }) => {
            let endpoint = live_brokers(shard, metadata, listener)
                .into_iter()
                .find(|broker| broker.node.0 == node.0);
            (
                BrokerId(node.0),
                i32::try_from(leader_epoch).unwrap_or(i32::MAX),
                endpoint,
            )
        }
        _ => (BrokerId(-1), -1, None),
    }
}

pub(crate) fn is_live(shard: &Shard, metadata: &Metadata, node: sluice_storage::NodeId) -> bool {
    crate::cluster_view::is_live(metadata, shard.config.node_id, node)
}

fn host_port(addr: &str) -> (String, i32) {
    match addr.rsplit_once(':') {
        Some((host, port)) => (
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port.parse().unwrap_or(9092),
        ),
        None => (addr.to_string(), 9092),
    }
}

/// The cluster id clients see: the one the data directory records.
pub(crate) fn cluster_id(shard: &Shard) -> String {
    shard.cluster_id.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_served_is_one_the_codec_knows_at_every_version_advertised() {
        for (api, min, max) in APIS {
            let valid = api.valid_versions();
            assert!(
                valid.min <= *min && *max <= valid.max,
                "{api:?} {min}..={max} outside {valid:?}"
            );
        }
    }

    #[test]
    fn every_engine_error_has_a_kafka_code() {
        for kind in ErrorKind::ALL {
            assert_ne!(error_code(kind), 0, "{kind:?}");
        }
    }
}
