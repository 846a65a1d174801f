//! A chaos run: a Sluice cluster (or one node) started from the commands
//! a workload gives, producers and a consumer recording every operation
//! as the history ([`super::history`]) while a nemesis strikes nodes
//! (`kill -9` and start again, SIGSTOP and SIGCONT, SIGTERM and start
//! again), then a final full read once the faults have healed, and the
//! checker's reports and timeline. Everything it started is stopped at
//! the end, whatever happens.
//!
//! The native driver's clients speak Sluice's native protocol, one
//! blocking connection a thread and node, each request sent to its
//! partition's leader as the nodes' Metadata says, so a client's view is
//! exactly its requests and answers: a send is `ok` with the offset the
//! broker acknowledged, `fail` when the broker refused it, `info`
//! (unknown) when the connection broke before the answer. The Kafka
//! driver's clients are librdkafka's ([`super::kafka`]).
//!
//! ```toml
//! [chaos]
//! topic = "chaos"
//! partitions = 4
//! producers = 2
//! rate = 400            # sends per second, all producers together
//! duration_s = 15
//!
//! [check]               # optional; these are the defaults
//! driver = "native"     # or "kafka" (librdkafka; nodes then need kafka_addr)
//! acks = "all"
//! idempotent = false    # kafka driver
//! consumer = "assign"   # kafka driver: or "group"
//! consumers = 1         # kafka driver
//!
//! [[nodes]]             # `{dir}`: the run's directory
//! start = "sluice serve --data-dir {dir}/node-0 --native-addr 127.0.0.1:29192 --kafka-addr off --admin-addr off"
//! stop = "..."          # optional: a clean stop (default: SIGTERM)
//! native_addr = "127.0.0.1:29192"
//!
//! [faults]
//! interval_ms = 4000    # a fault every this long (drawn 50% to 150%)
//! down_ms = 300         # how long a node stays down or paused
//! kinds = ["kill"]      # drawn from: "kill", "pause", "restart"
//! target = "random"     # or "next" (rolling), "controller", "leader"
//! partition = 0         # whose leader "leader" strikes
//! ```

use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use serde::Deserialize;
use sluice_net::native::{
    blocking::{BlockingError, Connection},
    messages::{
        Acks, ApiKey, CreateTopicsRequest, DescribeClusterRequest, DescribeClusterResponse,
        FetchPartition, FetchRequest, FetchResponse, FetchTopic, MetadataRequest, MetadataResponse,
        NewTopic, ProducePartition, ProduceRequest, ProduceResponse, ProduceTopic, TopicResults,
    },
    ErrorCode,
};
use sluice_storage::batch::{Batch, BatchBuilder, BatchHeader};

use super::{
    checker::Report,
    environment::{Disks, Network},
    history::{self, Event, EventType, Function, Read},
    kafka,
};
use crate::BenchError;

/// How long a client waits for one answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a node may take to serve after its start command.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// The final read's client id in the history.
pub(super) const FINAL_READER: u32 = 2000;
/// How long a node may take to stop after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a client waits for metadata (where partitions live).
const METADATA_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the final read may take.
const FINAL_READ_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChaosWorkload {
    pub chaos: ChaosSection,
    #[serde(default)]
    pub check: CheckSection,
    pub nodes: Vec<NodeSpec>,
    #[serde(default)]
    pub faults: FaultSection,
}

/// Which clients record the history, and how they write and read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSection {
    /// `native` (Sluice's protocol) or `kafka` (librdkafka, for Sluice's
    /// Kafka listener or any Kafka-compatible broker).
    #[serde(default)]
    pub driver: ClientDriver,
    /// Kafka driver: `all`, `1` or `0`; native: `all` or `1`.
    #[serde(default = "CheckSection::default_acks")]
    pub acks: String,
    /// Kafka driver: idempotent producers (`enable.idempotence`).
    #[serde(default)]
    pub idempotent: bool,
    /// Kafka driver: consumers assigned every partition, or in a group.
    #[serde(default)]
    pub consumer: ConsumerMode,
    /// Kafka driver: how many consumers (native: one per partition).
    #[serde(default = "CheckSection::default_consumers")]
    pub consumers: u32,
    /// Kafka driver: a consume-transform-produce run. Transformers copy
    /// the topic into `{topic}-out` in transactions, with their group's
    /// offsets (exactly once), and the consumers read the output,
    /// committed records only; the checker finds aborted records read and
    /// inputs missing from the output.
    #[serde(default)]
    pub transform: bool,
    /// How many transformers, with `transform`.
    #[serde(default = "CheckSection::default_transformers")]
    pub transformers: u32,
}

impl CheckSection {
    fn default_acks() -> String {
        "all".into()
    }

    fn default_consumers() -> u32 {
        1
    }

    fn default_transformers() -> u32 {
        1
    }
}

impl Default for CheckSection {
    fn default() -> CheckSection {
        CheckSection {
            driver: ClientDriver::Native,
            acks: CheckSection::default_acks(),
            idempotent: false,
            consumer: ConsumerMode::Assign,
            consumers: CheckSection::default_consumers(),
            transform: false,
            transformers: CheckSection::default_transformers(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientDriver {
    #[default]
    Native,
    Kafka,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsumerMode {
    /// Every partition assigned from its start, nothing committed.
    #[default]
    Assign,
    /// Members of one consumer group, committing as they go.
    Group,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChaosSection {
    pub topic: String,
    pub partitions: u32,
    pub producers: u32,
    /// Sends per second, all producers together.
    pub rate: u32,
    pub duration_s: u64,
    /// Topic configs for the topic the run creates.
    #[serde(default)]
    pub configs: Vec<(String, String)>,
    /// The topic's replication factor; 0: the cluster's default.
    #[serde(default)]
    pub replication_factor: u16,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// A shell command that starts the node; `{dir}` is the run's
    /// directory. The process it starts (`exec`) is the one signals go
    /// to: kill -9, SIGSTOP and SIGCONT.
    pub start: String,
    /// A shell command that stops the node cleanly; without one, SIGTERM.
    #[serde(default)]
    pub stop: Option<String>,
    /// Its native protocol's address (the native driver's, and the
    /// controller's whereabouts).
    #[serde(default)]
    pub native_addr: Option<String>,
    /// Its Kafka listener's address (the Kafka driver's).
    #[serde(default)]
    pub kafka_addr: Option<String>,
}

impl NodeSpec {
    /// The address clients of `driver` reach the node at.
    fn client_addr(&self, driver: ClientDriver) -> &str {
        match driver {
            ClientDriver::Native => self.native_addr.as_deref(),
            ClientDriver::Kafka => self.kafka_addr.as_deref(),
        }
        .expect("checked when the workload was read")
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSection {
    /// 0: no faults.
    pub interval_ms: u64,
    /// How long a killed node stays down, a paused one stopped, a
    /// restarted one stopped before it starts again.
    pub down_ms: u64,
    /// Drawn from at each fault: `kill`, `pause`, `restart`.
    pub kinds: Vec<String>,
    /// `random` (the default), `next` (each node in turn: a rolling
    /// fault), `controller` (the controller quorum's leader) or `leader`
    /// (the leader of `partition`).
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub partition: u32,
    /// The size of each node's filesystem, with `disk-full` faults.
    #[serde(default = "FaultSection::default_disk_mb")]
    pub disk_mb: u64,
}

/// The faults this harness injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FaultKind {
    /// `kill -9`, then the node's start command after `down_ms`.
    Kill,
    /// SIGSTOP, then SIGCONT after `down_ms`.
    Pause,
    /// SIGTERM (a clean shutdown), then the start command after `down_ms`.
    Restart,
    /// The node's filesystem filled, freed after `down_ms`.
    DiskFull,
    /// The node cut off from the other nodes (not from the clients),
    /// mended after `down_ms`.
    Partition,
    /// A minority of the nodes, the target among them, cut off from the
    /// majority, mended after `down_ms`.
    Split,
}

impl FaultKind {
    const NAMES: [(&'static str, FaultKind); 6] = [
        ("kill", FaultKind::Kill),
        ("pause", FaultKind::Pause),
        ("restart", FaultKind::Restart),
        ("disk-full", FaultKind::DiskFull),
        ("partition", FaultKind::Partition),
        ("split", FaultKind::Split),
    ];

    fn cuts_network(self) -> bool {
        matches!(self, FaultKind::Partition | FaultKind::Split)
    }

    fn parse(name: &str) -> Option<FaultKind> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, k)| *k)
    }

    fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, k)| *k == self)
            .expect("named")
            .0
    }
}

/// Which node a fault strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Random,
    Next,
    Controller,
    Leader(u32),
}

impl FaultSection {
    fn default_disk_mb() -> u64 {
        256
    }

    fn kinds(&self) -> Result<Vec<FaultKind>, BenchError> {
        self.kinds
            .iter()
            .map(|name| {
                FaultKind::parse(name).ok_or_else(|| {
                    BenchError::Workload(format!(
                        "fault kind {name:?}: one of {:?}",
                        FaultKind::NAMES.map(|(name, _)| name)
                    ))
                })
            })
            .collect()
    }

    fn target(&self, partitions: u32) -> Result<Target, BenchError> {
        let target = match self.target.as_deref().unwrap_or("random") {
            "random" => Target::Random,
            "next" => Target::Next,
            "controller" => Target::Controller,
            "leader" => Target::Leader(self.partition),
            other => {
                return Err(BenchError::Workload(format!(
                "fault target {other:?}: one of \"random\", \"next\", \"controller\", \"leader\""
            )))
            }
        };
        if self.partition >= partitions {
            return Err(BenchError::Workload(format!(
                "[faults] partition {} of a topic of {partitions}",
                self.partition
            )));
        }
        Ok(target)
    }
}

impl ChaosWorkload {
    pub fn parse(text: &str) -> Result<ChaosWorkload, BenchError> {
        let workload: ChaosWorkload =
            toml::from_str(text).map_err(|error| BenchError::Workload(error.to_string()))?;
        let c = &workload.chaos;
        if c.partitions == 0 || c.producers == 0 || c.rate == 0 || c.duration_s == 0 {
            return Err(BenchError::Workload(
                "[chaos] partitions, producers, rate and duration_s are at least 1".into(),
            ));
        }
        if workload.nodes.is_empty() {
            return Err(BenchError::Workload("no [[nodes]]".into()));
        }
        let kinds = workload.faults.kinds()?;
        workload.faults.target(c.partitions)?;
        if kinds.contains(&FaultKind::DiskFull) {
            if let Some(index) = workload
                .nodes
                .iter()
                .position(|n| !n.start.contains("{disk}"))
            {
                return Err(BenchError::Workload(format!(
                    "node {index}'s start command does not name {{disk}}: a disk-full fault \
                     fills the filesystem mounted there, which its data directory should be on"
                )));
            }
            if workload.faults.disk_mb < 16 {
                return Err(BenchError::Workload(
                    "[faults] disk_mb is at least 16".into(),
                ));
            }
        }
        if kinds.iter().any(|kind| kind.cuts_network()) {
            if workload.nodes.len() < 2 {
                return Err(BenchError::Workload(
                    "a network fault needs two nodes at least".into(),
                ));
            }
            if let Some(index) = workload.nodes.iter().position(|n| !n.start.contains("{ip")) {
                return Err(BenchError::Workload(format!(
                    "node {index}'s start command names no {{ip}}: with network faults each \
                     node runs in a namespace of its own and listens on its address there"
                )));
            }
        }
        let check = &workload.check;
        let (addr, name) = match check.driver {
            ClientDriver::Native => ("native_addr", "native"),
            ClientDriver::Kafka => ("kafka_addr", "kafka"),
        };
        if let Some(index) = workload.nodes.iter().position(|node| match check.driver {
            ClientDriver::Native => node.native_addr.is_none(),
            ClientDriver::Kafka => node.kafka_addr.is_none(),
        }) {
            return Err(BenchError::Workload(format!(
                "node {index} has no {addr}, which the {name} driver's clients need"
            )));
        }
        let acks = match check.driver {
            ClientDriver::Native => &["all", "1"][..],
            ClientDriver::Kafka => &["all", "1", "0"][..],
        };
        if !acks.contains(&check.acks.as_str()) {
            return Err(BenchError::Workload(format!(
                "[check] acks = {:?}: the {name} driver takes {acks:?}",
                check.acks
            )));
        }
        if check.driver == ClientDriver::Native
            && (check.idempotent || check.consumer == ConsumerMode::Group)
        {
            return Err(BenchError::Workload(
                "[check] idempotent producers and group consumers go through driver = \"kafka\""
                    .into(),
            ));
        }
        if check.consumers == 0 {
            return Err(BenchError::Workload(
                "[check] consumers is at least 1".into(),
            ));
        }
        if check.transform
            && (check.driver != ClientDriver::Kafka
                || check.acks != "all"
                || check.transformers == 0)
        {
            return Err(BenchError::Workload(
                "[check] transform runs through driver = \"kafka\" with acks = \"all\" and at least one transformer"
                    .into(),
            ));
        }
        Ok(workload)
    }
}

/// A history being written, shared by the run's threads.
pub(super) struct Recorder {
    started: Instant,
    next_op: AtomicU64,
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    pub(super) fn op(&self) -> u64 {
        self.next_op.fetch_add(1, Ordering::Relaxed)
    }

    pub(super) fn event(&self, kind: EventType) -> Event {
        let mut event = Event::new(kind, self.started.elapsed().as_nanos() as u64);
        event.wall_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |now| now.as_millis() as u64);
        event
    }

    pub(super) fn record(&self, event: Event) {
        self.events.lock().expect("not poisoned").push(event);
    }

    /// Records a send's invocation, and returns it (its completion is the
    /// same event with its outcome).
    pub(super) fn invoke_send(
        &self,
        client: u32,
        topic: &str,
        partition: u32,
        value: &str,
        idempotent: bool,
    ) -> Event {
        let invoke = self.event(EventType::Invoke);
        self.invoke(invoke, client, topic, partition, value, idempotent)
    }

    /// Records `invoke` (an invocation, with anything else it carries) as
    /// a send's, and returns it.
    pub(super) fn invoke(
        &self,
        mut invoke: Event,
        client: u32,
        topic: &str,
        partition: u32,
        value: &str,
        idempotent: bool,
    ) -> Event {
        invoke.op = Some(self.op());
        invoke.client = Some(client);
        invoke.f = Some(Function::Send);
        invoke.topic = Some(topic.to_string());
        invoke.partition = Some(partition);
        invoke.value = Some(value.to_string());
        invoke.idempotent = idempotent;
        self.record(invoke.clone());
        invoke
    }

    /// Records what one poll of `client` read (`final_read`: of the final
    /// full read).
    pub(super) fn poll(&self, client: u32, reads: Vec<Read>, final_read: bool) {
        let mut poll = self.event(EventType::Ok);
        poll.op = Some(self.op());
        poll.client = Some(client);
        poll.f = Some(Function::Poll);
        poll.final_read = final_read;
        poll.reads = reads;
        self.record(poll);
    }

    /// Records that `client` was given partitions anew.
    pub(super) fn assigned(&self, client: u32) {
        let mut assign = self.event(EventType::Ok);
        assign.op = Some(self.op());
        assign.client = Some(client);
        assign.f = Some(Function::Assign);
        self.record(assign);
    }
}

/// Sends on schedule: one every `interval`, each waiting for its time.
pub(super) struct Pacer {
    next: Instant,
    interval: Duration,
}

impl Pacer {
    pub(super) fn new(interval: Duration) -> Pacer {
        Pacer {
            next: Instant::now(),
            interval,
        }
    }

    /// Waits for the next send's time.
    pub(super) fn wait(&mut self) {
        let now = Instant::now();
        if self.next > now {
            std::thread::sleep(self.next - now);
        }
        self.next += self.interval;
    }
}

/// A small seeded generator (SplitMix64): the fault schedule and targets.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The run's nodes, stopped when dropped.
struct Nodes {
    /// With `{ip}`, `{ipM}` and `{disk}` given their values.
    specs: Vec<NodeSpec>,
    /// Each node's network namespace, with network faults.
    namespaces: Option<Vec<String>>,
    driver: ClientDriver,
    dir: PathBuf,
    children: Vec<Option<Child>>,
}

impl Nodes {
    fn start(&mut self, index: usize) -> Result<(), BenchError> {
        let spec = &self.specs[index];
        let command = spec.start.clone();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("node-{index}.log")))
            .map_err(|source| BenchError::Write {
                path: self.dir.clone(),
                source,
            })?;
        let child = self
            .shell(index)
            .arg("-c")
            .arg(format!("exec {command}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|source| BenchError::Write {
                path: self.dir.clone(),
                source,
            })?)
            .stderr(log)
            .spawn()
            .map_err(|error| BenchError::Cluster(format!("node {index}: {command}: {error}")))?;
        self.children[index] = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = spec.client_addr(self.driver);
        while std::net::TcpStream::connect(addr).is_err() {
            if let Some(child) = self.children[index].as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(BenchError::Cluster(format!(
                        "node {index} exited while starting ({status}); see node-{index}.log"
                    )));
                }
            }
            if Instant::now() > deadline {
                return Err(BenchError::Cluster(format!(
                    "node {index} does not serve at {addr} after {START_TIMEOUT:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// A shell in node `index`'s network namespace (if it has one), for
    /// its start and stop commands.
    fn shell(&self, index: usize) -> Command {
        match &self.namespaces {
            Some(namespaces) => {
                let mut ip = Command::new("ip");
                ip.args(["netns", "exec", &namespaces[index], "sh"]);
                ip
            }
            None => Command::new("sh"),
        }
    }

    /// The node whose native or Kafka address is `addr`.
    fn index_of(&self, addr: &str) -> Option<usize> {
        self.specs.iter().position(|spec| {
            spec.native_addr.as_deref() == Some(addr) || spec.kafka_addr.as_deref() == Some(addr)
        })
    }

    fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.children[index].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn signal(&self, index: usize, signal: i32) {
        if let Some(child) = &self.children[index] {
            // SAFETY: a signal to a process this run started and has not
            // reaped.
            unsafe { libc::kill(child.id() as i32, signal) };
        }
    }

    /// SIGTERM, and the node's exit awaited (`kill -9` after
    /// [`STOP_TIMEOUT`]).
    fn stop(&mut self, index: usize) {
        if let Some(mut child) = self.children[index].take() {
            // SAFETY: a signal to a process this run started and has not
            // reaped, so that a paused node can stop.
            unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
            match &self.specs[index].stop {
                Some(stop) => {
                    let mut command = self.shell(index);
                    let _ = command.arg("-c").arg(stop).stdin(Stdio::null()).status();
                }
                // SAFETY: as above.
                None => unsafe {
                    libc::kill(child.id() as i32, libc::SIGTERM);
                },
            }
            let deadline = Instant::now() + STOP_TIMEOUT;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn stop_all(&mut self) {
        for index in 0..self.children.len() {
            self.signal(index, libc::SIGCONT);
        }
        for index in 0..self.children.len() {
            self.stop(index);
        }
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// A connection to any node that serves, tried in turn until `until`.
fn connect(addrs: &[String], until: Instant) -> Option<Connection> {
    loop {
        for addr in addrs {
            if let Ok(connection) = Connection::open(addr, REQUEST_TIMEOUT) {
                return Some(connection);
            }
        }
        if Instant::now() > until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asks the nodes in turn for where `topic`'s partitions live: the native
/// address of each partition's leader (`None` where it has none alive).
fn leaders(addrs: &[String], topic: &str) -> Option<Vec<Option<String>>> {
    for addr in addrs {
        let Ok(mut connection) = Connection::open(addr, METADATA_TIMEOUT) else {
            continue;
        };
        let request = MetadataRequest {
            topics: Some(vec![topic.to_string()]),
        };
        let Ok(response) = connection.call::<MetadataResponse>(ApiKey::Metadata, &request) else {
            continue;
        };
        let Some(info) = response
            .topics
            .iter()
            .find(|t| t.name == topic && t.error == ErrorCode::None)
        else {
            continue;
        };
        let address = |id: u32| {
            response
                .brokers
                .iter()
                .find(|broker| broker.id == id)
                .map(|broker| format!("{}:{}", broker.host, broker.port))
        };
        let count = info.partitions.iter().map(|p| p.partition + 1).max();
        let mut leaders = vec![None; count.unwrap_or(0) as usize];
        for partition in &info.partitions {
            leaders[partition.partition as usize] = address(partition.leader);
        }
        return Some(leaders);
    }
    None
}

/// A client's way to each partition's leader: where partitions live, as
/// the nodes last said, and one connection per node it used. What it
/// knows is dropped when a node refuses a partition or a connection
/// breaks, and asked again at the next request.
struct Router {
    addrs: Vec<String>,
    topic: String,
    leaders: Vec<Option<String>>,
    connections: HashMap<String, Connection>,
}

impl Router {
    fn new(addrs: &[String], topic: &str) -> Router {
        Router {
            addrs: addrs.to_vec(),
            topic: topic.to_string(),
            leaders: Vec::new(),
            connections: HashMap::new(),
        }
    }

    /// The leader of `partition` and a connection to it; `None` when no
    /// node says where it lives or the leader cannot be reached.
    fn leader(&mut self, partition: u32) -> Option<(String, &mut Connection)> {
        if self
            .leaders
            .get(partition as usize)
            .is_none_or(Option::is_none)
        {
            self.leaders = leaders(&self.addrs, &self.topic).unwrap_or_default();
        }
        let addr = self.leaders.get(partition as usize).cloned().flatten()?;
        if !self.connections.contains_key(&addr) {
            let Ok(connection) = Connection::open(&addr, REQUEST_TIMEOUT) else {
                // Gone, most likely: where partitions live is asked
                // again, so a leader elected meanwhile is found.
                self.leaders.clear();
                return None;
            };
            self.connections.insert(addr.clone(), connection);
        }
        let connection = self.connections.get_mut(&addr).expect("opened above");
        Some((addr, connection))
    }

    /// `addr`'s connection failed: it is closed, and where partitions
    /// live asked again.
    fn broken(&mut self, addr: &str) {
        self.connections.remove(addr);
        self.leaders.clear();
    }

    /// A node refused a partition as not its own: ask again where
    /// partitions live.
    fn moved(&mut self) {
        self.leaders.clear();
    }
}

/// Runs `workload` in `dir` (made if need be) with `seed`; writes the
/// workload, the seed, `history.jsonl` and the reports there.
pub fn run(workload_text: &str, dir: &Path, seed: u64) -> Result<Report, BenchError> {
    let workload = ChaosWorkload::parse(workload_text)?;
    std::fs::create_dir_all(dir).map_err(|source| BenchError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| BenchError::Write { path, source })
    };
    write("workload.toml", workload_text)?;
    write("seed", &format!("{seed}\n"))?;
    eprintln!("chaos run in {}, seed {seed}", dir.display());

    let driver = workload.check.driver;
    // Made before the nodes and so dropped after them: the nodes stop
    // before their disks are unmounted and their namespaces removed.
    let kinds = workload.faults.kinds()?;
    let count = workload.nodes.len();
    let mut environment = Environment {
        dir: dir.to_path_buf(),
        disks: match kinds.contains(&FaultKind::DiskFull) {
            true => Some(Disks::mount(dir, count, workload.faults.disk_mb)?),
            false => None,
        },
        network: match kinds.iter().any(|kind| kind.cuts_network()) {
            true => Some(Network::build(count)?),
            false => None,
        },
    };
    let specs: Vec<NodeSpec> = (0..count)
        .map(|index| environment.expand(&workload.nodes[index], index))
        .collect();
    let mut nodes = Nodes {
        specs: specs.clone(),
        namespaces: environment
            .network
            .as_ref()
            .map(|network| (0..count).map(|index| network.namespace(index)).collect()),
        driver,
        dir: dir.to_path_buf(),
        children: specs.iter().map(|_| None).collect(),
    };
    for index in 0..count {
        nodes.start(index)?;
    }
    let addrs: Vec<String> = specs
        .iter()
        .map(|node| node.client_addr(driver).to_string())
        .collect();
    let bootstrap = addrs.join(",");
    match driver {
        ClientDriver::Native => create_topic(&addrs, &workload.chaos)?,
        ClientDriver::Kafka => {
            kafka::create_topic(&bootstrap, addrs.len(), &workload.chaos)?;
            if workload.check.transform {
                let mut output = workload.chaos.clone();
                output.topic = kafka::output_topic(&output.topic);
                kafka::create_topic(&bootstrap, addrs.len(), &output)?;
            }
        }
    }

    let recorder = Arc::new(Recorder {
        started: Instant::now(),
        next_op: AtomicU64::new(1),
        events: Mutex::new(Vec::new()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let end = Instant::now() + Duration::from_secs(workload.chaos.duration_s);
    let clients = match driver {
        ClientDriver::Native => native_clients(&workload, &addrs, &recorder, &stop, end),
        ClientDriver::Kafka => kafka_clients(&workload, &bootstrap, &recorder, &stop, end),
    };

    // The nemesis, on this thread.
    let outcome = nemesis(
        &workload,
        &mut nodes,
        &mut environment,
        &addrs,
        &recorder,
        seed,
        end,
    );
    stop.store(true, Ordering::Relaxed);
    let mut failed = Ok(());
    for client in clients {
        match client.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => failed = Err(error),
            Err(_) => failed = Err(BenchError::Worker("a client thread panicked".into())),
        }
    }
    outcome?;
    failed?;
    match driver {
        ClientDriver::Native => final_read(&workload.chaos, &addrs, &recorder)?,
        ClientDriver::Kafka => {
            let chaos = &workload.chaos;
            kafka::final_read(
                &bootstrap,
                &chaos.topic,
                chaos.partitions,
                &recorder,
                FINAL_READ_TIMEOUT,
            )?;
            if workload.check.transform {
                kafka::final_read(
                    &bootstrap,
                    &kafka::output_topic(&chaos.topic),
                    chaos.partitions,
                    &recorder,
                    FINAL_READ_TIMEOUT,
                )?;
            }
        }
    }
    nodes.stop_all();

    let events = std::mem::take(&mut *recorder.events.lock().expect("not poisoned"));
    let path = dir.join("history.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).map_err(|source| {
        BenchError::Write {
            path: path.clone(),
            source,
        }
    })?);
    for event in &events {
        history::write(&mut out, event).map_err(|source| BenchError::Write {
            path: path.clone(),
            source,
        })?;
    }
    out.flush()
        .map_err(|source| BenchError::Write { path, source })?;
    super::write_reports(dir, &events)
}

type Clients = Vec<std::thread::JoinHandle<Result<(), BenchError>>>;

/// The native driver's clients: a thread per producer and partition, and
/// per partition for the consumer, so that a partition whose leader is
/// down or paused holds up its own clients only, as with a Kafka client's
/// per-partition batches.
fn native_clients(
    workload: &ChaosWorkload,
    addrs: &[String],
    recorder: &Arc<Recorder>,
    stop: &Arc<AtomicBool>,
    end: Instant,
) -> Clients {
    let partitions = workload.chaos.partitions;
    let acks = match workload.check.acks.as_str() {
        "1" => Acks::Leader,
        _ => Acks::All,
    };
    let mut clients: Clients = Vec::new();
    for writer in 0..workload.chaos.producers {
        for partition in 0..partitions {
            let (recorder, stop, addrs, chaos) = (
                recorder.clone(),
                stop.clone(),
                addrs.to_vec(),
                workload.chaos.clone(),
            );
            let client = writer * partitions + partition + 1;
            clients.push(std::thread::spawn(move || {
                produce(
                    client, partition, acks, &chaos, &addrs, &recorder, &stop, end,
                );
                Ok(())
            }));
        }
    }
    for partition in 0..partitions {
        let (recorder, stop, addrs, chaos) = (
            recorder.clone(),
            stop.clone(),
            addrs.to_vec(),
            workload.chaos.clone(),
        );
        clients.push(std::thread::spawn(move || {
            consume(partition, &chaos, &addrs, &recorder, &stop);
            Ok(())
        }));
    }
    clients
}

/// The Kafka driver's clients: a librdkafka producer per producer, each
/// writing every partition in turn, and the consumers.
fn kafka_clients(
    workload: &ChaosWorkload,
    bootstrap: &str,
    recorder: &Arc<Recorder>,
    stop: &Arc<AtomicBool>,
    end: Instant,
) -> Clients {
    let mut clients: Clients = Vec::new();
    let mut spawn = |client: u32, producer: bool| {
        let (recorder, stop, bootstrap, chaos, check) = (
            recorder.clone(),
            stop.clone(),
            bootstrap.to_string(),
            workload.chaos.clone(),
            workload.check.clone(),
        );
        clients.push(std::thread::spawn(move || {
            if producer {
                kafka::produce(client, &bootstrap, &chaos, &check, recorder, &stop, end)
            } else {
                kafka::consume(client, &bootstrap, &chaos, &check, recorder, &stop)
            }
        }));
    };
    for writer in 0..workload.chaos.producers {
        spawn(writer + 1, true);
    }
    for consumer in 0..workload.check.consumers {
        spawn(1000 + consumer, false);
    }
    if workload.check.transform {
        for transformer in 0..workload.check.transformers {
            let (recorder, bootstrap, chaos) = (
                recorder.clone(),
                bootstrap.to_string(),
                workload.chaos.clone(),
            );
            clients.push(std::thread::spawn(move || {
                kafka::transform(500 + transformer, &bootstrap, &chaos, recorder, end)
            }));
        }
    }
    clients
}

/// Injects the workload's faults until `end`, each one recorded as it
/// starts and as it heals.
fn nemesis(
    workload: &ChaosWorkload,
    nodes: &mut Nodes,
    environment: &mut Environment,
    addrs: &[String],
    recorder: &Recorder,
    seed: u64,
    end: Instant,
) -> Result<(), BenchError> {
    let faults = &workload.faults;
    let kinds = faults.kinds()?;
    let target = faults.target(workload.chaos.partitions)?;
    let mut random = Seeded(seed);
    let mut next_node = 0;
    let native_addrs: Vec<String> = nodes
        .specs
        .iter()
        .filter_map(|node| node.native_addr.clone())
        .collect();
    if faults.interval_ms == 0 || kinds.is_empty() {
        std::thread::sleep(end.saturating_duration_since(Instant::now()));
        return Ok(());
    }
    loop {
        let wait = faults.interval_ms / 2 + random.next() % (faults.interval_ms + 1);
        std::thread::sleep(
            Duration::from_millis(wait).min(end.saturating_duration_since(Instant::now())),
        );
        if Instant::now() >= end {
            return Ok(());
        }
        let kind = kinds[(random.next() % kinds.len() as u64) as usize];
        // Drawn whatever the target, so that a schedule is the seed's.
        let drawn = (random.next() % nodes.specs.len() as u64) as usize;
        let (index, role) = match target {
            Target::Random => (drawn, String::new()),
            Target::Next => {
                let index = next_node;
                next_node = (next_node + 1) % nodes.specs.len();
                (index, String::new())
            }
            Target::Controller => match controller(&native_addrs) {
                Some(addr) => (
                    nodes.index_of(&addr).unwrap_or(drawn),
                    " (controller)".into(),
                ),
                None => (drawn, " (controller unknown)".into()),
            },
            Target::Leader(partition) => {
                let topic = &workload.chaos.topic;
                let leaders = match workload.check.driver {
                    ClientDriver::Native => leaders(addrs, topic),
                    ClientDriver::Kafka => kafka::leaders(&addrs.join(","), topic),
                };
                let leader =
                    leaders.and_then(|leaders| leaders.get(partition as usize).cloned().flatten());
                match leader.and_then(|addr| nodes.index_of(&addr)) {
                    Some(index) => (index, format!(" (leader of partition {partition})")),
                    None => (
                        drawn,
                        format!(" (partition {partition} has no known leader)"),
                    ),
                }
            }
        };
        let mut fault = recorder.event(EventType::Fault);
        fault.fault = Some(kind.name().into());
        fault.target = Some(format!("node {index}{role}"));
        fault.phase = Some("start".into());
        recorder.record(fault.clone());
        let down = Duration::from_millis(faults.down_ms);
        match kind {
            FaultKind::Kill => {
                nodes.kill(index);
                std::thread::sleep(down);
                nodes.start(index)?;
            }
            FaultKind::Pause => {
                nodes.signal(index, libc::SIGSTOP);
                std::thread::sleep(down);
                nodes.signal(index, libc::SIGCONT);
            }
            FaultKind::Restart => {
                nodes.stop(index);
                std::thread::sleep(down);
                nodes.start(index)?;
            }
            FaultKind::DiskFull => {
                let disks = environment.disks.as_ref().expect("mounted for disk-full");
                disks.fill(index)?;
                std::thread::sleep(down);
                disks.free(index)?;
            }
            FaultKind::Partition | FaultKind::Split => {
                let count = nodes.specs.len();
                let side: Vec<usize> = match kind {
                    FaultKind::Partition => vec![index],
                    _ => (0..((count - 1) / 2).max(1))
                        .map(|step| (index + step) % count)
                        .collect(),
                };
                let network = environment.network.as_mut().expect("built for partitions");
                network.partition(&side)?;
                std::thread::sleep(down);
                network.heal()?;
            }
        }
        let mut healed = recorder.event(EventType::Fault);
        healed.fault = fault.fault;
        healed.target = fault.target;
        healed.phase = Some("end".into());
        recorder.record(healed);
    }
}

/// What the run built around its nodes to break it.
struct Environment {
    /// The run's directory.
    dir: PathBuf,
    disks: Option<Disks>,
    network: Option<Network>,
}

impl Environment {
    /// `spec` of node `index` with `{dir}`, `{disk}`, `{ip}` and `{ipM}`
    /// given their values.
    fn expand(&self, spec: &NodeSpec, index: usize) -> NodeSpec {
        let expand = |text: &str| {
            let mut text = text.replace("{dir}", &self.dir.display().to_string());
            if let Some(disks) = &self.disks {
                text = text.replace("{disk}", &disks.path(index).display().to_string());
            }
            if let Some(network) = &self.network {
                text = network.expand(&text, index);
            }
            text
        };
        NodeSpec {
            start: expand(&spec.start),
            stop: spec.stop.as_deref().map(expand),
            native_addr: spec.native_addr.as_deref().map(expand),
            kafka_addr: spec.kafka_addr.as_deref().map(expand),
        }
    }
}

/// The controller quorum leader's native address, as the first node that
/// answers says.
fn controller(addrs: &[String]) -> Option<String> {
    addrs.iter().find_map(|addr| {
        let mut connection = Connection::open(addr, METADATA_TIMEOUT).ok()?;
        let cluster: DescribeClusterResponse = connection
            .call(ApiKey::DescribeCluster, &DescribeClusterRequest {})
            .ok()?;
        let leader = cluster.controller?;
        cluster
            .nodes
            .iter()
            .find(|node| node.id == leader && !node.native_addr.is_empty())
            .map(|node| node.native_addr.clone())
    })
}

/// Waits until some node says every one of the run's nodes is a
/// registered, alive broker, so that the topic is spread over them all
/// (a single node serves without registering).
fn await_brokers(addrs: &[String]) -> Result<(), BenchError> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut seen = 0;
    while Instant::now() < deadline {
        for addr in addrs {
            let Ok(mut connection) = Connection::open(addr, METADATA_TIMEOUT) else {
                continue;
            };
            let Ok(cluster) = connection.call::<DescribeClusterResponse>(
                ApiKey::DescribeCluster,
                &DescribeClusterRequest {},
            ) else {
                continue;
            };
            seen = cluster
                .nodes
                .iter()
                .filter(|node| node.alive && (node.registered || addrs.len() == 1))
                .count();
            if seen >= addrs.len() {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(BenchError::Cluster(format!(
        "{seen} of the {} nodes registered as brokers after {START_TIMEOUT:?}",
        addrs.len()
    )))
}

fn create_topic(addrs: &[String], chaos: &ChaosSection) -> Result<(), BenchError> {
    await_brokers(addrs)?;
    let mut connection = connect(addrs, Instant::now() + START_TIMEOUT)
        .ok_or_else(|| BenchError::Cluster("no node serves".into()))?;
    let request = CreateTopicsRequest {
        topics: vec![NewTopic {
            name: chaos.topic.clone(),
            partitions: chaos.partitions,
            configs: chaos.configs.clone(),
            replication_factor: chaos.replication_factor,
            assignment: Vec::new(),
        }],
    };
    let results: TopicResults = connection
        .call(ApiKey::CreateTopics, &request)
        .map_err(|error| BenchError::Cluster(format!("creating {}: {error}", chaos.topic)))?;
    match results.topics.first() {
        Some(result) if result.error == ErrorCode::None => Ok(()),
        Some(result) => Err(BenchError::Cluster(format!(
            "creating {}: {}: {}",
            chaos.topic, result.error, result.message
        ))),
        None => Err(BenchError::Cluster(
            "no answer to the topic's creation".into(),
        )),
    }
}

/// One producer of one partition: sends `w{client}-{n}` to the
/// partition's leader on schedule, one at a time, until `end`.
#[allow(clippy::too_many_arguments)]
fn produce(
    client: u32,
    partition: u32,
    acks: Acks,
    chaos: &ChaosSection,
    addrs: &[String],
    recorder: &Recorder,
    stop: &AtomicBool,
    end: Instant,
) {
    let senders = f64::from(chaos.producers) * f64::from(chaos.partitions);
    let mut pacer = Pacer::new(Duration::from_secs_f64(senders / f64::from(chaos.rate)));
    let mut router = Router::new(addrs, &chaos.topic);
    let mut sequence: u64 = 0;
    while !stop.load(Ordering::Relaxed) && Instant::now() < end {
        pacer.wait();
        let Some((addr, connection)) = router.leader(partition) else {
            // No leader to send to: this send is not made (nothing was
            // invoked), and the next one tried on schedule.
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let value = format!("w{client}-{sequence}");
        sequence += 1;
        let invoke = recorder.invoke_send(client, &chaos.topic, partition, &value, false);
        let mut builder = BatchBuilder::default();
        builder.push(0, None, value.as_bytes(), &[]);
        let request = ProduceRequest {
            acks,
            timeout_ms: REQUEST_TIMEOUT.as_millis() as u32,
            topics: vec![ProduceTopic {
                name: chaos.topic.clone(),
                partitions: vec![ProducePartition {
                    partition,
                    batch: builder.finish().into_bytes(),
                }],
            }],
        };
        let answer: Result<ProduceResponse, BlockingError> =
            connection.call(ApiKey::Produce, &request);
        let mut done = invoke;
        let answered = recorder.event(EventType::Info);
        done.mono_ns = answered.mono_ns;
        done.wall_ms = answered.wall_ms;
        let part = answer.as_ref().ok().and_then(|response| {
            response
                .topics
                .first()
                .and_then(|topic| topic.partitions.first())
                .cloned()
        });
        match (answer, part) {
            (Ok(_), Some(part)) if part.error == ErrorCode::None => {
                done.kind = EventType::Ok;
                done.offset = Some(part.base_offset);
            }
            (Ok(_), Some(part)) => {
                // The broker answered: nothing was stored.
                done.kind = EventType::Fail;
                done.error = Some(format!("{}: {}", part.error, part.message));
                if part.error == ErrorCode::NotLeader {
                    router.moved();
                }
            }
            (Ok(_), None) => {
                done.kind = EventType::Info;
                done.error = Some("an answer without the partition".into());
            }
            (Err(error), _) => {
                done.kind = match &error {
                    BlockingError::Broker { .. } => EventType::Fail,
                    _ => EventType::Info,
                };
                done.error = Some(error.to_string());
                router.broken(&addr);
            }
        }
        recorder.record(done);
    }
}

/// The consumer of one partition: reads from its leader, from where it
/// last read, until told to stop; each fetch that returns records is one
/// poll.
fn consume(
    partition: u32,
    chaos: &ChaosSection,
    addrs: &[String],
    recorder: &Recorder,
    stop: &AtomicBool,
) {
    let client = 1000 + partition;
    let mut position = 0u64;
    let mut router = Router::new(addrs, &chaos.topic);
    while !stop.load(Ordering::Relaxed) {
        let Some((addr, connection)) = router.leader(partition) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        match read_some(connection, chaos, partition, position, 100) {
            Ok(reads) if reads.is_empty() => {}
            Ok(reads) => {
                position = reads.last().expect("some").offset + 1;
                recorder.poll(client, reads, false);
            }
            Err(BlockingError::Broker { .. }) => {
                router.moved();
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(_) => router.broken(&addr),
        }
    }
}

/// Once the faults have healed: every partition read from its start to
/// its end, from its leader, as the final read.
fn final_read(
    chaos: &ChaosSection,
    addrs: &[String],
    recorder: &Recorder,
) -> Result<(), BenchError> {
    let deadline = Instant::now() + FINAL_READ_TIMEOUT;
    let mut router = Router::new(addrs, &chaos.topic);
    for partition in 0..chaos.partitions {
        let mut at = 0;
        loop {
            let answer = match router.leader(partition) {
                Some((addr, connection)) => read_some(connection, chaos, partition, at, 0)
                    .map_err(|error| (addr, error.to_string())),
                None => Err((String::new(), "no leader reached".to_string())),
            };
            match answer {
                Ok(reads) if reads.is_empty() => break,
                Ok(reads) => {
                    at = reads.last().expect("some").offset + 1;
                    recorder.poll(FINAL_READER, reads, true);
                }
                Err((addr, error)) if Instant::now() < deadline => {
                    eprintln!("final read of partition {partition}: {error}; trying again");
                    router.broken(&addr);
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err((_, error)) => {
                    return Err(BenchError::Cluster(format!(
                        "final read of partition {partition}: {error}"
                    )))
                }
            }
        }
    }
    Ok(())
}

/// One fetch of `partition` from offset `at`: the records it returned.
fn read_some(
    connection: &mut Connection,
    chaos: &ChaosSection,
    partition: u32,
    at: u64,
    max_wait_ms: u32,
) -> Result<Vec<Read>, BlockingError> {
    let request = FetchRequest {
        max_wait_ms,
        min_bytes: 1,
        max_bytes: 1 << 20,
        topics: vec![FetchTopic {
            name: chaos.topic.clone(),
            partitions: vec![FetchPartition {
                partition,
                offset: at,
                max_bytes: 1 << 20,
            }],
        }],
    };
    let response: FetchResponse = connection.call(ApiKey::Fetch, &request)?;
    let Some(part) = response.topics.first().and_then(|t| t.partitions.first()) else {
        return Ok(Vec::new());
    };
    if part.error != ErrorCode::None {
        return Err(BlockingError::Broker {
            code: part.error,
            message: part.message.clone(),
        });
    }
    let mut rest: Bytes = part.batch_bytes();
    let mut reads = Vec::new();
    while !rest.is_empty() {
        let length = BatchHeader::parse(&rest)
            .map_err(|error| BlockingError::Decode(error.to_string()))?
            .batch_bytes as usize;
        if length == 0 || length > rest.len() {
            return Err(BlockingError::Decode(format!("a batch of {length} bytes")));
        }
        let batch = Batch::validate(rest.split_to(length))
            .map_err(|error| BlockingError::Decode(error.to_string()))?;
        let records = batch
            .records()
            .map_err(|error| BlockingError::Decode(error.to_string()))?;
        for (index, record) in records.iter().enumerate() {
            let offset = batch.base_offset().0 + index as u64;
            if offset >= at {
                reads.push(Read {
                    topic: chaos.topic.clone(),
                    partition,
                    offset,
                    value: String::from_utf8_lossy(record.value()).into_owned(),
                });
            }
        }
    }
    Ok(reads)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[chaos]
topic = "t"
partitions = 2
producers = 1
rate = 10
duration_s = 1

[[nodes]]
start = "true"
native_addr = "127.0.0.1:1"
"#;

    #[test]
    fn workloads_are_checked_before_anything_starts() {
        let workload = ChaosWorkload::parse(GOOD).unwrap();
        assert_eq!(workload.faults.interval_ms, 0, "no faults unless asked");
        let faults = |kinds: &str, target: &str| {
            format!("{GOOD}\n[faults]\ninterval_ms = 1\ndown_ms = 1\nkinds = {kinds}\n{target}")
        };
        let all = faults(r#"["kill", "pause", "restart"]"#, "target = \"next\"\n");
        assert!(ChaosWorkload::parse(&all).is_ok());
        let error = ChaosWorkload::parse(&faults(r#"["flood"]"#, ""))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("\"flood\"") && error.contains("split"),
            "{error}"
        );
        // A partition needs nodes in namespaces of their own, a full disk
        // a data directory on the filesystem it fills.
        let error = ChaosWorkload::parse(&faults(r#"["partition"]"#, ""))
            .unwrap_err()
            .to_string();
        assert!(error.contains("two nodes"), "{error}");
        let two = GOOD.replace(
            "[[nodes]]",
            "[[nodes]]\nstart = \"true\"\nnative_addr = \"127.0.0.1:2\"\n\n[[nodes]]",
        );
        let partition =
            format!("{two}\n[faults]\ninterval_ms = 1\ndown_ms = 1\nkinds = [\"partition\"]\n");
        let error = ChaosWorkload::parse(&partition).unwrap_err().to_string();
        assert!(error.contains("names no {ip}"), "{error}");
        let partition = partition
            .replace("start = \"true\"", "start = \"serve {ip}\"")
            .replace("127.0.0.1:", "{ip}:");
        assert!(ChaosWorkload::parse(&partition).is_ok());
        let error = ChaosWorkload::parse(&faults(r#"["disk-full"]"#, ""))
            .unwrap_err()
            .to_string();
        assert!(error.contains("{disk}"), "{error}");
        let disk =
            faults(r#"["disk-full"]"#, "").replace("start = \"true\"", "start = \"serve {disk}\"");
        assert!(ChaosWorkload::parse(&disk).is_ok());
        let error = ChaosWorkload::parse(&faults(
            r#"["kill"]"#,
            "target = \"leader\"\npartition = 2\n",
        ))
        .unwrap_err()
        .to_string();
        assert!(error.contains("partition 2 of a topic of 2"), "{error}");
        let check =
            |section: &str| GOOD.replace("[[nodes]]", &format!("[check]\n{section}\n[[nodes]]"));
        let error = ChaosWorkload::parse(&check("driver = \"kafka\""))
            .unwrap_err()
            .to_string();
        assert!(error.contains("node 0 has no kafka_addr"), "{error}");
        let error = ChaosWorkload::parse(&check("idempotent = true"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("driver = \"kafka\""), "{error}");
        let error = ChaosWorkload::parse(&check("acks = \"0\""))
            .unwrap_err()
            .to_string();
        assert!(error.contains("acks"), "{error}");
        let kafka = check("driver = \"kafka\"\nacks = \"1\"\nconsumer = \"group\"")
            .replace("native_addr", "kafka_addr");
        let workload = ChaosWorkload::parse(&kafka).unwrap();
        assert_eq!(workload.check.consumer, ConsumerMode::Group);
        let error = ChaosWorkload::parse(&faults(r#"["kill"]"#, "target = \"some\"\n"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("\"some\""), "{error}");
        let no_rate = GOOD.replace("rate = 10", "rate = 0");
        assert!(ChaosWorkload::parse(&no_rate).is_err());
        let no_nodes = GOOD[..GOOD.find("[[nodes]]").unwrap()].to_string();
        assert!(ChaosWorkload::parse(&no_nodes).is_err());
        assert!(ChaosWorkload::parse("[chaos]\ntopc = 1\n").is_err());
    }

    #[test]
    fn the_schedule_is_the_seeds() {
        let draw = |seed| {
            let mut random = Seeded(seed);
            (0..4).map(|_| random.next()).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }
}
