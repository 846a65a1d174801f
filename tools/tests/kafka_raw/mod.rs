//! Kafka requests over raw TCP, made and read with `kafka-protocol`: for
//! the black-box tests that need what a client library hides (bad frames,
//! pipelined requests on one connection).

#![allow(dead_code)]

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use kafka_protocol::{
    messages::{ApiKey, RequestHeader, ResponseHeader},
    protocol::{Decodable, Encodable, StrBytes},
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
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("bad-input")));
    let mut bytes = BytesMut::new();
    header
        .encode(&mut bytes, api.request_header_version(version))
        .unwrap();
    body.encode(&mut bytes, version).unwrap();
    with_length(&bytes)
}

pub fn with_length(bytes: &[u8]) -> Vec<u8> {
    let mut framed = (bytes.len() as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    framed
}

/// The next response: its correlation id and body. `None` if the broker
/// closed the connection.
pub fn read_response(stream: &mut TcpStream, api: ApiKey, version: i16) -> Option<(i32, Bytes)> {
    let mut length = [0u8; 4];
    if stream.read_exact(&mut length).is_err() {
        return None;
    }
    let mut body = vec![0u8; i32::from_be_bytes(length) as usize];
    stream.read_exact(&mut body).expect("a whole response");
    let mut body = Bytes::from(body);
    let header = ResponseHeader::decode(&mut body, api.response_header_version(version)).unwrap();
    Some((header.correlation_id, body))
}

pub fn call<T: Encodable, R: Decodable>(
    stream: &mut TcpStream,
    api: ApiKey,
    version: i16,
    body: &T,
) -> R {
    stream.write_all(&frame(api, version, 1, body)).unwrap();
    let (correlation_id, mut body) = read_response(stream, api, version).expect("a response");
    assert_eq!(correlation_id, 1);
    R::decode(&mut body, version).unwrap()
}

pub fn records(values: &[&[u8]], compression: Compression) -> Bytes {
    let records: Vec<Record> = values
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
