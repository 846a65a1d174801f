//! What the black-box tests share: the built `sluice` binary started as a
//! broker on a free port, and the native protocol over blocking sockets.

#![allow(dead_code)]

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use bytes::Bytes;
use sluice_net::native::{
    blocking::{BlockingError, Connection},
    messages::*,
    ErrorCode,
};
use sluice_storage::batch::{Batch, BatchBuilder, BatchHeader};

pub const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");

pub fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// A `sluice serve` process on a free port.
pub struct Broker {
    pub child: Option<Child>,
    pub addr: String,
    /// The Kafka protocol listener.
    pub kafka_addr: String,
    pub dir: PathBuf,
    pub cores: usize,
    pub env: Vec<(String, String)>,
    /// Where the process runs; `dir` may be relative to it.
    pub working_dir: Option<PathBuf>,
}

impl Broker {
    pub fn start(dir: &Path, cores: usize) -> Broker {
        Broker::start_with(dir, cores, &[])
    }

    pub fn start_with(dir: &Path, cores: usize, env: &[(&str, &str)]) -> Broker {
        let mut broker = Broker {
            child: None,
            addr: free_addr(),
            kafka_addr: free_addr(),
            dir: dir.to_path_buf(),
            cores,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            working_dir: None,
        };
        broker.spawn();
        broker
    }

    /// A broker run from `working_dir` with a relative data directory.
    pub fn start_relative(working_dir: &Path, data_dir: &str, cores: usize) -> Broker {
        let mut broker = Broker {
            child: None,
            addr: free_addr(),
            kafka_addr: free_addr(),
            dir: PathBuf::from(data_dir),
            cores,
            env: Vec::new(),
            working_dir: Some(working_dir.to_path_buf()),
        };
        broker.spawn();
        broker
    }

    pub fn spawn(&mut self) {
        let mut command = Command::new(SLUICE);
        if let Some(working_dir) = &self.working_dir {
            command.current_dir(working_dir);
        }
        let child = command
            .args(["serve", "--data-dir"])
            .arg(&self.dir)
            .args([
                "--native-addr",
                &self.addr,
                "--kafka-addr",
                &self.kafka_addr,
                "--cores",
                &self.cores.to_string(),
            ])
            // No admin listener unless a test asks for one: every broker
            // of a test run would want the same default port.
            .env("SLUICE_ADMIN_ADDR", "off")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .spawn()
            .expect("sluice serve starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut conn) = Connection::open(&self.addr, Duration::from_secs(5)) {
                let hello = ApiVersionsRequest {
                    client: "test".into(),
                };
                if conn
                    .call::<ApiVersionsResponse>(ApiKey::ApiVersions, &hello)
                    .is_ok()
                {
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("sluice serve exited while starting: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "sluice serve did not start listening"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no chance to flush or close anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM and wait for the graceful shutdown.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let status = child.wait().unwrap();
            assert!(
                status.success(),
                "sluice serve exited with {status} on SIGTERM"
            );
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn restart_after_kill9(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn connect(&self) -> Connection {
        Connection::open(&self.addr, Duration::from_secs(30)).unwrap()
    }

    /// Runs a `sluice` client command against this broker.
    pub fn cli(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut child = Command::new(SLUICE)
            .args(args)
            .args(["--brokers", &self.addr])
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            let input = input.to_vec();
            std::thread::spawn(move || {
                let _ = pipe.write_all(&input);
            });
        }
        child.wait_with_output().unwrap()
    }

    /// Runs a `sluice` client command that must succeed; its standard
    /// output.
    pub fn cli_ok(&self, args: &[&str], stdin: Option<&[u8]>) -> String {
        let output = self.cli(args, stdin);
        assert!(
            output.status.success(),
            "sluice {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn create_topic(conn: &mut Connection, name: &str, partitions: u32) {
    let request = CreateTopicsRequest {
        topics: vec![NewTopic {
            name: name.into(),
            partitions,
            configs: vec![],
        }],
    };
    let created: TopicResults = conn.call(ApiKey::CreateTopics, &request).unwrap();
    assert_eq!(created.topics[0].error, ErrorCode::None, "{created:?}");
}

pub fn batch_of(values: &[Vec<u8>]) -> Batch {
    let mut builder = BatchBuilder::default();
    for value in values {
        builder.push(1_700_000_000_000, None, value, &[]);
    }
    builder.finish()
}

pub fn produce(
    conn: &mut Connection,
    topic: &str,
    partition: u32,
    batch: Bytes,
) -> Result<ProducePartitionResponse, BlockingError> {
    let request = ProduceRequest {
        acks: Acks::All,
        timeout_ms: 30_000,
        topics: vec![ProduceTopic {
            name: topic.into(),
            partitions: vec![ProducePartition { partition, batch }],
        }],
    };
    let response: ProduceResponse = conn.call(ApiKey::Produce, &request)?;
    Ok(response.topics[0].partitions[0].clone())
}

pub fn fetch(
    conn: &mut Connection,
    topic: &str,
    partition: u32,
    offset: u64,
    max_wait_ms: u32,
) -> Result<FetchPartitionResponse, BlockingError> {
    let request = FetchRequest {
        max_wait_ms,
        min_bytes: 1,
        max_bytes: 4 << 20,
        topics: vec![FetchTopic {
            name: topic.into(),
            partitions: vec![FetchPartition {
                partition,
                offset,
                max_bytes: 4 << 20,
            }],
        }],
    };
    let response: FetchResponse = conn.call(ApiKey::Fetch, &request)?;
    Ok(response.topics[0].partitions[0].clone())
}

/// Splits a fetch response's bytes into batches, each validated.
pub fn batches(bytes: &Bytes) -> Vec<Batch> {
    let mut out = Vec::new();
    let mut rest = bytes.clone();
    while !rest.is_empty() {
        let length = BatchHeader::parse(&rest).unwrap().batch_bytes as usize;
        out.push(Batch::validate(rest.split_to(length)).unwrap());
    }
    out
}

/// Every record of a partition from `from` to its end: (offset, value).
pub fn read_partition(
    conn: &mut Connection,
    topic: &str,
    partition: u32,
    from: u64,
) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = from;
    loop {
        let fetched = fetch(conn, topic, partition, offset, 0).unwrap();
        assert_eq!(fetched.error, ErrorCode::None, "{}", fetched.message);
        let batches = batches(&fetched.batch_bytes());
        if batches.is_empty() {
            return out;
        }
        for batch in batches {
            assert_eq!(
                batch.base_offset().0,
                out.last().map_or(batch.base_offset().0, |(o, _)| o + 1)
            );
            for (index, record) in batch.records().unwrap().iter().enumerate() {
                let at = batch.base_offset().0 + index as u64;
                if at >= offset {
                    out.push((at, record.value().to_vec()));
                }
            }
            offset = batch.last_offset().0 + 1;
        }
    }
}

pub fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}
