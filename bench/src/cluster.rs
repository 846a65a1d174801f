//! `sluice-bench cluster`: how fast a Sluice cluster's controller does its
//! work, measured on a cluster `sluice cluster local` starts.
//!
//! * **Propagation**: a topic created through node 0, until every node's
//!   metadata lists it (each node polled every millisecond).
//! * **Fencing**: a broker stopped with SIGSTOP, until another node says it
//!   is fenced; then SIGCONT, until it is alive again.
//! * **Failover**: kill -9 of the controller leader, until a topic create
//!   through another node succeeds; the node is started again (with the
//!   command `cluster local` wrote) and caught up before the next round.
//! * **Memory per partition**: a single node's resident memory before and
//!   after a topic of N partitions, divided by N.
//!
//! Every figure is a wall-clock time on loopback; the nodes share this
//! machine's cores with each other and with this process.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use sluice_net::client::Client;

use crate::BenchError;

/// How long any one step may take before the run fails.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a node is asked again while waiting for a change.
const POLL: Duration = Duration::from_millis(1);

/// What to measure, and how often.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The `sluice` binary.
    pub sluice: PathBuf,
    /// Where the cluster's nodes live (emptied first).
    pub dir: PathBuf,
    pub base_port: u16,
    /// Nodes of the cluster: 3 voters, and brokers that are not voters
    /// past them (`sluice cluster local --nodes`).
    pub nodes: u32,
    pub creates: usize,
    pub fences: usize,
    pub kills: usize,
    /// Partitions of the memory measurement's topic (0: not measured).
    pub partitions: u32,
}

/// Durations, sorted, with their percentiles.
#[derive(Debug, Clone, Default)]
pub struct Samples(pub Vec<Duration>);

impl Samples {
    fn push(&mut self, value: Duration) {
        self.0.push(value);
    }

    /// The `q` quantile (nearest rank), 0 if empty.
    pub fn quantile(&self, q: f64) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    fn line(&self, what: &str) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        format!(
            "{what}: n={} p50={:.1} ms p99={:.1} ms max={:.1} ms",
            self.0.len(),
            ms(self.quantile(0.5)),
            ms(self.quantile(0.99)),
            ms(self.quantile(1.0)),
        )
    }
}

/// A started cluster: its process and ready file's keys.
struct Cluster {
    process: Child,
    ready: HashMap<String, String>,
    restarted: HashMap<u32, Child>,
}

impl Cluster {
    fn start(options: &ClusterOptions, nodes: u32) -> Result<Cluster, BenchError> {
        let _ = std::fs::remove_dir_all(&options.dir);
        std::fs::create_dir_all(&options.dir).map_err(|e| cluster_error("data dir", e))?;
        let ready_file = options.dir.join("cluster.ready");
        let process = Command::new(&options.sluice)
            .args(["cluster", "local", "--cores", "1"])
            .arg("--nodes")
            .arg(nodes.to_string())
            .arg("--base-port")
            .arg(options.base_port.to_string())
            .arg("--data-dir")
            .arg(options.dir.join("nodes"))
            .arg("--ready-file")
            .arg(&ready_file)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| cluster_error("cluster local", e))?;
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            if let Ok(text) = std::fs::read_to_string(&ready_file) {
                let ready = text
                    .lines()
                    .filter_map(|line| line.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                return Ok(Cluster {
                    process,
                    ready,
                    restarted: HashMap::new(),
                });
            }
            if Instant::now() > deadline {
                return Err(BenchError::Cluster("the cluster did not start".into()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn value(&self, key: &str) -> Result<&str, BenchError> {
        self.ready
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| BenchError::Cluster(format!("no {key} in the ready file")))
    }

    fn native(&self, node: u32) -> Result<String, BenchError> {
        Ok(self.value(&format!("node.{node}.native_addr"))?.to_string())
    }

    fn pid(&self, node: u32) -> Result<i32, BenchError> {
        match self.restarted.get(&node) {
            Some(child) => Ok(child.id() as i32),
            None => self
                .value(&format!("node.{node}.pid"))?
                .parse()
                .map_err(|_| BenchError::Cluster("a pid that is no number".into())),
        }
    }

    fn signal(&self, node: u32, signal: i32) -> Result<(), BenchError> {
        let pid = self.pid(node)?;
        // SAFETY: a signal to a node process of the cluster this run started.
        if unsafe { libc::kill(pid, signal) } != 0 {
            return Err(BenchError::Cluster(format!(
                "signal {signal} to node {node} failed"
            )));
        }
        Ok(())
    }

    fn restart(&mut self, node: u32) -> Result<(), BenchError> {
        if let Some(mut old) = self.restarted.remove(&node) {
            let _ = old.wait();
        }
        let dir = PathBuf::from(self.value(&format!("node.{node}.dir"))?);
        let command = std::fs::read_to_string(dir.join("command"))
            .map_err(|e| cluster_error("node command", e))?;
        let _ = std::fs::remove_file(dir.join("ready"));
        let args: Vec<&str> = command.split_whitespace().collect();
        let log = std::fs::File::create(dir.join("log.restarted"))
            .map_err(|e| cluster_error("node log", e))?;
        let err = log.try_clone().map_err(|e| cluster_error("node log", e))?;
        let child = Command::new(args[0])
            .args(&args[1..])
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| cluster_error("node restart", e))?;
        self.restarted.insert(node, child);
        let deadline = Instant::now() + STEP_TIMEOUT;
        while !dir.join("ready").exists() {
            if Instant::now() > deadline {
                return Err(BenchError::Cluster(format!(
                    "node {node} did not serve again"
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.restarted.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // SAFETY: SIGTERM to the cluster process this run started.
        unsafe { libc::kill(self.process.id() as i32, libc::SIGTERM) };
        let _ = self.process.wait();
    }
}

fn cluster_error(what: &str, error: std::io::Error) -> BenchError {
    BenchError::Cluster(format!("{what}: {error}"))
}

fn client_error(what: &str, error: sluice_net::client::ClientError) -> BenchError {
    BenchError::Client {
        what: what.to_string(),
        source: error,
    }
}

async fn connect(addr: &str) -> Result<Client, BenchError> {
    Client::connect(addr)
        .await
        .map_err(|e| client_error(&format!("connect to {addr}"), e))
}

/// Waits (polling) until `check` says yes; the time it took.
async fn until<F, Fut>(mut check: F, what: &str) -> Result<Duration, BenchError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        if started.elapsed() > STEP_TIMEOUT {
            return Err(BenchError::Cluster(format!(
                "timed out waiting until {what}"
            )));
        }
        glommio::timer::sleep(POLL).await;
    }
    Ok(started.elapsed())
}

async fn has_topic(client: &Client, name: &str) -> bool {
    client
        .list_topics()
        .await
        .is_ok_and(|topics| topics.iter().any(|topic| topic.name == name))
}

/// The controller leader and each node's state as `client`'s node says.
async fn cluster_state(client: &Client) -> Option<(Option<u32>, HashMap<u32, bool>)> {
    let described = client.describe_cluster().await.ok()?;
    let alive = described
        .nodes
        .iter()
        .map(|node| (node.id, node.alive))
        .collect();
    Some((described.controller, alive))
}

/// Measures and returns the report's lines.
pub fn measure(options: &ClusterOptions) -> Result<Vec<String>, BenchError> {
    let options = options.clone();
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .make()
        .map_err(|e| BenchError::Cluster(format!("executor: {e}")))?
        .run(async move { measure_on_executor(&options).await })
}

async fn measure_on_executor(options: &ClusterOptions) -> Result<Vec<String>, BenchError> {
    let mut report = Vec::new();
    if options.creates + options.fences + options.kills > 0 {
        let nodes = options.nodes.clamp(3, 4);
        let mut cluster = Cluster::start(options, nodes)?;
        let mut clients = Vec::new();
        for node in 0..nodes {
            clients.push(connect(&cluster.native(node)?).await?);
        }
        until(
            || async {
                cluster_state(&clients[0]).await.is_some_and(|(_, alive)| {
                    alive.len() == nodes as usize && alive.values().all(|a| *a)
                })
            },
            "every node is registered",
        )
        .await?;

        let mut created = Samples::default();
        let mut everywhere = Samples::default();
        for index in 0..options.creates {
            let name = format!("propagation-{index}");
            let started = Instant::now();
            clients[0]
                .create_topic(&name, 1, &[])
                .await
                .map_err(|e| client_error("create", e))?;
            created.push(started.elapsed());
            for client in &clients {
                until(|| has_topic(client, &name), "every node lists the topic").await?;
            }
            everywhere.push(started.elapsed());
        }
        if options.creates > 0 {
            report.push(created.line("topic create answered (through node 0)"));
            report.push(everywhere.line("topic create to every node's metadata"));
            eprintln!("{}\n{}", report[report.len() - 2], report[report.len() - 1]);
        }

        let mut fenced = Samples::default();
        let mut back = Samples::default();
        for _ in 0..options.fences {
            let (controller, _) = cluster_state(&clients[0])
                .await
                .ok_or_else(|| BenchError::Cluster("no cluster state".into()))?;
            let controller = controller.unwrap_or(0);
            let paused = (controller + 1) % 3;
            let watcher = &clients[controller as usize];
            cluster.signal(paused, libc::SIGSTOP)?;
            fenced.push(
                until(
                    || async {
                        cluster_state(watcher)
                            .await
                            .is_some_and(|(_, alive)| alive.get(&paused) == Some(&false))
                    },
                    "the paused broker is fenced",
                )
                .await?,
            );
            cluster.signal(paused, libc::SIGCONT)?;
            back.push(
                until(
                    || async {
                        cluster_state(watcher)
                            .await
                            .is_some_and(|(_, alive)| alive.get(&paused) == Some(&true))
                    },
                    "the resumed broker is alive",
                )
                .await?,
            );
        }
        if options.fences > 0 {
            report.push(fenced.line("SIGSTOP of a broker to fenced"));
            report.push(back.line("SIGCONT to alive again"));
            eprintln!("{}\n{}", report[report.len() - 2], report[report.len() - 1]);
        }

        let mut failover = Samples::default();
        for round in 0..options.kills {
            let mut controller = None;
            for client in &clients {
                if let Some((Some(leader), _)) = cluster_state(client).await {
                    controller = Some(leader);
                    break;
                }
            }
            let controller =
                controller.ok_or_else(|| BenchError::Cluster("no controller leader".into()))?;
            let survivor = (controller + 1) % 3;
            cluster.signal(controller, libc::SIGKILL)?;
            let started = Instant::now();
            let name = format!("failover-{round}");
            let through = &clients[survivor as usize];
            until(
                || async {
                    through.create_topic(&name, 1, &[]).await.is_ok()
                        || has_topic(through, &name).await
                },
                "a topic is created after the kill",
            )
            .await?;
            failover.push(started.elapsed());
            cluster.restart(controller)?;
            clients[controller as usize] = connect(&cluster.native(controller)?).await?;
            let restarted = clients[controller as usize].clone();
            until(
                || has_topic(&restarted, &name),
                "the restarted node caught up",
            )
            .await?;
            until(
                || async {
                    cluster_state(&clients[survivor as usize])
                        .await
                        .is_some_and(|(_, alive)| alive.values().all(|a| *a))
                },
                "every node is alive again",
            )
            .await?;
        }
        if options.kills > 0 {
            report
                .push(failover.line("kill -9 of the controller leader to the next topic created"));
        }
    }
    if options.partitions > 0 {
        report.push(memory_per_partition(options).await?);
    }
    Ok(report)
}

fn resident_kib(pid: u32) -> Result<u64, BenchError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| cluster_error("/proc status", e))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| BenchError::Cluster("no VmRSS".into()))
}

async fn memory_per_partition(options: &ClusterOptions) -> Result<String, BenchError> {
    let cluster = Cluster::start(options, 1)?;
    let pid = cluster.pid(0)? as u32;
    let client_options = sluice_net::client::ClientOptions {
        request_timeout: Duration::from_secs(300),
        ..Default::default()
    };
    let client = Client::connect_with(&cluster.native(0)?, client_options)
        .await
        .map_err(|e| client_error("connect", e))?;
    glommio::timer::sleep(Duration::from_secs(1)).await;
    let before = resident_kib(pid)?;
    let mut remaining = options.partitions;
    let mut index = 0;
    while remaining > 0 {
        // Topics of at most this many: each create is one request the
        // broker answers once every partition is open.
        let count = remaining.min(1_000);
        client
            .create_topic(&format!("memory-{index}"), count, &[])
            .await
            .map_err(|e| client_error("create", e))?;
        remaining -= count;
        index += 1;
    }
    glommio::timer::sleep(Duration::from_secs(2)).await;
    let after = resident_kib(pid)?;
    let data_dir = Path::new(cluster.value("node.0.dir")?).join("data");
    drop(cluster);
    let per_partition =
        (after.saturating_sub(before)) as f64 * 1024.0 / f64::from(options.partitions);
    let _ = data_dir;
    Ok(format!(
        "memory: {} partitions on one node (1 shard): resident {} MiB before, {} MiB after: {:.1} KiB per partition",
        options.partitions,
        before / 1024,
        after / 1024,
        per_partition / 1024.0
    ))
}
