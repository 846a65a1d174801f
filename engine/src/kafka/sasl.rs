//! SaslHandshake (v1) and SaslAuthenticate (v0–2) on a Kafka connection:
//! the exchange of [`crate::sasl`], and the rule that a connection of a
//! SASL listener sends nothing else before it authenticated.

use bytes::BytesMut;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};

use super::{decode, encode, str_bytes, versions};
use sluice_net::kafka::frame::KafkaRequest;

use crate::{sasl, server::Connection, shard::Shard};

/// ILLEGAL_SASL_STATE.
const ILLEGAL_SASL_STATE: i16 = 34;

/// Serves `request` if it is one of authentication, or refuses one that
/// comes before it on a SASL listener (`Err`: the connection closes, as
/// Kafka closes it). `None`: any other request, to be served as usual.
pub async fn before_serving(
    shard: &Shard,
    request: &KafkaRequest,
    connection: &Connection,
) -> Option<Result<Option<BytesMut>, String>> {
    match request.api {
        ApiKey::SaslHandshake => {
            Some(checked(request).and_then(|()| handshake(shard, request, connection)))
        }
        ApiKey::SaslAuthenticate => Some(match checked(request) {
            Ok(()) => authenticate(shard, request, connection).await,
            Err(error) => Err(error),
        }),
        ApiKey::ApiVersions => None,
        api if !connection.authenticated() => {
            // Closed without an answer, as Kafka closes it; counted and
            // logged as a refused authentication (a client without SASL
            // retries, and must not fill the log).
            refused(
                connection,
                &format!("{api:?} before the connection authenticated"),
            );
            connection.close_after_reply();
            Some(Ok(None))
        }
        _ => None,
    }
}

/// Counts a refused authentication and logs it, but not a line per
/// attempt of a client that insists: the first hundred, then one per
/// power of two.
fn refused(connection: &Connection, why: &str) {
    let failures = sasl::AUTHENTICATION_FAILURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if failures < 100 || failures.is_power_of_two() {
        tracing::info!(peer = ?connection.peer, %why, failures = failures + 1, "SASL authentication refused");
    }
}

/// A version served, else the connection closes.
fn checked(request: &KafkaRequest) -> Result<(), String> {
    let (api, version) = (request.api, request.version);
    match versions(api) {
        Some((min, max)) if (min..=max).contains(&version) => Ok(()),
        _ => Err(format!("{api:?} v{version} is not served")),
    }
}

fn handshake(
    shard: &Shard,
    request: &KafkaRequest,
    connection: &Connection,
) -> Result<Option<BytesMut>, String> {
    let asked: SaslHandshakeRequest = decode(request)?;
    let oauthbearer = connection
        .sasl
        .as_ref()
        .is_some_and(|sasl| sasl.users.oauthbearer.is_some());
    let mechanisms = sasl::MECHANISMS
        .iter()
        .copied()
        .chain(oauthbearer.then_some("OAUTHBEARER"))
        .map(str_bytes)
        .collect();
    // Re-authentication is allowed when sessions end: by the setting, or
    // by the expiry of OAUTHBEARER tokens.
    let reauthenticating = shard.config.connections_max_reauth.is_some() || oauthbearer;
    let code = match &connection.sasl {
        Some(sasl) => sasl::handshake(
            &mut sasl.exchange.borrow_mut(),
            &sasl.users,
            asked.mechanism.as_str(),
            reauthenticating,
        ),
        // A listener without SASL.
        None => ILLEGAL_SASL_STATE,
    };
    let response = SaslHandshakeResponse::default()
        .with_error_code(code)
        .with_mechanisms(mechanisms);
    if code != 0 {
        connection.close_after_reply();
    }
    encode(request, request.version, &response).map(Some)
}

async fn authenticate(
    shard: &Shard,
    request: &KafkaRequest,
    connection: &Connection,
) -> Result<Option<BytesMut>, String> {
    let asked: SaslAuthenticateRequest = decode(request)?;
    // An OAUTHBEARER token that names a key the set lacks: the keys may
    // have been rotated since they were fetched. The refresher thread
    // fetches them again (or declines to, if it did lately) while this
    // connection waits.
    if let Some(sasl) = &connection.sasl {
        let oauthbearer = matches!(*sasl.exchange.borrow(), sasl::Exchange::OAuthBearer { .. });
        if let Some(validator) = sasl.users.oauthbearer.as_ref().filter(|_| oauthbearer) {
            validator.refresh_for_unknown_kid(&asked.auth_bytes).await;
        }
    }
    let result = match &connection.sasl {
        Some(sasl) => {
            // SCRAM credentials stored in the cluster's metadata first
            // (AlterUserScramCredentials), then the users file's.
            let metadata = shard.metadata();
            let stored = |user: &str, hash| metadata.scram.get(&(user.to_string(), hash)).cloned();
            sasl::authenticate(
                &mut sasl.exchange.borrow_mut(),
                &sasl.users,
                &stored,
                &asked.auth_bytes,
            )
        }
        None => Err((
            ILLEGAL_SASL_STATE,
            "this listener does not use SASL".to_string(),
        )),
    };
    let response = match result {
        Ok(sasl::Step::Continue(token)) => {
            SaslAuthenticateResponse::default().with_auth_bytes(token.into())
        }
        Ok(sasl::Step::Authenticated {
            principal,
            token,
            expires,
        }) => {
            tracing::debug!(peer = ?connection.peer, %principal, "authenticated");
            // KIP-368: the session's life, from v1, after which the client
            // authenticates again on the connection: the setting's, or
            // less if the credential (a token) expires sooner.
            let until_expiry = expires.map(|expires| {
                expires
                    .duration_since(std::time::SystemTime::now())
                    .unwrap_or_default()
            });
            let lifetime = match (shard.config.connections_max_reauth, until_expiry) {
                (Some(setting), Some(token)) => Some(setting.min(token)),
                (setting, token) => setting.or(token),
            };
            if let (Some(sasl), Some(lifetime)) = (&connection.sasl, lifetime) {
                // Past what an Instant holds: for the connection's life.
                sasl.expires
                    .set(std::time::Instant::now().checked_add(lifetime));
            }
            let lifetime_ms = match lifetime {
                Some(lifetime) if request.version >= 1 => {
                    i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX)
                }
                _ => 0,
            };
            SaslAuthenticateResponse::default()
                .with_auth_bytes(token.into())
                .with_session_lifetime_ms(lifetime_ms)
        }
        Err((code, message)) => {
            refused(connection, &message);
            connection.close_after_reply();
            SaslAuthenticateResponse::default()
                .with_error_code(code)
                .with_error_message(Some(str_bytes(message)))
        }
    };
    encode(request, request.version, &response).map(Some)
}
