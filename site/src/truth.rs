//! The known truth of a site: its products, its documents and the pages a polite crawler
//! reaches. Reachability is computed by walking the very pages the server renders, reading
//! their `<a href>` links the way a browser resolves them, so it holds for any shape.

use std::collections::{BTreeSet, VecDeque};

use crate::catalogue::{Catalogue, Route};
use crate::paths;

/// A product page and the values a correct extraction finds on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExpectedProduct {
    /// Absolute URL of the product page.
    pub url: String,
    /// The slug in the URL, `/product/{slug}.html`.
    pub slug: String,
    /// The `<h1>` text, entities decoded and whitespace trimmed.
    pub title: String,
    /// The text of `span.price`, e.g. `$12.34`.
    pub price: String,
    /// The `data-sku` attribute of `div.product`.
    pub sku: String,
}

/// A linked document of type `pdf`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExpectedDocument {
    /// Absolute URL of the document.
    pub url: String,
    /// The page that links to it.
    pub linked_from: String,
    /// Whether its URL ends in `.pdf`; when false only its Content-Type tells.
    pub by_extension: bool,
}

/// Every product as revision `revision` shows it, in index order.
pub(crate) fn products(catalogue: &Catalogue, revision: u32) -> Vec<ExpectedProduct> {
    (0..catalogue.product_count())
        .map(|index| {
            let product = catalogue.product(index, revision);
            ExpectedProduct {
                url: catalogue.product_url(index),
                slug: product.slug,
                title: product.title,
                price: product.price,
                sku: product.sku,
            }
        })
        .collect()
}

/// Every linked PDF: the datasheets on product pages and, with the bad pages, the manual on
/// host 0's home page.
pub(crate) fn documents(catalogue: &Catalogue) -> Vec<ExpectedDocument> {
    let mut documents: Vec<ExpectedDocument> = (0..catalogue.product_count())
        .filter(|index| catalogue.has_datasheet(*index))
        .map(|index| ExpectedDocument {
            url: catalogue.datasheet_url(index),
            linked_from: catalogue.product_url(index),
            by_extension: true,
        })
        .collect();
    if catalogue.has_bad_pages() {
        documents.push(ExpectedDocument {
            url: catalogue.url(0, paths::MANUAL),
            linked_from: catalogue.url(0, "/"),
            by_extension: false,
        });
    }
    documents
}

/// What a walk over the site's links finds.
#[derive(Debug, Default)]
pub(crate) struct Walk {
    /// Site URLs a crawler fetches: linked, or redirected to, and allowed by robots.txt.
    pub(crate) reachable: BTreeSet<String>,
    /// Site URLs linked from reachable pages that robots.txt forbids.
    pub(crate) disallowed: BTreeSet<String>,
    /// Links to hosts the site does not serve.
    pub(crate) external: BTreeSet<String>,
}

impl Walk {
    /// The reachable URLs the catalogue job fetches: all but the links ending in `.pdf`,
    /// which its follow rules deny (it reports them as documents instead).
    pub(crate) fn fetched(&self) -> BTreeSet<String> {
        self.reachable
            .iter()
            .filter(|url| !url.ends_with(".pdf"))
            .cloned()
            .collect()
    }
}

/// Walks from every host's home page, following links and redirects, honouring robots.txt.
pub(crate) fn walk(catalogue: &Catalogue, revision: u32) -> Walk {
    let mut walk = Walk::default();
    let mut queue = VecDeque::new();
    for host in 0..catalogue.hosts().len() {
        visit(catalogue, &mut walk, &mut queue, (host, "/".to_owned()));
    }
    while let Some((host, path)) = queue.pop_front() {
        let route = catalogue.route(host, &path);
        let reply = catalogue.reply(host, route, revision);
        if let Some(location) = &reply.location {
            follow(catalogue, &mut walk, &mut queue, host, &path, location);
        }
        // The huge page has no links; skipping it keeps the walk fast.
        if reply.status == 200 && reply.is_html() && route != Route::Huge {
            let body = String::from_utf8_lossy(&reply.body);
            for href in anchor_hrefs(&body) {
                follow(catalogue, &mut walk, &mut queue, host, &path, href);
            }
        }
    }
    walk
}

fn follow(
    catalogue: &Catalogue,
    walk: &mut Walk,
    queue: &mut VecDeque<(usize, String)>,
    host: usize,
    base_path: &str,
    href: &str,
) {
    let base_authority = &catalogue.hosts()[host];
    let Some((authority, path)) = resolve(base_authority, base_path, href) else {
        return;
    };
    match catalogue
        .hosts()
        .iter()
        .position(|known| *known == authority)
    {
        Some(target) => visit(catalogue, walk, queue, (target, path)),
        None => {
            walk.external.insert(format!("{}{path}", origin_of(href)));
        }
    }
}

fn visit(
    catalogue: &Catalogue,
    walk: &mut Walk,
    queue: &mut VecDeque<(usize, String)>,
    (host, path): (usize, String),
) {
    let url = catalogue.url(host, &path);
    if !catalogue.robots_allows(&path) {
        walk.disallowed.insert(url);
    } else if walk.reachable.insert(url) {
        queue.push_back((host, path));
    }
}

fn origin_of(href: &str) -> &str {
    let after_scheme = href.find("://").map_or(0, |at| at + 3);
    let end = href[after_scheme..]
        .find('/')
        .map_or(href.len(), |at| after_scheme + at);
    &href[..end]
}

/// The `href` values of every `<a>` tag, in document order. The site writes its own markup,
/// so a scan for `<a ` and `href="` is exact here.
pub(crate) fn anchor_hrefs(html: &str) -> Vec<&str> {
    let mut hrefs = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<a ") {
        let tag = &rest[start..];
        let tag_end = tag.find('>').unwrap_or(tag.len());
        if let Some(at) = tag[..tag_end].find("href=\"") {
            let value = &tag[at + 6..tag_end];
            if let Some(end) = value.find('"') {
                hrefs.push(&value[..end]);
            }
        }
        rest = &tag[tag_end..];
    }
    hrefs
}

/// Resolves `href` found on `http://{authority}{base_path}` to an `(authority, path)` pair,
/// fragment dropped; `None` for links that are not http(s) or only point within the page.
pub(crate) fn resolve(authority: &str, base_path: &str, href: &str) -> Option<(String, String)> {
    let href = href.split('#').next().unwrap_or_default();
    if href.is_empty() {
        return None;
    }
    if let Some(rest) = href
        .strip_prefix("http://")
        .or_else(|| href.strip_prefix("https://"))
    {
        let (target, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let path = if path.is_empty() { "/" } else { path };
        return Some((target.to_owned(), path.to_owned()));
    }
    if href.contains(':') && !href.starts_with('/') && !href.starts_with('.') {
        return None; // mailto:, javascript:, tel: and friends
    }
    if href.starts_with('/') {
        return Some((authority.to_owned(), normalize(href)));
    }
    let base = base_path.split('?').next().unwrap_or("/");
    let directory = &base[..=base.rfind('/').unwrap_or(0)];
    Some((
        authority.to_owned(),
        normalize(&format!("{directory}{href}")),
    ))
}

/// Removes `.` and `..` segments from an absolute path, keeping its query.
fn normalize(path: &str) -> String {
    let (path, query) = match path.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path, None),
    };
    let mut segments: Vec<&str> = Vec::new();
    let parts: Vec<&str> = path.split('/').skip(1).collect();
    for (position, segment) in parts.iter().enumerate() {
        let last = position + 1 == parts.len();
        match *segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            segment => segments.push(segment),
        }
        if last && (*segment == "." || *segment == "..") {
            segments.push("");
        }
    }
    let mut normalized = format!("/{}", segments.join("/"));
    if let Some(query) = query {
        normalized.push('?');
        normalized.push_str(query);
    }
    normalized
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_links_resolve_like_a_browser() {
        let host = "127.0.0.1:80";
        let cases = [
            ("/product/a.html", "../docs/a.pdf", "/docs/a.pdf"),
            ("/product/a.html", "../category/x.html", "/category/x.html"),
            (
                "/category/x.html?page=2",
                "/category/x.html?page=3",
                "/category/x.html?page=3",
            ),
            (
                "/product/a.html",
                "../category/x/page-1.html",
                "/category/x/page-1.html",
            ),
            ("/a/b/c.html", "d.html", "/a/b/d.html"),
            ("/a/b/c.html", "../../../../e", "/e"),
            ("/", "/product/a.html#reviews", "/product/a.html"),
        ];
        for (base, href, expected) in cases {
            let (authority, path) = resolve(host, base, href).expect("resolvable");
            assert_eq!(authority, host);
            assert_eq!(path, expected, "{href} on {base}");
        }
    }

    #[test]
    fn non_http_links_and_bare_fragments_resolve_to_nothing() {
        for href in ["#top", "mailto:a@b.example", "javascript:void(0)", ""] {
            assert_eq!(resolve("h:1", "/", href), None, "{href}");
        }
        let (authority, path) = resolve("h:1", "/", "https://other.example").expect("absolute");
        assert_eq!((authority.as_str(), path.as_str()), ("other.example", "/"));
    }

    #[test]
    fn anchors_are_read_in_document_order() {
        let html =
            r#"<link href="/x.css"><a class="c" href="/one">1</a><a href="two">2</a><a>3</a>"#;
        assert_eq!(anchor_hrefs(html), vec!["/one", "two"]);
    }
}
