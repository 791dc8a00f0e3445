//! The owlmesh directory server: where every instance registers and is found. It keeps
//! leases (heartbeats, expiry), answers consistent-hash routes and failover lists, and
//! streams membership to watchers. It is soft state: rebuilt from heartbeats within one
//! lease TTL after a restart. What members use to talk to it is the mesh runtime
//! (`owlmesh-mesh`).
//!
//! Like every service, the crate has one shape: a [`DirectoryConfig`], a [`DirectoryError`],
//! a [`DirectoryNode`] that starts and shuts down, and [`serve`], which runs a node until it
//! is told to stop.
//!
//! - The service (`service.rs`) answers leases, `Watch`, `Route` and `Resolve`.
//! - `registry` holds the leases and the rings, behind the service.

mod config;
mod error;
mod node;
mod registry;
mod service;
mod validate;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{DEFAULT_LEASE_TTL, DirectoryConfig};
pub use error::{DirectoryError, Result};
pub use node::DirectoryNode;
pub use validate::{
    MAX_ADDRESS_BYTES, MAX_ID_BYTES, MAX_KIND_BYTES, MAX_LABEL_KEY_BYTES, MAX_LABEL_VALUE_BYTES,
    MAX_LABELS, PRIORITY_RANGE,
};

/// Serves the directory on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    config: DirectoryConfig,
    shutdown: CancellationToken,
) -> Result<()> {
    let node = DirectoryNode::start(listener, config).await?;
    shutdown.cancelled().await;
    node.shut_down().await
}
