//! Leases that end without an outcome: expired, held by a scraper that left, or taken back by
//! the dispatcher. Their URLs go back to the queue, due as before. Only an expired lease
//! counts an attempt (the fetch hung or took its scraper down; a URL that keeps doing so
//! fails with `lease expired N times`); a scraper that leaves or hands work back costs its
//! URLs nothing.

use super::error::Result;
use super::ledger::Ledger;
use super::store::Dialect as _;
use owlmesh_storage::{Pool, Statement};

/// Which leases to end.
#[derive(Debug, Clone, Copy)]
pub(super) enum Leases<'a> {
    /// Every lease that expired by this time.
    ExpiredBy(i64),
    /// Every lease this scraper holds.
    HeldBy(&'a str),
    /// Every lease this scraper holds but these (the ones it says it still has).
    HeldByExcept(&'a str, &'a [u64]),
    /// These leases.
    Ids(&'a [u64]),
}

/// What ending leases did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReturnedLeases {
    /// URLs whose lease ended, queued again or failed.
    pub returned: u64,
    /// The URLs among them that failed for good (only an expiry fails one).
    pub failed: Vec<FailedUrl>,
}

/// A URL that failed for good when its lease ended, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedUrl {
    /// Its job.
    pub job_id: String,
    /// The URL.
    pub url: String,
    /// Why, e.g. `lease expired 3 times`.
    pub reason: String,
}

/// Always go ahead: see [`return_leases`].
pub(super) fn always() -> bool {
    true
}

/// Returns the chosen leased URLs to the queue, and says how many and which failed for
/// good. `proceed` is asked once
/// the transaction holds the locks a claim takes too (SQLite's write lock, the job rows):
/// when it says no, nothing is returned.
pub(super) async fn return_leases(
    pool: &Pool,
    leases: Leases<'_>,
    now: i64,
    proceed: &(dyn Fn() -> bool + Sync),
) -> Result<ReturnedLeases> {
    let sql = pool.sql();
    let ids = match leases {
        Leases::Ids([]) => return Ok(ReturnedLeases::default()),
        Leases::Ids(ids) | Leases::HeldByExcept(_, ids) => {
            serde_json::to_string(&ids.iter().map(|id| *id as i64).collect::<Vec<_>>())?
        }
        Leases::ExpiredBy(_) | Leases::HeldBy(_) => String::new(),
    };
    let (find_jobs, return_urls) = match leases {
        Leases::ExpiredBy(at) => (
            Statement::new(sql.expired_lease_jobs).int(at),
            Statement::new(sql.return_expired_leases).int(at),
        ),
        Leases::HeldBy(owner) => (
            Statement::new(sql.owner_lease_jobs).text(owner),
            Statement::new(sql.return_owner_leases).text(owner),
        ),
        Leases::HeldByExcept(owner, _) => (
            Statement::new(sql.owner_lease_jobs_except)
                .text(owner)
                .text(&ids),
            Statement::new(sql.return_owner_leases_except)
                .text(owner)
                .text(&ids),
        ),
        Leases::Ids(_) => (
            Statement::new(sql.lease_id_jobs).text(&ids),
            Statement::new(sql.return_leases_by_id).text(&ids),
        ),
    };
    let mut tx = pool.begin_write().await?;
    // The jobs come first, locked, then their URLs (see the ledger); URLs of a job that gained
    // leases since are left for the next call.
    let jobs: Vec<(String,)> = tx.fetch_all(find_jobs).await?;
    if jobs.is_empty() {
        return Ok(ReturnedLeases::default());
    }
    let mut ledger = Ledger::lock(&mut tx, jobs.iter().map(|(id,)| id.as_str())).await?;
    if !proceed() {
        return Ok(ReturnedLeases::default());
    }
    let locked = serde_json::to_string(&ledger.ids().collect::<Vec<_>>())?;
    let rows: Vec<(String, String, String, String)> =
        tx.fetch_all(return_urls.text(&locked)).await?;
    let mut returned = ReturnedLeases {
        returned: rows.len() as u64,
        failed: Vec::new(),
    };
    for (job_id, state, url, reason) in rows {
        if let Some(job) = ledger.get_mut(&job_id) {
            job.counts.in_flight -= 1;
            match state.as_str() {
                "failed" => job.counts.failed += 1,
                _ => job.counts.queued += 1,
            }
        }
        if state == "failed" {
            returned.failed.push(FailedUrl {
                job_id,
                url,
                reason,
            });
        }
    }
    ledger.close(&mut tx, now).await?;
    tx.commit().await?;
    Ok(returned)
}
