//! The owlmesh archiver: the mesh's event log and result store.
//!
//! Producers (scrapers, dispatchers) stream [`ArchiveBatch`](owlmesh_proto::v1::ArchiveBatch)es
//! to the `Archive` RPC. Each batch is stored in one transaction ([`store`]), is then handed to
//! the result writers (`writers`: a JSON-lines file per job, webhooks), and is acknowledged
//! with its batch id. Writes are idempotent by (job, canonical URL, epoch), so a producer that
//! did not see an acknowledgement simply sends the batch again. Stored data is read back with
//! paged queries and the streaming `Export` RPC (`export`); old events are purged
//! periodically (`retention`), data items are kept.
//!
//! Like every service, the crate has one shape: an [`ArchiverConfig`], an [`ArchiverError`],
//! an [`ArchiverNode`] that starts (joins the mesh) and shuts down (leaves, then drains), and
//! [`serve`], which runs a node until it is told to stop. [`ArchiverService::start`] opens
//! the archive alone, for a server of the caller's own.

#![forbid(unsafe_code)]

mod commit;
mod config;
mod error;
mod export;
pub mod item;
mod node;
mod retention;
mod service;
mod stats;
pub mod store;
mod telemetry;
mod trace;
mod validate;
mod writers;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{
    ArchiveConfig, ArchiverConfig, DEFAULT_DATA_DIR, DEFAULT_DATABASE_FILE,
    DEFAULT_EVENT_RETENTION, DEFAULT_MAX_CONNECTIONS, DEFAULT_RETENTION_INTERVAL,
    DEFAULT_WEBHOOK_ATTEMPTS, DEFAULT_WEBHOOK_BACKOFF, DEFAULT_WEBHOOK_QUEUE_CAPACITY,
    DEFAULT_WEBHOOK_TIMEOUT, WebhookConfig,
};
pub use error::{ArchiverError, Result};
pub use export::spreadsheet_safe;
pub use node::ArchiverNode;
pub use owlmesh_proto::v1::archiver_server::ArchiverServer;
pub use owlmesh_storage::Durability;
pub use service::{ArchiverService, MAX_REQUEST_BYTES};
pub(crate) use stats::Counter;
pub use stats::{ArchiverStats, StatsSnapshot};

/// Runs an archiver on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    config: ArchiverConfig,
    shutdown: CancellationToken,
) -> Result<()> {
    let node = ArchiverNode::start(listener, config).await?;
    shutdown.cancelled().await;
    node.shut_down().await
}
