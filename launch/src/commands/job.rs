//! `owlmesh job …`: submit, watch and steer jobs through the primary dispatcher.

use crate::output::outln;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use owlmesh_dispatcher::MAX_JOBS_PAGE_SIZE;
use owlmesh_mesh::trace_context::{self, TARGET};
use owlmesh_proto::v1::{Job, JobRequest, ListJobsRequest, SubmitJobRequest};
use serde_json::json;
use tracing::Instrument;
use tracing::field::Empty;

use crate::cli::{JobCommand, JobOptions};
use crate::mesh::Mesh;

/// How often `job status --watch` refreshes.
const WATCH_PERIOD: Duration = Duration::from_millis(500);

/// Runs one `job` subcommand.
pub(crate) async fn run(options: JobOptions) -> anyhow::Result<()> {
    let json = options.client.json;
    let mesh = Mesh::connect(&options.client.directory).await?;
    match options.command {
        JobCommand::Submit { file } => submit(&mesh, &file, json).await,
        JobCommand::Status {
            id: Some(id),
            watch,
        } if watch => watch_job(&mesh, &id, json).await,
        JobCommand::Status { id: Some(id), .. } => {
            let job = get(&mesh, &id).await?;
            print_jobs(&[job], json, true)?;
            Ok(())
        }
        JobCommand::Status { id: None, .. } | JobCommand::List => {
            let jobs = list(&mesh).await?;
            print_jobs(&jobs, json, false)?;
            Ok(())
        }
        JobCommand::Pause { id } => steer(&mesh, "pause", &id, json).await,
        JobCommand::Resume { id } => steer(&mesh, "resume", &id, json).await,
        JobCommand::Cancel { id } => steer(&mesh, "cancel", &id, json).await,
        JobCommand::Expedite { id } => steer(&mesh, "expedite", &id, json).await,
    }
}

async fn submit(mesh: &Mesh, file: &Path, json: bool) -> anyhow::Result<()> {
    let spec = owlmesh_job::parse_job_file(file)?;
    let id = submit_spec(mesh, spec).await?;
    if json {
        outln!("{}", json!({ "id": id }))?;
    } else {
        outln!("submitted job {id} (watch it with `owlmesh job status {id} --watch`)")?;
    }
    Ok(())
}

/// Submits a parsed spec; returns the new job's id. One request id per call, the same on
/// every retry and failover: a submission whose answer was lost creates no second job.
pub(crate) async fn submit_spec(
    mesh: &Mesh,
    spec: owlmesh_proto::v1::JobSpec,
) -> anyhow::Result<String> {
    let request_id = uuid::Uuid::new_v4().to_string();
    // Traced as one call: the dispatcher's `rpc` span continues this one.
    let span =
        tracing::info_span!(target: TARGET, "submit_job", name = %spec.name, trace_id = Empty);
    trace_context::record_trace_id(&span);
    mesh.with_dispatcher(|mut dispatcher| {
        let request = span.in_scope(|| {
            trace_context::request(SubmitJobRequest {
                spec: Some(spec.clone()),
                request_id: request_id.clone(),
            })
        });
        async move { Ok(dispatcher.submit_job(request).await?.into_inner().id) }
    })
    .instrument(span.clone())
    .await
}

/// One job with its progress.
pub(crate) async fn get(mesh: &Mesh, id: &str) -> anyhow::Result<Job> {
    mesh.with_dispatcher(|mut dispatcher| {
        let request = JobRequest { id: id.to_owned() };
        async move { Ok(dispatcher.get_job(request).await?.into_inner()) }
    })
    .await
    .with_context(|| format!("job {id}"))
}

/// Every job, newest first, page after page. A job the dispatcher cannot read is named on
/// stderr with the reason, and the others are listed.
pub(crate) async fn list(mesh: &Mesh) -> anyhow::Result<Vec<Job>> {
    let mut jobs = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = ListJobsRequest {
            page_size: MAX_JOBS_PAGE_SIZE as u32,
            page_token: page_token.clone(),
        };
        let page = mesh
            .with_dispatcher(|mut dispatcher| {
                let request = request.clone();
                async move { Ok(dispatcher.list_jobs(request).await?.into_inner()) }
            })
            .await?;
        jobs.extend(page.jobs);
        for unreadable in page.unreadable {
            eprintln!(
                "job {} cannot be read: {}",
                unreadable.id, unreadable.reason
            );
        }
        if page.next_page_token.is_empty() {
            return Ok(jobs);
        }
        page_token = page.next_page_token;
    }
}

async fn steer(mesh: &Mesh, action: &str, id: &str, json: bool) -> anyhow::Result<()> {
    let job = mesh
        .with_dispatcher(|mut dispatcher| {
            let request = JobRequest { id: id.to_owned() };
            async move {
                let answer = match action {
                    "pause" => dispatcher.pause_job(request).await?,
                    "resume" => dispatcher.resume_job(request).await?,
                    "expedite" => dispatcher.expedite_job(request).await?,
                    _ => dispatcher.cancel_job(request).await?,
                };
                Ok(answer.into_inner())
            }
        })
        .await
        .with_context(|| format!("{action} job {id}"))?;
    print_jobs(&[job], json, true)?;
    Ok(())
}

/// Whether a job's current epoch is over (it may still have a recrawl ahead).
pub(crate) fn is_settled(job: &Job) -> bool {
    matches!(job.state.as_str(), "done" | "cancelled" | "failed")
}

async fn watch_job(mesh: &Mesh, id: &str, json: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last_done = 0;
    let mut last_at = Instant::now();
    loop {
        let job = get(mesh, id).await?;
        if json {
            outln!("{}", job_json(&job))?;
        } else {
            let rate =
                (job.done.saturating_sub(last_done)) as f64 / last_at.elapsed().as_secs_f64();
            eprint!("\r{}", progress_line(&job, rate, started.elapsed()));
        }
        if is_settled(&job) {
            if !json {
                eprintln!();
                print_jobs(&[job], false, true)?;
            }
            return Ok(());
        }
        last_done = job.done;
        last_at = Instant::now();
        tokio::time::sleep(WATCH_PERIOD).await;
    }
}

/// One terminal line: a progress bar, counts and the page rate.
pub(crate) fn progress_line(job: &Job, pages_per_second: f64, elapsed: Duration) -> String {
    let total = job.done + job.failed + job.queued + job.in_flight;
    let finished = job.done + job.failed;
    let width = 30;
    let filled = (finished * width).checked_div(total).unwrap_or(0) as usize;
    let bar = format!(
        "{}{}",
        "#".repeat(filled),
        "-".repeat(width as usize - filled)
    );
    format!(
        "[{bar}] {finished}/{total} pages  {:>7.1} pages/s  queued {}  in flight {}  items {}  documents {}  failed {}  {:>5.1}s ",
        pages_per_second,
        job.queued,
        job.in_flight,
        job.items,
        job.documents,
        job.failed,
        elapsed.as_secs_f64()
    )
}

/// A job as `job status --json` prints it.
pub(crate) fn job_json(job: &Job) -> serde_json::Value {
    let mut value = json!({
        "id": job.id,
        "name": job.name,
        "state": job.state,
        "queued": job.queued,
        "in_flight": job.in_flight,
        "done": job.done,
        "failed": job.failed,
        "items": job.items,
        "documents": job.documents,
        "epoch": job.epoch,
    });
    if job.next_epoch_at_ms > 0 {
        value["next_epoch_at"] = json!(rfc3339(job.next_epoch_at_ms));
    }
    value
}

fn rfc3339(unix_ms: i64) -> String {
    let time = std::time::UNIX_EPOCH + Duration::from_millis(unix_ms.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

fn print_jobs(jobs: &[Job], json: bool, single: bool) -> std::io::Result<()> {
    if json {
        let values: Vec<serde_json::Value> = jobs.iter().map(job_json).collect();
        match (single, values.as_slice()) {
            (true, [one]) => outln!("{one}")?,
            _ => outln!("{}", serde_json::Value::Array(values))?,
        }
        return Ok(());
    }
    outln!(
        "{:<14} {:<20} {:<10} {:>8} {:>9} {:>8} {:>7} {:>8} {:>9}",
        "ID",
        "NAME",
        "STATE",
        "QUEUED",
        "IN FLIGHT",
        "DONE",
        "FAILED",
        "ITEMS",
        "DOCUMENTS"
    )?;
    for job in jobs {
        outln!(
            "{:<14} {:<20} {:<10} {:>8} {:>9} {:>8} {:>7} {:>8} {:>9}",
            job.id,
            job.name,
            job.state,
            job.queued,
            job.in_flight,
            job.done,
            job.failed,
            job.items,
            job.documents
        )?;
    }
    Ok(())
}
