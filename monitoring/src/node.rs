//! The dashboard as a running process: the page's HTTP server (HTTPS when the process has
//! a certificate), the poller and event follower behind it, and its registration in the mesh
//! (on a gRPC port of its own).

use std::future::IntoFuture as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use owlmesh_mesh::api;
use owlmesh_mesh::client::MembershipWatcher;
use owlmesh_mesh::grpc::GrpcServer;
use owlmesh_mesh::{MemberConfig, MeshMember};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::config::MonitoringConfig;
use crate::dashboard::Dashboard;
use crate::error::Result;
use crate::https::HttpsListener;
use crate::poller::{Poller, PollerConfig};
use crate::telemetry::{self, MONITORING_KIND};
use crate::{events, web};

/// How long background tasks may take to stop once shutdown begins.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A running dashboard: serving its page, polling the mesh, registered as `monitoring`.
pub struct MonitoringNode {
    http_address: SocketAddr,
    member: MeshMember,
    /// Ends the HTTP server and the event streams of the page.
    stop: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
    background: CancellationToken,
    tasks: TaskTracker,
}

impl MonitoringNode {
    /// Starts polling, joins the mesh and serves the page on `listener`.
    pub async fn start(listener: TcpListener, config: MonitoringConfig) -> Result<Self> {
        config.validate()?;
        let http_address = listener.local_addr()?;
        let dashboard = Arc::new(Dashboard::new(&config));
        let background = CancellationToken::new();
        let tasks = start_background(&dashboard, &config, &background);
        let https = owlmesh_mesh::tls::setting()
            .server
            .map(|tls| tls.https_config());
        // The page's link, as registered, names the address others open it at.
        let page_address =
            owlmesh_mesh::advertised_address(config.advertise.as_deref(), http_address)?;
        let page = page_url(&page_address, https.is_some());
        let member = join_mesh(&dashboard, &config, &page, http_address).await?;
        info!(
            dashboard = %page,
            grpc = member.address(),
            "monitoring running"
        );
        let stop = CancellationToken::new();
        let app = web::router(
            dashboard,
            stop.clone(),
            owlmesh_mesh::auth::identity().trusted,
            config.allowed_hosts.clone().into(),
        );
        let stopped = stop.clone().cancelled_owned();
        let server = match https {
            Some(config) => tokio::spawn(
                axum::serve(HttpsListener::new(listener, config)?, app)
                    .with_graceful_shutdown(stopped)
                    .into_future(),
            ),
            None => tokio::spawn(
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .into_future(),
            ),
        };
        Ok(Self {
            http_address,
            member,
            stop,
            server,
            background,
            tasks,
        })
    }

    /// The address the page is served on.
    pub fn address(&self) -> SocketAddr {
        self.http_address
    }

    /// Stops serving the page, leaves the directory, then stops polling.
    pub async fn shut_down(self) -> Result<()> {
        self.stop.cancel();
        let served = self
            .server
            .await
            .unwrap_or_else(|failed| std::panic::resume_unwind(failed.into_panic()));
        self.member.leave().await?;
        self.background.cancel();
        self.tasks.close();
        if tokio::time::timeout(STOP_TIMEOUT, self.tasks.wait())
            .await
            .is_err()
        {
            warn!("background tasks did not stop in time");
        }
        served?;
        Ok(())
    }
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
    page: &str,
    http_address: SocketAddr,
) -> Result<MeshMember> {
    let grpc_listener = TcpListener::bind(SocketAddr::new(http_address.ip(), 0)).await?;
    let server = GrpcServer::new().add_service(api::telemetry_server(
        telemetry::DashboardTelemetry(dashboard.clone()),
    ));
    let member = MemberConfig {
        kind: MONITORING_KIND.into(),
        id: config.id.clone(),
        priority: 0,
        directories: config.directories.clone(),
        advertise: grpc_advertise(config.advertise.as_deref()),
        labels: [("dashboard".to_owned(), page.to_owned())].into(),
    };
    Ok(MeshMember::join(server, grpc_listener, member).await?)
}

/// The gRPC address others dial: the page's advertised host with the port gRPC bound (port
/// 0 stands for it), since gRPC is served beside the page on this host.
fn grpc_advertise(page: Option<&str>) -> Option<String> {
    let (host, _) = page?.rsplit_once(':')?;
    Some(format!("{host}:0"))
}

/// The page's address, `https` when it is served with a certificate.
fn page_url(address: &str, https: bool) -> String {
    let scheme = if https { "https" } else { "http" };
    format!("{scheme}://{address}/")
}
