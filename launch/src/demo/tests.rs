//! The demo shop is what the demo promises: deterministic, fully reachable by a polite
//! crawl, and crawled by a job the dispatcher accepts.

use std::collections::{BTreeSet, HashSet, VecDeque};

use super::catalogue::{Catalogue, PRODUCTS_PER_PAGE};
use super::pages::{ROBOTS_TXT, respond};
use super::spec::job_spec;

fn shop(products: usize) -> Catalogue {
    let bases = vec![
        "http://127.0.0.2:8081".to_owned(),
        "http://127.0.0.3:8082".to_owned(),
    ];
    Catalogue::new(products, bases)
}

/// Every `href="…"` of a page, in order.
fn links(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split_once('"').map(|(href, _)| href.to_owned()))
        .collect()
}

/// What a polite crawl of the shop finds: every HTML page fetched, and the SKUs of the
/// product pages among them.
struct Crawl {
    pages: usize,
    skus: BTreeSet<String>,
    manuals: BTreeSet<String>,
}

fn crawl(catalogue: &Catalogue) -> Crawl {
    let bases = catalogue.bases();
    let mut seen: HashSet<String> = catalogue.seeds().into_iter().collect();
    let mut queue: VecDeque<String> = catalogue.seeds().into();
    let mut found = Crawl {
        pages: 0,
        skus: BTreeSet::new(),
        manuals: BTreeSet::new(),
    };
    while let Some(url) = queue.pop_front() {
        let host = bases
            .iter()
            .position(|base| url.starts_with(base.as_str()))
            .unwrap();
        let path = &url[bases[host].len()..];
        let reply = respond(catalogue, host, path);
        assert_eq!(reply.status, 200, "{url}");
        found.pages += 1;
        let html = String::from_utf8(reply.body).unwrap();
        if let Some((_, rest)) = html.split_once("data-sku=\"") {
            found
                .skus
                .insert(rest.split('"').next().unwrap().to_owned());
        }
        for link in links(&html) {
            let absolute = if link.starts_with('/') {
                format!("{}{link}", bases[host])
            } else {
                link
            };
            if absolute.ends_with(".pdf") {
                found.manuals.insert(absolute);
                continue;
            }
            let allowed = bases
                .iter()
                .any(|base| absolute.starts_with(&format!("{base}/")));
            if allowed && !absolute.contains("/private/") && seen.insert(absolute.clone()) {
                queue.push_back(absolute);
            }
        }
    }
    found
}

#[test]
fn the_shop_is_the_same_on_every_run() {
    assert_eq!(shop(300).products(), shop(300).products());
}

#[test]
fn a_product_reads_the_same_whatever_the_shop_size() {
    let small = shop(300);
    let large = shop(2000);
    let same = |index: usize| {
        let (a, b) = (&small.products()[index], &large.products()[index]);
        (a.title == b.title) && (a.sku == b.sku) && (a.price == b.price)
    };
    assert!((0..300).all(same));
}

#[test]
fn skus_and_slugs_are_unique() {
    let catalogue = shop(2000);
    let skus: HashSet<&str> = catalogue
        .products()
        .iter()
        .map(|p| p.sku.as_str())
        .collect();
    let slugs: HashSet<&str> = catalogue
        .products()
        .iter()
        .map(|p| p.slug.as_str())
        .collect();
    assert_eq!(skus.len(), 2000);
    assert_eq!(slugs.len(), 2000);
}

#[test]
fn a_polite_crawl_reaches_every_product_and_every_page() {
    for products in [1, 7, 300, 2000] {
        let catalogue = shop(products);
        let found = crawl(&catalogue);
        let expected: BTreeSet<String> =
            catalogue.products().iter().map(|p| p.sku.clone()).collect();
        assert_eq!(found.skus, expected, "{products} products");
        assert_eq!(found.pages, catalogue.html_pages(), "{products} products");
        assert_eq!(
            found.manuals.len(),
            catalogue.manuals(),
            "{products} products"
        );
    }
}

#[test]
fn listings_paginate() {
    let catalogue = shop(2000);
    let listed = catalogue.listing(0, 0).len();
    assert!(
        listed > PRODUCTS_PER_PAGE,
        "{listed} products on one listing"
    );
    assert!(catalogue.listing_pages(0, 0) > 1);
    let first = respond(&catalogue, 0, "/category/kitchen/page-1.html");
    let html = String::from_utf8(first.body).unwrap();
    assert!(
        html.contains("rel=\"next\" href=\"/category/kitchen/page-2.html\""),
        "{html}"
    );
    let beyond = catalogue.listing_pages(0, 0) + 1;
    let missing = respond(
        &catalogue,
        0,
        &format!("/category/kitchen/page-{beyond}.html"),
    );
    assert_eq!(missing.status, 404);
}

#[test]
fn a_product_page_has_the_fields_the_job_extracts() {
    let catalogue = shop(10);
    let product = &catalogue.products()[4];
    let reply = respond(
        &catalogue,
        product.host,
        &format!("/product/{}.html", product.slug),
    );
    let html = String::from_utf8(reply.body).unwrap();
    assert!(
        html.contains(&format!("<h1>{}</h1>", product.title)),
        "{html}"
    );
    assert!(
        html.contains(&format!("<span class=\"price\">{}</span>", product.price)),
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
        html.contains("http://reviews.example/"),
        "an external link: {html}"
    );
    let elsewhere = respond(
        &catalogue,
        1 - product.host,
        &format!("/product/{}.html", product.slug),
    );
    assert_eq!(elsewhere.status, 404, "a product lives on one host only");
}

#[test]
fn manuals_are_pdfs_and_robots_txt_forbids_the_staff_area() {
    let catalogue = shop(100);
    let product = catalogue.products().iter().find(|p| p.has_manual).unwrap();
    let manual = respond(
        &catalogue,
        product.host,
        &format!("/docs/{}.pdf", product.slug),
    );
    assert_eq!(manual.content_type, "application/pdf");
    assert!(manual.body.starts_with(b"%PDF-"));
    let robots = respond(&catalogue, 0, "/robots.txt");
    assert_eq!(robots.body, ROBOTS_TXT.as_bytes());
    assert!(ROBOTS_TXT.contains("Disallow: /private/"));
    let home = String::from_utf8(respond(&catalogue, 0, "/").body).unwrap();
    assert!(links(&home).contains(&"/private/".to_owned()), "{home}");
}

#[test]
fn the_dispatcher_accepts_the_demo_job() {
    let catalogue = shop(300);
    let spec = owlmesh_job::validated(job_spec(&catalogue)).expect("valid");
    assert_eq!(spec.allowed_hosts, ["127.0.0.2:8081", "127.0.0.3:8082"]);
    assert_eq!(
        spec.seeds,
        ["http://127.0.0.2:8081/", "http://127.0.0.3:8082/"]
    );
}
