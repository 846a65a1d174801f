//! One run: the plan (which client runs on which core), the timeline, the
//! harness threads, the progress lines and the result.
//!
//! The main thread does no I/O of the run: it starts one harness thread
//! per core (a glommio executor pinned there), gathers their reports
//! second by second, prints a progress line for each second, and builds
//! the [`RunResult`] from their final reports.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        mpsc, Arc, Barrier,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use crate::{
    driver::{self, Driver, Setup},
    kafka,
    latency::LatencyRecorder,
    metrics::{FinalReport, Report, SecondCounts, SecondReport},
    native, nats, redis,
    result::{ErrorCounts, RunResult, SecondSample, Throughput, RESULT_FORMAT_VERSION},
    schedule::{Nanos, RunClock, NANOS_PER_SECOND},
    workload::Workload,
    BenchError,
};

/// After the last send, how long producers wait for acknowledgements and
/// consumers for the last records before the run ends and counts what is
/// missing.
pub const DRAIN_DEFAULT: Duration = Duration::from_secs(10);

/// Between the harness threads being ready and the first send: long enough
/// for every thread to see the start time before it passes.
const START_DELAY: Duration = Duration::from_millis(50);

/// Which [`Driver`] a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverKind {
    /// Sluice's own client over the native protocol ([`native`]).
    Native,
    /// Redis Streams ([`redis`]).
    Redis,
    /// Any Kafka-compatible broker, Sluice's Kafka listener among them,
    /// through librdkafka ([`kafka`]).
    Kafka,
    /// NATS JetStream ([`nats`]).
    Nats,
}

impl DriverKind {
    pub const ALL: [DriverKind; 4] = [
        DriverKind::Native,
        DriverKind::Redis,
        DriverKind::Kafka,
        DriverKind::Nats,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DriverKind::Native => native::Native::NAME,
            DriverKind::Redis => redis::Redis::NAME,
            DriverKind::Kafka => kafka::Kafka::NAME,
            DriverKind::Nats => nats::Nats::NAME,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub workload: Workload,
    pub driver: DriverKind,
    /// `HOST:PORT[,HOST:PORT]...`
    pub brokers: String,
    /// CPUs for the harness threads, one executor each.
    pub cores: Vec<usize>,
    pub drain: Duration,
    /// Print a progress line per second (to stderr).
    pub progress: bool,
    /// Delete the run's topics at the end.
    pub delete_topics: bool,
    /// Kept in the result.
    pub command: Vec<String>,
    /// The broker's durability as the user states it (`always`,
    /// `everysec`, `none`, ...), kept in the result.
    pub durability: Option<String>,
}

/// The run's moments, in run nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeline {
    pub start: Nanos,
    pub measure_start: Nanos,
    /// No record is intended at or after this.
    pub end: Nanos,
    pub drain_deadline: Nanos,
}

impl Timeline {
    pub fn new(start: Nanos, workload: &Workload, drain: Duration) -> Timeline {
        let measure_start = start + workload.warm_up_s * NANOS_PER_SECOND;
        let end = measure_start + workload.duration_s * NANOS_PER_SECOND;
        Timeline {
            start,
            measure_start,
            end,
            drain_deadline: end + drain.as_nanos() as Nanos,
        }
    }
}

/// One producer: its topic and its share of the rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerPlan {
    pub topic: String,
    /// `None`: rate `max`.
    pub records_per_second: Option<u64>,
    /// Seeds its sizes and keys, and staggers its first partition.
    pub index: u64,
}

/// One consumer: its topic and its share of the partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerPlan {
    pub topic: String,
    pub partitions: Vec<u32>,
}

/// What one harness thread runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerPlan {
    pub worker: usize,
    pub cpu: usize,
    pub producers: Vec<ProducerPlan>,
    pub consumers: Vec<ConsumerPlan>,
}

/// What the harness threads share: the clock, the start, and the counts
/// that decide when the run has drained.
pub struct RunContext {
    pub clock: RunClock,
    pub workload: Workload,
    pub brokers: String,
    pub drain: Duration,
    /// Every harness thread waits here twice: once ready, once the start
    /// is set.
    pub barrier: Barrier,
    /// Set by the first thread past the barrier.
    pub start: AtomicU64,
    /// Set by a thread that could not get ready: the others stop too.
    pub abort: AtomicBool,
    pub producers_running: AtomicUsize,
    pub acknowledged: AtomicU64,
    pub consumed: AtomicU64,
}

impl RunContext {
    pub fn timeline(&self) -> Timeline {
        Timeline::new(
            self.start.load(Ordering::Acquire),
            &self.workload,
            self.drain,
        )
    }

    /// Waits for every harness thread; the first sets the start. Returns
    /// `None` if any thread failed to get ready.
    pub fn wait_for_start(&self) -> Option<Timeline> {
        if self.barrier.wait().is_leader() {
            let start = self.clock.now() + START_DELAY.as_nanos() as Nanos;
            self.start.store(start, Ordering::Release);
        }
        self.barrier.wait();
        if self.abort.load(Ordering::Acquire) {
            return None;
        }
        Some(self.timeline())
    }

    /// Consumers stop once producers are done and they have read every
    /// acknowledged record, or at the drain deadline.
    pub fn consumers_done(&self, now: Nanos, timeline: &Timeline) -> bool {
        now >= timeline.drain_deadline
            || (self.producers_running.load(Ordering::Acquire) == 0
                && self.consumed.load(Ordering::Acquire)
                    >= self.acknowledged.load(Ordering::Acquire))
    }
}

/// Parses `--cores`: CPU ids as `1`, `0,1` or `0-3`, each below
/// `available`, none twice.
pub fn parse_cores(text: &str, available: usize) -> Result<Vec<usize>, BenchError> {
    let fail = |reason: String| BenchError::Cores {
        given: text.to_string(),
        reason,
        available,
    };
    let mut cores = Vec::new();
    for part in text.split(',').map(str::trim) {
        let number = |value: &str| {
            value
                .trim()
                .parse::<usize>()
                .map_err(|_| fail(format!("{value:?} is not a CPU number")))
        };
        let (first, last) = match part.split_once('-') {
            Some((first, last)) => (number(first)?, number(last)?),
            None => (number(part)?, number(part)?),
        };
        if first > last {
            return Err(fail(format!("range {part} goes backwards")));
        }
        for cpu in first..=last {
            if cpu >= available {
                return Err(fail(format!("no CPU {cpu}")));
            }
            if cores.contains(&cpu) {
                return Err(fail(format!("CPU {cpu} given twice")));
            }
            cores.push(cpu);
        }
    }
    Ok(cores)
}

/// The topics of a run: fresh names, so that a run never reads another's
/// records.
pub fn topic_names(workload: &Workload, run_id: u64) -> Vec<String> {
    (0..workload.topics)
        .map(|topic| format!("{}-{run_id}-{topic}", workload.name))
        .collect()
}

/// Spreads producers and consumers over the cores in turn (consumers
/// starting one core after producers, so a topic's producer and consumer
/// sit on different cores when there are two), splits the rate evenly
/// over the producers and each topic's partitions over its consumers.
pub fn plan(
    workload: &Workload,
    topics: &[String],
    cores: &[usize],
) -> Result<Vec<WorkerPlan>, BenchError> {
    assert!(!cores.is_empty(), "a run needs a core");
    let producer_count = u64::from(workload.producer_count());
    let rates: Vec<Option<u64>> = match workload.rate.records_per_second() {
        Some(rate) if rate < producer_count => {
            return Err(BenchError::Workload(format!(
                "rate {rate} records/s is less than one per producer ({producer_count} producers)"
            )))
        }
        Some(rate) => (0..producer_count)
            .map(|index| Some(rate / producer_count + u64::from(index < rate % producer_count)))
            .collect(),
        None => vec![None; producer_count as usize],
    };
    let mut workers: Vec<WorkerPlan> = cores
        .iter()
        .enumerate()
        .map(|(worker, cpu)| WorkerPlan {
            worker,
            cpu: *cpu,
            producers: Vec::new(),
            consumers: Vec::new(),
        })
        .collect();
    let mut index = 0;
    for topic in topics {
        for _ in 0..workload.producers_per_topic {
            workers[index as usize % cores.len()]
                .producers
                .push(ProducerPlan {
                    topic: topic.clone(),
                    records_per_second: rates[index as usize],
                    index,
                });
            index += 1;
        }
    }
    let mut consumer_index = 1;
    for topic in topics {
        let consumers = workload.consumers_per_topic;
        for consumer in 0..consumers {
            let partitions = (0..workload.partitions_per_topic)
                .filter(|partition| partition % consumers == consumer)
                .collect();
            workers[consumer_index % cores.len()]
                .consumers
                .push(ConsumerPlan {
                    topic: topic.clone(),
                    partitions,
                });
            consumer_index += 1;
        }
    }
    workers.retain(|worker| !worker.producers.is_empty() || !worker.consumers.is_empty());
    for (worker, plan) in workers.iter_mut().enumerate() {
        plan.worker = worker;
    }
    Ok(workers)
}

/// Runs the workload and returns its result.
pub fn run(options: RunOptions) -> Result<RunResult, BenchError> {
    match options.driver {
        DriverKind::Native => run_with(native::Native, options),
        DriverKind::Redis => run_with(redis::Redis, options),
        DriverKind::Kafka => run_with(kafka::Kafka, options),
        DriverKind::Nats => run_with(nats::Nats, options),
    }
}

fn run_with<D: Driver>(driver: D, options: RunOptions) -> Result<RunResult, BenchError> {
    let workload = options.workload.clone();
    workload.validate()?;
    let started_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_millis() as u64)
        .unwrap_or(0);
    let topics = topic_names(&workload, started_unix_ms);
    let workers = plan(&workload, &topics, &options.cores)?;
    let setup = Setup {
        cpu: options.cores[0],
        brokers: &options.brokers,
        workload: &workload,
        topics: &topics,
    };
    driver.prepare(&setup)?;
    if options.progress {
        eprintln!(
            "sluice-bench: {} on {} ({} driver), harness on cores {:?} of {}, topics {}",
            workload.name,
            options.brokers,
            D::NAME,
            options.cores,
            available_cores(),
            topics.join(",")
        );
    }
    let context = Arc::new(RunContext {
        clock: RunClock::new(),
        workload: workload.clone(),
        brokers: options.brokers.clone(),
        drain: options.drain,
        barrier: Barrier::new(workers.len()),
        start: AtomicU64::new(0),
        abort: AtomicBool::new(false),
        producers_running: AtomicUsize::new(workload.producer_count() as usize),
        acknowledged: AtomicU64::new(0),
        consumed: AtomicU64::new(0),
    });
    let (reports, received) = mpsc::channel();
    let mut handles = Vec::new();
    let mut spawn_error = None;
    for worker in &workers {
        let name = format!("sluice-bench-{}-{}", D::NAME, worker.worker);
        let (plan, context, reports) = (worker.clone(), context.clone(), reports.clone());
        let driver = driver.clone();
        let spawned = crate::harness::spawn_on_core(worker.cpu, &name, move || {
            driver::worker(driver, plan, context, reports)
        });
        match spawned {
            Ok(handle) => handles.push(handle),
            Err(error) => {
                // The barrier counts on every thread: the ones started
                // cannot start. Nothing to do but say so and leave them.
                spawn_error = Some(error);
                break;
            }
        }
    }
    drop(reports);
    if let Some(error) = spawn_error {
        return Err(error);
    }
    let mut gathered = Gathered::new(workers.len(), &workload, options.progress);
    for report in received {
        gathered.take(report);
    }
    let mut failures = Vec::new();
    for handle in handles {
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => failures.push(error.to_string()),
            Err(error) => failures.push(error.to_string()),
        }
    }
    if options.delete_topics {
        if let Err(error) = driver.clean_up(&setup) {
            eprintln!("sluice-bench: could not delete the run's topics: {error}");
        }
    }
    if !failures.is_empty() {
        return Err(BenchError::Worker(failures.join("; ")));
    }
    let mut result = gathered.result(&workload);
    result.driver = D::NAME.to_string();
    result.brokers = options.brokers.clone();
    result.command = options.command;
    result.started_unix_ms = started_unix_ms;
    result.harness_cores = options.cores.clone();
    result.durability = options.durability;
    Ok(result)
}

pub fn available_cores() -> usize {
    std::thread::available_parallelism()
        .map(|count| count.get())
        .unwrap_or(1)
}

/// The reports gathered so far, second by second.
struct Gathered {
    workers: usize,
    warm_up_s: u64,
    duration_s: u64,
    progress: bool,
    /// Seconds not yet reported by every thread.
    open: BTreeMap<u64, (usize, SecondReport)>,
    seconds: Vec<SecondSample>,
    /// Of the seconds after warm-up closed so far, for the progress lines.
    produce_ack_so_far: LatencyRecorder,
    totals: FinalReport,
}

impl Gathered {
    fn new(workers: usize, workload: &Workload, progress: bool) -> Gathered {
        Gathered {
            workers,
            warm_up_s: workload.warm_up_s,
            duration_s: workload.duration_s,
            progress,
            open: BTreeMap::new(),
            seconds: Vec::new(),
            produce_ack_so_far: LatencyRecorder::new(),
            totals: FinalReport::default(),
        }
    }

    fn take(&mut self, report: Report) {
        match report {
            Report::Second { report, .. } => {
                let second = report.second;
                let entry = self.open.entry(second).or_insert_with(|| {
                    (
                        0,
                        SecondReport {
                            second,
                            counts: SecondCounts::default(),
                            produce_ack: LatencyRecorder::new(),
                            end_to_end: LatencyRecorder::new(),
                        },
                    )
                });
                entry.0 += 1;
                entry.1.counts.add(&report.counts);
                entry.1.produce_ack.add(&report.produce_ack);
                entry.1.end_to_end.add(&report.end_to_end);
                if entry.0 == self.workers {
                    let (_, complete) = self.open.remove(&second).expect("present");
                    self.close(complete, true);
                }
            }
            Report::Final { report, .. } => {
                // Seconds some thread never reached are complete now.
                for (_, (_, second)) in std::mem::take(&mut self.open) {
                    self.close(second, false);
                }
                let totals = &mut self.totals;
                totals.sent += report.sent;
                totals.acknowledged += report.acknowledged;
                totals.consumed += report.consumed;
                totals.produce_errors += report.produce_errors;
                totals.consume_errors += report.consume_errors;
                totals.retries += report.retries;
                totals.unacknowledged += report.unacknowledged;
                totals.produce_ack.add(&report.produce_ack);
                totals.end_to_end.add(&report.end_to_end);
            }
        }
    }

    fn close(&mut self, report: SecondReport, print: bool) {
        let warm_up = report.second < self.warm_up_s;
        let measured = !warm_up && report.second < self.warm_up_s + self.duration_s;
        if measured {
            self.produce_ack_so_far.add(&report.produce_ack);
        }
        let sample = SecondSample {
            second: report.second,
            measured,
            sent: report.counts.sent,
            acknowledged: report.counts.acknowledged,
            acknowledged_bytes: report.counts.acknowledged_bytes,
            consumed: report.counts.consumed,
            consumed_bytes: report.counts.consumed_bytes,
            errors: report.counts.errors,
            produce_ack_p99_us: report.produce_ack.percentile_us(99.0),
            end_to_end_p99_us: report.end_to_end.percentile_us(99.0),
        };
        if self.progress && print {
            eprintln!(
                "[{:>4}s{}] sent {:>8}/s  acked {:>8}/s  consumed {:>8}/s  ack p99 {:>8.3} ms (so far {:>8.3})  e2e p99 {:>8.3} ms  errors {}",
                sample.second + 1,
                match (warm_up, measured) {
                    (true, _) => " warm-up",
                    (false, true) => "",
                    (false, false) => " drain",
                },
                sample.sent,
                sample.acknowledged,
                sample.consumed,
                sample.produce_ack_p99_us / 1000.0,
                self.produce_ack_so_far.percentile_us(99.0) / 1000.0,
                sample.end_to_end_p99_us / 1000.0,
                sample.errors,
            );
        }
        self.seconds.push(sample);
    }

    fn result(mut self, workload: &Workload) -> RunResult {
        for (_, (_, second)) in std::mem::take(&mut self.open) {
            self.close(second, false);
        }
        self.seconds.sort_by_key(|sample| sample.second);
        // Throughput over exactly the measured seconds, by the time things
        // were acknowledged and consumed: the drain after the end is not
        // counted, so a broker that falls behind shows a lower rate.
        let mut counts = SecondCounts::default();
        for sample in &self.seconds {
            if sample.measured {
                counts.acknowledged += sample.acknowledged;
                counts.acknowledged_bytes += sample.acknowledged_bytes;
                counts.consumed += sample.consumed;
                counts.consumed_bytes += sample.consumed_bytes;
            }
        }
        let duration = workload.duration_s as f64;
        let totals = &self.totals;
        RunResult {
            format_version: RESULT_FORMAT_VERSION,
            workload: workload.clone(),
            driver: String::new(),
            brokers: String::new(),
            command: Vec::new(),
            started_unix_ms: 0,
            harness_cores: Vec::new(),
            durability: None,
            machine_cores: available_cores(),
            produced: Throughput::over(counts.acknowledged, counts.acknowledged_bytes, duration),
            consumed: Throughput::over(counts.consumed, counts.consumed_bytes, duration),
            produce_ack_latency: totals.produce_ack.summary(),
            end_to_end_latency: totals.end_to_end.summary(),
            errors: ErrorCounts {
                produce: totals.produce_errors,
                consume: totals.consume_errors,
                retries: totals.retries,
                unacknowledged: totals.unacknowledged,
                unconsumed: totals.acknowledged.saturating_sub(totals.consumed),
            },
            seconds: self.seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload_with(text: &str) -> Workload {
        let base = r#"
            name = "w"
            topics = 2
            partitions_per_topic = 4
            message_size = 100
            producers_per_topic = 2
            consumers_per_topic = 3
            batch_bytes = 1024
            linger_ms = 1
            rate = 1001
            warm_up_s = 1
            duration_s = 2
        "#;
        let mut text_all = base.to_string();
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            let key = line.split('=').next().unwrap().trim();
            text_all = text_all
                .lines()
                .filter(|existing| existing.split('=').next().unwrap().trim() != key)
                .collect::<Vec<_>>()
                .join("\n");
            text_all.push('\n');
            text_all.push_str(line);
        }
        Workload::parse(&text_all).unwrap()
    }

    #[test]
    fn cores_lists_and_ranges() {
        assert_eq!(parse_cores("1", 2).unwrap(), [1]);
        assert_eq!(parse_cores("0,1", 2).unwrap(), [0, 1]);
        assert_eq!(parse_cores("0-3", 4).unwrap(), [0, 1, 2, 3]);
        for bad in ["2", "1,1", "x", "1-0", ""] {
            assert!(parse_cores(bad, 2).is_err(), "{bad}");
        }
    }

    #[test]
    fn plan_splits_rate_partitions_and_cores() {
        let workload = workload_with("");
        let topics = topic_names(&workload, 7);
        assert_eq!(topics, ["w-7-0", "w-7-1"]);
        let workers = plan(&workload, &topics, &[0, 1]).unwrap();
        assert_eq!(workers.len(), 2);
        let rates: Vec<u64> = workers
            .iter()
            .flat_map(|worker| &worker.producers)
            .map(|producer| producer.records_per_second.unwrap())
            .collect();
        assert_eq!(rates.iter().sum::<u64>(), 1001);
        assert!(rates.iter().all(|rate| *rate == 250 || *rate == 251));
        for topic in &topics {
            let mut partitions: Vec<u32> = workers
                .iter()
                .flat_map(|worker| &worker.consumers)
                .filter(|consumer| &consumer.topic == topic)
                .flat_map(|consumer| consumer.partitions.clone())
                .collect();
            partitions.sort();
            assert_eq!(partitions, [0, 1, 2, 3], "each partition read once");
        }
        // One core: everything on it.
        let one = plan(&workload, &topics, &[1]).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].cpu, 1);
        assert_eq!((one[0].producers.len(), one[0].consumers.len()), (4, 6));
        // No consumers, max rate.
        let quiet = workload_with("consumers_per_topic = 0\nrate = \"max\"");
        let workers = plan(&quiet, &topics, &[0]).unwrap();
        assert!(workers[0].consumers.is_empty());
        assert!(workers[0]
            .producers
            .iter()
            .all(|p| p.records_per_second.is_none()));
        // Less than one record per second per producer.
        assert!(plan(&workload_with("rate = 3"), &topics, &[0]).is_err());
    }

    #[test]
    fn throughput_counts_only_the_measured_seconds() {
        let workload = workload_with("");
        let mut gathered = Gathered::new(1, &workload, false);
        for second in 0..5 {
            let mut report = SecondReport {
                second,
                counts: SecondCounts {
                    acknowledged: 1000,
                    acknowledged_bytes: 100_000,
                    consumed: 500,
                    consumed_bytes: 50_000,
                    ..SecondCounts::default()
                },
                produce_ack: LatencyRecorder::new(),
                end_to_end: LatencyRecorder::new(),
            };
            report.produce_ack.record(1_000_000);
            gathered.take(Report::Second { worker: 0, report });
        }
        let result = gathered.result(&workload);
        assert_eq!(result.seconds.len(), 5);
        let measured: Vec<bool> = result.seconds.iter().map(|s| s.measured).collect();
        assert_eq!(measured, [false, true, true, false, false]);
        // Seconds 1 and 2 of a 1 s warm-up and a 2 s run.
        assert_eq!(result.produced.records, 2000);
        assert_eq!(result.produced.records_per_s, 1000.0);
        assert_eq!(result.produced.mb_per_s, 0.1);
        assert_eq!(result.consumed.records_per_s, 500.0);
    }
}
