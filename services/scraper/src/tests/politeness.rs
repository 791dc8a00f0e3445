//! Politeness as the test site sees it: request spacing and requests in flight.

use std::sync::Arc;
use std::time::Duration;

use owlmesh_site::{Site, SiteConfig, paths};

use super::{AGENT, catalogue_spec, fetcher, small_site, url};
use owlmesh_job::HostKey;

use crate::fetch::{FetchError, Fetcher};
use crate::politeness::{HostGates, HostPolicy, JobPoliteness};
use crate::robots::{RobotsCache, RobotsConfig, RobotsVerdict};

/// Network jitter allowed when comparing server-side arrival gaps with the gate's spacing:
/// well below the 200 ms checked, so unspaced requests (about 1 ms apart) still fail.
const JITTER: Duration = Duration::from_millis(60);

#[tokio::test]
async fn the_crawl_delay_spaces_requests_as_the_server_sees_them() {
    let config = SiteConfig {
        crawl_delay: Some(Duration::from_millis(200)),
        ..small_site()
    };
    let site = Site::start(config).await.expect("site");
    let fetcher = fetcher();
    let robots = RobotsCache::new(fetcher.clone(), RobotsConfig::default());
    let gates = HostGates::new();
    let job = JobPoliteness::from_spec(&catalogue_spec(&[&site.url("/")]));
    let home = url(&site.url("/"));
    let RobotsVerdict::Allowed { crawl_delay } = robots.check(&home, AGENT).await else {
        panic!("home is allowed");
    };
    let policy = job.host_policy(crawl_delay);
    assert_eq!(policy.spacing(), Duration::from_millis(200));
    site.clear_requests();
    let host = HostKey::of(&home).map(String::from).expect("host");
    for index in 0..4 {
        let _permit = gates.acquire(&host, &policy).await;
        fetcher
            .fetch(&url(&site.product_url(index)))
            .await
            .expect("product");
    }
    let arrivals: Vec<_> = site.requests().iter().map(|record| record.at).collect();
    assert_eq!(arrivals.len(), 4);
    for pair in arrivals.windows(2) {
        assert!(
            pair[1] - pair[0] + JITTER >= Duration::from_millis(200),
            "{:?}",
            pair[1] - pair[0]
        );
    }
}

#[tokio::test]
async fn requests_in_flight_per_host_never_exceed_the_limit() {
    let config = SiteConfig {
        page_delay: Duration::from_millis(60),
        ..SiteConfig::spread_over(2)
    };
    let site = Arc::new(Site::start(config).await.expect("site"));
    let fetcher = fetcher();
    let gates = Arc::new(HostGates::new());
    let policy = HostPolicy {
        delay: Duration::ZERO,
        crawl_delay: None,
        concurrency: 3,
    };
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..24 {
        let (fetcher, gates, target) = (
            fetcher.clone(),
            Arc::clone(&gates),
            url(&site.product_url(index)),
        );
        tasks.spawn(async move {
            let host = HostKey::of(&target).map(String::from).expect("host");
            let _permit = gates.acquire(&host, &policy).await;
            fetcher.fetch(&target).await.map(|_| ())
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("task").expect("fetch");
    }
    assert_eq!(site.max_in_flight(0), 3, "host 0");
    assert_eq!(site.max_in_flight(1), 3, "host 1, limited on its own");
}

#[tokio::test]
async fn a_429_backs_the_host_off_for_its_retry_after() {
    let site = Site::start(small_site()).await.expect("site");
    let fetcher: Fetcher = fetcher();
    let gates = HostGates::new();
    let busy = url(&site.url(paths::BUSY));
    let host = HostKey::of(&busy).map(String::from).expect("host");
    let policy = JobPoliteness::from_spec(&catalogue_spec(&[&site.url("/")])).host_policy(None);
    let failure = {
        let _permit = gates.acquire(&host, &policy).await;
        fetcher.fetch(&busy).await.unwrap_err()
    };
    let FetchError::RateLimited {
        retry_after: Some(wait),
    } = failure.error
    else {
        panic!("expected a 429, got {failure:?}");
    };
    gates.back_off(&host, wait);
    let started = std::time::Instant::now();
    let _permit = gates.acquire(&host, &policy).await;
    assert!(
        started.elapsed() + JITTER >= wait,
        "{:?}",
        started.elapsed()
    );
    fetcher.fetch(&busy).await.expect("after the back-off");
}
