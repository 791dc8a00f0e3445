//! The archiver as a member of the mesh: serves `Archiver` and `Telemetry` with health and
//! reflection, registers in the directory, and leaves in order on shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use owlmesh_mesh::client::retry;
use owlmesh_mesh::clock::unix_ms;
use owlmesh_mesh::grpc::GrpcServer;
use owlmesh_mesh::{MemberConfig, MeshMember};
use owlmesh_proto::v1::telemetry_server::{Telemetry, TelemetryServer};
use owlmesh_proto::v1::{Counter, GetStatsRequest, Stats};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tracing::info;

use crate::{ArchiverStats, Config, Result, build};

/// How long background writers may take to drain at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Who this archiver is in the mesh, and its store.
#[derive(Debug, Clone)]
pub struct ArchiverNodeConfig {
    /// Instance id in the directory; it keys this archiver's shard of the ring.
    pub id: String,
    /// Directory addresses.
    pub directories: Vec<String>,
    /// The archive itself.
    pub archive: Config,
}

/// Runs an archiver on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    config: ArchiverNodeConfig,
    shutdown: CancellationToken,
) -> Result<()> {
    // Archivers sharing a fresh SQLite file may race to create its schema: retry.
    let service = retry(5, || build(config.archive.clone())).await?;
    let telemetry = ArchiverTelemetry {
        id: config.id.clone(),
        stats: service.stats(),
        started_at: Instant::now(),
    };
    let server = GrpcServer::new()
        .add_service(service.clone().into_server())
        .add_service(TelemetryServer::new(telemetry));
    let member = MemberConfig {
        kind: "archiver".into(),
        id: config.id,
        priority: 0,
        directories: config.directories,
        advertise: None,
        labels: Default::default(),
    };
    let member = MeshMember::join(server, listener, member).await?;
    info!(address = member.address(), "archiver running");
    shutdown.cancelled().await;
    // Leave first so producers route elsewhere, then drain what was accepted.
    member.leave().await?;
    service.shutdown(DRAIN_TIMEOUT).await;
    Ok(())
}

/// The `Telemetry` service of an archiver.
struct ArchiverTelemetry {
    id: String,
    stats: Arc<ArchiverStats>,
    started_at: Instant,
}

#[tonic::async_trait]
impl Telemetry for ArchiverTelemetry {
    async fn get_stats(&self, _: Request<GetStatsRequest>) -> Result<Response<Stats>, Status> {
        let snapshot = self.stats.snapshot();
        let counter = |name: &str, value: u64| Counter {
            name: name.into(),
            value,
            labels: Default::default(),
        };
        let counters = vec![
            counter("batches", snapshot.batches),
            counter("pages_stored", snapshot.pages_stored),
            counter("duplicates", snapshot.duplicates),
            counter("events_stored", snapshot.events_stored),
            counter("events_purged", snapshot.events_purged),
            counter("writer_failures", snapshot.writer_failures),
            counter("webhook_delivered", snapshot.webhook_delivered),
            counter("webhook_failed", snapshot.webhook_failed),
            counter("webhook_dropped", snapshot.webhook_dropped),
        ];
        Ok(Response::new(Stats {
            kind: "archiver".into(),
            id: self.id.clone(),
            state: "serving".into(),
            uptime_ms: self.started_at.elapsed().as_millis() as u64,
            queues: Vec::new(),
            counters,
            histograms: Vec::new(),
            taken_at_ms: unix_ms(),
        }))
    }
}
