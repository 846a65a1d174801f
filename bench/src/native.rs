//! The `native` driver: Sluice's own client (`sluice_net::client`) on the
//! harness's pinned glommio executors.
//!
//! Each producer and each consumer has its own connection. For each
//! partition a producer writes to, a collector task awaits the deliveries
//! in send order (a partition has one batch in flight, so its records are
//! stored in that order) and records each latency when it is known. A
//! consumer reads its partitions from offset 0 of the fresh topic.

use std::time::Duration;

use futures_lite::StreamExt;
use glommio::{
    channels::local_channel::{self, LocalReceiver, LocalSender},
    Task,
};
use sluice_net::client::{
    Client, ConsumeOptions, ConsumedRecord, Delivery, PartitionRange, Producer, ProducerOptions,
    RecordStream, StartOffset,
};

use crate::{
    driver::{self, Pending, Record, Recorder, Setup, FETCH_WAIT},
    harness::on_core,
    run::{ConsumerPlan, ProducerPlan, RunContext},
    BenchError,
};

/// Sluice over its native protocol.
#[derive(Debug, Clone, Copy, Default)]
pub struct Native;

impl driver::Driver for Native {
    type Producer = NativeProducer;
    type Consumer = NativeConsumer;
    const NAME: &'static str = "native";

    fn prepare(&self, setup: &Setup<'_>) -> Result<(), BenchError> {
        let brokers = setup.brokers.to_string();
        let topics = setup.topics.to_vec();
        let partitions = setup.workload.partitions_per_topic;
        let configs: Vec<(String, String)> = setup
            .workload
            .topic_configs
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        on_core(setup.cpu, "sluice-bench-setup", move || async move {
            let client = connect(&brokers).await?;
            for topic in &topics {
                client
                    .create_topic(topic, partitions, &configs)
                    .await
                    .map_err(BenchError::client(format!("creating topic {topic}")))?;
            }
            Ok(())
        })
    }

    fn clean_up(&self, setup: &Setup<'_>) -> Result<(), BenchError> {
        let brokers = setup.brokers.to_string();
        let topics = setup.topics.to_vec();
        on_core(setup.cpu, "sluice-bench-teardown", move || async move {
            let client = connect(&brokers).await?;
            for topic in &topics {
                client
                    .delete_topic(topic)
                    .await
                    .map_err(BenchError::client(format!("deleting topic {topic}")))?;
            }
            Ok(())
        })
    }

    async fn producer(
        &self,
        context: &RunContext,
        _plan: &ProducerPlan,
    ) -> Result<NativeProducer, BenchError> {
        let workload = &context.workload;
        let options = ProducerOptions {
            acks: workload.acks.into(),
            batch_bytes: workload.batch_bytes,
            linger: Duration::from_millis(workload.linger_ms),
            // One batch of a partition in flight: records are stored, and
            // so acknowledged, in send order, which the collectors rely on.
            in_flight_per_partition_max: 1,
            ..ProducerOptions::default()
        };
        let client = connect(&context.brokers).await?;
        Ok(NativeProducer {
            producer: Producer::new(client, options),
            collectors: (0..workload.partitions_per_topic).map(|_| None).collect(),
            collector_tasks: Vec::new(),
            recorder: None,
        })
    }

    async fn consumer(
        &self,
        context: &RunContext,
        plan: &ConsumerPlan,
    ) -> Result<NativeConsumer, BenchError> {
        let client = connect(&context.brokers).await?;
        // The topic is fresh: from offset 0.
        let next: Vec<(u32, u64)> = plan.partitions.iter().map(|p| (*p, 0)).collect();
        let stream = open(&client, &plan.topic, &next);
        Ok(NativeConsumer {
            topic: plan.topic.clone(),
            client,
            stream,
            next,
        })
    }
}

async fn connect(brokers: &str) -> Result<Client, BenchError> {
    Client::connect(brokers)
        .await
        .map_err(BenchError::client(format!("connecting to {brokers}")))
}

/// A record handed to the client, waiting for its outcome.
struct Sent {
    pending: Pending,
    delivery: Delivery,
}

pub struct NativeProducer {
    producer: Producer,
    /// Per partition, the collector's end, made when the partition is
    /// first written to.
    collectors: Vec<Option<LocalSender<Sent>>>,
    collector_tasks: Vec<Task<()>>,
    recorder: Option<Recorder>,
}

impl driver::Producer for NativeProducer {
    fn start(&mut self, recorder: &Recorder) {
        self.recorder = Some(recorder.clone());
    }

    async fn send(&mut self, record: Record<'_>, _recorder: &Recorder) -> Result<(), BenchError> {
        // Bounded memory: wait while the producer holds too many unstored
        // bytes.
        self.producer.ready().await;
        let delivery = self.producer.send(
            record.topic,
            Some(record.partition),
            record.key,
            record.value,
            &[],
        );
        let collector = self.collectors[record.partition as usize].get_or_insert_with(|| {
            let (sender, receiver) = local_channel::new_unbounded();
            let recorder = self.recorder.clone().expect("started");
            self.collector_tasks
                .push(glommio::spawn_local(collect(receiver, recorder)));
            sender
        });
        let sent = Sent {
            pending: Pending {
                intended: record.intended,
                bytes: record.bytes(),
            },
            delivery,
        };
        if collector.try_send(sent).is_err() {
            unreachable!("a collector lives as long as its sender");
        }
        Ok(())
    }

    async fn finish(self, recorder: &Recorder) {
        // Out with the open batches; the collectors see every outcome or
        // the drain deadline.
        let deadline = recorder.timeline().drain_deadline;
        driver::until(recorder.clock(), deadline, self.producer.flush()).await;
        drop(self.collectors);
        for task in self.collector_tasks {
            task.await;
        }
        // Batches the client sent again because the broker was too busy.
        recorder.retried(self.producer.retries());
    }
}

/// Awaits one partition's deliveries in send order and records each
/// outcome when it is known.
async fn collect(receiver: LocalReceiver<Sent>, recorder: Recorder) {
    let clock = recorder.clock();
    let deadline = recorder.timeline().drain_deadline;
    while let Some(sent) = receiver.recv().await {
        let outcome = driver::until(clock, deadline, sent.delivery).await;
        let now = clock.now();
        match outcome {
            Some(Ok(_)) => recorder.acknowledged(now, sent.pending),
            Some(Err(error)) => recorder.produce_failed(now, &error),
            None => recorder.unacknowledged(1),
        }
    }
}

pub struct NativeConsumer {
    topic: String,
    client: Client,
    stream: RecordStream,
    /// The next offset of each partition.
    next: Vec<(u32, u64)>,
}

fn open(client: &Client, topic: &str, next: &[(u32, u64)]) -> RecordStream {
    client.consume_partitions(
        topic,
        next.iter()
            .map(|(partition, offset)| PartitionRange {
                partition: *partition,
                start: StartOffset::At(*offset),
                end: None,
            })
            .collect(),
        ConsumeOptions {
            max_wait: FETCH_WAIT,
            ..ConsumeOptions::default()
        },
    )
}

impl NativeConsumer {
    fn read(&mut self, record: ConsumedRecord, recorder: &Recorder) {
        let now = recorder.now();
        let intended = driver::stamp_of(recorder.clock(), &record.value);
        let bytes = record.value.len() + record.key.as_ref().map_or(0, |key| key.len());
        recorder.consumed(now, intended, bytes);
        if let Some(entry) = self.next.iter_mut().find(|(p, _)| *p == record.partition) {
            entry.1 = record.offset + 1;
        }
    }
}

impl driver::Consumer for NativeConsumer {
    async fn poll(&mut self, recorder: &Recorder) -> Result<(), BenchError> {
        let deadline = recorder.now() + FETCH_WAIT.as_nanos() as u64;
        match driver::until(recorder.clock(), deadline, self.stream.next()).await {
            None => Ok(()),
            Some(Some(Ok(record))) => {
                self.read(record, recorder);
                Ok(())
            }
            Some(Some(Err(source))) => Err(BenchError::Client {
                what: format!("reading {}", self.topic),
                source,
            }),
            Some(None) => Err(BenchError::Ended {
                what: format!("the record stream of {}", self.topic),
            }),
        }
    }

    async fn reconnect(&mut self, context: &RunContext) -> Result<(), BenchError> {
        self.client = connect(&context.brokers).await?;
        self.stream = open(&self.client, &self.topic, &self.next);
        Ok(())
    }
}
