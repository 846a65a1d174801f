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
    let stream = TcpStream::connect(&broker.kafka_addr).expect("connects");
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
