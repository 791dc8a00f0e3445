//! Fuzz target `extraction`: arbitrary bytes as the body of a product page, extracted with a
//! fixed job like the catalogue example (text, attribute, link, list and HTML fields; links
//! followed with allow and deny rules; PDF and ZIP documents).
//!
//! The body's length picks the Content-Type it comes with (none, so that `<meta charset>` is
//! sniffed; UTF-8; a legacy charset), so that the seeds are plain pages. Checks that
//! extraction never panics and keeps its promises whatever the page: the product handler
//! matches and its URL capture is a field; links are at most `MAX_LINKS_PER_PAGE`, each
//! once, canonical and allowed by the job, as the dispatcher expects them; documents are
//! each once, of a wanted type, found on this page. It extracts without the scraper's time
//! budget (`extract_bytes`), so that a page slow to extract shows as a libFuzzer timeout
//! instead of being cut short.

#![no_main]

use std::collections::HashSet;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use owlmesh_job::{CompiledJob, MAX_LINKS_PER_PAGE, canonicalize, parse_job_toml};
use owlmesh_proto::v1::field_value;
use owlmesh_scraper::extract_bytes;
use url::Url;

/// The catalogue example's job, with a field of every kind.
const JOB: &str = r#"
name = "catalogue"
seeds = ["http://127.0.0.2:8081/", "http://127.0.0.3:8082/"]
allowed_hosts = ["127.0.0.2:8081", "127.0.0.3:8082"]

[follow]
selector = "a[href]"
allow = ['^/(category|product)/']
deny = ['\.pdf$']

[documents]
types = ["pdf", "application/zip"]

[[handlers]]
name = "product"
pattern = '^/product/(?P<slug>[^/]+)\.html$'
[handlers.fields]
title = "h1"
price = "span.price"
sku = { selector = "div.product", attr = "data-sku" }
image = { selector = "img.photo", attr = "src" }
tags = { selector = "ul.tags li", many = true }
description = { selector = "div.description", html = true }
"#;

/// The Content-Types a body may come with, picked by its length.
const CONTENT_TYPES: [Option<&str>; 3] = [
    None,
    Some("text/html; charset=utf-8"),
    Some("text/html; charset=windows-1252"),
];

static COMPILED: LazyLock<CompiledJob> = LazyLock::new(|| {
    let spec = parse_job_toml(JOB, "extraction job").expect("the fuzzed job is valid");
    CompiledJob::compile(&spec).expect("the fuzzed job compiles")
});

static PAGE: LazyLock<Url> = LazyLock::new(|| {
    Url::parse("http://127.0.0.2:8081/product/owl-mug.html").expect("a valid page URL")
});

fuzz_target!(|data: &[u8]| {
    let content_type = CONTENT_TYPES[data.len() % CONTENT_TYPES.len()];
    let extraction = extract_bytes(&COMPILED, &PAGE, data, content_type);

    assert_eq!(extraction.handler.as_deref(), Some("product"));
    let slug = extraction
        .fields
        .get("slug")
        .and_then(|slug| slug.value.as_ref());
    assert!(
        matches!(slug, Some(field_value::Value::Text(text)) if text == "owl-mug"),
        "the URL capture is not a field: {slug:?}"
    );

    assert!(
        extraction.links.len() <= MAX_LINKS_PER_PAGE,
        "too many links"
    );
    let mut links = HashSet::new();
    for link in &extraction.links {
        assert!(links.insert(link), "link {link} twice");
        let canonical = match canonicalize(link) {
            Ok(canonical) => canonical,
            Err(error) => panic!("link {link} is refused by the frontier: {error}"),
        };
        assert_eq!(canonical.as_str(), link, "link {link} is not canonical");
        assert!(
            COMPILED.allows_link(&canonical),
            "link {link} is not allowed"
        );
    }

    let mut documents = HashSet::new();
    for document in &extraction.documents {
        assert!(
            documents.insert(&document.url),
            "document {} twice",
            document.url
        );
        assert!(
            ["pdf", "application/zip"].contains(&document.r#type.as_str()),
            "document {} of type {}",
            document.url,
            document.r#type
        );
        assert_eq!(document.found_on, PAGE.as_str());
    }
});
