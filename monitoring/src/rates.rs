//! Per-second rates from monotonic counters: the increase between two polls over the time
//! between the instance's own snapshots (its `taken_at_ms`, not the dashboard's clock, so a
//! slow answer does not look like a burst).

use std::collections::{BTreeMap, HashMap};

use owlmesh_proto::v1::{Counter, Stats};

/// One reading of a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reading {
    /// The counter's value.
    pub value: u64,
    /// When the instance took the snapshot, ms since the Unix epoch.
    pub at_ms: i64,
}

/// The per-second rate between two readings, or `None` when no time passed between them.
/// When the instance restarted in between (`restarted`, or a value that went down) the
/// counter started again from zero, so the whole later value is the increase, as
/// Prometheus' `rate()` assumes.
pub(crate) fn rate_between(earlier: Reading, later: Reading, restarted: bool) -> Option<f64> {
    let elapsed_ms = later.at_ms - earlier.at_ms;
    if elapsed_ms <= 0 {
        return None;
    }
    let increase = if restarted || later.value < earlier.value {
        later.value
    } else {
        later.value - earlier.value
    };
    Some(increase as f64 * 1000.0 / elapsed_ms as f64)
}

/// A counter's key among an instance's counters: its name, with its labels when it has any.
pub(crate) fn counter_key(counter: &Counter) -> String {
    if counter.labels.is_empty() {
        return counter.name.clone();
    }
    let labels: BTreeMap<&String, &String> = counter.labels.iter().collect();
    let labels: Vec<String> = labels
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    format!("{}{{{}}}", counter.name, labels.join(","))
}

/// The latest rate of each counter of one instance, updated at every successful poll.
#[derive(Debug, Clone, Default)]
pub(crate) struct CounterRates {
    readings: HashMap<String, Reading>,
    uptime_ms: u64,
    rates: BTreeMap<String, f64>,
}

impl CounterRates {
    /// Takes a new snapshot of the instance into account.
    pub(crate) fn observe(&mut self, stats: &Stats) {
        let restarted = stats.uptime_ms < self.uptime_ms;
        self.uptime_ms = stats.uptime_ms;
        let mut readings = HashMap::with_capacity(stats.counters.len());
        for counter in &stats.counters {
            let key = counter_key(counter);
            let reading = Reading {
                value: counter.value,
                at_ms: stats.taken_at_ms,
            };
            let rate = self
                .readings
                .get(&key)
                .and_then(|earlier| rate_between(*earlier, reading, restarted));
            if let Some(rate) = rate {
                self.rates.insert(key.clone(), rate);
            }
            readings.insert(key, reading);
        }
        // Counters the instance no longer reports have no rate any more.
        self.rates.retain(|key, _| readings.contains_key(key));
        self.readings = readings;
    }

    /// The latest rate of a counter, per second.
    pub(crate) fn get(&self, key: &str) -> Option<f64> {
        self.rates.get(key).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(value: u64, at_ms: i64) -> Reading {
        Reading { value, at_ms }
    }

    fn stats(uptime_ms: u64, taken_at_ms: i64, pages: u64) -> Stats {
        Stats {
            uptime_ms,
            taken_at_ms,
            counters: vec![Counter {
                name: "pages_fetched".into(),
                value: pages,
                labels: Default::default(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn the_rate_is_the_increase_over_the_elapsed_time() {
        let rate = rate_between(reading(100, 1_000), reading(150, 1_500), false);
        assert_eq!(rate, Some(100.0));
    }

    #[test]
    fn no_time_elapsed_means_no_rate() {
        assert_eq!(rate_between(reading(1, 5), reading(9, 5), false), None);
        assert_eq!(rate_between(reading(1, 5), reading(9, 4), false), None);
    }

    #[test]
    fn a_counter_that_went_down_restarted_from_zero() {
        let rate = rate_between(reading(500, 0), reading(20, 2_000), false);
        assert_eq!(rate, Some(10.0));
    }

    #[test]
    fn rates_follow_successive_polls_and_restarts() {
        let mut rates = CounterRates::default();
        rates.observe(&stats(10_000, 100_000, 40));
        assert_eq!(
            rates.get("pages_fetched"),
            None,
            "one reading has no rate yet"
        );
        rates.observe(&stats(11_000, 101_000, 70));
        assert_eq!(rates.get("pages_fetched"), Some(30.0));
        // Restarted (uptime went down) and already past the old value: all of it is new.
        rates.observe(&stats(500, 102_000, 90));
        assert_eq!(rates.get("pages_fetched"), Some(90.0));
    }

    #[test]
    fn labelled_counters_are_keyed_by_their_sorted_labels() {
        let counter = Counter {
            name: "fetches".into(),
            value: 1,
            labels: [("b".into(), "2".into()), ("a".into(), "1".into())].into(),
        };
        assert_eq!(counter_key(&counter), "fetches{a=1,b=2}");
    }
}
