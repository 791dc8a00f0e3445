//! Bounded in-memory history of the dashboard's series: the last minutes at full resolution,
//! then older points folded into coarser buckets, then forgotten. Memory stays flat however
//! long the dashboard runs: every series holds a fixed number of points at most, and the
//! number of series is capped.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::Duration;

use serde::Serialize;

use crate::{MonitoringError, Result};

/// Full resolution of recent points.
pub(crate) const DEFAULT_FINE_RESOLUTION: Duration = Duration::from_secs(1);
/// How far back points are kept at full resolution.
pub(crate) const DEFAULT_FINE_SPAN: Duration = Duration::from_secs(5 * 60);
/// Resolution of older points.
pub(crate) const DEFAULT_COARSE_RESOLUTION: Duration = Duration::from_secs(10);
/// How far back older points are kept at all.
pub(crate) const DEFAULT_COARSE_SPAN: Duration = Duration::from_secs(60 * 60);
/// Series kept at most; the ones updated longest ago go first.
pub(crate) const DEFAULT_MAX_SERIES: usize = 256;

/// Resolutions and spans of a [`History`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryConfig {
    /// Full resolution of recent points.
    pub fine_resolution: Duration,
    /// How far back points are kept at full resolution.
    pub fine_span: Duration,
    /// Resolution of older points (a multiple of the fine one reads best).
    pub coarse_resolution: Duration,
    /// How far back older points are kept.
    pub coarse_span: Duration,
    /// Series kept at most.
    pub max_series: usize,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            fine_resolution: DEFAULT_FINE_RESOLUTION,
            fine_span: DEFAULT_FINE_SPAN,
            coarse_resolution: DEFAULT_COARSE_RESOLUTION,
            coarse_span: DEFAULT_COARSE_SPAN,
            max_series: DEFAULT_MAX_SERIES,
        }
    }
}

impl HistoryConfig {
    /// Checks that the resolutions and spans nest: fine within coarse.
    pub fn validate(&self) -> Result<()> {
        if self.fine_resolution.is_zero() || self.fine_resolution > self.fine_span {
            return Err(MonitoringError::invalid(
                "history.fine_resolution",
                "must be longer than zero and at most the fine span",
            ));
        }
        if self.coarse_resolution < self.fine_resolution
            || self.coarse_resolution > self.coarse_span
        {
            return Err(MonitoringError::invalid(
                "history.coarse_resolution",
                "must lie between the fine resolution and the coarse span",
            ));
        }
        if self.coarse_span < self.fine_span {
            return Err(MonitoringError::invalid(
                "history.coarse_span",
                "must be at least the fine span",
            ));
        }
        if self.max_series == 0 {
            return Err(MonitoringError::invalid(
                "history.max_series",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    fn fine_capacity(&self) -> usize {
        capacity(self.fine_span, self.fine_resolution)
    }

    fn coarse_capacity(&self) -> usize {
        capacity(self.coarse_span, self.coarse_resolution)
    }
}

/// Points that fit in `span` at `resolution`, plus one for the partly covered edge.
fn capacity(span: Duration, resolution: Duration) -> usize {
    (span.as_millis() / resolution.as_millis().max(1)) as usize + 1
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// One point of a series: when (ms since the Unix epoch) and its value. Serialized as
/// `[at_ms, value]`, the shape the page's charts read.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point(pub i64, pub f64);

impl Point {
    /// When the point was taken, ms since the Unix epoch.
    pub fn at_ms(&self) -> i64 {
        self.0
    }

    /// Its value.
    pub fn value(&self) -> f64 {
        self.1
    }
}

/// Fine points that aged out, being averaged into one coarse point.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    start_ms: i64,
    at_sum: i128,
    value_sum: f64,
    count: u32,
}

impl Bucket {
    fn new(start_ms: i64) -> Self {
        Self {
            start_ms,
            at_sum: 0,
            value_sum: 0.0,
            count: 0,
        }
    }

    fn add(&mut self, point: Point) {
        self.at_sum += i128::from(point.at_ms());
        self.value_sum += point.value();
        self.count += 1;
    }

    /// The mean of its points. Averaging the times too keeps the coarse point before every
    /// remaining fine point, even while the bucket is still filling.
    fn point(&self) -> Point {
        let count = self.count.max(1);
        let at = self.at_sum / i128::from(count);
        Point(at as i64, self.value_sum / f64::from(count))
    }
}

/// One series: recent points at full resolution, older ones averaged into coarse buckets.
#[derive(Debug, Clone, Default)]
pub(crate) struct Series {
    fine: VecDeque<Point>,
    coarse: VecDeque<Point>,
    filling: Option<Bucket>,
}

impl Series {
    /// Appends a point, then ages the series to `point`'s time.
    fn record(&mut self, config: &HistoryConfig, point: Point) {
        let half_step = millis(config.fine_resolution) / 2;
        match self.fine.back_mut() {
            // Closer than the resolution to the previous point: the newer value wins.
            Some(last) if point.at_ms() - last.at_ms() < half_step => *last = point,
            _ => self.fine.push_back(point),
        }
        self.age(config, point.at_ms());
    }

    /// Moves fine points older than the fine span into coarse buckets and drops coarse
    /// points older than the coarse span.
    fn age(&mut self, config: &HistoryConfig, now_ms: i64) {
        let fine_from = now_ms.saturating_sub(millis(config.fine_span));
        while let Some(oldest) = self.fine.front().copied() {
            if oldest.at_ms() >= fine_from && self.fine.len() <= config.fine_capacity() {
                break;
            }
            self.fine.pop_front();
            self.fold(config, oldest);
        }
        let coarse_from = now_ms.saturating_sub(millis(config.coarse_span));
        if self
            .filling
            .is_some_and(|bucket| bucket.point().at_ms() < coarse_from)
        {
            self.filling = None;
        }
        while let Some(oldest) = self.coarse.front() {
            if oldest.at_ms() >= coarse_from && self.coarse.len() <= config.coarse_capacity() {
                break;
            }
            self.coarse.pop_front();
        }
    }

    /// Adds an aged-out fine point to the coarse bucket of its time.
    fn fold(&mut self, config: &HistoryConfig, point: Point) {
        let width = millis(config.coarse_resolution).max(1);
        let start_ms = point.at_ms().div_euclid(width) * width;
        let bucket = match self.filling {
            Some(bucket) if bucket.start_ms == start_ms => self.filling.as_mut(),
            _ => {
                if let Some(done) = self.filling.replace(Bucket::new(start_ms)) {
                    self.coarse.push_back(done.point());
                }
                self.filling.as_mut()
            }
        };
        if let Some(bucket) = bucket {
            bucket.add(point);
        }
    }

    /// Every point, oldest first: coarse, then the bucket being filled, then fine.
    pub(crate) fn points(&self) -> Vec<Point> {
        let filling = self.filling.map(|bucket| bucket.point());
        self.coarse
            .iter()
            .copied()
            .chain(filling)
            .chain(self.fine.iter().copied())
            .collect()
    }

    /// The newest point.
    pub(crate) fn last(&self) -> Option<Point> {
        self.fine
            .back()
            .copied()
            .or_else(|| self.filling.map(|bucket| bucket.point()))
            .or_else(|| self.coarse.back().copied())
    }

    /// Points held now (for tests and the memory bound).
    pub(crate) fn len(&self) -> usize {
        self.fine.len() + self.coarse.len() + usize::from(self.filling.is_some())
    }

    /// Whether no point is left.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Every series of the dashboard by key, bounded in points and in series.
#[derive(Debug, Clone)]
pub(crate) struct History<K> {
    config: HistoryConfig,
    series: HashMap<K, Series>,
}

impl<K: Eq + Hash + Clone> History<K> {
    /// An empty history.
    pub(crate) fn new(config: HistoryConfig) -> Self {
        Self {
            config,
            series: HashMap::new(),
        }
    }

    /// Records one frame: the value of each listed series at `at_ms`. Series missing from
    /// the frame age too, and are forgotten once their last point is older than the
    /// coarse span.
    pub(crate) fn record(&mut self, at_ms: i64, frame: impl IntoIterator<Item = (K, f64)>) {
        for (key, value) in frame {
            self.series
                .entry(key)
                .or_default()
                .record(&self.config, Point(at_ms, value));
        }
        for series in self.series.values_mut() {
            series.age(&self.config, at_ms);
        }
        self.series.retain(|_, series| !series.is_empty());
        self.cap_series();
    }

    /// Drops the series updated longest ago while there are too many.
    fn cap_series(&mut self) {
        let excess = self.series.len().saturating_sub(self.config.max_series);
        if excess == 0 {
            return;
        }
        let mut by_age: Vec<(i64, K)> = self
            .series
            .iter()
            .map(|(key, series)| (series.last().map_or(i64::MIN, |p| p.at_ms()), key.clone()))
            .collect();
        by_age.sort_by_key(|(at, _)| *at);
        for (_, key) in by_age.into_iter().take(excess) {
            self.series.remove(&key);
        }
    }

    /// Every series with its key, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &Series)> {
        self.series.iter()
    }

    /// One series.
    #[cfg(test)]
    pub(crate) fn get(&self, key: &K) -> Option<&Series> {
        self.series.get(key)
    }

    /// How many series are held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.series.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1000;

    fn config() -> HistoryConfig {
        HistoryConfig::default()
    }

    /// A history fed one frame per second for `seconds`, value = the second's number.
    fn fed(seconds: i64) -> History<&'static str> {
        let mut history = History::new(config());
        for second in 0..seconds {
            history.record(second * SECOND, [("depth", second as f64)]);
        }
        history
    }

    #[test]
    fn recent_points_keep_full_resolution() {
        let history = fed(120);
        let points = history.get(&"depth").unwrap().points();
        assert_eq!(points.len(), 120);
        assert!(
            points
                .windows(2)
                .all(|w| w[1].at_ms() - w[0].at_ms() == SECOND)
        );
    }

    #[test]
    fn points_older_than_five_minutes_are_averaged_into_ten_second_buckets() {
        let history = fed(600);
        let points = history.get(&"depth").unwrap().points();
        let (coarse, fine): (Vec<Point>, Vec<Point>) =
            points.iter().partition(|p| p.at_ms() < 299 * SECOND);
        assert_eq!(fine.len(), 301, "the last five minutes at 1 s");
        assert_eq!(coarse.len(), 30, "the 5 minutes before in 10 s buckets");
        // The bucket [0 s, 10 s) holds the values 0..=9: mean 4.5 at mean time 4.5 s.
        assert_eq!(coarse[0], Point(4500, 4.5));
        assert_eq!(coarse[1], Point(14500, 14.5));
        assert!(points.windows(2).all(|w| w[0].at_ms() < w[1].at_ms()));
    }

    #[test]
    fn memory_stays_flat_over_long_runs() {
        let history = fed(3 * 3600);
        let series = history.get(&"depth").unwrap();
        let bound = config().fine_capacity() + config().coarse_capacity() + 1;
        assert!(series.len() <= bound, "{} points", series.len());
        let oldest = series.points()[0].at_ms();
        assert!(
            oldest >= (2 * 3600 - 1) * SECOND,
            "older than an hour: {oldest}"
        );
    }

    #[test]
    fn series_that_stop_are_forgotten_after_the_coarse_span() {
        let mut history = History::new(config());
        history.record(0, [("gone", 1.0), ("live", 1.0)]);
        for second in 1..=3601 {
            history.record(second * SECOND, [("live", 2.0)]);
        }
        assert!(history.get(&"gone").is_none());
        assert!(history.get(&"live").is_some());
    }

    #[test]
    fn the_number_of_series_is_capped_dropping_the_stalest() {
        let mut history = History::new(HistoryConfig {
            max_series: 2,
            ..config()
        });
        history.record(0, [("a", 1.0)]);
        history.record(SECOND, [("b", 1.0)]);
        history.record(2 * SECOND, [("c", 1.0)]);
        assert_eq!(history.len(), 2);
        assert!(history.get(&"a").is_none());
    }

    #[test]
    fn samples_closer_than_the_resolution_replace_the_last_one() {
        let mut history = History::new(config());
        history.record(0, [("depth", 1.0)]);
        history.record(200, [("depth", 2.0)]);
        history.record(1000, [("depth", 3.0)]);
        let points = history.get(&"depth").unwrap().points();
        assert_eq!(points, [Point(200, 2.0), Point(1000, 3.0)]);
    }
}
