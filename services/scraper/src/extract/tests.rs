//! Extraction on hand-written pages: fields, links, documents, and spec errors.

use owlmesh_proto::v1::{DocumentRules, FieldRule, FollowRules, Handler, JobSpec, field_value};
use proptest::prelude::*;
use url::Url;

use owlmesh_job::CompiledJob;

use super::*;
use crate::tests::catalogue_spec;

/// A valid spec to build test specs on: its seed's host `h` is the one allowed host.
fn base() -> JobSpec {
    JobSpec {
        name: "t".into(),
        seeds: vec!["http://h/".into()],
        ..JobSpec::default()
    }
}

fn url(text: &str) -> Url {
    Url::parse(text).expect("test url")
}

fn text(value: Option<&FieldValue>) -> Option<&str> {
    match value?.value.as_ref()? {
        field_value::Value::Text(text) => Some(text),
        field_value::Value::List(_) => None,
    }
}

fn list(value: Option<&FieldValue>) -> Option<Vec<&str>> {
    match value?.value.as_ref()? {
        field_value::Value::List(list) => Some(list.values.iter().map(String::as_str).collect()),
        field_value::Value::Text(_) => None,
    }
}

const PRODUCT: &str = r##"<!doctype html><html><head><title>t</title></head><body>
<div class="product" data-sku=" OWL-00042 "><h1>
   Salt &amp; Pepper
     Mill </h1>
<p class="offer"><span class="price"><span class="currency">$</span>12.34</span></p>
<ul><li class="tag">a</li><li class="tag"> b  c </li></ul>
<img src="../img/mill.png">
<div class="desc"><b>Bold</b> text</div>
</div>
<a href="/product/other.html#reviews">x</a> <a href="/product/other.html">again</a>
<a href="../docs/mill.pdf">pdf</a> <a href="/docs/MILL.PDF?dl=1">pdf again</a>
<a href="mailto:a@b.example">mail</a> <a href="javascript:void(0)">js</a>
<a href="https://social.example.com/share">share</a> <a href="#top">top</a>
<a href="http://127.0.0.1:8081/category/x.html?page=2">cat</a>
</body></html>"##;

fn product_url() -> Url {
    url("http://127.0.0.1:8081/product/salt-pepper-mill-42.html")
}

#[test]
fn catalogue_fields_are_extracted_trimmed_and_decoded() {
    let job = CompiledJob::compile(&catalogue_spec(&["http://127.0.0.1:8081/"])).expect("compiles");
    let extraction = extract(&job, &product_url(), PRODUCT);
    assert_eq!(extraction.handler.as_deref(), Some("product"));
    assert_eq!(
        text(extraction.fields.get("title")),
        Some("Salt & Pepper Mill")
    );
    assert_eq!(text(extraction.fields.get("price")), Some("$12.34"));
    assert_eq!(text(extraction.fields.get("sku")), Some("OWL-00042"));
    assert_eq!(
        text(extraction.fields.get("slug")),
        Some("salt-pepper-mill-42"),
        "named capture"
    );
}

#[test]
fn links_are_absolute_fragment_free_deduplicated_and_allowed() {
    let job = CompiledJob::compile(&catalogue_spec(&["http://127.0.0.1:8081/"])).expect("compiles");
    let extraction = extract(&job, &product_url(), PRODUCT);
    assert_eq!(
        extraction.links,
        vec![
            "http://127.0.0.1:8081/product/other.html",
            // The catalogue denies `\.pdf$`; the second PDF link has a query, so it passes.
            "http://127.0.0.1:8081/docs/MILL.PDF?dl=1",
            "http://127.0.0.1:8081/category/x.html?page=2",
        ]
    );
}

#[test]
fn documents_are_found_by_extension_whatever_the_follow_rules() {
    let job = CompiledJob::compile(&catalogue_spec(&["http://127.0.0.1:8081/"])).expect("compiles");
    let extraction = extract(&job, &product_url(), PRODUCT);
    let urls: Vec<&str> = extraction
        .documents
        .iter()
        .map(|d| d.url.as_str())
        .collect();
    assert_eq!(
        urls,
        vec![
            "http://127.0.0.1:8081/docs/mill.pdf",
            "http://127.0.0.1:8081/docs/MILL.PDF?dl=1"
        ]
    );
    assert!(extraction.documents.iter().all(|d| d.r#type == "pdf"));
    assert!(
        extraction
            .documents
            .iter()
            .all(|d| d.found_on == product_url().as_str())
    );
}

#[test]
fn text_attr_html_and_many_take_what_they_say() {
    let rule = |selector: &str, attr: &str, html: bool, many: bool| FieldRule {
        selector: selector.into(),
        attr: attr.into(),
        html,
        many,
    };
    let spec = JobSpec {
        handlers: vec![Handler {
            name: "all".into(),
            pattern: "^/".into(),
            fields: [
                ("tags".to_owned(), rule("li.tag", "", false, true)),
                ("none".to_owned(), rule("li.absent", "", false, true)),
                ("missing".to_owned(), rule("h6", "", false, false)),
                ("image".to_owned(), rule("img", "src", false, false)),
                ("desc".to_owned(), rule("div.desc", "", true, false)),
                ("slug".to_owned(), rule("h1", "", false, false)),
            ]
            .into(),
        }],
        ..base()
    };
    let job = CompiledJob::compile(&spec).expect("compiles");
    let extraction = extract(&job, &product_url(), PRODUCT);
    assert_eq!(list(extraction.fields.get("tags")), Some(vec!["a", "b c"]));
    assert_eq!(list(extraction.fields.get("none")), Some(vec![]));
    assert!(!extraction.fields.contains_key("missing"));
    assert_eq!(
        text(extraction.fields.get("image")),
        Some("http://127.0.0.1:8081/img/mill.png")
    );
    assert_eq!(
        text(extraction.fields.get("desc")),
        Some("<b>Bold</b> text")
    );
    assert_eq!(
        text(extraction.fields.get("slug")),
        Some("Salt & Pepper Mill")
    );
}

#[test]
fn named_captures_yield_to_field_rules_of_the_same_name() {
    let mut spec = catalogue_spec(&["http://127.0.0.1:8081/"]);
    spec.handlers[0].fields.insert(
        "slug".into(),
        FieldRule {
            selector: "h1".into(),
            ..FieldRule::default()
        },
    );
    let job = CompiledJob::compile(&spec).expect("compiles");
    let extraction = extract(&job, &product_url(), PRODUCT);
    assert_eq!(
        text(extraction.fields.get("slug")),
        Some("Salt & Pepper Mill")
    );
}

#[test]
fn pages_no_handler_matches_still_yield_links() {
    let job = CompiledJob::compile(&catalogue_spec(&["http://127.0.0.1:8081/"])).expect("compiles");
    let page = url("http://127.0.0.1:8081/category/kitchen.html?page=2");
    let canonical = owlmesh_job::canonicalize(page.as_str()).expect("canonical");
    assert!(job.handler_for(&canonical).is_none());
    let extraction = extract(&job, &page, PRODUCT);
    assert_eq!(extraction.handler, None);
    assert!(extraction.fields.is_empty());
    assert_eq!(extraction.links.len(), 3);
}

#[test]
fn handler_patterns_see_the_query() {
    let spec = JobSpec {
        handlers: vec![Handler {
            name: "listing".into(),
            pattern: r"^/category/(?P<category>\w+)\.html\?page=(?P<page>\d+)$".into(),
            ..Handler::default()
        }],
        ..base()
    };
    let job = CompiledJob::compile(&spec).expect("compiles");
    let extraction = extract(&job, &url("http://h/category/garden.html?page=3"), "<p>");
    assert_eq!(text(extraction.fields.get("page")), Some("3"));
    assert_eq!(text(extraction.fields.get("category")), Some("garden"));
}

#[test]
fn a_base_element_changes_where_links_resolve() {
    let job = CompiledJob::compile(&JobSpec {
        allowed_hosts: vec!["h".into(), "cdn.example".into()],
        ..base()
    })
    .expect("compiles");
    let html = r#"<head><base href="https://cdn.example/root/"></head><a href="x.html">x</a>"#;
    let extraction = extract(&job, &url("http://h/a/b.html"), html);
    assert_eq!(extraction.links, vec!["https://cdn.example/root/x.html"]);
}

#[test]
fn allowed_hosts_match_with_or_without_a_port() {
    let spec = JobSpec {
        allowed_hosts: vec![
            "Example.com".into(),
            "127.0.0.2:8081".into(),
            "[::1]:80".into(),
        ],
        ..base()
    };
    let job = CompiledJob::compile(&spec).expect("compiles");
    assert!(job.allows_host(&url("https://example.com:8443/")));
    assert!(job.allows_host(&url("http://127.0.0.2:8081/")));
    assert!(!job.allows_host(&url("http://127.0.0.2:8082/")));
    assert!(job.allows_host(&url("http://[::1]/")));
    assert!(!job.allows_host(&url("http://other.example/")));
}

#[test]
fn without_allowed_hosts_the_seeds_hosts_are_allowed() {
    let job = CompiledJob::compile(&catalogue_spec(&[
        "http://127.0.0.2:8081/",
        "https://a.example/",
    ]))
    .expect("compiles");
    assert!(job.allows_host(&url("http://127.0.0.2:8081/x")));
    assert!(job.allows_host(&url("https://a.example:443/")));
    // A seed on its scheme's default port allows its host on every port, as an
    // allowed_hosts entry without a port does; one with a port allows only that port.
    assert!(job.allows_host(&url("http://a.example/")));
    assert!(!job.allows_host(&url("http://127.0.0.2:8082/x")));
}

#[test]
fn allow_patterns_restrict_and_deny_patterns_exclude() {
    let spec = JobSpec {
        follow: Some(FollowRules {
            selector: "a.next".into(),
            allow: vec!["/category/".into()],
            deny: vec![r"page=9".into()],
        }),
        ..base()
    };
    let job = CompiledJob::compile(&spec).expect("compiles");
    let html = r#"<a class="next" href="/category/a.html?page=2">n</a><a href="/category/b.html">b</a>
                  <a class="next" href="/product/p.html">p</a><a class="next" href="/category/a.html?page=9">9</a>"#;
    let extraction = extract(&job, &url("http://h/"), html);
    assert_eq!(extraction.links, vec!["http://h/category/a.html?page=2"]);
}

#[test]
fn document_types_match_by_extension_and_by_media_type() {
    let spec = JobSpec {
        documents: Some(DocumentRules {
            types: vec![".PDF".into(), "text/csv".into(), "dwg".into()],
        }),
        ..base()
    };
    let job = CompiledJob::compile(&spec).expect("compiles");
    assert_eq!(
        job.documents().of_url(&url("http://h/a/b.Pdf")),
        Some("pdf")
    );
    assert_eq!(
        job.documents().of_url(&url("http://h/data.csv")),
        Some("text/csv")
    );
    assert_eq!(
        job.documents().of_url(&url("http://h/plan.dwg")),
        Some("dwg")
    );
    assert_eq!(job.documents().of_url(&url("http://h/pdf")), None);
    assert_eq!(
        job.documents().of_content_type("application/PDF; name=x"),
        Some("pdf")
    );
    assert_eq!(
        job.documents().of_content_type("text/csv"),
        Some("text/csv")
    );
    assert_eq!(job.documents().of_content_type("text/html"), None);
}

#[test]
fn invalid_utf8_is_decoded_lossily() {
    let job = CompiledJob::compile(&JobSpec {
        handlers: vec![Handler {
            name: "any".into(),
            pattern: "".into(),
            fields: [(
                "title".to_owned(),
                FieldRule {
                    selector: "h1".into(),
                    ..FieldRule::default()
                },
            )]
            .into(),
        }],
        ..base()
    })
    .expect("compiles");
    let extraction = extract_bytes(
        &job,
        &url("http://h/"),
        b"<h1>Caf\xe9 \xff</h1>",
        Some("text/html; charset=utf-8"),
    );
    assert_eq!(
        text(extraction.fields.get("title")),
        Some("Caf\u{fffd} \u{fffd}")
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn extraction_never_panics_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let job = CompiledJob::compile(&catalogue_spec(&["http://h/"])).expect("compiles");
        let _ = extract_bytes(&job, &url("http://h/product/x.html"), &body, None);
    }

    #[test]
    fn extraction_never_panics_on_tag_soup(
        pieces in proptest::collection::vec(
            prop_oneof![
                Just("<a href=\"".to_owned()), Just("\">".to_owned()), Just("</a>".to_owned()),
                Just("<h1>".to_owned()), Just("<div class=\"product\" data-sku=".to_owned()),
                Just("<base href=".to_owned()), Just("<span class=price>".to_owned()),
                Just("&amp;".to_owned()), Just("../".to_owned()), Just("#".to_owned()),
                Just("http://[".to_owned()), Just("<!--".to_owned()), Just("<script>".to_owned()),
                "[ -~]{0,12}".prop_map(String::from), "\\PC{0,6}".prop_map(String::from),
            ],
            0..64,
        )
    ) {
        let job = CompiledJob::compile(&catalogue_spec(&["http://h/"])).expect("compiles");
        let html = pieces.concat();
        let extraction = extract(&job, &url("http://h/product/x.html"), &html);
        for link in &extraction.links {
            let parsed = Url::parse(link).expect("links are absolute urls");
            prop_assert!(parsed.fragment().is_none());
        }
    }
}

#[test]
fn a_page_gives_at_most_the_link_cap_and_no_overlong_link() {
    let job = CompiledJob::compile(&base()).expect("valid");
    let long = format!("/{}", "a".repeat(owlmesh_job::MAX_LINK_BYTES));
    let mut html = format!("<a href=\"{long}\">too long</a>");
    for n in 0..owlmesh_job::MAX_LINKS_PER_PAGE + 500 {
        html.push_str(&format!("<a href=\"/p/{n}\">p</a>"));
    }
    let extraction = extract(&job, &url("http://h/"), &html);
    assert_eq!(extraction.links.len(), owlmesh_job::MAX_LINKS_PER_PAGE);
    assert_eq!(
        extraction.links[0], "http://h/p/0",
        "the overlong link is not followed"
    );
    let last = owlmesh_job::MAX_LINKS_PER_PAGE - 1;
    assert_eq!(extraction.links[last], format!("http://h/p/{last}"));
}

#[test]
fn within_its_budget_extraction_finds_what_it_finds_without_one() {
    let job = CompiledJob::compile(&catalogue_spec(&["http://127.0.0.1:8081/"])).expect("valid");
    let within = extract_within(
        &job,
        &product_url(),
        PRODUCT.as_bytes(),
        Some("text/html"),
        EXTRACTION_BUDGET,
    );
    assert_eq!(within, Ok(extract(&job, &product_url(), PRODUCT)));
}

#[test]
fn a_page_past_its_budget_fails_and_says_so() {
    let job = CompiledJob::compile(&catalogue_spec(&["http://127.0.0.1:8081/"])).expect("valid");
    let over = extract_within(
        &job,
        &product_url(),
        PRODUCT.as_bytes(),
        None,
        Duration::ZERO,
    )
    .expect_err("no time at all");
    assert_eq!(
        over.to_string(),
        "extraction exceeded its time budget of 0ms"
    );
}

#[test]
fn a_slow_selector_stops_at_the_budget() {
    // `:has(~ div)` looks at every later sibling of every paragraph and finds none: with
    // 40,000 paragraphs that is 800 million steps, minutes of work, unless it stops.
    let mut spec = base();
    spec.handlers = vec![Handler {
        name: "slow".into(),
        pattern: "^/".into(),
        fields: [(
            "never".to_owned(),
            FieldRule {
                selector: "p:has(~ div)".into(),
                ..FieldRule::default()
            },
        )]
        .into(),
    }];
    let job = CompiledJob::compile(&spec).expect("valid");
    let page = format!("<body>{}</body>", "<p>row</p>".repeat(40_000));
    let budget = Duration::from_millis(200);
    let started = Instant::now();
    let over = extract_within(&job, &url("http://h/"), page.as_bytes(), None, budget);
    assert_eq!(over, Err(OverBudget { budget }));
    // Parsing the page is most of that.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "stopped after {took:?}");
}

#[test]
fn a_deeply_nested_page_stops_at_the_budget_while_it_is_parsed() {
    // 80,000 unclosed `<div>`s (400 KB) take html5ever's tree builder half a minute: the
    // budget must hold inside the parse, and nothing of the page is kept.
    let job = CompiledJob::compile(&catalogue_spec(&["http://127.0.0.1:8081/"])).expect("valid");
    let page = "<div>".repeat(80_000);
    let budget = Duration::from_millis(200);
    let started = std::time::Instant::now();
    let over = extract_within(&job, &product_url(), page.as_bytes(), None, budget);
    assert_eq!(over, Err(OverBudget { budget }));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the parse went on for {:?}",
        started.elapsed()
    );
}
