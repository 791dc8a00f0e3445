//! A running directory: the gRPC server and the task that expires leases.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use owlmesh_mesh::MeshError;
use owlmesh_mesh::api;
use owlmesh_mesh::grpc::GrpcServer;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::registry::Registry;
use crate::service::DirectoryService;
use crate::{DirectoryConfig, Result};

/// A directory serving on its listener; it holds nothing that outlives it (members register
/// again within one lease TTL of a restart).
pub struct DirectoryNode {
    address: SocketAddr,
    stop: CancellationToken,
    server: JoinHandle<Result<()>>,
}

impl DirectoryNode {
    /// Starts serving on `listener` and expiring leases.
    pub async fn start(listener: TcpListener, config: DirectoryConfig) -> Result<Self> {
        let stop = CancellationToken::new();
        let service = DirectoryService::new(config, stop.clone());
        tokio::spawn(expire_leases(service.registry.clone(), stop.clone()));
        let server = GrpcServer::new()
            .add_service(api::directory_server(service.clone()))
            .add_service(api::telemetry_server(service));
        server.health().set_serving().await;
        let address = listener.local_addr().map_err(MeshError::from)?;
        info!(%address, "directory serving");
        let serving = stop.clone();
        let server = tokio::spawn(async move { Ok(server.serve(listener, serving).await?) });
        Ok(Self {
            address,
            stop,
            server,
        })
    }

    /// The address the node listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Ends every watch stream and stops serving once in-flight calls are answered.
    pub async fn shut_down(self) -> Result<()> {
        self.stop.cancel();
        // The server task only ends by returning; a panic in it is passed on as it was.
        self.server
            .await
            .unwrap_or_else(|failed| std::panic::resume_unwind(failed.into_panic()))
    }
}

/// Removes expired leases a few times per TTL, and ends the recovery window after one TTL.
async fn expire_leases(registry: Arc<Registry>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval((registry.ttl() / 10).max(Duration::from_millis(10)));
    let mut recovering = registry.recovering();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let expired = registry.expire(Instant::now());
        if expired > 0 {
            info!(expired, "leases expired");
        }
        if recovering && !registry.recovering() {
            recovering = false;
            registry.end_recovery();
        }
    }
}
