//! The outcome writer: outcomes from every session, batched into one frontier transaction,
//! with the links they found canonicalised and filtered by the job's rules. Once a batch is
//! committed, each session that carried some of it is told how many of its outcomes are
//! recorded (outcomes of one session reach the writer in the order sent).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use owlmesh_proto::v1::{Outcome, OutcomeStatus};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::warn;
use xxhash_rust::xxh3::xxh3_64;

use super::Dispatcher;
use super::sessions::Delivered;
use crate::frontier::{Completion, UrlKey, now_ms};
use owlmesh_job::CompiledJob;
use owlmesh_job::{CanonicalUrl, canonicalize};

/// Pause before retrying a batch the database refused.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Writes outcomes until `stop` is cancelled, then writes what is still queued and ends.
pub(crate) async fn outcome_writer(
    dispatcher: Arc<Dispatcher>,
    mut outcomes: mpsc::Receiver<Delivered>,
    stop: CancellationToken,
) {
    let limit = dispatcher.config.outcome_batch;
    let mut batch = Vec::with_capacity(limit);
    loop {
        let received = tokio::select! {
            received = outcomes.recv_many(&mut batch, limit) => received,
            _ = stop.cancelled() => {
                // The dispatcher holds a sender itself, so the channel never closes by
                // itself: close it, and write what was delivered before.
                outcomes.close();
                outcomes.recv_many(&mut batch, limit).await
            }
        };
        if received == 0 {
            return;
        }
        write_batch(&dispatcher, &batch).await;
        batch.clear();
    }
}

async fn write_batch(dispatcher: &Dispatcher, delivered: &[Delivered]) {
    let _spans = super::trace::outcome_spans(delivered);
    let mut completions = Vec::with_capacity(delivered.len());
    for item in delivered {
        let owner = &item.session.scraper_id;
        completions.push(completion(dispatcher, &item.outcome, owner).await);
    }
    let report = loop {
        match dispatcher.frontier.complete(&completions, now_ms()).await {
            Ok(report) => break report,
            Err(error) => {
                // Outcomes are never dropped: the scrapers already archived these pages.
                warn!(%error, outcomes = completions.len(), "cannot record outcomes: retrying");
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    };
    // Recorded: the scrapers may forget these outcomes now (one message per session).
    let mut index = 0;
    while index < delivered.len() {
        let session = &delivered[index].session;
        let run = delivered[index..]
            .iter()
            .take_while(|item| Arc::ptr_eq(&item.session, session))
            .count();
        session.recorded(run as u64);
        index += run;
    }
    let counters = &dispatcher.counters;
    counters
        .outcomes
        .fetch_add(delivered.len() as u64, Ordering::Relaxed);
    counters
        .stale
        .fetch_add(report.stale as u64, Ordering::Relaxed);
    counters
        .links_admitted
        .fetch_add(report.admitted, Ordering::Relaxed);
    let requeued = delivered
        .iter()
        .any(|item| item.outcome.status != OutcomeStatus::Done as i32);
    if report.admitted > 0 || requeued {
        dispatcher.sessions.work_changed();
    } else {
        dispatcher.sessions.wake.notify_one();
    }
    for item in delivered {
        count_and_report(dispatcher, &item.outcome).await;
    }
    report_done(dispatcher, delivered).await;
    for job_id in &report.finished_jobs {
        let message = "epoch finished: nothing queued or in flight".to_owned();
        dispatcher
            .events
            .emit(
                "job_state",
                job_id,
                "",
                message,
                HashMap::from([("state".into(), "done".into())]),
            )
            .await;
    }
}

async fn completion(dispatcher: &Dispatcher, outcome: &Outcome, owner: &str) -> Completion {
    let mut completion = Completion::from_outcome(outcome, owner);
    match dispatcher
        .jobs
        .get(&dispatcher.frontier, &outcome.job_id)
        .await
    {
        Ok(job) => {
            // Scrapers send links in canonical form, so a link's fingerprint is the hash of
            // its text: the ones the frontier is known to hold go no further.
            let frontier = &dispatcher.frontier;
            let links = outcome.links.iter();
            let hashed = links.map(|link| (xxh3_64(link.as_bytes()), link)).collect();
            let unknown = frontier.not_known_to_hold(&outcome.job_id, hashed);
            completion.links = url_keys(unknown, Some(&job.rules));
            completion.redirects = url_keys(&outcome.redirects, None);
        }
        Err(error) => warn!(job = %outcome.job_id, %error, "links dropped: unknown job"),
    }
    completion
}

/// The canonical form of a link a scraper reported, when the job's rules let it into the
/// frontier. The scrapers decide by the same [`CompiledJob::allows_link`] before reporting.
pub fn admitted_link(rules: &CompiledJob, link: &str) -> Option<CanonicalUrl> {
    canonicalize(link)
        .ok()
        .filter(|canonical| rules.allows_link(canonical))
}

/// Canonical keys of `urls`, keeping only the ones the job's rules allow (when given).
fn url_keys<'a>(
    urls: impl IntoIterator<Item = &'a String>,
    rules: Option<&CompiledJob>,
) -> Vec<UrlKey> {
    let mut keys = Vec::new();
    for url in urls {
        let admitted = match rules {
            Some(rules) => admitted_link(rules, url),
            None => canonicalize(url).ok(),
        };
        let Some(canonical) = admitted else {
            continue;
        };
        keys.push(UrlKey {
            host_key: canonical.host_key().into(),
            fingerprint: canonical.fingerprint(),
            url: canonical.as_str().to_owned(),
        });
    }
    keys
}

/// Counts an outcome and reports it. A failure, a retry or a page handed back is an event
/// of its own, for the watchers and the archive; a page done is shown to the watchers, while
/// the archive, which holds the page itself, gets one `outcomes` event per job and batch
/// (see [`report_done`]).
async fn count_and_report(dispatcher: &Dispatcher, outcome: &Outcome) {
    let status = OutcomeStatus::try_from(outcome.status).unwrap_or(OutcomeStatus::Unspecified);
    let counter = match status {
        OutcomeStatus::Done => &dispatcher.counters.done,
        OutcomeStatus::Transient | OutcomeStatus::Returned => &dispatcher.counters.retried,
        _ => &dispatcher.counters.failed,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    let events = &dispatcher.events;
    if status == OutcomeStatus::Done && !events.has_watchers() {
        return;
    }
    let attributes = HashMap::from([
        ("status".to_owned(), status.as_str_name().to_owned()),
        ("http_status".to_owned(), outcome.http_status.to_string()),
        ("bytes".to_owned(), outcome.bytes.to_string()),
    ]);
    let (job, url, message) = (&outcome.job_id, &outcome.url, outcome.error.clone());
    if status == OutcomeStatus::Done {
        events.announce("outcome", job, url, message, attributes);
    } else {
        events.emit("outcome", job, url, message, attributes).await;
    }
}

/// One `outcomes` event per job for the pages of a batch that are done: how many, and their
/// bytes.
async fn report_done(dispatcher: &Dispatcher, delivered: &[Delivered]) {
    let mut per_job: HashMap<&str, (u64, u64)> = HashMap::new();
    for item in delivered {
        if item.outcome.status == OutcomeStatus::Done as i32 {
            let (pages, bytes) = per_job.entry(&item.outcome.job_id).or_default();
            *pages += 1;
            *bytes += item.outcome.bytes;
        }
    }
    for (job_id, (pages, bytes)) in per_job {
        let attributes = HashMap::from([
            (
                "status".to_owned(),
                OutcomeStatus::Done.as_str_name().to_owned(),
            ),
            ("pages".to_owned(), pages.to_string()),
            ("bytes".to_owned(), bytes.to_string()),
        ]);
        let message = format!("{pages} pages done");
        dispatcher
            .events
            .emit("outcomes", job_id, "", message, attributes)
            .await;
    }
}
