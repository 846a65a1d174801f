//! ApiVersions: the first request on a connection. The broker answers the
//! versions it speaks of each API, and where the connection landed (its
//! broker and shard, out of how many), so a client can send each
//! partition's requests to the shard that owns it.

use super::Message;
use crate::native::wire::wire_struct;

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ApiVersionsRequest {
        pub client: String,
    }
}

impl Message for ApiVersionsRequest {}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ApiVersionsResponse {
        /// (api key, min version, max version)
        pub versions: Vec<(u16, u16, u16)>,
        pub broker_id: u32,
        /// The shard that holds this connection.
        pub shard: u32,
        pub shards: u32,
    }
}

impl Message for ApiVersionsResponse {}
