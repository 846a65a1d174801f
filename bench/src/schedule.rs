//! The open-loop schedule, and the run's clock.
//!
//! A producer at a fixed rate sends record `i` at its *intended* time,
//! `start + i / rate`, whatever happened before: if the sender was held
//! up (a full buffer, a stalled broker, a descheduled thread), the records
//! that fell due meanwhile go out at once when it resumes, and each one's
//! latency is counted from its intended time. A stall therefore shows up
//! as latency, never as a lower offered rate: the harness does not
//! coordinate with the system it measures ("coordinated omission").
//!
//! With rate `max` there is no schedule: a record is intended when it is
//! sent, and the producer's buffer limit is what holds the sender back.
//!
//! [`Pacer`] is plain arithmetic over nanoseconds, so the same code drives
//! the real producers and the simulated ones of the tests.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the run's origin (a monotonic clock).
pub type Nanos = u64;

pub const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// The run's time, shared by every thread of the harness: a monotonic
/// origin and what the wall clock said at it, so that a send time carried
/// in a record (as Unix nanoseconds) and the consumer's reading of it come
/// from the same monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct RunClock {
    origin: Instant,
    origin_unix_ns: u64,
}

impl RunClock {
    pub fn new() -> RunClock {
        let origin_unix_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|since| since.as_nanos() as u64)
            .unwrap_or(0);
        RunClock {
            origin: Instant::now(),
            origin_unix_ns,
        }
    }

    pub fn now(&self) -> Nanos {
        self.origin.elapsed().as_nanos() as Nanos
    }

    pub fn to_unix_ns(&self, at: Nanos) -> u64 {
        self.origin_unix_ns + at
    }

    /// The run time of a Unix timestamp written by [`RunClock::to_unix_ns`];
    /// zero for one before the origin.
    pub fn from_unix_ns(&self, unix_ns: u64) -> Nanos {
        unix_ns.saturating_sub(self.origin_unix_ns)
    }

    /// How long from now until `at` (zero if it has passed).
    pub fn until(&self, at: Nanos) -> Duration {
        Duration::from_nanos(at.saturating_sub(self.now()))
    }
}

impl Default for RunClock {
    fn default() -> Self {
        RunClock::new()
    }
}

/// One producer's schedule: which record is due next, and when.
#[derive(Debug, Clone)]
pub struct Pacer {
    start: Nanos,
    /// `None`: rate `max`.
    records_per_second: Option<u64>,
    /// Records handed out so far.
    next_index: u64,
}

impl Pacer {
    /// A schedule of `records_per_second` (`None`: as fast as possible)
    /// beginning at `start`.
    pub fn new(start: Nanos, records_per_second: Option<u64>) -> Pacer {
        if let Some(rate) = records_per_second {
            assert!(rate > 0, "a paced producer needs a positive rate");
        }
        Pacer {
            start,
            records_per_second,
            next_index: 0,
        }
    }

    /// The intended time of record `index`. Computed from the start each
    /// time (not by adding intervals), so it never drifts.
    pub fn intended(&self, index: u64) -> Nanos {
        match self.records_per_second {
            Some(rate) => {
                self.start
                    + (u128::from(index) * u128::from(NANOS_PER_SECOND) / u128::from(rate)) as u64
            }
            None => self.start,
        }
    }

    /// When the next record falls due; `now` with rate `max`.
    pub fn next_at(&self, now: Nanos) -> Nanos {
        match self.records_per_second {
            Some(_) => self.intended(self.next_index),
            None => now.max(self.start),
        }
    }

    /// The next record's intended time if it is due at `now`, and moves on
    /// to the record after it. With rate `max`, every record is due and
    /// intended now.
    pub fn take_due(&mut self, now: Nanos) -> Option<Nanos> {
        let at = self.next_at(now);
        if at > now {
            return None;
        }
        self.next_index += 1;
        Some(at)
    }

    /// Records handed out so far.
    pub fn taken(&self) -> u64 {
        self.next_index
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::LatencyRecorder;

    const MS: Nanos = 1_000_000;

    #[test]
    fn intended_times_follow_the_rate_without_drift() {
        let pacer = Pacer::new(5 * MS, Some(3));
        assert_eq!(pacer.intended(0), 5 * MS);
        assert_eq!(pacer.intended(1), 5 * MS + 333_333_333);
        assert_eq!(pacer.intended(3), 5 * MS + NANOS_PER_SECOND);
        assert_eq!(
            pacer.intended(3_000_000),
            5 * MS + 1_000_000 * NANOS_PER_SECOND
        );
    }

    #[test]
    fn nothing_is_due_before_its_time() {
        let mut pacer = Pacer::new(10 * MS, Some(1000));
        assert_eq!(pacer.take_due(9 * MS), None);
        assert_eq!(pacer.take_due(10 * MS), Some(10 * MS));
        assert_eq!(pacer.take_due(10 * MS), None);
        assert_eq!(pacer.next_at(10 * MS), 11 * MS);
    }

    /// A sender at 10,000 records/s whose every send takes 20 µs, except
    /// that it stalls for 100 ms at 0.5 s (as if the broker stopped
    /// answering and the producer's buffer were full). The intended send
    /// times keep the target rate through the stall, and the stall is in
    /// the latencies: every record that fell due during it waited.
    #[test]
    fn a_stalled_sender_shows_up_as_latency_not_as_a_lower_rate() {
        let rate = 10_000;
        let run = NANOS_PER_SECOND;
        let send_cost = 20_000;
        let (stall_at, stall) = (500 * MS, 100 * MS);
        let mut pacer = Pacer::new(0, Some(rate));
        let mut latencies = LatencyRecorder::new();
        let mut intended_times = Vec::new();
        let mut waits = Vec::new();
        let mut now = 0;
        let mut stalled = false;
        while pacer.next_at(now) < run {
            match pacer.take_due(now) {
                Some(intended) => {
                    if !stalled && now >= stall_at {
                        now += stall;
                        stalled = true;
                    }
                    now += send_cost;
                    latencies.record(now - intended);
                    intended_times.push(intended);
                    waits.push(now - intended);
                }
                // The real producer sleeps until the next record is due.
                None => now = pacer.next_at(now),
            }
        }

        // The offered rate: exactly `rate` intended sends, evenly spaced.
        assert_eq!(intended_times.len() as u64, rate);
        for pair in intended_times.windows(2) {
            assert_eq!(pair[1] - pair[0], 100_000, "intended 100 us apart");
        }
        // The stall is in the latencies: the record due when the stall
        // began waited all of it; the 1,000 records due during the 100 ms
        // waited, and so did the ~250 that fell due while the sender caught
        // up (it clears the backlog at 50,000/s - 10,000/s: in 25 ms).
        let summary = latencies.summary();
        assert!(summary.max_us >= 100_000.0, "max {} us", summary.max_us);
        let delayed = waits.iter().filter(|wait| **wait > MS).count();
        assert!(
            (1200..=1260).contains(&delayed),
            "{delayed} records waited more than 1 ms"
        );
        assert!(summary.p90_us >= 20.0);
        assert!(summary.p99_us > 50_000.0, "p99 {} us", summary.p99_us);
        // A closed-loop harness would have sent ~1,000 fewer records and
        // reported a p99 of 20 µs; here the median is untouched.
        assert!(summary.p50_us < 100.0, "p50 {} us", summary.p50_us);
    }

    #[test]
    fn max_rate_is_always_due_and_intended_now() {
        let mut pacer = Pacer::new(MS, None);
        assert_eq!(pacer.take_due(0), None, "not before the start");
        assert_eq!(pacer.take_due(2 * MS), Some(2 * MS));
        assert_eq!(pacer.take_due(3 * MS), Some(3 * MS));
        assert_eq!(pacer.taken(), 2);
    }

    #[test]
    fn unix_times_round_trip() {
        let clock = RunClock::new();
        let at = clock.now() + 5 * MS;
        assert_eq!(clock.from_unix_ns(clock.to_unix_ns(at)), at);
        assert_eq!(clock.from_unix_ns(0), 0);
    }
}
