//! The URL of a JWKS endpoint (`sasl_oauthbearer_jwks_endpoint_url`):
//! `https://HOST[:PORT]/PATH`, `http://` to a loopback host only, or a
//! file (`file:///PATH` or a plain path).
//!
//! Only what a GET needs is kept, and only characters that cannot bend
//! the request line or the `Host` header are taken: a URL with spaces,
//! control characters or anything not ASCII is refused (percent-encode
//! them), as is one with credentials (`user:password@`).

use std::{
    fmt,
    net::{IpAddr, Ipv6Addr},
    path::PathBuf,
};

/// Where the keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    Http(Url),
}

/// How an endpoint is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Https,
    /// Plain HTTP: to a loopback host only (see [`Location::parse`]).
    Http,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Name(String),
    Ip(IpAddr),
}

/// An `http://` or `https://` URL, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub scheme: Scheme,
    pub host: Host,
    pub port: u16,
    /// The path and query, as the request line carries them (`/` at
    /// least).
    pub target: String,
    /// As the setting wrote it, for messages.
    text: String,
}

impl fmt::Display for Url {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}

impl Url {
    /// The `Host` header's value: the host, and the port unless it is the
    /// scheme's.
    pub fn host_header(&self) -> String {
        let host = match &self.host {
            Host::Name(name) => name.clone(),
            Host::Ip(IpAddr::V4(ip)) => ip.to_string(),
            Host::Ip(IpAddr::V6(ip)) => format!("[{ip}]"),
        };
        let default_port = match self.scheme {
            Scheme::Https => 443,
            Scheme::Http => 80,
        };
        if self.port == default_port {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// Whether the host is this machine's loopback (`localhost`,
    /// 127.0.0.0/8, `::1`): the one place plain HTTP is taken from. The
    /// addresses a name resolves to are checked again on connecting.
    pub fn is_loopback(&self) -> bool {
        match &self.host {
            Host::Name(name) => name.eq_ignore_ascii_case("localhost"),
            Host::Ip(ip) => ip.is_loopback(),
        }
    }
}

impl Location {
    /// Reads the setting: `https://...`, `http://...` to a loopback host,
    /// `file:///PATH`, or a plain path.
    ///
    /// `http://` to any other host is refused: a key set that travels in
    /// plain text can be replaced by anyone on the way, who could then
    /// sign tokens the broker accepts as any principal.
    pub fn parse(text: &str) -> Result<Location, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("an empty URL".to_string());
        }
        // A scheme is a letter, then letters, digits, `+`, `-` or `.`
        // (RFC 3986); anything else before a `://` is part of a path.
        let Some((scheme, rest)) = text.split_once("://").filter(|(scheme, _)| {
            scheme.starts_with(|ch: char| ch.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "+-.".contains(ch))
        }) else {
            return Ok(Location::File(PathBuf::from(text)));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => file_path(rest).map(Location::File),
            "https" => parse_http(Scheme::Https, rest, text).map(Location::Http),
            "http" => {
                let url = parse_http(Scheme::Http, rest, text)?;
                if !url.is_loopback() {
                    return Err(
                        "http:// is taken only from a loopback host (localhost, 127.0.0.1, ::1): \
                         keys fetched in plain text can be replaced on the way, and tokens \
                         signed with the replacement would be accepted; use https://"
                            .to_string(),
                    );
                }
                Ok(Location::Http(url))
            }
            other => Err(format!(
                "scheme {other}:// is not https://, http:// (loopback) or file://"
            )),
        }
    }
}

/// `file://[localhost]/PATH`, percent-decoded.
fn file_path(rest: &str) -> Result<PathBuf, String> {
    let path = match rest.find('/') {
        Some(0) => rest,
        Some(at) if rest[..at].eq_ignore_ascii_case("localhost") => &rest[at..],
        _ => return Err("a file:// URL names an absolute path (file:///PATH)".to_string()),
    };
    let mut bytes = Vec::with_capacity(path.len());
    let mut rest = path.as_bytes();
    while let Some((&byte, after)) = rest.split_first() {
        if byte == b'%' {
            let hex = after
                .get(..2)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or("a % in a file:// URL is not followed by two hex digits")?;
            bytes.push(hex);
            rest = &after[2..];
        } else {
            bytes.push(byte);
            rest = after;
        }
    }
    use std::os::unix::ffi::OsStringExt;
    Ok(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
}

fn parse_http(scheme: Scheme, rest: &str, text: &str) -> Result<Url, String> {
    if let Some(bad) = rest
        .chars()
        .find(|ch| !ch.is_ascii() || ch.is_ascii_control() || *ch == ' ')
    {
        return Err(format!("{bad:?} in the URL (percent-encode it)"));
    }
    // Nothing after a fragment is sent.
    let rest = rest.split('#').next().unwrap_or_default();
    let (authority, target) = match rest.find(['/', '?']) {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err("credentials in the URL (user@host) are not taken".to_string());
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (ip, after) = bracketed
            .split_once(']')
            .ok_or("an IPv6 address without its closing ]")?;
        let ip: Ipv6Addr = ip
            .parse()
            .map_err(|_| format!("[{ip}] is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            after => Some(after.strip_prefix(':').ok_or("junk after the ]")?),
        };
        (Host::Ip(IpAddr::V6(ip)), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err("no host in the URL".to_string());
        }
        let host = match host.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) if host_name_is_valid(host) => Host::Name(host.to_ascii_lowercase()),
            Err(_) => return Err(format!("{host:?} is not a host name or an IP address")),
        };
        (host, port)
    };
    let port = match port {
        None => match scheme {
            Scheme::Https => 443,
            Scheme::Http => 80,
        },
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|port| *port != 0)
            .ok_or_else(|| format!("port {port:?} is not 1 to 65535"))?,
    };
    let target = match target {
        "" => "/".to_string(),
        query if query.starts_with('?') => format!("/{query}"),
        path => path.to_string(),
    };
    Ok(Url {
        scheme,
        host,
        port,
        target,
        text: text.to_string(),
    })
}

/// Letters, digits, `-`, `_` and `.`: a DNS name (as a certificate can
/// name it), and nothing that could end the `Host` header.
fn host_name_is_valid(host: &str) -> bool {
    host.len() <= 253
        && host
            .split('.')
            .all(|label| !label.is_empty() && label.len() <= 63)
        && host
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' || ch == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        match Location::parse(text) {
            Ok(Location::Http(url)) => url,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn https_urls_give_host_port_and_target() {
        let parsed = url("https://IdP.example.com/realms/x/jwks?v=1#frag");
        assert_eq!(parsed.scheme, Scheme::Https);
        assert_eq!(parsed.host, Host::Name("idp.example.com".to_string()));
        assert_eq!(parsed.port, 443);
        assert_eq!(parsed.target, "/realms/x/jwks?v=1");
        assert_eq!(parsed.host_header(), "idp.example.com");
        assert_eq!(
            parsed.to_string(),
            "https://IdP.example.com/realms/x/jwks?v=1#frag"
        );

        let parsed = url("https://10.0.0.7:8443");
        assert_eq!(parsed.host, Host::Ip("10.0.0.7".parse().unwrap()));
        assert_eq!((parsed.port, parsed.target.as_str()), (8443, "/"));
        assert_eq!(parsed.host_header(), "10.0.0.7:8443");

        let parsed = url("HTTPS://[2001:db8::1]:9443?keys");
        assert_eq!(parsed.host, Host::Ip("2001:db8::1".parse().unwrap()));
        assert_eq!(parsed.target, "/?keys");
        assert_eq!(parsed.host_header(), "[2001:db8::1]:9443");
    }

    #[test]
    fn plain_http_is_taken_from_loopback_only() {
        for loopback in [
            "http://localhost:8080/jwks",
            "http://127.0.0.1/jwks",
            "http://127.1.2.3:1/",
            "http://[::1]:8080/jwks",
        ] {
            let parsed = url(loopback);
            assert_eq!(parsed.scheme, Scheme::Http);
            assert!(parsed.is_loopback(), "{loopback}");
        }
        assert_eq!(url("http://localhost/").port, 80);
        for remote in [
            "http://idp.example.com/jwks",
            "http://10.0.0.1/jwks",
            "http://[2001:db8::1]/jwks",
            "http://localhost.example.com/jwks",
        ] {
            let error = Location::parse(remote).unwrap_err();
            assert!(error.contains("loopback"), "{remote}: {error}");
        }
    }

    #[test]
    fn files_are_paths_or_file_urls() {
        for (text, path) in [
            ("/etc/sluice/jwks.json", "/etc/sluice/jwks.json"),
            ("jwks.json", "jwks.json"),
            ("file:///etc/sluice/jwks.json", "/etc/sluice/jwks.json"),
            ("file://localhost/etc/jwks.json", "/etc/jwks.json"),
            ("file:///a%20b/c%2Fd", "/a b/c/d"),
            ("/data/odd://name.json", "/data/odd://name.json"),
        ] {
            assert_eq!(
                Location::parse(text),
                Ok(Location::File(PathBuf::from(path))),
                "{text}"
            );
        }
        assert!(Location::parse("file://host/jwks.json").is_err());
        assert!(Location::parse("file://relative").is_err());
        assert!(Location::parse("file:///bad%2").is_err());
    }

    #[test]
    fn what_could_bend_the_request_is_refused() {
        for bad in [
            "",
            "ftp://host/jwks",
            "https://",
            "https:///jwks",
            "https://user:secret@idp/jwks",
            "https://idp/jwks\r\nX-Injected: 1",
            "https://idp/a b",
            "https://idp/ключи",
            "https://idp:0/",
            "https://idp:65536/",
            "https://idp:port/",
            "https://[::1/",
            "https://[::1]x/",
            "https://[nope]/",
            "https://id p/",
            "https://idp\\x/",
            "https://a..b/",
        ] {
            assert!(Location::parse(bad).is_err(), "{bad:?}");
        }
    }
}
