//! The dispatcher's settings, every one with a default fit for a local run.

use std::path::PathBuf;
use std::time::Duration;

/// The largest message a dispatcher reads (one home: [`owlmesh_mesh::api`]).
pub use owlmesh_mesh::api::DISPATCHER_REQUEST_BYTES as MAX_REQUEST_BYTES;

/// How long a scraper may hold an assignment before it goes back to the frontier.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// Assignments sent to one scraper per claim at most.
pub const DEFAULT_CLAIM_BATCH: usize = 256;
/// How often leases are checked for expiry and recrawls for being due.
pub const DEFAULT_MAINTENANCE_INTERVAL: Duration = Duration::from_millis(500);
/// Outcomes written to the frontier in one transaction at most.
pub const DEFAULT_OUTCOME_BATCH: usize = 1024;

/// Settings of one dispatcher.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// Instance id in the directory.
    pub id: String,
    /// Failover order: the live dispatcher with the lowest priority works.
    pub priority: i32,
    /// Directory addresses.
    pub directories: Vec<String>,
    /// The address others dial, registered in the directory (`host:port`; port 0 for the
    /// port bound); `None` registers the listener's address. See
    /// [`owlmesh_mesh::MemberConfig::advertise`].
    pub advertise: Option<String>,
    /// The frontier database: a `sqlite:` path or URL, or a `postgres://` URL.
    pub database_url: String,
    /// Lease of each assignment.
    pub lease: Duration,
    /// Assignments per claim at most.
    pub claim_batch: usize,
    /// Lease expiry and recrawl check period.
    pub maintenance_interval: Duration,
    /// Outcomes per frontier transaction at most.
    pub outcome_batch: usize,
    /// Data folder (for the default SQLite file).
    pub data_dir: PathBuf,
    /// What an outcome the frontier recorded survives (SQLite's `synchronous`).
    pub durability: owlmesh_storage::Durability,
}

impl DispatcherConfig {
    /// Defaults for a dispatcher with this id, storing under `data_dir`.
    pub fn new(id: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            id: id.into(),
            priority: 0,
            directories: vec![owlmesh_mesh::DEFAULT_DIRECTORY_ADDRESS.to_owned()],
            advertise: None,
            database_url: default_database_url(&data_dir),
            lease: DEFAULT_LEASE,
            claim_batch: DEFAULT_CLAIM_BATCH,
            maintenance_interval: DEFAULT_MAINTENANCE_INTERVAL,
            outcome_batch: DEFAULT_OUTCOME_BATCH,
            data_dir,
            durability: owlmesh_storage::Durability::default(),
        }
    }
}

/// The embedded default: a SQLite file in the data folder, shared by every dispatcher.
pub fn default_database_url(data_dir: &std::path::Path) -> String {
    format!(
        "sqlite://{}",
        data_dir.join(crate::frontier::SQLITE_FILE_NAME).display()
    )
}
