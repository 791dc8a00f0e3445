//! The mesh over real links: every service runs on a "host" of its own (a Linux network
//! namespace made by the test, see `support/netns.rs`), listening on `0.0.0.0` and
//! registering that host's address with `--advertise`, over mutual TLS with a certificate
//! of its own naming that address; the test site is served by this process on the root
//! namespace's address on the same bridge. Hosts lose their link silently (`ip link set …
//! down`: no FIN, no RST) mid-crawl, and each test proves the crawl completes with every
//! product of the site exported exactly once. docs/faults.md quotes the figures these tests
//! print.
//!
//! The dispatchers share one frontier and the archivers keep their shards on PostgreSQL,
//! reached over the bridge: the server listens on loopback only, so this process forwards
//! a port of its bridge address to it (`support/forward.rs`), and a host cut off finds its
//! database connections stalled. Each test has a database of its own, dropped at its end.
//! Without `OWLMESH_TEST_POSTGRES_URL` they share one SQLite frontier file instead (the
//! filesystem is shared between the namespaces, and SQLite's file locks work across them),
//! and the run says loudly that PostgreSQL was skipped.
//!
//! Where namespaces cannot be made (not root, no iproute2), each test says SKIPPED loudly
//! and returns. The tests run one at a time: they measure gaps in wall-clock time.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use owlmesh_proto::v1::directory_client::DirectoryClient;
use owlmesh_proto::v1::dispatcher_client::DispatcherClient;
use owlmesh_proto::v1::{Job, JobRequest, ListRequest};
use owlmesh_site::{CatalogueJob, Site, SiteConfig};
use owlmesh_storage::POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT;
use owlmesh_tests::eventually;
use support::forward::Forwarder;
use support::mesh::{LEASE_TTL, MeshSetup, Placement, TestMesh, Topology};
use support::netns::Network;
use support::postgres::{FreshDatabase, count_rows};
use support::{OwlmeshProcess, counter, queue};

/// One test at a time (see the file's header).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a crawl may take, faults included, before a test fails.
const CRAWL_DEADLINE: Duration = Duration::from_secs(45);

/// Hosts of the site (listeners on the root namespace's bridge address).
const SITE_HOSTS: usize = 3;

/// How often a test samples the scrapers' outboxes while a host is cut off.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(50);

/// Requests the job allows in flight per site host.
const CONCURRENCY_PER_HOST: usize = 2;

/// Every host of a test's network, one service each.
const HOSTS: [&str; 7] = [
    "directory",
    "dispatcher-0",
    "dispatcher-1",
    "scraper-0",
    "scraper-1",
    "archiver-0",
    "archiver-1",
];

/// The assignment lease of the dispatchers: short, so that assignments a cut-off primary
/// handed to nobody come back within the test's time.
const ASSIGNMENT_LEASE: &str = "4s";

/// The heartbeat interval the directory gives with its leases (a third of the TTL).
const HEARTBEAT: Duration = LEASE_TTL.checked_div(3).unwrap();

/// A crawl across hosts: the network, the site, the mesh and the job. Fields drop in order:
/// the mesh's processes are killed before their database is dropped and the network is
/// removed.
struct Crawl {
    mesh: TestMesh,
    site: Site,
    job: String,
    postgres: Option<Postgres>,
    network: Network,
}

/// The PostgreSQL database of a crawl and the forwarder the hosts reach it through.
struct Postgres {
    forwarder: Forwarder,
    database: FreshDatabase,
}

impl Postgres {
    /// A fresh database and a forwarder to its server on the root namespace's bridge
    /// address, or `None` (after a loud notice) where no server is given.
    async fn start(network: &Network) -> Option<Self> {
        let skipped = "the multi-host suite kept its frontier and archive on SQLite, not on \
                       PostgreSQL over the bridge";
        let database = FreshDatabase::create("owl_hosts", skipped).await.unwrap()?;
        let listen = SocketAddr::new(network.root_address().into(), 0);
        let server = database.server_address().unwrap();
        let forwarder = Forwarder::start(listen, server).await.unwrap();
        Some(Self {
            forwarder,
            database,
        })
    }

    /// The database's URL as the hosts reach it.
    fn url(&self) -> String {
        self.database.url_via(self.forwarder.address)
    }
}

impl Crawl {
    /// Makes the hosts and starts the mesh on them and a crawl of a site of `products`, or
    /// returns `None` (after a loud notice) where namespaces cannot be made.
    async fn start(test: &str, products: usize) -> Option<Self> {
        let network = Network::create(test, &HOSTS).unwrap()?;
        let root = network.root_address();
        let site = Site::start(SiteConfig {
            products,
            page_delay: Duration::from_millis(15),
            slow_delay: Duration::from_millis(300),
            huge_page_bytes: 256 * 1024,
            retry_after: Duration::from_secs(1),
            listen: vec![SocketAddr::new(root.into(), 0); SITE_HOSTS],
            ..SiteConfig::default()
        })
        .await
        .unwrap();
        let place = |name: &str| network.host(name).place();
        let placement = Placement {
            directory: place("directory"),
            dispatchers: vec![place("dispatcher-0"), place("dispatcher-1")],
            scrapers: vec![place("scraper-0"), place("scraper-1")],
            archivers: vec![place("archiver-0"), place("archiver-1")],
        };
        let topology = Topology {
            dispatchers: 2,
            scrapers: 2,
            archivers: 2,
        };
        let subnet = network.subnet();
        let postgres = Postgres::start(&network).await;
        let frontier = postgres.as_ref().map(Postgres::url);
        let mut dispatcher_args = vec!["--lease", ASSIGNMENT_LEASE];
        if let Some(frontier) = &frontier {
            dispatcher_args.extend(["--database", frontier]);
        }
        let setup = MeshSetup {
            placement,
            dispatcher_args: &dispatcher_args,
            scraper_args: &["--allow-network", &subnet],
            tls: true,
            archive_database: postgres.as_ref().map(Postgres::url),
            ..MeshSetup::default()
        };
        let mesh = TestMesh::start_placed(topology, setup).await.unwrap();
        let job = CatalogueJob {
            concurrency_per_host: CONCURRENCY_PER_HOST as u32,
            ..CatalogueJob::default()
        };
        let job = mesh
            .submit(&job.toml(&site.seeds(), &site.hosts()))
            .await
            .unwrap();
        Some(Self {
            mesh,
            site,
            job,
            postgres,
            network,
        })
    }

    /// The job as the first dispatcher to answer sees it, or `None` while none answers
    /// (one cut off never does). Asked over gRPC, so that polling costs little.
    async fn job(&self) -> Option<Job> {
        let asks: Vec<_> = self
            .mesh
            .dispatchers
            .iter()
            .map(|dispatcher| {
                let request = JobRequest {
                    id: self.job.clone(),
                };
                Box::pin(async move {
                    let channel = self.mesh.channel(dispatcher.address).await?;
                    let mut client = DispatcherClient::new(channel);
                    anyhow::Ok(client.get_job(request).await?.into_inner())
                })
            })
            .collect();
        let first = futures::future::select_ok(asks);
        match tokio::time::timeout(Duration::from_secs(2), first).await {
            Ok(Ok((job, _))) => Some(job),
            _ => None,
        }
    }

    /// Waits until at least `fraction` of the products' worth of URLs are done.
    async fn wait_progress(&self, fraction: f64) {
        let target = (self.site.expected_products().len() as f64 * fraction) as u64;
        eventually(CRAWL_DEADLINE, "crawl progress", || async move {
            self.job().await.is_some_and(|job| job.done >= target)
        })
        .await;
    }

    /// Waits until the job is done and returns how long that took.
    async fn wait_done(&self) -> Duration {
        eventually(CRAWL_DEADLINE, "the job is done", || async move {
            let job = self.job().await;
            if let Some(job) = &job {
                assert!(
                    !matches!(job.state.as_str(), "failed" | "cancelled"),
                    "job ended {job:?}"
                );
            }
            job.is_some_and(|job| job.state == "done")
        })
        .await
    }

    /// URLs done so far (0 while no dispatcher answers).
    async fn done(&self) -> u64 {
        self.job().await.map_or(0, |job| job.done)
    }

    /// The scraper that owns `host` on the directory's ring, by index.
    async fn owner_of(&self, host: &str) -> usize {
        self.mesh.scraper_owning(host).await
    }

    /// The site's hosts that scraper `index` owns on the directory's ring.
    async fn hosts_of(&self, index: usize) -> Vec<String> {
        self.mesh.hosts_owned_by(index, self.site.hosts()).await
    }

    /// The deepest outbox of the scrapers that answer, each checked against its capacity.
    async fn deepest_outbox(&self) -> u64 {
        let mut deepest = 0;
        for scraper in &self.mesh.scrapers {
            let stats =
                tokio::time::timeout(Duration::from_secs(1), self.mesh.stats(scraper)).await;
            if let Ok(Ok(stats)) = stats {
                let (depth, capacity) = queue(&stats, "outbox");
                assert!(
                    depth <= capacity,
                    "{}: outbox {depth} > {capacity}",
                    stats.id
                );
                deepest = deepest.max(depth);
            }
        }
        deepest
    }

    /// The export holds every product of the site exactly once, and nothing else.
    async fn assert_catalogue_exported_once(&self) {
        let items = self.mesh.export(&self.job, false).await.unwrap();
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for item in &items {
            let url = item["url"].as_str().expect("item url").to_owned();
            *counts.entry(url).or_default() += 1;
        }
        let expected: BTreeMap<String, usize> = self
            .site
            .expected_products()
            .into_iter()
            .map(|product| (product.url, 1))
            .collect();
        println!(
            "archive: {} items exported, {} distinct, {} expected",
            items.len(),
            counts.len(),
            expected.len()
        );
        let twice: Vec<_> = counts.iter().filter(|(_, count)| **count > 1).collect();
        assert!(twice.is_empty(), "exported more than once: {twice:?}");
        let lost: Vec<_> = expected
            .keys()
            .filter(|url| !counts.contains_key(*url))
            .collect();
        assert!(lost.is_empty(), "never archived: {lost:?}");
        let unexpected: Vec<_> = counts
            .keys()
            .filter(|url| !expected.contains_key(*url))
            .collect();
        assert!(
            unexpected.is_empty(),
            "not in the catalogue: {unexpected:?}"
        );
    }
}

impl Crawl {
    /// With PostgreSQL, the frontier and every archive shard are in the test's database
    /// and no SQLite file was made; without it, the frontier is the shared SQLite file.
    async fn assert_stored_where_configured(&self) {
        let data = self.mesh.data_dir.path();
        let Some(postgres) = &self.postgres else {
            assert!(data.join("frontier.sqlite3").exists(), "no SQLite frontier");
            return;
        };
        let url = postgres.database.url();
        let queued = count_rows(url, "public", "frontier_urls").await;
        let products = self.site.expected_products().len() as i64;
        assert!(queued > products, "{queued} URLs in the frontier");
        for index in 0..self.mesh.archivers.len() {
            let pages = count_rows(url, &format!("archive_{index}"), "pages").await;
            assert!(pages > 0, "no page archived in archive_{index}");
        }
        for file in ["frontier.sqlite3", "archive-0.sqlite", "archive-1.sqlite"] {
            assert!(!data.join(file).exists(), "{file} was made");
        }
    }
}

/// Ids of the live instances of `kind` in the directory (an error while it is away).
async fn live_ids(mesh: &TestMesh, kind: &str) -> anyhow::Result<BTreeSet<String>> {
    let channel = mesh.channel(mesh.directory_address()).await?;
    let mut client = DirectoryClient::new(channel);
    let request = ListRequest { kind: kind.into() };
    let list = tokio::time::timeout(Duration::from_secs(1), client.list(request)).await??;
    Ok(list
        .into_inner()
        .instances
        .into_iter()
        .map(|instance| instance.id)
        .collect())
}

/// The directory's list asked without TLS (the test token still sent).
async fn live_ids_in_clear_text(mesh: &TestMesh) -> anyhow::Result<usize> {
    let mut client = DirectoryClient::new(support::channel(mesh.directory_address()).await?);
    let request = ListRequest::default();
    let list = tokio::time::timeout(Duration::from_secs(1), client.list(request)).await??;
    Ok(list.into_inner().instances.len())
}

/// Whether the directory lists `id` of `kind` (false while it is away).
async fn is_listed(mesh: &TestMesh, kind: &str, id: &str) -> bool {
    live_ids(mesh, kind).await.is_ok_and(|ids| ids.contains(id))
}

/// A counter of a process's stats, 0 when it does not answer in time.
async fn counter_of(mesh: &TestMesh, process: &OwlmeshProcess, name: &str) -> u64 {
    match tokio::time::timeout(Duration::from_secs(1), mesh.stats(process)).await {
        Ok(Ok(stats)) => counter(&stats, name),
        _ => 0,
    }
}

/// A dispatcher's role as it reports it ("primary" or "standby"), or "" when it does not
/// answer in time.
async fn role(mesh: &TestMesh, dispatcher: &OwlmeshProcess) -> String {
    match tokio::time::timeout(Duration::from_secs(1), mesh.stats(dispatcher)).await {
        Ok(Ok(stats)) => stats.state,
        _ => String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_across_hosts_exports_the_catalogue_exactly_once() {
    let _serial = SERIAL.lock().await;
    let test = "a_crawl_across_hosts_exports_the_catalogue_exactly_once";
    let Some(crawl) = Crawl::start(test, 600).await else {
        return;
    };
    // Every service registered its own host's address, so the crawl crossed the bridge.
    let services = crawl.mesh.cli_json(&["services"]).await.unwrap();
    for service in services.as_array().unwrap() {
        let id = service["id"].as_str().unwrap();
        let address: SocketAddr = service["address"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            address.ip(),
            crawl.network.host(id).address,
            "{id} registered {address}"
        );
    }
    // Over mutual TLS only: a caller in clear text is refused.
    let plain = live_ids_in_clear_text(&crawl.mesh).await;
    assert!(
        plain.is_err(),
        "the directory answered in clear text: {plain:?}"
    );
    let took = crawl.wait_done().await;
    println!("crawl across hosts done in {took:?}");
    crawl.assert_catalogue_exported_once().await;
    crawl.assert_stored_where_configured().await;
    // The pages came over the bridge to the scrapers' hosts (which scraper owns which of
    // the site's hosts is the ring's choice, so one of them may own none).
    let mut fetched = 0;
    for scraper in &crawl.mesh.scrapers {
        fetched += counter_of(&crawl.mesh, scraper, "pages_fetched").await;
    }
    let products = crawl.site.expected_products().len() as u64;
    assert!(fetched >= products, "the scrapers fetched {fetched} pages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_leads_within_a_lease_ttl_and_a_heartbeat_when_the_primary_host_vanishes() {
    let _serial = SERIAL.lock().await;
    let test =
        "the_standby_leads_within_a_lease_ttl_and_a_heartbeat_when_the_primary_host_vanishes";
    let Some(crawl) = Crawl::start(test, 1200).await else {
        return;
    };
    assert_eq!(
        role(&crawl.mesh, &crawl.mesh.dispatchers[0]).await,
        "primary"
    );
    crawl.wait_progress(0.25).await;
    let mesh = &crawl.mesh;
    let standby = &mesh.dispatchers[1];
    assert_eq!(
        counter_of(mesh, standby, "assigned").await,
        0,
        "a standby assigns nothing"
    );

    crawl.network.cut("dispatcher-0").unwrap();
    let cut_at = Instant::now();
    eventually(CRAWL_DEADLINE, "the standby leads", || async move {
        role(mesh, standby).await == "primary"
    })
    .await;
    let lead_gap = cut_at.elapsed();
    eventually(CRAWL_DEADLINE, "the standby assigns work", || async move {
        counter_of(mesh, standby, "assigned").await > 0
    })
    .await;
    let work_gap = cut_at.elapsed();
    // Leading is the directory's doing: the primary's lease runs out and the standby, next
    // in the failover order, sees it within a heartbeat. Its first claim may then wait on
    // rows the vanished primary locked mid-transaction, which PostgreSQL ends after
    // POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT (once for each of its transactions queued there).
    let lead_bound = LEASE_TTL + HEARTBEAT;
    let work_bound = lead_bound + 3 * POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT;
    // On the real stderr, so that every run (CI's too) shows the measured gaps.
    let said = format!(
        "\nsilent host loss: the standby led {lead_gap:?} and assigned work {work_gap:?} after \
         the primary's link went down (bounds: lease TTL {LEASE_TTL:?} + heartbeat \
         {HEARTBEAT:?} = {lead_bound:?} to lead, {work_bound:?} to assign)\n"
    );
    std::io::stderr().write_all(said.as_bytes()).ok();
    assert!(
        lead_gap <= lead_bound,
        "the standby led after {lead_gap:?}, more than {lead_bound:?}"
    );
    assert!(
        work_gap <= work_bound,
        "the standby assigned work after {work_gap:?}, more than {work_bound:?}"
    );

    let took = crawl.wait_done().await;
    println!("crawl done {took:?} after the failover");
    crawl.assert_catalogue_exported_once().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scraper_host_cut_off_past_its_lease_loses_its_work_and_hosts_and_gets_them_back() {
    let _serial = SERIAL.lock().await;
    let test = "a_scraper_host_cut_off_past_its_lease_loses_its_work_and_hosts_and_gets_them_back";
    let Some(crawl) = Crawl::start(test, 1500).await else {
        return;
    };
    crawl.wait_progress(0.2).await;
    // The ring may give one scraper every host of the site: cut off one that has some.
    let mut cut = 0;
    let mut owned = crawl.hosts_of(cut).await;
    if owned.is_empty() {
        cut = 1;
        owned = crawl.hosts_of(cut).await;
    }
    let other = 1 - cut;
    let name = format!("scraper-{cut}");
    let mesh = &crawl.mesh;
    let primary = &mesh.dispatchers[0];
    let returned = |process| async move {
        counter_of(mesh, process, "leases_released").await
            + counter_of(mesh, process, "leases_expired").await
    };
    let returned_before = returned(primary).await;

    crawl.network.cut(&name).unwrap();
    let cut_at = Instant::now();
    let name_ref = name.as_str();
    let dropped = eventually(
        CRAWL_DEADLINE,
        "the directory drops the scraper",
        || async move { !is_listed(mesh, "scraper", name_ref).await },
    )
    .await;
    println!("cut-off {name} left the directory {dropped:?} after its link went down");
    assert!(
        dropped <= LEASE_TTL + HEARTBEAT,
        "dropped after {dropped:?}"
    );
    let crawl_ref = &crawl;
    let owned_ref = &owned;
    eventually(
        CRAWL_DEADLINE,
        "its hosts move to the other scraper",
        || async move {
            for host in owned_ref {
                if crawl_ref.owner_of(host).await != other {
                    return false;
                }
            }
            true
        },
    )
    .await;
    eventually(CRAWL_DEADLINE, "its leases are returned", || async move {
        returned(primary).await > returned_before
    })
    .await;
    let moved_at = cut_at.elapsed();
    // The others fetch its hosts meanwhile.
    let fetched = |index: usize| counter_of(mesh, &mesh.scrapers[index], "pages_fetched");
    let other_before = fetched(other).await;
    eventually(CRAWL_DEADLINE, "the other scraper fetches", || async move {
        fetched(other).await > other_before
    })
    .await;
    // Cut off for longer than a lease TTL, well past the moment it was dropped.
    tokio::time::sleep_until((cut_at + LEASE_TTL * 2).into()).await;

    crawl.network.join(&name).unwrap();
    let joined_at = Instant::now();
    let back = eventually(CRAWL_DEADLINE, "it registers again", || async move {
        is_listed(mesh, "scraper", name_ref).await
    })
    .await;
    eventually(CRAWL_DEADLINE, "its hosts move back", || async move {
        for host in owned_ref {
            if crawl_ref.owner_of(host).await != cut {
                return false;
            }
        }
        true
    })
    .await;
    println!(
        "{name} cut off for {:?}: its hosts {owned:?} moved and its leases returned {moved_at:?} \
         after the cut; back in the directory {back:?} after its link came up, hosts moved back",
        joined_at - cut_at
    );

    let took = crawl.wait_done().await;
    let stale = counter_of(mesh, primary, "stale_outcomes").await
        + counter_of(mesh, &mesh.dispatchers[1], "stale_outcomes").await;
    println!("crawl done {took:?} after it came back; {stale} stale outcomes ignored");
    let in_flight: Vec<usize> = (0..SITE_HOSTS)
        .map(|host| crawl.site.max_in_flight(host))
        .collect();
    println!("most requests in flight per site host: {in_flight:?}");
    // Each scraper keeps the job's limit on a host it fetches; while the returning scraper
    // still fetches assignments it held when it was cut off (their leases reissued) and the
    // hosts move back, two scrapers may fetch one host at once (docs/faults.md).
    for (host, most) in in_flight.iter().enumerate() {
        assert!(
            *most <= 2 * CONCURRENCY_PER_HOST,
            "site host {host} had {most} requests in flight"
        );
    }
    crawl.assert_catalogue_exported_once().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archiver_host_cut_off_holds_the_producers_within_bounds_and_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let test = "an_archiver_host_cut_off_holds_the_producers_within_bounds_and_loses_nothing";
    let Some(crawl) = Crawl::start(test, 1500).await else {
        return;
    };
    crawl.wait_progress(0.2).await;
    crawl.network.cut("archiver-1").unwrap();
    let cut_at = Instant::now();
    let mesh = &crawl.mesh;
    let mut deepest = 0;
    while is_listed(mesh, "archiver", "archiver-1").await {
        deepest = deepest.max(crawl.deepest_outbox().await);
        tokio::time::sleep(SAMPLE_INTERVAL).await;
        assert!(
            cut_at.elapsed() < CRAWL_DEADLINE,
            "archiver-1 never left the directory"
        );
    }
    let dropped = cut_at.elapsed();
    println!("cut-off archiver-1 left the directory {dropped:?} after its link went down");
    assert!(
        dropped <= LEASE_TTL + HEARTBEAT,
        "dropped after {dropped:?}"
    );
    let done_at_drop = crawl.done().await;
    // Cut off for longer than a lease TTL: its keys are the other archiver's meanwhile.
    while cut_at.elapsed() < LEASE_TTL * 2 {
        deepest = deepest.max(crawl.deepest_outbox().await);
        tokio::time::sleep(SAMPLE_INTERVAL).await;
    }
    let done_during = crawl.done().await - done_at_drop;
    assert!(done_during > 0, "the crawl stood still without archiver-1");

    crawl.network.join("archiver-1").unwrap();
    let joined_at = Instant::now();
    let back = eventually(CRAWL_DEADLINE, "it registers again", || async move {
        is_listed(mesh, "archiver", "archiver-1").await
    })
    .await;
    let crawl_ref = &crawl;
    let done = eventually(CRAWL_DEADLINE, "the job is done", || async move {
        crawl_ref.job().await.is_some_and(|job| job.state == "done")
    })
    .await;
    let drained = eventually(
        CRAWL_DEADLINE,
        "the scrapers' outboxes drain",
        || async move { crawl_ref.deepest_outbox().await == 0 },
    )
    .await;
    println!(
        "archiver-1 cut off for {:?}: {done_during} URLs done meanwhile, deepest scraper outbox \
         {deepest}; back {back:?} after its link came up, crawl done {done:?} later, outboxes \
         empty {drained:?} after that",
        joined_at - cut_at
    );
    crawl.assert_catalogue_exported_once().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_host_cut_off_leaves_the_crawl_going_on_cached_membership() {
    let _serial = SERIAL.lock().await;
    let test = "a_directory_host_cut_off_leaves_the_crawl_going_on_cached_membership";
    let Some(crawl) = Crawl::start(test, 1500).await else {
        return;
    };
    crawl.wait_progress(0.2).await;
    let done_before = crawl.done().await;
    crawl.network.cut("directory").unwrap();
    let cut_at = Instant::now();
    // Cut off for longer than a lease TTL: every lease the directory gave has run out.
    tokio::time::sleep_until((cut_at + LEASE_TTL + HEARTBEAT * 2).into()).await;
    let done_during = crawl.done().await - done_before;
    let primary = &crawl.mesh.dispatchers[0];
    assert_eq!(
        role(&crawl.mesh, primary).await,
        "primary",
        "the primary kept leading"
    );
    println!(
        "{done_during} URLs done during {:?} without the directory",
        cut_at.elapsed()
    );
    assert!(done_during > 0, "the crawl stopped without the directory");

    crawl.network.join("directory").unwrap();
    let joined_at = Instant::now();
    let mesh = &crawl.mesh;
    let expected = mesh.expected_instances();
    let whole = eventually(
        CRAWL_DEADLINE,
        "every instance is listed again",
        || async move {
            live_ids(mesh, "")
                .await
                .is_ok_and(|ids| ids.len() == expected)
        },
    )
    .await;
    println!(
        "membership whole {whole:?} after the directory's link came up ({:?} cut off)",
        joined_at - cut_at
    );
    let took = crawl.wait_done().await;
    println!("crawl done {took:?} later");
    crawl.assert_catalogue_exported_once().await;
}
