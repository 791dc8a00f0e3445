//! The owlmesh archiver: the mesh's event log and result store.
//!
//! Producers (scrapers, dispatchers) stream [`ArchiveBatch`](owlmesh_proto::v1::ArchiveBatch)es
//! to the `Archive` RPC. Each batch is stored in one transaction ([`store`]), is then handed to
//! the result writers ([`writers`]: a JSON-lines file per job, webhooks), and is acknowledged
//! with its batch id. Writes are idempotent by (job, canonical URL, epoch), so a producer that
//! did not see an acknowledgement simply sends the batch again. Stored data is read back with
//! paged queries and the streaming `Export` RPC ([`export`]); old events are purged
//! periodically ([`retention`]), data items are kept.
//!
//! [`build`] opens everything from a [`Config`] and returns the [`ArchiverService`], ready to
//! be added to a tonic server with [`ArchiverService::into_server`].

#![forbid(unsafe_code)]

mod commit;
mod error;
pub mod export;
pub mod item;
mod node;
pub mod retention;
mod service;
pub mod store;
mod trace;
mod validate;
pub mod writers;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use error::{ArchiverError, Result};
pub use node::{ArchiverNodeConfig, serve};
pub use owlmesh_proto::v1::archiver_server::ArchiverServer;
pub use service::{ArchiverService, MAX_REQUEST_BYTES};

/// The data folder when none is given.
pub const DEFAULT_DATA_DIR: &str = "owlmesh-data";
/// The SQLite file in the data folder when no database URL is given.
pub const DEFAULT_DATABASE_FILE: &str = "archive.sqlite";
/// Pooled database connections.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 8;
/// How long events are kept: 30 days.
pub const DEFAULT_EVENT_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// How often old events are purged.
pub const DEFAULT_RETENTION_INTERVAL: Duration = Duration::from_secs(60 * 60);
/// Items waiting for each webhook; when full, new items skip that webhook.
pub const DEFAULT_WEBHOOK_QUEUE_CAPACITY: usize = 10_000;
/// Attempts to deliver one item to a webhook, the first included.
pub const DEFAULT_WEBHOOK_ATTEMPTS: u32 = 5;
/// The wait before the first retry; it doubles with each further retry.
pub const DEFAULT_WEBHOOK_BACKOFF: Duration = Duration::from_millis(500);
/// How long one webhook request may take.
pub const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the archiver needs to start; [`Config::default`] gives the defaults above.
#[derive(Debug, Clone)]
pub struct Config {
    /// `postgres://…`, `sqlite:…` or an SQLite file path; `None` for
    /// [`DEFAULT_DATABASE_FILE`] in `data_dir`.
    pub database_url: Option<String>,
    /// The folder for the SQLite file and the JSON-lines files; created if missing.
    pub data_dir: PathBuf,
    /// Pooled database connections.
    pub max_connections: u32,
    /// Whether to append each job's new items to `<data_dir>/<job_id>.jsonl`.
    pub jsonl_files: bool,
    /// How long events are kept; `None` keeps them forever.
    pub event_retention: Option<Duration>,
    /// How often old events are purged.
    pub retention_interval: Duration,
    /// Where new items are POSTed, and how.
    pub webhooks: WebhookConfig,
}

/// The webhook writer's settings.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Absolute `http(s)` URLs; each item is POSTed to every one.
    pub urls: Vec<String>,
    /// Items waiting per webhook.
    pub queue_capacity: usize,
    /// Attempts per item, the first included.
    pub attempts: u32,
    /// The wait before the first retry, doubled for each further retry.
    pub initial_backoff: Duration,
    /// How long one request may take.
    pub timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: None,
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            jsonl_files: true,
            event_retention: Some(DEFAULT_EVENT_RETENTION),
            retention_interval: DEFAULT_RETENTION_INTERVAL,
            webhooks: WebhookConfig::default(),
        }
    }
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            queue_capacity: DEFAULT_WEBHOOK_QUEUE_CAPACITY,
            attempts: DEFAULT_WEBHOOK_ATTEMPTS,
            initial_backoff: DEFAULT_WEBHOOK_BACKOFF,
            timeout: DEFAULT_WEBHOOK_TIMEOUT,
        }
    }
}

impl Config {
    /// A configuration with every default, storing under `data_dir`.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            ..Self::default()
        }
    }

    /// The database to open: `database_url`, or the SQLite file in `data_dir`.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => self
                .data_dir
                .join(DEFAULT_DATABASE_FILE)
                .display()
                .to_string(),
        }
    }

    /// Checks the settings that cannot work, without touching the disk or network.
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: String| Err(ArchiverError::Config(reason));
        if self.max_connections == 0 {
            return invalid("max_connections: must be at least 1".into());
        }
        if self.retention_interval.is_zero() {
            return invalid("retention_interval: must be positive".into());
        }
        if self.webhooks.attempts == 0 || self.webhooks.queue_capacity == 0 {
            return invalid("webhooks: attempts and queue_capacity must be at least 1".into());
        }
        for (index, url) in self.webhooks.urls.iter().enumerate() {
            if !validate::is_http_url(url) {
                return invalid(format!(
                    "webhooks.urls[{index}]: not an absolute http(s) url"
                ));
            }
        }
        Ok(())
    }
}

/// Counters of the archiver's work since start; read with [`ArchiverStats::snapshot`].
#[derive(Debug, Default)]
pub struct ArchiverStats {
    batches: AtomicU64,
    pages_stored: AtomicU64,
    duplicates: AtomicU64,
    events_stored: AtomicU64,
    events_purged: AtomicU64,
    writer_failures: AtomicU64,
    webhook_delivered: AtomicU64,
    webhook_failed: AtomicU64,
    webhook_dropped: AtomicU64,
}

/// The counters of [`ArchiverStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Batches stored and acknowledged.
    pub batches: u64,
    /// Pages newly stored.
    pub pages_stored: u64,
    /// Pages dropped as duplicates of their idempotency key.
    pub duplicates: u64,
    /// Events newly stored.
    pub events_stored: u64,
    /// Events deleted by retention.
    pub events_purged: u64,
    /// Batches a JSON-lines file could not be written for.
    pub writer_failures: u64,
    /// Items a webhook accepted.
    pub webhook_delivered: u64,
    /// Items a webhook still refused after every attempt.
    pub webhook_failed: u64,
    /// Items not queued for a webhook because its queue was full or closed.
    pub webhook_dropped: u64,
}

/// Which counter of [`ArchiverStats`] to add to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counter {
    Batches,
    PagesStored,
    Duplicates,
    EventsStored,
    EventsPurged,
    WriterFailures,
    WebhookDelivered,
    WebhookFailed,
    WebhookDropped,
}

impl ArchiverStats {
    /// Adds `amount` to one counter.
    pub(crate) fn add(&self, counter: Counter, amount: u64) {
        let cell = match counter {
            Counter::Batches => &self.batches,
            Counter::PagesStored => &self.pages_stored,
            Counter::Duplicates => &self.duplicates,
            Counter::EventsStored => &self.events_stored,
            Counter::EventsPurged => &self.events_purged,
            Counter::WriterFailures => &self.writer_failures,
            Counter::WebhookDelivered => &self.webhook_delivered,
            Counter::WebhookFailed => &self.webhook_failed,
            Counter::WebhookDropped => &self.webhook_dropped,
        };
        cell.fetch_add(amount, Ordering::Relaxed);
    }

    /// The current value of every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let read = |cell: &AtomicU64| cell.load(Ordering::Relaxed);
        StatsSnapshot {
            batches: read(&self.batches),
            pages_stored: read(&self.pages_stored),
            duplicates: read(&self.duplicates),
            events_stored: read(&self.events_stored),
            events_purged: read(&self.events_purged),
            writer_failures: read(&self.writer_failures),
            webhook_delivered: read(&self.webhook_delivered),
            webhook_failed: read(&self.webhook_failed),
            webhook_dropped: read(&self.webhook_dropped),
        }
    }
}

/// Opens the archive named by `config` (running its migrations), starts the result writers and
/// the retention task, and returns the service. Stop its tasks with
/// [`ArchiverService::shutdown`] once the server has stopped.
pub async fn build(config: Config) -> Result<ArchiverService> {
    ArchiverService::start(config).await
}
