//! The owlmesh dispatcher: owns the URL frontier, hands URLs to scrapers, schedules recrawls.
//!
//! - [`frontier`]: the SQL store of jobs and URLs (SQLite or PostgreSQL).
//! - [`DispatcherNode`], run by [`serve`]: the running service, in the shape every service
//!   has (a config, an error, a node that starts and shuts down, a thin `serve`). Several
//!   dispatchers run in priority order; the first live one (by the directory's failover
//!   order) dispatches, the others answer job calls from the shared database and stand by. Claims are made in the database, so even two
//!   dispatchers that both believe they are first never hand out one URL twice.

mod config;
mod error;
pub mod frontier;
mod node;
mod service;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{
    DEFAULT_CLAIM_BATCH, DEFAULT_LEASE, DEFAULT_MAINTENANCE_INTERVAL, DEFAULT_OUTCOME_BATCH,
    DispatcherConfig, MAX_REQUEST_BYTES, default_database_url,
};
pub use error::{DispatcherError, Result};
pub use node::DispatcherNode;
pub use service::{
    DEFAULT_JOBS_PAGE_SIZE, MAX_JOBS_PAGE_SIZE, MAX_REQUEST_ID_BYTES, admitted_link,
};

/// Runs a dispatcher on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    config: DispatcherConfig,
    shutdown: CancellationToken,
) -> Result<()> {
    let node = DispatcherNode::start(listener, config).await?;
    shutdown.cancelled().await;
    node.shut_down().await
}
