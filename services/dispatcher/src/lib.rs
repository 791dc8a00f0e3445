//! The owlmesh dispatcher: owns the URL frontier, hands URLs to scrapers, schedules recrawls.
//!
//! - [`frontier`]: the SQL store of jobs and URLs (SQLite or PostgreSQL).
//! - [`serve`]: the running service. Several dispatchers run in priority order; the first
//!   live one (by the directory's failover order) dispatches, the others answer job calls
//!   from the shared database and stand by. Claims are made in the database, so even two
//!   dispatchers that both believe they are first never hand out one URL twice.

mod config;
mod error;
pub mod frontier;
mod service;

use owlmesh_mesh::client::{ArchiveOutbox, MembershipWatcher, OutboxConfig, retry};
use owlmesh_mesh::grpc::GrpcServer;
use owlmesh_mesh::{MemberConfig, MeshMember};
use owlmesh_proto::v1::dispatcher_server::DispatcherServer;
use owlmesh_proto::v1::telemetry_server::TelemetryServer;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use config::{
    DEFAULT_CLAIM_BATCH, DEFAULT_LEASE, DEFAULT_MAINTENANCE_INTERVAL, DEFAULT_OUTCOME_BATCH,
    DispatcherConfig, default_database_url,
};
pub use error::{DispatcherError, Result};
pub use service::admitted_link;

use crate::frontier::{Frontier, FrontierConfig};
use crate::service::{Dispatcher, DispatcherService, DispatcherTelemetry};

/// Runs a dispatcher on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    config: DispatcherConfig,
    shutdown: CancellationToken,
) -> Result<()> {
    if !owlmesh_storage::is_postgres_url(&config.database_url) {
        std::fs::create_dir_all(&config.data_dir).map_err(owlmesh_mesh::MeshError::from)?;
    }
    let frontier = connect_frontier(&config.database_url).await?;
    let background = CancellationToken::new();
    let watch =
        |kind| MembershipWatcher::start(config.directories.clone(), kind, background.clone());
    let (dispatchers, scrapers, archivers) =
        (watch("dispatcher"), watch("scraper"), watch("archiver"));
    let archive = ArchiveOutbox::start(archivers, OutboxConfig::default(), background.clone());
    let (outcomes, outcome_queue) = mpsc::channel(config.outcome_batch * 4);
    let member_config = MemberConfig {
        kind: "dispatcher".into(),
        id: config.id.clone(),
        priority: config.priority,
        directories: config.directories.clone(),
        advertise: None,
        labels: Default::default(),
    };
    let dispatcher = Dispatcher::new(
        config,
        frontier.clone(),
        dispatchers,
        scrapers,
        archive,
        outcomes,
    );
    let rpc = DispatcherService {
        dispatcher: dispatcher.clone(),
        shutdown: shutdown.clone(),
    };
    let server = GrpcServer::new()
        .add_service(DispatcherServer::new(rpc))
        .add_service(TelemetryServer::new(DispatcherTelemetry(
            dispatcher.clone(),
        )));
    let member = MeshMember::join(server, listener, member_config).await?;
    let writer_stop = CancellationToken::new();
    let writer = service::outcome_writer(dispatcher.clone(), outcome_queue, writer_stop.clone());
    let writer = tokio::spawn(writer);
    tokio::spawn(service::dispatch_loop(
        dispatcher.clone(),
        background.clone(),
    ));
    tokio::spawn(service::upkeep_loop(dispatcher.clone(), background.clone()));
    info!(id = %dispatcher.config.id, "dispatcher running");

    shutdown.cancelled().await;
    dispatcher.sessions.close_all();
    member.leave().await?;
    tracing::debug!("left the mesh");
    background.cancel();
    // The outcome writer drains what the sessions delivered, then ends.
    writer_stop.cancel();
    let _ = writer.await;
    tracing::debug!("outcomes flushed");
    frontier.close().await;
    Ok(())
}

/// Connects to the frontier. Dispatchers sharing a fresh SQLite file may race to create its
/// schema; the loser's migration fails and succeeds on a retry once the winner is done.
async fn connect_frontier(database_url: &str) -> Result<Frontier> {
    let config = FrontierConfig::new(database_url);
    Ok(retry(5, || Frontier::connect(&config)).await?)
}
