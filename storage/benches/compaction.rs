//! Benchmarks of log compaction.
//!
//! * `compact`: one pass of the cleaner, unpaced, over a log of
//!   `LOG_BYTES` in sealed segments, 100-byte values over `KEYS` keys (each
//!   key written about 25 times), as native batches and as Kafka batches
//!   compressed with lz4. Throughput is the log's bytes per second of
//!   pass; filling the log is outside the timed region.
//! * Before it, a table (set `SLUICE_BENCH_SKIP_TABLES=1` to skip it):
//!   the latency of durable appends to one log, alone and while the
//!   cleaner compacts another log of the same shard at its default pace,
//!   as interleaved pairs (alone, cleaning, cleaning, alone, ...) with the
//!   ratio of their percentiles.
//!
//! Files go to `SLUICE_BENCH_DIR`, else the system temporary directory (a
//! real disk, not tmpfs).
//!
//! Run with
//! `cargo bench -p sluice-storage --bench compaction -- --warm-up-time 1 --measurement-time 5`.

use std::{
    path::{Path, PathBuf},
    rc::Rc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use glommio::{LocalExecutor, LocalExecutorBuilder, Placement};
use hdrhistogram::Histogram;
use sluice_storage::{
    batch::{compression, Batch, BatchBuilder},
    log::{
        set_cleaner_pace, CleanupPolicy, CompactionConfig, DirtyRatio, FlushPolicy, Log, LogConfig,
        CLEAN_BYTES_PER_S,
    },
};

/// The log a pass cleans.
const LOG_BYTES: usize = 32 * 1024 * 1024;
/// Distinct keys: with 100-byte values, each about 25 times in the log.
const KEYS: u64 = 10_000;
const VALUE_BYTES: usize = 100;
const RECORDS_PER_BATCH: usize = 100;
/// Durable appends recorded per run of the latency table.
const LATENCY_APPENDS: usize = 1_000;
const LATENCY_PAIRS: usize = 4;

fn main() {
    let bench_mode = std::env::args().any(|arg| arg == "--bench");
    let dir = std::env::var_os("SLUICE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let executor = LocalExecutorBuilder::new(Placement::Unbound)
        .make()
        .expect("glommio executor starts");
    if bench_mode && std::env::var_os("SLUICE_BENCH_SKIP_TABLES").is_none() {
        latency_table(&executor, &dir);
    }
    let mut criterion = Criterion::default().configure_from_args();
    compact(&mut criterion, &executor, &dir);
    criterion.final_summary();
}

fn compacted_config() -> LogConfig {
    LogConfig {
        segment_bytes_max: 4 * 1024 * 1024,
        cleanup_policy: CleanupPolicy {
            delete: false,
            compact: true,
        },
        compaction: CompactionConfig {
            min_cleanable_dirty_ratio: DirtyRatio::new(0.0).expect("a ratio"),
            ..CompactionConfig::default()
        },
        file_delete_delay_ms: 0,
        // Filled fast; made durable before a pass (see `fill`).
        flush: FlushPolicy::Interval(Duration::from_millis(20)),
        ..LogConfig::default()
    }
}

/// Makes the batch of a round: (first key, value seed).
type MakeBatch = fn(u64, u64) -> Batch;

/// A native batch of records over the keys from `first`.
fn native_batch(first: u64, seed: u64) -> Batch {
    let mut builder = BatchBuilder::default();
    let value: Vec<u8> = (0..VALUE_BYTES)
        .map(|i| (seed.wrapping_mul(31).wrapping_add(i as u64) % 251) as u8)
        .collect();
    for index in 0..RECORDS_PER_BATCH as u64 {
        let key = format!("key-{:08}", (first + index * 7919) % KEYS);
        builder.push(1_700_000_000_000, Some(key.as_bytes()), &value, &[]);
    }
    builder.finish()
}

/// The same records as a Kafka producer's batch, compressed with lz4.
fn kafka_batch(first: u64, seed: u64) -> Batch {
    let mut kafka = bytes::BytesMut::new();
    native_batch(first, seed)
        .write_kafka(&mut kafka)
        .expect("a built batch");
    let (head, records) = kafka.split_at(61);
    let compressed = compression::compress(compression::Codec::Lz4, records).expect("lz4");
    let mut out = head.to_vec();
    out.extend_from_slice(&compressed);
    let batch_length = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    out[21..23].copy_from_slice(&3_i16.to_be_bytes());
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Batch::from_kafka(&out).expect("a kafka batch")
}

/// Fills `log` with about `LOG_BYTES` in sealed segments.
async fn fill(log: &Log, make: MakeBatch) {
    let mut appended = 0;
    let mut round = 0_u64;
    while appended < LOG_BYTES {
        let batch = make(round * RECORDS_PER_BATCH as u64, round);
        appended += batch.len();
        log.append(batch).await.expect("append");
        round += 1;
    }
    log.roll();
    log.append(make(0, u64::MAX)).await.expect("append");
    // The cleaner cleans only what is durable: a few flush intervals.
    while log.durable_end() < log.end_offset() {
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
}

fn compact(criterion: &mut Criterion, executor: &LocalExecutor, dir: &Path) {
    let mut group = criterion.benchmark_group("compact");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(LOG_BYTES as u64));
    let formats: [(&str, MakeBatch); 2] = [("native", native_batch), ("kafka_lz4", kafka_batch)];
    for (name, make) in formats {
        group.bench_function(name, |bencher| {
            bencher.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let temp = tempfile::tempdir_in(dir).expect("temporary directory");
                    total += executor.run(async {
                        set_cleaner_pace(0);
                        let log = Log::open(temp.path(), compacted_config())
                            .await
                            .expect("log opens");
                        fill(&log, make).await;
                        let began = Instant::now();
                        let outcome = log.compact().await.expect("compaction");
                        let elapsed = began.elapsed();
                        assert!(outcome.records_removed > 0, "{outcome:?}");
                        log.close().await.expect("close");
                        elapsed
                    });
                }
                total
            })
        });
    }
    group.finish();
}

/// One run: `LATENCY_APPENDS` durable appends of one small batch, one at
/// a time, with the cleaner compacting another log meanwhile if `cleaning`
/// (then only as many as the pass lasts).
fn latency_run(executor: &LocalExecutor, dir: &Path, cleaning: bool) -> Histogram<u64> {
    let temp = tempfile::tempdir_in(dir).expect("temporary directory");
    executor.run(async {
        set_cleaner_pace(CLEAN_BYTES_PER_S);
        let appended = Log::open(temp.path().join("appended"), LogConfig::default())
            .await
            .expect("log opens");
        let cleaned = Rc::new(
            Log::open(temp.path().join("cleaned"), compacted_config())
                .await
                .expect("log opens"),
        );
        fill(&cleaned, kafka_batch).await;
        let done = Rc::new(std::cell::Cell::new(false));
        let cleaner = cleaning.then(|| {
            let (cleaned, done) = (cleaned.clone(), done.clone());
            glommio::spawn_local(async move {
                let outcome = cleaned.compact().await.expect("compaction");
                assert!(outcome.cleaned);
                done.set(true);
            })
        });
        let mut builder = BatchBuilder::default();
        builder.push(0, Some(b"k"), &[7; 1_000], &[]);
        let template = builder.finish();
        let mut histogram = Histogram::<u64>::new(3).expect("histogram");
        // While the cleaner runs, and no longer: every append it records
        // overlaps the pass.
        for _ in 0..LATENCY_APPENDS {
            if done.get() {
                break;
            }
            let batch =
                Batch::validate(Bytes::copy_from_slice(template.as_bytes())).expect("a batch");
            let began = Instant::now();
            appended.append(batch).await.expect("append");
            histogram
                .record(began.elapsed().as_nanos() as u64)
                .expect("recorded");
        }
        if let Some(cleaner) = cleaner {
            cleaner.await;
        }
        appended.close().await.expect("close");
        cleaned.close().await.expect("close");
        histogram
    })
}

fn latency_table(executor: &LocalExecutor, dir: &Path) {
    println!(
        "durable appends of one 1,064-byte batch, {LATENCY_APPENDS} per run, alone and while \
         the cleaner compacts a {} MiB log at {} MB/s on the same shard",
        LOG_BYTES >> 20,
        CLEAN_BYTES_PER_S / 1_000_000
    );
    println!(
        "{:<10} {:>10} {:>10} {:>10} {:>10}",
        "run", "p50_us", "p99_us", "p999_us", "max_us"
    );
    let us = |histogram: &Histogram<u64>, quantile: f64| {
        histogram.value_at_quantile(quantile) as f64 / 1000.0
    };
    let mut ratios: Vec<[f64; 3]> = Vec::new();
    for pair in 0..LATENCY_PAIRS {
        // Alternated, so that both sides see the same disk on average.
        let order = if pair % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        let mut runs = [None, None];
        for cleaning in order {
            let histogram = latency_run(executor, dir, cleaning);
            println!(
                "{:<10} {:>10.0} {:>10.0} {:>10.0} {:>10.0}",
                if cleaning { "cleaning" } else { "alone" },
                us(&histogram, 0.5),
                us(&histogram, 0.99),
                us(&histogram, 0.999),
                histogram.max() as f64 / 1000.0
            );
            runs[usize::from(cleaning)] = Some(histogram);
        }
        let [Some(alone), Some(cleaning)] = runs else {
            unreachable!("both runs ran");
        };
        ratios.push(
            [0.5, 0.99, 0.999].map(|quantile| us(&cleaning, quantile) / us(&alone, quantile)),
        );
    }
    for (index, name) in ["p50", "p99", "p999"].iter().enumerate() {
        let mut values: Vec<f64> = ratios.iter().map(|ratio| ratio[index]).collect();
        values.sort_by(f64::total_cmp);
        println!(
            "{name} cleaning/alone: {:.2}x (median of {LATENCY_PAIRS} pairs)",
            values[values.len() / 2]
        );
    }
    println!();
}
