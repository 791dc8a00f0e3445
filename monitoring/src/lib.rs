//! The owlmesh monitoring dashboard: a web page with live graphs of queue depth and
//! throughput across the mesh, the members by kind, the jobs and the latest events, plus a
//! Prometheus endpoint.
//!
//! A [`MonitoringNode`] (run by [`serve`], in the shape every service has) runs it. It watches every kind in the directory, polls each instance's
//! `Telemetry.GetStats` once per second (all at once, each with a short timeout), asks the
//! primary dispatcher for its jobs and follows its events, and keeps a bounded history
//! (five minutes at one second, then an hour at ten seconds).
//!
//! HTTP (HTTPS with the process's certificate, see [`owlmesh_mesh::tls`]), on the listener
//! it is given:
//!
//! - `GET /`: the page (HTML, script and style are embedded in the binary; no CDN);
//! - `GET /api/events`: Server-Sent Events, the whole picture first (`snapshot`), then what
//!   changed after every poll round (`update`);
//! - `GET /api/snapshot`: the whole picture as JSON;
//! - `GET /metrics`: the same figures in the Prometheus text format, labelled by `kind` and
//!   `instance` (the mesh's instance id). Scrape it with `honor_labels: true`, or Prometheus
//!   renames that label `exported_instance` in favour of the dashboard's own address.
//!
//! # Two ports
//!
//! The dashboard is also a member of the mesh, registered as kind `monitoring` with health,
//! reflection and its own `GetStats`. That gRPC side listens on a second port of the same
//! host, chosen by the system, and is what the directory lists. The HTTP port is the
//! contract people and `owlmesh up` know (`127.0.0.1:7780`), and the shared gRPC server of
//! the mesh client owns its listener whole (it serves HTTP/2 only), so sharing one port
//! would mean rebuilding that server here. The registration carries the page's URL in the
//! `dashboard` label, so a directory's `List` leads from the mesh to the page.

mod access;
mod config;
mod dashboard;
mod error;
mod events;
mod history;
mod https;
mod members;
mod metrics;
mod node;
mod page_safety;
mod picture;
mod poller;
mod rates;
mod series;
mod snapshot;
mod telemetry;
mod web;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{
    DEFAULT_GONE_AFTER, DEFAULT_GONE_RETENTION, DEFAULT_POLL_INTERVAL, DEFAULT_POLL_TIMEOUT,
    DEFAULT_RECENT_EVENTS, DEFAULT_RECENT_FAILURES, MonitoringConfig,
};
pub use error::{MonitoringError, Result};
pub use events::EventView;
pub use members::{CounterView, HistogramView, LoadView, MemberState, MemberView, QueueView};
pub use series::SeriesMetric;
pub use snapshot::{JobView, SeriesView, Snapshot, Totals};
pub use telemetry::MONITORING_KIND;

pub use https::MAX_PENDING_HANDSHAKES;
pub use node::MonitoringNode;
pub use page_safety::MAX_EVENT_STREAMS;

/// Serves the dashboard over HTTP on `listener` and joins the mesh as kind `monitoring`,
/// until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    config: MonitoringConfig,
    shutdown: CancellationToken,
) -> Result<()> {
    let node = MonitoringNode::start(listener, config).await?;
    shutdown.cancelled().await;
    node.shut_down().await
}
