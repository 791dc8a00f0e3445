//! The mesh around one scraper under test, all in-process over real sockets: a directory,
//! a fake archiver, fake dispatchers sharing one frontier, and the test website.

pub(crate) mod fakes;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use owlmesh_directory::DirectoryConfig;
use owlmesh_egress::{EgressGuard, parse_network};
use owlmesh_mesh::client::MembershipWatcher;
use owlmesh_mesh::grpc::GrpcServer;
use owlmesh_mesh::{MemberConfig, MeshMember};
use owlmesh_proto::v1::archiver_server::ArchiverServer;
use owlmesh_proto::v1::directory_client::DirectoryClient;
use owlmesh_proto::v1::dispatcher_server::DispatcherServer;
use owlmesh_proto::v1::scraper_client::ScraperClient;
use owlmesh_proto::v1::telemetry_client::TelemetryClient;
use owlmesh_proto::v1::{
    GetStatsRequest, JobSpec, ListRequest, Load, Outcome, OutcomeStatus, Politeness, Stats,
    TryRequest, TryResponse,
};
use owlmesh_scraper::ScraperConfig;
use owlmesh_site::{CatalogueJob, Site, SiteConfig};
use owlmesh_tests::eventually_true;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use fakes::{Entry, FakeArchiver, FakeDispatcher, Frontier, Log, Mode};

/// The user agent the test job crawls as.
pub(crate) const AGENT: &str = "owlmesh-test";
/// The scraper's instance id.
pub(crate) const SCRAPER_ID: &str = "scraper-1";
/// How long any awaited condition may take.
pub(crate) const DEADLINE: Duration = Duration::from_secs(20);

/// What to start.
pub(crate) struct MeshSetup {
    /// The test website.
    pub(crate) site: SiteConfig,
    /// One fake dispatcher per mode, in failover order (priority 0, 1, …).
    pub(crate) dispatchers: Vec<Mode>,
    /// The job's politeness.
    pub(crate) politeness: Politeness,
    /// The largest message the fake dispatchers read (tonic's 4 MiB when `None`); a larger
    /// one ends the session, as it does on a real dispatcher.
    pub(crate) dispatcher_read_limit: Option<usize>,
}

impl Default for MeshSetup {
    fn default() -> Self {
        Self {
            site: SiteConfig {
                products: 40,
                products_per_page: 10,
                ..SiteConfig::default()
            },
            dispatchers: vec![Mode::Primary],
            politeness: Politeness {
                obey_robots: Some(true),
                delay_ms: 0,
                concurrency_per_host: 16,
                user_agent: AGENT.into(),
            },
            dispatcher_read_limit: None,
        }
    }
}

/// A running mesh without its scraper.
pub(crate) struct Mesh {
    pub(crate) site: Site,
    pub(crate) spec: JobSpec,
    pub(crate) log: Arc<Log>,
    pub(crate) frontier: Arc<Frontier>,
    pub(crate) directory: String,
    archiver: FakeArchiver,
    members: Vec<MeshMember>,
    shutdown: CancellationToken,
}

impl Mesh {
    /// Starts the directory, the site, the archiver and the dispatchers, each registered.
    pub(crate) async fn start(setup: MeshSetup) -> Self {
        let shutdown = CancellationToken::new();
        let directory = start_directory(&shutdown).await;
        let site = Site::start(setup.site).await.expect("test site");
        let spec = catalogue_spec(&site.seeds(), setup.politeness);
        let log = Arc::new(Log::default());
        let frontier = Arc::new(Frontier::new(spec.clone()));
        let archiver = FakeArchiver {
            log: Arc::clone(&log),
            acking: Arc::new(watch::channel(true).0),
            pages_received: Arc::new(AtomicUsize::new(0)),
            refused_url: Arc::default(),
        };
        let server = GrpcServer::new().add_service(ArchiverServer::new(archiver.clone()));
        let mut members = vec![join(server, "archiver", "archiver-1", 0, &directory).await];
        for (priority, mode) in setup.dispatchers.into_iter().enumerate() {
            let name = format!("dispatcher-{}", ["a", "b", "c"][priority]);
            let dispatcher = FakeDispatcher {
                name: name.clone(),
                mode: Arc::new(Mutex::new(mode)),
                frontier: Arc::clone(&frontier),
                log: Arc::clone(&log),
            };
            let mut server = DispatcherServer::new(dispatcher);
            if let Some(limit) = setup.dispatcher_read_limit {
                server = server.max_decoding_message_size(limit);
            }
            let server = GrpcServer::new().add_service(server);
            let priority = priority as i32;
            members.push(join(server, "dispatcher", &name, priority, &directory).await);
        }
        Self {
            site,
            spec,
            log,
            frontier,
            directory,
            archiver,
            members,
            shutdown,
        }
    }

    /// Starts the scraper with the test defaults, changed by `change`.
    pub(crate) async fn scraper(&self, change: impl FnOnce(&mut ScraperConfig)) -> Scraper {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let mut config = ScraperConfig::new(SCRAPER_ID);
        config.directories = vec![self.directory.clone()];
        config.fetch.user_agent = AGENT.into();
        config.fetch.read_timeout = Duration::from_secs(5);
        // The test sites are on loopback, which a scraper refuses unless allowed.
        config.fetch.egress = EgressGuard::allowing([parse_network("127.0.0.0/8").expect("valid")]);
        change(&mut config);
        let shutdown = CancellationToken::new();
        let serving = tokio::spawn(owlmesh_scraper::serve(listener, config, shutdown.clone()));
        Scraper {
            address,
            shutdown,
            serving,
        }
    }

    /// Queues the site's `paths` (or absolute URLs) for assignment; returns their URLs.
    pub(crate) fn assign(&self, paths: &[&str]) -> Vec<String> {
        let urls: Vec<String> = paths
            .iter()
            .map(|path| match path.starts_with("http") {
                true => (*path).to_owned(),
                false => self.site.url(path),
            })
            .collect();
        self.frontier.add(&urls);
        urls
    }

    /// Queues product pages `0..count`; returns their URLs.
    pub(crate) fn assign_products(&self, count: usize) -> Vec<String> {
        let urls: Vec<String> = (0..count)
            .map(|index| self.site.product_url(index))
            .collect();
        self.frontier.add(&urls);
        urls
    }

    /// Makes the archiver acknowledge batches (true) or hold them (false).
    pub(crate) fn set_archiver_acking(&self, acking: bool) {
        self.archiver.acking.send_replace(acking);
    }

    /// Makes the archiver refuse every batch that holds the page of `url`.
    pub(crate) fn refuse_archiving(&self, url: &str) {
        *self
            .archiver
            .refused_url
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(url.to_owned());
    }

    /// Pages the archiver received, acknowledged or not.
    pub(crate) fn pages_received_by_archiver(&self) -> usize {
        self.archiver.pages_received.load(Ordering::SeqCst)
    }

    /// Waits until the dispatchers received `count` outcomes; returns them by URL.
    pub(crate) async fn outcomes(&self, count: usize) -> HashMap<String, Outcome> {
        eventually_true(DEADLINE, &format!("{count} outcomes"), || {
            self.log.outcomes().len() >= count
        })
        .await;
        self.log
            .outcomes()
            .into_iter()
            .map(|(_, outcome)| (outcome.url.clone(), outcome))
            .collect()
    }

    /// Asserts that every assigned lease got exactly one outcome (a revoked one: at most
    /// one, for it may have started).
    pub(crate) fn assert_one_outcome_per_assignment(&self) {
        let mut per_lease: HashMap<u64, usize> = HashMap::new();
        for (_, lease_id) in self.log.assigned() {
            per_lease.insert(lease_id, 0);
        }
        let revoked = self.log.revoked();
        for (_, outcome) in self.log.outcomes() {
            let count = per_lease
                .get_mut(&outcome.lease_id)
                .unwrap_or_else(|| panic!("outcome for unknown lease {}", outcome.lease_id));
            *count += 1;
        }
        let wrong: Vec<_> = per_lease
            .iter()
            .filter(|(lease_id, count)| match revoked.contains(lease_id) {
                true => **count > 1,
                false => **count != 1,
            })
            .collect();
        assert!(
            wrong.is_empty(),
            "leases without exactly one outcome: {wrong:?}"
        );
    }

    /// Asserts that each DONE outcome came after the archiver acknowledged its page.
    pub(crate) fn assert_done_only_after_archived(&self) {
        let mut archived = Vec::new();
        for entry in self.log.entries() {
            match entry {
                Entry::Archived(page) => archived.push((page.job_id, page.url, page.epoch)),
                Entry::Received { outcome, .. } if is(&outcome, OutcomeStatus::Done) => {
                    let key = (outcome.job_id.clone(), outcome.url.clone(), fakes::EPOCH);
                    assert!(
                        archived.contains(&key),
                        "DONE for {} before its page was acknowledged",
                        outcome.url
                    );
                }
                _ => {}
            }
        }
    }

    /// The scraper's load as the directory last heard it.
    pub(crate) async fn scraper_load(&self) -> Option<Load> {
        let mut directory = DirectoryClient::connect(format!("http://{}", self.directory))
            .await
            .expect("connect directory");
        let request = ListRequest {
            kind: "scraper".into(),
        };
        let membership = directory.list(request).await.expect("list").into_inner();
        membership
            .instances
            .into_iter()
            .find_map(|instance| instance.load)
    }

    /// Watches the members of `kind` through the directory.
    pub(crate) fn watch(&self, kind: &str) -> MembershipWatcher {
        MembershipWatcher::start(vec![self.directory.clone()], kind, self.shutdown.clone())
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        self.members.clear();
        self.shutdown.cancel();
    }
}

/// A running scraper.
pub(crate) struct Scraper {
    pub(crate) address: SocketAddr,
    shutdown: CancellationToken,
    serving: JoinHandle<owlmesh_scraper::Result<()>>,
}

impl Scraper {
    /// Its `GetStats`.
    pub(crate) async fn stats(&self) -> Stats {
        let mut client = TelemetryClient::connect(format!("http://{}", self.address))
            .await
            .expect("connect telemetry");
        client
            .get_stats(GetStatsRequest {})
            .await
            .expect("get stats")
            .into_inner()
    }

    /// Its `Try`.
    pub(crate) async fn try_page(&self, request: TryRequest) -> Result<TryResponse, tonic::Status> {
        let mut client = ScraperClient::connect(format!("http://{}", self.address))
            .await
            .expect("connect scraper");
        client.r#try(request).await.map(tonic::Response::into_inner)
    }

    /// Shuts it down; returns how long `serve` took to return.
    pub(crate) async fn stop(self) -> Duration {
        let begin = Instant::now();
        self.shutdown.cancel();
        let result = tokio::time::timeout(DEADLINE, self.serving)
            .await
            .expect("serve returns in time")
            .expect("serve does not panic");
        result.expect("serve ends cleanly");
        begin.elapsed()
    }
}

/// Whether `outcome` has `status`.
pub(crate) fn is(outcome: &Outcome, status: OutcomeStatus) -> bool {
    outcome.status == status as i32
}

/// The value of counter `name` in `stats`.
pub(crate) fn counter(stats: &Stats, name: &str) -> u64 {
    stats
        .counters
        .iter()
        .find(|counter| counter.name == name)
        .unwrap_or_else(|| panic!("counter {name}"))
        .value
}

/// The catalogue job (the README's example, as `owlmesh_site` aims it at the site), crawling
/// from `seeds` within their hosts, with `politeness`.
pub(crate) fn catalogue_spec(seeds: &[String], politeness: Politeness) -> JobSpec {
    let job = CatalogueJob::default().toml(seeds, &[]);
    let mut spec = owlmesh_job::parse_job_toml(&job, "the catalogue job").expect("valid job");
    spec.politeness = Some(politeness);
    spec
}

async fn start_directory(shutdown: &CancellationToken) -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind directory");
    let address = listener.local_addr().expect("address").to_string();
    let config = DirectoryConfig {
        lease_ttl: Duration::from_secs(2),
    };
    tokio::spawn(owlmesh_directory::serve(listener, config, shutdown.clone()));
    address
}

async fn join(
    server: GrpcServer,
    kind: &str,
    id: &str,
    priority: i32,
    directory: &str,
) -> MeshMember {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind member");
    let config = MemberConfig {
        kind: kind.into(),
        id: id.into(),
        priority,
        directories: vec![directory.to_owned()],
        advertise: None,
        labels: HashMap::new(),
    };
    let member = MeshMember::join(server, listener, config)
        .await
        .expect("join the mesh");
    member.wait_registered().await;
    member
}
