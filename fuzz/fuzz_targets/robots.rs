//! Fuzz target `robots`: arbitrary bytes as a robots.txt body, as a scraper reads one.
//!
//! Checks that reading the rules and matching URLs against them never panics, for fixed
//! URLs and for the first lines of the body that name a path (so that paths meet the
//! body's own patterns); that a parsed body never makes the origin unreachable; that a
//! Crawl-delay it grants is positive and at most a minute (the scraper's cap); and that a
//! path gets the same verdict whatever the host it is on.

#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use owlmesh_scraper::RobotsVerdict;
use url::Url;

/// The longest Crawl-delay the scraper honours (`MAX_CRAWL_DELAY` in its robots module).
const MAX_CRAWL_DELAY: Duration = Duration::from_secs(60);
/// Lines of the body tried as paths, at most: enough to meet its patterns.
const PATHS_FROM_BODY: usize = 4;
/// User agents as jobs set them: a product token with a version, and none (`*`).
const AGENTS: [&str; 2] = ["owlmesh/1.0 (+https://example.invalid/bot)", ""];
/// Fixed URLs: the root, a query with escapes, non-ASCII, and what wildcards and `$` meet.
const URLS: [&str; 3] = [
    "http://127.0.0.2:8081/",
    "http://127.0.0.2:8081/private/caf%C3%A9.html?x=1&y=%2F",
    "https://example.com/*$",
];

fuzz_target!(|data: &[u8]| {
    let mut urls: Vec<Url> = URLS
        .iter()
        .map(|url| Url::parse(url).expect("a valid URL"))
        .collect();
    let text = String::from_utf8_lossy(data);
    let base = urls[0].clone();
    urls.extend(
        text.lines()
            .filter_map(|line| line.split_once(':').map(|(_, value)| value.trim()))
            .filter(|value| value.starts_with('/'))
            .take(PATHS_FROM_BODY)
            .filter_map(|path| base.join(path).ok()),
    );
    for url in &urls {
        for agent in AGENTS {
            let verdict = RobotsVerdict::of_text(data, url, agent);
            match verdict {
                RobotsVerdict::Allowed {
                    crawl_delay: Some(delay),
                } => assert!(
                    !delay.is_zero() && delay <= MAX_CRAWL_DELAY,
                    "crawl delay {delay:?}"
                ),
                RobotsVerdict::Allowed { crawl_delay: None } | RobotsVerdict::Disallowed => {}
                RobotsVerdict::Unreachable { .. } => panic!("a parsed body is unreachable"),
            }
        }
    }
    // Rules match the path and query alone: the same path on another origin (which the
    // scraper would ask its own robots.txt about) gets the same verdict from this body.
    if let Some(url) = urls.get(URLS.len()) {
        let mut elsewhere = url.clone();
        elsewhere
            .set_host(Some("example.com"))
            .expect("example.com is a host");
        let agent = AGENTS[0];
        assert_eq!(
            RobotsVerdict::of_text(data, &elsewhere, agent),
            RobotsVerdict::of_text(data, url, agent),
            "{url} and {elsewhere} get different verdicts"
        );
    }
});
