//! The `native` driver: Sluice's own client (`sluice_net::client`) on
//! glommio executors pinned to the harness's cores.
//!
//! Each harness thread is one executor; each producer and each consumer it
//! runs has its own connection. A producer is a task that sends on its
//! [`Pacer`]'s schedule; for each partition it writes to, a collector task
//! awaits the deliveries in send order (a partition has one batch in
//! flight, so its records are stored in that order) and records each
//! latency when it is known. A consumer is a task reading its partitions
//! from offset 0 of the fresh topic.

use std::{
    sync::{atomic::Ordering, mpsc::Sender, Arc},
    time::Duration,
};

use futures_lite::{future, StreamExt};
use glommio::{
    channels::local_channel::{self, LocalSender},
    timer::sleep,
};
use sluice_net::client::{
    partition_for_key, Client, ConsumeOptions, Delivery, PartitionRange, Producer, ProducerOptions,
    StartOffset,
};

use crate::{
    harness::{self, on_core, Metrics, Tasks},
    metrics::Report,
    random::Draws,
    run::{ConsumerPlan, ProducerPlan, RunContext, Timeline, WorkerPlan},
    schedule::{Nanos, Pacer},
    workload::{Keys, Workload, STAMP_BYTES},
    BenchError,
};

/// How long a consumer's fetch waits at the end of the log: short, so that
/// it notices the end of the run soon.
const FETCH_WAIT: Duration = Duration::from_millis(100);

/// A consumer that lost its connection waits this long before it
/// reconnects.
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);

/// Creates the run's topics, from a short-lived executor on `cpu`.
pub fn create_topics(
    cpu: usize,
    brokers: &str,
    workload: &Workload,
    topics: &[String],
) -> Result<(), BenchError> {
    let brokers = brokers.to_string();
    let topics = topics.to_vec();
    let partitions = workload.partitions_per_topic;
    let configs: Vec<(String, String)> = workload
        .topic_configs
        .iter()
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    on_core(cpu, "sluice-bench-setup", move || async move {
        let client = Client::connect(&brokers)
            .await
            .map_err(BenchError::client(format!("connecting to {brokers}")))?;
        for topic in &topics {
            client
                .create_topic(topic, partitions, &configs)
                .await
                .map_err(BenchError::client(format!("creating topic {topic}")))?;
        }
        Ok(())
    })
}

pub fn delete_topics(cpu: usize, brokers: &str, topics: &[String]) -> Result<(), BenchError> {
    let brokers = brokers.to_string();
    let topics = topics.to_vec();
    on_core(cpu, "sluice-bench-teardown", move || async move {
        let client = Client::connect(&brokers)
            .await
            .map_err(BenchError::client(format!("connecting to {brokers}")))?;
        for topic in &topics {
            client
                .delete_topic(topic)
                .await
                .map_err(BenchError::client(format!("deleting topic {topic}")))?;
        }
        Ok(())
    })
}

/// The body of one harness thread running `plan`.
pub async fn worker(
    plan: WorkerPlan,
    context: Arc<RunContext>,
    reports: Sender<Report>,
) -> Result<(), BenchError> {
    // Connect everything first: a run starts only when every client of
    // every thread is ready.
    let ready = connect_all(&plan, &context).await;
    harness::run_worker(
        plan.worker,
        &context,
        reports,
        ready,
        |(producers, consumers), timeline, metrics| Tasks {
            consumers: consumers
                .into_iter()
                .map(|(consumer_plan, client)| {
                    glommio::spawn_local(consume(
                        consumer_plan,
                        client,
                        context.clone(),
                        timeline,
                        metrics.clone(),
                    ))
                })
                .collect(),
            producers: producers
                .into_iter()
                .map(|(producer_plan, producer)| {
                    glommio::spawn_local(produce(
                        producer_plan,
                        producer,
                        context.clone(),
                        timeline,
                        metrics.clone(),
                    ))
                })
                .collect(),
        },
    )
    .await
}

type Connected = (Vec<(ProducerPlan, Producer)>, Vec<(ConsumerPlan, Client)>);

async fn connect_all(plan: &WorkerPlan, context: &RunContext) -> Result<Connected, BenchError> {
    let workload = &context.workload;
    let options = ProducerOptions {
        acks: workload.acks.into(),
        batch_bytes: workload.batch_bytes,
        linger: Duration::from_millis(workload.linger_ms),
        // One batch of a partition in flight: records are stored, and so
        // acknowledged, in send order, which the collectors rely on.
        in_flight_per_partition_max: 1,
        ..ProducerOptions::default()
    };
    let mut producers = Vec::new();
    for producer_plan in &plan.producers {
        let client = connect(&context.brokers).await?;
        producers.push((
            producer_plan.clone(),
            Producer::new(client, options.clone()),
        ));
    }
    let mut consumers = Vec::new();
    for consumer_plan in &plan.consumers {
        consumers.push((consumer_plan.clone(), connect(&context.brokers).await?));
    }
    Ok((producers, consumers))
}

async fn connect(brokers: &str) -> Result<Client, BenchError> {
    Client::connect(brokers)
        .await
        .map_err(BenchError::client(format!("connecting to {brokers}")))
}

/// A record handed to the producer, waiting for its outcome.
struct Pending {
    intended: Nanos,
    bytes: usize,
    delivery: Delivery,
}

/// One producer: sends on schedule until the end of the run, then waits
/// (until the drain deadline) for every outcome.
async fn produce(
    plan: ProducerPlan,
    producer: Producer,
    context: Arc<RunContext>,
    timeline: Timeline,
    metrics: Metrics,
) {
    let workload = &context.workload;
    let clock = context.clock;
    let partitions = workload.partitions_per_topic;
    let mut draws = Draws::new(0x5eed ^ plan.index.wrapping_mul(0x9e37_79b9));
    let mut value = vec![0u8; workload.message_size.max_bytes() as usize];
    draws.fill(&mut value);
    let mut next_partition = (plan.index % u64::from(partitions)) as u32;

    let mut collectors: Vec<Option<LocalSender<Pending>>> = (0..partitions).map(|_| None).collect();
    let mut collector_tasks = Vec::new();
    let mut pacer = Pacer::new(timeline.start, plan.records_per_second);
    loop {
        let now = clock.now();
        if pacer.next_at(now) >= timeline.end {
            break;
        }
        let Some(intended) = pacer.take_due(now) else {
            sleep(clock.until(pacer.next_at(now))).await;
            continue;
        };
        // Bounded memory: wait while the producer holds too many
        // unstored bytes. The wait is counted from `intended`.
        producer.ready().await;
        let size = workload.message_size.sample(draws.next_u64());
        let key_bytes;
        let (key, partition): (Option<&[u8]>, u32) = match workload.keys {
            Keys::None => {
                let partition = next_partition;
                next_partition = (next_partition + 1) % partitions;
                (None, partition)
            }
            Keys::Random => {
                key_bytes = draws.next_u64().to_le_bytes();
                (Some(&key_bytes), partition_for_key(&key_bytes, partitions))
            }
            Keys::Space(space) => {
                key_bytes = (draws.next_u64() % space).to_le_bytes();
                (Some(&key_bytes), partition_for_key(&key_bytes, partitions))
            }
        };
        value[..STAMP_BYTES].copy_from_slice(&clock.to_unix_ns(intended).to_le_bytes());
        let delivery = producer.send(&plan.topic, Some(partition), key, &value[..size], &[]);
        metrics.borrow_mut().sent(clock.now());
        let collector = collectors[partition as usize].get_or_insert_with(|| {
            let (sender, receiver) = local_channel::new_unbounded();
            collector_tasks.push(glommio::spawn_local(collect(
                receiver,
                context.clone(),
                timeline,
                metrics.clone(),
            )));
            sender
        });
        let pending = Pending {
            intended,
            bytes: size + key.map_or(0, <[u8]>::len),
            delivery,
        };
        if collector.try_send(pending).is_err() {
            unreachable!("a collector lives as long as its sender");
        }
        glommio::yield_if_needed().await;
    }
    // Out with the open batches; the collectors see every outcome or the
    // drain deadline.
    let flushed = future::or(
        async {
            let _ = producer.flush().await;
        },
        sleep(clock.until(timeline.drain_deadline)),
    );
    flushed.await;
    drop(collectors);
    for task in collector_tasks {
        task.await;
    }
    // Batches the client sent again because the broker was too busy.
    metrics.borrow_mut().retried(producer.retries());
}

/// Awaits one partition's deliveries in send order and records each
/// outcome when it is known.
async fn collect(
    receiver: local_channel::LocalReceiver<Pending>,
    context: Arc<RunContext>,
    timeline: Timeline,
    metrics: Metrics,
) {
    let clock = context.clock;
    while let Some(pending) = receiver.recv().await {
        let outcome = future::or(async { Some(pending.delivery.await) }, async {
            sleep(clock.until(timeline.drain_deadline)).await;
            None
        })
        .await;
        let now = clock.now();
        match outcome {
            Some(Ok(_)) => {
                metrics
                    .borrow_mut()
                    .acknowledged(now, pending.intended, pending.bytes);
                context.acknowledged.fetch_add(1, Ordering::AcqRel);
            }
            Some(Err(error)) => {
                tracing_error(&error);
                metrics.borrow_mut().produce_failed(now);
            }
            None => metrics.borrow_mut().unacknowledged(),
        }
    }
}

fn tracing_error(error: &sluice_net::client::ClientError) {
    thread_local! {
        static SAID: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    // The first failure of a thread is printed; every one is counted.
    if !SAID.with(|said| said.replace(true)) {
        eprintln!("sluice-bench: a record failed: {error}");
    }
}

/// One consumer: reads its partitions until the run has drained.
async fn consume(
    plan: ConsumerPlan,
    client: Client,
    context: Arc<RunContext>,
    timeline: Timeline,
    metrics: Metrics,
) {
    let clock = context.clock;
    let options = ConsumeOptions {
        max_wait: FETCH_WAIT,
        ..ConsumeOptions::default()
    };
    // The next offset of each partition: the topic is fresh, so from 0.
    let mut next: Vec<(u32, u64)> = plan.partitions.iter().map(|p| (*p, 0)).collect();
    let open = |client: &Client, next: &[(u32, u64)]| {
        client.consume_partitions(
            &plan.topic,
            next.iter()
                .map(|(partition, offset)| PartitionRange {
                    partition: *partition,
                    start: StartOffset::At(*offset),
                    end: None,
                })
                .collect(),
            options.clone(),
        )
    };
    let mut client = client;
    let mut stream = open(&client, &next);
    while !context.consumers_done(clock.now(), &timeline) {
        let item = future::or(async { Some(stream.next().await) }, async {
            sleep(FETCH_WAIT).await;
            None
        })
        .await;
        let failed = match item {
            None => continue,
            Some(Some(Ok(record))) => {
                let now = clock.now();
                let intended = record.value.get(..STAMP_BYTES).map(|stamp| {
                    clock.from_unix_ns(u64::from_le_bytes(stamp.try_into().expect("8 bytes")))
                });
                let bytes = record.value.len() + record.key.as_ref().map_or(0, |key| key.len());
                metrics.borrow_mut().consumed(now, intended, bytes);
                context.consumed.fetch_add(1, Ordering::AcqRel);
                if let Some(entry) = next.iter_mut().find(|(p, _)| *p == record.partition) {
                    entry.1 = record.offset + 1;
                }
                continue;
            }
            Some(Some(Err(error))) => error.to_string(),
            Some(None) => "the record stream ended".to_string(),
        };
        // Count it, reconnect and go on from the next offsets.
        eprintln!("sluice-bench: consumer of {} failed: {failed}", plan.topic);
        metrics.borrow_mut().consume_failed(clock.now());
        loop {
            if clock.now() >= timeline.drain_deadline {
                return;
            }
            sleep(RECONNECT_PAUSE).await;
            metrics.borrow_mut().retried(1);
            match Client::connect(&context.brokers).await {
                Ok(fresh) => {
                    client = fresh;
                    break;
                }
                Err(error) => {
                    eprintln!("sluice-bench: consumer reconnect failed: {error}");
                    metrics.borrow_mut().consume_failed(clock.now());
                }
            }
        }
        stream = open(&client, &next);
    }
}
