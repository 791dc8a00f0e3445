//! Admitting URLs to a job: dedup by fingerprint, the depth and page limits, and host ranks,
//! with the whole batch inserted by one statement.

use std::collections::{HashMap, HashSet};

use super::error::{FrontierError, Result};
use super::ledger::{JobRow, Ledger};
use super::model::{NewUrl, UrlKey, UrlState};
use super::store::Dialect as _;
use owlmesh_storage::{Pool, Statement, WriteTx};

/// How admitted URLs start out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admission {
    /// Queued for dispatch, counted against `max_pages`.
    Queued,
    /// Steps of a redirect chain: seen and done, so they are never dispatched, not even in a
    /// later epoch, and not counted as pages.
    Redirect,
}

/// A URL offered for admission.
#[derive(Debug, Clone, Copy)]
pub(super) struct Candidate<'a> {
    pub(super) key: &'a UrlKey,
    pub(super) depth: u32,
}

/// Admits URLs to a job in a transaction of their own; see [`super::Frontier::add_urls`].
pub(super) async fn add_urls(pool: &Pool, job_id: &str, urls: &[NewUrl], now: i64) -> Result<u64> {
    let mut tx = pool.begin_write().await?;
    let mut ledger = Ledger::lock(&mut tx, [job_id]).await?;
    let job = ledger
        .get_mut(job_id)
        .ok_or_else(|| FrontierError::JobNotFound(job_id.to_owned()))?;
    let candidates: Vec<Candidate<'_>> = urls
        .iter()
        .map(|url| Candidate {
            key: &url.key,
            depth: url.depth,
        })
        .collect();
    let admitted = admit(&mut tx, job, &candidates, Admission::Queued, now).await?;
    ledger.close(&mut tx, now).await?;
    tx.commit().await?;
    Ok(admitted.new)
}

/// What an admission did.
#[derive(Debug, Default)]
pub(super) struct Admitted {
    /// URLs new to the job.
    pub(super) new: u64,
    /// Fingerprints the job holds once the transaction commits (new or seen before), for
    /// the memory of known URLs.
    pub(super) held: Vec<u64>,
}

/// Admits the candidates the job's limits allow and has not seen.
///
/// The job must be locked by the caller's transaction: its `admitted` count is the budget, and
/// its counters are updated here.
pub(super) async fn admit(
    tx: &mut WriteTx,
    job: &mut JobRow,
    candidates: &[Candidate<'_>],
    admission: Admission,
    now: i64,
) -> Result<Admitted> {
    if job.state.is_final() {
        return Ok(Admitted::default());
    }
    let mut batch = within_depth(job, candidates);
    if admission == Admission::Queued && job.max_pages > 0 {
        let room = usize::try_from(job.max_pages - job.counts.admitted).unwrap_or(0);
        if batch.len() > room {
            // Duplicates must not use up the budget: drop them before cutting the batch.
            drop_seen(tx, &job.id, &mut batch).await?;
            batch.truncate(room);
        }
    }
    if batch.is_empty() {
        return Ok(Admitted::default());
    }
    let held = batch.iter().map(|c| c.key.fingerprint).collect();
    let ranks = match admission {
        Admission::Queued => rank(tx, &job.id, &batch).await?,
        Admission::Redirect => vec![0; batch.len()],
    };
    let rows: Vec<(i64, &str, &str, i64, i64)> = batch
        .iter()
        .zip(ranks)
        .map(|(candidate, rank)| {
            let key = candidate.key;
            let fingerprint = key.fingerprint as i64;
            (
                fingerprint,
                &*key.url,
                &*key.host_key,
                i64::from(candidate.depth),
                rank,
            )
        })
        .collect();
    let rows = serde_json::to_string(&rows)?;
    let (state, done_epoch, redirect) = match admission {
        Admission::Queued => (UrlState::Queued, None, 0),
        Admission::Redirect => (UrlState::Done, Some(job.epoch), 1),
    };
    let statement = Statement::new(tx.sql().insert_urls)
        .text(&job.id)
        .text(state.as_str())
        .int(job.epoch)
        .int(now)
        .optional_int(done_epoch)
        .int(redirect)
        .text(&rows);
    let new = tx.execute(statement).await?;
    if admission == Admission::Queued {
        let count = i64::try_from(new).unwrap_or(i64::MAX);
        job.counts.admitted += count;
        job.counts.queued += count;
    }
    Ok(Admitted { new, held })
}

/// The candidates within the job's depth limit, each fingerprint once.
fn within_depth<'a>(job: &JobRow, candidates: &[Candidate<'a>]) -> Vec<Candidate<'a>> {
    let mut fingerprints = HashSet::with_capacity(candidates.len());
    candidates
        .iter()
        .filter(|candidate| job.max_depth <= 0 || i64::from(candidate.depth) <= job.max_depth)
        .filter(|candidate| fingerprints.insert(candidate.key.fingerprint))
        .copied()
        .collect()
}

/// Removes the candidates the job has already seen.
async fn drop_seen(tx: &mut WriteTx, job_id: &str, batch: &mut Vec<Candidate<'_>>) -> Result<()> {
    let fingerprints: Vec<i64> = batch.iter().map(|c| c.key.fingerprint as i64).collect();
    let fingerprints = serde_json::to_string(&fingerprints)?;
    let statement = Statement::new(tx.sql().known_fingerprints)
        .text(job_id)
        .text(&fingerprints);
    let seen: HashSet<i64> = tx
        .fetch_all::<(i64,)>(statement)
        .await?
        .into_iter()
        .map(|(fingerprint,)| fingerprint)
        .collect();
    batch.retain(|candidate| !seen.contains(&(candidate.key.fingerprint as i64)));
    Ok(())
}

/// Reserves the next ranks of each host in the batch; returns each candidate's rank.
async fn rank(tx: &mut WriteTx, job_id: &str, batch: &[Candidate<'_>]) -> Result<Vec<i64>> {
    let mut counts: HashMap<&str, i64> = HashMap::new();
    for candidate in batch {
        *counts.entry(&candidate.key.host_key).or_default() += 1;
    }
    let hosts = serde_json::to_string(&counts.iter().collect::<Vec<_>>())?;
    let statement = Statement::new(tx.sql().rank_hosts)
        .text(job_id)
        .text(&hosts);
    let mut next: HashMap<String, i64> = HashMap::with_capacity(counts.len());
    for (host, next_rank) in tx.fetch_all::<(String, i64)>(statement).await? {
        // The upsert returns the host's rank after the reservation: the batch starts below it.
        let start = next_rank - counts.get(host.as_str()).copied().unwrap_or(0);
        next.insert(host, start);
    }
    let ranks = batch
        .iter()
        .map(|candidate| {
            let slot = next.get_mut(&candidate.key.host_key);
            slot.map_or(0, |rank| {
                *rank += 1;
                *rank - 1
            })
        })
        .collect();
    Ok(ranks)
}
