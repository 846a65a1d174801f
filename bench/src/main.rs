//! `sluice-bench`: run a workload against a broker, or compare results.
//!
//! ```text
//! sluice-bench run bench/workloads/1-topic-1-partition-100b.toml \
//!     --driver native --brokers 127.0.0.1:9192 --cores 1 --out result.json
//! sluice-bench run bench/workloads/1-topic-1-partition-100b.toml \
//!     --driver redis --brokers 127.0.0.1:6390 --durability always --cores 1
//! sluice-bench run bench/workloads/1-topic-1-partition-100b.toml \
//!     --driver kafka --brokers 127.0.0.1:9092 --durability always --cores 1
//! sluice-bench compare a.json b.json --plot plots/ [--markdown]
//! ```
//!
//! `run --out result.json` also writes `result.spectrum.svg` and
//! `result.throughput.svg` beside it.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand, ValueEnum};
use sluice_bench::{
    plot, result::compare, run::available_cores, workload::Rate, BenchError, DriverKind,
    RunOptions, RunResult, Workload,
};

#[derive(Debug, Parser)]
#[command(
    name = "sluice-bench",
    version,
    about = "Sluice's open-loop load generator and latency harness"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// A chaos run: the workload's nodes started, producers and a consumer
    /// recording a history while nodes are killed with -9 and started
    /// again, a final full read, and the checker's reports, all in DIR.
    /// Fails if the history holds an anomaly.
    Chaos {
        workload: PathBuf,
        /// Where the run's files go.
        #[arg(long, default_value = "chaos-run")]
        dir: PathBuf,
        /// Decides the faults' times and targets [default: a new one,
        /// printed].
        #[arg(long)]
        seed: Option<u64>,
    },
    /// What transactions cost, through librdkafka: a transactional
    /// producer against an idempotent one at the same records per step
    /// (alternating, medians), with commit latency and read_committed
    /// against read_uncommitted end-to-end latency.
    Txn {
        /// The broker's Kafka address(es).
        #[arg(long, default_value = "127.0.0.1:9092")]
        brokers: String,
        /// The topics are this, `-idempotent` and `-transactional`.
        #[arg(long, default_value = "bench-txn")]
        topic: String,
        #[arg(long, default_value_t = 1)]
        partitions: u32,
        #[arg(long, default_value_t = 1)]
        replication_factor: i32,
        /// Records per transaction (per flush for the idempotent producer).
        #[arg(long, default_value_t = 100)]
        records: usize,
        /// Bytes per record (8 at least: the send's time).
        #[arg(long, default_value_t = 100)]
        value_bytes: usize,
        /// Seconds per round.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Rounds of each mode, alternating.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
    },
    /// Check a chaos run's history (`DIR/history.jsonl`) for lost,
    /// duplicated, reordered and skipped records; writes
    /// `DIR/report.json` and `DIR/report.md`, prints the latter, and fails
    /// if the history holds an anomaly.
    Check {
        /// The run's directory.
        dir: PathBuf,
    },
    /// Time a Sluice cluster's controller: metadata propagation, fencing,
    /// failover of the controller leader, memory per partition. Starts
    /// the cluster itself with `sluice cluster local`.
    Cluster {
        /// The `sluice` binary.
        #[arg(long, default_value = "target/release/sluice")]
        sluice: PathBuf,
        /// Where the nodes live (emptied first).
        #[arg(long, default_value = "/tmp/sluice-bench-cluster")]
        dir: PathBuf,
        #[arg(long, default_value_t = 24_000)]
        base_port: u16,
        /// Nodes: 3 voters, or 4 (the fourth a broker that is not a
        /// voter, whose metadata is timed with the others').
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(3..=4))]
        nodes: u32,
        /// Topic creates timed to every node's metadata.
        #[arg(long, default_value_t = 100)]
        creates: usize,
        /// Brokers paused until fenced.
        #[arg(long, default_value_t = 5)]
        fences: usize,
        /// kill -9 of the controller leader.
        #[arg(long, default_value_t = 20)]
        kills: usize,
        /// Partitions on one node for the memory figure (0: skipped).
        #[arg(long, default_value_t = 10_000)]
        partitions: u32,
    },
    /// Run a workload (a TOML file) against a broker.
    Run {
        workload: PathBuf,
        #[arg(long, value_enum, default_value = "native")]
        driver: DriverArg,
        /// HOST:PORT[,HOST:PORT]...
        #[arg(long, default_value = "127.0.0.1:9192")]
        brokers: String,
        /// CPUs for the harness threads: `1`, `0,1`, `0-3`. One pinned
        /// executor per CPU.
        #[arg(long, default_value = "0")]
        cores: String,
        /// Replaces the workload's rate: records/s or `max`.
        #[arg(long)]
        rate: Option<String>,
        /// Replaces the workload's duration (seconds, after warm-up).
        #[arg(long)]
        duration_s: Option<u64>,
        /// Replaces the workload's warm-up (seconds).
        #[arg(long)]
        warm_up_s: Option<u64>,
        /// How long to wait for the last acknowledgements and records
        /// after the last send, in seconds.
        #[arg(long, default_value_t = 10)]
        drain_s: u64,
        /// Keep the run's topics on the broker.
        #[arg(long)]
        keep_topics: bool,
        /// The broker's durability, as you set it up (`always`,
        /// `everysec`, `none`, `fsync-per-batch`...): a label kept in the
        /// result, not a setting.
        #[arg(long)]
        durability: Option<String>,
        /// Write the result as JSON here, and its plots (SVG) beside it.
        #[arg(long)]
        out: Option<PathBuf>,
        /// No progress lines.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Print runs side by side, with each one's ratio to the first.
    Compare {
        #[arg(required = true, num_args = 1..)]
        results: Vec<PathBuf>,
        /// Also draw the runs on one latency spectrum chart and one
        /// throughput chart, written into this directory.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// One Markdown table, a row per run (for bench/RESULTS.md).
        #[arg(long)]
        markdown: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DriverArg {
    Native,
    /// Any Kafka-compatible broker, through librdkafka.
    Kafka,
    /// Redis Streams (XADD / XREAD BLOCK); `--brokers` is the server.
    Redis,
    /// NATS JetStream (file storage); `--brokers` is the server.
    Nats,
}

fn main() -> ExitCode {
    match execute(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sluice-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Ok for a valid history; else the anomalies found.
fn verdict(report: &sluice_bench::chaos::checker::Report) -> Result<(), BenchError> {
    if report.valid {
        return Ok(());
    }
    let found: Vec<String> = sluice_bench::chaos::checker::ANOMALIES
        .iter()
        .filter(|name| **name != "unseen" && report.count(name) > 0)
        .map(|name| format!("{} {name}", report.count(name)))
        .collect();
    Err(BenchError::Anomalies(found.join(", ")))
}

fn execute(cli: Cli) -> Result<(), BenchError> {
    match cli.command {
        Command::Chaos {
            workload,
            dir,
            seed,
        } => {
            let text = std::fs::read_to_string(&workload).map_err(|source| BenchError::Read {
                path: workload.clone(),
                source,
            })?;
            let seed = seed.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |now| now.as_nanos() as u64)
            });
            let report = sluice_bench::chaos::run::run(&text, &dir, seed)?;
            print!("{}", report.markdown());
            verdict(&report)
        }
        Command::Txn {
            brokers,
            topic,
            partitions,
            replication_factor,
            records,
            value_bytes,
            seconds,
            rounds,
        } => {
            let options = sluice_bench::txn::TxnOptions {
                brokers,
                topic,
                partitions,
                replication_factor,
                records,
                value_bytes,
                seconds,
                rounds,
            };
            print!("{}", sluice_bench::txn::run(&options)?);
            Ok(())
        }
        Command::Check { dir } => {
            let report = sluice_bench::chaos::check_dir(&dir)?;
            print!("{}", report.markdown());
            verdict(&report)
        }
        Command::Cluster {
            sluice,
            dir,
            base_port,
            nodes,
            creates,
            fences,
            kills,
            partitions,
        } => {
            let options = sluice_bench::cluster::ClusterOptions {
                sluice,
                dir,
                base_port,
                nodes,
                creates,
                fences,
                kills,
                partitions,
            };
            for line in sluice_bench::cluster::measure(&options)? {
                println!("{line}");
            }
            Ok(())
        }
        Command::Run {
            workload,
            driver,
            brokers,
            cores,
            rate,
            duration_s,
            warm_up_s,
            drain_s,
            keep_topics,
            durability,
            out,
            quiet,
        } => {
            let mut workload = Workload::load(&workload)?;
            if let Some(rate) = rate {
                workload.rate = Rate::parse(&rate)?;
            }
            if let Some(duration_s) = duration_s {
                workload.duration_s = duration_s;
            }
            if let Some(warm_up_s) = warm_up_s {
                workload.warm_up_s = warm_up_s;
            }
            workload.validate()?;
            let cores = sluice_bench::parse_cores(&cores, available_cores())?;
            let result = sluice_bench::run(RunOptions {
                workload,
                driver: match driver {
                    DriverArg::Native => DriverKind::Native,
                    DriverArg::Kafka => DriverKind::Kafka,
                    DriverArg::Redis => DriverKind::Redis,
                    DriverArg::Nats => DriverKind::Nats,
                },
                brokers,
                cores,
                drain: Duration::from_secs(drain_s),
                progress: !quiet,
                delete_topics: !keep_topics,
                command: std::env::args().collect(),
                durability,
            })?;
            print!("{}", result.table());
            if let Some(out) = out {
                result.save(&out)?;
                println!("result written to {}", out.display());
                for chart in plot::write_run_charts(&result, &out)? {
                    println!("plot written to {}", chart.display());
                }
            }
            Ok(())
        }
        Command::Compare {
            results,
            plot,
            markdown,
        } => {
            let mut runs = Vec::new();
            for path in &results {
                let label = path
                    .file_stem()
                    .map(|stem| stem.to_string_lossy().into_owned())
                    .unwrap_or_else(|| path.display().to_string());
                runs.push((label, RunResult::load(path)?));
            }
            if markdown {
                print!("{}", sluice_bench::result::markdown(&runs));
            } else {
                print!("{}", compare(&runs));
            }
            if let Some(dir) = plot {
                for chart in plot::write_comparison_charts(&runs, &dir)? {
                    println!("plot written to {}", chart.display());
                }
            }
            Ok(())
        }
    }
}
