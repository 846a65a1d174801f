//! Black box: details of the Kafka protocol that Kafka's Java client
//! depends on, each found by its JUnit tests (`tests/java_clients/`), here
//! asked of the `sluice` binary request by request, so that they hold
//! without Java.

mod common;

use std::net::TcpStream;

use common::{kafka_exchange, Broker};
use kafka_protocol::{
    error::ResponseError,
    messages::{
        list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
        metadata_request::MetadataRequestTopic,
        ApiKey, ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse,
        TopicName,
    },
    protocol::StrBytes,
};

fn connect(broker: &Broker) -> TcpStream {
    let stream = TcpStream::connect(&broker.kafka_addr).expect("connects");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    stream
}

fn metadata(stream: &mut TcpStream, topics: Vec<MetadataRequestTopic>) -> MetadataResponse {
    let request = MetadataRequest::default()
        .with_topics(Some(topics))
        .with_allow_auto_topic_creation(false);
    kafka_exchange(stream, ApiKey::Metadata, 12, 1, "java-details", &request)
}

/// The Java client asks for topics by id (Admin.describeTopics of topic
/// ids) with an empty name, not a null one: the id decides, and the
/// answer carries it (a topic of id zero makes the client throw).
#[test]
fn metadata_finds_a_topic_by_id_whatever_its_name_says() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 1);
    broker.cli_ok(&["topic", "create", "by-id", "--partitions", "2"], None);
    let mut stream = connect(&broker);

    let by_name = metadata(
        &mut stream,
        vec![MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("by-id"))))],
    );
    let id = by_name.topics[0].topic_id;
    assert!(!id.is_nil(), "{by_name:?}");

    for name in [None, Some("")] {
        let by_id = metadata(
            &mut stream,
            vec![MetadataRequestTopic::default()
                .with_topic_id(id)
                .with_name(name.map(|name| TopicName(StrBytes::from_static_str(name))))],
        );
        assert_eq!(by_id.topics.len(), 1, "{by_id:?}");
        let topic = &by_id.topics[0];
        assert_eq!(topic.error_code, 0, "name {name:?}: {topic:?}");
        assert_eq!(topic.topic_id, id, "name {name:?}");
        assert_eq!(topic.name.as_ref().map(|name| &*name.0), Some("by-id"));
        assert_eq!(topic.partitions.len(), 2);
    }

    let unknown = uuid::Uuid::from_u128(0x1234_5678);
    let answer = metadata(
        &mut stream,
        vec![MetadataRequestTopic::default()
            .with_topic_id(unknown)
            .with_name(Some(TopicName(StrBytes::from_static_str(""))))],
    );
    assert_eq!(answer.topics.len(), 1, "{answer:?}");
    assert_eq!(
        answer.topics[0].topic_id, unknown,
        "the id asked for, echoed"
    );
    assert_eq!(
        answer.topics[0].error_code,
        ResponseError::UnknownTopicId.code()
    );
}

fn list_offset(stream: &mut TcpStream, topic: &str, partition: i32, timestamp: i64) -> (i16, i64) {
    let request = ListOffsetsRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_current_leader_epoch(-1)
                .with_timestamp(timestamp)])]);
    let answer: ListOffsetsResponse =
        kafka_exchange(stream, ApiKey::ListOffsets, 9, 2, "java-details", &request);
    let part = &answer.topics[0].partitions[0];
    (part.error_code, part.offset)
}

/// ListOffsets v9's latest tiered offset (-5, KIP-1005; the Java Admin's
/// OffsetSpec.latestTiered): nothing is tiered, so Kafka's answer without
/// remote storage, offset -1 and no error; and the earliest local offset
/// (-4) is the log start.
#[test]
fn list_offsets_answers_the_latest_tiered_offset_as_kafka_without_remote_storage() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 1);
    broker.cli_ok(&["topic", "create", "tiers", "--partitions", "1"], None);
    broker.cli_ok(&["produce", "tiers"], Some(b"one\ntwo\nthree\n"));
    let mut stream = connect(&broker);
    assert_eq!(list_offset(&mut stream, "tiers", 0, -1), (0, 3), "latest");
    assert_eq!(
        list_offset(&mut stream, "tiers", 0, -4),
        (0, 0),
        "earliest local"
    );
    assert_eq!(
        list_offset(&mut stream, "tiers", 0, -5),
        (0, -1),
        "latest tiered"
    );
    assert_eq!(
        list_offset(&mut stream, "tiers", 7, -5).0,
        ResponseError::UnknownTopicOrPartition.code(),
        "latest tiered of a partition that does not exist"
    );
}
