//! Certificates for the TLS tests: a certificate authority of the test's
//! own, and the server and client certificates it signs (rcgen).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A certificate authority of the test's.
pub struct Authority {
    certificate: Certificate,
    key: KeyPair,
}

impl Authority {
    pub fn new(name: &str) -> Authority {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let certificate = params.self_signed(&key).unwrap();
        Authority { certificate, key }
    }

    /// A certificate it signs and its key, PEM: a server's for 127.0.0.1
    /// and localhost, or a client's named `name`.
    pub fn issue(&self, name: &str, server: bool) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let names = if server {
            vec!["localhost".to_string(), "127.0.0.1".to_string()]
        } else {
            Vec::new()
        };
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        let certificate = params
            .signed_by(&key, &self.certificate, &self.key)
            .unwrap();
        (certificate.pem(), key.serialize_pem())
    }

    /// A node's certificate for the peer port and its key, PEM: for
    /// 127.0.0.1 and localhost, both a server's and a client's.
    pub fn issue_node(&self, name: &str) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let certificate = params
            .signed_by(&key, &self.certificate, &self.key)
            .unwrap();
        (certificate.pem(), key.serialize_pem())
    }

    pub fn pem(&self) -> String {
        self.certificate.pem()
    }
}

/// Writes `text` to `path` whole or not at all (a temporary file renamed),
/// as a certificate renewal should.
pub fn replace(path: &Path, text: &str) {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, text).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

/// A TLS broker's files: its certificate and key, signed by `authority`,
/// written into `dir` as `server.pem` and `server.key`; their paths.
pub fn server_files(dir: &Path, authority: &Authority) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let (certificate, key) = authority.issue("broker", true);
    let (certificate_path, key_path) = (dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&certificate_path, certificate).unwrap();
    std::fs::write(&key_path, key).unwrap();
    (certificate_path, key_path)
}

/// A broker's TLS of a test: an authority, the broker's certificate and
/// key it signed, and its own certificate as `ca.pem`, all in one
/// directory.
pub struct BrokerTls {
    pub authority: Authority,
    pub certificate: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl BrokerTls {
    pub fn new(dir: &Path) -> BrokerTls {
        let authority = Authority::new("sluice test CA");
        let (certificate, key) = server_files(dir, &authority);
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, authority.pem()).unwrap();
        BrokerTls {
            authority,
            certificate,
            key,
            ca,
        }
    }

    /// The settings of a broker whose Kafka listener is
    /// `{protocol}://127.0.0.1:0` with this certificate, and `more`.
    pub fn env(&self, protocol: &str, more: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env = vec![
            (
                "SLUICE_KAFKA_ADDR".to_string(),
                format!("{protocol}://127.0.0.1:0"),
            ),
            (
                "SLUICE_SSL_CERTIFICATE_FILE".to_string(),
                self.certificate.display().to_string(),
            ),
            (
                "SLUICE_SSL_KEY_FILE".to_string(),
                self.key.display().to_string(),
            ),
        ];
        env.extend(more.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    }

    /// The same, with mutual TLS required of clients of this authority.
    pub fn mutual_env(&self) -> Vec<(String, String)> {
        self.env(
            "SSL",
            &[
                ("SLUICE_SSL_CLIENT_AUTH", "required"),
                ("SLUICE_SSL_CLIENT_CA_FILE", self.ca.to_str().unwrap()),
            ],
        )
    }
}

/// `env` as [`crate::common::Broker::start_with`] takes it.
pub fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Runs `tests/kafka_clients/{script}` with `arguments` and `env`, and
/// fails the test with its output unless it succeeds.
pub fn run_client_script(script: &str, arguments: &[&std::ffi::OsStr], env: &[(&str, &str)]) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/kafka_clients")
        .join(script);
    let output = std::process::Command::new("python3")
        .envs(env.iter().copied())
        .arg(&path)
        .args(arguments)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}");
    assert!(
        output.status.success(),
        "{script} {arguments:?} failed\n--- stdout\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A TLS client of `authority_pem`'s certificates (and, given, with a
/// client certificate and key, PEM), over `stream`, for a server named
/// `server_name`; `Err` when the handshake fails.
pub fn tls_client(
    stream: std::net::TcpStream,
    authority_pem: &str,
    server_name: &str,
    client: Option<(&str, &str)>,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>, String> {
    use std::sync::Arc;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls_pemfile::certs(&mut authority_pem.as_bytes()) {
        roots.add(certificate.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((certificate, key)) => {
            let chain = rustls_pemfile::certs(&mut certificate.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = rustls_pemfile::private_key(&mut key.as_bytes())
                .unwrap()
                .unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    let name = rustls::pki_types::ServerName::try_from(server_name.to_string()).unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, stream);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|error| error.to_string())?;
    }
    Ok(tls)
}

/// `GET path` over HTTPS at `addr`, trusting `authority_pem`: the status
/// line and the body, or why the handshake failed.
pub fn https_get(addr: &str, authority_pem: &str, path: &str) -> Result<(String, String), String> {
    use std::io::{Read, Write};
    let stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut tls = tls_client(stream, authority_pem, "127.0.0.1", None)?;
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    // A close without close_notify ends the body too.
    let _ = tls.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Ok((
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    ))
}

/// A broker of 2 shards, its data in `data`, whose Kafka listener is
/// SASL_PLAINTEXT with OAUTHBEARER alone (no users file): tokens signed by
/// a key of the JWKS file `jwks`, issued by `https://idp.test` for
/// `sluice`.
pub fn oauth_broker(data: &Path, jwks: &Path) -> super::Broker {
    super::Broker::start_with(
        data,
        2,
        &[
            ("SLUICE_KAFKA_ADDR", "SASL_PLAINTEXT://127.0.0.1:0"),
            ("SLUICE_SASL_OAUTHBEARER_JWKS_FILE", jwks.to_str().unwrap()),
            (
                "SLUICE_SASL_OAUTHBEARER_EXPECTED_ISSUER",
                "https://idp.test",
            ),
            ("SLUICE_SASL_OAUTHBEARER_EXPECTED_AUDIENCE", "sluice"),
        ],
    )
}
