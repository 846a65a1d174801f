//! Black box: KIP-890 at the protocol level, sent raw to the built
//! `sluice` binary. A client of `transaction.version` 2 sends no
//! AddPartitionsToTxn or AddOffsetsToTxn: Produce v12 and TxnOffsetCommit
//! v5 add the partitions to its transaction, while older versions are
//! only verified (part 1). Every EndTxn v5 bumps the epoch, so a late
//! write of the transaction that ended is fenced.

mod common;
mod kafka_raw;

use std::net::TcpStream;

use bytes::Bytes;
use common::Broker;
use kafka_protocol::{
    messages::{
        describe_transactions_response::TransactionState,
        fetch_request::{FetchPartition, FetchTopic},
        produce_request::{PartitionProduceData, TopicProduceData},
        txn_offset_commit_request::{TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic},
        ApiKey, DescribeTransactionsRequest, DescribeTransactionsResponse, EndTxnRequest,
        EndTxnResponse, FetchRequest, FetchResponse, GroupId, ProduceRequest, ProduceResponse,
        ProducerId, TopicName, TransactionalId, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
    },
    protocol::StrBytes,
    records::RecordBatchDecoder,
};
use kafka_raw::{call, connect, init_transactional, transactional_records, until_settled};

const TOPIC: &str = "kip890";
const GROUP: &str = "kip890-group";

const NONE: i16 = 0;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

/// A transactional produce of `records` to `partition` at Produce
/// `version`: its error code.
fn produce(
    stream: &mut TcpStream,
    version: i16,
    transactional_id: &str,
    partition: i32,
    records: Bytes,
) -> i16 {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5_000)
        .with_transactional_id(Some(TransactionalId(text(transactional_id))))
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(text(TOPIC)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])]);
    let response: ProduceResponse = until_settled(
        || call(stream, ApiKey::Produce, version, &request),
        |response: &ProduceResponse| response.responses[0].partition_responses[0].error_code,
    );
    response.responses[0].partition_responses[0].error_code
}

/// A TxnOffsetCommit of offset `offset` of partition 0 for [`GROUP`] at
/// `version`: its error code.
fn txn_offset_commit(
    stream: &mut TcpStream,
    version: i16,
    transactional_id: &str,
    (id, epoch): (i64, i16),
    offset: i64,
) -> i16 {
    let request = TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(text(transactional_id)))
        .with_group_id(GroupId(text(GROUP)))
        .with_producer_id(ProducerId(id))
        .with_producer_epoch(epoch)
        .with_generation_id(-1)
        .with_member_id(text(""))
        .with_topics(vec![TxnOffsetCommitRequestTopic::default()
            .with_name(TopicName(text(TOPIC)))
            .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)])]);
    let response: TxnOffsetCommitResponse = until_settled(
        || call(stream, ApiKey::TxnOffsetCommit, version, &request),
        |response: &TxnOffsetCommitResponse| response.topics[0].partitions[0].error_code,
    );
    response.topics[0].partitions[0].error_code
}

/// The partitions of `transactional_id`'s transaction, and its state.
fn describe(stream: &mut TcpStream, transactional_id: &str) -> (String, Vec<(String, i32)>, i16) {
    let request = DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![TransactionalId(text(transactional_id))]);
    let response: DescribeTransactionsResponse =
        call(stream, ApiKey::DescribeTransactions, 0, &request);
    let state: &TransactionState = &response.transaction_states[0];
    assert_eq!(state.error_code, NONE);
    let mut partitions: Vec<(String, i32)> = state
        .topics
        .iter()
        .flat_map(|topic| {
            topic
                .partitions
                .iter()
                .map(move |partition| (topic.topic.0.to_string(), *partition))
        })
        .collect();
    partitions.sort();
    (
        state.transaction_state.to_string(),
        partitions,
        state.producer_epoch,
    )
}

/// EndTxn v5: the producer id and epoch to use next.
fn end(
    stream: &mut TcpStream,
    transactional_id: &str,
    (id, epoch): (i64, i16),
    commit: bool,
) -> (i64, i16) {
    let request = EndTxnRequest::default()
        .with_transactional_id(TransactionalId(text(transactional_id)))
        .with_producer_id(ProducerId(id))
        .with_producer_epoch(epoch)
        .with_committed(commit);
    let response: EndTxnResponse = until_settled(
        || call(stream, ApiKey::EndTxn, 5, &request),
        |response: &EndTxnResponse| response.error_code,
    );
    assert_eq!(response.error_code, NONE, "EndTxn");
    (response.producer_id.0, response.producer_epoch)
}

/// The values of partition `partition` read uncommitted from offset 0.
fn values(stream: &mut TcpStream, partition: i32) -> Vec<String> {
    let request = FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(text(TOPIC)))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let response: FetchResponse = call(stream, ApiKey::Fetch, 11, &request);
    let mut records = response.responses[0].partitions[0]
        .records
        .clone()
        .unwrap_or_default();
    let mut values = Vec::new();
    while !records.is_empty() {
        let set = RecordBatchDecoder::decode(&mut records).unwrap();
        for record in set.records {
            if !record.control {
                values.push(String::from_utf8(record.value.unwrap().to_vec()).unwrap());
            }
        }
    }
    values
}

#[test]
fn a_transaction_version_2_client_adds_partitions_implicitly_and_a_late_write_is_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), 2);
    broker.cli_ok(&["topic", "create", TOPIC, "--partitions", "2"], None);
    let mut stream = connect(&broker);
    let id = "kip890";
    let producer = init_transactional(&mut stream, id);

    // Part 1 (Produce v11, TxnOffsetCommit v4): a partition never added
    // is refused, and nothing is stored.
    let unadded = transactional_records(&[b"v11"], producer, 0);
    assert_eq!(produce(&mut stream, 11, id, 1, unadded), INVALID_TXN_STATE);
    assert_eq!(
        txn_offset_commit(&mut stream, 4, id, producer, 3),
        INVALID_TXN_STATE
    );
    assert_eq!(values(&mut stream, 1), Vec::<String>::new());

    // Part 2 (Produce v12, TxnOffsetCommit v5): they join the transaction.
    let first = transactional_records(&[b"a", b"b"], producer, 0);
    assert_eq!(produce(&mut stream, 12, id, 0, first), NONE);
    assert_eq!(txn_offset_commit(&mut stream, 5, id, producer, 7), NONE);
    let (state, partitions, _) = describe(&mut stream, id);
    assert_eq!(state, "Ongoing");
    assert_eq!(partitions.len(), 2, "{partitions:?}");
    assert!(
        partitions.contains(&(TOPIC.to_string(), 0)),
        "{partitions:?}"
    );
    assert!(
        partitions
            .iter()
            .any(|(topic, _)| topic == "__consumer_offsets"),
        "{partitions:?}"
    );
    // A partition with the transaction open takes the producer's next
    // batch without asking again.
    let second = transactional_records(&[b"c"], producer, 2);
    assert_eq!(produce(&mut stream, 12, id, 0, second), NONE);

    // Every EndTxn v5 bumps the epoch.
    let next = end(&mut stream, id, producer, true);
    assert_eq!(next, (producer.0, producer.1 + 1));

    // A late write of the transaction that ended: fenced, not stored.
    let late = transactional_records(&[b"late"], producer, 3);
    assert_eq!(
        produce(&mut stream, 12, id, 0, late),
        INVALID_PRODUCER_EPOCH
    );
    assert_eq!(values(&mut stream, 0), ["a", "b", "c"]);

    // The next transaction, at the new epoch, from sequence 0.
    let third = transactional_records(&[b"d"], next, 0);
    assert_eq!(produce(&mut stream, 12, id, 0, third), NONE);
    let (state, partitions, epoch) = describe(&mut stream, id);
    assert_eq!(
        (state.as_str(), partitions, epoch),
        ("Ongoing", vec![(TOPIC.to_string(), 0)], next.1)
    );
    let after = end(&mut stream, id, next, false);
    assert_eq!(after, (next.0, next.1 + 1));
    assert_eq!(values(&mut stream, 0), ["a", "b", "c", "d"]);
}
