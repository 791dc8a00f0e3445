//! Kill tests: real `owlmesh` processes crawl the local test site while one of them is killed
//! (SIGKILL), hung (SIGSTOP) or replaced; each test proves the crawl still completes and the
//! archive holds the catalogue exactly once (no product lost, none stored twice), and prints
//! what the fault cost. docs/faults.md explains the guarantees and the timings measured here.
//!
//! The tests run one at a time: they measure gaps in wall-clock time, which tests competing
//! for two cores would distort.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use owlmesh_proto::v1::archiver_client::ArchiverClient;
use owlmesh_proto::v1::directory_client::DirectoryClient;
use owlmesh_proto::v1::dispatcher_client::DispatcherClient;
use owlmesh_proto::v1::{Job, JobRequest, ListRequest, QueryItemsRequest};
use owlmesh_site::{CatalogueJob, Site, SiteConfig};
use owlmesh_tests::eventually;
use support::mesh::{Kind, LEASE_TTL, TestMesh, Topology};
use support::{OwlmeshProcess, counter, queue};

/// One test at a time (see the file's header).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a crawl may take, faults included, before a test fails.
const CRAWL_DEADLINE: Duration = Duration::from_secs(40);

/// The site and the politeness of one crawl: big and slow enough to kill things mid-way.
#[derive(Debug, Clone, Copy)]
struct Shape {
    products: usize,
    hosts: usize,
    page_delay: Duration,
    concurrency_per_host: usize,
}

impl Shape {
    const fn new(products: usize, hosts: usize) -> Self {
        Self {
            products,
            hosts,
            page_delay: Duration::from_millis(15),
            concurrency_per_host: 2,
        }
    }

    fn site(&self) -> SiteConfig {
        SiteConfig {
            products: self.products,
            page_delay: self.page_delay,
            slow_delay: Duration::from_millis(300),
            huge_page_bytes: 256 * 1024,
            retry_after: Duration::from_secs(1),
            ..SiteConfig::spread_over(self.hosts)
        }
    }

    /// The catalogue job, as in the crawl tests.
    fn job(&self, site: &Site) -> String {
        let job = CatalogueJob {
            concurrency_per_host: self.concurrency_per_host as u32,
            ..CatalogueJob::default()
        };
        job.toml(&site.seeds(), &site.hosts())
    }
}

/// A crawl under way: the site, the mesh and the job.
struct Crawl {
    shape: Shape,
    site: Site,
    mesh: TestMesh,
    job: String,
    submitted_at: Instant,
}

impl Crawl {
    async fn start(
        shape: Shape,
        topology: Topology,
        dispatcher_args: &[&str],
        scraper_args: &[&str],
    ) -> Self {
        let site = Site::start(shape.site()).await.unwrap();
        let mesh = TestMesh::start_with(topology, dispatcher_args, scraper_args)
            .await
            .unwrap();
        let job = mesh.submit(&shape.job(&site)).await.unwrap();
        Self {
            shape,
            site,
            mesh,
            job,
            submitted_at: Instant::now(),
        }
    }

    /// The job as the first dispatcher to answer sees it (any of them answers job calls from
    /// the shared database; a hung one never does), or `None` while none answers. Asked over
    /// gRPC rather than with the CLI, so that polling it costs little.
    async fn job(&self) -> Option<Job> {
        let asks = self.mesh.dispatchers.iter().map(|dispatcher| {
            let address = format!("http://{}", dispatcher.address);
            let request = JobRequest {
                id: self.job.clone(),
            };
            Box::pin(async move {
                let mut client = DispatcherClient::new(support::channel(address).await?);
                anyhow::Ok(client.get_job(request).await?.into_inner())
            })
        });
        let asks: Vec<_> = asks.collect();
        if asks.is_empty() {
            return None;
        }
        let first = futures::future::select_ok(asks);
        match tokio::time::timeout(Duration::from_secs(2), first).await {
            Ok(Ok((job, _))) => Some(job),
            _ => None,
        }
    }

    /// URLs done so far (0 while no dispatcher answers).
    async fn done(&self) -> u64 {
        self.job().await.map_or(0, |job| job.done)
    }

    /// Waits until at least `fraction` of the products' worth of URLs are done.
    async fn wait_progress(&self, fraction: f64) {
        let target = (self.site.expected_products().len() as f64 * fraction) as u64;
        eventually(CRAWL_DEADLINE, "crawl progress", || async move {
            self.done().await >= target
        })
        .await;
    }

    /// Waits until the job is done, riding out moments when no dispatcher answers; returns
    /// its status (as `owlmesh job status --json` prints it) and how long the crawl took
    /// since submission.
    async fn wait_done(&self) -> (serde_json::Value, Duration) {
        let started = Instant::now();
        loop {
            let job = self.job().await;
            if let Some(job) = &job {
                assert!(
                    !matches!(job.state.as_str(), "failed" | "cancelled"),
                    "job ended {job:?}"
                );
                if job.state == "done" {
                    let took = self.submitted_at.elapsed();
                    let status = self.mesh.cli_json(&["job", "status", &self.job]).await;
                    return (status.unwrap(), took);
                }
            }
            assert!(
                started.elapsed() < CRAWL_DEADLINE,
                "job not done after {CRAWL_DEADLINE:?}: {job:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the job is done; returns the longest time its `done` count stood still
    /// meanwhile (while no dispatcher answers, it stands still).
    async fn longest_stall_until_done(&self) -> Duration {
        let started = Instant::now();
        let (mut done, mut since, mut longest) = (0, Instant::now(), Duration::ZERO);
        loop {
            let job = self.job().await;
            if let Some(job) = &job {
                if job.done > done {
                    (done, since) = (job.done, Instant::now());
                }
                if job.state == "done" {
                    return longest;
                }
            }
            longest = longest.max(since.elapsed());
            assert!(
                started.elapsed() < CRAWL_DEADLINE,
                "job not done after {CRAWL_DEADLINE:?}: {job:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The export across every archiver holds each product exactly once and nothing else.
    /// `shard_copies` says whether a page may sit in two shards (an archiver died between
    /// storing a batch and acknowledging it; the export merges such copies): without that
    /// fault, no page may.
    async fn assert_catalogue_archived_once(&self, shard_copies: ShardCopies) {
        let tally = self.archive_tally().await;
        let copies = self.pages_in_several_shards().await;
        println!(
            "archive: {} items exported, {} distinct, {} duplicated, {} lost, {} unexpected; \
             {} pages in two shards; {} products fetched more than once",
            tally.items,
            tally.distinct,
            tally.duplicated.len(),
            tally.lost.len(),
            tally.unexpected.len(),
            copies.len(),
            self.products_fetched_again().len()
        );
        assert!(
            tally.duplicated.is_empty(),
            "exported more than once: {:?}",
            tally.duplicated
        );
        assert!(tally.lost.is_empty(), "never archived: {:?}", tally.lost);
        assert!(
            tally.unexpected.is_empty(),
            "not in the catalogue: {:?}",
            tally.unexpected
        );
        if shard_copies == ShardCopies::None {
            assert!(copies.is_empty(), "stored in several shards: {copies:?}");
        }
    }

    /// Pages (URL, epoch) that more than one archiver holds, from each shard's own queries.
    async fn pages_in_several_shards(&self) -> BTreeMap<(String, u64), usize> {
        let mut held: BTreeMap<(String, u64), usize> = BTreeMap::new();
        for archiver in &self.mesh.archivers {
            let address = format!("http://{}", archiver.address);
            let mut client = ArchiverClient::new(support::channel(address).await.unwrap());
            let mut page_token = String::new();
            loop {
                let request = QueryItemsRequest {
                    job_id: self.job.clone(),
                    limit: 1000,
                    page_token: page_token.clone(),
                    ..Default::default()
                };
                let page = client.query_items(request).await.unwrap().into_inner();
                for item in page.items {
                    *held.entry((item.url, item.epoch)).or_default() += 1;
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
        }
        held.retain(|_, shards| *shards > 1);
        held
    }

    /// Product pages the site served more than once, with how often; but product 0 only
    /// when served more than twice, for it ends a redirect chain: a calm crawl fetches it
    /// through the chain and directly when both were queued before either was done.
    fn products_fetched_again(&self) -> BTreeMap<String, usize> {
        let redirected = self.site.product_url(0);
        let products: BTreeSet<String> = self
            .site
            .expected_products()
            .into_iter()
            .map(|product| product.url)
            .collect();
        let mut fetches: BTreeMap<String, usize> = BTreeMap::new();
        for request in self.site.requests() {
            let url = request.url();
            if products.contains(&url) {
                *fetches.entry(url).or_default() += 1;
            }
        }
        fetches.retain(|url, count| *count > 1 + usize::from(*url == redirected));
        fetches
    }

    /// The fault cost no second fetch of any product: outcomes that were in a dispatcher
    /// that died (or hung, or handed over) are sent again until one records them, and the
    /// assignments lost with it had not been fetched.
    fn assert_no_product_fetched_twice(&self) {
        let again = self.products_fetched_again();
        assert!(again.is_empty(), "fetched more than once: {again:?}");
    }

    async fn archive_tally(&self) -> Tally {
        let items = self.mesh.export(&self.job, false).await.unwrap();
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for item in &items {
            let url = item["url"].as_str().expect("item url").to_owned();
            *counts.entry(url).or_default() += 1;
        }
        let expected: BTreeSet<String> = self
            .site
            .expected_products()
            .into_iter()
            .map(|product| product.url)
            .collect();
        let archived: BTreeSet<String> = counts.keys().cloned().collect();
        Tally {
            items: items.len(),
            distinct: counts.len(),
            duplicated: counts.into_iter().filter(|(_, count)| *count > 1).collect(),
            lost: expected.difference(&archived).cloned().collect(),
            unexpected: archived.difference(&expected).cloned().collect(),
        }
    }

    /// The scraper that owns `host` on the directory's ring, by index.
    async fn owner_of(&self, host: &str) -> usize {
        self.mesh.scraper_owning(host).await
    }

    /// The site's hosts that scraper `index` owns on the directory's ring.
    async fn hosts_of(&self, index: usize) -> Vec<String> {
        self.mesh.hosts_owned_by(index, self.site.hosts()).await
    }

    /// Whether `host` was fetched by someone else since `since`, when its owner stopped: more
    /// requests than the owner could have had in flight (the site may read those late).
    fn fetched_by_others_since(&self, host: &str, since: Instant) -> bool {
        let requests = self.site.requests();
        let since = requests
            .iter()
            .filter(|request| request.host == host && request.at >= since);
        since.count() > self.shape.concurrency_per_host
    }
}

/// Whether a test's fault may leave a page in two archive shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShardCopies {
    /// No archiver died: every page is in one shard.
    None,
    /// An archiver died: the batch it stored but did not acknowledge went to another shard
    /// too.
    Allowed,
}

/// What an export holds, against the catalogue.
struct Tally {
    items: usize,
    distinct: usize,
    duplicated: BTreeMap<String, usize>,
    lost: BTreeSet<String>,
    unexpected: BTreeSet<String>,
}

/// Ids of the live instances of `kind` in the directory (an error while it is away), asked
/// over gRPC so that polling it costs little.
async fn live_ids(mesh: &TestMesh, kind: &str) -> anyhow::Result<BTreeSet<String>> {
    let address = format!("http://{}", mesh.directory_address());
    let mut client = DirectoryClient::new(support::channel(address).await?);
    let request = ListRequest { kind: kind.into() };
    let membership = client.list(request).await?.into_inner();
    Ok(membership
        .instances
        .into_iter()
        .map(|instance| instance.id)
        .collect())
}

/// Whether the directory lists `id` of `kind` (false while it is away).
async fn is_listed(mesh: &TestMesh, kind: &str, id: &str) -> bool {
    live_ids(mesh, kind).await.is_ok_and(|ids| ids.contains(id))
}

/// How many instances the directory lists (0 while it is away).
async fn listed(mesh: &TestMesh) -> usize {
    live_ids(mesh, "").await.map_or(0, |ids| ids.len())
}

/// A dispatcher's role as it reports it ("primary" or "standby"), or "" when it does not answer.
async fn role(dispatcher: &OwlmeshProcess) -> String {
    dispatcher
        .stats()
        .await
        .map_or_else(|_| String::new(), |stats| stats.state)
}

/// A counter of a process's stats, 0 when it does not answer.
async fn counter_of(process: &OwlmeshProcess, name: &str) -> u64 {
    process
        .stats()
        .await
        .map_or(0, |stats| counter(&stats, name))
}

/// Kills `process` and returns the moment it was gone.
async fn kill(process: &mut OwlmeshProcess) -> Instant {
    process.kill().await;
    Instant::now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_within_a_lease_ttl_when_the_primary_dies() {
    let _serial = SERIAL.lock().await;
    let topology = Topology {
        dispatchers: 2,
        scrapers: 3,
        archivers: 2,
    };
    let mut crawl = Crawl::start(Shape::new(1200, 3), topology, &[], &[]).await;
    assert_eq!(role(&crawl.mesh.dispatchers[0]).await, "primary");
    crawl.wait_progress(0.25).await;
    let standby = counter_of(&crawl.mesh.dispatchers[1], "assigned").await;
    assert_eq!(standby, 0, "a standby assigns nothing");

    let killed_at = kill(&mut crawl.mesh.dispatchers[0]).await;
    let successor = &crawl.mesh.dispatchers[1];
    eventually(CRAWL_DEADLINE, "the standby assigns work", || async move {
        counter_of(successor, "assigned").await > 0
    })
    .await;
    let gap = killed_at.elapsed();
    println!("failover gap: {gap:?} from killing the primary to the standby's first assignment");
    assert!(
        gap < LEASE_TTL,
        "the standby took {gap:?}, the directory's lease TTL is {LEASE_TTL:?}"
    );
    assert_eq!(role(successor).await, "primary");

    let (status, took) = crawl.wait_done().await;
    println!("crawl done in {took:?}: {status}");
    crawl
        .assert_catalogue_archived_once(ShardCopies::None)
        .await;
    crawl.assert_no_product_fetched_twice();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_dispatchers_the_scrapers_idle_and_a_new_dispatcher_finishes_the_crawl() {
    let _serial = SERIAL.lock().await;
    let topology = Topology {
        dispatchers: 2,
        scrapers: 2,
        archivers: 2,
    };
    let shape = Shape::new(800, 2);
    let mut crawl = Crawl::start(shape, topology, &[], &["--slots", "16"]).await;
    crawl.wait_progress(0.25).await;
    let killed_at = kill(&mut crawl.mesh.dispatchers[0]).await;
    kill(&mut crawl.mesh.dispatchers[1]).await;

    // The scrapers finish what they hold, then fetch nothing more.
    let site = &crawl.site;
    let quiet = Duration::from_millis(500);
    eventually(
        Duration::from_secs(10),
        "the site goes quiet",
        || async move {
            site.requests()
                .last()
                .is_none_or(|last| last.at.elapsed() >= quiet)
        },
    )
    .await;
    let last = site.requests().last().map(|request| request.at);
    let idle = last.map_or(Duration::ZERO, |at| at.saturating_duration_since(killed_at));
    println!("last page fetched {idle:?} after the last dispatcher died");
    // Proving that nothing happens takes a window: a quiet second, no fetch in it.
    let fetched = site.requests().len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        site.requests().len(),
        fetched,
        "fetched without a dispatcher"
    );
    for scraper in &crawl.mesh.scrapers {
        let stats = scraper.stats().await.unwrap();
        let held = queue(&stats, "inbox").0 + queue(&stats, "fetching").0;
        let outcomes = queue(&stats, "outcomes").0;
        println!(
            "{}: {held} assignments held, {outcomes} outcomes kept",
            stats.id
        );
        assert_eq!(held, 0, "{} is not idle", stats.id);
    }

    // A dispatcher started later finds the crawl in the database and finishes it.
    let started_at = Instant::now();
    let newcomer = crawl.mesh.start_dispatcher(2).await.unwrap();
    crawl.mesh.dispatchers.push(newcomer);
    let crawl_ref = &crawl;
    eventually(LEASE_TTL, "the new dispatcher answers", || async move {
        crawl_ref.job().await.is_some()
    })
    .await;
    let job = crawl.job().await.unwrap();
    let left = job.queued + job.in_flight;
    println!(
        "the new dispatcher found {} URLs queued and {} in flight ({} done)",
        job.queued, job.in_flight, job.done
    );
    assert!(left > 0, "the crawl went on without dispatchers: {job:?}");
    let (status, _) = crawl.wait_done().await;
    println!(
        "crawl finished {:?} after the new dispatcher started: {status}",
        started_at.elapsed()
    );
    crawl
        .assert_catalogue_archived_once(ShardCopies::None)
        .await;
    crawl.assert_no_product_fetched_twice();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_scrapers_leases_and_hosts_go_to_the_other_scrapers() {
    let _serial = SERIAL.lock().await;
    let topology = Topology {
        dispatchers: 1,
        scrapers: 3,
        archivers: 2,
    };
    let mut crawl = Crawl::start(Shape::new(1200, 6), topology, &[], &[]).await;
    crawl.wait_progress(0.25).await;
    let victim = crawl.owner_of(&crawl.site.hosts()[0]).await;
    let hosts = crawl.hosts_of(victim).await;
    let id = format!("scraper-{victim}");

    let killed_at = kill(&mut crawl.mesh.scrapers[victim]).await;
    let mesh = &crawl.mesh;
    let removed = eventually(LEASE_TTL, "the directory drops the scraper", || {
        let id = id.as_str();
        async move { !is_listed(mesh, "scraper", id).await }
    })
    .await;
    println!("{id} left the directory {removed:?} after it died (closed keep-alive stream)");
    let crawl_ref = &crawl;
    for host in &hosts {
        eventually(
            Duration::from_secs(10),
            "its hosts are crawled again",
            || async move { crawl_ref.fetched_by_others_since(host, killed_at) },
        )
        .await;
        let moved = killed_at.elapsed();
        println!("{host} (was {id}'s) fetched by another scraper by {moved:?} after the kill");
    }

    let (status, took) = crawl.wait_done().await;
    println!("crawl done in {took:?}: {status}");
    // Done long before its 60 s assignment lease could expire: the leases were released.
    let expired = counter_of(&crawl.mesh.dispatchers[0], "leases_expired").await;
    assert_eq!(expired, 0, "leases came back by expiry, not by release");
    crawl
        .assert_catalogue_archived_once(ShardCopies::None)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_archivers_keys_move_and_nothing_is_lost_or_stored_twice() {
    let _serial = SERIAL.lock().await;
    let topology = Topology {
        dispatchers: 1,
        scrapers: 2,
        archivers: 3,
    };
    let mut crawl = Crawl::start(Shape::new(1200, 3), topology, &[], &[]).await;
    crawl.wait_progress(0.25).await;
    let killed_at = kill(&mut crawl.mesh.archivers[1]).await;
    let mesh = &crawl.mesh;
    let removed = eventually(
        LEASE_TTL,
        "the directory drops the archiver",
        || async move { !is_listed(mesh, "archiver", "archiver-1").await },
    )
    .await;
    println!("archiver-1 left the directory {removed:?} after it died");

    // The crawl goes on with two shards; the producers' outboxes stay within bounds.
    let mut deepest = 0;
    let done = loop {
        for scraper in &crawl.mesh.scrapers {
            if let Ok(stats) = scraper.stats().await {
                let (depth, capacity) = queue(&stats, "outbox");
                assert!(
                    depth <= capacity,
                    "{}: outbox {depth} > {capacity}",
                    stats.id
                );
                deepest = deepest.max(depth);
            }
        }
        let job = crawl.job().await.unwrap();
        if job.state == "done" {
            break job;
        }
        assert!(killed_at.elapsed() < CRAWL_DEADLINE, "not done: {job:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "crawl done {:?} after the archiver died (deepest scraper outbox {deepest}): {} done, {} failed",
        killed_at.elapsed(),
        done.done,
        done.failed
    );

    // Pages archiver-1 acknowledged before it died are in its file: bring it back to export.
    crawl.mesh.restart(Kind::Archiver, 1).await.unwrap();
    crawl
        .mesh
        .wait_registered(crawl.mesh.expected_instances())
        .await
        .unwrap();
    crawl
        .assert_catalogue_archived_once(ShardCopies::Allowed)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_directory_neither_interrupts_the_crawl_nor_loses_members() {
    let _serial = SERIAL.lock().await;
    let topology = Topology {
        dispatchers: 2,
        scrapers: 2,
        archivers: 2,
    };
    let mut crawl = Crawl::start(Shape::new(1200, 3), topology, &[], &[]).await;
    crawl.wait_progress(0.2).await;
    let primary = crawl.mesh.dispatchers[0].stats().await.unwrap();
    let sessions = queue(&primary, "sessions").0;
    assert_eq!(sessions, 2, "both scrapers work with the primary");

    let done_before = crawl.done().await;
    let down_at = kill(&mut crawl.mesh.directory).await;
    // Without the directory, routing runs on cached membership: the crawl goes on.
    let fetched = crawl.site.requests().len();
    let site = &crawl.site;
    let went_on = eventually(Duration::from_secs(3), "fetching goes on", || async move {
        site.requests().len() >= fetched + 50
    })
    .await;
    println!("50 more pages fetched {went_on:?} into the directory's outage");
    // Away for longer than a lease TTL: every instance's retries have backed off.
    tokio::time::sleep_until((down_at + LEASE_TTL + Duration::from_secs(1)).into()).await;
    let during = crawl.mesh.dispatchers[0].stats().await.unwrap();
    assert_eq!(during.state, "primary");
    assert_eq!(queue(&during, "sessions").0, sessions, "sessions kept");

    let done_during = crawl.done().await - done_before;
    println!(
        "{done_during} URLs done during the {:?} outage",
        down_at.elapsed()
    );
    assert!(done_during > 0, "the crawl stopped with the directory");
    crawl.mesh.restart_directory().await.unwrap();
    let restarted_at = Instant::now();
    let expected = crawl.mesh.expected_instances();
    let mesh = &crawl.mesh;
    eventually(
        LEASE_TTL * 2,
        "every instance registers again",
        || async move { listed(mesh).await == expected },
    )
    .await;
    let whole = restarted_at.elapsed();
    let services = mesh.cli_json(&["services"]).await.unwrap();
    assert_eq!(
        services.as_array().map(Vec::len),
        Some(expected),
        "{services}"
    );
    println!("membership whole {whole:?} after the directory restarted (TTL {LEASE_TTL:?})");
    assert!(
        whole <= LEASE_TTL,
        "membership took {whole:?}, longer than a lease TTL"
    );

    let after = crawl.mesh.dispatchers[0].stats().await.unwrap();
    assert_eq!(after.state, "primary", "no failover happened");
    assert_eq!(queue(&after, "sessions").0, sessions, "sessions kept");
    assert_eq!(counter_of(&crawl.mesh.dispatchers[1], "assigned").await, 0);
    let (status, took) = crawl.wait_done().await;
    println!("crawl done in {took:?}: {status}");
    crawl
        .assert_catalogue_archived_once(ShardCopies::None)
        .await;
    crawl.assert_no_product_fetched_twice();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_scraper_loses_its_leases_and_the_crawl_finishes_without_it() {
    let _serial = SERIAL.lock().await;
    let topology = Topology {
        dispatchers: 1,
        scrapers: 3,
        archivers: 2,
    };
    let shape = Shape::new(1000, 6);
    let crawl = Crawl::start(shape, topology, &["--lease", "3s"], &["--slots", "16"]).await;
    crawl.wait_progress(0.25).await;
    let victim = crawl.owner_of(&crawl.site.hosts()[0]).await;
    let hosts = crawl.hosts_of(victim).await;
    let id = format!("scraper-{victim}");

    crawl.mesh.scrapers[victim].pause().unwrap();
    let paused_at = Instant::now();
    let mesh = &crawl.mesh;
    let expired = eventually(
        LEASE_TTL * 3,
        "the directory expires the hung scraper",
        || {
            let id = id.as_str();
            async move { !is_listed(mesh, "scraper", id).await }
        },
    )
    .await;
    println!("hung {id} left the directory {expired:?} after SIGSTOP (lease TTL {LEASE_TTL:?})");
    assert!(
        expired >= LEASE_TTL / 2,
        "its connection is open: only the TTL removes it"
    );
    let crawl_ref = &crawl;
    for host in &hosts {
        eventually(
            Duration::from_secs(10),
            "its hosts are crawled again",
            || async move { crawl_ref.fetched_by_others_since(host, paused_at) },
        )
        .await;
        let moved = paused_at.elapsed();
        println!("{host} (was {id}'s) fetched by another scraper by {moved:?} after SIGSTOP");
    }
    let (status, took) = crawl.wait_done().await;
    println!("crawl done in {took:?} without the hung scraper: {status}");
    crawl
        .assert_catalogue_archived_once(ShardCopies::None)
        .await;

    // Woken up, it registers again and opens a new work session.
    crawl.mesh.scrapers[victim].resume().unwrap();
    let resumed_at = Instant::now();
    let dispatcher = &crawl.mesh.dispatchers[0];
    eventually(LEASE_TTL * 3, "the resumed scraper works again", || {
        let id = id.as_str();
        async move {
            let sessions = dispatcher
                .stats()
                .await
                .is_ok_and(|stats| queue(&stats, "sessions").0 == 3);
            sessions && is_listed(mesh, "scraper", id).await
        }
    })
    .await;
    println!(
        "{id} back in the mesh {:?} after SIGCONT",
        resumed_at.elapsed()
    );
    crawl
        .assert_catalogue_archived_once(ShardCopies::None)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_primary_dispatcher_loses_its_scrapers_once_its_lease_expires() {
    let _serial = SERIAL.lock().await;
    let topology = Topology {
        dispatchers: 2,
        scrapers: 2,
        archivers: 2,
    };
    let crawl = Crawl::start(Shape::new(1200, 3), topology, &[], &[]).await;
    crawl.wait_progress(0.25).await;
    assert_eq!(counter_of(&crawl.mesh.dispatchers[1], "assigned").await, 0);

    // Stopped, its connections stay open: only its lease in the directory ends.
    crawl.mesh.dispatchers[0].pause().unwrap();
    let paused_at = Instant::now();
    let mesh = &crawl.mesh;
    eventually(
        LEASE_TTL * 3,
        "the scrapers move to the standby",
        || async move {
            let sessions = mesh.dispatchers[1]
                .stats()
                .await
                .is_ok_and(|stats| queue(&stats, "sessions").0 == 2);
            sessions && !is_listed(mesh, "dispatcher", "dispatcher-0").await
        },
    )
    .await;
    let moved = paused_at.elapsed();
    println!("hung primary: both scrapers work with the standby {moved:?} after SIGSTOP");
    assert!(
        moved < LEASE_TTL * 2,
        "took {moved:?}: a lease TTL ({LEASE_TTL:?}) and a reconnection should do"
    );
    // If it hung inside a write transaction, it holds SQLite's write lock and the standby
    // can claim nothing until it runs again (or dies): see docs/faults.md.
    let standby = &crawl.mesh.dispatchers[1];
    let assigning = tokio::time::timeout(LEASE_TTL, async move {
        while counter_of(standby, "assigned").await == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .is_ok();
    println!(
        "the standby {} while dispatcher-0 hung ({:?} after SIGSTOP)",
        if assigning {
            "assigns work"
        } else {
            "cannot write: the hung dispatcher holds the database lock"
        },
        paused_at.elapsed()
    );

    // Woken up, it is first in order again and leads; the standby steps back.
    crawl.mesh.dispatchers[0].resume().unwrap();
    let took = eventually(
        LEASE_TTL * 3,
        "the woken dispatcher leads again",
        || async move {
            let first = role(&mesh.dispatchers[0]).await;
            let second = role(&mesh.dispatchers[1]).await;
            first == "primary" && second == "standby"
        },
    )
    .await;
    println!("dispatcher-0 primary again {took:?} after SIGCONT");
    let (status, took) = crawl.wait_done().await;
    println!("crawl done in {took:?}: {status}");
    crawl
        .assert_catalogue_archived_once(ShardCopies::None)
        .await;
    crawl.assert_no_product_fetched_twice();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_archivers_keys_move_once_its_lease_expires() {
    let _serial = SERIAL.lock().await;
    let topology = Topology {
        dispatchers: 1,
        scrapers: 2,
        archivers: 3,
    };
    let crawl = Crawl::start(Shape::new(1200, 3), topology, &[], &[]).await;
    crawl.wait_progress(0.25).await;
    crawl.mesh.archivers[1].pause().unwrap();
    let paused_at = Instant::now();
    let mesh = &crawl.mesh;
    // Its pages wait for an acknowledgement until its lease expires, then go to the new
    // owners of their keys: the crawl finishes without long stalls.
    let (expired, stall) = tokio::join!(
        eventually(
            LEASE_TTL * 3,
            "the directory expires the archiver",
            || async move { !is_listed(mesh, "archiver", "archiver-1").await }
        ),
        crawl.longest_stall_until_done()
    );
    println!("hung archiver-1 left the directory {expired:?} after SIGSTOP");
    println!(
        "crawl done {:?} after SIGSTOP; longest stall {stall:?}",
        paused_at.elapsed()
    );
    assert!(
        stall < LEASE_TTL * 2,
        "progress stood still for {stall:?}, lease TTL {LEASE_TTL:?}"
    );

    // Woken up, it registers again; what it had stored is exported with the rest.
    crawl.mesh.archivers[1].resume().unwrap();
    crawl
        .mesh
        .wait_registered(crawl.mesh.expected_instances())
        .await
        .unwrap();
    crawl
        .assert_catalogue_archived_once(ShardCopies::Allowed)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_dispatcher_leads_again_without_double_assigning() {
    let _serial = SERIAL.lock().await;
    let topology = Topology {
        dispatchers: 2,
        scrapers: 3,
        archivers: 2,
    };
    let mut crawl = Crawl::start(Shape::new(1200, 3), topology, &[], &[]).await;
    crawl.wait_progress(0.15).await;
    kill(&mut crawl.mesh.dispatchers[0]).await;
    let successor = &crawl.mesh.dispatchers[1];
    eventually(LEASE_TTL, "the standby takes over", || async move {
        role(successor).await == "primary" && counter_of(successor, "assigned").await > 0
    })
    .await;
    crawl.wait_progress(0.35).await;

    // Dispatcher-0 comes back: same id, priority 0, same database.
    let fetched_before: BTreeSet<String> = crawl.site.requests().iter().map(|r| r.url()).collect();
    crawl.mesh.restart(Kind::Dispatcher, 0).await.unwrap();
    let returned_at = Instant::now();
    let mesh = &crawl.mesh;
    let took = eventually(
        LEASE_TTL,
        "the first dispatcher leads again",
        || async move {
            let first = role(&mesh.dispatchers[0]).await;
            let second = role(&mesh.dispatchers[1]).await;
            first == "primary" && second == "standby"
        },
    )
    .await;
    let first = &crawl.mesh.dispatchers[0];
    eventually(
        LEASE_TTL,
        "the first dispatcher assigns work",
        || async move { counter_of(first, "assigned").await > 0 },
    )
    .await;
    println!(
        "dispatcher-0 primary {took:?} and assigning {:?} after it came back",
        returned_at.elapsed()
    );
    let (status, took) = crawl.wait_done().await;
    println!("crawl done in {took:?}: {status}");
    crawl
        .assert_catalogue_archived_once(ShardCopies::None)
        .await;
    crawl.assert_no_product_fetched_twice();

    // A handover between two live dispatchers loses no outcome and no assignment, so every
    // product page first fetched after it was fetched exactly once.
    let products: BTreeSet<String> = crawl
        .site
        .expected_products()
        .into_iter()
        .map(|product| product.url)
        .collect();
    let mut fetches: BTreeMap<String, usize> = BTreeMap::new();
    for request in crawl.site.requests() {
        let url = request.url();
        if products.contains(&url) && !fetched_before.contains(&url) {
            *fetches.entry(url).or_default() += 1;
        }
    }
    let twice: BTreeMap<&String, &usize> = fetches.iter().filter(|(_, n)| **n > 1).collect();
    println!(
        "{} products first fetched after the handover, {} of them more than once",
        fetches.len(),
        twice.len()
    );
    assert!(!fetches.is_empty());
    assert!(
        twice.is_empty(),
        "fetched twice after the handover: {twice:?}"
    );
}

/// A small seeded random number generator (xorshift64*), so a chaos run can be replayed.
struct Chaos(u64);

impl Chaos {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_under_random_kills_archives_the_catalogue_exactly_once() {
    let _serial = SERIAL.lock().await;
    let seed: u64 = std::env::var("OWLMESH_CHAOS_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(20_240_601);
    let topology = Topology {
        dispatchers: 2,
        scrapers: 3,
        archivers: 2,
    };
    let shape = Shape::new(2500, 4);

    // The calm run, for comparison.
    let calm = Crawl::start(shape, topology, &[], &[]).await;
    let (_, calm_took) = calm.wait_done().await;
    calm.assert_catalogue_archived_once(ShardCopies::None).await;
    drop(calm);

    let mut crawl = Crawl::start(shape, topology, &[], &[]).await;
    let mut chaos = Chaos(seed.max(1));
    let mut kills: BTreeMap<String, usize> = BTreeMap::new();
    loop {
        let pause = chaos.millis(1000, 2500);
        let until = Instant::now() + pause;
        while Instant::now() < until {
            if crawl.job().await.is_some_and(|job| job.state == "done") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if Instant::now() < until {
            break;
        }
        assert!(
            crawl.submitted_at.elapsed() < CRAWL_DEADLINE,
            "not done under chaos after {CRAWL_DEADLINE:?} ({kills:?})"
        );
        let choice = chaos.below(8);
        let down = chaos.millis(200, 1000);
        let (name, kind, index) = match choice {
            0 | 1 => ("dispatcher", Some(Kind::Dispatcher), choice as usize),
            2..=4 => ("scraper", Some(Kind::Scraper), choice as usize - 2),
            5 | 6 => ("archiver", Some(Kind::Archiver), choice as usize - 5),
            _ => ("directory", None, 0),
        };
        let victim = format!("{name}-{index}");
        println!(
            "chaos: SIGKILL {victim} at {:?}, back after {down:?}",
            crawl.submitted_at.elapsed()
        );
        *kills.entry(victim).or_default() += 1;
        match kind {
            Some(kind) => {
                crawl.mesh.group(kind)[index].kill().await;
                tokio::time::sleep(down).await;
                crawl.mesh.restart(kind, index).await.unwrap();
            }
            None => {
                crawl.mesh.directory.kill().await;
                tokio::time::sleep(down).await;
                crawl.mesh.restart_directory().await.unwrap();
            }
        }
    }
    let (status, chaos_took) = crawl.wait_done().await;
    crawl
        .mesh
        .wait_registered(crawl.mesh.expected_instances())
        .await
        .unwrap();
    let total: usize = kills.values().sum();
    println!(
        "chaos (seed {seed}): {total} kills {kills:?}; crawl {chaos_took:?} against {calm_took:?} calm \
         ({:.2}x): {status}",
        chaos_took.as_secs_f64() / calm_took.as_secs_f64()
    );
    assert!(total > 0, "the crawl ended before the first kill");
    crawl
        .assert_catalogue_archived_once(ShardCopies::Allowed)
        .await;
}
