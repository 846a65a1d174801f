//! When the keys of a URL are fetched again ([`Policy`], which holds no
//! clock or socket and is tested as such), and the thread that does it
//! ([`run`]).
//!
//! - At start: tries every [`START_BACKOFF_MIN`] (doubling up to
//!   [`START_BACKOFF_MAX`]) for at most [`START_TIMEOUT`], as Kafka tries
//!   with its `sasl.oauthbearer.jwks.endpoint.retry.backoff` defaults.
//! - Then every refresh interval after the last fetch that succeeded.
//! - When a token names a key the set lacks: at once, unless such a
//!   fetch was made less than [`UNKNOWN_KID_REFRESH_GAP`] ago. The
//!   authentications that asked wait for it; those that ask while a fetch
//!   is under way are answered when it ends.
//! - After a failed fetch (the keys in use are kept): again after
//!   [`RETRY_BACKOFF_MIN`], doubling per failure up to
//!   [`RETRY_BACKOFF_MAX`], never later than the interval.

use std::{
    sync::{
        atomic::Ordering,
        mpsc::{self, RecvTimeoutError},
        Arc, PoisonError, RwLock,
    },
    time::{Duration, Instant},
};

use futures_channel::oneshot;

use super::{fetch::Client, KeySet, FETCHES, FETCH_FAILURES, JWKS_BYTES_MAX};

/// Kafka's default `sasl.oauthbearer.jwks.endpoint.refresh.ms`: an hour.
pub const REFRESH_INTERVAL_DEFAULT: Duration = Duration::from_secs(3600);

/// The shortest refresh interval taken: a shorter one would poll the
/// identity provider harder than tokens with unknown keys may make the
/// broker do, and is most likely seconds written as milliseconds.
pub const REFRESH_INTERVAL_MIN: Duration = Duration::from_secs(10);

/// The longest interval kept (a longer setting means "a year"): keeps
/// instants in range.
const REFRESH_INTERVAL_MAX: Duration = Duration::from_secs(365 * 24 * 3600);

/// Fetches asked for by tokens that name a key the set lacks: at most one
/// per 10 s over the node, as Kafka's `RefreshingHttpsJwks` limits them,
/// so that made-up `kid`s cannot turn the broker against its identity
/// provider.
pub const UNKNOWN_KID_REFRESH_GAP: Duration = Duration::from_secs(10);

/// How long the broker's start waits for a first key set (Kafka's
/// default `sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms`).
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The first pause between tries at start (Kafka's default
/// `sasl.oauthbearer.jwks.endpoint.retry.backoff.ms`), doubling up to
/// the second.
pub const START_BACKOFF_MIN: Duration = Duration::from_millis(100);
pub const START_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// One fetch, from connecting to the body's last byte. An authentication
/// that waits for a fetch waits no longer than this and a second.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The pause after a failed refresh, doubling per failure up to the
/// second: an endpoint that is down is tried again soon, but not hammered.
pub const RETRY_BACKOFF_MIN: Duration = Duration::from_secs(1);
pub const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Authentications that may wait at once for a refresh; past that, a
/// token with an unknown key is refused without one.
pub const REQUESTS_WAITING_MAX: usize = 1024;

/// When to fetch. One per refresher thread.
#[derive(Debug, Clone)]
pub struct Policy {
    interval: Duration,
    due: Instant,
    last_for_unknown_kid: Option<Instant>,
    failures: u32,
}

impl Policy {
    /// After the first fetch, which succeeded at `now`.
    pub fn new(interval: Duration, now: Instant) -> Policy {
        let interval = interval.min(REFRESH_INTERVAL_MAX);
        Policy {
            interval,
            due: now + interval,
            last_for_unknown_kid: None,
            failures: 0,
        }
    }

    /// When the next fetch is due without being asked for.
    pub fn due(&self) -> Instant {
        self.due
    }

    /// Fetches that failed since the last that succeeded.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// A token named a key the set lacks at `now`: whether to fetch now.
    pub fn unknown_kid(&mut self, now: Instant) -> bool {
        if self
            .last_for_unknown_kid
            .is_some_and(|last| now < last + UNKNOWN_KID_REFRESH_GAP)
        {
            return false;
        }
        self.last_for_unknown_kid = Some(now);
        true
    }

    /// A fetch ended at `now`.
    pub fn fetched(&mut self, now: Instant, succeeded: bool) {
        if succeeded {
            self.failures = 0;
            self.due = now + self.interval;
        } else {
            self.failures = self.failures.saturating_add(1);
            let backoff = doubled(RETRY_BACKOFF_MIN, self.failures - 1, RETRY_BACKOFF_MAX);
            self.due = now + backoff.min(self.interval);
        }
    }
}

/// `base` doubled `times` times, at most `max`.
fn doubled(base: Duration, times: u32, max: Duration) -> Duration {
    base.saturating_mul(2u32.saturating_pow(times.min(31)))
        .min(max)
}

/// The pause after the `attempt`th failed try at start (from 0).
pub fn start_backoff(attempt: u32) -> Duration {
    doubled(START_BACKOFF_MIN, attempt, START_BACKOFF_MAX)
}

/// Why the start got no key set: the tries, and the last failure.
#[derive(Debug)]
pub struct StartFailure {
    pub attempts: u32,
    pub last: String,
}

/// One fetch, and the key set of its body.
fn fetch_keys(client: &Client, timeout: Duration) -> Result<KeySet, String> {
    FETCHES.fetch_add(1, Ordering::Relaxed);
    let result = client
        .get(JWKS_BYTES_MAX, timeout)
        .map_err(|error| error.to_string())
        .and_then(|body| {
            let text = String::from_utf8(body).map_err(|_| "a body not in UTF-8".to_string())?;
            KeySet::parse(&text).map_err(|error| format!("the body: {error}"))
        });
    if result.is_err() {
        FETCH_FAILURES.fetch_add(1, Ordering::Relaxed);
    }
    result
}

fn swap(current: &RwLock<Arc<KeySet>>, set: KeySet) -> Arc<KeySet> {
    std::mem::replace(
        &mut *current.write().unwrap_or_else(PoisonError::into_inner),
        Arc::new(set),
    )
}

/// The refresher thread: the first fetch (its outcome sent to
/// `started`), then refreshes as [`Policy`] says and as `requests` ask,
/// until every sender of `requests` is gone.
pub fn run(
    client: Client,
    interval: Duration,
    current: Arc<RwLock<Arc<KeySet>>>,
    requests: mpsc::Receiver<oneshot::Sender<()>>,
    started: mpsc::Sender<Result<(), StartFailure>>,
) {
    let url = client.url().to_string();
    let deadline = Instant::now() + START_TIMEOUT;
    let mut attempts = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        attempts += 1;
        match fetch_keys(&client, FETCH_TIMEOUT.min(left)) {
            Ok(set) => {
                tracing::info!(%url, kids = ?set.kids(), "OAUTHBEARER keys fetched");
                swap(&current, set);
                if started.send(Ok(())).is_err() {
                    return;
                }
                break;
            }
            Err(last) => {
                let pause = start_backoff(attempts - 1);
                let left = deadline.saturating_duration_since(Instant::now());
                if left <= pause {
                    let _ = started.send(Err(StartFailure { attempts, last }));
                    return;
                }
                tracing::info!(%url, error = %last, "OAUTHBEARER keys not fetched yet; trying again");
                std::thread::sleep(pause);
            }
        }
    }
    let mut policy = Policy::new(interval, Instant::now());
    loop {
        let wait = policy.due().saturating_duration_since(Instant::now());
        let mut waiting = Vec::new();
        let fetch = match requests.recv_timeout(wait) {
            Ok(answer) => {
                waiting.push(answer);
                waiting.extend(requests.try_iter());
                policy.unknown_kid(Instant::now())
            }
            Err(RecvTimeoutError::Timeout) => true,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if fetch {
            let result = fetch_keys(&client, FETCH_TIMEOUT);
            policy.fetched(Instant::now(), result.is_ok());
            match result {
                Ok(set) => {
                    let kids: Vec<String> = set.kids().into_iter().map(str::to_string).collect();
                    let before = swap(&current, set);
                    if before.kids() != kids {
                        tracing::info!(%url, before = ?before.kids(), now = ?kids, "OAUTHBEARER keys changed");
                    } else {
                        tracing::debug!(%url, "OAUTHBEARER keys refreshed, unchanged");
                    }
                }
                Err(error) => tracing::warn!(
                    %url,
                    %error,
                    failures = policy.failures(),
                    kept = ?current.read().unwrap_or_else(PoisonError::into_inner).kids(),
                    retry_in_ms = policy.due().saturating_duration_since(Instant::now()).as_millis() as u64,
                    "OAUTHBEARER keys could not be refreshed; the keys in use are kept"
                ),
            }
        }
        for answer in waiting {
            let _ = answer.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn s(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }

    #[test]
    fn refreshes_come_every_interval_after_a_success() {
        let start = Instant::now();
        let mut policy = Policy::new(HOUR, start);
        assert_eq!(policy.due(), start + HOUR);
        policy.fetched(start + HOUR + s(3), true);
        assert_eq!(policy.due(), start + HOUR * 2 + s(3));
        // A refresh for an unknown key moves the next one on too.
        let early = start + HOUR + s(100);
        assert!(policy.unknown_kid(early));
        policy.fetched(early, true);
        assert_eq!(policy.due(), early + HOUR);
    }

    #[test]
    fn unknown_kids_fetch_at_most_once_per_gap() {
        let start = Instant::now();
        let mut policy = Policy::new(HOUR, start);
        // Right after the first fetch: the first unknown kid fetches.
        assert!(policy.unknown_kid(start + s(1)));
        policy.fetched(start + s(2), true);
        assert!(!policy.unknown_kid(start + s(2)));
        assert!(!policy.unknown_kid(start + s(10)));
        assert!(policy.unknown_kid(start + s(11)));
        // A failed fetch does not lift the limit.
        policy.fetched(start + s(12), false);
        assert!(!policy.unknown_kid(start + s(20)));
        assert!(policy.unknown_kid(start + s(21)));
    }

    #[test]
    fn failures_are_retried_sooner_with_a_doubling_pause() {
        let start = Instant::now();
        let mut policy = Policy::new(HOUR, start);
        let mut now = start + HOUR;
        let mut pauses = Vec::new();
        for _ in 0..9 {
            policy.fetched(now, false);
            pauses.push(policy.due() - now);
            now = policy.due();
        }
        assert_eq!(
            pauses,
            [1, 2, 4, 8, 16, 32, 60, 60, 60].map(s),
            "doubling from 1 s to 60 s"
        );
        assert_eq!(policy.failures(), 9);
        policy.fetched(now, true);
        assert_eq!((policy.failures(), policy.due()), (0, now + HOUR));

        // Never later than the interval.
        let mut policy = Policy::new(s(20), start);
        for _ in 0..10 {
            policy.fetched(start, false);
        }
        assert_eq!(policy.due(), start + s(20));
    }

    #[test]
    fn start_tries_back_off_and_huge_intervals_stay_in_range() {
        let pauses: Vec<u64> = (0..7)
            .map(|attempt| start_backoff(attempt).as_millis() as u64)
            .collect();
        assert_eq!(pauses, [100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(start_backoff(u32::MAX), START_BACKOFF_MAX);
        let start = Instant::now();
        let mut policy = Policy::new(Duration::from_millis(u64::MAX), start);
        assert_eq!(policy.due(), start + REFRESH_INTERVAL_MAX);
        policy.fetched(start, true);
        for _ in 0..100 {
            policy.fetched(start, false);
        }
        assert_eq!(policy.due(), start + RETRY_BACKOFF_MAX);
    }
}
