//! What the bare crawl reads from a page: the product fields and the links to follow, with
//! the same rules as the benchmark's owlmesh job and Scrapy spider.

use scraper::{ElementRef, Html, Selector};
use serde::Serialize;
use url::Url;

/// One product, as every crawler in the benchmark writes it.
#[derive(Debug, Serialize)]
pub(crate) struct Item {
    pub(crate) url: String,
    pub(crate) title: Option<String>,
    pub(crate) price: Option<String>,
    pub(crate) sku: Option<String>,
}

/// What one page gave.
#[derive(Debug, Default)]
pub(crate) struct Page {
    /// Present on product pages (`/product/<slug>.html`).
    pub(crate) item: Option<Item>,
    /// Links to follow: absolute, fragment dropped, on an allowed host, not a PDF. Not
    /// deduplicated, and not checked against robots.txt: the crawl loop does both.
    pub(crate) links: Vec<Url>,
}

/// Selectors compiled once, and the hosts links may lead to.
#[derive(Debug)]
pub(crate) struct Extractor {
    title: Selector,
    price: Selector,
    product: Selector,
    links: Selector,
    /// `(host, port)` pairs.
    allowed: Vec<(String, u16)>,
}

impl Extractor {
    /// `allowed` holds `host:port` strings, as in the job file's `allowed_hosts`.
    pub(crate) fn new(allowed: &[String]) -> anyhow::Result<Self> {
        let selector = |text: &str| {
            Selector::parse(text).map_err(|error| anyhow::anyhow!("selector {text}: {error}"))
        };
        let allowed = allowed
            .iter()
            .map(|host| {
                let url = Url::parse(&format!("http://{host}/"))?;
                let name = url
                    .host_str()
                    .ok_or_else(|| anyhow::anyhow!("allowed host {host:?} has no host name"))?;
                Ok((name.to_owned(), url.port_or_known_default().unwrap_or(80)))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            title: selector("h1")?,
            price: selector("span.price")?,
            product: selector("div.product")?,
            links: selector("a[href]")?,
            allowed,
        })
    }

    /// Parses `html` once and reads everything from it. The parsed document never leaves
    /// this function, so callers may hold the result across an `.await`.
    pub(crate) fn extract(&self, page_url: &Url, html: &str) -> Page {
        let document = Html::parse_document(html);
        let item = is_product_path(page_url.path()).then(|| Item {
            url: page_url.to_string(),
            title: first(&document, &self.title).map(text),
            price: first(&document, &self.price).map(text),
            sku: first(&document, &self.product)
                .and_then(|element| element.attr("data-sku"))
                .map(|sku| sku.trim().to_owned()),
        });
        let links = document
            .select(&self.links)
            .filter_map(|element| element.attr("href"))
            .filter(|href| !href.trim_start().starts_with('#'))
            .filter_map(|href| page_url.join(href.trim()).ok())
            .filter_map(|mut url| {
                url.set_fragment(None);
                self.follows(&url).then_some(url)
            })
            .collect();
        Page { item, links }
    }

    /// An http(s) URL on an allowed host that is not a PDF (the job's `deny = ['\.pdf$']`).
    fn follows(&self, url: &Url) -> bool {
        if !matches!(url.scheme(), "http" | "https") || url.as_str().ends_with(".pdf") {
            return false;
        }
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return false;
        };
        self.allowed
            .iter()
            .any(|(name, allowed_port)| name == host && *allowed_port == port)
    }
}

/// The job's handler pattern `^/product/(?P<slug>[^/]+)\.html$`, without a regex.
fn is_product_path(path: &str) -> bool {
    path.strip_prefix("/product/")
        .and_then(|rest| rest.strip_suffix(".html"))
        .is_some_and(|slug| !slug.is_empty() && !slug.contains('/'))
}

fn first<'a>(document: &'a Html, selector: &Selector) -> Option<ElementRef<'a>> {
    document.select(selector).next()
}

/// The element's text nodes joined as they read, trimmed, every whitespace run one space:
/// what owlmesh's extraction gives for a text field.
fn text(element: ElementRef<'_>) -> String {
    let mut text = String::new();
    let mut space_pending = false;
    for character in element.text().flat_map(str::chars) {
        if character.is_whitespace() {
            space_pending = !text.is_empty();
        } else {
            if space_pending {
                text.push(' ');
                space_pending = false;
            }
            text.push(character);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extractor() -> Extractor {
        Extractor::new(&["127.0.0.11:8080".to_owned(), "127.0.0.12:8080".to_owned()]).unwrap()
    }

    #[test]
    fn product_pages_give_fields_with_text_nodes_joined_and_whitespace_collapsed() {
        let url = Url::parse("http://127.0.0.11:8080/product/owl-kettle-1.html").unwrap();
        let html = r#"<div class="product" data-sku=" OWL-1 "><h1>
            Owl &amp; Co.  Kettle <span>M1</span></h1><span class="price">$1,024.50</span></div>"#;
        let item = extractor().extract(&url, html).item.unwrap();
        assert_eq!(item.title.as_deref(), Some("Owl & Co. Kettle M1"));
        assert_eq!(item.price.as_deref(), Some("$1,024.50"));
        assert_eq!(item.sku.as_deref(), Some("OWL-1"));
    }

    #[test]
    fn other_pages_give_no_item() {
        let url = Url::parse("http://127.0.0.11:8080/category/tools/page-1.html").unwrap();
        assert!(extractor().extract(&url, "<h1>Tools</h1>").item.is_none());
        assert!(!is_product_path("/product/a/b.html"));
        assert!(!is_product_path("/product/.html"));
    }

    #[test]
    fn links_are_resolved_without_fragments_and_kept_to_allowed_hosts_and_non_pdfs() {
        let url = Url::parse("http://127.0.0.11:8080/product/a.html").unwrap();
        let html = r##"<a href="/product/b.html#reviews">b</a> <a href="#top">top</a>
            <a href="http://127.0.0.12:8080/product/c.html">c</a>
            <a href="http://127.0.0.13:8080/product/d.html">elsewhere</a>
            <a href="https://reviews.example/x">external</a> <a href="/docs/a.pdf">pdf</a>
            <a href="mailto:shop@example.com">mail</a> <a href="../category/x/page-1.html">x</a>"##;
        let links: Vec<String> = extractor()
            .extract(&url, html)
            .links
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(
            links,
            [
                "http://127.0.0.11:8080/product/b.html",
                "http://127.0.0.12:8080/product/c.html",
                "http://127.0.0.11:8080/category/x/page-1.html",
            ]
        );
    }
}
