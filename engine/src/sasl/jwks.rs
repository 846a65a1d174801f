//! The JSON Web Key Set OAUTHBEARER tokens are checked against (Kafka's
//! `sasl.oauthbearer.jwks.endpoint.url`): read from a file once at start,
//! or fetched from a URL and kept fresh.
//!
//! From a URL, the keys are fetched before the broker serves: the broker
//! does not start until a first fetch succeeds (tried again for
//! [`refresh::START_TIMEOUT`]). One thread per node then refreshes them
//! every `sasl_oauthbearer_jwks_endpoint_refresh_ms`, and sooner when a
//! token names a key (`kid`) the set lacks — at most once per
//! [`refresh::UNKNOWN_KID_REFRESH_GAP`], so tokens with made-up `kid`s
//! cannot make the broker hammer the identity provider. A refresh that
//! fails keeps the keys in use (and is logged and tried again sooner). No
//! shard does network I/O for this: the thread fetches, swaps the set in
//! under a lock every shard reads it through, and wakes the
//! authentications that wait for it.
//!
//! The fetch is a small HTTP/1.1 GET ([`http`], [`fetch`]): rustls over
//! the authorities of `sasl_oauthbearer_jwks_endpoint_ca_file`, or the
//! system's without it. Plain `http://` is taken from a loopback host only
//! ([`url`]).

pub mod fetch;
pub mod http;
pub mod refresh;
pub mod url;

use std::{
    path::{Path, PathBuf},
    sync::{mpsc, Arc, PoisonError, RwLock},
    time::Duration,
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use futures_channel::oneshot;
use ring::signature;

pub use url::Location;

/// The largest key set taken, from a file or a URL (a JWKS of a few keys
/// is a few KiB).
pub const JWKS_BYTES_MAX: usize = 1 << 20;

/// JWKS fetches from a URL, and those that failed, over the process
/// (`sluice_oauthbearer_jwks_fetches_total`,
/// `sluice_oauthbearer_jwks_fetch_failures_total`).
pub static FETCHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
pub static FETCH_FAILURES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Where the keys come from and how they are kept fresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksSettings {
    pub location: Location,
    /// The authorities an `https://` endpoint's certificate must chain
    /// to (PEM); none: the system's.
    pub ca_file: Option<PathBuf>,
    /// How often the keys of a URL are fetched again.
    pub refresh_interval: Duration,
}

/// Why the keys could not be had at start.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("{url}: {source}")]
    Trust {
        url: String,
        source: fetch::TrustError,
    },
    #[error("{url}: no key set within {timeout:?} ({attempts} tries; the last: {last})")]
    Unreachable {
        url: String,
        timeout: Duration,
        attempts: u32,
        last: String,
    },
    #[error("{url}: the thread that fetches the keys: {source}")]
    Thread { url: String, source: std::io::Error },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyKind {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// P-256: the uncompressed point.
    Ec256 {
        point: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    kid: Option<String>,
    kind: KeyKind,
}

/// The RSA and P-256 keys of a JWKS document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySet {
    keys: Vec<Key>,
}

fn bytes_of(value: &serde_json::Value, field: &str) -> Result<Vec<u8>, String> {
    let text = value[field]
        .as_str()
        .ok_or_else(|| format!("a key without {field}"))?;
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| format!("a key's {field} is not base64url"))
}

impl KeySet {
    /// The keys of a JWKS document: RSA keys and P-256 EC keys, other
    /// kinds skipped (a JWKS may hold keys for other uses).
    pub fn parse(text: &str) -> Result<KeySet, String> {
        let document: serde_json::Value =
            serde_json::from_str(text).map_err(|error| format!("not JSON: {error}"))?;
        let keys = document["keys"]
            .as_array()
            .ok_or("no \"keys\" array (a JWKS document)")?;
        let mut read = Vec::new();
        for key in keys {
            let kid = key["kid"].as_str().map(str::to_string);
            let kind = match (key["kty"].as_str(), key["crv"].as_str()) {
                (Some("RSA"), _) => KeyKind::Rsa {
                    n: bytes_of(key, "n")?,
                    e: bytes_of(key, "e")?,
                },
                (Some("EC"), Some("P-256")) => {
                    let (x, y) = (bytes_of(key, "x")?, bytes_of(key, "y")?);
                    if x.len() != 32 || y.len() != 32 {
                        return Err("a P-256 key's x and y are 32 bytes".to_string());
                    }
                    let mut point = vec![4u8];
                    point.extend(x);
                    point.extend(y);
                    KeyKind::Ec256 { point }
                }
                _ => continue,
            };
            read.push(Key { kid, kind });
        }
        if read.is_empty() {
            return Err("no RSA or P-256 key in it".to_string());
        }
        Ok(KeySet { keys: read })
    }

    /// Reads a JWKS file (at most [`JWKS_BYTES_MAX`]).
    pub fn read(path: &Path) -> Result<KeySet, JwksError> {
        let error = |reason: String| JwksError::File {
            path: path.to_path_buf(),
            reason,
        };
        let size = std::fs::metadata(path)
            .map_err(|e| error(e.to_string()))?
            .len();
        if size > JWKS_BYTES_MAX as u64 {
            return Err(error(format!("{size} bytes, over {JWKS_BYTES_MAX}")));
        }
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        KeySet::parse(&text).map_err(error)
    }

    /// Whether a key of the set has this `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|key| key.kid.as_deref() == Some(kid))
    }

    /// The keys' ids, in the document's order (`-` for a key without).
    pub fn kids(&self) -> Vec<&str> {
        self.keys
            .iter()
            .map(|key| key.kid.as_deref().unwrap_or("-"))
            .collect()
    }

    /// Whether `signature` over `signed` is one of a key's of the set, by
    /// the algorithm `alg` (RS256 or ES256, else an error) and, if `kid`
    /// is given, a key of that id.
    pub fn verify(
        &self,
        alg: &str,
        kid: Option<&str>,
        signed: &[u8],
        signature: &[u8],
    ) -> Result<bool, String> {
        let candidates = self.keys.iter().filter(|key| match (kid, &key.kid) {
            (Some(wanted), Some(kid)) => wanted == kid,
            (Some(_), None) => false,
            (None, _) => true,
        });
        match alg {
            "RS256" => Ok(candidates
                .filter_map(|key| match &key.kind {
                    KeyKind::Rsa { n, e } => Some(signature::RsaPublicKeyComponents { n, e }),
                    KeyKind::Ec256 { .. } => None,
                })
                .any(|key| {
                    key.verify(&signature::RSA_PKCS1_2048_8192_SHA256, signed, signature)
                        .is_ok()
                })),
            "ES256" => Ok(candidates
                .filter_map(|key| match &key.kind {
                    KeyKind::Ec256 { point } => Some(point),
                    KeyKind::Rsa { .. } => None,
                })
                .any(|point| {
                    signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                        .verify(signed, signature)
                        .is_ok()
                })),
            other => Err(format!("algorithm {other:?} is not RS256 or ES256")),
        }
    }
}

/// The key set in use, shared by every shard of the node (each
/// validator holds a clone): read under a lock for the moment it takes to
/// clone an `Arc`, swapped whole by the refresher thread.
#[derive(Clone)]
pub struct Keys {
    current: Arc<RwLock<Arc<KeySet>>>,
    /// Requests to the refresher thread (keys of a URL), each answered
    /// once it has fetched the keys again or declined to. The thread ends
    /// when the last `Keys` is dropped.
    refresher: Option<mpsc::SyncSender<oneshot::Sender<()>>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Keys")
            .field("kids", &self.current().kids())
            .field("refreshed", &self.refresher.is_some())
            .finish()
    }
}

/// The same shared set.
impl PartialEq for Keys {
    fn eq(&self, other: &Keys) -> bool {
        Arc::ptr_eq(&self.current, &other.current)
    }
}

impl Eq for Keys {}

impl Keys {
    /// Keys that never change (a file's).
    pub fn fixed(set: KeySet) -> Keys {
        Keys {
            current: Arc::new(RwLock::new(Arc::new(set))),
            refresher: None,
        }
    }

    /// The set in use now.
    pub fn current(&self) -> Arc<KeySet> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Asks for the keys to be fetched again, because a token named a key
    /// the set lacks. The answer comes once the refresher thread has
    /// fetched them, or declined to (one such fetch per
    /// [`refresh::UNKNOWN_KID_REFRESH_GAP`]). `None`: keys that are not
    /// refreshed (a file's), or too many requests already waiting.
    pub fn refresh_for_unknown_kid(&self) -> Option<oneshot::Receiver<()>> {
        let refresher = self.refresher.as_ref()?;
        let (answer, answered) = oneshot::channel();
        refresher.try_send(answer).ok()?;
        Some(answered)
    }
}

/// The keys of `settings`, had now: a file read, or a URL's first fetch
/// (tried for [`refresh::START_TIMEOUT`]) and its refresher thread
/// started.
pub fn start(settings: &JwksSettings) -> Result<Keys, JwksError> {
    let url = match &settings.location {
        Location::File(path) => return KeySet::read(path).map(Keys::fixed),
        Location::Http(url) => url.clone(),
    };
    let tls = match url.scheme {
        url::Scheme::Https => Some(fetch::tls_config(settings.ca_file.as_deref()).map_err(
            |source| JwksError::Trust {
                url: url.to_string(),
                source,
            },
        )?),
        url::Scheme::Http => {
            tracing::warn!(
                %url,
                "OAUTHBEARER keys are fetched over plain http on loopback: any local process that holds the port first can serve its own keys"
            );
            None
        }
    };
    let client = fetch::Client::new(url.clone(), tls);
    let current = Arc::new(RwLock::new(Arc::new(KeySet::default())));
    let (requests, requested) = mpsc::sync_channel(refresh::REQUESTS_WAITING_MAX);
    let (started, start_result) = mpsc::channel();
    let shared = current.clone();
    let interval = settings.refresh_interval;
    std::thread::Builder::new()
        .name("jwks-refresh".to_string())
        .spawn(move || refresh::run(client, interval, shared, requested, started))
        .map_err(|source| JwksError::Thread {
            url: url.to_string(),
            source,
        })?;
    // The thread keeps to the deadline itself, but for the system's name
    // resolution: a margin, then no longer.
    let waited = refresh::START_TIMEOUT + Duration::from_secs(2);
    match start_result.recv_timeout(waited) {
        Ok(Ok(())) => Ok(Keys {
            current,
            refresher: Some(requests),
        }),
        Ok(Err(failure)) => Err(JwksError::Unreachable {
            url: url.to_string(),
            timeout: refresh::START_TIMEOUT,
            attempts: failure.attempts,
            last: failure.last,
        }),
        Err(_) => Err(JwksError::Unreachable {
            url: url.to_string(),
            timeout: waited,
            attempts: 1,
            last: "no answer (name resolution or the endpoint hangs)".to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_give_their_rsa_and_p256_keys() {
        let set = KeySet::parse(
            r#"{"keys":[{"kty":"oct","k":"AA"},{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"},
            {"kty":"EC","crv":"P-384","x":"AA","y":"AA"}]}"#,
        )
        .unwrap();
        assert_eq!(set.kids(), ["r"]);
        assert!(set.has_kid("r") && !set.has_kid("x"));
        assert!(set.verify("HS256", None, b"", b"").is_err());
        assert_eq!(set.verify("RS256", Some("x"), b"", b""), Ok(false));
        for document in [
            "",
            "{}",
            r#"{"keys":[]}"#,
            r#"{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}"#,
            r#"{"keys":[{"kty":"RSA","n":"!!"}]}"#,
        ] {
            assert!(KeySet::parse(document).is_err(), "{document}");
        }
    }

    #[test]
    fn fixed_keys_are_not_refreshed() {
        let keys = Keys::fixed(KeySet::default());
        assert!(keys.refresh_for_unknown_kid().is_none());
        assert_eq!(keys.clone(), keys);
        assert_ne!(keys, Keys::fixed(KeySet::default()));
    }

    /// A JWKS of one RSA key (its modulus made up: only its id matters).
    fn jwks_of(kid: &str) -> String {
        format!(r#"{{"keys":[{{"kty":"RSA","kid":"{kid}","n":"AQAB","e":"AQAB"}}]}}"#)
    }

    #[test]
    fn keys_of_a_url_are_fetched_again_for_an_unknown_kid_once_per_gap() {
        use std::{
            io::{Read, Write},
            sync::{
                atomic::{AtomicUsize, Ordering},
                Mutex,
            },
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let served = Arc::new(Mutex::new(jwks_of("k1")));
        let gets = Arc::new(AtomicUsize::new(0));
        let (document, count) = (served.clone(), gets.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let mut head = Vec::new();
                let mut byte = [0u8];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                count.fetch_add(1, Ordering::SeqCst);
                let body = document.lock().unwrap().clone();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        let keys = start(&JwksSettings {
            location: Location::parse(&format!("http://{addr}/jwks")).unwrap(),
            ca_file: None,
            refresh_interval: refresh::REFRESH_INTERVAL_DEFAULT,
        })
        .unwrap();
        assert_eq!(keys.current().kids(), ["k1"]);
        assert_eq!(gets.load(Ordering::SeqCst), 1);

        *served.lock().unwrap() = jwks_of("k2");
        let answered = keys.refresh_for_unknown_kid().unwrap();
        futures_lite::future::block_on(answered).unwrap();
        assert_eq!(keys.current().kids(), ["k2"]);
        assert_eq!(gets.load(Ordering::SeqCst), 2);

        // Again within the gap: answered at once, not fetched.
        *served.lock().unwrap() = jwks_of("k3");
        let answered = keys.refresh_for_unknown_kid().unwrap();
        futures_lite::future::block_on(answered).unwrap();
        assert_eq!(keys.current().kids(), ["k2"]);
        assert_eq!(gets.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_file_over_the_cap_or_missing_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; JWKS_BYTES_MAX + 1]).unwrap();
        let error = KeySet::read(&big).unwrap_err().to_string();
        assert!(error.contains("over"), "{error}");
        assert!(KeySet::read(&dir.path().join("missing.json")).is_err());
    }
}
