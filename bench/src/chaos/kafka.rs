//! A chaos run's clients through librdkafka (the `rdkafka` crate), for
//! Sluice's Kafka listener or any Kafka-compatible cluster: the topic's
//! creation, producers whose deliveries are the history's completions,
//! consumers assigned every partition or in a group, the final full read,
//! and where partitions live (for faults aimed at a leader).
//!
//! A send is invoked when it is handed to librdkafka and completes with
//! its delivery report: `ok` with the offset the broker acknowledged, or
//! `info` (unknown) on any delivery error, since librdkafka may have sent
//! it before the error (a timeout, a broken connection). A send librdkafka
//! refuses outright (its queue full) is `fail`.
//!
//! A consume-transform-produce run (`transform = true`) adds transformers
//! ([`transform`]): each reads the input topic in a consumer group
//! (read_committed) and, in one transaction per batch read, writes each
//! value with [`TRANSFORMED`] before it to the same partition of the
//! output topic and commits the group's offsets (KIP-447's
//! `send_offsets_to_transaction`). Its sends carry the transaction, whose
//! end is recorded: committed, aborted, or unknown. After any failure it
//! starts over with a new consumer and producer (the same transactional
//! id, which fences the old producer), from the offsets last committed.
//! The run's consumers then read the output, read_committed.

use std::{
    sync::{atomic::AtomicBool, atomic::Ordering, Arc},
    time::{Duration, Instant},
};

use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    config::ClientConfig,
    consumer::{BaseConsumer, Consumer as _, ConsumerContext, Rebalance},
    error::{KafkaError, KafkaResult},
    message::Message as _,
    producer::{BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer},
    types::RDKafkaErrorCode,
    ClientContext, Offset, TopicPartitionList,
};

use super::{
    checker::TRANSFORMED,
    history::{Committed, EventType, Function, Read},
    run::{ChaosSection, CheckSection, ConsumerMode, Pacer, Recorder, FINAL_READER},
};
use crate::BenchError;

/// How long a client waits for metadata or an admin answer.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);
/// librdkafka's `message.timeout.ms`: a send not delivered by then is
/// reported as failed (an unknown outcome here).
const MESSAGE_TIMEOUT_MS: &str = "10000";
/// librdkafka's `reconnect.backoff.max.ms`. Its default (10 s) is reached
/// after a few failed reconnects and is not reset by a later success, so a
/// client that lived through earlier kills waits up to 10 s to reconnect
/// after the next one: as long as `message.timeout.ms`, which then expires
/// the sends it holds. Capped at 1 s, the stall measured is the broker's.
const RECONNECT_BACKOFF_MAX_MS: &str = "1000";
/// How long the producers get to deliver what they hold at the end.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(15);
/// Records one poll event holds at most.
const READS_PER_POLL_MAX: usize = 500;
/// How long a transformer may take to read the whole input once the run's
/// faults have ended.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a transaction's calls (init, offsets, commit, abort) may take.
const TXN_TIMEOUT: Duration = Duration::from_secs(30);
/// The transformers' `transaction.timeout.ms`: a transaction left open by
/// a transformer that started over is aborted by the coordinator this
/// soon, if the new one's InitProducerId did not abort it first.
const TXN_TIMEOUT_MS: &str = "10000";
/// The transformers' consumer group.
const TRANSFORM_GROUP: &str = "sluice-chaos-transform";

/// The output topic of a consume-transform-produce run on `topic`.
pub fn output_topic(topic: &str) -> String {
    format!("{topic}-out")
}

fn kafka_error(what: impl Into<String>) -> impl FnOnce(KafkaError) -> BenchError {
    let what = what.into();
    move |source| BenchError::Kafka { what, source }
}

fn config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("client.id", "sluice-bench-chaos")
        .set("reconnect.backoff.max.ms", RECONNECT_BACKOFF_MAX_MS)
        .set("log_level", "3");
    config
}

/// Where `topic`'s partitions live: each partition's leader as
/// `HOST:PORT`, `None` where the cluster names none.
pub fn leaders(bootstrap: &str, topic: &str) -> Option<Vec<Option<String>>> {
    let client: BaseConsumer = config(bootstrap).create().ok()?;
    let metadata = client.fetch_metadata(Some(topic), METADATA_TIMEOUT).ok()?;
    let info = metadata.topics().iter().find(|t| t.name() == topic)?;
    if info.error().is_some() {
        return None;
    }
    let count = info
        .partitions()
        .iter()
        .map(|p| p.id() + 1)
        .max()
        .unwrap_or(0);
    let mut leaders = vec![None; count.max(0) as usize];
    for partition in info.partitions() {
        leaders[partition.id() as usize] = metadata
            .brokers()
            .iter()
            .find(|broker| broker.id() == partition.leader())
            .map(|broker| format!("{}:{}", broker.host(), broker.port()));
    }
    Some(leaders)
}

/// Waits until the cluster lists `nodes` brokers, then creates the topic.
pub fn create_topic(bootstrap: &str, nodes: usize, chaos: &ChaosSection) -> Result<(), BenchError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let client: BaseConsumer = config(bootstrap)
        .create()
        .map_err(kafka_error(format!("connecting to {bootstrap}")))?;
    loop {
        let seen = client
            .fetch_metadata(None, METADATA_TIMEOUT)
            .map_or(0, |metadata| metadata.brokers().len());
        if seen >= nodes {
            break;
        }
        if Instant::now() > deadline {
            return Err(BenchError::Cluster(format!(
                "{seen} of the {nodes} nodes listed as brokers after 60 s"
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let admin: AdminClient<DefaultClientContext> = config(bootstrap)
        .create()
        .map_err(kafka_error(format!("connecting to {bootstrap}")))?;
    let factor = match chaos.replication_factor {
        0 => -1,
        factor => i32::from(factor),
    };
    let mut topic = NewTopic::new(
        &chaos.topic,
        chaos.partitions as i32,
        TopicReplication::Fixed(factor),
    );
    for (key, value) in &chaos.configs {
        topic = topic.set(key, value);
    }
    let options = AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT));
    let results = futures_lite::future::block_on(admin.create_topics([&topic], &options))
        .map_err(kafka_error(format!("creating {}", chaos.topic)))?;
    for result in results {
        if let Err((name, code)) = result {
            if code != RDKafkaErrorCode::TopicAlreadyExists {
                return Err(BenchError::Cluster(format!("creating {name}: {code}")));
            }
        }
    }
    // Every partition known, with a leader, before the clients start.
    while leaders(bootstrap, &chaos.topic).is_none_or(|leaders| {
        leaders.len() < chaos.partitions as usize || leaders.iter().any(Option::is_none)
    }) {
        if Instant::now() > deadline {
            return Err(BenchError::Cluster(format!(
                "{} has no leader for some partition after 60 s",
                chaos.topic
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// A producer's deliveries, recorded as they come on librdkafka's thread.
struct Deliveries {
    recorder: Arc<Recorder>,
    client: u32,
    idempotent: bool,
}

/// What a send's delivery report is told: the send's op, and its
/// transaction's.
type Sent = Box<(u64, Option<u64>)>;

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Sent;

    fn delivery(&self, result: &DeliveryResult<'_>, sent: Sent) {
        let (op, txn) = *sent;
        let (message, error) = match result {
            Ok(message) => (message, None),
            Err((error, message)) => (message, Some(error.to_string())),
        };
        let mut done = self.recorder.event(match error {
            None => EventType::Ok,
            Some(_) => EventType::Info,
        });
        done.op = Some(op);
        done.txn = txn;
        done.client = Some(self.client);
        done.f = Some(Function::Send);
        done.topic = Some(message.topic().to_string());
        done.partition = Some(message.partition() as u32);
        done.value = message
            .payload()
            .map(|value| String::from_utf8_lossy(value).into_owned());
        done.idempotent = self.idempotent;
        match error {
            None => done.offset = Some(message.offset() as u64),
            Some(error) => done.error = Some(error),
        }
        self.recorder.record(done);
    }
}

/// One producer: sends `w{client}-{n}` on schedule to each partition in
/// turn until `end`, then waits for what librdkafka still holds.
pub(super) fn produce(
    client: u32,
    bootstrap: &str,
    chaos: &ChaosSection,
    check: &CheckSection,
    recorder: Arc<Recorder>,
    stop: &AtomicBool,
    end: Instant,
) -> Result<(), BenchError> {
    let deliveries = Deliveries {
        recorder: recorder.clone(),
        client,
        idempotent: check.idempotent,
    };
    let producer: ThreadedProducer<Deliveries> = config(bootstrap)
        .set("acks", check.acks.as_str())
        .set("enable.idempotence", check.idempotent.to_string())
        .set("message.timeout.ms", MESSAGE_TIMEOUT_MS)
        .set("linger.ms", "1")
        .create_with_context(deliveries)
        .map_err(kafka_error(format!("a producer for {bootstrap}")))?;
    let interval = Duration::from_secs_f64(f64::from(chaos.producers) / f64::from(chaos.rate));
    let mut pacer = Pacer::new(interval);
    let mut sequence: u64 = 0;
    while !stop.load(Ordering::Relaxed) && Instant::now() < end {
        pacer.wait();
        let partition = (sequence % u64::from(chaos.partitions)) as u32;
        let value = format!("w{client}-{sequence}");
        sequence += 1;
        send(
            &producer,
            &recorder,
            client,
            (&chaos.topic, partition),
            &value,
            check.idempotent,
            None,
        );
    }
    let _ = producer.flush(FLUSH_TIMEOUT);
    Ok(())
}

/// Records a send's invocation and hands it to `producer`; a send
/// librdkafka refuses is recorded failed (never sent). Whether it was.
fn send(
    producer: &ThreadedProducer<Deliveries>,
    recorder: &Recorder,
    client: u32,
    (topic, partition): (&str, u32),
    value: &str,
    idempotent: bool,
    txn: Option<u64>,
) -> bool {
    let mut invoke = recorder.event(EventType::Invoke);
    invoke.txn = txn;
    let invoke = recorder.invoke(invoke, client, topic, partition, value, idempotent);
    let op = invoke.op.expect("an invocation has its op");
    let record = BaseRecord::<(), _, Sent>::with_opaque_to(topic, Box::new((op, txn)))
        .partition(partition as i32)
        .payload(value);
    match producer.send(record) {
        Ok(()) => true,
        Err((error, _)) => {
            let mut failed = invoke;
            let at = recorder.event(EventType::Fail);
            failed.kind = EventType::Fail;
            failed.mono_ns = at.mono_ns;
            failed.wall_ms = at.wall_ms;
            failed.error = Some(error.to_string());
            recorder.record(failed);
            false
        }
    }
}

/// A transformer: consume-transform-produce in transactions until the
/// run is over and the group has committed the whole input, starting over
/// after any failure. Fails if the input is not drained
/// [`DRAIN_TIMEOUT`] after `end`.
pub(super) fn transform(
    client: u32,
    bootstrap: &str,
    chaos: &ChaosSection,
    recorder: Arc<Recorder>,
    end: Instant,
) -> Result<(), BenchError> {
    let deadline = end + DRAIN_TIMEOUT;
    let mut last_failure = String::new();
    while Instant::now() < deadline {
        match transform_session(client, bootstrap, chaos, &recorder, end, deadline) {
            Ok(()) => return Ok(()),
            Err(failure) => {
                eprintln!("transformer {client} starts over: {failure}");
                last_failure = failure;
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    Err(BenchError::Cluster(format!(
        "transformer {client} did not commit the whole input {DRAIN_TIMEOUT:?} after the run; last: {last_failure}"
    )))
}

/// One transformer's consumer and producer, until the input is drained
/// (`Ok`) or something fails (why).
fn transform_session(
    client: u32,
    bootstrap: &str,
    chaos: &ChaosSection,
    recorder: &Arc<Recorder>,
    end: Instant,
    deadline: Instant,
) -> Result<(), String> {
    let context = GroupEvents {
        recorder: recorder.clone(),
        client,
    };
    let consumer: BaseConsumer<GroupEvents> = config(bootstrap)
        .set("group.id", TRANSFORM_GROUP)
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .create_with_context(context)
        .map_err(|error| format!("a consumer: {error}"))?;
    consumer
        .subscribe(&[&chaos.topic])
        .map_err(|error| format!("a subscription: {error}"))?;
    recorder.assigned(client);
    let deliveries = Deliveries {
        recorder: recorder.clone(),
        client,
        idempotent: true,
    };
    let producer: ThreadedProducer<Deliveries> = config(bootstrap)
        .set(
            "transactional.id",
            format!("sluice-chaos-transform-{client}"),
        )
        .set("transaction.timeout.ms", TXN_TIMEOUT_MS)
        .set("message.timeout.ms", MESSAGE_TIMEOUT_MS)
        .set("linger.ms", "1")
        .create_with_context(deliveries)
        .map_err(|error| format!("a producer: {error}"))?;
    producer
        .init_transactions(TXN_TIMEOUT)
        .map_err(|error| format!("init_transactions: {error}"))?;
    let output = output_topic(&chaos.topic);
    while Instant::now() < deadline {
        let reads = poll(&consumer, Duration::from_millis(200));
        if reads.is_empty() {
            if Instant::now() >= end && drained(&consumer, chaos) {
                return Ok(());
            }
            continue;
        }
        recorder.poll(client, reads.clone(), false);
        let txn = recorder.op();
        producer
            .begin_transaction()
            .map_err(|error| format!("begin_transaction: {error}"))?;
        let mut positions = TopicPartitionList::new();
        let mut sent_all = true;
        for read in &reads {
            let value = format!("{TRANSFORMED}{}", read.value);
            sent_all &= send(
                &producer,
                recorder,
                client,
                (&output, read.partition),
                &value,
                true,
                Some(txn),
            );
            let _ = positions.add_partition_offset(
                &read.topic,
                read.partition as i32,
                Offset::Offset(read.offset as i64 + 1),
            );
        }
        let ended = if sent_all {
            consumer
                .group_metadata()
                .ok_or_else(|| "the consumer has no group metadata".to_string())
                .and_then(|group| {
                    producer
                        .send_offsets_to_transaction(&positions, &group, TXN_TIMEOUT)
                        .and_then(|()| producer.commit_transaction(TXN_TIMEOUT))
                        .map_err(|error| error.to_string())
                })
        } else {
            Err("a send refused".to_string())
        };
        let mut end_event = recorder.event(match &ended {
            Ok(()) => EventType::Ok,
            // Aborted for sure once the abort succeeds; else unknown.
            Err(_) if producer.abort_transaction(TXN_TIMEOUT).is_ok() => EventType::Fail,
            Err(_) => EventType::Info,
        });
        end_event.op = Some(txn);
        end_event.client = Some(client);
        end_event.f = Some(Function::Txn);
        end_event.error = ended.as_ref().err().cloned();
        recorder.record(end_event);
        // After an abort, the consumer's position is past what it read:
        // a new session reads again from the committed offsets.
        ended?;
    }
    Err("the run's end passed with input left".to_string())
}

/// Whether the transformers' group has committed every partition of the
/// input to its end.
fn drained<C: ConsumerContext>(consumer: &BaseConsumer<C>, chaos: &ChaosSection) -> bool {
    let mut all = TopicPartitionList::new();
    for partition in 0..chaos.partitions as i32 {
        all.add_partition(&chaos.topic, partition);
    }
    let Ok(committed) = consumer.committed_offsets(all, METADATA_TIMEOUT) else {
        return false;
    };
    (0..chaos.partitions as i32).all(|partition| {
        let Ok((_, high)) = consumer.fetch_watermarks(&chaos.topic, partition, METADATA_TIMEOUT)
        else {
            return false;
        };
        let at = committed
            .find_partition(&chaos.topic, partition)
            .map(|element| element.offset());
        high == 0 || at == Some(Offset::Offset(high))
    })
}

/// A consumer's rebalances, recorded as assignments (its next reads may
/// start anywhere), and its group's commits.
struct GroupEvents {
    recorder: Arc<Recorder>,
    client: u32,
}

impl ClientContext for GroupEvents {}

impl ConsumerContext for GroupEvents {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(_) = rebalance {
            self.recorder.assigned(self.client);
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        // A commit that failed may still have been stored (a timeout):
        // unknown, as a send would be.
        let mut commit = self.recorder.event(match result {
            Ok(()) => EventType::Ok,
            Err(_) => EventType::Info,
        });
        commit.op = Some(self.recorder.op());
        commit.client = Some(self.client);
        commit.f = Some(Function::Commit);
        commit.error = result.err().map(|error| error.to_string());
        commit.committed = offsets
            .elements()
            .iter()
            .filter_map(|element| match element.offset() {
                Offset::Offset(offset) => Some(Committed {
                    topic: element.topic().to_string(),
                    partition: element.partition() as u32,
                    offset: offset as u64,
                }),
                _ => None,
            })
            .collect();
        self.recorder.record(commit);
    }
}

/// A consumer: reads the topic (every partition assigned from its start,
/// or as a member of a group) until told to stop; each batch of records
/// one poll returns is one poll event.
pub(super) fn consume(
    client: u32,
    bootstrap: &str,
    chaos: &ChaosSection,
    check: &CheckSection,
    recorder: Arc<Recorder>,
    stop: &AtomicBool,
) -> Result<(), BenchError> {
    let context = GroupEvents {
        recorder: recorder.clone(),
        client,
    };
    // A transform run's consumers read its output, committed only.
    let topic = match check.transform {
        true => output_topic(&chaos.topic),
        false => chaos.topic.clone(),
    };
    let mut settings = config(bootstrap);
    if check.transform {
        settings.set("isolation.level", "read_committed");
    }
    settings
        .set("group.id", "sluice-chaos")
        .set(
            "enable.auto.commit",
            (check.consumer == ConsumerMode::Group).to_string(),
        )
        .set("auto.commit.interval.ms", "500")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false");
    let consumer: BaseConsumer<GroupEvents> = settings
        .create_with_context(context)
        .map_err(kafka_error(format!("a consumer for {bootstrap}")))?;
    match check.consumer {
        ConsumerMode::Assign => {
            let mut assignment = TopicPartitionList::new();
            for partition in 0..chaos.partitions {
                assignment
                    .add_partition_offset(&topic, partition as i32, Offset::Beginning)
                    .map_err(kafka_error("an assignment"))?;
            }
            consumer
                .assign(&assignment)
                .map_err(kafka_error("an assignment"))?;
            recorder.assigned(client);
        }
        ConsumerMode::Group => consumer
            .subscribe(&[&topic])
            .map_err(kafka_error("a subscription"))?,
    }
    while !stop.load(Ordering::Relaxed) {
        let reads = poll(&consumer, Duration::from_millis(100));
        if !reads.is_empty() {
            recorder.poll(client, reads, false);
        }
    }
    Ok(())
}

/// What one poll returns: the first record waited for up to `wait`, then
/// whatever else is ready at once.
fn poll<C: ConsumerContext>(consumer: &BaseConsumer<C>, wait: Duration) -> Vec<Read> {
    let mut reads = Vec::new();
    let mut timeout = wait;
    while reads.len() < READS_PER_POLL_MAX {
        match consumer.poll(timeout) {
            Some(Ok(message)) => reads.push(Read {
                topic: message.topic().to_string(),
                partition: message.partition() as u32,
                offset: message.offset() as u64,
                value: message.payload().map_or(String::new(), |value| {
                    String::from_utf8_lossy(value).into_owned()
                }),
            }),
            // Errors are librdkafka's to recover from (it reconnects and
            // follows leaders); the next poll goes on.
            Some(Err(_)) | None => break,
        }
        timeout = Duration::ZERO;
    }
    reads
}

/// Once the faults have healed: every partition of `topic` read from its
/// start to its end, as the final read; committed records only (a
/// transaction's, once it committed), as librdkafka reads by default.
pub(super) fn final_read(
    bootstrap: &str,
    topic: &str,
    partitions: u32,
    recorder: &Recorder,
    timeout: Duration,
) -> Result<(), BenchError> {
    let deadline = Instant::now() + timeout;
    let consumer: BaseConsumer = config(bootstrap)
        .set("group.id", "sluice-chaos-final-read")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .map_err(kafka_error(format!("a consumer for {bootstrap}")))?;
    let mut ends = Vec::new();
    for partition in 0..partitions as i32 {
        let end = loop {
            match consumer.fetch_watermarks(topic, partition, METADATA_TIMEOUT) {
                Ok((_, high)) => break high,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(error) => {
                    return Err(kafka_error(format!(
                        "the final read's end of partition {partition}"
                    ))(error))
                }
            }
        };
        ends.push(end);
    }
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions as i32 {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .map_err(kafka_error("an assignment"))?;
    }
    consumer
        .assign(&assignment)
        .map_err(kafka_error("an assignment"))?;
    // Where the consumer is: past what it read, and past the markers and
    // aborted records it skipped.
    let mut next: Vec<i64> = vec![0; ends.len()];
    while next.iter().zip(&ends).any(|(next, end)| next < end) {
        if Instant::now() > deadline {
            return Err(BenchError::Cluster(format!(
                "the final read of {topic} reached {next:?} of {ends:?} in {timeout:?}"
            )));
        }
        let reads = poll(&consumer, Duration::from_millis(200));
        for read in &reads {
            let at = &mut next[read.partition as usize];
            *at = (*at).max(read.offset as i64 + 1);
        }
        if let Ok(positions) = consumer.position() {
            for element in positions.elements() {
                if let (Offset::Offset(at), Some(next)) =
                    (element.offset(), next.get_mut(element.partition() as usize))
                {
                    *next = (*next).max(at);
                }
            }
        }
        if !reads.is_empty() {
            recorder.poll(FINAL_READER, reads, true);
        }
    }
    Ok(())
}
