//! Fuzz target `canonical_url`: arbitrary text as a URL and as a link found on a page.
//!
//! Checks that canonicalisation never panics, and the properties the frontier relies on for
//! whatever it accepts: canonicalising a canonical URL gives the same URL (so a URL stored
//! once is recognised when it comes back), its fingerprint is the same both times, parsing
//! first and canonicalising the parsed URL agree with canonicalising the text, and every
//! canonical URL is http(s) with a host key.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use owlmesh_job::canonical::canonicalize_relative;
use owlmesh_job::{CanonicalUrl, canonicalize, canonicalize_url};
use url::Url;

/// A page the fuzzed text is a link on: a path, a query and a port, for relative links to
/// resolve against.
static BASE: LazyLock<Url> = LazyLock::new(|| {
    Url::parse("http://127.0.0.2:8081/category/a/index.html?page=2&sort=price")
        .expect("a valid base URL")
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(canonical) = canonicalize(text) {
        check_canonical(&canonical);
        let parsed = Url::parse(text).expect("a canonicalised URL parses");
        let from_parsed = canonicalize_url(parsed).expect("a canonicalised URL canonicalises");
        assert_eq!(
            from_parsed, canonical,
            "parsed first, {text:?} canonicalises otherwise"
        );
    }
    if let Ok(canonical) = canonicalize_relative(&BASE, text) {
        check_canonical(&canonical);
    }
});

/// The properties every canonical URL has.
fn check_canonical(canonical: &CanonicalUrl) {
    let scheme = canonical.as_url().scheme();
    assert!(scheme == "http" || scheme == "https", "scheme {scheme:?}");
    assert!(
        !canonical.host_key().as_str().is_empty(),
        "an empty host key"
    );
    assert!(
        canonical.as_url().fragment().is_none(),
        "a fragment is kept"
    );
    let again = match canonicalize(canonical.as_str()) {
        Ok(again) => again,
        Err(error) => panic!("canonical {canonical} is refused: {error}"),
    };
    assert_eq!(
        again.as_str(),
        canonical.as_str(),
        "canonicalising a canonical URL changes it"
    );
    assert_eq!(
        again.fingerprint(),
        canonical.fingerprint(),
        "the fingerprint moved"
    );
    assert_eq!(again.host_key(), canonical.host_key(), "the host key moved");
}
