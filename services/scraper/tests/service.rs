//! The running scraper against an in-process mesh (directory, fake dispatchers, a fake
//! archiver) and the test website, over real sockets.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use owlmesh_proto::v1::{
    FieldValue, LoadState, OutcomeStatus, Politeness, TryRequest, field_value,
};
use owlmesh_site::{SiteConfig, paths};
use owlmesh_tests::eventually_true;
use support::fakes::{Entry, Mode};
use support::{DEADLINE, Mesh, MeshSetup, SCRAPER_ID, counter, is};

fn text(fields: &HashMap<String, FieldValue>, name: &str) -> String {
    match fields.get(name).and_then(|value| value.value.as_ref()) {
        Some(field_value::Value::Text(text)) => text.clone(),
        other => panic!("field {name} is not a text: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_assignment_gets_one_outcome_and_done_comes_only_after_the_archive_ack() {
    let mesh = Mesh::start(MeshSetup {
        site: SiteConfig {
            products: 20,
            products_per_page: 5,
            retry_after: Duration::from_secs(1),
            ..SiteConfig::default()
        },
        ..MeshSetup::default()
    })
    .await;
    let products = mesh.assign_products(8);
    let home = mesh.site.url("/");
    let missing = mesh.site.url(paths::MISSING);
    let manual = mesh.site.url(paths::MANUAL);
    let busy = mesh.site.url(paths::BUSY);
    mesh.assign(&[&home, &missing, &manual, &busy]);
    let scraper = mesh.scraper(|_| {}).await;

    let outcomes = mesh.outcomes(products.len() + 4).await;
    mesh.assert_one_outcome_per_assignment();
    mesh.assert_done_only_after_archived();

    for product in &products {
        let outcome = &outcomes[product];
        assert!(is(outcome, OutcomeStatus::Done), "{outcome:?}");
        assert_eq!((outcome.items, outcome.http_status), (1, 200));
        assert!(outcome.bytes > 0 && outcome.fetched_at_ms > 0);
    }
    let home_outcome = &outcomes[&home];
    assert!(is(home_outcome, OutcomeStatus::Done));
    assert_eq!(home_outcome.items, 0, "no handler matches the home page");
    assert!(
        home_outcome
            .links
            .iter()
            .any(|link| products.contains(link))
    );
    assert!(
        home_outcome
            .links
            .iter()
            .all(|link| !link.ends_with(".pdf")),
        "the follow rules deny pdf links"
    );
    let missing_outcome = &outcomes[&missing];
    assert!(is(missing_outcome, OutcomeStatus::Failed));
    assert_eq!(missing_outcome.http_status, 404);
    assert!(!missing_outcome.error.is_empty());
    let manual_outcome = &outcomes[&manual];
    assert!(
        is(manual_outcome, OutcomeStatus::Done),
        "{manual_outcome:?}"
    );
    assert_eq!((manual_outcome.documents, manual_outcome.items), (1, 0));
    let busy_outcome = &outcomes[&busy];
    assert!(is(busy_outcome, OutcomeStatus::Transient));
    assert_eq!(
        (busy_outcome.http_status, busy_outcome.retry_after_ms),
        (429, 1000)
    );

    let archived = mesh.log.archived();
    let done = outcomes
        .values()
        .filter(|outcome| is(outcome, OutcomeStatus::Done))
        .count();
    assert_eq!(
        archived.len(),
        done,
        "one record per DONE page, none for failures"
    );
    let expected: HashMap<String, _> = mesh
        .site
        .expected_products()
        .into_iter()
        .map(|product| (product.url.clone(), product))
        .collect();
    for page in archived.iter().filter(|page| page.handler == "product") {
        let product = &expected[&page.url];
        assert_eq!(text(&page.fields, "title"), product.title);
        assert_eq!(text(&page.fields, "price"), product.price);
        assert_eq!(text(&page.fields, "sku"), product.sku);
        assert_eq!(text(&page.fields, "slug"), product.slug);
        assert_eq!(page.content_hash.len(), 16, "hex xxh3-64");
    }
    let manual_page = archived
        .iter()
        .find(|page| page.url == manual)
        .expect("manual");
    assert!(manual_page.fields.is_empty());
    assert_eq!(manual_page.documents[0].r#type, "pdf");
    scraper.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robots_disallowed_urls_are_reported_and_never_requested() {
    let mesh = Mesh::start(MeshSetup::default()).await;
    let forbidden = mesh.assign(&[paths::PRIVATE, paths::PRIVATE_STAFF]);
    let allowed = mesh.assign_products(1);
    let scraper = mesh.scraper(|_| {}).await;

    let outcomes = mesh.outcomes(3).await;
    mesh.assert_one_outcome_per_assignment();
    for url in &forbidden {
        let outcome = &outcomes[url];
        assert!(is(outcome, OutcomeStatus::Disallowed), "{outcome:?}");
        assert_eq!(outcome.http_status, 0);
        assert_eq!(mesh.site.request_count(url), 0, "{url} was requested");
    }
    assert!(is(&outcomes[&allowed[0]], OutcomeStatus::Done));
    assert_eq!(mesh.site.request_count(&mesh.site.url(paths::ROBOTS)), 1);
    assert!(
        mesh.log
            .archived()
            .iter()
            .all(|page| !forbidden.contains(&page.url)),
        "nothing is archived for a disallowed url"
    );
    assert_eq!(counter(&scraper.stats().await, "robots_disallowed"), 2);
    scraper.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_archiver_holds_back_done_outcomes_and_the_intake_stays_bounded() {
    let mesh = Mesh::start(MeshSetup::default()).await;
    mesh.set_archiver_acking(false);
    let urls = mesh.assign_products(30);
    let scraper = mesh
        .scraper(|config| {
            config.slots = 8;
            config.outbox_capacity = 4;
        })
        .await;

    eventually_true(DEADLINE, "8 assignments and a full outbox", || {
        mesh.log.assigned().len() == 8 && mesh.pages_received_by_archiver() == 4
    })
    .await;
    // Proving that nothing more happens takes a wait: long enough for many fetches.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        mesh.log.assigned().len(),
        8,
        "no slot is offered while pages wait"
    );
    assert_eq!(
        mesh.pages_received_by_archiver(),
        4,
        "the outbox holds its capacity"
    );
    assert!(
        mesh.log.outcomes().is_empty(),
        "nothing is reported unarchived"
    );
    let stats = scraper.stats().await;
    let outbox = stats
        .queues
        .iter()
        .find(|queue| queue.name == "outbox")
        .expect("outbox");
    assert_eq!((outbox.depth, outbox.capacity), (4, 4));
    assert_eq!(stats.state, "busy");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let load = mesh.scraper_load().await.unwrap_or_default();
        if load.state == LoadState::Busy as i32 && load.free_slots == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "load reported: {load:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    mesh.set_archiver_acking(true);
    let outcomes = mesh.outcomes(urls.len()).await;
    mesh.assert_one_outcome_per_assignment();
    mesh.assert_done_only_after_archived();
    assert!(
        urls.iter()
            .all(|url| is(&outcomes[url], OutcomeStatus::Done))
    );
    assert_eq!(mesh.log.archived().len(), urls.len());
    scraper.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_session_resumes_on_the_next_dispatcher_with_its_pending_outcomes() {
    let mesh = Mesh::start(MeshSetup {
        site: SiteConfig {
            products: 20,
            page_delay: Duration::from_millis(100),
            ..SiteConfig::default()
        },
        dispatchers: vec![Mode::BreakAfterOutcomes(1), Mode::Primary],
        politeness: Politeness {
            concurrency_per_host: 2,
            ..MeshSetup::default().politeness
        },
        ..MeshSetup::default()
    })
    .await;
    let urls = mesh.assign_products(12);
    let scraper = mesh.scraper(|_| {}).await;

    mesh.outcomes(urls.len()).await;
    mesh.assert_one_outcome_per_assignment();
    mesh.assert_done_only_after_archived();
    let assigned_by: BTreeSet<String> = mesh.log.assigned().into_iter().map(|(by, _)| by).collect();
    assert_eq!(assigned_by, BTreeSet::from(["dispatcher-a".to_owned()]));
    let received_by_b = mesh
        .log
        .outcomes()
        .iter()
        .filter(|(by, _)| by == "dispatcher-b")
        .count();
    assert!(
        received_by_b > 0,
        "pending outcomes went to the second dispatcher"
    );
    // Sessions went down the failover order: a first, a again (now a standby), then b.
    let sessions: Vec<(String, u32)> = mesh
        .log
        .entries()
        .into_iter()
        .filter_map(|entry| match entry {
            Entry::Hello { dispatcher, slots } => Some((format!("hello {dispatcher}"), slots)),
            Entry::Refused { dispatcher } => Some((format!("refused {dispatcher}"), 0)),
            _ => None,
        })
        .collect();
    let names: Vec<&str> = sessions.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names[..3],
        [
            "hello dispatcher-a",
            "refused dispatcher-a",
            "hello dispatcher-b"
        ]
    );
    // The hello to b offered the slots free on both sides: b's credit adds up to all.
    let slots = owlmesh_scraper::DEFAULT_SLOTS as usize;
    assert_eq!(sessions[2].1 as usize + received_by_b, slots);
    scraper.stop().await;
}

/// An outcome larger than the dispatcher reads ends every session it is sent on. It must not
/// wedge the scraper: after a few sessions it is dead-lettered, its URL fails with the
/// reason (so its lease is settled), it is counted, and every other outcome is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_the_dispatcher_cannot_read_is_dead_lettered_and_the_rest_delivered() {
    let mesh = Mesh::start(MeshSetup {
        site: SiteConfig {
            products: 200,
            products_per_page: 200,
            categories: 1,
            ..SiteConfig::default()
        },
        dispatcher_read_limit: Some(4 * 1024),
        ..MeshSetup::default()
    })
    .await;
    // The one listing page links all 200 products: about 12 KB of links.
    let listing = mesh.site.url("/category/kitchen/page-1.html");
    mesh.assign(&[&listing]);
    let products = mesh.assign_products(12);
    let scraper = mesh.scraper(|_| {}).await;

    let outcomes = mesh.outcomes(products.len() + 1).await;
    mesh.assert_one_outcome_per_assignment();
    for product in &products {
        assert!(is(&outcomes[product], OutcomeStatus::Done), "{product}");
    }
    let failure = &outcomes[&listing];
    assert!(is(failure, OutcomeStatus::Failed), "{failure:?}");
    assert!(
        failure.error.starts_with(owlmesh_scraper::OUTCOME_REFUSED),
        "{}",
        failure.error
    );
    assert!(failure.links.is_empty());
    assert_eq!(counter(&scraper.stats().await, "outcomes_dead_lettered"), 1);
    let sessions = mesh
        .log
        .entries()
        .iter()
        .filter(|entry| matches!(entry, Entry::Hello { .. }))
        .count();
    let refusals = owlmesh_scraper::DEAD_LETTER_AFTER_REFUSALS as usize;
    assert!(
        (refusals..=refusals + 2).contains(&sessions),
        "{sessions} sessions: one per refusal and one more"
    );
    scraper.stop().await;
}

/// A page the archiver refuses (as it refuses a batch that fails validation) must not be
/// sent again forever with the pages batched beside it: they go again one per batch, every
/// other page is archived, and the refused one fails with the archiver's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_the_archiver_refuses_fails_with_the_reason_and_the_others_are_archived() {
    let mesh = Mesh::start(MeshSetup::default()).await;
    let products = mesh.assign_products(12);
    let refused = products[5].clone();
    mesh.refuse_archiving(&refused);
    let scraper = mesh.scraper(|_| {}).await;

    let outcomes = mesh.outcomes(products.len()).await;
    mesh.assert_one_outcome_per_assignment();
    mesh.assert_done_only_after_archived();
    let failure = &outcomes[&refused];
    assert!(is(failure, OutcomeStatus::Failed), "{failure:?}");
    assert!(
        failure.error.contains("refused by the test"),
        "{}",
        failure.error
    );
    let archived: BTreeSet<String> = mesh
        .log
        .archived()
        .into_iter()
        .map(|page| page.url)
        .collect();
    for product in products.iter().filter(|product| **product != refused) {
        assert!(is(&outcomes[product], OutcomeStatus::Done), "{product}");
        assert!(archived.contains(product), "{product}");
    }
    assert!(!archived.contains(&refused));
    scraper.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_assignments_are_dropped_unfetched_and_their_slots_offered_again() {
    let mesh = Mesh::start(MeshSetup {
        politeness: Politeness {
            delay_ms: 1000,
            concurrency_per_host: 1,
            ..MeshSetup::default().politeness
        },
        ..MeshSetup::default()
    })
    .await;
    let urls = mesh.assign_products(4);
    let scraper = mesh.scraper(|_| {}).await;
    eventually_true(DEADLINE, "a first outcome", || {
        !mesh.log.outcomes().is_empty()
    })
    .await;

    // One page is done and one waits for the host's delay, so two more wait behind it.
    let waiting: Vec<u64> = mesh
        .log
        .assigned()
        .into_iter()
        .map(|(_, lease_id)| lease_id)
        .filter(|lease_id| {
            mesh.log
                .outcomes()
                .iter()
                .all(|(_, o)| o.lease_id != *lease_id)
        })
        .collect();
    assert_eq!(waiting.len(), 3);
    let revoked = &waiting[1..];
    mesh.frontier.revoke(revoked);
    // The host's gate is first come, first served: once this later page is done, the
    // revoked ones would have run before it.
    let later = mesh.site.product_url(4);
    mesh.assign(&[&later]);
    eventually_true(DEADLINE, "the later page", || {
        mesh.log.outcomes().iter().any(|(_, o)| o.url == later)
    })
    .await;

    mesh.assert_one_outcome_per_assignment();
    let reported: Vec<u64> = mesh
        .log
        .outcomes()
        .iter()
        .map(|(_, o)| o.lease_id)
        .collect();
    assert!(revoked.iter().all(|lease_id| !reported.contains(lease_id)));
    assert_eq!(
        mesh.log.credits(),
        [2],
        "the revoked slots are offered again"
    );
    let never_requested = urls
        .iter()
        .filter(|url| mesh.site.request_count(url) == 0)
        .count();
    assert_eq!(never_requested, 2);
    scraper.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_returns_the_catalogue_fields_of_a_product_page() {
    let mesh = Mesh::start(MeshSetup {
        dispatchers: Vec::new(),
        ..MeshSetup::default()
    })
    .await;
    let scraper = mesh.scraper(|_| {}).await;
    let product = mesh.site.expected_products().remove(3);
    let response = scraper
        .try_page(TryRequest {
            url: product.url.clone(),
            spec: Some(mesh.spec.clone()),
        })
        .await
        .expect("try");
    assert_eq!(response.error, "");
    assert_eq!(
        (response.http_status, response.handler.as_str()),
        (200, "product")
    );
    assert_eq!(response.final_url, product.url);
    assert_eq!(text(&response.fields, "title"), product.title);
    assert_eq!(text(&response.fields, "price"), product.price);
    assert_eq!(text(&response.fields, "sku"), product.sku);
    assert_eq!(text(&response.fields, "slug"), product.slug);
    assert!(!response.links.is_empty());

    let forbidden = scraper
        .try_page(TryRequest {
            url: mesh.site.url(paths::PRIVATE),
            spec: Some(mesh.spec.clone()),
        })
        .await
        .expect("try");
    assert_eq!(forbidden.error, "disallowed by robots.txt");
    assert!(mesh.log.archived().is_empty(), "try archives nothing");
    scraper.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_names_the_invalid_field() {
    let mesh = Mesh::start(MeshSetup {
        dispatchers: Vec::new(),
        ..MeshSetup::default()
    })
    .await;
    let scraper = mesh.scraper(|_| {}).await;
    let invalid = |status: tonic::Status| {
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        status.message().to_owned()
    };
    let no_url = scraper
        .try_page(TryRequest {
            url: "ftp://example.com/".into(),
            spec: Some(mesh.spec.clone()),
        })
        .await
        .expect_err("rejected");
    assert!(invalid(no_url).starts_with("url: "));
    let mut spec = mesh.spec.clone();
    spec.handlers[0].pattern = "(unclosed".into();
    let bad_pattern = scraper
        .try_page(TryRequest {
            url: mesh.site.product_url(0),
            spec: Some(spec),
        })
        .await
        .expect_err("rejected");
    assert!(invalid(bad_pattern).starts_with("spec.handlers[0].pattern: "));
    let elsewhere = scraper
        .try_page(TryRequest {
            url: "http://elsewhere.invalid/".into(),
            spec: Some(mesh.spec.clone()),
        })
        .await
        .expect_err("rejected");
    assert!(invalid(elsewhere).contains("allowed hosts"));
    // A try's spec is checked as a submitted job's is: a delay that would stall the host
    // for everyone on this scraper is refused.
    let mut stalling = mesh.spec.clone();
    stalling.politeness.get_or_insert_default().delay_ms = u64::MAX;
    let stalling = scraper
        .try_page(TryRequest {
            url: mesh.site.product_url(0),
            spec: Some(stalling),
        })
        .await
        .expect_err("rejected");
    assert!(invalid(stalling).starts_with("spec.politeness.delay_ms: "));
    scraper.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_without_a_spec_allows_only_the_tried_host() {
    let mesh = Mesh::start(MeshSetup {
        dispatchers: Vec::new(),
        ..MeshSetup::default()
    })
    .await;
    let scraper = mesh.scraper(|_| {}).await;
    let product = mesh.site.product_url(0);
    let response = scraper
        .try_page(TryRequest {
            url: product.clone(),
            spec: None,
        })
        .await
        .expect("try");
    assert_eq!((response.http_status, response.error.as_str()), (200, ""));
    let host = url::Url::parse(&product)
        .expect("url")
        .host_str()
        .map(str::to_owned);
    assert!(!response.links.is_empty());
    for link in &response.links {
        let link = url::Url::parse(link).expect("links are absolute");
        assert_eq!(link.host_str().map(str::to_owned), host, "{link}");
    }
    scraper.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_stats_counts_pages_queues_and_latencies() {
    let mesh = Mesh::start(MeshSetup::default()).await;
    let urls = mesh.assign_products(5);
    let scraper = mesh.scraper(|config| config.outbox_capacity = 64).await;
    mesh.outcomes(urls.len()).await;

    let stats = scraper.stats().await;
    assert_eq!(
        (stats.kind.as_str(), stats.id.as_str()),
        ("scraper", SCRAPER_ID)
    );
    assert_eq!(stats.state, "idle");
    assert_eq!(counter(&stats, "pages_fetched"), 5);
    assert_eq!(counter(&stats, "items_extracted"), 5);
    assert_eq!(counter(&stats, "fetch_errors"), 0);
    assert_eq!(counter(&stats, "hosts_owned"), 1);
    assert!(counter(&stats, "bytes_fetched") > 0);
    let queues: HashMap<&str, (u64, u64)> = stats
        .queues
        .iter()
        .map(|queue| (queue.name.as_str(), (queue.depth, queue.capacity)))
        .collect();
    assert_eq!(
        queues["inbox"],
        (0, u64::from(owlmesh_scraper::DEFAULT_SLOTS))
    );
    assert_eq!(queues["outbox"], (0, 64));
    assert_eq!(queues["fetching"].0, 0);
    assert_eq!(queues["outcomes"].0, 0);
    for histogram in &stats.histograms {
        assert_eq!(histogram.count, 5, "{}", histogram.name);
    }
    let names: BTreeSet<&str> = stats.histograms.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["dispatch_to_archive_seconds", "fetch_seconds"])
    );
    scraper.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_hands_back_unstarted_assignments_and_leaves_the_mesh() {
    let mesh = Mesh::start(MeshSetup {
        politeness: Politeness {
            delay_ms: 400,
            concurrency_per_host: 1,
            ..MeshSetup::default().politeness
        },
        ..MeshSetup::default()
    })
    .await;
    let urls = mesh.assign_products(6);
    let scraper = mesh.scraper(|config| config.slots = 8).await;
    let scrapers = mesh.watch("scraper");
    eventually_true(DEADLINE, "a first outcome", || {
        !mesh.log.outcomes().is_empty()
    })
    .await;

    let took = scraper.stop().await;
    assert!(took < Duration::from_secs(6), "drained in {took:?}");
    mesh.assert_one_outcome_per_assignment();
    mesh.assert_done_only_after_archived();
    let outcomes = mesh.log.outcomes();
    assert_eq!(outcomes.len(), urls.len());
    let returned: Vec<&String> = outcomes
        .iter()
        .filter(|(_, outcome)| is(outcome, OutcomeStatus::Returned))
        .map(|(_, outcome)| &outcome.url)
        .collect();
    assert!(!returned.is_empty(), "the host's delay kept some unstarted");
    for url in &returned {
        assert_eq!(
            mesh.site.request_count(url),
            0,
            "{url} was handed back after a fetch"
        );
    }
    assert!(outcomes.iter().all(|(_, outcome)| {
        is(outcome, OutcomeStatus::Done) || is(outcome, OutcomeStatus::Returned)
    }));
    let gone = scrapers
        .wait_for(Duration::from_secs(5), |view| {
            view.synced && view.get(SCRAPER_ID).is_none()
        })
        .await;
    assert!(gone.is_some(), "the scraper left the directory");
}
