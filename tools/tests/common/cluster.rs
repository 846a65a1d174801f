//! A cluster of real nodes for the black-box tests: `sluice cluster local`
//! started on ports found free, its nodes found in its ready file, one
//! node killed with a signal and started again with the command the
//! cluster wrote for it; and what a node's Kafka Metadata says of brokers,
//! leaders, replicas and the in-sync set (librdkafka asks).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    config::ClientConfig,
    consumer::{BaseConsumer, Consumer},
};

use super::SLUICE;

/// How long the cluster may take to do what a step waits for.
pub const WAIT: Duration = Duration::from_secs(30);

/// How long `cluster local` may take until every node serves.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts of a cluster tried before a test gives up: each on other ports.
const START_ATTEMPTS: u32 = 3;

/// A cluster started by `sluice cluster local`, stopped on drop. Node N
/// keeps its ports across a restart (`cluster local` gives node N the
/// ports from `--base-port` + 10 N).
pub struct LocalCluster {
    process: Child,
    /// Every node's data directory and log; removed once they stopped.
    _dir: tempfile::TempDir,
    ready: HashMap<String, String>,
    /// Nodes started again by the test, by id.
    restarted: BTreeMap<u32, Child>,
    /// `SLUICE_*` settings every node runs with, a node started again too.
    env: Vec<(String, String)>,
}

/// Where the blocks of ports start: below Linux's range of local ports for
/// outgoing connections (32768 and up by default), so that a connection
/// made meanwhile cannot hold a port a node is to listen on again after a
/// restart.
const PORTS_FIRST: u16 = 10_000;
/// How many ports the blocks are drawn from, from [`PORTS_FIRST`].
const PORTS_SPAN: u16 = 22_000;

/// A block of `count` ports free right now, from a seed that differs
/// between test processes and between the calls of one.
pub fn free_ports(count: u16) -> u16 {
    static CALLS: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let seed = (std::process::id() % 1000) as u32 * 20 + u32::from(call) * 500;
    let mut base = PORTS_FIRST + (seed % u32::from(PORTS_SPAN)) as u16;
    loop {
        let free = (0..count)
            .all(|offset| std::net::TcpListener::bind(("127.0.0.1", base + offset)).is_ok());
        if free {
            return base;
        }
        base = PORTS_FIRST + (base - PORTS_FIRST + 97) % PORTS_SPAN;
    }
}

impl LocalCluster {
    /// Starts `nodes` nodes of one shard each and waits until each serves.
    pub fn start(nodes: u32) -> LocalCluster {
        LocalCluster::start_with(nodes, &[])
    }

    /// [`LocalCluster::start`] with `env` (`SLUICE_*` broker settings) in
    /// every node's environment. A port found free may be taken before a
    /// node binds it (by another test's cluster, or a connection's local
    /// port): a cluster whose node could not listen stops, and is started
    /// again on other ports, [`START_ATTEMPTS`] times at most.
    pub fn start_with(nodes: u32, env: &[(&str, &str)]) -> LocalCluster {
        LocalCluster::start_with_args(nodes, env, &[])
    }

    /// [`LocalCluster::start_with`] with `args` given to `cluster local`
    /// (`--racks`).
    pub fn start_with_args(nodes: u32, env: &[(&str, &str)], args: &[&str]) -> LocalCluster {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        for attempt in 1.. {
            match LocalCluster::start_once(nodes, &env, args) {
                Ok(cluster) => return cluster,
                Err(status) if attempt < START_ATTEMPTS => {
                    eprintln!("the cluster stopped while starting ({status}); again on other ports")
                }
                Err(status) => {
                    panic!("the cluster stopped while starting ({status}), {START_ATTEMPTS} times")
                }
            }
        }
        unreachable!("the attempts end with a cluster or a panic")
    }

    /// One start of the cluster; how `cluster local` exited if it stopped
    /// before every node served.
    fn start_once(
        nodes: u32,
        env: &[(String, String)],
        args: &[&str],
    ) -> Result<LocalCluster, std::process::ExitStatus> {
        let env = env.to_vec();
        let dir = tempfile::tempdir().unwrap();
        let ready_file = dir.path().join("cluster.ready");
        let base_port = free_ports(nodes as u16 * 10);
        let process = Command::new(SLUICE)
            .args(["cluster", "local", "--cores", "1"])
            .arg("--nodes")
            .arg(nodes.to_string())
            .arg("--base-port")
            .arg(base_port.to_string())
            .arg("--data-dir")
            .arg(dir.path().join("nodes"))
            .arg("--ready-file")
            .arg(&ready_file)
            .args(args)
            .envs(env.iter().map(|(key, value)| (key, value)))
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut process = process;
        let deadline = Instant::now() + START_TIMEOUT;
        let ready = loop {
            if let Ok(text) = std::fs::read_to_string(&ready_file) {
                break text
                    .lines()
                    .filter_map(|line| line.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<HashMap<_, _>>();
            }
            if let Some(status) = process.try_wait().unwrap() {
                return Err(status);
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not start within {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Ok(LocalCluster {
            process,
            _dir: dir,
            ready,
            restarted: BTreeMap::new(),
            env,
        })
    }

    /// A value of the ready file (`node.1.kafka_addr`, `kafka_bootstrap`).
    pub fn value(&self, key: &str) -> &str {
        self.ready
            .get(key)
            .unwrap_or_else(|| panic!("{key} in the ready file"))
    }

    pub fn kafka_addr(&self, node: u32) -> String {
        self.value(&format!("node.{node}.kafka_addr")).to_string()
    }

    pub fn native_addr(&self, node: u32) -> String {
        self.value(&format!("node.{node}.native_addr")).to_string()
    }

    /// Every node's Kafka listener, for a client that must outlive the
    /// loss of any one node.
    /// Waits until each of nodes `0..nodes` lists every one of them as a
    /// broker in its Kafka Metadata: a topic of that many replicas needs
    /// them.
    pub fn wait_for_brokers(&self, nodes: u32) {
        let all: BTreeSet<i32> = (0..nodes as i32).collect();
        for node in 0..nodes {
            wait_until(
                || match metadata(&self.kafka_addr(node), None) {
                    Some(seen) if seen.brokers == all => Ok(()),
                    Some(seen) => Err(format!("brokers {:?}", seen.brokers)),
                    None => Err("no answer".to_string()),
                },
                &format!("node {node} lists every node as a broker"),
            );
        }
    }

    pub fn kafka_bootstrap(&self) -> String {
        self.value("kafka_bootstrap").to_string()
    }

    pub fn node_dir(&self, node: u32) -> PathBuf {
        PathBuf::from(self.value(&format!("node.{node}.dir")))
    }

    fn pid(&self, node: u32) -> i32 {
        match self.restarted.get(&node) {
            Some(child) => child.id() as i32,
            None => self.value(&format!("node.{node}.pid")).parse().unwrap(),
        }
    }

    pub fn signal(&self, node: u32, signal: i32) {
        // SAFETY: a signal to a process of this test's cluster.
        assert_eq!(unsafe { libc::kill(self.pid(node), signal) }, 0);
    }

    /// SIGKILL to node `node`: no chance to flush or close anything. A
    /// node the test started again is reaped here; one that `cluster
    /// local` started, by it.
    pub fn kill9(&mut self, node: u32) {
        self.signal(node, libc::SIGKILL);
        if let Some(mut child) = self.restarted.remove(&node) {
            let _ = child.wait();
        }
    }

    /// Starts node `node` again with the command `cluster local` wrote,
    /// and `extra` arguments.
    pub fn restart(&mut self, node: u32, extra: &[&str]) {
        let dir = self.node_dir(node);
        let command = std::fs::read_to_string(dir.join("command")).unwrap();
        let _ = std::fs::remove_file(dir.join("ready"));
        let mut args: Vec<&str> = command.split_whitespace().collect();
        args.extend_from_slice(extra);
        let log = std::fs::File::create(dir.join("log.restarted")).unwrap();
        let child = Command::new(args[0])
            .args(&args[1..])
            .envs(self.env.iter().map(|(key, value)| (key, value)))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.restarted.insert(node, child);
        let deadline = Instant::now() + WAIT;
        while !dir.join("ready").exists() {
            let log = std::fs::read_to_string(dir.join("log.restarted")).unwrap_or_default();
            assert!(
                Instant::now() < deadline,
                "node {node} did not serve again:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs a `sluice` client command against node `node` alone.
    pub fn cli(&self, node: u32, args: &[&str], stdin: Option<&[u8]>) -> Output {
        super::cli(&self.native_addr(node), args, stdin)
    }

    /// A command against node `node` alone that must succeed; its
    /// standard output.
    pub fn cli_ok(&self, node: u32, args: &[&str], stdin: Option<&[u8]>) -> String {
        super::cli_ok(&self.native_addr(node), args, stdin)
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for child in self.restarted.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // SAFETY: SIGTERM to the cluster process this test started.
        unsafe { libc::kill(self.process.id() as i32, libc::SIGTERM) };
        let _ = self.process.wait();
    }
}

/// Waits until `done`, for at most [`WAIT`]; fails naming `what`.
pub fn wait_for(mut done: impl FnMut() -> bool, what: &str) {
    wait_until(|| if done() { Ok(()) } else { Err("not yet") }, what);
}

/// Asks `probe` until it answers `Ok`, for at most [`WAIT`]; fails naming
/// `what` and the last thing it answered.
pub fn wait_until<T, E: std::fmt::Display>(
    mut probe: impl FnMut() -> Result<T, E>,
    what: &str,
) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        match probe() {
            Ok(value) => return value,
            Err(last) => assert!(
                Instant::now() < deadline,
                "timed out after {WAIT:?} waiting until {what}; last: {last}"
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A librdkafka configuration for `bootstrap` that notices a node's loss
/// and a leader's move within a second.
pub fn client(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "10000")
        .set("topic.metadata.refresh.interval.ms", "500");
    config
}

/// What one node's Kafka Metadata says: the live brokers, and each
/// partition of a topic, in partition order.
pub struct Seen {
    pub brokers: BTreeSet<i32>,
    pub partitions: Vec<PartitionSeen>,
}

/// One partition in a node's Kafka Metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSeen {
    /// -1 when it has none.
    pub leader: i32,
    /// In assignment order.
    pub replicas: Vec<i32>,
    pub in_sync: BTreeSet<i32>,
}

impl Seen {
    pub fn leaders(&self) -> Vec<i32> {
        self.partitions
            .iter()
            .map(|partition| partition.leader)
            .collect()
    }
}

/// What Kafka's Metadata at `bootstrap` says, of `topic`'s partitions if
/// it names one; `None` if the node does not answer or knows no such
/// topic.
pub fn metadata(bootstrap: &str, topic: Option<&str>) -> Option<Seen> {
    let consumer: BaseConsumer = client(bootstrap).create().ok()?;
    let metadata = consumer
        .fetch_metadata(topic, Duration::from_secs(5))
        .ok()?;
    let partitions = match topic {
        Some(topic) => {
            let topic = metadata.topics().iter().find(|t| t.name() == topic)?;
            if topic.error().is_some() {
                return None;
            }
            let mut partitions: Vec<_> = topic.partitions().iter().collect();
            partitions.sort_by_key(|p| p.id());
            partitions
                .iter()
                .map(|p| PartitionSeen {
                    leader: p.leader(),
                    replicas: p.replicas().to_vec(),
                    in_sync: p.isr().iter().copied().collect(),
                })
                .collect()
        }
        None => Vec::new(),
    };
    Some(Seen {
        brokers: metadata.brokers().iter().map(|b| b.id()).collect(),
        partitions,
    })
}

/// Creates `name` through Kafka's CreateTopics at `bootstrap`, with
/// `replication_factor` replicas a partition and `configs`; the error code
/// the broker answered, if it refused.
pub fn create_topic(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    replication_factor: i32,
    configs: &[(&str, &str)],
) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> = client(bootstrap).create().unwrap();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let mut topic = NewTopic::new(
        name,
        partitions,
        TopicReplication::Fixed(replication_factor),
    );
    for (key, value) in configs {
        topic = topic.set(key, value);
    }
    let results = futures_lite::future::block_on(admin.create_topics([&topic], &options))
        .map_err(|error| error.to_string())?;
    match &results[0] {
        Ok(_) => Ok(()),
        Err((_, code)) => Err(code.to_string()),
    }
}

/// One Kafka request of `version` to `addr` on a new connection, and its
/// answer (see [`super::kafka_exchange`]).
pub fn kafka_call<
    T: kafka_protocol::protocol::Encodable,
    R: kafka_protocol::protocol::Decodable,
>(
    addr: &str,
    api: kafka_protocol::messages::ApiKey,
    version: i16,
    body: &T,
) -> R {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    super::kafka_exchange(&mut stream, api, version, 3, "cluster-test", body)
}

/// One sample of a node's `/metrics`.
#[derive(Debug, Clone)]
pub struct MetricSample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A scrape of a node's `/metrics`.
#[derive(Debug, Clone)]
pub struct Metrics(pub Vec<MetricSample>);

impl Metrics {
    /// The value of the sample `name` whose labels include `labels`, if
    /// there is exactly one.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut found = self.0.iter().filter(|sample| {
            sample.name == name
                && labels
                    .iter()
                    .all(|(key, value)| sample.labels.get(*key).map(String::as_str) == Some(value))
        });
        let first = found.next()?;
        found.next().is_none().then_some(first.value)
    }

    /// [`Metrics::value`], or an error naming what is missing.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Result<f64, String> {
        self.value(name, labels)
            .ok_or_else(|| format!("no single sample {name} {labels:?}"))
    }
}

impl LocalCluster {
    /// Node `node`'s `/metrics`, parsed (label values with no escapes).
    pub fn metrics(&self, node: u32) -> Result<Metrics, String> {
        use std::io::{Read, Write};
        let addr = self.value(&format!("node.{node}.admin_addr")).to_string();
        let mut stream = std::net::TcpStream::connect(&addr).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(WAIT))
            .map_err(|e| e.to_string())?;
        let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .map_err(|e| e.to_string())?;
        let (head, body) = answer
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("no head: {answer:?}"))?;
        if !head.starts_with("HTTP/1.1 200") {
            return Err(format!("answered {head}"));
        }
        let mut samples = Vec::new();
        for line in body.lines().filter(|line| !line.starts_with('#')) {
            let (series, value) = line
                .rsplit_once(' ')
                .ok_or_else(|| format!("a sample without a value: {line}"))?;
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .filter_map(|pair| pair.split_once("=\""))
                .map(|(key, value)| (key.to_string(), value.trim_end_matches('"').to_string()))
                .collect();
            samples.push(MetricSample {
                name: name.to_string(),
                labels,
                value: value.parse().map_err(|_| format!("a value: {line}"))?,
            });
        }
        Ok(Metrics(samples))
    }
}
