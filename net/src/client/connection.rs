//! One connection to a broker with many requests in flight.
//!
//! A request is framed by the caller's task and queued; the writer task
//! writes queued frames (small ones coalesced into one write), and the
//! reader task reads response frames and hands each to the request with its
//! correlation id, in whatever order the broker answers. A request that
//! expects no response (a produce with acks none) completes once written.
//!
//! If the socket fails or the broker sends something unreadable, every
//! waiting request fails with that error and so does every later one.

use std::{
    cell::{Cell, RefCell},
    collections::{HashMap, VecDeque},
    net::{SocketAddr, ToSocketAddrs},
    rc::Rc,
    task::Poll,
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt};
use glommio::{net::TcpStream, Task};

use crate::split::{ReadHalf, WriteHalf};

use super::{
    sync::{with_timeout, Completion, Waiters},
    ClientError, ClientOptions, ProtocolError,
};
use crate::native::{
    frame::{
        encode_request, error_message, split_response, FrameReader, ReadTimeouts, RequestHeader,
        FRAME_BYTES_MAX,
    },
    messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, Message},
};

/// Frames smaller than this are copied into one buffer and written
/// together; larger ones are written from their own buffer, as copying them
/// would cost more than the extra write.
const COALESCE_FRAME_BYTES_MAX: usize = 64 * 1024;

/// The writer gathers at most this many bytes of small frames per write:
/// enough to fill a socket buffer, small enough to start sending early.
const COALESCE_WRITE_BYTES_MAX: usize = 512 * 1024;

type Response = Result<Bytes, ClientError>;

/// What the broker said about itself in the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerIdentity {
    pub address: SocketAddr,
    pub broker_id: u32,
    /// The shard (core) that serves this connection.
    pub shard: u32,
    pub shards: u32,
}

struct Outgoing {
    frame: BytesMut,
    /// Completed when the frame is written: for requests without a response.
    written: Option<Rc<Completion<Response>>>,
}

/// The state the caller's tasks, the reader and the writer share.
struct Shared {
    /// Requests waiting for their response, by correlation id.
    pending: RefCell<HashMap<u32, Rc<Completion<Response>>>>,
    outbox: RefCell<VecDeque<Outgoing>>,
    /// The writer, waiting for the outbox or a failure.
    writer: Waiters,
    failure: RefCell<Option<ClientError>>,
    next_correlation_id: Cell<u32>,
    in_flight: Cell<usize>,
    in_flight_max: usize,
    /// Requests waiting for room under `in_flight_max`.
    room: Waiters,
}

impl Shared {
    fn check(&self) -> Result<(), ClientError> {
        match &*self.failure.borrow() {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    /// Fails every waiting and every later request with `error`. The first
    /// failure is the one kept.
    fn fail(&self, error: ClientError) {
        if self.failure.borrow().is_some() {
            return;
        }
        tracing::debug!(%error, "connection failed");
        *self.failure.borrow_mut() = Some(error.clone());
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        for (_, completion) in pending {
            completion.complete(Err(error.clone()));
        }
        let outbox = std::mem::take(&mut *self.outbox.borrow_mut());
        for outgoing in outbox {
            if let Some(written) = outgoing.written {
                written.complete(Err(error.clone()));
            }
        }
        self.writer.wake_all();
        self.room.wake_all();
    }

    /// Hands a response frame to its request.
    fn deliver(&self, frame: Bytes) -> Result<(), ClientError> {
        let (header, body) = split_response(frame)?;
        let Some(completion) = self.pending.borrow_mut().remove(&header.correlation_id) else {
            // The request was given up on (it timed out or its caller went
            // away); its answer has no one to go to.
            tracing::debug!(
                correlation_id = header.correlation_id,
                "response to a request no longer waited for"
            );
            return Ok(());
        };
        let response = if header.error.is_ok() {
            Ok(body)
        } else {
            match error_message(body) {
                Ok(message) => Err(ClientError::broker(header.error, message)),
                Err(error) => Err(ClientError::Protocol(ProtocolError::Decode(error))),
            }
        };
        completion.complete(response);
        Ok(())
    }
}

/// Removes a request from the pending map when its caller stops waiting,
/// whether it got its answer, timed out or was dropped.
struct PendingGuard<'a> {
    shared: &'a Shared,
    correlation_id: u32,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.shared
            .pending
            .borrow_mut()
            .remove(&self.correlation_id);
    }
}

/// A place under the in-flight cap, given back on drop.
struct InFlightPermit<'a> {
    shared: &'a Shared,
}

impl Drop for InFlightPermit<'_> {
    fn drop(&mut self) {
        self.shared.in_flight.set(self.shared.in_flight.get() - 1);
        self.shared.room.wake_all();
    }
}

/// An open connection: its shared state and its two tasks, which are
/// cancelled (and the socket closed) when it is dropped.
pub(crate) struct Connection {
    shared: Rc<Shared>,
    identity: BrokerIdentity,
    /// The version spoken for each API, by `ApiKey as usize`.
    versions: [u16; ApiKey::ALL.len()],
    _reader: Task<()>,
    _writer: Task<()>,
}

/// The TLS handshake on `stream`, to a certificate for the host of
/// `address`, within `timeout`.
async fn handshake(
    tls: &std::sync::Arc<rustls::ClientConfig>,
    address: &str,
    stream: TcpStream,
    timeout: Duration,
) -> Result<futures_rustls::client::TlsStream<TcpStream>, ClientError> {
    let name = crate::tls::server_name(address).map_err(ClientError::InvalidArgument)?;
    let connecting = futures_rustls::TlsConnector::from(tls.clone()).connect(name, stream);
    let timed_out = async {
        glommio::timer::sleep(timeout).await;
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("the TLS handshake with {address} did not end within {timeout:?}"),
        ))
    };
    futures_lite::future::or(connecting, timed_out)
        .await
        .map_err(ClientError::Io)
}

impl Connection {
    /// Connects to one `HOST:PORT`, trying each address it resolves to, and
    /// does the version handshake.
    pub(crate) async fn open(
        address: &str,
        options: &ClientOptions,
    ) -> Result<Connection, ClientError> {
        // Resolving is a blocking call, but one made once per connect.
        let resolved: Vec<SocketAddr> = address.to_socket_addrs()?.collect();
        let mut last_error = None;
        for socket_address in resolved {
            match TcpStream::connect_timeout(socket_address, options.connect_timeout).await {
                Ok(stream) => {
                    stream
                        .set_nodelay(true)
                        .map_err(|error| ClientError::Io(error.into()))?;
                    let Some(tls) = &options.tls else {
                        return Connection::start(stream, socket_address, options).await;
                    };
                    let stream = handshake(tls, address, stream, options.connect_timeout).await?;
                    return Connection::start(stream, socket_address, options).await;
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(match last_error {
            Some(error) => ClientError::Io(error.into()),
            None => ClientError::InvalidArgument(format!("{address} resolves to no address")),
        })
    }

    async fn start(
        stream: impl AsyncRead + AsyncWrite + Unpin + 'static,
        address: SocketAddr,
        options: &ClientOptions,
    ) -> Result<Connection, ClientError> {
        let shared = Rc::new(Shared {
            pending: RefCell::new(HashMap::new()),
            outbox: RefCell::new(VecDeque::new()),
            writer: Waiters::default(),
            failure: RefCell::new(None),
            next_correlation_id: Cell::new(0),
            in_flight: Cell::new(0),
            in_flight_max: options.in_flight_max.max(1),
            room: Waiters::default(),
        });
        let (read_half, write_half) = crate::split::split(stream);
        let reader = glommio::spawn_local(read_loop(
            shared.clone(),
            read_half,
            options.request_timeout,
        ));
        let writer = glommio::spawn_local(write_loop(shared.clone(), write_half));
        let mut connection = Connection {
            shared,
            identity: BrokerIdentity {
                address,
                broker_id: 0,
                shard: 0,
                shards: 0,
            },
            versions: [0; ApiKey::ALL.len()],
            _reader: reader,
            _writer: writer,
        };
        connection.handshake(options).await?;
        Ok(connection)
    }

    /// Asks the broker which versions it speaks and picks, for every API,
    /// the highest version both sides speak. Every API this client uses must
    /// have one.
    async fn handshake(&mut self, options: &ClientOptions) -> Result<(), ClientError> {
        let request = ApiVersionsRequest {
            client: options.client_id.clone(),
        };
        self.versions[ApiKey::ApiVersions as usize] = ApiKey::ApiVersions.versions().0;
        let body = self
            .call(ApiKey::ApiVersions, &request, true, options.request_timeout)
            .await?;
        let response = ApiVersionsResponse::from_bytes(body)?;
        for api in ApiKey::ALL {
            let (client_min, client_max) = api.versions();
            let broker = response
                .versions
                .iter()
                .find(|(key, _, _)| *key == api as u16)
                .map(|(_, min, max)| (*min, *max));
            let unsupported = ClientError::Unsupported {
                api,
                client_min,
                client_max,
                broker,
            };
            let Some((broker_min, broker_max)) = broker else {
                return Err(unsupported);
            };
            let version = client_max.min(broker_max);
            if version < client_min.max(broker_min) {
                return Err(unsupported);
            }
            self.versions[api as usize] = version;
        }
        self.identity.broker_id = response.broker_id;
        self.identity.shard = response.shard;
        self.identity.shards = response.shards;
        tracing::debug!(identity = ?self.identity, "connected");
        Ok(())
    }

    pub(crate) fn identity(&self) -> &BrokerIdentity {
        &self.identity
    }

    /// Whether the connection failed: every later call on it fails too.
    pub(crate) fn is_failed(&self) -> bool {
        self.shared.failure.borrow().is_some()
    }

    /// The version of `api` spoken on this connection.
    pub(crate) fn version(&self, api: ApiKey) -> u16 {
        self.versions[api as usize]
    }

    /// Sends one request and waits for its response body, at most `timeout`.
    /// With `expect_response` false the request completes (with an empty
    /// body) once it is written.
    pub(crate) async fn call(
        &self,
        api: ApiKey,
        body: &impl Message,
        expect_response: bool,
        timeout: Duration,
    ) -> Result<Bytes, ClientError> {
        let shared = &*self.shared;
        shared.check()?;
        with_timeout(timeout, async {
            shared
                .room
                .until(|| {
                    shared.failure.borrow().is_some()
                        || shared.in_flight.get() < shared.in_flight_max
                })
                .await;
            shared.check()?;
            shared.in_flight.set(shared.in_flight.get() + 1);
            let _permit = InFlightPermit { shared };

            let correlation_id = shared.next_correlation_id.get();
            shared
                .next_correlation_id
                .set(correlation_id.wrapping_add(1));
            let header = RequestHeader {
                api_key: api as u16,
                api_version: self.versions[api as usize],
                correlation_id,
            };
            let frame = encode_request(header, body);
            if frame.len() - 4 > FRAME_BYTES_MAX {
                return Err(ClientError::InvalidArgument(format!(
                    "a {api:?} request of {} bytes is over the frame cap of {FRAME_BYTES_MAX}",
                    frame.len() - 4
                )));
            }
            let completion = Rc::new(Completion::new());
            let _pending = if expect_response {
                shared
                    .pending
                    .borrow_mut()
                    .insert(correlation_id, completion.clone());
                Some(PendingGuard {
                    shared,
                    correlation_id,
                })
            } else {
                None
            };
            shared.outbox.borrow_mut().push_back(Outgoing {
                frame,
                written: (!expect_response).then(|| completion.clone()),
            });
            shared.writer.wake_all();
            std::future::poll_fn(|cx| completion.poll_take(cx)).await
        })
        .await
    }
}

async fn read_loop<S: AsyncRead + AsyncWrite + Unpin>(
    shared: Rc<Shared>,
    mut stream: ReadHalf<S>,
    stalled: Duration,
) {
    let mut reader = FrameReader::new(FRAME_BYTES_MAX);
    let timeouts = ReadTimeouts {
        idle: None,
        stalled,
    };
    let error = loop {
        match reader.next(&mut stream, timeouts).await {
            Ok(Some(frame)) => {
                if let Err(error) = shared.deliver(frame) {
                    break error;
                }
            }
            Ok(None) => {
                break ClientError::Closed {
                    reason: "the broker closed the connection".to_string(),
                }
            }
            Err(error) => break error.into(),
        }
    };
    shared.fail(error);
}

async fn write_loop<S: AsyncRead + AsyncWrite + Unpin>(
    shared: Rc<Shared>,
    mut stream: WriteHalf<S>,
) {
    let mut coalesced: Vec<u8> = Vec::with_capacity(COALESCE_WRITE_BYTES_MAX);
    let mut written = Vec::new();
    loop {
        std::future::poll_fn(|cx| {
            if shared.failure.borrow().is_some() || !shared.outbox.borrow().is_empty() {
                Poll::Ready(())
            } else {
                shared.writer.register(cx.waker());
                Poll::Pending
            }
        })
        .await;
        if shared.failure.borrow().is_some() {
            return;
        }
        let result = async {
            loop {
                let next = shared.outbox.borrow_mut().pop_front();
                let Some(outgoing) = next else { break };
                if outgoing.frame.len() < COALESCE_FRAME_BYTES_MAX {
                    coalesced.extend_from_slice(&outgoing.frame);
                } else {
                    if !coalesced.is_empty() {
                        stream.write_all(&coalesced).await?;
                        coalesced.clear();
                    }
                    stream.write_all(&outgoing.frame).await?;
                }
                written.extend(outgoing.written);
                if coalesced.len() >= COALESCE_WRITE_BYTES_MAX {
                    break;
                }
            }
            if !coalesced.is_empty() {
                stream.write_all(&coalesced).await?;
                coalesced.clear();
            }
            stream.flush().await
        }
        .await;
        match result {
            Ok(()) => {
                for completion in written.drain(..) {
                    completion.complete(Ok(Bytes::new()));
                }
            }
            Err(error) => {
                let error = ClientError::Io(error);
                for completion in written.drain(..) {
                    completion.complete(Err(error.clone()));
                }
                shared.fail(error);
                return;
            }
        }
    }
}
