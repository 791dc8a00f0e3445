//! One assignment, from arrival to outcome: robots.txt, the host's gate, the fetch, reading
//! the page, the archive's acknowledgement, and only then a DONE outcome. That order is what
//! makes the archive exactly-once: a crash before the outcome leads to a re-fetch, which the
//! archive's idempotency key (job, URL, epoch) absorbs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use owlmesh_job::{HostKey, canonicalize, is_web_url};
use owlmesh_mesh::client::{ArchiveOutbox, Archived, OutboxError};
use owlmesh_mesh::clock::unix_ms;
use owlmesh_mesh::trace_context;
use owlmesh_proto::v1::{Assignment, Outcome, OutcomeStatus, PageRecord};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, warn};
use url::Url;

use crate::fetch::{FetchError, FetchFailure};
use crate::inbox::{Inbox, Stage};
use crate::jobs::Job;
use crate::page::{Crawler, Page, Refusal, back_off_of};
use crate::telemetry::Counters;
use crate::trace;

/// Times a page is handed to the archive outbox before it is given up.
const ARCHIVE_ATTEMPTS: u32 = 5;
/// Pause between two of those attempts.
const ARCHIVE_RETRY_PAUSE: Duration = Duration::from_millis(200);

/// The two moments of a shutdown, as seen by assignments.
#[derive(Debug, Clone, Default)]
pub(crate) struct Signals {
    /// Shutdown began: assignments not started yet are handed back.
    pub(crate) draining: CancellationToken,
    /// The drain time is over: assignments still in progress are handed back too.
    pub(crate) give_up: CancellationToken,
}

/// Runs assignments; shared by every one of them.
pub(crate) struct Worker {
    pub(crate) crawler: Arc<Crawler>,
    pub(crate) outbox: ArchiveOutbox,
    pub(crate) inbox: Arc<Inbox>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) signals: Signals,
    pub(crate) tasks: TaskTracker,
}

/// An assignment the inbox holds, with what it needs to run.
pub(crate) struct Held {
    pub(crate) assignment: Assignment,
    pub(crate) job: Arc<Job>,
    /// Cancelled when the dispatcher takes the assignment back before it started.
    pub(crate) revoked: CancellationToken,
    pub(crate) received_at: Instant,
}

impl Worker {
    /// Runs `held` in its own task; its outcome (if it was not revoked) goes to `outcomes`.
    pub(crate) fn spawn(self: &Arc<Self>, held: Held, outcomes: mpsc::Sender<Outcome>) {
        let worker = Arc::clone(self);
        let span = trace::scrape_span(&held.assignment);
        self.tasks.spawn(async move {
            let lease_id = held.assignment.lease_id;
            let outcome = worker.run(held).instrument(span.clone()).await;
            if let Some(mut outcome) = outcome {
                trace::finish(&span, &mut outcome);
                // The queue has room for every slot, so this never waits for long.
                let _ = outcomes.send(outcome).await;
            }
            // Only now, so that a lease is always either held or its outcome queued: a hello
            // lists the leases still held from both (see `WorkLink::held_leases`).
            worker.inbox.finish(lease_id);
        });
    }

    async fn run(&self, held: Held) -> Option<Outcome> {
        let Held {
            assignment,
            job,
            revoked,
            received_at,
        } = held;
        let Some(url) = web_url(&assignment.url) else {
            let error = "not an absolute http(s) url";
            return Some(report(&assignment, OutcomeStatus::Failed, error));
        };
        self.counters
            .host_seen(&HostKey::of(&url).map(String::from).unwrap_or_default());
        let permit = tokio::select! {
            biased;
            _ = revoked.cancelled() => return None,
            _ = self.signals.draining.cancelled() => return Some(returned(&assignment, SHUTTING_DOWN)),
            admitted = self.crawler.admit(&url, &job) => match admitted {
                Ok(permit) => permit,
                Err(refusal) => return Some(self.refused(&assignment, &refusal)),
            },
        };
        if !self.inbox.advance(assignment.lease_id, Stage::Fetching) {
            return None;
        }
        let scrape = Scrape {
            assignment: &assignment,
            url: &url,
            job: &job,
            received_at,
        };
        tokio::select! {
            outcome = self.scrape(scrape, permit) => Some(outcome),
            _ = self.signals.give_up.cancelled() => Some(returned(&assignment, SHUTTING_DOWN)),
        }
    }

    async fn scrape(&self, scrape: Scrape<'_>, permit: crate::HostPermit) -> Outcome {
        let Scrape {
            assignment,
            url,
            job,
            received_at,
        } = scrape;
        let started = Instant::now();
        let fetch_span = trace::fetch_span(url);
        let fetched = self
            .crawler
            .fetch(url, job, permit)
            .instrument(fetch_span.clone())
            .await;
        self.counters.fetch_seconds.record(started.elapsed());
        trace::fetched(&fetch_span, &fetched);
        let fetched = match fetched {
            Ok(fetched) => fetched,
            Err(failure) => {
                Counters::add(&self.counters.fetch_errors, 1);
                return failed(assignment, job, &failure);
            }
        };
        let fetched_at_ms = unix_ms();
        Counters::add(&self.counters.pages_fetched, 1);
        Counters::add(&self.counters.bytes_fetched, fetched.bytes);
        let extract_span = trace::extract_span();
        let read = self.crawler.read(Arc::clone(job), fetched);
        let page = match read.instrument(extract_span.clone()).await {
            Ok(page) => {
                trace::extracted(&extract_span, &page);
                page
            }
            Err(reason) => return report(assignment, OutcomeStatus::Failed, &reason),
        };
        self.inbox.advance(assignment.lease_id, Stage::Archiving);
        let (record, mut outcome) = archive_and_outcome(assignment, page, fetched_at_ms);
        let archived = match self.archive(record).await {
            Ok(archived) => archived,
            // An archiver refused the page alone: it would refuse it again.
            Err(OutboxError::Refused(reason)) => {
                let reason = format!("archiver refused the page: {reason}");
                return report(assignment, OutcomeStatus::Failed, &reason);
            }
            // Nothing was reported, so the URL simply goes back to the frontier.
            Err(OutboxError::Closed) => {
                return returned(
                    assignment,
                    "handed back: the archive outbox did not take the page",
                );
            }
        };
        if archived == Archived::Duplicate {
            // Another fetch (e.g. through a redirect) archived this page in this epoch.
            outcome.items = 0;
            outcome.documents = 0;
        }
        self.counters
            .dispatch_to_archive_seconds
            .record(received_at.elapsed());
        Counters::add(&self.counters.items_extracted, u64::from(outcome.items));
        Counters::add(&self.counters.documents_found, u64::from(outcome.documents));
        outcome
    }

    /// Archives `record`, returning once an archiver acknowledged it. The outbox closes only
    /// after every assignment has finished, so a page it drops before that was lost on the
    /// way: it is sent again (the archive is idempotent), a few times. A page an archiver
    /// refused is not.
    async fn archive(&self, record: PageRecord) -> Result<Archived, OutboxError> {
        for attempt in 1..=ARCHIVE_ATTEMPTS {
            match self.outbox.archive(record.clone()).await {
                Ok(archived) => return Ok(archived),
                Err(refused @ OutboxError::Refused(_)) => return Err(refused),
                Err(error) => {
                    warn!(url = %record.url, attempt, %error, "page not acknowledged: sending it again");
                    tokio::time::sleep(ARCHIVE_RETRY_PAUSE).await;
                }
            }
        }
        Err(OutboxError::Closed)
    }

    fn refused(&self, assignment: &Assignment, refusal: &Refusal) -> Outcome {
        match refusal {
            Refusal::Disallowed => {
                Counters::add(&self.counters.robots_disallowed, 1);
                report(assignment, OutcomeStatus::Disallowed, &refusal.to_string())
            }
            Refusal::RobotsUnreachable { retry_after } => Outcome {
                retry_after_ms: retry_after.as_millis() as u64,
                ..report(assignment, OutcomeStatus::Transient, &refusal.to_string())
            },
        }
    }
}

/// One admitted assignment being scraped.
struct Scrape<'a> {
    assignment: &'a Assignment,
    url: &'a Url,
    job: &'a Arc<Job>,
    received_at: Instant,
}

/// The page's record for the archive and the DONE outcome to send once it is acknowledged.
/// The record takes the fields and documents, the outcome the links: nothing is copied but
/// the documents' count.
fn archive_and_outcome(
    assignment: &Assignment,
    page: Page,
    fetched_at_ms: i64,
) -> (PageRecord, Outcome) {
    let extraction = page.extraction;
    let items = u32::from(extraction.handler.is_some());
    let documents = extraction.documents.len() as u32;
    let record = PageRecord {
        job_id: assignment.job_id.clone(),
        url: archive_key_url(assignment, &page.final_url),
        epoch: assignment.epoch,
        handler: extraction.handler.unwrap_or_default(),
        fields: extraction.fields,
        documents: extraction.documents,
        http_status: u32::from(page.status),
        content_hash: page.content_hash,
        fetched_at_ms,
        // The current span is the page's `scrape` span: the archive write joins its trace.
        trace_context: trace_context::current(),
    };
    let outcome = Outcome {
        http_status: u32::from(page.status),
        links: extraction.links,
        redirects: page.redirects.into_iter().map(String::from).collect(),
        bytes: page.bytes,
        items,
        documents,
        fetched_at_ms,
        ..report(assignment, OutcomeStatus::Done, "")
    };
    (record, outcome)
}

/// The URL a page is archived under: the canonical final URL, so that a page reached
/// through a redirect and directly is one document (the archive keeps it once).
fn archive_key_url(assignment: &Assignment, final_url: &Url) -> String {
    if final_url.as_str() == assignment.url {
        return assignment.url.clone();
    }
    canonicalize(final_url.as_str())
        .map(|canonical| canonical.as_str().to_owned())
        .unwrap_or_else(|_| assignment.url.clone())
}

/// The outcome of a failed fetch: TRANSIENT when a retry may succeed, else FAILED.
fn failed(assignment: &Assignment, job: &Job, failure: &FetchFailure) -> Outcome {
    let status = if failure.is_transient() {
        OutcomeStatus::Transient
    } else {
        OutcomeStatus::Failed
    };
    let mut redirects = failure.redirects.clone();
    let mut links = Vec::new();
    if let FetchError::RedirectNotFollowed { location } = &failure.error {
        // The refused hop is no step of this page: the dispatcher would mark it seen and
        // never fetch it. It goes back as a link instead, to be scheduled on its own host.
        redirects.pop();
        links.extend(
            canonicalize(location)
                .ok()
                .filter(|target| job.rules.allows_link(target))
                .map(String::from),
        );
    }
    Outcome {
        http_status: u32::from(failure.status),
        links,
        redirects: redirects.into_iter().map(String::from).collect(),
        retry_after_ms: back_off_of(failure).map_or(0, |wait| wait.as_millis() as u64),
        fetched_at_ms: unix_ms(),
        ..report(assignment, status, &failure.to_string())
    }
}

/// The reason of assignments handed back at shutdown.
pub(crate) const SHUTTING_DOWN: &str = "handed back: the scraper is shutting down";

/// The outcome of an assignment handed back unfetched (or unfinished): dispatch it again.
pub(crate) fn returned(assignment: &Assignment, reason: &str) -> Outcome {
    report(assignment, OutcomeStatus::Returned, reason)
}

/// An outcome of `assignment` with `status` and its reason (empty for DONE), nothing else.
pub(crate) fn report(assignment: &Assignment, status: OutcomeStatus, error: &str) -> Outcome {
    Outcome {
        lease_id: assignment.lease_id,
        job_id: assignment.job_id.clone(),
        url: assignment.url.clone(),
        status: status.into(),
        error: error.to_owned(),
        ..Outcome::default()
    }
}

/// `text` as an absolute http(s) URL with a host.
fn web_url(text: &str) -> Option<Url> {
    Url::parse(text).ok().filter(is_web_url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment() -> Assignment {
        Assignment {
            lease_id: 7,
            job_id: "job".into(),
            url: "http://site.test/a".into(),
            epoch: 3,
            ..Assignment::default()
        }
    }

    fn job() -> Job {
        Job::compile(&owlmesh_proto::v1::JobSpec {
            name: "job".into(),
            seeds: vec!["http://site.test/a".into()],
            allowed_hosts: vec!["site.test".into(), "other.test".into()],
            ..Default::default()
        })
        .expect("job")
    }

    #[test]
    fn a_refused_redirect_becomes_a_link_not_a_redirect_step() {
        let failure = FetchFailure {
            error: FetchError::RedirectNotFollowed {
                location: "http://other.test/b".into(),
            },
            status: 302,
            redirects: vec![
                Url::parse("http://site.test/hop").unwrap(),
                Url::parse("http://other.test/b").unwrap(),
            ],
        };
        let outcome = failed(&assignment(), &job(), &failure);
        assert_eq!(outcome.status, OutcomeStatus::Failed as i32);
        assert_eq!(outcome.redirects, ["http://site.test/hop"]);
        assert_eq!(outcome.links, ["http://other.test/b"]);
        assert_eq!(outcome.http_status, 302);
    }

    #[test]
    fn a_rate_limit_is_transient_with_its_wait() {
        let failure = FetchFailure {
            error: FetchError::RateLimited {
                retry_after: Some(std::time::Duration::from_secs(2)),
            },
            status: 429,
            redirects: Vec::new(),
        };
        let outcome = failed(&assignment(), &job(), &failure);
        assert_eq!(outcome.status, OutcomeStatus::Transient as i32);
        assert_eq!(outcome.retry_after_ms, 2000);
        assert_eq!(outcome.error, "rate limited (429), retry after 2000ms");
    }

    #[test]
    fn the_record_is_keyed_by_the_assignment_and_the_outcome_counts_it() {
        let page = Page {
            final_url: Url::parse("http://site.test/a").unwrap(),
            redirects: Vec::new(),
            status: 200,
            bytes: 42,
            extraction: crate::Extraction {
                handler: Some("product".into()),
                links: vec!["http://site.test/next".into()],
                ..crate::Extraction::default()
            },
            content_hash: "00ff".into(),
        };
        let (record, outcome) = archive_and_outcome(&assignment(), page, 5);
        assert_eq!(
            (record.url.as_str(), record.epoch, record.handler.as_str()),
            ("http://site.test/a", 3, "product")
        );
        assert_eq!(outcome.status, OutcomeStatus::Done as i32);
        assert_eq!(
            (outcome.items, outcome.documents, outcome.bytes),
            (1, 0, 42)
        );
        assert!(outcome.redirects.is_empty());
        assert_eq!(outcome.links, ["http://site.test/next"]);
    }
}
