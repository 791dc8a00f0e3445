//! Fetching the test site's good and bad pages.

use std::time::Duration;

use owlmesh_proto::v1::field_value;
use owlmesh_site::{Site, SiteConfig, paths};

use super::{AGENT, catalogue_spec, fetcher, small_site, test_fetch_config, url};
use owlmesh_job::CompiledJob;

use crate::extract;
use crate::fetch::{BodyPolicy, FetchConfig, FetchError, FetchOptions, Fetcher};

fn text(extraction: &crate::Extraction, field: &str) -> String {
    match extraction
        .fields
        .get(field)
        .and_then(|value| value.value.clone())
    {
        Some(field_value::Value::Text(text)) => text,
        other => panic!("field {field} is not a text: {other:?}"),
    }
}

#[tokio::test]
async fn every_product_page_yields_the_expected_fields() {
    let site = Site::start(small_site()).await.expect("site");
    let job = CompiledJob::compile(&catalogue_spec(&[&site.url("/")])).expect("job");
    let fetcher = fetcher();
    for expected in site.expected_products() {
        let fetched = fetcher
            .fetch(&url(&expected.url))
            .await
            .expect("product page");
        assert_eq!((fetched.status, fetched.redirects.len()), (200, 0));
        assert!(fetched.is_html());
        let extraction = extract::extract(
            &job,
            &fetched.final_url,
            &fetched.text().expect("html body"),
        );
        assert_eq!(extraction.handler.as_deref(), Some("product"));
        assert_eq!(text(&extraction, "title"), expected.title);
        assert_eq!(text(&extraction, "price"), expected.price);
        assert_eq!(text(&extraction, "sku"), expected.sku);
        assert_eq!(text(&extraction, "slug"), expected.slug);
    }
}

#[tokio::test]
async fn a_product_page_yields_its_links_and_datasheet() {
    let site = Site::start(small_site()).await.expect("site");
    let job = CompiledJob::compile(&catalogue_spec(&[&site.url("/")])).expect("job");
    let fetched = fetcher()
        .fetch(&url(&site.product_url(0)))
        .await
        .expect("product 0");
    let extraction = extract::extract(&job, &fetched.final_url, &fetched.text().expect("html"));
    for related in [1, 7, 31] {
        assert!(
            extraction.links.contains(&site.product_url(related)),
            "related {related}"
        );
    }
    assert!(
        extraction
            .links
            .iter()
            .all(|link| link.starts_with(&site.base_url()))
    );
    assert!(
        extraction
            .links
            .iter()
            .all(|link| !link.contains('#') && !link.ends_with(".pdf"))
    );
    let datasheet = &site.expected_documents()[0];
    assert_eq!(extraction.documents.len(), 1);
    assert_eq!(extraction.documents[0].url, datasheet.url);
    assert_eq!(extraction.documents[0].found_on, datasheet.linked_from);
}

#[tokio::test]
async fn a_redirect_loop_is_caught_with_its_chain() {
    let site = Site::start(small_site()).await.expect("site");
    let failure = fetcher()
        .fetch(&url(&site.url(paths::LOOP_A)))
        .await
        .unwrap_err();
    assert_eq!(
        failure.error,
        FetchError::RedirectLoop {
            url: site.url(paths::LOOP_A)
        }
    );
    let chain: Vec<String> = failure.redirects.iter().map(ToString::to_string).collect();
    assert_eq!(
        chain,
        vec![site.url(paths::LOOP_B), site.url(paths::LOOP_A)]
    );
    assert_eq!(failure.status, 302);
    assert!(!failure.is_transient());
    assert_eq!(
        site.request_count(&site.url(paths::LOOP_A)),
        1,
        "the loop is not walked twice"
    );
}

#[tokio::test]
async fn a_redirect_chain_is_recorded_to_the_final_url() {
    let site = Site::start(small_site()).await.expect("site");
    let fetched = fetcher()
        .fetch(&url(&site.url(paths::REDIRECT_START)))
        .await
        .expect("redirected");
    let chain: Vec<String> = fetched.redirects.iter().map(ToString::to_string).collect();
    assert_eq!(
        chain,
        vec![site.url(paths::REDIRECT_MIDDLE), site.product_url(0)]
    );
    assert_eq!(fetched.final_url.as_str(), site.product_url(0));
    assert_eq!(fetched.url.as_str(), site.url(paths::REDIRECT_START));
}

#[tokio::test]
async fn too_many_redirects_fail_at_the_limit() {
    let site = Site::start(small_site()).await.expect("site");
    let fetcher = Fetcher::new(FetchConfig {
        max_redirects: 1,
        ..test_fetch_config()
    })
    .expect("fetcher");
    let failure = fetcher
        .fetch(&url(&site.url(paths::REDIRECT_START)))
        .await
        .unwrap_err();
    assert_eq!(failure.error, FetchError::TooManyRedirects { limit: 1 });
    assert_eq!(failure.redirects.len(), 2);
}

#[tokio::test]
async fn a_refused_redirect_ends_the_fetch_before_the_hop() {
    let site = Site::start(small_site()).await.expect("site");
    let refuse_products = |next: &url::Url| !next.path().starts_with("/product/");
    let options = FetchOptions {
        may_follow: Some(&refuse_products),
        ..FetchOptions::default()
    };
    let failure = fetcher()
        .fetch_with(&url(&site.url(paths::REDIRECT_START)), &options)
        .await
        .unwrap_err();
    assert_eq!(
        failure.error,
        FetchError::RedirectNotFollowed {
            location: site.product_url(0)
        }
    );
    assert_eq!(
        failure.redirects.last().map(ToString::to_string),
        Some(site.product_url(0))
    );
    assert_eq!(site.request_count(&site.product_url(0)), 0);
}

#[tokio::test]
async fn a_missing_page_is_a_permanent_failure() {
    let site = Site::start(small_site()).await.expect("site");
    let failure = fetcher()
        .fetch(&url(&site.url(paths::MISSING)))
        .await
        .unwrap_err();
    assert_eq!(
        (failure.error.clone(), failure.status),
        (FetchError::ClientError { status: 404 }, 404)
    );
    assert!(!failure.is_transient());
    assert_eq!(failure.to_string(), "client error 404");
}

#[tokio::test]
async fn a_server_error_is_transient_and_the_retry_succeeds() {
    let site = Site::start(small_site()).await.expect("site");
    let fetcher = fetcher();
    let flaky = url(&site.url(paths::FLAKY));
    let failure = fetcher.fetch(&flaky).await.unwrap_err();
    assert_eq!(
        failure.error,
        FetchError::ServerError {
            status: 500,
            retry_after: None
        }
    );
    assert!(failure.is_transient());
    assert_eq!(fetcher.fetch(&flaky).await.expect("second try").status, 200);
}

#[tokio::test]
async fn a_429_is_transient_with_its_retry_after() {
    let site = Site::start(small_site()).await.expect("site");
    let failure = fetcher()
        .fetch(&url(&site.url(paths::BUSY)))
        .await
        .unwrap_err();
    assert_eq!(
        failure.error,
        FetchError::RateLimited {
            retry_after: Some(Duration::from_secs(1))
        }
    );
    assert!(failure.is_transient());
    assert_eq!(
        (failure.status, failure.retry_after()),
        (429, Some(Duration::from_secs(1)))
    );
}

#[tokio::test]
async fn the_huge_page_stops_at_the_cap() {
    let site = Site::start(small_site()).await.expect("site");
    let failure = fetcher()
        .fetch(&url(&site.url(paths::HUGE)))
        .await
        .unwrap_err();
    assert_eq!(failure.error, FetchError::TooLarge { limit: 1024 * 1024 });
    assert!(!failure.is_transient());
    assert_eq!(
        failure.to_string(),
        "body too large: more than 1048576 bytes"
    );
}

#[tokio::test]
async fn a_prefix_fetch_cuts_the_huge_page_instead() {
    let site = Site::start(small_site()).await.expect("site");
    let options = FetchOptions {
        body: BodyPolicy::Prefix,
        max_body_bytes: Some(4096),
        ..FetchOptions::default()
    };
    let fetched = fetcher()
        .fetch_with(&url(&site.url(paths::HUGE)), &options)
        .await
        .expect("prefix");
    assert!(fetched.truncated);
    assert_eq!(fetched.body.as_ref().map(Vec::len), Some(4096));
}

#[tokio::test]
async fn invalid_utf8_is_decoded_with_replacement_characters() {
    let site = Site::start(small_site()).await.expect("site");
    let fetched = fetcher()
        .fetch(&url(&site.url(paths::INVALID_UTF8)))
        .await
        .expect("page");
    let text = fetched.text().expect("html");
    assert!(
        text.contains("<h1>Caf\u{fffd} \u{fffd}\u{fffd} menu</h1>"),
        "{text}"
    );
    let job = CompiledJob::compile(&catalogue_spec(&[&site.url("/")])).expect("job");
    let extraction = extract::extract_bytes(
        &job,
        &fetched.final_url,
        fetched.body.as_deref().unwrap_or_default(),
        None,
    );
    assert_eq!(extraction.links, vec![site.url("/")]);
}

#[tokio::test]
async fn a_slow_page_times_out_under_a_short_read_timeout() {
    let site = Site::start(SiteConfig {
        slow_delay: Duration::from_secs(3),
        ..small_site()
    })
    .await
    .expect("site");
    let fetcher = Fetcher::new(FetchConfig {
        read_timeout: Duration::from_millis(200),
        ..test_fetch_config()
    })
    .expect("fetcher");
    let started = std::time::Instant::now();
    let failure = fetcher
        .fetch(&url(&site.url(paths::SLOW)))
        .await
        .unwrap_err();
    assert!(
        matches!(failure.error, FetchError::Timeout { .. }),
        "{failure:?}"
    );
    assert!(failure.is_transient());
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn non_html_is_counted_not_kept() {
    let site = Site::start(small_site()).await.expect("site");
    let job = CompiledJob::compile(&catalogue_spec(&[&site.url("/")])).expect("job");
    let fetcher = fetcher();
    for document in site.expected_documents().iter().take(2) {
        let fetched = fetcher.fetch(&url(&document.url)).await.expect("pdf");
        assert!(!fetched.is_html());
        assert_eq!(fetched.body, None);
        assert!(fetched.bytes > 100);
        let kind = job
            .documents()
            .of_content_type(fetched.content_type.as_deref().unwrap_or_default());
        assert_eq!(kind, Some("pdf"));
    }
    let manual = fetcher
        .fetch(&url(&site.url(paths::MANUAL)))
        .await
        .expect("manual");
    assert_eq!(manual.media_type().as_deref(), Some("application/pdf"));
    assert_eq!(
        job.documents().of_url(&manual.final_url),
        None,
        "no extension"
    );
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let failure = fetcher()
        .fetch(&url(&format!("http://{address}/")))
        .await
        .unwrap_err();
    assert!(
        matches!(failure.error, FetchError::Connect { .. }),
        "{failure:?}"
    );
    assert!(failure.is_transient());
    assert_eq!(failure.status, 0);
}

#[tokio::test]
async fn only_http_and_https_are_fetched() {
    let failure = fetcher()
        .fetch(&url("ftp://127.0.0.1/file"))
        .await
        .unwrap_err();
    assert!(matches!(failure.error, FetchError::UnsupportedUrl { .. }));
    assert!(!failure.is_transient());
}

#[tokio::test]
async fn the_user_agent_is_the_requests_or_the_configured_one() {
    let site = Site::start(small_site()).await.expect("site");
    let fetcher = fetcher();
    fetcher.fetch(&url(&site.url("/"))).await.expect("home");
    let options = FetchOptions {
        user_agent: Some("other-agent/2"),
        ..FetchOptions::default()
    };
    fetcher
        .fetch_with(&url(&site.url("/")), &options)
        .await
        .expect("home");
    let agents: Vec<Option<String>> = site.requests().into_iter().map(|r| r.user_agent).collect();
    assert_eq!(
        agents,
        vec![Some(AGENT.to_owned()), Some("other-agent/2".to_owned())]
    );
}
