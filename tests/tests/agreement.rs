//! Dispatcher and scraper decide alike: over generated pages of generated links, the links a
//! scraper reports are exactly the links the dispatcher admits into the frontier, because
//! both decide by the one compiled job of the job crate.

use std::collections::BTreeSet;

use owlmesh_job::CompiledJob;
use owlmesh_proto::v1::{FollowRules, JobSpec};
use proptest::prelude::*;
use url::Url;

/// The page every generated link is found on.
const PAGE: &str = "http://shop.test/catalogue/page.html";

/// A job like a user writes: two allowed hosts (one on any port, one on one port only),
/// an allow rule and a deny rule.
fn job() -> CompiledJob {
    let spec = JobSpec {
        name: "agreement".into(),
        seeds: vec![PAGE.into()],
        allowed_hosts: vec!["shop.test".into(), "127.0.0.2:8081".into()],
        follow: Some(FollowRules {
            allow: vec!["/(catalogue|product)/".into()],
            deny: vec![r"\.pdf$".into(), "print=1".into()],
            ..FollowRules::default()
        }),
        ..JobSpec::default()
    };
    CompiledJob::compile(&owlmesh_job::with_defaults(spec)).expect("the job compiles")
}

/// Hosts as they are written in links: allowed or not, in odd spellings, on odd ports.
fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("shop.test".to_owned()),
        Just("SHOP.test".to_owned()),
        Just("shop.test:80".to_owned()),
        Just("shop.test:443".to_owned()),
        Just("shop.test:8080".to_owned()),
        Just("127.0.0.2:8081".to_owned()),
        Just("127.0.0.2".to_owned()),
        Just("127.0.0.2:8082".to_owned()),
        Just("other.test".to_owned()),
        Just("sub.shop.test".to_owned()),
    ]
}

/// Paths with dot segments, percent-encoding, extensions the deny rule names, and queries.
fn path_and_query() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just("catalogue"),
        Just("product"),
        Just("about"),
        Just(".."),
        Just("."),
        Just("%7Eowl"),
        Just("a%2fb"),
        Just("x.pdf"),
        Just("x.PDF"),
        Just("item.html"),
    ];
    let query = prop_oneof![
        Just(""),
        Just("?print=1"),
        Just("?b=2&a=1"),
        Just("?page=2#reviews"),
        Just("#top"),
    ];
    (proptest::collection::vec(segment, 0..4), query)
        .prop_map(|(segments, query)| format!("/{}{query}", segments.join("/")))
}

/// A link as an `href`: absolute on some scheme, scheme-relative, root-relative or relative.
fn href() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            prop_oneof![Just("http"), Just("https"), Just("HTTP")],
            host(),
            path_and_query()
        )
            .prop_map(|(scheme, host, path)| format!("{scheme}://{host}{path}")),
        (host(), path_and_query()).prop_map(|(host, path)| format!("//{host}{path}")),
        path_and_query(),
        path_and_query().prop_map(|path| path.trim_start_matches('/').to_owned()),
        Just("mailto:owl@shop.test".to_owned()),
        Just("javascript:void(0)".to_owned()),
        Just("ftp://shop.test/catalogue/x".to_owned()),
    ]
}

fn html_of(hrefs: &[String]) -> String {
    let anchors: String = hrefs
        .iter()
        .map(|href| format!("<a href=\"{}\">link</a>\n", href.replace('"', "&quot;")))
        .collect();
    format!("<!doctype html><html><body>{anchors}</body></html>")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_scraper_reports_exactly_the_links_the_dispatcher_admits(
        hrefs in proptest::collection::vec(href(), 0..24)
    ) {
        let job = job();
        let page = Url::parse(PAGE).expect("page url");
        let reported: BTreeSet<String> =
            owlmesh_scraper::extract(&job, &page, &html_of(&hrefs)).links.into_iter().collect();
        // What the dispatcher would admit of every link on the page, resolved as a browser
        // resolves it. `#fragment` links point into the page itself and are not links.
        let admitted: BTreeSet<String> = hrefs
            .iter()
            .filter(|href| !href.starts_with('#'))
            .filter_map(|href| page.join(href).ok())
            .filter_map(|url| owlmesh_dispatcher::admitted_link(&job, url.as_str()))
            .map(String::from)
            .collect();
        prop_assert_eq!(&reported, &admitted, "hrefs: {:?}", hrefs);
        // And a reported link, sent back as it is, is admitted as it is.
        for link in &reported {
            let again = owlmesh_dispatcher::admitted_link(&job, link).map(String::from);
            prop_assert_eq!(again.as_deref(), Some(link.as_str()));
        }
    }
}

#[test]
fn the_decisions_are_the_documented_ones() {
    let job = job();
    let page = Url::parse(PAGE).expect("page url");
    let hrefs = [
        "/catalogue/a.html",                // allowed host, allow rule
        "https://shop.test/product/b.html", // https of an allowed host
        "http://shop.test:8080/product/c",  // an entry without a port allows every port
        "http://127.0.0.2:8081/product/d",  // an entry with a port allows that port
        "http://127.0.0.2:8082/product/e",  // ... and no other
        "/about/",                          // no allow rule matches
        "/catalogue/x.pdf",                 // denied
        "/catalogue/?print=1",              // denied
        "http://other.test/catalogue/",     // not an allowed host
    ]
    .map(String::from);
    let links = owlmesh_scraper::extract(&job, &page, &html_of(&hrefs)).links;
    assert_eq!(
        links,
        [
            "http://shop.test/catalogue/a.html",
            "https://shop.test/product/b.html",
            "http://shop.test:8080/product/c",
            "http://127.0.0.2:8081/product/d",
        ]
    );
}
