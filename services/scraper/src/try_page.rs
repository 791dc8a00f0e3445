//! `Scraper.Try`: fetch one page with a job's rules and show what its handlers extract,
//! archiving nothing. For people writing job specs; the fetch is as polite as any other
//! (robots.txt, the host's gate), because it shares the scraper's [`Crawler`].
//!
//! The spec is validated and compiled by the job crate exactly as `SubmitJob` does, so a
//! spec `Try` accepts is one the dispatcher accepts, and every limit holds here too. Its
//! `politeness.delay_ms` is capped at [`MAX_TRY_DELAY`] for the one fetch: the host's gate
//! spaces every later request after this one, so an hour's delay (which a job may ask for)
//! would hold the host back for the scraper's real work for that hour.

use std::sync::Arc;
use std::time::Duration;

use owlmesh_job::is_web_url;
use owlmesh_proto::v1::scraper_server::Scraper;
use owlmesh_proto::v1::{JobSpec, TryRequest, TryResponse};
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};
use tracing::instrument;
use url::Url;

use crate::error::{Result, ScraperError};
use crate::jobs::Job;
use crate::page::Crawler;

/// `Try` calls fetching at once at most; more wait their turn.
pub const MAX_CONCURRENT_TRIES: usize = 8;
/// The longest politeness delay a `Try` waits for (and holds its host's later requests back
/// by): a spec's longer `delay_ms` is cut to this for the try.
pub(crate) const MAX_TRY_DELAY: Duration = Duration::from_secs(1);

/// The `Scraper` service.
pub(crate) struct TryService {
    crawler: Arc<Crawler>,
    turns: Semaphore,
}

impl TryService {
    /// Tries pages with `crawler`.
    pub(crate) fn new(crawler: Arc<Crawler>) -> Self {
        Self {
            crawler,
            turns: Semaphore::new(MAX_CONCURRENT_TRIES),
        }
    }

    async fn try_page(&self, request: TryRequest) -> Result<TryResponse> {
        let url = web_url(&request.url)?;
        let mut job = Job::compile(&try_spec(request.spec, &url))?;
        job.politeness.delay = job.politeness.delay.min(MAX_TRY_DELAY);
        let job = Arc::new(job);
        if !job.rules.allows_host(&url) {
            return Err(invalid_url(format!(
                "{:?} is not on the job's allowed hosts (allowed_hosts, else the seeds' hosts)",
                request.url
            )));
        }
        let _turn = self
            .turns
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let permit = match self.crawler.admit(&url, &job).await {
            Ok(permit) => permit,
            Err(refusal) => {
                return Ok(TryResponse {
                    final_url: url.into(),
                    error: refusal.to_string(),
                    ..TryResponse::default()
                });
            }
        };
        let fetched = match self.crawler.fetch(&url, &job, permit).await {
            Ok(fetched) => fetched,
            Err(failure) => {
                let final_url = failure.redirects.last().unwrap_or(&url);
                return Ok(TryResponse {
                    http_status: u32::from(failure.status),
                    final_url: final_url.to_string(),
                    error: failure.to_string(),
                    ..TryResponse::default()
                });
            }
        };
        let page = match self.crawler.read(job, fetched).await {
            Ok(page) => page,
            Err(reason) => {
                return Ok(TryResponse {
                    final_url: url.into(),
                    error: reason,
                    ..TryResponse::default()
                });
            }
        };
        let extraction = page.extraction;
        Ok(TryResponse {
            http_status: u32::from(page.status),
            final_url: page.final_url.into(),
            handler: extraction.handler.unwrap_or_default(),
            fields: extraction.fields,
            links: extraction.links,
            documents: extraction.documents,
            error: String::new(),
        })
    }
}

/// The spec a try runs under: the one given, validated as a submitted job's is. A spec that
/// names no seeds is seeded with the tried URL, so its host is the one allowed host, and a
/// spec without a name is called "try".
fn try_spec(spec: Option<JobSpec>, url: &Url) -> JobSpec {
    let mut spec = spec.unwrap_or_default();
    if spec.seeds.is_empty() {
        spec.seeds.push(url.to_string());
    }
    if spec.name.trim().is_empty() {
        spec.name = "try".into();
    }
    spec
}

/// The URL to try: absolute http(s) with a host.
fn web_url(text: &str) -> Result<Url> {
    if text.trim().is_empty() {
        return Err(invalid_url("is required".into()));
    }
    let url = Url::parse(text.trim()).map_err(|error| invalid_url(format!("{text:?}: {error}")))?;
    if !is_web_url(&url) {
        return Err(invalid_url(format!(
            "{text:?} is not an absolute http(s) url"
        )));
    }
    Ok(url)
}

fn invalid_url(reason: String) -> ScraperError {
    ScraperError::InvalidArgument {
        field: "url".into(),
        reason,
    }
}

#[tonic::async_trait]
impl Scraper for TryService {
    #[instrument(skip_all, fields(url = %request.get_ref().url))]
    async fn r#try(&self, request: Request<TryRequest>) -> Result<Response<TryResponse>, Status> {
        let response = self.try_page(request.into_inner()).await?;
        Ok(Response::new(response))
    }
}
