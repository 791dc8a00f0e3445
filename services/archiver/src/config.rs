//! What an archiver is told at start: its place in the mesh, its database, its result writers
//! and how long events are kept, with the defaults of each.

use std::path::PathBuf;
use std::time::Duration;

use owlmesh_egress::EgressGuard;
use owlmesh_storage::Durability;

use crate::error::{ArchiverError, Result};
use crate::validate;

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

/// Everything an archiver node needs to start: who it is in the mesh, and its archive.
#[derive(Debug, Clone)]
pub struct ArchiverConfig {
    /// Instance id in the directory; it keys this archiver's shard of the ring.
    pub id: String,
    /// Directory addresses.
    pub directories: Vec<String>,
    /// The address others dial, registered in the directory (`host:port`; port 0 for the
    /// port bound); `None` registers the listener's address. See
    /// [`owlmesh_mesh::MemberConfig::advertise`].
    pub advertise: Option<String>,
    /// The archive itself.
    pub archive: ArchiveConfig,
}

/// The archive: its database, its result writers and its retention;
/// [`ArchiveConfig::default`] gives the defaults above.
#[derive(Debug, Clone)]
pub struct ArchiveConfig {
    /// `postgres://…`, `sqlite:…` or an SQLite file path; `None` for
    /// [`DEFAULT_DATABASE_FILE`] in `data_dir`.
    pub database_url: Option<String>,
    /// The folder for the SQLite file and the JSON-lines files; created if missing.
    pub data_dir: PathBuf,
    /// Pooled database connections.
    pub max_connections: u32,
    /// Whether to append each job's new items to `<data_dir>/<job_id>.jsonl`.
    pub jsonl_files: bool,
    /// What an acknowledged batch survives: SQLite's `synchronous`, and whether the JSON-lines
    /// files are flushed to disk before the acknowledgement.
    pub durability: Durability,
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
    /// Which addresses webhooks may be delivered to; by default no loopback, private or
    /// other special address (see [`owlmesh_egress::SpecialRange`]).
    pub egress: EgressGuard,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        Self {
            database_url: None,
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            jsonl_files: true,
            durability: Durability::default(),
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
            egress: EgressGuard::default(),
        }
    }
}

impl ArchiveConfig {
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
            let literal = url::Url::parse(url).map(|url| self.webhooks.egress.check_url(&url));
            if let Ok(Err(blocked)) = literal {
                return invalid(format!(
                    "webhooks.urls[{index}]: {blocked}; allow its network with --allow-network"
                ));
            }
        }
        Ok(())
    }
}
