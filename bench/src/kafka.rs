//! The `kafka` driver: any Kafka-compatible broker (Sluice's Kafka
//! listener, tansu, noida-db, Kafka itself) through librdkafka, with the
//! `rdkafka` crate.
//!
//! Which rdkafka API, and why the measurement is honest:
//!
//! * Producer: a `ThreadedProducer` (a `BaseProducer` with one thread
//!   polling its events). The harness's producer task, on the pinned
//!   executor, calls `send` when a record falls due; it never blocks (a
//!   full librdkafka queue, [`QUEUE_RECORDS_MAX`], makes the task pause
//!   and try again, the pause counted in the record's latency). The
//!   acknowledgement is librdkafka's delivery report: the polling thread
//!   wakes on it and the delivery callback stamps the run's clock right
//!   there, before anything is queued to the harness thread. The latency
//!   is that stamp minus the record's intended send time, so it holds
//!   librdkafka's own batching (`batch.size`, `linger.ms`), its queue and
//!   the broker, and nothing of the harness. `FutureProducer` was not
//!   used: its futures resolve through the same callback but are awaited
//!   on an executor whose wake-up delay would land in every latency.
//! * Consumer: a `BaseConsumer` assigned the consumer's partitions from
//!   the beginning (the harness decides who reads what: its group is
//!   never joined, and nothing is committed). A
//!   thread of its own blocks in `poll` and stamps each record as it comes
//!   out of librdkafka.
//!
//! Threads librdkafka starts inherit the CPU affinity of the thread that
//! creates the client, and every client is created on its harness
//! thread, so librdkafka's threads share the harness's cores.
//!
//! Workload → librdkafka: `batch_bytes` → `batch.size`, `linger_ms` →
//! `linger.ms`, `acks` none / leader / all → `acks` 0 / 1 / all,
//! `max_in_flight` → `max.in.flight.requests.per.connection` (librdkafka's
//! own default is 1,000,000 without idempotence; Kafka's idempotent
//! producers allow 5), no compression, no idempotence. The partition is chosen by the harness
//! (the turn, or Kafka's hash of the key) as in every driver. Failed
//! deliveries are counted as produce errors; librdkafka's own resends
//! (`txretries` in its statistics, read each second) as retries.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use glommio::timer::sleep;
use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    config::ClientConfig,
    consumer::{BaseConsumer, Consumer as _, ConsumerContext},
    error::{KafkaError, KafkaResult},
    message::{BorrowedMessage, Message as _},
    producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer},
    statistics::Statistics,
    types::RDKafkaErrorCode,
    ClientContext, Offset, TopicPartitionList,
};
use tokio::sync::mpsc;

use crate::{
    driver::{self, Pending, Record, Recorder, Setup, FETCH_WAIT},
    forward::{sized, Inbox, Outcome, Outcomes, Read, READS_PER_BATCH_MAX},
    run::{ConsumerPlan, ProducerPlan, RunContext},
    schedule::RunClock,
    workload::AckLevel,
    BenchError,
};

/// Records librdkafka holds for a producer before `send` says the queue is
/// full: bounds the producer's memory (librdkafka's default too).
pub const QUEUE_RECORDS_MAX: u32 = 100_000;

/// How long a producer pauses when librdkafka's queue is full.
const QUEUE_FULL_PAUSE: Duration = Duration::from_micros(200);

/// How long a consumer's librdkafka waits to fetch again while its queue
/// holds `queued.min.messages`; see the consumer's config.
const FETCH_QUEUE_BACKOFF_MS: &str = "10";

/// How long setup waits for a broker to answer, and for new topics to show
/// all their partitions in its metadata.
const SETUP_TIMEOUT: Duration = Duration::from_secs(15);

/// How often librdkafka reports its statistics (the retry count).
const STATISTICS_INTERVAL_MS: &str = "1000";

/// A Kafka-compatible broker.
#[derive(Debug, Clone, Copy, Default)]
pub struct Kafka;

fn kafka_error(what: impl Into<String>) -> impl FnOnce(KafkaError) -> BenchError {
    let what = what.into();
    move |source| BenchError::Kafka { what, source }
}

fn base_config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("client.id", "sluice-bench")
        // librdkafka would log through the `log` crate, which nothing here
        // prints; errors reach the contexts below instead.
        .set("log_level", "3");
    config
}

/// Runs an admin future to its end on this thread: the admin client's own
/// thread resolves it.
fn admin(brokers: &str) -> Result<AdminClient<DefaultClientContext>, BenchError> {
    base_config(brokers)
        .create()
        .map_err(kafka_error(format!("connecting to {brokers}")))
}

impl driver::Driver for Kafka {
    type Producer = KafkaProducer;
    type Consumer = KafkaConsumer;
    const NAME: &'static str = "kafka";

    fn prepare(&self, setup: &Setup<'_>) -> Result<(), BenchError> {
        let admin = admin(setup.brokers)?;
        let partitions = setup.workload.partitions_per_topic as i32;
        let new_topics: Vec<NewTopic<'_>> = setup
            .topics
            .iter()
            .map(|topic| {
                let factor = match setup.workload.replication_factor {
                    0 => TopicReplication::Fixed(-1),
                    factor => TopicReplication::Fixed(i32::from(factor)),
                };
                let mut new_topic = NewTopic::new(topic, partitions, factor);
                for (name, value) in &setup.workload.topic_configs {
                    new_topic = new_topic.set(name, value);
                }
                new_topic
            })
            .collect();
        let options = AdminOptions::new()
            .request_timeout(Some(SETUP_TIMEOUT))
            .operation_timeout(Some(SETUP_TIMEOUT));
        let results = futures_lite::future::block_on(admin.create_topics(&new_topics, &options))
            .map_err(kafka_error(format!("creating topics on {}", setup.brokers)))?;
        for result in results {
            if let Err((topic, code)) = result {
                return Err(BenchError::Kafka {
                    what: format!("creating topic {topic}"),
                    source: KafkaError::AdminOp(code),
                });
            }
        }
        // Until the metadata shows every partition, a client would be told
        // the topic does not exist.
        let deadline = Instant::now() + SETUP_TIMEOUT;
        for topic in setup.topics {
            loop {
                let metadata = admin
                    .inner()
                    .fetch_metadata(Some(topic), SETUP_TIMEOUT)
                    .map_err(kafka_error(format!("reading the metadata of {topic}")))?;
                let known = metadata
                    .topics()
                    .iter()
                    .find(|known| known.name() == topic)
                    .filter(|known| known.error().is_none())
                    .map_or(0, |known| known.partitions().len());
                if known == partitions as usize {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(BenchError::Kafka {
                        what: format!(
                            "topic {topic}: {known} of {partitions} partitions in the metadata after {SETUP_TIMEOUT:?}"
                        ),
                        source: KafkaError::AdminOp(RDKafkaErrorCode::UnknownTopicOrPartition),
                    });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    fn clean_up(&self, setup: &Setup<'_>) -> Result<(), BenchError> {
        let admin = admin(setup.brokers)?;
        let names: Vec<&str> = setup.topics.iter().map(String::as_str).collect();
        let options = AdminOptions::new()
            .request_timeout(Some(SETUP_TIMEOUT))
            .operation_timeout(Some(SETUP_TIMEOUT));
        let results = futures_lite::future::block_on(admin.delete_topics(&names, &options))
            .map_err(kafka_error(format!("deleting topics on {}", setup.brokers)))?;
        for result in results {
            if let Err((topic, code)) = result {
                return Err(BenchError::Kafka {
                    what: format!("deleting topic {topic}"),
                    source: KafkaError::AdminOp(code),
                });
            }
        }
        Ok(())
    }

    async fn producer(
        &self,
        context: &RunContext,
        _plan: &ProducerPlan,
    ) -> Result<KafkaProducer, BenchError> {
        let workload = &context.workload;
        let outcomes = Outcomes::new();
        let retries = Arc::new(AtomicU64::new(0));
        let deliveries = Deliveries {
            clock: context.clock,
            outcomes: outcomes.sender(),
            retries: retries.clone(),
        };
        let acks = match workload.acks {
            AckLevel::None => "0",
            AckLevel::Leader => "1",
            AckLevel::All => "all",
        };
        // Deliveries the drain deadline did not see are counted missing;
        // librdkafka may keep trying a little longer.
        let timeout_ms = (context.drain + SETUP_TIMEOUT).as_millis().to_string();
        let producer: ThreadedProducer<Deliveries> = base_config(&context.brokers)
            .set("acks", acks)
            .set("batch.size", workload.batch_bytes.to_string())
            .set("linger.ms", workload.linger_ms.to_string())
            .set("compression.type", "none")
            .set("enable.idempotence", "false")
            .set(
                "max.in.flight.requests.per.connection",
                workload.max_in_flight.to_string(),
            )
            .set(
                "queue.buffering.max.messages",
                QUEUE_RECORDS_MAX.to_string(),
            )
            .set("message.timeout.ms", timeout_ms)
            .set("statistics.interval.ms", STATISTICS_INTERVAL_MS)
            .create_with_context(deliveries)
            .map_err(kafka_error(format!("connecting to {}", context.brokers)))?;
        Ok(KafkaProducer {
            producer,
            outcomes,
            retries,
        })
    }

    async fn consumer(
        &self,
        context: &RunContext,
        plan: &ConsumerPlan,
    ) -> Result<KafkaConsumer, BenchError> {
        let consumer: BaseConsumer<Noticed> = base_config(&context.brokers)
            // librdkafka assigns partitions only to a consumer of a
            // group; it never joins it (no subscribe) nor commits to it.
            .set("group.id", format!("sluice-bench-{}", plan.topic))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", FETCH_WAIT.as_millis().to_string())
            // librdkafka stops fetching once `queued.min.messages` (100,000)
            // wait in its queue, for `fetch.queue.backoff.ms` (1 s since
            // librdkafka 2.1): a reader faster than that drains the queue
            // and then idles for the rest of the second, which held this
            // consumer to ~200,000 records/s. 10 ms is a small part of
            // what 100,000 queued records take to read; 0 makes
            // librdkafka's broker thread spin on poll(2) while the queue is
            // full.
            .set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS)
            .create_with_context(Noticed)
            .map_err(kafka_error(format!("connecting to {}", context.brokers)))?;
        let mut assignment = TopicPartitionList::new();
        for partition in &plan.partitions {
            assignment
                .add_partition_offset(&plan.topic, *partition as i32, Offset::Beginning)
                .map_err(kafka_error("assigning partitions"))?;
        }
        consumer.assign(&assignment).map_err(kafka_error(format!(
            "assigning partitions of {}",
            plan.topic
        )))?;
        let what = format!("kafka consumer of {}", plan.topic);
        let (reads, inbox) = Inbox::new(what);
        let stop = Arc::new(AtomicBool::new(false));
        let clock = context.clock;
        let thread = std::thread::Builder::new()
            .name("sluice-bench-kafka-consumer".into())
            .spawn({
                let stop = stop.clone();
                move || read_all(consumer, clock, reads, &stop)
            })
            .map_err(|error| BenchError::Worker(format!("starting a consumer thread: {error}")))?;
        Ok(KafkaConsumer {
            inbox: Some(inbox),
            stop,
            thread: Some(thread),
        })
    }
}

/// The producer's context: delivery reports become [`Outcome`]s, stamped
/// where librdkafka reports them.
struct Deliveries {
    clock: RunClock,
    outcomes: mpsc::UnboundedSender<Outcome>,
    retries: Arc<AtomicU64>,
}

impl ClientContext for Deliveries {
    fn stats(&self, statistics: Statistics) {
        let retries = statistics
            .brokers
            .values()
            .map(|broker| broker.txretries)
            .sum();
        self.retries.store(retries, Ordering::Release);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        eprintln!("sluice-bench: librdkafka producer: {error}: {reason}");
    }
}

impl ProducerContext for Deliveries {
    /// The record's intended time itself, not a box holding it: no
    /// allocation per record (its size is read back from the message).
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, intended: usize) {
        let at = self.clock.now();
        let (message, result) = match result {
            Ok(message) => (message, Ok(())),
            Err((error, message)) => (message, Err(error.to_string())),
        };
        let bytes = message.payload_len() + message.key().map_or(0, <[u8]>::len);
        let pending = Pending {
            intended: intended as u64,
            bytes,
        };
        let _ = self.outcomes.send(Outcome::Delivered {
            pending,
            at,
            result,
        });
    }
}

/// The consumer's context: librdkafka's errors are printed.
struct Noticed;

impl ClientContext for Noticed {
    fn error(&self, error: KafkaError, reason: &str) {
        eprintln!("sluice-bench: librdkafka consumer: {error}: {reason}");
    }
}

impl ConsumerContext for Noticed {}

pub struct KafkaProducer {
    producer: ThreadedProducer<Deliveries>,
    outcomes: Outcomes,
    retries: Arc<AtomicU64>,
}

impl driver::Producer for KafkaProducer {
    fn start(&mut self, recorder: &Recorder) {
        self.outcomes.start(recorder);
    }

    async fn send(&mut self, record: Record<'_>, recorder: &Recorder) -> Result<(), BenchError> {
        let intended = usize::try_from(record.intended).expect("nanoseconds fit a 64-bit usize");
        let mut base = BaseRecord::with_opaque_to(record.topic, intended)
            .partition(record.partition as i32)
            .payload(record.value);
        if let Some(key) = record.key {
            base = base.key(key);
        }
        loop {
            match self.producer.send(base) {
                Ok(()) => {
                    self.outcomes.sent();
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    // Bounded memory: wait for librdkafka's queue to
                    // drain. The wait is in the record's latency.
                    base = returned;
                    sleep(QUEUE_FULL_PAUSE).await;
                }
                Err((error, _)) => {
                    recorder.produce_failed(recorder.now(), &error);
                    return Ok(());
                }
            }
        }
    }

    async fn finish(self, recorder: &Recorder) {
        self.outcomes.finish(recorder).await;
        // The last statistics report, up to a second old.
        recorder.retried(self.retries.load(Ordering::Acquire));
        // Dropping the producer purges what is left (and waits up to
        // 500 ms): off the harness thread's executor, it is the end.
        drop(self.producer);
    }
}

/// A consumer's thread: polls librdkafka until told to stop, stamping each
/// record as it comes out, and sends the records that came out together
/// in one batch.
fn read_all(
    consumer: BaseConsumer<Noticed>,
    clock: RunClock,
    reads: mpsc::Sender<Vec<Read>>,
    stop: &AtomicBool,
) {
    let read = |polled| stamped(clock, polled);
    // Gathered here, sent as a vector of its own size.
    let mut batch = Vec::with_capacity(READS_PER_BATCH_MAX);
    while !stop.load(Ordering::Acquire) {
        let Some(first) = consumer.poll(FETCH_WAIT) else {
            continue;
        };
        batch.push(read(first));
        while batch.len() < READS_PER_BATCH_MAX {
            match consumer.poll(Duration::ZERO) {
                Some(polled) => batch.push(read(polled)),
                None => break,
            }
        }
        // Blocks while the harness thread is behind; fails once it has
        // gone.
        if reads.blocking_send(sized(&mut batch)).is_err() {
            return;
        }
    }
}

/// What a message polled from librdkafka says, stamped now.
fn stamped(clock: RunClock, polled: KafkaResult<BorrowedMessage<'_>>) -> Read {
    match polled {
        Ok(message) => {
            let at = clock.now();
            let value = message.payload().unwrap_or_default();
            Read::Record {
                at,
                intended: driver::stamp_of(clock, value),
                bytes: value.len() + message.key().map_or(0, <[u8]>::len),
            }
        }
        Err(error) => Read::Failed(error.to_string()),
    }
}

pub struct KafkaConsumer {
    inbox: Option<Inbox>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl driver::Consumer for KafkaConsumer {
    async fn poll(&mut self, recorder: &Recorder) -> Result<(), BenchError> {
        self.inbox.as_mut().expect("open").poll(recorder).await
    }

    /// librdkafka reconnects by itself and keeps each partition's
    /// position: nothing to do but go on.
    async fn reconnect(&mut self, _context: &RunContext) -> Result<(), BenchError> {
        Ok(())
    }
}

impl Drop for KafkaConsumer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // A thread blocked on a full inbox wakes when it is gone.
        drop(self.inbox.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
