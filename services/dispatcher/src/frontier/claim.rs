//! Claims: moving due queued URLs to leased, atomically, so that no two claimers (in one
//! process or in two dispatchers sharing the database) ever get the same URL.
//!
//! A claim walks the dispatchable jobs by priority. For each, it reads a window of due
//! candidates in host-rank order (every host's first URL before any host's second), picks
//! those the host filter and per-host cap allow, and leases them with one conditional
//! `UPDATE … WHERE state = 'queued' … RETURNING`. On SQLite the transaction holds the single
//! write lock; on PostgreSQL the candidates are read `FOR UPDATE SKIP LOCKED`.
//!
//! Lease ids are drawn here, on either backend, from the operating system's random
//! generator ([`new_lease_id`]): an id that cannot be guessed cannot be reported on by
//! anyone but the scraper it was sent to.

use std::collections::{BTreeSet, HashMap};

use rand::Rng as _;

use super::error::Result;
use super::ledger::Ledger;
use super::model::{ClaimRequest, Claimed, HostFilter, JobState};
use super::store::Dialect as _;
use owlmesh_storage::{Pool, Statement, WriteTx};

/// A claim reads this many candidates per URL it still needs, so that the per-host cap and an
/// owner predicate have some to choose from.
pub const CLAIM_SCAN_FACTOR: usize = 4;

/// A fresh lease id: a random positive 63-bit integer (it is stored as a signed 64-bit
/// one). A clash with a lease in flight is as likely as guessing one, and the unique index on
/// leased rows refuses it rather than letting two URLs share an id.
pub(super) fn new_lease_id() -> i64 {
    (rand::rng().random::<u64>() >> 1) as i64
}

/// A due queued URL a claim may take.
#[derive(Debug, sqlx::FromRow)]
struct Candidate {
    id: i64,
    host_key: String,
    host_rank: i64,
}

/// A URL just leased.
#[derive(Debug, sqlx::FromRow)]
struct LeasedRow {
    id: i64,
    job_id: String,
    lease_id: i64,
    url: String,
    host_key: String,
    fingerprint: i64,
    depth: i64,
    epoch: i64,
    attempts: i64,
}

/// Claims up to `request.limit` due URLs; see [`super::Frontier::claim`].
pub(super) async fn claim(pool: &Pool, request: &ClaimRequest<'_>) -> Result<Vec<Claimed>> {
    if request.limit == 0 {
        return Ok(Vec::new());
    }
    let mut tx = pool.begin_write().await?;
    let mut ledger = Ledger::lock_dispatchable(&mut tx).await?;
    let mut taken = Taken::default();
    let mut claimed = Vec::new();
    for job_id in ledger.ids_by_priority() {
        let room = request.limit - claimed.len();
        if room == 0 {
            break;
        }
        let candidates = candidates(&mut tx, &job_id, request, room).await?;
        let ids = taken.pick(candidates, request, room);
        if ids.is_empty() {
            continue;
        }
        let leased = lease(&mut tx, &ids, request).await?;
        if let Some(job) = ledger.get_mut(&job_id) {
            let count = leased.len() as i64;
            job.counts.queued -= count;
            job.counts.in_flight += count;
            if job.state == JobState::Queued {
                job.state = JobState::Running;
            }
        }
        claimed.extend(leased);
    }
    ledger.close(&mut tx, request.now_ms).await?;
    tx.commit().await?;
    Ok(claimed)
}

/// The job's due candidates, best first.
async fn candidates(
    tx: &mut WriteTx,
    job_id: &str,
    request: &ClaimRequest<'_>,
    room: usize,
) -> Result<Vec<Candidate>> {
    let sql = tx.sql();
    if let HostFilter::Only(hosts) = request.hosts {
        if hosts.is_empty() {
            return Ok(Vec::new());
        }
        let per_host = request.per_host.unwrap_or(room).min(room);
        // Each host once: a repeated host would offer its URLs twice.
        let hosts: BTreeSet<&str> = hosts.iter().map(String::as_str).collect();
        let hosts = serde_json::to_string(&hosts)?;
        let statement = Statement::new(sql.claim_candidates_by_host)
            .text(job_id)
            .int(request.now_ms)
            .int(per_host as i64)
            .text(&hosts);
        let mut candidates: Vec<Candidate> = tx.fetch_all(statement).await?;
        candidates.sort_by_key(|candidate| (candidate.host_rank, candidate.id));
        return Ok(candidates);
    }
    let window = room.saturating_mul(CLAIM_SCAN_FACTOR);
    let statement = Statement::new(sql.claim_candidates)
        .text(job_id)
        .int(request.now_ms)
        .int(i64::try_from(window).unwrap_or(i64::MAX));
    Ok(tx.fetch_all(statement).await?)
}

/// URLs already picked in this claim, per host, across jobs.
#[derive(Debug, Default)]
struct Taken {
    per_host: HashMap<String, usize>,
}

impl Taken {
    /// The ids of the candidates to lease, in order: those the filter accepts, at most the
    /// per-host cap of each host, at most `room`.
    fn pick(
        &mut self,
        candidates: Vec<Candidate>,
        request: &ClaimRequest<'_>,
        room: usize,
    ) -> Vec<i64> {
        let cap = request.per_host.unwrap_or(usize::MAX);
        let mut ids = Vec::with_capacity(room.min(candidates.len()));
        for candidate in candidates {
            if ids.len() == room {
                break;
            }
            if let HostFilter::Owned(owns) = request.hosts
                && !owns(&candidate.host_key)
            {
                continue;
            }
            let taken = self.per_host.entry(candidate.host_key).or_default();
            if *taken >= cap {
                continue;
            }
            *taken += 1;
            ids.push(candidate.id);
        }
        ids
    }
}

/// Leases the URLs with these ids to the request's owner; returns them in the order given.
async fn lease(tx: &mut WriteTx, ids: &[i64], request: &ClaimRequest<'_>) -> Result<Vec<Claimed>> {
    let expires_at = request.now_ms.saturating_add(request.lease_ms);
    let leases: Vec<(i64, i64)> = ids.iter().map(|id| (*id, new_lease_id())).collect();
    let list = serde_json::to_string(&leases)?;
    let statement = Statement::new(tx.sql().lease_urls)
        .text(request.owner)
        .int(expires_at)
        .text(&list);
    let rows: Vec<LeasedRow> = tx.fetch_all(statement).await?;
    let order: HashMap<i64, usize> = ids.iter().enumerate().map(|(at, id)| (*id, at)).collect();
    let mut rows: Vec<(usize, LeasedRow)> = rows
        .into_iter()
        .map(|row| (order.get(&row.id).copied().unwrap_or(usize::MAX), row))
        .collect();
    rows.sort_by_key(|(at, _)| *at);
    let claimed = rows
        .into_iter()
        .map(|(_, row)| Claimed {
            lease_id: row.lease_id as u64,
            job_id: row.job_id,
            url: row.url,
            host_key: row.host_key,
            fingerprint: row.fingerprint as u64,
            depth: u32::try_from(row.depth).unwrap_or(u32::MAX),
            epoch: u64::try_from(row.epoch).unwrap_or(0),
            attempt: u32::try_from(row.attempts + 1).unwrap_or(u32::MAX),
            owner: request.owner.to_owned(),
            lease_expires_at_ms: expires_at,
        })
        .collect();
    Ok(claimed)
}
