//! robots.txt as the test site serves it: present, missing, failing.

use std::sync::Arc;
use std::time::Duration;

use owlmesh_site::{RobotsMode, Site, SiteConfig, paths};

use super::{AGENT, fetcher, small_site, url};
use crate::robots::{RobotsCache, RobotsConfig, RobotsVerdict};

#[tokio::test]
async fn private_pages_are_disallowed_and_robots_txt_is_fetched_once() {
    let site = Site::start(small_site()).await.expect("site");
    let robots = Arc::new(RobotsCache::new(fetcher(), RobotsConfig::default()));
    let mut checks = tokio::task::JoinSet::new();
    for path in [paths::PRIVATE, paths::PRIVATE_STAFF, "/", paths::MISSING] {
        let (robots, target) = (Arc::clone(&robots), url(&site.url(path)));
        checks.spawn(async move { (target.path().to_owned(), robots.check(&target, AGENT).await) });
    }
    while let Some(result) = checks.join_next().await {
        let (path, verdict) = result.expect("check");
        assert_eq!(
            verdict.is_allowed(),
            !path.starts_with(paths::PRIVATE),
            "{path}"
        );
    }
    assert_eq!(site.request_count(&site.url(paths::ROBOTS)), 1);
    let cached = robots.check_cached(&url(&site.url(paths::PRIVATE)), AGENT);
    assert_eq!(cached, Some(RobotsVerdict::Disallowed));
}

#[tokio::test]
async fn the_crawl_delay_comes_with_the_verdict() {
    let config = SiteConfig {
        crawl_delay: Some(Duration::from_millis(250)),
        ..small_site()
    };
    let site = Site::start(config).await.expect("site");
    let robots = RobotsCache::new(fetcher(), RobotsConfig::default());
    let verdict = robots.check(&url(&site.url("/")), "owlmesh-test/1.0").await;
    assert_eq!(
        verdict,
        RobotsVerdict::Allowed {
            crawl_delay: Some(Duration::from_millis(250))
        }
    );
    let greedy = robots.check(&url(&site.url("/")), "GreedyBot").await;
    assert_eq!(
        greedy,
        RobotsVerdict::Disallowed,
        "a group for one agent applies to it only"
    );
}

#[tokio::test]
async fn a_missing_robots_txt_allows_everything() {
    let site = Site::start(SiteConfig {
        robots: RobotsMode::Missing,
        ..small_site()
    })
    .await
    .expect("site");
    let robots = RobotsCache::new(fetcher(), RobotsConfig::default());
    let verdict = robots.check(&url(&site.url(paths::PRIVATE)), AGENT).await;
    assert_eq!(verdict, RobotsVerdict::Allowed { crawl_delay: None });
}

#[tokio::test]
async fn a_failing_robots_txt_blocks_the_origin_for_a_while() {
    let site = Site::start(SiteConfig {
        robots: RobotsMode::ServerError,
        ..small_site()
    })
    .await
    .expect("site");
    let config = RobotsConfig {
        unreachable_ttl: Duration::from_millis(300),
        ..RobotsConfig::default()
    };
    let robots = RobotsCache::new(fetcher(), config);
    let verdict = robots.check(&url(&site.url("/")), AGENT).await;
    let RobotsVerdict::Unreachable { retry_after } = verdict else {
        panic!("expected unreachable, got {verdict:?}");
    };
    assert!(retry_after <= Duration::from_millis(300));
    robots
        .check(&url(&site.url("/product/x.html")), AGENT)
        .await;
    assert_eq!(
        site.request_count(&site.url(paths::ROBOTS)),
        1,
        "cached while blocked"
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    robots.check(&url(&site.url("/")), AGENT).await;
    assert_eq!(
        site.request_count(&site.url(paths::ROBOTS)),
        2,
        "asked again after the wait"
    );
}

#[tokio::test]
async fn an_unreachable_host_is_blocked_not_allowed() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let robots = RobotsCache::new(fetcher(), RobotsConfig::default());
    let verdict = robots
        .check(&url(&format!("http://{address}/")), AGENT)
        .await;
    assert!(
        matches!(verdict, RobotsVerdict::Unreachable { .. }),
        "{verdict:?}"
    );
}

#[tokio::test]
async fn expired_rules_are_fetched_again_and_forgotten_on_request() {
    let site = Site::start(small_site()).await.expect("site");
    let config = RobotsConfig {
        ttl: Duration::from_millis(100),
        ..RobotsConfig::default()
    };
    let robots = RobotsCache::new(fetcher(), config);
    let home = url(&site.url("/"));
    robots.check(&home, AGENT).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(robots.check_cached(&home, AGENT), None, "expired");
    robots.check(&home, AGENT).await;
    robots.forget(&home);
    robots.check(&home, AGENT).await;
    assert_eq!(site.request_count(&site.url(paths::ROBOTS)), 3);
}
