//! What the black-box tests with librdkafka (the `rdkafka` crate) share:
//! clients configured for a `common::Broker`'s Kafka listener (or any
//! bootstrap string, a cluster's), a producer
//! that reports every delivery, a consumer that reads assigned partitions
//! to their end, and records as owned values to compare byte for byte.
//!
//! `SLUICE_KAFKA_DEBUG=protocol,broker` (any librdkafka `debug` value) makes
//! every client log what it sends and receives on stderr.

#![allow(dead_code)]

use std::{
    collections::{BTreeMap, VecDeque},
    ffi::CStr,
    sync::Mutex,
    time::{Duration, Instant},
};

use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    bindings as rdsys,
    client::ClientContext,
    config::{ClientConfig, RDKafkaLogLevel},
    consumer::{BaseConsumer, Consumer, ConsumerContext},
    error::KafkaError,
    message::{BorrowedMessage, DeliveryResult, Header, Headers, OwnedHeaders},
    producer::{BaseProducer, BaseRecord, Producer, ProducerContext},
    Message, Offset, Timestamp, TopicPartitionList,
};

use crate::common::Broker;

/// Log lines a client keeps (the latest), for assertions and for the
/// message of a failed test.
const LOG_LINES_MAX: usize = 20_000;

/// How long a test waits for librdkafka to deliver or read everything; far
/// above what a healthy broker on loopback needs.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// A record as produced or as consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    /// In the producer's order; names may repeat.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// CreateTime in ms; `None` when producing: the producer's clock.
    pub timestamp: Option<i64>,
}

impl Record {
    pub fn new(key: Option<&[u8]>, value: Option<&[u8]>) -> Record {
        Record {
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
            headers: Vec::new(),
            timestamp: None,
        }
    }

    pub fn header(mut self, name: &str, value: Option<&[u8]>) -> Record {
        self.headers
            .push((name.to_string(), value.map(<[u8]>::to_vec)));
        self
    }

    pub fn at(mut self, timestamp: i64) -> Record {
        self.timestamp = Some(timestamp);
        self
    }
}

/// A record read from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: Timestamp,
    pub record: Record,
}

/// Where a record went, as the broker acknowledged it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    pub partition: i32,
    pub offset: i64,
}

/// The context of every client here: log lines and errors kept, and
/// delivery reports (for a producer) by the index of the record sent.
#[derive(Default)]
pub struct Recorder {
    logs: Mutex<VecDeque<String>>,
    errors: Mutex<Vec<String>>,
    deliveries: Mutex<Vec<(usize, Result<Placed, KafkaError>)>>,
}

impl Recorder {
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().iter().cloned().collect()
    }

    pub fn errors(&self) -> Vec<String> {
        self.errors.lock().unwrap().clone()
    }

    /// The last log lines, for a failure message.
    pub fn log_tail(&self, lines: usize) -> String {
        let logs = self.logs.lock().unwrap();
        let skip = logs.len().saturating_sub(lines);
        logs.iter()
            .skip(skip)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn take_deliveries(&self) -> Vec<(usize, Result<Placed, KafkaError>)> {
        std::mem::take(&mut *self.deliveries.lock().unwrap())
    }

    pub fn delivered_count(&self) -> usize {
        self.deliveries.lock().unwrap().len()
    }

    /// The records stored so far, by the index they were sent with, in
    /// the order of their reports (the reports stay).
    pub fn stored(&self) -> Vec<(usize, Placed)> {
        self.deliveries
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(index, outcome)| Some((*index, *outcome.as_ref().ok()?)))
            .collect()
    }

    /// Takes the reports of the records sent with indexes `0..sent`, in
    /// index order; each must have been reported once.
    pub fn take_outcomes(&self, sent: usize) -> Vec<Result<Placed, KafkaError>> {
        let mut outcomes: Vec<Option<Result<Placed, KafkaError>>> = vec![None; sent];
        for (index, outcome) in self.take_deliveries() {
            assert!(index < sent, "a report of record {index}, of {sent} sent");
            assert!(outcomes[index].is_none(), "record {index} reported twice");
            outcomes[index] = Some(outcome);
        }
        outcomes
            .into_iter()
            .enumerate()
            .map(|(index, outcome)| {
                outcome.unwrap_or_else(|| panic!("record {index} of {sent} not reported"))
            })
            .collect()
    }
}

impl ClientContext for Recorder {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        keep_log_line(&self.logs, log_line(level, facility, message));
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if std::env::var_os("SLUICE_KAFKA_DEBUG").is_some() {
            eprintln!("rdkafka error: {error}: {reason}");
        }
        self.errors
            .lock()
            .unwrap()
            .push(format!("{error}: {reason}"));
    }
}

impl ProducerContext for Recorder {
    type DeliveryOpaque = Box<usize>;

    fn delivery(&self, result: &DeliveryResult<'_>, index: Box<usize>) {
        let outcome = match result {
            Ok(message) => Ok(Placed {
                partition: message.partition(),
                offset: message.offset(),
            }),
            Err((error, _)) => Err(error.clone()),
        };
        self.deliveries.lock().unwrap().push((*index, outcome));
    }
}

impl ConsumerContext for Recorder {}

/// A librdkafka configuration for this broker's Kafka listener.
pub fn config(broker: &Broker) -> ClientConfig {
    config_for(&broker.kafka_addr)
}

/// A librdkafka configuration for `bootstrap` (Kafka listeners, comma
/// separated).
pub fn config_for(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "30000")
        // Every line reaches `Recorder::log`; which ones librdkafka writes
        // is up to `debug`.
        .set_log_level(RDKafkaLogLevel::Debug);
    if let Ok(debug) = std::env::var("SLUICE_KAFKA_DEBUG") {
        config.set("debug", debug);
    }
    config
}

pub type KafkaProducer = BaseProducer<Recorder>;
pub type KafkaConsumer = BaseConsumer<Recorder>;

/// A producer with librdkafka's defaults (idempotence on, as in today's
/// clients, unless a setting says otherwise) and `settings` on top.
pub fn producer(broker: &Broker, settings: &[(&str, &str)]) -> KafkaProducer {
    producer_for(&broker.kafka_addr, settings)
}

/// [`producer`] for `bootstrap`.
pub fn producer_for(bootstrap: &str, settings: &[(&str, &str)]) -> KafkaProducer {
    let mut config = config_for(bootstrap);
    config
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "60000");
    for (key, value) in settings {
        config.set(*key, *value);
    }
    config
        .create_with_context(Recorder::default())
        .expect("producer")
}

/// A consumer that reads what it is assigned, from the offsets it is
/// given. librdkafka wants a `group.id` even for `assign`; nothing is
/// committed and no group is joined.
pub fn consumer(broker: &Broker, settings: &[(&str, &str)]) -> KafkaConsumer {
    consumer_for(&broker.kafka_addr, settings)
}

/// [`consumer`] for `bootstrap`.
pub fn consumer_for(bootstrap: &str, settings: &[(&str, &str)]) -> KafkaConsumer {
    let mut config = config_for(bootstrap);
    config
        .set("group.id", "sluice-tests-assign")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "error");
    for (key, value) in settings {
        config.set(*key, *value);
    }
    config
        .create_with_context(Recorder::default())
        .expect("consumer")
}

pub fn admin(broker: &Broker) -> AdminClient<Recorder> {
    config(broker)
        .create_with_context(Recorder::default())
        .expect("admin client")
}

pub fn admin_options() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(30)))
        .operation_timeout(Some(Duration::from_secs(30)))
}

pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    futures_lite::future::block_on(future)
}

/// A librdkafka log line as the test contexts keep it; printed too with
/// `SLUICE_KAFKA_DEBUG`.
pub fn log_line(level: RDKafkaLogLevel, facility: &str, message: &str) -> String {
    let line = format!("{level:?} {facility} {message}");
    if std::env::var_os("SLUICE_KAFKA_DEBUG").is_some() {
        eprintln!("rdkafka: {line}");
    }
    line
}

/// Keeps `entry`, dropping the oldest beyond [`LOG_LINES_MAX`].
pub fn keep_log_line<T>(logs: &Mutex<VecDeque<T>>, entry: T) {
    let mut logs = logs.lock().unwrap();
    if logs.len() == LOG_LINES_MAX {
        logs.pop_front();
    }
    logs.push_back(entry);
}

/// Creates a topic through the native protocol (`sluice topic create`), so
/// a test of producing does not depend on Kafka's CreateTopics.
pub fn create_topic(broker: &Broker, name: &str, partitions: u32) {
    let created = broker.cli(
        &[
            "topic",
            "create",
            name,
            "--partitions",
            &partitions.to_string(),
        ],
        None,
    );
    assert!(created.status.success(), "topic create {name}: {created:?}");
}

/// Creates a topic with Kafka's CreateTopics, and checks the answer.
pub fn create_topic_kafka(admin: &AdminClient<Recorder>, name: &str, partitions: i32) {
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let results = block_on(admin.create_topics([&topic], &admin_options()))
        .unwrap_or_else(|error| panic!("CreateTopics {name}: {error}"));
    assert_eq!(results, vec![Ok(name.to_string())], "CreateTopics {name}");
}

/// Sends every record to `topic` (to `partition`, or where librdkafka's
/// partitioner puts it) and waits for every delivery report. The result
/// is in the order of `records`.
pub fn produce(
    producer: &KafkaProducer,
    topic: &str,
    partition: Option<i32>,
    records: &[Record],
) -> Vec<Result<Placed, KafkaError>> {
    produce_with(producer, topic, partition, records, |_| {})
}

/// `produce`, calling `between(sent)` after each record is handed over.
pub fn produce_with(
    producer: &KafkaProducer,
    topic: &str,
    partition: Option<i32>,
    records: &[Record],
    mut between: impl FnMut(usize),
) -> Vec<Result<Placed, KafkaError>> {
    let before = producer.context().take_deliveries();
    assert!(before.is_empty(), "deliveries of an earlier send left over");
    for (index, record) in records.iter().enumerate() {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for (name, value) in &record.headers {
            headers = headers.insert(Header {
                key: name,
                value: value.as_deref(),
            });
        }
        let mut base = BaseRecord::with_opaque_to(topic, Box::new(index)).headers(headers);
        if let Some(partition) = partition {
            base = base.partition(partition);
        }
        if let Some(key) = &record.key {
            base = base.key(key.as_slice());
        }
        if let Some(value) = &record.value {
            base = base.payload(value.as_slice());
        }
        if let Some(timestamp) = record.timestamp {
            base = base.timestamp(timestamp);
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            match producer.send(base) {
                Ok(()) => break,
                Err((
                    KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    returned,
                )) => {
                    assert!(
                        Instant::now() < deadline,
                        "the producer's queue stayed full; last log lines:\n{}",
                        producer.context().log_tail(50)
                    );
                    producer.poll(Duration::from_millis(50));
                    base = returned;
                }
                Err((error, _)) => panic!("record {index} not queued: {error}"),
            }
        }
        producer.poll(Duration::ZERO);
        between(index);
    }
    let deadline = Instant::now() + PATIENCE;
    while producer.context().delivered_count() < records.len() {
        assert!(
            Instant::now() < deadline,
            "{} of {} records delivered after {PATIENCE:?}; last log lines:\n{}",
            producer.context().delivered_count(),
            records.len(),
            producer.context().log_tail(80)
        );
        producer.poll(Duration::from_millis(100));
    }
    producer.context().take_outcomes(records.len())
}

/// `produce`, asserting that every record was stored.
pub fn produce_ok(
    producer: &KafkaProducer,
    topic: &str,
    partition: Option<i32>,
    records: &[Record],
) -> Vec<Placed> {
    produce(producer, topic, partition, records)
        .into_iter()
        .enumerate()
        .map(|(index, outcome)| {
            outcome.unwrap_or_else(|error| {
                panic!(
                    "record {index} not stored: {error}; last log lines:\n{}",
                    producer.context().log_tail(40)
                )
            })
        })
        .collect()
}

fn owned(message: &BorrowedMessage<'_>) -> Consumed {
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|header| (header.key.to_string(), header.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    Consumed {
        partition: message.partition(),
        offset: message.offset(),
        timestamp: message.timestamp(),
        record: Record {
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers,
            timestamp: message.timestamp().to_millis(),
        },
    }
}

/// Assigns `from` (partition, start) of `topic` and reads until every one
/// of them reports its end. Records come in offset order per partition.
pub fn read_to_end(
    consumer: &KafkaConsumer,
    topic: &str,
    from: &[(i32, Offset)],
) -> BTreeMap<i32, Vec<Consumed>> {
    let mut assignment = TopicPartitionList::new();
    for (partition, offset) in from {
        assignment
            .add_partition_offset(topic, *partition, *offset)
            .unwrap();
    }
    consumer.assign(&assignment).expect("assign");
    let mut out: BTreeMap<i32, Vec<Consumed>> = from
        .iter()
        .map(|(partition, _)| (*partition, Vec::new()))
        .collect();
    let mut ended: Vec<i32> = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while ended.len() < from.len() {
        assert!(
            Instant::now() < deadline,
            "{topic}: partitions {ended:?} of {from:?} read to their end after {PATIENCE:?}; last log lines:\n{}",
            consumer.context().log_tail(80)
        );
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(message)) => {
                let consumed = owned(&message);
                let partition = out.get_mut(&consumed.partition).unwrap_or_else(|| {
                    panic!("a record of a partition not assigned: {consumed:?}")
                });
                if let Some(last) = partition.last() {
                    assert!(
                        consumed.offset > last.offset,
                        "partition {}: offset {} after {}",
                        consumed.partition,
                        consumed.offset,
                        last.offset
                    );
                }
                partition.push(consumed);
            }
            Some(Err(KafkaError::PartitionEOF(partition))) if !ended.contains(&partition) => {
                ended.push(partition);
            }
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            // A node of a cluster that is down: the client goes on with
            // the others, and says so (all of them down, for a moment,
            // while it has reached none of the others yet).
            Some(Err(KafkaError::MessageConsumption(
                rdkafka::types::RDKafkaErrorCode::BrokerTransportFailure
                | rdkafka::types::RDKafkaErrorCode::AllBrokersDown,
            ))) => {}
            Some(Err(error)) => panic!(
                "{topic}: consumer error {error}; last log lines:\n{}",
                consumer.context().log_tail(60)
            ),
        }
    }
    consumer.unassign().expect("unassign");
    out
}

/// Every partition of `topic` from its beginning.
pub fn read_topic(broker: &Broker, topic: &str, partitions: i32) -> BTreeMap<i32, Vec<Consumed>> {
    let consumer = consumer(broker, &[]);
    let from: Vec<(i32, Offset)> = (0..partitions).map(|p| (p, Offset::Beginning)).collect();
    read_to_end(&consumer, topic, &from)
}

/// Checks that what each partition holds is what was acknowledged there,
/// in offset order, byte for byte.
pub fn assert_stored_as_acknowledged(
    records: &[Record],
    placed: &[Placed],
    read: &BTreeMap<i32, Vec<Consumed>>,
) {
    assert_eq!(records.len(), placed.len());
    let mut expected: BTreeMap<i32, Vec<(i64, &Record)>> = BTreeMap::new();
    for (record, placed) in records.iter().zip(placed) {
        expected
            .entry(placed.partition)
            .or_default()
            .push((placed.offset, record));
    }
    for (partition, records) in expected.iter_mut() {
        records.sort_by_key(|(offset, _)| *offset);
        let got = read.get(partition).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(
            got.len(),
            records.len(),
            "partition {partition}: records read vs acknowledged"
        );
        for ((offset, record), consumed) in records.iter().zip(got) {
            assert_eq!(consumed.offset, *offset, "partition {partition}: offsets");
            assert_eq!(
                consumed.record.key, record.key,
                "key at {partition}/{offset}"
            );
            assert!(
                consumed.record.value == record.value,
                "value at {partition}/{offset} differs ({:?} bytes read, {:?} sent)",
                consumed.record.value.as_ref().map(Vec::len),
                record.value.as_ref().map(Vec::len)
            );
            assert_eq!(
                consumed.record.headers, record.headers,
                "headers at {partition}/{offset}"
            );
            if let Some(timestamp) = record.timestamp {
                assert_eq!(
                    consumed.timestamp,
                    Timestamp::CreateTime(timestamp),
                    "timestamp at {partition}/{offset}"
                );
            }
        }
    }
    for (partition, got) in read {
        if !expected.contains_key(partition) {
            assert!(
                got.is_empty(),
                "partition {partition} holds records never sent"
            );
        }
    }
}

/// What DescribeCluster answers, through librdkafka's C API (the `rdkafka`
/// crate does not wrap it).
#[derive(Debug)]
pub struct Cluster {
    pub cluster_id: Option<String>,
    pub controller: Option<i32>,
    /// (id, host, port) of each broker.
    pub nodes: Vec<(i32, String, u16)>,
}

pub fn describe_cluster(admin: &AdminClient<Recorder>) -> Result<Cluster, String> {
    let client = admin.inner().native_ptr();
    let mut error_text = [0 as std::ffi::c_char; 512];
    // SAFETY: every pointer comes from librdkafka and is destroyed once, the
    // result is read before its event is destroyed.
    unsafe {
        let queue = rdsys::rd_kafka_queue_new(client);
        let options = rdsys::rd_kafka_AdminOptions_new(
            client,
            rdsys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECLUSTER,
        );
        let timeout = rdsys::rd_kafka_AdminOptions_set_request_timeout(
            options,
            30_000,
            error_text.as_mut_ptr(),
            error_text.len(),
        );
        assert_eq!(
            timeout,
            rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
        );
        rdsys::rd_kafka_DescribeCluster(client, options, queue);
        let event = rdsys::rd_kafka_queue_poll(queue, 40_000);
        rdsys::rd_kafka_AdminOptions_destroy(options);
        if event.is_null() {
            rdsys::rd_kafka_queue_destroy(queue);
            return Err("no DescribeCluster result within 40 s".to_string());
        }
        let outcome = if rdsys::rd_kafka_event_error(event)
            != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
        {
            Err(CStr::from_ptr(rdsys::rd_kafka_event_error_string(event))
                .to_string_lossy()
                .into_owned())
        } else {
            let result = rdsys::rd_kafka_event_DescribeCluster_result(event);
            assert!(!result.is_null(), "not a DescribeCluster result");
            let text = |pointer: *const std::ffi::c_char| {
                (!pointer.is_null()).then(|| CStr::from_ptr(pointer).to_string_lossy().into_owned())
            };
            let controller = rdsys::rd_kafka_DescribeCluster_result_controller(result);
            let mut count = 0;
            let nodes = rdsys::rd_kafka_DescribeCluster_result_nodes(result, &mut count);
            let nodes = (0..count)
                .map(|index| {
                    let node = *nodes.add(index);
                    (
                        rdsys::rd_kafka_Node_id(node),
                        text(rdsys::rd_kafka_Node_host(node)).unwrap_or_default(),
                        rdsys::rd_kafka_Node_port(node),
                    )
                })
                .collect();
            Ok(Cluster {
                cluster_id: text(rdsys::rd_kafka_DescribeCluster_result_cluster_id(result)),
                controller: (!controller.is_null()).then(|| rdsys::rd_kafka_Node_id(controller)),
                nodes,
            })
        };
        rdsys::rd_kafka_event_destroy(event);
        rdsys::rd_kafka_queue_destroy(queue);
        outcome
    }
}

/// The record count and bytes on disk of each partition, from
/// `sluice topic describe --format json`.
pub fn describe_native(broker: &Broker, topic: &str) -> serde_json::Value {
    let described = broker.cli(&["topic", "describe", topic, "--format", "json"], None);
    assert!(
        described.status.success(),
        "topic describe {topic}: {described:?}"
    );
    serde_json::from_slice(&described.stdout).expect("describe prints JSON")
}
