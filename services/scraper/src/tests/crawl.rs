//! A whole crawl of a two-host test site with every piece together (robots.txt, host gates,
//! the fetcher and the compiled job), compared with the site's known truth.

use std::collections::{BTreeSet, HashSet, VecDeque};

use owlmesh_job::HostKey;
use owlmesh_proto::v1::field_value;
use owlmesh_site::{ExpectedProduct, Site, SiteConfig, paths};
use url::Url;

use super::{AGENT, catalogue_spec, fetcher, small_site, url};
use owlmesh_job::CompiledJob;

use crate::extract::{self, Extraction};
use crate::fetch::FetchOptions;
use crate::politeness::{HostGates, JobPoliteness};
use crate::robots::{RobotsCache, RobotsConfig, RobotsVerdict};

/// What the crawl found.
#[derive(Default)]
struct Findings {
    products: BTreeSet<ExpectedProduct>,
    documents: BTreeSet<(String, String)>,
    disallowed: BTreeSet<String>,
}

#[tokio::test]
async fn a_polite_crawl_finds_exactly_what_the_site_holds() {
    let config = SiteConfig {
        listen: SiteConfig::spread_over(2).listen,
        products_per_page: 5,
        ..small_site()
    };
    let site = Site::start(config).await.expect("site");
    let seeds = site.seeds();
    let spec = catalogue_spec(&seeds.iter().map(String::as_str).collect::<Vec<_>>());
    let findings = crawl(
        &CompiledJob::compile(&spec).expect("job"),
        &JobPoliteness::from_spec(&spec),
        &seeds,
    )
    .await;

    let expected: BTreeSet<ExpectedProduct> = site.expected_products().into_iter().collect();
    assert_eq!(findings.products, expected);
    let documents: BTreeSet<(String, String)> = site
        .expected_documents()
        .into_iter()
        .map(|document| (document.url, document.linked_from))
        .collect();
    assert_eq!(findings.documents, documents);
    assert_eq!(findings.disallowed, site.disallowed_urls());

    let requested: BTreeSet<String> = site
        .requests()
        .iter()
        .filter(|record| record.path != paths::ROBOTS)
        .map(|record| record.url())
        .collect();
    // The job does not follow `.pdf` links; it reports them as documents instead.
    let fetchable: BTreeSet<String> = site
        .reachable_urls()
        .into_iter()
        .filter(|u| !u.ends_with(".pdf"))
        .collect();
    assert_eq!(requested, fetchable);
    for host in 0..2 {
        assert_eq!(site.request_count(&site.host_url(host, paths::ROBOTS)), 1);
    }
    assert!(
        site.requests()
            .iter()
            .all(|record| record.user_agent.as_deref() == Some(AGENT))
    );
}

/// A breadth-first crawl from `seeds`, one request at a time.
async fn crawl(job: &CompiledJob, politeness: &JobPoliteness, seeds: &[String]) -> Findings {
    let fetcher = fetcher();
    let robots = RobotsCache::new(fetcher.clone(), RobotsConfig::default());
    let gates = HostGates::new();
    let options = FetchOptions {
        user_agent: Some(&politeness.user_agent),
        ..FetchOptions::default()
    };
    let mut findings = Findings::default();
    let mut seen: HashSet<String> = seeds.iter().cloned().collect();
    let mut queue: VecDeque<(Url, String)> = seeds
        .iter()
        .map(|seed| (url(seed), String::new()))
        .collect();
    while let Some((target, linked_from)) = queue.pop_front() {
        let RobotsVerdict::Allowed { crawl_delay } =
            robots.check(&target, &politeness.user_agent).await
        else {
            findings.disallowed.insert(target.to_string());
            continue;
        };
        let host = HostKey::of(&target).map(String::from).expect("host");
        let _permit = gates
            .acquire(&host, &politeness.host_policy(crawl_delay))
            .await;
        let Ok(fetched) = fetcher.fetch_with(&target, &options).await else {
            continue;
        };
        if !fetched.is_html() {
            if job
                .documents()
                .of_content_type(fetched.content_type.as_deref().unwrap_or_default())
                .is_some()
            {
                findings
                    .documents
                    .insert((fetched.final_url.to_string(), linked_from));
            }
            continue;
        }
        let extraction = extract::extract(job, &fetched.final_url, &fetched.text().expect("html"));
        record(&mut findings, &fetched.final_url, &extraction);
        for link in extraction.links {
            if seen.insert(link.clone()) {
                queue.push_back((url(&link), fetched.final_url.to_string()));
            }
        }
    }
    findings
}

fn record(findings: &mut Findings, page: &Url, extraction: &Extraction) {
    for document in &extraction.documents {
        findings
            .documents
            .insert((document.url.clone(), document.found_on.clone()));
    }
    if extraction.handler.as_deref() != Some("product") {
        return;
    }
    let field = |name: &str| match extraction
        .fields
        .get(name)
        .and_then(|value| value.value.clone())
    {
        Some(field_value::Value::Text(text)) => text,
        other => panic!("{name} on {page}: {other:?}"),
    };
    findings.products.insert(ExpectedProduct {
        url: page.to_string(),
        slug: field("slug"),
        title: field("title"),
        price: field("price"),
        sku: field("sku"),
    });
}
