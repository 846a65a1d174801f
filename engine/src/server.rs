//! The listeners and the connection loop, on every shard, for both
//! protocols.
//!
//! Each connection has a reader (this loop) and a writer task. Frames are
//! read with their length checked against the cap first; each request is
//! served in its own task, at most `in_flight_per_connection_max` at a time
//! (beyond that the reader stops reading: backpressure). Tasks start in the
//! order their requests arrived, so the partition work they send goes out in
//! that order too (an idempotent producer's batches reach its partition in
//! the order sent). A native response is written when it is ready, in any
//! order; Kafka's are written in request order, as its clients expect, and a
//! Kafka request takes effect after every earlier one on its connection
//! ([`crate::request_order`]: produces overlap, nothing else does).

use std::{collections::BTreeMap, future::Future, rc::Rc, time::Instant};

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncWriteExt, StreamExt};
use glommio::{
    channels::local_channel,
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};
use sluice_net::native::frame::{FrameError, FrameReader, ReadTimeouts};

use crate::{
    request_latency::RequestKind,
    request_order::{Admission, RequestOrder, Turn},
    sasl::Users,
    shard::Shard,
    tls::ShardTls,
    BrokerConfig,
};

/// What a connection is, for its requests: where it comes from and who it
/// authenticated as.
pub struct Connection {
    pub peer: Option<std::net::IpAddr>,
    /// The SASL exchange of a listener that requires one
    /// ([`crate::sasl`]); `None` on a listener that does not.
    pub sasl: Option<SaslConnection>,
    /// The principal of the client's certificate (mutual TLS), if it
    /// presented one.
    pub certificate_principal: Option<String>,
    /// The name of the Kafka listener it came in through (empty on the
    /// native listener).
    pub listener: Rc<str>,
    /// Set by a request whose response is the connection's last (a failed
    /// authentication): the connection closes once it is written.
    close_after: std::cell::Cell<bool>,
    /// Set by a request over its client's quota: nothing more is read from
    /// the connection before then (KIP-219).
    muted_until: std::cell::Cell<Option<Instant>>,
    /// [`Connection::requester`], once it holds for the connection's life
    /// (a re-authentication keeps the principal).
    requester: std::cell::RefCell<Option<Rc<crate::acl::Requester>>>,
}

/// A SASL listener's connection: the users it checks against, and where
/// its exchange stands.
pub struct SaslConnection {
    pub users: Rc<Users>,
    pub exchange: std::cell::RefCell<crate::sasl::Exchange>,
    /// When the authentication stops holding (KIP-368): a request after
    /// it, other than a new authentication, closes the connection.
    pub expires: std::cell::Cell<Option<Instant>>,
}

impl Connection {
    pub fn new(
        peer: Option<std::net::IpAddr>,
        sasl: Option<Rc<Users>>,
        certificate_principal: Option<String>,
        listener: Rc<str>,
    ) -> Connection {
        Connection {
            peer,
            listener,
            certificate_principal,
            sasl: sasl.map(|users| SaslConnection {
                users,
                exchange: Default::default(),
                expires: std::cell::Cell::new(None),
            }),
            close_after: std::cell::Cell::new(false),
            muted_until: std::cell::Cell::new(None),
            requester: std::cell::RefCell::new(None),
        }
    }

    /// Who sends the connection's requests, as the authorizer sees them:
    /// the SASL user (`User:NAME`), else the client certificate's subject,
    /// else `User:ANONYMOUS`; from the client's IP address.
    pub fn requester(&self) -> Rc<crate::acl::Requester> {
        if let Some(requester) = &*self.requester.borrow() {
            return requester.clone();
        }
        let sasl = self
            .sasl
            .as_ref()
            .map(|sasl| match &*sasl.exchange.borrow() {
                crate::sasl::Exchange::Authenticated(principal) => Some(principal.clone()),
                _ => None,
            });
        let requester = Rc::new(crate::acl::Requester {
            principal: sasl
                .clone()
                .flatten()
                .or_else(|| self.certificate_principal.clone())
                .unwrap_or_else(|| crate::acl::ANONYMOUS.to_string()),
            host: self.peer.map(|ip| ip.to_string()).unwrap_or_default(),
        });
        // Kept once settled: a SASL connection's once it authenticated,
        // any other's at once.
        if sasl.is_none_or(|principal| principal.is_some()) {
            *self.requester.borrow_mut() = Some(requester.clone());
        }
        requester
    }

    /// Whether the connection may send requests other than those of
    /// authentication: always, on a listener without SASL.
    pub fn authenticated(&self) -> bool {
        self.sasl.as_ref().is_none_or(|sasl| {
            let authenticated = matches!(
                *sasl.exchange.borrow(),
                crate::sasl::Exchange::Authenticated(_)
            );
            let live = sasl
                .expires
                .get()
                .is_none_or(|expires| Instant::now() < expires);
            authenticated && live
        })
    }

    /// Reads nothing more from the connection for `throttle` (a request
    /// over its quota).
    pub fn mute_for(&self, throttle: std::time::Duration) {
        let until = Instant::now() + throttle;
        if self.muted_until.get().is_none_or(|muted| muted < until) {
            self.muted_until.set(Some(until));
        }
    }

    /// Closes the connection once the current request's response is
    /// written.
    pub fn close_after_reply(&self) {
        self.close_after.set(true);
    }
}

/// What differs between the native and the Kafka protocol on a connection.
pub trait Protocol: 'static {
    type Request: 'static;
    const NAME: &'static str;
    /// Whether responses go out in request order.
    const ORDERED: bool;

    fn frame_reader(config: &BrokerConfig) -> FrameReader;
    /// The request in a frame, or what to send (if anything) before closing
    /// a connection whose frame cannot be read.
    fn parse(frame: Bytes) -> Result<Self::Request, (Option<BytesMut>, String)>;
    /// The request's API code, for its latency histogram: a code the
    /// protocol does not know is [`crate::request_latency::UNKNOWN_API`], so that labels stay few.
    fn api(request: &Self::Request) -> i16;
    /// Sent before closing a connection whose frame is over the cap.
    fn too_large(declared: usize, max: usize) -> Option<BytesMut>;
    /// Sent to a connection refused because the shard holds its most.
    fn refusal(max: usize) -> Option<BytesMut>;
    /// How the request may overlap the ones before it on its connection
    /// (for an ordered protocol).
    fn admission(request: &Self::Request) -> Admission;
    /// Serves one request: the response, `None` when none is due, or why
    /// the connection must close (after the responses before this one). A
    /// pipelined request calls [`Turn::dispatched`] once its work is sent.
    fn handle(
        shard: Rc<Shard>,
        request: Self::Request,
        connection: &Connection,
        turn: &Turn,
    ) -> impl Future<Output = Result<Option<BytesMut>, String>>;
}

/// How a listener's connections are secured, and its name.
#[derive(Default, Clone)]
pub struct Security {
    /// TLS: the shard's acceptor.
    pub tls: Option<Rc<ShardTls>>,
    /// SASL: the users a connection authenticates as, first.
    pub sasl: Option<Rc<Users>>,
    /// The Kafka listener's name: its clients are told of the brokers'
    /// addresses of that name. Empty on the native listener.
    pub listener: Rc<str>,
}

/// Accepts connections of protocol `P` on `listener`, each served in a
/// task of its own; over TLS when `security` says (a handshake that does
/// not end within `partial_frame_timeout` closes the connection), and
/// authenticated first when it asks for SASL.
pub async fn accept_loop<P: Protocol>(shard: Rc<Shard>, listener: TcpListener, security: Security) {
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(shard = shard.id, protocol = P::NAME, %error, "accept failed");
                glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        if shard.shutting_down.get() {
            continue;
        }
        let per_shard_max = shard
            .config
            .connections_max
            .div_ceil(shard.shard_count())
            .max(1);
        if shard.connections.get() >= per_shard_max {
            glommio::spawn_local(refuse(stream, P::refusal(per_shard_max))).detach();
            continue;
        }
        let peer = stream.peer_addr().ok();
        let ip = peer.map(|addr| addr.ip());
        // Counted only under a cap: without one, no lock per connection.
        let per_ip = ip.filter(|_| shard.config.connections_max_per_ip > 0);
        if let Some(ip) = per_ip {
            if !shard
                .quota_meters
                .open_connection(ip, shard.config.connections_max_per_ip)
            {
                crate::quota::REFUSED_CONNECTIONS
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                glommio::spawn_local(refuse(stream, None)).detach();
                continue;
            }
        }
        shard.connections.set(shard.connections.get() + 1);
        let shard = shard.clone();
        let acceptor = security.tls.as_ref().map(|tls| tls.acceptor());
        let sasl = security.sasl.clone();
        let listener = security.listener.clone();
        glommio::spawn_local(async move {
            let _ = stream.set_nodelay(true);
            // Over its address's connection creation rate: served once the
            // rate is back under it (KIP-612).
            if let Some(ip) = ip {
                let throttle = connection_throttle(&shard, ip);
                if !throttle.is_zero() {
                    glommio::timer::sleep(throttle).await;
                }
            }
            let served = match acceptor {
                None => {
                    let connection = Rc::new(Connection::new(ip, sasl, None, listener));
                    serve::<P, _>(&shard, stream, connection).await
                }
                Some(acceptor) => match handshake(&shard, acceptor, stream).await {
                    Ok(stream) => {
                        let certificate = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|chain| chain.first())
                            .and_then(|leaf| crate::tls::certificate_principal(leaf));
                        let connection = Rc::new(Connection::new(ip, sasl, certificate, listener));
                        serve::<P, _>(&shard, stream, connection).await
                    }
                    Err(error) => {
                        crate::tls::HANDSHAKE_FAILURES
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        Err(format!("TLS handshake: {error}"))
                    }
                },
            };
            if let Err(error) = served {
                let peer = peer.map(|addr| addr.to_string()).unwrap_or_default();
                tracing::debug!(shard = shard.id, protocol = P::NAME, %peer, %error, "connection closed");
            }
            shard.connections.set(shard.connections.get() - 1);
            if let Some(ip) = per_ip {
                shard.quota_meters.close_connection(ip);
            }
        })
        .detach();
    }
}

/// How long a new connection from `ip` waits: its address's
/// `connection_creation_rate` (or the default address's) over the window.
fn connection_throttle(shard: &Shard, ip: std::net::IpAddr) -> std::time::Duration {
    use crate::quota::{Entity, Meter, Name, Rate, CONNECTION_CREATION_RATE};
    let metadata = shard.metadata();
    if metadata.quotas.is_empty() {
        return std::time::Duration::ZERO;
    }
    let address = ip.to_string();
    let rate = [Name::Named(address.clone()), Name::Default]
        .into_iter()
        .find_map(|name| {
            let entity = Entity {
                user: None,
                client_id: None,
                ip: Some(name),
            };
            metadata
                .quotas
                .get(&entity)?
                .get(CONNECTION_CREATION_RATE)
                .copied()
        });
    let Some(Rate(rate)) = rate else {
        return std::time::Duration::ZERO;
    };
    let meter = Meter {
        key: CONNECTION_CREATION_RATE.to_string(),
        user: address,
        client_id: String::new(),
    };
    let throttle = shard
        .quota_meters
        .record(meter, 1.0, rate, &shard.config.quota_window);
    if !throttle.is_zero() {
        crate::quota::THROTTLED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    throttle
}

/// The server side of a TLS handshake on `stream`, at most
/// `partial_frame_timeout` long: a client that stops in the middle of it
/// holds no connection slot for ever.
pub(crate) async fn handshake(
    shard: &Shard,
    acceptor: futures_rustls::TlsAcceptor,
    stream: TcpStream,
) -> std::io::Result<futures_rustls::server::TlsStream<TcpStream>> {
    let timeout = shard.config.partial_frame_timeout;
    let timed_out = async {
        glommio::timer::sleep(timeout).await;
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("not done in {timeout:?}"),
        ))
    };
    futures_lite::future::or(acceptor.accept(stream), timed_out).await
}

async fn refuse(mut stream: TcpStream, frame: Option<BytesMut>) {
    if let Some(frame) = frame {
        let _ = stream.write_all(&frame).await;
    }
    let _ = stream.close().await;
}

/// What a request's task hands the writer, with the request's place in the
/// connection's order.
enum Reply {
    Frame(BytesMut),
    /// The connection's last response: close once it is written.
    Last(Option<BytesMut>),
    Nothing,
    /// Close the connection once everything before this is written.
    Close,
}

impl Reply {
    fn frame(frame: Option<BytesMut>) -> Reply {
        frame.map_or(Reply::Nothing, Reply::Frame)
    }
}

type Outgoing = (u64, Reply);

async fn serve<P, S>(shard: &Rc<Shard>, stream: S, connection: Rc<Connection>) -> Result<(), String>
where
    P: Protocol,
    S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin + 'static,
{
    let (mut reader_half, mut writer_half) = sluice_net::split::split(stream);
    let (responses, outbox) = local_channel::new_unbounded::<Outgoing>();
    let responses = Rc::new(responses);
    let writer = glommio::spawn_local(async move {
        let mut stream = outbox.stream();
        // Responses that came before one they must follow.
        let mut waiting: BTreeMap<u64, Reply> = BTreeMap::new();
        let mut next = 0u64;
        'replies: while let Some((sequence, reply)) = stream.next().await {
            let mut ready = Vec::new();
            if P::ORDERED {
                waiting.insert(sequence, reply);
                while let Some(reply) = waiting.remove(&next) {
                    next += 1;
                    ready.push(reply);
                }
            } else {
                ready.push(reply);
            }
            for reply in ready {
                let written = match reply {
                    Reply::Frame(frame) => writer_half.write_all(&frame).await,
                    Reply::Last(frame) => {
                        if let Some(frame) = frame {
                            let _ = writer_half.write_all(&frame).await;
                        }
                        break 'replies;
                    }
                    Reply::Nothing => Ok(()),
                    // Unordered, what is in flight still answers; the channel
                    // closes after it.
                    Reply::Close if !P::ORDERED => Ok(()),
                    Reply::Close => break 'replies,
                };
                if written.is_err() {
                    break 'replies;
                }
            }
            // Everything already queued goes out before the flush.
            if writer_half.flush().await.is_err() {
                break;
            }
        }
        let _ = writer_half.flush().await;
        let _ = writer_half.close().await;
    });

    let slots = Rc::new(Semaphore::new(
        shard.config.in_flight_per_connection_max as u64,
    ));
    let mut frames = P::frame_reader(&shard.config);
    let timeouts = ReadTimeouts {
        idle: Some(shard.config.connection_idle_timeout),
        stalled: shard.config.partial_frame_timeout,
    };
    let mut sequence = 0u64;
    let order = RequestOrder::new();
    // A SASL connection authenticates first, within a deadline and with
    // small frames ([`crate::sasl::UNAUTHENTICATED_FRAME_BYTES_MAX`]).
    let authenticate_by = Instant::now() + crate::sasl::AUTHENTICATION_TIMEOUT;
    let authenticated = || {
        connection
            .sasl
            .as_ref()
            .is_none_or(|sasl| sasl.exchange.borrow().has_authenticated())
    };
    // Set by a request that closes the connection: read no more.
    let closing = Rc::new(std::cell::Cell::new(false));
    let outcome = loop {
        if let Some(until) = connection.muted_until.take() {
            let now = Instant::now();
            if until > now {
                glommio::timer::sleep(until - now).await;
            }
        }
        if !authenticated() {
            // The request in flight (the exchange's last message) decides
            // what the next frame may be: wait for it.
            drop(
                slots
                    .acquire_permit(shard.config.in_flight_per_connection_max as u64)
                    .await,
            );
        }
        let next = if authenticated() {
            frames.set_frame_bytes_max(shard.config.frame_bytes_max);
            frames.next(&mut reader_half, timeouts).await
        } else {
            frames.set_frame_bytes_max(
                shard
                    .config
                    .frame_bytes_max
                    .min(crate::sasl::UNAUTHENTICATED_FRAME_BYTES_MAX),
            );
            let left = authenticate_by.saturating_duration_since(Instant::now());
            futures_lite::future::or(frames.next(&mut reader_half, timeouts), async {
                glommio::timer::sleep(left).await;
                Err(FrameError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "not authenticated within {:?}",
                        crate::sasl::AUTHENTICATION_TIMEOUT
                    ),
                )))
            })
            .await
        };
        let frame = match next {
            Ok(Some(frame)) => frame,
            Ok(None) => break Ok(()),
            Err(FrameError::TooLarge { declared, max }) => {
                let _ = responses.try_send((sequence, Reply::frame(P::too_large(declared, max))));
                let _ = responses.try_send((sequence + 1, Reply::Close));
                break Err(FrameError::TooLarge { declared, max }.to_string());
            }
            Err(error) => break Err(error.to_string()),
        };
        let began = Instant::now();
        let request = match P::parse(frame) {
            Ok(request) => request,
            Err((response, error)) => {
                let _ = responses.try_send((sequence, Reply::frame(response)));
                let _ = responses.try_send((sequence + 1, Reply::Close));
                break Err(error);
            }
        };
        let permit = match slots.acquire_static_permit(1).await {
            Ok(permit) => permit,
            Err(_) => break Ok(()),
        };
        // A request that closed the connection, or a broker stopping:
        // what is in flight is answered, nothing more is taken (else a
        // busy client keeps the stop's drain from ever seeing none).
        if closing.get() || shard.shutting_down.get() {
            break Ok(());
        }
        let shard = shard.clone();
        let responses = responses.clone();
        let closing = closing.clone();
        let connection = connection.clone();
        let place = sequence;
        sequence += 1;
        let kind: RequestKind = (P::NAME, P::api(&request));
        let turn = if P::ORDERED {
            order.admit(place)
        } else {
            Turn::unordered()
        };
        shard.in_flight.set(shard.in_flight.get() + 1);
        glommio::spawn_local(async move {
            turn.wait(P::admission(&request)).await;
            let reply = match P::handle(shard.clone(), request, &connection, &turn).await {
                Ok(response) if connection.close_after.get() => {
                    closing.set(true);
                    Reply::Last(response)
                }
                Ok(response) => Reply::frame(response),
                Err(error) => {
                    tracing::warn!(shard = shard.id, protocol = P::NAME, %error, "closing the connection");
                    closing.set(true);
                    Reply::Close
                }
            };
            drop(turn);
            shard.request_latencies.record(kind, began.elapsed());
            let _ = responses.try_send((place, reply));
            shard.in_flight.set(shard.in_flight.get() - 1);
            drop(permit);
        })
        .detach();
    };
    // Let what is in flight answer, then close.
    let _ = slots
        .acquire(shard.config.in_flight_per_connection_max as u64)
        .await;
    drop(responses);
    writer.await;
    outcome
}
