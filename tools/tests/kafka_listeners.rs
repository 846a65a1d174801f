//! Black box: a cluster of three `sluice` nodes with two Kafka listeners
//! each but one: `PLAINTEXT` on 127.0.0.1, and `EXTERNAL`
//! (SASL_PLAINTEXT, by `listener_security_protocol_map`) on 0.0.0.0,
//! advertised as 127.0.0.2. Node 2 has no `EXTERNAL` listener.
//!
//! A client is told of the brokers' addresses of the listener it came
//! through: Metadata, FindCoordinator and DescribeCluster answer
//! 127.0.0.2 and the `EXTERNAL` ports to a client of `EXTERNAL`, leave
//! node 2 out, and answer LISTENER_NOT_FOUND for a partition node 2
//! leads, as Kafka does. librdkafka, bootstrapped on `EXTERNAL`, produces
//! to a partition another node leads (which it reaches only through that
//! node's advertised `EXTERNAL` address, with SASL) and reads it back.

mod common;
mod kafka_raw;

use std::{
    collections::BTreeMap,
    net::TcpStream,
    time::{Duration, Instant},
};

use common::{cluster::wait_for, nodes::Nodes};
use kafka_protocol::{
    messages::{
        create_topics_request::{CreatableReplicaAssignment, CreatableTopic},
        ApiKey, BrokerId, CreateTopicsRequest, CreateTopicsResponse, DescribeClusterRequest,
        DescribeClusterResponse, DescribeConfigsRequest, DescribeConfigsResponse,
        FindCoordinatorRequest, FindCoordinatorResponse, MetadataRequest, MetadataResponse,
        TopicName,
    },
    protocol::StrBytes,
};
use kafka_raw::{call, connect_to, login_at, users_file};
use rdkafka::{
    consumer::{BaseConsumer, Consumer},
    producer::{BaseProducer, BaseRecord, Producer},
    ClientConfig, Message, TopicPartitionList,
};

const NODES: u16 = 3;
/// Ports of a node: peer, native, PLAINTEXT, EXTERNAL.
const PORTS_PER_NODE: u16 = 4;
/// The address the `EXTERNAL` listeners advertise (they listen on
/// 0.0.0.0, which takes connections to any loopback address).
const ADVERTISED: &str = "127.0.0.2";
const LISTENER_NOT_FOUND: i16 = 72;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;

struct Cluster {
    nodes: Nodes,
}

impl Cluster {
    fn port(&self, node: u16, offset: u16) -> u16 {
        self.nodes.port(node, offset)
    }

    fn plaintext(&self, node: u16) -> String {
        format!("127.0.0.1:{}", self.port(node, 2))
    }

    fn external(&self, node: u16) -> String {
        format!("127.0.0.1:{}", self.port(node, 3))
    }

    fn start() -> Cluster {
        let mut nodes = Nodes::new(NODES, PORTS_PER_NODE);
        let users = users_file(&nodes.dir());
        for node in 0..NODES {
            let port = |offset: u16| nodes.port(node, offset);
            let mut env = vec![
                (
                    "SLUICE_LISTENER_SECURITY_PROTOCOL_MAP",
                    "EXTERNAL:SASL_PLAINTEXT".to_string(),
                ),
                ("SLUICE_SASL_PLAIN_USERS_FILE", users.display().to_string()),
                ("SLUICE_AUTO_CREATE_TOPICS", "false".to_string()),
            ];
            let mut listeners = format!("PLAINTEXT://127.0.0.1:{}", port(2));
            if node < 2 {
                listeners.push_str(&format!(",EXTERNAL://0.0.0.0:{}", port(3)));
                env.push((
                    "SLUICE_KAFKA_ADVERTISED_ADDR",
                    format!("EXTERNAL://{ADVERTISED}:{}", port(3)),
                ));
            }
            env.push(("SLUICE_KAFKA_ADDR", listeners));
            nodes.start(node, &env);
        }
        Cluster { nodes }
    }
}

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

fn metadata(stream: &mut TcpStream, topic: Option<&str>) -> MetadataResponse {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    let request =
        MetadataRequest::default().with_topics(topic.map(|name| {
            vec![MetadataRequestTopic::default().with_name(Some(TopicName(text(name))))]
        }));
    call(stream, ApiKey::Metadata, 12, &request)
}

/// The brokers a Metadata answer names: id, host and port.
fn brokers(answer: &MetadataResponse) -> BTreeMap<i32, String> {
    answer
        .brokers
        .iter()
        .map(|broker| (broker.node_id.0, format!("{}:{}", broker.host, broker.port)))
        .collect()
}

fn expected(cluster: &Cluster, nodes: &[u16], host: &str, offset: u16) -> BTreeMap<i32, String> {
    nodes
        .iter()
        .map(|node| {
            (
                i32::from(*node),
                format!("{host}:{}", cluster.port(*node, offset)),
            )
        })
        .collect()
}

/// Creates `name` with one replica per partition on the nodes given.
fn create_topic(stream: &mut TcpStream, name: &str, leaders: &[i32]) {
    let assignments = leaders
        .iter()
        .enumerate()
        .map(|(partition, leader)| {
            CreatableReplicaAssignment::default()
                .with_partition_index(partition as i32)
                .with_broker_ids(vec![BrokerId(*leader)])
        })
        .collect();
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(20_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(text(name)))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(assignments)]);
    let answer: CreateTopicsResponse = call(stream, ApiKey::CreateTopics, 7, &request);
    assert_eq!(answer.topics[0].error_code, 0, "{:?}", answer.topics[0]);
}

fn librdkafka(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanisms", "PLAIN")
        .set("sasl.username", "alice")
        .set("sasl.password", "alice-secret");
    config
}

#[test]
fn each_listener_is_told_its_own_addresses_and_a_broker_without_it_is_left_out() {
    let cluster = Cluster::start();
    // Every node registered.
    wait_for(
        || brokers(&metadata(&mut connect_to(&cluster.plaintext(0)), None)).len() == 3,
        "three brokers in the metadata",
    );
    let mut plain = connect_to(&cluster.plaintext(0));
    assert_eq!(
        brokers(&metadata(&mut plain, None)),
        expected(&cluster, &[0, 1, 2], "127.0.0.1", 2),
        "PLAINTEXT: every node's PLAINTEXT address"
    );
    let mut external = login_at(&cluster.external(0), "alice");
    assert_eq!(
        brokers(&metadata(&mut external, None)),
        expected(&cluster, &[0, 1], ADVERTISED, 3),
        "EXTERNAL: the advertised EXTERNAL addresses, without node 2"
    );
    // Node 1's own EXTERNAL listener says the same.
    let mut external_1 = login_at(&cluster.external(1), "alice");
    assert_eq!(
        brokers(&metadata(&mut external_1, None)),
        expected(&cluster, &[0, 1], ADVERTISED, 3)
    );

    // Partition 0 led by node 1, partition 1 by node 2.
    create_topic(&mut plain, "spread", &[1, 2]);
    wait_for(
        || {
            metadata(&mut connect_to(&cluster.plaintext(0)), Some("spread")).topics[0]
                .partitions
                .iter()
                .all(|partition| partition.error_code == 0 && partition.leader_id.0 >= 0)
        },
        "the topic's leaders",
    );
    let seen = metadata(&mut external, Some("spread"));
    let partitions: Vec<(i16, i32)> = seen.topics[0]
        .partitions
        .iter()
        .map(|partition| (partition.error_code, partition.leader_id.0))
        .collect();
    assert_eq!(
        partitions,
        [(0, 1), (LISTENER_NOT_FOUND, -1)],
        "a live leader without an EXTERNAL listener is LISTENER_NOT_FOUND"
    );
    let seen = metadata(&mut plain, Some("spread"));
    assert_eq!(seen.topics[0].partitions[1].leader_id.0, 2);

    // FindCoordinator: the coordinator's address of the listener asked.
    let find = |stream: &mut TcpStream| -> FindCoordinatorResponse {
        let request = FindCoordinatorRequest::default()
            .with_key_type(0)
            .with_coordinator_keys(vec![text("listeners-group")]);
        call(stream, ApiKey::FindCoordinator, 4, &request)
    };
    let coordinator = wait_until_coordinator(|| find(&mut plain));
    let through_external = &find(&mut external).coordinators[0];
    if coordinator == 2 {
        assert_eq!(through_external.error_code, COORDINATOR_NOT_AVAILABLE);
    } else {
        assert_eq!(through_external.error_code, 0);
        assert_eq!(
            format!("{}:{}", through_external.host, through_external.port),
            format!("{ADVERTISED}:{}", cluster.port(coordinator as u16, 3))
        );
    }

    // DescribeCluster.
    let described: DescribeClusterResponse = call(
        &mut external,
        ApiKey::DescribeCluster,
        0,
        &DescribeClusterRequest::default(),
    );
    let described: BTreeMap<i32, String> = described
        .brokers
        .iter()
        .map(|broker| {
            (
                broker.broker_id.0,
                format!("{}:{}", broker.host, broker.port),
            )
        })
        .collect();
    assert_eq!(described, expected(&cluster, &[0, 1], ADVERTISED, 3));

    // The broker configs Kafka's tools read.
    let configs = broker_configs(&mut plain, 0);
    assert_eq!(
        configs["listeners"],
        format!(
            "PLAINTEXT://127.0.0.1:{},EXTERNAL://0.0.0.0:{}",
            cluster.port(0, 2),
            cluster.port(0, 3)
        )
    );
    assert_eq!(
        configs["advertised.listeners"],
        format!(
            "PLAINTEXT://127.0.0.1:{},EXTERNAL://{ADVERTISED}:{}",
            cluster.port(0, 2),
            cluster.port(0, 3)
        )
    );
    assert_eq!(
        configs["listener.security.protocol.map"],
        "PLAINTEXT:PLAINTEXT,EXTERNAL:SASL_PLAINTEXT"
    );

    // librdkafka bootstrapped on node 0's EXTERNAL listener writes to and
    // reads from partition 0, which node 1 leads: it reaches node 1 only
    // through the address node 1 advertises for EXTERNAL, with SASL.
    let producer: BaseProducer = librdkafka(&cluster.external(0))
        .set("acks", "all")
        .create()
        .unwrap();
    let sent: Vec<String> = (0..50)
        .map(|index| format!("through EXTERNAL {index}"))
        .collect();
    for value in &sent {
        producer
            .send(
                BaseRecord::<(), _>::to("spread")
                    .partition(0)
                    .payload(value),
            )
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    assert_eq!(producer.in_flight_count(), 0, "every record acknowledged");
    let consumer: BaseConsumer = librdkafka(&cluster.external(0))
        .set("group.id", "listeners-reader")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("spread", 0, rdkafka::Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let mut read = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while read.len() < sent.len() && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(500)) {
            read.push(String::from_utf8(message.payload().unwrap().to_vec()).unwrap());
        }
    }
    assert_eq!(read, sent);
}

/// The node that coordinates the group, once one does.
fn wait_until_coordinator(mut find: impl FnMut() -> FindCoordinatorResponse) -> i32 {
    let mut node = -1;
    wait_for(
        || {
            let answer = find();
            let coordinator = &answer.coordinators[0];
            node = coordinator.node_id.0;
            coordinator.error_code == 0
        },
        "a group coordinator",
    );
    node
}

fn broker_configs(stream: &mut TcpStream, node: i32) -> BTreeMap<String, String> {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(text(&node.to_string()))
            .with_configuration_keys(None)]);
    let answer: DescribeConfigsResponse = call(stream, ApiKey::DescribeConfigs, 4, &request);
    answer.results[0]
        .configs
        .iter()
        .filter_map(|config| Some((config.name.to_string(), config.value.as_ref()?.to_string())))
        .collect()
}
