//! The static files are the served site: the same pages at the same paths, with the truth
//! beside them.

use std::fs;

use crate::catalogue::Catalogue;
use crate::{SiteConfig, StaticSite, truth};

const HOSTS: [&str; 3] = ["127.0.0.11:8080", "127.0.0.12:8080", "127.0.0.13:8080"];

fn hosts() -> Vec<String> {
    HOSTS.map(str::to_owned).to_vec()
}

fn config() -> SiteConfig {
    SiteConfig {
        products: 90,
        products_per_page: 7,
        bad_pages: false,
        ..SiteConfig::default()
    }
}

#[test]
fn every_page_a_crawl_fetches_is_a_file_with_the_served_body() {
    let out = tempfile::tempdir().unwrap();
    let site = StaticSite::write(out.path(), &config(), &hosts()).unwrap();
    let catalogue = Catalogue::new(&config(), hosts());
    let walk = truth::walk(&catalogue, 1);
    assert_eq!(site.products, 90);
    assert_eq!(site.expected_pages, walk.fetched().len());
    for url in walk.reachable.iter().chain(&walk.disallowed) {
        let (host, path) = catalogue.locate(url).unwrap();
        let mut file = out.path().join("hosts").join(host.to_string());
        file.push(path.trim_start_matches('/'));
        if path.ends_with('/') {
            file.push("index.html");
        }
        let served = catalogue.reply(host, catalogue.route(host, path), 1).body;
        assert_eq!(fs::read(&file).unwrap(), served.to_vec(), "{url}");
    }
    for host in 0..HOSTS.len() {
        let robots = out.path().join(format!("hosts/{host}/robots.txt"));
        assert!(
            fs::read_to_string(robots)
                .unwrap()
                .contains("Disallow: /private/")
        );
    }
}

#[test]
fn the_truth_lies_beside_the_pages() {
    let out = tempfile::tempdir().unwrap();
    let site = StaticSite::write(out.path(), &config(), &hosts()).unwrap();
    let shape: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.path().join("site.json")).unwrap()).unwrap();
    assert_eq!(shape["hosts"], serde_json::json!(HOSTS));
    assert_eq!(shape["bases"][1], "http://127.0.0.12:8080");
    assert_eq!(shape["seeds"][2], "http://127.0.0.13:8080/");
    assert_eq!(shape["products"], 90);
    assert_eq!(shape["expected_pages"], site.expected_pages);

    let catalogue = Catalogue::new(&config(), hosts());
    let lines = fs::read_to_string(out.path().join("catalogue.jsonl")).unwrap();
    let items: Vec<serde_json::Value> = lines
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let expected = truth::products(&catalogue, 1);
    assert_eq!(items.len(), expected.len());
    for (item, product) in items.iter().zip(&expected) {
        assert_eq!(item["url"], product.url.as_str());
        assert_eq!(item["title"], product.title.as_str());
        assert_eq!(item["price"], product.price.as_str());
        assert_eq!(item["sku"], product.sku.as_str());
    }

    let paths = fs::read_to_string(out.path().join("urls/1.txt")).unwrap();
    assert_eq!(paths.lines().count(), 30);
    for path in paths.lines() {
        assert!(
            out.path().join("hosts/1").join(&path[1..]).is_file(),
            "{path}"
        );
    }
}

#[test]
fn an_earlier_site_is_replaced_and_any_other_folder_refused() {
    let out = tempfile::tempdir().unwrap();
    let stale = out.path().join("hosts/0/stale.html");
    StaticSite::write(out.path(), &config(), &hosts()).unwrap();
    fs::write(&stale, "old").unwrap();
    StaticSite::write(out.path(), &config(), &hosts()).unwrap();
    assert!(!stale.exists());

    let other = tempfile::tempdir().unwrap();
    fs::write(other.path().join("notes.txt"), "mine").unwrap();
    let refused = StaticSite::write(other.path(), &config(), &hosts()).unwrap_err();
    assert!(
        refused.to_string().contains("other than a site"),
        "{refused}"
    );
    assert!(other.path().join("notes.txt").exists());
}

#[test]
fn the_bad_pages_cannot_be_static() {
    let out = tempfile::tempdir().unwrap();
    let config = SiteConfig {
        bad_pages: true,
        ..config()
    };
    assert!(StaticSite::write(out.path(), &config, &hosts()).is_err());
}
