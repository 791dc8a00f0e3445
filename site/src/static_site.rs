//! The site as static files, for a web server to serve: the benchmark's nginx serves the
//! very shop the tests and the demo crawl, written from the same catalogue, with the truth
//! beside it for crawlers that cannot link this crate (Scrapy, the bench's scripts).
//!
//! Layout of the output folder:
//!
//! ```text
//! site.json                 the shape: hosts, seeds, expected page count, the knobs
//! catalogue.jsonl           the truth: one {"url","title","price","sku"} per product
//! urls/<n>.txt              every product path of host n (for wrk)
//! hosts/<n>/index.html      host n's document root: its home page, …
//! hosts/<n>/robots.txt
//! hosts/<n>/category/<slug>/page-<k>.html
//! hosts/<n>/product/<slug>.html
//! hosts/<n>/docs/<slug>.pdf
//! hosts/<n>/private/index.html
//! ```
//!
//! What is written is what a polite crawl reaches, plus the pages robots.txt forbids and
//! robots.txt itself, each rendered as the server renders it.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, BufWriter, Write as _};
use std::path::Path;

use serde_json::json;

use crate::catalogue::Catalogue;
use crate::config::SiteConfig;
use crate::paths;
use crate::truth;

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticSite {
    /// Products in the catalogue.
    pub products: usize,
    /// Pages a crawl with the catalogue job fetches (not robots.txt, `/private/` or PDFs).
    pub expected_pages: usize,
    /// Bytes of every file under `hosts/`.
    pub bytes: u64,
}

impl StaticSite {
    /// Writes the site of `config` for `hosts` (`host:port`, where the web server will
    /// listen) into `out`, which must be new, empty, or an earlier site (it is replaced). A
    /// site with the bad pages cannot be static: redirects, failures and delays need a
    /// server.
    pub fn write(out: &Path, config: &SiteConfig, hosts: &[String]) -> io::Result<Self> {
        if config.bad_pages {
            return Err(invalid("a static site cannot have the bad pages"));
        }
        if hosts.is_empty() {
            return Err(invalid("a site needs at least one host"));
        }
        let catalogue = Catalogue::new(config, hosts.to_vec());
        let walk = truth::walk(&catalogue, 1);
        clear(out)?;

        let robots = (0..hosts.len()).map(|host| catalogue.url(host, paths::ROBOTS));
        let files: BTreeSet<String> = walk
            .reachable
            .iter()
            .chain(&walk.disallowed)
            .cloned()
            .chain(robots)
            .collect();
        let mut bytes = 0;
        for url in &files {
            bytes += write_page(out, &catalogue, url)?;
        }

        let products = truth::products(&catalogue, 1);
        let mut truth = BufWriter::new(fs::File::create(out.join("catalogue.jsonl"))?);
        for product in &products {
            let line = json!({
                "url": product.url,
                "title": product.title,
                "price": product.price,
                "sku": product.sku,
            });
            writeln!(truth, "{line}")?;
        }
        truth.flush()?;

        fs::create_dir_all(out.join("urls"))?;
        for host in 0..hosts.len() {
            let mut list = String::new();
            for index in (host..catalogue.product_count()).step_by(hosts.len()) {
                list.push_str(&catalogue.product_path(index));
                list.push('\n');
            }
            fs::write(out.join("urls").join(format!("{host}.txt")), list)?;
        }

        let written = Self {
            products: products.len(),
            expected_pages: walk.fetched().len(),
            bytes,
        };
        let shape = json!({
            "products": config.products,
            "products_per_page": config.products_per_page,
            "categories": config.categories,
            "documents_every": config.documents_every,
            "reviews": config.reviews,
            "seed": config.seed,
            "hosts": hosts,
            "bases": hosts.iter().map(|host| format!("http://{host}")).collect::<Vec<_>>(),
            "seeds": hosts.iter().map(|host| format!("http://{host}/")).collect::<Vec<_>>(),
            "expected_pages": written.expected_pages,
        });
        let mut text = serde_json::to_string_pretty(&shape).map_err(io::Error::other)?;
        text.push('\n');
        fs::write(out.join("site.json"), text)?;
        Ok(written)
    }
}

/// Empties `out` when it holds an earlier site; refuses a folder that holds anything else.
fn clear(out: &Path) -> io::Result<()> {
    match fs::read_dir(out) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
        Ok(mut entries) => {
            if entries.next().is_some() && !out.join("site.json").exists() {
                let folder = out.display();
                return Err(invalid(format!(
                    "{folder} holds files other than a site: choose a new or empty folder"
                )));
            }
            fs::remove_dir_all(out)?;
        }
    }
    fs::create_dir_all(out)
}

/// Renders the page at `url` into its host's document root; returns its size.
fn write_page(out: &Path, catalogue: &Catalogue, url: &str) -> io::Result<u64> {
    let (host, path) = catalogue
        .locate(url)
        .ok_or_else(|| invalid(format!("{url} is not on the site")))?;
    let reply = catalogue.reply(host, catalogue.route(host, path), 1);
    if reply.status != 200 || reply.location.is_some() || path.contains('?') {
        return Err(invalid(format!("{url} cannot be a static file")));
    }
    let mut file = out.join("hosts").join(host.to_string());
    file.push(path.trim_start_matches('/'));
    if path.ends_with('/') {
        file.push("index.html");
    }
    if let Some(folder) = file.parent() {
        fs::create_dir_all(folder)?;
    }
    fs::write(&file, &reply.body)?;
    Ok(reply.body.len() as u64)
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message.into())
}
