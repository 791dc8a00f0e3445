//! The frontier's SQL, each statement written once for both backends.
//!
//! Statements use `$n` placeholders, which SQLite and PostgreSQL both accept. Batches travel as
//! one JSON text parameter and are unpacked in the database (`json_each` on SQLite,
//! `json_array_elements` on PostgreSQL), so a batch of any size is one statement with a fixed
//! text and a cached plan. The dialects differ only in the fragments passed to [`statements!`]:
//! how a JSON parameter becomes rows and row locks (PostgreSQL).

/// Rows of a JSON array of arrays, as `e`; fields are read as `e.value ->> k`.
macro_rules! sqlite_rows {
    ($n:literal) => {
        concat!("json_each($", $n, ") AS e")
    };
}

/// Rows of a JSON array of arrays, as `e`; fields are read as `e.value ->> k`.
macro_rules! postgres_rows {
    ($n:literal) => {
        concat!("json_array_elements($", $n, "::json) AS e(value)")
    };
}

/// Rows of a JSON array of scalars, as `e.value` (text on PostgreSQL, so numbers need a CAST).
macro_rules! sqlite_list {
    ($n:literal) => {
        concat!("json_each($", $n, ") AS e")
    };
}

/// Rows of a JSON array of scalars, as `e.value` (text on PostgreSQL, so numbers need a CAST).
macro_rules! postgres_list {
    ($n:literal) => {
        concat!("json_array_elements_text($", $n, "::json) AS e(value)")
    };
}

/// The columns of [`super::ledger::JobRow`], in order.
macro_rules! job_columns {
    () => {
        "id, name, state, priority, created_at, max_pages, max_depth, max_retries, \
         recrawl_every_ms, recrawl_cron, epoch, epoch_started_at, next_epoch_at, \
         admitted, queued, in_flight, done, failed, items, documents"
    };
}

/// What a URL goes back to when its lease ends without an outcome.
macro_rules! return_lease {
    () => {
        "UPDATE frontier_urls SET state = 'queued', lease_id = NULL, lease_owner = NULL, \
         lease_expires_at = NULL WHERE state = 'leased' AND "
    };
}

/// The retries of an expired lease's job, inside an update of `frontier_urls`.
macro_rules! expired_retries {
    () => {
        "(SELECT j.max_retries FROM frontier_jobs j WHERE j.id = frontier_urls.job_id)"
    };
}

/// Every statement the frontier runs, in one backend's dialect.
#[derive(Debug)]
pub(super) struct Statements {
    pub(super) insert_job: &'static str,
    pub(super) job_by_id: &'static str,
    pub(super) job_by_request_id: &'static str,
    pub(super) jobs_page: &'static str,
    pub(super) lock_jobs: &'static str,
    pub(super) lock_dispatchable_jobs: &'static str,
    pub(super) write_job: &'static str,
    pub(super) due_epoch_jobs: &'static str,
    pub(super) job_depths: &'static str,
    pub(super) rank_hosts: &'static str,
    pub(super) known_fingerprints: &'static str,
    pub(super) insert_urls: &'static str,
    pub(super) claim_candidates: &'static str,
    pub(super) claim_candidates_by_host: &'static str,
    pub(super) lease_urls: &'static str,
    pub(super) leased_urls: &'static str,
    pub(super) settle_urls: &'static str,
    pub(super) expired_lease_jobs: &'static str,
    pub(super) return_expired_leases: &'static str,
    pub(super) owner_lease_jobs: &'static str,
    pub(super) return_owner_leases: &'static str,
    pub(super) owner_lease_jobs_except: &'static str,
    pub(super) return_owner_leases_except: &'static str,
    pub(super) lease_id_jobs: &'static str,
    pub(super) return_leases_by_id: &'static str,
    pub(super) drop_queued_urls: &'static str,
    pub(super) requeue_epoch_urls: &'static str,
    pub(super) url_by_fingerprint: &'static str,
}

/// Builds [`Statements`] from the fragments in which the dialects differ.
macro_rules! statements {
    (
        rows: $rows:ident,
        list: $list:ident,
        lock: $lock:literal,
        skip_locked: $skip_locked:literal,
        claim_candidates_by_host: $by_host:literal $(,)?
    ) => {
        Statements {
            // An empty request id is stored as NULL: no request id, no idempotency.
            insert_job: concat!(
                "INSERT INTO frontier_jobs (id, name, spec, state, priority, created_at, ",
                "max_pages, max_depth, max_retries, recrawl_every_ms, recrawl_cron, epoch, ",
                "epoch_started_at, next_epoch_at, admitted, queued, in_flight, done, failed, ",
                "items, documents, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, ",
                "$11, $12, $13, $14, 0, 0, 0, 0, 0, 0, 0, NULLIF($15, ''))"
            ),
            job_by_id: concat!(
                "SELECT ",
                job_columns!(),
                ", spec FROM frontier_jobs WHERE id = $1"
            ),
            job_by_request_id: concat!(
                "SELECT ",
                job_columns!(),
                ", spec FROM frontier_jobs WHERE request_id = $1"
            ),
            // Newest first, after the previous page's last job ($1, $2).
            jobs_page: concat!(
                "SELECT ",
                job_columns!(),
                ", spec FROM frontier_jobs WHERE created_at < $1 OR (created_at = $1 AND id < $2) ",
                "ORDER BY created_at DESC, id DESC LIMIT $3"
            ),
            lock_jobs: concat!(
                "SELECT ",
                job_columns!(),
                " FROM frontier_jobs WHERE id IN (SELECT e.value FROM ",
                $list!(1),
                ") ORDER BY id",
                $lock
            ),
            lock_dispatchable_jobs: concat!(
                "SELECT ",
                job_columns!(),
                " FROM frontier_jobs WHERE state IN ('queued', 'running') AND queued > 0 ",
                "ORDER BY id",
                $lock
            ),
            write_job: concat!(
                "UPDATE frontier_jobs SET state = $2, epoch = $3, epoch_started_at = $4, ",
                "next_epoch_at = $5, admitted = $6, queued = $7, in_flight = $8, done = $9, ",
                "failed = $10, items = $11, documents = $12 WHERE id = $1"
            ),
            due_epoch_jobs: concat!(
                "SELECT id FROM frontier_jobs WHERE state = 'done' AND next_epoch_at > 0 ",
                "AND next_epoch_at <= $1 ORDER BY id"
            ),
            job_depths: concat!(
                "SELECT id, queued, in_flight FROM frontier_jobs ",
                "WHERE queued > 0 OR in_flight > 0 ORDER BY id"
            ),
            // `WHERE true` keeps SQLite from reading ON CONFLICT as a join constraint.
            rank_hosts: concat!(
                "INSERT INTO frontier_hosts (job_id, host_key, next_rank) ",
                "SELECT $1, e.value ->> 0, CAST(e.value ->> 1 AS BIGINT) FROM ",
                $rows!(2),
                " WHERE true ON CONFLICT (job_id, host_key) ",
                "DO UPDATE SET next_rank = frontier_hosts.next_rank + excluded.next_rank ",
                "RETURNING host_key, next_rank"
            ),
            known_fingerprints: concat!(
                "SELECT fingerprint FROM frontier_urls WHERE job_id = $1 AND fingerprint IN ",
                "(SELECT CAST(e.value AS BIGINT) FROM ",
                $list!(2),
                ")"
            ),
            insert_urls: concat!(
                "INSERT INTO frontier_urls (job_id, fingerprint, url, host_key, depth, host_rank, ",
                "state, epoch, due_at, done_epoch, redirect) ",
                "SELECT $1, CAST(e.value ->> 0 AS BIGINT), e.value ->> 1, e.value ->> 2, ",
                "CAST(e.value ->> 3 AS BIGINT), CAST(e.value ->> 4 AS BIGINT), $2, $3, $4, $5, $6 ",
                "FROM ",
                $rows!(7),
                " WHERE true ON CONFLICT (job_id, fingerprint) DO NOTHING"
            ),
            claim_candidates: concat!(
                "SELECT id, host_key, host_rank FROM frontier_urls ",
                "WHERE job_id = $1 AND state = 'queued' AND due_at <= $2 ",
                "ORDER BY host_rank, id LIMIT $3",
                $skip_locked
            ),
            claim_candidates_by_host: $by_host,
            // Rows of (URL id, new lease id): lease ids are drawn by the dispatcher.
            lease_urls: concat!(
                "UPDATE frontier_urls SET state = 'leased', lease_id = d.lease_id, ",
                "lease_owner = $1, lease_expires_at = $2 ",
                "FROM (SELECT CAST(e.value ->> 0 AS BIGINT) AS id, ",
                "CAST(e.value ->> 1 AS BIGINT) AS lease_id FROM ",
                $rows!(3),
                ") AS d WHERE frontier_urls.id = d.id AND frontier_urls.state = 'queued' ",
                "RETURNING frontier_urls.id, frontier_urls.job_id, frontier_urls.lease_id, ",
                "frontier_urls.url, frontier_urls.host_key, frontier_urls.fingerprint, ",
                "frontier_urls.depth, frontier_urls.epoch, frontier_urls.attempts"
            ),
            leased_urls: concat!(
                "SELECT id, job_id, lease_id, lease_owner, depth, epoch, attempts FROM frontier_urls ",
                "WHERE state = 'leased' AND lease_id IN (SELECT CAST(e.value AS BIGINT) FROM ",
                $list!(1),
                ") AND job_id IN (SELECT e.value FROM ",
                $list!(2),
                ")",
                $lock
            ),
            settle_urls: concat!(
                "UPDATE frontier_urls SET state = d.state, attempts = d.attempts, ",
                "due_at = d.due_at, ",
                "last_error = COALESCE(d.last_error, frontier_urls.last_error), ",
                "last_fetched_at = COALESCE(d.fetched_at, frontier_urls.last_fetched_at), ",
                "done_epoch = COALESCE(d.done_epoch, frontier_urls.done_epoch), ",
                "lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL ",
                "FROM (SELECT CAST(e.value ->> 0 AS BIGINT) AS id, e.value ->> 1 AS state, ",
                "CAST(e.value ->> 2 AS BIGINT) AS attempts, ",
                "CAST(e.value ->> 3 AS BIGINT) AS due_at, ",
                "e.value ->> 4 AS last_error, CAST(e.value ->> 5 AS BIGINT) AS fetched_at, ",
                "CAST(e.value ->> 6 AS BIGINT) AS done_epoch FROM ",
                $rows!(1),
                ") AS d WHERE frontier_urls.id = d.id"
            ),
            expired_lease_jobs: concat!(
                "SELECT DISTINCT job_id FROM frontier_urls ",
                "WHERE state = 'leased' AND lease_expires_at <= $1"
            ),
            return_expired_leases: concat!(
                // An expired lease is a fetch that hung or crashed its scraper: it counts as
                // a failed attempt, and the URL fails for good once the job's retries are
                // spent, so one poison URL cannot take scrapers down forever.
                "UPDATE frontier_urls SET attempts = attempts + 1, ",
                "state = CASE WHEN attempts + 1 > ", expired_retries!(), " THEN 'failed' ",
                "ELSE 'queued' END, ",
                "last_error = CASE WHEN attempts + 1 > ", expired_retries!(), " THEN ",
                "'lease expired ' || CAST(attempts + 1 AS TEXT) || ' times' ELSE last_error END, ",
                "lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL ",
                "WHERE state = 'leased' AND ",
                "lease_expires_at <= $1 AND job_id IN (SELECT e.value FROM ",
                $list!(2),
                ") RETURNING job_id, state, url, COALESCE(last_error, '')"
            ),
            owner_lease_jobs: concat!(
                "SELECT DISTINCT job_id FROM frontier_urls ",
                "WHERE state = 'leased' AND lease_owner = $1"
            ),
            return_owner_leases: concat!(
                return_lease!(),
                "lease_owner = $1 AND job_id IN (SELECT e.value FROM ",
                $list!(2),
                ") RETURNING job_id, state, url, COALESCE(last_error, '')"
            ),
            owner_lease_jobs_except: concat!(
                "SELECT DISTINCT job_id FROM frontier_urls ",
                "WHERE state = 'leased' AND lease_owner = $1 AND lease_id NOT IN ",
                "(SELECT CAST(e.value AS BIGINT) FROM ",
                $list!(2),
                ")"
            ),
            return_owner_leases_except: concat!(
                return_lease!(),
                "lease_owner = $1 AND lease_id NOT IN (SELECT CAST(e.value AS BIGINT) FROM ",
                $list!(2),
                ") AND job_id IN (SELECT e.value FROM ",
                $list!(3),
                ") RETURNING job_id, state, url, COALESCE(last_error, '')"
            ),
            lease_id_jobs: concat!(
                "SELECT DISTINCT job_id FROM frontier_urls WHERE state = 'leased' AND lease_id IN ",
                "(SELECT CAST(e.value AS BIGINT) FROM ",
                $list!(1),
                ")"
            ),
            return_leases_by_id: concat!(
                return_lease!(),
                "lease_id IN (SELECT CAST(e.value AS BIGINT) FROM ",
                $list!(1),
                ") AND job_id IN (SELECT e.value FROM ",
                $list!(2),
                ") RETURNING job_id, state, url, COALESCE(last_error, '')"
            ),
            drop_queued_urls: "DELETE FROM frontier_urls WHERE job_id = $1 AND state = 'queued'",
            requeue_epoch_urls: concat!(
                "UPDATE frontier_urls SET state = 'queued', epoch = $2, attempts = 0, due_at = $3 ",
                "WHERE job_id = $1 AND state IN ('done', 'failed') AND redirect = 0"
            ),
            url_by_fingerprint: concat!(
                "SELECT url, host_key, depth, state, epoch, attempts, due_at, lease_id, ",
                "lease_owner, lease_expires_at, last_fetched_at, last_error, done_epoch ",
                "FROM frontier_urls WHERE job_id = $1 AND fingerprint = $2"
            ),
        }
    };
}

/// SQLite: one writer at a time (`BEGIN IMMEDIATE`), so no row locks are needed.
pub(super) const SQLITE: Statements = statements! {
    rows: sqlite_rows,
    list: sqlite_list,
    lock: "",
    skip_locked: "",
    // Each host's first due URLs by rank, through the per-host index.
    claim_candidates_by_host: "SELECT u.id, u.host_key, u.host_rank FROM json_each($4) AS h \
        JOIN frontier_urls AS u ON u.id IN (SELECT q.id FROM frontier_urls AS q \
        WHERE q.job_id = $1 AND q.host_key = h.value AND q.state = 'queued' AND q.due_at <= $2 \
        ORDER BY q.host_rank LIMIT $3)",
};

/// PostgreSQL: job rows are locked `FOR UPDATE` (in id order) before their URLs are touched;
/// claim candidates are locked `FOR UPDATE SKIP LOCKED`, so concurrent claimers never wait on
/// or share a URL.
pub(super) const POSTGRES: Statements = statements! {
    rows: postgres_rows,
    list: postgres_list,
    lock: " FOR UPDATE",
    skip_locked: " FOR UPDATE SKIP LOCKED",
    // Each host's first due URLs by rank, through the per-host index.
    claim_candidates_by_host: "SELECT c.id, c.host_key, c.host_rank \
        FROM json_array_elements_text($4::json) AS h(value) CROSS JOIN LATERAL \
        (SELECT q.id, q.host_key, q.host_rank FROM frontier_urls AS q \
        WHERE q.job_id = $1 AND q.host_key = h.value AND q.state = 'queued' AND q.due_at <= $2 \
        ORDER BY q.host_rank LIMIT $3 FOR UPDATE SKIP LOCKED) AS c",
};
