//! Fetching pages over HTTP: one shared client with connection reuse, timeouts, a cap on
//! body size, redirects followed by hand so that every hop is recorded and loops are caught,
//! and failures sorted into transient (worth a retry) and permanent.
//!
//! TLS is rustls with the `ring` crypto provider, installed once per process: it builds
//! with a C compiler only, needs no system TLS library, and compiles faster than aws-lc.
//! Bodies are decompressed (gzip, brotli) before the size cap applies, so a small
//! compressed bomb is still stopped at the cap. The client speaks HTTP/1.1.

use std::collections::HashSet;
use std::fmt;
use std::sync::Once;
use std::time::{Duration, SystemTime};

use owlmesh_job::{DEFAULT_USER_AGENT, is_web_url, media_type};
use reqwest::header::{CONTENT_TYPE, LOCATION, RETRY_AFTER, USER_AGENT};
use reqwest::{Response, StatusCode, redirect};
use url::Url;

use crate::charset;
use crate::error::{Error, Result};

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
/// How much of a redirect or error body is read so that its connection can be reused.
const DRAIN_BYTES: u64 = 64 * 1024;

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

/// A page fetched with a 2xx answer.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The URL asked for.
    pub url: Url,
    /// The URL that answered, after redirects.
    pub final_url: Url,
    /// Every URL of the redirect chain after the first, ending with `final_url`; empty when
    /// there was no redirect.
    pub redirects: Vec<Url>,
    /// HTTP status of the final response.
    pub status: u16,
    /// The Content-Type header as sent, when sent.
    pub content_type: Option<String>,
    /// Body bytes after decompression: counted when read, else the declared length.
    pub bytes: u64,
    /// The body, for HTML (or any type under [`BodyPolicy::Prefix`]).
    pub body: Option<Vec<u8>>,
    /// Whether `body` was cut at the cap ([`BodyPolicy::Prefix`] only).
    pub truncated: bool,
}

impl Fetched {
    /// The media type without parameters, lowercased, e.g. `text/html`.
    pub fn media_type(&self) -> Option<String> {
        self.content_type.as_deref().map(media_type)
    }

    /// Whether the body is HTML (a missing Content-Type counts as HTML).
    pub fn is_html(&self) -> bool {
        is_html(self.content_type.as_deref())
    }

    /// The body decoded as text by its charset; `None` when the body was not kept.
    pub fn text(&self) -> Option<String> {
        let body = self.body.as_deref()?;
        Some(charset::decode(body, self.content_type.as_deref()))
    }
}

/// Why a fetch produced no page. [`FetchError::is_transient`] tells a retry from a give-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Not an http(s) URL.
    #[error("unsupported url {url}")]
    UnsupportedUrl {
        /// The URL.
        url: String,
    },
    /// Connecting, waiting for the answer or reading it took too long.
    #[error("timed out: {reason}")]
    Timeout {
        /// Details from the client.
        reason: String,
    },
    /// No connection: refused, reset, DNS failure, TLS failure.
    #[error("connection failed: {reason}")]
    Connect {
        /// Details from the client.
        reason: String,
    },
    /// The connection broke while the answer was read.
    #[error("transfer failed: {reason}")]
    Transport {
        /// Details from the client.
        reason: String,
    },
    /// A 5xx answer.
    #[error("server error {status}")]
    ServerError {
        /// The status code.
        status: u16,
        /// The Retry-After the server asked for, when it did.
        retry_after: Option<Duration>,
    },
    /// A 429 answer.
    #[error("rate limited (429){}", retry_after_text(*.retry_after))]
    RateLimited {
        /// The Retry-After the server asked for, when it did.
        retry_after: Option<Duration>,
    },
    /// A 4xx answer other than 429.
    #[error("client error {status}")]
    ClientError {
        /// The status code.
        status: u16,
    },
    /// An answer that is neither success, redirect nor error, or a redirect without target.
    #[error("unexpected status {status}")]
    UnexpectedStatus {
        /// The status code.
        status: u16,
    },
    /// A redirect leads back to a URL already visited in this chain.
    #[error("redirect loop back to {url}")]
    RedirectLoop {
        /// The URL visited twice.
        url: String,
    },
    /// More redirects than allowed.
    #[error("more than {limit} redirects")]
    TooManyRedirects {
        /// The limit.
        limit: usize,
    },
    /// A redirect whose Location is not a usable http(s) URL.
    #[error("invalid redirect location {location:?}")]
    BadRedirect {
        /// The Location header as sent.
        location: String,
    },
    /// The caller's `may_follow` refused a hop.
    #[error("redirect to {location} not followed")]
    RedirectNotFollowed {
        /// The refused target, absolute.
        location: String,
    },
    /// The body is larger than the cap.
    #[error("body too large: more than {limit} bytes")]
    TooLarge {
        /// The cap.
        limit: u64,
    },
}

impl FetchError {
    /// Whether trying again later may succeed: timeouts, connection and transfer failures,
    /// 5xx and 429.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Timeout { .. }
                | Self::Connect { .. }
                | Self::Transport { .. }
                | Self::ServerError { .. }
                | Self::RateLimited { .. }
        )
    }

    /// How long the server asked to wait before a retry, when it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::ServerError { retry_after, .. } | Self::RateLimited { retry_after } => {
                *retry_after
            }
            _ => None,
        }
    }
}

fn retry_after_text(retry_after: Option<Duration>) -> String {
    retry_after.map_or_else(String::new, |wait| {
        format!(", retry after {}ms", wait.as_millis())
    })
}

/// A failed fetch: the error plus what was seen on the way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct FetchFailure {
    /// What went wrong.
    pub error: FetchError,
    /// HTTP status of the last response, 0 when there was none.
    pub status: u16,
    /// Every URL of the redirect chain after the first, as for a success.
    pub redirects: Vec<Url>,
}

impl FetchFailure {
    /// See [`FetchError::is_transient`].
    pub fn is_transient(&self) -> bool {
        self.error.is_transient()
    }

    /// See [`FetchError::retry_after`].
    pub fn retry_after(&self) -> Option<Duration> {
        self.error.retry_after()
    }
}

/// The result of one fetch.
pub type FetchResult = std::result::Result<Fetched, FetchFailure>;

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
            .redirect(redirect::Policy::none())
            // Crawls go straight to the hosts they are polite to, never through an
            // environment-configured proxy.
            .no_proxy()
            .tcp_nodelay(true)
            .build()
            .map_err(|error| Error::HttpClient(describe(&error)))?;
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

/// The redirect chain so far: the hops and every URL visited, to catch loops.
struct Chain {
    visited: HashSet<String>,
    redirects: Vec<Url>,
    limit: usize,
}

impl Chain {
    fn new(first: &Url, limit: usize) -> Self {
        Self {
            visited: HashSet::from([first.as_str().to_owned()]),
            redirects: Vec::new(),
            limit,
        }
    }

    /// Records a hop to `next`, or says why it must not be taken.
    fn hop(
        &mut self,
        next: &Url,
        options: &FetchOptions<'_>,
    ) -> std::result::Result<(), FetchError> {
        self.redirects.push(next.clone());
        if !self.visited.insert(next.as_str().to_owned()) {
            return Err(FetchError::RedirectLoop {
                url: next.to_string(),
            });
        }
        if self.redirects.len() > self.limit {
            return Err(FetchError::TooManyRedirects { limit: self.limit });
        }
        if options
            .may_follow
            .is_some_and(|may_follow| !may_follow(next))
        {
            return Err(FetchError::RedirectNotFollowed {
                location: next.to_string(),
            });
        }
        Ok(())
    }

    /// The failure `error`, after a last response of `status` (0 for none).
    fn fail(&self, error: FetchError, status: u16) -> FetchFailure {
        FetchFailure {
            error,
            status,
            redirects: self.redirects.clone(),
        }
    }
}

/// The next URL when `response` is a redirect, `None` when it is not one.
fn redirect_target(
    current: &Url,
    response: &Response,
) -> std::result::Result<Option<Url>, FetchError> {
    let status = response.status();
    if !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
        return Ok(None);
    }
    let Some(location) = header_text(response, LOCATION) else {
        return Err(FetchError::UnexpectedStatus {
            status: status.as_u16(),
        });
    };
    let bad = || FetchError::BadRedirect {
        location: location.clone(),
    };
    let mut next = current.join(location.trim()).map_err(|_| bad())?;
    if !is_web_url(&next) {
        return Err(bad());
    }
    // A fragment never reaches the server, so it cannot make a hop different.
    next.set_fragment(None);
    Ok(Some(next))
}

/// The error an unsuccessful final status stands for, `None` for 2xx.
fn status_error(response: &Response) -> Option<FetchError> {
    let status = response.status();
    let code = status.as_u16();
    if status.is_success() {
        return None;
    }
    let retry_after = || {
        header_text(response, RETRY_AFTER)
            .and_then(|value| parse_retry_after(&value, SystemTime::now()))
    };
    Some(match code {
        429 => FetchError::RateLimited {
            retry_after: retry_after(),
        },
        500..=599 => FetchError::ServerError {
            status: code,
            retry_after: retry_after(),
        },
        400..=499 => FetchError::ClientError { status: code },
        _ => FetchError::UnexpectedStatus { status: code },
    })
}

/// Parses a Retry-After value: delay-seconds or an HTTP date (a past date means now).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A body as read: the bytes kept (if any), how many there were, whether it was cut.
struct BodyRead {
    kept: Option<Vec<u8>>,
    bytes: u64,
    truncated: bool,
}

/// Reads the body up to `limit` bytes. Past the limit: cut it when `truncate`, else fail
/// with [`FetchError::TooLarge`] without reading further.
async fn read_body(
    response: &mut Response,
    limit: u64,
    truncate: bool,
) -> std::result::Result<BodyRead, FetchError> {
    if !truncate
        && response
            .content_length()
            .is_some_and(|length| length > limit)
    {
        return Err(FetchError::TooLarge { limit });
    }
    let capacity = response.content_length().unwrap_or(0).min(limit);
    let mut body = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    while let Some(chunk) = response.chunk().await.map_err(|error| classify(&error))? {
        let room = usize::try_from(limit).unwrap_or(usize::MAX) - body.len();
        if chunk.len() > room {
            if !truncate {
                return Err(FetchError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk[..room]);
            let bytes = body.len() as u64;
            return Ok(BodyRead {
                kept: Some(body),
                bytes,
                truncated: true,
            });
        }
        body.extend_from_slice(&chunk);
    }
    let bytes = body.len() as u64;
    Ok(BodyRead {
        kept: Some(body),
        bytes,
        truncated: false,
    })
}

/// Counts a body that is not kept. A declared length above `limit` is trusted rather than
/// read; otherwise the body is read and discarded (so the connection can be reused), up to
/// `limit` bytes.
async fn count_body(
    response: &mut Response,
    limit: u64,
) -> std::result::Result<BodyRead, FetchError> {
    if let Some(length) = response.content_length().filter(|length| *length > limit) {
        return Ok(BodyRead {
            kept: None,
            bytes: length,
            truncated: false,
        });
    }
    let mut bytes = 0u64;
    while let Some(chunk) = response.chunk().await.map_err(|error| classify(&error))? {
        bytes += chunk.len() as u64;
        if bytes > limit {
            break;
        }
    }
    Ok(BodyRead {
        kept: None,
        bytes,
        truncated: false,
    })
}

/// Reads a little of a body nobody needs, so that a small one leaves its connection
/// reusable; a large one is dropped with its connection.
async fn drain(mut response: Response) {
    let mut read = 0u64;
    while let Ok(Some(chunk)) = response.chunk().await {
        read += chunk.len() as u64;
        if read > DRAIN_BYTES {
            return;
        }
    }
}

/// Sorts a client error into the failure kinds, keeping its explanation.
fn classify(error: &reqwest::Error) -> FetchError {
    let reason = describe(error);
    if error.is_timeout() {
        FetchError::Timeout { reason }
    } else if error.is_connect() {
        FetchError::Connect { reason }
    } else {
        FetchError::Transport { reason }
    }
}

/// The error's cause chain as one line: the client's own message names the URL, which the
/// caller knows already, so the causes are what explain.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut causes = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !causes.contains(&text) {
            causes.push(text);
        }
        source = cause.source();
    }
    if causes.is_empty() {
        error.to_string()
    } else {
        causes.join(": ")
    }
}

fn header_text(response: &Response, name: reqwest::header::HeaderName) -> Option<String> {
    let value = response.headers().get(name)?;
    Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
}

/// Whether a Content-Type is HTML; servers that send none usually send HTML.
pub fn is_html(content_type: Option<&str>) -> bool {
    content_type.is_none_or(|value| {
        matches!(
            media_type(value).as_str(),
            "text/html" | "application/xhtml+xml" | ""
        )
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(90))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn html_is_told_by_media_type() {
        assert!(is_html(Some("text/html; charset=utf-8")));
        assert!(is_html(Some("Application/XHTML+XML")));
        assert!(is_html(None));
        assert!(!is_html(Some("application/pdf")));
        assert_eq!(media_type("Text/HTML ; charset=x"), "text/html");
    }

    #[test]
    fn transient_and_permanent_failures_are_told_apart() {
        let transient = [
            FetchError::Timeout {
                reason: String::new(),
            },
            FetchError::ServerError {
                status: 503,
                retry_after: None,
            },
            FetchError::RateLimited {
                retry_after: Some(Duration::from_secs(1)),
            },
        ];
        let permanent = [
            FetchError::ClientError { status: 404 },
            FetchError::RedirectLoop {
                url: "http://a/".into(),
            },
            FetchError::TooLarge { limit: 1 },
        ];
        assert!(transient.iter().all(FetchError::is_transient));
        assert!(!permanent.iter().any(FetchError::is_transient));
    }
}
