//! Black box: the requests on one Kafka connection take effect in the order
//! sent, as Kafka serves them. Each round sends its requests in one write,
//! without waiting for any answer, and checks that every request saw the
//! effects of the ones before it: the log start a DeleteRecords moved, the
//! end the produces before it reached.

mod common;
mod kafka_raw;

use std::io::Write;

use common::Broker;
use kafka_protocol::{
    messages::{
        delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic},
        list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
        produce_request::{PartitionProduceData, TopicProduceData},
        ApiKey, DeleteRecordsRequest, DeleteRecordsResponse, ListOffsetsRequest,
        ListOffsetsResponse, ProduceRequest, ProduceResponse, TopicName,
    },
    protocol::{Decodable, StrBytes},
    records::Compression,
};
use kafka_raw::{connect, frame, read_response, records};

const TOPIC: &str = "in-order";

/// ListOffsets' timestamps for the log start and the log end.
const EARLIEST: i64 = -2;
const LATEST: i64 = -1;

fn topic_name() -> TopicName {
    TopicName(StrBytes::from_static_str(TOPIC))
}

fn produce(correlation_id: i32, count: usize) -> Vec<u8> {
    let values: Vec<&[u8]> = vec![b"value"; count];
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name())
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records(&values, Compression::None)))])]);
    frame(ApiKey::Produce, 9, correlation_id, &request)
}

fn delete_records(correlation_id: i32, before: i64) -> Vec<u8> {
    let request = DeleteRecordsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(topic_name())
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(0)
                .with_offset(before)])]);
    frame(ApiKey::DeleteRecords, 2, correlation_id, &request)
}

fn list_offsets(correlation_id: i32, timestamp: i64) -> Vec<u8> {
    let request = ListOffsetsRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name())
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(timestamp)])]);
    frame(ApiKey::ListOffsets, 7, correlation_id, &request)
}

/// The next answer, which must be the one to `correlation_id`.
fn answer<R: Decodable>(
    stream: &mut std::net::TcpStream,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
) -> R {
    let (answered, mut body) = read_response(stream, api, version).expect("an answer");
    assert_eq!(answered, correlation_id, "answers come in request order");
    R::decode(&mut body, version).unwrap()
}

fn listed(response: ListOffsetsResponse) -> i64 {
    let partition = &response.topics[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    partition.offset
}

#[test]
fn each_request_sees_the_effects_of_every_earlier_one_on_its_connection() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    broker.cli_ok(&["topic", "create", TOPIC, "--partitions", "1"], None);
    let mut stream = connect(&broker);
    let mut end = 0i64;
    for round in 0..100 {
        let first = round * 10;
        // Five records, the log start moved past three of them, the start
        // asked; two produces overlapping each other, the end asked.
        let mut sent = produce(first, 5);
        sent.extend(delete_records(first + 1, end + 3));
        sent.extend(list_offsets(first + 2, EARLIEST));
        sent.extend(produce(first + 3, 4));
        sent.extend(produce(first + 4, 6));
        sent.extend(list_offsets(first + 5, LATEST));
        stream.write_all(&sent).unwrap();

        let produced: ProduceResponse = answer(&mut stream, ApiKey::Produce, 9, first);
        let placed = &produced.responses[0].partition_responses[0];
        assert_eq!((placed.error_code, placed.base_offset), (0, end));
        let deleted: DeleteRecordsResponse =
            answer(&mut stream, ApiKey::DeleteRecords, 2, first + 1);
        let start = &deleted.topics[0].partitions[0];
        assert_eq!((start.error_code, start.low_watermark), (0, end + 3));
        let earliest = listed(answer(&mut stream, ApiKey::ListOffsets, 7, first + 2));
        assert_eq!(
            earliest,
            end + 3,
            "round {round}: the start DeleteRecords set"
        );
        for (correlation_id, base) in [(first + 3, end + 5), (first + 4, end + 9)] {
            let produced: ProduceResponse = answer(&mut stream, ApiKey::Produce, 9, correlation_id);
            let placed = &produced.responses[0].partition_responses[0];
            assert_eq!((placed.error_code, placed.base_offset), (0, base));
        }
        let latest = listed(answer(&mut stream, ApiKey::ListOffsets, 7, first + 5));
        end += 15;
        assert_eq!(latest, end, "round {round}: the end the produces reached");
    }
}
