//! Black box: three `sluice` nodes whose peer ports speak mutual TLS only
//! (`peer_ssl_*`): the controller quorum forms and partitions replicate
//! through it (acks=all with three in sync); a peer that does not speak
//! TLS after its hello, and a node whose certificate is of another
//! authority, are refused and carry nothing; the node started again with
//! its own certificate catches up.

mod common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use common::{
    certs::Authority,
    cluster::{create_topic, metadata, wait_for},
    nodes::Nodes,
};
use rdkafka::{
    producer::{BaseProducer, BaseRecord, Producer},
    ClientConfig,
};

const NODES: u16 = 3;
/// Ports of a node: peer, native, Kafka.
const PORTS_PER_NODE: u16 = 3;

/// A node's certificate and key of `authority`, written into `dir`.
fn node_files(dir: &Path, authority: &Authority, name: &str) -> (PathBuf, PathBuf) {
    let (certificate, key) = authority.issue_node(name);
    let paths = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&paths.0, certificate).unwrap();
    std::fs::write(&paths.1, key).unwrap();
    paths
}

fn kafka(nodes: &Nodes, node: u16) -> String {
    format!("127.0.0.1:{}", nodes.port(node, 2))
}

fn start(nodes: &mut Nodes, node: u16, certificate: &Path, key: &Path, ca: &Path) {
    let kafka = kafka(nodes, node);
    nodes.start(
        node,
        &[
            ("SLUICE_KAFKA_ADDR", kafka),
            (
                "SLUICE_PEER_SSL_CERTIFICATE_FILE",
                certificate.display().to_string(),
            ),
            ("SLUICE_PEER_SSL_KEY_FILE", key.display().to_string()),
            ("SLUICE_PEER_SSL_CA_FILE", ca.display().to_string()),
            ("SLUICE_DEFAULT_REPLICATION_FACTOR", "3".to_string()),
            ("SLUICE_MIN_INSYNC_REPLICAS", "2".to_string()),
        ],
    );
}

fn brokers(nodes: &Nodes) -> usize {
    metadata(&kafka(nodes, 0), None).map_or(0, |seen| seen.brokers.len())
}

fn in_sync(nodes: &Nodes, topic: &str) -> usize {
    metadata(&kafka(nodes, 0), Some(topic))
        .and_then(|seen| seen.partitions.first().map(|p| p.in_sync.len()))
        .unwrap_or(0)
}

/// Produces `count` records acks=all through node 0: whether every one was
/// acknowledged.
fn produce(nodes: &Nodes, topic: &str, count: usize) -> bool {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka(nodes, 0))
        .set("broker.address.family", "v4")
        .set("acks", "all")
        .set("message.timeout.ms", "20000")
        .create()
        .unwrap();
    for index in 0..count {
        let value = format!("{topic} {index}");
        producer
            .send(BaseRecord::<(), _>::to(topic).partition(0).payload(&value))
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).is_ok() && producer.in_flight_count() == 0
}

/// A hello from node 7, shard 0, to node 0's shard 0 (the peer wire's
/// version 2), with the cluster id the nodes run with.
fn hello() -> Vec<u8> {
    let mut hello = b"SLPR".to_vec();
    hello.push(2);
    hello.extend_from_slice(b"BwcHBwcHBwcHBwcHBwcHBw");
    hello.extend_from_slice(&7i32.to_le_bytes());
    hello.extend_from_slice(&0i32.to_le_bytes());
    hello.extend_from_slice(&0u32.to_le_bytes());
    hello.extend_from_slice(&0u32.to_le_bytes());
    hello
}

#[test]
fn nodes_speak_mutual_tls_and_refuse_a_peer_without_it() {
    let mut nodes = Nodes::new(NODES, PORTS_PER_NODE);
    let dir = nodes.dir();
    let authority = Authority::new("sluice cluster CA");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, authority.pem()).unwrap();
    let files: Vec<(PathBuf, PathBuf)> = (0..NODES)
        .map(|node| node_files(&dir, &authority, &format!("node-{node}")))
        .collect();
    for node in 0..NODES {
        let (certificate, key) = &files[node as usize];
        start(&mut nodes, node, certificate, key, &ca);
    }
    wait_for(|| brokers(&nodes) == 3, "three brokers registered over TLS");
    create_topic(&kafka(&nodes, 0), "secured", 1, 3, &[]).unwrap();
    wait_for(|| in_sync(&nodes, "secured") == 3, "three replicas in sync");
    assert!(produce(&nodes, "secured", 100), "acks=all over TLS");

    // A peer that sends its hello, then frames in the clear.
    let mut plain = TcpStream::connect(format!("127.0.0.1:{}", nodes.port(0, 0))).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    plain.write_all(&hello()).unwrap();
    let mut status = [0u8; 1];
    plain.read_exact(&mut status).unwrap();
    assert_eq!(status[0], 0, "the hello itself is accepted");
    // A frame: length 2, kind 1, one byte of body.
    let _ = plain.write_all(&[2, 0, 0, 0, 1, 0]);
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = plain.read_to_end(&mut rest);
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "the connection was not closed"
    );
    wait_for(
        || nodes.log(0).contains("peer TLS handshake failed"),
        "the refusal logged",
    );

    // Node 2 with a certificate of another authority: refused by the
    // others (and it refuses theirs), so it drops out of the cluster.
    nodes.kill(2);
    let other = Authority::new("another CA");
    let other_ca = dir.join("other-ca.pem");
    std::fs::write(&other_ca, other.pem()).unwrap();
    let (certificate, key) = node_files(&dir, &other, "impostor");
    start(&mut nodes, 2, &certificate, &key, &other_ca);
    wait_for(|| brokers(&nodes) == 2, "node 2 left out");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(brokers(&nodes), 2, "node 2 stays out");
    assert!(in_sync(&nodes, "secured") <= 2);
    assert!(
        produce(&nodes, "secured", 50),
        "two in sync still acknowledge"
    );

    // Its own certificate again: back, caught up, in sync.
    nodes.kill(2);
    let (certificate, key) = &files[2];
    start(&mut nodes, 2, certificate, key, &ca);
    wait_for(|| brokers(&nodes) == 3, "node 2 back");
    wait_for(|| in_sync(&nodes, "secured") == 3, "node 2 in sync again");
}
