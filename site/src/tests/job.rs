//! The one catalogue job is the README's example, aimed at the site, and a valid job.

use owlmesh_job::parse_job_toml;

use crate::{CATALOGUE_EXAMPLE, CatalogueJob, PRODUCT_HANDLER};

fn seeds() -> Vec<String> {
    vec![
        "http://127.0.0.2:8081/".into(),
        "http://127.0.0.3:8082/".into(),
    ]
}

fn hosts() -> Vec<String> {
    vec!["127.0.0.2:8081".into(), "127.0.0.3:8082".into()]
}

#[test]
fn the_job_is_the_example_aimed_at_the_site() {
    let example = parse_job_toml(CATALOGUE_EXAMPLE, "catalogue.toml").expect("valid");
    let job = CatalogueJob {
        name: "shop".into(),
        max_retries: 2,
        concurrency_per_host: 5,
        delay_ms: 40,
        user_agent: "tester".into(),
        ..CatalogueJob::default()
    };
    let spec = parse_job_toml(&job.toml(&seeds(), &hosts()), "job.toml").expect("valid");
    assert_eq!(spec.name, "shop");
    assert_eq!(spec.seeds, seeds());
    assert_eq!(spec.allowed_hosts, hosts());
    assert_eq!(spec.max_retries, 2);
    let politeness = spec.politeness.clone().unwrap();
    assert_eq!(politeness.obey_robots, Some(true));
    assert_eq!(
        (politeness.concurrency_per_host, politeness.delay_ms),
        (5, 40)
    );
    assert_eq!(politeness.user_agent, "tester");
    // Rules, handlers, documents and limits are the example's.
    assert_eq!(spec.follow, example.follow);
    assert_eq!(spec.handlers, example.handlers);
    assert_eq!(spec.handlers[0].name, PRODUCT_HANDLER);
    assert_eq!(spec.documents, example.documents);
    assert_eq!(
        (spec.max_depth, spec.max_pages),
        (example.max_depth, example.max_pages)
    );
    // No recrawl: the example's schedule would outlive the site.
    assert_eq!(example.recrawl.as_ref().unwrap().every, "24h");
    assert_eq!(spec.recrawl, Some(Default::default()));
}

#[test]
fn documents_and_limits_can_be_left_out_and_hosts_default_to_the_seeds() {
    let job = CatalogueJob {
        documents: false,
        limits: false,
        ..CatalogueJob::default()
    };
    let spec = parse_job_toml(&job.toml(&seeds(), &[]), "job.toml").expect("valid");
    assert_eq!(spec.allowed_hosts, hosts());
    assert!(spec.documents.unwrap().types.is_empty());
    assert_eq!((spec.max_depth, spec.max_pages), (0, 0));
}
