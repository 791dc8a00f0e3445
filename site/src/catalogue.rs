//! The shop's layout: its hosts, products, categories and listing pages, which path is which
//! page, and where links point. A pure function of the site's shape, seed and content
//! revision: the server, the static files and the known truth all read the shop from here,
//! so what is served and what is expected cannot drift apart.

mod pages;

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Bytes;

pub(crate) use self::pages::Reply;
use crate::config::{RobotsMode, SiteConfig};
use crate::paths;
use crate::text::{ADJECTIVES, MATERIALS, NOUNS, category_slug, pick, slugify, splitmix};

/// One product as the site currently shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Product {
    pub(crate) index: usize,
    pub(crate) slug: String,
    pub(crate) title: String,
    /// With its currency sign, e.g. `$12.99`.
    pub(crate) price: String,
    /// `OWL-` and the index in five digits: unique in the shop.
    pub(crate) sku: String,
    pub(crate) category: usize,
}

/// What one request resolves to, before the server adds its stateful behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Home,
    Robots,
    Category {
        category: usize,
        page: usize,
    },
    Product(usize),
    Datasheet(usize),
    Private,
    PrivateStaff,
    Manual,
    LoopA,
    LoopB,
    RedirectStart,
    RedirectMiddle,
    /// Its target is in the query, read by the server.
    RedirectTo,
    Missing,
    Flaky,
    Huge,
    InvalidUtf8,
    Slow,
    Busy,
    NotFound,
}

/// The whole shop: products dealt round-robin over the hosts, and per host and category the
/// products its listing pages show.
#[derive(Debug)]
pub(crate) struct Catalogue {
    hosts: Vec<String>,
    products: usize,
    per_page: usize,
    categories: usize,
    documents_every: usize,
    /// The configured seed, mixed once.
    seed: u64,
    reviews: usize,
    bad_pages: bool,
    crawl_delay: Option<Duration>,
    robots: RobotsMode,
    huge_bytes: usize,
    huge_page: OnceLock<Bytes>,
    slugs: HashMap<String, usize>,
    /// `listings[host][category]`: product indices, in catalogue order.
    listings: Vec<Vec<Vec<usize>>>,
}

impl Catalogue {
    /// Lays out the catalogue over `hosts` (authorities such as `127.0.0.1:40123`).
    pub(crate) fn new(config: &SiteConfig, hosts: Vec<String>) -> Self {
        let mut catalogue = Self {
            products: config.products,
            per_page: config.products_per_page.max(1),
            categories: config.categories.max(1),
            documents_every: config.documents_every,
            seed: splitmix(config.seed),
            reviews: config.reviews,
            bad_pages: config.bad_pages,
            crawl_delay: config.crawl_delay,
            robots: config.robots.clone(),
            huge_bytes: config.huge_page_bytes,
            huge_page: OnceLock::new(),
            slugs: HashMap::new(),
            listings: vec![vec![Vec::new(); config.categories.max(1)]; hosts.len()],
            hosts,
        };
        for index in 0..catalogue.products {
            catalogue.slugs.insert(catalogue.slug(index), index);
            let host = catalogue.product_host(index);
            let category = catalogue.category_of(index);
            catalogue.listings[host][category].push(index);
        }
        catalogue
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

    /// The host and the path of an absolute URL on one of the site's hosts.
    pub(crate) fn locate<'a>(&self, url: &'a str) -> Option<(usize, &'a str)> {
        let rest = url.strip_prefix("http://")?;
        let split = rest.find('/').unwrap_or(rest.len());
        let host = self.hosts.iter().position(|host| *host == rest[..split])?;
        Some((host, &rest[split..]))
    }

    /// The host that serves product `index`: products are dealt round-robin over the hosts.
    pub(crate) fn product_host(&self, index: usize) -> usize {
        index % self.hosts.len()
    }

    /// The path of product `index`'s page.
    pub(crate) fn product_path(&self, index: usize) -> String {
        format!("/product/{}.html", self.slug(index))
    }

    /// Absolute URL of product `index`'s page.
    pub(crate) fn product_url(&self, index: usize) -> String {
        self.url(self.product_host(index), &self.product_path(index))
    }

    /// Whether product `index` has a datasheet PDF.
    pub(crate) fn has_datasheet(&self, index: usize) -> bool {
        self.documents_every > 0 && index.is_multiple_of(self.documents_every)
    }

    /// Absolute URL of product `index`'s datasheet.
    pub(crate) fn datasheet_url(&self, index: usize) -> String {
        self.url(
            self.product_host(index),
            &format!("/docs/{}.pdf", self.slug(index)),
        )
    }

    /// Whether the home pages link the bad pages.
    pub(crate) fn has_bad_pages(&self) -> bool {
        self.bad_pages
    }

    /// Whether robots.txt, as served, lets a crawler fetch `path`.
    pub(crate) fn robots_allows(&self, path: &str) -> bool {
        match &self.robots {
            RobotsMode::Served => !path.starts_with(paths::PRIVATE),
            RobotsMode::Missing | RobotsMode::Redirect(_) => true,
            // A crawler that cannot read robots.txt must assume everything is disallowed.
            RobotsMode::ServerError => false,
        }
    }

    /// Product `index` as revision `revision` shows it. From revision 2 on, every tenth
    /// product (index 0, 10, 20, …) gets a new title and price; the others never change.
    /// A product reads the same whatever the size of the shop.
    pub(crate) fn product(&self, index: usize, revision: u32) -> Product {
        let mut title = self.base_title(index);
        let mut cents = 199 + (self.mix(index) >> 16) % 49_800;
        if revision >= 2 && index.is_multiple_of(10) {
            title.push_str(&format!(" (Mark {revision})"));
            cents += 100 * u64::from(revision);
        }
        Product {
            index,
            slug: self.slug(index),
            title,
            price: format!("${}.{:02}", cents / 100, cents % 100),
            sku: format!("OWL-{index:05}"),
            category: self.category_of(index),
        }
    }

    /// The products host `host` lists in `category`.
    pub(crate) fn listing(&self, host: usize, category: usize) -> &[usize] {
        &self.listings[host][category]
    }

    /// How many listing pages host `host` has for `category`: at least one, maybe empty.
    pub(crate) fn listing_pages(&self, host: usize, category: usize) -> usize {
        self.listing(host, category)
            .len()
            .div_ceil(self.per_page)
            .max(1)
    }

    /// The path of a listing page, `page` from 1. Paths, not queries, so that the pages can
    /// also be static files.
    pub(crate) fn category_path(&self, category: usize, page: usize) -> String {
        format!("/category/{}/page-{page}.html", category_slug(category))
    }

    /// Resolves a request on host `host` to a route.
    pub(crate) fn route(&self, host: usize, path_and_query: &str) -> Route {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        if let Some(route) = self.fixed_route(path, query) {
            return route;
        }
        if let Some(rest) = path.strip_prefix("/category/") {
            return self.category_route(host, rest);
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

    /// The pages every shop has, and the bad pages when it has them.
    fn fixed_route(&self, path: &str, query: &str) -> Option<Route> {
        let route = match path {
            "/" => Route::Home,
            paths::ROBOTS => Route::Robots,
            paths::REDIRECT_TO => Route::RedirectTo,
            paths::PRIVATE => Route::Private,
            paths::PRIVATE_STAFF => Route::PrivateStaff,
            _ if !self.bad_pages => return None,
            paths::MANUAL => Route::Manual,
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
        // Only the slow page (its delay) and the open redirect (its target) take a query;
        // elsewhere a query makes another URL.
        (query.is_empty() || matches!(route, Route::Slow | Route::RedirectTo)).then_some(route)
    }

    /// `<slug>/page-<n>.html` under `/category/`, when host `host` has that page.
    fn category_route(&self, host: usize, rest: &str) -> Route {
        let Some((slug, page)) = rest.split_once('/') else {
            return Route::NotFound;
        };
        let category = (0..self.categories).find(|category| category_slug(*category) == slug);
        let page = page
            .strip_prefix("page-")
            .and_then(|page| page.strip_suffix(".html"))
            .and_then(|page| page.parse::<usize>().ok());
        match (category, page) {
            (Some(category), Some(page))
                if (1..=self.listing_pages(host, category)).contains(&page) =>
            {
                Route::Category { category, page }
            }
            _ => Route::NotFound,
        }
    }

    fn owned_product(&self, host: usize, slug: &str) -> Option<usize> {
        let index = *self.slugs.get(slug)?;
        (self.product_host(index) == host).then_some(index)
    }

    /// Product `index`'s own draw: the same for a given seed whatever the shop's size.
    fn mix(&self, index: usize) -> u64 {
        splitmix(self.seed ^ index as u64)
    }

    /// A seed for filler text derived from the site's seed, so the text changes with it.
    fn text_seed(&self, salt: u64) -> u64 {
        self.seed ^ salt
    }

    fn category_of(&self, index: usize) -> usize {
        (splitmix(self.mix(index)) % self.categories as u64) as usize
    }

    /// The title before any revision: unique thanks to the number at its end.
    fn base_title(&self, index: usize) -> String {
        format!(
            "{} {} {} No. {index}",
            ADJECTIVES[index % ADJECTIVES.len()],
            MATERIALS[(index / ADJECTIVES.len()) % MATERIALS.len()],
            pick(&NOUNS, self.mix(index)),
        )
    }

    fn slug(&self, index: usize) -> String {
        let title = self.base_title(index);
        let words = title
            .strip_suffix(&format!(" No. {index}"))
            .unwrap_or(&title);
        format!("{}-{index}", slugify(words))
    }
}

fn strip<'a>(path: &'a str, prefix: &str, suffix: &str) -> Option<&'a str> {
    let middle = path.strip_prefix(prefix)?.strip_suffix(suffix)?;
    (!middle.is_empty() && !middle.contains('/')).then_some(middle)
}
