//! The catalogue job for the test site, written as a person would write its TOML file.

/// The settings the tests vary; everything else is the catalogue job of
/// docs/examples/catalogue.toml: the product handler (title, price, sku and the slug
/// capture), PDFs reported as documents and never followed, robots.txt obeyed.
#[derive(Debug, Clone)]
pub struct CatalogueJob {
    pub max_retries: u32,
    pub concurrency_per_host: u32,
    pub delay_ms: u64,
    pub user_agent: &'static str,
}

impl Default for CatalogueJob {
    fn default() -> Self {
        Self {
            max_retries: 3,
            concurrency_per_host: 8,
            delay_ms: 0,
            user_agent: "owlmesh-test",
        }
    }
}

impl CatalogueJob {
    /// The job file crawling `seeds` within `hosts`.
    pub fn toml(&self, seeds: &[String], hosts: &[String]) -> String {
        format!(
            r#"name = "catalogue"
seeds = [{seeds}]
allowed_hosts = [{hosts}]
max_retries = {max_retries}

[politeness]
obey_robots = true
delay_ms = {delay_ms}
concurrency_per_host = {concurrency}
user_agent = "{user_agent}"

[follow]
selector = "a[href]"
deny = ['\.pdf$']

[documents]
types = ["pdf"]

[[handlers]]
name = "product"
pattern = '^/product/(?P<slug>[^/]+)\.html$'
[handlers.fields]
title = "h1"
price = "span.price"
sku = {{ selector = "div.product", attr = "data-sku" }}
"#,
            seeds = quoted(seeds),
            hosts = quoted(hosts),
            max_retries = self.max_retries,
            delay_ms = self.delay_ms,
            concurrency = self.concurrency_per_host,
            user_agent = self.user_agent,
        )
    }
}

fn quoted(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|value| format!("{value:?}")).collect();
    quoted.join(", ")
}
