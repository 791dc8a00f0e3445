//! One page, politely: ask robots.txt, wait at the host's gate, fetch, then read the body
//! once (extraction and content hash) and let it go. Shared by the work sessions and `Try`.

use std::sync::Arc;
use std::time::Duration;

use owlmesh_job::HostKey;
use owlmesh_proto::v1::field_value::Value;
use owlmesh_proto::v1::{Document, FieldValue};
use tokio::sync::Semaphore;
use url::Url;
use xxhash_rust::xxh3::{Xxh3, xxh3_64};

use crate::extract::{self, EXTRACTION_BUDGET, Extraction, OverBudget};
use crate::fetch::{FetchError, FetchFailure, FetchOptions, FetchResult, Fetched, Fetcher};
use crate::jobs::Job;
use crate::politeness::{HostGates, HostPermit};
use crate::robots::{RobotsCache, RobotsConfig, RobotsVerdict};

/// How long a host is left alone after a 429 that did not say how long.
pub const DEFAULT_RATE_LIMIT_BACK_OFF: Duration = Duration::from_secs(5);
/// The longest back-off a Retry-After can impose: longer would outlive every lease.
pub const MAX_BACK_OFF: Duration = Duration::from_secs(5 * 60);

/// The fetching machinery of one scraper: the HTTP client, the robots.txt cache and the
/// per-host gates. Every fetch of the process goes through one, so politeness holds across
/// jobs and `Try` calls alike.
#[derive(Debug)]
pub(crate) struct Crawler {
    fetcher: Fetcher,
    robots: RobotsCache,
    gates: HostGates,
    /// HTML pages read at once: one per core, as reading is CPU work.
    readers: Arc<Semaphore>,
    /// How long reading one page may take; see [`EXTRACTION_BUDGET`].
    extraction_budget: Duration,
}

/// Why a page is not fetched at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum Refusal {
    /// robots.txt forbids it.
    #[error("disallowed by robots.txt")]
    Disallowed,
    /// robots.txt could not be read, so nothing on the origin may be fetched for now.
    #[error("robots.txt unreachable: retry in {}ms", .retry_after.as_millis())]
    RobotsUnreachable {
        /// When robots.txt will be asked for again.
        retry_after: Duration,
    },
}

/// A fetched page after reading: what the outcome, the archive and `Try` need, without the
/// body.
#[derive(Debug)]
pub(crate) struct Page {
    /// The URL that answered, after redirects.
    pub(crate) final_url: Url,
    /// Every URL of the redirect chain after the first, ending with `final_url`.
    pub(crate) redirects: Vec<Url>,
    /// HTTP status of the final response.
    pub(crate) status: u16,
    /// Body bytes read.
    pub(crate) bytes: u64,
    /// Handler, fields, links and documents; for a body that is not HTML, only the document
    /// its Content-Type makes it.
    pub(crate) extraction: Extraction,
    /// Hex xxh3-64 of the body; empty when the body was not kept (not HTML).
    pub(crate) content_hash: String,
}

impl Crawler {
    /// Fetching with `fetcher`, robots.txt cached as `robots` says.
    pub(crate) fn new(fetcher: Fetcher, robots: RobotsConfig) -> Self {
        Self {
            robots: RobotsCache::new(fetcher.clone(), robots),
            fetcher,
            gates: HostGates::new(),
            readers: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(2, usize::from),
            )),
            extraction_budget: EXTRACTION_BUDGET,
        }
    }

    /// The same, with `budget` for reading each page instead of [`EXTRACTION_BUDGET`].
    pub(crate) fn with_extraction_budget(mut self, budget: Duration) -> Self {
        self.extraction_budget = budget;
        self
    }

    /// Reads a fetched page, dropping the body once it is hashed and extracted. An HTML page
    /// is read on the blocking pool, one per core at most, within the extraction budget: a
    /// page and selectors that are slow together hold one core for that long and then fail,
    /// while the runtime's workers go on serving every other host. (Handing a page over
    /// costs a few microseconds; parsing it, a millisecond or more.) The budget counts from
    /// when reading starts, not while waiting for a core. Fails for a page over budget and
    /// for one whose reading panicked, which must cost the page and not the process.
    pub(crate) async fn read(&self, job: Arc<Job>, fetched: Fetched) -> Result<Page, String> {
        if fetched.body.is_none() || !fetched.is_html() {
            return Ok(not_read(&job, fetched));
        }
        let reader = Arc::clone(&self.readers)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let budget = self.extraction_budget;
        let reading = tokio::task::spawn_blocking(move || {
            // Held until reading really ends, even after the caller gave up waiting, so
            // that no more pages are read at once than there are readers.
            let _reader = reader;
            read(&job, fetched, budget)
        });
        // Reading stops itself at the budget; this bounds the parts it cannot interrupt
        // (parsing, one element's match) for the caller.
        match tokio::time::timeout(budget, reading).await {
            Ok(Ok(Ok(page))) => Ok(page),
            Ok(Ok(Err(over))) => Err(over.to_string()),
            Ok(Err(error)) if error.is_panic() => {
                Err("reading the page failed: it panicked".to_owned())
            }
            Ok(Err(error)) => Err(format!("reading the page failed: {error}")),
            Err(_) => Err(OverBudget { budget }.to_string()),
        }
    }

    /// Waits until `url` may be fetched: robots.txt allows it (when the job obeys it) and
    /// the host's gate lets a request start. Until this returns, nothing was sent for `url`
    /// itself, so the caller may still give the page up.
    pub(crate) async fn admit(&self, url: &Url, job: &Job) -> Result<HostPermit, Refusal> {
        let politeness = &job.politeness;
        let crawl_delay = if politeness.obey_robots {
            match self.robots.check(url, &politeness.user_agent).await {
                RobotsVerdict::Allowed { crawl_delay } => crawl_delay,
                RobotsVerdict::Disallowed => return Err(Refusal::Disallowed),
                RobotsVerdict::Unreachable { retry_after } => {
                    return Err(Refusal::RobotsUnreachable { retry_after });
                }
            }
        } else {
            None
        };
        let host = HostKey::of(url).map(String::from).unwrap_or_default();
        Ok(self
            .gates
            .acquire(&host, &politeness.host_policy(crawl_delay))
            .await)
    }

    /// Fetches `url` under `permit`, which is released as soon as the answer is read. A 429,
    /// or a 5xx with Retry-After, holds every later request to the host back.
    pub(crate) async fn fetch(&self, url: &Url, job: &Job, permit: HostPermit) -> FetchResult {
        let may_follow = |next: &Url| self.may_follow(url, next, job);
        let options = FetchOptions {
            user_agent: Some(&job.politeness.user_agent),
            may_follow: Some(&may_follow),
            ..FetchOptions::default()
        };
        let result = self.fetcher.fetch_with(url, &options).await;
        drop(permit);
        if let Err(failure) = &result
            && let Some(wait) = back_off_of(failure)
        {
            let host = HostKey::of(url).map(String::from).unwrap_or_default();
            self.gates.back_off(&host, wait);
        }
        result
    }

    /// Whether a redirect from `from` to `next` is followed here. Only hops on the same
    /// host are: that host's gate admitted this request, and every other host has its own
    /// gate (and maybe another owner). The hop must also be on an allowed host and, when the
    /// job obeys robots.txt, allowed by the rules already cached for its origin. A refused
    /// hop is reported as a link so that the dispatcher schedules it on its own.
    fn may_follow(&self, from: &Url, next: &Url, job: &Job) -> bool {
        let politeness = &job.politeness;
        HostKey::of(from) == HostKey::of(next)
            && job.rules.allows_host(next)
            && (!politeness.obey_robots
                || self
                    .robots
                    .check_cached(next, &politeness.user_agent)
                    .is_some_and(|verdict| verdict.is_allowed()))
    }
}

/// How long the host should be left alone after `failure`, if at all.
pub(crate) fn back_off_of(failure: &FetchFailure) -> Option<Duration> {
    let wait = match (&failure.error, failure.retry_after()) {
        (_, Some(wait)) => wait,
        (FetchError::RateLimited { .. }, None) => DEFAULT_RATE_LIMIT_BACK_OFF,
        _ => return None,
    };
    Some(wait.min(MAX_BACK_OFF))
}

/// What change detection compares across epochs: a data item's fields when a handler
/// matched (so a page whose surroundings changed but whose data did not is unchanged), else
/// the body.
fn content_hash(extraction: &Extraction, body: &[u8]) -> String {
    if extraction.handler.is_none() {
        return format!("{:016x}", xxh3_64(body));
    }
    let mut fields: Vec<(&String, &FieldValue)> = extraction.fields.iter().collect();
    fields.sort_by(|a, b| a.0.cmp(b.0));
    let mut hasher = Xxh3::new();
    for (name, value) in fields {
        hasher.update(name.as_bytes());
        hasher.update(&[0]);
        match &value.value {
            Some(Value::Text(text)) => hasher.update(text.as_bytes()),
            Some(Value::List(list)) => list.values.iter().for_each(|v| {
                hasher.update(v.as_bytes());
                hasher.update(&[1]);
            }),
            None => {}
        }
        hasher.update(&[0]);
    }
    format!("{:016x}", hasher.digest())
}

/// Extracts from an HTML page within `budget` and hashes it.
fn read(job: &Job, mut fetched: Fetched, budget: Duration) -> Result<Page, OverBudget> {
    let body = fetched.body.take().unwrap_or_default();
    let content_type = fetched.content_type.as_deref();
    let extraction =
        extract::extract_within(&job.rules, &fetched.final_url, &body, content_type, budget)?;
    let content_hash = content_hash(&extraction, &body);
    Ok(page(fetched, extraction, content_hash))
}

/// A page whose body is not HTML (or absent): nothing to parse, nothing kept to hash.
fn not_read(job: &Job, fetched: Fetched) -> Page {
    let extraction = not_html(job, &fetched);
    page(fetched, extraction, String::new())
}

fn page(fetched: Fetched, extraction: Extraction, content_hash: String) -> Page {
    Page {
        final_url: fetched.final_url,
        redirects: fetched.redirects,
        status: fetched.status,
        bytes: fetched.bytes,
        extraction,
        content_hash,
    }
}

/// What a body that is not HTML yields: itself as a document, when its Content-Type is one
/// of the wanted types.
fn not_html(job: &Job, fetched: &Fetched) -> Extraction {
    let content_type = fetched.content_type.as_deref().unwrap_or_default();
    let documents = job
        .rules
        .documents()
        .of_content_type(content_type)
        .map(|kind| Document {
            url: fetched.final_url.to_string(),
            r#type: kind.to_owned(),
            // Who linked to it is known to the page that did, not to this fetch.
            found_on: String::new(),
        })
        .into_iter()
        .collect();
    Extraction {
        documents,
        ..Extraction::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(error: FetchError) -> FetchFailure {
        FetchFailure {
            error,
            status: 0,
            redirects: Vec::new(),
        }
    }

    #[test]
    fn rate_limits_and_retry_afters_hold_the_host_back() {
        let limited = failure(FetchError::RateLimited { retry_after: None });
        assert_eq!(back_off_of(&limited), Some(DEFAULT_RATE_LIMIT_BACK_OFF));
        let asked = failure(FetchError::ServerError {
            status: 503,
            retry_after: Some(Duration::from_secs(2)),
        });
        assert_eq!(back_off_of(&asked), Some(Duration::from_secs(2)));
        let greedy = failure(FetchError::RateLimited {
            retry_after: Some(Duration::from_secs(86_400)),
        });
        assert_eq!(back_off_of(&greedy), Some(MAX_BACK_OFF));
        let plain = failure(FetchError::ServerError {
            status: 500,
            retry_after: None,
        });
        assert_eq!(back_off_of(&plain), None);
    }
}
