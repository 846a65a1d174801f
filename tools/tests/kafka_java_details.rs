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
        metadata_request::MetadataRequestTopic, ApiKey, MetadataRequest, MetadataResponse,
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
