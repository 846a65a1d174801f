//! The accepting side: the accept loop, the hello check, and a reader per
//! accepted connection that hands each frame to the network's `inbound`
//! channel.
//!
//! Bad input ends only the connection it came on: a wrong or short hello
//! is answered (when it was whole) with its refusal code and closed; a
//! frame that is not one closes the connection. Each is counted and
//! logged within the network's warning budget.

use std::{
    convert::Infallible,
    os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd},
    rc::Rc,
    time::Duration,
};

use bytes::BytesMut;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};

use super::{
    wire::{self, Decoded, FrameError, Hello, Refusal},
    within, HandedOver, PeerMessage, PeerNetwork, FRAME_STALL_TIMEOUT, HANDSHAKE_TIMEOUT,
    INBOUND_CONNECTIONS_MAX,
};

/// Bytes read from a socket at a time. A frame larger than this has its
/// whole room reserved once its length is known, so it is one allocation.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// After a refusal, what the other side still sends is read and discarded
/// for at most this long and this many bytes before the close, so that
/// the close is a FIN and the refusal byte reaches it rather than being
/// lost to a reset.
const REFUSAL_LINGER: Duration = Duration::from_millis(500);
const REFUSAL_LINGER_BYTES_MAX: usize = 64 * 1024;
/// A failed accept (out of file descriptors, mostly) is retried after this.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(10);

/// An accepted connection past its hello, as the network knows it.
pub(super) struct Accepted {
    id: u64,
    /// Closed to end the connection (a newer one from the same node
    /// replaces it).
    closer: async_channel::Sender<Infallible>,
}

/// Accepts peers' connections until the network stops.
pub(super) async fn accept_loop(network: Rc<PeerNetwork>, listener: TcpListener) {
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(error) => {
                if let Some(suppressed) = network.warnings.admit() {
                    tracing::warn!(%error, suppressed, "peer accept failed");
                }
                glommio::timer::sleep(ACCEPT_RETRY_DELAY).await;
                continue;
            }
        };
        if network.accepted_open.get() >= INBOUND_CONNECTIONS_MAX {
            refused(&network, &stream, Refusal::TooManyConnections);
            refuse_at_once(&stream, Refusal::TooManyConnections);
            continue;
        }
        let open = Open::new(network.clone());
        network.spawn(async move {
            serve(&open.0, stream).await;
            drop(open);
        });
    }
}

/// Counts an accepted connection while it is open.
struct Open(Rc<PeerNetwork>);

impl Open {
    fn new(network: Rc<PeerNetwork>) -> Open {
        network.accepted_open.set(network.accepted_open.get() + 1);
        Open(network)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.accepted_open.set(self.0.accepted_open.get() - 1);
    }
}

/// Why an accepted connection ended.
#[derive(Debug, thiserror::Error)]
enum Ended {
    #[error("closed by the peer")]
    ClosedByPeer,
    #[error("replaced by a newer connection from the same node")]
    Replaced,
    #[error("the network's owner no longer takes messages")]
    InboundClosed,
    #[error(transparent)]
    Io(std::io::Error),
    #[error("bad frame: {0}")]
    Malformed(FrameError),
    #[error("closed inside a frame ({buffered} bytes of it buffered)")]
    ClosedMidFrame { buffered: usize },
    #[error("a frame made no progress for {FRAME_STALL_TIMEOUT:?}")]
    Stalled,
}

/// One accepted connection: its hello, then its frames, here or on the
/// shard the hello is for.
async fn serve(network: &Rc<PeerNetwork>, mut stream: TcpStream) {
    let address = stream
        .peer_addr()
        .map_or_else(|_| "unknown".to_string(), |address| address.to_string());
    let Some(hello) = handshake(network, &mut stream, &address).await else {
        return;
    };
    network.count(|stats| stats.connections_accepted += 1);
    let shard = network.shard_of(&hello);
    match &network.hand_over {
        Some(hand_over) if shard != network.shard => match take_socket(&stream) {
            Ok(socket) => {
                tracing::debug!(from = %hello.from, from_shard = hello.from_shard, shard, %address, "peer connection handed to its shard");
                hand_over(HandedOver {
                    shard: shard as usize,
                    socket,
                    hello,
                });
            }
            Err(error) => {
                tracing::warn!(from = %hello.from, %address, %error, "a peer connection could not be handed to its shard");
            }
        },
        _ => serve_frames(network, stream, hello, &address).await,
    }
}

/// A socket of its own for `stream`'s connection, to give another shard
/// (a glommio stream cannot leave its executor): `stream` is closed when
/// dropped, the connection lives on in the duplicate.
fn take_socket(stream: &TcpStream) -> std::io::Result<OwnedFd> {
    // SAFETY: `dup` of an open descriptor this stream owns; the result is
    // checked and then owned by the `OwnedFd` alone.
    let fd = unsafe { libc::dup(stream.as_raw_fd()) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Serves a connection another shard accepted for this one.
pub(super) fn adopt(network: &Rc<PeerNetwork>, handed: HandedOver) {
    if network.accepted_open.get() >= INBOUND_CONNECTIONS_MAX {
        // Dropping the socket closes the connection; the peer reconnects.
        refused_count(network, Refusal::TooManyConnections, None);
        return;
    }
    // SAFETY: the descriptor is a connected TCP socket handed over whole;
    // the stream takes sole ownership of it.
    let stream = unsafe { TcpStream::from_raw_fd(handed.socket.into_raw_fd()) };
    let open = Open::new(network.clone());
    network.spawn(async move {
        let address = stream
            .peer_addr()
            .map_or_else(|_| "unknown".to_string(), |address| address.to_string());
        serve_frames(&open.0, stream, handed.hello, &address).await;
        drop(open);
    });
}

/// An accepted connection past its hello: its TLS handshake (with peer
/// TLS), then its frames until it ends.
async fn serve_frames(network: &Rc<PeerNetwork>, stream: TcpStream, hello: Hello, address: &str) {
    let Some(tls) = network.tls.clone() else {
        return serve_frames_over(network, stream, hello, address).await;
    };
    match within(HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream)).await {
        Some(Ok(stream)) => serve_frames_over(network, stream, hello, address).await,
        failed => {
            network.count(|stats| stats.connections_refused.tls += 1);
            let error = match failed {
                Some(Err(error)) => error.to_string(),
                _ => format!("not done within {HANDSHAKE_TIMEOUT:?}"),
            };
            if let Some(suppressed) = network.warnings.admit() {
                tracing::warn!(from = %hello.from, %address, %error, suppressed, "peer TLS handshake failed");
            }
        }
    }
}

/// [`serve_frames`] on the connection as it carries frames.
async fn serve_frames_over(
    network: &Rc<PeerNetwork>,
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    hello: Hello,
    address: &str,
) {
    let from = hello.from;
    let key = (from, hello.from_shard, hello.to_shard);
    let (closer, closed) = async_channel::bounded::<Infallible>(1);
    let id = network.next_connection_id();
    let older = network
        .accepted
        .borrow_mut()
        .insert(key, Accepted { id, closer });
    if let Some(older) = older {
        older.closer.close();
    }
    tracing::debug!(%from, from_shard = hello.from_shard, %address, "peer connection accepted");
    let ended = futures_lite::future::or(read_frames(network, &hello, &mut stream), async move {
        let _ = closed.recv().await;
        Ended::Replaced
    })
    .await;
    {
        let mut accepted = network.accepted.borrow_mut();
        if accepted.get(&key).is_some_and(|entry| entry.id == id) {
            accepted.remove(&key);
        }
    }
    match ended {
        Ended::Malformed(_) | Ended::ClosedMidFrame { .. } | Ended::Stalled => {
            network.count(|stats| stats.frames_refused += 1);
            if let Some(suppressed) = network.warnings.admit() {
                tracing::warn!(%from, %address, %ended, suppressed, "peer connection closed for a bad frame");
            }
        }
        _ => tracing::debug!(%from, %address, %ended, "peer connection ended"),
    }
}

/// Reads and checks the hello and answers it, within
/// [`HANDSHAKE_TIMEOUT`]: the hello, or `None` when the connection is
/// refused (counted and logged here).
async fn handshake(network: &PeerNetwork, stream: &mut TcpStream, address: &str) -> Option<Hello> {
    let exchange = async {
        let mut prefix = [0u8; wire::HELLO_PREFIX_BYTES];
        stream.read_exact(&mut prefix).await?;
        let checked = match wire::hello_length(&prefix) {
            Ok(length) => {
                let mut hello = vec![0u8; length];
                hello[..prefix.len()].copy_from_slice(&prefix);
                stream.read_exact(&mut hello[prefix.len()..]).await?;
                wire::accept_hello(&hello, &network.cluster_id, network.node_id)
            }
            Err(refusal) => Err(refusal),
        };
        let status = checked.map_or_else(Refusal::code, |_| wire::STATUS_OK);
        stream.write_all(&[status]).await?;
        stream.flush().await?;
        Ok::<_, std::io::Error>(checked)
    };
    match within(HANDSHAKE_TIMEOUT, exchange).await {
        Some(Ok(Ok(hello))) => return Some(hello),
        Some(Ok(Err(refusal))) => {
            refused(network, stream, refusal);
            linger(stream).await;
        }
        Some(Err(error)) => {
            network.count(|stats| stats.connections_refused.short_hello += 1);
            if let Some(suppressed) = network.warnings.admit() {
                tracing::warn!(%address, %error, suppressed, "peer connection closed before its hello was whole");
            }
        }
        None => {
            network.count(|stats| stats.connections_refused.handshake_timeout += 1);
            if let Some(suppressed) = network.warnings.admit() {
                tracing::warn!(%address, timeout = ?HANDSHAKE_TIMEOUT, suppressed, "peer connection sent no hello in time");
            }
        }
    }
    None
}

/// Counts and logs a refusal.
fn refused(network: &PeerNetwork, stream: &TcpStream, refusal: Refusal) {
    refused_count(network, refusal, stream.peer_addr().ok());
}

fn refused_count(network: &PeerNetwork, refusal: Refusal, address: Option<std::net::SocketAddr>) {
    network.count(|stats| stats.connections_refused.count(refusal));
    if let Some(suppressed) = network.warnings.admit() {
        tracing::warn!(?address, %refusal, suppressed, "peer connection refused");
    }
}

/// Answers a connection with a refusal before its hello is read, without
/// waiting: a new socket's send buffer is empty, so the byte goes out at
/// once or never. The caller then closes it. No task is started, so a
/// flood of connections costs nothing past the cap.
fn refuse_at_once(stream: &TcpStream, refusal: Refusal) {
    let _ = socket2::SockRef::from(stream).send_with_flags(&[refusal.code()], libc::MSG_DONTWAIT);
}

/// Half-closes `stream` and discards what the other side still sends, for
/// a bounded time and number of bytes (see [`REFUSAL_LINGER`]).
async fn linger(stream: &mut TcpStream) {
    if stream.shutdown(std::net::Shutdown::Write).await.is_err() {
        return;
    }
    within(REFUSAL_LINGER, async {
        let mut discard = [0u8; 4096];
        let mut discarded = 0;
        while discarded < REFUSAL_LINGER_BYTES_MAX {
            match stream.read(&mut discard).await {
                Ok(0) | Err(_) => break,
                Ok(read) => discarded += read,
            }
        }
    })
    .await;
}

/// Reads frames and hands them to the network's `inbound` channel, in
/// order, until the connection ends or a frame is bad.
async fn read_frames(
    network: &PeerNetwork,
    hello: &Hello,
    stream: &mut (impl AsyncRead + Unpin),
) -> Ended {
    let mut buffer = BytesMut::with_capacity(READ_CHUNK_BYTES);
    loop {
        let bytes_missing = loop {
            match wire::decode_frame(&mut buffer) {
                Ok(Decoded::Frame { kind, body }) => {
                    let message = PeerMessage {
                        from: hello.from,
                        from_shard: hello.from_shard,
                        kind,
                        body,
                    };
                    if network.inbound.send(message).await.is_err() {
                        return Ended::InboundClosed;
                    }
                    network.count(|stats| stats.messages_received += 1);
                }
                Ok(Decoded::Incomplete { bytes_missing }) => break bytes_missing,
                Err(error) => return Ended::Malformed(error),
            }
        };
        let start = buffer.len();
        // Room for the whole frame at once; its length was checked against
        // the cap before this.
        buffer.reserve(bytes_missing.max(READ_CHUNK_BYTES));
        buffer.resize(start + READ_CHUNK_BYTES, 0);
        let read = if start == 0 {
            Some(stream.read(&mut buffer[start..]).await)
        } else {
            within(FRAME_STALL_TIMEOUT, stream.read(&mut buffer[start..])).await
        };
        let read = match read {
            Some(Ok(read)) => read,
            Some(Err(error)) => return Ended::Io(error),
            None => return Ended::Stalled,
        };
        buffer.truncate(start + read);
        if read == 0 {
            return match start {
                0 => Ended::ClosedByPeer,
                buffered => Ended::ClosedMidFrame { buffered },
            };
        }
    }
}
