//! The frontier's vocabulary: jobs and their states, URLs to admit, claims and what became of
//! them. Times are milliseconds since the Unix epoch.

use std::fmt;
use std::str::FromStr;

use owlmesh_proto::v1::{Assignment, Job, JobSpec, Outcome, OutcomeStatus};

use super::error::FrontierError;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Submitted; nothing dispatched yet in this epoch.
    Queued,
    /// URLs are being dispatched.
    Running,
    /// Not dispatched until resumed; URLs in flight finish.
    Paused,
    /// The current epoch has nothing queued or in flight (a recrawl may be scheduled).
    Done,
    /// Stopped for good by a person.
    Cancelled,
    /// Stopped for good by the dispatcher.
    Failed,
}

impl JobState {
    /// The state's name, as stored and as the API shows it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Done => "done",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }

    /// Whether claims take this job's URLs.
    pub const fn is_dispatchable(self) -> bool {
        matches!(self, Self::Queued | Self::Running)
    }

    /// Whether the job has stopped for good.
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Cancelled | Self::Failed)
    }

    /// Whether the job has finished: its epoch is done (a recrawl may follow) or it stopped
    /// for good. A finished job is not stopped again.
    pub const fn is_finished(self) -> bool {
        matches!(self, Self::Done | Self::Cancelled | Self::Failed)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = FrontierError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Ok(match name {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "paused" => Self::Paused,
            "done" => Self::Done,
            "cancelled" => Self::Cancelled,
            "failed" => Self::Failed,
            _ => return Err(FrontierError::UnknownState(name.to_owned())),
        })
    }
}

impl TryFrom<String> for JobState {
    type Error = FrontierError;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        name.parse()
    }
}

/// Where a URL is in one epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UrlState {
    /// Waiting to be claimed once due.
    Queued,
    /// Claimed by a scraper under a lease.
    Leased,
    /// Fetched and archived (or known only as a redirect step).
    Done,
    /// Given up on; the reason is kept.
    Failed,
}

impl UrlState {
    /// The state's name, as stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Leased => "leased",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for UrlState {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for UrlState {
    type Err = FrontierError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Ok(match name {
            "queued" => Self::Queued,
            "leased" => Self::Leased,
            "done" => Self::Done,
            "failed" => Self::Failed,
            _ => return Err(FrontierError::UnknownState(name.to_owned())),
        })
    }
}

impl TryFrom<String> for UrlState {
    type Error = FrontierError;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        name.parse()
    }
}

/// A canonical URL and the keys the frontier files it under, as canonicalisation made them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UrlKey {
    /// The canonical URL.
    pub url: String,
    /// The routing key of its host (what scrapers are assigned by).
    pub host_key: String,
    /// The dedup key: one job admits a fingerprint once.
    pub fingerprint: u64,
}

/// A URL to admit to a job, found at a link depth (seeds are depth 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUrl {
    /// The URL and its keys.
    pub key: UrlKey,
    /// Links followed from a seed to reach it.
    pub depth: u32,
}

/// A job to create.
#[derive(Debug, Clone, Copy)]
pub struct NewJob<'a> {
    /// The accepted spec, defaults filled in.
    pub spec: &'a JobSpec,
    /// The spec's seeds, canonicalised.
    pub seeds: &'a [UrlKey],
    /// The submission time.
    pub now_ms: i64,
    /// The client's id for this submission: a job stored under it already is returned
    /// instead of creating another. `None` creates a job every time.
    pub request_id: Option<&'a str>,
}

/// What [`super::Frontier::create_job`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    /// The job: new, or the one created earlier under the same request id.
    pub job: JobRecord,
    /// Whether this call created it.
    pub created: bool,
}

/// Where a page of jobs starts: after this job, in the newest-first order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCursor {
    /// The job's submission time.
    pub created_at_ms: i64,
    /// The job's id, which orders jobs submitted in the same millisecond.
    pub id: String,
}

/// A job whose stored row cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableJob {
    /// The job's id.
    pub id: String,
    /// Why it cannot be read, for people.
    pub reason: String,
}

/// One page of jobs, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobPage {
    /// The jobs that could be read.
    pub jobs: Vec<JobRecord>,
    /// The jobs of the page that could not.
    pub unreadable: Vec<UnreadableJob>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<JobCursor>,
}

/// A job's progress in its current epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// URLs waiting to be dispatched, including those waiting out a backoff.
    pub queued: u64,
    /// URLs leased to scrapers.
    pub in_flight: u64,
    /// URLs fetched and archived.
    pub done: u64,
    /// URLs given up on.
    pub failed: u64,
    /// Data items extracted.
    pub items: u64,
    /// Documents found.
    pub documents: u64,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    /// Short unique id.
    pub id: String,
    /// The spec's name.
    pub name: String,
    /// Where the job is in its life.
    pub state: JobState,
    /// Higher is dispatched first.
    pub priority: i32,
    /// The current crawl epoch, from 1.
    pub epoch: u64,
    /// When the next epoch starts; 0 when none is scheduled.
    pub next_epoch_at_ms: i64,
    /// When the job was submitted.
    pub created_at_ms: i64,
    /// Counts of the current epoch.
    pub progress: Progress,
    /// The spec as accepted.
    pub spec: JobSpec,
}

impl JobRecord {
    /// The job as the gRPC API shows it.
    pub fn to_proto(&self) -> Job {
        Job {
            id: self.id.clone(),
            name: self.name.clone(),
            state: self.state.as_str().to_owned(),
            queued: self.progress.queued,
            in_flight: self.progress.in_flight,
            done: self.progress.done,
            failed: self.progress.failed,
            items: self.progress.items,
            documents: self.progress.documents,
            epoch: self.epoch,
            next_epoch_at_ms: self.next_epoch_at_ms,
            created_at_ms: self.created_at_ms,
            spec: Some(self.spec.clone()),
        }
    }
}

/// Which hosts a claim may take URLs of.
#[derive(Clone, Copy)]
pub enum HostFilter<'a> {
    /// Every host, interleaved.
    All,
    /// Only these host keys (one index seek each).
    Only(&'a [String]),
    /// Hosts the predicate accepts, e.g. those a scraper owns on the hash ring. Judged in the
    /// dispatcher over a window of candidates, so a narrow predicate may claim fewer than the
    /// limit although more URLs are due.
    Owned(&'a (dyn Fn(&str) -> bool + Send + Sync)),
}

impl fmt::Debug for HostFilter<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => formatter.write_str("All"),
            Self::Only(hosts) => formatter.debug_tuple("Only").field(hosts).finish(),
            Self::Owned(_) => formatter.write_str("Owned(..)"),
        }
    }
}

/// What to claim, for whom and for how long.
#[derive(Debug, Clone, Copy)]
pub struct ClaimRequest<'a> {
    /// At most this many URLs.
    pub limit: usize,
    /// At most this many URLs of one host in this claim; `None` for no cap.
    pub per_host: Option<usize>,
    /// Which hosts.
    pub hosts: HostFilter<'a>,
    /// Who holds the leases (the scraper's instance id).
    pub owner: &'a str,
    /// The time of the claim: only URLs due by then are taken.
    pub now_ms: i64,
    /// How long the leases last.
    pub lease_ms: i64,
}

/// One claimed URL, leased to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The lease; the outcome must carry it back.
    pub lease_id: u64,
    /// The URL's job.
    pub job_id: String,
    /// The canonical URL.
    pub url: String,
    /// The URL's host key, for routing.
    pub host_key: String,
    /// The URL's fingerprint.
    pub fingerprint: u64,
    /// Link depth from the seeds.
    pub depth: u32,
    /// The job's epoch this fetch belongs to.
    pub epoch: u64,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// The scraper it is leased to.
    pub owner: String,
    /// When the lease expires.
    pub lease_expires_at_ms: i64,
}

impl Claimed {
    /// The assignment to send to the scraper.
    pub fn to_assignment(&self) -> Assignment {
        Assignment {
            lease_id: self.lease_id,
            job_id: self.job_id.clone(),
            url: self.url.clone(),
            depth: self.depth,
            epoch: self.epoch,
            lease_expires_at_ms: self.lease_expires_at_ms,
            attempt: self.attempt,
            trace_context: Default::default(),
        }
    }
}

/// What became of one assignment, with its links canonicalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The lease the assignment was made under.
    pub lease_id: u64,
    /// The scraper that reports it: the outcome settles the lease only if this scraper
    /// holds it, so that no session can settle (or fail) another's work.
    pub owner: String,
    /// The assignment's job.
    pub job_id: String,
    /// What happened.
    pub status: OutcomeStatus,
    /// Why it failed, for people.
    pub error: String,
    /// Wait at least this long before retrying; 0 when the server did not say.
    pub retry_after_ms: u64,
    /// When the fetch finished; 0 when unknown.
    pub fetched_at_ms: i64,
    /// Data items archived for the page.
    pub items: u32,
    /// Documents archived for the page.
    pub documents: u32,
    /// Links found, to admit one level deeper.
    pub links: Vec<UrlKey>,
    /// The redirect chain after the assignment's URL: marked seen so it is not queued again.
    pub redirects: Vec<UrlKey>,
}

impl Completion {
    /// The completion of `outcome`, without links or redirects: canonicalise the outcome's
    /// links and redirects into those two fields.
    pub fn from_outcome(outcome: &Outcome, owner: &str) -> Self {
        Self {
            lease_id: outcome.lease_id,
            owner: owner.to_owned(),
            job_id: outcome.job_id.clone(),
            status: OutcomeStatus::try_from(outcome.status).unwrap_or(OutcomeStatus::Unspecified),
            error: outcome.error.clone(),
            retry_after_ms: outcome.retry_after_ms,
            fetched_at_ms: outcome.fetched_at_ms,
            items: outcome.items,
            documents: outcome.documents,
            links: Vec::new(),
            redirects: Vec::new(),
        }
    }
}

/// What a batch of completions did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompletionReport {
    /// Completions applied to their URL.
    pub applied: usize,
    /// Completions ignored because their lease is no longer held (expired, re-leased, or
    /// reported twice) or is held by another scraper.
    pub stale: usize,
    /// New URLs admitted from the links found.
    pub admitted: u64,
    /// Jobs whose epoch finished with this batch.
    pub finished_jobs: Vec<String>,
}

/// A crawl epoch that has just started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochStart {
    /// The job.
    pub job_id: String,
    /// The new epoch.
    pub epoch: u64,
    /// URLs queued again for it.
    pub requeued: u64,
}

/// Queue depth of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDepth {
    /// The job.
    pub job_id: String,
    /// URLs waiting.
    pub queued: u64,
    /// URLs leased.
    pub in_flight: u64,
}

/// Queue depth of the whole frontier, and of each job with work left.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// URLs waiting, over every job.
    pub queued: u64,
    /// URLs leased, over every job.
    pub in_flight: u64,
    /// Jobs with URLs queued or in flight, by id.
    pub jobs: Vec<JobDepth>,
}

/// One URL of a job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlRecord {
    /// The canonical URL.
    pub url: String,
    /// Its host key.
    pub host_key: String,
    /// Link depth from the seeds.
    pub depth: u32,
    /// Where it is.
    pub state: UrlState,
    /// The epoch it is queued, leased or settled in.
    pub epoch: u64,
    /// Transient failures in that epoch.
    pub attempts: u32,
    /// When it may be dispatched.
    pub due_at_ms: i64,
    /// The lease, while leased.
    pub lease_id: Option<u64>,
    /// Who holds the lease.
    pub lease_owner: Option<String>,
    /// When the lease expires.
    pub lease_expires_at_ms: Option<i64>,
    /// When it was last fetched.
    pub last_fetched_at_ms: Option<i64>,
    /// The reason of its last failure.
    pub last_error: Option<String>,
    /// The epoch it was last done in.
    pub done_epoch: Option<u64>,
}
