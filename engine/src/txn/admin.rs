//! What an operator asks of the transaction coordinators, whatever the
//! protocol: one transactional id described, the ids this node
//! coordinates listed, and an id's ongoing transaction aborted (a hanging
//! one, say). The Kafka APIs (DescribeTransactions, ListTransactions) and
//! the native protocol's serve these.

use std::rc::Rc;

use sluice_replication::txn::{ListFilter, Reply, TxnDescription, TxnError, TxnListing};

use super::{driver, now_ms, routing};
use crate::shard::Shard;

/// `transactional_id`'s state, from its coordinator (which must be this
/// node: `NOT_COORDINATOR` otherwise).
pub async fn describe(
    shard: &Rc<Shard>,
    transactional_id: &str,
) -> Result<TxnDescription, TxnError> {
    let asked = transactional_id.to_string();
    routing::on_coordinator(
        shard,
        transactional_id,
        move |there, partition| async move {
            driver::inspect(&there, partition, |core| core.describe(&asked))
        },
    )
    .await?
}

/// The ids of every coordinator on this node's shards that pass `filter`
/// (a cluster's are listed by asking each node); the first coordinator
/// still loading fails it (`COORDINATOR_LOAD_IN_PROGRESS`, to retry).
pub async fn list(shard: &Rc<Shard>, filter: ListFilter) -> Result<Vec<TxnListing>, TxnError> {
    let mut listed = Vec::new();
    for owner in 0..shard.shard_count() {
        let filter = filter.clone();
        let here = crate::coordinator::run_on(shard, owner, move |there| async move {
            let now = now_ms();
            let held = there.txns.held.borrow();
            let mut listed = Vec::new();
            for held in held.values() {
                listed.extend(held.core.list(&filter, now)?);
            }
            Ok::<_, TxnError>(listed)
        })
        .await
        .map_err(|_| TxnError::CoordinatorNotAvailable)??;
        listed.extend(here);
    }
    listed.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
    Ok(listed)
}

/// Aborts `transactional_id`'s ongoing transaction at a bumped epoch (its
/// producer is fenced, as on a timeout); answered once the abort is
/// durable, its markers following. `INVALID_TXN_STATE` when none is
/// ongoing.
pub async fn abort(shard: &Rc<Shard>, transactional_id: &str) -> Result<(), TxnError> {
    let asked = transactional_id.to_string();
    let reply = routing::on_coordinator(
        shard,
        transactional_id,
        move |there, partition| async move {
            driver::call(&there, partition, move |core, request, now| {
                core.admin_abort(request, &asked, now)
            })
            .await
        },
    )
    .await??;
    match reply {
        Reply::Aborted => Ok(()),
        other => unreachable!("an abort answered {other:?}"),
    }
}
