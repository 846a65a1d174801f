//! Disk operations of a log that took long, logged: an operator (or a
//! benchmark's bad second) can then tell a slow disk from a slow broker. At
//! most one line a second per log, with how many were slow since the last
//! and the worst of them.

use std::time::{Duration, Instant};

use super::State;

/// An operation at least this long is slow: ten times the usual fdatasync
/// here, and more than a whole latency budget.
pub const SLOW_IO: Duration = Duration::from_millis(20);

/// At most one report a second per log.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// What a log has seen of slow operations since its last report.
#[derive(Debug, Default)]
pub(super) struct SlowIo {
    last_report: Option<Instant>,
    count: u32,
    worst: Duration,
    worst_what: &'static str,
}

/// Notes that `what` (a write, an fdatasync, a roll) took `took`; reports
/// if it was slow and no report was made in the last second. Returns
/// whether it reported.
pub(super) fn note(state: &mut State, what: &'static str, took: Duration) -> bool {
    note_at(&mut state.slow_io, &state.dir, what, took, Instant::now())
}

fn note_at(
    slow: &mut SlowIo,
    dir: &std::path::Path,
    what: &'static str,
    took: Duration,
    now: Instant,
) -> bool {
    if took < SLOW_IO {
        return false;
    }
    slow.count += 1;
    if took > slow.worst {
        slow.worst = took;
        slow.worst_what = what;
    }
    if slow
        .last_report
        .is_some_and(|last| now.duration_since(last) < REPORT_EVERY)
    {
        return false;
    }
    tracing::warn!(
        log = %dir.display(), slow = slow.count, worst = slow.worst_what,
        worst_ms = slow.worst.as_secs_f64() * 1000.0,
        "slow disk: operations over {} ms since the last report", SLOW_IO.as_millis()
    );
    *slow = SlowIo {
        last_report: Some(now),
        ..SlowIo::default()
    };
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_operations_are_reported_at_most_once_a_second_and_counted() {
        let dir = std::path::Path::new("/log");
        let mut slow = SlowIo::default();
        let start = Instant::now();
        let ms = Duration::from_millis;
        assert!(!note_at(&mut slow, dir, "fdatasync", ms(19), start));
        assert_eq!(slow.count, 0, "fast ones are not counted");
        assert!(note_at(&mut slow, dir, "fdatasync", ms(25), start));
        assert_eq!(slow.count, 0, "reported and reset");
        assert!(!note_at(&mut slow, dir, "write", ms(40), start + ms(10)));
        assert!(!note_at(&mut slow, dir, "roll", ms(30), start + ms(500)));
        assert_eq!(
            (slow.count, slow.worst, slow.worst_what),
            (2, ms(40), "write")
        );
        assert!(note_at(
            &mut slow,
            dir,
            "fdatasync",
            ms(21),
            start + ms(1000)
        ));
        assert_eq!(slow.count, 0);
    }
}
