//! Frontier throughput: admit 10,000 seeds over 100 hosts, then claim and complete them in
//! batches of 256, on SQLite (and PostgreSQL when `OWLMESH_TEST_POSTGRES_URL` is set).
//! Run with `cargo bench -p owlmesh-dispatcher --bench frontier`.

use std::time::Instant;

use owlmesh_dispatcher::frontier::{
    ClaimRequest, Completion, Frontier, FrontierConfig, HostFilter, NewJob, UrlKey, now_ms,
};
use owlmesh_job::canonicalize;
use owlmesh_proto::v1::{JobSpec, OutcomeStatus};

const URLS: usize = 10_000;
const BATCH: usize = 256;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let folder = tempfile::tempdir()?;
    let sqlite = format!(
        "sqlite://{}",
        folder.path().join("frontier.sqlite3").display()
    );
    run("sqlite", &sqlite).await?;
    match std::env::var("OWLMESH_TEST_POSTGRES_URL") {
        Ok(url) => run("postgres", &url).await?,
        Err(_) => println!("postgres: skipped (set OWLMESH_TEST_POSTGRES_URL)"),
    }
    Ok(())
}

async fn run(backend: &str, url: &str) -> anyhow::Result<()> {
    let frontier = Frontier::connect(&FrontierConfig::new(url)).await?;
    let seeds: Vec<UrlKey> = (0..URLS)
        .map(|n| {
            let url = canonicalize(&format!("http://host-{}.bench/{n}-{}", n % 100, now_ms()))?;
            Ok(UrlKey {
                host_key: url.host_key().into(),
                fingerprint: url.fingerprint(),
                url: url.as_str().to_owned(),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let spec = JobSpec {
        name: "bench".into(),
        seeds: vec!["http://host-0.bench/".into()],
        ..Default::default()
    };
    let started = Instant::now();
    let job = frontier
        .create_job(NewJob {
            spec: &spec,
            seeds: &seeds,
            now_ms: now_ms(),
            request_id: None,
        })
        .await?
        .job;
    let admitted = started.elapsed();
    let started = Instant::now();
    let mut settled = 0;
    loop {
        let request = ClaimRequest {
            limit: BATCH,
            per_host: None,
            hosts: HostFilter::All,
            owner: "bench",
            now_ms: now_ms(),
            lease_ms: 60_000,
        };
        let claimed = frontier.claim(&request).await?;
        if claimed.is_empty() {
            break;
        }
        let completions: Vec<Completion> = claimed
            .iter()
            .map(|claimed| Completion {
                lease_id: claimed.lease_id,
                owner: claimed.owner.clone(),
                job_id: job.id.clone(),
                status: OutcomeStatus::Done,
                error: String::new(),
                retry_after_ms: 0,
                fetched_at_ms: now_ms(),
                items: 1,
                documents: 0,
                links: Vec::new(),
                redirects: Vec::new(),
            })
            .collect();
        settled += frontier.complete(&completions, now_ms()).await?.applied;
    }
    let elapsed = started.elapsed();
    assert_eq!(settled, URLS, "every URL claimed and completed once");
    println!(
        "{backend}: admitted {URLS} seeds in {admitted:.2?}; claimed and completed them in \
         batches of {BATCH} in {elapsed:.2?} ({:.0} URLs/s)",
        URLS as f64 / elapsed.as_secs_f64()
    );
    frontier.close().await;
    Ok(())
}
