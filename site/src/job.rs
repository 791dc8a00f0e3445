//! The one catalogue job: `docs/examples/catalogue.toml`, the job file the README points
//! at, aimed at a site's hosts with the few settings a crawl of it chooses. The demo, the
//! end-to-end tests, the scraper's tests and the benchmark all crawl with it, so the product
//! handler and its selectors are written once, in the example, and every crawl of the site
//! proves that the example works.

use toml::{Table, Value};

/// The example job file, as the README and `docs/job-file.md` show it.
pub const CATALOGUE_EXAMPLE: &str = include_str!("../../docs/examples/catalogue.toml");

/// The name of the example's handler for product pages: the items a crawl of the site
/// yields are this handler's.
pub const PRODUCT_HANDLER: &str = "product";

/// The catalogue job with the settings a crawl of the site varies; everything else (the
/// follow rules, the product handler, the document types, robots.txt obeyed) is the
/// example's. The defaults are a modest test crawl.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueJob {
    /// The job's name.
    pub name: String,
    /// Retries for transient failures.
    pub max_retries: u32,
    /// Requests in flight to one host.
    pub concurrency_per_host: u32,
    /// Pause between two requests to one host.
    pub delay_ms: u64,
    /// User-Agent, and the agent robots.txt is read for.
    pub user_agent: String,
    /// Whether linked PDFs are reported as documents (the example's `[documents]`).
    pub documents: bool,
    /// Whether the example's `max_depth` and `max_pages` apply; without them a crawl goes as
    /// deep and as far as the site does.
    pub limits: bool,
}

impl Default for CatalogueJob {
    fn default() -> Self {
        Self {
            name: "catalogue".to_owned(),
            max_retries: 3,
            concurrency_per_host: 8,
            delay_ms: 0,
            user_agent: "owlmesh-test".to_owned(),
            documents: true,
            limits: true,
        }
    }
}

impl CatalogueJob {
    /// The job file crawling from `seeds` within `hosts` (`host:port`; none for the seeds'
    /// hosts).
    ///
    /// It never has the example's recrawl schedule: a generated site lives only as long as
    /// its process, on ports that change every run, so a later epoch could only fail.
    pub fn toml(&self, seeds: &[String], hosts: &[String]) -> String {
        let mut job: Table = CATALOGUE_EXAMPLE
            .parse()
            .expect("docs/examples/catalogue.toml is valid TOML");
        job.insert("name".into(), Value::from(self.name.as_str()));
        job.insert("seeds".into(), Value::from(seeds.to_vec()));
        job.remove("allowed_hosts");
        if !hosts.is_empty() {
            job.insert("allowed_hosts".into(), Value::from(hosts.to_vec()));
        }
        job.insert("max_retries".into(), Value::from(self.max_retries));
        job.remove("recrawl");
        if !self.documents {
            job.remove("documents");
        }
        if !self.limits {
            job.remove("max_depth");
            job.remove("max_pages");
        }
        let politeness = job
            .entry("politeness")
            .or_insert_with(|| Value::Table(Table::new()))
            .as_table_mut()
            .expect("[politeness] is a table");
        politeness.insert(
            "concurrency_per_host".into(),
            Value::from(self.concurrency_per_host),
        );
        let delay_ms = i64::try_from(self.delay_ms).unwrap_or(i64::MAX);
        politeness.insert("delay_ms".into(), Value::from(delay_ms));
        politeness.insert("user_agent".into(), Value::from(self.user_agent.as_str()));
        toml::to_string(&job).expect("a TOML table serializes")
    }
}
