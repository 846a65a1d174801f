//! Which partitions of `__transaction_state` this shard coordinates: those
//! whose log it holds and whose leader this node is. A pass after every
//! change of the roles (and every [`PASS_INTERVAL`]) makes a coordinator
//! for each partition this node came to lead, in the partition's leader
//! epoch (its markers carry it), and loads it from the partition's log: a
//! transaction left decided has its markers written again and completes,
//! an ongoing one keeps its start, so its timeout runs on. A partition it
//! stopped leading is dropped, and the requests waiting there are
//! answered `NOT_COORDINATOR`, so that clients find the new leader.

use std::{rc::Rc, time::Duration};

use sluice_replication::txn::{TxnConfig, TxnCoordinator, TxnRecord};
use sluice_storage::log::Log;

use super::{driver, now_ms, Held, TXN_TOPIC};
use crate::{
    coordinator::read_back, partition::PartitionKey, replica::state::Leadership, shard::Shard,
};

/// A pass is also made this often: a lost lease changes leadership with
/// no change of the roles.
const PASS_INTERVAL: Duration = Duration::from_millis(100);

/// Makes a pass after every change of the roles on this shard, and every
/// [`PASS_INTERVAL`], until the shard stops (the task is dropped).
pub async fn hold_loop(shard: Rc<Shard>) {
    loop {
        let changed = shard.replicas.roles_set();
        let interval = glommio::timer::sleep(PASS_INTERVAL);
        futures_lite::future::or(changed, interval).await;
        hold(&shard);
    }
}

/// One pass: coordinators dropped for the partitions this node no longer
/// leads (or leads in another epoch), made and loading for those it came
/// to lead, each in the partition's leader epoch.
pub fn hold(shard: &Rc<Shard>) {
    let metadata = shard.metadata();
    let Some(topic) = metadata.topic(TXN_TOPIC) else {
        drop_all(shard, &[]);
        return;
    };
    let led: Vec<(u32, PartitionKey, Leadership, i32, Rc<Log>)> = (0..topic.partition_count())
        .filter_map(|partition| {
            let key = PartitionKey::new(topic.id, partition);
            let log = shard.partitions.borrow().get(&key).cloned()?;
            let leadership = shard.replicas.leadership(key);
            // The partition's leader epoch: its markers carry it, and a
            // partition refuses those of an older one. A partition of one
            // replica has no leader's state of its own: the metadata's
            // epoch, which moves when its node comes back.
            let epoch = match leadership {
                Leadership::Leads(epoch) => epoch,
                Leadership::Sole => topic
                    .partition(partition)
                    .map_or(0, |control| control.leader_epoch),
                Leadership::Not => return None,
            };
            let epoch = i32::try_from(epoch).unwrap_or(i32::MAX);
            Some((partition, key, leadership, epoch, log))
        })
        .collect();
    drop_all(shard, &led);
    for (partition, key, leadership, coordinator_epoch, log) in led {
        if shard.txns.held.borrow().contains_key(&partition) {
            continue;
        }
        let generation = shard.txns.generation();
        shard.txns.held.borrow_mut().insert(
            partition,
            Held {
                key,
                leadership,
                generation,
                core: TxnCoordinator::new(TxnConfig::default(), coordinator_epoch),
                waiting: Default::default(),
                settling: Vec::new(),
            },
        );
        let shard = shard.clone();
        glommio::spawn_local(async move { load(&shard, partition, generation, &log).await })
            .detach();
    }
}

/// Drops the coordinators of the partitions not in `led` as they are
/// held: led no more, or in another leadership or epoch.
fn drop_all(shard: &Shard, led: &[(u32, PartitionKey, Leadership, i32, Rc<Log>)]) {
    let stale: Vec<u32> = shard
        .txns
        .held
        .borrow()
        .iter()
        .filter(|(partition, held)| {
            !led.iter().any(|(p, key, leadership, epoch, _)| {
                p == *partition
                    && *key == held.key
                    && *leadership == held.leadership
                    && *epoch == held.core.coordinator_epoch()
            })
        })
        .map(|(partition, _)| *partition)
        .collect();
    for partition in stale {
        if let Some(held) = shard.txns.held.borrow_mut().remove(&partition) {
            drop_coordinator(partition, held);
        }
    }
}

/// Gives up a partition: its waiting requests are answered
/// `NOT_COORDINATOR` (its appends in flight report to nobody).
fn drop_coordinator(partition: u32, mut held: Held) {
    let answers = held.core.unload();
    driver::answer(&mut held, answers);
    for (_, waiting) in held.waiting.drain() {
        let _ = waiting.send(Err(sluice_replication::txn::TxnError::NotCoordinator));
    }
    tracing::info!(partition, "a transaction state partition dropped");
}

/// Reads the partition's records back and starts its coordinator serving,
/// if it is still the one made for this leadership.
async fn load(shard: &Rc<Shard>, partition: u32, generation: u64, log: &Log) {
    let records = match replay(log).await {
        Ok(records) => records,
        Err(error) => {
            // Left loading: its requests are told to retry until a change
            // of leadership makes another.
            tracing::error!(partition, %error, "a transaction state partition did not load");
            return;
        }
    };
    let count = records.len();
    let effects = driver::with_core(shard, partition, generation, |core| {
        core.load(records, now_ms())
    });
    if let Some(effects) = effects {
        tracing::info!(
            partition,
            records = count,
            "a transaction state partition loaded"
        );
        driver::run(shard, partition, generation, effects);
    }
}

/// The records of `log`, from its start to its end (after an election its
/// leader's log is what the in-sync replicas hold), oldest first. A record
/// that does not decode is skipped with a warning: the id it names (if
/// any) keeps its state from the records before.
async fn replay(log: &Log) -> Result<Vec<TxnRecord>, String> {
    let mut records = Vec::new();
    read_back(
        log,
        TXN_TOPIC,
        log.start_offset(),
        log.end_offset(),
        |batch| {
            let read = sluice_storage::batch::filter::for_each_record(batch, |record| {
                match TxnRecord::decode(
                    record.key.unwrap_or_default(),
                    record.value.unwrap_or_default(),
                ) {
                    Ok(decoded) => records.push(decoded),
                    Err(error) => tracing::warn!(%error, "a transaction state record skipped"),
                }
            });
            if let Err(error) = read {
                tracing::warn!(
                    offset = batch.base_offset().0, %error,
                    "a transaction state batch does not read; skipped"
                );
            }
        },
    )
    .await?;
    Ok(records)
}
