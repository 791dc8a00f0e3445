//! Tests of the library against the local test site, over real sockets.

mod crawl;
mod fetch;
mod politeness;
mod robots;

use std::time::Duration;

use owlmesh_proto::v1::{DocumentRules, FieldRule, FollowRules, Handler, JobSpec, Politeness};
use owlmesh_tests::SiteConfig;
use url::Url;

use crate::fetch::{FetchConfig, Fetcher};

/// The user agent the tests crawl as.
pub(crate) const AGENT: &str = "owlmesh-test";

/// The job of `docs/examples/catalogue.toml`, built by hand, crawling from `seeds`.
pub(crate) fn catalogue_spec(seeds: &[&str]) -> JobSpec {
    let field = |selector: &str, attr: &str| FieldRule {
        selector: selector.into(),
        attr: attr.into(),
        ..FieldRule::default()
    };
    JobSpec {
        name: "catalogue".into(),
        seeds: seeds.iter().map(|seed| (*seed).to_owned()).collect(),
        max_depth: 50,
        max_pages: 100_000,
        follow: Some(FollowRules {
            selector: "a[href]".into(),
            allow: Vec::new(),
            deny: vec![r"\.pdf$".into()],
        }),
        handlers: vec![Handler {
            name: "product".into(),
            pattern: r"^/product/(?P<slug>[^/]+)\.html$".into(),
            fields: [
                ("title".to_owned(), field("h1", "")),
                ("price".to_owned(), field("span.price", "")),
                ("sku".to_owned(), field("div.product", "data-sku")),
            ]
            .into(),
        }],
        documents: Some(DocumentRules {
            types: vec!["pdf".into()],
        }),
        politeness: Some(Politeness {
            obey_robots: Some(true),
            delay_ms: 0,
            concurrency_per_host: 16,
            user_agent: AGENT.into(),
        }),
        ..JobSpec::default()
    }
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

/// A fetcher with a 1 MiB cap and short timeouts, so bad pages fail fast.
pub(crate) fn fetcher() -> Fetcher {
    Fetcher::new(FetchConfig {
        user_agent: AGENT.into(),
        read_timeout: Duration::from_secs(5),
        max_body_bytes: 1024 * 1024,
        ..FetchConfig::default()
    })
    .expect("fetcher")
}

pub(crate) fn url(text: &str) -> Url {
    Url::parse(text).expect("test url")
}
