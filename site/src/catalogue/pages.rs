//! The shop's pages as plain data: the reply to each route, its HTML and its links. The
//! server only adds sockets and the static writer only adds files, so what the shop serves
//! can be checked without either.

use std::fmt::Write as _;
use std::time::Duration;

use axum::body::Bytes;

use super::{Catalogue, Product, Route};
use crate::config::RobotsMode;
use crate::paths;
use crate::text::{MATERIALS, category_title, escape, paragraphs, pick, review, splitmix};

/// A fixed, small PDF so document responses look like the real thing.
const PDF_BODY: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n\
2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

const HTML: &str = "text/html; charset=utf-8";

/// Where external links point: a host the site does not serve and a job does not allow.
pub(crate) const EXTERNAL_ORIGIN: &str = "https://social.example.com";

/// Links every home page of a shop with bad pages offers to them.
const BAD_PAGES: [(&str, &str); 9] = [
    (paths::LOOP_A, "Round and round"),
    (paths::MISSING, "Last year's offers"),
    (paths::FLAKY, "Sometimes up"),
    (paths::HUGE, "The full inventory"),
    (paths::INVALID_UTF8, "Caf\u{e9} menu"),
    (paths::SLOW, "Slow lane"),
    (paths::BUSY, "Busy counter"),
    (paths::REDIRECT_START, "Deal of the day"),
    ("#top", "Top of this page"),
];

const STYLE: &str = "<style>\nbody{font-family:sans-serif;margin:0 auto;max-width:60rem}\n\
header,footer{background:#223;color:#eee;padding:1rem}\nnav ul{display:flex;gap:1rem;\
list-style:none}\n.price{font-weight:bold;color:#a30}\n.listing li{margin:.5rem 0}\n\
table.specs td{padding:.2rem .6rem;border-bottom:1px solid #ccc}\n</style>\n";

/// A response, as plain data.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) content_type: Option<&'static str>,
    pub(crate) location: Option<String>,
    pub(crate) body: Bytes,
    /// Sent in chunks without a Content-Length, as dynamic pages often are.
    pub(crate) streamed: bool,
}

impl Reply {
    fn html(status: u16, body: String) -> Self {
        Self {
            status,
            content_type: Some(HTML),
            location: None,
            body: Bytes::from(body),
            streamed: false,
        }
    }

    pub(crate) fn redirect(status: u16, location: String) -> Self {
        Self {
            status,
            content_type: Some(HTML),
            location: Some(location),
            body: Bytes::from_static(b"<!doctype html><title>Moved</title><p>Moved.</p>"),
            streamed: false,
        }
    }

    fn bytes(content_type: &'static str, body: Bytes) -> Self {
        Self {
            status: 200,
            content_type: Some(content_type),
            location: None,
            body,
            streamed: false,
        }
    }

    /// Whether this is an HTML page.
    pub(crate) fn is_html(&self) -> bool {
        self.content_type
            .is_some_and(|kind| kind.starts_with("text/html"))
    }
}

impl Catalogue {
    /// The response for `route` on host `host`, without delays or first-time failures.
    pub(crate) fn reply(&self, host: usize, route: Route, revision: u32) -> Reply {
        match route {
            Route::Home => Reply::html(200, self.home_page(host, revision)),
            Route::Robots => self.robots_reply(),
            Route::Category { category, page } => {
                Reply::html(200, self.category_page(host, category, page, revision))
            }
            Route::Product(index) => Reply::html(200, self.product_page(index, revision)),
            Route::Datasheet(_) | Route::Manual => {
                Reply::bytes("application/pdf", Bytes::from_static(PDF_BODY))
            }
            Route::Private | Route::PrivateStaff => Reply::html(200, self.private_page(host)),
            Route::LoopA => Reply::redirect(302, paths::LOOP_B.to_owned()),
            Route::LoopB => Reply::redirect(302, paths::LOOP_A.to_owned()),
            Route::RedirectStart => Reply::redirect(301, paths::REDIRECT_MIDDLE.to_owned()),
            Route::RedirectMiddle => Reply::redirect(302, self.product_url(0)),
            // The server answers it from the query; without one it leads home.
            Route::RedirectTo => Reply::redirect(302, "/".to_owned()),
            Route::Missing | Route::NotFound => Reply::html(404, self.not_found_page(host)),
            Route::Flaky => Reply::html(200, self.plain_page(host, "Back on its feet", 40)),
            Route::Huge => Reply {
                streamed: true,
                ..Reply::bytes(HTML, self.huge_page())
            },
            Route::InvalidUtf8 => Reply::bytes(HTML, invalid_utf8_page()),
            Route::Slow => Reply::html(200, self.plain_page(host, "Worth the wait", 40)),
            Route::Busy => Reply::html(200, self.plain_page(host, "Not so busy now", 40)),
        }
    }

    fn robots_reply(&self) -> Reply {
        match &self.robots {
            RobotsMode::Served => Reply::bytes(
                "text/plain; charset=utf-8",
                Bytes::from(robots_txt(self.crawl_delay)),
            ),
            RobotsMode::Missing => Reply::html(404, "<!doctype html><title>404</title>".into()),
            RobotsMode::ServerError => Reply::html(503, "<!doctype html><title>503</title>".into()),
            RobotsMode::Redirect(location) => Reply::redirect(302, location.clone()),
        }
    }

    /// Link from a page on host `from` to `path` on host `to`: relative when it can be.
    fn href(&self, from: usize, to: usize, path: &str) -> String {
        if from == to {
            path.to_owned()
        } else {
            self.url(to, path)
        }
    }

    /// The shared page frame: head, navigation to every category, the content, a footer.
    fn layout(&self, host: usize, title: &str, content: &str) -> String {
        let mut page = String::with_capacity(4096 + content.len());
        let _ = write!(
            page,
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <title>{title} | Owl Outfitters</title>\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <link rel=\"stylesheet\" href=\"/static/site.css\">\n{STYLE}</head>\n<body>\n\
             <header id=\"top\"><a class=\"logo\" href=\"/\">Owl Outfitters</a>\n<nav><ul>\n",
            title = escape(title),
        );
        for category in 0..self.categories {
            let _ = writeln!(
                page,
                "  <li><a href=\"{}\">{}</a></li>",
                self.category_path(category, 1),
                category_title(category)
            );
        }
        let _ = write!(
            page,
            "</ul></nav></header>\n<main>\n{content}</main>\n<footer>\n\
             <p>Owl Outfitters is a test catalogue served on {host}.</p>\n\
             <p><a href=\"#top\">Back to top</a> · <a href=\"/\">Home</a></p>\n\
             <script>document.documentElement.classList.add('js');</script>\n\
             </footer>\n</body>\n</html>\n",
            host = self.hosts[host],
        );
        page
    }

    fn home_page(&self, host: usize, revision: u32) -> String {
        let mut content = String::from("<h1>Welcome to Owl Outfitters</h1>\n");
        content.push_str(&paragraphs(self.text_seed(host as u64), 2));
        content.push_str("<section class=\"featured\"><h2>Featured</h2>\n<ul>\n");
        for index in (host..self.products).step_by(self.hosts.len()).take(8) {
            let product = self.product(index, revision);
            let _ = writeln!(
                content,
                "  <li><a href=\"{}\">{}</a> <span class=\"price\">{}</span></li>",
                self.product_path(index),
                escape(&product.title),
                product.price,
            );
        }
        let _ = writeln!(
            content,
            "</ul></section>\n<section class=\"corners\"><h2>Odd corners</h2>\n<ul>\n  \
             <li><a href=\"{}\">Staff area</a></li>",
            paths::PRIVATE
        );
        if self.bad_pages {
            for (path, text) in BAD_PAGES {
                let _ = writeln!(content, "  <li><a href=\"{path}\">{text}</a></li>");
            }
            if host == 0 {
                let _ = writeln!(
                    content,
                    "  <li><a href=\"{}\">Owner's manual</a></li>",
                    paths::MANUAL
                );
            }
        }
        content
            .push_str("</ul></section>\n<section class=\"stores\"><h2>Our other stores</h2><ul>\n");
        for other in (0..self.hosts.len()).filter(|other| *other != host) {
            let _ = writeln!(
                content,
                "  <li><a href=\"{}\">Store {other}</a></li>",
                self.url(other, "/")
            );
        }
        let _ = write!(
            content,
            "</ul></section>\n<p>Follow us on <a href=\"{EXTERNAL_ORIGIN}/owl-outfitters\">\
             Social</a> or <a href=\"mailto:hello@owl.example\">write to us</a>.</p>\n",
        );
        self.layout(host, "Home", &content)
    }

    fn category_page(&self, host: usize, category: usize, page: usize, revision: u32) -> String {
        let pages = self.listing_pages(host, category);
        let name = category_title(category);
        let mut content = format!("<h1>{name} <small>page {page} of {pages}</small></h1>\n");
        content.push_str(&paragraphs(
            self.text_seed((category * 31 + page) as u64),
            1,
        ));
        content.push_str("<ol class=\"listing\">\n");
        let shown = self
            .listing(host, category)
            .iter()
            .skip((page - 1) * self.per_page)
            .take(self.per_page);
        for index in shown {
            let product = self.product(*index, revision);
            let link = self.product_path(*index);
            let _ = writeln!(
                content,
                "  <li class=\"item\"><a href=\"{link}\">{}</a> \
                 <span class=\"price\">{}</span> <a href=\"{link}#reviews\">reviews</a></li>",
                escape(&product.title),
                product.price,
            );
        }
        content.push_str("</ol>\n<nav class=\"pagination\">\n");
        if page > 1 {
            let _ = writeln!(
                content,
                "  <a rel=\"prev\" href=\"{}\">Previous</a>",
                self.category_path(category, page - 1)
            );
        }
        for number in 1..=pages {
            let _ = writeln!(
                content,
                "  <a href=\"{}\">{number}</a>",
                self.category_path(category, number)
            );
        }
        if page < pages {
            let _ = writeln!(
                content,
                "  <a rel=\"next\" href=\"{}\">Next</a>",
                self.category_path(category, page + 1)
            );
        }
        content.push_str("</nav>\n");
        self.layout(host, &format!("{name}, page {page}"), &content)
    }

    fn product_page(&self, index: usize, revision: u32) -> String {
        let host = self.product_host(index);
        let product = self.product(index, revision);
        let mut content = format!(
            "<p class=\"breadcrumbs\"><a href=\"/\">Home</a> › <a href=\"..{}\">{}</a></p>\n\
             <div class=\"product\" data-sku=\"{}\">\n<h1>\n    {}\n  </h1>\n\
             <p class=\"offer\"><span class=\"price\"><span class=\"currency\">$</span>{}</span>\
             <button type=\"button\">Add to basket</button></p>\n",
            self.category_path(product.category, 1),
            category_title(product.category),
            product.sku,
            escape(&product.title),
            &product.price[1..],
        );
        content.push_str(&paragraphs(self.text_seed(index as u64), 3));
        content.push_str(&spec_table(&product, self.text_seed(index as u64 + 7)));
        if self.has_datasheet(index) {
            let _ = writeln!(
                content,
                "<p><a class=\"datasheet\" href=\"../docs/{}.pdf\">Datasheet (PDF)</a></p>",
                product.slug
            );
        }
        content.push_str("</div>\n");
        content.push_str(&self.related(index, revision));
        content.push_str(&self.reviews(index));
        let _ = writeln!(
            content,
            "<p><a href=\"{EXTERNAL_ORIGIN}/share?item={}\">Share</a> · \
             <a href=\"javascript:void(0)\">Print</a></p>",
            product.sku,
        );
        self.layout(host, &product.title, &content)
    }

    fn related(&self, index: usize, revision: u32) -> String {
        let host = self.product_host(index);
        let mut section =
            String::from("<section class=\"related\"><h2>You may also like</h2><ul>\n");
        if self.products > 1 {
            for step in [1, 7, 31] {
                let other = (index + step) % self.products;
                let product = self.product(other, revision);
                let _ = writeln!(
                    section,
                    "  <li class=\"related-item\"><a href=\"{}\">{}</a></li>",
                    self.href(host, self.product_host(other), &self.product_path(other)),
                    escape(&product.title),
                );
            }
        }
        section.push_str("</ul></section>\n");
        section
    }

    /// The reviews section: between three quarters and five quarters of `reviews` of them.
    fn reviews(&self, index: usize) -> String {
        let mut section = String::from("<section id=\"reviews\"><h2>Reviews</h2>\n");
        if self.reviews == 0 {
            section.push_str("<p>No reviews yet. <a href=\"#reviews\">Be the first</a>.</p>\n");
        } else {
            let seed = self.text_seed(index as u64 + 13);
            let spread = (self.reviews / 2) as u64 + 1;
            let count = self.reviews * 3 / 4 + (splitmix(seed) % spread) as usize;
            for number in 0..count {
                section.push_str(&review(seed ^ ((number as u64) << 32)));
            }
        }
        section.push_str("</section>\n");
        section
    }

    fn private_page(&self, host: usize) -> String {
        let content = format!(
            "<h1>Staff only</h1>\n<p>Nothing to see here.</p>\n\
             <p><a href=\"{}\">Staff handbook</a></p>\n",
            paths::PRIVATE_STAFF
        );
        self.layout(host, "Staff only", &content)
    }

    fn not_found_page(&self, host: usize) -> String {
        self.layout(
            host,
            "Not found",
            "<h1>Not found</h1>\n<p>That page is gone.</p>\n",
        )
    }

    fn plain_page(&self, host: usize, title: &str, seed: u64) -> String {
        let content = format!("<h1>{title}</h1>\n{}", paragraphs(self.text_seed(seed), 2));
        self.layout(host, title, &content)
    }

    fn huge_page(&self) -> Bytes {
        self.huge_page
            .get_or_init(|| build_huge_page(self.huge_bytes))
            .clone()
    }
}

fn robots_txt(crawl_delay: Option<Duration>) -> String {
    let mut text =
        String::from("# robots.txt for Owl Outfitters\nUser-agent: *\nDisallow: /private/\n");
    if let Some(delay) = crawl_delay {
        let _ = writeln!(text, "Crawl-delay: {}", delay.as_secs_f64());
    }
    text.push_str("\nUser-agent: GreedyBot\nDisallow: /\n");
    text
}

fn spec_table(product: &Product, seed: u64) -> String {
    let mix = splitmix(seed);
    format!(
        "<table class=\"specs\">\n<tr><td>SKU</td><td>{}</td></tr>\n\
         <tr><td>Weight</td><td>{} g</td></tr>\n<tr><td>Width</td><td>{} cm</td></tr>\n\
         <tr><td>Colour</td><td>{}</td></tr>\n<tr><td>Warranty</td><td>{} years</td></tr>\n\
         </table>\n",
        product.sku,
        100 + mix % 4900,
        5 + (mix >> 12) % 95,
        pick(&MATERIALS, mix >> 20),
        1 + (mix >> 28) % 5,
    )
}

fn build_huge_page(size: usize) -> Bytes {
    let head = "<!doctype html>\n<html><head><title>Inventory</title></head><body>\
                <h1>The full inventory</h1>\n";
    let line = "<p>row row row your boat, gently down the stream, merrily merrily.</p>\n";
    let mut page = String::with_capacity(size + line.len() * 2);
    page.push_str(head);
    while page.len() < size.saturating_sub(16) {
        page.push_str(line);
    }
    page.push_str("</body></html>\n");
    Bytes::from(page)
}

fn invalid_utf8_page() -> Bytes {
    let mut page = b"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Caf".to_vec();
    page.extend_from_slice(b"\xe9</title></head><body>\n<h1>Caf\xe9 \xff\xfe menu</h1>\n");
    page.extend_from_slice(b"<p>Latin-1 bytes \xe0 la carte, served as UTF-8.</p>\n");
    page.extend_from_slice(b"<p><a href=\"/\">Home</a></p>\n</body></html>\n");
    Bytes::from(page)
}
