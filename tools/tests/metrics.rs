//! Black box: the Prometheus endpoint on the admin port of the built
//! `sluice` binary. Records produced and offsets committed through the
//! Kafka protocol show in `/metrics` with exact values (log end offsets,
//! committed offsets, lag); bad requests get an error status or a closed
//! connection, and the broker keeps serving.

mod common;
mod kafka_common;

use std::{
    collections::BTreeMap,
    io::{ErrorKind, Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{batch_of, create_topic, produce, Broker, ANY_PORT, SLUICE};
use rdkafka::{
    consumer::{CommitMode, Consumer},
    Offset, TopicPartitionList,
};
use sluice_net::native::{
    blocking::BlockingError,
    messages::{ApiVersionsRequest, ApiVersionsResponse},
    ErrorCode,
};

const TIMEOUT: Duration = Duration::from_secs(30);

/// One sample of a scrape: its metric name, labels and value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// What a GET answered: status line, headers (names in lower case), body.
struct Answer {
    status: String,
    headers: BTreeMap<String, String>,
    body: String,
}

/// Sends `request` to the admin port and reads until the broker closes.
/// `Err` if the connection was reset instead of answered.
fn exchange(addr: &str, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.write_all(request)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(answer)
}

/// `head_request`: the answer to a HEAD, whose Content-Length is that of
/// the body a GET would get.
fn parse_answer(raw: &[u8], head_request: bool) -> Answer {
    let text = String::from_utf8(raw.to_vec()).expect("a UTF-8 answer");
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no blank line after the head: {text:?}"));
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().to_string();
    let headers: BTreeMap<String, String> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').expect("a header");
            (name.to_ascii_lowercase(), value.trim().to_string())
        })
        .collect();
    let length: usize = headers["content-length"].parse().unwrap();
    if head_request {
        assert!(body.is_empty(), "HEAD has no body: {text}");
        assert!(length > 0, "{text}");
    } else {
        assert_eq!(length, body.len(), "{text}");
    }
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

fn get(addr: &str, path: &str) -> Answer {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/plain\r\n\r\n");
    parse_answer(
        &exchange(addr, request.as_bytes()).expect("an answer"),
        false,
    )
}

/// A label value as the exposition format writes it, read back.
fn unescape(value: &str) -> String {
    let mut out = String::new();
    let mut characters = value.chars();
    while let Some(character) = characters.next() {
        if character != '\\' {
            out.push(character);
            continue;
        }
        match characters.next() {
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => panic!("a label value ends in a lone backslash: {value:?}"),
        }
    }
    out
}

/// Parses `name{a="x",b="y"} value` lines; checks that every family has
/// `# HELP` and `# TYPE` before its samples.
fn parse_samples(body: &str) -> Vec<Sample> {
    let mut typed = Vec::new();
    let mut samples = Vec::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.push(rest.split(' ').next().unwrap().to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("NAME VALUE");
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let rest = rest.strip_suffix('}').expect("labels end with }");
                let mut labels = BTreeMap::new();
                // Values are quoted and may hold escaped quotes and commas.
                let mut remaining = rest;
                while !remaining.is_empty() {
                    let (label, after) = remaining.split_once("=\"").expect("label=\"");
                    let mut end = 0;
                    let bytes = after.as_bytes();
                    while bytes[end] != b'"' {
                        end += if bytes[end] == b'\\' { 2 } else { 1 };
                    }
                    labels.insert(label.to_string(), unescape(&after[..end]));
                    remaining = after[end + 1..]
                        .strip_prefix(',')
                        .unwrap_or(&after[end + 1..]);
                }
                (name, labels)
            }
        };
        // A histogram's samples carry its name with a suffix.
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|family| typed.last().is_some_and(|typed| typed == family))
            .unwrap_or(name);
        assert!(
            typed.last().is_some_and(|typed| typed == family),
            "{name} outside its family: {line}"
        );
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value: value.parse().unwrap_or_else(|_| panic!("value of {line}")),
        });
    }
    samples
}

struct Scrape {
    samples: Vec<Sample>,
    text: String,
}

impl Scrape {
    fn take(addr: &str) -> Scrape {
        let answer = get(addr, "/metrics");
        assert_eq!(answer.status, "HTTP/1.1 200 OK", "{}", answer.body);
        let content_type = &answer.headers["content-type"];
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        assert_eq!(answer.headers["connection"], "close");
        Scrape {
            samples: parse_samples(&answer.body),
            text: answer.body,
        }
    }

    /// Every sample of `name` with at least `labels`.
    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|sample| {
                sample.name == name
                    && labels.iter().all(|(key, value)| {
                        sample.labels.get(*key).map(String::as_str) == Some(*value)
                    })
            })
            .collect()
    }

    /// The one sample of `name` with `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let found = self.find(name, labels);
        assert_eq!(
            found.len(),
            1,
            "{name} {labels:?}: {found:?} in\n{}",
            self.text
        );
        found[0].value as u64
    }
}

fn produce_records(broker: &Broker, topic: &str, partition: u32, count: usize) {
    let mut conn = broker.connect();
    let values: Vec<Vec<u8>> = (0..count).map(|i| format!("r{i}").into_bytes()).collect();
    let produced = produce(&mut conn, topic, partition, batch_of(&values).into_bytes()).unwrap();
    assert_eq!(produced.error, ErrorCode::None, "{produced:?}");
}

fn commit(broker: &Broker, group: &str, topic: &str, offsets: &[(i32, i64)]) {
    let consumer = kafka_common::consumer(broker, &[("group.id", group)]);
    let mut list = TopicPartitionList::new();
    for (partition, offset) in offsets {
        list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .unwrap();
    }
    consumer
        .commit(&list, CommitMode::Sync)
        .unwrap_or_else(|error| panic!("commit {group}: {error}"));
}

fn start(dir: &std::path::Path, cores: usize) -> (Broker, String) {
    let broker = Broker::start_with(dir, cores, &[("SLUICE_ADMIN_ADDR", ANY_PORT)]);
    let admin = broker.admin_addr.clone().expect("an admin listener");
    (broker, admin)
}

#[test]
fn metrics_show_offsets_sizes_and_group_lag_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, admin) = start(dir.path(), 2);
    let mut conn = broker.connect();
    create_topic(&mut conn, "orders", 2);
    produce_records(&broker, "orders", 0, 5);
    produce_records(&broker, "orders", 1, 3);
    commit(&broker, "billing", "orders", &[(0, 2), (1, 3)]);
    // A group id that needs escaping in a label value.
    let odd_group = "we\"ird\\group\nname";
    commit(&broker, odd_group, "orders", &[(0, 1)]);

    let scrape = Scrape::take(&admin);
    for (partition, end) in [("0", 5), ("1", 3)] {
        let labels = [("topic", "orders"), ("partition", partition)];
        assert_eq!(
            scrape.value("sluice_partition_log_end_offset", &labels),
            end
        );
        assert_eq!(
            scrape.value("sluice_partition_log_start_offset", &labels),
            0
        );
        assert!(scrape.value("sluice_partition_size_bytes", &labels) > 0);
        assert_eq!(scrape.value("sluice_partition_segments", &labels), 1);
        assert_eq!(scrape.value("sluice_partition_leader_epoch", &labels), 0);
        assert_eq!(scrape.value("sluice_partition_replicas", &labels), 1);
        assert_eq!(
            scrape.value("sluice_partition_in_sync_replicas", &labels),
            1
        );
        let shard = &scrape.find("sluice_partition_log_end_offset", &labels)[0].labels["shard"];
        assert!(shard == "0" || shard == "1", "shard {shard}");
    }
    // Both partitions, one per shard (placement spreads them).
    let shards: Vec<&str> = scrape
        .find("sluice_partition_log_end_offset", &[("topic", "orders")])
        .iter()
        .map(|sample| sample.labels["shard"].as_str())
        .collect();
    assert_eq!(shards.len(), 2);
    assert_ne!(shards[0], shards[1], "{}", scrape.text);

    let billing = |partition| {
        [
            ("group", "billing"),
            ("topic", "orders"),
            ("partition", partition),
        ]
    };
    assert_eq!(
        scrape.value("sluice_group_committed_offset", &billing("0")),
        2
    );
    assert_eq!(
        scrape.value("sluice_group_committed_offset", &billing("1")),
        3
    );
    assert_eq!(scrape.value("sluice_group_lag", &billing("0")), 5 - 2);
    assert_eq!(scrape.value("sluice_group_lag", &billing("1")), 0);
    let odd = [
        ("group", odd_group),
        ("topic", "orders"),
        ("partition", "0"),
    ];
    assert_eq!(scrape.value("sluice_group_committed_offset", &odd), 1);
    assert_eq!(scrape.value("sluice_group_lag", &odd), 4);
    assert!(
        scrape.text.contains(r#"group="we\"ird\\group\nname""#),
        "{}",
        scrape.text
    );

    // Per shard: both shards, and the native connection held open here.
    for shard in ["0", "1"] {
        scrape.value("sluice_shard_connections", &[("shard", shard)]);
        scrape.value("sluice_shard_requests_in_flight", &[("shard", shard)]);
    }
    let connections: f64 = scrape
        .find("sluice_shard_connections", &[])
        .iter()
        .map(|sample| sample.value)
        .sum();
    assert!(connections >= 1.0, "{}", scrape.text);
    drop(conn);

    // The figures move: more records raise the end and the lag.
    produce_records(&broker, "orders", 1, 4);
    let scrape = Scrape::take(&admin);
    assert_eq!(
        scrape.value(
            "sluice_partition_log_end_offset",
            &[("topic", "orders"), ("partition", "1")]
        ),
        7
    );
    // One replica: it shows all it stored.
    assert_eq!(
        scrape.value(
            "sluice_partition_stored_end_offset",
            &[("topic", "orders"), ("partition", "1")]
        ),
        7
    );
    assert_eq!(scrape.value("sluice_group_lag", &billing("1")), 7 - 3);
    // A commit past the end reads as no lag, never a negative one.
    commit(&broker, "billing", "orders", &[(0, 50)]);
    let scrape = Scrape::take(&admin);
    assert_eq!(
        scrape.value("sluice_group_committed_offset", &billing("0")),
        50
    );
    assert_eq!(scrape.value("sluice_group_lag", &billing("0")), 0);
}

#[test]
fn every_request_is_timed_by_protocol_and_api() {
    const LATENCY: &str = "sluice_request_latency_seconds";
    let dir = tempfile::tempdir().unwrap();
    let (broker, admin) = start(dir.path(), 2);
    let mut conn = broker.connect();
    create_topic(&mut conn, "timed", 2);
    produce_records(&broker, "timed", 0, 5);
    produce_records(&broker, "timed", 1, 3);
    commit(&broker, "timers", "timed", &[(0, 2)]);

    let scrape = Scrape::take(&admin);
    let count = |scrape: &Scrape, protocol: &str, api: &str| {
        let labels = [("protocol", protocol), ("api", api)];
        let count = scrape.value(&format!("{LATENCY}_count"), &labels);
        // Cumulative buckets, ending in +Inf at the count; a sum of times.
        let mut buckets: Vec<(f64, u64)> = scrape
            .find(&format!("{LATENCY}_bucket"), &labels)
            .iter()
            .map(|sample| {
                let le = &sample.labels["le"];
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                (bound, sample.value as u64)
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(buckets.len() > 10, "{}", scrape.text);
        assert!(
            buckets.windows(2).all(|pair| pair[0].1 <= pair[1].1),
            "{buckets:?}"
        );
        assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, count));
        let sum = scrape.find(&format!("{LATENCY}_sum"), &labels)[0].value;
        assert!(count == 0 || sum > 0.0, "sum {sum} of {count}");
        count
    };
    assert_eq!(count(&scrape, "native", "CreateTopics"), 1);
    assert_eq!(count(&scrape, "native", "Produce"), 2);
    // librdkafka asks for versions, metadata and the coordinator first.
    assert!(count(&scrape, "kafka", "OffsetCommit") >= 1);
    assert!(count(&scrape, "kafka", "ApiVersions") >= 1);
    assert!(
        scrape.text.contains(&format!("# TYPE {LATENCY} histogram")),
        "{}",
        scrape.text
    );

    // A request of an API the native protocol does not have is counted
    // under one label, whatever its code.
    let hello = ApiVersionsRequest { client: "x".into() };
    for code in [777, 778] {
        match conn.call_raw::<ApiVersionsResponse>(code, 0, &hello) {
            Err(BlockingError::Broker {
                code: ErrorCode::UnknownApi,
                ..
            }) => {}
            other => panic!("API {code}: {other:?}"),
        }
    }
    produce_records(&broker, "timed", 0, 1);
    let scrape = Scrape::take(&admin);
    assert_eq!(count(&scrape, "native", "Produce"), 3);
    assert_eq!(count(&scrape, "native", "unknown"), 2);
}

#[test]
fn bad_requests_get_errors_and_the_broker_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, admin) = start(dir.path(), 2);

    // Started first: it takes the read timeout (5 s) to be answered.
    let slow = {
        let admin = admin.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let answer = exchange(&admin, b"GET /metrics HTTP/1.1\r\nHost: x\r\n");
            (started.elapsed(), answer)
        })
    };

    let status = |request: &[u8]| {
        let raw = exchange(&admin, request).expect("an answer");
        parse_answer(&raw, false).status
    };
    assert_eq!(status(b"hello\r\n\r\n"), "HTTP/1.1 400 Bad Request");
    assert_eq!(
        status(b"\x00\xff\xfe garbage \x01\r\n\r\n"),
        "HTTP/1.1 400 Bad Request"
    );
    assert_eq!(
        status(b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n"),
        "HTTP/1.1 400 Bad Request"
    );
    assert_eq!(
        status(b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
        "HTTP/1.1 405 Method Not Allowed"
    );
    assert_eq!(
        status(b"GET /metrics HTTP/9.9\r\n\r\n"),
        "HTTP/1.1 505 HTTP Version Not Supported"
    );
    assert_eq!(get(&admin, "/").status, "HTTP/1.1 404 Not Found");
    assert_eq!(get(&admin, "/metricsx").status, "HTTP/1.1 404 Not Found");
    assert_eq!(
        get(&admin, "/metrics?name[]=x").status,
        "HTTP/1.1 200 OK",
        "a query is ignored"
    );
    let head = parse_answer(
        &exchange(&admin, b"HEAD /metrics HTTP/1.1\r\n\r\n").unwrap(),
        true,
    );
    assert_eq!(head.status, "HTTP/1.1 200 OK");
    // A peer that connects and goes away is no harm.
    drop(TcpStream::connect(&admin).unwrap());

    // An over-long request line: refused once the cap is read. The broker
    // closes with bytes unread, which may reset the connection before the
    // answer is read; either way it does not wait for the rest.
    let mut long = b"GET /".to_vec();
    long.extend(std::iter::repeat_n(b'a', 64 * 1024));
    match exchange(&admin, &long) {
        Ok(raw) => assert!(
            raw.is_empty()
                || parse_answer(&raw, false).status
                    == "HTTP/1.1 431 Request Header Fields Too Large",
            "{}",
            String::from_utf8_lossy(&raw)
        ),
        Err(error) => assert!(
            matches!(
                error.kind(),
                ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
            ),
            "{error}"
        ),
    }
    // Endless headers, each short: the same cap.
    let mut many = b"GET /metrics HTTP/1.1\r\n".to_vec();
    for i in 0..2000 {
        many.extend(format!("X-Header-{i}: v\r\n").as_bytes());
    }
    if let Ok(raw) = exchange(&admin, &many) {
        assert!(
            raw.is_empty()
                || parse_answer(&raw, false).status
                    == "HTTP/1.1 431 Request Header Fields Too Large"
        );
    }

    let (waited, answer) = slow.join().unwrap();
    let answer = parse_answer(&answer.expect("an answer to the slow request"), false);
    assert_eq!(answer.status, "HTTP/1.1 408 Request Timeout");
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(20),
        "{waited:?}"
    );

    // Still serving: both the admin port and the native protocol.
    let mut conn = broker.connect();
    create_topic(&mut conn, "after", 1);
    produce_records(&broker, "after", 0, 2);
    let scrape = Scrape::take(&admin);
    assert_eq!(
        scrape.value(
            "sluice_partition_log_end_offset",
            &[("topic", "after"), ("partition", "0")]
        ),
        2
    );
}

#[test]
fn a_taken_admin_port_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let admin = taken.local_addr().unwrap().to_string();
    let output = Command::new(SLUICE)
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args(["--native-addr", ANY_PORT, "--kafka-addr", "off"])
        .args(["--admin-addr", &admin, "--cores", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&admin), "{stderr}");
}
