//! Black box: bad input on the Kafka listener of the built `sluice`
//! binary, over raw TCP with requests made by `kafka-protocol`. Each bad
//! request gets Kafka's answer or closes its own connection, never another
//! one, and never the broker.

mod common;
mod kafka_raw;

use std::{
    io::{Read, Write},
    net::TcpStream,
};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use common::Broker;
use kafka_protocol::{
    messages::{
        produce_request::{PartitionProduceData, TopicProduceData},
        ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, FetchRequest,
        MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, RequestHeader,
        TopicName,
    },
    protocol::{Decodable, Encodable, StrBytes},
    records::{Compression, Record},
};
use kafka_raw::{call, connect, frame, read_response, records, records_edited, with_length};

fn closed(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(stream.read(&mut byte), Ok(0))
        || matches!(stream.read(&mut byte), Err(ref e) if e.kind() == std::io::ErrorKind::ConnectionReset)
}

/// The broker still answers on a new connection.
fn still_serving(broker: &Broker) {
    let mut stream = connect(broker);
    let response: ApiVersionsResponse = call(
        &mut stream,
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default(),
    );
    assert_eq!(response.error_code, 0);
}

#[test]
fn a_client_asking_too_new_an_api_versions_gets_the_error_and_the_versions_at_v0() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 1);
    let mut stream = connect(&broker);
    // Made at v3, then marked v99 (which the codec would not make).
    let mut request = frame(ApiKey::ApiVersions, 3, 7, &ApiVersionsRequest::default());
    request[6..8].copy_from_slice(&99i16.to_be_bytes());
    stream.write_all(&request).unwrap();
    // The answer's header and body are v0, whatever was asked.
    let (correlation_id, mut body) = read_response(&mut stream, ApiKey::ApiVersions, 0).unwrap();
    assert_eq!(correlation_id, 7);
    let response = ApiVersionsResponse::decode(&mut body, 0).unwrap();
    assert_eq!(response.error_code, 35, "UNSUPPORTED_VERSION");
    let produce = response
        .api_keys
        .iter()
        .find(|api| api.api_key == ApiKey::Produce as i16)
        .expect("Produce is advertised");
    assert_eq!((produce.min_version, produce.max_version), (3, 12));
    // The connection stays usable.
    let response: ApiVersionsResponse = call(
        &mut stream,
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default(),
    );
    assert_eq!(response.error_code, 0);
    // KIP-890 part 2 is finalized, so a client that knows it uses it.
    let finalized: Vec<(String, i16)> = response
        .finalized_features
        .iter()
        .map(|feature| (feature.name.to_string(), feature.max_version_level))
        .collect();
    assert_eq!(finalized, [("transaction.version".to_string(), 2)]);
    assert!(response.finalized_features_epoch >= 0);
}

#[test]
fn requests_that_cannot_be_read_close_their_connection_only() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 1);
    let mut bystander = connect(&broker);
    let _: ApiVersionsResponse = call(
        &mut bystander,
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default(),
    );

    // An unknown API.
    let mut stream = connect(&broker);
    let mut unknown = BytesMut::new();
    unknown.put_i16(999);
    unknown.put_i16(0);
    unknown.put_i32(1);
    unknown.put_i16(-1);
    stream.write_all(&with_length(&unknown)).unwrap();
    assert!(closed(&mut stream), "unknown api key");

    // A version of an API the broker does not serve.
    let mut stream = connect(&broker);
    stream
        .write_all(&frame(ApiKey::Metadata, 13, 1, &MetadataRequest::default()))
        .unwrap();
    assert!(closed(&mut stream), "Metadata v13");

    // A body cut short.
    let mut stream = connect(&broker);
    let whole = frame(ApiKey::CreateTopics, 7, 1, &CreateTopicsRequest::default());
    let mut cut = whole[4..whole.len() - 3].to_vec();
    cut = with_length(&cut);
    stream.write_all(&cut).unwrap();
    assert!(closed(&mut stream), "a body cut short");

    // A forged array count: two billion topics in a few bytes. The codec
    // reserves room before it reads; the broker must survive it.
    for (version, count) in [(4i16, 0x7fff_ffffu32), (12, u32::MAX)] {
        let mut stream = connect(&broker);
        let mut request = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(ApiKey::Metadata as i16)
            .with_request_api_version(version)
            .with_correlation_id(1)
            .encode(
                &mut request,
                ApiKey::Metadata.request_header_version(version),
            )
            .unwrap();
        if version >= 9 {
            // A compact array: unsigned varint count + 1.
            let mut value = count;
            while value >= 0x80 {
                request.put_u8((value as u8) | 0x80);
                value >>= 7;
            }
            request.put_u8(value as u8);
        } else {
            request.put_u32(count);
        }
        request.put_u8(0);
        stream.write_all(&with_length(&request)).unwrap();
        assert!(closed(&mut stream), "forged count at v{version}");
    }

    // A frame over the cap: closed from its length alone.
    let mut stream = connect(&broker);
    stream.write_all(&i32::MAX.to_be_bytes()).unwrap();
    assert!(closed(&mut stream), "a frame over the cap");

    // The others were not touched.
    let response: ApiVersionsResponse = call(
        &mut bystander,
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default(),
    );
    assert_eq!(response.error_code, 0);
    still_serving(&broker);
}

fn produce(stream: &mut TcpStream, topic: &str, records: Bytes) -> ProduceResponse {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])]);
    call(stream, ApiKey::Produce, 9, &request)
}

#[test]
fn bad_batches_get_kafkas_errors_and_store_nothing() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 1);
    let mut stream = connect(&broker);

    let good = records(&[b"one", b"two"], Compression::None);
    let answer = produce(&mut stream, "bad-batches", good.clone());
    let partition = &answer.responses[0].partition_responses[0];
    assert_eq!((partition.error_code, partition.base_offset), (0, 0));

    // The encoder makes a batch per record here: two batches for a
    // partition are stored all or none.
    // A flipped byte in the last record: the last batch's CRC does not
    // match, and the first, sound, is not stored either.
    let mut flipped = good.to_vec();
    let last = flipped.len() - 1;
    flipped[last] ^= 0xff;
    let answer = produce(&mut stream, "bad-batches", Bytes::from(flipped));
    let partition = &answer.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, 2, "CORRUPT_MESSAGE");
    assert!(partition.error_message.is_some());

    // A batch length past the bytes sent.
    let mut long = good.to_vec();
    long[8..12].copy_from_slice(&(good.len() as i32).to_be_bytes());
    let answer = produce(&mut stream, "bad-batches", Bytes::from(long));
    assert_eq!(answer.responses[0].partition_responses[0].error_code, 2);

    // A partition the topic does not have.
    let request =
        ProduceRequest::default()
            .with_acks(1)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("bad-batches")))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(99)
                    .with_records(Some(good.clone()))])]);
    let answer: ProduceResponse = call(&mut stream, ApiKey::Produce, 9, &request);
    assert_eq!(
        answer.responses[0].partition_responses[0].error_code, 3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );

    // acks other than 0, 1 and -1.
    let request = request.with_acks(2);
    let answer: ProduceResponse = call(&mut stream, ApiKey::Produce, 9, &request);
    assert_eq!(
        answer.responses[0].partition_responses[0].error_code, 21,
        "INVALID_REQUIRED_ACKS"
    );

    // Transactional batches come with the producer's transactional id, as
    // Kafka checks first; with one, only a transaction its coordinator
    // knows as ongoing and holding the partition may write (KIP-890); a
    // control batch (a transaction marker) is the broker's to write, never
    // a producer's.
    let producer = |record: &mut Record| {
        record.producer_id = 5;
        record.producer_epoch = 0;
        record.sequence = record.offset as i32;
    };
    let unowned = records_edited(&[b"t"], Compression::None, |record| {
        record.transactional = true
    });
    let marker = records_edited(&[b"m"], Compression::None, |record| {
        producer(record);
        record.transactional = true;
        record.control = true;
        record.key = Some(Bytes::from_static(&[0, 0, 0, 1]));
    });
    let bare_marker = records_edited(&[b"m"], Compression::None, |record| {
        producer(record);
        record.control = true;
        record.key = Some(Bytes::from_static(&[0, 0, 0, 1]));
    });
    let transactional = records_edited(&[b"t"], Compression::None, |record| {
        producer(record);
        record.transactional = true;
    });
    for (batch, transactional_id, code, what) in [
        (unowned, None, 53, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"),
        (marker, None, 53, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"),
        (bare_marker, None, 2, "CORRUPT_MESSAGE"),
        (transactional, Some("never-began"), 48, "INVALID_TXN_STATE"),
    ] {
        let request =
            ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(5000)
                .with_transactional_id(transactional_id.map(|id| {
                    kafka_protocol::messages::TransactionalId(StrBytes::from_static_str(id))
                }))
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_static_str("bad-batches")))
                    .with_partition_data(vec![PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch))])]);
        // NOT_ENOUGH_REPLICAS, which producers retry, while the first
        // transactional id's coordinator is made and loaded.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let answer = loop {
            let answer: ProduceResponse = call(&mut stream, ApiKey::Produce, 9, &request);
            let error = answer.responses[0].partition_responses[0].error_code;
            if error != 19 || std::time::Instant::now() > deadline {
                break answer;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        let partition = &answer.responses[0].partition_responses[0];
        assert_eq!(partition.error_code, code, "{what}");
        assert!(partition.error_message.is_some(), "{what}");
    }

    // Nothing but the good batch was stored: the next one lands at 2.
    let answer = produce(&mut stream, "bad-batches", good);
    assert_eq!(answer.responses[0].partition_responses[0].base_offset, 2);
}

#[test]
fn pipelined_requests_are_answered_in_the_order_sent() {
    let data_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(data_dir.path(), 2);
    let mut stream = connect(&broker);
    let metadata = MetadataRequest::default()
        .with_topics(None)
        .with_allow_auto_topic_creation(false);
    // A fetch that waits (nothing to read) first, then two quick requests.
    let _: ProduceResponse = produce(
        &mut stream,
        "pipelined",
        records(&[b"x"], Compression::None),
    );
    let fetch = FetchRequest::default()
        .with_max_wait_ms(300)
        .with_min_bytes(1_000_000)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            kafka_protocol::messages::fetch_request::FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("pipelined")))
                .with_partitions(vec![
                    kafka_protocol::messages::fetch_request::FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(1)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let mut sent = frame(ApiKey::Fetch, 11, 10, &fetch);
    sent.extend(frame(
        ApiKey::ApiVersions,
        3,
        11,
        &ApiVersionsRequest::default(),
    ));
    sent.extend(frame(ApiKey::Metadata, 12, 12, &metadata));
    stream.write_all(&sent).unwrap();
    let (first, _) = read_response(&mut stream, ApiKey::Fetch, 11).unwrap();
    let (second, _) = read_response(&mut stream, ApiKey::ApiVersions, 3).unwrap();
    let (third, mut body) = read_response(&mut stream, ApiKey::Metadata, 12).unwrap();
    assert_eq!((first, second, third), (10, 11, 12));
    let metadata = MetadataResponse::decode(&mut body, 12).unwrap();
    assert_eq!(metadata.topics.len(), 1);
    let _ = body.remaining();
}
