//! The native protocol's adapter: its [`Protocol`] on a connection and its
//! request handlers, one file per API family. A handler runs on the shard
//! holding the connection: it decodes the request, calls the core (the
//! partition layer, the controller, the group and transaction
//! coordinators) and encodes the
//! answer, turning the engine's [`ErrorKind`]s into the native wire's codes
//! ([`error_code`]) on the way out.
//!
//! Native readers read committed records only, as a Kafka consumer with
//! `isolation.level=read_committed` does: a fetch stops at the last stable
//! offset (no record of a transaction still open reaches them) and returns
//! neither transaction markers nor the batches of aborted transactions
//! (the partition's owner drops them, and the answer's next offset moves
//! the reader past them); ListOffsets' latest is the last stable offset.
//! Transactions themselves are Kafka's: a native producer writes none.

mod admin;
mod authorize;
mod cluster;
mod elections;
mod fetch;
mod groups;
mod list_offsets;
mod metadata;
mod produce;
mod reassignments;
mod transactions;

use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use sluice_net::native::{
    frame::{encode_error_response, encode_response, split_request, FrameReader, RequestHeader},
    messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, Message},
    ErrorCode,
};

use crate::{
    partition::ErrorKind,
    request_latency::UNKNOWN_API,
    request_order::{Admission, Turn},
    server::Protocol,
    shard::Shard,
    BrokerConfig,
};

/// The native protocol on a connection.
pub struct Native;

impl Protocol for Native {
    type Request = (RequestHeader, Bytes);
    const NAME: &'static str = "native";
    const ORDERED: bool = false;

    fn frame_reader(config: &BrokerConfig) -> FrameReader {
        FrameReader::new(config.frame_bytes_max)
    }

    fn parse(frame: Bytes) -> Result<Self::Request, (Option<BytesMut>, String)> {
        split_request(frame).map_err(|error| {
            let message = format!("{error}; closing");
            let response = encode_error_response(0, ErrorCode::InvalidRequest, &message);
            (Some(response), error.to_string())
        })
    }

    fn api((header, _): &Self::Request) -> i16 {
        ApiKey::from_u16(header.api_key).map_or(UNKNOWN_API, |api| api as i16)
    }

    fn too_large(declared: usize, max: usize) -> Option<BytesMut> {
        let message = format!("frame of {declared} bytes is over the cap of {max} bytes; closing");
        Some(encode_error_response(0, ErrorCode::TooLarge, &message))
    }

    fn refusal(max: usize) -> Option<BytesMut> {
        let message = format!("this shard holds its most connections ({max}); try again later");
        Some(encode_error_response(
            0,
            ErrorCode::TooManyRequests,
            &message,
        ))
    }

    /// Unordered: a native client waits for the answers it depends on.
    fn admission(_request: &Self::Request) -> Admission {
        Admission::Pipelined
    }

    async fn handle(
        shard: Rc<Shard>,
        (header, body): Self::Request,
        connection: &crate::server::Connection,
        _turn: &Turn,
    ) -> Result<Option<BytesMut>, String> {
        let api = ApiKey::from_u16(header.api_key);
        let access = crate::authorization::Access::new(&shard, || connection.requester(), &api);
        Ok(handle(&shard, header, body, &access).await)
    }
}

/// The native wire's code for a failure of `kind`.
pub(crate) fn error_code(kind: ErrorKind) -> ErrorCode {
    match kind {
        ErrorKind::UnknownTopic => ErrorCode::UnknownTopic,
        ErrorKind::NoSuchPartition => ErrorCode::NoSuchPartition,
        ErrorKind::OffsetOutOfRange => ErrorCode::OffsetOutOfRange,
        ErrorKind::CorruptBatch => ErrorCode::CorruptBatch,
        ErrorKind::InvalidRecord => ErrorCode::InvalidRecord,
        ErrorKind::TooLarge => ErrorCode::TooLarge,
        ErrorKind::InvalidConfig => ErrorCode::InvalidConfig,
        ErrorKind::TopicExists => ErrorCode::TopicExists,
        ErrorKind::InvalidRequest => ErrorCode::InvalidRequest,
        ErrorKind::DiskFull => ErrorCode::DiskFull,
        ErrorKind::StorageFailed => ErrorCode::StorageFailed,
        ErrorKind::ShuttingDown => ErrorCode::ShuttingDown,
        ErrorKind::InvalidTopicName => ErrorCode::InvalidTopicName,
        ErrorKind::InvalidPartitionCount => ErrorCode::InvalidPartitionCount,
        ErrorKind::InvalidPartitions => ErrorCode::InvalidPartitions,
        ErrorKind::Internal => ErrorCode::Internal,
        ErrorKind::ProducerFenced => ErrorCode::ProducerFenced,
        ErrorKind::OutOfOrderSequence => ErrorCode::OutOfOrderSequence,
        ErrorKind::UnknownGroup => ErrorCode::UnknownGroup,
        ErrorKind::GroupNotEmpty => ErrorCode::GroupNotEmpty,
        ErrorKind::NotLeader => ErrorCode::NotLeader,
        ErrorKind::NotController => ErrorCode::NotController,
        ErrorKind::InvalidReplicaAssignment => ErrorCode::InvalidReplicaAssignment,
        ErrorKind::InvalidReplicationFactor => ErrorCode::InvalidReplicationFactor,
        // Native requests name no leader epoch, so these come only from
        // Kafka's; a stale view of leadership is NotLeader to a native
        // client, which refreshes its metadata.
        ErrorKind::FencedLeaderEpoch | ErrorKind::UnknownLeaderEpoch => ErrorCode::NotLeader,
        ErrorKind::NotEnoughReplicas => ErrorCode::NotEnoughReplicas,
        ErrorKind::TimedOut => ErrorCode::Timeout,
        ErrorKind::InvalidTimestamp => ErrorCode::InvalidTimestamp,
        ErrorKind::InvalidTxnState => ErrorCode::InvalidTxnState,
        ErrorKind::CoordinatorFenced => ErrorCode::CoordinatorFenced,
    }
}

/// Serves one request; `None` when no response is due (produce with
/// acks=none).
pub async fn handle(
    shard: &Rc<Shard>,
    header: RequestHeader,
    body: Bytes,
    access: &crate::authorization::Access<'_>,
) -> Option<BytesMut> {
    let correlation_id = header.correlation_id;
    let Some(api) = ApiKey::from_u16(header.api_key) else {
        let message = format!("unknown api key {}", header.api_key);
        return Some(encode_error_response(
            correlation_id,
            ErrorCode::UnknownApi,
            &message,
        ));
    };
    let (min, max) = api.versions();
    if header.api_version < min || header.api_version > max {
        let message = format!(
            "{api:?} version {} is not supported; this broker speaks {min} to {max}",
            header.api_version
        );
        return Some(encode_error_response(
            correlation_id,
            ErrorCode::UnsupportedVersion,
            &message,
        ));
    }
    // Decodes the request, then checks it with the authorizer: refused,
    // the answer is AUTHORIZATION_FAILED and the handler never runs.
    macro_rules! decode {
        ($request:ty) => {
            allowed!(match <$request>::from_bytes(body) {
                Ok(request) => request,
                Err(error) => {
                    let message = format!("{api:?} request: {error}");
                    return Some(encode_error_response(
                        correlation_id,
                        ErrorCode::InvalidRequest,
                        &message,
                    ));
                }
            })
        };
    }
    macro_rules! allowed {
        ($request:expr) => {{
            let request = $request;
            if let Err(message) = authorize::check(access, &request) {
                return Some(encode_error_response(
                    correlation_id,
                    ErrorCode::AuthorizationFailed,
                    &message,
                ));
            }
            request
        }};
    }
    use sluice_net::native::messages as m;
    let response = match api {
        ApiKey::ApiVersions => {
            let _request = decode!(ApiVersionsRequest);
            encode_response(correlation_id, &api_versions(shard))
        }
        ApiKey::Metadata => {
            let mut response = metadata::handle(shard, decode!(m::MetadataRequest));
            if access.enabled() {
                authorize::filter_topics(&access.decider(), &mut response);
            }
            encode_response(correlation_id, &response)
        }
        ApiKey::CreateTopics => encode_response(
            correlation_id,
            &admin::create_topics(
                shard,
                allowed!(
                    match m::CreateTopicsRequest::from_version_bytes(header.api_version, body) {
                        Ok(request) => request,
                        Err(error) => {
                            let message = format!("{api:?} request: {error}");
                            return Some(encode_error_response(
                                correlation_id,
                                ErrorCode::InvalidRequest,
                                &message,
                            ));
                        }
                    }
                ),
            )
            .await,
        ),
        ApiKey::DeleteTopics => encode_response(
            correlation_id,
            &admin::delete_topics(shard, decode!(m::DeleteTopicsRequest)).await,
        ),
        ApiKey::AlterConfigs => encode_response(
            correlation_id,
            &admin::alter_configs(shard, decode!(m::AlterConfigsRequest)).await,
        ),
        ApiKey::DescribeTopics => {
            let response = admin::describe_topics(shard, decode!(m::DescribeTopicsRequest)).await;
            if header.api_version >= m::DESCRIBE_TOPICS_PLACEMENT_VERSION {
                encode_response(correlation_id, &response)
            } else {
                let response = m::DescribeTopicsResponseV0::from(response);
                encode_response(correlation_id, &response)
            }
        }
        ApiKey::DescribeCluster => encode_response(
            correlation_id,
            &cluster::describe(shard, decode!(m::DescribeClusterRequest)),
        ),
        ApiKey::ElectLeaders => encode_response(
            correlation_id,
            &elections::elect_leaders(shard, decode!(m::ElectLeadersRequest)).await,
        ),
        ApiKey::AlterReassignments => encode_response(
            correlation_id,
            &reassignments::alter(shard, decode!(m::AlterReassignmentsRequest)).await,
        ),
        ApiKey::ListReassignments => encode_response(
            correlation_id,
            &reassignments::list(shard, decode!(m::ListReassignmentsRequest)),
        ),
        ApiKey::Produce => {
            let response = produce::handle(shard, decode!(m::ProduceRequest)).await?;
            encode_response(correlation_id, &response)
        }
        ApiKey::Fetch => {
            let response = fetch::handle(shard, decode!(m::FetchRequest)).await;
            if header.api_version >= m::FETCH_NEXT_OFFSET_VERSION {
                encode_response(correlation_id, &response)
            } else {
                encode_response(correlation_id, &m::FetchResponseV0::from(response))
            }
        }
        ApiKey::ListOffsets => encode_response(
            correlation_id,
            &list_offsets::handle(shard, decode!(m::ListOffsetsRequest)).await,
        ),
        ApiKey::ListGroups => {
            let mut response = groups::list(shard, decode!(m::ListGroupsRequest)).await;
            if access.enabled() {
                authorize::filter_groups(&access.decider(), &mut response);
            }
            encode_response(correlation_id, &response)
        }
        ApiKey::DescribeGroup => {
            let response = groups::describe(shard, decode!(m::DescribeGroupRequest)).await;
            if header.api_version >= m::DESCRIBE_GROUP_STABLE_VERSION {
                encode_response(correlation_id, &response)
            } else {
                encode_response(correlation_id, &m::DescribeGroupResponseV0::from(response))
            }
        }
        ApiKey::ResetGroupOffsets => encode_response(
            correlation_id,
            &groups::reset(shard, decode!(m::ResetGroupOffsetsRequest)).await,
        ),
        ApiKey::DeleteGroup => encode_response(
            correlation_id,
            &groups::delete(shard, decode!(m::DeleteGroupRequest)).await,
        ),
        ApiKey::FindTxnCoordinator => encode_response(
            correlation_id,
            &transactions::find_coordinator(shard, decode!(m::FindTxnCoordinatorRequest)).await,
        ),
        ApiKey::ListTransactions => {
            let mut response = transactions::list(shard, decode!(m::ListTransactionsRequest)).await;
            if access.enabled() {
                authorize::filter_transactions(&access.decider(), &mut response);
            }
            encode_response(correlation_id, &response)
        }
        ApiKey::DescribeTransaction => encode_response(
            correlation_id,
            &transactions::describe(shard, decode!(m::DescribeTransactionRequest)).await,
        ),
        ApiKey::AbortTransaction => encode_response(
            correlation_id,
            &transactions::abort(shard, decode!(m::AbortTransactionRequest)).await,
        ),
        ApiKey::AbortPartitionTransaction => encode_response(
            correlation_id,
            &transactions::abort_partition(shard, decode!(m::AbortPartitionTransactionRequest))
                .await,
        ),
    };
    Some(response)
}

fn api_versions(shard: &Shard) -> ApiVersionsResponse {
    ApiVersionsResponse {
        versions: ApiKey::ALL
            .iter()
            .map(|api| {
                let (min, max) = api.versions();
                (*api as u16, min, max)
            })
            .collect(),
        broker_id: shard.config.node_id.0 as u32,
        shard: shard.id as u32,
        shards: shard.shard_count() as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kinds only Kafka's requests give rise to (they name leader
    /// epochs), which a native client is told as NotLeader.
    const KAFKA_ONLY: [ErrorKind; 2] =
        [ErrorKind::FencedLeaderEpoch, ErrorKind::UnknownLeaderEpoch];

    #[test]
    fn every_engine_error_has_its_own_native_code() {
        let native: Vec<ErrorKind> = ErrorKind::ALL
            .into_iter()
            .filter(|kind| !KAFKA_ONLY.contains(kind))
            .collect();
        let codes: std::collections::HashSet<ErrorCode> =
            native.iter().map(|kind| error_code(*kind)).collect();
        assert_eq!(codes.len(), native.len());
        assert!(!codes.contains(&ErrorCode::None));
        for kind in KAFKA_ONLY {
            assert_eq!(error_code(kind), ErrorCode::NotLeader, "{kind:?}");
        }
    }
}
