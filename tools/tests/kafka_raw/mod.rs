//! Kafka requests over raw TCP, made and read with `kafka-protocol`: for
//! the black-box tests that need what a client library hides (bad frames,
//! pipelined requests on one connection).

#![allow(dead_code)]

use std::{net::TcpStream, time::Duration};

use bytes::{Bytes, BytesMut};
use kafka_protocol::{
    messages::ApiKey,
    protocol::{Decodable, Encodable},
    records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType},
};

use crate::common::Broker;

pub const TIMEOUT: Duration = Duration::from_secs(10);

pub fn connect(broker: &Broker) -> TcpStream {
    connect_to(&broker.kafka_addr)
}

/// A connection to the Kafka listener at `addr`.
pub fn connect_to(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connects");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream
}

pub fn frame<T: Encodable>(api: ApiKey, version: i16, correlation_id: i32, body: &T) -> Vec<u8> {
    crate::common::kafka_frame(api, version, correlation_id, "raw-test", body)
}

pub fn with_length(bytes: &[u8]) -> Vec<u8> {
    let mut framed = (bytes.len() as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    framed
}

/// The next response: its correlation id and body. `None` if the broker
/// closed the connection.
pub fn read_response(stream: &mut TcpStream, api: ApiKey, version: i16) -> Option<(i32, Bytes)> {
    crate::common::kafka_response(stream, api, version)
}

pub fn call<T: Encodable, R: Decodable>(
    stream: &mut TcpStream,
    api: ApiKey,
    version: i16,
    body: &T,
) -> R {
    crate::common::kafka_exchange(stream, api, version, 1, "raw-test", body)
}

pub fn records(values: &[&[u8]], compression: Compression) -> Bytes {
    records_edited(values, compression, |_| {})
}

/// [`records`], each record changed by `edit` before the batch is encoded
/// (its producer, its transactional and control bits, ...).
pub fn records_edited(
    values: &[&[u8]],
    compression: Compression,
    edit: impl Fn(&mut Record),
) -> Bytes {
    let mut records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(index, value)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: index as i64,
            sequence: -1,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(Bytes::copy_from_slice(value)),
            headers: Default::default(),
        })
        .collect();
    records.iter_mut().for_each(edit);
    let mut bytes = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut bytes,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    bytes.freeze()
}

/// Codes a transactional request is asked again on: the coordinator is
/// being made or loaded, or the previous transaction is still ending.
pub fn txn_retriable(code: i16) -> bool {
    // COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE,
    // NOT_COORDINATOR, NOT_ENOUGH_REPLICAS, CONCURRENT_TRANSACTIONS.
    matches!(code, 14 | 15 | 16 | 19 | 51)
}

/// Asks `ask` until `code` of its answer is not [`txn_retriable`], for at
/// most 30 s.
pub fn until_settled<R>(mut ask: impl FnMut() -> R, code: impl Fn(&R) -> i16) -> R {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let answer = ask();
        if !txn_retriable(code(&answer)) || std::time::Instant::now() > deadline {
            return answer;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// InitProducerId for `transactional_id` (v4): its producer id and epoch.
pub fn init_transactional(stream: &mut TcpStream, transactional_id: &str) -> (i64, i16) {
    use kafka_protocol::messages::{
        InitProducerIdRequest, InitProducerIdResponse, TransactionalId,
    };
    let request = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(
            kafka_protocol::protocol::StrBytes::from_string(transactional_id.to_string()),
        )))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(kafka_protocol::messages::ProducerId(-1))
        .with_producer_epoch(-1);
    let response: InitProducerIdResponse = until_settled(
        || call(stream, ApiKey::InitProducerId, 4, &request),
        |response: &InitProducerIdResponse| response.error_code,
    );
    assert_eq!(
        response.error_code, 0,
        "InitProducerId of {transactional_id}"
    );
    (response.producer_id.0, response.producer_epoch)
}

/// One transactional batch of `values` of producer `(id, epoch)` from
/// `sequence`.
pub fn transactional_records(values: &[&[u8]], (id, epoch): (i64, i16), sequence: i32) -> Bytes {
    records_edited(values, Compression::None, |record| {
        record.producer_id = id;
        record.producer_epoch = epoch;
        record.sequence = sequence + record.offset as i32;
        record.transactional = true;
    })
}

/// The users of the brokers the security tests start: each user's
/// password is its name and `-secret`.
pub const USERS: &str = "admin:admin-secret\nalice:alice-secret\nbob:bob-secret\nops:ops-secret\n";

/// [`USERS`] written as `dir/users`: its path.
pub fn users_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("users");
    std::fs::write(&path, USERS).unwrap();
    path
}

/// A broker of 2 shards whose Kafka listener is SASL_PLAINTEXT with
/// [`USERS`], without automatic topic creation, and `more` settings.
pub fn sasl_broker(dir: &std::path::Path, more: &[(&str, &str)]) -> Broker {
    let users = users_file(dir);
    let mut env = vec![
        ("SLUICE_KAFKA_ADDR", "SASL_PLAINTEXT://127.0.0.1:0"),
        ("SLUICE_SASL_PLAIN_USERS_FILE", users.to_str().unwrap()),
        ("SLUICE_AUTO_CREATE_TOPICS", "false"),
    ];
    env.extend_from_slice(more);
    Broker::start_with(&dir.join("data"), 2, &env)
}

fn text(value: &str) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(value.to_string())
}

/// A connection authenticated as `user` of [`USERS`] (SASL PLAIN).
pub fn login(broker: &Broker, user: &str) -> TcpStream {
    login_at(&broker.kafka_addr, user)
}

/// A connection to the Kafka listener at `addr`, authenticated as `user`
/// of [`USERS`] (SASL PLAIN).
pub fn login_at(addr: &str, user: &str) -> TcpStream {
    use kafka_protocol::messages::{
        SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
        SaslHandshakeResponse,
    };
    let mut stream = connect_to(addr);
    let handshake: SaslHandshakeResponse = call(
        &mut stream,
        ApiKey::SaslHandshake,
        1,
        &SaslHandshakeRequest::default().with_mechanism(text("PLAIN")),
    );
    assert_eq!(handshake.error_code, 0);
    let token = format!("\0{user}\0{user}-secret");
    let answer: SaslAuthenticateResponse = call(
        &mut stream,
        ApiKey::SaslAuthenticate,
        2,
        &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token.into_bytes())),
    );
    assert_eq!(answer.error_code, 0, "{user} authenticates");
    stream
}

/// CreateTopics (v7) of `name`, one partition, one replica: its error
/// code.
pub fn create_topic(stream: &mut TcpStream, name: &str) -> i16 {
    use kafka_protocol::messages::{
        create_topics_request::CreatableTopic, CreateTopicsRequest, CreateTopicsResponse, TopicName,
    };
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(text(name)))
            .with_num_partitions(1)
            .with_replication_factor(1)]);
    let answer: CreateTopicsResponse = call(stream, ApiKey::CreateTopics, 7, &request);
    answer.topics[0].error_code
}

/// A produce (v9, acks=all) of one record to partition 0 of `name`: its
/// error code.
pub fn produce_one(stream: &mut TcpStream, name: &str) -> i16 {
    use kafka_protocol::messages::{
        produce_request::{PartitionProduceData, TopicProduceData},
        ProduceRequest, ProduceResponse, TopicName,
    };
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(text(name)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records(&[b"one"], Compression::None)))])]);
    let answer: ProduceResponse = call(stream, ApiKey::Produce, 9, &request);
    answer.responses[0].partition_responses[0].error_code
}
