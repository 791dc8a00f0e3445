//! A scraper's bounds on what a job or a page can cost it: extraction within a time budget,
//! and `Try` specs that can neither skip validation nor stall a host.

// The shared mesh helpers serve several suites; this one uses some of them.
#[allow(dead_code)]
mod support;

use std::time::Duration;

use owlmesh_proto::v1::{OutcomeStatus, TryRequest};
use owlmesh_site::{SiteConfig, paths};
use support::{DEADLINE, Mesh, MeshSetup, is};

/// A site whose inventory page is 3 MiB of paragraphs: under the body cap, but far slower to
/// parse than the budget below, while a product page takes a few milliseconds.
fn site_with_a_slow_page() -> SiteConfig {
    SiteConfig {
        products: 20,
        products_per_page: 5,
        huge_page_bytes: 3 * 1024 * 1024,
        ..SiteConfig::default()
    }
}

const BUDGET: Duration = Duration::from_millis(250);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_past_the_extraction_budget_fails_for_good_while_the_others_are_done() {
    let mesh = Mesh::start(MeshSetup {
        site: site_with_a_slow_page(),
        ..MeshSetup::default()
    })
    .await;
    let huge = mesh.assign(&[paths::HUGE]).remove(0);
    let products = mesh.assign_products(8);
    let scraper = mesh
        .scraper(|config| config.extraction_budget = BUDGET)
        .await;

    let outcomes = mesh.outcomes(products.len() + 1).await;
    mesh.assert_one_outcome_per_assignment();
    let slow = &outcomes[&huge];
    assert!(is(slow, OutcomeStatus::Failed), "{slow:?}");
    assert_eq!(slow.error, "extraction exceeded its time budget of 250ms");
    assert_eq!(slow.http_status, 0);
    for product in &products {
        let outcome = &outcomes[product];
        assert!(is(outcome, OutcomeStatus::Done), "{outcome:?}");
        assert_eq!(outcome.items, 1);
    }
    let archived = mesh.log.archived();
    assert!(
        archived.iter().all(|page| page.url != huge),
        "nothing of it is archived"
    );
    scraper.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_try_of_a_page_past_the_budget_says_so() {
    let mesh = Mesh::start(MeshSetup {
        site: site_with_a_slow_page(),
        dispatchers: Vec::new(),
        ..MeshSetup::default()
    })
    .await;
    let scraper = mesh
        .scraper(|config| config.extraction_budget = BUDGET)
        .await;
    let response = scraper
        .try_page(TryRequest {
            url: mesh.site.url(paths::HUGE),
            spec: Some(mesh.spec.clone()),
        })
        .await
        .expect("try");
    assert_eq!(
        response.error,
        "extraction exceeded its time budget of 250ms"
    );
    assert!(response.fields.is_empty() && response.links.is_empty());
    scraper.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_try_spec_is_held_to_the_job_limits() {
    let mesh = Mesh::start(MeshSetup {
        dispatchers: Vec::new(),
        ..MeshSetup::default()
    })
    .await;
    let scraper = mesh.scraper(|_| {}).await;
    let refused = |status: tonic::Status| {
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        status.message().to_owned()
    };
    let mut huge_regex = mesh.spec.clone();
    huge_regex.handlers[0].pattern = "(a{1,1000}){1,1000}".into();
    let status = scraper
        .try_page(TryRequest {
            url: mesh.site.product_url(0),
            spec: Some(huge_regex),
        })
        .await
        .expect_err("refused");
    let message = refused(status);
    assert!(
        message.starts_with("spec.handlers[0].pattern: compiles to more than 1048576 bytes"),
        "{message}"
    );
    let mut deep_selector = mesh.spec.clone();
    let title = deep_selector.handlers[0]
        .fields
        .get_mut("title")
        .expect("the catalogue has a title");
    title.selector = vec!["div"; 200].join(" ");
    let status = scraper
        .try_page(TryRequest {
            url: mesh.site.product_url(0),
            spec: Some(deep_selector),
        })
        .await
        .expect_err("refused");
    let message = refused(status);
    assert!(
        message.starts_with("spec.handlers[0].fields.title.selector: must be at most 32 deep"),
        "{message}"
    );
    scraper.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_try_with_an_hour_of_delay_neither_waits_it_nor_holds_the_host_back() {
    let mesh = Mesh::start(MeshSetup::default()).await;
    let scraper = mesh.scraper(|_| {}).await;
    let mut patient = mesh.spec.clone();
    // The longest delay a job may ask for, and a valid one.
    patient.politeness.get_or_insert_default().delay_ms = owlmesh_job::DELAY_MS_LIMIT;
    let tried = tokio::time::timeout(
        DEADLINE,
        scraper.try_page(TryRequest {
            url: mesh.site.product_url(0),
            spec: Some(patient),
        }),
    )
    .await
    .expect("the try does not wait an hour")
    .expect("try");
    assert_eq!((tried.http_status, tried.error.as_str()), (200, ""));
    // The scraper's own work on the same host goes on at once.
    let products = mesh.assign_products(5);
    let outcomes = mesh.outcomes(products.len()).await;
    for product in &products {
        assert!(is(&outcomes[product], OutcomeStatus::Done));
    }
    scraper.stop().await;
}
