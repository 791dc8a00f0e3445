//! Attacks on a real mesh, each with the outcome docs/security.md promises: the attack fails
//! with a reason that says why, and the crawl around it stays whole.
//!
//! Server-side request forgery: a job (or `owlmesh try`) that leads a scraper to an address
//! the operator did not allow, by seed, by redirect or by robots.txt redirect. The scrapers
//! are allowed into 127.0.0.2 only; the site on 127.0.0.3 stands in for what must not be
//! reached (a metadata service, a database), and must hear nothing.

mod support;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use owlmesh_site::{CatalogueJob, RobotsMode, Site, SiteConfig, paths};
use support::mesh::{TestMesh, Topology};

/// A site of a few products on `127.0.0.<last>` only.
async fn site_on(last: u8, robots: RobotsMode) -> Site {
    Site::start(SiteConfig {
        listen: vec![SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)),
            0,
        )],
        products: 20,
        bad_pages: false,
        robots,
        ..SiteConfig::default()
    })
    .await
    .expect("site")
}

fn encoded(url: &str) -> String {
    url::form_urlencoded::byte_serialize(url.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_cannot_lead_a_scraper_outside_the_allowed_networks() {
    let forbidden = site_on(3, RobotsMode::Served).await;
    let allowed = site_on(2, RobotsMode::Redirect(forbidden.url(paths::ROBOTS))).await;
    let topology = Topology {
        dispatchers: 1,
        scrapers: 1,
        archivers: 1,
    };
    let mesh = TestMesh::start(topology, &["--allow-network", "127.0.0.2/32"])
        .await
        .unwrap();

    // By seed, and by the allowed site's open redirect; its robots.txt redirects there too.
    let secret = forbidden.product_url(0);
    let lure = format!(
        "{}?location={}",
        allowed.url(paths::REDIRECT_TO),
        encoded(&forbidden.product_url(1))
    );
    let mut seeds = allowed.seeds();
    seeds.extend([secret.clone(), lure.clone()]);
    let mut hosts = allowed.hosts();
    hosts.extend(forbidden.hosts());
    let job = CatalogueJob::default().toml(&seeds, &hosts);
    let id = mesh.submit(&job).await.unwrap();
    mesh.wait_done(&id, Duration::from_secs(60)).await.unwrap();

    assert!(
        forbidden.requests().is_empty(),
        "the forbidden site heard {:?}",
        forbidden.requests()
    );
    // The crawl of the allowed site is whole.
    let items = mesh.export(&id, false).await.unwrap();
    let urls: BTreeSet<String> = items
        .iter()
        .filter_map(|item| item["url"].as_str().map(str::to_owned))
        .collect();
    let expected: BTreeSet<String> = allowed
        .expected_products()
        .into_iter()
        .map(|product| product.url)
        .collect();
    assert_eq!(urls, expected);
    // Each refusal says what was refused and why.
    let outcomes = mesh.events(&id, "outcome").await.unwrap();
    let refusal = |url: &str| {
        outcomes
            .iter()
            .find(|event| event.url == url)
            .map(|event| (event.attributes["status"].clone(), event.message.clone()))
    };
    let blocked = Some((
        "OUTCOME_STATUS_FAILED".to_owned(),
        "blocked address 127.0.0.3 (loopback)".to_owned(),
    ));
    assert_eq!(refusal(&secret), blocked, "{outcomes:?}");
    // The redirect leaves the lure's host, so its target is scheduled as a URL of its own.
    assert_eq!(refusal(&forbidden.product_url(1)), blocked, "{outcomes:?}");

    // `owlmesh try` fetches through a scraper, under the same guard.
    let job_path = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(job_path.path(), &job).unwrap();
    let output = mesh
        .cli(&[
            "try",
            &secret,
            "--job",
            &job_path.path().display().to_string(),
        ])
        .await
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        said.contains("blocked address 127.0.0.3 (loopback)"),
        "owlmesh try said: {said}"
    );
    assert!(
        forbidden.requests().is_empty(),
        "try reached the forbidden site"
    );
}
