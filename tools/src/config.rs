//! The broker's settings from four layers: flags win over `SLUICE_*`
//! environment variables, which win over the TOML file, which wins over the
//! defaults of [`BrokerConfig`].
//!
//! Every layer has the same keys, the names of [`BrokerConfig`]'s fields
//! (durations in milliseconds, with `_ms` appended); an environment variable
//! is the key in capitals after `SLUICE_`. A key the file does not know is
//! an error, so a typo is not silently a default.

use std::{collections::HashMap, path::PathBuf, str::FromStr, time::Duration};

use serde::Deserialize;
use sluice_engine::{
    sasl::SaslSettings,
    tls::{ClientAuth, TlsSettings},
    BrokerConfig, KafkaListener,
};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{variable}={value:?}: {message}")]
    Environment {
        variable: String,
        value: String,
        message: String,
    },
    #[error("voters = {value}: {error}")]
    Voters {
        value: String,
        error: sluice_engine::VotersError,
    },
    #[error("{key} = {value}: {message}")]
    Invalid {
        key: &'static str,
        value: String,
        message: &'static str,
    },
    #[error("{key} = {value}: {message}")]
    Refused {
        key: &'static str,
        value: String,
        message: String,
    },
}

/// The prefix of the environment variables that configure the broker.
pub const ENV_PREFIX: &str = "SLUICE_";

macro_rules! config_layer {
    ($($(#[$doc:meta])* $key:ident: $type:ty,)*) => {
        /// One layer of settings; `None` leaves the key to the layers below.
        #[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct ConfigLayer {
            $($(#[$doc])* pub $key: Option<$type>,)*
        }

        impl ConfigLayer {
            /// Every key, as written in the file.
            #[cfg(test)]
            pub const KEYS: &'static [&'static str] = &[$(stringify!($key)),*];

            /// The layer the `SLUICE_*` variables of `env` make. Variables
            /// that name no key are left alone (`SLUICE_BROKERS` is the
            /// client commands').
            pub fn from_env(env: &HashMap<String, String>) -> Result<ConfigLayer, ConfigError> {
                Ok(ConfigLayer {
                    $($key: env_value(env, stringify!($key))?,)*
                })
            }

            /// This layer over `lower`: its keys win where it has them.
            pub fn over(self, lower: ConfigLayer) -> ConfigLayer {
                ConfigLayer {
                    $($key: self.$key.or(lower.$key),)*
                }
            }
        }
    };
}

config_layer! {
    /// This node's id in its cluster, 0 to 2^31 - 1 (Kafka's `node.id`).
    node_id: u32,
    /// The older name of `node_id`.
    broker_id: u32,
    /// HOST:PORT where this node listens for other nodes.
    peer_addr: String,
    /// The controller quorum, `ID@HOST:PORT[,...]`; absent: this node alone.
    voters: String,
    /// The cluster a new data directory joins (22 characters of URL-safe
    /// base64); absent: a new cluster.
    cluster_id: String,
    /// This broker's rack (Kafka's `broker.rack`).
    rack: String,
    /// Where topics and metadata live.
    data_dir: PathBuf,
    /// More directories for partitions, one per disk, comma-separated
    /// (Kafka's `log.dirs`).
    log_dirs: String,
    /// HOST:PORT of the native protocol listener; `SSL://HOST:PORT`
    /// serves it over TLS with the broker's certificate.
    native_addr: String,
    /// The Kafka protocol listeners, as Kafka's `listeners`: one or more
    /// `NAME://HOST:PORT`, comma-separated, or `off`. The name is a
    /// security protocol (`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`,
    /// `SASL_SSL`) or one `listener_security_protocol_map` gives one; a
    /// lone `HOST:PORT` is a `PLAINTEXT` listener.
    kafka_addr: String,
    /// The addresses Kafka clients are told to connect to, as Kafka's
    /// `advertised.listeners`: `NAME://HOST:PORT` of some listeners,
    /// comma-separated (the others advertise the address they listen on);
    /// a lone `HOST:PORT` with a lone listener.
    kafka_advertised_addr: String,
    /// The security protocol of each listener named otherwise, as Kafka's
    /// `listener.security.protocol.map`: `NAME:PROTOCOL`, comma-separated.
    listener_security_protocol_map: String,
    /// The certificate chain of an `SSL://` Kafka listener, PEM, leaf
    /// first; read again when it changes.
    ssl_certificate_file: PathBuf,
    /// Its private key, PEM.
    ssl_key_file: PathBuf,
    /// The authorities client certificates must chain to, PEM (mutual
    /// TLS).
    ssl_client_ca_file: PathBuf,
    /// Whether clients must present a certificate (Kafka's
    /// `ssl.client.auth`): `none` (the default), `requested`, `required`.
    ssl_client_auth: String,
    /// This node's certificate on the peer port (PEM; for the host of
    /// `peer_addr`, with extended key usages serverAuth and clientAuth):
    /// with `peer_ssl_key_file` and `peer_ssl_ca_file`, nodes speak to
    /// each other over mutual TLS only.
    peer_ssl_certificate_file: PathBuf,
    /// Its private key, PEM.
    peer_ssl_key_file: PathBuf,
    /// The authorities the other nodes' certificates must chain to, PEM.
    peer_ssl_ca_file: PathBuf,
    /// The users of a `SASL_PLAINTEXT://` or `SASL_SSL://` Kafka listener
    /// (mechanism PLAIN): one `NAME:PASSWORD` per line.
    sasl_plain_users_file: PathBuf,
    /// The public keys OAUTHBEARER tokens are signed with (a JWKS JSON
    /// file, RS256 and ES256 keys); given, a SASL listener takes
    /// OAUTHBEARER (Kafka's `sasl.oauthbearer.jwks.endpoint.url`, a file).
    sasl_oauthbearer_jwks_file: PathBuf,
    /// Where the OAUTHBEARER keys come from (Kafka's
    /// `sasl.oauthbearer.jwks.endpoint.url`): `https://...`, `http://` to
    /// a loopback host only, or a file (`file:///PATH` or a path, as
    /// `sasl_oauthbearer_jwks_file`).
    sasl_oauthbearer_jwks_endpoint_url: String,
    /// How often the keys of a URL are fetched again (Kafka's
    /// `sasl.oauthbearer.jwks.endpoint.refresh.ms`, default an hour; at
    /// least 10 s).
    sasl_oauthbearer_jwks_endpoint_refresh_ms: u64,
    /// The certificate authorities an `https://` JWKS endpoint must chain
    /// to (PEM); absent: the system's.
    sasl_oauthbearer_jwks_endpoint_ca_file: PathBuf,
    /// The `iss` a token must have, if set.
    sasl_oauthbearer_expected_issuer: String,
    /// An `aud` a token must have, if set.
    sasl_oauthbearer_expected_audience: String,
    /// The claim that names the principal (default `sub`).
    sasl_oauthbearer_sub_claim_name: String,
    /// `acl`: requests are authorized by the ACLs in the cluster's
    /// metadata, denied where none allows (Kafka's `authorizer.class.name`
    /// set to its standard authorizer); `none` (the default): everything is
    /// allowed.
    authorizer: String,
    /// Principals allowed everything, `;`-separated (`User:admin;User:ops`).
    super_users: String,
    /// Whether a resource no ACL names is open to everyone (default false).
    allow_everyone_if_no_acl_found: bool,
    /// HOST:PORT of the admin HTTP listener (`/metrics`), or `off`;
    /// `https://HOST:PORT` serves it over TLS with the broker's
    /// certificate (`ssl_certificate_file`).
    admin_addr: String,
    /// A file written once the broker serves, with the addresses it
    /// listens on (a port of 0 in an address: one the kernel chooses).
    ready_file: PathBuf,
    /// Whether Kafka Metadata and Produce create unknown topics.
    auto_create_topics: bool,
    /// Partitions of a topic created automatically.
    auto_create_partitions: u32,
    /// Shards, one per core; absent: every available core.
    cores: usize,
    default_partitions: u32,
    connection_idle_timeout_ms: u64,
    /// How long a SASL authentication holds before the client must
    /// authenticate again (Kafka's `connections.max.reauth.ms`); 0 (the
    /// default): for the connection's life.
    connections_max_reauth_ms: u64,
    /// Samples of the window client quotas are metered over (Kafka's
    /// `quota.window.num`, default 11).
    quota_window_num: u32,
    /// Each sample's length (Kafka's `quota.window.size.seconds`, default
    /// 1000 ms).
    quota_window_size_ms: u64,
    /// Connections one IP address may hold open (Kafka's
    /// `max.connections.per.ip`); 0 (the default): no limit.
    connections_max_per_ip: usize,
    partial_frame_timeout_ms: u64,
    connections_max: usize,
    in_flight_per_connection_max: usize,
    frame_bytes_max: usize,
    /// How long a new consumer group's first rebalance waits for members.
    group_initial_rebalance_delay_ms: u64,
    /// The shortest session timeout a classic group member may ask for
    /// (Kafka's `group.min.session.timeout.ms`).
    group_min_session_timeout_ms: u64,
    /// The longest session timeout a classic group member may ask for
    /// (Kafka's `group.max.session.timeout.ms`).
    group_max_session_timeout_ms: u64,
    /// Bytes appended to an offsets partition before it is compacted.
    group_offsets_compact_bytes: u64,
    /// Heartbeat interval given to consumer-protocol (KIP-848) members.
    group_consumer_heartbeat_interval_ms: u64,
    /// Session timeout of consumer-protocol (KIP-848) members.
    group_consumer_session_timeout_ms: u64,
    /// How often retention is applied.
    retention_check_interval_ms: u64,
    /// How often compacted partitions are looked at for cleaning.
    cleaner_check_interval_ms: u64,
    /// The pace of the cleaner's I/O, bytes/s; 0: unpaced.
    cleaner_bytes_per_s: u64,
    /// The pace of file deletion, bytes/s; 0: at once.
    delete_bytes_per_s: u64,
    /// Whether the controller moves leadership back to preferred replicas
    /// (Kafka's `auto.leader.rebalance.enable`).
    auto_leader_rebalance: bool,
    /// How often the controller checks leader balance.
    leader_imbalance_check_interval_ms: u64,
    /// Replicas of a topic created without a replication factor (Kafka's
    /// `default.replication.factor`).
    default_replication_factor: u16,
    /// `min.insync.replicas` of a topic created without it (Kafka's
    /// broker-level `min.insync.replicas`).
    min_insync_replicas: u32,
    /// Replicas of each partition of `__consumer_offsets` (Kafka's
    /// `offsets.topic.replication.factor`) [default:
    /// `default_replication_factor`].
    offsets_topic_replication_factor: u16,
    /// Replicas of each partition of `__transaction_state` (Kafka's
    /// `transaction.state.log.replication.factor`) [default:
    /// `default_replication_factor`].
    transaction_state_log_replication_factor: u16,
    /// The transaction protocol clients are told to use (Kafka's
    /// `transaction.version`): 2 (KIP-890 part 2, the default) or 0/1
    /// (the classic protocol).
    transaction_version: i16,
    /// Which replica a Kafka consumer reads from (Kafka's
    /// `replica.selector.class`): `leader`, or `rack-aware` (also Kafka's
    /// class name `org.apache.kafka.common.replica.RackAwareReplicaSelector`).
    replica_selector: String,
}

/// Where OAUTHBEARER's keys come from: the file, or the URL (which may
/// name a file too), and how a URL's are fetched.
fn jwks_settings(
    file: Option<PathBuf>,
    url: Option<String>,
    refresh_ms: Option<u64>,
    ca_file: Option<PathBuf>,
) -> Result<Option<sluice_engine::sasl::jwks::JwksSettings>, ConfigError> {
    use sluice_engine::sasl::jwks::{refresh, JwksSettings, Location};
    let location = match (file, url) {
        (None, None) => None,
        (Some(file), None) => Some(Location::File(file)),
        (None, Some(url)) => {
            Some(
                Location::parse(&url).map_err(|message| ConfigError::Refused {
                    key: "sasl_oauthbearer_jwks_endpoint_url",
                    value: url.clone(),
                    message,
                })?,
            )
        }
        (Some(_), Some(url)) => {
            return Err(ConfigError::Invalid {
                key: "sasl_oauthbearer_jwks_endpoint_url",
                value: url,
                message: "sasl_oauthbearer_jwks_file is given too: one of them",
            })
        }
    };
    let refresh_interval = match refresh_ms.map(Duration::from_millis) {
        None => refresh::REFRESH_INTERVAL_DEFAULT,
        Some(interval) if interval >= refresh::REFRESH_INTERVAL_MIN => interval,
        Some(interval) => {
            return Err(ConfigError::Invalid {
                key: "sasl_oauthbearer_jwks_endpoint_refresh_ms",
                value: interval.as_millis().to_string(),
                message: "must be at least 10000 (10 s)",
            })
        }
    };
    let Some(location) = location else {
        return Ok(None);
    };
    if ca_file.is_some()
        && !matches!(&location, Location::Http(url) if url.scheme == sluice_engine::sasl::jwks::url::Scheme::Https)
    {
        return Err(ConfigError::Invalid {
            key: "sasl_oauthbearer_jwks_endpoint_ca_file",
            value: ca_file.unwrap_or_default().display().to_string(),
            message: "is for an https:// sasl_oauthbearer_jwks_endpoint_url",
        });
    }
    Ok(Some(JwksSettings {
        location,
        ca_file,
        refresh_interval,
    }))
}

fn env_value<T: FromStr>(env: &HashMap<String, String>, key: &str) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    let variable = format!("{ENV_PREFIX}{}", key.to_uppercase());
    let Some(value) = env.get(&variable) else {
        return Ok(None);
    };
    value
        .trim()
        .parse()
        .map(Some)
        .map_err(|error: T::Err| ConfigError::Environment {
            variable,
            value: value.clone(),
            message: error.to_string(),
        })
}

impl ConfigLayer {
    /// The layer a TOML file's text makes.
    pub fn from_toml(text: &str, path: &std::path::Path) -> Result<ConfigLayer, ConfigError> {
        toml::from_str(text).map_err(|error| ConfigError::Parse {
            path: path.to_path_buf(),
            message: error.message().to_string(),
        })
    }

    pub fn from_file(path: &std::path::Path) -> Result<ConfigLayer, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        ConfigLayer::from_toml(&text, path)
    }

    /// The defaults with this layer's keys set, checked.
    pub fn apply(self, defaults: BrokerConfig) -> Result<BrokerConfig, ConfigError> {
        let mut config = defaults;
        let node_id = match (self.node_id, self.broker_id) {
            (Some(node_id), Some(broker_id)) if node_id != broker_id => {
                return Err(ConfigError::Invalid {
                    key: "broker_id",
                    value: broker_id.to_string(),
                    message: "is the older name of node_id, which says otherwise",
                })
            }
            (node_id, broker_id) => node_id.or(broker_id),
        };
        if let Some(node_id) = node_id {
            let node_id = i32::try_from(node_id).map_err(|_| ConfigError::Invalid {
                key: "node_id",
                value: node_id.to_string(),
                message: "must be 0 to 2147483647",
            })?;
            config.node_id = sluice_storage::NodeId(node_id);
        }
        if let Some(peer_addr) = self.peer_addr {
            config.peer_addr = host_port("peer_addr", peer_addr)?;
        }
        if let Some(voters) = self.voters {
            config.voters =
                sluice_engine::Voter::parse_list(&voters).map_err(|error| ConfigError::Voters {
                    value: voters.clone(),
                    error,
                })?;
        }
        if let Some(cluster_id) = self.cluster_id {
            if !sluice_engine::node_identity::is_cluster_id(&cluster_id) {
                return Err(ConfigError::Invalid {
                    key: "cluster_id",
                    value: cluster_id,
                    message: "must be 22 characters of URL-safe base64",
                });
            }
            config.cluster_id = Some(cluster_id);
        }
        if let Some(rack) = self.rack {
            config.rack = Some(rack);
        }
        if let Some(data_dir) = self.data_dir {
            config.data_dir = data_dir;
        }
        if let Some(log_dirs) = self.log_dirs {
            config.log_dirs = log_dirs
                .split(',')
                .map(str::trim)
                .filter(|dir| !dir.is_empty())
                .map(PathBuf::from)
                .collect();
        }
        if let Some(native_addr) = self.native_addr {
            let (protocol, addr) = listener("native_addr", native_addr.clone())?;
            config.native_tls = match protocol {
                SecurityProtocol::Plaintext => false,
                SecurityProtocol::Ssl => true,
                _ => {
                    return Err(ConfigError::Invalid {
                        key: "native_addr",
                        value: native_addr,
                        message: "the native protocol is PLAINTEXT:// or SSL:// (it has no SASL)",
                    })
                }
            };
            config.native_addr = host_port("native_addr", addr)?;
        }
        let map = protocol_map(self.listener_security_protocol_map.as_deref())?;
        if let Some(kafka_addr) = self.kafka_addr {
            config.kafka_listeners = kafka_listeners(&kafka_addr, &map)?;
        } else if !map.is_empty() {
            // The defaults' listener, under the map.
            config.kafka_listeners = config
                .kafka_listeners
                .iter()
                .map(|listener| format!("{}://{}", listener.name, listener.addr))
                .map(|listener| kafka_listeners(&listener, &map))
                .collect::<Result<Vec<_>, _>>()?
                .concat();
        }
        if let Some(advertised) = self.kafka_advertised_addr {
            advertise(&mut config.kafka_listeners, &advertised)?;
        }
        let client_auth = match self.ssl_client_auth {
            None => ClientAuth::None,
            Some(name) => name.parse().map_err(|message| ConfigError::Invalid {
                key: "ssl_client_auth",
                value: name.clone(),
                message,
            })?,
        };
        if let Some(admin_addr) = self.admin_addr {
            let (tls, addr) = match admin_addr.split_once("://") {
                None => (false, admin_addr.as_str()),
                Some((scheme, addr)) if scheme.eq_ignore_ascii_case("https") => (true, addr),
                Some((scheme, addr)) if scheme.eq_ignore_ascii_case("http") => (false, addr),
                Some(_) => {
                    return Err(ConfigError::Invalid {
                        key: "admin_addr",
                        value: admin_addr,
                        message: "expected HOST:PORT, http://HOST:PORT or https://HOST:PORT",
                    })
                }
            };
            config.admin_tls = tls;
            config.admin_addr = if addr == "off" {
                None
            } else {
                Some(host_port("admin_addr", addr.to_string())?)
            };
        }
        let tls = config.admin_tls
            || config.native_tls
            || config
                .kafka_listeners
                .iter()
                .any(|listener| listener.protocol.tls());
        let sasl = config
            .kafka_listeners
            .iter()
            .any(|listener| listener.protocol.sasl());
        let listener_value = || sluice_engine::describe_kafka_listeners(&config.kafka_listeners);
        config.tls = match (tls, self.ssl_certificate_file, self.ssl_key_file) {
            (false, ..) => None,
            (true, Some(certificate), Some(key)) => Some(TlsSettings {
                certificate,
                key,
                client_ca: self.ssl_client_ca_file,
                client_auth,
            }),
            (true, ..) => {
                return Err(ConfigError::Invalid {
                    key: "kafka_addr",
                    value: listener_value(),
                    message: "a TLS listener (SSL://, SASL_SSL://, an https:// admin_addr) needs ssl_certificate_file and ssl_key_file",
                })
            }
        };
        config.peer_tls = match (
            self.peer_ssl_certificate_file,
            self.peer_ssl_key_file,
            self.peer_ssl_ca_file,
        ) {
            (None, None, None) => None,
            (Some(certificate), Some(key), Some(ca)) => Some(sluice_engine::tls::PeerTlsSettings {
                certificate,
                key,
                ca,
            }),
            (certificate, key, ca) => {
                let given = [
                    ("peer_ssl_certificate_file", certificate.is_some()),
                    ("peer_ssl_key_file", key.is_some()),
                    ("peer_ssl_ca_file", ca.is_some()),
                ];
                return Err(ConfigError::Invalid {
                    key: "peer_ssl_certificate_file",
                    value: given
                        .iter()
                        .filter(|(_, given)| *given)
                        .map(|(key, _)| *key)
                        .collect::<Vec<_>>()
                        .join(", "),
                    message: "peer TLS needs all three of peer_ssl_certificate_file, peer_ssl_key_file and peer_ssl_ca_file",
                });
            }
        };
        let jwks = jwks_settings(
            self.sasl_oauthbearer_jwks_file,
            self.sasl_oauthbearer_jwks_endpoint_url,
            self.sasl_oauthbearer_jwks_endpoint_refresh_ms,
            self.sasl_oauthbearer_jwks_endpoint_ca_file,
        )?;
        let oauthbearer = jwks.map(|jwks| sluice_engine::sasl::oauthbearer::OAuthSettings {
            jwks,
            expected_issuer: self.sasl_oauthbearer_expected_issuer.clone(),
            expected_audience: self.sasl_oauthbearer_expected_audience.clone(),
            sub_claim: self
                .sasl_oauthbearer_sub_claim_name
                .clone()
                .unwrap_or_else(|| "sub".to_string()),
        });
        config.kafka_sasl = match (sasl, self.sasl_plain_users_file, oauthbearer) {
            (false, _, _) => None,
            (true, None, None) => return Err(ConfigError::Invalid {
                key: "kafka_addr",
                value: listener_value(),
                message:
                    "a SASL listener (SASL_PLAINTEXT://, SASL_SSL://) needs sasl_plain_users_file, or sasl_oauthbearer_jwks_endpoint_url (or sasl_oauthbearer_jwks_file)",
            }),
            (true, plain_users, oauthbearer) => Some(SaslSettings {
                plain_users,
                oauthbearer,
            }),
        };
        let authorizer = match self.authorizer.as_deref() {
            None | Some("none") => false,
            Some("acl") => true,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    key: "authorizer",
                    value: other.to_string(),
                    message: "expected acl or none",
                })
            }
        };
        let super_users: Vec<String> = self
            .super_users
            .as_deref()
            .unwrap_or_default()
            .split(';')
            .map(str::trim)
            .filter(|principal| !principal.is_empty())
            .map(str::to_string)
            .collect();
        if let Some(bad) = super_users
            .iter()
            .find(|principal| !matches!(principal.split_once(':'), Some((kind, name)) if !kind.is_empty() && !name.is_empty()))
        {
            return Err(ConfigError::Invalid {
                key: "super_users",
                value: bad.clone(),
                message: "a principal is TYPE:NAME, e.g. User:admin",
            });
        }
        config.authorizer = authorizer.then(|| sluice_engine::acl::AuthorizerSettings {
            super_users,
            allow_everyone_if_no_acl_found: self.allow_everyone_if_no_acl_found.unwrap_or(false),
        });
        if let Some(path) = self.ready_file {
            config.ready_file = Some(path);
        }
        if let Some(auto_create) = self.auto_create_topics {
            config.auto_create_topics = auto_create;
        }
        if let Some(partitions) = self.auto_create_partitions {
            config.auto_create_partitions =
                positive("auto_create_partitions", partitions as usize)? as u32;
        }
        if let Some(cores) = self.cores {
            config.cores = Some(positive("cores", cores)?);
        }
        if let Some(partitions) = self.default_partitions {
            config.default_partitions = positive("default_partitions", partitions as usize)? as u32;
        }
        if let Some(samples) = self.quota_window_num {
            config.quota_window.samples = positive("quota_window_num", samples as usize)? as u32;
        }
        if let Some(ms) = self.quota_window_size_ms {
            config.quota_window.size =
                Duration::from_millis(positive("quota_window_size_ms", ms as usize)? as u64);
        }
        if let Some(max) = self.connections_max_per_ip {
            config.connections_max_per_ip = max;
        }
        if let Some(ms) = self.connections_max_reauth_ms {
            config.connections_max_reauth = (ms > 0).then(|| Duration::from_millis(ms));
        }
        if let Some(ms) = self.connection_idle_timeout_ms {
            config.connection_idle_timeout =
                Duration::from_millis(positive("connection_idle_timeout_ms", ms as usize)? as u64);
        }
        if let Some(ms) = self.partial_frame_timeout_ms {
            config.partial_frame_timeout =
                Duration::from_millis(positive("partial_frame_timeout_ms", ms as usize)? as u64);
        }
        if let Some(ms) = self.group_initial_rebalance_delay_ms {
            config.group_initial_rebalance_delay = Duration::from_millis(ms);
        }
        if let Some(ms) = self.group_min_session_timeout_ms {
            config.group_min_session_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = self.group_max_session_timeout_ms {
            config.group_max_session_timeout = Duration::from_millis(ms);
        }
        if config.group_min_session_timeout > config.group_max_session_timeout {
            return Err(ConfigError::Invalid {
                key: "group_min_session_timeout_ms",
                value: config.group_min_session_timeout.as_millis().to_string(),
                message: "must not be more than group_max_session_timeout_ms",
            });
        }
        if let Some(ms) = self.group_consumer_heartbeat_interval_ms {
            config.group_consumer_heartbeat_interval = Duration::from_millis(positive(
                "group_consumer_heartbeat_interval_ms",
                ms as usize,
            )? as u64);
        }
        if let Some(ms) = self.group_consumer_session_timeout_ms {
            config.group_consumer_session_timeout = Duration::from_millis(positive(
                "group_consumer_session_timeout_ms",
                ms as usize,
            )? as u64);
        }
        if let Some(bytes) = self.group_offsets_compact_bytes {
            config.group_offsets_compact_bytes =
                positive("group_offsets_compact_bytes", bytes as usize)? as u64;
        }
        if let Some(connections) = self.connections_max {
            config.connections_max = positive("connections_max", connections)?;
        }
        if let Some(in_flight) = self.in_flight_per_connection_max {
            config.in_flight_per_connection_max =
                positive("in_flight_per_connection_max", in_flight)?;
        }
        if let Some(bytes) = self.frame_bytes_max {
            config.frame_bytes_max = positive("frame_bytes_max", bytes)?;
        }
        if let Some(ms) = self.retention_check_interval_ms {
            config.retention_check_interval =
                Duration::from_millis(positive("retention_check_interval_ms", ms as usize)? as u64);
        }
        if let Some(ms) = self.cleaner_check_interval_ms {
            config.cleaner_check_interval =
                Duration::from_millis(positive("cleaner_check_interval_ms", ms as usize)? as u64);
        }
        if let Some(bytes_per_s) = self.cleaner_bytes_per_s {
            config.cleaner_bytes_per_s = bytes_per_s;
        }
        if let Some(bytes_per_s) = self.delete_bytes_per_s {
            config.delete_bytes_per_s = bytes_per_s;
        }
        if let Some(rebalance) = self.auto_leader_rebalance {
            config.auto_leader_rebalance = rebalance;
        }
        if let Some(ms) = self.leader_imbalance_check_interval_ms {
            config.leader_imbalance_check_interval = Duration::from_millis(positive(
                "leader_imbalance_check_interval_ms",
                ms as usize,
            )? as u64);
        }
        if let Some(factor) = self.default_replication_factor {
            config.default_replication_factor =
                positive("default_replication_factor", usize::from(factor))? as u16;
        }
        if let Some(min) = self.min_insync_replicas {
            config.min_insync_replicas = positive("min_insync_replicas", min as usize)? as u32;
        }
        if let Some(factor) = self.offsets_topic_replication_factor {
            config.offsets_topic_replication_factor =
                Some(positive("offsets_topic_replication_factor", usize::from(factor))? as u16);
        }
        if let Some(factor) = self.transaction_state_log_replication_factor {
            config.transaction_state_log_replication_factor = Some(positive(
                "transaction_state_log_replication_factor",
                usize::from(factor),
            )? as u16);
        }
        if let Some(version) = self.transaction_version {
            if !(0..=sluice_engine::TRANSACTION_VERSION_MAX).contains(&version) {
                return Err(ConfigError::Invalid {
                    key: "transaction_version",
                    value: version.to_string(),
                    message: "expected 0, 1 or 2",
                });
            }
            config.transaction_version = version;
        }
        if let Some(selector) = self.replica_selector {
            config.replica_selector = selector.parse().map_err(|message| ConfigError::Invalid {
                key: "replica_selector",
                value: selector.clone(),
                message,
            })?;
        }
        Ok(config)
    }
}

pub use sluice_engine::SecurityProtocol;

/// `[PROTOCOL://]HOST:PORT`: the security protocol (PLAINTEXT without a
/// prefix) and the address.
pub fn listener(
    key: &'static str,
    value: String,
) -> Result<(SecurityProtocol, String), ConfigError> {
    let Some((protocol, addr)) = value.split_once("://") else {
        return Ok((SecurityProtocol::Plaintext, value));
    };
    let Some(protocol) = SecurityProtocol::from_name(protocol) else {
        return Err(ConfigError::Invalid {
            key,
            value,
            message:
                "expected PLAINTEXT://, SSL://, SASL_PLAINTEXT:// or SASL_SSL:// before HOST:PORT",
        });
    };
    Ok((protocol, addr.to_string()))
}

/// `listener_security_protocol_map`: each listener name (upper case) and
/// its protocol.
fn protocol_map(text: Option<&str>) -> Result<Vec<(String, SecurityProtocol)>, ConfigError> {
    let mut map: Vec<(String, SecurityProtocol)> = Vec::new();
    for entry in text.unwrap_or_default().split(',').map(str::trim) {
        if entry.is_empty() {
            continue;
        }
        let invalid = |message| ConfigError::Invalid {
            key: "listener_security_protocol_map",
            value: entry.to_string(),
            message,
        };
        let (name, protocol) = entry
            .split_once(':')
            .ok_or_else(|| invalid("expected NAME:PROTOCOL, e.g. INTERNAL:SASL_SSL"))?;
        let protocol = SecurityProtocol::from_name(protocol.trim()).ok_or_else(|| {
            invalid("the protocol is one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL")
        })?;
        let name = listener_name(name.trim()).map_err(invalid)?;
        if map.iter().any(|(known, _)| *known == name) {
            return Err(invalid("names a listener twice"));
        }
        map.push((name, protocol));
    }
    Ok(map)
}

/// A listener name, upper case (Kafka's are case-insensitive): letters,
/// digits, `_` and `-`.
fn listener_name(name: &str) -> Result<String, &'static str> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-');
    if !valid {
        return Err("a listener name is 1 to 64 letters, digits, '_' or '-'");
    }
    Ok(name.to_ascii_uppercase())
}

/// `kafka_addr`: `off`, or the listeners, each `[NAME://]HOST:PORT`.
fn kafka_listeners(
    text: &str,
    map: &[(String, SecurityProtocol)],
) -> Result<Vec<KafkaListener>, ConfigError> {
    if text.trim() == "off" {
        return Ok(Vec::new());
    }
    let mut listeners: Vec<KafkaListener> = Vec::new();
    for entry in text.split(',').map(str::trim) {
        let invalid = |message| ConfigError::Invalid {
            key: "kafka_addr",
            value: entry.to_string(),
            message,
        };
        let (name, addr) = match entry.split_once("://") {
            Some((name, addr)) => (listener_name(name).map_err(invalid)?, addr),
            None => ("PLAINTEXT".to_string(), entry),
        };
        let protocol = map
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, protocol)| *protocol)
            .or_else(|| SecurityProtocol::from_name(&name))
            .ok_or_else(|| {
                invalid("a listener not named after its security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL) needs one in listener_security_protocol_map")
            })?;
        if listeners.iter().any(|listener| listener.name == name) {
            return Err(invalid("two Kafka listeners of one name"));
        }
        listeners.push(KafkaListener {
            name,
            protocol,
            addr: host_port("kafka_addr", addr.to_string())?,
            advertised: None,
        });
    }
    Ok(listeners)
}

/// `kafka_advertised_addr`: the addresses clients are told of, each
/// `NAME://HOST:PORT` of a listener, or a lone `HOST:PORT` of a lone one.
fn advertise(listeners: &mut [KafkaListener], text: &str) -> Result<(), ConfigError> {
    let mut named: Vec<String> = Vec::new();
    for entry in text.split(',').map(str::trim) {
        let invalid = |message| ConfigError::Invalid {
            key: "kafka_advertised_addr",
            value: entry.to_string(),
            message,
        };
        let (name, addr) = match (entry.split_once("://"), listeners.len()) {
            (Some((name, addr)), _) => (listener_name(name).map_err(invalid)?, addr),
            (None, 1) => (listeners[0].name.clone(), entry),
            (None, _) => return Err(invalid(
                "with several Kafka listeners, each address names its listener: NAME://HOST:PORT",
            )),
        };
        let Some(listener) = listeners.iter_mut().find(|listener| listener.name == name) else {
            return Err(invalid("names no listener of kafka_addr"));
        };
        if named.contains(&name) {
            return Err(invalid("names a listener twice"));
        }
        listener.advertised = Some(host_port("kafka_advertised_addr", addr.to_string())?);
        named.push(name);
    }
    Ok(())
}

pub fn host_port(key: &'static str, value: String) -> Result<String, ConfigError> {
    if !value.contains(':') {
        return Err(ConfigError::Invalid {
            key,
            value,
            message: "expected HOST:PORT",
        });
    }
    Ok(value)
}

fn positive(key: &'static str, value: usize) -> Result<usize, ConfigError> {
    if value == 0 {
        return Err(ConfigError::Invalid {
            key,
            value: value.to_string(),
            message: "must be at least 1",
        });
    }
    Ok(value)
}

/// The broker's settings: `flags` over the environment over the file (if
/// any) over the defaults.
pub fn broker_config(
    flags: ConfigLayer,
    env: &HashMap<String, String>,
    file: Option<&std::path::Path>,
) -> Result<BrokerConfig, ConfigError> {
    let file = match file {
        Some(path) => ConfigLayer::from_file(path)?,
        None => ConfigLayer::default(),
    };
    flags
        .over(ConfigLayer::from_env(env)?)
        .over(file)
        .apply(serve_defaults())
}

/// The defaults of `sluice serve`: the library's, with the Kafka listener
/// on Kafka's usual port and the admin HTTP listener (`/metrics`) on 9644.
pub fn serve_defaults() -> BrokerConfig {
    BrokerConfig {
        kafka_listeners: vec![KafkaListener {
            name: "PLAINTEXT".to_string(),
            protocol: SecurityProtocol::Plaintext,
            addr: "127.0.0.1:9092".to_string(),
            advertised: None,
        }],
        admin_addr: Some("127.0.0.1:9644".to_string()),
        ..BrokerConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    #[test]
    fn defaults_need_no_file() {
        let config = broker_config(ConfigLayer::default(), &env(&[]), None).unwrap();
        assert_eq!(config, serve_defaults());
        assert_eq!(config.kafka_listeners[0].addr, "127.0.0.1:9092");
        assert_eq!(config.kafka_listeners[0].name, "PLAINTEXT");
        assert_eq!(config.admin_addr.as_deref(), Some("127.0.0.1:9644"));
        assert_eq!(
            BrokerConfig::default().admin_addr,
            None,
            "off when embedded"
        );
        assert_eq!(config.data_dir, PathBuf::from("./sluice-data"));
        assert!(config.native_addr.starts_with("127.0.0.1:"));
    }

    #[test]
    fn flags_win_over_env_over_file_over_defaults() {
        let toml = file(
            r#"
            data_dir = "/from/file"
            native_addr = "0.0.0.0:1111"
            cores = 3
            broker_id = 9
            default_partitions = 4
            partial_frame_timeout_ms = 1500
            "#,
        );
        let env = env(&[
            ("SLUICE_NATIVE_ADDR", "10.0.0.1:2222"),
            ("SLUICE_CORES", "2"),
            ("SLUICE_BROKERS", "not a broker setting"),
            ("PATH", "/bin"),
        ]);
        let flags = ConfigLayer {
            cores: Some(1),
            ..ConfigLayer::default()
        };
        let config = broker_config(flags, &env, Some(toml.path())).unwrap();
        assert_eq!(config.cores, Some(1), "flag over env and file");
        assert_eq!(config.native_addr, "10.0.0.1:2222", "env over file");
        assert_eq!(
            config.data_dir,
            PathBuf::from("/from/file"),
            "file over default"
        );
        assert_eq!(config.node_id, sluice_storage::NodeId(9), "the older name");
        assert_eq!(config.default_partitions, 4);
        assert_eq!(config.partial_frame_timeout, Duration::from_millis(1500));
        let defaults = BrokerConfig::default();
        assert_eq!(config.connections_max, defaults.connections_max, "default");
    }

    #[test]
    fn node_id_takes_its_older_name_and_kafka_range() {
        let apply = |text: &str| {
            ConfigLayer::from_toml(text, std::path::Path::new("t.toml"))
                .unwrap()
                .apply(BrokerConfig::default())
        };
        assert_eq!(apply("node_id = 3").unwrap().node_id.0, 3);
        assert_eq!(apply("broker_id = 4").unwrap().node_id.0, 4);
        assert_eq!(apply("node_id = 5\nbroker_id = 5").unwrap().node_id.0, 5);
        assert!(apply("node_id = 5\nbroker_id = 6").is_err());
        assert!(apply("node_id = 2147483648").is_err());
        assert_eq!(apply("node_id = 2147483647").unwrap().node_id.0, i32::MAX);
    }

    #[test]
    fn every_key_has_a_variable() {
        let pairs: Vec<(String, String)> = ConfigLayer::KEYS
            .iter()
            .map(|key| {
                let variable = format!("SLUICE_{}", key.to_uppercase());
                let value = match variable.as_str() {
                    "SLUICE_KAFKA_ADDR"
                    | "SLUICE_KAFKA_ADVERTISED_ADDR"
                    | "SLUICE_ADMIN_ADDR"
                    | "SLUICE_PEER_ADDR" => "h:7",
                    "SLUICE_VOTERS" => "7@h:7",
                    "SLUICE_CLUSTER_ID" => "BwcHBwcHBwcHBwcHBwcHBw",
                    "SLUICE_RACK" => "r7",
                    "SLUICE_AUTO_CREATE_TOPICS"
                    | "SLUICE_AUTO_LEADER_REBALANCE"
                    | "SLUICE_ALLOW_EVERYONE_IF_NO_ACL_FOUND" => "false",
                    "SLUICE_AUTHORIZER" => "acl",
                    "SLUICE_SUPER_USERS" => "User:u7",
                    "SLUICE_LOG_DIRS" => "/d7, /e7",
                    "SLUICE_REPLICA_SELECTOR" => "rack-aware",
                    "SLUICE_TRANSACTION_VERSION" => "1",
                    "SLUICE_SSL_CLIENT_AUTH" => "required",
                    "SLUICE_LISTENER_SECURITY_PROTOCOL_MAP" => "INTERNAL:SSL",
                    "SLUICE_SASL_OAUTHBEARER_JWKS_ENDPOINT_URL" => "https://idp:7/jwks",
                    "SLUICE_SASL_OAUTHBEARER_JWKS_ENDPOINT_REFRESH_MS" => "70000",
                    _ => "7",
                };
                (variable, value.to_string())
            })
            // The JWKS file and URL are one or the other (below).
            .filter(|(variable, _)| {
                variable != "SLUICE_DATA_DIR"
                    && variable != "SLUICE_NATIVE_ADDR"
                    && variable != "SLUICE_SASL_OAUTHBEARER_JWKS_FILE"
            })
            .collect();
        let env: HashMap<String, String> = pairs.into_iter().collect();
        let layer = ConfigLayer::from_env(&env).unwrap();
        let config = layer.apply(BrokerConfig::default()).unwrap();
        assert_eq!(config.node_id, sluice_storage::NodeId(7));
        assert_eq!(config.peer_addr, "h:7");
        assert_eq!(
            config.voters,
            sluice_engine::Voter::parse_list("7@h:7").unwrap()
        );
        assert_eq!(config.cluster_id.as_deref(), Some("BwcHBwcHBwcHBwcHBwcHBw"));
        assert_eq!(config.rack.as_deref(), Some("r7"));
        assert_eq!(
            config.log_dirs,
            [PathBuf::from("/d7"), PathBuf::from("/e7")]
        );
        assert_eq!(config.ready_file, Some(PathBuf::from("7")));
        assert_eq!(config.cores, Some(7));
        assert_eq!(config.default_partitions, 7);
        assert_eq!(config.connection_idle_timeout, Duration::from_millis(7));
        assert_eq!(
            config.connections_max_reauth,
            Some(Duration::from_millis(7))
        );
        assert_eq!(config.partial_frame_timeout, Duration::from_millis(7));
        assert_eq!(config.connections_max, 7);
        assert_eq!(
            config.group_initial_rebalance_delay,
            Duration::from_millis(7)
        );
        assert_eq!(config.group_offsets_compact_bytes, 7);
        assert_eq!(
            config.group_consumer_heartbeat_interval,
            Duration::from_millis(7)
        );
        assert_eq!(
            config.group_consumer_session_timeout,
            Duration::from_millis(7)
        );
        assert_eq!(config.in_flight_per_connection_max, 7);
        assert_eq!(config.frame_bytes_max, 7);
        assert_eq!(config.retention_check_interval, Duration::from_millis(7));
        assert_eq!(config.delete_bytes_per_s, 7);
        assert_eq!(config.cleaner_check_interval, Duration::from_millis(7));
        assert_eq!(config.cleaner_bytes_per_s, 7);
        assert_eq!(config.kafka_listeners.len(), 1);
        assert_eq!(config.kafka_listeners[0].addr, "h:7");
        assert_eq!(config.kafka_listeners[0].advertised(), "h:7");
        assert_eq!(config.admin_addr.as_deref(), Some("h:7"));
        assert!(!config.auto_create_topics);
        assert_eq!(config.auto_create_partitions, 7);
        assert!(!config.auto_leader_rebalance);
        assert_eq!(
            config.leader_imbalance_check_interval,
            Duration::from_millis(7)
        );
        assert_eq!(config.offsets_topic_replication_factor, Some(7));
        assert_eq!(config.offsets_replication_factor(), 7);
        assert_eq!(config.transaction_state_replication_factor(), 7);
        assert_eq!(config.transaction_version, 1);
        assert_eq!(
            config.replica_selector,
            sluice_engine::ReplicaSelector::RackAware
        );
    }

    #[test]
    fn the_replica_selector_takes_kafkas_class_name_and_refuses_others() {
        use sluice_engine::ReplicaSelector;
        let selector = |value: &str| {
            let env = env(&[("SLUICE_REPLICA_SELECTOR", value)]);
            broker_config(ConfigLayer::default(), &env, None).map(|config| config.replica_selector)
        };
        assert_eq!(
            broker_config(ConfigLayer::default(), &env(&[]), None)
                .unwrap()
                .replica_selector,
            ReplicaSelector::Leader,
            "the leader only, as Kafka"
        );
        assert_eq!(
            selector("org.apache.kafka.common.replica.RackAwareReplicaSelector").unwrap(),
            ReplicaSelector::RackAware
        );
        assert_eq!(selector("rack-aware").unwrap(), ReplicaSelector::RackAware);
        assert_eq!(selector("leader").unwrap(), ReplicaSelector::Leader);
        assert!(selector("closest").is_err());
    }

    #[test]
    fn the_kafka_listener_can_be_turned_off() {
        let env = env(&[("SLUICE_KAFKA_ADDR", "off")]);
        let config = broker_config(ConfigLayer::default(), &env, None).unwrap();
        assert!(config.kafka_listeners.is_empty());
        let env = super::tests::env(&[("SLUICE_KAFKA_ADDR", "no-port")]);
        assert!(broker_config(ConfigLayer::default(), &env, None).is_err());
    }

    #[test]
    fn a_kafka_listener_names_its_security_protocol_as_kafka_does() {
        let config =
            |pairs: &[(&str, &str)]| broker_config(ConfigLayer::default(), &env(pairs), None);
        let plain = config(&[("SLUICE_KAFKA_ADDR", "PLAINTEXT://h:9092")]).unwrap();
        assert_eq!(plain.kafka_listeners[0].addr, "h:9092");
        assert_eq!(
            plain.kafka_listeners[0].protocol,
            SecurityProtocol::Plaintext
        );
        assert_eq!(plain.tls, None);
        let tls = config(&[
            ("SLUICE_KAFKA_ADDR", "SSL://h:9093"),
            ("SLUICE_KAFKA_ADVERTISED_ADDR", "ssl://a:9093"),
            ("SLUICE_SSL_CERTIFICATE_FILE", "/c.pem"),
            ("SLUICE_SSL_KEY_FILE", "/k.pem"),
            ("SLUICE_SSL_CLIENT_CA_FILE", "/ca.pem"),
            ("SLUICE_SSL_CLIENT_AUTH", "requested"),
        ])
        .unwrap();
        assert_eq!(tls.kafka_listeners[0].addr, "h:9093");
        assert_eq!(tls.kafka_listeners[0].advertised(), "a:9093");
        assert_eq!(
            tls.tls,
            Some(TlsSettings {
                certificate: PathBuf::from("/c.pem"),
                key: PathBuf::from("/k.pem"),
                client_ca: Some(PathBuf::from("/ca.pem")),
                client_auth: ClientAuth::Requested,
            })
        );
        let sasl = config(&[
            ("SLUICE_KAFKA_ADDR", "SASL_SSL://h:9094"),
            ("SLUICE_SSL_CERTIFICATE_FILE", "/c.pem"),
            ("SLUICE_SSL_KEY_FILE", "/k.pem"),
            ("SLUICE_SASL_PLAIN_USERS_FILE", "/users"),
        ])
        .unwrap();
        assert!(sasl.tls.is_some());
        assert_eq!(
            sasl.kafka_sasl,
            Some(SaslSettings {
                plain_users: Some(PathBuf::from("/users")),
                oauthbearer: None,
            })
        );
        let sasl = config(&[
            ("SLUICE_KAFKA_ADDR", "SASL_PLAINTEXT://h:9094"),
            ("SLUICE_SASL_PLAIN_USERS_FILE", "/users"),
        ])
        .unwrap();
        assert!(sasl.tls.is_none() && sasl.kafka_sasl.is_some());
        for refused in [
            &[("SLUICE_KAFKA_ADDR", "SSL://h:9093")][..],
            &[("SLUICE_KAFKA_ADDR", "SASL_PLAINTEXT://h:9093")],
            &[
                ("SLUICE_KAFKA_ADDR", "SASL_SSL://h:9093"),
                ("SLUICE_SASL_PLAIN_USERS_FILE", "/users"),
            ],
            &[("SLUICE_KAFKA_ADDR", "QUIC://h:9093")],
            &[
                ("SLUICE_KAFKA_ADDR", "PLAINTEXT://h:9092"),
                ("SLUICE_KAFKA_ADVERTISED_ADDR", "SSL://a:9092"),
            ],
            &[
                ("SLUICE_KAFKA_ADDR", "PLAINTEXT://h:9092,SSL://h:9093"),
                ("SLUICE_SSL_CERTIFICATE_FILE", "/c.pem"),
                ("SLUICE_SSL_KEY_FILE", "/k.pem"),
                ("SLUICE_KAFKA_ADVERTISED_ADDR", "a:9092"),
            ],
            &[
                ("SLUICE_KAFKA_ADDR", "SSL://h:9093"),
                ("SLUICE_SSL_CERTIFICATE_FILE", "/c.pem"),
                ("SLUICE_SSL_KEY_FILE", "/k.pem"),
                ("SLUICE_SSL_CLIENT_AUTH", "sometimes"),
            ],
        ] {
            assert!(config(refused).is_err(), "{refused:?}");
        }
    }

    #[test]
    fn oauthbearer_keys_come_from_a_file_or_a_url() {
        use sluice_engine::sasl::jwks::{refresh, url::Scheme, JwksSettings, Location};
        let config = |pairs: &[(&str, &str)]| {
            let mut all = vec![("SLUICE_KAFKA_ADDR", "SASL_PLAINTEXT://h:9094")];
            all.extend_from_slice(pairs);
            broker_config(ConfigLayer::default(), &env(&all), None)
        };
        let jwks = |pairs: &[(&str, &str)]| -> Result<JwksSettings, ConfigError> {
            let sasl = config(pairs)?.kafka_sasl.expect("a SASL listener");
            Ok(sasl.oauthbearer.expect("OAUTHBEARER").jwks)
        };
        let file = jwks(&[("SLUICE_SASL_OAUTHBEARER_JWKS_FILE", "/jwks.json")]).unwrap();
        assert_eq!(file.location, Location::File(PathBuf::from("/jwks.json")));
        assert_eq!(file.refresh_interval, refresh::REFRESH_INTERVAL_DEFAULT);
        for url in ["/jwks.json", "file:///jwks.json"] {
            let same = jwks(&[("SLUICE_SASL_OAUTHBEARER_JWKS_ENDPOINT_URL", url)]).unwrap();
            assert_eq!(same, file, "{url}");
        }
        let https = jwks(&[
            (
                "SLUICE_SASL_OAUTHBEARER_JWKS_ENDPOINT_URL",
                "https://idp.example/jwks",
            ),
            ("SLUICE_SASL_OAUTHBEARER_JWKS_ENDPOINT_REFRESH_MS", "60000"),
            ("SLUICE_SASL_OAUTHBEARER_JWKS_ENDPOINT_CA_FILE", "/ca.pem"),
        ])
        .unwrap();
        let Location::Http(url) = &https.location else {
            panic!("{https:?}");
        };
        assert_eq!(url.scheme, Scheme::Https);
        assert_eq!(url.target, "/jwks");
        assert_eq!(https.ca_file, Some(PathBuf::from("/ca.pem")));
        assert_eq!(https.refresh_interval, Duration::from_secs(60));
        let loopback = jwks(&[(
            "SLUICE_SASL_OAUTHBEARER_JWKS_ENDPOINT_URL",
            "http://127.0.0.1:8080/jwks",
        )])
        .unwrap();
        assert!(matches!(loopback.location, Location::Http(url) if url.scheme == Scheme::Http));

        let refused = |pairs: &[(&str, &str)]| config(pairs).unwrap_err().to_string();
        let error = refused(&[(
            "SLUICE_SASL_OAUTHBEARER_JWKS_ENDPOINT_URL",
            "http://idp.example/jwks",
        )]);
        assert!(
            error.starts_with("sasl_oauthbearer_jwks_endpoint_url = http://idp.example/jwks: ")
                && error.contains("loopback"),
            "{error}"
        );
        for pairs in [
            &[
                ("SLUICE_SASL_OAUTHBEARER_JWKS_FILE", "/jwks.json"),
                (
                    "SLUICE_SASL_OAUTHBEARER_JWKS_ENDPOINT_URL",
                    "https://idp/jwks",
                ),
            ][..],
            &[
                (
                    "SLUICE_SASL_OAUTHBEARER_JWKS_ENDPOINT_URL",
                    "https://idp/jwks",
                ),
                ("SLUICE_SASL_OAUTHBEARER_JWKS_ENDPOINT_REFRESH_MS", "3600"),
            ],
            &[
                ("SLUICE_SASL_OAUTHBEARER_JWKS_FILE", "/jwks.json"),
                ("SLUICE_SASL_OAUTHBEARER_JWKS_ENDPOINT_CA_FILE", "/ca.pem"),
            ],
            &[(
                "SLUICE_SASL_OAUTHBEARER_JWKS_ENDPOINT_URL",
                "ftp://idp/jwks",
            )],
        ] {
            assert!(config(pairs).is_err(), "{pairs:?}");
        }
    }

    #[test]
    fn several_kafka_listeners_each_have_a_name_a_protocol_and_an_advertised_address() {
        let config =
            |pairs: &[(&str, &str)]| broker_config(ConfigLayer::default(), &env(pairs), None);
        let tls = [
            ("SLUICE_SSL_CERTIFICATE_FILE", "/c.pem"),
            ("SLUICE_SSL_KEY_FILE", "/k.pem"),
            ("SLUICE_SASL_PLAIN_USERS_FILE", "/users"),
        ];
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut all = tls.to_vec();
            all.extend_from_slice(pairs);
            config(&all)
        };
        let three = with(&[
            (
                "SLUICE_KAFKA_ADDR",
                "PLAINTEXT://0.0.0.0:9092, internal://10.0.0.1:9093,SASL_SSL://0.0.0.0:9094",
            ),
            (
                "SLUICE_LISTENER_SECURITY_PROTOCOL_MAP",
                "INTERNAL:SASL_PLAINTEXT,EXTERNAL:SSL",
            ),
            (
                "SLUICE_KAFKA_ADVERTISED_ADDR",
                "PLAINTEXT://broker-1:9092,SASL_SSL://public.example:443",
            ),
        ])
        .unwrap();
        let listeners: Vec<(&str, SecurityProtocol, &str)> = three
            .kafka_listeners
            .iter()
            .map(|listener| {
                (
                    listener.name.as_str(),
                    listener.protocol,
                    listener.advertised(),
                )
            })
            .collect();
        assert_eq!(
            listeners,
            [
                ("PLAINTEXT", SecurityProtocol::Plaintext, "broker-1:9092"),
                ("INTERNAL", SecurityProtocol::SaslPlaintext, "10.0.0.1:9093"),
                ("SASL_SSL", SecurityProtocol::SaslSsl, "public.example:443"),
            ]
        );
        assert!(three.tls.is_some() && three.kafka_sasl.is_some());
        // A plaintext listener beside a TLS one needs no TLS of its own.
        let plain_only = config(&[
            ("SLUICE_KAFKA_ADDR", "PLAINTEXT://h:1,OTHER://h:2"),
            ("SLUICE_LISTENER_SECURITY_PROTOCOL_MAP", "OTHER:PLAINTEXT"),
        ])
        .unwrap();
        assert!(plain_only.tls.is_none() && plain_only.kafka_sasl.is_none());
        for refused in [
            // A name that is no protocol, unmapped.
            &[("SLUICE_KAFKA_ADDR", "PLAINTEXT://h:1,INTERNAL://h:2")][..],
            // Two of one name.
            &[("SLUICE_KAFKA_ADDR", "PLAINTEXT://h:1,plaintext://h:2")],
            &[("SLUICE_KAFKA_ADDR", "h:1,h:2")],
            // An advertised address of no listener, or without its name.
            &[
                ("SLUICE_KAFKA_ADDR", "PLAINTEXT://h:1,SSL://h:2"),
                ("SLUICE_KAFKA_ADVERTISED_ADDR", "SASL_SSL://a:2"),
            ],
            &[
                ("SLUICE_KAFKA_ADDR", "PLAINTEXT://h:1,SSL://h:2"),
                ("SLUICE_KAFKA_ADVERTISED_ADDR", "SSL://a:2,SSL://b:2"),
            ],
            // A bad map.
            &[
                ("SLUICE_KAFKA_ADDR", "PLAINTEXT://h:1"),
                ("SLUICE_LISTENER_SECURITY_PROTOCOL_MAP", "INTERNAL"),
            ],
            &[
                ("SLUICE_KAFKA_ADDR", "PLAINTEXT://h:1"),
                ("SLUICE_LISTENER_SECURITY_PROTOCOL_MAP", "INTERNAL:QUIC"),
            ],
            &[
                ("SLUICE_KAFKA_ADDR", "PLAINTEXT://h:1"),
                ("SLUICE_LISTENER_SECURITY_PROTOCOL_MAP", "IN TERNAL:SSL"),
            ],
            // An address without a port.
            &[("SLUICE_KAFKA_ADDR", "PLAINTEXT://h:1,SSL://h")],
        ] {
            assert!(with(refused).is_err(), "{refused:?}");
        }
    }

    #[test]
    fn peer_tls_takes_all_three_files_or_none() {
        let config =
            |pairs: &[(&str, &str)]| broker_config(ConfigLayer::default(), &env(pairs), None);
        let all = config(&[
            ("SLUICE_PEER_SSL_CERTIFICATE_FILE", "/n.pem"),
            ("SLUICE_PEER_SSL_KEY_FILE", "/n.key"),
            ("SLUICE_PEER_SSL_CA_FILE", "/ca.pem"),
        ])
        .unwrap();
        assert_eq!(
            all.peer_tls,
            Some(sluice_engine::tls::PeerTlsSettings {
                certificate: PathBuf::from("/n.pem"),
                key: PathBuf::from("/n.key"),
                ca: PathBuf::from("/ca.pem"),
            })
        );
        assert_eq!(config(&[]).unwrap().peer_tls, None);
        assert!(config(&[
            ("SLUICE_PEER_SSL_CERTIFICATE_FILE", "/n.pem"),
            ("SLUICE_PEER_SSL_KEY_FILE", "/n.key"),
        ])
        .is_err());
    }

    #[test]
    fn the_admin_listener_speaks_https_with_the_brokers_certificate() {
        let config =
            |pairs: &[(&str, &str)]| broker_config(ConfigLayer::default(), &env(pairs), None);
        let https = config(&[
            ("SLUICE_ADMIN_ADDR", "https://0.0.0.0:9644"),
            ("SLUICE_SSL_CERTIFICATE_FILE", "/c.pem"),
            ("SLUICE_SSL_KEY_FILE", "/k.pem"),
        ])
        .unwrap();
        assert!(https.admin_tls && https.tls.is_some());
        assert_eq!(https.admin_addr.as_deref(), Some("0.0.0.0:9644"));
        let http = config(&[("SLUICE_ADMIN_ADDR", "http://h:1")]).unwrap();
        assert!(!http.admin_tls && http.tls.is_none());
        assert!(config(&[("SLUICE_ADMIN_ADDR", "https://h:1")]).is_err());
        assert!(config(&[("SLUICE_ADMIN_ADDR", "ftp://h:1")]).is_err());
    }

    #[test]
    fn the_admin_listener_can_be_turned_off() {
        let env = env(&[("SLUICE_ADMIN_ADDR", "off")]);
        let config = broker_config(ConfigLayer::default(), &env, None).unwrap();
        assert_eq!(config.admin_addr, None);
        let flags = ConfigLayer {
            admin_addr: Some("0.0.0.0:9999".to_string()),
            ..ConfigLayer::default()
        };
        let config = broker_config(flags, &env, None).unwrap();
        assert_eq!(config.admin_addr.as_deref(), Some("0.0.0.0:9999"));
        let env = super::tests::env(&[("SLUICE_ADMIN_ADDR", "no-port")]);
        assert!(broker_config(ConfigLayer::default(), &env, None).is_err());
    }

    #[test]
    fn an_unknown_key_in_the_file_is_an_error() {
        let toml = file("data_dir = \"x\"\nnative_adr = \"127.0.0.1:1\"\n");
        let error = broker_config(ConfigLayer::default(), &env(&[]), Some(toml.path()))
            .unwrap_err()
            .to_string();
        assert!(error.contains("native_adr"), "{error}");
    }

    #[test]
    fn a_bad_value_names_where_it_came_from() {
        let error = broker_config(
            ConfigLayer::default(),
            &env(&[("SLUICE_CORES", "many")]),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("SLUICE_CORES"), "{error}");

        let toml = file("cores = \"two\"\n");
        let error = broker_config(ConfigLayer::default(), &env(&[]), Some(toml.path()))
            .unwrap_err()
            .to_string();
        assert!(error.contains("config file"), "{error}");

        let error = broker_config(
            ConfigLayer {
                cores: Some(0),
                ..ConfigLayer::default()
            },
            &env(&[]),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("cores"), "{error}");
        assert!(broker_config(
            ConfigLayer::default(),
            &env(&[("SLUICE_NATIVE_ADDR", "nohostport")]),
            None
        )
        .is_err());
    }

    #[test]
    fn a_missing_file_is_an_error() {
        let error = broker_config(
            ConfigLayer::default(),
            &env(&[]),
            Some(std::path::Path::new("/nonexistent/sluice.toml")),
        )
        .unwrap_err();
        assert!(matches!(error, ConfigError::Read { .. }));
    }
}
