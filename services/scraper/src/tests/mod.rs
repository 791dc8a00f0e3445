//! Tests of the library against the local test site, over real sockets.

mod crawl;
mod egress;
mod fetch;
mod politeness;
mod robots;

use std::time::Duration;

use owlmesh_egress::{EgressGuard, parse_network};
use owlmesh_proto::v1::JobSpec;
use owlmesh_site::{CatalogueJob, SiteConfig};
use url::Url;

use crate::fetch::{FetchConfig, Fetcher};

/// The user agent the tests crawl as.
pub(crate) const AGENT: &str = "owlmesh-test";

/// The catalogue job (the README's example, as `owlmesh_site` aims it at the site), crawling
/// from `seeds` within their hosts.
pub(crate) fn catalogue_spec(seeds: &[&str]) -> JobSpec {
    let job = CatalogueJob {
        concurrency_per_host: 16,
        user_agent: AGENT.into(),
        ..CatalogueJob::default()
    };
    let seeds: Vec<String> = seeds.iter().map(|seed| (*seed).to_owned()).collect();
    owlmesh_job::parse_job_toml(&job.toml(&seeds, &[]), "the catalogue job").expect("valid job")
}

/// A site small enough to crawl whole in a test.
pub(crate) fn small_site() -> SiteConfig {
    SiteConfig {
        products: 60,
        huge_page_bytes: 10 * 1024 * 1024,
        slow_delay: Duration::from_millis(50),
        retry_after: Duration::from_secs(1),
        ..SiteConfig::default()
    }
}

/// A fetcher with a 1 MiB cap and short timeouts, so bad pages fail fast, allowed into
/// loopback where the test sites are.
pub(crate) fn fetcher() -> Fetcher {
    Fetcher::new(FetchConfig {
        user_agent: AGENT.into(),
        read_timeout: Duration::from_secs(5),
        max_body_bytes: 1024 * 1024,
        ..test_fetch_config()
    })
    .expect("fetcher")
}

/// The default fetch settings, with loopback allowed (`--allow-network 127.0.0.0/8`).
pub(crate) fn test_fetch_config() -> FetchConfig {
    FetchConfig {
        egress: allowing("127.0.0.0/8"),
        ..FetchConfig::default()
    }
}

/// The guard of a scraper run with `--allow-network network`.
pub(crate) fn allowing(network: &str) -> EgressGuard {
    EgressGuard::allowing([parse_network(network).expect("a network")])
}

pub(crate) fn url(text: &str) -> Url {
    Url::parse(text).expect("test url")
}
