//! Outcomes: settling a batch of leased URLs in one transaction, with retries and backoff, and
//! admitting the links they found.

use std::collections::{BTreeMap, HashMap};

use owlmesh_proto::v1::OutcomeStatus;

use super::admit::{Admission, Candidate, admit};
use super::error::Result;
use super::known::KnownUrls;
use super::ledger::{Counts, Ledger};
use super::model::{Completion, CompletionReport, UrlState};
use super::store::Dialect as _;
use owlmesh_storage::{Pool, Statement, WriteTx};

/// The wait before the first retry of a transient failure; it doubles with each failure.
pub const BACKOFF_BASE_MS: i64 = 1_000;
/// The longest wait between retries that the backoff grows to.
pub const BACKOFF_CAP_MS: i64 = 10 * 60 * 1_000;
/// The longest `Retry-After` honoured: a server asking for more must not hold the epoch open.
pub const RETRY_AFTER_CAP_MS: i64 = 60 * 60 * 1_000;

/// The wait before retrying a URL after its `failures`-th transient failure (from 1):
/// [`BACKOFF_BASE_MS`] doubled per earlier failure, at most [`BACKOFF_CAP_MS`].
pub fn backoff_ms(failures: u32) -> i64 {
    let doublings = failures.saturating_sub(1).min(32);
    BACKOFF_BASE_MS
        .saturating_mul(1_i64 << doublings)
        .min(BACKOFF_CAP_MS)
}

/// The wait before a retry: the backoff, or the server's `Retry-After` when that is longer
/// (up to [`RETRY_AFTER_CAP_MS`]).
pub fn retry_delay_ms(failures: u32, retry_after_ms: u64) -> i64 {
    let retry_after = i64::try_from(retry_after_ms).unwrap_or(i64::MAX);
    backoff_ms(failures).max(retry_after.min(RETRY_AFTER_CAP_MS))
}

/// A leased URL an outcome may settle.
#[derive(Debug, sqlx::FromRow)]
struct LeasedUrl {
    id: i64,
    job_id: String,
    lease_id: i64,
    lease_owner: Option<String>,
    depth: i64,
    epoch: i64,
    attempts: i64,
}

/// The new values of a settled URL.
#[derive(Debug, PartialEq, Eq)]
struct Verdict {
    id: i64,
    state: UrlState,
    attempts: i64,
    due_at: i64,
    /// None keeps the previous error.
    last_error: Option<String>,
    /// None keeps the previous fetch time.
    fetched_at: Option<i64>,
    /// None keeps the previous epoch.
    done_epoch: Option<i64>,
}

/// One row of the bulk update, in the order `settle_urls` reads it.
type VerdictRow<'a> = (
    i64,
    &'static str,
    i64,
    i64,
    Option<&'a str>,
    Option<i64>,
    Option<i64>,
);

impl Verdict {
    fn row(&self) -> VerdictRow<'_> {
        (
            self.id,
            self.state.as_str(),
            self.attempts,
            self.due_at,
            self.last_error.as_deref(),
            self.fetched_at,
            self.done_epoch,
        )
    }
}

/// Settles a batch of outcomes; see [`super::Frontier::complete`].
pub(super) async fn complete(
    pool: &Pool,
    known: &KnownUrls,
    completions: &[Completion],
    now: i64,
) -> Result<CompletionReport> {
    let mut report = CompletionReport::default();
    if completions.is_empty() {
        return Ok(report);
    }
    let mut tx = pool.begin_write().await?;
    let mut ledger = Ledger::lock(&mut tx, completions.iter().map(|c| c.job_id.as_str())).await?;
    let mut leased = leased_urls(&mut tx, &ledger, completions).await?;
    let mut verdicts = Vec::with_capacity(completions.len());
    let mut found: BTreeMap<String, Found<'_>> = BTreeMap::new();
    for completion in completions {
        let lease_id = completion.lease_id as i64;
        let held = leased.get(&lease_id).is_some_and(|url| {
            url.job_id == completion.job_id
                && url.lease_owner.as_deref() == Some(completion.owner.as_str())
        });
        let Some(url) = held.then(|| leased.remove(&lease_id)).flatten() else {
            report.stale += 1;
            continue;
        };
        let Some(job) = ledger.get_mut(&url.job_id) else {
            report.stale += 1;
            continue;
        };
        let verdict = judge(completion, &url, job.max_retries, now);
        count(&mut job.counts, completion, &verdict);
        verdicts.push(verdict);
        found
            .entry(url.job_id.clone())
            .or_default()
            .add(completion, &url);
        report.applied += 1;
    }
    if !verdicts.is_empty() {
        let rows: Vec<VerdictRow<'_>> = verdicts.iter().map(Verdict::row).collect();
        let rows = serde_json::to_string(&rows)?;
        tx.execute(Statement::new(tx.sql().settle_urls).text(&rows))
            .await?;
    }
    let mut held = Vec::new();
    for (job_id, found) in found {
        if let Some(job) = ledger.get_mut(&job_id) {
            // Redirect steps first: a page linking to where it redirected is not queued again.
            let redirects = admit(&mut tx, job, &found.redirects, Admission::Redirect, now).await?;
            let links = admit(&mut tx, job, &found.links, Admission::Queued, now).await?;
            report.admitted += links.new;
            held.push((job_id, [redirects.held, links.held].concat()));
        }
    }
    report.finished_jobs = ledger.close(&mut tx, now).await?;
    tx.commit().await?;
    for (job_id, fingerprints) in held {
        known.remember(&job_id, &fingerprints);
    }
    Ok(report)
}

/// The URLs still leased under the completions' lease ids, by lease id.
async fn leased_urls(
    tx: &mut WriteTx,
    ledger: &Ledger,
    completions: &[Completion],
) -> Result<HashMap<i64, LeasedUrl>> {
    let lease_ids: Vec<i64> = completions.iter().map(|c| c.lease_id as i64).collect();
    let lease_ids = serde_json::to_string(&lease_ids)?;
    // Only URLs of jobs this transaction has locked: jobs rows come before their URLs.
    let jobs = serde_json::to_string(&ledger.ids().collect::<Vec<_>>())?;
    let statement = Statement::new(tx.sql().leased_urls)
        .text(&lease_ids)
        .text(&jobs);
    let rows: Vec<LeasedUrl> = tx.fetch_all(statement).await?;
    Ok(rows.into_iter().map(|url| (url.lease_id, url)).collect())
}

/// What an outcome makes of its URL.
fn judge(completion: &Completion, url: &LeasedUrl, max_retries: i64, now: i64) -> Verdict {
    let fetched_at = Some(if completion.fetched_at_ms > 0 {
        completion.fetched_at_ms
    } else {
        now
    });
    let error = completion.error.trim();
    let reason = |fallback: &str| Some(if error.is_empty() { fallback } else { error }.to_owned());
    let verdict = Verdict {
        id: url.id,
        state: UrlState::Done,
        attempts: url.attempts,
        due_at: now,
        last_error: None,
        fetched_at: None,
        done_epoch: None,
    };
    match completion.status {
        OutcomeStatus::Done => Verdict {
            fetched_at,
            done_epoch: Some(url.epoch),
            ..verdict
        },
        OutcomeStatus::Failed => Verdict {
            state: UrlState::Failed,
            last_error: reason("failed"),
            fetched_at,
            ..verdict
        },
        OutcomeStatus::Disallowed => Verdict {
            state: UrlState::Failed,
            last_error: reason("disallowed by robots.txt"),
            ..verdict
        },
        // Not the URL's fault: dispatch it again now, without counting an attempt.
        OutcomeStatus::Returned => Verdict {
            state: UrlState::Queued,
            ..verdict
        },
        OutcomeStatus::Transient | OutcomeStatus::Unspecified => {
            let failures = url.attempts + 1;
            let error = reason("transient failure").unwrap_or_default();
            if failures > max_retries {
                return Verdict {
                    state: UrlState::Failed,
                    attempts: failures,
                    last_error: Some(format!("gave up after {failures} attempts: {error}")),
                    fetched_at,
                    ..verdict
                };
            }
            let delay = retry_delay_ms(
                u32::try_from(failures).unwrap_or(u32::MAX),
                completion.retry_after_ms,
            );
            Verdict {
                state: UrlState::Queued,
                attempts: failures,
                due_at: now.saturating_add(delay),
                last_error: Some(error),
                fetched_at,
                ..verdict
            }
        }
    }
}

/// Moves the job's counters as the verdict takes its URL out of flight.
fn count(counts: &mut Counts, completion: &Completion, verdict: &Verdict) {
    counts.in_flight -= 1;
    match verdict.state {
        UrlState::Done => {
            counts.done += 1;
            counts.items += i64::from(completion.items);
            counts.documents += i64::from(completion.documents);
        }
        UrlState::Failed => counts.failed += 1,
        UrlState::Queued | UrlState::Leased => counts.queued += 1,
    }
}

/// URLs found by a job's outcomes in this batch.
#[derive(Debug, Default)]
struct Found<'a> {
    links: Vec<Candidate<'a>>,
    redirects: Vec<Candidate<'a>>,
}

impl<'a> Found<'a> {
    fn add(&mut self, completion: &'a Completion, url: &LeasedUrl) {
        let depth = u32::try_from(url.depth).unwrap_or(u32::MAX);
        let redirects = completion.redirects.iter();
        self.redirects
            .extend(redirects.map(|key| Candidate { key, depth }));
        let depth = depth.saturating_add(1);
        self.links
            .extend(completion.links.iter().map(|key| Candidate { key, depth }));
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn backoff_grows_and_stays_capped(failures in 1_u32..200) {
            let delay = backoff_ms(failures);
            prop_assert!((BACKOFF_BASE_MS..=BACKOFF_CAP_MS).contains(&delay));
            prop_assert!(backoff_ms(failures + 1) >= delay);
        }

        #[test]
        fn retry_after_is_honoured_up_to_its_cap(
            failures in 1_u32..50,
            retry_after in 0_u64..u64::MAX,
        ) {
            let delay = retry_delay_ms(failures, retry_after);
            prop_assert!(delay >= backoff_ms(failures));
            let honoured = i64::try_from(retry_after).unwrap_or(i64::MAX).min(RETRY_AFTER_CAP_MS);
            prop_assert!(delay >= honoured);
            prop_assert!(delay <= BACKOFF_CAP_MS.max(RETRY_AFTER_CAP_MS));
        }
    }

    #[test]
    fn backoff_doubles_from_the_base() {
        assert_eq!(backoff_ms(1), BACKOFF_BASE_MS);
        assert_eq!(backoff_ms(2), 2 * BACKOFF_BASE_MS);
        assert_eq!(backoff_ms(3), 4 * BACKOFF_BASE_MS);
        assert_eq!(backoff_ms(u32::MAX), BACKOFF_CAP_MS);
    }
}
