//! Jobs: creation with their seeds, reads, state changes, crawl epochs, queue depth.

use owlmesh_job::Recrawl;
use owlmesh_proto::v1::JobSpec;
use prost::Message;

use super::admit::{Admission, Candidate, admit};
use super::error::{FrontierError, Result};
use super::ledger::{Counts, JobRow, Ledger};
use super::model::{
    EpochStart, JobCursor, JobDepth, JobPage, JobRecord, JobState, NewJob, QueueDepth, Submitted,
    UnreadableJob, UrlRecord, UrlState,
};
use super::store::Dialect as _;
use owlmesh_storage::{Pool, Statement, WriteTx};

/// Letters of job ids: lowercase, without the easily confused i, l, o and u.
const ID_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// Characters of a job id: 60 random bits.
const ID_LENGTH: usize = 12;

/// A jobs row with its spec.
#[derive(Debug, sqlx::FromRow)]
struct JobWithSpec {
    #[sqlx(flatten)]
    job: JobRow,
    spec: Vec<u8>,
}

/// A URL row as [`super::Frontier::url`] shows it.
#[derive(Debug, sqlx::FromRow)]
struct UrlRow {
    url: String,
    host_key: String,
    depth: i64,
    #[sqlx(try_from = "String")]
    state: UrlState,
    epoch: i64,
    attempts: i64,
    due_at: i64,
    lease_id: Option<i64>,
    lease_owner: Option<String>,
    lease_expires_at: Option<i64>,
    last_fetched_at: Option<i64>,
    last_error: Option<String>,
    done_epoch: Option<i64>,
}

/// A fresh short job id.
fn new_job_id() -> String {
    // The low 60 bits of a v4 UUID are all random.
    let random = uuid::Uuid::new_v4().as_u128();
    (0..ID_LENGTH)
        .map(|at| char::from(ID_ALPHABET[((random >> (5 * at)) & 31) as usize]))
        .collect()
}

fn record(job: &JobRow, spec: JobSpec) -> JobRecord {
    JobRecord {
        id: job.id.clone(),
        name: job.name.clone(),
        state: job.state,
        priority: i32::try_from(job.priority).unwrap_or_default(),
        epoch: u64::try_from(job.epoch).unwrap_or_default(),
        next_epoch_at_ms: job.next_epoch_at,
        created_at_ms: job.created_at,
        progress: job.progress(),
        spec,
    }
}

fn decode(row: JobWithSpec) -> Result<JobRecord> {
    let spec =
        JobSpec::decode(row.spec.as_slice()).map_err(|source| FrontierError::CorruptSpec {
            job: row.job.id.clone(),
            source,
        })?;
    Ok(record(&row.job, spec))
}

/// Stores a new job and admits its seeds, unless its request id names a job already; see
/// [`super::Frontier::create_job`].
pub(super) async fn create_job(pool: &Pool, new: NewJob<'_>) -> Result<Submitted> {
    let Some(request_id) = new.request_id else {
        return Ok(Submitted {
            job: insert_job(pool, new).await?,
            created: true,
        });
    };
    if let Some(earlier) = submitted_before(pool, request_id, new.spec).await? {
        return Ok(earlier);
    }
    match insert_job(pool, new).await {
        Ok(job) => Ok(Submitted { job, created: true }),
        // The same request reached another dispatcher (or this one twice) at the same time,
        // and its job was stored first: the unique index on request ids refused this one.
        Err(FrontierError::Database(error)) if is_unique_violation(&error) => {
            match submitted_before(pool, request_id, new.spec).await? {
                Some(earlier) => Ok(earlier),
                None => Err(FrontierError::Database(error)),
            }
        }
        Err(error) => Err(error),
    }
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|error| error.is_unique_violation())
}

/// The job stored under `request_id`, if any, when it was created from `spec`; a job from
/// another spec is [`FrontierError::RequestIdReused`].
async fn submitted_before(
    pool: &Pool,
    request_id: &str,
    spec: &JobSpec,
) -> Result<Option<Submitted>> {
    let statement = Statement::new(pool.sql().job_by_request_id).text(request_id);
    let rows: Vec<JobWithSpec> = pool.fetch_all(statement).await?;
    let Some(row) = rows.into_iter().next() else {
        return Ok(None);
    };
    let job = decode(row)?;
    if job.spec != *spec {
        return Err(FrontierError::RequestIdReused {
            request_id: request_id.to_owned(),
            job: job.id,
        });
    }
    Ok(Some(Submitted {
        job,
        created: false,
    }))
}

/// Stores a new job and admits its seeds, in one transaction.
async fn insert_job(pool: &Pool, new: NewJob<'_>) -> Result<JobRecord> {
    let spec = new.spec;
    let recrawl = match &spec.recrawl {
        Some(schedule) => Recrawl::of_schedule(schedule)
            .map_err(|error| FrontierError::InvalidSchedule(error.to_string()))?,
        None => Recrawl::Never,
    };
    let job = JobRow {
        id: new_job_id(),
        name: spec.name.clone(),
        state: JobState::Queued,
        priority: i64::from(spec.priority),
        created_at: new.now_ms,
        max_pages: i64::try_from(spec.max_pages).unwrap_or(i64::MAX),
        max_depth: i64::from(spec.max_depth),
        max_retries: i64::from(spec.max_retries),
        recrawl_every_ms: recrawl.every_ms(),
        recrawl_cron: recrawl.cron_source().to_owned(),
        epoch: 1,
        epoch_started_at: new.now_ms,
        next_epoch_at: 0,
        counts: Counts::default(),
    };
    let encoded = spec.encode_to_vec();
    let mut tx = pool.begin_write().await?;
    let statement = Statement::new(tx.sql().insert_job)
        .text(&job.id)
        .text(&job.name)
        .bytes(&encoded)
        .text(job.state.as_str())
        .int(job.priority)
        .int(job.created_at)
        .int(job.max_pages)
        .int(job.max_depth)
        .int(job.max_retries)
        .int(job.recrawl_every_ms)
        .text(&job.recrawl_cron)
        .int(job.epoch)
        .int(job.epoch_started_at)
        .int(job.next_epoch_at)
        .text(new.request_id.unwrap_or_default());
    tx.execute(statement).await?;
    let id = job.id.clone();
    let mut ledger = Ledger::inserted(job);
    let seeds: Vec<Candidate<'_>> = new
        .seeds
        .iter()
        .map(|key| Candidate { key, depth: 0 })
        .collect();
    if let Some(job) = ledger.get_mut(&id) {
        admit(&mut tx, job, &seeds, Admission::Queued, new.now_ms).await?;
    }
    ledger.close(&mut tx, new.now_ms).await?;
    tx.commit().await?;
    let job = ledger
        .get(&id)
        .ok_or_else(|| FrontierError::JobNotFound(id.clone()))?;
    Ok(record(job, spec.clone()))
}

/// One job; see [`super::Frontier::get_job`].
pub(super) async fn get_job(pool: &Pool, id: &str) -> Result<JobRecord> {
    let rows: Vec<JobWithSpec> = pool
        .fetch_all(Statement::new(pool.sql().job_by_id).text(id))
        .await?;
    let row = rows
        .into_iter()
        .next()
        .ok_or_else(|| FrontierError::JobNotFound(id.to_owned()))?;
    decode(row)
}

/// A page of jobs, newest first; see [`super::Frontier::list_jobs`].
pub(super) async fn list_jobs(
    pool: &Pool,
    after: Option<&JobCursor>,
    limit: usize,
) -> Result<JobPage> {
    let (created_at, id) = match after {
        Some(cursor) => (cursor.created_at_ms, cursor.id.as_str()),
        None => (i64::MAX, ""),
    };
    // One row more than the page tells whether another page follows.
    let fetch = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
    let statement = Statement::new(pool.sql().jobs_page)
        .int(created_at)
        .text(id)
        .int(fetch);
    let mut rows: Vec<JobWithSpec> = pool.fetch_all(statement).await?;
    let mut page = JobPage::default();
    if rows.len() > limit {
        rows.truncate(limit);
        page.next = rows.last().map(|row| JobCursor {
            created_at_ms: row.job.created_at,
            id: row.job.id.clone(),
        });
    }
    for row in rows {
        let id = row.job.id.clone();
        match decode(row) {
            Ok(job) => page.jobs.push(job),
            Err(error) => page.unreadable.push(UnreadableJob {
                id,
                reason: error.to_string(),
            }),
        }
    }
    Ok(page)
}

/// Whether a person (or the dispatcher) may move a job from `from` to `to`.
fn may_change(from: JobState, to: JobState) -> bool {
    use JobState::{Cancelled, Failed, Paused, Queued, Running};
    matches!(
        (from, to),
        (Queued | Running, Paused)
            | (Queued | Paused, Running)
            | (Queued | Running | Paused, Cancelled | Failed)
    )
}

/// Changes a job's state; see [`super::Frontier::set_state`].
pub(super) async fn set_state(pool: &Pool, id: &str, to: JobState, now: i64) -> Result<JobRecord> {
    let mut tx = pool.begin_write().await?;
    let mut ledger = Ledger::lock(&mut tx, [id]).await?;
    let job = ledger
        .get_mut(id)
        .ok_or_else(|| FrontierError::JobNotFound(id.to_owned()))?;
    let from = job.state;
    // A done job with a recrawl ahead is still a running schedule: cancelling ends it. One
    // with nothing ahead, or one stopped already, stays as it is.
    let ends_schedule =
        from == JobState::Done && to == JobState::Cancelled && job.next_epoch_at > 0;
    if to.is_final() && from.is_finished() && from != to && !ends_schedule {
        return Err(FrontierError::Finished {
            job: id.to_owned(),
            state: from,
        });
    }
    if from != to {
        if !ends_schedule && !may_change(from, to) {
            return Err(FrontierError::InvalidTransition {
                job: id.to_owned(),
                from,
                to,
            });
        }
        if to.is_final() {
            // A stopped job's queue is dropped; leases in flight still report.
            let statement = Statement::new(tx.sql().drop_queued_urls).text(id);
            let dropped = tx.execute(statement).await?;
            job.counts.queued -= i64::try_from(dropped).unwrap_or(i64::MAX);
            job.next_epoch_at = 0;
        }
        job.state = to;
        ledger.close(&mut tx, now).await?;
        tx.commit().await?;
    }
    get_job(pool, id).await
}

/// Finishes the job's epoch if nothing is queued or in flight; see
/// [`super::Frontier::finish_epoch_if_drained`].
pub(super) async fn finish_epoch_if_drained(pool: &Pool, id: &str, now: i64) -> Result<bool> {
    let mut tx = pool.begin_write().await?;
    let mut ledger = Ledger::lock(&mut tx, [id]).await?;
    if ledger.get(id).is_none() {
        return Err(FrontierError::JobNotFound(id.to_owned()));
    }
    let finished = ledger.close(&mut tx, now).await?;
    tx.commit().await?;
    Ok(!finished.is_empty())
}

/// Starts the next epoch of every job whose time has come; see
/// [`super::Frontier::start_due_epochs`].
pub(super) async fn start_due_epochs(pool: &Pool, now: i64) -> Result<Vec<EpochStart>> {
    let mut tx = pool.begin_write().await?;
    let due: Vec<(String,)> = tx
        .fetch_all(Statement::new(tx.sql().due_epoch_jobs).int(now))
        .await?;
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let mut ledger = Ledger::lock(&mut tx, due.iter().map(|(id,)| id.as_str())).await?;
    let mut started = Vec::with_capacity(due.len());
    for (id,) in &due {
        let Some(job) = ledger.get_mut(id) else {
            continue;
        };
        // Read again under the lock: another dispatcher may have started it meanwhile.
        if job.state == JobState::Done && job.next_epoch_at > 0 && job.next_epoch_at <= now {
            started.push(begin_epoch(&mut tx, job, now).await?);
        }
    }
    ledger.close(&mut tx, now).await?;
    tx.commit().await?;
    Ok(started)
}

/// Starts the job's next epoch now; see [`super::Frontier::expedite`].
pub(super) async fn expedite(pool: &Pool, id: &str, now: i64) -> Result<EpochStart> {
    let mut tx = pool.begin_write().await?;
    let mut ledger = Ledger::lock(&mut tx, [id]).await?;
    let job = ledger
        .get_mut(id)
        .ok_or_else(|| FrontierError::JobNotFound(id.to_owned()))?;
    match job.state {
        JobState::Done => {}
        JobState::Queued | JobState::Running | JobState::Paused => {
            return Err(FrontierError::EpochInProgress(id.to_owned()));
        }
        from @ (JobState::Cancelled | JobState::Failed) => {
            return Err(FrontierError::InvalidTransition {
                job: id.to_owned(),
                from,
                to: JobState::Running,
            });
        }
    }
    let started = begin_epoch(&mut tx, job, now).await?;
    ledger.close(&mut tx, now).await?;
    tx.commit().await?;
    Ok(started)
}

/// Bumps a done job's epoch and queues its fetched (and failed) URLs again, due now.
async fn begin_epoch(tx: &mut WriteTx, job: &mut JobRow, now: i64) -> Result<EpochStart> {
    let epoch = job.epoch + 1;
    let statement = Statement::new(tx.sql().requeue_epoch_urls)
        .text(&job.id)
        .int(epoch)
        .int(now);
    let requeued = tx.execute(statement).await?;
    let count = i64::try_from(requeued).unwrap_or(i64::MAX);
    job.epoch = epoch;
    job.epoch_started_at = now;
    job.next_epoch_at = 0;
    job.state = JobState::Running;
    job.counts = Counts {
        admitted: count,
        queued: count,
        ..Counts::default()
    };
    Ok(EpochStart {
        job_id: job.id.clone(),
        epoch: u64::try_from(epoch).unwrap_or_default(),
        requeued,
    })
}

/// Queue depth overall and per job, from the jobs rows' counters.
pub(super) async fn queue_depth(pool: &Pool) -> Result<QueueDepth> {
    let rows: Vec<(String, i64, i64)> = pool
        .fetch_all(Statement::new(pool.sql().job_depths))
        .await?;
    let mut depth = QueueDepth::default();
    for (job_id, queued, in_flight) in rows {
        let queued = u64::try_from(queued).unwrap_or_default();
        let in_flight = u64::try_from(in_flight).unwrap_or_default();
        depth.queued += queued;
        depth.in_flight += in_flight;
        depth.jobs.push(JobDepth {
            job_id,
            queued,
            in_flight,
        });
    }
    Ok(depth)
}

/// One URL of a job by fingerprint; see [`super::Frontier::url`].
pub(super) async fn url(pool: &Pool, job_id: &str, fingerprint: u64) -> Result<Option<UrlRecord>> {
    let statement = Statement::new(pool.sql().url_by_fingerprint)
        .text(job_id)
        .int(fingerprint as i64);
    let rows: Vec<UrlRow> = pool.fetch_all(statement).await?;
    Ok(rows.into_iter().next().map(|row| UrlRecord {
        url: row.url,
        host_key: row.host_key,
        depth: u32::try_from(row.depth).unwrap_or(u32::MAX),
        state: row.state,
        epoch: u64::try_from(row.epoch).unwrap_or_default(),
        attempts: u32::try_from(row.attempts).unwrap_or(u32::MAX),
        due_at_ms: row.due_at,
        lease_id: row.lease_id.map(|id| id as u64),
        lease_owner: row.lease_owner,
        lease_expires_at_ms: row.lease_expires_at,
        last_fetched_at_ms: row.last_fetched_at,
        last_error: row.last_error,
        done_epoch: row.done_epoch.and_then(|epoch| u64::try_from(epoch).ok()),
    }))
}
