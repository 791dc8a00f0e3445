//! What a site is made of: its shape (hosts, products, categories, pages), its seed, and
//! how its server behaves. One set of knobs, so the tests' site, the demo's shop and the
//! benchmark's static files differ only in values.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Products in the catalogue unless configured otherwise.
pub const DEFAULT_PRODUCTS: usize = 500;
/// Products per category listing page.
pub const DEFAULT_PRODUCTS_PER_PAGE: usize = 20;
/// Product categories.
pub const DEFAULT_CATEGORIES: usize = 5;
/// Every n-th product has a datasheet PDF.
pub const DEFAULT_DOCUMENTS_EVERY: usize = 5;
/// The seed of every draw: titles, prices, categories and filler text.
pub const DEFAULT_SEED: u64 = 1;
/// Size of the huge page.
pub const DEFAULT_HUGE_PAGE_BYTES: usize = 10 * 1024 * 1024;
/// How long the slow page takes to answer.
pub const DEFAULT_SLOW_DELAY: Duration = Duration::from_secs(2);
/// The `Retry-After` the busy page sends with its 429.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(2);

/// How the site answers `/robots.txt`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RobotsMode {
    /// `Disallow: /private/` for every agent, plus the configured `Crawl-delay`.
    #[default]
    Served,
    /// 404: crawlers may fetch everything.
    Missing,
    /// 503: crawlers must assume everything is disallowed.
    ServerError,
    /// 302 to this URL: robots.txt somewhere else, e.g. on an address a crawler must not
    /// reach. The truth assumes the target cannot be read, so that everything is allowed.
    Redirect(String),
}

/// The shape and behaviour of a [`Site`](crate::Site). Every field has a default; the
/// content is a pure function of the shape fields and `seed`.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    /// Addresses to listen on, one host each; port 0 picks a free port. Any 127.0.0.x
    /// address binds on Linux without set-up.
    pub listen: Vec<SocketAddr>,
    /// Products in the catalogue, dealt round-robin over the hosts.
    pub products: usize,
    /// Products per category listing page.
    pub products_per_page: usize,
    /// Product categories; every host lists its own products in every category.
    pub categories: usize,
    /// Every n-th product (index 0, n, 2n, …) links a datasheet PDF; 0 for none.
    pub documents_every: usize,
    /// The seed of every draw: another seed, another shop of the same shape.
    pub seed: u64,
    /// Reviews on a product page, on average (each shows between three quarters and five
    /// quarters as many): the weight of a real shop's pages. 0 for light pages.
    pub reviews: usize,
    /// Whether the home pages link the bad pages of [`paths`](crate::paths): redirect loops
    /// and chains, a 404, failing, slow, huge and mis-encoded pages, and a PDF known only by
    /// its Content-Type. Tests crawl into them; a demo or a benchmark wants a clean crawl.
    pub bad_pages: bool,
    /// `Crawl-delay` in robots.txt, none by default.
    pub crawl_delay: Option<Duration>,
    /// How `/robots.txt` answers.
    pub robots: RobotsMode,
    /// Size of `/huge.html` in bytes.
    pub huge_page_bytes: usize,
    /// How long `/slow.html` waits before answering (`/slow.html?ms=N` overrides it).
    pub slow_delay: Duration,
    /// A delay added to every response, to make concurrency observable.
    pub page_delay: Duration,
    /// How many times `/flaky.html` answers 500 before it answers 200.
    pub flaky_failures: u32,
    /// How many times `/busy.html` answers 429 before it answers 200.
    pub busy_failures: u32,
    /// The `Retry-After` of the 429 answers, sent in whole seconds.
    pub retry_after: Duration,
}

impl Default for SiteConfig {
    fn default() -> Self {
        Self {
            listen: vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)],
            products: DEFAULT_PRODUCTS,
            products_per_page: DEFAULT_PRODUCTS_PER_PAGE,
            categories: DEFAULT_CATEGORIES,
            documents_every: DEFAULT_DOCUMENTS_EVERY,
            seed: DEFAULT_SEED,
            reviews: 0,
            bad_pages: true,
            crawl_delay: None,
            robots: RobotsMode::Served,
            huge_page_bytes: DEFAULT_HUGE_PAGE_BYTES,
            slow_delay: DEFAULT_SLOW_DELAY,
            page_delay: Duration::ZERO,
            flaky_failures: 1,
            busy_failures: 1,
            retry_after: DEFAULT_RETRY_AFTER,
        }
    }
}

impl SiteConfig {
    /// One site spread over `hosts` listeners on 127.0.0.1, each its own host:port.
    pub fn spread_over(hosts: usize) -> Self {
        let localhost = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
        Self {
            listen: vec![localhost; hosts.max(1)],
            ..Self::default()
        }
    }

    /// One site spread over `hosts` loopback addresses 127.0.0.2, 127.0.0.3, …, so hosts
    /// differ by address and not only by port.
    pub fn spread_over_addresses(hosts: usize) -> Self {
        let listen = (0..hosts.clamp(1, 250))
            .map(|offset| {
                SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + offset as u8)), 0)
            })
            .collect();
        Self {
            listen,
            ..Self::default()
        }
    }
}
