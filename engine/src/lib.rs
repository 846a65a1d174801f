//! The Sluice broker: shards, partition placement, cross-shard routing, topic metadata, the group coordinator and the request handlers.
