//! The `nats` driver: NATS JetStream, a reference point outside the Kafka
//! world, through its Rust client (`async-nats`).
//!
//! A topic is a stream of file storage named after it (a `.` becomes `_`,
//! which a stream name cannot hold), and its partition `p` is the subject
//! `<stream>.<p>`. A producer publishes each record to its partition's
//! subject; the JetStream publish acknowledgement (the server has stored
//! the message as its `sync_interval` says) is the produce
//! acknowledgement. A consumer reads each of its partitions through an
//! ordered pull consumer (ephemeral, no acks) from the start of the
//! stream. NATS has no record keys: a key only picks the partition, and
//! throughput counts value bytes.
//!
//! The client needs tokio: each producer and consumer runs its client on a
//! thread of its own with a current-thread runtime, started from its
//! harness thread (so pinned to the same core). The harness's producer
//! task hands each due record over a bounded channel; the client's thread
//! publishes in order, holding at most [`IN_FLIGHT_MAX`] unacknowledged,
//! and stamps each acknowledgement with the run's clock when it arrives.
//! Records read are stamped on the client's thread too
//! ([`crate::forward`]).
//!
//! The server is started by `bench/peers/nats.sh`.

use std::{fmt::Display, future::Future, time::Duration};

use async_nats::{
    jetstream::{
        self,
        consumer::{pull::OrderedConfig, DeliverPolicy},
        context::ContextBuilder,
        stream::{Config as StreamConfig, StorageType},
    },
    Subject,
};
use bytes::Bytes;
use futures_lite::StreamExt;
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinSet,
};

use crate::{
    driver::{self, Pending, Record, Recorder, Setup},
    forward::{sized, Inbox, Outcome, Outcomes, Read, READS_PER_BATCH_MAX},
    run::{ConsumerPlan, ProducerPlan, RunContext},
    schedule::RunClock,
    BenchError,
};

/// Records a producer has published and not yet heard about. Bounds its
/// memory, and is what holds a producer back at rate `max`.
pub const IN_FLIGHT_MAX: usize = 4096;

/// How long setup and connecting wait for the server.
const SETUP_TIMEOUT: Duration = Duration::from_secs(15);

/// NATS JetStream.
#[derive(Debug, Clone, Copy, Default)]
pub struct Nats;

/// The stream that holds a topic.
pub fn stream_name(topic: &str) -> String {
    topic.replace('.', "_")
}

/// The subject of a topic's partition.
pub fn subject(topic: &str, partition: u32) -> String {
    format!("{}.{partition}", stream_name(topic))
}

fn address(brokers: &str) -> String {
    brokers
        .split(',')
        .next()
        .unwrap_or(brokers)
        .trim()
        .to_string()
}

fn nats_error(what: impl Into<String>) -> impl FnOnce(String) -> BenchError {
    let what = what.into();
    move |reason| BenchError::Remote { what, reason }
}

fn text(error: impl Display) -> String {
    error.to_string()
}

/// Runs `work` on a fresh current-thread runtime, on this thread.
fn block_on<T>(work: impl Future<Output = T>) -> Result<T, BenchError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| BenchError::Worker(format!("starting a tokio runtime: {error}")))?;
    Ok(runtime.block_on(work))
}

/// Starts a client thread (inheriting this thread's CPU affinity) with a
/// current-thread runtime running `work`.
fn spawn_client<F, Fut>(name: &str, work: F) -> Result<(), BenchError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            if let Err(error) = block_on(work()) {
                eprintln!("sluice-bench: {error}");
            }
        })
        .map(drop)
        .map_err(|error| BenchError::Worker(format!("starting a NATS client thread: {error}")))
}

async fn connect(address: &str) -> Result<async_nats::Client, String> {
    async_nats::ConnectOptions::new()
        .connection_timeout(SETUP_TIMEOUT)
        .connect(address)
        .await
        .map_err(text)
}

impl driver::Driver for Nats {
    type Producer = NatsProducer;
    type Consumer = NatsConsumer;
    const NAME: &'static str = "nats";

    fn prepare(&self, setup: &Setup<'_>) -> Result<(), BenchError> {
        let address = address(setup.brokers);
        block_on(async {
            let client = connect(&address).await?;
            let jetstream = jetstream::new(client);
            for topic in setup.topics {
                jetstream
                    .create_stream(StreamConfig {
                        name: stream_name(topic),
                        subjects: vec![format!("{}.*", stream_name(topic))],
                        storage: StorageType::File,
                        ..StreamConfig::default()
                    })
                    .await
                    .map_err(|error| format!("creating stream {}: {error}", stream_name(topic)))?;
            }
            Ok(())
        })?
        .map_err(nats_error(format!("JetStream at {address}")))
    }

    fn clean_up(&self, setup: &Setup<'_>) -> Result<(), BenchError> {
        let address = address(setup.brokers);
        block_on(async {
            let jetstream = jetstream::new(connect(&address).await?);
            for topic in setup.topics {
                jetstream
                    .delete_stream(stream_name(topic))
                    .await
                    .map_err(|error| format!("deleting stream {}: {error}", stream_name(topic)))?;
            }
            Ok(())
        })?
        .map_err(nats_error(format!("JetStream at {address}")))
    }

    async fn producer(
        &self,
        context: &RunContext,
        plan: &ProducerPlan,
    ) -> Result<NatsProducer, BenchError> {
        let address = address(&context.brokers);
        let (commands, received) = mpsc::channel(IN_FLIGHT_MAX);
        let outcomes = Outcomes::new();
        let sender = outcomes.sender();
        let subjects: Vec<Subject> = (0..context.workload.partitions_per_topic)
            .map(|partition| Subject::from(subject(&plan.topic, partition)))
            .collect();
        let clock = context.clock;
        // An acknowledgement later than the drain deadline is not heard.
        let ack_timeout = context.drain + SETUP_TIMEOUT;
        let (ready, connected) = oneshot::channel();
        let connect_to = address.clone();
        spawn_client("sluice-bench-nats-producer", move || async move {
            let client = match connect(&connect_to).await {
                Ok(client) => client,
                Err(error) => {
                    let _ = ready.send(Err(error));
                    return;
                }
            };
            let jetstream = ContextBuilder::new()
                .max_ack_inflight(IN_FLIGHT_MAX)
                .backpressure_on_inflight(true)
                .ack_timeout(ack_timeout)
                .build(client);
            let _ = ready.send(Ok(()));
            publish_all(jetstream, received, sender, subjects, clock).await;
        })?;
        connected
            .await
            .unwrap_or_else(|_| Err("the client thread stopped".into()))
            .map_err(nats_error(format!("connecting to NATS at {address}")))?;
        Ok(NatsProducer {
            commands: Some(commands),
            outcomes,
        })
    }

    async fn consumer(
        &self,
        context: &RunContext,
        plan: &ConsumerPlan,
    ) -> Result<NatsConsumer, BenchError> {
        let address = address(&context.brokers);
        let (reads, inbox) = Inbox::new(format!("nats consumer of {}", plan.topic));
        let (ready, started) = oneshot::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let (topic, partitions, clock) =
            (plan.topic.clone(), plan.partitions.clone(), context.clock);
        let connect_to = address.clone();
        spawn_client("sluice-bench-nats-consumer", move || async move {
            let mut readers = JoinSet::new();
            let start = async {
                let jetstream = jetstream::new(connect(&connect_to).await?);
                let stream = jetstream
                    .get_stream(stream_name(&topic))
                    .await
                    .map_err(text)?;
                for partition in partitions {
                    let consumer = stream
                        .create_consumer(OrderedConfig {
                            filter_subject: subject(&topic, partition),
                            deliver_policy: DeliverPolicy::All,
                            ..OrderedConfig::default()
                        })
                        .await
                        .map_err(text)?;
                    let messages = consumer.messages().await.map_err(text)?;
                    readers.spawn(read_all(messages, reads.clone(), clock));
                }
                Ok::<(), String>(())
            };
            let outcome = start.await;
            let failed = outcome.is_err();
            let _ = ready.send(outcome);
            if !failed {
                // Until the harness is done with this consumer.
                let _ = stopped.await;
            }
        })?;
        started
            .await
            .unwrap_or_else(|_| Err("the client thread stopped".into()))
            .map_err(nats_error(format!(
                "consuming {} from NATS at {address}",
                plan.topic
            )))?;
        Ok(NatsConsumer { inbox, _stop: stop })
    }
}

/// One record for the client's thread to publish.
struct Publish {
    partition: u32,
    payload: Bytes,
    pending: Pending,
}

/// On the client's thread: publishes in order, and hears each
/// acknowledgement in a task of its own.
async fn publish_all(
    jetstream: jetstream::Context,
    mut commands: mpsc::Receiver<Publish>,
    outcomes: mpsc::UnboundedSender<Outcome>,
    subjects: Vec<Subject>,
    clock: RunClock,
) {
    let mut acks = JoinSet::new();
    while let Some(publish) = commands.recv().await {
        let pending = publish.pending;
        let subject = subjects[publish.partition as usize].clone();
        match jetstream.publish(subject, publish.payload).await {
            Ok(ack) => {
                let outcomes = outcomes.clone();
                acks.spawn(async move {
                    let result = ack.await.map(drop).map_err(text);
                    let at = clock.now();
                    let _ = outcomes.send(Outcome::Delivered {
                        pending,
                        at,
                        result,
                    });
                });
            }
            Err(error) => {
                let _ = outcomes.send(Outcome::Delivered {
                    pending,
                    at: clock.now(),
                    result: Err(error.to_string()),
                });
            }
        }
        while acks.try_join_next().is_some() {}
    }
    while acks.join_next().await.is_some() {}
}

/// On the client's thread: one partition's records, stamped as they come.
async fn read_all(
    mut messages: jetstream::consumer::pull::Ordered,
    reads: mpsc::Sender<Vec<Read>>,
    clock: RunClock,
) {
    let read = |message| stamped(clock, message);
    // The messages ready together go over in one batch, gathered here and
    // sent as a vector of its own size.
    let mut batch = Vec::with_capacity(READS_PER_BATCH_MAX);
    while let Some(first) = messages.next().await {
        batch.push(read(first));
        while batch.len() < READS_PER_BATCH_MAX {
            match futures_lite::future::poll_once(messages.next()).await {
                Some(Some(message)) => batch.push(read(message)),
                _ => break,
            }
        }
        if reads.send(sized(&mut batch)).await.is_err() {
            return;
        }
    }
}

/// What a message read from the stream says, stamped now.
fn stamped(clock: RunClock, message: Result<jetstream::Message, impl std::fmt::Display>) -> Read {
    match message {
        Ok(message) => {
            let at = clock.now();
            let value = &message.message.payload;
            Read::Record {
                at,
                intended: driver::stamp_of(clock, value),
                bytes: value.len(),
            }
        }
        Err(error) => Read::Failed(error.to_string()),
    }
}

pub struct NatsProducer {
    /// `None` once finished: the client's thread publishes what is left
    /// and ends.
    commands: Option<mpsc::Sender<Publish>>,
    outcomes: Outcomes,
}

impl driver::Producer for NatsProducer {
    fn start(&mut self, recorder: &Recorder) {
        self.outcomes.start(recorder);
    }

    async fn send(&mut self, record: Record<'_>, _recorder: &Recorder) -> Result<(), BenchError> {
        let publish = Publish {
            partition: record.partition,
            payload: Bytes::copy_from_slice(record.value),
            pending: Pending {
                intended: record.intended,
                bytes: record.value.len(),
            },
        };
        // Waits while the client's thread is behind (bounded memory); the
        // wait is in the record's latency.
        self.commands
            .as_ref()
            .expect("not finished")
            .send(publish)
            .await
            .map_err(|_| BenchError::Ended {
                what: "the NATS client thread".into(),
            })?;
        self.outcomes.sent();
        Ok(())
    }

    async fn finish(mut self, recorder: &Recorder) {
        drop(self.commands.take());
        self.outcomes.finish(recorder).await;
    }
}

pub struct NatsConsumer {
    inbox: Inbox,
    /// Dropped with the consumer: its client thread ends.
    _stop: oneshot::Sender<()>,
}

impl driver::Consumer for NatsConsumer {
    async fn poll(&mut self, recorder: &Recorder) -> Result<(), BenchError> {
        self.inbox.poll(recorder).await
    }

    /// The client reconnects by itself, and an ordered consumer recreates
    /// itself from the last record it delivered: nothing to do but go on.
    async fn reconnect(&mut self, _context: &RunContext) -> Result<(), BenchError> {
        Ok(())
    }
}
