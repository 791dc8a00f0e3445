//! Crawl benchmark: the whole mesh (directory, 2 dispatchers, 3 scrapers, 2 archivers, every
//! gRPC hop and SQLite) crawls a generated local site of 10,000 product pages, and prints
//! pages/s, items/s, the p50/p99 time from dispatch to archive, and each process's peak
//! memory.
//!
//! Run with `cargo build --release -p owlmesh && cargo bench -p owlmesh-tests --bench crawl`
//! (`CRAWL_PAGES=N` changes the site's size; `CRAWL_AUTH=off` runs the mesh with
//! `--insecure-no-auth`, to measure what checking tokens costs; `CRAWL_DURABILITY=power-loss`
//! or `process-crash` sets the dispatchers' and archivers' `--durability`, to measure what
//! flushing to disk costs; `CRAWL_TLS=on` runs every process and call over mutual TLS, to
//! measure what TLS costs; `CRAWL_DATABASE=postgres://…` puts the frontier and the archive
//! on that PostgreSQL server instead of SQLite, in a database the bench makes for the run
//! and drops after it, the frontier in its `public` schema and each archiver in its own
//! schema, as `owlmesh up --database --archive-database` does). `CRAWL_TRACE_RATIO=R` (e.g. 0.1, or 1 for
//! every page) turns tracing on: every process exports its spans over OTLP to a test
//! collector in this process, sampling a fraction R of the URLs.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use owlmesh_mesh::telemetry::quantile_of;
use owlmesh_proto::v1::telemetry_client::TelemetryClient;
use owlmesh_proto::v1::{GetStatsRequest, Histogram};
use owlmesh_site::{CatalogueJob, Site, SiteConfig};
use support::OwlmeshProcess;
use support::collector::TestCollector;
use support::mesh::{TestMesh, Topology};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let pages: usize = std::env::var("CRAWL_PAGES")
        .ok()
        .and_then(|pages| pages.parse().ok())
        .unwrap_or(10_000);
    let site = Site::start(SiteConfig {
        products: pages,
        products_per_page: 50,
        ..SiteConfig::spread_over(4)
    })
    .await?;
    let topology = Topology {
        dispatchers: 2,
        scrapers: 3,
        archivers: 2,
    };
    let collector = match std::env::var("CRAWL_TRACE_RATIO") {
        Ok(ratio) if !ratio.is_empty() => Some((TestCollector::start().await?, ratio)),
        _ => None,
    };
    let endpoint = collector
        .as_ref()
        .map(|(collector, _)| collector.endpoint());
    let mut environment: Vec<(&str, &str)> = match (&collector, &endpoint) {
        (Some((_, ratio)), Some(endpoint)) => vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", ratio.as_str()),
        ],
        _ => Vec::new(),
    };
    // Tokens are checked on every call, as by default; CRAWL_AUTH=off measures without.
    let auth_off = std::env::var("CRAWL_AUTH").is_ok_and(|value| value == "off");
    if auth_off {
        environment.push(("OWLMESH_INSECURE_NO_AUTH", "true"));
    }
    // The services' own default unless CRAWL_DURABILITY names a level.
    let durability = std::env::var("CRAWL_DURABILITY").unwrap_or_default();
    if !durability.is_empty() {
        environment.push(("OWLMESH_DURABILITY", durability.as_str()));
    }
    // SQLite unless CRAWL_DATABASE names a PostgreSQL server.
    let database = match std::env::var("CRAWL_DATABASE") {
        Ok(server) if !server.is_empty() => Some(BenchDatabase::create(&server).await?),
        _ => None,
    };
    // The dispatchers read the frontier's URL from the environment; the archivers, each
    // with a URL of its own, are started below.
    let started_by_mesh = match &database {
        Some(database) => {
            environment.push(("OWLMESH_DATABASE", database.url.as_str()));
            Topology {
                archivers: 0,
                ..topology
            }
        }
        None => topology,
    };
    // Plain HTTP/2 unless CRAWL_TLS=on.
    let tls = std::env::var("CRAWL_TLS").is_ok_and(|value| value == "on");
    let mut mesh = match tls {
        true => TestMesh::start_with_tls(started_by_mesh, &environment).await?,
        false => TestMesh::start_with_environment(started_by_mesh, &[], &[], &environment).await?,
    };
    if let Some(database) = &database {
        for index in 0..topology.archivers {
            let archiver = database.start_archiver(&mesh, index).await?;
            mesh.archivers.push(archiver);
        }
        mesh.wait_registered(topology.dispatchers + topology.scrapers + topology.archivers)
            .await?;
    }
    let job = CatalogueJob {
        max_retries: 2,
        concurrency_per_host: 32,
        ..CatalogueJob::default()
    };
    let job = job.toml(&site.seeds(), &site.hosts());
    println!("crawl benchmark: {pages} products over 4 hosts; the mesh is {topology:?}");
    match &collector {
        Some((_, ratio)) => {
            println!("tracing on: sampling ratio {ratio}, OTLP to a test collector")
        }
        None => println!("tracing off"),
    }
    match auth_off {
        true => println!("tokens: not checked (CRAWL_AUTH=off)"),
        false => println!("tokens: checked on every call"),
    }
    match tls {
        true => println!("tls: mutual, on every call (CRAWL_TLS=on)"),
        false => println!("tls: off, plain HTTP/2"),
    }
    match durability.as_str() {
        "" => println!("durability: the services' default"),
        level => println!("durability: {level} (CRAWL_DURABILITY)"),
    }
    match &database {
        Some(database) => println!(
            "database: PostgreSQL {}, frontier in public, archivers in archive_N (CRAWL_DATABASE)",
            database.name
        ),
        None => println!("database: SQLite, a frontier file and a file per archiver"),
    }

    let started = Instant::now();
    let id = mesh.submit(&job).await?;
    let status = mesh.wait_done(&id, Duration::from_secs(1800)).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let done = status["done"].as_u64().unwrap_or_default();
    let items = status["items"].as_u64().unwrap_or_default();
    println!("crawled {done} pages, {items} items in {elapsed:.2} s");
    println!(
        "pages/s                       {:>10.0}",
        done as f64 / elapsed
    );
    println!(
        "items/s                       {:>10.0}",
        items as f64 / elapsed
    );
    let latency = dispatch_to_archive(&mesh).await?;
    for (label, quantile) in [("p50", 0.5), ("p99", 0.99)] {
        let bound = quantile_of(&latency, quantile).unwrap_or(f64::NAN);
        println!(
            "dispatch to archive {label}       ≤ {:>7.0} ms",
            bound * 1000.0
        );
    }
    println!("peak memory (VmHWM):");
    let mut total = 0;
    for (name, process) in processes(&mesh) {
        let peak = peak_memory_kib(process).unwrap_or_default();
        total += peak;
        println!("  {name:<14} {:>8.1} MiB", peak as f64 / 1024.0);
    }
    println!("  {:<14} {:>8.1} MiB", "all", total as f64 / 1024.0);
    if let Some((collector, _)) = &collector {
        println!(
            "spans received so far        {:>10}",
            collector.spans().len()
        );
    }
    site.stop().await;
    // Every session ends with its process, before the database goes.
    drop(mesh);
    if let Some(database) = database {
        database.drop_database().await?;
    }
    Ok(())
}

/// The PostgreSQL database of one run, on the server `CRAWL_DATABASE` names.
struct BenchDatabase {
    /// The server's URL as given, for making and dropping the database.
    server: String,
    /// The database's name.
    name: String,
    /// The database's URL.
    url: String,
}

impl BenchDatabase {
    /// Makes a database of its own for this run.
    async fn create(server: &str) -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos();
        let name = format!("owlmesh_bench_{nanos}");
        run_on(server, &format!("CREATE DATABASE {name}")).await?;
        let mut url = url::Url::parse(server)?;
        url.set_path(&name);
        Ok(Self {
            server: server.to_owned(),
            name,
            url: url.to_string(),
        })
    }

    /// Starts archiver `index` with its shard in schema `archive_<index>`, as `owlmesh up`
    /// places it.
    async fn start_archiver(
        &self,
        mesh: &TestMesh,
        index: usize,
    ) -> anyhow::Result<OwlmeshProcess> {
        let separator = if self.url.contains('?') { '&' } else { '?' };
        let shard = format!(
            "{}{separator}options=-c%20search_path%3Darchive_{index}",
            self.url
        );
        let data = mesh.data_dir.path().display().to_string();
        let directory = mesh.directory_address();
        let id = format!("archiver-{index}");
        let args = [
            "archiver",
            "--listen",
            "127.0.0.1:0",
            "--directory",
            &directory,
            "--data-dir",
            &data,
            "--id",
            &id,
            "--database",
            &shard,
        ];
        OwlmeshProcess::start_with_environment(&args, &mesh.environment).await
    }

    /// Drops the database and every session still open on it.
    async fn drop_database(self) -> anyhow::Result<()> {
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        run_on(&self.server, &statement).await
    }
}

/// Runs one statement on the server.
async fn run_on(server: &str, statement: &str) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    let mut connection = sqlx::PgConnection::connect(server).await?;
    sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&mut connection)
        .await?;
    connection.close().await?;
    Ok(())
}

/// The scrapers' dispatch-to-archive histograms, added together.
async fn dispatch_to_archive(mesh: &TestMesh) -> anyhow::Result<Histogram> {
    let mut merged = Histogram::default();
    for scraper in &mesh.scrapers {
        let mut client = TelemetryClient::new(mesh.channel(scraper.address).await?);
        let stats = client.get_stats(GetStatsRequest {}).await?.into_inner();
        let Some(histogram) = stats
            .histograms
            .into_iter()
            .find(|h| h.name == "dispatch_to_archive_seconds")
        else {
            continue;
        };
        if merged.bounds.is_empty() {
            merged = histogram;
            continue;
        }
        for (total, count) in merged
            .cumulative_counts
            .iter_mut()
            .zip(&histogram.cumulative_counts)
        {
            *total += count;
        }
        merged.count += histogram.count;
        merged.sum += histogram.sum;
    }
    Ok(merged)
}

fn processes(mesh: &TestMesh) -> Vec<(String, &OwlmeshProcess)> {
    let mut all = vec![("directory".to_owned(), &mesh.directory)];
    for (kind, group) in [
        ("dispatcher", &mesh.dispatchers),
        ("scraper", &mesh.scrapers),
        ("archiver", &mesh.archivers),
    ] {
        all.extend(
            group
                .iter()
                .enumerate()
                .map(|(i, p)| (format!("{kind}-{i}"), p)),
        );
    }
    all
}

/// The process's peak resident set size, from /proc.
fn peak_memory_kib(process: &OwlmeshProcess) -> Option<u64> {
    let pid = process.child.id()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
