//! Black box: Kafka's topic configs on the built `sluice` binary, set as a
//! Kafka user sets them and doing what Kafka documents: the broker's
//! timestamps (LogAppendTime), the timestamp bounds, the batch size cap,
//! list configs changed by APPEND and SUBTRACT, DescribeConfigs with types,
//! synonyms and documentation for a topic and for the broker, and the
//! configs Kafka 4 ignores or removed.

mod common;
mod kafka_common;
mod kafka_raw;

use std::time::{SystemTime, UNIX_EPOCH};

use common::Broker;
use kafka_common::{consumer, produce, producer, read_to_end, Record};
use kafka_protocol::messages::{
    describe_configs_request::DescribeConfigsResource,
    describe_configs_response::DescribeConfigsResult,
    incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig},
    ApiKey, DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_raw::{call, connect};
use rdkafka::{error::KafkaError, types::RDKafkaErrorCode, Offset, Timestamp};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn create(broker: &Broker, topic: &str, configs: &[&str]) {
    let mut args = vec!["topic", "create", topic, "--partitions", "1"];
    for config in configs {
        args.extend(["-c", config]);
    }
    broker.cli_ok(&args, None);
}

fn describe(broker: &Broker, resource_type: i8, name: &str) -> DescribeConfigsResult {
    let request = DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_include_documentation(true)
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.to_string()))]);
    let mut stream = connect(broker);
    let response: DescribeConfigsResponse = call(&mut stream, ApiKey::DescribeConfigs, 4, &request);
    response.results.into_iter().next().unwrap()
}

fn value(result: &DescribeConfigsResult, name: &str) -> String {
    let entry = result
        .configs
        .iter()
        .find(|entry| entry.name.as_str() == name)
        .unwrap_or_else(|| panic!("{name} is not described"));
    entry
        .value
        .as_ref()
        .map(|value| value.to_string())
        .unwrap_or_default()
}

fn alter(broker: &Broker, topic: &str, changes: &[(&str, i8, &str)]) -> i16 {
    alter_resource(broker, TOPIC, topic, changes)
}

fn alter_resource(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    changes: &[(&str, i8, &str)],
) -> i16 {
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configs(
                changes
                    .iter()
                    .map(|(name, operation, value)| {
                        AlterableConfig::default()
                            .with_name(StrBytes::from_string(name.to_string()))
                            .with_config_operation(*operation)
                            .with_value(Some(StrBytes::from_string(value.to_string())))
                    })
                    .collect(),
            ),
    ]);
    let mut stream = connect(broker);
    let response: IncrementalAlterConfigsResponse =
        call(&mut stream, ApiKey::IncrementalAlterConfigs, 1, &request);
    response.responses[0].error_code
}

#[test]
fn log_append_time_stamps_records_with_the_brokers_time() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 1);
    create(
        &broker,
        "stamped",
        &["message.timestamp.type=LogAppendTime"],
    );
    let producer = producer(&broker, &[]);
    let before = now_ms();
    // A producer's timestamp far in the past, which CreateTime would keep.
    let record = Record::new(Some(b"k"), Some(b"v")).at(1_000);
    assert!(produce(&producer, "stamped", Some(0), &[record])[0].is_ok());
    let after = now_ms();
    let consumer = consumer(&broker, &[]);
    let read = read_to_end(&consumer, "stamped", &[(0, Offset::Beginning)]);
    match read[&0][0].timestamp {
        Timestamp::LogAppendTime(at) => assert!(
            (before..=after).contains(&at),
            "stamped {at}, produced between {before} and {after}"
        ),
        other => panic!("expected LogAppendTime, read {other:?}"),
    }
}

#[test]
fn batches_past_the_topics_bounds_are_refused_and_nothing_is_stored() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 1);
    create(
        &broker,
        "bounded",
        &[
            "max.message.bytes=10000",
            "message.timestamp.before.max.ms=60000",
        ],
    );
    let producer = producer(
        &broker,
        &[("enable.idempotence", "false"), ("retries", "0")],
    );
    let large = Record::new(None, Some(&[7u8; 20_000]));
    match &produce(&producer, "bounded", Some(0), &[large])[0] {
        Err(KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge)) => {}
        other => panic!("a 20 kB record on a 10 kB topic: {other:?}"),
    }
    let old = Record::new(None, Some(b"old")).at(now_ms() - 3_600_000);
    match &produce(&producer, "bounded", Some(0), &[old])[0] {
        Err(KafkaError::MessageProduction(RDKafkaErrorCode::InvalidTimestamp)) => {}
        other => panic!("a record an hour old on a one-minute topic: {other:?}"),
    }
    // Kafka 4's default bound ahead: an hour.
    let ahead = Record::new(None, Some(b"ahead")).at(now_ms() + 2 * 3_600_000);
    match &produce(&producer, "bounded", Some(0), &[ahead])[0] {
        Err(KafkaError::MessageProduction(RDKafkaErrorCode::InvalidTimestamp)) => {}
        other => panic!("a record two hours ahead: {other:?}"),
    }
    let fine = Record::new(None, Some(b"fine"));
    let placed = produce(&producer, "bounded", Some(0), &[fine]);
    assert_eq!(
        placed[0].as_ref().unwrap().offset,
        0,
        "nothing refused was stored"
    );
}

#[test]
fn describe_configs_gives_every_topic_config_with_its_type_source_and_synonyms() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 1);
    create(
        &broker,
        "described",
        &["retention.ms=60000", "compression.type=producer"],
    );
    let described = describe(&broker, TOPIC, "described");
    assert_eq!(described.error_code, 0);
    assert!(
        described.configs.len() >= 35,
        "{} configs",
        described.configs.len()
    );
    let retention = described
        .configs
        .iter()
        .find(|entry| entry.name.as_str() == "retention.ms")
        .unwrap();
    assert_eq!(retention.value.as_deref(), Some("60000"));
    assert_eq!(retention.config_source, 1, "TOPIC_CONFIG");
    assert_eq!(retention.config_type, 5, "LONG");
    assert!(retention.documentation.is_some());
    let synonyms: Vec<(&str, i8)> = retention
        .synonyms
        .iter()
        .map(|synonym| (synonym.name.as_str(), synonym.source))
        .collect();
    assert_eq!(synonyms, [("retention.ms", 1), ("log.retention.ms", 5)]);
    let policy = described
        .configs
        .iter()
        .find(|entry| entry.name.as_str() == "cleanup.policy")
        .unwrap();
    assert_eq!(
        (policy.config_type, policy.config_source),
        (7, 5),
        "LIST, DEFAULT_CONFIG"
    );
    assert_eq!(value(&described, "message.timestamp.type"), "CreateTime");
    assert_eq!(
        value(&described, "message.timestamp.after.max.ms"),
        "3600000"
    );

    // The cluster-wide resource lists what is set dynamically: nothing yet.
    let cluster_wide = describe(&broker, BROKER, "");
    assert_eq!(
        (cluster_wide.error_code, cluster_wide.configs.len()),
        (0, 0)
    );
    let broker_configs = describe(&broker, BROKER, "0");
    assert_eq!(broker_configs.error_code, 0);
    assert_eq!(
        value(&broker_configs, "group.min.session.timeout.ms"),
        "6000"
    );
    assert_eq!(value(&broker_configs, "log.retention.ms"), "604800000");
    assert_eq!(value(&broker_configs, "auto.create.topics.enable"), "true");
    assert_eq!(value(&describe(&broker, BROKER, "0"), "node.id"), "0");
    assert_ne!(
        describe(&broker, BROKER, "9").error_code,
        0,
        "another broker's"
    );
}

#[test]
fn list_configs_take_append_and_subtract_and_ignored_configs_are_dropped() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 1);
    create(&broker, "listed", &["message.format.version=3.0-IV1"]);
    const SET: i8 = 0;
    const APPEND: i8 = 2;
    const SUBTRACT: i8 = 3;
    assert_eq!(
        alter(&broker, "listed", &[("cleanup.policy", APPEND, "compact")]),
        0
    );
    assert_eq!(
        value(&describe(&broker, TOPIC, "listed"), "cleanup.policy"),
        "delete,compact"
    );
    assert_eq!(
        alter(&broker, "listed", &[("cleanup.policy", SUBTRACT, "delete")]),
        0
    );
    assert_eq!(
        value(&describe(&broker, TOPIC, "listed"), "cleanup.policy"),
        "compact"
    );
    // APPEND to a config that is not a list, an unknown config, a bad value.
    assert_eq!(
        alter(&broker, "listed", &[("retention.ms", APPEND, "5")]),
        40
    );
    assert_eq!(alter(&broker, "listed", &[("retention.mss", SET, "5")]), 40);
    assert_eq!(
        alter(&broker, "listed", &[("compression.type", SET, "brotli")]),
        40
    );
    assert_eq!(
        alter(
            &broker,
            "listed",
            &[("message.timestamp.difference.max.ms", SET, "5")]
        ),
        40,
        "removed in Kafka 4.0"
    );
    let described = describe(&broker, TOPIC, "listed");
    assert!(
        described
            .configs
            .iter()
            .all(|entry| entry.name.as_str() != "message.format.version"),
        "ignored, as Kafka 4 ignores it"
    );
}

#[test]
fn the_clusters_dynamic_broker_defaults_apply_to_topics_that_do_not_set_their_own() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(data_dir.path(), 1);
    create(&broker, "defaulted", &[]);
    create(&broker, "own", &["max.message.bytes=100000"]);
    const SET: i8 = 0;
    const APPEND: i8 = 2;
    let changes = [
        ("message.max.bytes", SET, "5000"),
        ("log.retention.ms", SET, "123456"),
        ("log.cleanup.policy", APPEND, "compact"),
    ];
    assert_eq!(alter_resource(&broker, BROKER, "", &changes), 0);
    // Static settings, and one broker's own, do not change at run time.
    let read_only = [("group.min.session.timeout.ms", SET, "1000")];
    assert_eq!(alter_resource(&broker, BROKER, "", &read_only), 40);
    let one_broker = [("log.retention.ms", SET, "1")];
    assert_ne!(alter_resource(&broker, BROKER, "0", &one_broker), 0);
    let bad = [("log.retention.ms", SET, "soon")];
    assert_eq!(alter_resource(&broker, BROKER, "", &bad), 40);

    let check = |broker: &Broker| {
        let described = describe(broker, TOPIC, "defaulted");
        let retention = described
            .configs
            .iter()
            .find(|entry| entry.name.as_str() == "retention.ms")
            .unwrap();
        assert_eq!(retention.value.as_deref(), Some("123456"));
        assert_eq!(retention.config_source, 3, "DYNAMIC_DEFAULT_BROKER_CONFIG");
        assert_eq!(retention.synonyms[0].name.as_str(), "log.retention.ms");
        assert_eq!(value(&described, "cleanup.policy"), "delete,compact");
        let broker_configs = describe(broker, BROKER, "0");
        assert_eq!(value(&broker_configs, "log.retention.ms"), "123456");
        let cluster_wide = describe(broker, BROKER, "");
        assert_eq!(cluster_wide.configs.len(), 3, "the three set");
        assert_eq!(value(&cluster_wide, "log.cleanup.policy"), "delete,compact");
        // The topic's own value wins over the default.
        assert_eq!(
            value(&describe(broker, TOPIC, "own"), "max.message.bytes"),
            "100000"
        );
        // And the default is in force: a batch over 5000 bytes is refused
        // where the topic has no limit of its own.
        let producer = producer(broker, &[("enable.idempotence", "false"), ("retries", "0")]);
        // Keyed: the cluster default makes topics compacted too.
        let large = Record::new(Some(b"key"), Some(&[7u8; 8_000]));
        match &produce(
            &producer,
            "defaulted",
            Some(0),
            std::slice::from_ref(&large),
        )[0]
        {
            Err(KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge)) => {}
            other => panic!("an 8 kB record over a 5 kB default: {other:?}"),
        }
        assert!(produce(&producer, "own", Some(0), &[large])[0].is_ok());
    };
    check(&broker);
    // Kept in the replicated metadata: the same after a restart.
    broker.restart();
    check(&broker);
}

/// The codec of the first batch a Kafka Fetch of `topic` partition 0 from
/// offset 0 returns, and how many records the consumer reads.
fn stored_codec(broker: &Broker, topic: &str) -> i16 {
    use kafka_protocol::messages::{
        fetch_request::{FetchPartition, FetchTopic},
        FetchRequest, FetchResponse, TopicName,
    };
    let fetch = FetchRequest::default()
        .with_max_wait_ms(100)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let mut stream = connect(broker);
    let response: FetchResponse = call(&mut stream, ApiKey::Fetch, 11, &fetch);
    let records = response.responses[0].partitions[0]
        .records
        .clone()
        .expect("records");
    assert!(records.len() > 61, "a whole batch");
    i16::from_be_bytes([records[21], records[22]]) & 0b111
}

#[test]
fn compression_type_recompresses_what_a_producer_compressed_otherwise() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 1);
    create(
        &broker,
        "gzipped",
        &["compression.type=gzip", "compression.gzip.level=9"],
    );
    create(&broker, "as-sent", &["compression.type=producer"]);
    create(&broker, "plain", &["compression.type=uncompressed"]);
    let producer = producer(&broker, &[("compression.codec", "lz4")]);
    let records: Vec<Record> = (0..100)
        .map(|index| {
            Record::new(Some(format!("k{index}").as_bytes()), Some(&[b'v'; 200]))
                .header("h", Some(b"x"))
        })
        .collect();
    for topic in ["gzipped", "as-sent", "plain"] {
        for placed in produce(&producer, topic, Some(0), &records) {
            placed.unwrap();
        }
    }
    assert_eq!(stored_codec(&broker, "gzipped"), 1, "gzip");
    assert_eq!(
        stored_codec(&broker, "as-sent"),
        3,
        "lz4, as the producer sent it"
    );
    assert_eq!(stored_codec(&broker, "plain"), 0, "uncompressed");
    // Every record reads back as it was sent, whatever the codec.
    let consumer = consumer(&broker, &[]);
    for topic in ["gzipped", "as-sent", "plain"] {
        let read = read_to_end(&consumer, topic, &[(0, Offset::Beginning)]);
        let read: Vec<Record> = read[&0]
            .iter()
            .map(|consumed| Record {
                timestamp: None,
                ..consumed.record.clone()
            })
            .collect();
        let sent: Vec<Record> = records
            .iter()
            .map(|record| Record {
                timestamp: None,
                ..record.clone()
            })
            .collect();
        assert_eq!(read, sent, "{topic}");
    }
}
