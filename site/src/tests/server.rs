//! The site serves what it claims, over real sockets, with a minimal HTTP/1.1 client so
//! this crate needs no HTTP client dependency.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{RobotsMode, Site, SiteConfig, paths};

/// A response read to the end of a `Connection: close` exchange.
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then_some(value.trim())
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn get(url: &str) -> Answer {
    let rest = url.strip_prefix("http://").expect("http url");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = TcpStream::connect(authority).await.expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: site-test\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let split = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head[9..12].parse().expect("status code");
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = unchunk(&body);
    }
    Answer { status, head, body }
}

/// Decodes a chunked transfer encoding.
fn unchunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size = usize::from_str_radix(size_text.trim(), 16).expect("chunk size");
        if size == 0 {
            return body;
        }
        let start = line_end + 2;
        body.extend_from_slice(&raw[start..start + size]);
        raw = &raw[start + size + 2..];
    }
}

fn small() -> SiteConfig {
    SiteConfig {
        products: 60,
        huge_page_bytes: 64 * 1024,
        slow_delay: Duration::from_millis(50),
        ..SiteConfig::default()
    }
}

#[tokio::test]
async fn product_pages_carry_the_expected_values() {
    let site = Site::start(small()).await.expect("start");
    let expected = site.expected_products();
    assert_eq!(expected.len(), 60);
    let product = expected
        .iter()
        .find(|p| p.title.contains('&'))
        .expect("an & title");
    let answer = get(&product.url).await;
    assert_eq!(answer.status, 200);
    let html = answer.text();
    let escaped = product.title.replace('&', "&amp;");
    assert!(html.contains(&format!("<h1>\n    {escaped}\n  </h1>")));
    assert!(html.contains(&format!("data-sku=\"{}\"", product.sku)));
    assert!(html.contains(&format!("</span>{}</span>", &product.price[1..])));
    assert!(html.len() > 3000, "realistic page size, got {}", html.len());
    site.stop().await;
}

#[tokio::test]
async fn robots_txt_disallows_private_and_states_the_crawl_delay() {
    let config = SiteConfig {
        crawl_delay: Some(Duration::from_millis(1500)),
        ..small()
    };
    let site = Site::start(config).await.expect("start");
    let answer = get(&site.url(paths::ROBOTS)).await;
    assert_eq!(answer.status, 200);
    assert!(answer.text().contains("Disallow: /private/"));
    assert!(answer.text().contains("Crawl-delay: 1.5"));
    let private = site.url(paths::PRIVATE);
    assert!(site.disallowed_urls().contains(&private));
    assert!(!site.reachable_urls().contains(&private));
}

#[tokio::test]
async fn robots_txt_can_be_missing_or_failing() {
    for (mode, status) in [(RobotsMode::Missing, 404), (RobotsMode::ServerError, 503)] {
        let config = SiteConfig {
            robots: mode,
            ..small()
        };
        let site = Site::start(config).await.expect("start");
        assert_eq!(get(&site.url(paths::ROBOTS)).await.status, status);
    }
}

#[tokio::test]
async fn the_redirect_loop_loops() {
    let site = Site::start(small()).await.expect("start");
    let a = get(&site.url(paths::LOOP_A)).await;
    assert_eq!((a.status, a.header("location")), (302, Some(paths::LOOP_B)));
    let b = get(&site.url(paths::LOOP_B)).await;
    assert_eq!((b.status, b.header("location")), (302, Some(paths::LOOP_A)));
}

#[tokio::test]
async fn the_open_redirect_and_a_redirected_robots_txt_lead_where_they_are_told() {
    let elsewhere = "http://127.0.0.3:9/robots.txt";
    let site = Site::start(SiteConfig {
        robots: RobotsMode::Redirect(elsewhere.to_owned()),
        ..small()
    })
    .await
    .expect("start");
    let robots = get(&site.url(paths::ROBOTS)).await;
    assert_eq!(
        (robots.status, robots.header("location")),
        (302, Some(elsewhere))
    );
    let query = "?location=http%3A%2F%2F127.0.0.3%3A9%2Fsecret";
    let open = get(&site.url(&format!("{}{query}", paths::REDIRECT_TO))).await;
    assert_eq!(
        (open.status, open.header("location")),
        (302, Some("http://127.0.0.3:9/secret"))
    );
    assert!(
        !site
            .reachable_urls()
            .iter()
            .any(|url| url.contains(paths::REDIRECT_TO)),
        "the open redirect is linked from nowhere"
    );
}

#[tokio::test]
async fn the_flaky_page_fails_once_then_works() {
    let site = Site::start(small()).await.expect("start");
    assert_eq!(get(&site.url(paths::FLAKY)).await.status, 500);
    assert_eq!(get(&site.url(paths::FLAKY)).await.status, 200);
    assert_eq!(get(&site.url(paths::FLAKY)).await.status, 200);
}

#[tokio::test]
async fn the_busy_page_asks_to_retry_later() {
    let site = Site::start(small()).await.expect("start");
    let first = get(&site.url(paths::BUSY)).await;
    assert_eq!(
        (first.status, first.header("retry-after")),
        (429, Some("2"))
    );
    assert_eq!(get(&site.url(paths::BUSY)).await.status, 200);
}

#[tokio::test]
async fn bad_pages_answer_as_documented() {
    let site = Site::start(small()).await.expect("start");
    assert_eq!(get(&site.url(paths::MISSING)).await.status, 404);
    let huge = get(&site.url(paths::HUGE)).await;
    assert!(huge.body.len() >= 64 * 1024 - 16);
    let invalid = get(&site.url(paths::INVALID_UTF8)).await;
    assert!(std::str::from_utf8(&invalid.body).is_err());
    let document = &site.expected_documents()[0];
    let pdf = get(&document.url).await;
    assert_eq!(pdf.header("content-type"), Some("application/pdf"));
    assert!(pdf.body.starts_with(b"%PDF"));
    let manual = get(&site.url(paths::MANUAL)).await;
    assert_eq!(manual.header("content-type"), Some("application/pdf"));
}

#[tokio::test]
async fn the_slow_page_takes_its_time() {
    let site = Site::start(small()).await.expect("start");
    let started = std::time::Instant::now();
    assert_eq!(
        get(&format!("{}?ms=120", site.url(paths::SLOW)))
            .await
            .status,
        200
    );
    assert!(started.elapsed() >= Duration::from_millis(120));
}

#[tokio::test]
async fn the_huge_page_is_ten_megabytes_by_default() {
    let site = Site::start(SiteConfig {
        products: 5,
        ..SiteConfig::default()
    })
    .await
    .expect("start");
    let huge = get(&site.url(paths::HUGE)).await;
    assert_eq!(huge.header("content-length"), None, "streamed");
    assert!(huge.body.len() >= 10 * 1024 * 1024 - 16);
    assert!(huge.body.ends_with(b"</body></html>\n"));
}

#[tokio::test]
async fn every_product_and_document_is_reachable_and_served() {
    let site = Site::start(small()).await.expect("start");
    let reachable = site.reachable_urls();
    for product in site.expected_products() {
        assert!(reachable.contains(&product.url), "{}", product.url);
    }
    for document in site.expected_documents() {
        assert!(reachable.contains(&document.url), "{}", document.url);
    }
    assert!(
        reachable.contains(&site.url(paths::LOOP_B)),
        "redirect targets count"
    );
    assert!(
        site.external_urls()
            .iter()
            .all(|url| url.starts_with("https://social."))
    );
    for url in &reachable {
        let status = get(url).await.status;
        assert!(
            status < 400
                || url.ends_with(paths::MISSING)
                || url.ends_with(paths::FLAKY)
                || url.ends_with(paths::BUSY),
            "{url}: {status}"
        );
    }
}

#[tokio::test]
async fn requests_are_logged_with_host_path_and_agent() {
    let site = Site::start(small()).await.expect("start");
    get(&site.url("/")).await;
    get(&site.url(paths::MISSING)).await;
    let log = site.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].path, "/");
    assert_eq!(log[0].host, site.hosts()[0]);
    assert_eq!(log[0].user_agent.as_deref(), Some("site-test"));
    assert_eq!(site.request_count(&site.url(paths::MISSING)), 1);
    assert!(log[0].at <= log[1].at);
    site.clear_requests();
    assert!(site.requests().is_empty());
}

#[tokio::test]
async fn a_new_revision_changes_every_tenth_product_only() {
    let site = Site::start(small()).await.expect("start");
    let before = site.expected_products();
    site.set_revision(2);
    let after = site.expected_products();
    for (old, new) in before.iter().zip(&after) {
        let index: usize = old.sku[4..].parse().expect("sku number");
        assert_eq!(old == new, !index.is_multiple_of(10), "{}", old.url);
        assert_eq!((&old.url, &old.sku), (&new.url, &new.sku));
    }
    let changed = &after[10];
    let html = get(&changed.url).await.text();
    assert!(html.contains(&changed.title.replace('&', "&amp;")));
}

#[tokio::test]
async fn a_site_over_several_hosts_links_products_across_hosts() {
    let config = SiteConfig {
        products: 30,
        ..SiteConfig::spread_over_addresses(3)
    };
    let site = Site::start(config).await.expect("start");
    let hosts = site.hosts();
    assert_eq!(hosts.len(), 3);
    assert!(hosts[1].starts_with("127.0.0.3:"));
    let products = site.expected_products();
    assert!(products[1].url.contains(&hosts[1]));
    // Product 1 lives on host 1 only.
    let wrong_host = products[1].url.replace(&hosts[1], &hosts[0]);
    assert_eq!(get(&wrong_host).await.status, 404);
    let home = get(&site.url("/")).await.text();
    assert!(home.contains(&site.host_url(2, "/")));
    let reachable = site.reachable_urls();
    assert!(
        products
            .iter()
            .all(|product| reachable.contains(&product.url))
    );
}

#[tokio::test]
async fn stopping_closes_the_listeners() {
    let site = Site::start(small()).await.expect("start");
    let host = site.hosts()[0].clone();
    site.stop().await;
    assert!(TcpStream::connect(host).await.is_err());
}

#[tokio::test]
async fn in_flight_requests_are_counted_per_host() {
    let site = Site::start(small()).await.expect("start");
    let slow = format!("{}?ms=150", site.url(paths::SLOW));
    let (_, _, _) = tokio::join!(get(&slow), get(&slow), get(&slow));
    assert_eq!(site.max_in_flight(0), 3);
}

#[tokio::test]
async fn without_its_bad_pages_the_shop_crawls_clean() {
    let config = SiteConfig {
        bad_pages: false,
        ..SiteConfig {
            products: 40,
            ..SiteConfig::spread_over(2)
        }
    };
    let site = Site::start(config).await.expect("start");
    for url in site.fetched_urls() {
        let answer = get(&url).await;
        assert_eq!(answer.status, 200, "{url}");
        assert_eq!(
            answer.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{url}"
        );
    }
    for path in [paths::LOOP_A, paths::FLAKY, paths::HUGE, paths::MANUAL] {
        assert_eq!(get(&site.url(path)).await.status, 404, "{path}");
    }
    let private: std::collections::BTreeSet<String> = (0..2)
        .map(|host| site.host_url(host, paths::PRIVATE))
        .collect();
    assert_eq!(site.disallowed_urls(), private);
    assert!(
        site.expected_documents()
            .iter()
            .all(|document| document.by_extension)
    );
}
