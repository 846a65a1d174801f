//! The batching producer.
//!
//! Records gather per partition in a [`BatchBuilder`] (written once, into
//! the buffer that becomes the batch) until the batch reaches
//! `batch_bytes` or `linger` has passed since its first record; then the
//! batch is sealed and sent in one produce request. At most
//! `in_flight_per_partition_max` batches of a partition are in flight at
//! once, so with the default of one a partition's records are stored in the
//! order they were sent; sealed batches wait their turn behind it.
//!
//! [`Producer::send`] appends the record at once, in call order, and returns
//! a [`Delivery`]: a future of the record's offset, ready when its batch is
//! stored. A record without a partition goes to the partition of its key
//! (Kafka's hash, see [`partition_for_key`]) or, without a key, to the
//! partitions in turn; the partition count comes from the topic's metadata,
//! asked for on the first such record of a topic (records sent to the topic
//! meanwhile wait, in order, for the answer).
//!
//! Memory: the bytes of records not yet stored are counted against
//! `buffer_bytes_max`; [`Producer::ready`] waits until they are under it.
//! A sender that does not call it is not held back.
//!
//! Each partition's batches go to the partition's leader (see
//! [`Client::produce_batch`], which also sends a batch again to the new
//! leader when the old one refused it as `NotLeader`). A batch that fails
//! otherwise is not sent again (its outcome might be unknown, and sending
//! it again could store it twice: this producer is not idempotent), except
//! when the broker refused it unread as `TooManyRequests`.

use std::{
    cell::{Cell, RefCell},
    collections::{HashMap, VecDeque},
    future::Future,
    pin::Pin,
    rc::Rc,
    task::{Context, Poll},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use sluice_storage::batch::{Batch, BatchBuilder, BATCH_BYTES_MAX, BATCH_HEADER_BYTES};

use super::{
    partition_for_key,
    sync::{Completion, Waiters},
    Client, ClientError,
};
use crate::native::{messages::Acks, ErrorCode};

/// What a record costs beyond its key, value and header bytes, at most: its
/// archived entry (about 33 bytes) and slack. Used to keep a batch under
/// [`BATCH_BYTES_MAX`] and to count buffered memory.
const RECORD_OVERHEAD_BYTES: usize = 64;

/// What each header costs beyond its name and value bytes, at most (its
/// archived entry is about 17 bytes).
const HEADER_OVERHEAD_BYTES: usize = 32;

/// A batch refused as `TooManyRequests` is sent again at most this many
/// times, after 10, 20, 40, ... ms: the broker's in-flight cap frees up as
/// fast as it answers, so a few tries ride out a burst.
const TOO_MANY_REQUESTS_RETRIES_MAX: u32 = 6;

/// How a producer batches and how long it waits.
#[derive(Debug, Clone)]
pub struct ProducerOptions {
    pub acks: Acks,
    /// A batch is sent once it holds about this many bytes. At most
    /// [`BATCH_BYTES_MAX`].
    pub batch_bytes: usize,
    /// A batch is sent at the latest this long after its first record.
    /// Zero: every record is sent alone, at once.
    pub linger: Duration,
    /// Bytes of records not yet stored that [`Producer::ready`] lets pass.
    pub buffer_bytes_max: usize,
    /// Batches of one partition in flight at once. One keeps a partition's
    /// records in the order they were sent even if a batch fails.
    pub in_flight_per_partition_max: usize,
}

impl Default for ProducerOptions {
    fn default() -> Self {
        ProducerOptions {
            acks: Acks::All,
            batch_bytes: 256 * 1024,
            linger: Duration::from_millis(5),
            buffer_bytes_max: 64 * 1024 * 1024,
            in_flight_per_partition_max: 1,
        }
    }
}

/// Where a record was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMetadata {
    pub partition: u32,
    /// `None` with [`Acks::None`]: the broker does not say.
    pub offset: Option<u64>,
}

type BatchOutcome = Completion<Result<Option<u64>, ClientError>>;

/// A record's place in a batch.
#[derive(Clone)]
struct Placement {
    outcome: Rc<BatchOutcome>,
    partition: u32,
    index: u32,
}

/// The outcome of one sent record: resolves when its batch is stored (or
/// written, with [`Acks::None`]) or has failed. Dropping it does not cancel
/// the record.
pub struct Delivery {
    state: DeliveryState,
}

enum DeliveryState {
    Placed(Placement),
    /// Waiting for the topic's metadata to choose a partition.
    Unplaced(Rc<Completion<Result<Placement, ClientError>>>),
    Failed(Option<ClientError>),
}

impl Future for Delivery {
    type Output = Result<RecordMetadata, ClientError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match &mut self.state {
                DeliveryState::Placed(placement) => {
                    return placement.outcome.poll_value(cx).map(|result| {
                        result.map(|base_offset| RecordMetadata {
                            partition: placement.partition,
                            offset: base_offset.map(|base| base + u64::from(placement.index)),
                        })
                    })
                }
                DeliveryState::Unplaced(placed) => match placed.poll_take(cx) {
                    Poll::Ready(Ok(placement)) => self.state = DeliveryState::Placed(placement),
                    Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                    Poll::Pending => return Poll::Pending,
                },
                DeliveryState::Failed(error) => {
                    return Poll::Ready(Err(error.take().expect("a delivery is polled once done")))
                }
            }
        }
    }
}

/// Gathers records into batches and sends them. See the module
/// documentation. Lives on the client's executor.
pub struct Producer {
    inner: Rc<Inner>,
}

struct Inner {
    client: Client,
    options: ProducerOptions,
    topics: RefCell<HashMap<String, TopicQueue>>,
    /// Bytes of records appended and not yet stored or failed.
    buffered_bytes: Cell<usize>,
    /// Woken when buffered bytes go down and when a topic's metadata
    /// arrives.
    progress: Waiters,
    next_generation: Cell<u64>,
    /// Batches sent again after the broker said it was too busy.
    retries: Rc<Cell<u64>>,
}

#[derive(Default)]
struct TopicQueue {
    partition_count: Option<u32>,
    next_round_robin: u32,
    /// Records waiting for the topic's metadata, in send order.
    unplaced: Option<Vec<Unplaced>>,
    partitions: HashMap<u32, PartitionQueue>,
}

/// A record sent before its topic's partition count was known: owned
/// copies, since the caller's slices are gone by then.
struct Unplaced {
    partition: Option<u32>,
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    placed: Rc<Completion<Result<Placement, ClientError>>>,
}

#[derive(Default)]
struct PartitionQueue {
    open: Option<OpenBatch>,
    /// Sealed batches waiting for their turn.
    sealed: VecDeque<SealedBatch>,
    /// The outcomes of sealed and in-flight batches, for `flush`.
    unfinished: Vec<Rc<BatchOutcome>>,
    in_flight: usize,
}

struct OpenBatch {
    builder: BatchBuilder,
    outcome: Rc<BatchOutcome>,
    /// Tells the linger timer whether the batch it was started for is
    /// still the open one.
    generation: u64,
    accounted_bytes: usize,
}

struct SealedBatch {
    batch: Batch,
    outcome: Rc<BatchOutcome>,
    accounted_bytes: usize,
}

/// A record as `send` takes it.
struct RecordRef<'a> {
    timestamp: i64,
    key: Option<&'a [u8]>,
    value: &'a [u8],
    headers: &'a [(&'a [u8], Option<&'a [u8]>)],
}

impl RecordRef<'_> {
    fn accounted_bytes(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(name, value)| name.len() + value.map_or(0, <[u8]>::len) + HEADER_OVERHEAD_BYTES)
            .sum();
        self.key.map_or(0, <[u8]>::len) + self.value.len() + headers + RECORD_OVERHEAD_BYTES
    }
}

impl Producer {
    pub fn new(client: Client, options: ProducerOptions) -> Producer {
        let mut options = options;
        options.batch_bytes = options.batch_bytes.clamp(1, BATCH_BYTES_MAX);
        options.in_flight_per_partition_max = options.in_flight_per_partition_max.max(1);
        Producer {
            inner: Rc::new(Inner {
                client,
                options,
                topics: RefCell::new(HashMap::new()),
                buffered_bytes: Cell::new(0),
                progress: Waiters::default(),
                next_generation: Cell::new(0),
                retries: Rc::default(),
            }),
        }
    }

    pub fn options(&self) -> &ProducerOptions {
        &self.inner.options
    }

    /// Appends a record to its partition's open batch, now, and returns the
    /// future of its offset. The timestamp is the current time.
    ///
    /// `partition`: `None` chooses one (by key hash, else in turn). A
    /// record too large for any batch fails at once.
    pub fn send(
        &self,
        topic: &str,
        partition: Option<u32>,
        key: Option<&[u8]>,
        value: &[u8],
        headers: &[(&[u8], Option<&[u8]>)],
    ) -> Delivery {
        let record = RecordRef {
            timestamp: now_ms(),
            key,
            value,
            headers,
        };
        let inner = &self.inner;
        let mut topics = inner.topics.borrow_mut();
        if !topics.contains_key(topic) {
            topics.insert(topic.to_string(), TopicQueue::default());
        }
        let queue = topics.get_mut(topic).expect("inserted");
        let needs_metadata = partition.is_none() && queue.partition_count.is_none();
        if queue.unplaced.is_some() || needs_metadata {
            if queue.unplaced.is_none() {
                queue.unplaced = Some(Vec::new());
                inner.resolve(topic);
            }
            let placed = Rc::new(Completion::new());
            queue.unplaced.as_mut().expect("resolving").push(Unplaced {
                partition,
                timestamp: record.timestamp,
                key: key.map(<[u8]>::to_vec),
                value: value.to_vec(),
                headers: headers
                    .iter()
                    .map(|(name, value)| (name.to_vec(), value.map(<[u8]>::to_vec)))
                    .collect(),
                placed: placed.clone(),
            });
            return Delivery {
                state: DeliveryState::Unplaced(placed),
            };
        }
        let state = match inner.place(queue, topic, partition, &record) {
            Ok(placement) => DeliveryState::Placed(placement),
            Err(error) => DeliveryState::Failed(Some(error)),
        };
        Delivery { state }
    }

    /// Waits until the bytes of records not yet stored are under
    /// `buffer_bytes_max`. A sender that calls this before each `send`
    /// keeps the producer's memory bounded.
    pub async fn ready(&self) {
        let inner = &self.inner;
        inner
            .progress
            .until(|| inner.buffered_bytes.get() < inner.options.buffer_bytes_max)
            .await;
    }

    /// Bytes of records sent and not yet stored (or failed).
    pub fn buffered_bytes(&self) -> usize {
        self.inner.buffered_bytes.get()
    }

    /// Sends every open batch now and waits until every record sent so far
    /// is stored or has failed. Returns the first batch's error, if any
    /// failed; each record's own outcome is in its [`Delivery`].
    /// Batches sent again so far because the broker was too busy to take
    /// them (they count once per resend).
    pub fn retries(&self) -> u64 {
        self.inner.retries.get()
    }

    pub async fn flush(&self) -> Result<(), ClientError> {
        let inner = &self.inner;
        inner
            .progress
            .until(|| {
                inner
                    .topics
                    .borrow()
                    .values()
                    .all(|queue| queue.unplaced.is_none())
            })
            .await;
        let mut outcomes = Vec::new();
        {
            let mut topics = inner.topics.borrow_mut();
            for (topic, queue) in topics.iter_mut() {
                for (partition, partition_queue) in queue.partitions.iter_mut() {
                    partition_queue.seal();
                    inner.dispatch(topic, *partition, partition_queue);
                    outcomes.extend(partition_queue.unfinished.iter().cloned());
                }
            }
        }
        let mut first_error = None;
        for outcome in outcomes {
            if let Err(error) = outcome.wait().await {
                first_error.get_or_insert(error);
            }
        }
        match first_error {
            None => Ok(()),
            Some(error) => Err(error),
        }
    }
}

impl Inner {
    /// Chooses the record's partition and appends it to that partition's
    /// open batch.
    fn place(
        self: &Rc<Inner>,
        queue: &mut TopicQueue,
        topic: &str,
        partition: Option<u32>,
        record: &RecordRef<'_>,
    ) -> Result<Placement, ClientError> {
        let partition = match (partition, queue.partition_count) {
            (Some(partition), Some(count)) if partition >= count => {
                return Err(ClientError::broker(
                    ErrorCode::NoSuchPartition,
                    format!("topic {topic} has {count} partitions, no partition {partition}"),
                ))
            }
            (Some(partition), _) => partition,
            (None, Some(count)) => match record.key {
                Some(key) => partition_for_key(key, count),
                None => {
                    let partition = queue.next_round_robin % count;
                    queue.next_round_robin = queue.next_round_robin.wrapping_add(1);
                    partition
                }
            },
            (None, None) => unreachable!("records wait for the partition count"),
        };
        let accounted_bytes = record.accounted_bytes();
        if BATCH_HEADER_BYTES + accounted_bytes + 64 > BATCH_BYTES_MAX {
            return Err(ClientError::InvalidArgument(format!(
                "a record of about {accounted_bytes} bytes does not fit in a batch (at most {BATCH_BYTES_MAX} bytes)"
            )));
        }
        let partition_queue = queue.partitions.entry(partition).or_default();
        if partition_queue
            .open
            .as_ref()
            .is_some_and(|open| open.builder.estimated_bytes() + accounted_bytes > BATCH_BYTES_MAX)
        {
            partition_queue.seal();
        }
        if partition_queue.open.is_none() {
            let generation = self.next_generation.get();
            self.next_generation.set(generation + 1);
            partition_queue.open = Some(OpenBatch {
                builder: BatchBuilder::with_capacity(self.options.batch_bytes.min(64 * 1024)),
                outcome: Rc::new(Completion::new()),
                generation,
                accounted_bytes: 0,
            });
            if !self.options.linger.is_zero() {
                self.start_linger(topic, partition, generation);
            }
        }
        let open = partition_queue.open.as_mut().expect("opened");
        open.builder
            .push(record.timestamp, record.key, record.value, record.headers);
        open.accounted_bytes += accounted_bytes;
        self.buffered_bytes
            .set(self.buffered_bytes.get() + accounted_bytes);
        let placement = Placement {
            outcome: open.outcome.clone(),
            partition,
            index: u32::try_from(open.builder.record_count() - 1).expect("records fit u32"),
        };
        if self.options.linger.is_zero()
            || open.builder.estimated_bytes() >= self.options.batch_bytes
        {
            partition_queue.seal();
        }
        self.dispatch(topic, partition, partition_queue);
        Ok(placement)
    }

    fn start_linger(self: &Rc<Inner>, topic: &str, partition: u32, generation: u64) {
        let inner = Rc::downgrade(self);
        let topic = topic.to_string();
        let linger = self.options.linger;
        glommio::spawn_local(async move {
            glommio::timer::sleep(linger).await;
            if let Some(inner) = inner.upgrade() {
                inner.linger_expired(&topic, partition, generation);
            }
        })
        .detach();
    }

    fn linger_expired(self: &Rc<Inner>, topic: &str, partition: u32, generation: u64) {
        let mut topics = self.topics.borrow_mut();
        let Some(queue) = topics
            .get_mut(topic)
            .and_then(|queue| queue.partitions.get_mut(&partition))
        else {
            return;
        };
        if queue
            .open
            .as_ref()
            .is_some_and(|open| open.generation == generation)
        {
            queue.seal();
            self.dispatch(topic, partition, queue);
        }
    }

    /// Sends sealed batches while the partition has room in flight.
    fn dispatch(self: &Rc<Inner>, topic: &str, partition: u32, queue: &mut PartitionQueue) {
        while queue.in_flight < self.options.in_flight_per_partition_max {
            let Some(sealed) = queue.sealed.pop_front() else {
                return;
            };
            queue.in_flight += 1;
            let inner = Rc::downgrade(self);
            let client = self.client.clone();
            let acks = self.options.acks;
            let topic = topic.to_string();
            let retries = self.retries.clone();
            glommio::spawn_local(async move {
                let result =
                    produce_with_retries(&client, &topic, partition, sealed.batch, acks, &retries)
                        .await;
                if let Err(error) = &result {
                    tracing::debug!(topic, partition, %error, "batch failed");
                }
                sealed.outcome.complete(result);
                if let Some(inner) = inner.upgrade() {
                    inner.finished(&topic, partition, &sealed.outcome, sealed.accounted_bytes);
                }
            })
            .detach();
        }
    }

    fn finished(
        self: &Rc<Inner>,
        topic: &str,
        partition: u32,
        outcome: &Rc<BatchOutcome>,
        accounted_bytes: usize,
    ) {
        self.buffered_bytes
            .set(self.buffered_bytes.get() - accounted_bytes);
        self.progress.wake_all();
        let mut topics = self.topics.borrow_mut();
        let Some(queue) = topics
            .get_mut(topic)
            .and_then(|queue| queue.partitions.get_mut(&partition))
        else {
            return;
        };
        queue.in_flight -= 1;
        queue
            .unfinished
            .retain(|unfinished| !Rc::ptr_eq(unfinished, outcome));
        self.dispatch(topic, partition, queue);
    }

    /// Asks for the topic's metadata; when it comes, the records waiting
    /// for it are placed in the order they were sent.
    fn resolve(self: &Rc<Inner>, topic: &str) {
        let inner = Rc::downgrade(self);
        let client = self.client.clone();
        let topic = topic.to_string();
        glommio::spawn_local(async move {
            let result = client.topic_metadata(&topic).await.and_then(|info| {
                match u32::try_from(info.partitions.len()) {
                    Ok(count) if count > 0 => Ok(count),
                    _ => Err(ClientError::broker(
                        ErrorCode::NoSuchPartition,
                        format!("topic {topic} has no partitions"),
                    )),
                }
            });
            if let Some(inner) = inner.upgrade() {
                inner.resolved(&topic, result);
            }
        })
        .detach();
    }

    fn resolved(self: &Rc<Inner>, topic: &str, result: Result<u32, ClientError>) {
        let mut topics = self.topics.borrow_mut();
        let Some(queue) = topics.get_mut(topic) else {
            return;
        };
        let unplaced = queue.unplaced.take().unwrap_or_default();
        match result {
            Ok(count) => {
                queue.partition_count = Some(count);
                for record in unplaced {
                    let headers: Vec<(&[u8], Option<&[u8]>)> = record
                        .headers
                        .iter()
                        .map(|(name, value)| (name.as_slice(), value.as_deref()))
                        .collect();
                    let record_ref = RecordRef {
                        timestamp: record.timestamp,
                        key: record.key.as_deref(),
                        value: &record.value,
                        headers: &headers,
                    };
                    let placed = self.place(queue, topic, record.partition, &record_ref);
                    record.placed.complete(placed);
                }
            }
            Err(error) => {
                tracing::debug!(topic, %error, "no metadata for topic");
                for record in unplaced {
                    record.placed.complete(Err(error.clone()));
                }
            }
        }
        drop(topics);
        self.progress.wake_all();
    }
}

impl PartitionQueue {
    /// Turns the open batch, if any, into a sealed one waiting to be sent.
    fn seal(&mut self) {
        let Some(open) = self.open.take() else {
            return;
        };
        self.unfinished.push(open.outcome.clone());
        self.sealed.push_back(SealedBatch {
            batch: open.builder.finish(),
            outcome: open.outcome,
            accounted_bytes: open.accounted_bytes,
        });
    }
}

/// Records that never left fail when their producer goes away, so that no
/// delivery waits forever. Batches in flight finish on their own.
impl Drop for Inner {
    fn drop(&mut self) {
        let error = ClientError::Closed {
            reason: "the producer was dropped before the record was sent".to_string(),
        };
        for queue in self.topics.get_mut().values_mut() {
            for record in queue.unplaced.take().unwrap_or_default() {
                record.placed.complete(Err(error.clone()));
            }
            for partition in queue.partitions.values_mut() {
                if let Some(open) = partition.open.take() {
                    open.outcome.complete(Err(error.clone()));
                }
                for sealed in partition.sealed.drain(..) {
                    sealed.outcome.complete(Err(error.clone()));
                }
            }
        }
    }
}

async fn produce_with_retries(
    client: &Client,
    topic: &str,
    partition: u32,
    batch: Batch,
    acks: Acks,
    retries: &Cell<u64>,
) -> Result<Option<u64>, ClientError> {
    let mut tries = 0;
    loop {
        match client
            .produce_batch(topic, partition, batch.clone(), acks)
            .await
        {
            Err(error)
                if error.code() == Some(ErrorCode::TooManyRequests)
                    && tries < TOO_MANY_REQUESTS_RETRIES_MAX =>
            {
                retries.set(retries.get() + 1);
                glommio::timer::sleep(Duration::from_millis(10 << tries)).await;
                tries += 1;
            }
            result => return result,
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
