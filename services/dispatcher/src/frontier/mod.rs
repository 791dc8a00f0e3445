//! The frontier: the dispatcher's SQL store of jobs and their URLs — what is queued, leased,
//! done or failed, when each URL is due, and each job's progress in its current crawl epoch.
//!
//! # Backends
//!
//! SQLite (a file, the embedded default) or PostgreSQL (a `postgres://` URL), through the
//! storage layer (`owlmesh-storage`, shared with the archive: one writer connection and
//! `BEGIN IMMEDIATE` on SQLite, native row types on each backend). The SQL is written once
//! (`sql.rs`): batches travel as one JSON parameter that the database unpacks, the dialects
//! differ only in fragments (row locks, how JSON becomes rows), and only the
//! per-host claim has two forms (a correlated subquery on SQLite, `LATERAL` on PostgreSQL).
//!
//! # Schema, in brief
//!
//! - `frontier_jobs`: one row per job, the spec (encoded protobuf), state, epoch, schedule,
//!   limits, and the counters of the current epoch, kept in the same transaction as the URL
//!   changes they count.
//! - `frontier_urls`: one row per (job, fingerprint): the canonical URL, host key, depth,
//!   host rank, state, epoch, attempts, due time, lease (id, owner, expiry), last fetch, last
//!   error, epoch of last completion. Partial indexes cover only queued rows (claims, in host
//!   rank order and per host) and only leased rows (outcomes, expiry, owners), so each stays
//!   as small as the work it serves.
//! - `frontier_hosts`: per (job, host) the next rank. A host's URLs are ranked in the order
//!   they were found, and claims take them in rank order: every host's first URL before any
//!   host's second, so hosts interleave and a big host cannot starve a small one.
//!
//! # Delivery
//!
//! Claims move URLs from queued to leased with a conditional update in one transaction, under
//! the single write lock on SQLite and with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so two
//! dispatchers sharing a database never lease the same URL twice. An outcome settles its URL
//! only while its lease is still held; one for an expired or re-leased lease is counted stale
//! and changes nothing. Every write transaction locks the jobs rows it touches first, in id
//! order, and only then their URLs (`ledger.rs`): that keeps the counters and `max_pages`
//! exact and PostgreSQL free of deadlocks, at the price that writers of one job take turns.

mod admit;
mod claim;
mod complete;
mod error;
mod jobs;
mod known;
mod leases;
mod ledger;
mod model;
mod sql;
mod store;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub use claim::CLAIM_SCAN_FACTOR;
pub use complete::{
    BACKOFF_BASE_MS, BACKOFF_CAP_MS, RETRY_AFTER_CAP_MS, backoff_ms, retry_delay_ms,
};
pub use error::{FrontierError, Result};
pub use known::KNOWN_URLS_CAPACITY;
pub use leases::{FailedUrl, ReturnedLeases};
pub use model::{
    ClaimRequest, Claimed, Completion, CompletionReport, EpochStart, HostFilter, JobCursor,
    JobDepth, JobPage, JobRecord, JobState, NewJob, NewUrl, Progress, QueueDepth, Submitted,
    UnreadableJob, UrlKey, UrlRecord, UrlState,
};
pub use owlmesh_storage::{Backend, Durability};

use known::KnownUrls;
use leases::Leases;
use owlmesh_storage::Pool;

/// Connections a PostgreSQL frontier opens at most, unless configured otherwise.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 8;
/// The SQLite file of a frontier kept in a data folder.
pub const SQLITE_FILE_NAME: &str = "frontier.sqlite3";

/// Where the frontier lives and how many connections it may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontierConfig {
    /// `postgres://…` for PostgreSQL; `sqlite:…` or a file path for SQLite.
    pub database_url: String,
    /// Connections to PostgreSQL at most; on SQLite, readers at most beside the one writer.
    pub max_connections: u32,
    /// What a committed write survives (SQLite's `synchronous`).
    pub durability: Durability,
}

impl FrontierConfig {
    /// A configuration for this database with the default pool size.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            durability: Durability::default(),
        }
    }
}

/// The time now, in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// The frontier store: a cheap handle to its connection pools and its memory of the URLs
/// each job already holds.
#[derive(Debug, Clone)]
pub struct Frontier {
    pool: Pool,
    known: Arc<KnownUrls>,
}

impl Frontier {
    /// Connects and brings the schema up to date (creating the SQLite file if needed).
    pub async fn connect(config: &FrontierConfig) -> Result<Self> {
        let pool = Pool::connect_durable(
            &config.database_url,
            config.max_connections,
            config.durability,
            &store::schema(),
        )
        .await?;
        Ok(Self {
            pool,
            known: Arc::new(KnownUrls::new(KNOWN_URLS_CAPACITY)),
        })
    }

    /// Which database this frontier lives in.
    pub fn backend(&self) -> Backend {
        self.pool.backend()
    }

    /// Closes every pooled connection; the handle (and its clones) must not be used after.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Stores a new job (state `queued`, epoch 1) and admits its seeds at depth 0, all in one
    /// transaction. The id is a short random string. Fails on an unreadable recrawl schedule.
    /// With a request id, a job stored under it already (by this dispatcher or another on the
    /// same database) is returned instead when its spec is the same, and is
    /// [`FrontierError::RequestIdReused`] when it is not.
    pub async fn create_job(&self, job: NewJob<'_>) -> Result<Submitted> {
        jobs::create_job(&self.pool, job).await
    }

    /// One job with its progress.
    pub async fn get_job(&self, id: &str) -> Result<JobRecord> {
        jobs::get_job(&self.pool, id).await
    }

    /// Up to `limit` jobs, newest first, starting after `after` (from the first job when
    /// `None`). A job whose stored spec does not decode is listed among the unreadable, not
    /// an error. Jobs submitted meanwhile are newer than any cursor (while the clocks of
    /// the dispatchers sharing the frontier agree), so paging on skips and repeats none.
    pub async fn list_jobs(&self, after: Option<&JobCursor>, limit: usize) -> Result<JobPage> {
        jobs::list_jobs(&self.pool, after, limit).await
    }

    /// Pauses (from queued or running), resumes (`Running`, from paused), cancels or fails
    /// (from queued, running or paused) a job. Cancelling or failing drops its queued URLs and
    /// its recrawl schedule; leases in flight still report. A finished job (done, cancelled or
    /// failed) stays as it is: stopping it is [`FrontierError::Finished`]. Otherwise, setting
    /// the state a job is in changes nothing; `Queued` and `Done` are the frontier's own to set.
    pub async fn set_state(&self, id: &str, to: JobState, now_ms: i64) -> Result<JobRecord> {
        jobs::set_state(&self.pool, id, to, now_ms).await
    }

    /// Admits URLs to a job's current epoch in one transaction and returns how many were new.
    /// A fingerprint the job has seen (in any epoch) is skipped; so are URLs deeper than
    /// `max_depth`, and those past the epoch's `max_pages` budget. A cancelled or failed job
    /// admits nothing; a done job that admits URLs runs again.
    pub async fn add_urls(&self, job_id: &str, urls: &[NewUrl], now_ms: i64) -> Result<u64> {
        admit::add_urls(&self.pool, job_id, urls, now_ms).await
    }

    /// One URL of a job, by fingerprint.
    pub async fn url(&self, job_id: &str, fingerprint: u64) -> Result<Option<UrlRecord>> {
        jobs::url(&self.pool, job_id, fingerprint).await
    }

    /// Leases up to `request.limit` URLs that are queued and due by `request.now_ms`, of
    /// queued or running jobs, highest priority first, each job's in host-interleaved order,
    /// honouring the host filter and per-host cap. Each gets a fresh lease id, expiring
    /// `lease_ms` later. Atomic: concurrent claims, from this process or another dispatcher on
    /// the same database, never return the same URL.
    pub async fn claim(&self, request: &ClaimRequest<'_>) -> Result<Vec<Claimed>> {
        claim::claim(&self.pool, request).await
    }

    /// Settles a batch of outcomes in one transaction. Done: the URL is done, counted with its
    /// items and documents. Transient: queued again after an exponential backoff (or the
    /// server's `Retry-After`, if longer), or failed once the job's `max_retries` are spent.
    /// Failed or disallowed: failed with the reason. Returned: queued again at once, no attempt
    /// counted. Links are admitted one level deeper, redirect steps marked seen. A completion
    /// whose lease is no longer held changes nothing and is counted stale.
    pub async fn complete(
        &self,
        completions: &[Completion],
        now_ms: i64,
    ) -> Result<CompletionReport> {
        complete::complete(&self.pool, &self.known, completions, now_ms).await
    }

    /// The items whose URL (by fingerprint) this process does not know the job's frontier
    /// to hold, in order. A URL it knows of (because it stored it) can be dropped without
    /// asking the database; one it does not know may still be there.
    pub fn not_known_to_hold<T>(&self, job_id: &str, items: Vec<(u64, T)>) -> Vec<T> {
        self.known.unknown(job_id, items)
    }

    /// Queues again every URL whose lease expired by `now_ms` (each expiry counts an
    /// attempt); says how many, and which failed for good because their retries are spent.
    pub async fn expire_leases(&self, now_ms: i64) -> Result<ReturnedLeases> {
        leases::return_leases(
            &self.pool,
            Leases::ExpiredBy(now_ms),
            now_ms,
            &leases::always,
        )
        .await
    }

    /// Queues again every URL leased to `owner` (a scraper that left); returns how many.
    pub async fn release_owner(&self, owner: &str, now_ms: i64) -> Result<u64> {
        let leases = Leases::HeldBy(owner);
        let returned = leases::return_leases(&self.pool, leases, now_ms, &leases::always).await?;
        Ok(returned.returned)
    }

    /// Queues again every URL leased to `owner` except those of `held` (the leases a scraper
    /// says it still has when it opens a work session); returns how many. `current` is asked
    /// once the transaction holds the locks claims take: when it says no (that session has
    /// ended, e.g. while this waited for the database), nothing is released, since the
    /// scraper's newer session may have been given some of those leases meanwhile.
    pub async fn release_owner_except(
        &self,
        owner: &str,
        held: &[u64],
        now_ms: i64,
        current: &(dyn Fn() -> bool + Sync),
    ) -> Result<u64> {
        let leases = Leases::HeldByExcept(owner, held);
        let returned = leases::return_leases(&self.pool, leases, now_ms, current).await?;
        Ok(returned.returned)
    }

    /// Queues again the URLs of these leases (taken back from a scraper); returns how many
    /// were still held.
    pub async fn requeue_leases(&self, lease_ids: &[u64], now_ms: i64) -> Result<u64> {
        let leases = Leases::Ids(lease_ids);
        let returned = leases::return_leases(&self.pool, leases, now_ms, &leases::always).await?;
        Ok(returned.returned)
    }

    /// Marks a queued or running job done if its epoch has nothing queued or in flight,
    /// scheduling its next epoch if it has a recrawl schedule; returns whether it did. Every
    /// write already does this for the jobs it touches: this is for a caller that wants to
    /// be sure.
    pub async fn finish_epoch_if_drained(&self, job_id: &str, now_ms: i64) -> Result<bool> {
        jobs::finish_epoch_if_drained(&self.pool, job_id, now_ms).await
    }

    /// Starts the next epoch of every done job whose `next_epoch_at` has come: the epoch is
    /// bumped, its counters reset, and its fetched and failed URLs queued again, due now
    /// (redirect steps stay seen).
    pub async fn start_due_epochs(&self, now_ms: i64) -> Result<Vec<EpochStart>> {
        jobs::start_due_epochs(&self.pool, now_ms).await
    }

    /// Starts a done job's next epoch now, scheduled or not. Fails with
    /// [`FrontierError::EpochInProgress`] while the current epoch is still crawling.
    pub async fn expedite(&self, job_id: &str, now_ms: i64) -> Result<EpochStart> {
        jobs::expedite(&self.pool, job_id, now_ms).await
    }

    /// Queue depth overall and per job, read from the jobs rows' counters.
    pub async fn queue_depth(&self) -> Result<QueueDepth> {
        jobs::queue_depth(&self.pool).await
    }
}
