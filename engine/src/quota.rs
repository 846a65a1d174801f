//! Client quotas, in Kafka's model: byte rates a broker gives a user, a
//! client id, or a user's client id, and the throttling that holds a
//! client to them.
//!
//! **Entities.** A quota is set on an entity: a user, a client id, both,
//! or an IP address, each named or the default of its kind (KIP-55,
//! KIP-612). The values live in the replicated metadata
//! ([`crate::cluster_metadata`]); every broker enforces the same ones.
//!
//! **Which quota applies.** For a request of user U with client id C, the
//! first entity that sets the key, in Kafka's order: U and C; U and the
//! default client; U; the default user and C; the default user and the
//! default client; the default user; C; the default client. The quota is
//! shared by the clients the entity names: a quota of user U is one rate
//! for all of U's client ids, a quota of the default user one rate per
//! user.
//!
//! **Throttling.** Each broker meters each entity with a token bucket that
//! holds a window's worth of the quota (`quota_window_num` ×
//! `quota_window_size`, Kafka's 11 × 1 s) and refills at the quota (see
//! [`Bucket`]). A request that overdraws it is answered at once with
//! `throttle_time_ms`, the time the bucket needs to refill to zero; the
//! broker reads nothing more from that connection for that long (KIP-219),
//! and Kafka clients back off as long. Enforced: `producer_byte_rate` (a
//! produce request's bytes), `consumer_byte_rate` (a fetch response's
//! bytes) and `request_percentage` (the time the shard spent serving a
//! request, in percent of a core: see [`crate::kafka`]'s throttle). The
//! key Kafka has besides (`controller_mutation_rate`) is refused, not
//! stored unenforced.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Mutex,
    time::{Duration, Instant},
};

/// One component of an entity: the named one, or its kind's default.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Name {
    Default,
    Named(String),
}

impl Name {
    pub fn as_option(&self) -> Option<&str> {
        match self {
            Name::Default => None,
            Name::Named(name) => Some(name),
        }
    }
}

/// What a quota is set on. Valid shapes: a user, a client id, both, or an
/// IP address alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entity {
    pub user: Option<Name>,
    pub client_id: Option<Name>,
    pub ip: Option<Name>,
}

/// Kafka's entity type names.
pub const USER: &str = "user";
pub const CLIENT_ID: &str = "client-id";
pub const IP: &str = "ip";

/// Requests answered with a throttle time, since the process started
/// (`/metrics`).
pub static THROTTLED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Microseconds the shards spent serving requests of clients under a
/// `request_percentage` quota, since the process started (`/metrics`).
pub static REQUEST_TIME_US: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Connections refused: their address held `connections_max_per_ip`
/// already (`/metrics`).
pub static REFUSED_CONNECTIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The keys enforced.
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
pub const REQUEST_PERCENTAGE: &str = "request_percentage";
pub const CONNECTION_CREATION_RATE: &str = "connection_creation_rate";

/// The longest entity name.
pub const NAME_BYTES_MAX: usize = 4096;

/// Why an entity or a value cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidQuota {
    #[error("an entity is a user, a client id, both, or an IP address")]
    Shape,
    #[error("{0} is not a quota this broker enforces ({PRODUCER_BYTE_RATE}, {CONSUMER_BYTE_RATE}, {REQUEST_PERCENTAGE} for users and client ids; {CONNECTION_CREATION_RATE} for IP addresses)")]
    Key(String),
    #[error("{key} = {value}: a quota is a positive number")]
    Value { key: String, value: String },
    #[error("an entity name is empty or over {NAME_BYTES_MAX} bytes")]
    Name,
    #[error("{0} is not an IP address")]
    Ip(String),
}

impl Entity {
    /// Whether the entity can hold `key` = `value`.
    pub fn check(&self, key: &str, value: f64) -> Result<(), InvalidQuota> {
        let names = [&self.user, &self.client_id, &self.ip];
        if names
            .iter()
            .filter_map(|name| name.as_ref()?.as_option())
            .any(|name| name.is_empty() || name.len() > NAME_BYTES_MAX)
        {
            return Err(InvalidQuota::Name);
        }
        let client = self.user.is_some() || self.client_id.is_some();
        match (client, &self.ip) {
            (true, None) => {
                if ![PRODUCER_BYTE_RATE, CONSUMER_BYTE_RATE, REQUEST_PERCENTAGE].contains(&key) {
                    return Err(InvalidQuota::Key(key.to_string()));
                }
            }
            (false, Some(ip)) => {
                if key != CONNECTION_CREATION_RATE {
                    return Err(InvalidQuota::Key(key.to_string()));
                }
                if let Some(ip) = ip.as_option() {
                    if ip.parse::<std::net::IpAddr>().is_err() {
                        return Err(InvalidQuota::Ip(ip.to_string()));
                    }
                }
            }
            _ => return Err(InvalidQuota::Shape),
        }
        if !(value.is_finite() && value > 0.0) {
            return Err(InvalidQuota::Value {
                key: key.to_string(),
                value: value.to_string(),
            });
        }
        Ok(())
    }
}

/// A quota's value: a rate per second. Equal when its bits are (the
/// values stored are finite, checked by [`Entity::check`]).
#[derive(Debug, Clone, Copy)]
pub struct Rate(pub f64);

impl PartialEq for Rate {
    fn eq(&self, other: &Rate) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Rate {}

/// Every quota set, by entity: what the metadata holds.
pub type Quotas = BTreeMap<Entity, BTreeMap<String, Rate>>;

/// The quota that applies to user `user` with client id `client_id` for
/// `key`, in Kafka's order, and the meter it is measured by: the user
/// and client id the entity names (a component the entity does not have
/// is empty, so that its clients share one meter).
pub fn resolve(quotas: &Quotas, user: &str, client_id: &str, key: &str) -> Option<(f64, Meter)> {
    // Each entity's place in Kafka's order, if it applies: U and C; U and
    // the default client; U; the default user and C; both defaults; the
    // default user; C; the default client. Ranked by a look at each entry,
    // so that no candidate key is built per request.
    let component = |name: &Option<Name>, wanted: &str| match name {
        None => Some(2),
        Some(Name::Named(named)) if named == wanted => Some(0),
        Some(Name::Named(_)) => None,
        Some(Name::Default) => Some(1),
    };
    let (_, entity, Rate(value)) = quotas
        .iter()
        .filter(|(entity, _)| entity.ip.is_none())
        .filter_map(|(entity, values)| {
            let by_user = component(&entity.user, user)?;
            let by_client = component(&entity.client_id, client_id)?;
            // (absent, absent) is no entity; absent user and a client
            // come after every user entity.
            let rank = match (by_user, by_client) {
                (2, 2) => return None,
                (2, client) => 6 + client,
                (user, client) => user * 3 + client,
            };
            Some((rank, entity, *values.get(key)?))
        })
        .min_by_key(|(rank, ..)| *rank)?;
    let meter = Meter {
        key: key.to_string(),
        user: if entity.user.is_some() {
            user.to_string()
        } else {
            String::new()
        },
        client_id: if entity.client_id.is_some() {
            client_id.to_string()
        } else {
            String::new()
        },
    };
    Some((value, meter))
}

/// What a rate is measured for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Meter {
    pub key: String,
    pub user: String,
    pub client_id: String,
}

/// One meter's allowance: a token bucket that fills at the quota's rate
/// up to a window's worth (quota × `quota_window_size` ×
/// `quota_window_num`). A request takes its amount from it; one that takes
/// it below zero is throttled for as long as the bucket needs to refill to
/// zero. So a client may burst a window's worth, and is held to its
/// quota over any longer time, not less (a rate measured over a sliding
/// window lets a client that burst sit out whole windows and burst again).
#[derive(Debug)]
struct Bucket {
    level: f64,
    filled: Instant,
}

impl Bucket {
    fn full(now: Instant, quota: f64, window: &Window) -> Bucket {
        Bucket {
            level: quota * window.span().as_secs_f64(),
            filled: now,
        }
    }

    /// Takes `amount` at `now`: the throttle time, at most the window's
    /// span (the debt beyond it throttles the requests after).
    fn take(&mut self, now: Instant, amount: f64, quota: f64, window: &Window) -> Duration {
        let capacity = quota * window.span().as_secs_f64();
        let refill = quota * now.duration_since(self.filled).as_secs_f64();
        self.level = (self.level + refill).min(capacity) - amount;
        self.filled = now;
        if self.level >= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(-self.level / quota).min(window.span())
    }
}

/// The measuring window: `samples` samples of `size` each (Kafka's
/// settings' names); its span is the burst a quota allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub size: Duration,
    pub samples: u32,
}

impl Window {
    pub fn span(&self) -> Duration {
        self.size * self.samples
    }
}

impl Default for Window {
    /// Kafka's `quota.window.size.seconds` 1 and `quota.window.num` 11.
    fn default() -> Window {
        Window {
            size: Duration::from_secs(1),
            samples: 11,
        }
    }
}

/// This broker's meters, shared by its shards: a client's connections may
/// land on any of them, and its quota is the broker's. Also the
/// connections open from each IP address (`connections_max_per_ip`).
#[derive(Debug, Default)]
pub struct Meters {
    rates: Mutex<HashMap<Meter, Bucket>>,
    connections: Mutex<HashMap<std::net::IpAddr, usize>>,
}

/// Meters idle this long are forgotten, so that many short-lived client
/// ids do not grow the map for ever.
const IDLE: Duration = Duration::from_secs(600);

/// The most meters kept; past it, idle ones are dropped first.
const METERS_MAX: usize = 100_000;

impl Meters {
    /// Counts a connection from `ip` if fewer than `max` are open from it
    /// (0: no limit); `false` when it must be refused.
    pub fn open_connection(&self, ip: std::net::IpAddr, max: usize) -> bool {
        let mut open = self
            .connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = open.entry(ip).or_default();
        if max > 0 && *count >= max {
            return false;
        }
        *count += 1;
        true
    }

    /// A connection [`Meters::open_connection`] counted has closed.
    pub fn close_connection(&self, ip: std::net::IpAddr) {
        let mut open = self
            .connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = open.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&ip);
            }
        }
    }

    /// Records `amount` for `meter` against `quota`: the throttle time.
    pub fn record(&self, meter: Meter, amount: f64, quota: f64, window: &Window) -> Duration {
        let now = Instant::now();
        let mut rates = self
            .rates
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if rates.len() >= METERS_MAX {
            rates.retain(|_, bucket| now.duration_since(bucket.filled) < IDLE);
        }
        rates
            .entry(meter)
            .or_insert_with(|| Bucket::full(now, quota, window))
            .take(now, amount, quota, window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(user: Option<Name>, client_id: Option<Name>) -> Entity {
        Entity {
            user,
            client_id,
            ip: None,
        }
    }

    fn named(name: &str) -> Option<Name> {
        Some(Name::Named(name.to_string()))
    }

    #[test]
    fn the_most_specific_entity_wins_and_names_the_meter() {
        let mut quotas = Quotas::new();
        let mut set = |entity: Entity, value: f64| {
            quotas
                .entry(entity)
                .or_default()
                .insert(PRODUCER_BYTE_RATE.to_string(), Rate(value));
        };
        set(entity(None, Some(Name::Default)), 1.0);
        set(entity(Some(Name::Default), None), 2.0);
        set(entity(named("alice"), None), 3.0);
        set(entity(named("alice"), named("app")), 4.0);
        let quota = |quotas: &Quotas, user, client| {
            resolve(quotas, user, client, PRODUCER_BYTE_RATE)
                .map(|(value, meter)| (value, meter.user, meter.client_id))
        };
        assert_eq!(
            quota(&quotas, "alice", "app"),
            Some((4.0, "alice".into(), "app".into()))
        );
        assert_eq!(
            quota(&quotas, "alice", "other"),
            Some((3.0, "alice".into(), String::new()))
        );
        assert_eq!(
            quota(&quotas, "bob", "app"),
            Some((2.0, "bob".into(), String::new()))
        );
        assert_eq!(resolve(&quotas, "bob", "app", CONSUMER_BYTE_RATE), None);
        quotas.remove(&entity(Some(Name::Default), None));
        assert_eq!(
            quota(&quotas, "bob", "app"),
            Some((1.0, String::new(), "app".into()))
        );
    }

    #[test]
    fn entities_and_values_are_checked() {
        assert!(entity(named("a"), None)
            .check(PRODUCER_BYTE_RATE, 10.0)
            .is_ok());
        assert_eq!(
            entity(named("a"), None).check("controller_mutation_rate", 10.0),
            Err(InvalidQuota::Key("controller_mutation_rate".into()))
        );
        assert!(entity(named("a"), None)
            .check(PRODUCER_BYTE_RATE, 0.0)
            .is_err());
        assert!(entity(named("a"), None)
            .check(PRODUCER_BYTE_RATE, f64::NAN)
            .is_err());
        assert!(entity(named(""), None)
            .check(PRODUCER_BYTE_RATE, 1.0)
            .is_err());
        assert_eq!(
            entity(None, None).check(PRODUCER_BYTE_RATE, 1.0),
            Err(InvalidQuota::Shape)
        );
        let ip = |name: Option<Name>| Entity {
            user: None,
            client_id: None,
            ip: name,
        };
        assert!(ip(named("10.0.0.1"))
            .check(CONNECTION_CREATION_RATE, 5.0)
            .is_ok());
        assert!(ip(Some(Name::Default))
            .check(CONNECTION_CREATION_RATE, 5.0)
            .is_ok());
        assert!(ip(named("nope"))
            .check(CONNECTION_CREATION_RATE, 5.0)
            .is_err());
        assert!(ip(named("10.0.0.1"))
            .check(PRODUCER_BYTE_RATE, 5.0)
            .is_err());
    }

    #[test]
    fn connections_per_ip_are_counted_and_capped() {
        let meters = Meters::default();
        let ip: std::net::IpAddr = "10.0.0.1".parse().unwrap();
        assert!(meters.open_connection(ip, 2));
        assert!(meters.open_connection(ip, 2));
        assert!(!meters.open_connection(ip, 2), "a third");
        meters.close_connection(ip);
        assert!(meters.open_connection(ip, 2));
        assert!(meters.open_connection("10.0.0.2".parse().unwrap(), 2));
        assert!(meters.open_connection(ip, 0), "no limit");
    }

    #[test]
    fn a_client_bursts_a_window_then_is_held_to_its_quota() {
        let window = Window::default();
        let start = Instant::now();
        let mut bucket = Bucket::full(start, 1.0, &window);
        // A window's worth (11 units at 1/s) passes at once.
        assert_eq!(bucket.take(start, 5.0, 1.0, &window), Duration::ZERO);
        assert_eq!(bucket.take(start, 6.0, 1.0, &window), Duration::ZERO);
        // Then 4 more: 4 s to refill.
        assert_eq!(
            bucket.take(start, 4.0, 1.0, &window),
            Duration::from_secs(4)
        );
        // 4 s later it is even; 10 s after that, 10 units are allowed.
        let later = start + Duration::from_secs(14);
        assert_eq!(bucket.take(later, 10.0, 1.0, &window), Duration::ZERO);
        // A throttle is at most the window's span; the debt stays.
        assert_eq!(
            bucket.take(later, 100.0, 1.0, &window),
            Duration::from_secs(11)
        );
        assert!(bucket.take(later + Duration::from_secs(11), 1.0, 1.0, &window) > Duration::ZERO);
    }
}
