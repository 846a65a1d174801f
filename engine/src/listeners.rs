//! Where the broker listens: its addresses resolved before the shards start
//! (port 0 included), and the ready file that reports them.
//!
//! Every shard binds the native and the Kafka address itself, with
//! SO_REUSEPORT, so that connections spread over the shards. Port 0 would
//! give each shard a port of its own, so for port 0 one socket binds first
//! (SO_REUSEPORT, never listening: no connection is ever queued on it), the
//! port the kernel chose replaces 0 in the broker's config, the shards bind
//! that port beside it, and it is closed once they have: the port is never
//! free in between for another process to take. The admin listener is one
//! socket, without SO_REUSEPORT; it is bound here and handed to shard 0.
//!
//! The ready file ([`ListenAddrs::write_ready_file`]) is written once every
//! shard serves, whole or not at all, so that whoever started the broker on
//! port 0 (a test, a supervisor) learns where it listens.

use std::{
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::{BrokerConfig, EngineError};

/// How long start-up waits for a port to be let go. A broker killed with
/// SIGKILL holds its listening socket a little past its exit: io_uring tears
/// down the ring, and the files it references, after the process is gone.
const PORT_RELEASE_WAIT: Duration = Duration::from_secs(5);

/// How long one probe of a port waits for a connection.
const PORT_PROBE_TIMEOUT: Duration = Duration::from_millis(200);

/// Between two probes of a port that is still taken.
const PORT_PROBE_INTERVAL: Duration = Duration::from_millis(50);

/// The addresses a running broker listens on, ports resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenAddrs {
    /// The native protocol listener.
    pub native: SocketAddr,
    /// The first Kafka protocol listener, if there is one.
    pub kafka: Option<SocketAddr>,
    /// Every Kafka protocol listener, by name, in the config's order.
    pub kafka_listeners: Vec<(String, SocketAddr)>,
    /// The admin HTTP listener (`/metrics`), if there is one.
    pub admin: Option<SocketAddr>,
}

/// Why a ready file does not read back.
#[derive(Debug, thiserror::Error)]
pub enum ReadyFileError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}: {detail}")]
    Invalid { path: PathBuf, detail: String },
}

impl ListenAddrs {
    /// The ready file's text: one `key=value` line per listener, the keys
    /// of the config (`native_addr`, `kafka_addr`: the first Kafka
    /// listener, `admin_addr`), the value `HOST:PORT` or `off`; then
    /// `kafka_listeners`, every Kafka listener as `NAME://HOST:PORT`,
    /// comma-separated (empty: none).
    pub fn ready_file_text(&self) -> String {
        let or_off = |addr: Option<SocketAddr>| addr.map_or("off".to_string(), |a| a.to_string());
        let listeners = self
            .kafka_listeners
            .iter()
            .map(|(name, addr)| format!("{name}://{addr}"))
            .collect::<Vec<_>>()
            .join(",");
        format!(
            "native_addr={}\nkafka_addr={}\nadmin_addr={}\nkafka_listeners={listeners}\n",
            self.native,
            or_off(self.kafka),
            or_off(self.admin)
        )
    }

    /// The address of the Kafka listener named `name`.
    pub fn kafka_listener(&self, name: &str) -> Option<SocketAddr> {
        self.kafka_listeners
            .iter()
            .find(|(listener, _)| listener == name)
            .map(|(_, addr)| *addr)
    }

    /// Writes [`ListenAddrs::ready_file_text`] to `path` through a
    /// temporary file beside it and a rename, so that a reader finds the
    /// whole file or none.
    pub fn write_ready_file(&self, path: &Path) -> io::Result<()> {
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        std::fs::write(&temporary, self.ready_file_text())?;
        std::fs::rename(&temporary, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&temporary);
        })
    }

    /// Reads a ready file written by [`ListenAddrs::write_ready_file`].
    pub fn read_ready_file(path: &Path) -> Result<ListenAddrs, ReadyFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReadyFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |detail: String| ReadyFileError::Invalid {
            path: path.to_path_buf(),
            detail,
        };
        let value = |key: &str| -> Result<Option<SocketAddr>, ReadyFileError> {
            let line = text
                .lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
                .ok_or_else(|| invalid(format!("no {key}")))?;
            match line {
                "off" => Ok(None),
                addr => addr
                    .parse()
                    .map(Some)
                    .map_err(|error| invalid(format!("{key}={addr}: {error}"))),
            }
        };
        let kafka = value("kafka_addr")?;
        // A ready file of a release before named listeners has none.
        let kafka_listeners = match text
            .lines()
            .find_map(|line| line.strip_prefix("kafka_listeners="))
        {
            None => kafka
                .map(|addr| ("PLAINTEXT".to_string(), addr))
                .into_iter()
                .collect(),
            Some("") => Vec::new(),
            Some(list) => list
                .split(',')
                .map(|listener| {
                    let (name, addr) = listener
                        .split_once("://")
                        .ok_or_else(|| invalid(format!("kafka_listeners: {listener}")))?;
                    let addr = addr.parse().map_err(|error| {
                        invalid(format!("kafka_listeners: {listener}: {error}"))
                    })?;
                    Ok((name.to_string(), addr))
                })
                .collect::<Result<_, ReadyFileError>>()?,
        };
        Ok(ListenAddrs {
            native: value("native_addr")?.ok_or_else(|| invalid("native_addr=off".into()))?,
            kafka,
            kafka_listeners,
            admin: value("admin_addr")?,
        })
    }
}

/// Kafka listeners as the log says them: `NAME://HOST:PORT` each,
/// comma-separated, or `off`.
pub fn describe_kafka(listeners: &[crate::config::KafkaListener]) -> String {
    if listeners.is_empty() {
        return "off".to_string();
    }
    listeners
        .iter()
        .map(|listener| format!("{}://{}", listener.name, listener.addr))
        .collect::<Vec<_>>()
        .join(",")
}

/// The listeners' addresses, resolved before the shards start: ports held
/// for them, and the admin listener, until the shards have bound.
pub(crate) struct Listeners {
    pub addrs: ListenAddrs,
    /// Bound to the ports that were 0, with SO_REUSEPORT, not listening;
    /// dropping them lets the ports go.
    _held_ports: Vec<socket2::Socket>,
    admin: Option<std::net::TcpListener>,
}

impl Listeners {
    /// Resolves every address of `config`. A port of 0 is bound and held,
    /// and written into `config` in place of 0; any other port is checked
    /// to be free ([`check_port_free`]). The admin listener is bound.
    pub fn resolve(config: &mut BrokerConfig) -> Result<Listeners, EngineError> {
        let mut held_ports = Vec::new();
        let native = resolve_shared(&mut config.native_addr, &mut held_ports)?;
        let kafka_listeners = config
            .kafka_listeners
            .iter_mut()
            .map(|listener| {
                let addr = resolve_shared(&mut listener.addr, &mut held_ports)?;
                Ok((listener.name.clone(), addr))
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        let kafka = kafka_listeners.first().map(|(_, addr)| *addr);
        // SO_REUSEPORT would let two listeners share a port, each taking
        // some of the other's connections.
        let mut ports = vec![native];
        for (name, addr) in &kafka_listeners {
            let overlaps = |other: &SocketAddr| {
                other.port() == addr.port()
                    && (other.ip() == addr.ip()
                        || other.ip().is_unspecified()
                        || addr.ip().is_unspecified())
            };
            if ports.iter().any(overlaps) {
                return Err(EngineError::Listen {
                    addr: addr.to_string(),
                    source: io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!("the Kafka listener {name} names an address another listener has"),
                    ),
                });
            }
            ports.push(*addr);
        }
        let (admin, admin_addr) = match &mut config.admin_addr {
            Some(addr) => {
                let target = first_address(addr)?;
                if target.port() != 0 {
                    check_port_free(addr, target)?;
                }
                let listener = std::net::TcpListener::bind(target).map_err(listen_error(addr))?;
                let bound = listener.local_addr().map_err(listen_error(addr))?;
                if target.port() == 0 {
                    *addr = bound.to_string();
                }
                (Some(listener), Some(bound))
            }
            None => (None, None),
        };
        Ok(Listeners {
            addrs: ListenAddrs {
                native,
                kafka,
                kafka_listeners,
                admin: admin_addr,
            },
            _held_ports: held_ports,
            admin,
        })
    }

    /// The admin listener, for shard 0 to serve.
    pub fn take_admin(&mut self) -> Option<std::net::TcpListener> {
        self.admin.take()
    }
}

/// The ready file of [`crate::run`], if the config names one: removed before
/// the broker starts (a file left by a broker that was killed says nothing
/// of this one), written once it serves, removed when this is dropped.
pub(crate) struct ReadyFile(Option<PathBuf>);

impl ReadyFile {
    pub fn clear(path: Option<PathBuf>) -> Result<ReadyFile, EngineError> {
        if let Some(path) = &path {
            match std::fs::remove_file(path) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => {
                    return Err(ready_file_error(path, error));
                }
                _ => {}
            }
        }
        Ok(ReadyFile(path))
    }

    pub fn write(&self, addrs: &ListenAddrs) -> Result<(), EngineError> {
        match &self.0 {
            Some(path) => addrs
                .write_ready_file(path)
                .map_err(|error| ready_file_error(path, error)),
            None => Ok(()),
        }
    }
}

impl Drop for ReadyFile {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn ready_file_error(path: &Path, source: io::Error) -> EngineError {
    EngineError::ReadyFile {
        path: path.to_path_buf(),
        source,
    }
}

/// Resolves an address every shard binds with SO_REUSEPORT; a port of 0 is
/// chosen now and held in `held_ports`, and `addr` rewritten with it.
fn resolve_shared(
    addr: &mut String,
    held_ports: &mut Vec<socket2::Socket>,
) -> Result<SocketAddr, EngineError> {
    let target = first_address(addr)?;
    if target.port() != 0 {
        check_port_free(addr, target)?;
        return Ok(target);
    }
    let held = hold_port(target).map_err(listen_error(addr))?;
    let bound = held
        .local_addr()
        .map_err(listen_error(addr))?
        .as_socket()
        .ok_or_else(|| {
            listen_error(addr)(io::Error::other("the bound address is not an IP address"))
        })?;
    *addr = bound.to_string();
    held_ports.push(held);
    Ok(bound)
}

/// A socket bound to `target` (port 0: one the kernel chooses) with
/// SO_REUSEPORT, as the shards' listeners are, so that they can bind the
/// same port while it is held. It never listens, so it takes no connection.
fn hold_port(target: SocketAddr) -> io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(target),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_port(true)?;
    socket.bind(&target.into())?;
    Ok(socket)
}

/// The first address `addr` resolves to: the one a shard's listener binds.
fn first_address(addr: &str) -> Result<SocketAddr, EngineError> {
    addr.to_socket_addrs()
        .map_err(listen_error(addr))?
        .next()
        .ok_or_else(|| {
            listen_error(addr)(io::Error::new(
                io::ErrorKind::InvalidInput,
                "resolves to no address",
            ))
        })
}

fn listen_error(addr: &str) -> impl Fn(io::Error) -> EngineError + '_ {
    move |source| EngineError::Listen {
        addr: addr.to_string(),
        source,
    }
}

/// Every shard listens with SO_REUSEPORT, which would also let a second
/// broker share the port unnoticed, splitting connections between two sets
/// of data. So: while anything accepts connections there, wait (a killed
/// broker's socket goes away by itself), and refuse if it does not go. A
/// plain bind is no test: the sockets a killed broker leaves closing make it
/// fail for a while.
fn check_port_free(addr: &str, target: SocketAddr) -> Result<(), EngineError> {
    let mut probe = target;
    if probe.ip().is_unspecified() {
        probe.set_ip(match probe.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    let deadline = Instant::now() + PORT_RELEASE_WAIT;
    while std::net::TcpStream::connect_timeout(&probe, PORT_PROBE_TIMEOUT).is_ok() {
        if Instant::now() >= deadline {
            return Err(listen_error(addr)(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("something still listens there after {PORT_RELEASE_WAIT:?}"),
            )));
        }
        std::thread::sleep(PORT_PROBE_INTERVAL);
    }
    Ok(())
}

/// The admin listener as a glommio listener, on the shard that serves it.
pub(crate) fn admin_listener(listener: std::net::TcpListener) -> glommio::net::TcpListener {
    use std::os::fd::{FromRawFd, IntoRawFd};
    // SAFETY: the descriptor of a bound, listening socket, whose ownership
    // `into_raw_fd` gave up.
    unsafe { glommio::net::TcpListener::from_raw_fd(listener.into_raw_fd()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_0_resolves_to_one_port_that_several_sockets_share() {
        let mut addr = "127.0.0.1:0".to_string();
        let mut held = Vec::new();
        let resolved = resolve_shared(&mut addr, &mut held).unwrap();
        assert_ne!(resolved.port(), 0);
        assert_eq!(addr, resolved.to_string());
        // What each shard does: bind the port with SO_REUSEPORT, and listen.
        let shards: Vec<socket2::Socket> = (0..3)
            .map(|_| {
                let socket = hold_port(resolved).expect("a shard binds the held port");
                socket.listen(16).unwrap();
                socket
            })
            .collect();
        drop(held);
        std::net::TcpStream::connect(resolved).expect("the shards accept");
        // Another port-0 socket never gets the same port.
        let other = hold_port("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_ne!(other.local_addr().unwrap().as_socket().unwrap(), resolved);
        drop(shards);
    }

    #[test]
    fn the_ready_file_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ready");
        let addrs = ListenAddrs {
            native: "127.0.0.1:40001".parse().unwrap(),
            kafka: Some("[::1]:40002".parse().unwrap()),
            kafka_listeners: vec![
                ("PLAINTEXT".to_string(), "[::1]:40002".parse().unwrap()),
                ("SASL_SSL".to_string(), "127.0.0.1:40003".parse().unwrap()),
            ],
            admin: None,
        };
        addrs.write_ready_file(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "native_addr=127.0.0.1:40001\nkafka_addr=[::1]:40002\nadmin_addr=off\n\
             kafka_listeners=PLAINTEXT://[::1]:40002,SASL_SSL://127.0.0.1:40003\n"
        );
        assert_eq!(ListenAddrs::read_ready_file(&path).unwrap(), addrs);
        assert_eq!(
            addrs.kafka_listener("SASL_SSL"),
            Some("127.0.0.1:40003".parse().unwrap())
        );
        // A ready file without the listener list: the one Kafka address.
        std::fs::write(
            &path,
            "native_addr=127.0.0.1:40001\nkafka_addr=[::1]:40002\nadmin_addr=off\n",
        )
        .unwrap();
        let read = ListenAddrs::read_ready_file(&path).unwrap();
        assert_eq!(read.kafka_listeners, addrs.kafka_listeners[..1]);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
        std::fs::write(&path, "native_addr=off\n").unwrap();
        assert!(ListenAddrs::read_ready_file(&path).is_err());
    }
}
