use std::fmt::Debug;

use bytes::{Bytes, BytesMut};

use super::*;
use crate::native::{codec::Writer, ErrorCode};

/// Encodes, decodes, and checks the message came back whole; and that
/// every cut of its bytes is an error, not a panic or a wrong message.
fn round_trip<M: Message + PartialEq + Debug>(message: &M) {
    let bytes = message.to_bytes().freeze();
    let decoded = M::from_bytes(bytes.clone()).expect("decodes");
    assert_eq!(&decoded, message);
    for cut in 0..bytes.len() {
        assert!(
            M::from_bytes(bytes.slice(..cut)).is_err(),
            "{cut} of {} bytes decoded",
            bytes.len()
        );
    }
    let mut longer = BytesMut::from(&bytes[..]);
    longer.extend_from_slice(&[0]);
    assert!(M::from_bytes(longer.freeze()).is_err(), "a trailing byte");
}

fn consumer_assignment(topics: &[(&str, &[i32])]) -> Bytes {
    use kafka_protocol::{
        messages::{consumer_protocol_assignment::TopicPartition, ConsumerProtocolAssignment},
        protocol::{Encodable, StrBytes},
    };
    let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(
        topics
            .iter()
            .map(|(topic, partitions)| {
                TopicPartition::default()
                    .with_topic(StrBytes::from_string(topic.to_string()).into())
                    .with_partitions(partitions.to_vec())
            })
            .collect(),
    );
    let mut out = BytesMut::new();
    out.extend_from_slice(&1i16.to_be_bytes());
    assignment.encode(&mut out, 1).unwrap();
    out.freeze()
}

#[test]
fn group_requests_round_trip() {
    round_trip(&ListGroupsRequest {});
    round_trip(&DescribeGroupRequest {
        group: "payments".to_string(),
    });
    round_trip(&DeleteGroupRequest {
        group: "ünïcödé group".to_string(),
    });
    for to in [
        ResetTo::Earliest,
        ResetTo::Latest,
        ResetTo::Offset(42),
        ResetTo::Timestamp(1_700_000_000_000),
    ] {
        round_trip(&ResetGroupOffsetsRequest {
            group: "g".to_string(),
            topic: "orders".to_string(),
            partitions: vec![0, 3],
            to,
            dry_run: to == ResetTo::Latest,
        });
    }
}

#[test]
fn group_responses_round_trip() {
    round_trip(&ListGroupsResponse {
        groups: vec![
            GroupListing {
                group: "a".to_string(),
                state: "Empty".to_string(),
                protocol_type: String::new(),
                members: 0,
            },
            GroupListing {
                group: "b".to_string(),
                state: "Stable".to_string(),
                protocol_type: "consumer".to_string(),
                members: 3,
            },
        ],
    });
    round_trip(&DescribeGroupResponse {
        error: ErrorCode::None,
        message: String::new(),
        group: "g".to_string(),
        state: "Stable".to_string(),
        protocol_type: "consumer".to_string(),
        protocol: "range".to_string(),
        generation: 7,
        members: vec![
            GroupMemberDescription {
                member_id: "c-1".to_string(),
                instance_id: Some("i-1".to_string()),
                client_id: "c".to_string(),
                client_host: "/127.0.0.1".to_string(),
                assignment: consumer_assignment(&[("orders", &[0, 2])]),
            },
            GroupMemberDescription {
                member_id: "c-2".to_string(),
                instance_id: None,
                client_id: "c".to_string(),
                client_host: "/127.0.0.1".to_string(),
                assignment: Bytes::new(),
            },
        ],
        offsets: vec![
            GroupOffsetDescription {
                topic: "orders".to_string(),
                partition: 0,
                committed: 5,
                log_end: Some(9),
                metadata: "m".to_string(),
                last_stable: Some(7),
            },
            GroupOffsetDescription {
                topic: "gone".to_string(),
                partition: 1,
                committed: 5,
                log_end: None,
                metadata: String::new(),
                last_stable: None,
            },
        ],
    });
    round_trip(&DescribeGroupResponse {
        error: ErrorCode::UnknownGroup,
        message: "no group g".to_string(),
        group: "g".to_string(),
        state: String::new(),
        protocol_type: String::new(),
        protocol: String::new(),
        generation: -1,
        members: Vec::new(),
        offsets: Vec::new(),
    });
    round_trip(&ResetGroupOffsetsResponse {
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
    });
    round_trip(&GroupResult {
        error: ErrorCode::GroupNotEmpty,
        message: "the group has members".to_string(),
    });
}

#[test]
fn a_reset_to_a_negative_offset_or_an_unknown_kind_does_not_decode() {
    let request = |tag: u8, value: i64| {
        let mut out = BytesMut::new();
        let mut writer = Writer::new(&mut out);
        writer.string("g");
        writer.string("t");
        writer.list(&[] as &[u32], |out, partition| out.u32(*partition));
        writer.u8(tag);
        writer.i64(value);
        writer.bool(false);
        ResetGroupOffsetsRequest::from_bytes(out.freeze())
    };
    assert!(request(2, 5).is_ok());
    assert!(request(2, -1).is_err());
    assert!(request(3, -5).is_err());
    assert!(request(4, 0).is_err());
}

#[test]
fn lag_is_last_stable_minus_committed() {
    let offset = |committed, log_end, last_stable| GroupOffsetDescription {
        topic: "t".to_string(),
        partition: 0,
        committed,
        log_end,
        metadata: String::new(),
        last_stable,
    };
    assert_eq!(offset(3, Some(10), Some(10)).lag(), Some(7));
    assert_eq!(
        offset(3, Some(10), Some(6)).lag(),
        Some(3),
        "a transaction open"
    );
    assert_eq!(offset(10, Some(10), Some(10)).lag(), Some(0));
    assert_eq!(offset(12, Some(10), Some(10)).lag(), Some(-2));
    assert_eq!(offset(3, None, None).lag(), None);
    assert_eq!(offset(3, Some(10), None).lag(), Some(7), "a broker of v0");
}

#[test]
fn a_consumer_assignment_reads_as_topic_partitions() {
    let member = |assignment| GroupMemberDescription {
        member_id: "m".to_string(),
        instance_id: None,
        client_id: "c".to_string(),
        client_host: "h".to_string(),
        assignment,
    };
    assert_eq!(
        member(consumer_assignment(&[("a", &[0, 1]), ("b", &[4])])).consumer_assignment(),
        Some(vec![
            ("a".to_string(), vec![0, 1]),
            ("b".to_string(), vec![4])
        ])
    );
    assert_eq!(member(Bytes::new()).consumer_assignment(), None);
    assert_eq!(
        member(Bytes::from_static(&[0, 0, 0, 0, 0, 9])).consumer_assignment(),
        None
    );
}

fn cluster_node(id: u32, voter: bool, registered: bool) -> ClusterNode {
    ClusterNode {
        id,
        voter,
        registered,
        fenced: false,
        alive: registered,
        rack: registered.then(|| "rack-a".to_string()),
        kafka_addr: format!("10.0.0.{id}:9092"),
        native_addr: format!("10.0.0.{id}:9192"),
        admin_addr: String::new(),
        peer_addr: format!("10.0.0.{id}:9193"),
    }
}

#[test]
fn describe_cluster_round_trips() {
    round_trip(&DescribeClusterRequest {});
    round_trip(&DescribeClusterResponse {
        cluster_id: "MkU3OEVBNTcwNTJENDM2Qg".to_string(),
        controller: Some(2),
        term: 7,
        node_id: 1,
        applied: 41,
        committed: 42,
        nodes: vec![
            cluster_node(0, true, false),
            cluster_node(1, true, true),
            cluster_node(4, false, true),
        ],
    });
    round_trip(&DescribeClusterResponse {
        controller: None,
        ..DescribeClusterResponse::default()
    });
}

fn description(placed: bool) -> DescribeTopicsResponse {
    DescribeTopicsResponse {
        topics: vec![TopicDescription {
            name: "orders".to_string(),
            error: ErrorCode::None,
            message: String::new(),
            topic_id: 9,
            configs: vec![("retention.ms".to_string(), "1".to_string())],
            partitions: vec![PartitionDescription {
                partition: 3,
                shard: 1,
                error: ErrorCode::None,
                log_start: 2,
                log_end: 5,
                size_bytes: 4096,
                segments: 1,
                leader: placed.then_some(4),
                replicas: if placed { vec![4, 1] } else { Vec::new() },
                in_sync: if placed { vec![4] } else { Vec::new() },
                leader_epoch: if placed { 6 } else { 0 },
            }],
        }],
    }
}

#[test]
fn describe_topics_reads_back_at_each_version_it_speaks() {
    let (min, max) = ApiKey::DescribeTopics.versions();
    assert_eq!((min, max), (0, DESCRIBE_TOPICS_PLACEMENT_VERSION));
    round_trip(&description(true));
    round_trip(&DescribeTopicsResponseV0::from(description(true)));

    // Version 1 carries where each partition lives.
    let current = description(true).to_bytes().freeze();
    assert_eq!(
        DescribeTopicsResponse::from_version_bytes(1, current.clone()).unwrap(),
        description(true)
    );
    // Version 0 leaves it out, and reads back without it.
    let old = DescribeTopicsResponseV0::from(description(true))
        .to_bytes()
        .freeze();
    assert!(old.len() < current.len());
    assert_eq!(
        DescribeTopicsResponse::from_version_bytes(0, old.clone()).unwrap(),
        description(false)
    );
    // The layouts do not read as each other.
    assert!(DescribeTopicsResponse::from_version_bytes(0, current).is_err());
    assert!(DescribeTopicsResponse::from_version_bytes(1, old).is_err());
}

#[test]
fn create_topics_reads_back_at_each_version_it_speaks() {
    assert_eq!(
        ApiKey::CreateTopics.versions(),
        (0, CREATE_TOPICS_PLACEMENT_VERSION)
    );
    let placed = CreateTopicsRequest {
        topics: vec![NewTopic {
            name: "t".to_string(),
            partitions: 0,
            configs: vec![("retention.ms".to_string(), "1".to_string())],
            replication_factor: 0,
            assignment: vec![vec![2], vec![0]],
        }],
    };
    round_trip(&placed);
    let bytes = placed.to_bytes().freeze();
    assert_eq!(
        CreateTopicsRequest::from_version_bytes(1, bytes).unwrap(),
        placed
    );
    // Version 0 cannot say where partitions go.
    assert_eq!(placed.to_v0(), None);
    let plain = CreateTopicsRequest {
        topics: vec![NewTopic {
            assignment: Vec::new(),
            ..placed.topics[0].clone()
        }],
    };
    let old = plain.to_v0().unwrap().to_bytes().freeze();
    assert_eq!(
        CreateTopicsRequest::from_version_bytes(0, old).unwrap(),
        plain
    );
}

#[test]
fn elect_leaders_round_trips_and_an_unknown_election_type_does_not_decode() {
    let topic = |name: &str, partitions: &[u32]| ElectionTopic {
        name: name.to_string(),
        partitions: partitions.to_vec(),
    };
    round_trip(&ElectLeadersRequest {
        election: ElectionType::Unclean,
        topics: vec![topic("orders", &[0, 3]), topic("events", &[])],
    });
    let every = ElectLeadersRequest {
        election: ElectionType::Preferred,
        topics: Vec::new(),
    };
    round_trip(&every);
    let result = |partition, error, leader| ElectionResult {
        topic: "orders".to_string(),
        partition,
        error,
        message: String::new(),
        leader,
    };
    round_trip(&ElectLeadersResponse {
        results: vec![
            result(0, ErrorCode::None, Some(1)),
            result(3, ErrorCode::PreferredLeaderNotAvailable, Some(2)),
            result(4, ErrorCode::EligibleLeadersNotAvailable, None),
        ],
    });
    let mut bytes = BytesMut::from(&every.to_bytes()[..]);
    bytes[0] = 2;
    assert!(matches!(
        ElectLeadersRequest::from_bytes(bytes.freeze()),
        Err(crate::native::codec::DecodeError::InvalidValue { value: 2, .. })
    ));
}

#[test]
fn reassignments_round_trip_and_a_cut_body_does_not_decode() {
    let moves = AlterReassignmentsRequest {
        moves: vec![
            PartitionMove {
                topic: "orders".to_string(),
                partition: 3,
                replicas: Some(vec![2, 4, 5]),
            },
            PartitionMove {
                topic: "orders".to_string(),
                partition: 4,
                replicas: None,
            },
        ],
        throttle_bytes_per_s: 10 << 20,
        allow_replication_factor_change: true,
    };
    round_trip(&moves);
    round_trip(&AlterReassignmentsResponse {
        results: vec![MoveResult {
            topic: "orders".to_string(),
            partition: 4,
            error: ErrorCode::NoReassignmentInProgress,
            message: "no reassignment of partition 4 is in progress".to_string(),
        }],
    });
    round_trip(&ListReassignmentsRequest {
        topics: vec!["orders".to_string()],
    });
    round_trip(&ListReassignmentsResponse {
        reassignments: vec![Reassignment {
            topic: "orders".to_string(),
            partition: 3,
            replicas: vec![2, 4, 5, 1],
            adding: vec![4, 5],
            removing: vec![1],
            throttle_bytes_per_s: 0,
        }],
    });
    let bytes = moves.to_bytes().freeze();
    for end in 0..bytes.len() {
        assert!(
            AlterReassignmentsRequest::from_bytes(bytes.slice(..end)).is_err(),
            "cut at {end}"
        );
    }
}

#[test]
fn transaction_messages_round_trip() {
    round_trip(&FindTxnCoordinatorRequest {
        transactional_id: "payments-1".to_string(),
    });
    round_trip(&FindTxnCoordinatorResponse {
        error: ErrorCode::None,
        message: String::new(),
        node: 2,
    });
    round_trip(&ListTransactionsRequest::default());
    round_trip(&ListTransactionsRequest {
        states: vec!["Ongoing".to_string(), "PrepareAbort".to_string()],
        producer_ids: vec![1000, -1],
        running_at_least_ms: Some(60_000),
    });
    round_trip(&ListTransactionsResponse {
        error: ErrorCode::None,
        message: String::new(),
        transactions: vec![TransactionListing {
            transactional_id: "payments-1".to_string(),
            coordinator: 1,
            producer_id: 1000,
            state: "Ongoing".to_string(),
        }],
        truncated: true,
    });
    round_trip(&DescribeTransactionRequest {
        transactional_id: "ünïcödé".to_string(),
    });
    round_trip(&DescribeTransactionResponse {
        error: ErrorCode::None,
        message: String::new(),
        transactional_id: "payments-1".to_string(),
        coordinator: 0,
        state: "Ongoing".to_string(),
        producer_id: 1000,
        producer_epoch: i16::MAX - 1,
        timeout_ms: 60_000,
        start_ms: Some(1_700_000_000_000),
        partitions: vec![TransactionPartition {
            topic: "orders".to_string(),
            partition: 3,
        }],
    });
    round_trip(&DescribeTransactionResponse {
        error: ErrorCode::UnknownTransactionalId,
        message: "no transactional id x".to_string(),
        transactional_id: "x".to_string(),
        coordinator: 0,
        state: String::new(),
        producer_id: -1,
        producer_epoch: -1,
        timeout_ms: 0,
        start_ms: None,
        partitions: Vec::new(),
    });
    round_trip(&AbortTransactionRequest {
        transactional_id: "payments-1".to_string(),
    });
    round_trip(&AbortPartitionTransactionRequest {
        topic: "orders".to_string(),
        partition: 3,
        producer_id: 1000,
        producer_epoch: 2,
        coordinator_epoch: -1,
    });
    round_trip(&TransactionResult {
        error: ErrorCode::InvalidTxnState,
        message: "no ongoing transaction".to_string(),
    });
}

#[test]
fn a_list_of_transactions_longer_than_its_bytes_is_refused_before_allocating() {
    let mut out = BytesMut::new();
    let mut writer = Writer::new(&mut out);
    writer.u16(ErrorCode::None as u16);
    writer.string("");
    // A million listings declared, none there.
    writer.u32(1_000_000);
    assert!(matches!(
        ListTransactionsResponse::from_bytes(out.freeze()),
        Err(crate::native::codec::DecodeError::OverCap { .. })
    ));
    let mut out = BytesMut::new();
    let mut writer = Writer::new(&mut out);
    writer.u16(ErrorCode::None as u16);
    writer.string("");
    writer.u32(1_000);
    writer.raw(&[0; 64]);
    assert!(matches!(
        ListTransactionsResponse::from_bytes(out.freeze()),
        Err(crate::native::codec::DecodeError::Truncated { .. })
    ));
}

#[test]
fn every_error_code_reads_back_as_itself() {
    for (index, code) in ErrorCode::ALL.iter().enumerate() {
        assert_eq!(*code as usize, index, "{code:?} out of place");
        assert_eq!(ErrorCode::from_u16(*code as u16), *code);
    }
    assert_eq!(
        ErrorCode::from_u16(ErrorCode::ALL.len() as u16),
        ErrorCode::Internal
    );
}

#[test]
fn every_api_key_reads_back_as_itself() {
    for (index, api) in ApiKey::ALL.iter().enumerate() {
        assert_eq!(*api as usize, index, "{api:?} out of place");
        assert_eq!(ApiKey::from_u16(*api as u16), Some(*api));
    }
}
