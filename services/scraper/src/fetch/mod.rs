//! Fetching pages over HTTP: one shared client with connection reuse, timeouts, a cap on
//! body size, redirects followed by hand so that every hop is recorded and loops are caught,
//! and failures sorted into transient (worth a retry) and permanent.
//!
//! TLS is rustls with the `ring` crypto provider, installed once per process: it builds
//! with a C compiler only, needs no system TLS library, and compiles faster than aws-lc.
//! Bodies are decompressed (gzip, brotli) before the size cap applies, so a small
//! compressed bomb is still stopped at the cap. The client speaks HTTP/1.1.
//!
//! Every connection passes the [`EgressGuard`]: a literal address is checked before each
//! request (every redirect hop is a request of its own), and names resolve through the
//! guard's resolver, so robots.txt, redirects and `Try` are held to the same networks.

mod body;
mod outcome;
mod redirect;

use std::fmt;
use std::sync::Once;
use std::time::Duration;

use owlmesh_egress::EgressGuard;
use owlmesh_job::{DEFAULT_USER_AGENT, is_web_url};
use reqwest::header::{CONTENT_TYPE, USER_AGENT};
use reqwest::{Response, redirect as client_redirect};
use url::Url;

use crate::error::{Result, ScraperError};
use body::{count_body, drain, read_body};
use outcome::{classify, describe, status_error};
use redirect::{Chain, redirect_target};

pub use outcome::{FetchError, FetchFailure, FetchResult, Fetched, is_html, parse_retry_after};

/// Time allowed to establish a TCP (and TLS) connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed between two reads, including the wait for the response head.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(20);
/// Time allowed for one request, head and body, per redirect hop.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest body read, after decompression.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 5 * 1024 * 1024;
/// Redirects followed before giving up.
pub const DEFAULT_MAX_REDIRECTS: usize = 10;
/// How the [`Fetcher`] behaves. Every field has a default.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// User-Agent header, unless a request names its own.
    pub user_agent: String,
    /// See [`DEFAULT_CONNECT_TIMEOUT`].
    pub connect_timeout: Duration,
    /// See [`DEFAULT_READ_TIMEOUT`].
    pub read_timeout: Duration,
    /// See [`DEFAULT_REQUEST_TIMEOUT`].
    pub request_timeout: Duration,
    /// See [`DEFAULT_MAX_BODY_BYTES`].
    pub max_body_bytes: u64,
    /// See [`DEFAULT_MAX_REDIRECTS`].
    pub max_redirects: usize,
    /// Which addresses may be connected to; by default no loopback, private or other
    /// special address (see [`owlmesh_egress::SpecialRange`]).
    pub egress: EgressGuard,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            egress: EgressGuard::default(),
        }
    }
}

/// Which bodies a fetch keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BodyPolicy {
    /// Keep HTML bodies up to the cap (a larger one is [`FetchError::TooLarge`]); count and
    /// discard the others.
    #[default]
    Html,
    /// Keep any body, cut at the cap without error: for robots.txt, of which only a prefix
    /// is read (RFC 9309 asks for at least 500 KiB).
    Prefix,
}

/// Per-request choices.
#[derive(Clone, Copy, Default)]
pub struct FetchOptions<'a> {
    /// User-Agent for this request, e.g. the job's.
    pub user_agent: Option<&'a str>,
    /// Decides whether to follow a redirect to a URL; `None` follows every redirect. A
    /// refused hop ends the fetch with [`FetchError::RedirectNotFollowed`], so that the
    /// caller can schedule the target itself (another host, or a path robots.txt forbids).
    pub may_follow: Option<&'a (dyn Fn(&Url) -> bool + Sync)>,
    /// Which bodies to keep.
    pub body: BodyPolicy,
    /// A smaller body cap for this request.
    pub max_body_bytes: Option<u64>,
}

impl fmt::Debug for FetchOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchOptions")
            .field("user_agent", &self.user_agent)
            .field("may_follow", &self.may_follow.map(|_| "…"))
            .field("body", &self.body)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish()
    }
}

/// Fetches pages. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    config: FetchConfig,
}

impl Fetcher {
    /// Builds the shared client.
    pub fn new(config: FetchConfig) -> Result<Self> {
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .timeout(config.request_timeout)
            // Redirects are followed by hand so that each hop is seen, checked and recorded.
            .redirect(client_redirect::Policy::none())
            // Crawls go straight to the hosts they are polite to, never through an
            // environment-configured proxy.
            .no_proxy()
            .dns_resolver(config.egress.resolver())
            .tcp_nodelay(true)
            .build()
            .map_err(|error| ScraperError::HttpClient(describe(&error)))?;
        Ok(Self { client, config })
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &FetchConfig {
        &self.config
    }

    /// Fetches `url` with the default options: following every redirect, keeping HTML.
    pub async fn fetch(&self, url: &Url) -> FetchResult {
        self.fetch_with(url, &FetchOptions::default()).await
    }

    /// Fetches `url`, following redirects as `options` allow.
    pub async fn fetch_with(&self, url: &Url, options: &FetchOptions<'_>) -> FetchResult {
        let mut chain = Chain::new(url, self.config.max_redirects);
        let mut current = url.clone();
        loop {
            let response = self
                .send(&current, options)
                .await
                .map_err(|error| chain.fail(error, 0))?;
            let status = response.status().as_u16();
            let Some(next) =
                redirect_target(&current, &response).map_err(|error| chain.fail(error, status))?
            else {
                return self.finish(response, url, current, chain, options).await;
            };
            chain
                .hop(&next, options)
                .map_err(|error| chain.fail(error, status))?;
            drain(response).await;
            current = next;
        }
    }

    async fn send(
        &self,
        url: &Url,
        options: &FetchOptions<'_>,
    ) -> std::result::Result<Response, FetchError> {
        if !is_web_url(url) {
            return Err(FetchError::UnsupportedUrl {
                url: url.to_string(),
            });
        }
        self.config.egress.check_url(url)?;
        let mut request = self.client.get(url.clone());
        if let Some(agent) = options.user_agent {
            request = request.header(USER_AGENT, agent);
        }
        request.send().await.map_err(|error| classify(&error))
    }

    async fn finish(
        &self,
        mut response: Response,
        url: &Url,
        final_url: Url,
        chain: Chain,
        options: &FetchOptions<'_>,
    ) -> FetchResult {
        let status = response.status().as_u16();
        if let Some(error) = status_error(&response) {
            drain(response).await;
            return Err(chain.fail(error, status));
        }
        let content_type = header_text(&response, CONTENT_TYPE);
        let limit = options
            .max_body_bytes
            .map_or(self.config.max_body_bytes, |cap| {
                cap.min(self.config.max_body_bytes)
            });
        let keep = options.body == BodyPolicy::Prefix || is_html(content_type.as_deref());
        let body = if keep {
            read_body(&mut response, limit, options.body == BodyPolicy::Prefix).await
        } else {
            count_body(&mut response, limit).await
        };
        let body = body.map_err(|error| chain.fail(error, status))?;
        Ok(Fetched {
            url: url.clone(),
            final_url,
            redirects: chain.redirects,
            status,
            content_type,
            bytes: body.bytes,
            body: body.kept,
            truncated: body.truncated,
        })
    }
}

/// A header's value as text, when sent.
pub(super) fn header_text(
    response: &Response,
    name: reqwest::header::HeaderName,
) -> Option<String> {
    let value = response.headers().get(name)?;
    Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
}

/// Makes `ring` the process's rustls provider unless one is installed already; reqwest
/// built without a provider needs one before the first client is made.
fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // An error means another provider was installed first, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
