//! URL canonicalisation for the crawl frontier: one spelling per page, so that the frontier
//! dedups, the archive keys and the scrapers' host routing all agree on what "the same URL" is.
//!
//! Parsing is the `url` crate's (WHATWG), which already lowercases the scheme and host, drops
//! default ports, resolves dot segments and turns an empty path into "/". On top of that this
//! module drops the fragment, normalises percent-encoding (uppercase hex, unreserved
//! characters decoded, a stray `%` written as `%25`) and sorts the query parameters.

use std::fmt;
use std::fmt::Write as _;
use std::str::FromStr;

use url::Url;

use crate::host::{HostKey, is_web_url};
use xxhash_rust::xxh3::xxh3_64;

/// Why a URL cannot be crawled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    /// The text is not a URL at all.
    #[error("invalid url {url:?}: {source}")]
    Invalid {
        /// The text as given.
        url: String,
        /// What the parser objected to.
        #[source]
        source: url::ParseError,
    },
    /// A URL whose scheme is neither http nor https (mailto:, ftp:, javascript: ...).
    #[error("unsupported scheme {scheme:?} in {url:?}: only http and https can be crawled")]
    UnsupportedScheme {
        /// The URL as given.
        url: String,
        /// Its (lowercased) scheme.
        scheme: String,
    },
}

/// A URL in canonical form: an http(s) URL spelled the one way this module spells it.
///
/// Two URLs that canonicalise to the same `CanonicalUrl` are treated as the same page.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CanonicalUrl(Url);

impl CanonicalUrl {
    /// The canonical spelling.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The parsed form, for callers that need its parts.
    pub fn as_url(&self) -> &Url {
        &self.0
    }

    /// The path with its query (e.g. "/product/a.html?x=1"): what handler patterns match.
    pub fn path_and_query(&self) -> &str {
        &self.0[url::Position::BeforePath..]
    }

    /// The key of its host: the routing, politeness and frontier key (see [`HostKey`]).
    pub fn host_key(&self) -> HostKey {
        HostKey::of(&self.0).expect("a canonical URL is an http(s) URL with a host")
    }

    /// The per-job dedup key stored in the frontier database.
    ///
    /// Stability contract: this is XXH3-64 with seed 0 over the UTF-8 bytes of
    /// [`as_str`](Self::as_str), and it must never change. Stored fingerprints outlive
    /// releases, so changing the hash, its seed or the canonical spelling would silently
    /// duplicate every URL of every job already in a database.
    pub fn fingerprint(&self) -> u64 {
        xxh3_64(self.as_str().as_bytes())
    }
}

impl fmt::Display for CanonicalUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for CanonicalUrl {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<CanonicalUrl> for String {
    fn from(url: CanonicalUrl) -> Self {
        url.0.into()
    }
}

impl FromStr for CanonicalUrl {
    type Err = CanonicalError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        canonicalize(url)
    }
}

/// Canonicalises an absolute http(s) URL.
pub fn canonicalize(url: &str) -> Result<CanonicalUrl, CanonicalError> {
    let parsed = Url::parse(url).map_err(|source| CanonicalError::Invalid {
        url: url.to_owned(),
        source,
    })?;
    from_parsed(parsed, url)
}

/// Resolves a link (`href`) found on the page at `base` and canonicalises the result.
pub fn canonicalize_relative(base: &Url, href: &str) -> Result<CanonicalUrl, CanonicalError> {
    let joined = base.join(href).map_err(|source| CanonicalError::Invalid {
        url: href.to_owned(),
        source,
    })?;
    from_parsed(joined, href)
}

/// Canonicalises a URL parsed already (e.g. a link the scraper resolved), without parsing
/// it again.
pub fn canonicalize_url(url: Url) -> Result<CanonicalUrl, CanonicalError> {
    if !is_web_url(&url) {
        return Err(CanonicalError::UnsupportedScheme {
            url: url.as_str().to_owned(),
            scheme: url.scheme().to_owned(),
        });
    }
    Ok(normalized(url))
}

/// Applies the rules the `url` crate does not: scheme check, fragment, percent-encoding, query.
fn from_parsed(url: Url, original: &str) -> Result<CanonicalUrl, CanonicalError> {
    if !is_web_url(&url) {
        return Err(CanonicalError::UnsupportedScheme {
            url: original.to_owned(),
            scheme: url.scheme().to_owned(),
        });
    }
    Ok(normalized(url))
}

/// Drops the fragment, normalises percent-encoding and sorts the query. Each setter
/// re-serialises the URL, so only the parts that change are set.
fn normalized(mut url: Url) -> CanonicalUrl {
    if url.fragment().is_some() {
        url.set_fragment(None);
    }
    if url.path().contains('%') {
        let path = normalize_percent_encoding(url.path());
        url.set_path(&path);
    }
    if let Some(query) = url.query() {
        let canonical = canonical_query(query);
        if canonical.as_deref() != Some(query) {
            url.set_query(canonical.as_deref());
        }
    }
    CanonicalUrl(url)
}

/// Normalises each parameter and sorts them by key, then value; `None` when nothing is left.
fn canonical_query(query: &str) -> Option<String> {
    let normalized: Vec<String> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(normalize_percent_encoding)
        .collect();
    let mut pairs: Vec<(&str, Option<&str>)> = normalized
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (pair.as_str(), None),
        })
        .collect();
    pairs.sort_unstable();
    let mut out = String::with_capacity(query.len());
    for (key, value) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(key);
        if let Some(value) = value {
            out.push('=');
            out.push_str(value);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Decodes percent-encoded unreserved characters, uppercases the hex of the others, and
/// writes a `%` that starts no escape as `%25`.
fn normalize_percent_encoding(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        match decode_hex_pair(after) {
            Some(byte) => {
                if is_unreserved(byte) {
                    out.push(char::from(byte));
                } else {
                    // Writing to a String cannot fail.
                    let _ = write!(out, "%{byte:02X}");
                }
                rest = &after[2..];
            }
            None => {
                out.push_str("%25");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The byte encoded by the two hex digits `text` starts with, if it does.
fn decode_hex_pair(text: &str) -> Option<u8> {
    let bytes = text.as_bytes();
    let high = char::from(*bytes.first()?).to_digit(16)?;
    let low = char::from(*bytes.get(1)?).to_digit(16)?;
    u8::try_from(high * 16 + low).ok()
}

/// RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~".
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn canon(url: &str) -> String {
        match canonicalize(url) {
            Ok(canonical) => canonical.as_str().to_owned(),
            Err(error) => panic!("{url:?} should canonicalise: {error}"),
        }
    }

    #[test]
    fn lowercases_scheme_and_host() {
        assert_eq!(canon("HTTP://Example.COM/Path"), "http://example.com/Path");
        assert_eq!(
            canon("HtTpS://WWW.Example.Com/"),
            "https://www.example.com/"
        );
    }

    #[test]
    fn drops_default_ports_only() {
        assert_eq!(canon("http://example.com:80/a"), "http://example.com/a");
        assert_eq!(canon("https://example.com:443/a"), "https://example.com/a");
        assert_eq!(
            canon("http://example.com:443/a"),
            "http://example.com:443/a"
        );
        assert_eq!(
            canon("https://example.com:80/a"),
            "https://example.com:80/a"
        );
        assert_eq!(canon("http://127.0.0.2:8081/"), "http://127.0.0.2:8081/");
    }

    #[test]
    fn resolves_dot_segments() {
        assert_eq!(canon("http://a/b/c/./../../g"), "http://a/g");
        assert_eq!(canon("http://a/b/./c/"), "http://a/b/c/");
        assert_eq!(canon("http://a/../../x"), "http://a/x");
        assert_eq!(canon("http://a/b/%2e%2E/c"), "http://a/c");
    }

    #[test]
    fn drops_the_fragment() {
        assert_eq!(canon("http://a/b#section"), "http://a/b");
        assert_eq!(canon("http://a/b?x=1#"), "http://a/b?x=1");
    }

    #[test]
    fn uppercases_percent_encoding_hex() {
        assert_eq!(canon("http://a/caf%c3%a9"), "http://a/caf%C3%A9");
        assert_eq!(canon("http://a/x%2fy"), "http://a/x%2Fy");
        assert_eq!(canon("http://a/?q=a%2bb"), "http://a/?q=a%2Bb");
    }

    #[test]
    fn decodes_percent_encoded_unreserved_characters() {
        assert_eq!(
            canon("http://a/%7Euser/%41%62%2D%5F%2E%30"),
            "http://a/~user/Ab-_.0"
        );
        assert_eq!(canon("http://a/?%6B=%76"), "http://a/?k=v");
    }

    #[test]
    fn keeps_reserved_characters_encoded() {
        assert_eq!(canon("http://a/a%2Fb%3Fc%23d"), "http://a/a%2Fb%3Fc%23d");
        assert_eq!(canon("http://a/?k=a%26b%3Dc"), "http://a/?k=a%26b%3Dc");
    }

    #[test]
    fn encodes_a_stray_percent_sign() {
        assert_eq!(canon("http://a/100%"), "http://a/100%25");
        assert_eq!(canon("http://a/%zz"), "http://a/%25zz");
        assert_eq!(canon("http://a/%%34%31"), "http://a/%2541");
    }

    #[test]
    fn encodes_non_ascii_characters() {
        assert_eq!(canon("http://a/café"), "http://a/caf%C3%A9");
        assert_eq!(
            canon("http://Bücher.example/"),
            "http://xn--bcher-kva.example/"
        );
    }

    #[test]
    fn encodes_inner_spaces_and_trims_outer_ones() {
        assert_eq!(canon("  http://a/a b?q=c d  "), "http://a/a%20b?q=c%20d");
    }

    #[test]
    fn sorts_query_parameters_by_key_then_value() {
        assert_eq!(canon("http://a/?b=2&a=1"), "http://a/?a=1&b=2");
        assert_eq!(canon("http://a/?a=2&b=0&a=1"), "http://a/?a=1&a=2&b=0");
        assert_eq!(canon("http://a/?a=&a"), "http://a/?a&a=");
    }

    #[test]
    fn leaves_plus_signs_alone() {
        assert_eq!(canon("http://a/?q=a+b"), "http://a/?q=a+b");
    }

    #[test]
    fn drops_an_empty_query_and_empty_parameters() {
        assert_eq!(canon("http://a/?"), "http://a/");
        assert_eq!(canon("http://a/?&&"), "http://a/");
        assert_eq!(canon("http://a/?b=1&&a=2&"), "http://a/?a=2&b=1");
    }

    #[test]
    fn gives_an_empty_path_a_slash() {
        assert_eq!(canon("http://example.com"), "http://example.com/");
        assert_eq!(canon("https://example.com?x=1"), "https://example.com/?x=1");
    }

    #[test]
    fn rejects_other_schemes() {
        for url in [
            "ftp://a/b",
            "mailto:someone@example.com",
            "javascript:void(0)",
            "file:///etc",
        ] {
            let error = canonicalize(url).expect_err(url);
            assert!(
                matches!(error, CanonicalError::UnsupportedScheme { .. }),
                "{url}: {error}"
            );
        }
    }

    #[test]
    fn rejects_text_that_is_not_a_url() {
        for url in [
            "",
            "example.com/a",
            "/relative/path",
            "http://",
            "http://exa mple.com/",
        ] {
            let error = canonicalize(url).expect_err(url);
            assert!(
                matches!(error, CanonicalError::Invalid { .. }),
                "{url}: {error}"
            );
        }
    }

    #[test]
    fn error_messages_name_the_url() {
        let error = canonicalize("ftp://files.example/x").expect_err("ftp");
        assert_eq!(
            error.to_string(),
            "unsupported scheme \"ftp\" in \"ftp://files.example/x\": only http and https can be crawled"
        );
        let error = canonicalize("nope").expect_err("nope");
        assert!(
            error.to_string().starts_with("invalid url \"nope\": "),
            "{error}"
        );
    }

    #[test]
    fn resolves_relative_links_against_the_page() {
        let base = Url::parse("http://Example.com/dir/page.html?x=1#top").expect("base");
        let resolve = |href: &str| match canonicalize_relative(&base, href) {
            Ok(url) => url.as_str().to_owned(),
            Err(error) => panic!("{href:?}: {error}"),
        };
        assert_eq!(resolve("other.html"), "http://example.com/dir/other.html");
        assert_eq!(resolve("../up.html#frag"), "http://example.com/up.html");
        assert_eq!(resolve("/abs?b=2&a=1"), "http://example.com/abs?a=1&b=2");
        assert_eq!(resolve("//other.example:80/x"), "http://other.example/x");
        assert_eq!(resolve("?q=%7e"), "http://example.com/dir/page.html?q=~");
        assert_eq!(
            resolve("  spaced.html \n"),
            "http://example.com/dir/spaced.html"
        );
        assert_eq!(
            resolve("#only-a-fragment"),
            "http://example.com/dir/page.html?x=1"
        );
        assert_eq!(
            resolve("HTTPS://Secure.example:443"),
            "https://secure.example/"
        );
    }

    #[test]
    fn relative_links_to_other_schemes_are_rejected() {
        let base = Url::parse("http://example.com/").expect("base");
        for href in [
            "mailto:a@b.c",
            "javascript:alert(1)",
            "tel:+123",
            "data:text/plain,x",
        ] {
            let error = canonicalize_relative(&base, href).expect_err(href);
            assert!(
                matches!(error, CanonicalError::UnsupportedScheme { .. }),
                "{error}"
            );
        }
    }

    #[test]
    fn host_key_adds_only_non_default_ports() {
        let key = |url: &str| canonicalize(url).expect(url).host_key().to_string();
        assert_eq!(key("http://Example.com:80/"), "example.com");
        assert_eq!(key("https://example.com:443/"), "example.com");
        assert_eq!(key("http://127.0.0.2:8081/a"), "127.0.0.2:8081");
        assert_eq!(key("https://example.com:80/"), "example.com:80");
        assert_eq!(key("http://[::1]:8080/"), "[::1]:8080");
    }

    #[test]
    fn path_and_query_excludes_scheme_and_host() {
        let url = canonicalize("http://a:8080/p/q.html?z=1&y=2#f").expect("url");
        assert_eq!(url.path_and_query(), "/p/q.html?y=2&z=1");
        assert_eq!(canonicalize("http://a").expect("url").path_and_query(), "/");
    }

    #[test]
    fn fingerprint_is_xxh3_of_the_canonical_string() {
        let url = canonicalize("HTTP://Example.com:80/a/../b?y=2&x=1#f").expect("url");
        assert_eq!(url.as_str(), "http://example.com/b?x=1&y=2");
        assert_eq!(url.fingerprint(), xxh3_64(b"http://example.com/b?x=1&y=2"));
    }

    #[test]
    fn fingerprint_never_changes() {
        // Stored in databases: a change here is a data migration, not a refactor.
        let url = canonicalize("http://example.com/").expect("url");
        assert_eq!(url.fingerprint(), FINGERPRINT_OF_EXAMPLE_COM);
    }

    const FINGERPRINT_OF_EXAMPLE_COM: u64 = 13_364_996_003_878_346_283;

    #[test]
    fn display_from_str_and_into_string_agree() {
        let url: CanonicalUrl = "http://A/b?d&c".parse().expect("url");
        assert_eq!(url.to_string(), "http://a/b?c&d");
        assert_eq!(String::from(url.clone()), url.as_str());
        assert_eq!(url.as_ref(), url.as_str());
    }

    fn url_strategy() -> impl Strategy<Value = (String, Vec<String>, String)> {
        let base = (
            prop::sample::select(vec!["http", "HTTP", "https", "HttpS"]),
            prop::sample::select(vec![
                "example.com",
                "EXAMPLE.com",
                "127.0.0.2",
                "b\u{fc}cher.de",
            ]),
            prop::sample::select(vec!["", ":80", ":443", ":8081"]),
            prop::collection::vec(segment_strategy(), 0..5),
        )
            .prop_map(|(scheme, host, port, segments)| {
                format!("{scheme}://{host}{port}/{}", segments.join("/"))
            });
        let pairs = prop::collection::vec(
            (component_strategy(), prop::option::of(component_strategy())).prop_map(
                |(key, value)| match value {
                    Some(value) => format!("{key}={value}"),
                    None => key,
                },
            ),
            0..5,
        );
        (base, pairs, component_strategy())
    }

    fn segment_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(".".to_owned()),
            Just("..".to_owned()),
            Just("%2e%2E".to_owned()),
            // A '?' here would start the query early.
            component_strategy().prop_map(|segment| segment.replace('?', "%3F")),
        ]
    }

    fn component_strategy() -> impl Strategy<Value = String> {
        // No spaces: the parser trims them from the ends of a URL, which would make a
        // trailing space in the last parameter vanish or not depending on what follows.
        "([a-zA-Z0-9._~+!$'()*,;:@é/?-]|%[0-9a-fA-F]{2}|%[g-z]|%)*"
    }

    proptest! {
        #[test]
        fn canonicalize_is_idempotent((base, pairs, fragment) in url_strategy()) {
            let url = format!("{base}?{}#{fragment}", pairs.join("&"));
            let once = canonicalize(&url).expect("generated urls are valid");
            let twice = canonicalize(once.as_str()).expect("canonical urls are valid");
            prop_assert_eq!(once.as_str(), twice.as_str());
            prop_assert_eq!(once.fingerprint(), twice.fingerprint());
        }

        #[test]
        fn canonicalize_is_idempotent_on_any_text(text in "\\PC{0,60}") {
            let candidates = [text.clone(), format!("http://example.com/{text}")];
            for candidate in candidates {
                if let Ok(once) = canonicalize(&candidate) {
                    let twice = canonicalize(once.as_str());
                    prop_assert_eq!(Ok(once.clone()), twice, "from {:?}", candidate);
                }
            }
        }

        #[test]
        fn query_order_does_not_matter(
            (base, pairs, _) in url_strategy(),
            seed in any::<u64>(),
        ) {
            let mut shuffled = pairs.clone();
            let len = shuffled.len();
            for index in 0..len {
                let other = ((seed >> (index % 64)) as usize).wrapping_add(index) % len;
                shuffled.swap(index, other);
            }
            let original = canonicalize(&format!("{base}?{}", pairs.join("&")));
            let reordered = canonicalize(&format!("{base}?{}", shuffled.join("&")));
            prop_assert_eq!(original, reordered);
        }

        #[test]
        fn fragment_never_matters(
            (base, pairs, fragment) in url_strategy(),
        ) {
            let url = format!("{base}?{}", pairs.join("&"));
            let with_fragment = canonicalize(&format!("{url}#{fragment}"));
            prop_assert_eq!(canonicalize(&url), with_fragment);
        }
    }
}
