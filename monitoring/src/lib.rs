//! The owlmesh monitoring dashboard: a web page with live graphs of queue depth and
//! throughput across the mesh, the members by kind, the jobs and the latest events, plus a
//! Prometheus endpoint.
//!
//! [`serve`] runs it. It watches every kind in the directory, polls each instance's
//! `Telemetry.GetStats` once per second (all at once, each with a short timeout), asks the
//! primary dispatcher for its jobs and follows its events, and keeps a bounded history
//! (five minutes at one second, then an hour at ten seconds).
//!
//! HTTP, on the listener it is given:
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

mod config;
mod dashboard;
mod error;
mod events;
pub mod history;
mod members;
pub mod metrics;
mod picture;
mod poller;
pub mod rates;
mod snapshot;
mod telemetry;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use owlmesh_mesh::client::MembershipWatcher;
use owlmesh_mesh::grpc::GrpcServer;
use owlmesh_mesh::{MemberConfig, MeshMember};
use owlmesh_proto::v1::telemetry_server::TelemetryServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub use config::{
    DEFAULT_GONE_AFTER, DEFAULT_GONE_RETENTION, DEFAULT_POLL_INTERVAL, DEFAULT_POLL_TIMEOUT,
    DEFAULT_RECENT_EVENTS, DEFAULT_RECENT_FAILURES, MonitoringConfig,
};
pub use error::{MonitoringError, Result};
pub use events::EventView;
pub use members::{CounterView, HistogramView, LoadView, MemberState, MemberView, QueueView};
pub use picture::SeriesMetric;
pub use snapshot::{JobView, SeriesView, Snapshot, Totals};
pub use telemetry::MONITORING_KIND;

use crate::dashboard::Dashboard;
use crate::poller::{Poller, PollerConfig};

/// How long background tasks may take to stop once shutdown begins.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves the dashboard over HTTP on `listener` and joins the mesh as kind `monitoring`,
/// until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    config: MonitoringConfig,
    shutdown: CancellationToken,
) -> Result<()> {
    config.validate()?;
    let http_address = listener.local_addr()?;
    let dashboard = Arc::new(Dashboard::new(&config));
    let background = shutdown.child_token();
    let tasks = start_background(&dashboard, &config, &background);
    let member = join_mesh(&dashboard, &config, http_address).await?;
    info!(
        dashboard = %format!("http://{http_address}/"),
        grpc = member.address(),
        "monitoring running"
    );
    let app = web::router(dashboard, shutdown.clone());
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await;
    // Leave the directory first, then stop polling.
    member.leave().await?;
    background.cancel();
    tasks.close();
    if tokio::time::timeout(STOP_TIMEOUT, tasks.wait())
        .await
        .is_err()
    {
        warn!("background tasks did not stop in time");
    }
    served?;
    Ok(())
}

/// Starts the poller and the event follower; they stop when `background` is cancelled.
fn start_background(
    dashboard: &Arc<Dashboard>,
    config: &MonitoringConfig,
    background: &CancellationToken,
) -> TaskTracker {
    // An empty kind watches every kind.
    let members = MembershipWatcher::start(config.directories.clone(), "", background.clone());
    let (primary, follow) = watch::channel(None);
    let poller = Poller::new(
        dashboard.clone(),
        members,
        PollerConfig {
            directories: config.directories.clone(),
            interval: config.poll_interval,
            timeout: config.poll_timeout,
        },
        primary,
    );
    let tasks = TaskTracker::new();
    tasks.spawn(poller.run(background.clone()));
    tasks.spawn(events::follow_primary(
        dashboard.clone(),
        follow,
        background.clone(),
    ));
    tasks
}

/// Serves gRPC (health, reflection, `GetStats`) on a second port of the HTTP listener's
/// host, and registers that address; see the crate documentation for why.
async fn join_mesh(
    dashboard: &Arc<Dashboard>,
    config: &MonitoringConfig,
    http_address: SocketAddr,
) -> Result<MeshMember> {
    let grpc_listener = TcpListener::bind(SocketAddr::new(http_address.ip(), 0)).await?;
    let server = GrpcServer::new().add_service(TelemetryServer::new(
        telemetry::DashboardTelemetry(dashboard.clone()),
    ));
    let member = MemberConfig {
        kind: MONITORING_KIND.into(),
        id: config.id.clone(),
        priority: 0,
        directories: config.directories.clone(),
        advertise: None,
        labels: [("dashboard".to_owned(), format!("http://{http_address}/"))].into(),
    };
    Ok(MeshMember::join(server, grpc_listener, member).await?)
}
