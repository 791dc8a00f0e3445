//! `site-generate`: writes the generated shop as static files for the benchmark's nginx, and
//! beside it the catalogue job aimed at the site (`job.toml`), so that the bench serves and
//! crawls the same shop, with the same job, as the demo and the tests. The defaults are the
//! benchmark's: four hosts on 127.0.0.11–14:8080, 10,000 products, pages of 15–30 KB.
//! See `owlmesh_site::StaticSite` for the layout.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use owlmesh_site::{CatalogueJob, SiteConfig, StaticSite};

/// Writes the generated shop as static files, one document root per host.
#[derive(Debug, Parser)]
#[command(name = "site-generate", version, about)]
struct Options {
    /// The folder to write into: new, empty, or an earlier site, which is replaced.
    #[arg(long)]
    out: PathBuf,
    /// Products in the shop.
    #[arg(long, default_value_t = 10_000)]
    products: usize,
    /// The hosts the web server listens on, as `host:port`, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "127.0.0.11:8080,127.0.0.12:8080,127.0.0.13:8080,127.0.0.14:8080"
    )]
    hosts: Vec<String>,
    /// The seed of every draw: another seed, another shop of the same shape.
    #[arg(long, default_value_t = 8)]
    seed: u64,
    /// Products on one listing page.
    #[arg(long, default_value_t = 40)]
    products_per_page: usize,
    /// Product categories.
    #[arg(long, default_value_t = 8)]
    categories: usize,
    /// Reviews on a product page, on average: what makes the pages weigh 15–30 KB.
    #[arg(long, default_value_t = 38)]
    reviews: usize,
    /// The job's requests in flight to one host.
    #[arg(long, default_value_t = 32)]
    concurrency_per_host: u32,
    /// The job's User-Agent.
    #[arg(long, default_value = "owlmesh-bench")]
    user_agent: String,
}

fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let hosts: Vec<String> = options
        .hosts
        .iter()
        .map(|host| host.trim().to_owned())
        .filter(|host| !host.is_empty())
        .collect();
    let config = SiteConfig {
        products: options.products,
        products_per_page: options.products_per_page,
        categories: options.categories,
        reviews: options.reviews,
        seed: options.seed,
        bad_pages: false,
        ..SiteConfig::default()
    };
    let site = StaticSite::write(&options.out, &config, &hosts)
        .with_context(|| format!("writing the site into {}", options.out.display()))?;
    // Crawled to its end with every crawler of the bench: no limits, and no documents,
    // which the others do not collect.
    let job = CatalogueJob {
        concurrency_per_host: options.concurrency_per_host,
        user_agent: options.user_agent,
        documents: false,
        limits: false,
        ..CatalogueJob::default()
    };
    let seeds: Vec<String> = hosts.iter().map(|host| format!("http://{host}/")).collect();
    let job_path = options.out.join("job.toml");
    std::fs::write(&job_path, job.toml(&seeds, &hosts))
        .with_context(|| format!("writing {}", job_path.display()))?;
    eprintln!(
        "site written: {} ({} products, {} pages, {:.0} MB over {} hosts)",
        options.out.display(),
        site.products,
        site.expected_pages,
        site.bytes as f64 / 1e6,
        hosts.len()
    );
    Ok(())
}
