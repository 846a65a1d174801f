//! SASL OAUTHBEARER (RFC 7628, KIP-255, KIP-768): the client sends a JSON
//! Web Token, and the broker validates it against the public keys of a
//! JSON Web Key Set (see [`super::jwks`]: a file, or a URL kept fresh):
//! its signature (RS256 or ES256, by the key its `kid` names), its expiry
//! and not-before (with a clock skew), its issuer and audience when
//! configured. The principal is `User:` and the token's subject (the
//! `sub` claim, or the claim `sasl_oauthbearer_sub_claim_name` names). The
//! session lasts no longer than the token (KIP-368: the client
//! re-authenticates with a new one).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

use super::jwks::{refresh, JwksSettings, Keys};

/// The latest expiry a token is taken at (the end of year 9999): a later
/// `exp` is read as this, so that the time stays representable.
const EXPIRY_MAX_S: f64 = 253_402_300_799.0;

/// The largest token taken.
pub const TOKEN_BYTES_MAX: usize = 64 * 1024;

/// How far the broker's clock and the token issuer's may differ.
pub const CLOCK_SKEW: Duration = Duration::from_secs(30);

/// How long an authentication whose token names a key the set lacks
/// waits for the keys to be fetched again: a fetch's own limit, and a
/// second.
pub const UNKNOWN_KID_WAIT_MAX: Duration =
    Duration::from_secs(refresh::FETCH_TIMEOUT.as_secs() + 1);

/// What validates tokens: where the keys come from, and the claims
/// expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSettings {
    pub jwks: JwksSettings,
    pub expected_issuer: Option<String>,
    pub expected_audience: Option<String>,
    pub sub_claim: String,
}

/// A token validator: the settings, and the node's key set. One per
/// shard; the keys are shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validator {
    settings: OAuthSettings,
    keys: Keys,
}

/// The parts of a signed JWT: the header and the claims (JSON), the
/// signature, and the bytes it signs.
struct Token {
    header: serde_json::Value,
    claims: serde_json::Value,
    signature: Vec<u8>,
    signed: String,
}

impl Token {
    fn parse(token: &str) -> Result<Token, String> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("the token is not a signed JWT (three parts)".to_string());
        };
        let json = |part: &str, what: &str| -> Result<serde_json::Value, String> {
            let bytes = URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| format!("the token's {what} is not base64url"))?;
            serde_json::from_slice(&bytes).map_err(|_| format!("the token's {what} is not JSON"))
        };
        Ok(Token {
            header: json(header, "header")?,
            claims: json(payload, "payload")?,
            signature: URL_SAFE_NO_PAD
                .decode(signature)
                .map_err(|_| "the token's signature is not base64url".to_string())?,
            signed: format!("{header}.{payload}"),
        })
    }

    fn kid(&self) -> Option<&str> {
        self.header["kid"].as_str()
    }
}

impl Validator {
    pub fn new(settings: OAuthSettings, keys: Keys) -> Validator {
        Validator { settings, keys }
    }

    /// Validates the client's message: the principal and when its token
    /// expires, or why it is refused.
    pub fn authenticate(&self, message: &[u8]) -> Result<(String, SystemTime), String> {
        let token = bearer_token(message)?;
        self.validate(token, SystemTime::now())
    }

    /// If the token of `message` names a key (`kid`) the set lacks, and
    /// the keys come from a URL: asks for them to be fetched again and
    /// waits for it, at most [`UNKNOWN_KID_WAIT_MAX`]. Returns at once if
    /// such a fetch was made lately (see [`refresh::Policy`]). The fetch
    /// is the refresher thread's; the executor goes on meanwhile.
    pub async fn refresh_for_unknown_kid(&self, message: &[u8]) {
        let Some(token) = bearer_token(message)
            .ok()
            .and_then(|token| Token::parse(token).ok())
        else {
            return;
        };
        let Some(kid) = token.kid() else {
            return;
        };
        if self.keys.current().has_kid(kid) {
            return;
        }
        let Some(answered) = self.keys.refresh_for_unknown_kid() else {
            return;
        };
        let timed_out = async {
            glommio::timer::sleep(UNKNOWN_KID_WAIT_MAX).await;
        };
        futures_lite::future::or(
            async {
                let _ = answered.await;
            },
            timed_out,
        )
        .await;
    }

    fn validate(&self, token: &str, now: SystemTime) -> Result<(String, SystemTime), String> {
        let token = Token::parse(token)?;
        let alg = token.header["alg"].as_str().unwrap_or_default();
        let verified = self.keys.current().verify(
            alg,
            token.kid(),
            token.signed.as_bytes(),
            &token.signature,
        )?;
        if !verified {
            return Err("the token's signature is not one of the JWKS keys'".to_string());
        }
        let claims = &token.claims;
        let seconds = |claim: &str| claims[claim].as_f64();
        let now_s = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let skew = CLOCK_SKEW.as_secs_f64();
        let expiry = seconds("exp").ok_or("the token has no exp")?;
        if expiry + skew <= now_s {
            return Err("the token has expired".to_string());
        }
        if seconds("nbf").is_some_and(|not_before| not_before - skew > now_s) {
            return Err("the token is not valid yet (nbf)".to_string());
        }
        if let Some(issuer) = &self.settings.expected_issuer {
            if claims["iss"].as_str() != Some(issuer) {
                return Err(format!("the token's issuer is not {issuer}"));
            }
        }
        if let Some(audience) = &self.settings.expected_audience {
            let matches = match &claims["aud"] {
                serde_json::Value::String(aud) => aud == audience,
                serde_json::Value::Array(auds) => auds.iter().any(|aud| aud == audience),
                _ => false,
            };
            if !matches {
                return Err(format!("the token's audience does not include {audience}"));
            }
        }
        let subject = claims[&self.settings.sub_claim]
            .as_str()
            .filter(|subject| !subject.is_empty())
            .ok_or_else(|| format!("the token has no {} claim", self.settings.sub_claim))?;
        // A token may say any number; the session's end is kept in range.
        let expires = UNIX_EPOCH + Duration::from_secs_f64(expiry.clamp(0.0, EXPIRY_MAX_S));
        Ok((format!("User:{subject}"), expires))
    }
}

/// The token of the client's first message (RFC 7628):
/// `gs2-header %x01 *(key=value %x01) %x01`, with `auth=Bearer TOKEN`.
fn bearer_token(message: &[u8]) -> Result<&str, String> {
    if message.len() > TOKEN_BYTES_MAX {
        return Err(format!("a message over {TOKEN_BYTES_MAX} bytes"));
    }
    let text = std::str::from_utf8(message).map_err(|_| "a message not in UTF-8".to_string())?;
    let (gs2, rest) = text
        .split_once('\u{1}')
        .ok_or("no key-value pairs after the GS2 header")?;
    if !(gs2.starts_with("n,") || gs2.starts_with("y,")) {
        return Err("a GS2 header that asks for channel binding".to_string());
    }
    let auth = rest
        .split('\u{1}')
        .find_map(|pair| pair.strip_prefix("auth="))
        .ok_or("no auth= in the message")?;
    let (scheme, token) = auth.split_once(' ').ok_or("auth= is not Bearer TOKEN")?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err("auth= is not Bearer TOKEN".to_string());
    }
    Ok(token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::jwks::KeySet;
    use ring::{
        rand::SystemRandom,
        signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING},
    };

    fn key_pair() -> EcdsaKeyPair {
        let random = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &random).unwrap();
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &random).unwrap()
    }

    fn jwks(pair: &EcdsaKeyPair, kid: &str) -> String {
        let point = pair.public_key().as_ref();
        format!(
            r#"{{"keys":[{{"kty":"oct","k":"AA"}},{{"kty":"EC","crv":"P-256","kid":"{kid}","x":"{}","y":"{}"}}]}}"#,
            URL_SAFE_NO_PAD.encode(&point[1..33]),
            URL_SAFE_NO_PAD.encode(&point[33..65])
        )
    }

    fn token(pair: &EcdsaKeyPair, kid: &str, claims: &str) -> String {
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"ES256","kid":"{kid}"}}"#));
        let payload = URL_SAFE_NO_PAD.encode(claims);
        let signed = format!("{header}.{payload}");
        let signature = pair.sign(&SystemRandom::new(), signed.as_bytes()).unwrap();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    fn validator(keys: &str, issuer: Option<&str>, audience: Option<&str>) -> Validator {
        Validator::new(
            OAuthSettings {
                jwks: JwksSettings {
                    location: super::super::jwks::Location::File("jwks.json".into()),
                    ca_file: None,
                    refresh_interval: refresh::REFRESH_INTERVAL_DEFAULT,
                },
                expected_issuer: issuer.map(str::to_string),
                expected_audience: audience.map(str::to_string),
                sub_claim: "sub".to_string(),
            },
            Keys::fixed(KeySet::parse(keys).unwrap()),
        )
    }

    #[test]
    fn an_expiry_past_any_clock_is_read_as_the_latest_one() {
        let pair = key_pair();
        let validator = validator(&jwks(&pair, "k1"), None, None);
        for exp in ["1e300", "1e19", "9.3e18", "18446744073709551615"] {
            let claims = format!(r#"{{"sub":"alice","exp":{exp}}}"#);
            let (_, expires) = validator
                .validate(&token(&pair, "k1", &claims), SystemTime::now())
                .unwrap();
            assert_eq!(
                expires.duration_since(UNIX_EPOCH).unwrap().as_secs_f64(),
                EXPIRY_MAX_S,
                "{exp}"
            );
        }
    }

    #[test]
    fn a_signed_token_names_its_subject_and_the_rest_are_refused() {
        let pair = key_pair();
        let validator = validator(&jwks(&pair, "k1"), Some("https://idp"), Some("kafka"));
        let now = SystemTime::now();
        let in_an_hour = now.duration_since(UNIX_EPOCH).unwrap().as_secs() + 3600;
        let good = token(
            &pair,
            "k1",
            &format!(
                r#"{{"sub":"alice","iss":"https://idp","aud":["x","kafka"],"exp":{in_an_hour}}}"#
            ),
        );
        let (principal, expires) = validator.validate(&good, now).unwrap();
        assert_eq!(principal, "User:alice");
        assert_eq!(
            expires.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            in_an_hour
        );
        let message = format!("n,,\u{1}auth=Bearer {good}\u{1}\u{1}");
        assert_eq!(bearer_token(message.as_bytes()), Ok(good.as_str()));

        let claims =
            |extra: &str| format!(r#"{{"sub":"alice","iss":"https://idp","aud":"kafka",{extra}}}"#);
        let refused = [
            token(&pair, "k1", &claims(r#""exp":1000"#)),
            token(
                &pair,
                "k1",
                &claims(&format!(r#""exp":{in_an_hour},"nbf":{in_an_hour}"#)),
            ),
            token(&pair, "k2", &claims(&format!(r#""exp":{in_an_hour}"#))),
            token(
                &key_pair(),
                "k1",
                &claims(&format!(r#""exp":{in_an_hour}"#)),
            ),
            token(
                &pair,
                "k1",
                &format!(r#"{{"sub":"alice","iss":"other","aud":"kafka","exp":{in_an_hour}}}"#),
            ),
            token(
                &pair,
                "k1",
                &format!(
                    r#"{{"sub":"alice","iss":"https://idp","aud":"other","exp":{in_an_hour}}}"#
                ),
            ),
            token(
                &pair,
                "k1",
                &format!(r#"{{"iss":"https://idp","aud":"kafka","exp":{in_an_hour}}}"#),
            ),
            "a.b".to_string(),
            "e30.e30.".to_string(),
        ];
        for token in refused {
            assert!(validator.validate(&token, now).is_err(), "{token}");
        }
        // An unsigned token (alg none) is refused.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"alice","exp":{in_an_hour}}}"#))
        );
        assert!(validator.validate(&none, now).is_err());
    }

    #[test]
    fn malformed_messages_are_errors() {
        for message in [
            &b""[..],
            b"n,,",
            b"n,,\x01auth=Basic x\x01\x01",
            b"p=tls-unique,,\x01auth=Bearer x\x01\x01",
            b"n,,\x01\x01",
            b"\xff\x01",
        ] {
            assert!(bearer_token(message).is_err(), "{message:?}");
        }
        assert!(bearer_token(&vec![b'a'; TOKEN_BYTES_MAX + 1]).is_err());
    }
}
