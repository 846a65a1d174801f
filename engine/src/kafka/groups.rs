//! Consumer groups are not served yet: FindCoordinator says no coordinator
//! is available (a retriable error: clients wait and ask again, they do not
//! drop the connection), and ListGroups lists none.

use std::rc::Rc;

use kafka_protocol::{
    error::ResponseError,
    messages::{
        find_coordinator_response::Coordinator, BrokerId, FindCoordinatorRequest,
        FindCoordinatorResponse, ListGroupsRequest, ListGroupsResponse,
    },
};

use super::str_bytes;
use crate::shard::Shard;

const NO_COORDINATOR: &str = "consumer groups are not served by this broker yet";

pub async fn find_coordinator(
    _shard: &Rc<Shard>,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let code = ResponseError::CoordinatorNotAvailable.code();
    let response = FindCoordinatorResponse::default();
    if version >= 4 {
        // The batched form: one answer per key.
        return response.with_coordinators(
            request
                .coordinator_keys
                .into_iter()
                .map(|key| {
                    Coordinator::default()
                        .with_key(key)
                        .with_node_id(BrokerId(-1))
                        .with_host(str_bytes(""))
                        .with_port(-1)
                        .with_error_code(code)
                        .with_error_message(Some(str_bytes(NO_COORDINATOR)))
                })
                .collect(),
        );
    }
    response
        .with_error_code(code)
        .with_error_message((version >= 1).then(|| str_bytes(NO_COORDINATOR)))
        .with_node_id(BrokerId(-1))
        .with_host(str_bytes(""))
        .with_port(-1)
}

pub async fn list_groups(
    _shard: &Rc<Shard>,
    _request: ListGroupsRequest,
    _version: i16,
) -> ListGroupsResponse {
    ListGroupsResponse::default()
}
