//! The dashboard end to end: a real mesh crawls the local test site while `owlmesh
//! monitoring` runs as its own process. Its `/metrics` must be valid Prometheus text that
//! agrees with the instances' own `GetStats`, a real headless Chromium must see the page
//! change live without a reload, and a killed scraper must turn "gone" within the lease TTL.

#[path = "support/browser.rs"]
mod browser;
#[path = "support/http.rs"]
mod http_get;
mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use browser::Browser;
use owlmesh_mesh::auth::TokenSet;
use owlmesh_proto::v1::telemetry_client::TelemetryClient;
use owlmesh_proto::v1::{GetStatsRequest, Stats};
use owlmesh_site::{CatalogueJob, Site, SiteConfig};
use owlmesh_tests::eventually;
use prometheus_parse::{LineInfo, Sample, Scrape, Value as PromValue};
use serde_json::Value;
use support::OwlmeshProcess;
use support::mesh::{TestMesh, Topology};

/// The screen the page must be usable on, and the screenshot's size.
const WIDTH: u32 = 1366;
const HEIGHT: u32 = 900;
/// Every kind the members table must show.
const KINDS: [&str; 5] = [
    "directory",
    "dispatcher",
    "scraper",
    "archiver",
    "monitoring",
];
/// The lease TTL of the test mesh's directory.
const LEASE_TTL: Duration = Duration::from_secs(2);
/// The dashboard's poll interval: it learns of any change at its next round.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How often the test reads the page while the crawl runs.
const READ_EVERY: Duration = Duration::from_millis(500);
/// Longest the crawl may take.
const CRAWL_DEADLINE: Duration = Duration::from_secs(120);

/// Reads what a person sees in the page, from the stable ids and data attributes.
const READ_PAGE: &str = r##"(() => {
  if (!document.getElementById("connection")) return { connection: "loading" };
  const value = (id) => {
    const text = document.getElementById(id).dataset.value;
    return text === "" || text === undefined ? null : Number(text);
  };
  const frontierLine = document.querySelector('#queue-chart polyline[data-series="frontier"]');
  const job = document.querySelector("#jobs li[data-job-id]");
  return {
    connection: document.getElementById("connection").dataset.state,
    updatedAt: Number(document.getElementById("updated-at").dataset.atMs),
    frontier: value("frontier-total"),
    pagesRate: value("pages-rate"),
    members: [...document.querySelectorAll("#members tr[data-kind]")].map((row) => ({
      kind: row.dataset.kind, id: row.dataset.id, state: row.dataset.state,
    })),
    frontierPoints: frontierLine ? Number(frontierLine.dataset.points) : 0,
    throughputSeries: Number(document.getElementById("throughput-chart").dataset.series || 0),
    jobState: job ? job.dataset.state : null,
    jobProgress: job ? Number(job.dataset.progress) : 0,
    marker: window.owlmeshTestMarker || null,
  };
})()"##;

fn site_config() -> SiteConfig {
    SiteConfig {
        products: 3000,
        // Slow enough that the crawl takes several seconds, so the page has time to move.
        page_delay: Duration::from_millis(60),
        slow_delay: Duration::from_millis(300),
        ..SiteConfig::spread_over(2)
    }
}

/// The catalogue job for the test site.
fn job_file(site: &Site) -> String {
    let job = CatalogueJob {
        max_retries: 1,
        ..CatalogueJob::default()
    };
    job.toml(&site.seeds(), &site.hosts())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_crawl_shows_on_the_dashboard_in_prometheus_and_in_a_real_browser() {
    // No browser or driver is a broken set-up: fail now, before starting anything.
    browser::chromium_path();
    browser::chromedriver_path();
    let site = Site::start(site_config()).await.unwrap();
    let topology = Topology {
        dispatchers: 2,
        scrapers: 2,
        archivers: 1,
    };
    let mut mesh = TestMesh::start(topology, &[]).await.unwrap();
    let directory = mesh.directory_address();
    let monitoring = OwlmeshProcess::start(&[
        "monitoring",
        "--listen",
        "127.0.0.1:0",
        "--directory",
        &directory,
    ])
    .await
    .unwrap();
    let dashboard = monitoring.address;
    wait_for_every_kind(dashboard).await;

    only_a_reader_sees_the_dashboard(dashboard).await;
    // The link `owlmesh up` prints: the token once in the address, then in a cookie.
    let token = TokenSet::read(support::test_token_file()).unwrap();
    let link = format!("http://{dashboard}/?token={}", token.own().expose());
    let browser = Browser::open(&link, WIDTH, HEIGHT).await.unwrap();
    let address = browser.evaluate("location.href").await.unwrap();
    assert_eq!(
        address,
        format!("http://{dashboard}/"),
        "the token left the address"
    );
    wait_until_the_page_is_live(&browser).await;

    let job = mesh.submit(&job_file(&site)).await.unwrap();
    metrics_agree_with_get_stats(dashboard).await;
    let reads = read_the_page_until_done(&browser, dashboard).await;
    the_page_changed_live(&reads);
    a_killed_scraper_turns_gone(&mut mesh, dashboard, &browser).await;

    let status = mesh.cli_json(&["job", "status", &job]).await.unwrap();
    assert_eq!(status["state"], "done", "{status}");
    browser.close().await;
    site.stop().await;
}

// ---- the dashboard's JSON ----------------------------------------------------------------

async fn snapshot(dashboard: SocketAddr) -> Value {
    http_get::get_json(dashboard, "/api/snapshot")
        .await
        .unwrap()
}

fn member<'a>(snapshot: &'a Value, kind: &str, id: &str) -> Option<&'a Value> {
    snapshot["members"]
        .as_array()?
        .iter()
        .find(|member| member["kind"] == kind && member["id"] == id)
}

async fn wait_for_every_kind(dashboard: SocketAddr) {
    eventually(
        Duration::from_secs(20),
        "every kind on the dashboard",
        || async move {
            let snapshot = snapshot(dashboard).await;
            let live: BTreeSet<&str> = snapshot["members"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|member| member["state"] != "gone" && member["state"] != "starting")
                .filter_map(|member| member["kind"].as_str())
                .collect();
            KINDS.iter().all(|kind| live.contains(kind))
        },
    )
    .await;
}

/// Without a reader's token the dashboard answers 401 and says how to bring one.
async fn only_a_reader_sees_the_dashboard(dashboard: SocketAddr) {
    for path in ["/", "/metrics", "/api/snapshot", "/api/events"] {
        let anonymous = http_get::get_with(dashboard, path, None).await.unwrap();
        assert_eq!(anonymous.status, 401, "{path}: {}", anonymous.body);
        assert!(
            anonymous.body.contains("?token=TOKEN"),
            "{}",
            anonymous.body
        );
        let forged = http_get::get_with(dashboard, path, Some("forged-token-0123456789"))
            .await
            .unwrap();
        assert_eq!(forged.status, 401, "{path}");
    }
    let forged_link = http_get::get_with(dashboard, "/?token=forged-token-0123456789", None)
        .await
        .unwrap();
    assert_eq!(forged_link.status, 401);

    // A page elsewhere that points its own name at this machine (DNS rebinding) is refused,
    // token or not; by address or as localhost the page is served, under a strict policy.
    let token = TokenSet::read(support::test_token_file()).unwrap();
    let token = Some(token.own().expose());
    let rebound = http_get::get_as(dashboard, "/", token, Some("evil.example:7780"))
        .await
        .unwrap();
    assert_eq!(rebound.status, 403, "{}", rebound.body);
    assert!(
        rebound.body.contains("--allow-host evil.example"),
        "{}",
        rebound.body
    );
    let port = dashboard.port();
    let local = http_get::get_as(dashboard, "/", token, Some(&format!("localhost:{port}")))
        .await
        .unwrap();
    assert_eq!(local.status, 200);
    let policy = local.content_security_policy.unwrap_or_default();
    assert!(
        policy.contains("default-src 'none'") && policy.contains("script-src 'self'"),
        "{policy}"
    );
}

// ---- (1) Prometheus --------------------------------------------------------------------

async fn get_stats(address: &str) -> Stats {
    let mut client = TelemetryClient::new(support::channel(address).await.unwrap());
    client
        .get_stats(GetStatsRequest {})
        .await
        .unwrap()
        .into_inner()
}

fn counter(stats: &Stats, name: &str) -> u64 {
    let counter = stats.counters.iter().find(|counter| counter.name == name);
    counter.map_or(0, |counter| counter.value)
}

/// The exposition must parse, every line must be one the format knows, and every sample
/// must belong to a family declared with `# TYPE`.
fn parse_exposition(text: &str) -> Scrape {
    let mut typed: BTreeSet<String> = BTreeSet::new();
    for line in text.lines() {
        match LineInfo::parse(line) {
            LineInfo::Ignored => panic!("not a line of the exposition format: {line:?}"),
            LineInfo::Type { metric_alias, .. } => {
                let (_, name, kind) = split_type(line);
                typed.insert(name.to_owned());
                if kind == "histogram" {
                    assert!(metric_alias.is_some());
                }
            }
            LineInfo::Sample { metric_name, .. } => {
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| metric_name.strip_suffix(suffix))
                    .filter(|base| typed.contains(*base))
                    .unwrap_or(metric_name);
                assert!(
                    typed.contains(family),
                    "{metric_name} has no # TYPE before it"
                );
            }
            _ => {}
        }
    }
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    Scrape::parse(lines).expect("the exposition parses")
}

fn split_type(line: &str) -> (&str, &str, &str) {
    let mut words = line.split_whitespace().skip(1);
    let (Some(keyword), Some(name), Some(kind)) = (words.next(), words.next(), words.next()) else {
        panic!("bad TYPE line {line:?}")
    };
    (keyword, name, kind)
}

fn sample<'a>(scrape: &'a Scrape, metric: &str, kind: &str, instance: &str) -> &'a Sample {
    scrape
        .samples
        .iter()
        .find(|sample| {
            sample.metric == metric
                && sample.labels.get("kind") == Some(kind)
                && sample.labels.get("instance") == Some(instance)
        })
        .unwrap_or_else(|| panic!("no {metric} for {kind}/{instance}"))
}

fn number(sample: &Sample) -> f64 {
    match &sample.value {
        PromValue::Counter(value) | PromValue::Gauge(value) | PromValue::Untyped(value) => *value,
        other => panic!("{} is not a number: {other:?}", sample.metric),
    }
}

/// A scraper that has fetched pages, as (id, address): the ring may give every host of
/// the site to one of them.
async fn a_fetching_scraper(dashboard: SocketAddr) -> (String, String) {
    let started = Instant::now();
    loop {
        let picture = snapshot(dashboard).await;
        let members = picture["members"].as_array().into_iter().flatten();
        for scraper in members.filter(|member| member["kind"] == "scraper") {
            let (Some(id), Some(address)) = (scraper["id"].as_str(), scraper["address"].as_str())
            else {
                continue;
            };
            if counter(&get_stats(address).await, "pages_fetched") > 0 {
                return (id.to_owned(), address.to_owned());
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no scraper fetched a page: {picture}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A scraper's counters in `/metrics` lie between a `GetStats` taken before the dashboard's
/// poll and one taken after the scrape.
async fn metrics_agree_with_get_stats(dashboard: SocketAddr) {
    let (id, address) = a_fetching_scraper(dashboard).await;
    let scraper = id.as_str();
    let before = get_stats(&address).await;
    let taken_before = before.taken_at_ms;
    // Wait for a poll round that asked the scraper after `before` was taken.
    eventually(
        Duration::from_secs(5),
        "a newer poll of the scraper",
        || async move {
            let picture = snapshot(dashboard).await;
            let taken = member(&picture, "scraper", scraper).map(|m| &m["taken_at_ms"]);
            taken.and_then(Value::as_i64) > Some(taken_before)
        },
    )
    .await;
    let answer = http_get::get(dashboard, "/metrics").await.unwrap();
    let after = get_stats(&address).await;
    assert_eq!(answer.status, 200);
    assert!(
        answer.content_type.starts_with("text/plain; version=0.0.4"),
        "{}",
        answer.content_type
    );
    let scrape = parse_exposition(&answer.body);

    let pages = number(sample(
        &scrape,
        "owlmesh_pages_fetched_total",
        "scraper",
        scraper,
    ));
    let (earlier, later) = (
        counter(&before, "pages_fetched"),
        counter(&after, "pages_fetched"),
    );
    assert!(
        earlier as f64 <= pages && pages <= later as f64,
        "{scraper} pages_fetched: GetStats said {earlier} then {later}, /metrics said {pages}"
    );
    histogram_agrees(&scrape, scraper, &before, &after);
    for kind in KINDS {
        let up = scrape.samples.iter().filter(|s| s.metric == "owlmesh_up");
        let live = up
            .filter(|s| s.labels.get("kind") == Some(kind))
            .any(|s| number(s) == 1.0);
        assert!(live, "no live {kind} in /metrics");
    }
    let frontier = scrape.samples.iter().any(|s| {
        s.metric == "owlmesh_queue_depth"
            && s.labels.get("kind") == Some("dispatcher")
            && s.labels.get("queue") == Some("frontier")
    });
    assert!(frontier, "no dispatcher frontier gauge in /metrics");
}

/// A scraper's fetch latency histogram: cumulative buckets, `+Inf` equal to `_count`, and
/// a count between the two `GetStats` snapshots.
fn histogram_agrees(scrape: &Scrape, scraper: &str, before: &Stats, after: &Stats) {
    let histogram = sample(scrape, "owlmesh_fetch_seconds", "scraper", scraper);
    let PromValue::Histogram(buckets) = &histogram.value else {
        panic!(
            "owlmesh_fetch_seconds is not a histogram: {:?}",
            histogram.value
        )
    };
    let cumulative = buckets
        .windows(2)
        .all(|pair| pair[0].count <= pair[1].count);
    assert!(cumulative, "{buckets:?}");
    let infinite = buckets.last().expect("buckets");
    assert!(infinite.less_than.is_infinite());
    let count = number(sample(
        scrape,
        "owlmesh_fetch_seconds_count",
        "scraper",
        scraper,
    ));
    assert_eq!(infinite.count, count);
    let count_of = |stats: &Stats| {
        let histogram = stats.histograms.iter().find(|h| h.name == "fetch_seconds");
        histogram.map_or(0, |histogram| histogram.count) as f64
    };
    assert!(count_of(before) <= count && count <= count_of(after));
}

// ---- (2) the page in a real browser ---------------------------------------------------

/// One look at the page.
#[derive(Debug)]
struct Read {
    /// When the test read it, on the test's own clock.
    read_at: Instant,
    connection: String,
    updated_at: i64,
    frontier: Option<f64>,
    pages_rate: Option<f64>,
    kinds: BTreeSet<String>,
    frontier_points: u64,
    throughput_series: u64,
    job_state: Option<String>,
    job_progress: f64,
    marker: Value,
}

impl Read {
    fn new(value: &Value) -> Self {
        let kinds = value["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|row| row["kind"].as_str().map(str::to_owned))
            .collect();
        Self {
            read_at: Instant::now(),
            connection: value["connection"].as_str().unwrap_or_default().to_owned(),
            updated_at: value["updatedAt"].as_i64().unwrap_or_default(),
            frontier: value["frontier"].as_f64(),
            pages_rate: value["pagesRate"].as_f64(),
            kinds,
            frontier_points: value["frontierPoints"].as_u64().unwrap_or_default(),
            throughput_series: value["throughputSeries"].as_u64().unwrap_or_default(),
            job_state: value["jobState"].as_str().map(str::to_owned),
            job_progress: value["jobProgress"].as_f64().unwrap_or_default(),
            marker: value["marker"].clone(),
        }
    }
}

async fn read_page(browser: &Browser) -> Read {
    Read::new(&browser.evaluate(READ_PAGE).await.unwrap())
}

/// Waits for the event stream to be live with every kind shown, then leaves a marker in
/// the page's window: a reload would lose it.
async fn wait_until_the_page_is_live(browser: &Browser) {
    let started = Instant::now();
    loop {
        let read = read_page(browser).await;
        if read.connection == "live" && KINDS.iter().all(|kind| read.kinds.contains(*kind)) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the page did not come alive: {read:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    browser
        .evaluate("window.owlmeshTestMarker = 'first-load'")
        .await
        .unwrap();
}

/// Reads the page twice a second until it shows the job done, taking the screenshot once
/// the crawl is well under way.
async fn read_the_page_until_done(browser: &Browser, dashboard: SocketAddr) -> Vec<Read> {
    let started = Instant::now();
    let mut reads = Vec::new();
    let mut screenshot = false;
    loop {
        let read = read_page(browser).await;
        let busy = read.pages_rate.is_some_and(|rate| rate > 0.0);
        if !screenshot && busy && read.job_progress >= 0.5 {
            save_screenshot(browser).await;
            screenshot = true;
        }
        let done = read.job_state.as_deref() == Some("done");
        reads.push(read);
        if done {
            break;
        }
        if started.elapsed() > CRAWL_DEADLINE {
            let picture = snapshot(dashboard).await;
            panic!(
                "the page never showed the job done; last read {:?}\nthe dashboard saw {}",
                reads.last(),
                serde_json::json!({
                    "totals": picture["totals"],
                    "jobs": picture["jobs"],
                    "members": picture["members"].as_array().map(|members| members
                        .iter()
                        .map(|m| serde_json::json!([m["id"], m["state"], m["status"], m["last_error"], m["queues"]]))
                        .collect::<Vec<_>>()),
                    "failures": picture["failures"],
                })
            );
        }
        tokio::time::sleep(READ_EVERY).await;
    }
    if !screenshot {
        save_screenshot(browser).await;
    }
    reads
}

/// `target/test-artifacts/dashboard.png`, next to the build that runs the test.
fn screenshot_path() -> PathBuf {
    let test_exe = std::env::current_exe().expect("test executable path");
    let target = test_exe
        .ancestors()
        .nth(3)
        .expect("target/<profile>/deps/<test>");
    target.join("test-artifacts").join("dashboard.png")
}

async fn save_screenshot(browser: &Browser) {
    let path = screenshot_path();
    browser.screenshot(&path).await.unwrap();
    let png = std::fs::read(&path).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (WIDTH, HEIGHT), "screenshot size");
    println!("dashboard screenshot: {}", path.display());
}

/// The page kept its first load, was updated at least about once a second, showed every
/// kind, and its frontier fell while pages were being fetched.
fn the_page_changed_live(reads: &[Read]) {
    let first = reads.first().expect("reads");
    let last = reads.last().expect("reads");
    assert!(
        reads.len() >= 4,
        "the crawl was too quick to watch: {reads:#?}"
    );
    for read in reads {
        assert_eq!(read.connection, "live", "{read:?}");
        assert_eq!(read.marker, "first-load", "the page was reloaded: {read:?}");
        for kind in KINDS {
            assert!(read.kinds.contains(kind), "{kind} missing: {read:?}");
        }
    }
    // Timed on the test's monotonic clock: the page's update times are wall-clock, which
    // the machine may step while the test runs.
    let mut changed_at = first.read_at;
    for pair in reads.windows(2) {
        if pair[1].updated_at != pair[0].updated_at {
            changed_at = pair[1].read_at;
        }
        let still = pair[1].read_at - changed_at;
        assert!(
            still <= Duration::from_millis(2500) + READ_EVERY,
            "updates must arrive about once a second; none for {still:?}: {:?}",
            reads.iter().map(|read| read.updated_at).collect::<Vec<_>>()
        );
    }
    let falls = reads.iter().enumerate().any(|(index, earlier)| {
        reads[index + 1..].iter().any(|later| {
            later.pages_rate.is_some_and(|rate| rate > 0.0)
                && matches!((earlier.frontier, later.frontier), (Some(a), Some(b)) if b < a)
        })
    });
    let frontiers: Vec<_> = reads
        .iter()
        .map(|read| (read.frontier, read.pages_rate))
        .collect();
    assert!(
        falls,
        "the frontier never fell while pages were fetched: {frontiers:?}"
    );
    assert!(
        last.frontier_points > first.frontier_points,
        "the queue-depth graph did not grow: {first:?} … {last:?}"
    );
    assert_eq!(
        last.throughput_series, 3,
        "pages/s, items/s, errors/s: {last:?}"
    );
    assert_eq!(last.job_progress, 1.0, "{last:?}");
}

// ---- (3) a scraper dies ---------------------------------------------------------------

async fn member_state(dashboard: SocketAddr, kind: &str, id: &str) -> Option<String> {
    let snapshot = snapshot(dashboard).await;
    let state = member(&snapshot, kind, id)?["state"].as_str()?.to_owned();
    Some(state)
}

async fn page_row_state(browser: &Browser, id: &str) -> Option<String> {
    let expression = format!(
        r#"document.querySelector('#members tr[data-kind="scraper"][data-id="{id}"]')?.dataset.state ?? null"#
    );
    let state = browser.evaluate(&expression).await.unwrap();
    state.as_str().map(str::to_owned)
}

/// SIGKILL closes the scraper's keep-alive stream, so the directory drops it at once (the
/// TTL bounds a hung process); the dashboard then shows it gone at its next poll round.
async fn a_killed_scraper_turns_gone(
    mesh: &mut TestMesh,
    dashboard: SocketAddr,
    browser: &Browser,
) {
    let state = member_state(dashboard, "scraper", "scraper-1").await;
    assert!(
        state.as_deref().is_some_and(|state| state != "gone"),
        "scraper-1 before the kill: {state:?}"
    );
    mesh.scrapers[1].kill().await;
    let deadline = LEASE_TTL + POLL_INTERVAL;
    let took = eventually(deadline, "scraper-1 gone in /api/snapshot", || async move {
        member_state(dashboard, "scraper", "scraper-1")
            .await
            .as_deref()
            == Some("gone")
    })
    .await;
    println!("a killed scraper showed as gone after {took:?}");

    let started = Instant::now();
    while page_row_state(browser, "scraper-1").await.as_deref() != Some("gone") {
        assert!(
            started.elapsed() < 2 * POLL_INTERVAL,
            "the page does not show scraper-1 gone"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = http_get::get_ok(dashboard, "/metrics").await.unwrap();
    let scrape = parse_exposition(&text);
    assert_eq!(
        number(sample(&scrape, "owlmesh_up", "scraper", "scraper-1")),
        0.0
    );
    assert_eq!(
        number(sample(&scrape, "owlmesh_up", "scraper", "scraper-0")),
        1.0
    );
}
