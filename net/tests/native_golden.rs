//! The bytes of every native request and response, pinned.
//!
//! Each message below is encoded and compared with the bytes a released
//! client or broker sends for it, written out in hex; the hex decodes back
//! to the message. A change to how any field is written fails here, so the
//! wire cannot change by accident. The examples fill every list and option
//! at least once.
//!
//! The caps on declared lengths are checked too: a length over its cap is
//! refused from the prefix, before anything is allocated.

use std::fmt::Debug;

use bytes::{BufMut, Bytes, BytesMut};
use sluice_net::native::{
    codec::{DecodeError, LIST_ENTRIES_MAX},
    messages::*,
    ErrorCode,
};
use sluice_storage::batch::BATCH_BYTES_MAX;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Bytes {
    let digits: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    assert!(digits.len() % 2 == 0, "odd number of hex digits");
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// `message` encodes as `expected` (hex), and `expected` decodes as
/// `decoded`.
fn golden_decoding_as<M: Message + PartialEq + Debug>(
    name: &str,
    message: &M,
    expected: &str,
    decoded: &M,
) {
    let actual = hex(&message.to_bytes());
    let expected = hex(&unhex(expected));
    assert_eq!(actual, expected, "{name} encodes differently");
    let back = M::from_bytes(unhex(&expected)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(&back, decoded, "{name} decodes differently");
}

/// `message` encodes as `expected` (hex) and decodes back whole.
fn golden<M: Message + PartialEq + Debug>(name: &str, message: &M, expected: &str) {
    golden_decoding_as(name, message, expected, message);
}

fn s(text: &str) -> String {
    text.to_string()
}

fn configs() -> Vec<(String, String)> {
    vec![
        (s("retention.ms"), s("3600000")),
        (s("segment.bytes"), s("1048576")),
    ]
}

#[test]
fn api_versions() {
    golden(
        "ApiVersionsRequest",
        &ApiVersionsRequest { client: s("cli") },
        "03000000636c69",
    );
    golden(
        "ApiVersionsResponse",
        &ApiVersionsResponse {
            versions: vec![(0, 0, 0), (4, 0, 2), (12, 1, 3)],
            broker_id: 7,
            shard: 2,
            shards: 4,
        },
        "030000000000000000000400000002000c000100030007000000020000000400\
        0000",
    );
}

#[test]
fn metadata() {
    golden(
        "MetadataRequest every topic",
        &MetadataRequest { topics: None },
        "00",
    );
    golden(
        "MetadataRequest named",
        &MetadataRequest {
            topics: Some(vec![s("orders"), s("payments")]),
        },
        "0102000000060000006f7264657273080000007061796d656e7473",
    );
    golden(
        "MetadataRequest none named",
        &MetadataRequest {
            topics: Some(Vec::new()),
        },
        "0100000000",
    );
    golden(
        "MetadataResponse",
        &MetadataResponse {
            brokers: vec![BrokerInfo {
                id: 1,
                host: s("localhost"),
                port: 9092,
            }],
            topics: vec![
                TopicInfo {
                    name: s("orders"),
                    error: ErrorCode::None,
                    topic_id: 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
                    partitions: vec![
                        PartitionInfo {
                            partition: 0,
                            leader: 1,
                            shard: 0,
                        },
                        PartitionInfo {
                            partition: 1,
                            leader: 1,
                            shard: 3,
                        },
                    ],
                },
                TopicInfo {
                    name: s("gone"),
                    error: ErrorCode::UnknownTopic,
                    topic_id: 0,
                    partitions: Vec::new(),
                },
            ],
        },
        "0100000001000000090000006c6f63616c686f7374842302000000060000006f\
        726465727300001032547698badcfeefcdab8967452301020000000000000001\
        0000000000000001000000010000000300000004000000676f6e650100000000\
        0000000000000000000000000000000000",
    );
}

#[test]
fn create_and_delete_topics() {
    golden(
        "CreateTopicsRequestV0",
        &CreateTopicsRequestV0 {
            topics: vec![
                NewTopicV0 {
                    name: s("orders"),
                    partitions: 8,
                    configs: configs(),
                },
                NewTopicV0 {
                    name: s("plain"),
                    partitions: 0,
                    configs: Vec::new(),
                },
            ],
        },
        "02000000060000006f726465727308000000020000000c000000726574656e74\
        696f6e2e6d7307000000333630303030300d0000007365676d656e742e627974\
        6573070000003130343835373605000000706c61696e0000000000000000",
    );
    golden(
        "CreateTopicsRequest",
        &CreateTopicsRequest {
            topics: vec![
                NewTopic {
                    name: s("orders"),
                    partitions: 8,
                    configs: configs(),
                    replication_factor: 3,
                    assignment: Vec::new(),
                },
                NewTopic {
                    name: s("placed"),
                    partitions: 0,
                    configs: Vec::new(),
                    replication_factor: 0,
                    assignment: vec![vec![1, 2], vec![2, 1]],
                },
            ],
        },
        "02000000060000006f726465727308000000020000000c000000726574656e74\
        696f6e2e6d7307000000333630303030300d0000007365676d656e742e627974\
        6573070000003130343835373603000000000006000000706c61636564000000\
        0000000000000002000000020000000100000002000000020000000200000001\
        000000",
    );
    golden(
        "TopicResults",
        &TopicResults {
            topics: vec![
                TopicResult {
                    name: s("orders"),
                    error: ErrorCode::None,
                    message: String::new(),
                },
                TopicResult {
                    name: s("plain"),
                    error: ErrorCode::TopicExists,
                    message: s("topic plain exists"),
                },
            ],
        },
        "02000000060000006f726465727300000000000005000000706c61696e070012\
        000000746f70696320706c61696e20657869737473",
    );
    golden(
        "DeleteTopicsRequest",
        &DeleteTopicsRequest {
            names: vec![s("orders"), s("ünïcödé")],
        },
        "02000000060000006f72646572730b000000c3bc6ec3af63c3b664c3a9",
    );
}

#[test]
fn produce() {
    for (acks, expected) in [
        (
            Acks::None,
            "003075000001000000060000006f726465727302000000000000000500000001\
            020304050300000000000000",
        ),
        (
            Acks::Leader,
            "013075000001000000060000006f726465727302000000000000000500000001\
            020304050300000000000000",
        ),
        (
            Acks::All,
            "ff3075000001000000060000006f726465727302000000000000000500000001\
            020304050300000000000000",
        ),
    ] {
        golden(
            &format!("ProduceRequest {acks:?}"),
            &ProduceRequest {
                acks,
                timeout_ms: 30_000,
                topics: vec![ProduceTopic {
                    name: s("orders"),
                    partitions: vec![
                        ProducePartition {
                            partition: 0,
                            batch: Bytes::from_static(&[1, 2, 3, 4, 5]),
                        },
                        ProducePartition {
                            partition: 3,
                            batch: Bytes::new(),
                        },
                    ],
                }],
            },
            expected,
        );
    }
    golden(
        "ProduceResponse",
        &ProduceResponse {
            topics: vec![ProduceTopicResponse {
                name: s("orders"),
                partitions: vec![
                    ProducePartitionResponse {
                        partition: 0,
                        error: ErrorCode::None,
                        message: String::new(),
                        base_offset: 1_000,
                        log_start: 10,
                    },
                    ProducePartitionResponse {
                        partition: 3,
                        error: ErrorCode::CorruptBatch,
                        message: s("bad crc"),
                        base_offset: 0,
                        log_start: 0,
                    },
                ],
            }],
        },
        "01000000060000006f72646572730200000000000000000000000000e8030000\
        000000000a000000000000000300000004000700000062616420637263000000\
        00000000000000000000000000",
    );
}

#[test]
fn fetch() {
    golden(
        "FetchRequest",
        &FetchRequest {
            max_wait_ms: 500,
            min_bytes: 1,
            max_bytes: 1 << 20,
            topics: vec![FetchTopic {
                name: s("orders"),
                partitions: vec![
                    FetchPartition {
                        partition: 0,
                        offset: 42,
                        max_bytes: 65_536,
                    },
                    FetchPartition {
                        partition: 1,
                        offset: u64::MAX,
                        max_bytes: 0,
                    },
                ],
            }],
        },
        "f4010000010000000000100001000000060000006f7264657273020000000000\
        00002a000000000000000000010001000000ffffffffffffffff00000000",
    );
    let partition = |batches: Vec<Bytes>| FetchPartitionResponse {
        partition: 2,
        error: ErrorCode::None,
        message: String::new(),
        high_watermark: 77,
        log_start: 5,
        batches,
        next_offset: 0x50,
    };
    let empty = FetchPartitionResponse {
        partition: 4,
        error: ErrorCode::OffsetOutOfRange,
        message: s("offset 99 is past the end"),
        high_watermark: 10,
        log_start: 0,
        batches: vec![Bytes::new()],
        next_offset: 99,
    };
    // Batches go back to back under one length, and come back as one run.
    let sent = FetchResponse {
        topics: vec![FetchTopicResponse {
            name: s("orders"),
            partitions: vec![
                partition(vec![
                    Bytes::from_static(&[0xaa, 0xbb]),
                    Bytes::from_static(&[0xcc]),
                ]),
                FetchPartitionResponse {
                    batches: Vec::new(),
                    ..empty.clone()
                },
            ],
        }],
    };
    let received = FetchResponse {
        topics: vec![FetchTopicResponse {
            name: s("orders"),
            partitions: vec![
                partition(vec![Bytes::from_static(&[0xaa, 0xbb, 0xcc])]),
                empty,
            ],
        }],
    };
    // Version 0: no next offset.
    golden_decoding_as("FetchResponse v0", &FetchResponseV0::from(sent.clone()),
                                           "01000000060000006f726465727302000000020000000000000000004d000000\
                                           00000000050000000000000003000000aabbcc040000000300190000006f6666\
                                           73657420393920697320706173742074686520656e640a000000000000000000\
                                           00000000000000000000", &FetchResponseV0::from(received.clone()));
    golden("FetchResponse v0 as received", &FetchResponseV0::from(received.clone()),
                                           "01000000060000006f726465727302000000020000000000000000004d000000\
                                           00000000050000000000000003000000aabbcc040000000300190000006f6666\
                                           73657420393920697320706173742074686520656e640a000000000000000000\
                                           00000000000000000000");
    // Version 1: each partition's next offset after its batches.
    golden_decoding_as("FetchResponse v1", &sent, "01000000060000006f726465727302000000020000000000000000004d000000\
                                                  00000000050000000000000003000000aabbcc5000000000000000040000000300\
                                                  190000006f66667365742039392069732070617374207468652065\
                                                  6e640a0000000000000000000000000000000000000063000000000000\
                                                  00", &received);
    golden("FetchResponse v1 as received", &received, "01000000060000006f726465727302000000020000000000000000004d000000\
                                                      00000000050000000000000003000000aabbcc5000000000000000040000000300\
                                                      190000006f66667365742039392069732070617374207468652065\
                                                      6e640a0000000000000000000000000000000000000063000000000000\
                                                      00");
    let at = |version| FetchResponse::from_version_bytes(version, received.to_bytes().freeze());
    assert_eq!(at(1).unwrap(), received);
    let old = FetchResponseV0::from(received.clone()).to_bytes().freeze();
    let from_old = FetchResponse::from_version_bytes(0, old).unwrap();
    assert_eq!(
        from_old.topics[0].partitions[0].next_offset, 0,
        "none at v0"
    );
}

#[test]
fn list_offsets() {
    golden(
        "ListOffsetsRequest",
        &ListOffsetsRequest {
            topics: vec![
                (
                    s("orders"),
                    vec![
                        (0, OffsetSpec::Earliest),
                        (1, OffsetSpec::Latest),
                        (2, OffsetSpec::MaxTimestamp),
                        (3, OffsetSpec::Timestamp(1_700_000_000_000)),
                    ],
                ),
                (s("empty"), Vec::new()),
            ],
        },
        "02000000060000006f72646572730400000000000000feffffffffffffff0100\
        0000ffffffffffffffff02000000fdffffffffffffff030000000068e5cf8b01\
        000005000000656d70747900000000",
    );
    golden(
        "ListOffsetsResponse",
        &ListOffsetsResponse {
            topics: vec![(
                s("orders"),
                vec![
                    ListedOffset {
                        partition: 0,
                        error: ErrorCode::None,
                        message: String::new(),
                        offset: Some(12),
                    },
                    ListedOffset {
                        partition: 3,
                        error: ErrorCode::None,
                        message: String::new(),
                        offset: None,
                    },
                    ListedOffset {
                        partition: 9,
                        error: ErrorCode::NoSuchPartition,
                        message: s("no partition 9"),
                        offset: None,
                    },
                ],
            )],
        },
        "01000000060000006f72646572730300000000000000000000000000010c0000\
        0000000000030000000000000000000000000000000000000900000002000e00\
        00006e6f20706172746974696f6e2039000000000000000000",
    );
}

#[test]
fn describe_topics_and_alter_configs() {
    golden(
        "DescribeTopicsRequest",
        &DescribeTopicsRequest {
            names: vec![s("orders")],
        },
        "01000000060000006f7264657273",
    );
    golden(
        "DescribeTopicsRequest every topic",
        &DescribeTopicsRequest { names: Vec::new() },
        "00000000",
    );
    golden(
        "DescribeTopicsResponse v0",
        &DescribeTopicsResponseV0 {
            topics: vec![
                TopicDescriptionV0 {
                    name: s("orders"),
                    error: ErrorCode::None,
                    message: String::new(),
                    topic_id: 0xdead_beef,
                    configs: configs(),
                    partitions: vec![PartitionDescriptionV0 {
                        partition: 0,
                        shard: 1,
                        error: ErrorCode::None,
                        log_start: 3,
                        log_end: 99,
                        size_bytes: 123_456,
                        segments: 2,
                    }],
                },
                TopicDescriptionV0 {
                    name: s("gone"),
                    error: ErrorCode::UnknownTopic,
                    message: s("no topic gone"),
                    topic_id: 0,
                    configs: Vec::new(),
                    partitions: Vec::new(),
                },
            ],
        },
        "02000000060000006f7264657273000000000000efbeadde0000000000000000\
        00000000020000000c000000726574656e74696f6e2e6d730700000033363030\
        3030300d0000007365676d656e742e6279746573070000003130343835373601\
        000000000000000100000000000300000000000000630000000000000040e201\
        00000000000200000004000000676f6e6501000d0000006e6f20746f70696320\
        676f6e65000000000000000000000000000000000000000000000000",
    );
    golden(
        "DescribeTopicsResponse v1",
        &DescribeTopicsResponse {
            topics: vec![TopicDescription {
                name: s("orders"),
                error: ErrorCode::None,
                message: String::new(),
                topic_id: 0xdead_beef,
                configs: Vec::new(),
                partitions: vec![
                    PartitionDescription {
                        partition: 0,
                        shard: 1,
                        error: ErrorCode::None,
                        log_start: 3,
                        log_end: 99,
                        size_bytes: 123_456,
                        segments: 2,
                        leader: Some(2),
                        replicas: vec![2, 0, 1],
                        in_sync: vec![2, 1],
                        leader_epoch: 5,
                    },
                    PartitionDescription {
                        partition: 1,
                        shard: 0,
                        error: ErrorCode::None,
                        log_start: 0,
                        log_end: 0,
                        size_bytes: 0,
                        segments: 1,
                        leader: None,
                        replicas: vec![1],
                        in_sync: Vec::new(),
                        leader_epoch: 0,
                    },
                ],
            }],
        },
        "01000000060000006f7264657273000000000000efbeadde0000000000000000\
        0000000000000000020000000000000001000000000003000000000000006300\
        00000000000040e2010000000000020000000102000000030000000200000000\
        0000000100000002000000020000000100000005000000010000000000000000\
        0000000000000000000000000000000000000000000000000001000000000100\
        0000010000000000000000000000",
    );
    golden(
        "AlterConfigsRequest",
        &AlterConfigsRequest {
            topic: s("orders"),
            configs: configs(),
        },
        "060000006f7264657273020000000c000000726574656e74696f6e2e6d730700\
        0000333630303030300d0000007365676d656e742e6279746573070000003130\
        3438353736",
    );
}

#[test]
fn describe_cluster() {
    golden("DescribeClusterRequest", &DescribeClusterRequest {}, "");
    golden(
        "DescribeClusterResponse",
        &DescribeClusterResponse {
            cluster_id: s("c1"),
            controller: Some(1),
            term: 3,
            node_id: 2,
            applied: 40,
            committed: 41,
            nodes: vec![
                ClusterNode {
                    id: 1,
                    voter: true,
                    registered: true,
                    fenced: false,
                    alive: true,
                    rack: Some(s("r")),
                    kafka_addr: s("k:1"),
                    native_addr: s("n:1"),
                    admin_addr: s("a:1"),
                    peer_addr: s("p:1"),
                },
                ClusterNode {
                    id: 2,
                    voter: false,
                    registered: true,
                    fenced: true,
                    alive: false,
                    rack: None,
                    kafka_addr: String::new(),
                    native_addr: s("n:2"),
                    admin_addr: String::new(),
                    peer_addr: s("p:2"),
                },
            ],
        },
        "0200000063310101000000030000000000000002000000280000000000000029\
        00000000000000020000000100000001010001010100000072030000006b3a31\
        030000006e3a3103000000613a3103000000703a310200000000010100000000\
        0000030000006e3a320000000003000000703a32",
    );
    golden(
        "DescribeClusterResponse without a controller",
        &DescribeClusterResponse {
            cluster_id: s("c1"),
            controller: None,
            term: 0,
            node_id: 0,
            applied: 0,
            committed: 0,
            nodes: Vec::new(),
        },
        // No controller: the flag alone, no id after it.
        "0200000063310000000000000000000000000000000000000000000000000000\
        00000000000000",
    );
}

#[test]
fn groups() {
    golden("ListGroupsRequest", &ListGroupsRequest {}, "");
    golden(
        "ListGroupsResponse",
        &ListGroupsResponse {
            groups: vec![
                GroupListing {
                    group: s("a"),
                    state: s("Empty"),
                    protocol_type: String::new(),
                    members: 0,
                },
                GroupListing {
                    group: s("b"),
                    state: s("Stable"),
                    protocol_type: s("consumer"),
                    members: 3,
                },
            ],
        },
        "02000000010000006105000000456d7074790000000000000000010000006206\
        000000537461626c6508000000636f6e73756d657203000000",
    );
    golden(
        "DescribeGroupRequest",
        &DescribeGroupRequest { group: s("g") },
        "0100000067",
    );
    let described = DescribeGroupResponse {
        error: ErrorCode::None,
        message: String::new(),
        group: s("g"),
        state: s("Stable"),
        protocol_type: s("consumer"),
        protocol: s("range"),
        generation: 7,
        members: vec![
            GroupMemberDescription {
                member_id: s("c-1"),
                instance_id: Some(s("i-1")),
                client_id: s("c"),
                client_host: s("/127.0.0.1"),
                assignment: Bytes::from_static(&[0, 1, 0, 0, 0, 0]),
            },
            GroupMemberDescription {
                member_id: s("c-2"),
                instance_id: None,
                client_id: s("c"),
                client_host: s("/127.0.0.1"),
                assignment: Bytes::new(),
            },
        ],
        offsets: vec![
            GroupOffsetDescription {
                topic: s("orders"),
                partition: 0,
                committed: 5,
                log_end: Some(9),
                metadata: s("m"),
                last_stable: Some(8),
            },
            GroupOffsetDescription {
                topic: s("gone"),
                partition: 1,
                committed: 5,
                log_end: None,
                metadata: String::new(),
                last_stable: None,
            },
        ],
    };
    // Version 0: no last stable offsets.
    golden(
        "DescribeGroupResponse v0",
        &DescribeGroupResponseV0::from(described.clone()),
        "000000000000010000006706000000537461626c6508000000636f6e73756d65\
        720500000072616e6765070000000200000003000000632d310103000000692d\
        3101000000630a0000002f3132372e302e302e31060000000001000000000300\
        0000632d32000000000001000000630a0000002f3132372e302e302e31000000\
        0002000000060000006f72646572730000000005000000000000000109000000\
        00000000010000006d04000000676f6e65010000000500000000000000000000\
        00000000000000000000",
    );
    golden(
        "DescribeGroupResponse v1",
        &described,
        "000000000000010000006706000000537461626c6508000000636f6e73756d65\
        720500000072616e6765070000000200000003000000632d310103000000692d\
        3101000000630a0000002f3132372e302e302e31060000000001000000000300\
        0000632d32000000000001000000630a0000002f3132372e302e302e31000000\
        0002000000060000006f72646572730000000005000000000000000109000000\
        00000000010000006d010800000000000000\
        04000000676f6e65010000000500000000000000000000000000000000000000\
        00000000000000000000",
    );
    let v0 = DescribeGroupResponseV0::from(described.clone())
        .to_bytes()
        .freeze();
    let from_v0 = DescribeGroupResponse::from_version_bytes(0, v0).unwrap();
    assert_eq!(from_v0.offsets[0].last_stable, None, "none at v0");
    assert_eq!(from_v0.offsets[0].lag(), Some(4), "to the log end");
    let v1 = described.to_bytes().freeze();
    let from_v1 = DescribeGroupResponse::from_version_bytes(1, v1).unwrap();
    assert_eq!(
        from_v1.offsets[0].lag(),
        Some(3),
        "to the last stable offset"
    );
    golden(
        "DescribeGroupResponse unknown",
        &DescribeGroupResponse {
            error: ErrorCode::UnknownGroup,
            message: s("no group g"),
            group: s("g"),
            state: String::new(),
            protocol_type: String::new(),
            protocol: String::new(),
            generation: -1,
            members: Vec::new(),
            offsets: Vec::new(),
        },
        "16000a0000006e6f2067726f7570206701000000670000000000000000000000\
        00ffffffff0000000000000000",
    );
    for (to, expected) in [
        (
            ResetTo::Earliest,
            "0100000067060000006f72646572730200000000000000030000000000000000\
            0000000000",
        ),
        (
            ResetTo::Latest,
            "0100000067060000006f72646572730200000000000000030000000100000000\
            0000000001",
        ),
        (
            ResetTo::Offset(42),
            "0100000067060000006f7264657273020000000000000003000000022a000000\
            0000000000",
        ),
        (
            ResetTo::Timestamp(1_700_000_000_000),
            "0100000067060000006f7264657273020000000000000003000000030068e5cf\
            8b01000000",
        ),
    ] {
        golden(
            &format!("ResetGroupOffsetsRequest {to:?}"),
            &ResetGroupOffsetsRequest {
                group: s("g"),
                topic: s("orders"),
                partitions: vec![0, 3],
                to,
                dry_run: to == ResetTo::Latest,
            },
            expected,
        );
    }
    golden(
        "ResetGroupOffsetsResponse",
        &ResetGroupOffsetsResponse {
            error: ErrorCode::None,
            message: String::new(),
            partitions: vec![
                ResetPartition {
                    partition: 0,
                    previous: Some(3),
                    offset: 0,
                },
                ResetPartition {
                    partition: 1,
                    previous: None,
                    offset: 12,
                },
            ],
        },
        "0000000000000200000000000000010300000000000000000000000000000001\
        0000000000000000000000000c00000000000000",
    );
    golden(
        "DeleteGroupRequest",
        &DeleteGroupRequest { group: s("g") },
        "0100000067",
    );
    golden(
        "GroupResult",
        &GroupResult {
            error: ErrorCode::GroupNotEmpty,
            message: s("the group has members"),
        },
        "1700150000007468652067726f757020686173206d656d62657273",
    );
}

/// The body of a message whose last field is a byte run declaring
/// `declared` bytes, of which none follow.
fn declaring(prefix: impl FnOnce(&mut BytesMut), declared: usize) -> Bytes {
    let mut out = BytesMut::new();
    prefix(&mut out);
    out.put_u32_le(u32::try_from(declared).unwrap());
    out.freeze()
}

fn assert_over_cap(result: Result<impl Debug, DecodeError>, declared_expected: usize) {
    match result {
        Err(DecodeError::OverCap { declared, max, .. }) => {
            assert_eq!(declared, declared_expected);
            assert!(max < declared);
        }
        other => panic!("expected over the cap, got {other:?}"),
    }
}

#[test]
fn byte_runs_over_their_caps_are_refused_from_the_length() {
    let one_produce_partition = |out: &mut BytesMut| {
        out.put_i8(1);
        out.put_u32_le(1_000);
        out.put_u32_le(1);
        out.put_u32_le(1);
        out.put_u8(b't');
        out.put_u32_le(1);
        out.put_u32_le(0);
    };
    assert_over_cap(
        ProduceRequest::from_bytes(declaring(one_produce_partition, BATCH_BYTES_MAX + 1)),
        BATCH_BYTES_MAX + 1,
    );

    let one_fetch_partition = |out: &mut BytesMut| {
        out.put_u32_le(1);
        out.put_u32_le(1);
        out.put_u8(b't');
        out.put_u32_le(1);
        out.put_u32_le(0);
        out.put_u16_le(0);
        out.put_u32_le(0);
        out.put_u64_le(0);
        out.put_u64_le(0);
    };
    // Version 0's layout, whose batches come last.
    assert_over_cap(
        FetchResponseV0::from_bytes(declaring(
            one_fetch_partition,
            FETCH_PARTITION_BYTES_MAX + 1,
        )),
        FETCH_PARTITION_BYTES_MAX + 1,
    );

    let one_member = |out: &mut BytesMut| {
        out.put_u16_le(0);
        for _ in 0..5 {
            out.put_u32_le(0); // message, group, state, protocol type, protocol
        }
        out.put_u32_le(1); // generation
        out.put_u32_le(1); // members
        out.put_u32_le(0); // member id
        out.put_u8(0);
        out.put_u32_le(0); // instance id
        out.put_u32_le(0); // client id
        out.put_u32_le(0); // client host
    };
    assert_over_cap(
        DescribeGroupResponse::from_bytes(declaring(one_member, GROUP_ASSIGNMENT_BYTES_MAX + 1)),
        GROUP_ASSIGNMENT_BYTES_MAX + 1,
    );

    assert_over_cap(
        ApiVersionsRequest::from_bytes(declaring(|_| {}, 32 * 1024 + 1)),
        32 * 1024 + 1,
    );
}

#[test]
fn list_counts_over_the_cap_or_the_bytes_left_are_refused() {
    assert_over_cap(
        DeleteTopicsRequest::from_bytes(declaring(|_| {}, LIST_ENTRIES_MAX + 1)),
        LIST_ENTRIES_MAX + 1,
    );
    // Ten topics need at least 40 bytes; 39 follow.
    let mut body = BytesMut::new();
    body.put_u32_le(10);
    body.put_slice(&[0; 39]);
    assert!(matches!(
        DeleteTopicsRequest::from_bytes(body.freeze()),
        Err(DecodeError::Truncated { needed: 40, .. })
    ));
    // A fetch response's partition takes at least 38 bytes (30 at
    // version 0).
    let two_partitions = |bytes: usize| {
        let mut body = BytesMut::new();
        body.put_u32_le(1);
        body.put_u32_le(0);
        body.put_u32_le(2);
        body.put_slice(&vec![0; bytes]);
        body.freeze()
    };
    assert!(matches!(
        FetchResponse::from_bytes(two_partitions(75)),
        Err(DecodeError::Truncated { needed: 76, .. })
    ));
    assert!(matches!(
        FetchResponseV0::from_bytes(two_partitions(59)),
        Err(DecodeError::Truncated { needed: 60, .. })
    ));
}
