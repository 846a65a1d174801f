//! A blocking Kafka-protocol client, for the commands that must speak
//! Kafka's protocol rather than the native one. The native protocol has no
//! authentication, so whatever needs to know who asks (`sluice acl`,
//! `sluice user`) goes to the Kafka listener, with its TLS and SASL.
//!
//! One connection to one broker, one request at a time: connect (within
//! [`IO_TIMEOUT`]), TLS if the listener's security protocol says so
//! (rustls, trusting the authorities of a PEM file), ApiVersions, SASL
//! PLAIN if the protocol says so, then requests made and read with
//! `kafka-protocol`'s codecs, each checked against the versions the broker
//! serves. A response's length is checked against [`FRAME_BYTES_MAX`]
//! before anything is allocated for it.
//!
//! Not here: authenticating with SCRAM, client certificates, several
//! brokers or routing to a partition's leader (every broker answers the
//! ACL and SCRAM credential APIs), pipelining.

use std::{
    fmt,
    io::{self, Read, Write},
    net::{TcpStream, ToSocketAddrs},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::{
    error::ResponseError,
    messages::{
        ApiKey, ApiVersionsRequest, RequestHeader, ResponseHeader, SaslAuthenticateRequest,
        SaslHandshakeRequest,
    },
    protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes},
};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::config::SecurityProtocol;

/// How long connecting may take, and then each read or write: a broker
/// answers an ACL or credential request once its metadata record is
/// committed, well within this.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest response read, as the native protocol caps its frames: a
/// listing of the most bindings a broker keeps (100,000), with names of
/// usual lengths, is a few MiB. A longer frame is refused before it is
/// allocated.
pub const FRAME_BYTES_MAX: usize = 64 << 20;

/// The largest CA file read: a bundle of a few hundred authorities is
/// some hundreds of KiB.
pub const CA_FILE_BYTES_MAX: u64 = 1 << 20;

/// How this client names itself in request headers and ApiVersions
/// (KIP-511: letters, digits, dots and dashes).
const CLIENT_ID: &str = "sluice-cli";

/// ApiVersions v3: the first with the client's name and version; every
/// broker since Kafka 2.4 serves it.
const API_VERSIONS_VERSION: i16 = 3;
const SASL_HANDSHAKE_VERSION: i16 = 1;
const SASL_AUTHENTICATE_VERSION: i16 = 2;

/// A Kafka listener's address: its security protocol and `HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaAddr {
    pub protocol: SecurityProtocol,
    pub host_port: String,
}

impl fmt::Display for KafkaAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.protocol.name(), self.host_port)
    }
}

/// A SASL PLAIN user and password.
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    pub addr: KafkaAddr,
    /// Needed by `SASL_PLAINTEXT` and `SASL_SSL`, unused otherwise.
    pub credentials: Option<Credentials>,
    /// The authorities the broker's certificate must chain to (PEM);
    /// needed by `SSL` and `SASL_SSL`, unused otherwise.
    pub ca: Option<PathBuf>,
    /// A client certificate and its key (PEM) for mutual TLS.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl KafkaSettings {
    /// The client certificate and key, if both are given.
    pub fn identity(&self) -> Result<Option<(&Path, &Path)>, KafkaClientError> {
        identity(self.cert.as_deref(), self.key.as_deref())
    }
}

/// A client certificate and key, both or neither.
pub fn identity<'a>(
    cert: Option<&'a Path>,
    key: Option<&'a Path>,
) -> Result<Option<(&'a Path, &'a Path)>, KafkaClientError> {
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => Ok(Some((cert, key))),
        _ => Err(KafkaClientError::HalfIdentity),
    }
}

/// A Kafka error code, shown by Kafka's name (`SECURITY_DISABLED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KafkaCode(pub i16);

impl KafkaCode {
    pub const CLUSTER_AUTHORIZATION_FAILED: KafkaCode = KafkaCode(31);
    pub const SECURITY_DISABLED: KafkaCode = KafkaCode(54);
    pub const UNACCEPTABLE_CREDENTIAL: KafkaCode = KafkaCode(93);

    pub fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// Kafka's name for the code (`CLUSTER_AUTHORIZATION_FAILED`), or its
    /// number if `kafka-protocol` does not know it.
    pub fn name(self) -> String {
        match ResponseError::try_from_code(self.0) {
            None => "NONE".to_string(),
            Some(ResponseError::Unknown(code)) => format!("error code {code}"),
            // The variants are Kafka's names in CamelCase.
            Some(error) => {
                let camel = format!("{error:?}");
                let mut name = String::with_capacity(camel.len() + 8);
                for (index, letter) in camel.chars().enumerate() {
                    if letter.is_ascii_uppercase() && index > 0 {
                        name.push('_');
                    }
                    name.push(letter.to_ascii_uppercase());
                }
                name
            }
        }
    }
}

impl fmt::Display for KafkaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// Why talking to the broker failed.
#[derive(Debug, thiserror::Error)]
pub enum KafkaClientError {
    #[error(
        "{protocol}:// needs the authority of the broker's certificate: --ca FILE (or SLUICE_CA)"
    )]
    NoCa { protocol: &'static str },
    #[error("CA file {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("client certificate or key {path}: {reason}")]
    IdentityFile { path: PathBuf, reason: String },
    #[error("a client certificate needs its key: --cert FILE and --key FILE (or SLUICE_CERT and SLUICE_KEY)")]
    HalfIdentity,
    #[error("{protocol}:// needs a SASL user and password: --user NAME (or SLUICE_USER) and SLUICE_PASSWORD")]
    NoCredentials { protocol: &'static str },
    #[error("cannot resolve {addr}: {source}")]
    Resolve { addr: String, source: io::Error },
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("TLS with {addr} failed: {reason}")]
    Tls { addr: String, reason: String },
    #[error("{api:?} to {addr} failed: {source}")]
    Io {
        addr: String,
        api: ApiKey,
        source: io::Error,
    },
    #[error("{addr} answered nothing to {api:?} within {IO_TIMEOUT:?}")]
    TimedOut { addr: String, api: ApiKey },
    #[error("{addr} closed the connection instead of answering {api:?}{hint}")]
    Closed {
        addr: String,
        api: ApiKey,
        hint: &'static str,
    },
    #[error(
        "{addr} answered {api:?} with a frame of {length} bytes, over the {FRAME_BYTES_MAX} read"
    )]
    FrameTooLarge {
        addr: String,
        api: ApiKey,
        length: i64,
    },
    #[error("{addr} answered in TLS: is the address SSL:// or SASL_SSL://?")]
    TlsAnswer { addr: String },
    #[error("{api:?} v{version} cannot be encoded: {reason}")]
    Encode {
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("{addr}'s answer to {api:?} v{version} does not read: {reason}")]
    Malformed {
        addr: String,
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("{addr} answered {api:?} with correlation id {answered}, not {asked}")]
    Correlation {
        addr: String,
        api: ApiKey,
        asked: i32,
        answered: i32,
    },
    #[error("{addr} does not serve {api:?} v{version} ({served})")]
    Unsupported {
        addr: String,
        api: ApiKey,
        version: i16,
        served: String,
    },
    #[error("{addr} refused {api:?}: {code}{}", message_suffix(message))]
    Refused {
        addr: String,
        api: ApiKey,
        code: KafkaCode,
        message: Option<String>,
    },
    #[error("{addr} does not take SASL PLAIN: {code} (it takes {served})")]
    Mechanism {
        addr: String,
        code: KafkaCode,
        served: String,
    },
    #[error(
        "SASL authentication failed as {user}: {code}{}",
        message_suffix(message)
    )]
    Authentication {
        user: String,
        code: KafkaCode,
        message: Option<String>,
    },
}

/// `": message"`, or nothing without one.
fn message_suffix(message: &Option<String>) -> String {
    match message.as_deref() {
        Some(message) if !message.is_empty() => format!(": {message}"),
        _ => String::new(),
    }
}

/// A broker's error message as text, if it gave one.
pub fn message_text(message: &Option<StrBytes>) -> Option<String> {
    message
        .as_ref()
        .filter(|message| !message.is_empty())
        .map(|message| message.to_string())
}

/// The name of `R`'s API.
fn api_of<R: Request>() -> ApiKey {
    ApiKey::try_from(R::KEY).expect("kafka-protocol's requests name its API keys")
}

/// A TCP connection, or TLS over one.
pub enum Transport {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Transport {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(stream) => stream.read(buffer),
            Transport::Tls(stream) => stream.read(buffer),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(stream) => stream.write(bytes),
            Transport::Tls(stream) => stream.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(stream) => stream.flush(),
            Transport::Tls(stream) => stream.flush(),
        }
    }
}

/// One connection to a broker's Kafka listener, ready for requests (past
/// TLS and SASL). Generic over its stream so that tests can script one.
pub struct KafkaConnection<S = Transport> {
    stream: S,
    /// The broker's address, for messages.
    addr: String,
    /// The listener's security protocol: a hint when it closes the
    /// connection.
    protocol: SecurityProtocol,
    next_correlation_id: i32,
    /// The versions the broker serves: (API key, lowest, highest) of
    /// each API; empty until ApiVersions is answered.
    versions: Vec<(i16, i16, i16)>,
}

impl<S> fmt::Debug for KafkaConnection<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaConnection")
            .field("addr", &self.addr)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

/// Connects as `settings` say, and authenticates if the listener asks for
/// SASL.
pub fn connect(settings: &KafkaSettings) -> Result<KafkaConnection, KafkaClientError> {
    let protocol = settings.addr.protocol;
    // What is missing fails before anything is sent.
    let credentials = match (protocol.sasl(), &settings.credentials) {
        (false, _) => None,
        (true, Some(credentials)) => Some(credentials),
        (true, None) => {
            return Err(KafkaClientError::NoCredentials {
                protocol: protocol.name(),
            })
        }
    };
    let tls = if protocol.tls() {
        let path = settings.ca.as_deref().ok_or(KafkaClientError::NoCa {
            protocol: protocol.name(),
        })?;
        Some(tls_config(path, settings.identity()?)?)
    } else {
        None
    };
    let addr = settings.addr.host_port.clone();
    let tcp = open(&addr)?;
    let stream = match tls {
        None => Transport::Plain(tcp),
        Some(config) => Transport::Tls(Box::new(tls_handshake(tcp, config, &addr)?)),
    };
    let mut connection = KafkaConnection::new(stream, addr, protocol);
    connection.ask_versions()?;
    if let Some(credentials) = credentials {
        connection.authenticate(credentials)?;
    }
    Ok(connection)
}

/// A TCP connection to the first of `addr`'s addresses that accepts,
/// with [`IO_TIMEOUT`] on connecting, reads and writes.
fn open(addr: &str) -> Result<TcpStream, KafkaClientError> {
    let resolved: Vec<_> = addr
        .to_socket_addrs()
        .map_err(|source| KafkaClientError::Resolve {
            addr: addr.to_string(),
            source,
        })?
        .collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for socket_addr in resolved {
        match TcpStream::connect_timeout(&socket_addr, IO_TIMEOUT) {
            Ok(stream) => {
                let configured = stream
                    .set_read_timeout(Some(IO_TIMEOUT))
                    .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
                    .and_then(|()| stream.set_nodelay(true));
                return match configured {
                    Ok(()) => Ok(stream),
                    Err(source) => Err(KafkaClientError::Connect {
                        addr: addr.to_string(),
                        source,
                    }),
                };
            }
            Err(error) => last = error,
        }
    }
    Err(KafkaClientError::Connect {
        addr: addr.to_string(),
        source: last,
    })
}

/// The bytes of `path`, refused over [`CA_FILE_BYTES_MAX`] before they are
/// read.
fn read_capped(path: &Path) -> Result<Vec<u8>, KafkaClientError> {
    let error = |reason: String| KafkaClientError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|source| error(source.to_string()))?;
    let length = file
        .metadata()
        .map_err(|source| error(source.to_string()))?
        .len();
    if length > CA_FILE_BYTES_MAX {
        return Err(error(format!(
            "{length} bytes, over the {CA_FILE_BYTES_MAX} a CA file may have"
        )));
    }
    let mut bytes = Vec::with_capacity(length as usize);
    // A file that grows while it is read stops at the cap all the same.
    file.take(CA_FILE_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| error(source.to_string()))?;
    if bytes.len() as u64 > CA_FILE_BYTES_MAX {
        return Err(error(format!(
            "over the {CA_FILE_BYTES_MAX} bytes a CA file may have"
        )));
    }
    Ok(bytes)
}

/// A TLS client configuration trusting the certificates of the PEM file at
/// `ca` (and nothing else), with rustls's safe defaults; presenting the
/// certificate and key of `identity` (PEM files), if given, to a broker
/// that asks for one (mutual TLS).
pub fn tls_config(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, KafkaClientError> {
    let error = |reason: String| KafkaClientError::CaFile {
        path: ca.to_path_buf(),
        reason,
    };
    let pem = read_capped(ca)?;
    let mut roots = RootCertStore::empty();
    for certificate in rustls_pemfile::certs(&mut pem.as_slice()) {
        let certificate = certificate.map_err(|source| error(source.to_string()))?;
        roots
            .add(certificate)
            .map_err(|source| error(source.to_string()))?;
    }
    if roots.is_empty() {
        return Err(error("no certificate in it".to_string()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| error(source.to_string()))?
        .with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((certificate, key)) => {
            let identity_error = |path: &Path, reason: String| KafkaClientError::IdentityFile {
                path: path.to_path_buf(),
                reason,
            };
            let pem = read_capped(certificate)?;
            let chain = rustls_pemfile::certs(&mut pem.as_slice())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|source| identity_error(certificate, source.to_string()))?;
            if chain.is_empty() {
                return Err(identity_error(certificate, "no certificate in it".into()));
            }
            let pem = read_capped(key)?;
            let private = rustls_pemfile::private_key(&mut pem.as_slice())
                .map_err(|source| identity_error(key, source.to_string()))?
                .ok_or_else(|| identity_error(key, "no private key in it".into()))?;
            builder
                .with_client_auth_cert(chain, private)
                .map_err(|source| identity_error(key, source.to_string()))?
        }
    };
    Ok(Arc::new(config))
}

/// TLS over `tcp`, the handshake done: the broker's certificate must chain
/// to `config`'s authorities and name the host of `addr`.
fn tls_handshake(
    mut tcp: TcpStream,
    config: Arc<ClientConfig>,
    addr: &str,
) -> Result<StreamOwned<ClientConnection, TcpStream>, KafkaClientError> {
    let error = |reason: String| KafkaClientError::Tls {
        addr: addr.to_string(),
        reason,
    };
    let name = sluice_net::tls::server_name(addr).map_err(error)?;
    let mut tls =
        ClientConnection::new(config, name).map_err(|source| error(source.to_string()))?;
    while tls.is_handshaking() {
        tls.complete_io(&mut tcp).map_err(|source| {
            if source.kind() == io::ErrorKind::UnexpectedEof {
                error(
                    "the broker closed the connection in the handshake (is it a TLS listener?)"
                        .to_string(),
                )
            } else {
                error(source.to_string())
            }
        })?;
    }
    Ok(StreamOwned::new(tls, tcp))
}

impl<S: Read + Write> KafkaConnection<S> {
    /// A connection over `stream`, nothing asked yet.
    pub fn new(stream: S, addr: String, protocol: SecurityProtocol) -> KafkaConnection<S> {
        KafkaConnection {
            stream,
            addr,
            protocol,
            next_correlation_id: 1,
            versions: Vec::new(),
        }
    }

    /// Sends `request` at `version` and reads its answer; refused before
    /// sending if the broker does not serve that version.
    pub fn call<R: Request>(
        &mut self,
        version: i16,
        request: &R,
    ) -> Result<R::Response, KafkaClientError> {
        let api = api_of::<R>();
        let served = self
            .versions
            .iter()
            .find(|(key, ..)| *key == R::KEY)
            .map(|(_, min, max)| (*min, *max));
        match served {
            Some((min, max)) if (min..=max).contains(&version) => {}
            Some((min, max)) => {
                return Err(KafkaClientError::Unsupported {
                    addr: self.addr.clone(),
                    api,
                    version,
                    served: format!("it serves v{min} to v{max}"),
                })
            }
            None => {
                return Err(KafkaClientError::Unsupported {
                    addr: self.addr.clone(),
                    api,
                    version,
                    served: "it serves no version of it".to_string(),
                })
            }
        }
        self.exchange(version, request)
    }

    /// ApiVersions: which versions of each API the broker serves.
    fn ask_versions(&mut self) -> Result<(), KafkaClientError> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str(CLIENT_ID))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let answer = self.exchange(API_VERSIONS_VERSION, &request)?;
        let code = KafkaCode(answer.error_code);
        if !code.is_ok() {
            return Err(KafkaClientError::Refused {
                addr: self.addr.clone(),
                api: ApiKey::ApiVersions,
                code,
                message: None,
            });
        }
        self.versions = answer
            .api_keys
            .iter()
            .map(|api| (api.api_key, api.min_version, api.max_version))
            .collect();
        Ok(())
    }

    /// SASL PLAIN (SaslHandshake v1, then SaslAuthenticate v2).
    fn authenticate(&mut self, credentials: &Credentials) -> Result<(), KafkaClientError> {
        let handshake = self.call(
            SASL_HANDSHAKE_VERSION,
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
        )?;
        let code = KafkaCode(handshake.error_code);
        if !code.is_ok() {
            let served: Vec<String> = handshake
                .mechanisms
                .iter()
                .map(|mechanism| mechanism.to_string())
                .collect();
            return Err(KafkaClientError::Mechanism {
                addr: self.addr.clone(),
                code,
                served: served.join(", "),
            });
        }
        // RFC 4616: authorization identity (none), user, password.
        let mut token = Vec::with_capacity(credentials.user.len() + credentials.password.len() + 2);
        token.push(0);
        token.extend_from_slice(credentials.user.as_bytes());
        token.push(0);
        token.extend_from_slice(credentials.password.as_bytes());
        let answer = self.call(
            SASL_AUTHENTICATE_VERSION,
            &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token)),
        )?;
        let code = KafkaCode(answer.error_code);
        if !code.is_ok() {
            return Err(KafkaClientError::Authentication {
                user: credentials.user.clone(),
                code,
                message: message_text(&answer.error_message),
            });
        }
        Ok(())
    }

    /// One request and its answer, whatever the versions served.
    fn exchange<R: Request>(
        &mut self,
        version: i16,
        request: &R,
    ) -> Result<R::Response, KafkaClientError> {
        let api = api_of::<R>();
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let frame = encode(request, version, correlation_id)?;
        self.stream
            .write_all(&frame)
            .and_then(|()| self.stream.flush())
            .map_err(|source| self.io_error(api, source))?;
        let mut answer = self.read_frame(api)?;
        let malformed = |reason: String| KafkaClientError::Malformed {
            addr: self.addr.clone(),
            api,
            version,
            reason,
        };
        let header = ResponseHeader::decode(
            &mut answer,
            <R::Response as HeaderVersion>::header_version(version),
        )
        .map_err(|error| malformed(error.to_string()))?;
        if header.correlation_id != correlation_id {
            return Err(KafkaClientError::Correlation {
                addr: self.addr.clone(),
                api,
                asked: correlation_id,
                answered: header.correlation_id,
            });
        }
        R::Response::decode(&mut answer, version).map_err(|error| malformed(error.to_string()))
    }

    /// The next frame's bytes, its length checked before they are read.
    fn read_frame(&mut self, api: ApiKey) -> Result<Bytes, KafkaClientError> {
        let mut length = [0u8; 4];
        self.stream
            .read_exact(&mut length)
            .map_err(|source| self.io_error(api, source))?;
        // A TLS record (an alert, 21, or a handshake, 22, of TLS 1.x) where
        // a length should be: a TLS listener spoken to in plaintext.
        if matches!(length, [21 | 22, 3, 0..=4, _]) && !self.protocol.tls() {
            return Err(KafkaClientError::TlsAnswer {
                addr: self.addr.clone(),
            });
        }
        let length = i32::from_be_bytes(length);
        let bytes = usize::try_from(length)
            .ok()
            .filter(|bytes| *bytes <= FRAME_BYTES_MAX)
            .ok_or_else(|| KafkaClientError::FrameTooLarge {
                addr: self.addr.clone(),
                api,
                length: i64::from(length),
            })?;
        let mut frame = vec![0u8; bytes];
        self.stream
            .read_exact(&mut frame)
            .map_err(|source| self.io_error(api, source))?;
        Ok(Bytes::from(frame))
    }

    /// Why a listener may have closed the connection instead of answering
    /// `api`, if the protocol named for it may be the wrong one.
    fn closed_hint(&self, api: ApiKey) -> &'static str {
        let sasl_api = matches!(
            api,
            ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
        );
        if api == ApiKey::ApiVersions && !self.protocol.tls() {
            // The first request: a TLS listener takes it for a bad
            // handshake.
            " (a TLS listener does so to plaintext: is the address SSL:// or SASL_SSL://?)"
        } else if !sasl_api && !self.protocol.sasl() {
            // A SASL listener closes a connection that asks anything but
            // ApiVersions and SASL before it authenticates.
            " (a SASL listener does so before authentication: is the address SASL_PLAINTEXT:// or SASL_SSL://?)"
        } else {
            ""
        }
    }

    fn io_error(&self, api: ApiKey, source: io::Error) -> KafkaClientError {
        let addr = self.addr.clone();
        match source.kind() {
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe => KafkaClientError::Closed {
                addr,
                api,
                hint: self.closed_hint(api),
            },
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                KafkaClientError::TimedOut { addr, api }
            }
            _ => KafkaClientError::Io { addr, api, source },
        }
    }
}

/// `request` framed: its length, its header, its body.
fn encode<R: Request>(
    request: &R,
    version: i16,
    correlation_id: i32,
) -> Result<BytesMut, KafkaClientError> {
    let api = api_of::<R>();
    let failed = |reason: String| KafkaClientError::Encode {
        api,
        version,
        reason,
    };
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    let mut frame = BytesMut::new();
    frame.put_i32(0);
    header
        .encode(&mut frame, R::header_version(version))
        .map_err(|error| failed(error.to_string()))?;
    request
        .encode(&mut frame, version)
        .map_err(|error| failed(error.to_string()))?;
    let length = i32::try_from(frame.len() - 4).expect("a request is far below 2 GiB");
    frame[..4].copy_from_slice(&length.to_be_bytes());
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::{
        api_versions_response::ApiVersion, ApiVersionsResponse, DescribeAclsRequest,
        SaslAuthenticateResponse, SaslHandshakeResponse,
    };

    use super::*;

    /// A broker's side of a connection, written beforehand: what it
    /// answers, and what it was sent.
    struct Scripted {
        answers: io::Cursor<Vec<u8>>,
        sent: Vec<u8>,
    }

    impl Read for Scripted {
        fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
            self.answers.read(buffer)
        }
    }

    impl Write for Scripted {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.sent.extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// `response` framed as an answer to request `correlation_id` of
    /// `version`.
    fn answer<R: Encodable + HeaderVersion>(
        correlation_id: i32,
        version: i16,
        response: &R,
    ) -> Vec<u8> {
        let mut body = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(correlation_id)
            .encode(&mut body, R::header_version(version))
            .unwrap();
        response.encode(&mut body, version).unwrap();
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        frame
    }

    fn versions() -> ApiVersionsResponse {
        let api = |key: ApiKey, max| {
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(0)
                .with_max_version(max)
        };
        ApiVersionsResponse::default().with_api_keys(vec![
            api(ApiKey::ApiVersions, 4),
            api(ApiKey::SaslHandshake, 1),
            api(ApiKey::SaslAuthenticate, 2),
            api(ApiKey::DescribeAcls, 2),
        ])
    }

    fn connection(answers: Vec<u8>, protocol: SecurityProtocol) -> KafkaConnection<Scripted> {
        let stream = Scripted {
            answers: io::Cursor::new(answers),
            sent: Vec::new(),
        };
        KafkaConnection::new(stream, "broker:9092".to_string(), protocol)
    }

    #[test]
    fn codes_read_as_kafka_names_them() {
        assert_eq!(
            KafkaCode::CLUSTER_AUTHORIZATION_FAILED.to_string(),
            "CLUSTER_AUTHORIZATION_FAILED"
        );
        assert_eq!(KafkaCode::SECURITY_DISABLED.name(), "SECURITY_DISABLED");
        assert_eq!(
            KafkaCode::UNACCEPTABLE_CREDENTIAL.name(),
            "UNACCEPTABLE_CREDENTIAL"
        );
        assert_eq!(KafkaCode(91).name(), "RESOURCE_NOT_FOUND");
        assert_eq!(KafkaCode(58).name(), "SASL_AUTHENTICATION_FAILED");
        assert_eq!(KafkaCode(42).name(), "INVALID_REQUEST");
        assert_eq!(KafkaCode(-1).name(), "UNKNOWN_SERVER_ERROR");
        assert_eq!(KafkaCode(0).name(), "NONE");
        assert_eq!(KafkaCode(9999).name(), "error code 9999");
    }

    #[test]
    fn a_password_refused_says_so_and_the_token_is_plain() {
        let mut answers = answer(1, API_VERSIONS_VERSION, &versions());
        answers.extend(answer(
            2,
            SASL_HANDSHAKE_VERSION,
            &SaslHandshakeResponse::default()
                .with_mechanisms(vec![StrBytes::from_static_str("PLAIN")]),
        ));
        answers.extend(answer(
            3,
            SASL_AUTHENTICATE_VERSION,
            &SaslAuthenticateResponse::default()
                .with_error_code(58)
                .with_error_message(Some(StrBytes::from_static_str(
                    "invalid user name or password",
                ))),
        ));
        let mut connection = connection(answers, SecurityProtocol::SaslPlaintext);
        connection.ask_versions().unwrap();
        let error = connection
            .authenticate(&Credentials {
                user: "alice".to_string(),
                password: "wrong".to_string(),
            })
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "SASL authentication failed as alice: SASL_AUTHENTICATION_FAILED: invalid user name or password"
        );
        let sent = &connection.stream.sent;
        assert!(
            sent.windows(12).any(|window| window == b"\0alice\0wrong"),
            "the PLAIN token"
        );
    }

    #[test]
    fn a_mechanism_refused_names_those_served() {
        let mut answers = answer(1, API_VERSIONS_VERSION, &versions());
        answers.extend(answer(
            2,
            SASL_HANDSHAKE_VERSION,
            &SaslHandshakeResponse::default()
                .with_error_code(33)
                .with_mechanisms(vec![StrBytes::from_static_str("SCRAM-SHA-512")]),
        ));
        let mut connection = connection(answers, SecurityProtocol::SaslSsl);
        connection.ask_versions().unwrap();
        let error = connection
            .authenticate(&Credentials {
                user: "alice".to_string(),
                password: "pw".to_string(),
            })
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "broker:9092 does not take SASL PLAIN: UNSUPPORTED_SASL_MECHANISM (it takes SCRAM-SHA-512)"
        );
    }

    #[test]
    fn a_version_not_served_is_not_sent() {
        let mut connection = connection_with(answer(1, API_VERSIONS_VERSION, &versions()));
        connection.ask_versions().unwrap();
        let sent = connection.stream.sent.len();
        let error = connection
            .call(3, &DescribeAclsRequest::default())
            .unwrap_err();
        assert!(
            matches!(
                error,
                KafkaClientError::Unsupported {
                    api: ApiKey::DescribeAcls,
                    version: 3,
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(
            error.to_string(),
            "broker:9092 does not serve DescribeAcls v3 (it serves v0 to v2)"
        );
        assert_eq!(connection.stream.sent.len(), sent, "nothing sent");
        let error = connection
            .call(0, &kafka_protocol::messages::CreateAclsRequest::default())
            .unwrap_err();
        assert!(error.to_string().contains("serves no version"), "{error}");
    }

    #[test]
    fn an_answer_is_checked_before_it_is_read() {
        // Over the cap, and negative: refused before allocating.
        for length in [FRAME_BYTES_MAX as i32 + 1, i32::MAX, -4] {
            let error = connection_with(length.to_be_bytes().to_vec())
                .ask_versions()
                .unwrap_err();
            assert!(
                matches!(error, KafkaClientError::FrameTooLarge { length: declared, .. } if declared == i64::from(length)),
                "{error}"
            );
        }
        // A TLS alert, where the listener was taken for plaintext.
        let error = connection_with(vec![21, 3, 3, 0, 2, 2, 70])
            .ask_versions()
            .unwrap_err();
        assert!(
            matches!(error, KafkaClientError::TlsAnswer { .. }),
            "{error}"
        );
        // Another request's answer.
        let error = connection_with(answer(7, API_VERSIONS_VERSION, &versions()))
            .ask_versions()
            .unwrap_err();
        assert!(
            matches!(
                error,
                KafkaClientError::Correlation {
                    asked: 1,
                    answered: 7,
                    ..
                }
            ),
            "{error}"
        );
        // Cut short: the body does not read.
        let mut cut = answer(1, API_VERSIONS_VERSION, &versions());
        cut.truncate(12);
        cut[..4].copy_from_slice(&8i32.to_be_bytes());
        let error = connection_with(cut).ask_versions().unwrap_err();
        assert!(
            matches!(error, KafkaClientError::Malformed { .. }),
            "{error}"
        );
        // Closed: at the first request, perhaps a TLS listener; after it,
        // perhaps a SASL listener; neither hint where the protocol has it.
        let error = connection_with(Vec::new()).ask_versions().unwrap_err();
        assert!(
            error.to_string().contains("SSL:// or SASL_SSL://"),
            "{error}"
        );
        let mut plaintext = connection_with(answer(1, API_VERSIONS_VERSION, &versions()));
        plaintext.ask_versions().unwrap();
        let error = plaintext
            .call(2, &DescribeAclsRequest::default())
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "broker:9092 closed the connection instead of answering DescribeAcls \
             (a SASL listener does so before authentication: is the address SASL_PLAINTEXT:// or SASL_SSL://?)"
        );
        let error = connection(Vec::new(), SecurityProtocol::SaslSsl)
            .ask_versions()
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "broker:9092 closed the connection instead of answering ApiVersions"
        );
    }

    fn connection_with(answers: Vec<u8>) -> KafkaConnection<Scripted> {
        connection(answers, SecurityProtocol::Plaintext)
    }

    #[test]
    fn a_ca_file_is_capped_and_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.pem");
        std::fs::write(&big, vec![b'a'; CA_FILE_BYTES_MAX as usize + 1]).unwrap();
        let error = tls_config(&big, None).unwrap_err();
        assert!(error.to_string().contains("over the"), "{error}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let error = tls_config(&empty, None).unwrap_err();
        assert!(error.to_string().contains("no certificate"), "{error}");
        let missing = tls_config(&dir.path().join("missing.pem"), None).unwrap_err();
        assert!(missing.to_string().contains("missing.pem"), "{missing}");
    }

    #[test]
    fn what_is_missing_fails_before_connecting() {
        let settings = |protocol, credentials: Option<Credentials>, ca: Option<PathBuf>| {
            KafkaSettings {
                addr: KafkaAddr {
                    protocol,
                    // Nothing listens there: the errors come first.
                    host_port: "127.0.0.1:1".to_string(),
                },
                credentials,
                ca,
                cert: None,
                key: None,
            }
        };
        let error = connect(&settings(SecurityProtocol::SaslPlaintext, None, None)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "SASL_PLAINTEXT:// needs a SASL user and password: --user NAME (or SLUICE_USER) and SLUICE_PASSWORD"
        );
        let credentials = Credentials {
            user: "alice".to_string(),
            password: "pw".to_string(),
        };
        let error = connect(&settings(
            SecurityProtocol::SaslSsl,
            Some(credentials),
            None,
        ))
        .unwrap_err();
        assert!(
            matches!(
                error,
                KafkaClientError::NoCa {
                    protocol: "SASL_SSL"
                }
            ),
            "{error}"
        );
        let error = connect(&settings(SecurityProtocol::Plaintext, None, None)).unwrap_err();
        assert!(matches!(error, KafkaClientError::Connect { .. }), "{error}");
    }
}
