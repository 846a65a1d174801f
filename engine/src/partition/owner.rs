//! What a partition's owner shard does with a [`PartitionOp`]: the only
//! code that touches a partition's log. One op at a time per task; the log
//! itself orders appends and coalesces their writes.

use std::{
    cell::RefCell,
    collections::{HashMap, HashSet},
    future::Future,
    path::{Path, PathBuf},
    rc::Rc,
};

use sluice_net::kafka::convert::kafka_to_native_runs;
use sluice_storage::{
    batch::{filter, Batch, BatchError},
    log::{AppendError, DeleteRecordsError, Log, LogConfig, ReadError, TransactionError},
    Offset,
};

use super::{
    fetch::{fetch, FetchAsk},
    ops::{
        Acks, ActiveProducer, Isolation, LeaderEpochs, Listed, OffsetQuery, PartitionKey,
        PartitionOp, PartitionStats, Partitions, Produced, TxnCheck, WireFormat,
    },
};
use crate::{
    error::{ErrorKind, Failure},
    replica::state::Replicas,
};
use sluice_replication::partition::epochs::EpochCache;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as i64)
}

fn append_failure(error: AppendError) -> Failure {
    match error {
        AppendError::DiskFull { message } => Failure::new(ErrorKind::DiskFull, message),
        AppendError::Fenced(failure) => Failure::new(ErrorKind::StorageFailed, failure.to_string()),
        AppendError::Closed => Failure::new(ErrorKind::ShuttingDown, "the partition is closing"),
        error @ AppendError::ProducerFenced { .. } => {
            Failure::new(ErrorKind::ProducerFenced, error.to_string())
        }
        error @ AppendError::OutOfOrderSequence { .. } => {
            Failure::new(ErrorKind::OutOfOrderSequence, error.to_string())
        }
        AppendError::Transaction(error @ TransactionError::MarkerFenced { .. }) => {
            Failure::new(ErrorKind::ProducerFenced, error.to_string())
        }
        AppendError::Transaction(error @ TransactionError::TooManyOpen) => {
            Failure::new(ErrorKind::InvalidRecord, error.to_string())
        }
        // Verified while the transaction was open, it ended before the
        // append: a late write.
        error @ (AppendError::Unverified { .. } | AppendError::NotInTransaction { .. }) => {
            Failure::new(ErrorKind::InvalidTxnState, error.to_string())
        }
        // This broker's epoch for the partition is behind its log's: a
        // newer leader wrote to it.
        error @ AppendError::StaleLeaderEpoch { .. } => {
            Failure::new(ErrorKind::NotLeader, error.to_string())
        }
        // A follower's refusals: a leader's append never meets them.
        error @ (AppendError::NotContiguous { .. } | AppendError::InvalidBatch { .. }) => {
            Failure::new(ErrorKind::Internal, error.to_string())
        }
    }
}

pub(super) fn read_failure(error: ReadError) -> Failure {
    match error {
        error @ ReadError::OffsetOutOfRange { .. } => {
            Failure::new(ErrorKind::OffsetOutOfRange, error.to_string())
        }
        error => Failure::new(ErrorKind::StorageFailed, error.to_string()),
    }
}

fn batch_failure(error: BatchError) -> Failure {
    match error {
        error @ BatchError::TooLarge { .. } => Failure::new(ErrorKind::TooLarge, error.to_string()),
        error => Failure::new(ErrorKind::CorruptBatch, error.to_string()),
    }
}

/// Appends `batches` in order, in flight together (each append is started
/// before the previous one completes); the first one's base offset and
/// the end of the last, or the first failure.
async fn append_all(
    log: &Log,
    mut batches: Vec<Batch>,
    transactions: TxnCheck,
) -> Result<(Offset, Offset), Failure> {
    let span = |appended: sluice_storage::log::Appended| {
        (appended.base_offset, Offset(appended.last_offset.0 + 1))
    };
    let append = |batch| async move {
        match transactions {
            TxnCheck::Unchecked => log.append(batch).await,
            TxnCheck::Joining { guard } => log.append_to_transaction(batch, guard).await,
        }
    };
    // The usual case, one batch: no futures to box.
    if batches.len() == 1 {
        let batch = batches.pop().expect("one batch");
        return append(batch).await.map(span).map_err(append_failure);
    }
    let mut appends: Vec<_> = batches
        .into_iter()
        .map(|batch| Some(Box::pin(append(batch))))
        .collect();
    let mut results: Vec<Option<Result<(Offset, Offset), Failure>>> = vec![None; appends.len()];
    std::future::poll_fn(|cx| {
        // Polled in order, so their offsets are assigned in order.
        for (append, result) in appends.iter_mut().zip(results.iter_mut()) {
            if let Some(future) = append {
                if let std::task::Poll::Ready(outcome) = future.as_mut().poll(cx) {
                    *result = Some(outcome.map(span).map_err(append_failure));
                    *append = None;
                }
            }
        }
        if results.iter().all(Option::is_some) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    let results: Result<Vec<(Offset, Offset)>, Failure> = results.into_iter().flatten().collect();
    let results = results?;
    match (results.first(), results.iter().map(|(_, end)| *end).max()) {
        (Some((base, _)), Some(end)) => Ok((*base, end)),
        _ => Err(Failure::new(ErrorKind::CorruptBatch, "no record batch")),
    }
}

/// The topic's rules for a producer's batches, checked before any is
/// appended (all or none): `max.message.bytes`, the timestamps'
/// `message.timestamp.before.max.ms` and `after.max.ms` against the
/// broker's clock, a key on every record of a compacted topic (Kafka's
/// INVALID_RECORD; the records are read, decompressed if need be), then
/// `compression.type`'s codec and, with
/// `message.timestamp.type=LogAppendTime`, each batch stamped with the time
/// of its append.
fn admit_batches(
    config: &LogConfig,
    batches: Vec<Batch>,
    format: WireFormat,
) -> Result<Vec<Batch>, Failure> {
    let now_ms = now_ms();
    let rules = config.timestamps;
    for batch in &batches {
        // Transactions are Kafka's: only a Kafka produce that names its
        // transactional id, verified with its coordinator, writes one.
        if format == WireFormat::Native && batch.is_transactional() {
            return Err(Failure::new(
                ErrorKind::InvalidRecord,
                "a transactional batch over the native protocol: transactions are written over the Kafka protocol",
            ));
        }
        // Kafka counts a batch's own bytes, not the broker's header.
        let bytes = batch.payload().len();
        if bytes > config.batch_bytes_max {
            return Err(Failure::new(
                ErrorKind::TooLarge,
                format!(
                    "a batch of {bytes} bytes is over the topic's max.message.bytes={}",
                    config.batch_bytes_max
                ),
            ));
        }
        if let Some(why) = rules.refuse(batch.first_timestamp(), batch.max_timestamp(), now_ms) {
            return Err(Failure::new(ErrorKind::InvalidTimestamp, why));
        }
        if config.cleanup_policy.compact {
            match filter::all_keyed(batch) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(Failure::new(
                        ErrorKind::InvalidRecord,
                        "a compacted topic does not accept a record without a key",
                    ))
                }
                Err(error) => {
                    return Err(Failure::new(
                        ErrorKind::CorruptBatch,
                        format!(
                            "the records of a batch for a compacted topic do not read: {error}"
                        ),
                    ))
                }
            }
        }
    }
    let batches = match config.recompression {
        Some(recompression) if format == WireFormat::Kafka => batches
            .iter()
            .map(|batch| {
                filter::recompress(batch, recompression.codec, recompression.level)
                    .map_err(|error| Failure::new(ErrorKind::CorruptBatch, error.to_string()))
            })
            .collect::<Result<Vec<Batch>, Failure>>()?,
        _ => batches,
    };
    if !rules.log_append_time {
        return Ok(batches);
    }
    if format == WireFormat::Native {
        return Err(Failure::new(
            ErrorKind::InvalidConfig,
            "the topic has message.timestamp.type=LogAppendTime, which native batches do not carry: produce with a Kafka client",
        ));
    }
    Ok(batches
        .into_iter()
        .map(|batch| batch.stamp_log_append_time(now_ms))
        .collect())
}

/// Waits until the in-sync replicas of `key` hold everything below `end`
/// (an `acks=all` write), at most `timeout`.
async fn committed(
    replicas: &Replicas,
    key: PartitionKey,
    end: Offset,
    timeout: std::time::Duration,
) -> Result<(), Failure> {
    let Some(committed) = replicas.committed(key, end) else {
        return Ok(());
    };
    let timed_out = async {
        glommio::timer::sleep(timeout).await;
        None
    };
    match futures_lite::future::or(async { Some(committed.await) }, timed_out).await {
        Some(Ok(())) => Ok(()),
        Some(Err(_)) => Err(Failure::new(
            ErrorKind::NotLeader,
            format!("{key}: this node stopped leading it before its in-sync replicas held the write"),
        )),
        None => Err(Failure::new(
            ErrorKind::TimedOut,
            format!("{key}: the in-sync replicas did not all hold the write within {timeout:?}; it may still be committed"),
        )),
    }
}

/// The first record at or after `offset` whose timestamp is at or after
/// `timestamp`, with that timestamp. The log finds the batch; its records
/// are read here, a Kafka batch's (compressed or not) through its native
/// form, so the answer is exact whatever the format. Falls back to
/// `offset` with no timestamp should the batch not read.
async fn record_at_or_after(log: &Log, offset: Offset, timestamp: i64) -> Listed {
    let fallback = listed(log, offset, -1);
    let Ok(batches) = log.read(offset, 1).await else {
        return fallback;
    };
    let Some(batch) = batches.into_iter().next() else {
        return fallback;
    };
    // A kafka batch of a compacted log may have gaps: several runs.
    let runs = match batch.kafka_payload() {
        None => vec![batch],
        Some(_) => match kafka_to_native_runs(&batch) {
            Ok(runs) => runs,
            Err(_) => return fallback,
        },
    };
    for batch in runs {
        let header = batch.header();
        let Ok(records) = batch.records() else {
            return fallback;
        };
        for (index, record) in records.iter().enumerate() {
            let record_offset = header.base_offset + index as u64;
            let record_timestamp = header
                .first_timestamp
                .wrapping_add(record.timestamp_delta());
            if record_offset >= offset.0 && record_timestamp >= timestamp {
                return listed(log, Offset(record_offset), record_timestamp);
            }
        }
    }
    fallback
}

/// The offset `query` asks for, as a reader of `isolation` sees the log:
/// the latest is the end of what it reads (the high watermark, or the
/// last stable offset), and an offset found by time at or past that end
/// is none, as Kafka answers.
async fn list_offset(
    log: &Log,
    query: OffsetQuery,
    isolation: Isolation,
) -> Result<Option<Listed>, Failure> {
    let end = match isolation {
        Isolation::Uncommitted => log.visible_end(),
        Isolation::Committed => log.stable_end(),
    };
    let found = match query {
        OffsetQuery::Earliest => return Ok(Some(listed(log, log.start_offset(), -1))),
        OffsetQuery::Latest => return Ok(Some(listed(log, end, -1))),
        OffsetQuery::Timestamp(timestamp) => first_at_or_after(log, timestamp).await?,
        // The first record at or after the largest timestamp is the first
        // with it.
        OffsetQuery::MaxTimestamp => match log.max_timestamp() {
            None => None,
            Some(max) => first_at_or_after(log, max).await?,
        },
    };
    Ok(found.filter(|listed| listed.offset < end))
}

/// The first record whose timestamp is at or after `timestamp`, if any.
async fn first_at_or_after(log: &Log, timestamp: i64) -> Result<Option<Listed>, Failure> {
    match log.offset_for_timestamp(timestamp).await {
        Ok(Some(offset)) => Ok(Some(record_at_or_after(log, offset, timestamp).await)),
        Ok(None) => Ok(None),
        Err(error) => Err(read_failure(error)),
    }
}

/// The log's leader epochs, as the replication crate reads them. The log
/// keeps them rising; one that does not is a broken log.
pub(crate) fn epoch_cache(log: &Log) -> Result<EpochCache, Failure> {
    let entries: Vec<(u32, u64)> = log
        .leader_epochs()
        .iter()
        .map(|(epoch, start)| (*epoch, start.0))
        .collect();
    EpochCache::from_entries(&entries).map_err(|error| {
        let message = format!(
            "{}: leader epochs {entries:?}: {error}",
            log.dir().display()
        );
        Failure::new(ErrorKind::StorageFailed, message)
    })
}

/// `offset` (and `timestamp`) listed with the leader epoch it was written
/// in.
fn listed(log: &Log, offset: Offset, timestamp: i64) -> Listed {
    Listed {
        offset,
        timestamp,
        leader_epoch: epoch_cache(log)
            .ok()
            .and_then(|epochs| epochs.epoch_at(offset.0)),
    }
}

fn unknown_partition(key: PartitionKey) -> Failure {
    if MOVING.with(|moving| moving.borrow().contains(&key)) {
        return Failure::new(
            ErrorKind::NotLeader,
            format!(
                "{key} is moving to another of this broker's log directories; try again shortly"
            ),
        );
    }
    Failure::new(
        ErrorKind::NoSuchPartition,
        format!("{key} is not on this broker"),
    )
}

thread_local! {
    /// The partitions of this shard (a shard is a thread) moving between
    /// log directories: closed, not gone.
    static MOVING: RefCell<HashSet<PartitionKey>> = RefCell::new(HashSet::new());
}

/// Moves `log`, partition `key`, to the directory `to`: closed (what is
/// queued is written and synced), copied on a blocking thread (the shard
/// serves its other partitions meanwhile), the old directory deleted, and
/// reopened at `to`. If the copy fails, it is reopened where it was.
async fn move_log(
    partitions: &Partitions,
    key: PartitionKey,
    log: Rc<Log>,
    to: PathBuf,
) -> Result<(), Failure> {
    let from = log.dir();
    if from == to {
        return Ok(());
    }
    let config = log.config();
    MOVING.with(|moving| moving.borrow_mut().insert(key));
    partitions.borrow_mut().remove(&key);
    let closed = log.close().await;
    drop(log);
    let copied = match closed {
        Ok(()) => {
            let (source, target) = (from.clone(), to.clone());
            glommio::executor()
                .spawn_blocking(move || copy_partition(&source, &target))
                .await
                .map_err(|error| format!("copying {} to {}: {error}", from.display(), to.display()))
        }
        Err(failure) => Err(format!("the log did not close cleanly: {failure}")),
    };
    // The old copy goes before the new one takes appends: a crash leaves
    // one copy with data, or two alike.
    let dir = match &copied {
        Ok(()) => match sluice_storage::deleter::delete(&from, std::time::Duration::ZERO) {
            Ok(()) => to,
            Err(error) => {
                tracing::warn!(dir = %from.display(), %error, "the moved partition's old directory was not deleted");
                to
            }
        },
        Err(_) => from,
    };
    let reopened = Log::open(&dir, config).await;
    MOVING.with(|moving| moving.borrow_mut().remove(&key));
    match reopened {
        Ok(log) => {
            partitions.borrow_mut().insert(key, Rc::new(log));
        }
        Err(error) => {
            tracing::error!(dir = %dir.display(), %error, "a moved partition did not open again");
            return Err(Failure::new(ErrorKind::StorageFailed, error.to_string()));
        }
    }
    copied.map_err(|message| Failure::new(ErrorKind::StorageFailed, message))
}

/// Copies partition directory `from` to `to` (which must not exist): into
/// `to.moving`, every file synced, then renamed into place and the parent
/// synced.
fn copy_partition(from: &Path, to: &Path) -> std::io::Result<()> {
    if to.exists() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} exists", to.display()),
        ));
    }
    let parent = to
        .parent()
        .expect("a partition's directory is in its topic's");
    std::fs::create_dir_all(parent)?;
    let staging = to.with_extension(crate::log_dirs::MOVING_SUFFIX);
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    std::fs::create_dir(&staging)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let target = staging.join(entry.file_name());
        std::fs::copy(entry.path(), &target)?;
        std::fs::File::open(&target)?.sync_all()?;
    }
    std::fs::File::open(&staging)?.sync_all()?;
    std::fs::rename(&staging, to)?;
    std::fs::File::open(parent)?.sync_all()?;
    if let Some(grandparent) = parent.parent() {
        std::fs::File::open(grandparent)?.sync_all()?;
    }
    Ok(())
}

/// The producers `log` knows, and those known only by a transaction
/// still open (their state forgotten past the log's cap), by producer id.
/// The largest timestamp of the batch at `base`, if the log holds it
/// below its visible end.
async fn batch_timestamp(log: &Log, base: Offset) -> Option<i64> {
    let batches = log.read(base, 1).await.ok()?;
    batches
        .first()
        .filter(|batch| batch.base_offset() == base)
        .map(Batch::max_timestamp)
}

async fn active_producers(log: &Log) -> Vec<ActiveProducer> {
    let open: HashMap<i64, (i16, Offset)> = log
        .open_transactions()
        .into_iter()
        .map(|(producer_id, epoch, first)| (producer_id, (epoch, first)))
        .collect();
    let mut producers = Vec::new();
    for (producer_id, state) in log.producers() {
        let last = state.batches.last();
        producers.push(ActiveProducer {
            producer_id,
            epoch: state.epoch,
            last_sequence: last.map(|batch| batch.last_sequence),
            txn_start: open.get(&producer_id).map(|(_, first)| *first),
            last_timestamp: match last {
                Some(batch) => batch_timestamp(log, batch.base_offset).await,
                None => None,
            },
        });
    }
    let known: HashSet<i64> = producers.iter().map(|p| p.producer_id).collect();
    producers.extend(
        open.iter()
            .filter(|(producer_id, _)| !known.contains(producer_id))
            .map(|(producer_id, (epoch, first))| ActiveProducer {
                producer_id: *producer_id,
                epoch: *epoch,
                last_sequence: None,
                txn_start: Some(*first),
                last_timestamp: None,
            }),
    );
    producers.sort_unstable_by_key(|producer| producer.producer_id);
    producers
}

/// Runs one partition op on the owner shard, whose partitions `partitions`
/// holds and replicates with `replicas`. An op for a partition it does not
/// hold is refused (`NoSuchPartition`), except opening it.
pub async fn run(partitions: &Partitions, replicas: &Replicas, key: PartitionKey, op: PartitionOp) {
    let log = partitions.borrow().get(&key).cloned();
    match (op, log) {
        (PartitionOp::Open { dir, config, reply }, log) => {
            let result = if log.is_some() {
                Ok(())
            } else {
                match Log::open(&dir, *config).await {
                    Ok(log) => {
                        partitions.borrow_mut().insert(key, Rc::new(log));
                        Ok(())
                    }
                    Err(error) => {
                        tracing::error!(dir = %dir.display(), %error, "partition did not open");
                        Err(Failure::new(ErrorKind::StorageFailed, error.to_string()))
                    }
                }
            };
            let _ = reply.send(result);
        }
        (PartitionOp::Remove { reply }, _) => {
            let removed = partitions.borrow_mut().remove(&key);
            let result = match removed {
                Some(log) => log
                    .close()
                    .await
                    .map_err(|failure| Failure::new(ErrorKind::StorageFailed, failure.to_string())),
                None => Ok(()),
            };
            let _ = reply.send(result);
        }
        (PartitionOp::Move { to, reply }, Some(log)) => {
            let _ = reply.send(move_log(partitions, key, log, to).await);
        }
        (op, Some(log)) => on_log(replicas, key, &log, op).await,
        (op, None) => op.refuse(unknown_partition(key)),
    }
}

/// Runs an op on the partition's log. Opening and removing are [`run`]'s.
async fn on_log(replicas: &Replicas, key: PartitionKey, log: &Rc<Log>, op: PartitionOp) {
    match op {
        PartitionOp::Produce {
            batches,
            format,
            leader_epoch,
            acks,
            timeout,
            transactions,
            reply,
        } => {
            // Only the leader appends; `acks=all` only with enough in sync.
            if let Err(failure) = replicas.admit(key, acks) {
                let _ = reply.send(Err(failure));
                return;
            }
            // Epochs only grow: a request routed by older metadata appends
            // in the epoch the log is in.
            log.set_leader_epoch(leader_epoch.max(log.last_epoch().unwrap_or(0)));
            // The one check of a foreign batch: on arrival at its owner.
            let checked: Result<Vec<Batch>, BatchError> = batches
                .into_iter()
                .map(|batch| match format {
                    WireFormat::Native => Batch::validate(batch),
                    WireFormat::Kafka => Batch::from_kafka(&batch),
                })
                .collect();
            let result = match checked {
                Err(error) => Err(batch_failure(error)),
                Ok(batches) => match admit_batches(&log.config(), batches, format) {
                    Ok(batches) => append_all(log, batches, transactions).await,
                    Err(failure) => Err(failure),
                },
            };
            // Durable now: the high watermark may move.
            replicas.touched(key);
            let result = match (result, acks) {
                (Ok((base_offset, end)), Acks::All) => committed(replicas, key, end, timeout)
                    .await
                    .map(|()| base_offset),
                (result, _) => result.map(|(base_offset, _)| base_offset),
            };
            let result = result.map(|base_offset| Produced {
                base_offset,
                log_start: log.start_offset(),
            });
            let _ = reply.send(result);
        }
        PartitionOp::Fetch {
            offset,
            max_bytes,
            format,
            isolation,
            from,
            reply,
        } => {
            let ask = FetchAsk {
                offset,
                max_bytes,
                format,
                isolation,
                from: &from,
            };
            let _ = reply.send(fetch(replicas, key, log, ask).await);
        }
        PartitionOp::WaitForData {
            offset,
            isolation,
            timeout,
            mut reply,
        } => {
            let data = async {
                match isolation {
                    Isolation::Uncommitted => log.wait_for_data(offset).await,
                    Isolation::Committed => log.wait_for_stable_data(offset).await,
                }
            };
            let timer = glommio::timer::sleep(timeout);
            let gone = reply.cancellation();
            futures_lite::future::or(data, futures_lite::future::or(timer, gone)).await;
            let _ = reply.send(Ok(()));
        }
        PartitionOp::ListOffset {
            query,
            isolation,
            reply,
        } => {
            if let Err(failure) = replicas.serves_reads(key) {
                let _ = reply.send(Err(failure));
                return;
            }
            let _ = reply.send(list_offset(log, query, isolation).await);
        }
        PartitionOp::LeaderEpochs { reply } => {
            let _ = reply.send(epoch_cache(log).map(|epochs| LeaderEpochs {
                epochs,
                end: log.visible_end(),
            }));
        }
        PartitionOp::WriteMarker {
            producer_id,
            producer_epoch,
            marker,
            coordinator_epoch,
            leader_epoch,
            timeout,
            reply,
        } => {
            let result = async {
                replicas.admit(key, Acks::All)?;
                log.set_leader_epoch(leader_epoch.max(log.last_epoch().unwrap_or(0)));
                let batch = Batch::marker(
                    producer_id,
                    producer_epoch,
                    marker,
                    coordinator_epoch,
                    now_ms(),
                )
                .map_err(batch_failure)?;
                let appended = append_all(log, vec![batch], TxnCheck::Unchecked).await;
                replicas.touched(key);
                let (_, end) = appended?;
                committed(replicas, key, end, timeout).await
            }
            .await;
            let _ = reply.send(result);
        }
        PartitionOp::TransactionGuard {
            producer_id,
            epoch,
            reply,
        } => {
            let guard = replicas
                .admit(key, Acks::Leader)
                .map(|()| log.transaction_guard(producer_id, epoch));
            let _ = reply.send(guard);
        }
        PartitionOp::Producers { reply } => {
            let _ = reply.send(Ok(active_producers(log).await));
        }
        PartitionOp::Stats { reply } => {
            let _ = reply.send(Ok(PartitionStats {
                dir: log.dir(),
                log_start: log.start_offset(),
                log_end: log.visible_end(),
                last_stable_offset: log.stable_end(),
                size_bytes: log.size_bytes(),
                segments: log.segment_count() as u32,
            }));
        }
        PartitionOp::DeleteRecords { before, reply } => {
            let before = before.unwrap_or_else(|| log.visible_end());
            let result = log.delete_records(before).await.map_err(|error| {
                let kind = match error {
                    DeleteRecordsError::OffsetOutOfRange { .. } => ErrorKind::OffsetOutOfRange,
                    DeleteRecordsError::DiskFull { .. } => ErrorKind::DiskFull,
                    _ => ErrorKind::StorageFailed,
                };
                Failure::new(kind, error.to_string())
            });
            let _ = reply.send(result);
        }
        PartitionOp::SetConfig { config, reply } => {
            let result = log
                .set_config(*config)
                .map_err(|error| Failure::new(ErrorKind::InvalidConfig, error.to_string()));
            let _ = reply.send(result);
        }
        PartitionOp::Open { .. } | PartitionOp::Remove { .. } | PartitionOp::Move { .. } => {
            unreachable!("opening and removing a partition are run's own")
        }
    }
}
