//! Building blocks for `GetStats`: lock-free latency histograms and counter helpers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use owlmesh_proto::v1::{Counter, Histogram};

/// Bucket bounds in seconds, from 1 ms to 30 s: fetches, dispatch-to-archive times.
pub const LATENCY_BOUNDS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A latency histogram that any task can record into without locking.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    buckets: [AtomicU64; LATENCY_BOUNDS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl LatencyHistogram {
    /// Records one observation.
    pub fn record(&self, latency: Duration) {
        let seconds = latency.as_secs_f64();
        if let Some(index) = LATENCY_BOUNDS.iter().position(|bound| seconds <= *bound) {
            self.buckets[index].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(latency.as_micros() as u64, Ordering::Relaxed);
    }

    /// The histogram as `GetStats` reports it (cumulative, like Prometheus).
    pub fn to_proto(&self, name: &str) -> Histogram {
        let mut cumulative = 0;
        let cumulative_counts = self
            .buckets
            .iter()
            .map(|bucket| {
                cumulative += bucket.load(Ordering::Relaxed);
                cumulative
            })
            .collect();
        Histogram {
            name: name.into(),
            bounds: LATENCY_BOUNDS.to_vec(),
            cumulative_counts,
            sum: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            count: self.count.load(Ordering::Relaxed),
        }
    }

    /// The value below which `quantile` (0..=1) of observations fall, as a bucket bound.
    pub fn quantile(&self, quantile: f64) -> Option<f64> {
        quantile_of(&self.to_proto(""), quantile)
    }
}

/// The upper bound of the bucket holding `quantile` of a histogram's observations.
pub fn quantile_of(histogram: &Histogram, quantile: f64) -> Option<f64> {
    if histogram.count == 0 {
        return None;
    }
    let rank = (quantile * histogram.count as f64).ceil() as u64;
    histogram
        .bounds
        .iter()
        .zip(&histogram.cumulative_counts)
        .find(|(_, count)| **count >= rank)
        .map(|(bound, _)| *bound)
        .or(Some(f64::INFINITY))
}

/// A named counter for `GetStats`.
pub fn counter(name: &str, value: &AtomicU64) -> Counter {
    Counter {
        name: name.into(),
        value: value.load(Ordering::Relaxed),
        labels: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_cumulative_buckets() {
        let histogram = LatencyHistogram::default();
        histogram.record(Duration::from_millis(3));
        histogram.record(Duration::from_millis(40));
        histogram.record(Duration::from_secs(60));
        let proto = histogram.to_proto("fetch_seconds");
        assert_eq!(proto.count, 3);
        assert_eq!(proto.cumulative_counts[2], 1, "3 ms is within 5 ms");
        assert_eq!(proto.cumulative_counts[5], 2, "40 ms is within 50 ms");
        assert_eq!(
            *proto.cumulative_counts.last().unwrap(),
            2,
            "60 s is only in +Inf"
        );
        assert_eq!(histogram.quantile(0.5), Some(0.05));
        assert_eq!(histogram.quantile(1.0), Some(f64::INFINITY));
    }
}
