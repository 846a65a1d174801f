//! The name a TLS client checks a server's certificate against: the host
//! it dialled.

use rustls::pki_types::ServerName;

/// The host of `HOST:PORT` (an IPv6 address without its brackets).
pub fn host_of(host_port: &str) -> &str {
    let host = host_port
        .rsplit_once(':')
        .map_or(host_port, |(host, _)| host);
    host.strip_prefix('[')
        .and_then(|host| host.strip_suffix(']'))
        .unwrap_or(host)
}

/// The name the certificate of the server at `host_port` must be for;
/// `Err` says why the host is not one.
pub fn server_name(host_port: &str) -> Result<ServerName<'static>, String> {
    let host = host_of(host_port);
    ServerName::try_from(host.to_string())
        .map_err(|_| format!("{host:?} is neither a DNS name nor an IP address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_of_an_address() {
        assert_eq!(host_of("broker.example:9093"), "broker.example");
        assert_eq!(host_of("127.0.0.1:9092"), "127.0.0.1");
        assert_eq!(host_of("[::1]:9092"), "::1");
        assert!(server_name("[::1]:9092").is_ok());
        assert!(server_name("bad host:1").is_err());
    }
}
