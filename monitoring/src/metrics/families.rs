//! The metric families of one `/metrics` answer, and their encoding through
//! `prometheus-client`.
//!
//! The figures are other processes' `GetStats` values, already counted and bucketed there,
//! so they are not observed into live metrics: [`Families`] holds them as they are and is a
//! [`Collector`], which hands each family and series to the crate's text encoder. It keeps
//! the exposition valid where the snapshots alone would not: one `# HELP` and `# TYPE` per
//! name, never two families of different types under one name, never a family whose sample
//! names another family already writes (a gauge `x_count` beside a histogram `x`), never the
//! same series twice.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, LabelSetEncoder, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::names::Labels;
use crate::members::HistogramView;

/// Prefix of every metric name.
const NAMESPACE: &str = "owlmesh";

/// A gauge's value: integers stay exact.
#[derive(Debug, Clone, Copy)]
pub(super) enum GaugeValue {
    Integer(u64),
    Float(f64),
}

impl From<u64> for GaugeValue {
    fn from(value: u64) -> Self {
        Self::Integer(value)
    }
}

impl From<f64> for GaugeValue {
    fn from(value: f64) -> Self {
        Self::Float(value)
    }
}

/// One series' figures.
#[derive(Debug)]
enum Sample {
    Gauge(GaugeValue),
    Counter(u64),
    /// Per-bucket counts, as the encoder takes them (it writes them cumulated).
    Histogram {
        sum: f64,
        count: u64,
        buckets: Vec<(f64, u64)>,
    },
}

impl Sample {
    fn metric_type(&self) -> MetricType {
        match self {
            Self::Gauge(_) => MetricType::Gauge,
            Self::Counter(_) => MetricType::Counter,
            Self::Histogram { .. } => MetricType::Histogram,
        }
    }

    fn encode(&self, mut encoder: MetricEncoder<'_>) -> fmt::Result {
        match self {
            Self::Gauge(GaugeValue::Integer(value)) => encoder.encode_gauge(value),
            Self::Gauge(GaugeValue::Float(value)) => encoder.encode_gauge(value),
            Self::Counter(value) => encoder.encode_counter::<NoLabelSet, _, u64>(value, None),
            Self::Histogram {
                sum,
                count,
                buckets,
            } => encoder.encode_histogram::<NoLabelSet>(*sum, *count, buckets, None),
        }
    }
}

/// One metric family: its type, help text and series, in the order they came.
#[derive(Debug)]
struct Family {
    /// The name given to the encoder, which adds the prefix and a counter's `_total`.
    name: String,
    kind: MetricType,
    help: String,
    series: Vec<(Labels, Sample)>,
    seen: BTreeSet<Labels>,
}

/// Every family of one exposition, by the name it is exposed under (in that order).
#[derive(Debug, Default)]
pub(super) struct Families {
    families: BTreeMap<String, Family>,
    /// Every family's name and the names of its samples.
    claimed: BTreeSet<String>,
}

impl Families {
    pub(super) fn gauge(
        &mut self,
        name: &str,
        help: &str,
        labels: &Labels,
        value: impl Into<GaugeValue>,
    ) {
        self.add(name, help, labels, Sample::Gauge(value.into()));
    }

    pub(super) fn counter(&mut self, name: &str, help: &str, labels: &Labels, value: u64) {
        self.add(name, help, labels, Sample::Counter(value));
    }

    /// A histogram from a snapshot's cumulative counts, taken apart into the per-bucket
    /// counts the encoder adds up again.
    pub(super) fn histogram(
        &mut self,
        name: &str,
        help: &str,
        labels: &Labels,
        histogram: &HistogramView,
    ) {
        let mut below = 0;
        let buckets = histogram
            .bounds
            .iter()
            .zip(&histogram.cumulative_counts)
            .map(|(&bound, &cumulative)| {
                let in_bucket = cumulative.saturating_sub(below);
                below = below.max(cumulative);
                (bound, in_bucket)
            })
            .collect();
        let sample = Sample::Histogram {
            sum: histogram.sum,
            count: histogram.count,
            buckets,
        };
        self.add(name, help, labels, sample);
    }

    /// Adds one series to its family. A series written before, or one that would clash with
    /// another family's names, is left out: either would make the whole exposition invalid.
    fn add(&mut self, name: &str, help: &str, labels: &Labels, sample: Sample) {
        let kind = sample.metric_type();
        let exposed = match kind {
            MetricType::Counter => format!("{name}_total"),
            _ => name.to_owned(),
        };
        if !self.families.contains_key(&exposed) {
            let names = names_of(&exposed, kind);
            if names.iter().any(|name| self.claimed.contains(name)) {
                return;
            }
            self.claimed.extend(names);
        }
        let family = self.families.entry(exposed).or_insert_with(|| Family {
            name: name.to_owned(),
            kind,
            help: help.to_owned(),
            series: Vec::new(),
            seen: BTreeSet::new(),
        });
        if family.kind != kind || !family.seen.insert(labels.clone()) {
            return;
        }
        family.series.push((labels.clone(), sample));
    }

    /// The Prometheus text exposition (version 0.0.4) of every family.
    pub(super) fn encode(self) -> Result<String, fmt::Error> {
        let mut registry = Registry::with_prefix(NAMESPACE);
        registry.register_collector(Box::new(self));
        let mut text = String::new();
        prometheus_text::encode(&mut text, &registry)?;
        Ok(text)
    }
}

/// A family's name and the names its samples are written under.
fn names_of(exposed: &str, kind: MetricType) -> Vec<String> {
    let suffixes: &[&str] = match kind {
        MetricType::Histogram => &["", "_bucket", "_sum", "_count"],
        _ => &[""],
    };
    suffixes
        .iter()
        .map(|suffix| format!("{exposed}{suffix}"))
        .collect()
}

impl Collector for Families {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        for family in self.families.values() {
            let mut metric =
                encoder.encode_descriptor(&family.name, &family.help, None, family.kind)?;
            for (labels, sample) in &family.series {
                sample.encode(metric.encode_family(labels)?)?;
            }
        }
        Ok(())
    }
}

impl EncodeLabelSet for Labels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> fmt::Result {
        self.pairs().encode(encoder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram() -> HistogramView {
        HistogramView {
            name: "fetch_seconds".into(),
            bounds: vec![0.5],
            cumulative_counts: vec![1],
            sum: 0.25,
            count: 1,
            p50: None,
            p99: None,
        }
    }

    #[test]
    fn a_family_whose_samples_another_writes_is_left_out() {
        let labels = Labels::new().with("instance", "scraper-0");
        let mut families = Families::default();
        families.gauge("fetch_seconds_count", "A gauge first.", &labels, 1_u64);
        families.histogram("fetch_seconds", "Then a histogram.", &labels, &histogram());
        families.histogram("wait_seconds", "A histogram first.", &labels, &histogram());
        families.gauge("wait_seconds_sum", "Then a gauge.", &labels, 2_u64);
        families.counter("pages", "A counter.", &labels, 3);
        families.gauge(
            "pages_total",
            "A gauge named like its samples.",
            &labels,
            4_u64,
        );
        let text = families.encode().unwrap();
        let names: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .collect();
        assert_eq!(
            names,
            [
                "owlmesh_fetch_seconds_count gauge",
                "owlmesh_pages_total counter",
                "owlmesh_wait_seconds histogram",
            ]
        );
        assert!(!text.contains("fetch_seconds_bucket"));
        assert_eq!(text.matches("owlmesh_wait_seconds_sum{").count(), 1);
        assert_eq!(text.matches("owlmesh_pages_total{").count(), 1);
    }
}
