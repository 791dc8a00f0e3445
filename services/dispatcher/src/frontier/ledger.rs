//! The jobs rows a write transaction works on, locked before any of their URLs are touched.
//!
//! A transaction reads its jobs rows first ([`Ledger::lock`]), changes their counters in memory
//! as it changes URLs, and writes back the rows that changed in [`Ledger::close`], which also
//! finishes the epoch of a job left with nothing queued or in flight. Reading under the lock
//! (`FOR UPDATE` on PostgreSQL, the write lock on SQLite) is what keeps the counters and the
//! `max_pages` budget exact, and taking the jobs rows in id order before any URL row is what
//! keeps PostgreSQL transactions from deadlocking.

use std::collections::BTreeMap;

use super::error::Result;
use super::model::{JobState, Progress};
use super::store::Dialect as _;
use owlmesh_job::Recrawl;
use owlmesh_storage::{Statement, WriteTx};

/// A jobs row, without its spec.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(super) struct JobRow {
    pub(super) id: String,
    pub(super) name: String,
    #[sqlx(try_from = "String")]
    pub(super) state: JobState,
    pub(super) priority: i64,
    pub(super) created_at: i64,
    pub(super) max_pages: i64,
    pub(super) max_depth: i64,
    pub(super) max_retries: i64,
    pub(super) recrawl_every_ms: i64,
    pub(super) recrawl_cron: String,
    pub(super) epoch: i64,
    pub(super) epoch_started_at: i64,
    pub(super) next_epoch_at: i64,
    #[sqlx(flatten)]
    pub(super) counts: Counts,
}

/// A job's counters for its current epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub(super) struct Counts {
    /// URLs admitted in this epoch: what `max_pages` caps.
    pub(super) admitted: i64,
    pub(super) queued: i64,
    pub(super) in_flight: i64,
    pub(super) done: i64,
    pub(super) failed: i64,
    pub(super) items: i64,
    pub(super) documents: i64,
}

impl JobRow {
    /// The job's recrawl schedule. It was checked when the job was created; one that no
    /// longer parses stops the recrawls rather than the transaction finishing the epoch.
    pub(super) fn recrawl(&self) -> Recrawl {
        Recrawl::from_stored(self.recrawl_every_ms, &self.recrawl_cron).unwrap_or_else(|| {
            tracing::warn!(job = %self.id, cron = %self.recrawl_cron, "recrawl schedule does not parse");
            Recrawl::Never
        })
    }

    /// The public view of the counters.
    pub(super) fn progress(&self) -> Progress {
        let count = |value: i64| u64::try_from(value).unwrap_or(0);
        Progress {
            queued: count(self.counts.queued),
            in_flight: count(self.counts.in_flight),
            done: count(self.counts.done),
            failed: count(self.counts.failed),
            items: count(self.counts.items),
            documents: count(self.counts.documents),
        }
    }

    /// Moves the job between running and done as its queue drains and fills; returns whether
    /// its epoch has just finished.
    fn settle(&mut self, now: i64) -> bool {
        let drained = self.counts.queued == 0 && self.counts.in_flight == 0;
        if self.state.is_dispatchable() && drained {
            self.state = JobState::Done;
            self.next_epoch_at = self.recrawl().next_epoch_at(self.epoch_started_at, now);
            return true;
        }
        if self.state == JobState::Done && !drained {
            // URLs admitted to a finished epoch (by hand): crawl them.
            self.state = JobState::Running;
            self.next_epoch_at = 0;
        }
        false
    }
}

/// A job as read under the lock, and as changed since.
#[derive(Debug)]
struct Entry {
    read: JobRow,
    job: JobRow,
}

/// The jobs rows a write transaction holds, by id.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    jobs: BTreeMap<String, Entry>,
}

impl Ledger {
    /// Locks and reads the jobs with these ids; ids of no job are left out.
    pub(super) async fn lock<'a>(
        tx: &mut WriteTx,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self> {
        let ids: Vec<&str> = ids.into_iter().collect();
        if ids.is_empty() {
            return Ok(Self::default());
        }
        let ids = serde_json::to_string(&ids)?;
        let rows = tx
            .fetch_all(Statement::new(tx.sql().lock_jobs).text(&ids))
            .await?;
        Ok(Self::from_rows(rows))
    }

    /// Locks and reads every job whose URLs claims may take.
    pub(super) async fn lock_dispatchable(tx: &mut WriteTx) -> Result<Self> {
        let rows = tx
            .fetch_all(Statement::new(tx.sql().lock_dispatchable_jobs))
            .await?;
        Ok(Self::from_rows(rows))
    }

    /// A ledger holding a job this transaction has just inserted, as inserted.
    pub(super) fn inserted(job: JobRow) -> Self {
        Self::from_rows(vec![job])
    }

    fn from_rows(rows: Vec<JobRow>) -> Self {
        let jobs = rows
            .into_iter()
            .map(|job| {
                let entry = Entry {
                    read: job.clone(),
                    job,
                };
                (entry.job.id.clone(), entry)
            })
            .collect();
        Self { jobs }
    }

    /// The job with this id, if it was locked.
    pub(super) fn get(&self, id: &str) -> Option<&JobRow> {
        self.jobs.get(id).map(|entry| &entry.job)
    }

    /// The job with this id, to change, if it was locked.
    pub(super) fn get_mut(&mut self, id: &str) -> Option<&mut JobRow> {
        self.jobs.get_mut(id).map(|entry| &mut entry.job)
    }

    /// The ids of the locked jobs, in id order.
    pub(super) fn ids(&self) -> impl Iterator<Item = &str> {
        self.jobs.keys().map(String::as_str)
    }

    /// The ids of the locked jobs, highest priority first, then oldest first.
    pub(super) fn ids_by_priority(&self) -> Vec<String> {
        let mut jobs: Vec<&JobRow> = self.jobs.values().map(|entry| &entry.job).collect();
        jobs.sort_by(|a, b| {
            (b.priority, a.created_at, &a.id).cmp(&(a.priority, b.created_at, &b.id))
        });
        jobs.into_iter().map(|job| job.id.clone()).collect()
    }

    /// Settles every job's state against its counters and writes back the rows that changed;
    /// returns the ids of the jobs whose epoch has just finished.
    pub(super) async fn close(&mut self, tx: &mut WriteTx, now: i64) -> Result<Vec<String>> {
        let mut finished = Vec::new();
        for (id, entry) in &mut self.jobs {
            if entry.job.settle(now) {
                finished.push(id.clone());
            }
            if entry.job != entry.read {
                write(tx, &entry.job).await?;
                entry.read = entry.job.clone();
            }
        }
        Ok(finished)
    }
}

async fn write(tx: &mut WriteTx, job: &JobRow) -> Result<()> {
    let counts = &job.counts;
    let statement = Statement::new(tx.sql().write_job)
        .text(&job.id)
        .text(job.state.as_str())
        .int(job.epoch)
        .int(job.epoch_started_at)
        .int(job.next_epoch_at)
        .int(counts.admitted)
        .int(counts.queued)
        .int(counts.in_flight)
        .int(counts.done)
        .int(counts.failed)
        .int(counts.items)
        .int(counts.documents);
    tx.execute(statement).await?;
    Ok(())
}
