//! The demo shop's pages as plain data: which path is which page, and its HTML. The server
//! only adds sockets, so what the shop serves can be tested without one.

use std::fmt::Write as _;

use super::catalogue::{CATEGORIES, Catalogue, PRODUCTS_PER_PAGE, Product, category_slug};

/// robots.txt: every agent is kept out of `/private/`.
pub(crate) const ROBOTS_TXT: &str = "User-agent: *\nDisallow: /private/\n";
/// Where the shop's external links point: a host no demo job allows, so never fetched.
pub(crate) const EXTERNAL_SITE: &str = "http://reviews.example";
/// A small, valid PDF: the manuals' content.
const PDF_BODY: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n\
2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

const HTML: &str = "text/html; charset=utf-8";

/// A response, before it meets a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    fn html(status: u16, body: String) -> Self {
        Self {
            status,
            content_type: HTML,
            body: body.into_bytes(),
        }
    }
}

/// The reply of host `host` to a GET of `path` (query strings are ignored).
pub(crate) fn respond(catalogue: &Catalogue, host: usize, path: &str) -> Reply {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    if path == "/" {
        return Reply::html(200, home(catalogue, host));
    }
    if path == "/robots.txt" {
        return Reply {
            status: 200,
            content_type: "text/plain; charset=utf-8",
            body: ROBOTS_TXT.as_bytes().to_vec(),
        };
    }
    if path.starts_with("/private/") {
        return Reply::html(200, private());
    }
    if let Some(reply) = product_reply(catalogue, host, path) {
        return reply;
    }
    if let Some((category, page)) = listing_path(catalogue, host, path) {
        return Reply::html(200, listing(catalogue, host, category, page));
    }
    Reply::html(404, not_found())
}

/// Product pages and manuals, when `path` names one that lives on `host`.
fn product_reply(catalogue: &Catalogue, host: usize, path: &str) -> Option<Reply> {
    if let Some(slug) = path
        .strip_prefix("/product/")
        .and_then(|rest| rest.strip_suffix(".html"))
    {
        let product = catalogue.product_by_slug(slug).filter(|p| p.host == host)?;
        return Some(Reply::html(200, product_page(catalogue, product)));
    }
    let slug = path.strip_prefix("/docs/")?.strip_suffix(".pdf")?;
    catalogue
        .product_by_slug(slug)
        .filter(|p| p.host == host && p.has_manual)?;
    Some(Reply {
        status: 200,
        content_type: "application/pdf",
        body: PDF_BODY.to_vec(),
    })
}

/// `/category/<slug>/page-<n>.html` as (category, page from 1), when that page exists.
fn listing_path(catalogue: &Catalogue, host: usize, path: &str) -> Option<(usize, usize)> {
    let rest = path.strip_prefix("/category/")?;
    let (slug, page) = rest.split_once('/')?;
    let category = (0..CATEGORIES.len()).find(|c| category_slug(*c) == slug)?;
    let page: usize = page
        .strip_prefix("page-")?
        .strip_suffix(".html")?
        .parse()
        .ok()?;
    (1..=catalogue.listing_pages(host, category))
        .contains(&page)
        .then_some((category, page))
}

/// The path of a listing page.
pub(crate) fn listing_href(category: usize, page: usize) -> String {
    format!("/category/{}/page-{page}.html", category_slug(category))
}

fn head(title: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · Owl &amp; Co. demo shop</title></head>\n<body>\n"
    )
}

const FOOT: &str = "</body></html>\n";

fn home(catalogue: &Catalogue, host: usize) -> String {
    let mut page = head("Home");
    let _ = writeln!(
        page,
        "<h1>Owl &amp; Co. — shop {}</h1>\n<ul class=\"categories\">",
        host + 1
    );
    for (category, name) in CATEGORIES.iter().enumerate() {
        let count = catalogue.listing(host, category).len();
        let _ = writeln!(
            page,
            "<li><a href=\"{}\">{name}</a> ({count})</li>",
            listing_href(category, 1),
        );
    }
    page.push_str("</ul>\n<nav class=\"elsewhere\">\n");
    for (other, base) in catalogue.bases().iter().enumerate() {
        if other != host {
            let _ = writeln!(page, "<a href=\"{base}/\">Shop {}</a>", other + 1);
        }
    }
    let _ = writeln!(
        page,
        "<a href=\"/private/\">Staff area</a>\n<a href=\"{EXTERNAL_SITE}/\">Reviews</a>\n</nav>"
    );
    page.push_str(FOOT);
    page
}

fn listing(catalogue: &Catalogue, host: usize, category: usize, number: usize) -> String {
    let name = CATEGORIES[category];
    let mut page = head(name);
    let _ = writeln!(
        page,
        "<h1>{name}, page {number}</h1>\n<ul class=\"products\">"
    );
    let start = (number - 1) * PRODUCTS_PER_PAGE;
    for index in catalogue
        .listing(host, category)
        .iter()
        .skip(start)
        .take(PRODUCTS_PER_PAGE)
    {
        let product = &catalogue.products()[*index];
        let _ = writeln!(
            page,
            "<li><a href=\"/product/{}.html\">{}</a> <span class=\"price\">{}</span></li>",
            product.slug, product.title, product.price
        );
    }
    page.push_str("</ul>\n<nav class=\"pages\">\n");
    let pages = catalogue.listing_pages(host, category);
    if number > 1 {
        let _ = writeln!(
            page,
            "<a rel=\"prev\" href=\"{}\">Previous</a>",
            listing_href(category, number - 1)
        );
    }
    for other in (1..=pages).filter(|other| *other != number) {
        let _ = writeln!(
            page,
            "<a href=\"{}\">{other}</a>",
            listing_href(category, other)
        );
    }
    if number < pages {
        let _ = writeln!(
            page,
            "<a rel=\"next\" href=\"{}\">Next</a>",
            listing_href(category, number + 1)
        );
    }
    page.push_str("<a href=\"/\">Home</a>\n</nav>\n");
    page.push_str(FOOT);
    page
}

fn product_page(catalogue: &Catalogue, product: &Product) -> String {
    let mut page = head(&product.title);
    let _ = writeln!(
        page,
        "<div class=\"product\" data-sku=\"{sku}\">\n<h1>{title}</h1>\n<span class=\"price\">{price}</span>\n<p class=\"description\">{description}</p>",
        sku = product.sku,
        title = product.title,
        price = product.price,
        description = product.description,
    );
    if product.has_manual {
        let _ = writeln!(
            page,
            "<a class=\"manual\" href=\"/docs/{}.pdf\">Manual (PDF)</a>",
            product.slug
        );
    }
    let _ = writeln!(
        page,
        "<a class=\"review\" href=\"{EXTERNAL_SITE}/{}\">Reviews elsewhere</a>\n</div>\n<ul class=\"related\">",
        product.slug
    );
    for index in &product.related {
        let other = &catalogue.products()[*index];
        let _ = writeln!(
            page,
            "<li><a href=\"{}\">{}</a></li>",
            catalogue.product_url(other),
            other.title
        );
    }
    let _ = writeln!(
        page,
        "</ul>\n<nav><a href=\"{}\">{}</a> <a href=\"/\">Home</a></nav>",
        listing_href(product.category, 1),
        CATEGORIES[product.category]
    );
    page.push_str(FOOT);
    page
}

fn private() -> String {
    let mut page = head("Staff area");
    page.push_str("<h1>Staff area</h1>\n<p>robots.txt keeps polite crawlers out of here.</p>\n");
    page.push_str(FOOT);
    page
}

fn not_found() -> String {
    let mut page = head("Not found");
    page.push_str("<h1>Not found</h1>\n<a href=\"/\">Home</a>\n");
    page.push_str(FOOT);
    page
}
