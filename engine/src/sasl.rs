//! SASL on the Kafka listener (Kafka's `SASL_PLAINTEXT` and `SASL_SSL`
//! security protocols): who a connection is, before it may do anything
//! else.
//!
//! A connection of such a listener may send ApiVersions, SaslHandshake (v1:
//! the mechanism) and SaslAuthenticate (the mechanism's tokens) and
//! nothing else until it authenticated; any other request closes it, as
//! Kafka closes it. A failed authentication is answered
//! `SASL_AUTHENTICATION_FAILED` and the connection closes after the
//! answer.
//!
//! The mechanisms served are PLAIN (RFC 4616) and SCRAM-SHA-256 and
//! SCRAM-SHA-512 (RFC 5802, RFC 7677; see [`scram`]). The users and their
//! passwords come from a file of `NAME:PASSWORD` lines (`#` starts a
//! comment), read at start; each user's SCRAM credentials are made from
//! the password then, with a salt of their own. Use PLAIN over TLS
//! (`SASL_SSL`): it sends the password as it is.

pub mod jwks;
pub mod oauthbearer;
pub mod scram;

use std::{collections::HashMap, path::Path, path::PathBuf};

use scram::{Credential, Hash};

/// SASL authentications refused on the Kafka listener, over the process
/// (`sluice_sasl_authentication_failures_total`).
pub static AUTHENTICATION_FAILURES: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(0);

/// The largest users file read.
pub const USERS_FILE_BYTES_MAX: u64 = 1 << 20;

/// The mechanisms served, as SaslHandshake lists them.
pub const MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

/// What a SASL listener takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslSettings {
    /// The users: `NAME:PASSWORD` lines (PLAIN, and SCRAM before the
    /// metadata's credentials). None: only SCRAM credentials of the
    /// metadata, and OAUTHBEARER.
    pub plain_users: Option<PathBuf>,
    /// OAUTHBEARER, when a JWKS (a file or a URL) is given.
    pub oauthbearer: Option<oauthbearer::OAuthSettings>,
}

/// Why the users could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct UsersError {
    path: PathBuf,
    reason: String,
}

/// Who may authenticate: the users, their passwords (PLAIN) and their
/// SCRAM credentials, and the validator of OAUTHBEARER tokens if the
/// listener takes them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Users {
    passwords: HashMap<String, String>,
    credentials: HashMap<(String, Hash), Credential>,
    pub oauthbearer: Option<oauthbearer::Validator>,
}

impl UsersError {
    pub fn new(path: &Path, reason: String) -> UsersError {
        UsersError {
            path: path.to_path_buf(),
            reason,
        }
    }
}

impl Users {
    /// Reads `path`: one `NAME:PASSWORD` per line (the password is what
    /// follows the first colon), blank lines and `#` comments skipped.
    pub fn read(path: &Path) -> Result<Users, UsersError> {
        let error = |reason: String| UsersError {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = std::fs::metadata(path)
            .map_err(|e| error(e.to_string()))?
            .len();
        if bytes > USERS_FILE_BYTES_MAX {
            return Err(error(format!(
                "{bytes} bytes, over the {USERS_FILE_BYTES_MAX} a users file may have"
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        Users::parse(&text).map_err(error)
    }

    pub(crate) fn parse(text: &str) -> Result<Users, String> {
        let mut passwords = HashMap::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let (name, password) = line
                .split_once(':')
                .filter(|(name, password)| !name.is_empty() && !password.is_empty())
                .ok_or_else(|| format!("line {}: expected NAME:PASSWORD", number + 1))?;
            if passwords
                .insert(name.to_string(), password.to_string())
                .is_some()
            {
                return Err(format!("line {}: {name} is listed twice", number + 1));
            }
        }
        if passwords.is_empty() {
            return Err("no user in it".to_string());
        }
        let mut credentials = HashMap::new();
        for (name, password) in &passwords {
            for hash in [Hash::Sha256, Hash::Sha512] {
                let salt: [u8; 16] = rand::random();
                let credential =
                    Credential::new(hash, password.as_bytes(), salt.to_vec(), scram::ITERATIONS);
                credentials.insert((name.clone(), hash), credential);
            }
        }
        Ok(Users {
            passwords,
            credentials,
            oauthbearer: None,
        })
    }

    fn credential(&self, name: &str, hash: Hash) -> Option<Credential> {
        self.credentials.get(&(name.to_string(), hash)).cloned()
    }

    /// Whether `password` is `name`'s, compared in a time that does not
    /// tell how much of it matched.
    pub(crate) fn check(&self, name: &str, password: &[u8]) -> bool {
        let Some(known) = self.passwords.get(name) else {
            // As long as a comparison, so that a name is not told known.
            let _ = equal_in_constant_time(password, password);
            return false;
        };
        equal_in_constant_time(known.as_bytes(), password)
    }
}

fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    let mut differ = a.len() ^ b.len();
    for (index, byte) in a.iter().enumerate() {
        differ |= usize::from(byte ^ b.get(index).copied().unwrap_or(!byte));
    }
    differ == 0
}

/// Where a connection's SASL exchange stands. `again`: the principal of
/// the authentication one renews (KIP-368), which it must keep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Exchange {
    /// Nothing yet: a handshake comes first.
    #[default]
    Start,
    /// The handshake chose PLAIN: its token comes next.
    Plain { again: Option<String> },
    /// The handshake chose OAUTHBEARER: the client's token comes next.
    OAuthBearer { again: Option<String> },
    /// The handshake chose SCRAM: the client's first message comes next.
    ScramFirst { hash: Hash, again: Option<String> },
    /// The server answered the first message: the client's proof comes
    /// next.
    ScramFinal {
        started: Box<scram::Started>,
        credential: Option<Credential>,
        again: Option<String>,
    },
    /// Authenticated as the principal (Kafka's `User:NAME`).
    Authenticated(String),
}

impl Exchange {
    /// Whether the connection has authenticated: it is, or it is
    /// authenticating again (KIP-368).
    pub fn has_authenticated(&self) -> bool {
        match self {
            Exchange::Start => false,
            Exchange::Plain { again }
            | Exchange::OAuthBearer { again }
            | Exchange::ScramFirst { again, .. }
            | Exchange::ScramFinal { again, .. } => again.is_some(),
            Exchange::Authenticated(_) => true,
        }
    }
}

/// The largest frame a connection that has not authenticated yet may
/// send (Kafka's `sasl.server.max.receive.size`): its SASL messages are
/// small, and a client nobody knows does not make the broker allocate
/// more.
pub const UNAUTHENTICATED_FRAME_BYTES_MAX: usize = 512 * 1024;

/// How long a connection of a SASL listener has to authenticate, from its
/// accept (or its TLS handshake): one that has not by then is closed, so
/// that a client sending a byte at a time cannot hold it open.
pub const AUTHENTICATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A SaslAuthenticate that went well: the server's token, and whether the
/// client is now authenticated (as this principal) or has another
/// message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Continue(Vec<u8>),
    /// `expires`: when the credential itself stops holding (an
    /// OAUTHBEARER token's expiry), which bounds the session.
    Authenticated {
        principal: String,
        token: Vec<u8>,
        expires: Option<std::time::SystemTime>,
    },
}

/// The outcome of a SaslHandshake: the error code. `reauthenticating`:
/// whether an authenticated connection may authenticate again (KIP-368:
/// when its authentication expires).
pub fn handshake(
    exchange: &mut Exchange,
    users: &Users,
    mechanism: &str,
    reauthenticating: bool,
) -> i16 {
    let again = match exchange {
        Exchange::Start => None,
        Exchange::Authenticated(principal) if reauthenticating => Some(principal.clone()),
        // ILLEGAL_SASL_STATE: a second handshake.
        _ => return 34,
    };
    *exchange = match (mechanism, Hash::of_mechanism(mechanism)) {
        ("PLAIN", _) => Exchange::Plain { again },
        ("OAUTHBEARER", _) if users.oauthbearer.is_some() => Exchange::OAuthBearer { again },
        (_, Some(hash)) => Exchange::ScramFirst { hash, again },
        // UNSUPPORTED_SASL_MECHANISM.
        _ => return 33,
    };
    0
}

/// The outcome of a SaslAuthenticate with `token`: the next step, or the
/// error code and message (after which the connection closes).
/// `stored`: the SCRAM credentials kept in the cluster's metadata, which
/// win over those made from `users`' passwords.
pub fn authenticate(
    exchange: &mut Exchange,
    users: &Users,
    stored: &dyn Fn(&str, Hash) -> Option<Credential>,
    token: &[u8],
) -> Result<Step, (i16, String)> {
    match std::mem::take(exchange) {
        Exchange::Plain { again } => {
            let principal = authenticate_plain(users, token, again)?;
            *exchange = Exchange::Authenticated(principal.clone());
            Ok(Step::Authenticated {
                principal,
                token: Vec::new(),
                expires: None,
            })
        }
        Exchange::OAuthBearer { again } => {
            let validator = users
                .oauthbearer
                .as_ref()
                .ok_or((34, "OAUTHBEARER is not served".to_string()))?;
            let (principal, expires) = validator
                .authenticate(token)
                .map_err(|message| (58, format!("Authentication failed: {message}")))?;
            if again.is_some_and(|before| before != principal) {
                return Err((
                    58,
                    "Authentication failed: a re-authentication may not change the principal"
                        .to_string(),
                ));
            }
            *exchange = Exchange::Authenticated(principal.clone());
            Ok(Step::Authenticated {
                principal,
                token: Vec::new(),
                expires: Some(expires),
            })
        }
        Exchange::ScramFirst { hash, again } => {
            let nonce: [u8; 18] = rand::random();
            let nonce = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, nonce);
            let (started, credential, server_first) = scram::first(
                hash,
                token,
                |name| stored(name, hash).or_else(|| users.credential(name, hash)),
                &nonce,
            )
            .map_err(|message| (58, format!("Authentication failed: {message}")))?;
            *exchange = Exchange::ScramFinal {
                started: Box::new(started),
                credential,
                again,
            };
            Ok(Step::Continue(server_first.into_bytes()))
        }
        Exchange::ScramFinal {
            started,
            credential,
            again,
        } => {
            let server_final = scram::last(&started, credential.as_ref(), token)
                .map_err(|message| (58, format!("Authentication failed: {message}")))?;
            let principal = format!("User:{}", started.user);
            if again.is_some_and(|before| before != principal) {
                return Err((
                    58,
                    "Authentication failed: a re-authentication may not change the principal"
                        .to_string(),
                ));
            }
            *exchange = Exchange::Authenticated(principal.clone());
            Ok(Step::Authenticated {
                principal,
                token: server_final.into_bytes(),
                expires: None,
            })
        }
        other => {
            *exchange = other;
            Err((34, "SaslAuthenticate before a SaslHandshake".to_string()))
        }
    }
}

/// PLAIN's one token checked: the principal.
fn authenticate_plain(
    users: &Users,
    token: &[u8],
    again: Option<String>,
) -> Result<String, (i16, String)> {
    let failed = || {
        (
            58,
            "Authentication failed: Invalid username or password".to_string(),
        )
    };
    // RFC 4616: [authzid] NUL authcid NUL passwd.
    let mut parts = token.splitn(3, |byte| *byte == 0);
    let (Some(authzid), Some(name), Some(password)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err((
            58,
            "Authentication failed: a PLAIN token is authzid NUL name NUL password".to_string(),
        ));
    };
    let Ok(name) = std::str::from_utf8(name) else {
        return Err(failed());
    };
    if !authzid.is_empty() && authzid != name.as_bytes() {
        return Err((
            58,
            "Authentication failed: an authorization id other than the user's".to_string(),
        ));
    }
    if !users.check(name, password) {
        return Err(failed());
    }
    let principal = format!("User:{name}");
    if again.is_some_and(|before| before != principal) {
        return Err((
            58,
            "Authentication failed: a re-authentication may not change the principal".to_string(),
        ));
    }
    Ok(principal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> Users {
        Users::parse("# operators\nalice:s3cret\n\nbob:a:b:c\n").unwrap()
    }

    #[test]
    fn the_users_file_takes_names_and_passwords_and_refuses_the_rest() {
        let users = users();
        assert!(users.check("alice", b"s3cret"));
        assert!(users.check("bob", b"a:b:c"));
        assert!(!users.check("alice", b"s3cre"));
        assert!(!users.check("alice", b"s3cret!"));
        assert!(!users.check("carol", b"s3cret"));
        for bad in ["", "# none\n", "alice\n", ":pw\n", "alice:\n", "a:1\na:2\n"] {
            assert!(Users::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_plain_exchange_needs_a_handshake_then_the_right_password() {
        let users = users();
        let mut exchange = Exchange::default();
        assert_eq!(
            authenticate(&mut exchange, &users, &|_, _| None, b"\0alice\0s3cret")
                .unwrap_err()
                .0,
            34
        );
        assert_eq!(handshake(&mut exchange, &users, "GSSAPI", false), 33);
        assert_eq!(handshake(&mut exchange, &users, "PLAIN", false), 0);
        assert_eq!(
            handshake(&mut exchange, &users, "PLAIN", false),
            34,
            "a second handshake"
        );
        for bad in [
            &b"\0alice\0wrong"[..],
            b"alice",
            b"\0alice",
            b"bob\0alice\0s3cret",
        ] {
            let mut attempt = exchange.clone();
            assert_eq!(
                authenticate(&mut attempt, &users, &|_, _| None, bad)
                    .unwrap_err()
                    .0,
                58,
                "{bad:?}"
            );
        }
        assert_eq!(
            authenticate(&mut exchange, &users, &|_, _| None, b"alice\0alice\0s3cret").unwrap(),
            Step::Authenticated {
                principal: "User:alice".to_string(),
                token: Vec::new(),
                expires: None,
            }
        );
        assert_eq!(exchange, Exchange::Authenticated("User:alice".to_string()));
        // KIP-368: authenticated again, as the same user only.
        assert_eq!(handshake(&mut exchange.clone(), &users, "PLAIN", false), 34);
        let mut again = exchange.clone();
        assert_eq!(handshake(&mut again, &users, "PLAIN", true), 0);
        assert_eq!(
            authenticate(&mut again.clone(), &users, &|_, _| None, b"\0bob\0a:b:c")
                .unwrap_err()
                .0,
            58
        );
        assert!(authenticate(&mut again, &users, &|_, _| None, b"\0alice\0s3cret").is_ok());
        assert_eq!(again, Exchange::Authenticated("User:alice".to_string()));
    }

    #[test]
    fn a_scram_exchange_takes_two_messages_and_a_wrong_proof_fails() {
        let users = users();
        let mut exchange = Exchange::default();
        assert_eq!(handshake(&mut exchange, &users, "SCRAM-SHA-512", false), 0);
        let Step::Continue(server_first) =
            authenticate(&mut exchange, &users, &|_, _| None, b"n,,n=alice,r=abc").unwrap()
        else {
            panic!("a first message authenticates nothing")
        };
        let server_first = String::from_utf8(server_first).unwrap();
        assert!(server_first.starts_with("r=abc") && server_first.contains(",i=4096"));
        // A proof of nothing.
        let nonce = server_first.split(',').next().unwrap();
        let proof = format!("c=biws,{nonce},p={}", "A".repeat(88));
        assert_eq!(
            authenticate(&mut exchange, &users, &|_, _| None, proof.as_bytes())
                .unwrap_err()
                .0,
            58
        );
    }
}
