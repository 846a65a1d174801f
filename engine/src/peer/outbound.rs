//! One peer's outbound side: its bounded queue, and the task that connects
//! to it (lazily, once something is queued), says hello, writes the queue
//! and reconnects with backoff.
//!
//! The writer takes everything queued at once: small frames are copied
//! into one buffer and written together, a large body is written from its
//! own buffer (after the frames before it), so a burst of raft messages
//! costs a few writes and a snapshot is never copied. Meanwhile the same
//! task watches the connection's read side: the acceptor sends nothing
//! after its status byte, so any read that returns is the connection
//! ending, noticed before the next message is written into a dead socket.

use std::{
    cell::{Cell, RefCell},
    collections::VecDeque,
    net::{SocketAddr, ToSocketAddrs},
    rc::Rc,
    task::{Poll, Waker},
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use sluice_storage::NodeId;

use super::{
    wire::{self, Hello, Refusal},
    within, MessageKind, PeerNetwork, SendError, CONNECTION_STABLE_AFTER, HANDSHAKE_TIMEOUT,
    QUEUE_BYTES_MAX, QUEUE_MESSAGES_MAX, RECONNECT_DELAY_MAX, RECONNECT_DELAY_MIN,
};

/// Frames are gathered into one write up to about this many bytes: large
/// enough that a burst of small messages is one system call, small enough
/// that the buffer is cheap to keep per peer.
const WRITE_BATCH_BYTES_MAX: usize = 256 * 1024;
/// A body larger than this is written from its own buffer instead of being
/// copied into the batch; copying it would cost more than a write.
const BODY_COPY_BYTES_MAX: usize = 16 * 1024;

/// A node this node sends to: its address and its queue. One per peer, on
/// the network's shard; its task (`run`) is the only reader of the queue.
pub(super) struct Peer {
    node: NodeId,
    /// The shard of `node` it is (as a placement names it).
    shard: u32,
    address: RefCell<String>,
    /// Bumped by every change of address; a connection opened to an older
    /// address ends.
    address_generation: Cell<u64>,
    queue: RefCell<VecDeque<(MessageKind, Bytes)>>,
    /// The bodies' bytes in `queue`.
    queued_bytes: Cell<usize>,
    /// The peer's task, when it waits for a message or a new address.
    waker: RefCell<Option<Waker>>,
}

/// What a waiting task was woken for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Queued,
    AddressChanged,
}

impl Peer {
    pub(super) fn new(node: NodeId, shard: u32, address: String) -> Peer {
        Peer {
            node,
            shard,
            address: RefCell::new(address),
            address_generation: Cell::new(0),
            queue: RefCell::default(),
            queued_bytes: Cell::new(0),
            waker: RefCell::default(),
        }
    }

    pub(super) fn set_address(&self, address: String) {
        if *self.address.borrow() == address {
            return;
        }
        tracing::info!(node = %self.node, %address, "peer address changed");
        *self.address.borrow_mut() = address;
        self.address_generation
            .set(self.address_generation.get() + 1);
        self.wake();
    }

    /// Queues a message, or says why it cannot be.
    pub(super) fn push(&self, kind: MessageKind, body: Bytes) -> Result<(), SendError> {
        let mut queue = self.queue.borrow_mut();
        let bytes = self.queued_bytes.get();
        if queue.len() >= QUEUE_MESSAGES_MAX || bytes + body.len() > QUEUE_BYTES_MAX {
            return Err(SendError::QueueFull {
                node: self.node,
                messages: queue.len(),
                bytes,
            });
        }
        self.queued_bytes.set(bytes + body.len());
        queue.push_back((kind, body));
        drop(queue);
        self.wake();
        Ok(())
    }

    /// Empties the queue; how many messages it held.
    pub(super) fn clear(&self) -> usize {
        self.queued_bytes.set(0);
        std::mem::take(&mut *self.queue.borrow_mut()).len()
    }

    fn pop(&self) -> Option<(MessageKind, Bytes)> {
        let popped = self.queue.borrow_mut().pop_front()?;
        self.queued_bytes
            .set(self.queued_bytes.get() - popped.1.len());
        Some(popped)
    }

    fn wake(&self) {
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    /// Waits until the address is no longer the one of `generation`, or
    /// (if `or_queued`) until the queue holds a message.
    async fn changed(&self, generation: u64, or_queued: bool) -> Event {
        futures_lite::future::poll_fn(|cx| {
            if self.address_generation.get() != generation {
                return Poll::Ready(Event::AddressChanged);
            }
            if or_queued && !self.queue.borrow().is_empty() {
                return Poll::Ready(Event::Queued);
            }
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

/// Why a connect did not end in an accepted hello.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error("{address} does not resolve: {error}")]
    Resolve {
        address: String,
        error: std::io::Error,
    },
    #[error("{address} resolves to no address")]
    NoAddress { address: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("the peer refused the hello: {0}")]
    Refused(Refusal),
    #[error("the peer refused the hello with status {0}, unknown to this version")]
    RefusedUnknown(u8),
    #[error("no answer to the hello within {0:?}")]
    TimedOut(Duration),
    #[error("the TLS handshake failed: {0}")]
    Tls(String),
}

/// A connection whose hello was accepted: plaintext, or inside TLS.
enum Connected {
    Plain(TcpStream),
    Tls(Box<futures_rustls::client::TlsStream<TcpStream>>),
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
enum Ended {
    #[error("the peer's address changed")]
    AddressChanged,
    #[error("closed by the peer")]
    ClosedByPeer,
    #[error("the peer sent data, which an acceptor never does")]
    UnexpectedData,
    #[error(transparent)]
    Io(std::io::Error),
}

/// The peer's task: connect when something is queued, write the queue,
/// reconnect when the connection ends or the address changes. Runs until
/// the network stops.
pub(super) async fn run(network: Rc<PeerNetwork>, peer: Rc<Peer>) {
    let mut delay = RECONNECT_DELAY_MIN;
    // Whether the last connect failed: only the first failure of a run of
    // them is a warning.
    let mut failing = false;
    loop {
        let generation = peer.address_generation.get();
        // Lazy: nothing is dialled until something is to be sent.
        if peer.changed(generation, true).await == Event::AddressChanged {
            continue;
        }
        let address = peer.address.borrow().clone();
        let stream = match connect_secured(&network, peer.node, peer.shard, &address).await {
            Ok(stream) => stream,
            Err(error) => {
                let dropped = peer.clear();
                network.count(|stats| {
                    stats.connects_failed += 1;
                    stats.messages_dropped += dropped as u64;
                });
                let refused = matches!(
                    error,
                    ConnectError::Refused(_) | ConnectError::RefusedUnknown(_)
                );
                if refused || !failing {
                    if let Some(suppressed) = network.warnings.admit() {
                        tracing::warn!(node = %peer.node, %address, %error, dropped, suppressed, "cannot reach peer");
                    }
                } else {
                    tracing::debug!(node = %peer.node, %address, %error, dropped, "cannot reach peer");
                }
                failing = true;
                back_off(&peer, generation, &mut delay).await;
                continue;
            }
        };
        if failing {
            tracing::info!(node = %peer.node, %address, "peer reached");
            failing = false;
        }
        let began = Instant::now();
        let ended = match stream {
            Connected::Plain(stream) => serve(&network, &peer, stream, generation).await,
            Connected::Tls(stream) => serve(&network, &peer, *stream, generation).await,
        };
        tracing::debug!(node = %peer.node, %address, %ended, "connection to peer ended");
        if matches!(ended, Ended::AddressChanged) || began.elapsed() >= CONNECTION_STABLE_AFTER {
            delay = RECONNECT_DELAY_MIN;
        } else {
            back_off(&peer, generation, &mut delay).await;
        }
    }
}

/// Waits `delay` (cut short by a change of address), then doubles it up to
/// [`RECONNECT_DELAY_MAX`].
async fn back_off(peer: &Peer, generation: u64, delay: &mut Duration) {
    futures_lite::future::or(glommio::timer::sleep(*delay), async {
        peer.changed(generation, false).await;
    })
    .await;
    *delay = (*delay * 2).min(RECONNECT_DELAY_MAX);
}

/// [`connect`], then the TLS handshake (with peer TLS), within
/// [`HANDSHAKE_TIMEOUT`] of its own.
async fn connect_secured(
    network: &PeerNetwork,
    to: NodeId,
    to_shard: u32,
    address: &str,
) -> Result<Connected, ConnectError> {
    let stream = connect(network, to, to_shard, address).await?;
    let Some(tls) = &network.tls else {
        return Ok(Connected::Plain(stream));
    };
    // The other node's certificate must be for the host it is reached at.
    let name = sluice_net::tls::server_name(address).map_err(ConnectError::Tls)?;
    match within(HANDSHAKE_TIMEOUT, tls.connector().connect(name, stream)).await {
        Some(Ok(stream)) => Ok(Connected::Tls(Box::new(stream))),
        Some(Err(error)) => Err(ConnectError::Tls(error.to_string())),
        None => Err(ConnectError::TimedOut(HANDSHAKE_TIMEOUT)),
    }
}

/// Opens a connection to `to` at `address` and has its hello accepted,
/// within [`HANDSHAKE_TIMEOUT`].
async fn connect(
    network: &PeerNetwork,
    to: NodeId,
    to_shard: u32,
    address: &str,
) -> Result<TcpStream, ConnectError> {
    let socket_address = resolve(address).await?;
    let hello = wire::encode_hello(&Hello {
        cluster_id: network.cluster_id,
        from: network.node_id,
        to,
        from_shard: network.shard,
        to_shard,
    });
    let handshake = async {
        let mut stream = TcpStream::connect(socket_address)
            .await
            .map_err(std::io::Error::from)?;
        stream.set_nodelay(true).map_err(std::io::Error::from)?;
        stream.write_all(&hello).await?;
        stream.flush().await?;
        let mut status = [0u8; 1];
        stream.read_exact(&mut status).await?;
        match status[0] {
            wire::STATUS_OK => Ok(stream),
            code => Err(Refusal::from_code(code)
                .map_or(ConnectError::RefusedUnknown(code), ConnectError::Refused)),
        }
    };
    within(HANDSHAKE_TIMEOUT, handshake)
        .await
        .unwrap_or(Err(ConnectError::TimedOut(HANDSHAKE_TIMEOUT)))
}

/// An address as given (`IP:PORT`), or else a host name resolved on a
/// thread of its own: resolving blocks, and the shard must not.
async fn resolve(address: &str) -> Result<SocketAddr, ConnectError> {
    if let Ok(parsed) = address.parse() {
        return Ok(parsed);
    }
    let name = address.to_string();
    let resolved = glommio::executor()
        .spawn_blocking(move || name.to_socket_addrs().map(|mut found| found.next()))
        .await;
    match resolved {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(ConnectError::NoAddress {
            address: address.to_string(),
        }),
        Err(error) => Err(ConnectError::Resolve {
            address: address.to_string(),
            error,
        }),
    }
}

/// Writes the queue to a connected peer until the connection ends or the
/// address changes.
async fn serve(
    network: &PeerNetwork,
    peer: &Peer,
    stream: impl futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin,
    generation: u64,
) -> Ended {
    let (mut reader, mut writer) = sluice_net::split::split(stream);
    let watch = async move {
        let mut byte = [0u8; 1];
        match reader.read(&mut byte).await {
            Ok(0) => Ended::ClosedByPeer,
            Ok(_) => Ended::UnexpectedData,
            Err(error) => Ended::Io(error),
        }
    };
    let write = async move {
        let mut batch = Vec::with_capacity(WRITE_BATCH_BYTES_MAX);
        loop {
            if peer.changed(generation, true).await == Event::AddressChanged {
                return Ended::AddressChanged;
            }
            if let Err(error) = write_queued(network, peer, &mut writer, &mut batch).await {
                return Ended::Io(error);
            }
        }
    };
    futures_lite::future::or(write, watch).await
}

/// Writes everything queued, in order, in as few writes as fit. Messages
/// taken off the queue and not written are counted as dropped.
async fn write_queued(
    network: &PeerNetwork,
    peer: &Peer,
    writer: &mut (impl futures_lite::AsyncWrite + Unpin),
    batch: &mut Vec<u8>,
) -> std::io::Result<()> {
    batch.clear();
    // Messages taken off the queue and not yet written.
    let mut taken = 0u64;
    let outcome = async {
        while let Some((kind, body)) = peer.pop() {
            batch.extend_from_slice(&wire::encode_frame_header(kind, body.len()));
            taken += 1;
            if body.len() > BODY_COPY_BYTES_MAX {
                writer.write_all(batch).await?;
                batch.clear();
                writer.write_all(&body).await?;
            } else {
                batch.extend_from_slice(&body);
            }
            if batch.len() >= WRITE_BATCH_BYTES_MAX {
                writer.write_all(batch).await?;
                batch.clear();
                network.count(|stats| stats.messages_sent += taken);
                taken = 0;
            }
        }
        writer.write_all(batch).await?;
        writer.flush().await
    }
    .await;
    match outcome {
        Ok(()) => network.count(|stats| stats.messages_sent += taken),
        Err(_) => network.count(|stats| stats.messages_dropped += taken),
    }
    outcome
}
