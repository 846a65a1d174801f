//! The one shape every driver takes, and everything drivers share.
//!
//! A driver ([`Driver`]) says how to prepare a run (create topics, check a
//! server) and clean up after it, and how to connect one producer and one
//! consumer. Everything else is here, once, for every driver:
//!
//! * the harness thread's body ([`worker`]): connect every client, wait for
//!   every other thread, start the tasks;
//! * the open-loop producer loop ([`produce`]): the [`Pacer`]'s schedule,
//!   message sizes, keys, the partition a key or the turn picks, the send
//!   time stamped into the value;
//! * the consumer loop ([`consume`]): read until the run has drained, and
//!   after a failure count it, pause and reconnect;
//! * the [`Recorder`] through which a driver reports what happened to each
//!   record, with the time it happened.
//!
//! A driver's clients run on the harness thread's glommio executor, pinned
//! to its core. A client library with threads or a runtime of its own
//! (librdkafka, the NATS client on tokio) starts them from that thread, so
//! they inherit its CPU affinity, and stamps each outcome with the run's
//! clock where it happens: the hop back to the harness thread is never in a
//! latency.

use std::{
    fmt::Display,
    sync::{atomic::Ordering, mpsc::Sender, Arc},
    time::Duration,
};

use glommio::timer::sleep;
use sluice_net::client::partition_for_key;

use crate::{
    harness::{self, Metrics, Tasks},
    metrics::Report,
    random::Draws,
    run::{ConsumerPlan, ProducerPlan, RunContext, Timeline, WorkerPlan},
    schedule::{Nanos, Pacer, RunClock},
    workload::{Keys, Workload, STAMP_BYTES},
    BenchError,
};

/// A consumer that failed waits this long before it reconnects.
pub const RECONNECT_PAUSE: Duration = Duration::from_millis(200);

/// How long a consumer waits for records at the end of the log before it
/// looks at the run again: short, so that it notices the end of the run
/// soon.
pub const FETCH_WAIT: Duration = Duration::from_millis(100);

/// What a run needs to prepare and clean up.
#[derive(Debug, Clone, Copy)]
pub struct Setup<'a> {
    /// The CPU setup work may use (the first harness core).
    pub cpu: usize,
    pub brokers: &'a str,
    pub workload: &'a Workload,
    pub topics: &'a [String],
}

/// A system the harness can drive.
///
/// Its futures run on one pinned executor and never cross threads, so
/// they need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait Driver: Clone + Send + 'static {
    type Producer: Producer;
    type Consumer: Consumer;

    /// Names the driver in results and thread names.
    const NAME: &'static str;

    /// Before the run: creates the run's topics, or checks that the
    /// server answers and holds nothing of the run's.
    fn prepare(&self, setup: &Setup<'_>) -> Result<(), BenchError>;

    /// After the run: deletes the run's topics.
    fn clean_up(&self, setup: &Setup<'_>) -> Result<(), BenchError>;

    /// Connects one producer.
    async fn producer(
        &self,
        context: &RunContext,
        plan: &ProducerPlan,
    ) -> Result<Self::Producer, BenchError>;

    /// Connects one consumer of `plan.partitions`, reading from the start
    /// of the fresh topic.
    async fn consumer(
        &self,
        context: &RunContext,
        plan: &ConsumerPlan,
    ) -> Result<Self::Consumer, BenchError>;
}

/// One record handed to a producer.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub topic: &'a str,
    pub partition: u32,
    pub key: Option<&'a [u8]>,
    /// Starts with the intended send time ([`STAMP_BYTES`]).
    pub value: &'a [u8],
    pub intended: Nanos,
}

impl Record<'_> {
    /// Key and value bytes, as throughput counts them.
    pub fn bytes(&self) -> usize {
        self.value.len() + self.key.map_or(0, <[u8]>::len)
    }
}

/// A record sent, waiting for its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub intended: Nanos,
    pub bytes: usize,
}

#[allow(async_fn_in_trait)]
pub trait Producer {
    /// Called once, on the harness thread, before the first record: starts
    /// whatever hears this producer's outcomes and reports them to
    /// `recorder`.
    fn start(&mut self, recorder: &Recorder);

    /// Hands one record over. May wait for room (bounded memory); the wait
    /// is in the record's latency, counted from `record.intended`. An
    /// error stops this producer; the outcomes of what it sent are still
    /// heard.
    async fn send(&mut self, record: Record<'_>, recorder: &Recorder) -> Result<(), BenchError>;

    /// Nothing more is due for now: out with whatever is gathered.
    async fn idle(&mut self) -> Result<(), BenchError> {
        Ok(())
    }

    /// After the last record: waits for every outcome until the drain
    /// deadline, counts the records never heard of as unacknowledged and
    /// the client's own resends as retries.
    async fn finish(self, recorder: &Recorder);
}

#[allow(async_fn_in_trait)]
pub trait Consumer {
    /// Waits up to about [`FETCH_WAIT`] for records and reports each one
    /// read to `recorder`.
    async fn poll(&mut self, recorder: &Recorder) -> Result<(), BenchError>;

    /// After a failure: connects again, reading on from the first record
    /// not yet seen.
    async fn reconnect(&mut self, context: &RunContext) -> Result<(), BenchError>;
}

/// Where a harness thread's producers and consumers report what happened
/// to each record: its counters, and the run's shared counts that decide
/// when the run has drained. One per harness thread, cloned into its
/// tasks.
#[derive(Clone)]
pub struct Recorder {
    context: Arc<RunContext>,
    timeline: Timeline,
    metrics: Metrics,
}

impl Recorder {
    pub fn new(context: Arc<RunContext>, timeline: Timeline, metrics: Metrics) -> Recorder {
        Recorder {
            context,
            timeline,
            metrics,
        }
    }

    pub fn context(&self) -> &Arc<RunContext> {
        &self.context
    }

    pub fn clock(&self) -> RunClock {
        self.context.clock
    }

    pub fn timeline(&self) -> Timeline {
        self.timeline
    }

    pub fn now(&self) -> Nanos {
        self.context.clock.now()
    }

    /// A record was handed to the client at `now`.
    pub fn sent(&self, now: Nanos) {
        self.metrics.borrow_mut().sent(now);
    }

    /// The record `pending` was acknowledged at `at`.
    pub fn acknowledged(&self, at: Nanos, pending: Pending) {
        self.metrics
            .borrow_mut()
            .acknowledged(at, pending.intended, pending.bytes);
        self.context.acknowledged.fetch_add(1, Ordering::AcqRel);
    }

    /// A record's delivery failed at `at`. The first failure of a thread
    /// is printed; every one is counted.
    pub fn produce_failed(&self, at: Nanos, error: &dyn Display) {
        say_once(error);
        self.metrics.borrow_mut().produce_failed(at);
    }

    /// `count` records the run ended without hearing about.
    pub fn unacknowledged(&self, count: u64) {
        let mut metrics = self.metrics.borrow_mut();
        for _ in 0..count {
            metrics.unacknowledged();
        }
    }

    /// A record read at `at`; `intended` is the send time it carried
    /// ([`stamp_of`]).
    pub fn consumed(&self, at: Nanos, intended: Option<Nanos>, bytes: usize) {
        self.metrics.borrow_mut().consumed(at, intended, bytes);
        self.context.consumed.fetch_add(1, Ordering::AcqRel);
    }

    pub fn consume_failed(&self, what: &str, error: &dyn Display) {
        eprintln!("sluice-bench: {what} failed: {error}");
        self.metrics.borrow_mut().consume_failed(self.now());
    }

    /// `count` more requests were sent again.
    pub fn retried(&self, count: u64) {
        self.metrics.borrow_mut().retried(count);
    }
}

fn say_once(error: &dyn Display) {
    thread_local! {
        static SAID: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if !SAID.with(|said| said.replace(true)) {
        eprintln!("sluice-bench: a record failed: {error}");
    }
}

/// The intended send time a record's value carries in its first
/// [`STAMP_BYTES`], on the run's clock; `None` for a shorter value. Any
/// thread may call it.
pub fn stamp_of(clock: RunClock, value: &[u8]) -> Option<Nanos> {
    let stamp = value.get(..STAMP_BYTES)?;
    Some(clock.from_unix_ns(u64::from_le_bytes(
        stamp.try_into().expect("STAMP_BYTES bytes"),
    )))
}

/// The records one producer sends: sizes, keys and partitions drawn from
/// the workload with a seed of its own, the value stamped with each
/// record's intended send time.
pub struct Records {
    draws: Draws,
    value: Vec<u8>,
    key: [u8; 8],
    keys: Keys,
    partitions: u32,
    next_partition: u32,
    message_size: crate::workload::MessageSize,
}

impl Records {
    pub fn new(workload: &Workload, producer_index: u64) -> Records {
        let mut draws = Draws::new(0x5eed ^ producer_index.wrapping_mul(0x9e37_79b9));
        let mut value = vec![0u8; workload.message_size.max_bytes() as usize];
        draws.fill(&mut value);
        let partitions = workload.partitions_per_topic;
        Records {
            draws,
            value,
            key: [0; 8],
            keys: workload.keys,
            partitions,
            // Producers of a topic start on different partitions.
            next_partition: (producer_index % u64::from(partitions)) as u32,
            message_size: workload.message_size,
        }
    }

    /// The next record, intended at `intended`.
    pub fn next<'a>(&'a mut self, topic: &'a str, intended: Nanos, clock: RunClock) -> Record<'a> {
        let size = self.message_size.sample(self.draws.next_u64());
        let (key, partition) = match self.keys {
            Keys::None => {
                let partition = self.next_partition;
                self.next_partition = (self.next_partition + 1) % self.partitions;
                (None, partition)
            }
            Keys::Random => {
                self.key = self.draws.next_u64().to_le_bytes();
                (
                    Some(&self.key[..]),
                    partition_for_key(&self.key, self.partitions),
                )
            }
            Keys::Space(space) => {
                self.key = (self.draws.next_u64() % space).to_le_bytes();
                (
                    Some(&self.key[..]),
                    partition_for_key(&self.key, self.partitions),
                )
            }
        };
        self.value[..STAMP_BYTES].copy_from_slice(&clock.to_unix_ns(intended).to_le_bytes());
        Record {
            topic,
            partition,
            key,
            value: &self.value[..size],
            intended,
        }
    }
}

/// The body of one harness thread running `plan` with `driver`.
pub async fn worker<D: Driver>(
    driver: D,
    plan: WorkerPlan,
    context: Arc<RunContext>,
    reports: Sender<Report>,
) -> Result<(), BenchError> {
    // Connect everything first: a run starts only when every client of
    // every thread is ready.
    let ready = connect_all(&driver, &plan, &context).await;
    harness::run_worker(
        plan.worker,
        &context,
        reports,
        ready,
        |(producers, consumers), recorder| Tasks {
            consumers: consumers
                .into_iter()
                .map(|(plan, consumer)| {
                    glommio::spawn_local(consume(plan, consumer, recorder.clone()))
                })
                .collect(),
            producers: producers
                .into_iter()
                .map(|(plan, producer)| {
                    glommio::spawn_local(produce(plan, producer, recorder.clone()))
                })
                .collect(),
        },
    )
    .await
}

type Connected<D> = (
    Vec<(ProducerPlan, <D as Driver>::Producer)>,
    Vec<(ConsumerPlan, <D as Driver>::Consumer)>,
);

async fn connect_all<D: Driver>(
    driver: &D,
    plan: &WorkerPlan,
    context: &RunContext,
) -> Result<Connected<D>, BenchError> {
    let mut producers = Vec::new();
    for producer_plan in &plan.producers {
        let producer = driver.producer(context, producer_plan).await?;
        producers.push((producer_plan.clone(), producer));
    }
    let mut consumers = Vec::new();
    for consumer_plan in &plan.consumers {
        let consumer = driver.consumer(context, consumer_plan).await?;
        consumers.push((consumer_plan.clone(), consumer));
    }
    Ok((producers, consumers))
}

/// One producer: sends on schedule until the end of the run, then waits
/// (until the drain deadline) for every outcome.
pub async fn produce<P: Producer>(plan: ProducerPlan, mut producer: P, recorder: Recorder) {
    let clock = recorder.clock();
    let timeline = recorder.timeline();
    let mut records = Records::new(&recorder.context().workload, plan.index);
    let mut pacer = Pacer::new(timeline.start, plan.records_per_second);
    producer.start(&recorder);
    loop {
        let now = clock.now();
        if pacer.next_at(now) >= timeline.end {
            break;
        }
        let Some(intended) = pacer.take_due(now) else {
            if let Err(error) = producer.idle().await {
                eprintln!("sluice-bench: producer to {} failed: {error}", plan.topic);
                break;
            }
            // Until the next record is due, however soon: a floor of 20 µs
            // (records due meanwhile sent together) took the harness's core
            // from 97% to 80% busy at 769,000/s, but added ~0.1 ms to p50.
            sleep(clock.until(pacer.next_at(clock.now()))).await;
            continue;
        };
        let record = records.next(&plan.topic, intended, clock);
        if let Err(error) = producer.send(record, &recorder).await {
            eprintln!("sluice-bench: producer to {} failed: {error}", plan.topic);
            break;
        }
        recorder.sent(now);
        glommio::yield_if_needed().await;
    }
    producer.finish(&recorder).await;
}

/// One consumer: reads until the run has drained; after a failure, counts
/// it, pauses, reconnects and reads on.
pub async fn consume<C: Consumer>(plan: ConsumerPlan, mut consumer: C, recorder: Recorder) {
    let clock = recorder.clock();
    let timeline = recorder.timeline();
    let what = format!("consumer of {}", plan.topic);
    while !recorder.context().consumers_done(clock.now(), &timeline) {
        let Err(error) = consumer.poll(&recorder).await else {
            continue;
        };
        recorder.consume_failed(&what, &error);
        loop {
            if clock.now() >= timeline.drain_deadline {
                return;
            }
            sleep(RECONNECT_PAUSE).await;
            recorder.retried(1);
            match consumer.reconnect(recorder.context()).await {
                Ok(()) => break,
                Err(error) => recorder.consume_failed(&format!("{what} reconnecting"), &error),
            }
        }
    }
}

/// Waits for `future` until `deadline` (run nanoseconds); `None` if the
/// deadline came first.
pub async fn until<T>(
    clock: RunClock,
    deadline: Nanos,
    future: impl std::future::Future<Output = T>,
) -> Option<T> {
    futures_lite::future::or(async { Some(future.await) }, async {
        sleep(clock.until(deadline)).await;
        None
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_carry_their_send_time_and_take_partitions_in_turn() {
        let workload = Workload::parse(
            r#"
            name = "w"
            topics = 1
            partitions_per_topic = 3
            message_size = { distribution = "uniform", min = 10, max = 20 }
            producers_per_topic = 1
            consumers_per_topic = 1
            batch_bytes = 1024
            linger_ms = 1
            rate = 100
            warm_up_s = 0
            duration_s = 1
            "#,
        )
        .unwrap();
        let clock = RunClock::new();
        let mut records = Records::new(&workload, 4);
        let mut partitions = Vec::new();
        for intended in [5_000, 6_000, 7_000, 8_000] {
            let record = records.next("t", intended, clock);
            assert!((10..=20).contains(&record.value.len()));
            assert_eq!(record.key, None);
            assert_eq!(record.bytes(), record.value.len());
            assert_eq!(stamp_of(clock, record.value), Some(intended));
            partitions.push(record.partition);
        }
        // Producer 4 of 3 partitions starts at partition 1.
        assert_eq!(partitions, [1, 2, 0, 1]);
        assert_eq!(stamp_of(clock, b"short"), None);

        let keyed = Workload {
            keys: Keys::Space(10),
            ..workload
        };
        let mut records = Records::new(&keyed, 0);
        let record = records.next("t", 1, clock);
        let key = record.key.expect("a key");
        assert!(u64::from_le_bytes(key.try_into().unwrap()) < 10);
        assert_eq!(record.partition, partition_for_key(key, 3));
        assert_eq!(record.bytes(), record.value.len() + 8);
    }
}
