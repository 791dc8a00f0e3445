//! The test website: a deterministic catalogue served over real HTTP on loopback listeners,
//! one listener per host, recording every request it receives.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::catalogue::{Catalogue, Reply, Route};
use crate::truth::{self, ExpectedDocument, ExpectedProduct};

/// Products in the catalogue unless configured otherwise.
pub const DEFAULT_PRODUCTS: usize = 500;
/// Products per category listing page.
pub const DEFAULT_PRODUCTS_PER_PAGE: usize = 20;
/// Product categories.
pub const DEFAULT_CATEGORIES: usize = 5;
/// Every n-th product has a datasheet PDF.
pub const DEFAULT_DOCUMENTS_EVERY: usize = 5;
/// Size of the huge page.
pub const DEFAULT_HUGE_PAGE_BYTES: usize = 10 * 1024 * 1024;
/// How long the slow page takes to answer.
pub const DEFAULT_SLOW_DELAY: Duration = Duration::from_secs(2);
/// The `Retry-After` the busy page sends with its 429.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(2);

/// How the site answers `/robots.txt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RobotsMode {
    /// `Disallow: /private/` for every agent, plus the configured `Crawl-delay`.
    #[default]
    Served,
    /// 404: crawlers may fetch everything.
    Missing,
    /// 503: crawlers must assume everything is disallowed.
    ServerError,
}

/// The shape and behaviour of a [`TestSite`]. Every field has a default.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    /// Addresses to listen on, one host each; port 0 picks a free port. Any 127.0.0.x
    /// address binds on Linux without set-up.
    pub listen: Vec<SocketAddr>,
    /// Products in the catalogue, dealt round-robin over the hosts.
    pub products: usize,
    /// Products per category listing page.
    pub products_per_page: usize,
    /// Product categories; every host lists every category.
    pub categories: usize,
    /// Every n-th product (index 0, n, 2n, …) links a datasheet PDF; 0 for none.
    pub documents_every: usize,
    /// `Crawl-delay` in robots.txt, none by default.
    pub crawl_delay: Option<Duration>,
    /// How `/robots.txt` answers.
    pub robots: RobotsMode,
    /// Size of `/huge.html` in bytes.
    pub huge_page_bytes: usize,
    /// How long `/slow.html` waits before answering (`/slow.html?ms=N` overrides it).
    pub slow_delay: Duration,
    /// A delay added to every response, to make concurrency observable.
    pub page_delay: Duration,
    /// How many times `/flaky.html` answers 500 before it answers 200.
    pub flaky_failures: u32,
    /// How many times `/busy.html` answers 429 before it answers 200.
    pub busy_failures: u32,
    /// The `Retry-After` of the 429 answers, sent in whole seconds.
    pub retry_after: Duration,
}

impl Default for SiteConfig {
    fn default() -> Self {
        Self {
            listen: vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)],
            products: DEFAULT_PRODUCTS,
            products_per_page: DEFAULT_PRODUCTS_PER_PAGE,
            categories: DEFAULT_CATEGORIES,
            documents_every: DEFAULT_DOCUMENTS_EVERY,
            crawl_delay: None,
            robots: RobotsMode::Served,
            huge_page_bytes: DEFAULT_HUGE_PAGE_BYTES,
            slow_delay: DEFAULT_SLOW_DELAY,
            page_delay: Duration::ZERO,
            flaky_failures: 1,
            busy_failures: 1,
            retry_after: DEFAULT_RETRY_AFTER,
        }
    }
}

impl SiteConfig {
    /// One site spread over `hosts` listeners on 127.0.0.1, each its own host:port.
    pub fn spread_over(hosts: usize) -> Self {
        let localhost = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
        Self {
            listen: vec![localhost; hosts.max(1)],
            ..Self::default()
        }
    }

    /// One site spread over `hosts` loopback addresses 127.0.0.2, 127.0.0.3, …, so hosts
    /// differ by address and not only by port.
    pub fn spread_over_addresses(hosts: usize) -> Self {
        let listen = (0..hosts.clamp(1, 250))
            .map(|offset| {
                SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + offset as u8)), 0)
            })
            .collect();
        Self {
            listen,
            ..Self::default()
        }
    }
}

/// One request the site received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// The listener that received it, as `ip:port` (the host of the URL).
    pub host: String,
    /// Path and query, e.g. `/category/garden.html?page=2`.
    pub path: String,
    /// The `User-Agent` header, when sent.
    pub user_agent: Option<String>,
    /// When the request arrived.
    pub at: Instant,
}

impl RequestRecord {
    /// The absolute URL that was requested.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.host, self.path)
    }
}

/// A running test site. Dropping it stops the listeners; [`TestSite::stop`] also waits.
#[derive(Debug)]
pub struct TestSite {
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    catalogue: Catalogue,
    config: SiteConfig,
    revision: AtomicU32,
    log: Mutex<Vec<RequestRecord>>,
    hosts: Vec<HostCounters>,
}

/// Per-listener counters: first-time failures and requests in flight.
#[derive(Debug, Default)]
struct HostCounters {
    flaky_served: AtomicU32,
    busy_served: AtomicU32,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

#[derive(Debug, Clone)]
struct HostContext {
    index: usize,
    shared: Arc<Shared>,
}

impl TestSite {
    /// Binds every configured address, then serves until stopped or dropped.
    pub async fn start(config: SiteConfig) -> std::io::Result<Self> {
        let mut listeners = Vec::with_capacity(config.listen.len());
        for address in &config.listen {
            listeners.push(TcpListener::bind(address).await?);
        }
        let mut authorities = Vec::with_capacity(listeners.len());
        for listener in &listeners {
            authorities.push(listener.local_addr()?.to_string());
        }
        let catalogue = Catalogue::new(&config, authorities);
        let shared = Arc::new(Shared {
            catalogue,
            hosts: listeners.iter().map(|_| HostCounters::default()).collect(),
            config,
            revision: AtomicU32::new(1),
            log: Mutex::new(Vec::new()),
        });
        let (shutdown, signal) = watch::channel(false);
        let servers = listeners
            .into_iter()
            .enumerate()
            .map(|(index, listener)| {
                let context = HostContext {
                    index,
                    shared: Arc::clone(&shared),
                };
                tokio::spawn(serve(listener, context, signal.clone()))
            })
            .collect();
        Ok(Self {
            shared,
            shutdown,
            servers,
        })
    }

    /// Stops accepting, lets requests in flight finish and waits for the listeners to close.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        for server in std::mem::take(&mut self.servers) {
            let _ = server.await;
        }
    }

    /// The hosts as `ip:port`, in configuration order; host 0 is the main one.
    pub fn hosts(&self) -> Vec<String> {
        self.shared.catalogue.hosts().to_vec()
    }

    /// `http://{host 0}`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.shared.catalogue.url(0, "")
    }

    /// Absolute URL of `path` on host 0.
    pub fn url(&self, path: &str) -> String {
        self.shared.catalogue.url(0, path)
    }

    /// Absolute URL of `path` on host `host`.
    pub fn host_url(&self, host: usize, path: &str) -> String {
        self.shared.catalogue.url(host, path)
    }

    /// The home page of every host: seeds from which every product is reachable.
    pub fn seeds(&self) -> Vec<String> {
        (0..self.shared.catalogue.hosts().len())
            .map(|host| self.host_url(host, "/"))
            .collect()
    }

    /// Absolute URL of product `index`'s page.
    pub fn product_url(&self, index: usize) -> String {
        self.shared.catalogue.product_url(index)
    }

    /// The current content revision, 1 at start.
    pub fn revision(&self) -> u32 {
        self.shared.revision.load(Ordering::Relaxed)
    }

    /// Changes the content: from revision 2 on, products 0, 10, 20, … show a new title and
    /// price. Revision 1 is the original content.
    pub fn set_revision(&self, revision: u32) {
        self.shared
            .revision
            .store(revision.max(1), Ordering::Relaxed);
    }

    /// Every product with the values a correct extraction finds, at the current revision.
    pub fn expected_products(&self) -> Vec<ExpectedProduct> {
        truth::products(&self.shared.catalogue, self.revision())
    }

    /// Every linked PDF: datasheets by extension and one manual by Content-Type only.
    pub fn expected_documents(&self) -> Vec<ExpectedDocument> {
        truth::documents(&self.shared.catalogue)
    }

    /// Site URLs a polite crawler starting from [`TestSite::seeds`] fetches: every `<a href>`
    /// target and redirect target on the site's hosts that robots.txt allows, including the
    /// bad pages and the documents. External links and robots.txt itself are not included.
    pub fn reachable_urls(&self) -> BTreeSet<String> {
        truth::walk(&self.shared.catalogue, self.revision()).reachable
    }

    /// Site URLs linked from reachable pages that robots.txt forbids (e.g. `/private/`).
    pub fn disallowed_urls(&self) -> BTreeSet<String> {
        truth::walk(&self.shared.catalogue, self.revision()).disallowed
    }

    /// Links from reachable pages to hosts the site does not serve.
    pub fn external_urls(&self) -> BTreeSet<String> {
        truth::walk(&self.shared.catalogue, self.revision()).external
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.log().clone()
    }

    /// How many times the absolute URL `url` was requested.
    pub fn request_count(&self, url: &str) -> usize {
        self.log()
            .iter()
            .filter(|record| record.url() == url)
            .count()
    }

    /// Forgets the requests received so far and the in-flight maxima.
    pub fn clear_requests(&self) {
        self.log().clear();
        for host in &self.shared.hosts {
            host.max_in_flight.store(0, Ordering::Relaxed);
        }
    }

    /// The most requests host `host` ever had in flight at once.
    pub fn max_in_flight(&self, host: usize) -> usize {
        self.shared.hosts[host]
            .max_in_flight
            .load(Ordering::Relaxed)
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Vec<RequestRecord>> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for TestSite {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

async fn serve(listener: TcpListener, context: HostContext, mut signal: watch::Receiver<bool>) {
    let app = Router::new().fallback(handle).with_state(context);
    let shutdown = async move {
        let _ = signal.wait_for(|stopped| *stopped).await;
    };
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
}

async fn handle(State(context): State<HostContext>, request: Request) -> Response {
    let path = request
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), ToString::to_string);
    context.record(&request, &path);
    let _in_flight = InFlight::enter(&context.shared.hosts[context.index]);
    let shared = &context.shared;
    if !shared.config.page_delay.is_zero() {
        tokio::time::sleep(shared.config.page_delay).await;
    }
    let route = shared.catalogue.route(context.index, &path);
    if let Some(failure) = context.first_time_failure(route) {
        return failure;
    }
    if route == Route::Slow {
        tokio::time::sleep(slow_delay(&path, shared.config.slow_delay)).await;
    }
    let revision = shared.revision.load(Ordering::Relaxed);
    into_response(shared.catalogue.reply(context.index, route, revision))
}

impl HostContext {
    fn record(&self, request: &Request, path: &str) {
        let record = RequestRecord {
            method: request.method().to_string(),
            host: self.shared.catalogue.hosts()[self.index].clone(),
            path: path.to_owned(),
            user_agent: request
                .headers()
                .get(header::USER_AGENT)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
            at: Instant::now(),
        };
        let mut log = self
            .shared
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        log.push(record);
    }

    /// The 500 of the flaky page and the 429 of the busy page, while they last.
    fn first_time_failure(&self, route: Route) -> Option<Response> {
        let counters = &self.shared.hosts[self.index];
        let config = &self.shared.config;
        match route {
            Route::Flaky
                if counters.flaky_served.fetch_add(1, Ordering::Relaxed)
                    < config.flaky_failures =>
            {
                Some(status_page(StatusCode::INTERNAL_SERVER_ERROR, None))
            }
            Route::Busy
                if counters.busy_served.fetch_add(1, Ordering::Relaxed) < config.busy_failures =>
            {
                let seconds = config.retry_after.as_secs().to_string();
                Some(status_page(StatusCode::TOO_MANY_REQUESTS, Some(seconds)))
            }
            _ => None,
        }
    }
}

/// Counts a request in flight on its host for as long as it lives.
struct InFlight<'a>(&'a HostCounters);

impl<'a> InFlight<'a> {
    fn enter(counters: &'a HostCounters) -> Self {
        let now = counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        counters.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(counters)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn slow_delay(path: &str, default: Duration) -> Duration {
    path.split_once("?ms=")
        .and_then(|(_, millis)| millis.parse().ok())
        .map_or(default, Duration::from_millis)
}

fn status_page(status: StatusCode, retry_after: Option<String>) -> Response {
    let body = format!(
        "<!doctype html><html><head><title>{status}</title></head><body><h1>{status}</h1>\
         <p>Please try again later.</p></body></html>"
    );
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Some(value) = retry_after.and_then(|value| HeaderValue::from_str(&value).ok()) {
        headers.insert(header::RETRY_AFTER, value);
    }
    response
}

fn into_response(reply: Reply) -> Response {
    let body = if reply.streamed {
        streamed(reply.body)
    } else {
        Body::from(reply.body)
    };
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    if let Some(kind) = reply.content_type {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    }
    if let Some(value) = reply
        .location
        .and_then(|value| HeaderValue::from_str(&value).ok())
    {
        headers.insert(header::LOCATION, value);
    }
    response
}

/// A body sent in 64 KiB chunks with no Content-Length, so clients must count as they read.
fn streamed(body: Bytes) -> Body {
    const CHUNK: usize = 64 * 1024;
    let chunks: Vec<Result<Bytes, Infallible>> = (0..body.len())
        .step_by(CHUNK)
        .map(|start| Ok(body.slice(start..(start + CHUNK).min(body.len()))))
        .collect();
    Body::from_stream(futures::stream::iter(chunks))
}
