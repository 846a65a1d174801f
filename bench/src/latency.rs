//! Latency histograms (HdrHistogram) and their summaries.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::schedule::Nanos;

/// The largest latency recorded as itself; longer ones are recorded as
/// this (and the summary's max says so by equalling it). A minute is far
/// past any useful latency of a broker, and keeps a histogram small.
pub const LATENCY_NS_MAX: u64 = 60 * 1_000_000_000;

/// Three significant digits: a reading is within 0.1% of the truth.
const SIGNIFICANT_DIGITS: u8 = 3;

/// Percentiles in the result file's spectrum, for the percentile plot.
const SPECTRUM_PERCENTILES: [f64; 17] = [
    0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.995, 99.999,
    99.9995, 99.9999, 100.0,
];

/// Latencies in nanoseconds. One per task or thread; merged for reports.
#[derive(Debug, Clone)]
pub struct LatencyRecorder {
    histogram: Histogram<u64>,
}

impl LatencyRecorder {
    pub fn new() -> LatencyRecorder {
        LatencyRecorder {
            histogram: Histogram::new_with_bounds(1, LATENCY_NS_MAX, SIGNIFICANT_DIGITS)
                .expect("valid histogram bounds"),
        }
    }

    pub fn record(&mut self, latency: Nanos) {
        self.histogram
            .saturating_record(latency.clamp(1, LATENCY_NS_MAX));
    }

    pub fn add(&mut self, other: &LatencyRecorder) {
        self.histogram
            .add(&other.histogram)
            .expect("histograms of the same bounds add");
    }

    pub fn clear(&mut self) {
        self.histogram.reset();
    }

    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The latency at `percentile` (0..=100), in microseconds; zero when
    /// empty.
    pub fn percentile_us(&self, percentile: f64) -> f64 {
        if self.histogram.is_empty() {
            return 0.0;
        }
        self.histogram.value_at_percentile(percentile) as f64 / 1000.0
    }

    pub fn summary(&self) -> LatencySummary {
        let empty = self.histogram.is_empty();
        let at = |percentile| self.percentile_us(percentile);
        LatencySummary {
            count: self.count(),
            mean_us: if empty {
                0.0
            } else {
                self.histogram.mean() / 1000.0
            },
            p50_us: at(50.0),
            p90_us: at(90.0),
            p99_us: at(99.0),
            p999_us: at(99.9),
            p9999_us: at(99.99),
            max_us: if empty {
                0.0
            } else {
                self.histogram.max() as f64 / 1000.0
            },
            spectrum: if empty {
                Vec::new()
            } else {
                SPECTRUM_PERCENTILES
                    .iter()
                    .map(|percentile| SpectrumPoint {
                        percentile: *percentile,
                        latency_us: at(*percentile),
                    })
                    .collect()
            },
        }
    }
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        LatencyRecorder::new()
    }
}

/// What a result file keeps of a histogram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub p9999_us: f64,
    pub max_us: f64,
    /// The latency at each of a fixed set of percentiles, 0 to 100.
    pub spectrum: Vec<SpectrumPoint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpectrumPoint {
    pub percentile: f64,
    pub latency_us: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Within the histogram's precision (0.1%), plus one for rounding.
    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() <= expected * 0.001 + 1.0
    }

    #[test]
    fn percentiles_of_one_to_a_hundred_thousand_microseconds() {
        let mut recorder = LatencyRecorder::new();
        for us in 1..=100_000u64 {
            recorder.record(us * 1000);
        }
        let summary = recorder.summary();
        assert_eq!(summary.count, 100_000);
        for (actual, expected) in [
            (summary.p50_us, 50_000.0),
            (summary.p90_us, 90_000.0),
            (summary.p99_us, 99_000.0),
            (summary.p999_us, 99_900.0),
            (summary.p9999_us, 99_990.0),
            (summary.max_us, 100_000.0),
            (summary.mean_us, 50_000.5),
        ] {
            assert!(close(actual, expected), "{actual} != {expected}");
        }
        assert_eq!(summary.spectrum.first().unwrap().percentile, 0.0);
        assert!(close(summary.spectrum.first().unwrap().latency_us, 1.0));
        assert_eq!(summary.spectrum.last().unwrap().latency_us, summary.max_us);
    }

    #[test]
    fn a_rare_outlier_shows_in_the_tail_only() {
        let mut recorder = LatencyRecorder::new();
        for _ in 0..9_999 {
            recorder.record(100_000); // 100 us
        }
        recorder.record(50_000_000); // 50 ms, once in 10,000
        let summary = recorder.summary();
        assert!(close(summary.p99_us, 100.0), "{}", summary.p99_us);
        assert!(close(summary.p999_us, 100.0), "{}", summary.p999_us);
        assert!(close(summary.p9999_us, 100.0), "{}", summary.p9999_us);
        assert!(close(summary.max_us, 50_000.0), "{}", summary.max_us);
    }

    #[test]
    fn merging_adds_counts_and_extremes_saturate() {
        let mut a = LatencyRecorder::new();
        let mut b = LatencyRecorder::new();
        a.record(1_000);
        b.record(0);
        b.record(LATENCY_NS_MAX * 10);
        a.add(&b);
        assert_eq!(a.count(), 3);
        assert!(close(a.summary().max_us, LATENCY_NS_MAX as f64 / 1000.0));
        a.clear();
        assert_eq!(a.summary().count, 0);
        assert_eq!(a.summary().p99_us, 0.0);
        assert!(a.summary().spectrum.is_empty());
    }
}
