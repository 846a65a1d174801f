//! Which node and shard coordinate a transactional id: the owner of the
//! id's partition of `__transaction_state` (a hash of the id), on the
//! node that leads that partition. The topic is created the first time a
//! transactional id is looked up.

use std::{future::Future, rc::Rc};

use sluice_replication::txn::{TxnError, TRANSACTIONAL_ID_BYTES_MAX};
use sluice_storage::NodeId;

use super::TXN_TOPIC;
use crate::{
    coordinator::routing::{ensure_internal_topic, internal_partition, run_on},
    partition::PartitionKey,
    shard::Shard,
};

fn check_id(transactional_id: &str) -> Result<(), TxnError> {
    if transactional_id.is_empty() || transactional_id.len() > TRANSACTIONAL_ID_BYTES_MAX {
        return Err(TxnError::InvalidRequest {
            reason: "a transactional id empty or over TRANSACTIONAL_ID_BYTES_MAX",
        });
    }
    Ok(())
}

/// The partition of `__transaction_state` of `transactional_id` and its
/// owner shard, by this shard's metadata; `None` before the topic exists.
pub fn txn_partition(shard: &Shard, transactional_id: &str) -> Option<(usize, PartitionKey)> {
    internal_partition(shard, &shard.metadata(), TXN_TOPIC, transactional_id)
}

/// The node that coordinates `transactional_id`: the leader of its
/// partition (the topic is created if it is missing).
pub async fn coordinator_node(
    shard: &Rc<Shard>,
    transactional_id: &str,
) -> Result<NodeId, TxnError> {
    check_id(transactional_id)?;
    if !ensure_internal_topic(
        shard,
        TXN_TOPIC,
        shard.config.transaction_state_replication_factor(),
    )
    .await
    {
        return Err(TxnError::CoordinatorNotAvailable);
    }
    let (_, key) =
        txn_partition(shard, transactional_id).ok_or(TxnError::CoordinatorNotAvailable)?;
    shard
        .metadata()
        .topic(TXN_TOPIC)
        .and_then(|topic| topic.leader(key.partition.0))
        .ok_or(TxnError::CoordinatorNotAvailable)
}

/// Runs `work` on the shard that coordinates `transactional_id`, given
/// the id's partition there. `NOT_COORDINATOR` on a node that does not
/// lead the id's partition; whether the shard has loaded it is for
/// `work` to find ([`super::driver::call`] does).
pub async fn on_coordinator<T, F, W>(
    shard: &Rc<Shard>,
    transactional_id: &str,
    work: W,
) -> Result<T, TxnError>
where
    T: Send + 'static,
    F: Future<Output = T> + 'static,
    W: FnOnce(Rc<Shard>, u32) -> F + Send + 'static,
{
    if coordinator_node(shard, transactional_id).await? != shard.config.node_id {
        return Err(TxnError::NotCoordinator);
    }
    let (owner, key) =
        txn_partition(shard, transactional_id).ok_or(TxnError::CoordinatorNotAvailable)?;
    run_on(shard, owner, move |there| work(there, key.partition.0))
        .await
        .map_err(|_| TxnError::CoordinatorNotAvailable)
}
