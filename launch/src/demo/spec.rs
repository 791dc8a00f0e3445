//! The demo crawl: the job `owlmesh up --demo` submits, the same as
//! `docs/examples/catalogue.toml` but aimed at the demo shop's hosts.

use std::collections::HashMap;

use owlmesh_proto::v1::{DocumentRules, FieldRule, FollowRules, Handler, JobSpec, Politeness};

use super::catalogue::Catalogue;

/// The demo job's name; an unfinished job of this name is a leftover of an earlier demo.
pub(crate) const DEMO_JOB_NAME: &str = "owlmesh-demo";
/// The handler whose items are the shop's products.
pub(crate) const PRODUCT_HANDLER: &str = "product";

/// The demo job for the shop `catalogue` describes.
///
/// Unlike the example file it has no recrawl schedule: the shop lives only as long as this
/// `owlmesh up`, on ports that change every run, so a later epoch could only fail.
pub(crate) fn job_spec(catalogue: &Catalogue) -> JobSpec {
    JobSpec {
        name: DEMO_JOB_NAME.into(),
        seeds: catalogue.seeds(),
        allowed_hosts: catalogue.authorities(),
        max_depth: 50,
        max_pages: 100_000,
        follow: Some(FollowRules {
            selector: "a[href]".into(),
            allow: Vec::new(),
            deny: vec![r"\.pdf$".into()],
        }),
        handlers: vec![product_handler()],
        documents: Some(DocumentRules {
            types: vec!["pdf".into()],
        }),
        politeness: Some(Politeness {
            obey_robots: Some(true),
            delay_ms: 0,
            concurrency_per_host: 16,
            user_agent: "owlmesh-demo".into(),
        }),
        ..Default::default()
    }
}

fn product_handler() -> Handler {
    let text = |selector: &str| FieldRule {
        selector: selector.into(),
        ..Default::default()
    };
    let fields = HashMap::from([
        ("title".to_owned(), text("h1")),
        ("price".to_owned(), text("span.price")),
        (
            "sku".to_owned(),
            FieldRule {
                selector: "div.product".into(),
                attr: "data-sku".into(),
                ..Default::default()
            },
        ),
    ]);
    Handler {
        name: PRODUCT_HANDLER.into(),
        pattern: r"^/product/(?P<slug>[^/]+)\.html$".into(),
        fields,
    }
}
