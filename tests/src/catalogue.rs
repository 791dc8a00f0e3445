//! The test site's content: products, categories, pages and their links, as pure functions
//! of the site's shape and revision. The server and the known truth both read from here, so
//! what the site serves and what tests expect cannot drift apart.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Bytes;

use crate::paths;
use crate::site::{RobotsMode, SiteConfig};

const ADJECTIVES: [&str; 16] = [
    "Sturdy", "Gentle", "Bright", "Compact", "Rustic", "Polished", "Quiet", "Nimble", "Hardy",
    "Elegant", "Vintage", "Modern", "Cosy", "Bold", "Subtle", "Handy",
];
const MATERIALS: [&str; 10] = [
    "Oak", "Copper", "Linen", "Walnut", "Ceramic", "Bamboo", "Steel", "Wool", "Glass", "Cork",
];
const NOUNS: [&str; 12] = [
    "Teapot",
    "Lantern",
    "Notebook",
    "Stool",
    "Planter",
    "Salt & Pepper Mill",
    "Blanket",
    "Clock",
    "Toolbox",
    "Bookend",
    "Kettle",
    "Basket",
];
const CATEGORY_NAMES: [&str; 8] = [
    "Kitchen", "Garden", "Office", "Outdoor", "Lighting", "Storage", "Textiles", "Tools",
];
const FILLER: [&str; 24] = [
    "crafted",
    "with",
    "care",
    "for",
    "everyday",
    "use",
    "and",
    "built",
    "to",
    "last",
    "a",
    "classic",
    "piece",
    "that",
    "fits",
    "any",
    "home",
    "easy",
    "clean",
    "finish",
    "made",
    "from",
    "responsibly",
    "sourced",
];

/// A fixed, small PDF so document responses look like the real thing.
const PDF_BODY: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n\
2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

/// One product as the site currently shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Product {
    pub(crate) index: usize,
    pub(crate) slug: String,
    pub(crate) title: String,
    pub(crate) price: String,
    pub(crate) sku: String,
    pub(crate) category: usize,
}

/// What one request resolves to, before the server adds its stateful behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Home,
    Robots,
    Category { category: usize, page: usize },
    Product(usize),
    Datasheet(usize),
    Manual,
    Private,
    PrivateStaff,
    LoopA,
    LoopB,
    RedirectStart,
    RedirectMiddle,
    Missing,
    Flaky,
    Huge,
    InvalidUtf8,
    Slow,
    Busy,
    NotFound,
}

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
            content_type: Some("text/html; charset=utf-8"),
            location: None,
            body: Bytes::from(body),
            streamed: false,
        }
    }

    fn redirect(status: u16, location: String) -> Self {
        Self {
            status,
            content_type: Some("text/html; charset=utf-8"),
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
}

/// The site's shape: hosts, products, categories and the knobs that change pages.
#[derive(Debug)]
pub(crate) struct Catalogue {
    hosts: Vec<String>,
    products: usize,
    per_page: usize,
    categories: Vec<String>,
    documents_every: usize,
    crawl_delay: Option<Duration>,
    robots: RobotsMode,
    huge_bytes: usize,
    huge_page: OnceLock<Bytes>,
    slugs: HashMap<String, usize>,
}

impl Catalogue {
    /// Lays out the catalogue over `hosts` (authorities such as `127.0.0.1:40123`).
    pub(crate) fn new(config: &SiteConfig, hosts: Vec<String>) -> Self {
        let categories = (0..config.categories.max(1)).map(category_slug).collect();
        let slugs = (0..config.products)
            .map(|index| (base_slug(index), index))
            .collect();
        Self {
            hosts,
            products: config.products,
            per_page: config.products_per_page.max(1),
            categories,
            documents_every: config.documents_every,
            crawl_delay: config.crawl_delay,
            robots: config.robots,
            huge_bytes: config.huge_page_bytes,
            huge_page: OnceLock::new(),
            slugs,
        }
    }

    /// The authorities the site listens on, host 0 first.
    pub(crate) fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// How many products the site has.
    pub(crate) fn product_count(&self) -> usize {
        self.products
    }

    /// Absolute URL of `path` on host `host`.
    pub(crate) fn url(&self, host: usize, path: &str) -> String {
        format!("http://{}{path}", self.hosts[host])
    }

    /// The host that serves product `index`: products are dealt round-robin over the hosts.
    pub(crate) fn product_host(&self, index: usize) -> usize {
        index % self.hosts.len()
    }

    /// Absolute URL of product `index`'s page.
    pub(crate) fn product_url(&self, index: usize) -> String {
        self.url(
            self.product_host(index),
            &format!("/product/{}.html", base_slug(index)),
        )
    }

    /// Whether product `index` has a datasheet PDF.
    pub(crate) fn has_datasheet(&self, index: usize) -> bool {
        self.documents_every > 0 && index.is_multiple_of(self.documents_every)
    }

    /// Absolute URL of product `index`'s datasheet.
    pub(crate) fn datasheet_url(&self, index: usize) -> String {
        self.url(
            self.product_host(index),
            &format!("/docs/{}.pdf", base_slug(index)),
        )
    }

    /// Whether robots.txt, as served, lets a crawler fetch `path`.
    pub(crate) fn robots_allows(&self, path: &str) -> bool {
        match self.robots {
            RobotsMode::Served => !path.starts_with(paths::PRIVATE),
            RobotsMode::Missing => true,
            // A crawler that cannot read robots.txt must assume everything is disallowed.
            RobotsMode::ServerError => false,
        }
    }

    /// Product `index` as revision `revision` shows it. From revision 2 on, every tenth
    /// product (index 0, 10, 20, …) gets a new title and price; the others never change.
    pub(crate) fn product(&self, index: usize, revision: u32) -> Product {
        let mix = splitmix(index as u64);
        let noun = NOUNS[(mix % NOUNS.len() as u64) as usize];
        let mut title = format!(
            "{} {} {} No. {index}",
            ADJECTIVES[index % ADJECTIVES.len()],
            MATERIALS[(index / ADJECTIVES.len()) % MATERIALS.len()],
            noun,
        );
        let mut cents = 199 + (mix >> 16) % 49_800;
        if revision >= 2 && index.is_multiple_of(10) {
            title.push_str(&format!(" (Mark {revision})"));
            cents += 100 * u64::from(revision);
        }
        Product {
            index,
            slug: base_slug(index),
            title,
            price: format!("${}.{:02}", cents / 100, cents % 100),
            sku: format!("OWL-{index:05}"),
            category: index % self.categories.len(),
        }
    }

    /// Resolves a request on host `host` to a route.
    pub(crate) fn route(&self, host: usize, path_and_query: &str) -> Route {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        if let Some(route) = fixed_route(path, query) {
            return route;
        }
        if let Some(slug) = strip(path, "/category/", ".html") {
            return self.category_route(slug, query);
        }
        if let Some(slug) = strip(path, "/product/", ".html") {
            return self
                .owned_product(host, slug)
                .map_or(Route::NotFound, Route::Product);
        }
        if let Some(slug) = strip(path, "/docs/", ".pdf") {
            return match self.owned_product(host, slug) {
                Some(index) if self.has_datasheet(index) => Route::Datasheet(index),
                _ => Route::NotFound,
            };
        }
        Route::NotFound
    }

    fn category_route(&self, slug: &str, query: &str) -> Route {
        let Some(category) = self.categories.iter().position(|name| name == slug) else {
            return Route::NotFound;
        };
        let page = match query {
            "" => 1,
            _ => match query.strip_prefix("page=").map(str::parse::<usize>) {
                Some(Ok(page)) if page >= 2 => page,
                _ => return Route::NotFound,
            },
        };
        if page > self.category_pages(category) {
            return Route::NotFound;
        }
        Route::Category { category, page }
    }

    fn owned_product(&self, host: usize, slug: &str) -> Option<usize> {
        let index = *self.slugs.get(slug)?;
        (self.product_host(index) == host).then_some(index)
    }

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
            Route::Missing | Route::NotFound => Reply::html(404, self.not_found_page(host)),
            Route::Flaky => Reply::html(200, self.plain_page(host, "Back on its feet", 40)),
            Route::Huge => Reply {
                streamed: true,
                ..Reply::bytes("text/html; charset=utf-8", self.huge_page())
            },
            Route::InvalidUtf8 => Reply::bytes("text/html; charset=utf-8", invalid_utf8_page()),
            Route::Slow => Reply::html(200, self.plain_page(host, "Worth the wait", 40)),
            Route::Busy => Reply::html(200, self.plain_page(host, "Not so busy now", 40)),
        }
    }

    fn robots_reply(&self) -> Reply {
        match self.robots {
            RobotsMode::Served => Reply::bytes(
                "text/plain; charset=utf-8",
                Bytes::from(robots_txt(self.crawl_delay)),
            ),
            RobotsMode::Missing => Reply::html(404, "<!doctype html><title>404</title>".into()),
            RobotsMode::ServerError => Reply::html(503, "<!doctype html><title>503</title>".into()),
        }
    }

    fn category_pages(&self, category: usize) -> usize {
        let count = self.category_members(category).count();
        count.div_ceil(self.per_page).max(1)
    }

    fn category_members(&self, category: usize) -> impl Iterator<Item = usize> + '_ {
        (category..self.products).step_by(self.categories.len())
    }

    /// Link from a page on host `from` to `path` on host `to`: relative when it can be.
    fn href(&self, from: usize, to: usize, path: &str) -> String {
        if from == to {
            path.to_owned()
        } else {
            self.url(to, path)
        }
    }

    fn category_path(&self, category: usize, page: usize) -> String {
        let slug = &self.categories[category];
        match page {
            1 => format!("/category/{slug}.html"),
            page => format!("/category/{slug}.html?page={page}"),
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
        for category in 0..self.categories.len() {
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
        content.push_str(&paragraphs(host as u64, 2));
        content.push_str("<section class=\"featured\"><h2>Featured</h2>\n<ul>\n");
        for index in (0..self.products)
            .filter(|i| self.product_host(*i) == host)
            .take(8)
        {
            let product = self.product(index, revision);
            let _ = writeln!(
                content,
                "  <li><a href=\"{}\">{}</a> <span class=\"price\">{}</span></li>",
                self.href(host, host, &format!("/product/{}.html", product.slug)),
                escape(&product.title),
                product.price,
            );
        }
        content
            .push_str("</ul></section>\n<section class=\"corners\"><h2>Odd corners</h2>\n<ul>\n");
        for (path, text) in ODD_CORNERS {
            let _ = writeln!(content, "  <li><a href=\"{path}\">{text}</a></li>");
        }
        if host == 0 {
            let _ = writeln!(
                content,
                "  <li><a href=\"{}\">Owner's manual</a></li>",
                paths::MANUAL
            );
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
        let pages = self.category_pages(category);
        let name = category_title(category);
        let mut content = format!("<h1>{name} <small>page {page} of {pages}</small></h1>\n");
        content.push_str(&paragraphs((category * 31 + page) as u64, 1));
        content.push_str("<ol class=\"listing\">\n");
        let members = self
            .category_members(category)
            .skip((page - 1) * self.per_page)
            .take(self.per_page);
        for index in members {
            let product = self.product(index, revision);
            let path = format!("/product/{}.html", product.slug);
            let link = self.href(host, self.product_host(index), &path);
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
        content.push_str(&paragraphs(index as u64, 3));
        content.push_str(&spec_table(&product));
        if self.has_datasheet(index) {
            let _ = writeln!(
                content,
                "<p><a class=\"datasheet\" href=\"../docs/{}.pdf\">Datasheet (PDF)</a></p>",
                product.slug
            );
        }
        content.push_str("</div>\n");
        content.push_str(&self.related(index, revision));
        let _ = write!(
            content,
            "<section id=\"reviews\"><h2>Reviews</h2><p>No reviews yet. \
             <a href=\"#reviews\">Be the first</a>.</p></section>\n\
             <p><a href=\"{EXTERNAL_ORIGIN}/share?item={}\">Share</a> · \
             <a href=\"javascript:void(0)\">Print</a></p>\n",
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
                let path = format!("/product/{}.html", product.slug);
                let _ = writeln!(
                    section,
                    "  <li class=\"related-item\"><a href=\"{}\">{}</a></li>",
                    self.href(host, self.product_host(other), &path),
                    escape(&product.title),
                );
            }
        }
        section.push_str("</ul></section>\n");
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
        let content = format!("<h1>{title}</h1>\n{}", paragraphs(seed, 2));
        self.layout(host, title, &content)
    }

    fn huge_page(&self) -> Bytes {
        self.huge_page
            .get_or_init(|| build_huge_page(self.huge_bytes))
            .clone()
    }
}

/// Links every home page offers to the odd corners, whatever the host.
const ODD_CORNERS: [(&str, &str); 10] = [
    (paths::PRIVATE, "Staff area"),
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

/// Where external links point: a host the site does not serve and a job does not allow.
pub(crate) const EXTERNAL_ORIGIN: &str = "https://social.example.com";

const STYLE: &str = "<style>\nbody{font-family:sans-serif;margin:0 auto;max-width:60rem}\n\
header,footer{background:#223;color:#eee;padding:1rem}\nnav ul{display:flex;gap:1rem;\
list-style:none}\n.price{font-weight:bold;color:#a30}\n.listing li{margin:.5rem 0}\n\
table.specs td{padding:.2rem .6rem;border-bottom:1px solid #ccc}\n</style>\n";

fn fixed_route(path: &str, query: &str) -> Option<Route> {
    let route = match path {
        "/" => Route::Home,
        paths::ROBOTS => Route::Robots,
        paths::MANUAL => Route::Manual,
        paths::PRIVATE => Route::Private,
        paths::PRIVATE_STAFF => Route::PrivateStaff,
        paths::LOOP_A => Route::LoopA,
        paths::LOOP_B => Route::LoopB,
        paths::REDIRECT_START => Route::RedirectStart,
        paths::REDIRECT_MIDDLE => Route::RedirectMiddle,
        paths::MISSING => Route::Missing,
        paths::FLAKY => Route::Flaky,
        paths::HUGE => Route::Huge,
        paths::INVALID_UTF8 => Route::InvalidUtf8,
        paths::SLOW => Route::Slow,
        paths::BUSY => Route::Busy,
        _ => return None,
    };
    // Only the slow page takes a query (its delay); elsewhere a query makes another URL.
    (query.is_empty() || route == Route::Slow).then_some(route)
}

fn strip<'a>(path: &'a str, prefix: &str, suffix: &str) -> Option<&'a str> {
    let middle = path.strip_prefix(prefix)?.strip_suffix(suffix)?;
    (!middle.is_empty() && !middle.contains('/')).then_some(middle)
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

fn spec_table(product: &Product) -> String {
    let mix = splitmix(product.index as u64 + 7);
    format!(
        "<table class=\"specs\">\n<tr><td>SKU</td><td>{}</td></tr>\n\
         <tr><td>Weight</td><td>{} g</td></tr>\n<tr><td>Width</td><td>{} cm</td></tr>\n\
         <tr><td>Colour</td><td>{}</td></tr>\n<tr><td>Warranty</td><td>{} years</td></tr>\n\
         </table>\n",
        product.sku,
        100 + mix % 4900,
        5 + (mix >> 12) % 95,
        MATERIALS[((mix >> 20) % MATERIALS.len() as u64) as usize],
        1 + (mix >> 28) % 5,
    )
}

/// `count` paragraphs of deterministic filler text, about 400 bytes each.
fn paragraphs(seed: u64, count: usize) -> String {
    let mut text = String::new();
    let mut state = splitmix(seed);
    for _ in 0..count {
        text.push_str("<p>");
        for word in 0..60 {
            state = splitmix(state);
            if word > 0 {
                text.push(' ');
            }
            text.push_str(FILLER[(state % FILLER.len() as u64) as usize]);
        }
        text.push_str(".</p>\n");
    }
    text
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

fn base_slug(index: usize) -> String {
    let mix = splitmix(index as u64);
    let noun = NOUNS[(mix % NOUNS.len() as u64) as usize];
    let words = format!(
        "{} {} {}",
        ADJECTIVES[index % ADJECTIVES.len()],
        MATERIALS[(index / ADJECTIVES.len()) % MATERIALS.len()],
        noun
    );
    let slug: Vec<String> = words
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    format!("{}-{index}", slug.join("-"))
}

fn category_slug(category: usize) -> String {
    let name = CATEGORY_NAMES[category % CATEGORY_NAMES.len()].to_ascii_lowercase();
    match category / CATEGORY_NAMES.len() {
        0 => name,
        round => format!("{name}-{round}"),
    }
}

fn category_title(category: usize) -> String {
    let name = CATEGORY_NAMES[category % CATEGORY_NAMES.len()];
    match category / CATEGORY_NAMES.len() {
        0 => name.to_owned(),
        round => format!("{name} {round}"),
    }
}

/// HTML-escapes text for element content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A fixed mixing function, so content is deterministic without a random number crate.
fn splitmix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
