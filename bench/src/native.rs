//! The `native` driver: Sluice's own client (`sluice_net::client`) on the
//! harness's pinned glommio executors.
//!
//! Each producer and each consumer has its own connection. A producer
//! keeps up to the workload's `max_in_flight` batches of a partition in
//! flight. For each partition it writes to, a collector task hears each
//! record's outcome when its batch finishes, in send order or not
//! ([`Outstanding`]), and records the latency then. A consumer reads its
//! partitions from offset 0 of the fresh topic.

use std::{cell::RefCell, rc::Rc, time::Duration};

use futures_lite::StreamExt;
use glommio::Task;
use sluice_net::client::{
    Client, ClientError, ConsumeOptions, ConsumedRecord, Delivery, PartitionRange, Producer,
    ProducerOptions, RecordMetadata, RecordStream, StartOffset,
};

use crate::{
    driver::{self, Pending, Record, Recorder, Setup, FETCH_WAIT},
    harness::on_core,
    outstanding::Outstanding,
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
        let replication_factor = setup.workload.replication_factor;
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
                    .create_topic_placed(sluice_net::native::messages::NewTopic {
                        name: topic.clone(),
                        partitions,
                        configs: configs.clone(),
                        replication_factor,
                        assignment: Vec::new(),
                    })
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
            // The collectors hear outcomes in any order.
            in_flight_per_partition_max: workload.max_in_flight,
            ..ProducerOptions::default()
        };
        // Every batch that can be in flight: each holds less than
        // `batch_bytes` and one more record (an 8-byte key at most).
        let record_bytes_max = workload.message_size.max_bytes() as usize + 8;
        let window_bytes = workload.max_in_flight * (workload.batch_bytes + record_bytes_max);
        let client = connect(&context.brokers).await?;
        Ok(NativeProducer {
            producer: Producer::new(client, options),
            window_bytes,
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

/// One partition's records waiting for their outcome, shared by the
/// producer (which queues them) and the partition's collector task.
type Partition = Rc<RefCell<Outstanding<Delivery>>>;

pub struct NativeProducer {
    producer: Producer,
    /// See [`Outstanding::new`].
    window_bytes: usize,
    /// Per partition, the records waiting, made when the partition is
    /// first written to.
    collectors: Vec<Option<Partition>>,
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
        let recorder = self.recorder.as_ref().expect("started");
        let window_bytes = self.window_bytes;
        let collector = self.collectors[record.partition as usize].get_or_insert_with(|| {
            let partition = Rc::new(RefCell::new(Outstanding::new(window_bytes)));
            self.collector_tasks.push(glommio::spawn_local(collect(
                partition.clone(),
                recorder.clone(),
            )));
            partition
        });
        let pending = Pending {
            intended: record.intended,
            bytes: record.bytes(),
        };
        // A delivery refused at once is heard now.
        collector
            .borrow_mut()
            .push(pending, delivery, &mut |pending, outcome| {
                heard(recorder, recorder.now(), pending, outcome)
            });
        Ok(())
    }

    async fn finish(self, recorder: &Recorder) {
        // Out with the open batches; the collectors see every outcome or
        // the drain deadline.
        let deadline = recorder.timeline().drain_deadline;
        driver::until(recorder.clock(), deadline, self.producer.flush()).await;
        // No more records: each collector ends once it has heard all.
        for partition in self.collectors.iter().flatten() {
            partition.borrow_mut().close();
        }
        drop(self.collectors);
        for task in self.collector_tasks {
            task.await;
        }
        // Batches the client sent again because the broker was too busy.
        recorder.retried(self.producer.retries());
    }
}

/// Hears one partition's outcomes as its batches finish, in whatever
/// order, and records each then; ends once the producer is done and every
/// record is heard, or at the drain deadline (the rest unacknowledged).
async fn collect(partition: Partition, recorder: Recorder) {
    let clock = recorder.clock();
    let deadline = recorder.timeline().drain_deadline;
    loop {
        let now = clock.now();
        partition
            .borrow_mut()
            .take_heard(&mut |pending, outcome| heard(&recorder, now, pending, outcome));
        if partition.borrow().is_done() {
            return;
        }
        let changed = partition.borrow().changed();
        if driver::until(clock, deadline, changed).await.is_none() {
            recorder.unacknowledged(partition.borrow().unheard());
            return;
        }
    }
}

fn heard(
    recorder: &Recorder,
    at: crate::schedule::Nanos,
    pending: Pending,
    outcome: Result<RecordMetadata, ClientError>,
) {
    match outcome {
        Ok(_) => recorder.acknowledged(at, pending),
        Err(error) => recorder.produce_failed(at, &error),
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
        // A record already here is taken without a timer: waiting with one
        // armed and cancelled an io_uring timeout per record read.
        let ready = futures_lite::future::poll_once(self.stream.next()).await;
        let next = match ready {
            Some(next) => Some(next),
            None => {
                let deadline = recorder.now() + FETCH_WAIT.as_nanos() as u64;
                driver::until(recorder.clock(), deadline, self.stream.next()).await
            }
        };
        match next {
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
