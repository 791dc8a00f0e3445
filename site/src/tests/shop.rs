//! The shop is what every crawl of it relies on: the same for a seed on every run, fully
//! reachable by a polite crawl, with listings that paginate and product pages that carry
//! the fields the catalogue job extracts. Pure: no sockets.

use std::collections::HashSet;

use crate::catalogue::Catalogue;
use crate::config::SiteConfig;
use crate::{paths, truth};

const HOSTS: [&str; 2] = ["127.0.0.2:8081", "127.0.0.3:8082"];

fn shop_with(config: SiteConfig) -> Catalogue {
    Catalogue::new(&config, HOSTS.map(str::to_owned).to_vec())
}

/// A two-host shop without its bad pages, as the demo serves it.
fn shop(products: usize) -> Catalogue {
    shop_with(SiteConfig {
        products,
        bad_pages: false,
        ..SiteConfig::default()
    })
}

/// The status and body of `path` on host `host`.
fn get(catalogue: &Catalogue, host: usize, path: &str) -> (u16, String) {
    let reply = catalogue.reply(host, catalogue.route(host, path), 1);
    let body = String::from_utf8_lossy(&reply.body).into_owned();
    (reply.status, body)
}

#[test]
fn the_shop_is_the_same_on_every_run_and_another_seed_is_another_shop() {
    let (one, two) = (shop(300), shop(300));
    for index in 0..300 {
        assert_eq!(one.product(index, 1), two.product(index, 1));
    }
    assert_eq!(get(&one, 0, "/"), get(&two, 0, "/"));
    let reseeded = shop_with(SiteConfig {
        products: 300,
        seed: 99,
        bad_pages: false,
        ..SiteConfig::default()
    });
    let differ = (0..300)
        .filter(|index| reseeded.product(*index, 1).price != one.product(*index, 1).price)
        .count();
    assert!(differ > 250, "only {differ} prices differ");
    assert_eq!(reseeded.product(7, 1).sku, one.product(7, 1).sku);
}

#[test]
fn a_product_reads_the_same_whatever_the_shop_size() {
    let (small, large) = (shop(300), shop(2000));
    for index in 0..300 {
        assert_eq!(small.product(index, 1), large.product(index, 1));
        assert_eq!(small.product_url(index), large.product_url(index));
    }
}

#[test]
fn skus_and_slugs_are_unique() {
    let catalogue = shop(2000);
    let products: Vec<_> = (0..2000).map(|index| catalogue.product(index, 1)).collect();
    let skus: HashSet<&str> = products.iter().map(|p| p.sku.as_str()).collect();
    let slugs: HashSet<&str> = products.iter().map(|p| p.slug.as_str()).collect();
    assert_eq!(skus.len(), 2000);
    assert_eq!(slugs.len(), 2000);
}

#[test]
fn every_host_lists_its_products_in_every_category() {
    let catalogue = shop(2000);
    for host in 0..HOSTS.len() {
        let mut listed = 0;
        for category in 0..crate::DEFAULT_CATEGORIES {
            let products = catalogue.listing(host, category);
            assert!(products.len() > 100, "host {host}, category {category}");
            assert!(products.iter().all(|i| catalogue.product_host(*i) == host));
            listed += products.len();
        }
        assert_eq!(listed, 1000, "host {host}");
    }
}

#[test]
fn a_polite_crawl_reaches_every_product_and_every_page() {
    for products in [1, 7, 300, 2000] {
        let catalogue = shop(products);
        let walk = truth::walk(&catalogue, 1);
        for product in truth::products(&catalogue, 1) {
            assert!(walk.reachable.contains(&product.url), "{}", product.url);
        }
        for document in truth::documents(&catalogue) {
            assert!(walk.reachable.contains(&document.url), "{}", document.url);
        }
        // Homes, every host's listing pages of every category, and the product pages.
        let listing_pages: usize = (0..HOSTS.len())
            .flat_map(|host| (0..crate::DEFAULT_CATEGORIES).map(move |c| (host, c)))
            .map(|(host, category)| catalogue.listing_pages(host, category))
            .sum();
        let pages = walk.fetched();
        assert_eq!(pages.len(), HOSTS.len() + listing_pages + products);
        for url in &pages {
            let (host, path) = catalogue.locate(url).expect("on the site");
            assert_eq!(get(&catalogue, host, path).0, 200, "{url}");
        }
        let private: HashSet<String> = (0..HOSTS.len())
            .map(|host| catalogue.url(host, paths::PRIVATE))
            .collect();
        assert_eq!(walk.disallowed.into_iter().collect::<HashSet<_>>(), private);
    }
}

#[test]
fn listings_paginate() {
    let catalogue = shop(2000);
    let listed = catalogue.listing(0, 0).len();
    assert!(
        listed > crate::DEFAULT_PRODUCTS_PER_PAGE,
        "{listed} products"
    );
    let pages = catalogue.listing_pages(0, 0);
    assert!(pages > 1);
    let (status, html) = get(&catalogue, 0, "/category/kitchen/page-1.html");
    assert_eq!(status, 200);
    assert!(
        html.contains("rel=\"next\" href=\"/category/kitchen/page-2.html\""),
        "{html}"
    );
    let beyond = format!("/category/kitchen/page-{}.html", pages + 1);
    assert_eq!(get(&catalogue, 0, &beyond).0, 404);
    assert_eq!(get(&catalogue, 0, "/category/kitchen/page-0.html").0, 404);
}

#[test]
fn a_product_page_has_the_fields_the_job_extracts() {
    let catalogue = shop(10);
    let product = catalogue.product(4, 1);
    let host = catalogue.product_host(4);
    let path = catalogue.product_path(4);
    let (status, html) = get(&catalogue, host, &path);
    assert_eq!(status, 200);
    assert!(
        html.contains(&format!("<h1>\n    {}\n  </h1>", product.title)),
        "{html}"
    );
    assert!(
        html.contains(&format!("</span>{}</span>", &product.price[1..])),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "<div class=\"product\" data-sku=\"{}\">",
            product.sku
        )),
        "{html}"
    );
    assert!(
        html.contains("https://social.example.com/"),
        "an external link: {html}"
    );
    assert_eq!(
        get(&catalogue, 1 - host, &path).0,
        404,
        "a product lives on one host only"
    );
}

#[test]
fn reviews_give_the_pages_weight() {
    let light = shop(50);
    let heavy = shop_with(SiteConfig {
        products: 50,
        reviews: 30,
        bad_pages: false,
        ..SiteConfig::default()
    });
    for index in 0..50 {
        let host = light.product_host(index);
        let path = light.product_path(index);
        let (light_size, heavy_size) = (
            get(&light, host, &path).1.len(),
            get(&heavy, host, &path).1.len(),
        );
        // At least three quarters of 30 reviews, of some 450 bytes each.
        assert!(heavy_size > light_size + 22 * 400, "{index}: {heavy_size}");
        assert_eq!(light.product(index, 1), heavy.product(index, 1));
    }
}

#[test]
fn datasheets_are_pdfs_and_robots_txt_forbids_the_staff_area() {
    let catalogue = shop(100);
    let document = &truth::documents(&catalogue)[0];
    let (host, path) = catalogue.locate(&document.url).expect("on the site");
    let reply = catalogue.reply(host, catalogue.route(host, path), 1);
    assert_eq!(reply.content_type, Some("application/pdf"));
    assert!(reply.body.starts_with(b"%PDF-"));
    let (_, robots) = get(&catalogue, 0, paths::ROBOTS);
    assert!(
        robots.contains("User-agent: *\nDisallow: /private/\n"),
        "{robots}"
    );
    let (_, home) = get(&catalogue, 0, "/");
    assert!(
        truth::anchor_hrefs(&home).contains(&paths::PRIVATE),
        "{home}"
    );
}
