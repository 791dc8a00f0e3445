//! The egress guard as a fetch meets it: a loopback site stands in for the addresses a
//! crawl must not reach, and each test checks that the site heard nothing.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use owlmesh_egress::SpecialRange;
use owlmesh_site::{RobotsMode, Site, SiteConfig, paths};

use super::{AGENT, allowing, small_site, url};
use crate::fetch::{FetchConfig, FetchError, Fetcher};
use crate::robots::{RobotsCache, RobotsConfig, RobotsVerdict};

/// A small site listening on `127.0.0.<last>` only.
async fn site_on(last: u8, change: impl FnOnce(&mut SiteConfig)) -> Site {
    let mut config = SiteConfig {
        listen: vec![SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)),
            0,
        )],
        ..small_site()
    };
    change(&mut config);
    Site::start(config).await.expect("site")
}

fn fetcher_allowing(network: Option<&str>) -> Fetcher {
    Fetcher::new(FetchConfig {
        user_agent: AGENT.into(),
        egress: network.map(allowing).unwrap_or_default(),
        ..FetchConfig::default()
    })
    .expect("fetcher")
}

#[tokio::test]
async fn by_default_a_loopback_address_is_refused_before_any_request() {
    let site = site_on(1, |_| {}).await;
    let failure = fetcher_allowing(None)
        .fetch(&url(&site.product_url(0)))
        .await
        .expect_err("loopback is refused");
    assert_eq!(
        failure.error.to_string(),
        "blocked address 127.0.0.1 (loopback)"
    );
    assert!(!failure.is_transient(), "a refusal is not retried");
    assert!(site.requests().is_empty(), "the site heard nothing");
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_refused_too() {
    let site = site_on(1, |_| {}).await;
    let by_name = site.product_url(0).replace("127.0.0.1", "localhost");
    let failure = fetcher_allowing(None)
        .fetch(&url(&by_name))
        .await
        .expect_err("localhost is loopback");
    match failure.error {
        FetchError::Blocked(blocked) => assert_eq!(blocked.range, SpecialRange::Loopback),
        other => panic!("expected a refusal, got {other}"),
    }
    assert!(site.requests().is_empty(), "the site heard nothing");
}

#[tokio::test]
async fn a_redirect_out_of_the_allowed_network_is_refused() {
    let allowed = site_on(2, |_| {}).await;
    let target = site_on(3, |_| {}).await;
    let secret = target.product_url(0);
    let lure = format!(
        "{}?location={}",
        allowed.url(paths::REDIRECT_TO),
        url::form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>()
    );
    let fetcher = fetcher_allowing(Some("127.0.0.2"));
    let failure = fetcher.fetch(&url(&lure)).await.expect_err("refused");
    assert_eq!(
        failure.error.to_string(),
        "blocked address 127.0.0.3 (loopback)"
    );
    assert_eq!(failure.redirects, [url(&secret)], "the hop is reported");
    assert_eq!(allowed.requests().len(), 1, "the lure was fetched");
    assert!(target.requests().is_empty(), "the target heard nothing");
    let own = fetcher.fetch(&url(&allowed.product_url(0))).await;
    assert!(own.is_ok(), "the allowed address is fetched: {own:?}");
}

#[tokio::test]
async fn a_robots_txt_redirected_out_of_the_allowed_network_is_not_followed() {
    let target = site_on(3, |_| {}).await;
    let elsewhere = target.url(paths::ROBOTS);
    let allowed = site_on(2, |config| config.robots = RobotsMode::Redirect(elsewhere)).await;
    let robots = RobotsCache::new(fetcher_allowing(Some("127.0.0.2")), RobotsConfig::default());
    let verdict = robots.check(&url(&allowed.url("/")), AGENT).await;
    // An unreadable robots.txt that is not a server failure allows everything (RFC 9309).
    assert_eq!(verdict, RobotsVerdict::Allowed { crawl_delay: None });
    assert_eq!(allowed.request_count(&allowed.url(paths::ROBOTS)), 1);
    assert!(target.requests().is_empty(), "the target heard nothing");
}
