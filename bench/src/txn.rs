//! `sluice-bench txn`: what transactions cost, through librdkafka against
//! any Kafka-compatible broker.
//!
//! Closed loop, one producer, `acks=all`: each step sends `records`
//! records of `value_bytes` to the topic's partitions in turn and waits
//! until they are all durable, either as an idempotent producer's batch
//! (the step ends when every record is acknowledged) or as one
//! transaction (begin, the sends, every record acknowledged, then
//! `commit_transaction`: the step ends when the commit returns, the
//! markers written). The two alternate, A B A
//! B, for `rounds` rounds of `seconds` each, on topics of their own; the
//! figures are each mode's medians over its rounds:
//!
//! - records per second, and the transactional rate as a ratio of the
//!   idempotent one (same records per step, so the same batches);
//! - the step's latency, from its first send to its end (p50, p99,
//!   p99.9), which for a transaction is its commit latency as the
//!   application sees it; and the `commit_transaction` call alone;
//! - end to end, from each send to its record's arrival at two consumers
//!   of the topic, one `read_committed` and one `read_uncommitted` (the
//!   send's time travels in the value): a read_committed consumer gets a
//!   transaction's records once its commit marker is written, a
//!   read_uncommitted one as soon as they are replicated.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    config::ClientConfig,
    consumer::{BaseConsumer, Consumer as _},
    message::Message as _,
    producer::{BaseProducer, BaseRecord, Producer as _},
    types::RDKafkaErrorCode,
    Offset, TopicPartitionList,
};

use crate::{latency::LatencyRecorder, BenchError};

/// How long an admin request, a flush or a transaction call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// What to run.
#[derive(Debug, Clone)]
pub struct TxnOptions {
    pub brokers: String,
    pub topic: String,
    pub partitions: u32,
    pub replication_factor: i32,
    pub records: usize,
    pub value_bytes: usize,
    pub seconds: u64,
    pub rounds: u32,
}

/// One mode's figures over one round.
#[derive(Debug, Clone)]
struct Round {
    records_per_s: f64,
    /// First send to flush or commit returned, µs.
    step: LatencyRecorder,
    /// `commit_transaction` alone, µs (empty for the idempotent mode).
    commit: LatencyRecorder,
    committed_e2e: LatencyRecorder,
    uncommitted_e2e: LatencyRecorder,
}

fn kafka(what: &str) -> impl FnOnce(rdkafka::error::KafkaError) -> BenchError + '_ {
    move |source| BenchError::Kafka {
        what: what.to_string(),
        source,
    }
}

fn config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("log_level", "3");
    config
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |now| now.as_micros() as u64)
}

fn create_topic(options: &TxnOptions, topic: &str) -> Result<(), BenchError> {
    let admin: AdminClient<DefaultClientContext> = config(&options.brokers)
        .create()
        .map_err(kafka("an admin client"))?;
    let new = NewTopic::new(
        topic,
        options.partitions as i32,
        TopicReplication::Fixed(options.replication_factor),
    );
    let admin_options = AdminOptions::new().operation_timeout(Some(CALL_TIMEOUT));
    for result in futures_lite::future::block_on(admin.create_topics([&new], &admin_options))
        .map_err(kafka("creating the topic"))?
    {
        if let Err((name, code)) = result {
            if code != RDKafkaErrorCode::TopicAlreadyExists {
                return Err(BenchError::Cluster(format!("creating {name}: {code}")));
            }
        }
    }
    Ok(())
}

/// A consumer of every partition of `topic` from its end, with
/// `isolation`, recording each record's end-to-end latency until `stop`.
fn consume(
    options: &TxnOptions,
    topic: &str,
    isolation: &str,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<LatencyRecorder>, BenchError> {
    let consumer: BaseConsumer = config(&options.brokers)
        .set("group.id", format!("sluice-bench-txn-{isolation}"))
        .set("isolation.level", isolation)
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .create()
        .map_err(kafka("a consumer"))?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..options.partitions as i32 {
        assignment
            .add_partition_offset(topic, partition, Offset::End)
            .map_err(kafka("an assignment"))?;
    }
    consumer
        .assign(&assignment)
        .map_err(kafka("an assignment"))?;
    Ok(std::thread::spawn(move || {
        let mut latencies = LatencyRecorder::new();
        while !stop.load(Ordering::Relaxed) {
            if let Some(Ok(message)) = consumer.poll(Duration::from_millis(50)) {
                let sent = message
                    .payload()
                    .and_then(|value| value.get(..8))
                    .map(|stamp| u64::from_le_bytes(stamp.try_into().expect("8 bytes")));
                if let Some(sent) = sent {
                    latencies.record(now_us().saturating_sub(sent) * 1000);
                }
            }
        }
        latencies
    }))
}

/// One round of one mode on `topic`.
fn round(options: &TxnOptions, topic: &str, transactional: bool) -> Result<Round, BenchError> {
    let mut settings = config(&options.brokers);
    settings
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "1");
    if transactional {
        settings.set(
            "transactional.id",
            format!("sluice-bench-txn-{}", std::process::id()),
        );
    }
    // Polled here, not by a thread of its own: librdkafka's flush and
    // commit then return as soon as the last acknowledgement is in, not
    // at its polling thread's next wake-up.
    let producer: BaseProducer = settings.create().map_err(kafka("a producer"))?;
    if transactional {
        producer
            .init_transactions(CALL_TIMEOUT)
            .map_err(kafka("init_transactions"))?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let readers = [
        consume(options, topic, "read_committed", stop.clone())?,
        consume(options, topic, "read_uncommitted", stop.clone())?,
    ];
    // The consumers have their assignment before the first send.
    std::thread::sleep(Duration::from_secs(2));
    let mut step = LatencyRecorder::new();
    let mut commit = LatencyRecorder::new();
    let mut value = vec![0u8; options.value_bytes.max(8)];
    let mut sent = 0usize;
    let started = Instant::now();
    let end = started + Duration::from_secs(options.seconds);
    while Instant::now() < end {
        let step_started = Instant::now();
        if transactional {
            producer
                .begin_transaction()
                .map_err(kafka("begin_transaction"))?;
        }
        for index in 0..options.records {
            value[..8].copy_from_slice(&now_us().to_le_bytes());
            let partition = ((sent + index) % options.partitions as usize) as i32;
            let mut record = BaseRecord::<(), [u8]>::to(topic)
                .partition(partition)
                .payload(&value[..]);
            // A full queue: wait for room.
            while let Err((error, back)) = producer.send(record) {
                if error.rdkafka_error_code() != Some(RDKafkaErrorCode::QueueFull) {
                    return Err(BenchError::Kafka {
                        what: "a send".into(),
                        source: error,
                    });
                }
                producer.poll(Duration::from_micros(100));
                record = back;
            }
            producer.poll(Duration::ZERO);
        }
        // Every record acknowledged, serving the deliveries as they come
        // (rdkafka's `flush` waits in steps of 100 ms).
        while producer.in_flight_count() > 0 {
            if step_started.elapsed() > CALL_TIMEOUT {
                return Err(BenchError::Cluster(format!(
                    "{} records not acknowledged in {CALL_TIMEOUT:?}",
                    producer.in_flight_count()
                )));
            }
            producer.poll(Duration::from_millis(1));
        }
        if transactional {
            let committing = Instant::now();
            producer
                .commit_transaction(CALL_TIMEOUT)
                .map_err(kafka("commit_transaction"))?;
            commit.record(committing.elapsed().as_nanos() as u64);
        }
        step.record(step_started.elapsed().as_nanos() as u64);
        sent += options.records;
    }
    let elapsed = started.elapsed().as_secs_f64();
    // The last records' way to the consumers.
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let [committed, uncommitted] =
        readers.map(|reader| reader.join().unwrap_or_else(|_| LatencyRecorder::new()));
    Ok(Round {
        records_per_s: sent as f64 / elapsed,
        step,
        commit,
        committed_e2e: committed,
        uncommitted_e2e: uncommitted,
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The median over `rounds` of a percentile, in milliseconds.
fn median_ms(rounds: &[Round], of: impl Fn(&Round) -> &LatencyRecorder, percentile: f64) -> f64 {
    median(
        rounds
            .iter()
            .map(|round| of(round).percentile_us(percentile) / 1000.0)
            .collect(),
    )
}

/// Runs the rounds, alternating the modes, and returns the report
/// (markdown).
pub fn run(options: &TxnOptions) -> Result<String, BenchError> {
    let topics = [
        format!("{}-idempotent", options.topic),
        format!("{}-transactional", options.topic),
    ];
    for topic in &topics {
        create_topic(options, topic)?;
    }
    let mut idempotent = Vec::new();
    let mut transactional = Vec::new();
    for number in 0..options.rounds {
        for (topic, is_txn) in topics.iter().zip([false, true]) {
            let result = round(options, topic, is_txn)?;
            eprintln!(
                "round {} {}: {:.0} records/s, step p50 {:.2} ms",
                number + 1,
                if is_txn {
                    "transactional"
                } else {
                    "idempotent"
                },
                result.records_per_s,
                result.step.percentile_us(50.0) / 1000.0
            );
            match is_txn {
                true => transactional.push(result),
                false => idempotent.push(result),
            }
        }
    }
    let rate = |rounds: &[Round]| median(rounds.iter().map(|r| r.records_per_s).collect());
    let (idempotent_rate, transactional_rate) = (rate(&idempotent), rate(&transactional));
    let percentiles = |rounds: &[Round], of: &dyn Fn(&Round) -> &LatencyRecorder| {
        format!(
            "{:.2} / {:.2} / {:.2}",
            median_ms(rounds, of, 50.0),
            median_ms(rounds, of, 99.0),
            median_ms(rounds, of, 99.9)
        )
    };
    let mut out = String::new();
    out.push_str(&format!(
        "{} records of {} B per step, {} partitions, {} rounds of {} s each way (medians)\n\n",
        options.records, options.value_bytes, options.partitions, options.rounds, options.seconds
    ));
    out.push_str("| | records/s | step p50 / p99 / p99.9 (ms) | commit call p50 / p99 / p99.9 (ms) | e2e read_committed p50 / p99 / p99.9 (ms) | e2e read_uncommitted p50 / p99 / p99.9 (ms) |\n|---|---|---|---|---|---|\n");
    for (name, rounds, rate) in [
        ("idempotent", &idempotent, idempotent_rate),
        ("transactional", &transactional, transactional_rate),
    ] {
        let commit = if name == "transactional" {
            percentiles(rounds, &|r| &r.commit)
        } else {
            "-".to_string()
        };
        out.push_str(&format!(
            "| {name} | {rate:.0} | {} | {commit} | {} | {} |\n",
            percentiles(rounds, &|r| &r.step),
            percentiles(rounds, &|r| &r.committed_e2e),
            percentiles(rounds, &|r| &r.uncommitted_e2e),
        ));
    }
    out.push_str(&format!(
        "\ntransactional / idempotent records/s: {:.2}\n",
        if idempotent_rate > 0.0 {
            transactional_rate / idempotent_rate
        } else {
            0.0
        }
    ));
    Ok(out)
}
