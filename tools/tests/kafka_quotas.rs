//! Black box: client quotas against the built `sluice` binary. Quotas are
//! set and read with AlterClientQuotas and DescribeClientQuotas (raw
//! requests; of the clients here, only Java's admin has them), survive a
//! restart, and hold a librdkafka producer to its byte rate while another
//! client's acknowledgements stay as fast (`tests/kafka_clients/quotas.py`),
//! and a client to its share of the shard's time (`request_percentage`).

mod common;
mod kafka_raw;

use std::{net::TcpStream, path::PathBuf, process::Command};

use common::Broker;
use kafka_protocol::{
    messages::{
        alter_client_quotas_request::{EntityData, EntryData, OpData},
        describe_client_quotas_request::ComponentData,
        AlterClientQuotasRequest, AlterClientQuotasResponse, ApiKey, DescribeClientQuotasRequest,
        DescribeClientQuotasResponse,
    },
    protocol::StrBytes,
};
use kafka_raw::call;

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

/// Sets (`Some`) or removes (`None`) `key` of the entity `components`
/// ((type, name or the default)): the entry's error code.
fn alter(
    stream: &mut TcpStream,
    components: &[(&str, Option<&str>)],
    key: &str,
    value: Option<f64>,
) -> i16 {
    let entity = components
        .iter()
        .map(|(kind, name)| {
            EntityData::default()
                .with_entity_type(text(kind))
                .with_entity_name(name.map(text))
        })
        .collect();
    let op = OpData::default()
        .with_key(text(key))
        .with_value(value.unwrap_or(0.0))
        .with_remove(value.is_none());
    let request = AlterClientQuotasRequest::default().with_entries(vec![EntryData::default()
        .with_entity(entity)
        .with_ops(vec![op])]);
    let answer: AlterClientQuotasResponse = call(stream, ApiKey::AlterClientQuotas, 1, &request);
    answer.entries[0].error_code
}

/// The quotas of entities with a client id named `client_id`: (key,
/// value) pairs.
fn describe(stream: &mut TcpStream, client_id: &str) -> Vec<(String, f64)> {
    let request =
        DescribeClientQuotasRequest::default().with_components(vec![ComponentData::default()
            .with_entity_type(text("client-id"))
            .with_match_type(0)
            .with_match(Some(text(client_id)))]);
    let answer: DescribeClientQuotasResponse =
        call(stream, ApiKey::DescribeClientQuotas, 1, &request);
    assert_eq!(answer.error_code, 0, "{:?}", answer.error_message);
    answer
        .entries
        .unwrap_or_default()
        .iter()
        .flat_map(|entry| &entry.values)
        .map(|value| (value.key.to_string(), value.value))
        .collect()
}

fn quotas_py(broker: &Broker, topic: &str, mode: &str, client_id: &str, seconds: &str) -> Command {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kafka_clients/quotas.py");
    let mut command = Command::new("python3");
    command
        .arg(script)
        .args([&broker.kafka_addr, topic, mode, client_id, seconds]);
    command
}

/// The figure after `label` in a quotas.py output.
fn figure(output: &std::process::Output, label: &str) -> f64 {
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "quotas.py failed: {text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    text.lines()
        .find_map(|line| {
            line.strip_prefix(label)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {label} in {text}"))
}

#[test]
fn quotas_are_set_described_checked_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(&dir.path().join("data"), 1);
    let mut stream = kafka_raw::connect(&broker);
    assert_eq!(
        alter(
            &mut stream,
            &[("client-id", Some("slow"))],
            "producer_byte_rate",
            Some(1024.0)
        ),
        0
    );
    assert_eq!(
        alter(
            &mut stream,
            &[("user", None), ("client-id", Some("slow"))],
            "consumer_byte_rate",
            Some(2048.0)
        ),
        0
    );
    let mut values = describe(&mut stream, "slow");
    values.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        values,
        [
            ("consumer_byte_rate".to_string(), 2048.0),
            ("producer_byte_rate".to_string(), 1024.0)
        ]
    );
    // Refused: a key not enforced, a rate that is not positive, an entity
    // that mixes an address with a client.
    assert_eq!(
        alter(
            &mut stream,
            &[("client-id", Some("slow"))],
            "controller_mutation_rate",
            Some(50.0)
        ),
        42
    );
    assert_eq!(
        alter(
            &mut stream,
            &[("client-id", Some("slow"))],
            "producer_byte_rate",
            Some(-1.0)
        ),
        42
    );
    assert_eq!(
        alter(
            &mut stream,
            &[("ip", Some("10.0.0.1")), ("client-id", Some("x"))],
            "producer_byte_rate",
            Some(5.0)
        ),
        42
    );
    assert_eq!(
        alter(
            &mut stream,
            &[("ip", Some("10.0.0.1"))],
            "connection_creation_rate",
            Some(5.0)
        ),
        0
    );
    // Kept in the replicated metadata: a restart keeps them.
    drop(stream);
    broker.restart();
    let mut stream = kafka_raw::connect(&broker);
    assert_eq!(describe(&mut stream, "slow").len(), 2);
    assert_eq!(
        alter(
            &mut stream,
            &[("client-id", Some("slow"))],
            "producer_byte_rate",
            None
        ),
        0
    );
    assert_eq!(
        describe(&mut stream, "slow").len(),
        1,
        "the producer rate removed"
    );
}

#[test]
fn a_producer_over_its_byte_rate_is_held_to_it_and_others_are_not_slowed() {
    const QUOTA: f64 = 250_000.0;
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_with(
        &dir.path().join("data"),
        1,
        &[("SLUICE_ADMIN_ADDR", "127.0.0.1:0")],
    );
    let mut stream = kafka_raw::connect(&broker);
    let topic = "metered";
    assert_eq!(
        alter(
            &mut stream,
            &[("client-id", Some("slow"))],
            "producer_byte_rate",
            Some(QUOTA)
        ),
        0
    );
    broker.cli_ok(&["topic", "create", topic, "--partitions", "1"], None);

    // The other client alone, then beside the throttled one.
    let alone = quotas_py(&broker, topic, "probe", "other", "5")
        .output()
        .unwrap();
    let alone = figure(&alone, "p99");
    // Measured once the first window's burst is behind (Kafka's window:
    // 11 samples of 1 s).
    let flood = quotas_py(&broker, topic, "flood", "slow", "30")
        .arg("12")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let beside = quotas_py(&broker, topic, "probe", "other", "20")
        .output()
        .unwrap();
    let beside = figure(&beside, "p99");
    let flood = flood.wait_with_output().unwrap();
    let rate = figure(&flood, "rate");
    eprintln!("throttled producer: {rate:.0} B/s against a quota of {QUOTA}; other client's p99 {alone} ms alone, {beside} ms beside it");
    assert!(
        (rate - QUOTA).abs() <= QUOTA * 0.10,
        "{rate:.0} B/s is not within 10% of {QUOTA}"
    );
    assert!(
        beside <= alone * 3.0 + 20.0,
        "the other client's p99: {alone} ms alone, {beside} ms beside the throttled one"
    );
    let admin = broker.admin_addr.as_deref().expect("an admin listener");
    assert!(common::metric(admin, "sluice_quota_throttled_requests_total") > 0);
}

/// An ApiVersions answered on `stream`, or `false` if the broker closed it.
fn answers(stream: &mut TcpStream) -> bool {
    use kafka_protocol::messages::ApiVersionsRequest;
    use std::io::Write;
    let frame = kafka_raw::frame(ApiKey::ApiVersions, 3, 7, &ApiVersionsRequest::default());
    stream.write_all(&frame).is_ok()
        && kafka_raw::read_response(stream, ApiKey::ApiVersions, 3).is_some()
}

/// A connection the broker serves, once it has counted out one that
/// closed (it does when it sees the close): tried for 10 s.
fn served(broker: &Broker) -> TcpStream {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut stream = kafka_raw::connect(broker);
        if answers(&mut stream) {
            return stream;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no connection served 10 s after one closed"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn connections_per_address_are_capped_and_their_creation_rate_held() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_with(
        &dir.path().join("data"),
        2,
        &[
            ("SLUICE_CONNECTIONS_MAX_PER_IP", "3"),
            ("SLUICE_QUOTA_WINDOW_NUM", "2"),
            ("SLUICE_ADMIN_ADDR", "127.0.0.1:0"),
        ],
    );
    // Three connections from 127.0.0.1 are served; a fourth is closed at
    // once; once one closes, a new one is served again.
    let mut open: Vec<TcpStream> = (0..3).map(|_| kafka_raw::connect(&broker)).collect();
    for stream in &mut open {
        assert!(answers(stream));
    }
    let mut fourth = kafka_raw::connect(&broker);
    assert!(
        !answers(&mut fourth),
        "a fourth connection from one address"
    );
    drop(open.pop());
    let again = served(&broker);
    let admin = broker.admin_addr.as_deref().expect("an admin listener");
    assert!(common::metric(admin, "sluice_connections_refused_per_ip_total") >= 1);
    drop((open, again, fourth));
    let mut stream = served(&broker);

    // 2 connections a second for the default address, a window of 2 s: 4
    // at once, then one every half second.
    assert_eq!(
        alter(
            &mut stream,
            &[("ip", None)],
            "connection_creation_rate",
            Some(2.0)
        ),
        0
    );
    drop(stream);
    let started = std::time::Instant::now();
    for _ in 0..8 {
        let mut stream = kafka_raw::connect(&broker);
        assert!(answers(&mut stream));
    }
    let took = started.elapsed();
    assert!(
        took >= std::time::Duration::from_millis(1500),
        "8 connections at 2 a second (4 of burst) took {took:?}"
    );
}

/// A float metric of the broker's `/metrics`.
fn seconds_metric(broker: &Broker, name: &str) -> f64 {
    let admin = broker.admin_addr.as_deref().expect("an admin listener");
    let (status, text) = common::admin_get(admin, "/metrics", None);
    assert!(status.contains(" 200 "), "{status}");
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} is not in /metrics"))
}

/// Metadata of every topic from `client_id` on `stream`: its throttle time.
fn metadata_of_all(stream: &mut TcpStream, client_id: &'static str) -> i32 {
    use kafka_protocol::messages::{MetadataRequest, MetadataResponse};
    let answer: MetadataResponse = common::kafka_exchange(
        stream,
        ApiKey::Metadata,
        12,
        7,
        client_id,
        &MetadataRequest::default().with_topics(None),
    );
    assert!(
        answer.topics.len() >= TOPICS,
        "{} topics",
        answer.topics.len()
    );
    answer.throttle_time_ms
}

/// Topics of the request quota test: enough that Metadata for all of them
/// takes the shard a measurable time.
const TOPICS: usize = 400;

#[test]
fn a_client_over_its_request_percentage_is_held_to_its_share_of_a_core() {
    use kafka_protocol::messages::{
        create_topics_request::CreatableTopic, CreateTopicsRequest, CreateTopicsResponse, TopicName,
    };
    use std::time::{Duration, Instant};
    // 5% of a core; a window of 2 × 500 ms, so the burst it allows (50 ms
    // of the shard's time) is soon spent.
    const PERCENT: f64 = 5.0;
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_with(
        &dir.path().join("data"),
        1,
        &[
            ("SLUICE_ADMIN_ADDR", "127.0.0.1:0"),
            ("SLUICE_QUOTA_WINDOW_NUM", "2"),
            ("SLUICE_QUOTA_WINDOW_SIZE_MS", "500"),
        ],
    );
    let mut stream = kafka_raw::connect(&broker);
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(60_000)
        .with_topics(
            (0..TOPICS)
                .map(|index| {
                    CreatableTopic::default()
                        .with_name(TopicName(text(&format!("requested-{index}"))))
                        .with_num_partitions(1)
                        .with_replication_factor(1)
                })
                .collect(),
        );
    let created: CreateTopicsResponse = call(&mut stream, ApiKey::CreateTopics, 7, &request);
    assert!(created.topics.iter().all(|topic| topic.error_code == 0));

    // Unthrottled: as many as the client asks.
    let mut busy = kafka_raw::connect(&broker);
    let rate = |stream: &mut TcpStream, client_id: &'static str, seconds: f64| {
        let (started, mut count, mut throttled) = (Instant::now(), 0u32, 0u32);
        while started.elapsed().as_secs_f64() < seconds {
            throttled += u32::from(metadata_of_all(stream, client_id) > 0);
            count += 1;
        }
        (
            f64::from(count) / started.elapsed().as_secs_f64(),
            throttled,
        )
    };
    let (free_rate, throttled) = rate(&mut busy, "busy", 3.0);
    assert_eq!(throttled, 0);

    assert_eq!(
        alter(
            &mut stream,
            &[("client-id", Some("busy"))],
            "request_percentage",
            Some(PERCENT)
        ),
        0
    );
    // The burst spent, then measured: the shard's time the client takes,
    // as the broker counts it, over the time it ran.
    rate(&mut busy, "busy", 2.0);
    let before = seconds_metric(&broker, "sluice_quota_request_time_seconds_total");
    let measured = Instant::now();
    let (held_rate, throttled) = rate(&mut busy, "busy", 8.0);
    let spent = seconds_metric(&broker, "sluice_quota_request_time_seconds_total") - before;
    let share = spent / measured.elapsed().as_secs_f64() * 100.0;
    eprintln!(
        "Metadata of {TOPICS} topics: {free_rate:.1}/s free, {held_rate:.1}/s under {PERCENT}% \
         ({throttled} throttled); the client took {share:.2}% of the shard's time"
    );
    assert!(throttled > 0, "no response carried a throttle time");
    assert!(
        (share - PERCENT).abs() <= PERCENT * 0.10,
        "{share:.2}% is not within 10% of {PERCENT}%"
    );
    assert!(
        held_rate < free_rate / 3.0,
        "{held_rate:.1}/s under the quota against {free_rate:.1}/s free"
    );

    // Another client is not throttled, and not slowed past a request's
    // time, while the busy one is held.
    let mut other = kafka_raw::connect(&broker);
    let (_, throttled) = rate(&mut other, "other", 1.0);
    assert_eq!(throttled, 0);
    let started = Instant::now();
    metadata_of_all(&mut other, "other");
    assert!(started.elapsed() < Duration::from_secs(2));
}
