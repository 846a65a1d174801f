//! `sluice cluster describe` and the cluster columns of `sluice topic
//! describe` against a real single node: it is the one voter, alive, the
//! controller, at the addresses it listens on, and every partition is led
//! by it; the controller's gauges on `/metrics` agree.

mod common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use common::Broker;
use serde_json::{json, Value};
use sluice_net::native::messages::{
    ApiKey, DescribeTopicsRequest, DescribeTopicsResponse, DescribeTopicsResponseV0,
};

const NODE_ID: u32 = 3;
/// A single node elects itself at start; far longer than that is a hang.
const CONTROLLER_TIMEOUT: Duration = Duration::from_secs(20);

fn start(dir: &std::path::Path) -> Broker {
    Broker::start_with(
        dir,
        2,
        &[
            ("SLUICE_NODE_ID", &NODE_ID.to_string()),
            ("SLUICE_ADMIN_ADDR", "127.0.0.1:0"),
        ],
    )
}

fn describe_json(broker: &Broker) -> Value {
    let out = broker.cli_ok(&["cluster", "describe", "--format", "json"], None);
    serde_json::from_str(&out).unwrap_or_else(|error| panic!("{error}: {out}"))
}

/// The cluster once a controller is known.
fn with_controller(broker: &Broker) -> Value {
    let deadline = Instant::now() + CONTROLLER_TIMEOUT;
    loop {
        let cluster = describe_json(broker);
        if !cluster["controller"].is_null() {
            return cluster;
        }
        assert!(
            Instant::now() < deadline,
            "no controller within {CONTROLLER_TIMEOUT:?}: {cluster}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Each line of a table, split on whitespace.
fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|line| line.split_whitespace().map(str::to_string).collect())
        .collect()
}

fn metrics(admin_addr: &str) -> String {
    let mut stream = TcpStream::connect(admin_addr).expect("the admin listener");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {admin_addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    answer
}

fn gauge(text: &str, name: &str) -> i64 {
    let prefix = format!("{name} ");
    let line = text
        .lines()
        .find(|line| line.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"));
    line[prefix.len()..].parse().expect("an integer")
}

#[test]
fn a_single_node_is_the_alive_voter_and_controller_and_leads_every_partition() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path());
    let admin_addr = broker.admin_addr.clone().expect("an admin listener");

    let before = with_controller(&broker);
    assert_eq!(before["controller"], NODE_ID, "{before}");
    assert_eq!(before["answered_by"], NODE_ID, "{before}");
    assert!(before["term"].as_u64().unwrap() >= 1, "{before}");
    assert!(
        before["cluster_id"]
            .as_str()
            .is_some_and(|id| id.len() == 22),
        "{before}"
    );
    let nodes = before["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "{before}");
    let node = &nodes[0];
    assert_eq!(node["id"], NODE_ID);
    assert_eq!(node["role"], "voter");
    assert_eq!(node["state"], "alive");
    assert_eq!(node["voter"], true);
    assert_eq!(node["fenced"], false);
    assert_eq!(node["native_addr"], json!(broker.addr));
    assert_eq!(node["kafka_addr"], json!(broker.kafka_addr));
    assert_eq!(node["admin_addr"], json!(admin_addr));
    assert!(node["peer_addr"]
        .as_str()
        .is_some_and(|addr| addr.contains(':')));
    assert_eq!(node["reachable"], true);
    let applied_before = node["applied"].as_u64().expect("this node's applied index");
    assert!(
        applied_before <= before["committed"].as_u64().unwrap(),
        "{before}"
    );

    // A topic create is a metadata log entry: the applied index moves.
    broker.cli_ok(&["topic", "create", "orders", "-p", "3"], None);
    let after = describe_json(&broker);
    let applied = after["nodes"][0]["applied"].as_u64().unwrap();
    assert!(
        applied > applied_before,
        "applied {applied_before} then {applied} across a topic create"
    );

    let text = broker.cli_ok(&["cluster", "describe"], None);
    let table = rows(&text);
    assert!(
        table.contains(&vec!["CONTROLLER".to_string(), NODE_ID.to_string()]),
        "{text}"
    );
    let header = [
        "ID", "ROLE", "STATE", "RACK", "KAFKA", "NATIVE", "ADMIN", "PEER", "APPLIED",
    ];
    let header_at = table
        .iter()
        .position(|row| row == &header)
        .unwrap_or_else(|| panic!("no nodes header in\n{text}"));
    let row = &table[header_at + 1];
    assert_eq!(
        row[..3],
        [NODE_ID.to_string(), "voter".into(), "alive".into()],
        "{text}"
    );
    assert_eq!(row[3], "-", "no rack: {text}");
    assert_eq!(row[4], broker.kafka_addr, "{text}");
    assert_eq!(row[5], broker.addr, "{text}");
    assert_eq!(row[6], admin_addr, "{text}");
    assert_eq!(row[8], applied.to_string(), "{text}");

    // Every partition: led by this node, its only replica, in sync.
    let described = broker.cli_ok(&["topic", "describe", "orders", "--format", "json"], None);
    let described: Value = serde_json::from_str(&described).unwrap();
    let partitions = described["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 3, "{described}");
    for partition in partitions {
        assert_eq!(partition["leader"], NODE_ID, "{described}");
        assert_eq!(partition["replicas"], json!([NODE_ID]), "{described}");
        assert_eq!(partition["isr"], json!([NODE_ID]), "{described}");
        assert_eq!(partition["leader_epoch"], 0, "{described}");
    }
    let text = broker.cli_ok(&["topic", "describe", "orders"], None);
    let table = rows(&text);
    let header_at = table
        .iter()
        .position(|row| row.first().is_some_and(|cell| cell == "PARTITION"))
        .unwrap_or_else(|| panic!("no partitions header in\n{text}"));
    assert_eq!(
        table[header_at][..6],
        [
            "PARTITION",
            "LEADER",
            "REPLICAS",
            "ISR",
            "LEADER-EPOCH",
            "SHARD"
        ],
        "{text}"
    );
    let partition_rows = &table[header_at + 1..];
    assert_eq!(partition_rows.len(), 3, "{text}");
    for (index, row) in partition_rows.iter().enumerate() {
        let id = NODE_ID.to_string();
        assert_eq!(
            row[..5],
            [
                index.to_string(),
                id.clone(),
                id.clone(),
                id,
                "0".to_string()
            ],
            "{text}"
        );
    }

    // The controller's gauges say the same.
    let scraped = metrics(&admin_addr);
    assert_eq!(gauge(&scraped, "sluice_controller_leader"), NODE_ID as i64);
    assert_eq!(
        gauge(&scraped, "sluice_controller_term"),
        after["term"].as_i64().unwrap()
    );
    let applied_gauge = gauge(&scraped, "sluice_metadata_applied_index");
    assert!(applied_gauge >= applied as i64, "{scraped}");
    assert!(gauge(&scraped, "sluice_metadata_committed_index") >= applied_gauge);
    assert_eq!(gauge(&scraped, "sluice_brokers_fenced"), 0);
    for healthy in [
        "sluice_partitions_offline",
        "sluice_partitions_under_replicated",
        "sluice_partitions_under_min_insync",
    ] {
        assert_eq!(gauge(&scraped, healthy), 0, "{healthy}");
    }
    let counted = &describe_json(&broker)["partitions"];
    assert_eq!(counted["offline"], 0, "{counted}");
    assert_eq!(counted["under_replicated"], 0, "{counted}");
    assert!(counted["total"].as_u64().unwrap() >= 3, "{counted}");
    assert!(
        rows(&broker.cli_ok(&["cluster", "describe"], None))
            .contains(&vec!["OFFLINE".to_string(), "0".to_string()]),
        "{text}"
    );
}

#[test]
fn describe_topics_answers_each_version_in_its_own_layout() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path());
    let mut conn = broker.connect();
    common::create_topic(&mut conn, "versions", 2);
    let request = DescribeTopicsRequest {
        names: vec!["versions".to_string()],
    };
    let old: DescribeTopicsResponseV0 = conn
        .call_raw(ApiKey::DescribeTopics as u16, 0, &request)
        .expect("version 0 reads in its layout");
    let current: DescribeTopicsResponse = conn
        .call_raw(ApiKey::DescribeTopics as u16, 1, &request)
        .expect("version 1 reads in its layout");
    assert_eq!(old.topics[0].partitions.len(), 2);
    assert_eq!(DescribeTopicsResponseV0::from(current.clone()), old);
    for partition in &current.topics[0].partitions {
        assert_eq!(partition.leader, Some(NODE_ID), "{current:?}");
        assert_eq!(partition.replicas, [NODE_ID], "{current:?}");
        assert_eq!(partition.in_sync, [NODE_ID], "{current:?}");
    }
    // A version this broker does not speak is refused, not guessed at.
    let refused =
        conn.call_raw::<DescribeTopicsResponse>(ApiKey::DescribeTopics as u16, 2, &request);
    assert!(
        matches!(
            refused,
            Err(sluice_net::native::blocking::BlockingError::Broker {
                code: sluice_net::native::ErrorCode::UnsupportedVersion,
                ..
            })
        ),
        "{refused:?}"
    );
}

#[test]
fn a_broker_that_does_not_answer_fails_the_command() {
    // A port nothing listens on: bind one, note it, close it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let out = std::process::Command::new(common::SLUICE)
        .args(["cluster", "describe", "--brokers", &closed])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&closed), "{stderr}");
}
