//! The generated shop every crawl of owlmesh's own runs over: `owlmesh up --demo` serves it,
//! the end-to-end and scraper tests crawl it, and the benchmark serves it as static files.
//! One generator, so the three cannot drift apart, and one job, [`CatalogueJob`], the
//! README's example job file, so its handler and selectors are written once.
//!
//! The content is a pure function of the shape ([`SiteConfig`]), the seed and the content
//! revision. [`Site`] serves it over loopback listeners, one per host, recording every
//! request; the known truth ([`Site::expected_products`], [`Site::reachable_urls`], …) is
//! computed from the very pages it serves. [`StaticSite`] writes it as files.
//!
//! This crate depends on no other owlmesh crate, so every crate can dev-depend on it.

mod catalogue;
mod config;
mod job;
mod server;
mod static_site;
mod text;
mod truth;

pub use config::{
    DEFAULT_CATEGORIES, DEFAULT_DOCUMENTS_EVERY, DEFAULT_HUGE_PAGE_BYTES, DEFAULT_PRODUCTS,
    DEFAULT_PRODUCTS_PER_PAGE, DEFAULT_RETRY_AFTER, DEFAULT_SEED, DEFAULT_SLOW_DELAY, RobotsMode,
    SiteConfig,
};
pub use job::{CATALOGUE_EXAMPLE, CatalogueJob, PRODUCT_HANDLER};
pub use server::{RequestRecord, Site};
pub use static_site::StaticSite;
pub use truth::{ExpectedDocument, ExpectedProduct};

/// Paths of the site's fixed pages, the same on every host. Those after [`PRIVATE_STAFF`](paths::PRIVATE_STAFF)
/// are the bad pages, present only when [`SiteConfig::bad_pages`] is on.
pub mod paths {
    /// robots.txt: `Disallow: /private/` for every agent.
    pub const ROBOTS: &str = "/robots.txt";
    /// Redirects (302) to whatever `?location=` says: an open redirect, as an attacker uses
    /// to lead a crawler to an address it must not reach. Linked from nowhere, so served
    /// with or without the bad pages.
    pub const REDIRECT_TO: &str = "/redirect/to";
    /// A page robots.txt forbids, linked from every home page.
    pub const PRIVATE: &str = "/private/";
    /// Another forbidden page, linked only from [`PRIVATE`].
    pub const PRIVATE_STAFF: &str = "/private/staff.html";
    /// Redirects (302) to [`LOOP_B`].
    pub const LOOP_A: &str = "/loop/a";
    /// Redirects (302) back to [`LOOP_A`].
    pub const LOOP_B: &str = "/loop/b";
    /// Redirects (301) to [`REDIRECT_MIDDLE`].
    pub const REDIRECT_START: &str = "/redirect/start";
    /// Redirects (302) to product 0's page, which may be on another host.
    pub const REDIRECT_MIDDLE: &str = "/redirect/middle";
    /// Answers 404.
    pub const MISSING: &str = "/missing.html";
    /// Answers 500 the first time(s), then 200.
    pub const FLAKY: &str = "/flaky.html";
    /// A page of about 10 MB.
    pub const HUGE: &str = "/huge.html";
    /// Declared UTF-8, but contains Latin-1 bytes that are not valid UTF-8.
    pub const INVALID_UTF8: &str = "/invalid-utf8.html";
    /// Answers after a delay; `?ms=N` sets the delay of one request.
    pub const SLOW: &str = "/slow.html";
    /// Answers 429 with `Retry-After` the first time(s), then 200.
    pub const BUSY: &str = "/busy.html";
    /// A PDF without a `.pdf` extension: only its Content-Type says what it is.
    pub const MANUAL: &str = "/download/manual";
}

#[cfg(test)]
mod tests;
