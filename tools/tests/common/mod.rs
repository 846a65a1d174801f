//! What the black-box tests share: the built `sluice` binary started as a
//! broker on ports the kernel chooses (found in its ready file), and the
//! native protocol over blocking sockets. A cluster of several nodes is in
//! [`cluster`].

#![allow(dead_code)]

pub mod certs;
pub mod cluster;
pub mod nodes;

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    time::{Duration, Instant},
};

use bytes::Bytes;
use sluice_engine::ListenAddrs;
use sluice_net::native::{
    blocking::{BlockingError, Connection},
    messages::*,
    ErrorCode,
};
use sluice_storage::batch::{Batch, BatchBuilder, BatchHeader};

pub const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");

/// Every listener of a test's broker binds this: the kernel chooses the
/// port, and the broker says which in its ready file.
pub const ANY_PORT: &str = "127.0.0.1:0";

/// How long a broker may take to start serving.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A `sluice serve` process, its listeners on ports the kernel chose. A
/// restart (`spawn` again) gets new ports, and the addresses here are
/// those of the running process.
pub struct Broker {
    pub child: Option<Child>,
    /// The native protocol listener.
    pub addr: String,
    /// The Kafka protocol listener.
    pub kafka_addr: String,
    /// The admin HTTP listener, if `env` turns it on (`SLUICE_ADMIN_ADDR`;
    /// port 0 is fine).
    pub admin_addr: Option<String>,
    pub dir: PathBuf,
    pub cores: usize,
    pub env: Vec<(String, String)>,
    /// Where the process runs; `dir` may be relative to it.
    pub working_dir: Option<PathBuf>,
    /// Holds the ready file, outside the data directory.
    ready_dir: tempfile::TempDir,
}

impl Broker {
    pub fn start(dir: &Path, cores: usize) -> Broker {
        Broker::start_with(dir, cores, &[])
    }

    pub fn start_with(dir: &Path, cores: usize, env: &[(&str, &str)]) -> Broker {
        let mut broker = Broker::new(dir.to_path_buf(), cores, env, None);
        broker.spawn();
        broker
    }

    /// A broker run from `working_dir` with a relative data directory.
    pub fn start_relative(working_dir: &Path, data_dir: &str, cores: usize) -> Broker {
        let mut broker = Broker::new(
            PathBuf::from(data_dir),
            cores,
            &[],
            Some(working_dir.to_path_buf()),
        );
        broker.spawn();
        broker
    }

    fn new(
        dir: PathBuf,
        cores: usize,
        env: &[(&str, &str)],
        working_dir: Option<PathBuf>,
    ) -> Broker {
        Broker {
            child: None,
            addr: ANY_PORT.to_string(),
            kafka_addr: ANY_PORT.to_string(),
            admin_addr: None,
            dir,
            cores,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            working_dir,
            ready_dir: tempfile::tempdir().expect("a directory for the ready file"),
        }
    }

    fn ready_file(&self) -> PathBuf {
        self.ready_dir.path().join("ready")
    }

    /// Starts the process on new ports and waits until it serves.
    pub fn spawn(&mut self) {
        self.spawn_on(ANY_PORT.to_string(), ANY_PORT.to_string());
    }

    /// Starts the process on the ports the last one had, for a test whose
    /// client knows no other address (a Kafka producer across a restart).
    /// The only port that a test binds by number: between the old
    /// process's end and the new one's bind, another may take it.
    pub fn spawn_on_the_same_ports(&mut self) {
        self.spawn_on(self.addr.clone(), self.kafka_addr.clone());
    }

    fn spawn_on(&mut self, addr: String, kafka_addr: String) {
        assert!(self.child.is_none(), "the broker is running");
        // The last process's file says nothing of the next one.
        match std::fs::remove_file(self.ready_file()) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                panic!("removing the last ready file: {error}")
            }
            _ => {}
        }
        let mut command = Command::new(SLUICE);
        if let Some(working_dir) = &self.working_dir {
            command.current_dir(working_dir);
        }
        // A test's `SLUICE_KAFKA_ADDR` names the listener's security
        // protocol (`SSL://...`): the flag, which wins, keeps it. Several
        // listeners are the test's, ports and all.
        let listeners = self
            .env
            .iter()
            .find(|(key, _)| key == "SLUICE_KAFKA_ADDR")
            .map(|(_, value)| value.as_str());
        let kafka_addr = match listeners.map(|value| (value, value.split_once("://"))) {
            Some((several, _)) if several.contains(',') => several.to_string(),
            Some((_, Some((protocol, _)))) if !kafka_addr.contains("://") => {
                format!("{protocol}://{kafka_addr}")
            }
            _ => kafka_addr,
        };
        // A test's `SSL://` native listener keeps its protocol too.
        let native_tls = self
            .env
            .iter()
            .any(|(key, value)| key == "SLUICE_NATIVE_ADDR" && value.starts_with("SSL://"));
        let addr = if native_tls && !addr.contains("://") {
            format!("SSL://{addr}")
        } else {
            addr
        };
        let child = command
            .args(["serve", "--data-dir"])
            .arg(&self.dir)
            .args([
                "--native-addr",
                &addr,
                "--kafka-addr",
                &kafka_addr,
                "--cores",
                &self.cores.to_string(),
                "--ready-file",
            ])
            .arg(self.ready_file())
            // No admin listener unless a test asks for one.
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
        let addrs = self.wait_until_ready();
        self.addr = addrs.native.to_string();
        self.kafka_addr = addrs
            .kafka
            .expect("the broker has a Kafka listener")
            .to_string();
        self.admin_addr = addrs.admin.map(|addr| addr.to_string());
    }

    /// Waits for the ready file, which the broker writes (whole) once every
    /// shard serves.
    fn wait_until_ready(&mut self) -> ListenAddrs {
        let path = self.ready_file();
        let deadline = Instant::now() + START_TIMEOUT;
        while !path.exists() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("sluice serve exited while starting: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "sluice serve did not start serving within {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        ListenAddrs::read_ready_file(&path).expect("the ready file reads")
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

    /// Requests being served, over every shard (a fetch parked at the log
    /// end is one), from `/metrics` on the admin listener (which a test
    /// turns on with `SLUICE_ADMIN_ADDR`).
    pub fn requests_in_flight(&self) -> u64 {
        use std::io::Read;
        let admin = self
            .admin_addr
            .as_ref()
            .expect("the broker has an admin listener");
        let mut stream = std::net::TcpStream::connect(admin).expect("the admin listener accepts");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
            .expect("request sent");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("an answer");
        answer
            .lines()
            .filter(|line| line.starts_with("sluice_shard_requests_in_flight{"))
            .map(|line| {
                let (_, value) = line.rsplit_once(' ').expect("a sample has a value");
                value.parse::<u64>().expect("a count")
            })
            .sum()
    }

    pub fn connect(&self) -> Connection {
        Connection::open(&self.addr, Duration::from_secs(30)).unwrap()
    }

    /// Runs a `sluice` client command against this broker.
    pub fn cli(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        cli(&self.addr, args, stdin)
    }

    /// Runs a `sluice` client command that must succeed; its standard
    /// output.
    pub fn cli_ok(&self, args: &[&str], stdin: Option<&[u8]>) -> String {
        cli_ok(&self.addr, args, stdin)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs a `sluice` client command against `brokers` (native addresses),
/// with `stdin` written to it if given.
pub fn cli(brokers: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(SLUICE)
        .args(args)
        .args(["--brokers", brokers])
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

/// A `sluice` client command against `brokers` that must succeed; its
/// standard output.
pub fn cli_ok(brokers: &str, args: &[&str], stdin: Option<&[u8]>) -> String {
    let output = cli(brokers, args, stdin);
    assert!(
        output.status.success(),
        "sluice {args:?} against {brokers}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Set to a seed printed by a test to make the same random choices again.
pub const SEED_ENV: &str = "SLUICE_TEST_SEED";

/// The random choices of `test` (kill moments and the like): from the seed
/// in [`SEED_ENV`] if it is set, else from a new one; printed either way,
/// so that a failure can be replayed.
pub fn seeded_rng(test: &str) -> rand::rngs::StdRng {
    use rand::SeedableRng;
    let seed = match std::env::var(SEED_ENV) {
        Ok(seed) => seed
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_ENV}={seed:?} is not a u64")),
        Err(_) => rand::random(),
    };
    println!("{test}: seed {seed} ({SEED_ENV}={seed} replays it)");
    rand::rngs::StdRng::seed_from_u64(seed)
}

pub fn create_topic(conn: &mut Connection, name: &str, partitions: u32) {
    let request = CreateTopicsRequest {
        topics: vec![NewTopic {
            name: name.into(),
            partitions,
            configs: vec![],
            replication_factor: 0,
            assignment: Vec::new(),
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

/// A Kafka request of `version`, framed: its length, its header naming
/// `client_id`, its body by the kafka-protocol codec.
pub fn kafka_frame<T: kafka_protocol::protocol::Encodable>(
    api: kafka_protocol::messages::ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &'static str,
    body: &T,
) -> Vec<u8> {
    use kafka_protocol::{
        messages::RequestHeader,
        protocol::{Encodable, StrBytes},
    };
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(client_id)));
    let mut bytes = bytes::BytesMut::new();
    header
        .encode(&mut bytes, api.request_header_version(version))
        .unwrap();
    body.encode(&mut bytes, version).unwrap();
    let mut framed = (bytes.len() as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    framed
}

/// The next Kafka response on `stream`: its correlation id and body.
/// `None` if the broker closed the connection (or answered nothing in the
/// stream's read timeout).
pub fn kafka_response(
    stream: &mut std::net::TcpStream,
    api: kafka_protocol::messages::ApiKey,
    version: i16,
) -> Option<(i32, Bytes)> {
    use kafka_protocol::{messages::ResponseHeader, protocol::Decodable};
    use std::io::Read;
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).ok()?;
    let mut answer = vec![0u8; i32::from_be_bytes(length) as usize];
    stream.read_exact(&mut answer).expect("a whole response");
    let mut answer = Bytes::from(answer);
    let header = ResponseHeader::decode(&mut answer, api.response_header_version(version)).unwrap();
    Some((header.correlation_id, answer))
}

/// One Kafka request of `version` on `stream`, with the kafka-protocol
/// codec, and its answer (librdkafka does not show every field, or send
/// every request); fails the test if the answer does not come, does not
/// read, or names another correlation id.
pub fn kafka_exchange<
    T: kafka_protocol::protocol::Encodable,
    R: kafka_protocol::protocol::Decodable,
>(
    stream: &mut std::net::TcpStream,
    api: kafka_protocol::messages::ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &'static str,
    body: &T,
) -> R {
    stream
        .write_all(&kafka_frame(api, version, correlation_id, client_id, body))
        .unwrap();
    let (answered, mut answer) = kafka_response(stream, api, version)
        .unwrap_or_else(|| panic!("{api:?} v{version}: no answer"));
    assert_eq!(answered, correlation_id, "{api:?}");
    R::decode(&mut answer, version)
        .unwrap_or_else(|error| panic!("{api:?} v{version}: answer not readable: {error}"))
}

/// The value of counter `name` (a sample without labels) on the broker's
/// `/metrics`, read over a plain HTTP/1.1 GET of the admin listener.
pub fn metric(admin_addr: &str, name: &str) -> u64 {
    metric_as(admin_addr, name, None)
}

/// [`metric`], read with HTTP Basic credentials `(user, password)` if
/// given (a broker with the ACL authorizer asks for them).
pub fn metric_as(admin_addr: &str, name: &str, credentials: Option<(&str, &str)>) -> u64 {
    let (status, text) = admin_get(admin_addr, "/metrics", credentials);
    assert!(status.contains(" 200 "), "{status}");
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} is not in /metrics"))
}

/// A GET of `path` on the admin listener: the status line and the whole
/// response.
pub fn admin_get(
    admin_addr: &str,
    path: &str,
    credentials: Option<(&str, &str)>,
) -> (String, String) {
    use base64::{engine::general_purpose::STANDARD, Engine};
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(admin_addr).expect("the admin listener");
    let authorization = credentials
        .map(|(user, password)| {
            format!(
                "Authorization: Basic {}\r\n",
                STANDARD.encode(format!("{user}:{password}"))
            )
        })
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: sluice\r\n{authorization}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text.lines().next().unwrap_or_default().to_string();
    (status, text)
}

/// The Go program of `tests/kafka_clients/go/{package}` built into the
/// test target directory as `name`, with the module versions of its
/// go.sum only (no network once `go mod download` ran): its path.
pub fn build_go(package: &str, name: &str) -> PathBuf {
    let program = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let dir = clients_dir().join("go");
    let output = Command::new("go")
        .args(["build", "-o"])
        .arg(&program)
        .arg(package)
        .current_dir(&dir)
        .env("GOFLAGS", "-mod=readonly")
        .stdin(Stdio::null())
        .output()
        .expect("go build runs");
    assert!(
        output.status.success(),
        "go build of {package} in tests/kafka_clients/go: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    program
}

/// Waits for `child` to exit, and kills it past `limit`: its status, or
/// `None` if it had to be killed.
pub fn wait_or_kill(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Where the Kafka clients' programs and scripts are.
pub fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kafka_clients")
}

/// Whether `probe` succeeds. When it does not, the test fails under
/// `SLUICE_REQUIRE_KAFKA_CLIENTS=1`, and otherwise is skipped, saying so.
pub fn installed(client: &str, probe: &mut Command, install: &str) -> bool {
    let found = probe
        .current_dir(clients_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if found {
        return true;
    }
    if std::env::var("SLUICE_REQUIRE_KAFKA_CLIENTS").as_deref() == Ok("1") {
        panic!("{client} is not installed ({install}) and SLUICE_REQUIRE_KAFKA_CLIENTS=1");
    }
    eprintln!(
        "SKIPPED: {client} is not installed ({install}); \
         SLUICE_REQUIRE_KAFKA_CLIENTS=1 makes this a failure"
    );
    false
}
