//! The charted series: what each measures, which chart shows it, its stable name on the
//! page, and how a dispatcher's queues become series.

use owlmesh_proto::v1::Stats;
use serde::Serialize;

/// What a series measures; it also says which chart shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeriesMetric {
    /// URLs queued in the frontier (the primary dispatcher's), in all or one job.
    Frontier,
    /// URLs assigned and not yet reported, in all or one job.
    InFlight,
    /// Assignments waiting in one scraper's inbox.
    Inbox,
    /// Records waiting in one producer's outbox to the archivers.
    Outbox,
    /// Pages fetched per second across the mesh.
    PagesPerSecond,
    /// Data items extracted per second across the mesh.
    ItemsPerSecond,
    /// Failed fetches per second across the mesh.
    ErrorsPerSecond,
}

impl SeriesMetric {
    fn name(self) -> &'static str {
        match self {
            Self::Frontier => "frontier",
            Self::InFlight => "in_flight",
            Self::Inbox => "inbox",
            Self::Outbox => "outbox",
            Self::PagesPerSecond => "pages_per_second",
            Self::ItemsPerSecond => "items_per_second",
            Self::ErrorsPerSecond => "errors_per_second",
        }
    }

    /// The chart that shows the series: "queues" or "throughput".
    pub(crate) fn chart(self) -> &'static str {
        match self {
            Self::Frontier | Self::InFlight | Self::Inbox | Self::Outbox => "queues",
            _ => "throughput",
        }
    }
}

/// One charted series: what it measures and of whom (a job id, an instance id, or nothing
/// for a mesh-wide total).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SeriesKey {
    /// What it measures.
    pub(crate) metric: SeriesMetric,
    /// Of whom; empty for totals.
    pub(crate) subject: String,
}

impl SeriesKey {
    pub(crate) fn total(metric: SeriesMetric) -> Self {
        Self {
            metric,
            subject: String::new(),
        }
    }

    /// `metric` or `metric/subject`: the series' stable name on the page.
    pub(crate) fn name(&self) -> String {
        if self.subject.is_empty() {
            self.metric.name().to_owned()
        } else {
            format!("{}/{}", self.metric.name(), self.subject)
        }
    }
}

/// The frontier and in-flight depths of a dispatcher: totals, and per job.
pub(crate) fn frontier_series(stats: &Stats) -> impl Iterator<Item = (SeriesKey, f64)> + '_ {
    stats.queues.iter().filter_map(|queue| {
        let metric = match queue.name.as_str() {
            "frontier" => SeriesMetric::Frontier,
            "in_flight" => SeriesMetric::InFlight,
            _ => return None,
        };
        let subject = match (queue.labels.get("job"), queue.labels.len()) {
            (None, 0) => String::new(),
            (Some(job), 1) => job.clone(),
            // Dimensions the chart does not know how to draw.
            _ => return None,
        };
        Some((SeriesKey { metric, subject }, queue.depth as f64))
    })
}
