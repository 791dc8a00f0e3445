//! The dispatcher as a member of the mesh: opens the frontier, serves `Dispatcher` and
//! `Telemetry`, registers, runs the dispatch, upkeep and outcome-writing loops, and leaves in
//! order on shutdown.

use std::sync::Arc;

use owlmesh_mesh::api;
use owlmesh_mesh::client::{ArchiveOutbox, MembershipWatcher, OutboxConfig, retry};
use owlmesh_mesh::grpc::GrpcServer;
use owlmesh_mesh::{MemberConfig, MeshMember};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::frontier::{Frontier, FrontierConfig};
use crate::service::{self, Dispatcher, DispatcherService, DispatcherTelemetry};
use crate::{DispatcherConfig, Result};

/// A running dispatcher: its frontier open, its server listening, registered in the mesh,
/// its dispatch, upkeep and outcome-writing tasks going.
pub struct DispatcherNode {
    dispatcher: Arc<Dispatcher>,
    frontier: Frontier,
    member: MeshMember,
    /// Ends the RPC streams (work sessions, event watches).
    streams: CancellationToken,
    /// Ends the membership watchers, the outbox and the loops.
    background: CancellationToken,
    writer_stop: CancellationToken,
    writer: JoinHandle<()>,
}

impl DispatcherNode {
    /// Opens the frontier, starts serving on `listener`, joins the mesh and starts the loops.
    pub async fn start(listener: TcpListener, config: DispatcherConfig) -> Result<Self> {
        if !owlmesh_storage::is_postgres_url(&config.database_url) {
            std::fs::create_dir_all(&config.data_dir).map_err(owlmesh_mesh::MeshError::from)?;
        }
        let frontier = connect_frontier(&config).await?;
        let streams = CancellationToken::new();
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
            advertise: config.advertise.clone(),
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
            shutdown: streams.clone(),
        };
        let server = GrpcServer::new()
            .add_service(api::dispatcher_server(rpc))
            .add_service(api::telemetry_server(DispatcherTelemetry(
                dispatcher.clone(),
            )));
        let member = MeshMember::join(server, listener, member_config).await?;
        let writer_stop = CancellationToken::new();
        let writer =
            service::outcome_writer(dispatcher.clone(), outcome_queue, writer_stop.clone());
        let writer = tokio::spawn(writer);
        tokio::spawn(service::dispatch_loop(
            dispatcher.clone(),
            background.clone(),
        ));
        tokio::spawn(service::upkeep_loop(dispatcher.clone(), background.clone()));
        info!(id = %dispatcher.config.id, "dispatcher running");

        Ok(Self {
            dispatcher,
            frontier,
            member,
            streams,
            background,
            writer_stop,
            writer,
        })
    }

    /// The address the node is reached at, as registered in the directory.
    pub fn address(&self) -> &str {
        self.member.address()
    }

    /// Ends the work sessions, leaves the mesh, stops the loops, then writes every outcome
    /// the sessions delivered before closing the frontier.
    pub async fn shut_down(self) -> Result<()> {
        self.streams.cancel();
        self.dispatcher.sessions.close_all();
        self.member.leave().await?;
        tracing::debug!("left the mesh");
        self.background.cancel();
        // The outcome writer drains what the sessions delivered, then ends.
        self.writer_stop.cancel();
        let _ = self.writer.await;
        tracing::debug!("outcomes flushed");
        self.frontier.close().await;
        Ok(())
    }
}

/// Connects to the frontier. Dispatchers sharing a fresh SQLite file may race to create its
/// schema; the loser's migration fails and succeeds on a retry once the winner is done.
async fn connect_frontier(dispatcher: &DispatcherConfig) -> Result<Frontier> {
    let config = FrontierConfig {
        durability: dispatcher.durability,
        ..FrontierConfig::new(&dispatcher.database_url)
    };
    Ok(retry(5, || Frontier::connect(&config)).await?)
}
