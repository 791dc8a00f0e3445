//! Tracing across the mesh: real dispatcher, scraper and archiver processes export their
//! spans over OTLP to a test collector while they crawl the local test site; one product
//! page's spans, sent by three processes, must form one trace with the expected chain.

mod support;

use std::time::{Duration, Instant};

use owlmesh_site::{CatalogueJob, Site, SiteConfig};
use support::collector::{ReceivedSpan, TestCollector};
use support::mesh::{TestMesh, Topology};

const DISPATCHER: &str = "owlmesh-dispatcher";
const SCRAPER: &str = "owlmesh-scraper";
const ARCHIVER: &str = "owlmesh-archiver";

fn site_config() -> SiteConfig {
    SiteConfig {
        products: 20,
        slow_delay: Duration::from_millis(100),
        ..SiteConfig::spread_over(1)
    }
}

/// The one span named `name` from `service` that `matches`, or a failure listing what came.
fn find<'a>(
    spans: &'a [ReceivedSpan],
    service: &str,
    name: &str,
    matches: impl Fn(&ReceivedSpan) -> bool,
) -> &'a ReceivedSpan {
    let found: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|span| span.service == service && span.name == name && matches(span))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {name} span from {service}, got {found:#?}"
    );
    found[0]
}

/// The spans of the trace of `url`'s archived fetch, once the collector has all of them.
fn page_trace(spans: &[ReceivedSpan], url: &str) -> Option<Vec<ReceivedSpan>> {
    let archive = spans.iter().find(|span| {
        span.service == ARCHIVER && span.name == "archive" && span.attribute("url") == url
    })?;
    let trace: Vec<ReceivedSpan> = spans
        .iter()
        .filter(|span| span.trace_id == archive.trace_id)
        .cloned()
        .collect();
    let has = |service: &str, name: &str| {
        trace
            .iter()
            .any(|span| span.service == service && span.name == name)
    };
    let complete = has(DISPATCHER, "dispatch")
        && has(SCRAPER, "scrape")
        && has(SCRAPER, "fetch")
        && has(SCRAPER, "extract")
        && has(DISPATCHER, "outcome");
    complete.then_some(trace)
}

/// Waits until the collector holds the whole trace of `url`; fails with what it holds.
async fn wait_for_trace(collector: &TestCollector, url: &str) -> Vec<ReceivedSpan> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let spans = collector.spans();
        if let Some(trace) = page_trace(&spans, url) {
            return trace;
        }
        if Instant::now() > deadline {
            let seen: Vec<String> = spans
                .iter()
                .map(|span| {
                    let url = span.attribute("url");
                    let parent = &span.parent_span_id;
                    format!(
                        "{} {} {url} trace {} parent {parent}",
                        span.service, span.name, span.trace_id
                    )
                })
                .collect();
            panic!("no whole trace of {url} after 20s; the collector has {seen:#?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_page_is_one_trace_across_dispatcher_scraper_and_archiver() {
    let collector = TestCollector::start().await.unwrap();
    let endpoint = collector.endpoint();
    let site = Site::start(site_config()).await.unwrap();
    let topology = Topology {
        dispatchers: 1,
        scrapers: 1,
        archivers: 1,
    };
    let environment = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_TRACES_SAMPLER", "always_on"),
        // Export every 100 ms rather than every 5 s, so the test need not wait.
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let mesh = TestMesh::start_with_environment(topology, &[], &[], &environment)
        .await
        .unwrap();
    let job_file = CatalogueJob::default().toml(&site.seeds(), &site.hosts());
    let id = mesh.submit(&job_file).await.unwrap();
    mesh.wait_done(&id, Duration::from_secs(60)).await.unwrap();

    let url = site.product_url(3);
    let trace = wait_for_trace(&collector, &url).await;

    // dispatch (dispatcher) → scrape (scraper) → fetch, extract (scraper),
    //                                          → archive (archiver)
    //                                          → outcome (dispatcher)
    let dispatch = find(&trace, DISPATCHER, "dispatch", |_| true);
    assert_eq!(dispatch.parent_span_id, "", "dispatch is the trace's root");
    assert_eq!(dispatch.attribute("url"), url);
    assert_eq!(dispatch.attribute("job"), id);
    assert!(!dispatch.attribute("host").is_empty());
    let scrape = find(&trace, SCRAPER, "scrape", |_| true);
    assert_eq!(scrape.parent_span_id, dispatch.span_id);
    assert_eq!(scrape.attribute("url"), url);
    assert_eq!(scrape.attribute("job"), id);
    assert_eq!(scrape.attribute("status"), "OUTCOME_STATUS_DONE");
    assert_eq!(scrape.attribute("http_status"), "200");
    let fetch = find(&trace, SCRAPER, "fetch", |_| true);
    assert_eq!(fetch.parent_span_id, scrape.span_id);
    assert_eq!(fetch.attribute("http_status"), "200");
    let bytes: u64 = fetch.attribute("bytes").parse().unwrap();
    assert!(bytes > 0, "fetched bytes: {bytes}");
    assert_eq!(scrape.attribute("bytes"), bytes.to_string());
    let extract = find(&trace, SCRAPER, "extract", |_| true);
    assert_eq!(extract.parent_span_id, scrape.span_id);
    assert_eq!(extract.attribute("handler"), "product");
    let archive = find(&trace, ARCHIVER, "archive", |_| true);
    assert_eq!(archive.parent_span_id, scrape.span_id);
    assert_eq!(archive.attribute("url"), url);
    assert_eq!(archive.attribute("stored"), "true");
    let outcome = find(&trace, DISPATCHER, "outcome", |_| true);
    assert_eq!(outcome.parent_span_id, scrape.span_id);
    assert_eq!(outcome.attribute("status"), "OUTCOME_STATUS_DONE");
    assert_eq!(outcome.attribute("bytes"), bytes.to_string());
    let mut ids: Vec<&str> = trace.iter().map(|span| span.span_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), trace.len(), "span ids are unique: {trace:#?}");

    // The unary submission: the CLI's span and the dispatcher's, one trace.
    let spans = collector.spans();
    let submit = find(&spans, "owlmesh-cli", "submit_job", |_| true);
    // Server spans are named after the method they serve.
    let rpc = find(
        &spans,
        DISPATCHER,
        "/owlmesh.v1.Dispatcher/SubmitJob",
        |_| true,
    );
    assert_eq!(rpc.trace_id, submit.trace_id);
    assert_eq!(rpc.parent_span_id, submit.span_id);
}
