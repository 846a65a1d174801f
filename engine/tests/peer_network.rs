//! The peer network over real sockets on loopback: networks of two or
//! three nodes in one glommio executor, and raw connections that send it
//! bad input.

use std::{future::Future, rc::Rc, sync::Arc, time::Duration};

use async_channel::Receiver;
use bytes::Bytes;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::{
    net::{TcpListener, TcpStream},
    LocalExecutorBuilder, Placement,
};
use sluice_engine::peer::{
    wire::{self, Hello},
    HandedOver, MessageKind, PeerMessage, PeerNetwork, Place, SendError, INBOUND_CONNECTIONS_MAX,
    QUEUE_MESSAGES_MAX,
};
use sluice_storage::NodeId;

const CLUSTER: &str = "AAAAAAAAAAAAAAAAAAAAAA";
/// Long enough for anything on loopback, short enough that a test that
/// fails does so in seconds.
const WAIT: Duration = Duration::from_secs(3);

fn on_executor(test: impl Future<Output = ()> + 'static) {
    LocalExecutorBuilder::new(Placement::Unbound)
        .make()
        .expect("glommio executor starts")
        .run(test);
}

struct Node {
    network: Rc<PeerNetwork>,
    inbox: Receiver<PeerMessage>,
    address: String,
}

fn start(id: i32, bind: &str) -> Node {
    let listener = TcpListener::bind(bind).expect("bind the peer port");
    let address = listener.local_addr().unwrap().to_string();
    let (inbound, inbox) = async_channel::bounded(1024);
    let network = PeerNetwork::start(NodeId(id), Arc::from(CLUSTER), listener, inbound);
    Node {
        network,
        inbox,
        address,
    }
}

/// Two nodes that know each other's address.
fn pair() -> (Node, Node) {
    let one = start(1, "127.0.0.1:0");
    let two = start(2, "127.0.0.1:0");
    one.network.set_address(NodeId(2), two.address.clone());
    two.network.set_address(NodeId(1), one.address.clone());
    (one, two)
}

async fn within<T>(limit: Duration, work: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(work.await) }, async {
        glommio::timer::sleep(limit).await;
        None
    })
    .await
}

async fn receive(inbox: &Receiver<PeerMessage>) -> PeerMessage {
    within(WAIT, inbox.recv())
        .await
        .expect("a message within the wait")
        .expect("inbound channel open")
}

/// Nothing arrives for a little while.
async fn assert_quiet(inbox: &Receiver<PeerMessage>) {
    if let Some(message) = within(Duration::from_millis(200), inbox.recv()).await {
        panic!("unexpected message {message:?}");
    }
}

fn body(tag: &str, index: usize) -> Bytes {
    Bytes::from(format!("{tag} {index}"))
}

#[test]
fn messages_flow_both_ways_in_order_per_peer() {
    on_executor(async {
        let (one, two) = pair();
        let kinds = [
            MessageKind::Quorum,
            MessageKind::ControllerRequest,
            MessageKind::ControllerReply,
        ];
        // A snapshot-sized body among small ones: written from its own buffer.
        let large = Bytes::from((0..3 << 20).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
        let count = 600;
        for index in 0..count {
            let first = if index == 300 {
                large.clone()
            } else {
                body("one", index)
            };
            one.network
                .send(NodeId(2), kinds[index % 3], first)
                .unwrap();
            two.network
                .send(NodeId(1), kinds[(index + 1) % 3], body("two", index))
                .unwrap();
        }
        for index in 0..count {
            let message = receive(&two.inbox).await;
            assert_eq!(message.from, NodeId(1));
            assert_eq!(message.kind, kinds[index % 3], "message {index}");
            if index == 300 {
                assert!(message.body == large, "the large body arrives whole");
            } else {
                assert_eq!(message.body, body("one", index));
            }
            let message = receive(&one.inbox).await;
            assert_eq!(message.from, NodeId(2));
            assert_eq!(message.kind, kinds[(index + 1) % 3]);
            assert_eq!(message.body, body("two", index));
        }
        assert_quiet(&two.inbox).await;
        for (sender, receiver) in [(&one, &two), (&two, &one)] {
            let sent = sender.network.stats();
            assert_eq!(sent.messages_sent, count as u64);
            assert_eq!(sent.messages_dropped, 0);
            let received = receiver.network.stats();
            assert_eq!(received.messages_received, count as u64);
            assert_eq!(received.connections_accepted, 1, "one connection each way");
            assert_eq!(received.connections_refused.total(), 0);
        }
        one.network.stop();
        two.network.stop();
    });
}

#[test]
fn a_restarted_peer_gets_messages_again_after_reconnecting() {
    on_executor(async {
        let (one, two) = pair();
        one.network
            .send(NodeId(2), MessageKind::Quorum, body("before", 0))
            .unwrap();
        assert_eq!(receive(&two.inbox).await.body, body("before", 0));

        two.network.stop();
        // Let the stopped network's tasks end and close their sockets.
        glommio::timer::sleep(Duration::from_millis(50)).await;
        let two = start(2, &two.address);
        two.network.set_address(NodeId(1), one.address.clone());

        // The sender notices the old connection closed, and reconnects
        // (after failures, with backoff) once there is something to send.
        let mut sent = 0;
        let first = loop {
            one.network
                .send(NodeId(2), MessageKind::Quorum, body("after", sent))
                .unwrap();
            sent += 1;
            if let Some(message) = within(Duration::from_millis(100), two.inbox.recv()).await {
                break message.unwrap();
            }
            assert!(sent < 40, "no message reached the restarted peer");
        };
        assert_eq!(first.from, NodeId(1));
        // What follows comes in order, after the first that got through.
        let first_index: usize = std::str::from_utf8(&first.body).unwrap()[6..]
            .parse()
            .unwrap();
        for index in first_index + 1..sent {
            assert_eq!(receive(&two.inbox).await.body, body("after", index));
        }
        for index in sent..sent + 10 {
            one.network
                .send(NodeId(2), MessageKind::Quorum, body("after", index))
                .unwrap();
        }
        for index in sent..sent + 10 {
            assert_eq!(receive(&two.inbox).await.body, body("after", index));
        }
        // The restarted node reaches the one that kept running, too.
        two.network
            .send(NodeId(1), MessageKind::ControllerReply, body("back", 0))
            .unwrap();
        assert_eq!(receive(&one.inbox).await.body, body("back", 0));
        one.network.stop();
        two.network.stop();
    });
}

#[test]
fn a_changed_address_moves_the_connection() {
    on_executor(async {
        let (one, two) = pair();
        let other_two = start(2, "127.0.0.1:0");
        one.network
            .send(NodeId(2), MessageKind::Quorum, body("old", 0))
            .unwrap();
        assert_eq!(receive(&two.inbox).await.body, body("old", 0));
        one.network
            .set_address(NodeId(2), other_two.address.clone());
        one.network
            .send(NodeId(2), MessageKind::Quorum, body("new", 0))
            .unwrap();
        assert_eq!(receive(&other_two.inbox).await.body, body("new", 0));
        assert_quiet(&two.inbox).await;
        for node in [one, two, other_two] {
            node.network.stop();
        }
    });
}

#[test]
fn send_drops_and_counts_what_it_cannot_queue() {
    on_executor(async {
        let one = start(1, "127.0.0.1:0");
        let small = || Bytes::from_static(b"x");
        assert_eq!(
            one.network.send(NodeId(2), MessageKind::Quorum, small()),
            Err(SendError::UnknownAddress { node: NodeId(2) })
        );
        assert!(matches!(
            one.network.send(NodeId(1), MessageKind::Quorum, small()),
            Err(SendError::ToThisNode { .. })
        ));
        // A peer that is never reached: nothing leaves its queue while this
        // test does not yield.
        one.network
            .set_address(NodeId(3), "127.0.0.1:9".to_string());
        let too_large = Bytes::from(vec![0u8; wire::BODY_BYTES_MAX + 1]);
        assert!(matches!(
            one.network.send(NodeId(3), MessageKind::Quorum, too_large),
            Err(SendError::TooLarge { .. })
        ));
        for _ in 0..QUEUE_MESSAGES_MAX {
            one.network
                .send(NodeId(3), MessageKind::Quorum, small())
                .unwrap();
        }
        assert!(matches!(
            one.network.send(NodeId(3), MessageKind::Quorum, small()),
            Err(SendError::QueueFull { messages, .. }) if messages == QUEUE_MESSAGES_MAX
        ));
        assert_eq!(one.network.stats().messages_dropped, 4);
        one.network.stop();
        assert_eq!(
            one.network.send(NodeId(3), MessageKind::Quorum, small()),
            Err(SendError::Stopped)
        );
        let stats = one.network.stats();
        assert_eq!(stats.messages_sent, 0);
        assert_eq!(
            stats.messages_dropped,
            5 + QUEUE_MESSAGES_MAX as u64,
            "what was queued is dropped by stop"
        );
    });
}

/// Connects to `address` as a raw client.
async fn connect(address: &str) -> TcpStream {
    TcpStream::connect(address).await.expect("connect")
}

fn hello(cluster: &str, from: i32, to: i32) -> Vec<u8> {
    wire::encode_hello(&Hello {
        cluster_id: cluster.as_bytes().try_into().unwrap(),
        from: NodeId(from),
        to: NodeId(to),
        from_shard: 0,
        to_shard: 0,
    })
}

/// Sends `bytes` and returns the status byte answered, if any.
async fn send_raw(stream: &mut TcpStream, bytes: &[u8]) -> Option<u8> {
    stream.write_all(bytes).await.expect("write");
    let mut status = [0u8; 1];
    match within(WAIT, stream.read(&mut status)).await {
        Some(Ok(1)) => Some(status[0]),
        Some(_) => None,
        None => panic!("no answer and no close within the wait"),
    }
}

/// The other side closes `stream` (end of file or a reset) within the wait.
async fn assert_closed(stream: &mut TcpStream) {
    let mut rest = [0u8; 64];
    match within(WAIT, stream.read(&mut rest)).await {
        Some(Ok(0)) | Some(Err(_)) => {}
        Some(Ok(_)) => panic!("data after the status byte"),
        None => panic!("connection still open"),
    }
}

#[test]
fn bad_input_is_refused_while_a_good_connection_keeps_working() {
    on_executor(async {
        let (one, two) = pair();
        let target = two.address.clone();
        let mut next = 0;
        let mut good_round = |count: usize| {
            let start = next;
            next += count;
            for index in start..next {
                one.network
                    .send(NodeId(2), MessageKind::Quorum, body("good", index))
                    .unwrap();
            }
            start..next
        };
        for index in good_round(5) {
            assert_eq!(receive(&two.inbox).await.body, body("good", index));
        }

        // Random bytes: not the magic.
        let mut stream = connect(&target).await;
        let garbage: Vec<u8> = (0..100u32).map(|i| (i * 97 + 13) as u8).collect();
        assert_eq!(send_raw(&mut stream, &garbage).await, Some(1));
        assert_closed(&mut stream).await;

        // Another cluster.
        let mut stream = connect(&target).await;
        assert_eq!(
            send_raw(&mut stream, &hello("BBBBBBBBBBBBBBBBBBBBBB", 5, 2)).await,
            Some(3)
        );
        assert_closed(&mut stream).await;

        // Meant for another node.
        let mut stream = connect(&target).await;
        assert_eq!(send_raw(&mut stream, &hello(CLUSTER, 5, 7)).await, Some(4));
        assert_closed(&mut stream).await;

        // Claiming to be the acceptor itself.
        let mut stream = connect(&target).await;
        assert_eq!(send_raw(&mut stream, &hello(CLUSTER, 2, 2)).await, Some(5));
        assert_closed(&mut stream).await;

        // Another version.
        let mut stream = connect(&target).await;
        let mut later = hello(CLUSTER, 5, 2);
        later[4] = wire::VERSION_SHARDS + 1;
        assert_eq!(send_raw(&mut stream, &later).await, Some(2));
        assert_closed(&mut stream).await;

        // A short hello, then the close.
        let mut stream = connect(&target).await;
        stream.write_all(&hello(CLUSTER, 5, 2)[..10]).await.unwrap();
        stream.close().await.unwrap();
        drop(stream);

        // A good hello, then a frame whose length is over the cap.
        let mut stream = connect(&target).await;
        assert_eq!(send_raw(&mut stream, &hello(CLUSTER, 8, 2)).await, Some(0));
        let mut oversize = ((wire::FRAME_LENGTH_MAX + 1) as u32).to_le_bytes().to_vec();
        oversize.extend_from_slice(&[MessageKind::Quorum as u8, 1, 2, 3]);
        stream.write_all(&oversize).await.unwrap();
        assert_closed(&mut stream).await;

        // A good hello, then a frame of an unknown kind.
        let mut stream = connect(&target).await;
        assert_eq!(send_raw(&mut stream, &hello(CLUSTER, 9, 2)).await, Some(0));
        let mut unknown = 4u32.to_le_bytes().to_vec();
        unknown.extend_from_slice(&[9, b'a', b'b', b'c']);
        stream.write_all(&unknown).await.unwrap();
        assert_closed(&mut stream).await;

        // A good hello, then a frame of length zero (no kind).
        let mut stream = connect(&target).await;
        assert_eq!(send_raw(&mut stream, &hello(CLUSTER, 10, 2)).await, Some(0));
        stream.write_all(&0u32.to_le_bytes()).await.unwrap();
        assert_closed(&mut stream).await;

        // The good peer's connection kept working throughout.
        for index in good_round(20) {
            let message = receive(&two.inbox).await;
            assert_eq!(message.from, NodeId(1), "only the good peer is heard");
            assert_eq!(message.body, body("good", index));
        }
        assert_quiet(&two.inbox).await;

        let stats = two.network.stats();
        let refused = stats.connections_refused;
        assert_eq!(refused.bad_magic, 1);
        assert_eq!(refused.other_cluster, 1);
        assert_eq!(refused.not_this_node, 1);
        assert_eq!(refused.from_this_node, 1);
        assert_eq!(refused.unsupported_version, 1);
        assert_eq!(refused.short_hello, 1);
        assert_eq!(refused.total(), 6);
        assert_eq!(stats.frames_refused, 3);
        assert_eq!(
            stats.connections_accepted, 4,
            "the good peer and three bad framers"
        );
        assert_eq!(stats.messages_received, 25);
        assert_eq!(one.network.stats().connects_failed, 0);
        one.network.stop();
        two.network.stop();
    });
}

#[test]
fn stop_closes_the_listener_and_every_connection() {
    on_executor(async {
        let (one, two) = pair();
        one.network
            .send(NodeId(2), MessageKind::Quorum, body("x", 0))
            .unwrap();
        receive(&two.inbox).await;
        let mut raw = connect(&two.address).await;
        assert_eq!(send_raw(&mut raw, &hello(CLUSTER, 5, 2)).await, Some(0));
        two.network.stop();
        // The accepted connection closes...
        assert_closed(&mut raw).await;
        // ...and nothing accepts on the port any more (once the kernel has
        // let go of the listening socket).
        let mut waited = Duration::ZERO;
        while TcpStream::connect(two.address.as_str()).await.is_ok() {
            assert!(waited < WAIT, "the port still accepts after stop");
            glommio::timer::sleep(Duration::from_millis(20)).await;
            waited += Duration::from_millis(20);
        }
        one.network.stop();
    });
}

#[test]
fn connections_past_the_cap_are_refused_at_once_and_slots_come_back() {
    on_executor(async {
        let two = start(2, "127.0.0.1:0");
        // Connections that say nothing hold their slots (until the
        // handshake timeout, which this test does not wait for).
        let mut silent = Vec::new();
        for _ in 0..INBOUND_CONNECTIONS_MAX {
            silent.push(connect(&two.address).await);
        }
        let mut over = connect(&two.address).await;
        let mut status = [0u8; 1];
        let read = within(WAIT, over.read(&mut status)).await;
        assert!(matches!(read, Some(Ok(1))), "no refusal: {read:?}");
        assert_eq!(status[0], wire::Refusal::TooManyConnections.code());
        assert_closed(&mut over).await;
        assert_eq!(
            two.network.stats().connections_refused.too_many_connections,
            1
        );

        // Closed, they free their slots: a peer gets in again.
        for stream in silent.drain(..) {
            drop(stream);
        }
        let one = start(1, "127.0.0.1:0");
        one.network.set_address(NodeId(2), two.address.clone());
        let mut sent = 0;
        loop {
            one.network
                .send(NodeId(2), MessageKind::Quorum, body("in", sent))
                .unwrap();
            sent += 1;
            if within(Duration::from_millis(100), two.inbox.recv())
                .await
                .is_some()
            {
                break;
            }
            assert!(sent < 30, "the peer never got a slot back");
        }
        // Every silent one is counted as a hello cut short.
        let mut waited = Duration::ZERO;
        while two.network.stats().connections_refused.short_hello < INBOUND_CONNECTIONS_MAX as u64 {
            assert!(waited < WAIT, "{:?}", two.network.stats());
            glommio::timer::sleep(Duration::from_millis(20)).await;
            waited += Duration::from_millis(20);
        }
        assert_eq!(
            two.network.stats().connections_refused.short_hello,
            INBOUND_CONNECTIONS_MAX as u64
        );
        one.network.stop();
        two.network.stop();
    });
}

/// A node of two shards: shard 0 holds the listener and hands shard 1's
/// connections over to it, as the engine's shards do across threads.
struct TwoShards {
    shards: [Rc<PeerNetwork>; 2],
    inboxes: [Receiver<PeerMessage>; 2],
    address: String,
}

fn two_shards(id: i32) -> TwoShards {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the peer port");
    let address = listener.local_addr().unwrap().to_string();
    let (handed, handovers) = async_channel::unbounded::<HandedOver>();
    let place = |shard| Place {
        node: NodeId(id),
        shard,
        shard_count: 2,
    };
    let (inbound_0, inbox_0) = async_channel::bounded(1024);
    let (inbound_1, inbox_1) = async_channel::bounded(1024);
    let hand_over: Box<dyn Fn(HandedOver)> = Box::new(move |handed_over| {
        assert_eq!(handed_over.shard, 1, "only shard 1 is another shard");
        handed.try_send(handed_over).unwrap();
    });
    let shard_0 = PeerNetwork::start_on_shard(
        place(0),
        Arc::from(CLUSTER),
        Some(listener),
        inbound_0,
        Some(hand_over),
        None,
    );
    let shard_1 =
        PeerNetwork::start_on_shard(place(1), Arc::from(CLUSTER), None, inbound_1, None, None);
    let adopter = shard_1.clone();
    glommio::spawn_local(async move {
        while let Ok(handed_over) = handovers.recv().await {
            adopter.adopt(handed_over);
        }
    })
    .detach();
    TwoShards {
        shards: [shard_0, shard_1],
        inboxes: [inbox_0, inbox_1],
        address,
    }
}

#[test]
fn each_shard_pair_has_its_own_connection_and_messages_reach_their_shard() {
    on_executor(async {
        let one = two_shards(1);
        let two = two_shards(2);
        for shard in &one.shards {
            shard.set_address(NodeId(2), two.address.clone());
        }
        for shard in &two.shards {
            shard.set_address(NodeId(1), one.address.clone());
        }
        // Shard 1 of node 1 to shards 1 and 3 of node 2: both are its
        // shard 1 (3 modulo its 2 shards), each over a connection of its
        // own; shard 0 and 2 are its shard 0.
        let count = 200;
        for index in 0..count {
            for to_shard in [0, 1, 2, 3] {
                one.shards[1]
                    .send_to_shard(
                        NodeId(2),
                        to_shard,
                        MessageKind::Quorum,
                        body(&format!("to {to_shard}"), index),
                    )
                    .unwrap();
            }
        }
        let mut seen = [[0usize; 4]; 2];
        for _ in 0..count * 4 {
            let next = futures_lite::future::or(
                async { (0, two.inboxes[0].recv().await.unwrap()) },
                async { (1, two.inboxes[1].recv().await.unwrap()) },
            );
            let Some((shard, message)) = within(WAIT, next).await else {
                panic!(
                    "messages stopped; seen {seen:?}, {:?}",
                    two.shards[0].stats()
                );
            };
            assert_eq!((message.from, message.from_shard), (NodeId(1), 1));
            let text = String::from_utf8(message.body.to_vec()).unwrap();
            let to_shard: usize = text[3..4].parse().unwrap();
            assert_eq!(shard, to_shard % 2, "{text} reached shard {shard}");
            let index: usize = text[5..].parse().unwrap();
            assert_eq!(
                index, seen[shard][to_shard],
                "in order per connection: {text}"
            );
            seen[shard][to_shard] += 1;
        }
        assert_eq!(seen, [[count, 0, count, 0], [0, count, 0, count]]);
        // The answer goes back the other way, shard 1 to shard 1.
        two.shards[1]
            .send_to_shard(NodeId(1), 1, MessageKind::ControllerReply, body("back", 0))
            .unwrap();
        let back = receive(&one.inboxes[1]).await;
        assert_eq!((back.from, back.from_shard), (NodeId(2), 1));
        assert_eq!(back.body, body("back", 0));
        assert_quiet(&one.inboxes[0]).await;
        // Four connections from node 1's shard 1, all accepted by node 2's
        // shard 0, and the messages of two of them read on its shard 1.
        assert_eq!(two.shards[0].stats().connections_accepted, 4);
        assert_eq!(two.shards[0].stats().messages_received, 2 * count as u64);
        assert_eq!(two.shards[1].stats().messages_received, 2 * count as u64);
        assert_eq!(one.shards[0].stats().connections_accepted, 1);
        assert_eq!(one.shards[1].stats().messages_received, 1);
        for shard in one.shards.iter().chain(two.shards.iter()) {
            shard.stop();
        }
    });
}
