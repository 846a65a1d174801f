//! Black box: offsets committed in a transaction (TxnOffsetCommit), sent
//! raw to the built `sluice` binary. Until the transaction's marker they
//! are pending: OffsetFetch answers the offset committed before them, and
//! UNSTABLE_OFFSET_COMMIT to a client that asks for stable offsets only
//! (KIP-447's `require_stable`), also after a `kill -9` and a restart,
//! which reads them back from `__consumer_offsets`. The committer checks of
//! KIP-447 and the per-partition refusals are Kafka's.

mod common;
mod kafka_raw;

use std::{
    net::TcpStream,
    time::{Duration, Instant},
};

use common::Broker;
use kafka_protocol::{
    messages::{
        offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic},
        offset_fetch_request::{
            OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
        },
        txn_offset_commit_request::{TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic},
        AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, ApiKey, ApiVersionsRequest,
        ApiVersionsResponse, GroupId, OffsetCommitRequest, OffsetCommitResponse,
        OffsetFetchRequest, OffsetFetchResponse, ProducerId, TopicName, TransactionalId,
        TxnOffsetCommitRequest, TxnOffsetCommitResponse,
    },
    protocol::StrBytes,
};
use kafka_raw::{call, connect, init_transactional, until_settled};

const TOPIC: &str = "orders";
const GROUP: &str = "billing";
/// The transaction whose offsets are committed.
const TRANSACTIONAL_ID: &str = "billing-tx";

const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const OFFSET_METADATA_TOO_LARGE: i16 = 12;
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const NOT_COORDINATOR: i16 = 16;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const UNSTABLE_OFFSET_COMMIT: i16 = 88;

/// How long the coordinator may take to come up (the offsets topic is
/// created at the first group request, then loaded).
const COORDINATOR_WAIT: Duration = Duration::from_secs(30);

fn name(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// Whether an answer says to ask again shortly.
fn retriable(code: i16) -> bool {
    matches!(
        code,
        COORDINATOR_LOAD_IN_PROGRESS | COORDINATOR_NOT_AVAILABLE | NOT_COORDINATOR
    )
}

/// Asks `ask` until its answer's code is not one to ask again on.
fn until_served<R>(mut ask: impl FnMut() -> R, code: impl Fn(&R) -> i16) -> R {
    let since = Instant::now();
    loop {
        let answer = ask();
        if !retriable(code(&answer)) || since.elapsed() > COORDINATOR_WAIT {
            return answer;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A plain commit of `offset` for partition 0, with no member.
fn commit(stream: &mut TcpStream, offset: i64) -> i16 {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(name(GROUP)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(name(TOPIC)))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)])]);
    let response: OffsetCommitResponse = until_served(
        || call(stream, ApiKey::OffsetCommit, 8, &request),
        |response: &OffsetCommitResponse| response.topics[0].partitions[0].error_code,
    );
    response.topics[0].partitions[0].error_code
}

/// A TxnOffsetCommit of v3 for `group`: (topic, partition, offset,
/// metadata) each; the error code of each, in order.
/// AddOffsetsToTxn of [`GROUP`] to the transaction of `producer`.
fn add_offsets(stream: &mut TcpStream, (producer_id, epoch): (i64, i16)) {
    let request = AddOffsetsToTxnRequest::default()
        .with_transactional_id(TransactionalId(name(TRANSACTIONAL_ID)))
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(epoch)
        .with_group_id(GroupId(name(GROUP)));
    let response: AddOffsetsToTxnResponse = until_settled(
        || call(stream, ApiKey::AddOffsetsToTxn, 3, &request),
        |response: &AddOffsetsToTxnResponse| response.error_code,
    );
    assert_eq!(response.error_code, NONE, "AddOffsetsToTxn");
}

fn txn_commit(
    stream: &mut TcpStream,
    group: &str,
    (generation, member): (i32, &str),
    (producer_id, epoch): (i64, i16),
    offsets: &[(&str, i32, i64, &str)],
) -> Vec<i16> {
    let topics = offsets
        .iter()
        .map(|&(topic, partition, offset, metadata)| {
            TxnOffsetCommitRequestTopic::default()
                .with_name(TopicName(name(topic)))
                .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(partition)
                    .with_committed_offset(offset)
                    .with_committed_metadata(Some(name(metadata)))])
        })
        .collect();
    let request = TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(name(TRANSACTIONAL_ID)))
        .with_group_id(GroupId(name(group)))
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(epoch)
        .with_generation_id(generation)
        .with_member_id(name(member))
        .with_topics(topics);
    let response: TxnOffsetCommitResponse = until_served(
        || call(stream, ApiKey::TxnOffsetCommit, 3, &request),
        |response: &TxnOffsetCommitResponse| response.topics[0].partitions[0].error_code,
    );
    response
        .topics
        .iter()
        .flat_map(|topic| {
            topic
                .partitions
                .iter()
                .map(|partition| partition.error_code)
        })
        .collect()
}

/// OffsetFetch v7 of partitions 0 and 1 (`None`: every partition with an
/// offset): (partition, offset, error code) each.
fn fetch(stream: &mut TcpStream, partitions: Option<&[i32]>, stable: bool) -> Vec<(i32, i64, i16)> {
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(name(GROUP)))
        .with_require_stable(stable)
        .with_topics(partitions.map(|partitions| {
            vec![OffsetFetchRequestTopic::default()
                .with_name(TopicName(name(TOPIC)))
                .with_partition_indexes(partitions.to_vec())]
        }));
    let response: OffsetFetchResponse = until_served(
        || call(stream, ApiKey::OffsetFetch, 7, &request),
        |response: &OffsetFetchResponse| response.error_code,
    );
    assert_eq!(response.error_code, NONE);
    response
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(|partition| {
                (
                    partition.partition_index,
                    partition.committed_offset,
                    partition.error_code,
                )
            })
        })
        .collect()
}

/// OffsetFetch v8 (groups) of partitions 0 and 1, stable only.
fn fetch_stable_v8(stream: &mut TcpStream) -> Vec<(i32, i64, i16)> {
    let request = OffsetFetchRequest::default()
        .with_require_stable(true)
        .with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(name(GROUP)))
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(TopicName(name(TOPIC)))
                .with_partition_indexes(vec![0, 1])]))]);
    let response: OffsetFetchResponse = call(stream, ApiKey::OffsetFetch, 9, &request);
    let group = &response.groups[0];
    assert_eq!(group.error_code, NONE);
    group
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(|partition| {
                (
                    partition.partition_index,
                    partition.committed_offset,
                    partition.error_code,
                )
            })
        })
        .collect()
}

#[test]
fn transactional_offsets_stay_pending_until_their_marker_and_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), 2);
    broker.cli_ok(&["topic", "create", TOPIC, "--partitions", "2"], None);
    let mut stream = connect(&broker);

    let versions: ApiVersionsResponse = call(
        &mut stream,
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default(),
    );
    let served = versions
        .api_keys
        .iter()
        .find(|api| api.api_key == ApiKey::TxnOffsetCommit as i16)
        .map(|api| (api.min_version, api.max_version));
    assert_eq!(served, Some((0, 5)));

    assert_eq!(commit(&mut stream, 5), NONE);
    // A transaction at epoch 1 (a second InitProducerId bumps it), with
    // the group added to it, so that its coordinator verifies the offsets
    // partition (KIP-890).
    init_transactional(&mut stream, TRANSACTIONAL_ID);
    let producer = init_transactional(&mut stream, TRANSACTIONAL_ID);
    assert_eq!(producer.1, 1);
    add_offsets(&mut stream, producer);
    let metadata_max = "m".repeat(4097);
    let results = txn_commit(
        &mut stream,
        GROUP,
        (-1, ""),
        producer,
        &[
            (TOPIC, 0, 42, "read up to 42"),
            (TOPIC, 1, 7, ""),
            ("no-such-topic", 0, 1, ""),
            (TOPIC, 1, 8, &metadata_max),
        ],
    );
    assert_eq!(
        results,
        vec![
            NONE,
            NONE,
            UNKNOWN_TOPIC_OR_PARTITION,
            OFFSET_METADATA_TOO_LARGE
        ]
    );

    let check = |stream: &mut TcpStream, when: &str| {
        // Pending: not what a plain fetch answers, unstable to a stable one.
        assert_eq!(
            fetch(stream, Some(&[0, 1]), false),
            vec![(0, 5, NONE), (1, -1, NONE)],
            "{when}: plain"
        );
        assert_eq!(
            fetch(stream, Some(&[0, 1]), true),
            vec![
                (0, -1, UNSTABLE_OFFSET_COMMIT),
                (1, -1, UNSTABLE_OFFSET_COMMIT)
            ],
            "{when}: stable only"
        );
        assert_eq!(
            fetch_stable_v8(stream),
            vec![
                (0, -1, UNSTABLE_OFFSET_COMMIT),
                (1, -1, UNSTABLE_OFFSET_COMMIT)
            ],
            "{when}: stable only, v8"
        );
        // Every partition: those with a committed offset.
        assert_eq!(
            fetch(stream, None, true),
            vec![(0, -1, UNSTABLE_OFFSET_COMMIT)],
            "{when}: every partition, stable only"
        );
        assert_eq!(
            fetch(stream, None, false),
            vec![(0, 5, NONE)],
            "{when}: every partition"
        );
    };
    check(&mut stream, "committed");

    // KIP-447: the member fields are checked when given. The group has no
    // members; a group that does not exist has no generation.
    assert_eq!(
        txn_commit(
            &mut stream,
            GROUP,
            (3, "m"),
            producer,
            &[(TOPIC, 0, 50, "")]
        ),
        vec![UNKNOWN_MEMBER_ID]
    );
    assert_eq!(
        txn_commit(
            &mut stream,
            "never-seen",
            (3, "m"),
            producer,
            &[(TOPIC, 0, 50, "")]
        ),
        vec![ILLEGAL_GENERATION]
    );
    // An older epoch of the producer whose transaction is pending: fenced.
    assert_eq!(
        txn_commit(
            &mut stream,
            GROUP,
            (-1, ""),
            (producer.0, producer.1 - 1),
            &[(TOPIC, 0, 50, "")]
        ),
        vec![INVALID_PRODUCER_EPOCH]
    );
    // A plain commit while the transaction is open: committed, the
    // partition still unstable.
    assert_eq!(commit(&mut stream, 6), NONE);
    assert_eq!(
        fetch(&mut stream, Some(&[0]), false),
        vec![(0, 6, NONE)],
        "a plain commit meanwhile"
    );
    assert_eq!(
        fetch(&mut stream, Some(&[0]), true),
        vec![(0, -1, UNSTABLE_OFFSET_COMMIT)],
        "a plain commit meanwhile, stable only"
    );
    assert_eq!(commit(&mut stream, 5), NONE);

    // The log read back holds them pending still.
    drop(stream);
    broker.restart_after_kill9();
    let mut stream = connect(&broker);
    check(&mut stream, "after kill -9");
}
