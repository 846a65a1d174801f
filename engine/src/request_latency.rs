//! How long a shard takes to serve each request: one histogram per protocol
//! and API, on the shard the request arrived on, read by a metrics scrape.
//!
//! The time runs from the request's frame being read off its connection to
//! its response being ready for the connection's writer: the wait for an
//! in-flight slot, the hand-over to the partitions' owner shards, the
//! append and its fdatasync are in it. The time the bytes spent in the
//! socket before the shard read them, and the write of the response, are
//! not (a client's own latency holds them; the bench's `sluice-bench`
//! measures that). Set beside the client's figure, it tells the broker's
//! share of a tail from the machine's and the client's.
//!
//! Recording is two clock reads and an add per request, never per record.

use std::{cell::RefCell, collections::BTreeMap, time::Duration};

/// The upper bounds of the buckets, in microseconds: fine around the
/// milliseconds an fdatasync'ed produce takes, coarse beyond. A last
/// bucket (`+Inf`) holds the rest.
pub const BUCKET_BOUNDS_US: [u64; 26] = [
    50, 100, 200, 300, 400, 500, 750, 1_000, 1_250, 1_500, 2_000, 2_500, 3_000, 4_000, 5_000,
    7_500, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000,
];

/// The API code recorded for a native request whose API is unknown, so that
/// a client cannot make a label per code it invents.
pub const UNKNOWN_API: i16 = -1;

/// One histogram: counts per bucket (not cumulative), their sum and count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    /// `counts[i]` holds the requests over `BUCKET_BOUNDS_US[i - 1]` and at
    /// most `BUCKET_BOUNDS_US[i]`; the last, those over every bound.
    pub counts: [u64; BUCKET_BOUNDS_US.len() + 1],
    pub sum_us: u64,
}

impl Histogram {
    pub fn record(&mut self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = BUCKET_BOUNDS_US.partition_point(|&bound| bound < us);
        self.counts[bucket] += 1;
        self.sum_us = self.sum_us.saturating_add(us);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine += theirs;
        }
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
    }
}

/// Which requests a histogram counts: the protocol's name and the API's
/// code in that protocol.
pub type RequestKind = (&'static str, i16);

/// The histograms of one shard, on that shard.
#[derive(Debug, Default)]
pub struct RequestLatencies {
    by_kind: RefCell<BTreeMap<RequestKind, Histogram>>,
}

impl RequestLatencies {
    pub fn record(&self, kind: RequestKind, took: Duration) {
        self.by_kind
            .borrow_mut()
            .entry(kind)
            .or_default()
            .record(took);
    }

    pub fn snapshot(&self) -> Vec<(RequestKind, Histogram)> {
        self.by_kind
            .borrow()
            .iter()
            .map(|(kind, histogram)| (*kind, histogram.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(us: u64) -> Duration {
        Duration::from_micros(us)
    }

    #[test]
    fn a_time_on_a_bound_counts_in_that_bucket_and_beyond_all_in_the_last() {
        let mut histogram = Histogram::default();
        histogram.record(us(0));
        histogram.record(us(50));
        histogram.record(us(51));
        histogram.record(us(2_000));
        histogram.record(us(10_000_001));
        histogram.record(Duration::MAX);
        assert_eq!(histogram.counts[0], 2, "0 and 50 µs");
        assert_eq!(histogram.counts[1], 1, "51 µs");
        let two_ms = BUCKET_BOUNDS_US.iter().position(|&b| b == 2_000).unwrap();
        assert_eq!(histogram.counts[two_ms], 1);
        assert_eq!(histogram.counts[BUCKET_BOUNDS_US.len()], 2, "over 10 s");
        assert_eq!(histogram.count(), 6);
        assert_eq!(histogram.sum_us, u64::MAX, "the sum saturates");
    }

    #[test]
    fn merged_histograms_add_up_and_kinds_stay_apart() {
        let latencies = RequestLatencies::default();
        latencies.record(("kafka", 0), us(700));
        latencies.record(("kafka", 0), us(1_200));
        latencies.record(("native", 4), us(90));
        let snapshot = latencies.snapshot();
        assert_eq!(snapshot.len(), 2);
        let (kind, produce) = &snapshot[0];
        assert_eq!(*kind, ("kafka", 0));
        assert_eq!(produce.count(), 2);
        assert_eq!(produce.sum_us, 1_900);

        let mut total = produce.clone();
        total.merge(&snapshot[1].1);
        assert_eq!(total.count(), 3);
        assert_eq!(total.sum_us, 1_990);
        assert!(BUCKET_BOUNDS_US.windows(2).all(|pair| pair[0] < pair[1]));
    }
}
