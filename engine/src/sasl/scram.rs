//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), the server's side:
//! the client proves it knows the password without sending it, and the
//! server proves it holds the user's credential.
//!
//! A credential is what the server keeps of a password: a salt, the
//! iteration count, `StoredKey = H(HMAC(SaltedPassword, "Client Key"))` and
//! `ServerKey = HMAC(SaltedPassword, "Server Key")`, where
//! `SaltedPassword = PBKDF2(password, salt, iterations)`.

use base64::{engine::general_purpose::STANDARD, Engine};
use ring::{digest, hmac, pbkdf2};

/// Iterations of the credentials made here (Kafka's minimum).
pub const ITERATIONS: u32 = 4096;

/// The iterations a stored credential may have: Kafka's bounds.
pub const ITERATIONS_MIN: u32 = 4096;
pub const ITERATIONS_MAX: u32 = 16384;

/// The longest salt a stored credential may have.
pub const SALT_BYTES_MAX: usize = 1024;

/// The longest message of the exchange taken.
const MESSAGE_BYTES_MAX: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hash {
    Sha256,
    Sha512,
}

impl Hash {
    pub fn mechanism(self) -> &'static str {
        match self {
            Hash::Sha256 => "SCRAM-SHA-256",
            Hash::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn of_mechanism(name: &str) -> Option<Hash> {
        match name {
            "SCRAM-SHA-256" => Some(Hash::Sha256),
            "SCRAM-SHA-512" => Some(Hash::Sha512),
            _ => None,
        }
    }

    /// Kafka's number for the mechanism (AlterUserScramCredentials).
    pub fn code(self) -> i8 {
        match self {
            Hash::Sha256 => 1,
            Hash::Sha512 => 2,
        }
    }

    pub fn from_code(code: i8) -> Option<Hash> {
        match code {
            1 => Some(Hash::Sha256),
            2 => Some(Hash::Sha512),
            _ => None,
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            Hash::Sha256 => hmac::HMAC_SHA256,
            Hash::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            Hash::Sha256 => &digest::SHA256,
            Hash::Sha512 => &digest::SHA512,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            Hash::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            Hash::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    pub fn output_len(self) -> usize {
        self.digest().output_len()
    }
}

/// What the server keeps of one user's password for one hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

fn hmac_of(hash: Hash, key: &[u8], message: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hash.hmac(), key), message)
        .as_ref()
        .to_vec()
}

/// `PBKDF2(password, salt, iterations)` with `hash`'s HMAC: what a client
/// sends to store a credential (AlterUserScramCredentials), so that the
/// password itself never travels.
pub fn salted_password(hash: Hash, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut salted = vec![0u8; hash.output_len()];
    let rounds = std::num::NonZeroU32::new(iterations.max(1)).expect("at least one");
    pbkdf2::derive(hash.pbkdf2(), rounds, salt, password, &mut salted);
    salted
}

impl Credential {
    /// The credential of `password` with `salt`.
    pub fn new(hash: Hash, password: &[u8], salt: Vec<u8>, iterations: u32) -> Credential {
        let salted = salted_password(hash, password, &salt, iterations);
        Credential::from_salted(hash, &salted, salt, iterations)
    }

    /// The credential of a salted password (see [`salted_password`]).
    pub fn from_salted(hash: Hash, salted: &[u8], salt: Vec<u8>, iterations: u32) -> Credential {
        let client_key = hmac_of(hash, salted, b"Client Key");
        let stored_key = digest::digest(hash.digest(), &client_key).as_ref().to_vec();
        let server_key = hmac_of(hash, salted, b"Server Key");
        Credential {
            salt,
            iterations,
            stored_key,
            server_key,
        }
    }
}

/// Where one SCRAM exchange stands, between its two messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub hash: Hash,
    pub user: String,
    /// `client-first-message-bare + "," + server-first-message`.
    auth_prefix: String,
    nonce: String,
    gs2_header: String,
}

/// Why an exchange failed: said to the client as
/// `SASL_AUTHENTICATION_FAILED`.
pub type Failure = String;

fn utf8(message: &[u8]) -> Result<&str, Failure> {
    if message.len() > MESSAGE_BYTES_MAX {
        return Err(format!("a SCRAM message over {MESSAGE_BYTES_MAX} bytes"));
    }
    std::str::from_utf8(message).map_err(|_| "a SCRAM message not in UTF-8".to_string())
}

/// The client's first message: where the exchange stands, the named
/// user's credential, and the server's first message. An unknown user
/// (`credential` answers `None`) is answered as a known one would be,
/// with a salt of its own, so that the exchange fails only at the proof
/// and does not tell which users exist.
pub fn first(
    hash: Hash,
    message: &[u8],
    credential: impl FnOnce(&str) -> Option<Credential>,
    server_nonce: &str,
) -> Result<(Started, Option<Credential>, String), Failure> {
    let text = utf8(message)?;
    // gs2-header: no channel binding ("n" or "y"), an optional authzid.
    let mut parts = text.splitn(3, ',');
    let (Some(binding), Some(authzid), Some(bare)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err("a SCRAM client-first-message without its gs2 header".to_string());
    };
    if binding != "n" && binding != "y" {
        return Err("SCRAM channel binding is not served".to_string());
    }
    let mut user = None;
    let mut client_nonce = None;
    for attribute in bare.split(',') {
        if let Some(name) = attribute.strip_prefix("n=") {
            user = Some(unescape(name)?);
        } else if let Some(nonce) = attribute.strip_prefix("r=") {
            client_nonce = Some(nonce.to_string());
        } else if attribute.starts_with("tokenauth=") {
            // Kafka's extension for delegation tokens, which are not
            // served.
            return Err("delegation tokens are not served".to_string());
        }
    }
    let (Some(user), Some(client_nonce)) = (user, client_nonce) else {
        return Err("a SCRAM client-first-message without its user or nonce".to_string());
    };
    let printable = |b: u8| (0x21..=0x7e).contains(&b) && b != b',';
    if client_nonce.is_empty() || !client_nonce.bytes().all(printable) {
        return Err("a SCRAM nonce of characters it may not have".to_string());
    }
    if !authzid.is_empty() {
        let named = authzid.strip_prefix("a=").map(unescape).transpose()?;
        if named.as_deref() != Some(user.as_str()) {
            return Err("an authorization id other than the user's".to_string());
        }
    }
    let known = credential(&user);
    let (salt, iterations) = match &known {
        Some(credential) => (credential.salt.clone(), credential.iterations),
        None => (
            digest::digest(&digest::SHA256, user.as_bytes()).as_ref()[..16].to_vec(),
            ITERATIONS,
        ),
    };
    let nonce = format!("{client_nonce}{server_nonce}");
    let server_first = format!("r={nonce},s={},i={iterations}", STANDARD.encode(&salt));
    let started = Started {
        hash,
        user,
        auth_prefix: format!("{bare},{server_first}"),
        nonce,
        gs2_header: format!("{binding},{authzid},"),
    };
    Ok((started, known, server_first))
}

/// The client's final message, checked against `credential`: the
/// server's final message.
pub fn last(
    started: &Started,
    credential: Option<&Credential>,
    message: &[u8],
) -> Result<String, Failure> {
    let failed = || "invalid credentials".to_string();
    let text = utf8(message)?;
    let (without_proof, proof) = text
        .rsplit_once(",p=")
        .ok_or("a SCRAM client-final-message without its proof")?;
    let mut binding = None;
    let mut nonce = None;
    for attribute in without_proof.split(',') {
        if let Some(value) = attribute.strip_prefix("c=") {
            binding = Some(value);
        } else if let Some(value) = attribute.strip_prefix("r=") {
            nonce = Some(value);
        }
    }
    if binding != Some(STANDARD.encode(&started.gs2_header).as_str()) {
        return Err("the SCRAM channel binding does not match the first message".to_string());
    }
    if nonce != Some(started.nonce.as_str()) {
        return Err("the SCRAM nonce does not match".to_string());
    }
    let Some(credential) = credential else {
        return Err(failed());
    };
    let proof = STANDARD.decode(proof).map_err(|_| failed())?;
    let hash = started.hash;
    if proof.len() != hash.output_len() {
        return Err(failed());
    }
    let auth_message = format!("{},{without_proof}", started.auth_prefix);
    let client_signature = hmac_of(hash, &credential.stored_key, auth_message.as_bytes());
    let client_key: Vec<u8> = proof
        .iter()
        .zip(&client_signature)
        .map(|(p, s)| p ^ s)
        .collect();
    let stored = digest::digest(hash.digest(), &client_key);
    if !super::equal_in_constant_time(stored.as_ref(), &credential.stored_key) {
        return Err(failed());
    }
    let server_signature = hmac_of(hash, &credential.server_key, auth_message.as_bytes());
    Ok(format!("v={}", STANDARD.encode(server_signature)))
}

/// A SCRAM name with its `=2C` and `=3D` escapes undone.
fn unescape(name: &str) -> Result<String, Failure> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        match rest.get(at..at + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err("a SCRAM name with a bad escape".to_string()),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client's final message and the server's final message it
    /// expects, as RFC 5802 computes them.
    fn client_final(
        hash: Hash,
        password: &str,
        client_first_bare: &str,
        server_first: &str,
    ) -> (String, String) {
        let attribute = |name: &str| {
            server_first
                .split(',')
                .find_map(|a| a.strip_prefix(name))
                .unwrap()
                .to_string()
        };
        let salt = STANDARD.decode(attribute("s=")).unwrap();
        let iterations: u32 = attribute("i=").parse().unwrap();
        let salted = salted_password(hash, password.as_bytes(), &salt, iterations);
        let client_key = hmac_of(hash, &salted, b"Client Key");
        let stored_key = digest::digest(hash.digest(), &client_key).as_ref().to_vec();
        let server_key = hmac_of(hash, &salted, b"Server Key");
        let without_proof = format!("c=biws,r={}", attribute("r="));
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = hmac_of(hash, &stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let expected = hmac_of(hash, &server_key, auth_message.as_bytes());
        (
            format!("{without_proof},p={}", STANDARD.encode(proof)),
            format!("v={}", STANDARD.encode(expected)),
        )
    }

    #[test]
    fn a_client_that_knows_the_password_authenticates_and_the_server_proves_itself() {
        for hash in [Hash::Sha256, Hash::Sha512] {
            let credential = Credential::new(hash, b"pencil", b"salty".to_vec(), ITERATIONS);
            let message = b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL";
            let (started, known, server_first) = first(
                hash,
                message,
                |_| Some(credential.clone()),
                "3rfcNHYJY1ZVvWVs7j",
            )
            .unwrap();
            let bare = "n=user,r=fyko+d2lbbFgONRv9qkxdawL";
            let (good, server_final) = client_final(hash, "pencil", bare, &server_first);
            assert_eq!(
                last(&started, known.as_ref(), good.as_bytes()).unwrap(),
                server_final
            );
            let (wrong, _) = client_final(hash, "pen", bare, &server_first);
            assert!(last(&started, known.as_ref(), wrong.as_bytes()).is_err());
            // An unknown user is answered alike, and fails at the proof.
            let (started, unknown, server_first) =
                first(hash, b"n,,n=nobody,r=abc", |_| None, "xyz").unwrap();
            assert!(server_first.starts_with("r=abcxyz,s="));
            let (proof, _) = client_final(hash, "pencil", "n=nobody,r=abc", &server_first);
            assert!(last(&started, unknown.as_ref(), proof.as_bytes()).is_err());
        }
    }

    #[test]
    fn malformed_messages_are_refused() {
        let credential = |_: &str| Some(Credential::new(Hash::Sha256, b"p", b"s".to_vec(), 1));
        for bad in [
            &b""[..],
            b"n=user,r=abc",
            b"p=tls-unique,,n=user,r=abc",
            b"n,,r=abc",
            b"n,,n=user",
            b"n,,n=us=5Aer,r=abc",
            b"n,a=other,n=user,r=abc",
            b"n,,n=user,r=abc,tokenauth=true",
            b"\xff\xfe",
        ] {
            assert!(
                first(Hash::Sha256, bad, credential, "s").is_err(),
                "{bad:?}"
            );
        }
        assert!(first(Hash::Sha256, &[b'a'; 5000], credential, "s").is_err());
        let (started, known, _) = first(Hash::Sha256, b"n,,n=user,r=abc", credential, "s").unwrap();
        for bad in [
            &b"c=biws,r=abcs"[..],
            b"c=biws,r=other,p=AAAA",
            b"c=eSws,r=abcs,p=AAAA",
            b"c=biws,r=abcs,p=!!!",
            b"c=biws,r=abcs,p=AAAA",
        ] {
            assert!(last(&started, known.as_ref(), bad).is_err(), "{bad:?}");
        }
    }
}
