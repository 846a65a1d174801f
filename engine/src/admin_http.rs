//! The admin HTTP port: `GET /metrics` in the Prometheus text format, on
//! shard 0 only.
//!
//! A scraper's needs are small, so this is a small HTTP/1.1 server, written
//! here rather than pulled in: one request per connection, read whole (its
//! request line and headers, capped in size and in time), answered, and
//! the connection closed. Bodies sent with a request are not read. Anything
//! but `GET` or `HEAD` of `/metrics` gets an error status; bad input closes
//! only its own connection.
//!
//! With the ACL authorizer on, `/metrics` needs DESCRIBE on the cluster. The
//! requester is the user of HTTP Basic credentials (`Authorization: Basic`,
//! checked against the SASL users, as Prometheus's `basic_auth` sends
//! them), else `User:ANONYMOUS`; without credentials that are allowed the
//! answer is 401 (asking for them), with credentials that are not, 403.

use std::{cell::Cell, rc::Rc, time::Duration};

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::net::TcpListener;

use crate::{
    acl::{Operation, Requester, ResourceType, CLUSTER_NAME},
    authorization::Access,
    metrics,
    sasl::Users,
    shard::Shard,
};

/// A request's line and headers are at most this long. A scraper's are a few
/// hundred bytes; a longer head is refused before more of it is read.
pub const REQUEST_HEAD_BYTES_MAX: usize = 8 * 1024;

/// A request must arrive whole within this time, so a connection that sends
/// slowly or not at all holds nothing for long.
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a scrape waits for every shard's figures; Prometheus's default
/// scrape timeout is 10 s.
const GATHER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the response may take to write, for a client that stops
/// reading.
const RESPONSE_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Admin connections served at once; more are closed unanswered. A scraper
/// uses one at a time, and each costs a gathering from every shard.
const CONNECTIONS_MAX: usize = 64;

/// The one path served.
const METRICS_PATH: &str = "/metrics";

const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A request as far as this server reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// `HEAD`: the headers of a `GET`, no body.
    pub head_only: bool,
    /// The target without its query.
    pub path: &'a str,
    /// The `Authorization` header's value, if it has one.
    pub authorization: Option<&'a str>,
}

/// Why a request is not served; each has its status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("request head over {max} bytes")]
    TooLarge { max: usize },
    #[error("malformed request: {reason}")]
    Malformed { reason: &'static str },
    #[error("method {method:?} not allowed")]
    MethodNotAllowed { method: String },
    #[error("HTTP version {version:?} not supported")]
    Version { version: String },
    #[error("no complete request within {timeout:?}")]
    TimedOut { timeout: Duration },
}

impl RequestError {
    fn status(&self) -> &'static str {
        match self {
            RequestError::TooLarge { .. } => "431 Request Header Fields Too Large",
            RequestError::Malformed { .. } => "400 Bad Request",
            RequestError::MethodNotAllowed { .. } => "405 Method Not Allowed",
            RequestError::Version { .. } => "505 HTTP Version Not Supported",
            RequestError::TimedOut { .. } => "408 Request Timeout",
        }
    }
}

/// Where the head in `buffer` ends (past its blank line), if it is whole.
/// A bare line feed ends a line too, as RFC 9112 lets a server accept.
pub fn head_end(buffer: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    for (index, &byte) in buffer.iter().enumerate() {
        if byte != b'\n' {
            continue;
        }
        let line = &buffer[line_start..index];
        if line.is_empty() || line == b"\r" {
            return Some(index + 1);
        }
        line_start = index + 1;
    }
    None
}

/// Parses a whole head (request line, headers, blank line).
pub fn parse_head(head: &[u8]) -> Result<Request<'_>, RequestError> {
    let malformed = |reason| RequestError::Malformed { reason };
    let text = std::str::from_utf8(head).map_err(|_| malformed("not UTF-8"))?;
    let mut lines = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line));
    let request_line = lines.next().ok_or(malformed("no request line"))?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("the request line is not METHOD TARGET VERSION"));
    };
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
        if !version.starts_with("HTTP/") {
            return Err(malformed("no HTTP version"));
        }
        return Err(RequestError::Version {
            version: version.to_string(),
        });
    }
    if !target.starts_with('/') || target.bytes().any(|b| b.is_ascii_control()) {
        return Err(malformed("the target is not a path"));
    }
    let mut authorization = None;
    for header in lines.take_while(|line| !line.is_empty()) {
        let Some((name, value)) = header.split_once(':') else {
            return Err(malformed("a header line has no colon"));
        };
        if name.is_empty() || name.contains([' ', '\t']) {
            return Err(malformed("a header name is empty or has spaces"));
        }
        if name.eq_ignore_ascii_case("authorization") {
            authorization = Some(value.trim());
        }
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        other => {
            if other.is_empty() || !other.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(malformed("no method"));
            }
            return Err(RequestError::MethodNotAllowed {
                method: other.to_string(),
            });
        }
    };
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    Ok(Request {
        head_only,
        path,
        authorization,
    })
}

/// Reads until the head is whole: its length in `buffer`, `None` if the
/// peer closed first.
async fn read_head(
    stream: &mut (impl AsyncRead + Unpin),
    buffer: &mut Vec<u8>,
) -> Result<Option<usize>, RequestError> {
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = head_end(buffer) {
            return Ok(Some(end));
        }
        if buffer.len() >= REQUEST_HEAD_BYTES_MAX {
            return Err(RequestError::TooLarge {
                max: REQUEST_HEAD_BYTES_MAX,
            });
        }
        let room = (REQUEST_HEAD_BYTES_MAX - buffer.len()).min(chunk.len());
        match stream.read(&mut chunk[..room]).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
        }
    }
}

fn response_head(status: &str, content_type: &str, length: usize) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\
         Connection: close\r\n\r\n"
    )
}

fn error_response(error: &RequestError) -> Vec<u8> {
    let body = format!("{error}\n");
    let mut response = response_head(error.status(), "text/plain; charset=utf-8", body.len());
    if matches!(error, RequestError::MethodNotAllowed { .. }) {
        response.insert_str(response.len() - 2, "Allow: GET, HEAD\r\n");
    }
    response.push_str(&body);
    response.into_bytes()
}

/// The user of HTTP Basic credentials `value` (`Basic BASE64(NAME:PASSWORD)`)
/// if `users` knows them: `Ok(None)` without credentials, `Err` for
/// credentials that are malformed or wrong.
fn basic_user(value: Option<&str>, users: Option<&Users>) -> Result<Option<String>, ()> {
    use base64::{engine::general_purpose::STANDARD, Engine};
    let Some(value) = value else {
        return Ok(None);
    };
    let (scheme, encoded) = value.split_once(' ').ok_or(())?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(());
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| ())?;
    let text = String::from_utf8(decoded).map_err(|_| ())?;
    let (name, password) = text.split_once(':').ok_or(())?;
    match users {
        Some(users) if users.check(name, password.as_bytes()) => Ok(Some(name.to_string())),
        _ => Err(()),
    }
}

/// Whether the requester may read `/metrics`, or the refusal's response.
fn authorize(
    shard: &Shard,
    request: &Request<'_>,
    peer: Option<std::net::IpAddr>,
    users: Option<&Users>,
) -> Result<(), Vec<u8>> {
    if shard.config.authorizer.is_none() {
        return Ok(());
    }
    let refuse = |status: &str, challenge: bool, reason: &str| {
        let body = format!("{reason}\n");
        let mut head = response_head(status, "text/plain; charset=utf-8", body.len());
        if challenge {
            head.insert_str(
                head.len() - 2,
                "WWW-Authenticate: Basic realm=\"sluice\", charset=\"UTF-8\"\r\n",
            );
        }
        let mut response = head.into_bytes();
        if !request.head_only {
            response.extend_from_slice(body.as_bytes());
        }
        response
    };
    let Ok(user) = basic_user(request.authorization, users) else {
        crate::sasl::AUTHENTICATION_FAILURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return Err(refuse(
            "401 Unauthorized",
            true,
            "the credentials are not a user's",
        ));
    };
    let named = user.is_some();
    let requester = Requester {
        principal: user.map_or_else(
            || crate::acl::ANONYMOUS.to_string(),
            |name| format!("User:{name}"),
        ),
        host: peer.map(|ip| ip.to_string()).unwrap_or_default(),
    };
    let api = "admin GET /metrics";
    let access = Access::new(shard, || std::rc::Rc::new(requester), &api);
    if access.allows(Operation::Describe, ResourceType::Cluster, CLUSTER_NAME) {
        return Ok(());
    }
    let reason = format!(
        "{} may not DESCRIBE the cluster",
        access.requester.principal
    );
    Err(if named {
        refuse("403 Forbidden", false, &reason)
    } else {
        refuse("401 Unauthorized", true, &reason)
    })
}

/// The response to a parsed request.
async fn respond(shard: &Rc<Shard>, request: Request<'_>) -> Vec<u8> {
    let (status, content_type, body) = if request.path == METRICS_PATH {
        let gathered =
            futures_lite::future::or(async { Some(metrics::gather(shard).await) }, async {
                glommio::timer::sleep(GATHER_TIMEOUT).await;
                None
            })
            .await;
        match gathered {
            Some(scrape) => ("200 OK", METRICS_CONTENT_TYPE, metrics::render(&scrape)),
            None => (
                "503 Service Unavailable",
                "text/plain; charset=utf-8",
                format!("the shards did not answer within {GATHER_TIMEOUT:?}\n"),
            ),
        }
    } else {
        (
            "404 Not Found",
            "text/plain; charset=utf-8",
            format!("not found; metrics are at {METRICS_PATH}\n"),
        )
    };
    let mut response = response_head(status, content_type, body.len()).into_bytes();
    if !request.head_only {
        response.extend_from_slice(body.as_bytes());
    }
    response
}

async fn serve(
    shard: &Rc<Shard>,
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    peer: Option<std::net::IpAddr>,
    users: Option<Rc<Users>>,
) {
    let mut buffer = Vec::with_capacity(1024);
    let head = futures_lite::future::or(read_head(&mut stream, &mut buffer), async {
        glommio::timer::sleep(REQUEST_READ_TIMEOUT).await;
        Err(RequestError::TimedOut {
            timeout: REQUEST_READ_TIMEOUT,
        })
    })
    .await;
    let response = match head {
        Ok(None) => return,
        Ok(Some(end)) => match parse_head(&buffer[..end]) {
            Ok(request) => match authorize(shard, &request, peer, users.as_deref()) {
                Ok(()) => respond(shard, request).await,
                Err(refused) => refused,
            },
            Err(error) => {
                tracing::debug!(%error, "admin request refused");
                error_response(&error)
            }
        },
        Err(error) => {
            tracing::debug!(%error, "admin request refused");
            error_response(&error)
        }
    };
    let written = async {
        let _ = stream.write_all(&response).await;
        let _ = stream.close().await;
    };
    futures_lite::future::or(written, glommio::timer::sleep(RESPONSE_WRITE_TIMEOUT)).await;
}

/// Accepts admin connections until the task is dropped (at shutdown, which
/// closes the listener). Runs on shard 0.
pub async fn accept_loop(
    shard: Rc<Shard>,
    listener: TcpListener,
    tls: Option<Rc<crate::tls::ShardTls>>,
    users: Option<Rc<Users>>,
) {
    let open = Rc::new(Cell::new(0usize));
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(shard = shard.id, %error, "admin accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if shard.shutting_down.get() || open.get() >= CONNECTIONS_MAX {
            continue;
        }
        open.set(open.get() + 1);
        let shard = shard.clone();
        let open = open.clone();
        let users = users.clone();
        let acceptor = tls.as_ref().map(|tls| tls.acceptor());
        glommio::spawn_local(async move {
            let peer = stream.peer_addr().ok().map(|addr| addr.ip());
            match acceptor {
                None => serve(&shard, stream, peer, users).await,
                Some(acceptor) => match crate::server::handshake(&shard, acceptor, stream).await {
                    Ok(stream) => serve(&shard, stream, peer, users).await,
                    Err(error) => {
                        crate::tls::HANDSHAKE_FAILURES
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracing::debug!(%error, "admin TLS handshake failed");
                    }
                },
            }
            open.set(open.get() - 1);
        })
        .detach();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_parses() {
        let head = b"GET /metrics HTTP/1.1\r\nHost: localhost:9644\r\nAccept: text/plain\r\n\r\n";
        assert_eq!(head_end(head), Some(head.len()));
        assert_eq!(
            parse_head(head),
            Ok(Request {
                head_only: false,
                path: "/metrics",
                authorization: None,
            })
        );
        let head = b"HEAD /metrics?x=1 HTTP/1.0\nauthorization:  Basic YTpi \n\n";
        assert_eq!(
            parse_head(&head[..head_end(head).unwrap()]),
            Ok(Request {
                head_only: true,
                path: "/metrics",
                authorization: Some("Basic YTpi"),
            })
        );
    }

    #[test]
    fn basic_credentials_name_a_user_or_are_refused() {
        let users = Users::parse("alice:s3cret\n").unwrap();
        let basic = |text: &str| {
            use base64::{engine::general_purpose::STANDARD, Engine};
            format!("Basic {}", STANDARD.encode(text))
        };
        assert_eq!(basic_user(None, Some(&users)), Ok(None));
        assert_eq!(
            basic_user(Some(&basic("alice:s3cret")), Some(&users)),
            Ok(Some("alice".to_string()))
        );
        for bad in [
            basic("alice:wrong"),
            basic("mallory:s3cret"),
            basic("no colon"),
            "Basic !!!".to_string(),
            "Bearer token".to_string(),
            "Basic".to_string(),
        ] {
            assert_eq!(basic_user(Some(&bad), Some(&users)), Err(()), "{bad}");
        }
        assert_eq!(
            basic_user(Some(&basic("alice:s3cret")), None),
            Err(()),
            "no users: no credentials hold"
        );
    }

    #[test]
    fn a_head_is_whole_only_after_its_blank_line() {
        assert_eq!(head_end(b""), None);
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nbody"), Some(18));
        assert_eq!(head_end(b"\r\n"), Some(2), "an empty request line");
    }

    #[test]
    fn bad_requests_get_their_errors() {
        let malformed =
            |head: &[u8]| matches!(parse_head(head), Err(RequestError::Malformed { .. }));
        assert!(malformed(b"\r\n"));
        assert!(malformed(b"garbage\r\n\r\n"));
        assert!(malformed(b"GET /metrics\r\n\r\n"));
        assert!(malformed(b"GET  /metrics HTTP/1.1\r\n\r\n"));
        assert!(malformed(b"GET /metrics HTTP/1.1 extra\r\n\r\n"));
        assert!(malformed(b"GET metrics HTTP/1.1\r\n\r\n"));
        assert!(malformed(b"GET /metrics HTTP/1.1\r\nno colon\r\n\r\n"));
        assert!(malformed(b"GET /metrics HTTP/1.1\r\nbad name: x\r\n\r\n"));
        assert!(malformed(b"GET /\xff HTTP/1.1\r\n\r\n"));
        assert!(malformed(b"get /metrics HTTP/1.1\r\n\r\n"));
        assert!(malformed(b"GET /metrics SMTP\r\n\r\n"));
        assert_eq!(
            parse_head(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Err(RequestError::MethodNotAllowed {
                method: "POST".into()
            })
        );
        assert_eq!(
            parse_head(b"GET /metrics HTTP/2.0\r\n\r\n"),
            Err(RequestError::Version {
                version: "HTTP/2.0".into()
            })
        );
    }

    #[test]
    fn error_responses_are_whole_http() {
        let response = error_response(&RequestError::MethodNotAllowed {
            method: "PUT".into(),
        });
        let text = String::from_utf8(response).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nAllow: GET, HEAD\r\n\r\n"), "{text}");
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{text}"
        );
    }
}
