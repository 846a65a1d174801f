//! The client against a small in-process broker that speaks the native
//! protocol from the same codec: handshake, pairing out-of-order responses,
//! error frames, timeouts, a closed connection, batching and consuming.

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    rc::Rc,
    time::{Duration, Instant},
};

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncWriteExt, StreamExt};
use glommio::{
    channels::local_channel,
    net::{TcpListener, TcpStream},
    LocalExecutorBuilder, Placement,
};
use sluice_storage::{
    batch::{Batch, BatchBuilder},
    Offset,
};

use super::*;
use crate::native::{
    frame::{
        encode_error_response, encode_response, split_request, FrameReader, ReadTimeouts,
        FRAME_BYTES_MAX,
    },
    messages::*,
    ErrorCode,
};

fn run<F: std::future::Future<Output = ()> + 'static>(test: impl FnOnce() -> F) {
    LocalExecutorBuilder::new(Placement::Unbound)
        .make()
        .expect("executor")
        .run(test());
}

/// How the mock broker behaves.
#[derive(Clone, Default)]
struct Behavior {
    /// APIs left out of the handshake.
    missing_apis: Vec<ApiKey>,
    /// Metadata requests wait this long before answering.
    metadata_delay: Duration,
    /// DeleteTopics requests are never answered.
    ignore_delete: bool,
    /// The connection is closed on a DeleteTopics request.
    close_on_delete: bool,
    /// Produce requests that are refused as TooManyRequests first.
    refuse_produces: usize,
    /// DescribeTopics is answered (at version 0, the only one this broker
    /// speaks) rather than refused as unknown.
    describe_topics_v0: bool,
    /// This broker is one node of a mock cluster.
    node: Option<MockNode>,
}

/// One node of a cluster of mock brokers, each with its own logs: it
/// serves the partitions it leads and answers `NotLeader` for the others;
/// it speaks DescribeTopics version 1 and DescribeCluster.
#[derive(Clone)]
struct MockNode {
    id: u32,
    cluster: Rc<MockCluster>,
}

#[derive(Default)]
struct MockCluster {
    /// Native address of each node, by id; `None`: not alive.
    addresses: RefCell<Vec<Option<String>>>,
    /// Partition `p` is led by node `(p + shift) % nodes`.
    shift: Cell<u32>,
    /// `NotLeader` answers given, over all nodes.
    refusals: Cell<usize>,
}

impl MockCluster {
    fn leader(&self, partition: u32) -> u32 {
        (partition + self.shift.get()) % self.addresses.borrow().len() as u32
    }
}

impl MockNode {
    fn leads(&self, partition: u32) -> bool {
        self.cluster.leader(partition) == self.id
    }
}

/// Whether the broker `node` (none: a single broker) serves `partition`;
/// counts a refusal when it does not.
fn serves(node: &Option<MockNode>, partition: u32) -> bool {
    match node {
        None => true,
        Some(node) if node.leads(partition) => true,
        Some(node) => {
            node.cluster.refusals.set(node.cluster.refusals.get() + 1);
            false
        }
    }
}

/// Starts `nodes` mock brokers of one cluster; their addresses and logs.
fn start_cluster(nodes: u32) -> (Rc<MockCluster>, Vec<String>, Vec<Rc<RefCell<Logs>>>) {
    let cluster = Rc::new(MockCluster::default());
    let mut addresses = Vec::new();
    let mut logs = Vec::new();
    for id in 0..nodes {
        let (address, node_logs) = start_broker(Behavior {
            node: Some(MockNode {
                id,
                cluster: cluster.clone(),
            }),
            ..Behavior::default()
        });
        addresses.push(address);
        logs.push(node_logs);
    }
    *cluster.addresses.borrow_mut() = addresses.iter().cloned().map(Some).collect();
    (cluster, addresses, logs)
}

#[derive(Default)]
struct Logs {
    /// Batches per partition of topic "t", offsets assigned.
    partitions: HashMap<u32, Vec<Batch>>,
    produce_requests: usize,
}

const PARTITIONS: u32 = 3;

impl Logs {
    fn end(&self, partition: u32) -> u64 {
        self.partitions
            .get(&partition)
            .and_then(|batches| batches.last())
            .map_or(0, |batch| batch.last_offset().0 + 1)
    }
}

/// Starts the mock broker; returns its address.
fn start_broker(behavior: Behavior) -> (String, Rc<RefCell<Logs>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let logs = Rc::new(RefCell::new(Logs::default()));
    let served = logs.clone();
    glommio::spawn_local(async move {
        while let Ok(stream) = listener.accept().await {
            glommio::spawn_local(serve(stream, behavior.clone(), served.clone())).detach();
        }
    })
    .detach();
    (address, logs)
}

async fn serve(stream: TcpStream, behavior: Behavior, logs: Rc<RefCell<Logs>>) {
    let (mut read, mut write) = futures_lite::io::split(stream);
    let (responses, outgoing) = local_channel::new_unbounded::<Option<BytesMut>>();
    let responses = Rc::new(responses);
    let writer = glommio::spawn_local(async move {
        while let Some(Some(frame)) = outgoing.recv().await {
            if write.write_all(&frame).await.is_err() {
                return;
            }
        }
        // `None`: close the connection.
        let _ = write.close().await;
    });
    let mut reader = FrameReader::new(FRAME_BYTES_MAX);
    let timeouts = ReadTimeouts {
        idle: None,
        stalled: Duration::from_secs(5),
    };
    let refused = Rc::new(RefCell::new(0));
    while let Ok(Some(frame)) = reader.next(&mut read, timeouts).await {
        let (header, body) = split_request(frame).expect("request header");
        let id = header.correlation_id;
        let api = ApiKey::from_u16(header.api_key).expect("known api");
        let responses = responses.clone();
        let behavior = behavior.clone();
        let logs = logs.clone();
        let refused = refused.clone();
        glommio::spawn_local(async move {
            let response = match api {
                ApiKey::ApiVersions => Some(encode_response(
                    id,
                    &ApiVersionsResponse {
                        versions: ApiKey::ALL
                            .iter()
                            .filter(|api| !behavior.missing_apis.contains(api))
                            .map(|api| match (api, &behavior.node) {
                                (ApiKey::DescribeTopics, Some(_)) => (*api as u16, 0, 1),
                                _ => (*api as u16, 0, 0),
                            })
                            .collect(),
                        broker_id: behavior.node.as_ref().map_or(7, |node| node.id),
                        shard: 1,
                        shards: 2,
                    },
                )),
                ApiKey::Metadata => {
                    glommio::timer::sleep(behavior.metadata_delay).await;
                    let request = MetadataRequest::from_bytes(body).unwrap();
                    let names = request.topics.unwrap_or_else(|| vec!["t".to_string()]);
                    Some(encode_response(
                        id,
                        &MetadataResponse {
                            brokers: vec![],
                            topics: names
                                .into_iter()
                                .map(|name| TopicInfo {
                                    error: if name == "t" {
                                        ErrorCode::None
                                    } else {
                                        ErrorCode::UnknownTopic
                                    },
                                    name,
                                    topic_id: 1,
                                    partitions: (0..PARTITIONS)
                                        .map(|partition| PartitionInfo {
                                            partition,
                                            leader: 7,
                                            shard: partition % 2,
                                        })
                                        .collect(),
                                })
                                .collect(),
                        },
                    ))
                }
                ApiKey::DeleteTopics if behavior.close_on_delete => {
                    let _ = responses.send(None).await;
                    return;
                }
                ApiKey::DeleteTopics if behavior.ignore_delete => None,
                ApiKey::Produce => {
                    let request = ProduceRequest::from_bytes(body).unwrap();
                    let mut logs = logs.borrow_mut();
                    logs.produce_requests += 1;
                    if *refused.borrow() < behavior.refuse_produces {
                        *refused.borrow_mut() += 1;
                        Some(encode_error_response(
                            id,
                            ErrorCode::TooManyRequests,
                            "slow down",
                        ))
                    } else {
                        let mut topics = Vec::new();
                        for topic in request.topics {
                            let mut partitions = Vec::new();
                            for produced in topic.partitions {
                                let base = logs.end(produced.partition);
                                let (error, base_offset) = if produced.partition >= PARTITIONS {
                                    (ErrorCode::NoSuchPartition, 0)
                                } else if !serves(&behavior.node, produced.partition) {
                                    (ErrorCode::NotLeader, 0)
                                } else {
                                    let batch = Batch::validate(produced.batch)
                                        .unwrap()
                                        .assign(Offset(base), 0);
                                    logs.partitions
                                        .entry(produced.partition)
                                        .or_default()
                                        .push(batch);
                                    (ErrorCode::None, base)
                                };
                                partitions.push(ProducePartitionResponse {
                                    partition: produced.partition,
                                    error,
                                    message: String::new(),
                                    base_offset,
                                    log_start: 0,
                                });
                            }
                            topics.push(ProduceTopicResponse {
                                name: topic.name,
                                partitions,
                            });
                        }
                        (request.acks != Acks::None)
                            .then(|| encode_response(id, &ProduceResponse { topics }))
                    }
                }
                ApiKey::Fetch => {
                    let request = FetchRequest::from_bytes(body).unwrap();
                    let deadline =
                        Instant::now() + Duration::from_millis(u64::from(request.max_wait_ms));
                    loop {
                        let has_data = request.topics.iter().any(|topic| {
                            topic.partitions.iter().any(|partition| {
                                logs.borrow().end(partition.partition) > partition.offset
                                    || behavior
                                        .node
                                        .as_ref()
                                        .is_some_and(|node| !node.leads(partition.partition))
                            })
                        });
                        if has_data || Instant::now() >= deadline {
                            break;
                        }
                        glommio::timer::sleep(Duration::from_millis(2)).await;
                    }
                    let logs = logs.borrow();
                    let topics = request
                        .topics
                        .into_iter()
                        .map(|topic| FetchTopicResponse {
                            name: topic.name,
                            partitions: topic
                                .partitions
                                .into_iter()
                                .map(|asked| {
                                    if !serves(&behavior.node, asked.partition) {
                                        return FetchPartitionResponse {
                                            partition: asked.partition,
                                            error: ErrorCode::NotLeader,
                                            message: "not here".to_string(),
                                            high_watermark: 0,
                                            log_start: 0,
                                            batches: Vec::new(),
                                            next_offset: 0,
                                        };
                                    }
                                    let mut batches = BytesMut::new();
                                    for batch in
                                        logs.partitions.get(&asked.partition).into_iter().flatten()
                                    {
                                        if batch.last_offset().0 >= asked.offset {
                                            batches.extend_from_slice(batch.as_bytes());
                                        }
                                    }
                                    FetchPartitionResponse {
                                        partition: asked.partition,
                                        error: ErrorCode::None,
                                        message: String::new(),
                                        high_watermark: logs.end(asked.partition),
                                        log_start: 0,
                                        batches: vec![batches.freeze()],
                                        next_offset: 0,
                                    }
                                })
                                .collect(),
                        })
                        .collect();
                    // A broker of version 0, which says no next offset.
                    let response = FetchResponseV0::from(FetchResponse { topics });
                    Some(encode_response(id, &response))
                }
                ApiKey::ListOffsets => {
                    let request = ListOffsetsRequest::from_bytes(body).unwrap();
                    let logs = logs.borrow();
                    let topics = request
                        .topics
                        .into_iter()
                        .map(|(name, partitions)| {
                            let listed = partitions
                                .into_iter()
                                .map(|(partition, spec)| ListedOffset {
                                    partition,
                                    error: if serves(&behavior.node, partition) {
                                        ErrorCode::None
                                    } else {
                                        ErrorCode::NotLeader
                                    },
                                    message: String::new(),
                                    offset: match spec {
                                        OffsetSpec::Earliest => Some(0),
                                        OffsetSpec::Latest => Some(logs.end(partition)),
                                        OffsetSpec::Timestamp(_) | OffsetSpec::MaxTimestamp => None,
                                    },
                                })
                                .collect();
                            (name, listed)
                        })
                        .collect();
                    Some(encode_response(id, &ListOffsetsResponse { topics }))
                }
                ApiKey::DescribeTopics if behavior.node.is_some() => {
                    assert_eq!(header.api_version, 1, "the client speaks the newest");
                    let node = behavior.node.as_ref().expect("a node");
                    let request = DescribeTopicsRequest::from_bytes(body).unwrap();
                    let logs = logs.borrow();
                    let topics = request
                        .names
                        .into_iter()
                        .map(|name| TopicDescription {
                            name,
                            error: ErrorCode::None,
                            message: String::new(),
                            topic_id: 5,
                            configs: Vec::new(),
                            partitions: (0..PARTITIONS)
                                .map(|partition| {
                                    let leads = node.leads(partition);
                                    let leader = node.cluster.leader(partition);
                                    PartitionDescription {
                                        partition,
                                        shard: if leads { 10 + node.id } else { 99 },
                                        error: if leads {
                                            ErrorCode::None
                                        } else {
                                            ErrorCode::NotLeader
                                        },
                                        log_start: 0,
                                        log_end: if leads { logs.end(partition) } else { 0 },
                                        size_bytes: 0,
                                        segments: u32::from(leads),
                                        leader: node.cluster.addresses.borrow()[leader as usize]
                                            .as_ref()
                                            .map(|_| leader),
                                        replicas: vec![leader],
                                        in_sync: vec![leader],
                                        leader_epoch: 0,
                                    }
                                })
                                .collect(),
                        })
                        .collect();
                    Some(encode_response(id, &DescribeTopicsResponse { topics }))
                }
                ApiKey::DescribeCluster if behavior.node.is_some() => {
                    let node = behavior.node.as_ref().expect("a node");
                    let nodes = node
                        .cluster
                        .addresses
                        .borrow()
                        .iter()
                        .enumerate()
                        .map(|(id, address)| ClusterNode {
                            id: id as u32,
                            alive: address.is_some(),
                            native_addr: address.clone().unwrap_or_default(),
                            ..ClusterNode::default()
                        })
                        .collect();
                    Some(encode_response(
                        id,
                        &DescribeClusterResponse {
                            node_id: node.id,
                            nodes,
                            ..DescribeClusterResponse::default()
                        },
                    ))
                }
                ApiKey::DescribeTopics if behavior.describe_topics_v0 => {
                    assert_eq!(
                        header.api_version, 0,
                        "the client speaks what the broker does"
                    );
                    let request = DescribeTopicsRequest::from_bytes(body).unwrap();
                    let topics = request
                        .names
                        .into_iter()
                        .map(|name| TopicDescriptionV0 {
                            name,
                            error: ErrorCode::None,
                            message: String::new(),
                            topic_id: 5,
                            configs: Vec::new(),
                            partitions: vec![PartitionDescriptionV0 {
                                partition: 0,
                                shard: 1,
                                error: ErrorCode::None,
                                log_start: 0,
                                log_end: 12,
                                size_bytes: 4096,
                                segments: 1,
                            }],
                        })
                        .collect();
                    Some(encode_response(id, &DescribeTopicsResponseV0 { topics }))
                }
                ApiKey::CreateTopics => {
                    let request =
                        CreateTopicsRequest::from_version_bytes(header.api_version, body).unwrap();
                    let topics = request
                        .topics
                        .into_iter()
                        .map(|topic| TopicResult {
                            error: if topic.name == "t" {
                                ErrorCode::TopicExists
                            } else {
                                ErrorCode::None
                            },
                            message: if topic.name == "t" {
                                "topic t exists".to_string()
                            } else {
                                String::new()
                            },
                            name: topic.name,
                        })
                        .collect();
                    Some(encode_response(id, &TopicResults { topics }))
                }
                _ => Some(encode_error_response(
                    id,
                    ErrorCode::UnknownApi,
                    &format!("no {api:?} here"),
                )),
            };
            if let Some(response) = response {
                let _ = responses.send(Some(response)).await;
            }
        })
        .detach();
    }
    drop(responses);
    let _ = writer.await;
}

fn batch(values: &[&str]) -> Batch {
    let mut builder = BatchBuilder::default();
    for value in values {
        builder.push(0, None, value.as_bytes(), &[]);
    }
    builder.finish()
}

#[test]
fn handshake_tells_who_the_broker_is() {
    run(|| async {
        let (address, _) = start_broker(Behavior::default());
        let client = Client::connect(&format!(" ,{address}")).await.unwrap();
        assert_eq!(client.broker().broker_id, 7);
        assert_eq!(client.broker().shard, 1);
        assert_eq!(client.broker().shards, 2);
    });
}

#[test]
fn a_broker_without_an_api_is_refused() {
    run(|| async {
        let (address, _) = start_broker(Behavior {
            missing_apis: vec![ApiKey::Fetch],
            ..Behavior::default()
        });
        let error = Client::connect(&address).await.err().unwrap();
        assert!(
            matches!(
                error,
                ClientError::Unsupported {
                    api: ApiKey::Fetch,
                    broker: None,
                    ..
                }
            ),
            "{error}"
        );
    });
}

#[test]
fn connect_tries_every_address_and_says_why_each_failed() {
    run(|| async {
        let (address, _) = start_broker(Behavior::default());
        // A port nothing listens on: bind one, note it, close it.
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let client = Client::connect(&format!("{closed},{address}")).await;
        assert!(client.is_ok());
        let error = Client::connect(&format!("{closed},{closed}"))
            .await
            .err()
            .unwrap();
        assert!(matches!(error, ClientError::Connect { .. }), "{error}");
        assert!(Client::connect("").await.is_err());
    });
}

#[test]
fn responses_out_of_order_reach_their_requests() {
    run(|| async {
        let (address, _) = start_broker(Behavior {
            metadata_delay: Duration::from_millis(100),
            ..Behavior::default()
        });
        let client = Client::connect(&address).await.unwrap();
        let started = Instant::now();
        let slow = client.metadata();
        let fast = async {
            let offset = client.list_offset("t", 2, OffsetSpec::Earliest).await;
            (offset, started.elapsed())
        };
        let (metadata, (offset, fast_took)) = futures_lite::future::zip(slow, fast).await;
        assert_eq!(metadata.unwrap().topics[0].partitions.len(), 3);
        assert_eq!(offset.unwrap(), Some(0));
        assert!(
            fast_took < Duration::from_millis(100),
            "the fast answer waited for the slow one: {fast_took:?}"
        );
    });
}

#[test]
fn a_broker_of_describe_topics_version_0_is_read_in_its_layout() {
    run(|| async {
        let (address, _) = start_broker(Behavior {
            describe_topics_v0: true,
            ..Behavior::default()
        });
        let client = Client::connect(&address).await.unwrap();
        let topics = client.describe_topics(&["t".to_string()]).await.unwrap();
        assert_eq!(topics.len(), 1);
        let partition = &topics[0].partitions[0];
        assert_eq!((partition.shard, partition.log_end), (1, 12));
        assert_eq!(partition.leader, None);
        assert!(partition.replicas.is_empty() && partition.in_sync.is_empty());
        assert_eq!(partition.leader_epoch, 0);
    });
}

#[test]
fn an_error_frame_and_a_topic_error_are_broker_errors() {
    run(|| async {
        let (address, _) = start_broker(Behavior::default());
        let client = Client::connect(&address).await.unwrap();
        let error = client.describe_topics(&[]).await.unwrap_err();
        assert_eq!(error.code(), Some(ErrorCode::UnknownApi));
        assert_eq!(error.to_string(), "unknown api: no DescribeTopics here");
        let error = client.create_topic("t", 1, &[]).await.unwrap_err();
        assert_eq!(error.code(), Some(ErrorCode::TopicExists));
        client.create_topic("u", 1, &[]).await.unwrap();
        let error = client.topic_metadata("nope").await.unwrap_err();
        assert_eq!(error.code(), Some(ErrorCode::UnknownTopic));
        // The connection is still fine.
        client.metadata().await.unwrap();
    });
}

#[test]
fn an_unanswered_request_times_out_and_the_connection_goes_on() {
    run(|| async {
        let (address, _) = start_broker(Behavior {
            ignore_delete: true,
            ..Behavior::default()
        });
        let options = ClientOptions {
            request_timeout: Duration::from_millis(100),
            ..ClientOptions::default()
        };
        let client = Client::connect_with(&address, options).await.unwrap();
        let error = client.delete_topic("t").await.unwrap_err();
        assert!(matches!(error, ClientError::Timeout { .. }), "{error}");
        client.metadata().await.unwrap();
    });
}

#[test]
fn a_closed_connection_fails_what_waits_and_what_comes_after() {
    run(|| async {
        let (address, _) = start_broker(Behavior {
            metadata_delay: Duration::from_millis(200),
            close_on_delete: true,
            ..Behavior::default()
        });
        let client = Client::connect(&address).await.unwrap();
        let waiting = client.metadata();
        let closing = client.delete_topic("t");
        let (waiting, closing) = futures_lite::future::zip(waiting, closing).await;
        for error in [waiting.unwrap_err(), closing.unwrap_err()] {
            assert!(matches!(error, ClientError::Closed { .. }), "{error}");
        }
        let error = client.metadata().await.unwrap_err();
        assert!(matches!(error, ClientError::Closed { .. }), "{error}");
    });
}

#[test]
fn produce_batch_returns_the_base_offset_or_nothing_without_acks() {
    run(|| async {
        let (address, logs) = start_broker(Behavior::default());
        let client = Client::connect(&address).await.unwrap();
        let first = client
            .produce_batch("t", 1, batch(&["a", "b"]), Acks::All)
            .await
            .unwrap();
        let second = client
            .produce_batch("t", 1, batch(&["c"]), Acks::Leader)
            .await
            .unwrap();
        assert_eq!((first, second), (Some(0), Some(2)));
        let none = client
            .produce_batch("t", 1, batch(&["d"]), Acks::None)
            .await
            .unwrap();
        assert_eq!(none, None);
        // The unanswered produce did arrive, and the connection still pairs
        // answers right after it.
        let next = client
            .produce_batch("t", 1, batch(&["e"]), Acks::All)
            .await
            .unwrap();
        assert_eq!(next, Some(4));
        assert_eq!(logs.borrow().end(1), 5);
        let error = client
            .produce_batch("t", 9, batch(&["x"]), Acks::All)
            .await
            .unwrap_err();
        assert_eq!(error.code(), Some(ErrorCode::NoSuchPartition));
    });
}

#[test]
fn the_producer_batches_places_and_reports_offsets() {
    run(|| async {
        let (address, logs) = start_broker(Behavior {
            metadata_delay: Duration::from_millis(20),
            ..Behavior::default()
        });
        let client = Client::connect(&address).await.unwrap();
        let producer = Producer::new(
            client.clone(),
            ProducerOptions {
                linger: Duration::from_millis(20),
                batch_bytes: 4096,
                ..ProducerOptions::default()
            },
        );
        let mut deliveries = Vec::new();
        for index in 0..1000u32 {
            let value = format!("value-{index}");
            let key = format!("key-{}", index % 10);
            let (partition, key) = match index % 3 {
                0 => (None, None),
                1 => (None, Some(key.as_bytes())),
                _ => (Some(2), None),
            };
            deliveries.push((
                index,
                producer.send("t", partition, key, value.as_bytes(), &[(b"i", Some(b"1"))]),
            ));
        }
        producer.flush().await.unwrap();
        assert_eq!(producer.buffered_bytes(), 0);
        let mut placed = HashMap::new();
        for (index, delivery) in deliveries {
            let metadata = delivery.await.unwrap();
            if index % 3 == 1 {
                let key = format!("key-{}", index % 10);
                assert_eq!(
                    metadata.partition,
                    partition_for_key(key.as_bytes(), PARTITIONS)
                );
            }
            if index % 3 == 2 {
                assert_eq!(metadata.partition, 2);
            }
            placed.insert((metadata.partition, metadata.offset.unwrap()), index);
        }
        assert_eq!(placed.len(), 1000, "every record has its own offset");
        let produce_requests = logs.borrow().produce_requests;
        assert!(
            produce_requests < 100,
            "1000 records in {produce_requests} requests"
        );
        // Read everything back: every record where its delivery said.
        let ranges = (0..PARTITIONS)
            .map(|partition| PartitionRange {
                partition,
                start: StartOffset::Earliest,
                end: Some(logs.borrow().end(partition)),
            })
            .collect();
        let records: Vec<ConsumedRecord> = client
            .consume_partitions("t", ranges, ConsumeOptions::default())
            .map(Result::unwrap)
            .collect()
            .await;
        assert_eq!(records.len(), 1000);
        for record in records {
            let index = placed[&(record.partition, record.offset)];
            assert_eq!(record.value, Bytes::from(format!("value-{index}")));
            assert_eq!(
                record.headers,
                vec![(Bytes::from_static(b"i"), Some(Bytes::from_static(b"1")))]
            );
        }
    });
}

#[test]
fn a_record_for_an_unknown_topic_fails_and_the_next_topic_works() {
    run(|| async {
        let (address, _) = start_broker(Behavior::default());
        let client = Client::connect(&address).await.unwrap();
        let producer = Producer::new(client, ProducerOptions::default());
        let lost = producer.send("nope", None, None, b"x", &[]);
        let kept = producer.send("t", None, None, b"y", &[]);
        let wrong_partition = producer.send("t", Some(5), None, b"z", &[]);
        producer.flush().await.unwrap();
        assert_eq!(
            lost.await.unwrap_err().code(),
            Some(ErrorCode::UnknownTopic)
        );
        assert_eq!(kept.await.unwrap().offset, Some(0));
        assert_eq!(
            wrong_partition.await.unwrap_err().code(),
            Some(ErrorCode::NoSuchPartition)
        );
    });
}

#[test]
fn a_refused_batch_is_sent_again() {
    run(|| async {
        let (address, logs) = start_broker(Behavior {
            refuse_produces: 2,
            ..Behavior::default()
        });
        let client = Client::connect(&address).await.unwrap();
        let producer = Producer::new(client, ProducerOptions::default());
        let delivery = producer.send("t", Some(0), None, b"x", &[]);
        assert_eq!(delivery.await.unwrap().offset, Some(0));
        assert_eq!(logs.borrow().produce_requests, 3);
    });
}

#[test]
fn a_consumer_skips_what_is_below_its_offset_and_waits_for_more() {
    run(|| async {
        let (address, _) = start_broker(Behavior::default());
        let client = Client::connect(&address).await.unwrap();
        client
            .produce_batch("t", 0, batch(&["a", "b", "c"]), Acks::All)
            .await
            .unwrap();
        let mut stream = client.consume("t", 0, 1);
        assert_eq!(stream.next().await.unwrap().unwrap().value, "b");
        assert_eq!(stream.next().await.unwrap().unwrap().value, "c");
        let producing = async {
            glommio::timer::sleep(Duration::from_millis(50)).await;
            client
                .produce_batch("t", 0, batch(&["d"]), Acks::All)
                .await
                .unwrap();
        };
        let (record, ()) = futures_lite::future::zip(stream.next(), producing).await;
        let record = record.unwrap().unwrap();
        assert_eq!((record.offset, record.value), (3, Bytes::from_static(b"d")));
    });
}

/// Records written through the producer of a client connected to node 0
/// land on each partition's leader, read back through the same client in
/// full, and the topic's description takes each partition's figures from
/// its leader.
#[test]
fn partition_requests_go_to_each_partitions_leader() {
    run(|| async {
        let (cluster, addresses, logs) = start_cluster(3);
        let client = Client::connect(&addresses[0]).await.unwrap();
        assert_eq!(client.broker().broker_id, 0);
        let producer = Producer::new(
            client.clone(),
            ProducerOptions {
                linger: Duration::from_millis(5),
                ..ProducerOptions::default()
            },
        );
        let deliveries: Vec<Delivery> = (0..300u32)
            .map(|index| producer.send("t", Some(index % PARTITIONS), None, b"v", &[]))
            .collect();
        producer.flush().await.unwrap();
        for delivery in deliveries {
            delivery.await.unwrap();
        }
        for (node, logs) in logs.iter().enumerate() {
            let logs = logs.borrow();
            for partition in 0..PARTITIONS {
                let expected = if partition == node as u32 { 100 } else { 0 };
                assert_eq!(
                    logs.end(partition),
                    expected,
                    "node {node} partition {partition}"
                );
            }
        }
        for partition in 0..PARTITIONS {
            assert_eq!(client.leader_of("t", partition), partition);
        }
        // At most one refused batch per partition led elsewhere: the first,
        // sent before the client knew the leaders.
        let refused = cluster.refusals.get();
        assert!(refused <= 2, "{refused} requests were refused");

        let ends = client
            .list_offsets(
                "t",
                &[
                    (2, OffsetSpec::Latest),
                    (0, OffsetSpec::Latest),
                    (1, OffsetSpec::Latest),
                ],
            )
            .await
            .unwrap();
        let ends: Vec<(u32, Option<u64>)> = ends
            .iter()
            .map(|listed| (listed.partition, listed.offset))
            .collect();
        assert_eq!(ends, [(2, Some(100)), (0, Some(100)), (1, Some(100))]);

        let ranges = (0..PARTITIONS)
            .map(|partition| PartitionRange {
                partition,
                start: StartOffset::Earliest,
                end: Some(100),
            })
            .collect();
        let records: Vec<ConsumedRecord> = client
            .consume_partitions("t", ranges, ConsumeOptions::default())
            .map(Result::unwrap)
            .collect()
            .await;
        assert_eq!(records.len(), 300);
        for partition in 0..PARTITIONS {
            let offsets: Vec<u64> = records
                .iter()
                .filter(|record| record.partition == partition)
                .map(|record| record.offset)
                .collect();
            assert_eq!(offsets, (0..100).collect::<Vec<u64>>());
        }

        let topics = client.describe_topics(&["t".to_string()]).await.unwrap();
        for partition in &topics[0].partitions {
            assert_eq!(partition.error, ErrorCode::None, "{partition:?}");
            assert_eq!(partition.leader, Some(partition.partition));
            assert_eq!(partition.log_end, 100);
            assert_eq!(
                partition.shard,
                10 + partition.partition,
                "the leader's shard"
            );
        }
        assert_eq!(cluster.refusals.get(), refused, "no refusal once known");
    });
}

/// A partition whose leader moved is followed by the next request:
/// produce, list offsets and fetch.
#[test]
fn a_moved_leader_is_followed() {
    run(|| async {
        let (cluster, addresses, logs) = start_cluster(3);
        let client = Client::connect(&addresses[1]).await.unwrap();
        let first = client
            .produce_batch("t", 0, batch(&["a"]), Acks::All)
            .await
            .unwrap();
        assert_eq!(first, Some(0));
        assert_eq!(logs[0].borrow().end(0), 1);
        cluster.shift.set(2);
        // Partition 0 is node 2's now: it starts an empty log there.
        let moved = client
            .produce_batch("t", 0, batch(&["b", "c"]), Acks::All)
            .await
            .unwrap();
        assert_eq!(moved, Some(0));
        assert_eq!(logs[2].borrow().end(0), 2);
        assert_eq!(client.leader_of("t", 0), 2);
        cluster.shift.set(0);
        // Back on node 0: looking up the start offset follows it there.
        let mut stream = client.consume("t", 0, StartOffset::Earliest);
        let record = stream.next().await.unwrap().unwrap();
        assert_eq!((record.offset, record.value), (0, Bytes::from_static(b"a")));
        assert_eq!(client.leader_of("t", 0), 0);
        cluster.shift.set(2);
        // The next fetch (offset 1) is refused by node 0 and follows to
        // node 2, whose log holds "b" at 0 and "c" at 1.
        let record = stream.next().await.unwrap().unwrap();
        assert_eq!((record.offset, record.value), (1, Bytes::from_static(b"c")));
        assert_eq!(client.leader_of("t", 0), 2);
    });
}

/// A batch with acks none gets no answer, so no refusal: the client
/// learns where the topic's partitions live before sending it.
#[test]
fn a_batch_without_acks_goes_to_the_leader_at_once() {
    run(|| async {
        let (cluster, addresses, logs) = start_cluster(3);
        let client = Client::connect(&addresses[0]).await.unwrap();
        let none = client
            .produce_batch("t", 2, batch(&["a"]), Acks::None)
            .await
            .unwrap();
        assert_eq!(none, None);
        let next = client
            .produce_batch("t", 2, batch(&["b"]), Acks::All)
            .await
            .unwrap();
        assert_eq!(next, Some(1), "the unanswered batch reached the leader");
        assert_eq!(logs[2].borrow().end(2), 2);
        assert_eq!(cluster.refusals.get(), 0);
    });
}

/// A partition whose leader cannot be reached fails after a bounded number
/// of tries, with an error that names the node; the others still work.
#[test]
fn a_leader_out_of_reach_fails_after_bounded_tries() {
    run(|| async {
        let (cluster, addresses, _) = start_cluster(3);
        // Node 2 is not alive as the cluster says: no address for it.
        cluster.addresses.borrow_mut()[2] = None;
        let client = Client::connect(&addresses[0]).await.unwrap();
        let started = Instant::now();
        let error = client
            .produce_batch("t", 2, batch(&["a"]), Acks::All)
            .await
            .unwrap_err();
        let took = started.elapsed();
        // No live leader: node 0 is asked and keeps refusing.
        assert_eq!(error.code(), Some(ErrorCode::NotLeader), "{error}");
        assert!(took < Duration::from_secs(5), "gave up after {took:?}");
        let refused = cluster.refusals.get();
        assert_eq!(refused, 1 + LEADER_RETRIES_MAX as usize);
        // The cluster names node 2 as leader but gives no address.
        cluster.addresses.borrow_mut()[2] = Some(String::new());
        let error = client
            .produce_batch("t", 2, batch(&["a"]), Acks::All)
            .await
            .unwrap_err();
        assert!(
            matches!(error, ClientError::UnknownNode { node: 2 }),
            "{error}"
        );
        assert_eq!(
            client
                .produce_batch("t", 1, batch(&["b"]), Acks::All)
                .await
                .unwrap(),
            Some(0)
        );
    });
}
