//! What a fetch ends with: the page, or the failure sorted into transient (worth a retry)
//! and permanent, with what the server asked for (Retry-After).

use std::time::{Duration, SystemTime};

use owlmesh_egress::{BlockedAddress, blocked_cause};
use owlmesh_job::media_type;
use reqwest::Response;
use reqwest::header::RETRY_AFTER;
use url::Url;

use super::header_text;
use crate::charset;

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
    /// The body, for HTML (or any type under [`BodyPolicy::Prefix`](super::BodyPolicy::Prefix)).
    pub body: Option<Vec<u8>>,
    /// Whether `body` was cut at the cap ([`BodyPolicy::Prefix`](super::BodyPolicy::Prefix) only).
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
    /// The address to connect to is outside the networks this scraper may reach.
    #[error(transparent)]
    Blocked(#[from] BlockedAddress),
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

/// The error an unsuccessful final status stands for, `None` for 2xx.
pub(super) fn status_error(response: &Response) -> Option<FetchError> {
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

/// Sorts a client error into the failure kinds, keeping its explanation.
pub(super) fn classify(error: &reqwest::Error) -> FetchError {
    if let Some(blocked) = blocked_cause(error) {
        return FetchError::Blocked(blocked.clone());
    }
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
pub(super) fn describe(error: &(dyn std::error::Error + 'static)) -> String {
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

/// Whether a Content-Type is HTML; servers that send none usually send HTML.
pub fn is_html(content_type: Option<&str>) -> bool {
    content_type.is_none_or(|value| {
        matches!(
            media_type(value).as_str(),
            "text/html" | "application/xhtml+xml" | ""
        )
    })
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
            FetchError::Blocked(BlockedAddress {
                address: std::net::Ipv4Addr::LOCALHOST.into(),
                range: owlmesh_egress::SpecialRange::Loopback,
            }),
        ];
        assert!(transient.iter().all(FetchError::is_transient));
        assert!(!permanent.iter().any(FetchError::is_transient));
    }
}
