//! The running scraper: its parts wired together, joined to the mesh, and its shutdown in
//! order (stop taking work, let the pages under way finish for a while, hand the rest back,
//! deliver the outcomes, leave the mesh).

use std::sync::Arc;
use std::time::Instant;

use owlmesh_mesh::api;
use owlmesh_mesh::client::{ArchiveOutbox, MembershipWatcher, OutboxConfig};
use owlmesh_mesh::grpc::GrpcServer;
use owlmesh_mesh::{MemberConfig, MeshMember};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::config::ScraperConfig;
use crate::error::Result;
use crate::fetch::Fetcher;
use crate::inbox::Inbox;
use crate::jobs::JobCache;
use crate::outcome_queue::{OutcomeQueue, SentOutcomes};
use crate::page::Crawler;
use crate::session::{LinkConfig, WorkLink};
use crate::telemetry::{Counters, Gauges, ScraperTelemetry};
use crate::try_page::TryService;
use crate::worker::{Signals, Worker};

/// A scraper that joined the mesh and works.
pub struct ScraperNode {
    config: ScraperConfig,
    member: MeshMember,
    inbox: Arc<Inbox>,
    signals: Signals,
    tasks: TaskTracker,
    link: JoinHandle<()>,
    stop_link: CancellationToken,
    /// Stops what must outlive the drain: membership watchers, the outbox, load reports.
    background: CancellationToken,
}

/// The pieces built before joining the mesh.
struct Parts {
    crawler: Arc<Crawler>,
    outbox: ArchiveOutbox,
    inbox: Arc<Inbox>,
    counters: Arc<Counters>,
    signals: Signals,
    tasks: TaskTracker,
}

impl ScraperNode {
    /// Builds every part, serves `Scraper` and `Telemetry` on `listener`, registers, and
    /// starts asking the dispatchers for work.
    pub async fn start(listener: TcpListener, config: ScraperConfig) -> Result<Self> {
        config.validate()?;
        let background = CancellationToken::new();
        let parts = Parts::build(&config, &background)?;
        let gauges = Gauges {
            id: config.id.clone(),
            started_at: Instant::now(),
            counters: Arc::clone(&parts.counters),
            inbox: Arc::clone(&parts.inbox),
            outbox: parts.outbox.clone(),
            draining: parts.signals.draining.clone(),
        };
        let server = GrpcServer::new()
            .add_service(api::scraper_server(TryService::new(Arc::clone(
                &parts.crawler,
            ))))
            .add_service(api::telemetry_server(ScraperTelemetry(gauges.clone())));
        let member = MeshMember::join(server, listener, member_config(&config)).await?;
        tokio::spawn(gauges.report_load(member.load_reporter(), background.clone()));
        let stop_link = CancellationToken::new();
        let link = parts.link(&config, &background, stop_link.clone());
        info!(id = %config.id, address = %member.address(), slots = config.slots, "scraper running");
        Ok(Self {
            inbox: parts.inbox,
            signals: parts.signals,
            tasks: parts.tasks,
            link: tokio::spawn(link.run()),
            config,
            member,
            stop_link,
            background,
        })
    }

    /// The address the node is reached at, as registered in the directory.
    pub fn address(&self) -> &str {
        self.member.address()
    }

    /// Drains and leaves the mesh; bounded by the drain and flush timeouts.
    pub async fn shut_down(mut self) -> Result<()> {
        info!("shutting down: draining");
        self.signals.draining.cancel();
        self.tasks.close();
        let drained = tokio::time::timeout(self.config.drain_timeout, self.tasks.wait()).await;
        if drained.is_err() {
            let unfinished = self.tasks.len();
            warn!(
                unfinished,
                "drain time is over: handing back the unfinished pages"
            );
            self.signals.give_up.cancel();
            self.tasks.wait().await;
        }
        let flushed = tokio::time::timeout(self.config.flush_timeout, &mut self.link).await;
        if flushed.is_err() {
            let outcomes = self.inbox.undelivered_outcomes();
            warn!(outcomes, "outcomes not delivered: their leases will expire");
            self.stop_link.cancel();
            let _ = self.link.await;
        }
        self.member.leave().await?;
        self.background.cancel();
        info!("scraper stopped");
        Ok(())
    }
}

impl Parts {
    fn build(config: &ScraperConfig, background: &CancellationToken) -> Result<Self> {
        let fetcher = Fetcher::new(config.fetch.clone())?;
        let archivers =
            MembershipWatcher::start(config.directories.clone(), "archiver", background.clone());
        let outbox_config = OutboxConfig {
            capacity: config.outbox_capacity,
            ..OutboxConfig::default()
        };
        Ok(Self {
            crawler: Arc::new(
                Crawler::new(fetcher, config.robots.clone())
                    .with_extraction_budget(config.extraction_budget),
            ),
            outbox: ArchiveOutbox::start(archivers, outbox_config, background.clone()),
            inbox: Arc::new(Inbox::new(config.slots)),
            counters: Arc::default(),
            signals: Signals::default(),
            tasks: TaskTracker::new(),
        })
    }

    /// The work link, with a worker that runs what it receives.
    fn link(
        &self,
        config: &ScraperConfig,
        background: &CancellationToken,
        stop: CancellationToken,
    ) -> WorkLink {
        let worker = Worker {
            crawler: Arc::clone(&self.crawler),
            outbox: self.outbox.clone(),
            inbox: Arc::clone(&self.inbox),
            counters: Arc::clone(&self.counters),
            signals: self.signals.clone(),
            tasks: self.tasks.clone(),
        };
        // One place per slot: a task never waits to hand over its outcome.
        let (sender, receiver) = mpsc::channel(config.slots as usize);
        WorkLink {
            config: LinkConfig {
                id: config.id.clone(),
                batch: config.outcome_batch,
                linger: config.outcome_linger,
            },
            dispatchers: MembershipWatcher::start(
                config.directories.clone(),
                "dispatcher",
                background.clone(),
            ),
            inbox: Arc::clone(&self.inbox),
            jobs: JobCache::default(),
            worker: Arc::new(worker),
            outcomes: OutcomeQueue::new(receiver),
            sender: Some(sender),
            draining: self.signals.draining.clone(),
            stop,
            owed_credit: 0,
            sent: SentOutcomes::default(),
        }
    }
}

fn member_config(config: &ScraperConfig) -> MemberConfig {
    MemberConfig {
        kind: "scraper".into(),
        id: config.id.clone(),
        priority: 0,
        directories: config.directories.clone(),
        advertise: config.advertise.clone(),
        labels: Default::default(),
    }
}
