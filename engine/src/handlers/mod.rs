//! The native protocol's request handlers, one file per API. A handler runs
//! on the shard holding the connection; it sends each partition's part to
//! the owner shard and gathers the answers.

pub(crate) mod admin;
pub(crate) mod fetch;
mod groups;
mod list_offsets;
mod metadata;
mod produce;

use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use sluice_net::native::{
    frame::{encode_error_response, encode_response, RequestHeader},
    messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, Message},
    ErrorCode,
};

use crate::{
    cluster_metadata::Metadata,
    shard::{Failure, PartitionKey, Shard},
};

/// Where partition `partition` of `topic` lives: its owner shard and key,
/// or why it cannot be served.
pub(crate) fn route(
    shard: &Shard,
    metadata: &Metadata,
    topic: &str,
    partition: u32,
) -> Result<(usize, PartitionKey), Failure> {
    let Some(meta) = metadata.topic(topic) else {
        return Err(Failure::new(
            ErrorCode::UnknownTopic,
            format!("no topic {topic}"),
        ));
    };
    let Some(owner) = meta.shards.get(partition as usize) else {
        let message = format!("topic {topic} has {} partitions", meta.partition_count());
        return Err(Failure::new(ErrorCode::NoSuchPartition, message));
    };
    Ok((shard.owner(*owner), (meta.id, partition)))
}

/// Serves one request; `None` when no response is due (produce with
/// acks=none).
pub async fn handle(shard: &Rc<Shard>, header: RequestHeader, body: Bytes) -> Option<BytesMut> {
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
    macro_rules! decode {
        ($request:ty) => {
            match <$request>::from_bytes(body) {
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
        };
    }
    use sluice_net::native::messages as m;
    let response = match api {
        ApiKey::ApiVersions => {
            let _request = decode!(ApiVersionsRequest);
            encode_response(correlation_id, &api_versions(shard))
        }
        ApiKey::Metadata => encode_response(
            correlation_id,
            &metadata::handle(shard, decode!(m::MetadataRequest)),
        ),
        ApiKey::CreateTopics => encode_response(
            correlation_id,
            &admin::create_topics(shard, decode!(m::CreateTopicsRequest)).await,
        ),
        ApiKey::DeleteTopics => encode_response(
            correlation_id,
            &admin::delete_topics(shard, decode!(m::DeleteTopicsRequest)).await,
        ),
        ApiKey::AlterConfigs => encode_response(
            correlation_id,
            &admin::alter_configs(shard, decode!(m::AlterConfigsRequest)).await,
        ),
        ApiKey::DescribeTopics => encode_response(
            correlation_id,
            &admin::describe_topics(shard, decode!(m::DescribeTopicsRequest)).await,
        ),
        ApiKey::Produce => {
            let response = produce::handle(shard, decode!(m::ProduceRequest)).await?;
            encode_response(correlation_id, &response)
        }
        ApiKey::Fetch => encode_response(
            correlation_id,
            &fetch::handle(shard, decode!(m::FetchRequest)).await,
        ),
        ApiKey::ListOffsets => encode_response(
            correlation_id,
            &list_offsets::handle(shard, decode!(m::ListOffsetsRequest)).await,
        ),
        ApiKey::ListGroups => encode_response(
            correlation_id,
            &groups::list(shard, decode!(m::ListGroupsRequest)).await,
        ),
        ApiKey::DescribeGroup => encode_response(
            correlation_id,
            &groups::describe(shard, decode!(m::DescribeGroupRequest)).await,
        ),
        ApiKey::ResetGroupOffsets => encode_response(
            correlation_id,
            &groups::reset(shard, decode!(m::ResetGroupOffsetsRequest)).await,
        ),
        ApiKey::DeleteGroup => encode_response(
            correlation_id,
            &groups::delete(shard, decode!(m::DeleteGroupRequest)).await,
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
        broker_id: shard.config.broker_id,
        shard: shard.id as u32,
        shards: shard.shard_count() as u32,
    }
}
