//! Benchmarks of the partition log against the raw writers it is built on.
//!
//! * `log_append_interval`: appends of 16 KiB batches under the `interval`
//!   policy, 64 MiB per iteration, ending with `close()`; the baseline is a
//!   bare `DmaFile` writing the same bytes in `FLUSH_BYTES_MAX` chunks and
//!   fdatasyncing once.
//! * `log_append_durable`: appends under the `always` policy from 1, 8 and 64
//!   concurrent appenders on one log; the baseline is `std::fs::File`
//!   `write_all_at` + `sync_data` from as many threads on one file.
//! * Before the criterion groups, two side-by-side tables are printed (set
//!   `SLUICE_BENCH_SKIP_TABLES=1` to skip them): the throughput workloads run
//!   as interleaved pairs (log, raw, raw, log, ...) so that both sides of each
//!   ratio see the same disk on a noisy machine, with the median of the
//!   per-pair ratios; and a timed run of the durable workloads with batches/s
//!   and append latency percentiles (criterion measures only throughput).
//!
//! Files go to `SLUICE_BENCH_DIR`, else the system temporary directory; it
//! must be a real disk, not tmpfs. A log is `!Send`, so every measurement runs
//! inside one glommio `LocalExecutor` made on the benchmark thread.
//!
//! Run with
//! `cargo bench -p sluice-storage --bench log -- --warm-up-time 1 --measurement-time 5`.

use std::{
    cell::RefCell,
    fs::File,
    os::unix::{fs::FileExt, io::AsRawFd},
    path::PathBuf,
    rc::Rc,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use glommio::{io::DmaFile, LocalExecutor, LocalExecutorBuilder, Placement};
use hdrhistogram::Histogram;
use sluice_storage::{
    batch::{Batch, BatchBuilder},
    log::{FlushPolicy, Log, LogConfig, FLUSH_BYTES_MAX, PAGE_BYTES},
};

/// Bytes appended per iteration of the throughput benchmark: large enough
/// that the fixed costs of a run (segment creation, the final fdatasync) are
/// a few percent. Where it exceeds the log's `PENDING_BYTES_MAX`, appends
/// wait for queue space as a producer outrunning the disk would.
const APPEND_BYTES_PER_ITERATION: usize = 64 * 1024 * 1024;

/// The size a throughput batch is filled up to: a typical producer batch.
const THROUGHPUT_BATCH_BYTES: usize = 16 * 1024;

/// The segment size of the throughput runs: one iteration fits in a segment.
const SEGMENT_BYTES_MAX: u64 = 256 * 1024 * 1024;

/// The value size of a durable append: each durable batch is one record of
/// this many bytes (1,129 bytes stored), the small-producer case where group
/// commit matters most.
const DURABLE_VALUE_BYTES: usize = 1024;

/// Throughput table: interleaved log/raw pairs per record size, after one
/// pair of warm-up. Odd, so the median ratio is one pair's.
const THROUGHPUT_PAIRS: usize = 15;

/// The concurrencies of the durable benchmarks.
const APPENDERS: [usize; 3] = [1, 8, 64];

/// Latency table: appends are recorded for this long after a warm-up.
const LATENCY_WARM_UP: Duration = Duration::from_millis(500);
const LATENCY_MEASURE: Duration = Duration::from_secs(3);

/// Latencies above this are clamped when recorded (none should come close).
const LATENCY_NS_MAX: u64 = 60_000_000_000;

fn main() {
    let bench_mode = std::env::args().any(|arg| arg == "--bench");
    let dir = bench_dir();
    // Unbound: a pinned benchmark thread would pin the std baseline's
    // threads, which inherit its CPU mask, to the same core.
    let executor = LocalExecutorBuilder::new(Placement::Unbound)
        .make()
        .expect("glommio executor starts");
    if bench_mode && std::env::var_os("SLUICE_BENCH_SKIP_TABLES").is_none() {
        throughput_table(&executor, &dir);
        latency_table(&executor, &dir);
    }
    let mut criterion = Criterion::default().configure_from_args();
    append_interval(&mut criterion, &executor, &dir);
    append_durable(&mut criterion, &executor, &dir);
    criterion.final_summary();
}

/// Where benchmark files go. Refuses tmpfs: the point is the disk.
fn bench_dir() -> PathBuf {
    let dir = std::env::var_os("SLUICE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).expect("no NUL in path");
    // SAFETY: a valid C string and a zeroed out-parameter of the right type.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    let result = unsafe { libc::statfs(path.as_ptr(), &mut stat) };
    assert_eq!(result, 0, "statfs {}", dir.display());
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    assert_ne!(
        stat.f_type as i64,
        TMPFS_MAGIC,
        "{} is tmpfs; set SLUICE_BENCH_DIR to a directory on a disk",
        dir.display()
    );
    dir
}

fn tempdir(dir: &PathBuf) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sluice-bench-log-")
        .tempdir_in(dir)
        .expect("temporary directory")
}

/// Removes `temp` and commits the removal to disk, so the next timed region
/// does not pay for this one's deletion (journal commit and discards).
fn remove_and_sync(temp: tempfile::TempDir, parent: &PathBuf) {
    temp.close().expect("temporary directory removed");
    let parent = File::open(parent).expect("benchmark directory opens");
    // SAFETY: a valid open file descriptor.
    let result = unsafe { libc::syncfs(parent.as_raw_fd()) };
    assert_eq!(result, 0, "syncfs: {}", std::io::Error::last_os_error());
}

/// `count` distinct value bytes, a cheap pseudo-random pattern.
fn value_bytes(count: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Batches of records with `value_bytes`-byte values (no key, no headers),
/// each filled up to `THROUGHPUT_BATCH_BYTES`, totalling at most
/// `APPEND_BYTES_PER_ITERATION`.
fn throughput_batches(record_value_bytes: usize) -> Vec<Batch> {
    let values = value_bytes(record_value_bytes * 64, record_value_bytes as u64);
    let mut batches = Vec::new();
    let mut total = 0;
    let mut record = 0usize;
    loop {
        let mut builder = BatchBuilder::with_capacity(THROUGHPUT_BATCH_BYTES);
        let mut record_bytes = 0;
        loop {
            let at = (record % 64) * record_value_bytes;
            let before = builder.estimated_bytes();
            builder.push(
                record as i64,
                None,
                &values[at..at + record_value_bytes],
                &[],
            );
            record += 1;
            record_bytes = record_bytes.max(builder.estimated_bytes() - before);
            if builder.estimated_bytes() + record_bytes > THROUGHPUT_BATCH_BYTES {
                break;
            }
        }
        let batch = builder.finish();
        assert!(batch.len() <= THROUGHPUT_BATCH_BYTES, "batch overfilled");
        if total + batch.len() > APPEND_BYTES_PER_ITERATION {
            return batches;
        }
        total += batch.len();
        batches.push(batch);
    }
}

/// One batch of one record of `DURABLE_VALUE_BYTES`.
fn durable_batch() -> Batch {
    let mut builder = BatchBuilder::default();
    builder.push(0, None, &value_bytes(DURABLE_VALUE_BYTES, 7), &[]);
    builder.finish()
}

/// A copy of `template` whose bytes are not shared, as a batch fresh off the
/// network is: assigning its offsets then writes in place instead of copying.
fn unshared(template: &Batch) -> Batch {
    Batch::validate_stored(Bytes::copy_from_slice(template.as_bytes())).expect("a built batch")
}

fn total_bytes(batches: &[Batch]) -> usize {
    batches.iter().map(Batch::len).sum()
}

// ---------------------------------------------------------------------------
// 1. Append throughput under the interval policy, against a raw DMA writer.

fn append_interval(criterion: &mut Criterion, executor: &LocalExecutor, dir: &PathBuf) {
    let mut group = criterion.benchmark_group("log_append_interval");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    for record_value_bytes in [100, 1024] {
        let templates = throughput_batches(record_value_bytes);
        let bytes = total_bytes(&templates);
        group.throughput(Throughput::Bytes(bytes as u64));
        let parameter = format!("{record_value_bytes}B_records");
        group.bench_function(BenchmarkId::new("log", &parameter), |bencher| {
            bencher.iter_custom(|iterations| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iterations {
                    elapsed += executor.run(log_interval_once(dir, &templates));
                }
                elapsed
            })
        });
        group.bench_function(BenchmarkId::new("raw_dma", &parameter), |bencher| {
            bencher.iter_custom(|iterations| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iterations {
                    elapsed += executor.run(raw_dma_once(dir, &templates));
                }
                elapsed
            })
        });
    }
    group.finish();
}

/// Opens a log (untimed), then times appending every batch and `close()`,
/// which writes and fdatasyncs everything. The segment file is created and
/// its directory synced inside the timed region: that is the log's cost,
/// paid here once per 64 MiB.
async fn log_interval_once(dir: &PathBuf, templates: &[Batch]) -> Duration {
    let temp = tempdir(dir);
    let batches: Vec<Batch> = templates.iter().map(unshared).collect();
    let config = LogConfig {
        segment_bytes_max: SEGMENT_BYTES_MAX,
        flush: FlushPolicy::Interval(Duration::from_millis(100)),
        ..LogConfig::default()
    };
    let log = Log::open(temp.path(), config).await.expect("log opens");

    let start = Instant::now();
    for batch in batches {
        log.append(batch).await.expect("append");
    }
    log.close().await.expect("log closes");
    let elapsed = start.elapsed();

    remove_and_sync(temp, dir);
    elapsed
}

/// Creates a file (untimed), then times writing the concatenated batches in
/// `FLUSH_BYTES_MAX` aligned writes, one at a time as the log's flusher does,
/// each copied into a fresh DMA buffer, and one fdatasync.
async fn raw_dma_once(dir: &PathBuf, batches: &[Batch]) -> Duration {
    let temp = tempdir(dir);
    let file = DmaFile::create(temp.path().join("raw"))
        .await
        .expect("file created");
    let total = total_bytes(batches);

    let start = Instant::now();
    let mut source = batches.iter().map(|batch| &batch.as_bytes()[..]);
    let mut current: &[u8] = &[];
    let mut position = 0usize;
    while position < total {
        let chunk = (total - position).min(FLUSH_BYTES_MAX);
        let mut buffer = file.alloc_dma_buffer(chunk.div_ceil(PAGE_BYTES) * PAGE_BYTES);
        let out = buffer.as_bytes_mut();
        let mut at = 0;
        while at < chunk {
            if current.is_empty() {
                current = source.next().expect("bytes remain");
            }
            let take = current.len().min(chunk - at);
            out[at..at + take].copy_from_slice(&current[..take]);
            current = &current[take..];
            at += take;
        }
        out[chunk..].fill(0);
        let length = out.len();
        let written = file.write_at(buffer, position as u64).await.expect("write");
        assert_eq!(written, length, "short write at {position}");
        position += chunk;
    }
    file.fdatasync().await.expect("fdatasync");
    let elapsed = start.elapsed();

    file.close().await.expect("file closes");
    remove_and_sync(temp, dir);
    elapsed
}

/// Runs the throughput workloads as interleaved pairs, alternating which
/// side goes first, and prints the median MB/s (10^6 bytes) of each side and
/// the median of the per-pair ratios.
fn throughput_table(executor: &LocalExecutor, dir: &PathBuf) {
    println!(
        "interval appends, {THROUGHPUT_PAIRS} interleaved pairs per row after one warm-up \
         pair; MB = 10^6 bytes"
    );
    println!(
        "{:<8} {:>8} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "records", "batches", "MiB", "log_MB/s", "raw_MB/s", "log/raw", "ratio_min", "ratio_max"
    );
    for record_value_bytes in [100, 1024] {
        let templates = throughput_batches(record_value_bytes);
        let bytes = total_bytes(&templates) as f64;
        let mut log_rates = Vec::new();
        let mut raw_rates = Vec::new();
        let mut ratios = Vec::new();
        for pair in 0..=THROUGHPUT_PAIRS {
            let (log, raw) = if pair % 2 == 0 {
                let log = executor.run(log_interval_once(dir, &templates));
                (log, executor.run(raw_dma_once(dir, &templates)))
            } else {
                let raw = executor.run(raw_dma_once(dir, &templates));
                (executor.run(log_interval_once(dir, &templates)), raw)
            };
            if pair == 0 {
                continue;
            }
            let log_rate = bytes / log.as_secs_f64() / 1e6;
            let raw_rate = bytes / raw.as_secs_f64() / 1e6;
            log_rates.push(log_rate);
            raw_rates.push(raw_rate);
            ratios.push(log_rate / raw_rate);
        }
        let ratio_min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let ratio_max = ratios.iter().copied().fold(0.0, f64::max);
        println!(
            "{:<8} {:>8} {:>8.1} {:>10.0} {:>10.0} {:>10.2} {:>10.2} {:>10.2}",
            format!("{record_value_bytes}B"),
            templates.len(),
            bytes / (1024.0 * 1024.0),
            median(&mut log_rates),
            median(&mut raw_rates),
            median(&mut ratios),
            ratio_min,
            ratio_max,
        );
    }
    println!();
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

// ---------------------------------------------------------------------------
// 2 and 3. Durable appends from concurrent appenders, against std::fs.

fn append_durable(criterion: &mut Criterion, executor: &LocalExecutor, dir: &PathBuf) {
    let template = durable_batch();
    let mut group = criterion.benchmark_group("log_append_durable");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(1));
    for appenders in APPENDERS {
        group.bench_function(BenchmarkId::new("log_always", appenders), |bencher| {
            bencher.iter_custom(|batches| {
                let per_appender = batches.div_ceil(appenders as u64);
                let run = executor.run(log_durable_run(
                    dir,
                    &template,
                    appenders,
                    Stop::After(per_appender),
                    None,
                ));
                scale(run.elapsed, per_appender * appenders as u64, batches)
            })
        });
        group.bench_function(BenchmarkId::new("std_sync_data", appenders), |bencher| {
            bencher.iter_custom(|batches| {
                let per_appender = batches.div_ceil(appenders as u64);
                let run =
                    std_durable_run(dir, &template, appenders, Stop::After(per_appender), None);
                scale(run.elapsed, per_appender * appenders as u64, batches)
            })
        });
    }
    group.finish();
}

/// The time `wanted` batches took, given that `done` took `elapsed`.
fn scale(elapsed: Duration, done: u64, wanted: u64) -> Duration {
    elapsed.mul_f64(wanted as f64 / done as f64)
}

/// When an appender stops.
#[derive(Clone, Copy)]
enum Stop {
    /// After this many appends.
    After(u64),
    /// At the first append that would start past this instant.
    At(Instant),
}

impl Stop {
    fn more(self, done: u64) -> bool {
        match self {
            Stop::After(count) => done < count,
            Stop::At(deadline) => Instant::now() < deadline,
        }
    }
}

/// Latencies of appends that start at or after `from`.
struct Recorder {
    from: Instant,
    histogram: Histogram<u64>,
}

impl Recorder {
    fn new(from: Instant) -> Recorder {
        Recorder {
            from,
            histogram: Histogram::new_with_bounds(1, LATENCY_NS_MAX, 3).expect("histogram bounds"),
        }
    }

    fn record(&mut self, started: Instant, finished: Instant) {
        if started >= self.from {
            let nanoseconds = (finished - started).as_nanos() as u64;
            self.histogram
                .saturating_record(nanoseconds.min(LATENCY_NS_MAX));
        }
    }
}

struct DurableRun {
    /// From the first append to the last completion.
    elapsed: Duration,
    /// From the recorder's start to the last completion.
    recorded_for: Duration,
}

/// Opens a log with the `always` policy (untimed, with one append so the
/// segment file exists), then times `appenders` tasks each appending one
/// batch at a time until `stop`.
async fn log_durable_run(
    dir: &PathBuf,
    template: &Batch,
    appenders: usize,
    stop: Stop,
    recorder: Option<Rc<RefCell<Recorder>>>,
) -> DurableRun {
    let temp = tempdir(dir);
    let config = LogConfig {
        segment_bytes_max: SEGMENT_BYTES_MAX,
        flush: FlushPolicy::Always,
        ..LogConfig::default()
    };
    let log = Rc::new(Log::open(temp.path(), config).await.expect("log opens"));
    log.append(unshared(template)).await.expect("first append");

    let start = Instant::now();
    let tasks: Vec<_> = (0..appenders)
        .map(|_| {
            let log = log.clone();
            let template = template.clone();
            let recorder = recorder.clone();
            glommio::spawn_local(async move {
                let mut done = 0;
                while stop.more(done) {
                    let batch = unshared(&template);
                    let started = Instant::now();
                    log.append(batch).await.expect("durable append");
                    if let Some(recorder) = &recorder {
                        recorder.borrow_mut().record(started, Instant::now());
                    }
                    done += 1;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await;
    }
    let end = Instant::now();

    let log = Rc::try_unwrap(log)
        .ok()
        .expect("appenders are done with the log");
    log.close().await.expect("log closes");
    remove_and_sync(temp, dir);
    DurableRun {
        elapsed: end - start,
        recorded_for: recorder.map_or(Duration::ZERO, |recorder| {
            end.saturating_duration_since(recorder.borrow().from)
        }),
    }
}

/// The page-cache baseline: one file, `appenders` threads, each appending
/// one batch at a time with `write_all_at` at an offset it reserves, then
/// `sync_data`. Concurrent fdatasyncs may share a journal commit in the
/// kernel; nothing else groups them. The file is created untimed, not
/// preallocated.
fn std_durable_run(
    dir: &PathBuf,
    template: &Batch,
    appenders: usize,
    stop: Stop,
    recorder: Option<&Mutex<Recorder>>,
) -> DurableRun {
    let temp = tempdir(dir);
    let file = File::create(temp.path().join("std")).expect("file created");
    let bytes = template.as_bytes().clone();
    let next_position = AtomicU64::new(0);

    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..appenders {
            scope.spawn(|| {
                let mut done = 0;
                while stop.more(done) {
                    let started = Instant::now();
                    let position = next_position.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    file.write_all_at(&bytes, position).expect("write");
                    file.sync_data().expect("sync_data");
                    if let Some(recorder) = recorder {
                        recorder
                            .lock()
                            .expect("recorder lock")
                            .record(started, Instant::now());
                    }
                    done += 1;
                }
            });
        }
    });
    let end = Instant::now();

    drop(file);
    remove_and_sync(temp, dir);
    DurableRun {
        elapsed: end - start,
        recorded_for: recorder.map_or(Duration::ZERO, |recorder| {
            end.saturating_duration_since(recorder.lock().expect("recorder lock").from)
        }),
    }
}

/// Runs every durable workload for `LATENCY_MEASURE` after `LATENCY_WARM_UP`
/// and prints batches/s and latency percentiles of the recorded appends.
fn latency_table(executor: &LocalExecutor, dir: &PathBuf) {
    let template = durable_batch();
    println!(
        "durable appends: one {}-byte batch (one {DURABLE_VALUE_BYTES}-byte record) per \
         append; {} ms recorded after {} ms of warm-up",
        template.len(),
        LATENCY_MEASURE.as_millis(),
        LATENCY_WARM_UP.as_millis()
    );
    println!(
        "{:<16} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "workload", "appenders", "batches", "batches/s", "p50_us", "p99_us", "p999_us", "max_us"
    );
    let mut rates = Vec::new();
    for appenders in APPENDERS {
        let from = Instant::now() + LATENCY_WARM_UP;
        let stop = Stop::At(from + LATENCY_MEASURE);
        let recorder = Rc::new(RefCell::new(Recorder::new(from)));
        let run = executor.run(log_durable_run(
            dir,
            &template,
            appenders,
            stop,
            Some(recorder.clone()),
        ));
        let log_rate = print_row("log_always", appenders, &recorder.borrow().histogram, &run);

        let from = Instant::now() + LATENCY_WARM_UP;
        let stop = Stop::At(from + LATENCY_MEASURE);
        let recorder = Mutex::new(Recorder::new(from));
        let run = std_durable_run(dir, &template, appenders, stop, Some(&recorder));
        let std_rate = print_row(
            "std_sync_data",
            appenders,
            &recorder.lock().expect("recorder lock").histogram,
            &run,
        );
        rates.push((appenders, log_rate, std_rate));
    }
    let (_, log_one, std_one) = rates[0];
    for (appenders, log_rate, std_rate) in rates {
        println!(
            "{appenders:>2} appenders: log/std {:.2}x; log vs 1 appender {:.2}x; std vs 1 \
             appender {:.2}x",
            log_rate / std_rate,
            log_rate / log_one,
            std_rate / std_one
        );
    }
    println!();
}

/// Prints one row of the latency table; returns batches/s.
fn print_row(
    workload: &str,
    appenders: usize,
    histogram: &Histogram<u64>,
    run: &DurableRun,
) -> f64 {
    let rate = histogram.len() as f64 / run.recorded_for.as_secs_f64();
    let microseconds = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1000.0;
    println!(
        "{workload:<16} {appenders:>9} {:>10} {rate:>10.0} {:>10.0} {:>10.0} {:>10.0} {:>10.0}",
        histogram.len(),
        microseconds(0.5),
        microseconds(0.99),
        microseconds(0.999),
        histogram.max() as f64 / 1000.0,
    );
    rate
}
