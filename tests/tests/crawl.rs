//! The crawl pipeline end to end: real directory, dispatcher, scraper and archiver processes
//! crawl the local test website; the archive must hold the known catalogue exactly once.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use owlmesh_site::{CatalogueJob, Site, SiteConfig, paths};
use support::mesh::{TestMesh, Topology};

/// The catalogue job for the test site.
fn job_file(site: &Site) -> String {
    CatalogueJob::default().toml(&site.seeds(), &site.hosts())
}

fn site_config() -> SiteConfig {
    SiteConfig {
        slow_delay: Duration::from_millis(300),
        ..SiteConfig::spread_over(2)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_archives_the_catalogue_exactly_once_and_politely() {
    let site = Site::start(site_config()).await.unwrap();
    let topology = Topology {
        dispatchers: 2,
        scrapers: 2,
        archivers: 2,
    };
    let mesh = TestMesh::start(topology, &[]).await.unwrap();
    let id = mesh.submit(&job_file(&site)).await.unwrap();
    let status = mesh.wait_done(&id, Duration::from_secs(120)).await.unwrap();

    // Every product exactly once, with the right fields.
    let expected: HashMap<String, _> = site
        .expected_products()
        .into_iter()
        .map(|product| (product.url.clone(), product))
        .collect();
    let items = mesh.export(&id, false).await.unwrap();
    let urls: BTreeSet<&str> = items
        .iter()
        .filter_map(|item| item["url"].as_str())
        .collect();
    assert_eq!(urls.len(), items.len(), "an item was archived twice");
    assert_eq!(items.len(), expected.len(), "items: {}", items.len());
    for item in &items {
        let url = item["url"].as_str().unwrap();
        let product = expected
            .get(url)
            .unwrap_or_else(|| panic!("unexpected item {url}"));
        assert_eq!(item["handler"], "product");
        assert_eq!(item["fields"]["title"], product.title.as_str(), "{url}");
        assert_eq!(item["fields"]["price"], product.price.as_str(), "{url}");
        assert_eq!(item["fields"]["sku"], product.sku.as_str(), "{url}");
        assert_eq!(item["fields"]["slug"], product.slug.as_str(), "{url}");
        assert!(item["fetched_at"].is_string());
    }
    assert_eq!(status["items"], expected.len() as u64);

    // The documents, found by extension, each once.
    let documents = mesh.export(&id, true).await.unwrap();
    let found: BTreeSet<String> = documents
        .iter()
        .map(|document| document["url"].as_str().unwrap().to_owned())
        .collect();
    let wanted: BTreeSet<String> = site
        .expected_documents()
        .into_iter()
        .filter(|document| document.by_extension)
        .map(|document| document.url)
        .collect();
    assert!(
        wanted.is_subset(&found),
        "missing documents: {:?}",
        wanted.difference(&found).collect::<Vec<_>>()
    );

    // Politeness: robots.txt forbade /private/; PDFs were denied by the follow rules.
    let requests = site.requests();
    assert!(
        requests.iter().all(|r| !r.path.starts_with(paths::PRIVATE)),
        "a disallowed page was fetched"
    );
    assert!(
        requests.iter().all(|r| !r.path.ends_with(".pdf")),
        "a denied link was followed"
    );
    assert!(
        requests
            .iter()
            .all(|r| r.user_agent.as_deref() == Some("owlmesh-test"))
    );
    let reachable = site.reachable_urls();
    for request in &requests {
        let url = request.url();
        let known =
            reachable.contains(&url) || request.path == paths::ROBOTS || url.contains(paths::SLOW);
        assert!(known, "requested {url}, which no allowed link leads to");
    }
    for url in site.reachable_urls() {
        let count = site.request_count(&url);
        assert!(count <= 4, "{url} fetched {count} times");
    }

    // Failures carry their reasons; nothing outside the allowed hosts was ever dispatched.
    let outcomes = mesh.events(&id, "outcome").await.unwrap();
    let reason = |path: &str| {
        outcomes
            .iter()
            .filter(|event| event.url.ends_with(path))
            .map(|event| (event.attributes["status"].clone(), event.message.clone()))
            .collect::<Vec<_>>()
    };
    let missing = reason(paths::MISSING);
    assert!(
        missing
            .iter()
            .any(|(status, message)| status == "OUTCOME_STATUS_FAILED" && message.contains("404")),
        "{missing:?}"
    );
    let looped = reason(paths::LOOP_A);
    assert!(
        looped.iter().any(|(_, message)| message.contains("loop")),
        "{looped:?}"
    );
    let flaky = reason(paths::FLAKY);
    assert!(
        flaky
            .iter()
            .any(|(status, _)| status == "OUTCOME_STATUS_TRANSIENT"),
        "{flaky:?}"
    );
    // Pages done are archived as pages, and counted in one `outcomes` event per batch: the
    // flaky page's second answer (200) made it one of them.
    let retried = outcomes
        .iter()
        .find(|event| {
            event.url.ends_with(paths::FLAKY)
                && event.attributes["status"] == "OUTCOME_STATUS_TRANSIENT"
        })
        .expect("the 500 is a transient outcome");
    assert!(
        site.request_count(&retried.url) >= 2,
        "500 then 200 is fetched again"
    );
    let done_events = mesh.events(&id, "outcomes").await.unwrap();
    let done_pages: u64 = done_events
        .iter()
        .map(|event| event.attributes["pages"].parse::<u64>().unwrap())
        .sum();
    assert_eq!(
        done_pages,
        status["done"].as_u64().unwrap(),
        "{done_events:?}"
    );
    assert!(
        flaky
            .iter()
            .all(|(status, _)| status != "OUTCOME_STATUS_DONE"),
        "only failures and retries are outcome events of their own: {flaky:?}"
    );
    let hosts = site.hosts();
    for event in &outcomes {
        assert!(
            hosts.iter().any(|host| event.url.contains(host.as_str())),
            "dispatched {}",
            event.url
        );
    }
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recrawl_refetches_the_pages_and_detects_the_changed_ones() {
    let config = SiteConfig {
        products: 60,
        ..site_config()
    };
    let site = Site::start(config).await.unwrap();
    let topology = Topology {
        dispatchers: 1,
        scrapers: 1,
        archivers: 2,
    };
    let mesh = TestMesh::start(topology, &[]).await.unwrap();
    let id = mesh.submit(&job_file(&site)).await.unwrap();
    mesh.wait_done(&id, Duration::from_secs(90)).await.unwrap();
    let before = site.expected_products();

    site.set_revision(2);
    let after = site.expected_products();
    let changed: BTreeSet<&str> = before
        .iter()
        .zip(&after)
        .filter(|(old, new)| old.title != new.title || old.price != new.price)
        .map(|(old, _)| old.url.as_str())
        .collect();
    assert!(!changed.is_empty() && changed.len() < after.len());
    let expedited = mesh.cli_json(&["job", "expedite", &id]).await.unwrap();
    assert_eq!(expedited["epoch"], 2, "{expedited}");
    let status = mesh.wait_done(&id, Duration::from_secs(90)).await.unwrap();
    assert_eq!(status["epoch"], 2);
    assert_eq!(
        status["items"],
        after.len() as u64,
        "items counted per epoch"
    );

    let items = mesh.export(&id, false).await.unwrap();
    let second: Vec<&serde_json::Value> = items.iter().filter(|item| item["epoch"] == 2).collect();
    assert_eq!(
        second.len(),
        after.len(),
        "every product fetched again in epoch 2"
    );
    for item in second {
        let url = item["url"].as_str().unwrap();
        let product = after.iter().find(|product| product.url == url).unwrap();
        assert_eq!(item["fields"]["title"], product.title.as_str());
        assert_eq!(item["changed"], changed.contains(url), "{url}");
    }
    for product in &after {
        assert!(
            site.request_count(&product.url) >= 2,
            "{} not refetched",
            product.url
        );
    }
    site.stop().await;
}
