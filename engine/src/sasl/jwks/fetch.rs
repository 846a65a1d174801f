//! One GET of a JWKS endpoint over a blocking socket, with rustls for
//! `https://`. It runs on the thread that refreshes the keys, never on a
//! shard's executor.
//!
//! Every step is bounded: the connection to each address by
//! [`CONNECT_TIMEOUT`], and the whole fetch (connection, TLS handshake,
//! request, response) by the deadline the caller gives, which each read
//! and write is held to. The body is capped by the caller too (see
//! [`super::http`]). Name resolution is the system's, whose own timeouts
//! apply; the start of the broker waits for the first fetch no longer
//! than its own deadline, whatever the resolver does.

use std::{
    io::{self, Read, Write},
    net::{SocketAddr, TcpStream, ToSocketAddrs},
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use rustls::{pki_types::ServerName, ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::{
    http::{self, HttpError, Progress, ResponseReader},
    url::{Host, Scheme, Url},
};

/// An endpoint that has not accepted in 5 s is down or unreachable: the
/// next address, or the next try, does better than a longer wait.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What is read from the socket at once.
const READ_BUFFER_BYTES: usize = 16 * 1024;

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot resolve {host}: {source}")]
    Resolve { host: String, source: io::Error },
    #[error("{host} resolves to no address")]
    NoAddress { host: String },
    #[error(
        "{host} resolves to {addr}, which is not loopback (http:// is taken from loopback only)"
    )]
    NotLoopback { host: String, addr: SocketAddr },
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: SocketAddr, source: io::Error },
    #[error("TLS with {addr}: {reason}")]
    Tls { addr: SocketAddr, reason: String },
    #[error("{during}: {source}")]
    Io {
        during: &'static str,
        source: io::Error,
    },
    #[error("no whole answer within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Http(#[from] HttpError),
}

/// Why the authorities to trust could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("sasl_oauthbearer_jwks_endpoint_ca_file {0}")]
    CaFile(crate::tls::TlsError),
    #[error(
        "no certificate authority found on this system ({reason}): name the one to trust with sasl_oauthbearer_jwks_endpoint_ca_file"
    )]
    NoSystemRoots { reason: String },
    #[error("TLS: {0}")]
    Config(#[from] rustls::Error),
}

/// The TLS client configuration: the authorities of `ca_file` (PEM)
/// alone, or, without it, the system's (as `SSL_CERT_FILE`,
/// `SSL_CERT_DIR` or the system's store give them).
pub fn tls_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TrustError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for certificate in crate::tls::certificates(path).map_err(TrustError::CaFile)? {
                roots.add(certificate).map_err(|error| {
                    TrustError::CaFile(crate::tls::TlsError::File {
                        path: path.to_path_buf(),
                        reason: error.to_string(),
                    })
                })?;
            }
        }
        None => {
            let certificates = rustls_native_certs::load_native_certs().map_err(|error| {
                TrustError::NoSystemRoots {
                    reason: error.to_string(),
                }
            })?;
            let (added, _unparsable) = roots.add_parsable_certificates(certificates);
            if added == 0 {
                return Err(TrustError::NoSystemRoots {
                    reason: "none could be read".to_string(),
                });
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The GET of one URL: its TLS configuration made once.
#[derive(Debug, Clone)]
pub struct Client {
    url: Url,
    tls: Option<Arc<ClientConfig>>,
}

impl Client {
    /// `tls` is needed for an `https://` URL.
    pub fn new(url: Url, tls: Option<Arc<ClientConfig>>) -> Client {
        assert_eq!(
            url.scheme == Scheme::Https,
            tls.is_some(),
            "TLS configuration for {url}"
        );
        Client { url, tls }
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The body of a `200` answer, at most `body_max` bytes, within
    /// `timeout`. Each address the host resolves to is tried in turn
    /// until one accepts.
    pub fn get(&self, body_max: usize, timeout: Duration) -> Result<Vec<u8>, FetchError> {
        let deadline = Instant::now() + timeout;
        let host = match &self.url.host {
            Host::Name(name) => name.clone(),
            Host::Ip(ip) => ip.to_string(),
        };
        let addrs: Vec<SocketAddr> = match &self.url.host {
            Host::Ip(ip) => vec![SocketAddr::new(*ip, self.url.port)],
            Host::Name(name) => (name.as_str(), self.url.port)
                .to_socket_addrs()
                .map_err(|source| FetchError::Resolve {
                    host: host.clone(),
                    source,
                })?
                .collect(),
        };
        let mut failed = FetchError::NoAddress { host: host.clone() };
        for addr in addrs {
            if self.url.scheme == Scheme::Http && !addr.ip().is_loopback() {
                failed = FetchError::NotLoopback {
                    host: host.clone(),
                    addr,
                };
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(FetchError::Timeout(timeout));
            }
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT.min(left)) {
                Ok(stream) => return self.exchange(stream, addr, body_max, deadline, timeout),
                Err(source) => failed = FetchError::Connect { addr, source },
            }
        }
        Err(failed)
    }

    fn exchange(
        &self,
        tcp: TcpStream,
        addr: SocketAddr,
        body_max: usize,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Vec<u8>, FetchError> {
        let _ = tcp.set_nodelay(true);
        let request = http::request(&self.url);
        let Some(config) = &self.tls else {
            let mut plain = tcp;
            return transfer(&mut plain, request.as_bytes(), body_max, deadline, timeout);
        };
        let name = match &self.url.host {
            Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
            Host::Name(name) => {
                ServerName::try_from(name.clone()).map_err(|error| FetchError::Tls {
                    addr,
                    reason: error.to_string(),
                })?
            }
        };
        let connection =
            ClientConnection::new(config.clone(), name).map_err(|error| FetchError::Tls {
                addr,
                reason: error.to_string(),
            })?;
        let mut stream = StreamOwned::new(connection, tcp);
        while stream.conn.is_handshaking() {
            bound(&stream.sock, deadline, timeout)?;
            if let Err(error) = stream.conn.complete_io(&mut stream.sock) {
                return Err(match error.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                        FetchError::Timeout(timeout)
                    }
                    _ => FetchError::Tls {
                        addr,
                        reason: error.to_string(),
                    },
                });
            }
        }
        transfer(&mut stream, request.as_bytes(), body_max, deadline, timeout)
    }
}

/// A connection, plain or TLS, over a TCP socket whose timeouts can be
/// set.
trait Socket: Read + Write {
    fn tcp(&self) -> &TcpStream;
}

impl Socket for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Socket for StreamOwned<ClientConnection, TcpStream> {
    fn tcp(&self) -> &TcpStream {
        &self.sock
    }
}

/// Holds the next read or write to what is left until `deadline`.
fn bound(tcp: &TcpStream, deadline: Instant, timeout: Duration) -> Result<(), FetchError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(FetchError::Timeout(timeout));
    }
    let set = |result: io::Result<()>| {
        result.map_err(|source| FetchError::Io {
            during: "setting a socket timeout",
            source,
        })
    };
    set(tcp.set_read_timeout(Some(left)))?;
    set(tcp.set_write_timeout(Some(left)))
}

/// Sends `request` and reads the response's body.
fn transfer(
    stream: &mut impl Socket,
    request: &[u8],
    body_max: usize,
    deadline: Instant,
    timeout: Duration,
) -> Result<Vec<u8>, FetchError> {
    let failed = |during, source: io::Error| match source.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => FetchError::Timeout(timeout),
        _ => FetchError::Io { during, source },
    };
    bound(stream.tcp(), deadline, timeout)?;
    stream
        .write_all(request)
        .and_then(|()| stream.flush())
        .map_err(|error| failed("sending the request", error))?;
    let mut reader = ResponseReader::new(body_max);
    let mut buffer = vec![0u8; READ_BUFFER_BYTES];
    loop {
        bound(stream.tcp(), deadline, timeout)?;
        match stream.read(&mut buffer) {
            // The end of the connection (with TLS: its close_notify; an
            // end without one is an error, so a cut cannot pass for the
            // end of a body that runs to it).
            Ok(0) => return Ok(reader.finish()?),
            Ok(read) => {
                if reader.feed(&buffer[..read])? == Progress::Complete {
                    return Ok(reader.finish()?);
                }
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(failed("reading the response", error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::jwks::url::Location;
    use std::net::TcpListener;

    fn url(text: &str) -> Url {
        match Location::parse(text).unwrap() {
            Location::Http(url) => url,
            other => panic!("{other:?}"),
        }
    }

    /// A server on loopback that hands each connection to `answer`.
    fn serve(answer: impl Fn(TcpStream) + Send + 'static) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                answer(stream.unwrap());
            }
        });
        addr
    }

    /// Reads a request's head.
    fn read_head(stream: &mut TcpStream) {
        let mut head = Vec::new();
        let mut byte = [0u8];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
    }

    #[test]
    fn a_loopback_http_get_reads_the_body() {
        let addr = serve(|mut stream| {
            read_head(&mut stream);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            );
        });
        let client = Client::new(url(&format!("http://{addr}/jwks")), None);
        assert_eq!(
            client.get(1024, Duration::from_secs(5)).unwrap(),
            b"abc".to_vec()
        );
    }

    #[test]
    fn a_silent_server_times_out_and_a_closed_port_is_refused() {
        let addr = serve(|mut stream| {
            read_head(&mut stream);
            // A head, and then nothing.
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n");
            std::thread::sleep(Duration::from_secs(3));
        });
        let client = Client::new(url(&format!("http://{addr}/jwks")), None);
        let started = Instant::now();
        let error = client.get(1024, Duration::from_millis(300)).unwrap_err();
        assert!(matches!(error, FetchError::Timeout(_)), "{error}");
        assert!(started.elapsed() < Duration::from_secs(2));

        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let client = Client::new(url(&format!("http://{closed}/jwks")), None);
        let error = client.get(1024, Duration::from_secs(5)).unwrap_err();
        assert!(matches!(error, FetchError::Connect { .. }), "{error}");
    }

    #[test]
    fn a_server_the_authorities_do_not_vouch_for_is_refused() {
        // A TLS server whose certificate no authority given signs.
        let key = rcgen::KeyPair::generate().unwrap();
        let certificate = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![certificate.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let server = Arc::new(server);
        let addr = serve(move |mut stream| {
            let mut connection = rustls::ServerConnection::new(server.clone()).unwrap();
            while connection.is_handshaking() && connection.complete_io(&mut stream).is_ok() {}
        });
        let dir = tempfile::tempdir().unwrap();
        let other = rcgen::CertificateParams::new(vec!["other".to_string()])
            .unwrap()
            .self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, other.pem()).unwrap();
        let client = Client::new(
            url(&format!("https://{addr}/jwks")),
            Some(tls_config(Some(&ca)).unwrap()),
        );
        let error = client.get(1024, Duration::from_secs(5)).unwrap_err();
        assert!(
            matches!(&error, FetchError::Tls { reason, .. } if reason.contains("certificate")),
            "{error}"
        );

        std::fs::write(&ca, "not PEM").unwrap();
        let error = tls_config(Some(&ca)).unwrap_err().to_string();
        assert!(
            error.starts_with("sasl_oauthbearer_jwks_endpoint_ca_file") && error.contains("ca.pem"),
            "{error}"
        );
    }
}
