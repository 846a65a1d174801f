//! The coordinator's effects carried out, on the shard that holds it.
//!
//! A request is a call into the core with a fresh request id and a
//! channel for its answer ([`call`]); the core answers at once or once a
//! record is durable. Its records are appended to its partition of
//! `__transaction_state` with `acks=all` and reported durable once the
//! in-sync replicas hold them; an append reported failed is one that is
//! not in the log (refused before it was appended), as the core requires.
//! An append that this node stopped leading before it was committed is
//! reported to nobody: the partition is dropped and its next coordinator
//! reads back whatever the log kept. Markers are written by [`markers`],
//! and the results reported; failures that will be retried wait a backoff
//! first.
//!
//! Work started for one coordinator reports to it only: each carries the
//! coordinator's generation, and a coordinator made after a change of
//! leadership has another.

use std::{rc::Rc, time::Duration};

use sluice_replication::txn::{
    AppendId, Effect, Marker, MarkerResult, Reply, RequestId, TxnCoordinator, TxnError, TxnRecord,
};
use sluice_storage::batch::filter::kafka_batch;

use super::{markers, now_ms, Held, TXN_TOPIC};
use crate::{
    error::ErrorKind,
    partition::{Acks, PartitionKey},
    replica::state::Leadership,
    shard::Shard,
};

/// How long a request waits for its answer (its record to be held by the
/// in-sync replicas) before the client is told to retry; the change may
/// still be made, and the retry then finds it.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long markers that failed for a passing reason (no leader, too few
/// replicas in sync) wait before they are sent again.
const MARKERS_RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// How often the coordinators' clocks tick: timeouts of transactions,
/// markers sent again, ids expired.
const TICK: Duration = Duration::from_millis(500);

/// How long a request that found its id's previous transaction still
/// ending waits for it to end before it is answered
/// `CONCURRENT_TRANSACTIONS` (which the client retries after a backoff).
const SETTLE_WAIT: Duration = Duration::from_secs(2);

/// Runs `f` on the coordinator of `partition` if it is generation
/// `generation`; `None` if it was dropped or replaced since.
pub fn with_core<T>(
    shard: &Shard,
    partition: u32,
    generation: u64,
    f: impl FnOnce(&mut TxnCoordinator) -> T,
) -> Option<T> {
    let mut held = shard.txns.held.borrow_mut();
    let held = held.get_mut(&partition)?;
    (held.generation == generation).then(|| f(&mut held.core))
}

/// Why `partition` has no coordinator here: this node leads it and is
/// about to load it (the client retries), or it does not.
fn not_held(shard: &Shard, partition: u32) -> TxnError {
    let led = shard.metadata().topic(TXN_TOPIC).is_some_and(|topic| {
        let key = PartitionKey::new(topic.id, partition);
        shard.partitions.borrow().contains_key(&key)
            && shard.replicas.leadership(key) != Leadership::Not
    });
    if led {
        TxnError::CoordinatorLoadInProgress
    } else {
        TxnError::NotCoordinator
    }
}

/// Asks the coordinator of `partition` (this shard's) something that
/// writes: `ask` is given a request id and the time and returns the
/// core's effects, which are carried out; the answer is the core's.
pub async fn call(
    shard: &Rc<Shard>,
    partition: u32,
    ask: impl FnOnce(&mut TxnCoordinator, RequestId, u64) -> Vec<Effect>,
) -> Result<Reply, TxnError> {
    let request = shard.txns.request();
    let (reply, answer) = futures_channel::oneshot::channel();
    let (generation, effects) = {
        let mut held = shard.txns.held.borrow_mut();
        let Some(held) = held.get_mut(&partition) else {
            return Err(not_held(shard, partition));
        };
        held.waiting.insert(request, reply);
        (held.generation, ask(&mut held.core, request, now_ms()))
    };
    run(shard, partition, generation, effects);
    let timed_out = async {
        glommio::timer::sleep(ANSWER_TIMEOUT).await;
        None
    };
    match futures_lite::future::or(async { Some(answer.await) }, timed_out).await {
        Some(Ok(result)) => result,
        // Dropped unanswered: the coordinator was.
        Some(Err(_)) => Err(TxnError::NotCoordinator),
        None => {
            if let Some(held) = shard.txns.held.borrow_mut().get_mut(&partition) {
                held.waiting.remove(&request);
            }
            Err(TxnError::ConcurrentTransactions)
        }
    }
}

/// [`call`] for a request that opens or joins a transaction
/// (AddPartitionsToTxn, AddOffsetsToTxn, a partition leader's implicit
/// add): one that finds the previous transaction of `transactional_id`
/// still ending (its markers being written, PrepareCommit or
/// PrepareAbort) waits until it ended, at most [`SETTLE_WAIT`], and is
/// asked again, instead of being answered `CONCURRENT_TRANSACTIONS` at
/// once. A client that starts its next transaction right after a commit
/// returned (the commit returns once the outcome is decided) would
/// otherwise back off (librdkafka 20 ms, the Java client 20 ms) for what
/// takes the markers' write, about a millisecond.
pub async fn call_when_settled(
    shard: &Rc<Shard>,
    partition: u32,
    transactional_id: &str,
    ask: impl Fn(&mut TxnCoordinator, RequestId, u64) -> Vec<Effect>,
) -> Result<Reply, TxnError> {
    let deadline = std::time::Instant::now() + SETTLE_WAIT;
    loop {
        let result = call(shard, partition, &ask).await;
        if !matches!(result, Err(TxnError::ConcurrentTransactions)) {
            return result;
        }
        let Some(settled) = wait_for_end(shard, partition, transactional_id) else {
            return result;
        };
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let timed_out = async {
            glommio::timer::sleep(left).await;
            Err(futures_channel::oneshot::Canceled)
        };
        if futures_lite::future::or(settled, timed_out).await.is_err() {
            return result;
        }
    }
}

/// A wait for the transaction of `transactional_id` to end, if it is
/// ending (PrepareCommit or PrepareAbort durable); `None` otherwise.
fn wait_for_end(
    shard: &Shard,
    partition: u32,
    transactional_id: &str,
) -> Option<futures_channel::oneshot::Receiver<()>> {
    let mut held = shard.txns.held.borrow_mut();
    let held = held.get_mut(&partition)?;
    if !ending(&held.core, transactional_id) {
        return None;
    }
    let (settled, wait) = futures_channel::oneshot::channel();
    held.settling.push((transactional_id.to_string(), settled));
    Some(wait)
}

/// Whether the transaction of `transactional_id` is ending: its outcome
/// decided (PrepareCommit or PrepareAbort durable), its markers not all
/// written.
fn ending(core: &TxnCoordinator, transactional_id: &str) -> bool {
    core.metadata(transactional_id)
        .is_some_and(|metadata| metadata.state.preparing().is_some())
}

/// Wakes the requests of [`call_when_settled`] whose transaction is no
/// longer ending.
fn wake_settled(shard: &Shard, partition: u32) {
    let mut held = shard.txns.held.borrow_mut();
    let Some(held) = held.get_mut(&partition) else {
        return;
    };
    if held.settling.is_empty() {
        return;
    }
    let core = &held.core;
    let (still, settled): (Vec<_>, Vec<_>) = std::mem::take(&mut held.settling)
        .into_iter()
        .partition(|(id, _)| ending(core, id));
    held.settling = still;
    for (_, waiter) in settled {
        let _ = waiter.send(());
    }
}

/// Asks the coordinator of `partition` (this shard's) something that only
/// reads its state.
pub fn inspect<T>(
    shard: &Shard,
    partition: u32,
    ask: impl FnOnce(&TxnCoordinator) -> Result<T, TxnError>,
) -> Result<T, TxnError> {
    match shard.txns.held.borrow().get(&partition) {
        Some(held) => ask(&held.core),
        None => Err(not_held(shard, partition)),
    }
}

/// Sends the answers among `effects` to their waiting requests.
pub fn answer(held: &mut Held, effects: Vec<Effect>) {
    for effect in effects {
        if let Effect::Respond { request, result } = effect {
            if let Some(waiting) = held.waiting.remove(&request) {
                let _ = waiting.send(result);
            }
        }
    }
}

/// Carries out `effects` of the coordinator of `partition`, generation
/// `generation`: answers now, appends and markers in tasks of their own.
pub fn run(shard: &Rc<Shard>, partition: u32, generation: u64, effects: Vec<Effect>) {
    for effect in effects {
        match effect {
            Effect::Respond { request, result } => {
                let mut held = shard.txns.held.borrow_mut();
                let waiting = held
                    .get_mut(&partition)
                    .filter(|held| held.generation == generation)
                    .and_then(|held| held.waiting.remove(&request));
                if let Some(waiting) = waiting {
                    let _ = waiting.send(result);
                }
            }
            Effect::Append { append, record } => {
                let shard = shard.clone();
                glommio::spawn_local(async move {
                    append_record(&shard, partition, generation, append, record).await
                })
                .detach();
            }
            Effect::SendMarkers {
                transactional_id,
                markers,
            } => {
                let shard = shard.clone();
                glommio::spawn_local(async move {
                    send_markers(&shard, partition, generation, transactional_id, markers).await
                })
                .detach();
            }
        }
    }
}

/// What became of a record's append.
enum Written {
    /// The in-sync replicas hold it.
    Durable,
    /// It is not in the log and will not be.
    Refused(TxnError),
    /// This node stopped leading the partition before it was committed:
    /// whether it stays is for the next leader's log to say.
    Unknown,
}

async fn append_record(
    shard: &Rc<Shard>,
    partition: u32,
    generation: u64,
    append: AppendId,
    record: TxnRecord,
) {
    let key = shard
        .txns
        .held
        .borrow()
        .get(&partition)
        .filter(|held| held.generation == generation)
        .map(|held| held.key);
    let Some(key) = key else {
        return;
    };
    let written = write(shard, key, &record).await;
    let effects = with_core(shard, partition, generation, |core| match written {
        Written::Durable => core.log_appended(append, now_ms()),
        Written::Refused(error) => core.log_failed(append, error),
        Written::Unknown => Vec::new(),
    });
    if let Some(effects) = effects {
        run(shard, partition, generation, effects);
        wake_settled(shard, partition);
    }
}

/// Appends `record` to `__transaction_state` partition `key` with
/// `acks=all` and waits until the in-sync replicas hold it.
async fn write(shard: &Shard, key: PartitionKey, record: &TxnRecord) -> Written {
    let Some(log) = shard.partitions.borrow().get(&key).cloned() else {
        return Written::Refused(TxnError::NotCoordinator);
    };
    if let Err(failure) = shard.replicas.admit(key, Acks::All) {
        tracing::debug!(%key, %failure, "a transaction state record refused");
        return Written::Refused(match failure.kind {
            ErrorKind::NotLeader => TxnError::NotCoordinator,
            _ => TxnError::CoordinatorNotAvailable,
        });
    }
    // A tombstone (an expired id) has a null value, so the topic's
    // cleaner forgets the id.
    let (record_key, value) = record.encode();
    let pair = [(
        Some(&record_key[..]),
        (!value.is_empty()).then_some(&value[..]),
    )];
    let batch = match kafka_batch(&pair, 0, now_ms() as i64) {
        Ok(batch) => batch,
        Err(error) => {
            tracing::warn!(%key, %error, "a transaction state record does not make a batch");
            return Written::Refused(TxnError::CoordinatorNotAvailable);
        }
    };
    let appended = match log.append(batch).await {
        Ok(appended) => appended,
        Err(error) => {
            tracing::warn!(%key, %error, "a transaction state record not stored");
            return Written::Refused(TxnError::CoordinatorNotAvailable);
        }
    };
    shard.replicas.touched(key);
    match shard.replicas.committed(key, appended.last_offset.next()) {
        None => Written::Durable,
        Some(committed) => match committed.await {
            Ok(()) => Written::Durable,
            Err(_) => Written::Unknown,
        },
    }
}

async fn send_markers(
    shard: &Rc<Shard>,
    partition: u32,
    generation: u64,
    transactional_id: String,
    sent: Vec<Marker>,
) {
    let Some(decision) = sent.first().map(|marker| marker.decision) else {
        return;
    };
    let results = markers::write(shard, partition, &sent).await;
    if results
        .iter()
        .any(|(_, result)| *result == MarkerResult::Retriable)
    {
        glommio::timer::sleep(MARKERS_RETRY_BACKOFF).await;
    }
    if results
        .iter()
        .any(|(_, result)| *result == MarkerResult::CoordinatorFenced)
    {
        tracing::warn!(partition, %transactional_id, "markers refused: a newer coordinator wrote to the partition");
    }
    let effects = with_core(shard, partition, generation, |core| {
        core.markers_written(&transactional_id, decision, &results, now_ms())
    });
    if let Some(effects) = effects {
        run(shard, partition, generation, effects);
    }
}

/// Ticks the clocks of this shard's coordinators, forever.
pub async fn tick_loop(shard: Rc<Shard>) {
    loop {
        glommio::timer::sleep(TICK).await;
        let now = now_ms();
        let ticked: Vec<(u32, u64, Vec<Effect>)> = shard
            .txns
            .held
            .borrow_mut()
            .iter_mut()
            .map(|(partition, held)| (*partition, held.generation, held.core.tick(now)))
            .collect();
        for (partition, generation, effects) in ticked {
            run(&shard, partition, generation, effects);
        }
    }
}
