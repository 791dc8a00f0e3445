//! The snapshot of the mesh as JSON: what `/api/snapshot` and the page receive, and what
//! `/metrics` renders. Built by the [`crate::picture::Picture`] from its state.

use owlmesh_proto::v1::Job;
use serde::Serialize;

use crate::events::EventView;
use crate::history::Point;
use crate::members::MemberView;
use crate::series::{SeriesKey, SeriesMetric};

/// The headline figures of the mesh.
#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    /// URLs queued in the primary dispatcher's frontier, every job.
    pub frontier: Option<u64>,
    /// URLs assigned and not yet reported, every job.
    pub in_flight: Option<u64>,
    /// Pages fetched per second, every live scraper.
    pub pages_per_second: f64,
    /// Data items extracted per second.
    pub items_per_second: f64,
    /// Failed fetches per second.
    pub errors_per_second: f64,
    /// Pages fetched by the live scrapers since they started.
    pub pages_fetched: u64,
    /// Data items extracted by the live scrapers since they started.
    pub items_extracted: u64,
    /// Failed fetches of the live scrapers since they started.
    pub fetch_errors: u64,
    /// Instances answering.
    pub live_members: usize,
    /// Instances gone in the last minute.
    pub gone_members: usize,
}

/// A job and its progress, as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    /// Job id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// "queued", "running", "paused", "done", "cancelled" or "failed".
    pub state: String,
    /// URLs waiting.
    pub queued: u64,
    /// URLs assigned and not yet reported.
    pub in_flight: u64,
    /// URLs fetched and archived in this epoch.
    pub done: u64,
    /// URLs given up on in this epoch.
    pub failed: u64,
    /// Data items extracted in this epoch.
    pub items: u64,
    /// Documents found in this epoch.
    pub documents: u64,
    /// The crawl epoch.
    pub epoch: u64,
    /// Finished share of the known URLs, 0 to 1.
    pub progress: f64,
    /// When it was submitted, ms since the Unix epoch.
    pub created_at_ms: i64,
}

impl From<&Job> for JobView {
    fn from(job: &Job) -> Self {
        let finished = job.done + job.failed;
        let known = finished + job.queued + job.in_flight;
        let progress = match known {
            0 if job.state == "done" => 1.0,
            0 => 0.0,
            known => finished as f64 / known as f64,
        };
        Self {
            id: job.id.clone(),
            name: job.name.clone(),
            state: job.state.clone(),
            queued: job.queued,
            in_flight: job.in_flight,
            done: job.done,
            failed: job.failed,
            items: job.items,
            documents: job.documents,
            epoch: job.epoch,
            progress,
            created_at_ms: job.created_at_ms,
        }
    }
}

/// One charted series, as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesView {
    /// Stable name, `metric` or `metric/subject`.
    pub key: String,
    /// What it measures.
    pub metric: SeriesMetric,
    /// Of whom: a job id, an instance id, or empty for a total.
    pub subject: String,
    /// "queues" or "throughput".
    pub chart: &'static str,
    /// Its points, oldest first, as `[at_ms, value]`.
    pub points: Vec<Point>,
}

impl SeriesView {
    pub(crate) fn new(key: &SeriesKey, points: Vec<Point>) -> Self {
        Self {
            key: key.name(),
            metric: key.metric,
            subject: key.subject.clone(),
            chart: key.metric.chart(),
            points,
        }
    }
}

/// The picture of the mesh at one moment, as `/api/snapshot` and the page receive it.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// When the latest poll round ended, ms since the Unix epoch.
    pub at_ms: i64,
    /// Whether a directory has answered yet.
    pub directory_synced: bool,
    /// The id of the dispatcher followed as primary.
    pub primary: Option<String>,
    /// Headline figures.
    pub totals: Totals,
    /// Every instance, gone ones of the last minute included, by kind then id.
    pub members: Vec<MemberView>,
    /// The primary dispatcher's jobs, newest first.
    pub jobs: Vec<JobView>,
    /// When the jobs were last fetched.
    pub jobs_at_ms: Option<i64>,
    /// The latest events, newest first (only the new ones in an update).
    pub events: Vec<EventView>,
    /// The latest failures, newest first.
    pub failures: Vec<EventView>,
    /// The sequence number of the newest event.
    pub last_event_seq: u64,
    /// The charted series (only their newest point in an update).
    pub series: Vec<SeriesView>,
}
