//! TLS on the Kafka listeners (of Kafka's `SSL` and `SASL_SSL` security
//! protocols), the admin listener, and mutual TLS between nodes on the
//! peer port ([`PeerTls`]), with rustls: no OpenSSL.
//!
//! The certificate chain and the private key come from PEM files, and so
//! do the certificate authorities that client certificates must chain to
//! (mutual TLS, Kafka's `ssl.client.auth`: `none`, `requested`,
//! `required`). Each shard keeps its own acceptor and looks at the files
//! again at most once every [`RELOAD_CHECK`], when a connection comes: a
//! changed file (its length or modification time) is read anew, so a
//! renewed certificate is served without a restart. A reload that fails
//! (a half-written file, a key that does not match) keeps the acceptor in
//! use, logs why, and is tried again at the next check; the files are
//! also read at start, where a failure stops the broker with the reason.
//!
//! Every file is checked against [`PEM_BYTES_MAX`] before it is read.

use std::{
    cell::{Cell, RefCell},
    io,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use futures_rustls::{TlsAcceptor, TlsConnector};
use rustls::{
    pki_types::{CertificateDer, PrivateKeyDer},
    server::WebPkiClientVerifier,
    ClientConfig, RootCertStore, ServerConfig,
};

/// TLS handshakes that failed on the Kafka listener, over the process
/// (`sluice_tls_handshake_failures_total`).
pub static HANDSHAKE_FAILURES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The largest PEM file read (a chain of a few certificates is a few KiB).
pub const PEM_BYTES_MAX: u64 = 1 << 20;

/// How often a shard looks at the files again.
pub const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// Whether a client must present a certificate (Kafka's
/// `ssl.client.auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// No certificate is asked for.
    #[default]
    None,
    /// Asked for; a client without one is let in, one with a certificate
    /// that does not chain to the client CAs is refused.
    Requested,
    /// Required, and it must chain to the client CAs.
    Required,
}

impl std::str::FromStr for ClientAuth {
    type Err = &'static str;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.trim() {
            "" | "none" => Ok(ClientAuth::None),
            "requested" => Ok(ClientAuth::Requested),
            "required" => Ok(ClientAuth::Required),
            _ => Err("expected none, requested or required"),
        }
    }
}

/// Where a TLS listener's certificate, key and client CAs are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The server's certificate chain, leaf first (PEM).
    pub certificate: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// The authorities client certificates must chain to (PEM); needed
    /// unless `client_auth` is `None`.
    pub client_ca: Option<PathBuf>,
    pub client_auth: ClientAuth,
}

impl TlsSettings {
    fn files(&self) -> Vec<&Path> {
        let mut files = vec![self.certificate.as_path(), self.key.as_path()];
        files.extend(self.client_ca.as_deref());
        files
    }
}

/// Why a TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("{0}")]
    Config(String),
}

fn file_error(path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// The bytes of `path`, at most [`PEM_BYTES_MAX`].
fn read_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    let bytes = std::fs::metadata(path)
        .map_err(|error| file_error(path, error))?
        .len();
    if bytes > PEM_BYTES_MAX {
        return Err(file_error(
            path,
            format!("{bytes} bytes, over the {PEM_BYTES_MAX} a PEM file may have"),
        ));
    }
    std::fs::read(path).map_err(|error| file_error(path, error))
}

pub(crate) fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_pem(path)?;
    let certificates = rustls_pemfile::certs(&mut io::Cursor::new(&pem))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| file_error(path, error))?;
    if certificates.is_empty() {
        return Err(file_error(path, "no certificate in it"));
    }
    Ok(certificates)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_pem(path)?;
    rustls_pemfile::private_key(&mut io::Cursor::new(&pem))
        .map_err(|error| file_error(path, error))?
        .ok_or_else(|| file_error(path, "no private key in it"))
}

/// The rustls configuration of `settings`, its files read now.
pub fn server_config(settings: &TlsSettings) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates(&settings.certificate)?;
    let key = private_key(&settings.key)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::Config(error.to_string()))?;
    let builder = match settings.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let path = settings.client_ca.as_deref().ok_or_else(|| {
                TlsError::Config("client certificates are asked for but no client CA file is given (ssl_client_ca_file)".to_string())
            })?;
            let mut roots = RootCertStore::empty();
            for certificate in certificates(path)? {
                roots
                    .add(certificate)
                    .map_err(|error| file_error(path, error))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match auth {
                ClientAuth::Requested => verifier.allow_unauthenticated(),
                _ => verifier,
            };
            let verifier = verifier
                .build()
                .map_err(|error| TlsError::Config(error.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_single_cert(chain, key).map_err(|error| {
        file_error(
            &settings.key,
            format!("does not go with the certificate: {error}"),
        )
    })?;
    Ok(Arc::new(config))
}

/// What identifies a version of the files: each one's length and
/// modification time.
type Stamp = Vec<Option<(u64, SystemTime)>>;

fn stamp(settings: &TlsSettings) -> Stamp {
    settings
        .files()
        .into_iter()
        .map(|path| {
            let metadata = std::fs::metadata(path).ok()?;
            Some((metadata.len(), metadata.modified().ok()?))
        })
        .collect()
}

/// One shard's TLS acceptor, made anew when its files change.
pub struct ShardTls {
    settings: TlsSettings,
    acceptor: RefCell<TlsAcceptor>,
    stamp: RefCell<Stamp>,
    checked: Cell<Instant>,
}

impl ShardTls {
    /// Reads the files; fails with the reason if they do not make a
    /// configuration.
    pub fn new(settings: TlsSettings) -> Result<ShardTls, TlsError> {
        let stamp = stamp(&settings);
        let config = server_config(&settings)?;
        Ok(ShardTls {
            settings,
            acceptor: RefCell::new(TlsAcceptor::from(config)),
            stamp: RefCell::new(stamp),
            checked: Cell::new(Instant::now()),
        })
    }

    /// The acceptor for a new connection: made anew first if the files
    /// changed since they were last read.
    pub fn acceptor(&self) -> TlsAcceptor {
        if self.checked.get().elapsed() >= RELOAD_CHECK {
            self.checked.set(Instant::now());
            self.reload_if_changed();
        }
        self.acceptor.borrow().clone()
    }

    fn reload_if_changed(&self) {
        let now = stamp(&self.settings);
        if now == *self.stamp.borrow() {
            return;
        }
        match server_config(&self.settings) {
            Ok(config) => {
                *self.acceptor.borrow_mut() = TlsAcceptor::from(config);
                *self.stamp.borrow_mut() = now;
                tracing::info!(certificate = %self.settings.certificate.display(), "TLS certificate reloaded");
            }
            Err(error) => {
                tracing::warn!(%error, "TLS files changed but do not load; the previous ones are served");
            }
        }
    }
}

/// Where the peer port's certificate, key and authority are: with them,
/// nodes speak to each other over mutual TLS only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerTlsSettings {
    /// This node's certificate chain, leaf first (PEM): shown to the nodes
    /// it connects to, and to those that connect to it, so it is both a
    /// server's and a client's (extended key usages `serverAuth` and
    /// `clientAuth`), for the host of its `peer_addr`.
    pub certificate: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// The authorities the other nodes' certificates must chain to (PEM).
    pub ca: PathBuf,
}

impl PeerTlsSettings {
    /// As the Kafka listener's settings, with client certificates
    /// required.
    fn server(&self) -> TlsSettings {
        TlsSettings {
            certificate: self.certificate.clone(),
            key: self.key.clone(),
            client_ca: Some(self.ca.clone()),
            client_auth: ClientAuth::Required,
        }
    }
}

/// The rustls client configuration of a node connecting to another: its
/// certificate, and the authorities the other's must chain to.
fn peer_client_config(settings: &PeerTlsSettings) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for certificate in certificates(&settings.ca)? {
        roots
            .add(certificate)
            .map_err(|error| file_error(&settings.ca, error))?;
    }
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::Config(error.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(
            certificates(&settings.certificate)?,
            private_key(&settings.key)?,
        )
        .map_err(|error| {
            file_error(
                &settings.key,
                format!("does not go with the certificate: {error}"),
            )
        })?;
    Ok(Arc::new(config))
}

/// One shard's TLS for the peer port: the acceptor of the connections
/// other nodes open (a client certificate required), and the connector of
/// those it opens. Both are made anew when the files change, as
/// [`ShardTls`]'s.
pub struct PeerTls {
    settings: PeerTlsSettings,
    server: ShardTls,
    connector: RefCell<TlsConnector>,
    stamp: RefCell<Stamp>,
    checked: Cell<Instant>,
}

impl PeerTls {
    pub fn new(settings: PeerTlsSettings) -> Result<PeerTls, TlsError> {
        let server = ShardTls::new(settings.server())?;
        let stamp = stamp(&settings.server());
        let connector = TlsConnector::from(peer_client_config(&settings)?);
        Ok(PeerTls {
            settings,
            server,
            connector: RefCell::new(connector),
            stamp: RefCell::new(stamp),
            checked: Cell::new(Instant::now()),
        })
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        self.server.acceptor()
    }

    pub fn connector(&self) -> TlsConnector {
        if self.checked.get().elapsed() >= RELOAD_CHECK {
            self.checked.set(Instant::now());
            let now = stamp(&self.settings.server());
            if now != *self.stamp.borrow() {
                match peer_client_config(&self.settings) {
                    Ok(config) => {
                        *self.connector.borrow_mut() = TlsConnector::from(config);
                        *self.stamp.borrow_mut() = now;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "peer TLS files changed but do not load; the previous ones are used");
                    }
                }
            }
        }
        self.connector.borrow().clone()
    }
}

/// The principal of a client that presented certificate `der` (DER):
/// `User:` and its subject's distinguished name in RFC 2253's form, most
/// specific first (`User:CN=writer,O=Acme`), as Kafka's default principal
/// builder names it. `None` if the certificate does not parse (rustls has
/// verified it, so that does not happen).
pub fn certificate_principal(der: &[u8]) -> Option<String> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, certificate) = X509Certificate::from_der(der).ok()?;
    let rdns: Vec<String> = certificate
        .subject()
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|attribute| {
                    let oid = attribute.attr_type().to_id_string();
                    let value = attribute.as_str().ok();
                    match (short_name(&oid), value) {
                        (Some(name), Some(value)) => format!("{name}={}", rfc2253_escape(value)),
                        _ => {
                            let raw = attribute.attr_value();
                            // The value's whole DER: tag, length, bytes.
                            let length = raw.data.len();
                            let mut der = vec![raw.header.tag().0 as u8];
                            if length < 0x80 {
                                der.push(length as u8);
                            } else {
                                let bytes: Vec<u8> = length
                                    .to_be_bytes()
                                    .into_iter()
                                    .skip_while(|byte| *byte == 0)
                                    .collect();
                                der.push(0x80 | bytes.len() as u8);
                                der.extend(bytes);
                            }
                            der.extend_from_slice(raw.data);
                            let hex: String =
                                der.iter().map(|byte| format!("{byte:02x}")).collect();
                            format!("{oid}=#{hex}")
                        }
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    let name: Vec<&str> = rdns.iter().rev().map(String::as_str).collect();
    Some(format!("User:{}", name.join(",")))
}

/// The keywords RFC 2253 (and Java's X500Principal) give attribute types.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// `value` with RFC 2253's escapes: `,+"\<>;` always, a leading `#` or
/// space, a trailing space.
fn rfc2253_escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (at, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (at == 0 && (c == '#' || c == ' '))
            || (at == last && c == ' ');
        if special {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate_of(names: &[(rcgen::DnType, &str)]) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (kind, value) in names {
            params.distinguished_name.push(kind.clone(), *value);
        }
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn a_subject_reads_as_kafka_names_it() {
        use rcgen::DnType;
        let der = certificate_of(&[
            (DnType::CountryName, "US"),
            (DnType::OrganizationName, "Acme, Inc."),
            (DnType::OrganizationalUnitName, "Payments"),
            (DnType::CommonName, "writer"),
        ]);
        assert_eq!(
            certificate_principal(&der).as_deref(),
            Some(r"User:CN=writer,OU=Payments,O=Acme\, Inc.,C=US"),
            "most specific first, RFC 2253's escapes"
        );
        let der = certificate_of(&[(DnType::CommonName, " #lead+trail ")]);
        assert_eq!(
            certificate_principal(&der).as_deref(),
            Some(r"User:CN=\ #lead\+trail\ "),
            "a leading space is escaped; a # only when it leads"
        );
        assert_eq!(certificate_principal(b"not a certificate"), None);
    }

    #[test]
    fn escapes() {
        assert_eq!(
            rfc2253_escape("a,b+c\"d\\e<f>g;h"),
            r#"a\,b\+c\"d\\e\<f\>g\;h"#
        );
        assert_eq!(rfc2253_escape("#x"), r"\#x");
        assert_eq!(rfc2253_escape("plain"), "plain");
    }
}
