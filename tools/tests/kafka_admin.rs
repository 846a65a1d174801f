//! Black box: librdkafka's admin client against the built `sluice`
//! binary: topics created, refused, grown, configured, emptied up to an
//! offset and deleted, and the cluster described, each checked through
//! Kafka's own metadata and, where it says more, `sluice topic describe`.

mod common;
mod kafka_common;

use std::time::Duration;

use common::Broker;
use kafka_common::*;
use rdkafka::{
    admin::{
        AlterConfig, NewPartitions, NewTopic, OwnedResourceSpecifier, ResourceSpecifier,
        TopicReplication,
    },
    consumer::Consumer,
    types::RDKafkaErrorCode,
    Offset, TopicPartitionList,
};

const TIMEOUT: Duration = Duration::from_secs(30);

fn partition_count(consumer: &KafkaConsumer, topic: &str) -> Option<usize> {
    let metadata = consumer.fetch_metadata(None, TIMEOUT).expect("metadata");
    metadata
        .topics()
        .iter()
        .find(|listed| listed.name() == topic)
        .map(|listed| listed.partitions().len())
}

fn config_value(
    admin: &rdkafka::admin::AdminClient<Recorder>,
    topic: &str,
    name: &str,
) -> Option<String> {
    let described =
        block_on(admin.describe_configs([&ResourceSpecifier::Topic(topic)], &admin_options()))
            .expect("DescribeConfigs");
    assert_eq!(described.len(), 1);
    let resource = described[0]
        .as_ref()
        .unwrap_or_else(|code| panic!("DescribeConfigs {topic}: {code:?}"));
    assert_eq!(
        resource.specifier,
        OwnedResourceSpecifier::Topic(topic.to_string())
    );
    resource.get(name).and_then(|entry| entry.value.clone())
}

#[test]
fn topics_are_created_refused_grown_configured_and_deleted() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    let admin = admin(&broker);
    let consumer = consumer(&broker, &[]);

    let orders =
        NewTopic::new("orders", 3, TopicReplication::Fixed(1)).set("retention.ms", "3600000");
    let audit = NewTopic::new("audit", 1, TopicReplication::Fixed(1));
    let created =
        block_on(admin.create_topics([&orders, &audit], &admin_options())).expect("CreateTopics");
    assert_eq!(
        created,
        vec![Ok("orders".to_string()), Ok("audit".to_string())]
    );
    assert_eq!(partition_count(&consumer, "orders"), Some(3));
    assert_eq!(partition_count(&consumer, "audit"), Some(1));

    // Again: the topic exists.
    let again = block_on(admin.create_topics([&audit], &admin_options())).expect("CreateTopics");
    assert_eq!(
        again,
        vec![Err((
            "audit".to_string(),
            RDKafkaErrorCode::TopicAlreadyExists
        ))]
    );

    // Validation only: nothing is created.
    let dry = NewTopic::new("dry-run", 2, TopicReplication::Fixed(1));
    let validated = block_on(admin.create_topics([&dry], &admin_options().validate_only(true)))
        .expect("CreateTopics validate_only");
    assert_eq!(validated, vec![Ok("dry-run".to_string())]);
    assert_eq!(
        partition_count(&consumer, "dry-run"),
        None,
        "validate_only created the topic"
    );

    // Configs given at creation are described, and can be altered.
    assert_eq!(
        config_value(&admin, "orders", "retention.ms").as_deref(),
        Some("3600000")
    );
    let alter = AlterConfig::new(ResourceSpecifier::Topic("orders")).set("retention.ms", "7200000");
    let altered = block_on(admin.alter_configs([&alter], &admin_options())).expect("AlterConfigs");
    assert_eq!(
        altered,
        vec![Ok(OwnedResourceSpecifier::Topic("orders".to_string()))]
    );
    assert_eq!(
        config_value(&admin, "orders", "retention.ms").as_deref(),
        Some("7200000")
    );
    let native = describe_native(&broker, "orders");
    assert_eq!(native["configs"]["retention.ms"], "7200000", "{native}");

    // The broker's own configs can be described.
    let broker_configs =
        block_on(admin.describe_configs([&ResourceSpecifier::Broker(0)], &admin_options()))
            .expect("DescribeConfigs broker");
    assert!(
        broker_configs[0].is_ok(),
        "broker configs: {:?}",
        broker_configs[0]
    );

    // Partitions are added, never removed.
    let grow = NewPartitions::new("orders", 6);
    let grown =
        block_on(admin.create_partitions([&grow], &admin_options())).expect("CreatePartitions");
    assert_eq!(grown, vec![Ok("orders".to_string())]);
    assert_eq!(partition_count(&consumer, "orders"), Some(6));
    let shrink = NewPartitions::new("orders", 2);
    let shrunk =
        block_on(admin.create_partitions([&shrink], &admin_options())).expect("CreatePartitions");
    assert_eq!(
        shrunk,
        vec![Err((
            "orders".to_string(),
            RDKafkaErrorCode::InvalidPartitions
        ))]
    );
    assert_eq!(partition_count(&consumer, "orders"), Some(6));

    // The new partitions take records.
    let producer = producer(&broker, &[]);
    let records = vec![Record::new(None, Some(b"in a new partition"))];
    let placed = produce_ok(&producer, "orders", Some(5), &records);
    assert_eq!(placed[0].partition, 5);

    // Deleted topics are gone; an unknown one cannot be deleted.
    let deleted =
        block_on(admin.delete_topics(&["audit"], &admin_options())).expect("DeleteTopics");
    assert_eq!(deleted, vec![Ok("audit".to_string())]);
    assert_eq!(
        partition_count(&consumer, "audit"),
        None,
        "audit still listed"
    );
    let unknown =
        block_on(admin.delete_topics(&["never-made"], &admin_options())).expect("DeleteTopics");
    assert_eq!(
        unknown,
        vec![Err((
            "never-made".to_string(),
            RDKafkaErrorCode::UnknownTopicOrPartition
        ))]
    );
    let listed = broker.cli(&["topic", "list", "--format", "json"], None);
    assert!(listed.status.success());
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|topic| topic["name"].as_str().unwrap())
        // A FindCoordinator creates the offsets topic, as Kafka's does.
        .filter(|name| *name != "__consumer_offsets")
        .collect();
    assert_eq!(
        names,
        ["orders"],
        "the native protocol sees the same topics"
    );
}

#[test]
fn records_are_deleted_up_to_an_offset() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    create_topic(&broker, "trimmed", 2);
    let producer = producer(&broker, &[("linger.ms", "0"), ("batch.num.messages", "1")]);
    let records: Vec<Record> = (0..100)
        .map(|index| Record::new(None, Some(format!("r{index}").as_bytes())))
        .collect();
    produce_ok(&producer, "trimmed", Some(0), &records);
    produce_ok(&producer, "trimmed", Some(1), &records[..10]);

    let admin = admin(&broker);
    let mut before = TopicPartitionList::new();
    before
        .add_partition_offset("trimmed", 0, Offset::Offset(40))
        .unwrap();
    let result = block_on(admin.delete_records(&before, &admin_options())).expect("DeleteRecords");
    let element = result
        .find_partition("trimmed", 0)
        .expect("partition 0 in the answer");
    assert!(element.error().is_ok(), "{:?}", element.error());
    assert_eq!(
        element.offset(),
        Offset::Offset(40),
        "the new low watermark"
    );

    let consumer = consumer(&broker, &[]);
    assert_eq!(
        consumer.fetch_watermarks("trimmed", 0, TIMEOUT).unwrap(),
        (40, 100)
    );
    assert_eq!(
        consumer.fetch_watermarks("trimmed", 1, TIMEOUT).unwrap(),
        (0, 10)
    );
    let read = read_to_end(&consumer, "trimmed", &[(0, Offset::Beginning)]);
    let offsets: Vec<i64> = read[&0].iter().map(|consumed| consumed.offset).collect();
    assert_eq!(offsets, (40..100).collect::<Vec<_>>());
    assert_eq!(read[&0][0].record.value.as_deref(), Some(&b"r40"[..]));
    let native = describe_native(&broker, "trimmed");
    assert_eq!(native["partitions"][0]["log_start"], 40, "{native}");
    assert_eq!(native["partitions"][1]["log_start"], 0, "{native}");

    // Deleting up to the end (-1: the high watermark) empties a partition.
    let mut all = TopicPartitionList::new();
    all.add_partition_offset("trimmed", 1, Offset::End).unwrap();
    let result = block_on(admin.delete_records(&all, &admin_options())).expect("DeleteRecords");
    let element = result.find_partition("trimmed", 1).unwrap();
    assert!(element.error().is_ok(), "{:?}", element.error());
    assert_eq!(element.offset(), Offset::Offset(10));
    assert_eq!(
        consumer.fetch_watermarks("trimmed", 1, TIMEOUT).unwrap(),
        (10, 10)
    );
}

#[test]
fn the_cluster_is_this_one_broker() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    let admin = admin(&broker);
    let cluster = describe_cluster(&admin).unwrap_or_else(|error| {
        panic!(
            "DescribeCluster: {error}; last log lines:\n{}",
            admin.inner().context().log_tail(40)
        )
    });
    assert_eq!(cluster.nodes.len(), 1, "{cluster:?}");
    let (id, host, port) = &cluster.nodes[0];
    assert_eq!(format!("{host}:{port}"), broker.kafka_addr, "{cluster:?}");
    assert_eq!(cluster.controller, Some(*id), "{cluster:?}");
    assert!(
        cluster
            .cluster_id
            .as_deref()
            .is_some_and(|id| !id.is_empty()),
        "{cluster:?}"
    );
}

#[test]
fn replicas_are_placed_on_this_node_only_until_replication_lands() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_with(data_dir.path(), 1, &[("SLUICE_NODE_ID", "5")]);
    let admin = admin(&broker);
    let consumer = consumer(&broker, &[]);
    let create = |topic: &NewTopic| {
        block_on(admin.create_topics([topic], &admin_options()))
            .expect("CreateTopics")
            .remove(0)
    };

    // Explicit replica assignments on this node: one partition each.
    let on_this_node = NewTopic::new("placed", 3, TopicReplication::Variable(&[&[5], &[5], &[5]]));
    assert_eq!(create(&on_this_node), Ok("placed".to_string()));
    assert_eq!(partition_count(&consumer, "placed"), Some(3));

    // A second replica, another broker, or a replication factor above 1:
    // refused, and nothing is created.
    let refusals = [
        (
            NewTopic::new("two-replicas", 1, TopicReplication::Variable(&[&[5, 6]])),
            RDKafkaErrorCode::InvalidReplicaAssignment,
        ),
        (
            NewTopic::new("elsewhere", 2, TopicReplication::Variable(&[&[5], &[1]])),
            RDKafkaErrorCode::InvalidReplicaAssignment,
        ),
        (
            NewTopic::new("factor-three", 1, TopicReplication::Fixed(3)),
            RDKafkaErrorCode::InvalidReplicationFactor,
        ),
    ];
    for (topic, code) in refusals {
        let name = topic.name.to_string();
        assert_eq!(create(&topic), Err((name.clone(), code)));
        assert_eq!(partition_count(&consumer, &name), None, "{name}");
    }

    // New partitions: assigned to this node, they are made; elsewhere, or
    // fewer assignments than new partitions, refused.
    let grow = |partitions: &NewPartitions| {
        block_on(admin.create_partitions([partitions], &admin_options()))
            .expect("CreatePartitions")
            .remove(0)
    };
    let elsewhere = NewPartitions::new("placed", 4).assign(&[&[2]]);
    assert_eq!(
        grow(&elsewhere),
        Err((
            "placed".to_string(),
            RDKafkaErrorCode::InvalidReplicaAssignment
        ))
    );
    let too_few = NewPartitions::new("placed", 5).assign(&[&[5]]);
    assert_eq!(
        grow(&too_few),
        Err((
            "placed".to_string(),
            RDKafkaErrorCode::InvalidReplicaAssignment
        ))
    );
    assert_eq!(partition_count(&consumer, "placed"), Some(3));
    let here = NewPartitions::new("placed", 5).assign(&[&[5], &[5]]);
    assert_eq!(grow(&here), Ok("placed".to_string()));
    assert_eq!(partition_count(&consumer, "placed"), Some(5));
}
