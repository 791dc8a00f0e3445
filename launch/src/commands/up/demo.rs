//! `owlmesh up --demo`, once the mesh listens: wait until it can crawl, submit the demo
//! shop's job, draw its progress every second, then sum up and check the archive.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use owlmesh_proto::v1::{Job, JobRequest};
use owlmesh_site::Site;

use super::console::Console;
use super::verify::{Verdict, verify};
use crate::commands::job::{get, is_settled, list, progress_line, submit_spec};
use crate::demo::{DEMO_JOB_NAME, job_spec, stats};
use crate::mesh::Mesh;

/// How often the progress line is redrawn.
const PROGRESS_PERIOD: Duration = Duration::from_secs(1);
/// How often membership is polled while the services register.
const READY_POLL: Duration = Duration::from_millis(100);
/// How long to wait for every started service to register before crawling with the ones
/// that did (the others join the ring when they come).
const FULL_MESH_WAIT: Duration = Duration::from_secs(10);
/// How long to wait for at least one dispatcher, scraper and archiver.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a crawl may stand still before the demo points at the logs.
const STALL_WARNING: Duration = Duration::from_secs(30);
/// Progress polls that may fail in a row (a dispatcher failing over) before giving up.
const PROGRESS_FAILURES: u32 = 10;
/// Reads of the archive before a mismatch is final: it is written before outcomes are
/// reported, so one read should do, and a few more cost little.
const VERIFY_ATTEMPTS: u32 = 5;

/// What the demo needs from `owlmesh up`.
pub(super) struct DemoContext {
    pub(super) site: Arc<Site>,
    pub(super) directory: SocketAddr,
    /// Whether that is the address every command uses by default.
    pub(super) default_directory: bool,
    pub(super) data_dir: PathBuf,
    /// Dispatchers, scrapers and archivers started.
    pub(super) started: [(&'static str, usize); 3],
    pub(super) console: Console,
}

/// How the demo ended.
#[derive(Debug)]
pub(super) struct DemoOutcome {
    /// Whether the archive holds exactly the shop's products.
    pub(super) verified: bool,
}

/// Runs the demo crawl to its end and reports on it.
pub(super) async fn run(context: DemoContext) -> anyhow::Result<DemoOutcome> {
    let mesh = Mesh::connect(&[context.directory.to_string()]).await?;
    wait_until_ready(&mesh, &context.started).await?;
    cancel_leftovers(&mesh, &context.console).await?;
    let site = &context.site;
    let spec = job_spec(&site.seeds(), &site.hosts())?;
    let id = submit_spec(&mesh, spec)
        .await
        .context("submitting the demo job")?;
    context.console.line(format!(
        "demo: crawling a shop of {} products on {} (job {id})",
        site.expected_products().len(),
        site.seeds().join(" and "),
    ));
    let started = Instant::now();
    let job = follow(&mesh, &id, &context, started).await?;
    let elapsed = started.elapsed();
    if job.state != "done" {
        context
            .console
            .line(format!("demo: the job ended {}", job.state));
        return Ok(DemoOutcome { verified: false });
    }
    let verdict = verify_with_patience(&mesh, &id, &context).await?;
    summarize(&context, &job, elapsed, &verdict);
    Ok(DemoOutcome {
        verified: verdict.matches(),
    })
}

/// Waits until the started services have registered: all of them, or after a while at
/// least one of each kind.
async fn wait_until_ready(mesh: &Mesh, started: &[(&'static str, usize)]) -> anyhow::Result<()> {
    let begun = Instant::now();
    loop {
        let mut live = Vec::new();
        for (kind, _) in started {
            live.push(mesh.list(kind).await.map(|found| found.len()).unwrap_or(0));
        }
        let all = started
            .iter()
            .zip(&live)
            .all(|((_, want), have)| have >= want);
        let some = live.iter().all(|have| *have > 0);
        if all || (some && begun.elapsed() >= FULL_MESH_WAIT) {
            return Ok(());
        }
        if begun.elapsed() >= READY_TIMEOUT {
            let absent: Vec<&str> = started
                .iter()
                .zip(&live)
                .filter(|(_, have)| **have == 0)
                .map(|((kind, _), _)| *kind)
                .collect();
            bail!(
                "no live {} registered within {READY_TIMEOUT:?}: the demo cannot crawl",
                absent.join(", no live ")
            );
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

/// Cancels unfinished demo jobs of earlier runs: their shop is gone with its process, so
/// their URLs could only fail, and would slow this crawl down.
async fn cancel_leftovers(mesh: &Mesh, console: &Console) -> anyhow::Result<()> {
    let jobs = list(mesh).await.context("listing jobs")?;
    let leftovers = jobs
        .iter()
        .filter(|job| job.name == DEMO_JOB_NAME && !is_settled(job) && job.state != "paused");
    for job in leftovers {
        mesh.with_dispatcher(|mut dispatcher| {
            let request = JobRequest { id: job.id.clone() };
            async move { Ok(dispatcher.cancel_job(request).await?.into_inner()) }
        })
        .await
        .with_context(|| format!("cancelling job {}", job.id))?;
        console.line(format!(
            "demo: cancelled job {}, left unfinished by an earlier demo whose shop is gone",
            job.id
        ));
    }
    Ok(())
}

/// Draws the job's progress every second until its crawl epoch is over.
async fn follow(
    mesh: &Mesh,
    id: &str,
    context: &DemoContext,
    started: Instant,
) -> anyhow::Result<Job> {
    let mut tick = tokio::time::interval(PROGRESS_PERIOD);
    let mut progress = Progress::new(started);
    let mut failures = 0;
    loop {
        tick.tick().await;
        let job = match get(mesh, id).await {
            Ok(job) => job,
            Err(error) if failures < PROGRESS_FAILURES => {
                failures += 1;
                tracing::debug!(%error, "progress poll failed");
                continue;
            }
            Err(error) => return Err(error),
        };
        failures = 0;
        let rate = progress.record(&job);
        context
            .console
            .progress(&progress_line(&job, rate, started.elapsed()));
        if is_settled(&job) {
            context.console.end_progress();
            return Ok(job);
        }
        if progress.newly_stalled() {
            context.console.line(format!(
                "demo: no progress for {STALL_WARNING:?}; the logs in {} may say why",
                context.data_dir.join("logs").display()
            ));
        }
    }
}

/// What the progress line remembers between polls: the page rate, and whether the crawl
/// has stopped moving.
struct Progress {
    last_done: u64,
    last_finished: u64,
    last_poll: Instant,
    last_change: Instant,
    stall_reported: bool,
}

impl Progress {
    fn new(started: Instant) -> Self {
        Self {
            last_done: 0,
            last_finished: 0,
            last_poll: started,
            last_change: started,
            stall_reported: false,
        }
    }

    /// Takes in one poll; returns the pages per second since the previous one.
    fn record(&mut self, job: &Job) -> f64 {
        let finished = job.done + job.failed;
        let seconds = self.last_poll.elapsed().as_secs_f64().max(0.001);
        let rate = job.done.saturating_sub(self.last_done) as f64 / seconds;
        if finished != self.last_finished {
            self.last_change = Instant::now();
            self.stall_reported = false;
        }
        self.last_done = job.done;
        self.last_finished = finished;
        self.last_poll = Instant::now();
        rate
    }

    /// Whether nothing has finished for a while, said once per stall.
    fn newly_stalled(&mut self) -> bool {
        if self.stall_reported || self.last_change.elapsed() < STALL_WARNING {
            return false;
        }
        self.stall_reported = true;
        true
    }
}

async fn verify_with_patience(
    mesh: &Mesh,
    id: &str,
    context: &DemoContext,
) -> anyhow::Result<Verdict> {
    let mut attempt = 1;
    loop {
        let verdict = verify(mesh, id, &context.site).await?;
        if verdict.matches() || attempt == VERIFY_ATTEMPTS {
            return Ok(verdict);
        }
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The summary: counts, time, rate, robots.txt, the verdict and where the results are.
fn summarize(context: &DemoContext, job: &Job, elapsed: Duration, verdict: &Verdict) {
    let console = &context.console;
    let site = &context.site;
    let seconds = elapsed.as_secs_f64();
    let stats = stats(site);
    let lines = [
        format!("demo job {} is done", job.id),
        format!(
            "  pages      {} fetched (the shop has {} HTML pages)",
            job.done,
            site.fetched_urls().len()
        ),
        format!("  items      {}", job.items),
        format!(
            "  documents  {} (PDF datasheets linked: {})",
            job.documents,
            site.expected_documents().len()
        ),
        failed_line(job.failed, site.hosts().len()),
        format!("  elapsed    {seconds:.1} s"),
        format!(
            "  rate       {:.1} pages/s",
            job.done as f64 / seconds.max(0.001)
        ),
        robots_line(stats.private, stats.requests),
        verdict.describe(),
        "results:".to_owned(),
        format!(
            "  {} (JSON lines, written by the archivers)",
            context.data_dir.join(format!("{}.jsonl", job.id)).display()
        ),
        format!(
            "  owlmesh export {}{} --format csv",
            job.id,
            directory_flag(context)
        ),
        format!(
            "  owlmesh export {}{} --documents",
            job.id,
            directory_flag(context)
        ),
    ];
    for line in lines {
        console.line(line);
    }
}

/// Failures, explained when they are the ones the shop sets up: one `/private/` link per
/// host, which robots.txt disallows.
fn failed_line(failed: u64, hosts: usize) -> String {
    if failed == hosts as u64 {
        format!("  failed     {failed} (the /private/ page of each host: robots.txt disallows it)")
    } else {
        format!("  failed     {failed}")
    }
}

fn robots_line(private: u64, requests: u64) -> String {
    if private == 0 {
        format!(
            "  robots.txt obeyed: no request for /private/ among the {requests} the shop served"
        )
    } else {
        format!(
            "  robots.txt: {private} of {requests} requests were for /private/, which it disallows"
        )
    }
}

fn directory_flag(context: &DemoContext) -> String {
    if context.default_directory {
        String::new()
    } else {
        format!(" --directory {}", context.directory)
    }
}
