//! A chaos run: a Sluice cluster (or one node) started from the commands
//! a workload gives, producers and a consumer recording every operation
//! as the history ([`super::history`]) while a nemesis kills nodes with
//! `kill -9` and starts them again, then a final full read once the
//! faults have healed, and the checker's reports. Everything it started
//! is stopped at the end, whatever happens.
//!
//! The clients speak Sluice's native protocol, one blocking connection a
//! thread (opened again after a failure), so a client's view is exactly
//! its requests and answers: a send is `ok` with the offset the broker
//! acknowledged, `fail` when the broker refused it, `info` (unknown) when
//! the connection broke before the answer.
//!
//! ```toml
//! [chaos]
//! topic = "chaos"
//! partitions = 4
//! producers = 2
//! rate = 400            # sends per second, all producers together
//! duration_s = 15
//!
//! [[nodes]]             # `{dir}`: the run's directory
//! start = "sluice serve --data-dir {dir}/node-0 --native-addr 127.0.0.1:29192 --kafka-addr off --admin-addr off"
//! native_addr = "127.0.0.1:29192"
//!
//! [faults]
//! interval_ms = 4000    # a fault every this long (drawn 50% to 150%)
//! down_ms = 300         # how long a killed node stays down
//! kinds = ["kill"]
//! ```

use std::{
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
        Acks, ApiKey, CreateTopicsRequest, FetchPartition, FetchRequest, FetchResponse, FetchTopic,
        NewTopic, ProducePartition, ProduceRequest, ProduceResponse, ProduceTopic, TopicResults,
    },
    ErrorCode,
};
use sluice_storage::batch::{Batch, BatchBuilder, BatchHeader};

use super::{
    checker::{self, Report},
    history::{self, Event, EventType, Function, Read},
};
use crate::BenchError;

/// How long a client waits for one answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a node may take to serve after its start command.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the final read may take.
const FINAL_READ_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChaosWorkload {
    pub chaos: ChaosSection,
    pub nodes: Vec<NodeSpec>,
    #[serde(default)]
    pub faults: FaultSection,
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
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// A shell command that starts the node; `{dir}` is the run's
    /// directory.
    pub start: String,
    pub native_addr: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSection {
    /// 0: no faults.
    pub interval_ms: u64,
    pub down_ms: u64,
    pub kinds: Vec<String>,
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
        if let Some(kind) = workload.faults.kinds.iter().find(|kind| *kind != "kill") {
            return Err(BenchError::Workload(format!(
                "fault kind {kind:?}: this harness injects \"kill\" (kill -9 and restart)"
            )));
        }
        Ok(workload)
    }
}

/// A history being written, shared by the run's threads.
struct Recorder {
    started: Instant,
    next_op: AtomicU64,
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    fn op(&self) -> u64 {
        self.next_op.fetch_add(1, Ordering::Relaxed)
    }

    fn event(&self, kind: EventType) -> Event {
        let mut event = Event::new(kind, self.started.elapsed().as_nanos() as u64);
        event.wall_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |now| now.as_millis() as u64);
        event
    }

    fn record(&self, event: Event) {
        self.events.lock().expect("not poisoned").push(event);
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
    specs: Vec<NodeSpec>,
    dir: PathBuf,
    children: Vec<Option<Child>>,
}

impl Nodes {
    fn start(&mut self, index: usize) -> Result<(), BenchError> {
        let spec = &self.specs[index];
        let command = spec.start.replace("{dir}", &self.dir.display().to_string());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("node-{index}.log")))
            .map_err(|source| BenchError::Write {
                path: self.dir.clone(),
                source,
            })?;
        let child = Command::new("sh")
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
        while std::net::TcpStream::connect(&spec.native_addr).is_err() {
            if let Some(child) = self.children[index].as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(BenchError::Cluster(format!(
                        "node {index} exited while starting ({status}); see node-{index}.log"
                    )));
                }
            }
            if Instant::now() > deadline {
                return Err(BenchError::Cluster(format!(
                    "node {index} does not serve at {} after {START_TIMEOUT:?}",
                    spec.native_addr
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.children[index].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn stop_all(&mut self) {
        for child in self
            .children
            .iter_mut()
            .filter_map(Option::take)
            .collect::<Vec<_>>()
            .iter_mut()
        {
            // SAFETY: SIGTERM to a process this run started.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
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

    let mut nodes = Nodes {
        specs: workload.nodes.clone(),
        dir: dir.to_path_buf(),
        children: workload.nodes.iter().map(|_| None).collect(),
    };
    for index in 0..workload.nodes.len() {
        nodes.start(index)?;
    }
    let addrs: Vec<String> = workload
        .nodes
        .iter()
        .map(|n| n.native_addr.clone())
        .collect();
    create_topic(&addrs, &workload.chaos)?;

    let recorder = Arc::new(Recorder {
        started: Instant::now(),
        next_op: AtomicU64::new(1),
        events: Mutex::new(Vec::new()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let end = Instant::now() + Duration::from_secs(workload.chaos.duration_s);
    let producers: Vec<_> = (0..workload.chaos.producers)
        .map(|writer| {
            let (recorder, stop, addrs, chaos) = (
                recorder.clone(),
                stop.clone(),
                addrs.clone(),
                workload.chaos.clone(),
            );
            std::thread::spawn(move || produce(writer, &chaos, &addrs, &recorder, &stop, end))
        })
        .collect();
    let consumer = {
        let (recorder, stop, addrs, chaos) = (
            recorder.clone(),
            stop.clone(),
            addrs.clone(),
            workload.chaos.clone(),
        );
        std::thread::spawn(move || consume(&chaos, &addrs, &recorder, &stop))
    };

    // The nemesis, on this thread.
    let mut random = Seeded(seed);
    let faults = &workload.faults;
    while Instant::now() < end {
        if faults.interval_ms == 0 || faults.kinds.is_empty() {
            std::thread::sleep(end.saturating_duration_since(Instant::now()));
            break;
        }
        let wait = faults.interval_ms / 2 + random.next() % (faults.interval_ms + 1);
        std::thread::sleep(
            Duration::from_millis(wait).min(end.saturating_duration_since(Instant::now())),
        );
        if Instant::now() >= end {
            break;
        }
        let target = (random.next() % workload.nodes.len() as u64) as usize;
        let mut fault = recorder.event(EventType::Fault);
        fault.fault = Some("kill".into());
        fault.target = Some(format!("node {target}"));
        fault.phase = Some("start".into());
        recorder.record(fault.clone());
        nodes.kill(target);
        std::thread::sleep(Duration::from_millis(faults.down_ms));
        nodes.start(target)?;
        let mut healed = recorder.event(EventType::Fault);
        healed.fault = fault.fault;
        healed.target = fault.target;
        healed.phase = Some("end".into());
        recorder.record(healed);
    }
    stop.store(true, Ordering::Relaxed);
    for producer in producers {
        let _ = producer.join();
    }
    let _ = consumer.join();
    final_read(&workload.chaos, &addrs, &recorder)?;
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
    let report = checker::check(&events);
    write(
        "report.json",
        &(serde_json::to_string_pretty(&report).expect("a report serializes") + "\n"),
    )?;
    write("report.md", &report.markdown())?;
    Ok(report)
}

fn create_topic(addrs: &[String], chaos: &ChaosSection) -> Result<(), BenchError> {
    let mut connection = connect(addrs, Instant::now() + START_TIMEOUT)
        .ok_or_else(|| BenchError::Cluster("no node serves".into()))?;
    let request = CreateTopicsRequest {
        topics: vec![NewTopic {
            name: chaos.topic.clone(),
            partitions: chaos.partitions,
            configs: chaos.configs.clone(),
            replication_factor: 0,
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

/// One producer: sends `w{writer}-{n}` on schedule, each to the next
/// partition in turn, one at a time, until `end`.
fn produce(
    writer: u32,
    chaos: &ChaosSection,
    addrs: &[String],
    recorder: &Recorder,
    stop: &AtomicBool,
    end: Instant,
) {
    let client = writer + 1;
    let interval = Duration::from_secs_f64(f64::from(chaos.producers) / f64::from(chaos.rate));
    let mut connection: Option<Connection> = None;
    let mut next = Instant::now();
    let mut sequence: u64 = 0;
    while !stop.load(Ordering::Relaxed) && Instant::now() < end {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        next += interval;
        if connection.is_none() {
            connection = connect(addrs, Instant::now() + Duration::from_millis(200));
            if connection.is_none() {
                continue;
            }
        }
        let partition = (sequence % u64::from(chaos.partitions)) as u32;
        let value = format!("w{client}-{sequence}");
        sequence += 1;
        let op = recorder.op();
        let mut invoke = recorder.event(EventType::Invoke);
        invoke.op = Some(op);
        invoke.client = Some(client);
        invoke.f = Some(Function::Send);
        invoke.topic = Some(chaos.topic.clone());
        invoke.partition = Some(partition);
        invoke.value = Some(value.clone());
        recorder.record(invoke.clone());
        let mut builder = BatchBuilder::default();
        builder.push(0, None, value.as_bytes(), &[]);
        let request = ProduceRequest {
            acks: Acks::All,
            timeout_ms: REQUEST_TIMEOUT.as_millis() as u32,
            topics: vec![ProduceTopic {
                name: chaos.topic.clone(),
                partitions: vec![ProducePartition {
                    partition,
                    batch: builder.finish().into_bytes(),
                }],
            }],
        };
        let answer: Result<ProduceResponse, BlockingError> = connection
            .as_mut()
            .expect("connected above")
            .call(ApiKey::Produce, &request);
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
                connection = None;
            }
        }
        recorder.record(done);
    }
}

/// The consumer: reads every partition in turn from where it last read,
/// until told to stop; each fetch that returns records is one poll.
fn consume(chaos: &ChaosSection, addrs: &[String], recorder: &Recorder, stop: &AtomicBool) {
    let client = 1000;
    let mut positions = vec![0u64; chaos.partitions as usize];
    let mut connection: Option<Connection> = None;
    while !stop.load(Ordering::Relaxed) {
        if connection.is_none() {
            connection = connect(addrs, Instant::now() + Duration::from_millis(200));
            if connection.is_none() {
                continue;
            }
        }
        for partition in 0..chaos.partitions {
            let conn = connection.as_mut().expect("connected above");
            let at = positions[partition as usize];
            match read_some(conn, chaos, partition, at, 50) {
                Ok(reads) if reads.is_empty() => {}
                Ok(reads) => {
                    positions[partition as usize] = reads.last().expect("some").offset + 1;
                    let mut poll = recorder.event(EventType::Ok);
                    poll.op = Some(recorder.op());
                    poll.client = Some(client);
                    poll.f = Some(Function::Poll);
                    poll.reads = reads;
                    recorder.record(poll);
                }
                Err(_) => {
                    connection = None;
                    break;
                }
            }
        }
    }
}

/// Once the faults have healed: every partition read from its start to
/// its end, as the final read.
fn final_read(
    chaos: &ChaosSection,
    addrs: &[String],
    recorder: &Recorder,
) -> Result<(), BenchError> {
    let deadline = Instant::now() + FINAL_READ_TIMEOUT;
    for partition in 0..chaos.partitions {
        let mut at = 0;
        loop {
            let mut connection = connect(addrs, deadline)
                .ok_or_else(|| BenchError::Cluster("no node serves for the final read".into()))?;
            match read_some(&mut connection, chaos, partition, at, 0) {
                Ok(reads) if reads.is_empty() => break,
                Ok(reads) => {
                    at = reads.last().expect("some").offset + 1;
                    let mut poll = recorder.event(EventType::Ok);
                    poll.op = Some(recorder.op());
                    poll.client = Some(2000);
                    poll.f = Some(Function::Poll);
                    poll.final_read = true;
                    poll.reads = reads;
                    recorder.record(poll);
                }
                Err(error) if Instant::now() < deadline => {
                    eprintln!("final read of partition {partition}: {error}; trying again");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(error) => {
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
        let pause =
            format!("{GOOD}\n[faults]\ninterval_ms = 1\ndown_ms = 1\nkinds = [\"pause\"]\n");
        let error = ChaosWorkload::parse(&pause).unwrap_err().to_string();
        assert!(error.contains("\"pause\""), "{error}");
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
