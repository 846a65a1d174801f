//! What a harness thread counts, and the reports it sends to the main
//! thread: a [`SecondReport`] for each second of the run (by completion
//! time) and a [`FinalReport`] at the end.

use crate::{
    latency::LatencyRecorder,
    schedule::{Nanos, NANOS_PER_SECOND},
};

/// Counts of one second, by the time things happened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecondCounts {
    pub sent: u64,
    pub acknowledged: u64,
    pub acknowledged_bytes: u64,
    pub consumed: u64,
    pub consumed_bytes: u64,
    pub errors: u64,
}

impl SecondCounts {
    pub fn add(&mut self, other: &SecondCounts) {
        self.sent += other.sent;
        self.acknowledged += other.acknowledged;
        self.acknowledged_bytes += other.acknowledged_bytes;
        self.consumed += other.consumed;
        self.consumed_bytes += other.consumed_bytes;
        self.errors += other.errors;
    }
}

#[derive(Debug)]
pub struct SecondReport {
    pub second: u64,
    pub counts: SecondCounts,
    /// Latencies of records acknowledged / consumed in this second.
    pub produce_ack: LatencyRecorder,
    pub end_to_end: LatencyRecorder,
}

#[derive(Debug, Default)]
pub struct FinalReport {
    pub sent: u64,
    pub acknowledged: u64,
    pub consumed: u64,
    pub produce_errors: u64,
    pub consume_errors: u64,
    pub retries: u64,
    pub unacknowledged: u64,
    /// Latencies of the records intended in the measured window.
    pub produce_ack: LatencyRecorder,
    pub end_to_end: LatencyRecorder,
}

pub enum Report {
    Second { worker: usize, report: SecondReport },
    Final { worker: usize, report: FinalReport },
}

/// The counters of one harness thread, shared by its producer and
/// consumer tasks (one per executor, never crossing threads).
pub struct WorkerMetrics {
    /// The run's start and measured window, in run nanoseconds.
    start: Nanos,
    measured: std::ops::Range<Nanos>,
    current: SecondReport,
    finished: Vec<SecondReport>,
    pub totals: FinalReport,
}

impl WorkerMetrics {
    pub fn new(start: Nanos, measured: std::ops::Range<Nanos>) -> WorkerMetrics {
        WorkerMetrics {
            start,
            measured,
            current: empty_second(0),
            finished: Vec::new(),
            totals: FinalReport::default(),
        }
    }

    /// Closes every second before the one `now` is in.
    pub fn roll(&mut self, now: Nanos) {
        let second = now.saturating_sub(self.start) / NANOS_PER_SECOND;
        while self.current.second < second {
            let next = empty_second(self.current.second + 1);
            self.finished
                .push(std::mem::replace(&mut self.current, next));
        }
    }

    /// The closed seconds not yet reported.
    pub fn take_finished(&mut self) -> Vec<SecondReport> {
        std::mem::take(&mut self.finished)
    }

    /// Every second, the current one too, and the totals: the end.
    pub fn finish(mut self) -> (Vec<SecondReport>, FinalReport) {
        let last = std::mem::replace(&mut self.current, empty_second(0));
        self.finished.push(last);
        (self.finished, self.totals)
    }

    pub fn sent(&mut self, now: Nanos) {
        self.roll(now);
        self.current.counts.sent += 1;
        self.totals.sent += 1;
    }

    pub fn acknowledged(&mut self, now: Nanos, intended: Nanos, bytes: usize) {
        self.roll(now);
        let latency = now.saturating_sub(intended);
        self.current.counts.acknowledged += 1;
        self.current.counts.acknowledged_bytes += bytes as u64;
        self.current.produce_ack.record(latency);
        self.totals.acknowledged += 1;
        if self.measured.contains(&intended) {
            self.totals.produce_ack.record(latency);
        }
    }

    pub fn produce_failed(&mut self, now: Nanos) {
        self.roll(now);
        self.current.counts.errors += 1;
        self.totals.produce_errors += 1;
    }

    /// A record the run ended without hearing about.
    pub fn unacknowledged(&mut self) {
        self.totals.unacknowledged += 1;
    }

    /// `intended`: the send time the record carried, `None` if it carried
    /// none the harness can read.
    pub fn consumed(&mut self, now: Nanos, intended: Option<Nanos>, bytes: usize) {
        self.roll(now);
        self.current.counts.consumed += 1;
        self.current.counts.consumed_bytes += bytes as u64;
        self.totals.consumed += 1;
        if let Some(intended) = intended {
            let latency = now.saturating_sub(intended);
            self.current.end_to_end.record(latency);
            if self.measured.contains(&intended) {
                self.totals.end_to_end.record(latency);
            }
        }
    }

    pub fn consume_failed(&mut self, now: Nanos) {
        self.roll(now);
        self.current.counts.errors += 1;
        self.totals.consume_errors += 1;
    }

    /// `count` more requests were sent again.
    pub fn retried(&mut self, count: u64) {
        self.totals.retries += count;
    }
}

fn empty_second(second: u64) -> SecondReport {
    SecondReport {
        second,
        counts: SecondCounts::default(),
        produce_ack: LatencyRecorder::new(),
        end_to_end: LatencyRecorder::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Nanos = NANOS_PER_SECOND;

    #[test]
    fn counts_land_in_the_second_they_happen_and_only_the_window_is_measured() {
        let start = 10 * S;
        let mut metrics = WorkerMetrics::new(start, start + S..start + 3 * S);
        metrics.sent(start);
        metrics.acknowledged(start + S / 2, start, 100); // warm-up
        metrics.sent(start + S);
        metrics.acknowledged(start + 2 * S + 1, start + S, 100); // measured, acked in second 2
        metrics.consumed(start + 2 * S + 2, Some(start + S), 100);
        metrics.consumed(start + 2 * S + 3, None, 100);
        metrics.produce_failed(start + 4 * S);
        let finished = metrics.take_finished();
        assert_eq!(
            finished.iter().map(|s| s.second).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        assert_eq!(finished[0].counts.acknowledged, 1);
        assert_eq!(finished[1].counts.sent, 1);
        assert_eq!(finished[2].counts.acknowledged, 1);
        assert_eq!(finished[2].counts.consumed, 2);
        assert_eq!(finished[2].end_to_end.count(), 1);
        let (rest, totals) = metrics.finish();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].second, 4);
        assert_eq!(rest[0].counts.errors, 1);
        assert_eq!(
            (totals.sent, totals.acknowledged, totals.consumed),
            (2, 2, 2)
        );
        assert_eq!(
            totals.produce_ack.count(),
            1,
            "the warm-up ack is not measured"
        );
        assert_eq!(totals.end_to_end.count(), 1);
        assert_eq!(totals.produce_errors, 1);
    }
}
