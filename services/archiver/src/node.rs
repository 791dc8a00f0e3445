//! The archiver as a member of the mesh: serves `Archiver` and `Telemetry` with health and
//! reflection, registers in the directory, and leaves in order on shutdown.

use std::time::{Duration, Instant};

use owlmesh_mesh::api;
use owlmesh_mesh::client::retry;
use owlmesh_mesh::grpc::GrpcServer;
use owlmesh_mesh::{MemberConfig, MeshMember};
use tokio::net::TcpListener;
use tracing::info;

use crate::telemetry::ArchiverTelemetry;
use crate::{ArchiverConfig, ArchiverService, Result};

/// How long background writers may take to drain at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A running archiver: its archive open, its server listening, registered in the mesh.
pub struct ArchiverNode {
    member: MeshMember,
    service: ArchiverService,
}

impl ArchiverNode {
    /// Opens the archive, starts serving on `listener` and joins the mesh.
    pub async fn start(listener: TcpListener, config: ArchiverConfig) -> Result<Self> {
        // Archivers sharing a fresh SQLite file may race to create its schema: retry.
        let service = retry(5, || ArchiverService::start(config.archive.clone())).await?;
        let telemetry = ArchiverTelemetry {
            id: config.id.clone(),
            stats: service.stats(),
            started_at: Instant::now(),
        };
        let server = GrpcServer::new()
            .add_service(service.clone().into_server())
            .add_service(api::telemetry_server(telemetry));
        let member = MemberConfig {
            kind: "archiver".into(),
            id: config.id,
            priority: 0,
            directories: config.directories,
            advertise: config.advertise,
            labels: Default::default(),
        };
        let member = MeshMember::join(server, listener, member).await?;
        info!(address = member.address(), "archiver running");
        Ok(Self { member, service })
    }

    /// The address the node is reached at, as registered in the directory.
    pub fn address(&self) -> &str {
        self.member.address()
    }

    /// Leaves the mesh first, so producers route elsewhere, then drains what was accepted.
    pub async fn shut_down(self) -> Result<()> {
        self.member.leave().await?;
        self.service.shutdown(DRAIN_TIMEOUT).await;
        Ok(())
    }
}
