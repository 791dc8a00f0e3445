//! The bundled demo: the generated shop of `owlmesh-site` on two loopback hosts, without its
//! bad pages, and the catalogue job aimed at it. It needs no files and no network, so
//! `owlmesh up --demo` shows a real crawl on a fresh machine.

use std::net::{IpAddr, SocketAddr};

use anyhow::Context;
use owlmesh_egress::IpNet;
use owlmesh_proto::v1::JobSpec;
use owlmesh_site::{CatalogueJob, Site, SiteConfig, paths};

/// Products in the demo shop unless told otherwise.
pub(crate) const DEFAULT_PRODUCTS: usize = 2000;
/// The most products the demo shop offers: far below a job's page limit, and still a crawl
/// that finishes while someone watches.
pub(crate) const MAX_PRODUCTS: usize = 50_000;
/// The demo job's name; an unfinished job of this name is a leftover of an earlier demo.
pub(crate) const DEMO_JOB_NAME: &str = "owlmesh-demo";
/// Two hosts, so the crawl spreads over two scrapers as on the web.
const HOSTS: usize = 2;

/// What the shop has served so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ShopStats {
    /// Every request, robots.txt included.
    pub(crate) requests: u64,
    /// Requests under `/private/`, which robots.txt forbids.
    pub(crate) private: u64,
}

/// Serves a shop of `products` products, on 127.0.0.2 and 127.0.0.3 where the system routes
/// them (Linux does), else on two ports of 127.0.0.1, until the returned site is dropped.
pub(crate) async fn start_shop(products: usize) -> anyhow::Result<Site> {
    let shop = |config: SiteConfig| SiteConfig {
        products,
        categories: 8,
        bad_pages: false,
        ..config
    };
    match Site::start(shop(SiteConfig::spread_over_addresses(HOSTS))).await {
        Ok(site) => Ok(site),
        Err(_) => Site::start(shop(SiteConfig::spread_over(HOSTS)))
            .await
            .context("cannot listen on 127.0.0.1 for the demo site"),
    }
}

/// The demo job: the catalogue job, crawling from `seeds` within `hosts`, as the demo.
pub(crate) fn job_spec(seeds: &[String], hosts: &[String]) -> anyhow::Result<JobSpec> {
    let job = CatalogueJob {
        name: DEMO_JOB_NAME.to_owned(),
        concurrency_per_host: 16,
        user_agent: "owlmesh-demo".to_owned(),
        ..CatalogueJob::default()
    };
    owlmesh_job::parse_job_toml(&job.toml(seeds, hosts), "the demo job")
        .context("the demo job is not valid")
}

/// The networks the scrapers must be allowed into to crawl `site`: each of its loopback
/// addresses, and nothing else of loopback.
pub(crate) fn networks(site: &Site) -> Vec<IpNet> {
    let mut addresses: Vec<IpAddr> = site
        .hosts()
        .iter()
        .filter_map(|host| host.parse::<SocketAddr>().ok())
        .map(|address| address.ip())
        .collect();
    addresses.sort();
    addresses.dedup();
    addresses.into_iter().map(IpNet::from).collect()
}

/// What `site` has served so far.
pub(crate) fn stats(site: &Site) -> ShopStats {
    let requests = site.requests();
    let private = requests
        .iter()
        .filter(|request| request.path.starts_with(paths::PRIVATE))
        .count();
    ShopStats {
        requests: requests.len() as u64,
        private: private as u64,
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    #[test]
    fn the_dispatcher_accepts_the_demo_job() {
        let seeds = ["http://127.0.0.2:8081/", "http://127.0.0.3:8082/"].map(String::from);
        let hosts = ["127.0.0.2:8081", "127.0.0.3:8082"].map(String::from);
        let spec = job_spec(&seeds, &hosts).expect("valid");
        let spec = owlmesh_job::validated(spec).expect("valid");
        assert_eq!(spec.name, DEMO_JOB_NAME);
        assert_eq!(spec.allowed_hosts, hosts);
        assert_eq!(spec.seeds, seeds);
        assert_eq!(spec.politeness.unwrap().user_agent, "owlmesh-demo");
        assert_eq!(spec.recrawl.unwrap_or_default().every, "");
    }

    /// The demo's summary explains one failure per host: the `/private/` page robots.txt
    /// forbids. That holds only if nothing else fails, as in a shop without bad pages.
    #[tokio::test]
    async fn the_demo_shop_fails_a_polite_crawl_only_on_private_pages() {
        let site = start_shop(60).await.expect("the demo shop starts");
        assert_eq!(site.hosts().len(), HOSTS);
        assert_eq!(site.expected_products().len(), 60);
        let private: Vec<String> = (0..HOSTS)
            .map(|host| site.host_url(host, paths::PRIVATE))
            .collect();
        assert_eq!(
            site.disallowed_urls().into_iter().collect::<Vec<_>>(),
            private
        );
        assert!(
            site.expected_documents()
                .iter()
                .all(|document| document.url.ends_with(".pdf")),
            "every document is denied by extension, not fetched"
        );
        // A crawler that ignores robots.txt is seen.
        let mut stream = TcpStream::connect(&site.hosts()[0]).await.unwrap();
        let request = "GET /private/ HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n";
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 200"));
        let served = ShopStats {
            requests: 1,
            private: 1,
        };
        assert_eq!(stats(&site), served);
        site.stop().await;
    }
}
