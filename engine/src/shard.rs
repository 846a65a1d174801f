//! A shard: one glommio executor pinned to one core, the partitions it owns,
//! its copy of the metadata, and the channels to every other shard.
//!
//! Work for a partition is a [`PartitionOp`]; it runs on the partition's
//! owner shard, reached directly when that is this shard and by channel
//! otherwise. Answers come back on a oneshot channel. Payloads are `Bytes`,
//! moved, never copied, on the way.

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    future::Future,
    path::PathBuf,
    pin::Pin,
    rc::Rc,
    sync::Arc,
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use futures_channel::oneshot;
use sluice_net::{
    kafka::convert::kafka_to_native,
    native::{messages::OffsetSpec, ErrorCode},
};
use sluice_storage::{
    batch::{Batch, BatchError},
    log::{AppendError, DeleteRecordsError, Log, LogConfig, ReadError},
    Offset, ShardId, TopicId,
};

use crate::{cluster_metadata::Metadata, controller::Controller, BrokerConfig};

/// Identifies a partition across shards: (topic id, partition).
pub type PartitionKey = (TopicId, u32);

/// An error to put in a response: a code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: ErrorCode,
    pub message: String,
}

impl Failure {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

/// What a fetch read from one partition.
#[derive(Debug, Clone, Default)]
pub struct FetchOutcome {
    /// Native: one `Bytes` per batch. Kafka: the batches one after another
    /// in one `Bytes` (a partition's `records` as Kafka answers them), or
    /// none.
    pub batches: Vec<Bytes>,
    pub high_watermark: u64,
    pub log_start: u64,
}

/// A partition's vital figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct PartitionStats {
    pub log_start: u64,
    pub log_end: u64,
    pub size_bytes: u64,
    pub segments: u32,
}

/// The protocol a batch came in or goes out in. Batches are stored as they
/// came; a reader in the other protocol gets them converted by the owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    /// A Sluice batch, native payload.
    Native,
    /// A Kafka RecordBatch v2.
    Kafka,
}

/// Where a produced batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Produced {
    pub base_offset: u64,
    pub log_start: u64,
}

/// An offset found by ListOffsets, and for one found by time the timestamp
/// of its record (-1 otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    pub offset: u64,
    pub timestamp: i64,
}

/// Work on one partition, done on its owner shard.
pub enum PartitionOp {
    /// Appends `batches` in order, all or none: every one is checked before
    /// any is appended. Answers where the first landed.
    Produce {
        batches: Vec<Bytes>,
        format: WireFormat,
        reply: oneshot::Sender<Result<Produced, Failure>>,
    },
    Fetch {
        offset: u64,
        max_bytes: usize,
        format: WireFormat,
        reply: oneshot::Sender<Result<FetchOutcome, Failure>>,
    },
    /// Resolves when data is readable at `offset`, the timeout passes, or
    /// the asker goes away.
    WaitForData {
        offset: u64,
        timeout: Duration,
        reply: oneshot::Sender<()>,
    },
    ListOffset {
        spec: OffsetSpec,
        reply: oneshot::Sender<Result<Option<Listed>, Failure>>,
    },
    Stats {
        reply: oneshot::Sender<Result<PartitionStats, Failure>>,
    },
    /// Moves the log start up to `before` (`None`: the high watermark);
    /// answers the new log start.
    DeleteRecords {
        before: Option<u64>,
        reply: oneshot::Sender<Result<u64, Failure>>,
    },
    Open {
        dir: PathBuf,
        config: LogConfig,
        reply: oneshot::Sender<Result<(), Failure>>,
    },
    /// Closes the partition's log for good: its topic is being deleted,
    /// and the controller then deletes the topic's directory, with the
    /// partition's in it.
    Remove {
        reply: oneshot::Sender<Result<(), Failure>>,
    },
    SetConfig {
        config: LogConfig,
        reply: oneshot::Sender<Result<(), Failure>>,
    },
}

/// Everything one shard may be sent.
pub enum ShardMessage {
    Partition(PartitionKey, PartitionOp),
    /// A new metadata snapshot; answer once it is in place.
    Metadata(Arc<Metadata>, oneshot::Sender<()>),
    /// For shard 0: a change to the metadata.
    Controller(crate::controller::ControllerOp),
    /// Stop accepting, finish what is in flight, close every log.
    Shutdown(oneshot::Sender<()>),
    /// Work to run on this shard (a group's requests on its coordinator).
    Run(Box<dyn FnOnce(Rc<Shard>) + Send>),
}

/// The state of one shard. One per core, on that core's executor.
pub struct Shard {
    pub id: usize,
    pub config: BrokerConfig,
    pub peers: Vec<async_channel::Sender<ShardMessage>>,
    pub metadata: RefCell<Arc<Metadata>>,
    pub partitions: RefCell<HashMap<PartitionKey, Rc<Log>>>,
    pub controller: Option<Controller>,
    pub connections: Cell<usize>,
    pub in_flight: Cell<usize>,
    /// How long the requests that arrived on this shard took to serve.
    pub request_latencies: crate::request_latency::RequestLatencies,
    pub shutting_down: Cell<bool>,
    /// Producer ids this shard may hand out (Kafka's InitProducerId), a
    /// block from the controller at a time.
    pub producer_ids: RefCell<std::ops::Range<i64>>,
    /// The consumer groups this shard coordinates.
    pub groups: crate::groups::Coordinator,
}

/// Something that completes with `T`: a local task or a remote answer.
pub type Answer<T> = Pin<Box<dyn Future<Output = T>>>;

impl Shard {
    pub fn shard_count(&self) -> usize {
        self.peers.len()
    }

    pub fn metadata(&self) -> Arc<Metadata> {
        self.metadata.borrow().clone()
    }

    /// The shard that owns a partition whose metadata says `shard`.
    pub fn owner(&self, shard: ShardId) -> usize {
        shard.index(self.shard_count())
    }

    /// Sends `op` for `key` to shard `owner` (run here if that is this
    /// shard) and returns its answer. `make` builds the op around the reply.
    pub fn call<T: 'static>(
        self: &Rc<Self>,
        owner: usize,
        key: PartitionKey,
        make: impl FnOnce(oneshot::Sender<T>) -> PartitionOp,
        gone: T,
    ) -> Answer<T> {
        let (reply, answer) = oneshot::channel();
        let op = make(reply);
        if owner == self.id {
            let shard = self.clone();
            glommio::spawn_local(async move { run_op(&shard, key, op).await }).detach();
        } else {
            // Straight into the owner's inbox; only a full inbox costs a task
            // that waits for room.
            match self.peers[owner].try_send(ShardMessage::Partition(key, op)) {
                Ok(()) | Err(async_channel::TrySendError::Closed(_)) => {}
                Err(async_channel::TrySendError::Full(message)) => {
                    let sender = self.peers[owner].clone();
                    glommio::spawn_local(async move {
                        let _ = sender.send(message).await;
                    })
                    .detach();
                }
            }
        }
        Box::pin(async move { answer.await.unwrap_or(gone) })
    }
}

impl Shard {
    /// [`Shard::call`] for an op that answers a `Result`: if the owner stops
    /// first, the answer is `ShuttingDown`.
    pub fn ask<T: 'static>(
        self: &Rc<Self>,
        owner: usize,
        key: PartitionKey,
        make: impl FnOnce(oneshot::Sender<Result<T, Failure>>) -> PartitionOp,
    ) -> Answer<Result<T, Failure>> {
        let gone = Err(Failure::new(
            ErrorCode::ShuttingDown,
            "the owner shard stopped",
        ));
        self.call(owner, key, make, gone)
    }
}

/// A partition's part of a request: on its way to the owner, or refused
/// before it went.
pub type Pending<T> = Result<Answer<Result<T, Failure>>, Failure>;

/// The answer of a [`Pending`].
pub async fn settle<T>(pending: Pending<T>) -> Result<T, Failure> {
    match pending {
        Ok(answer) => answer.await,
        Err(failure) => Err(failure),
    }
}

fn append_failure(error: AppendError) -> Failure {
    match error {
        AppendError::DiskFull { message } => Failure::new(ErrorCode::DiskFull, message),
        AppendError::Fenced(failure) => Failure::new(ErrorCode::StorageFailed, failure.to_string()),
        AppendError::Closed => Failure::new(ErrorCode::ShuttingDown, "the partition is closing"),
        error @ AppendError::ProducerFenced { .. } => {
            Failure::new(ErrorCode::ProducerFenced, error.to_string())
        }
        error @ AppendError::OutOfOrderSequence { .. } => {
            Failure::new(ErrorCode::OutOfOrderSequence, error.to_string())
        }
    }
}

fn read_failure(error: ReadError) -> Failure {
    match error {
        error @ ReadError::OffsetOutOfRange { .. } => {
            Failure::new(ErrorCode::OffsetOutOfRange, error.to_string())
        }
        error => Failure::new(ErrorCode::StorageFailed, error.to_string()),
    }
}

pub fn batch_failure(error: BatchError) -> Failure {
    match error {
        error @ BatchError::TooLarge { .. } => Failure::new(ErrorCode::TooLarge, error.to_string()),
        error => Failure::new(ErrorCode::CorruptBatch, error.to_string()),
    }
}

/// Appends `batches` in order, in flight together (each append is started
/// before the previous one completes); the first one's base offset, or the
/// first failure.
async fn append_all(log: &Log, mut batches: Vec<Batch>) -> Result<u64, Failure> {
    // The usual case, one batch: no futures to box.
    if batches.len() == 1 {
        let batch = batches.pop().expect("one batch");
        return log
            .append(batch)
            .await
            .map(|appended| appended.base_offset.0)
            .map_err(append_failure);
    }
    let mut appends: Vec<_> = batches
        .into_iter()
        .map(|batch| Some(Box::pin(log.append(batch))))
        .collect();
    let mut results: Vec<Option<Result<u64, Failure>>> = vec![None; appends.len()];
    std::future::poll_fn(|cx| {
        // Polled in order, so their offsets are assigned in order.
        for (append, result) in appends.iter_mut().zip(results.iter_mut()) {
            if let Some(future) = append {
                if let std::task::Poll::Ready(outcome) = future.as_mut().poll(cx) {
                    *result = Some(
                        outcome
                            .map(|appended| appended.base_offset.0)
                            .map_err(append_failure),
                    );
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
    let mut results = results.into_iter().flatten();
    let first = results
        .next()
        .unwrap_or_else(|| Err(Failure::new(ErrorCode::CorruptBatch, "no record batch")))?;
    results.find(Result::is_err).unwrap_or(Ok(first))
}

/// The first record at or after `offset` whose timestamp is at or after
/// `timestamp`, with that timestamp. The log finds the batch; its records
/// are read here, a Kafka batch's (compressed or not) through its native
/// form, so the answer is exact whatever the format. Falls back to
/// `offset` with no timestamp should the batch not read.
async fn record_at_or_after(log: &Log, offset: Offset, timestamp: i64) -> Listed {
    let fallback = Listed {
        offset: offset.0,
        timestamp: -1,
    };
    let Ok(batches) = log.read(offset, 1).await else {
        return fallback;
    };
    let Some(batch) = batches.into_iter().next() else {
        return fallback;
    };
    let batch = match batch.kafka_payload() {
        None => batch,
        Some(_) => match kafka_to_native(&batch) {
            Ok(native) => native,
            Err(_) => return fallback,
        },
    };
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
            return Listed {
                offset: record_offset,
                timestamp: record_timestamp,
            };
        }
    }
    fallback
}

/// A stored batch as a native reader takes it: as stored, or decoded from
/// Kafka's format.
fn native_bytes(batch: Batch) -> Result<Bytes, Failure> {
    match batch.kafka_payload() {
        None => Ok(batch.into_bytes()),
        Some(_) => kafka_to_native(&batch)
            .map(Batch::into_bytes)
            .map_err(|error| Failure::new(ErrorCode::StorageFailed, error.to_string())),
    }
}

/// Stored batches as a Kafka reader takes them: one after another, each a
/// RecordBatch v2. One batch stored in Kafka's format is a slice of what was
/// read (no copy); otherwise each is written once into one buffer, so the
/// response's encoder is the only other copy.
fn kafka_records(batches: Vec<Batch>) -> Result<Bytes, Failure> {
    if let [batch] = batches.as_slice() {
        if let Some(kafka) = batch.kafka_payload() {
            return Ok(kafka);
        }
    }
    let mut out = BytesMut::with_capacity(batches.iter().map(Batch::len).sum());
    for batch in &batches {
        batch
            .write_kafka(&mut out)
            .map_err(|error| Failure::new(ErrorCode::StorageFailed, error.to_string()))?;
    }
    Ok(out.freeze())
}

fn unknown_partition(key: PartitionKey) -> Failure {
    Failure::new(
        ErrorCode::NoSuchPartition,
        format!(
            "partition {} of topic {} is not on this broker",
            key.1, key.0
        ),
    )
}

/// Runs one partition op on this (the owner) shard.
pub async fn run_op(shard: &Rc<Shard>, key: PartitionKey, op: PartitionOp) {
    let log = shard.partitions.borrow().get(&key).cloned();
    match op {
        PartitionOp::Produce {
            batches,
            format,
            reply,
        } => {
            let Some(log) = log else {
                let _ = reply.send(Err(unknown_partition(key)));
                return;
            };
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
                Ok(batches) => append_all(&log, batches).await.map(|base_offset| Produced {
                    base_offset,
                    log_start: log.start_offset().0,
                }),
            };
            let _ = reply.send(result);
        }
        PartitionOp::Fetch {
            offset,
            max_bytes,
            format,
            reply,
        } => {
            let Some(log) = log else {
                let _ = reply.send(Err(unknown_partition(key)));
                return;
            };
            let result = match log.read(Offset(offset), max_bytes).await {
                Ok(batches) => match format {
                    WireFormat::Native => batches.into_iter().map(native_bytes).collect(),
                    WireFormat::Kafka => kafka_records(batches).map(|records| {
                        Some(records)
                            .filter(|r| !r.is_empty())
                            .into_iter()
                            .collect()
                    }),
                }
                .map(|batches| FetchOutcome {
                    batches,
                    high_watermark: log.visible_end().0,
                    log_start: log.start_offset().0,
                }),
                Err(error) => Err(read_failure(error)),
            };
            let _ = reply.send(result);
        }
        PartitionOp::WaitForData {
            offset,
            timeout,
            mut reply,
        } => {
            if let Some(log) = log {
                let data = log.wait_for_data(Offset(offset));
                let timer = glommio::timer::sleep(timeout);
                let gone = reply.cancellation();
                futures_lite::future::or(data, futures_lite::future::or(timer, gone)).await;
            }
            let _ = reply.send(());
        }
        PartitionOp::ListOffset { spec, reply } => {
            let Some(log) = log else {
                let _ = reply.send(Err(unknown_partition(key)));
                return;
            };
            let at = |offset: Offset| Listed {
                offset: offset.0,
                timestamp: -1,
            };
            let result = match spec {
                OffsetSpec::Earliest => Ok(Some(at(log.start_offset()))),
                OffsetSpec::Latest => Ok(Some(at(log.visible_end()))),
                OffsetSpec::Timestamp(timestamp) => {
                    match log.offset_for_timestamp(timestamp).await {
                        Ok(Some(offset)) => {
                            Ok(Some(record_at_or_after(&log, offset, timestamp).await))
                        }
                        Ok(None) => Ok(None),
                        Err(error) => Err(read_failure(error)),
                    }
                }
                // The first record at or after the largest timestamp is the
                // first with it.
                OffsetSpec::MaxTimestamp => match log.max_timestamp() {
                    None => Ok(None),
                    Some(max) => match log.offset_for_timestamp(max).await {
                        Ok(Some(offset)) => Ok(Some(record_at_or_after(&log, offset, max).await)),
                        Ok(None) => Ok(None),
                        Err(error) => Err(read_failure(error)),
                    },
                },
            };
            let _ = reply.send(result);
        }
        PartitionOp::Stats { reply } => {
            let result = log
                .map(|log| PartitionStats {
                    log_start: log.start_offset().0,
                    log_end: log.visible_end().0,
                    size_bytes: log.size_bytes(),
                    segments: log.segment_count() as u32,
                })
                .ok_or_else(|| unknown_partition(key));
            let _ = reply.send(result);
        }
        PartitionOp::DeleteRecords { before, reply } => {
            let Some(log) = log else {
                let _ = reply.send(Err(unknown_partition(key)));
                return;
            };
            let before = before.map_or_else(|| log.visible_end(), Offset);
            let result = log
                .delete_records(before)
                .await
                .map(|start| start.0)
                .map_err(|error| {
                    let code = match error {
                        DeleteRecordsError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
                        DeleteRecordsError::DiskFull { .. } => ErrorCode::DiskFull,
                        _ => ErrorCode::StorageFailed,
                    };
                    Failure::new(code, error.to_string())
                });
            let _ = reply.send(result);
        }
        PartitionOp::Open { dir, config, reply } => {
            let result = if log.is_some() {
                Ok(())
            } else {
                match Log::open(&dir, config).await {
                    Ok(log) => {
                        shard.partitions.borrow_mut().insert(key, Rc::new(log));
                        Ok(())
                    }
                    Err(error) => {
                        tracing::error!(dir = %dir.display(), %error, "partition did not open");
                        Err(Failure::new(ErrorCode::StorageFailed, error.to_string()))
                    }
                }
            };
            let _ = reply.send(result);
        }
        PartitionOp::Remove { reply } => {
            let removed = shard.partitions.borrow_mut().remove(&key);
            let result = match removed {
                Some(log) => log
                    .close()
                    .await
                    .map_err(|failure| Failure::new(ErrorCode::StorageFailed, failure.to_string())),
                None => Ok(()),
            };
            let _ = reply.send(result);
        }
        PartitionOp::SetConfig { config, reply } => {
            let result = match log {
                None => Err(unknown_partition(key)),
                Some(log) => log
                    .set_config(config)
                    .map_err(|error| Failure::new(ErrorCode::InvalidConfig, error.to_string())),
            };
            let _ = reply.send(result);
        }
    }
}
