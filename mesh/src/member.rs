//! Joining the mesh: serve gRPC, register in the directory, and leave in the right order.

use std::collections::HashMap;

use owlmesh_proto::v1::Instance;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::Result;
use crate::client::{LoadReporter, Registrar, RegistrarConfig};
use crate::grpc::GrpcServer;

/// Who a service is in the mesh and where its directories are.
#[derive(Debug, Clone)]
pub struct MemberConfig {
    /// Service kind, e.g. "scraper".
    pub kind: String,
    /// Instance id, unique within the kind.
    pub id: String,
    /// Failover order (dispatchers): lower first.
    pub priority: i32,
    /// Directory addresses (host:port).
    pub directories: Vec<String>,
    /// The address others should dial; defaults to the listener's address.
    pub advertise: Option<String>,
    /// Free-form labels.
    pub labels: HashMap<String, String>,
}

/// A service that is serving and registered.
pub struct MeshMember {
    registrar: Registrar,
    stop_serving: CancellationToken,
    serving: JoinHandle<Result<()>>,
    address: String,
}

impl MeshMember {
    /// Serves `server` on `listener` (reporting SERVING) and registers it.
    pub async fn join(
        server: GrpcServer,
        listener: TcpListener,
        config: MemberConfig,
    ) -> Result<Self> {
        let address = match config.advertise {
            Some(address) => address,
            None => listener.local_addr()?.to_string(),
        };
        server.health().set_serving().await;
        let stop_serving = CancellationToken::new();
        let serving = tokio::spawn(server.serve(listener, stop_serving.clone()));
        let registrar = Registrar::start(RegistrarConfig {
            directories: config.directories,
            instance: Instance {
                kind: config.kind.clone(),
                id: config.id.clone(),
                address: address.clone(),
                priority: config.priority,
                labels: config.labels,
                ..Default::default()
            },
        });
        info!(kind = %config.kind, id = %config.id, %address, "joined the mesh");
        Ok(Self {
            registrar,
            stop_serving,
            serving,
            address,
        })
    }

    /// The address the member registered.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Reports load with the heartbeats.
    pub fn load_reporter(&self) -> LoadReporter {
        self.registrar.load_reporter()
    }

    /// Waits until a directory has accepted the registration.
    pub async fn wait_registered(&self) {
        self.registrar.wait_registered().await;
    }

    /// Leaves: deregisters first so traffic moves elsewhere, then stops serving and drains.
    pub async fn leave(self) -> Result<()> {
        self.registrar.shutdown().await;
        self.stop_serving.cancel();
        match self.serving.await {
            Ok(result) => result,
            Err(_) => Ok(()),
        }
    }
}
