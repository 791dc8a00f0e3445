//! The site over HTTP: one axum server per host on loopback listeners, recording every
//! request it receives, failing the flaky and busy pages the first time(s), and counting
//! requests in flight, so tests can see what a crawler did and not only what it archived.

use std::collections::BTreeSet;
use std::convert::Infallible;
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
use crate::config::SiteConfig;
use crate::truth::{self, ExpectedDocument, ExpectedProduct};

/// One request the site received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// The listener that received it, as `ip:port` (the host of the URL).
    pub host: String,
    /// Path and query, e.g. `/slow.html?ms=50`.
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

/// A running site. Dropping it stops the listeners; [`Site::stop`] also waits.
#[derive(Debug)]
pub struct Site {
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

impl Site {
    /// Binds every configured address, then serves until stopped or dropped.
    pub async fn start(config: SiteConfig) -> std::io::Result<Self> {
        if config.listen.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a site needs at least one address to listen on",
            ));
        }
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

    /// Every linked PDF: datasheets by extension and, with the bad pages, one manual by
    /// Content-Type only.
    pub fn expected_documents(&self) -> Vec<ExpectedDocument> {
        truth::documents(&self.shared.catalogue)
    }

    /// Site URLs a polite crawler starting from [`Site::seeds`] fetches: every `<a href>`
    /// target and redirect target on the site's hosts that robots.txt allows, including the
    /// bad pages and the documents. External links and robots.txt itself are not included.
    pub fn reachable_urls(&self) -> BTreeSet<String> {
        truth::walk(&self.shared.catalogue, self.revision()).reachable
    }

    /// The reachable URLs a crawl with the [`CatalogueJob`](crate::CatalogueJob) fetches:
    /// all but the `.pdf` links, which it reports as documents without fetching them.
    pub fn fetched_urls(&self) -> BTreeSet<String> {
        truth::walk(&self.shared.catalogue, self.revision()).fetched()
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

impl Drop for Site {
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
    if let (Route::RedirectTo, Some(location)) = (route, redirect_location(&path)) {
        return into_response(Reply::redirect(302, location));
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

/// The `location` query parameter of the open redirect, decoded.
fn redirect_location(path: &str) -> Option<String> {
    let (_, query) = path.split_once('?')?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "location")
        .map(|(_, value)| value.into_owned())
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
