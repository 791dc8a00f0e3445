//! The demo shop's content: products, categories and listing pages, generated from a fixed
//! seed. Each product is drawn from its own seeded stream, so product 7 reads the same
//! whether the shop has 300 products or 20,000, on every machine and every run.

use std::collections::HashMap;

/// Products in the demo shop unless told otherwise.
pub(crate) const DEFAULT_PRODUCTS: usize = 2000;
/// The most products the demo shop offers: far below a job's page limit, and still a crawl
/// that finishes while someone watches.
pub(crate) const MAX_PRODUCTS: usize = 50_000;
/// Products on one listing page.
pub(crate) const PRODUCTS_PER_PAGE: usize = 20;
/// Links from a product page to other products, some of them on the other host.
const RELATED_PRODUCTS: usize = 3;
/// One product in this many has a PDF manual linked from its page.
const MANUAL_ONE_IN: u64 = 5;
/// The seed of every product's stream: changing it changes the whole shop.
const SEED: u64 = 0x6f77_6c6d_6573_6821;

const ADJECTIVES: [&str; 16] = [
    "Sturdy", "Gentle", "Bright", "Compact", "Rustic", "Polished", "Quiet", "Nimble", "Hardy",
    "Elegant", "Vintage", "Modern", "Cosy", "Bold", "Subtle", "Handy",
];
const MATERIALS: [&str; 10] = [
    "Oak", "Copper", "Linen", "Walnut", "Ceramic", "Bamboo", "Steel", "Wool", "Glass", "Cork",
];
const NOUNS: [&str; 12] = [
    "Teapot",
    "Lantern",
    "Notebook",
    "Stool",
    "Planter",
    "Pepper Mill",
    "Blanket",
    "Clock",
    "Toolbox",
    "Bookend",
    "Kettle",
    "Basket",
];
/// The shop's categories, as names; their slugs are the lowercased names.
pub(crate) const CATEGORIES: [&str; 8] = [
    "Kitchen", "Garden", "Office", "Outdoor", "Lighting", "Storage", "Textiles", "Tools",
];
const WORDS: [&str; 20] = [
    "crafted", "with", "care", "for", "everyday", "use", "built", "to", "last", "a", "classic",
    "piece", "that", "fits", "any", "home", "easy", "to", "clean", "finish",
];

/// One product of the shop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Product {
    /// Its place in the catalogue, from 0.
    pub(crate) index: usize,
    /// The host that serves its page, an index into [`Catalogue::bases`].
    pub(crate) host: usize,
    /// An index into [`CATEGORIES`].
    pub(crate) category: usize,
    /// The page is `/product/<slug>.html`; the manual, if any, `/docs/<slug>.pdf`.
    pub(crate) slug: String,
    pub(crate) title: String,
    /// With its currency sign, e.g. `$12.99`.
    pub(crate) price: String,
    /// Unique in the shop: what the demo checks the archive against.
    pub(crate) sku: String,
    pub(crate) description: String,
    /// Products linked from this one's page.
    pub(crate) related: Vec<usize>,
    /// Whether its page links a PDF manual.
    pub(crate) has_manual: bool,
}

/// The whole shop: products dealt round-robin over the hosts, and per host and category
/// the products its listing pages show.
#[derive(Debug)]
pub(crate) struct Catalogue {
    bases: Vec<String>,
    products: Vec<Product>,
    by_slug: HashMap<String, usize>,
    /// `listings[host][category]`: product indices, in catalogue order.
    listings: Vec<Vec<Vec<usize>>>,
}

impl Catalogue {
    /// Generates `products` products over the hosts whose base URLs (`http://host:port`,
    /// no trailing slash) are given.
    pub(crate) fn new(products: usize, bases: Vec<String>) -> Self {
        let hosts = bases.len().max(1);
        let products: Vec<Product> = (0..products)
            .map(|index| product(index, products, hosts))
            .collect();
        let by_slug = products
            .iter()
            .map(|product| (product.slug.clone(), product.index))
            .collect();
        let mut listings = vec![vec![Vec::new(); CATEGORIES.len()]; hosts];
        for product in &products {
            listings[product.host][product.category].push(product.index);
        }
        Self {
            bases,
            products,
            by_slug,
            listings,
        }
    }

    /// Every product, in catalogue order.
    pub(crate) fn products(&self) -> &[Product] {
        &self.products
    }

    /// The product whose slug this is.
    pub(crate) fn product_by_slug(&self, slug: &str) -> Option<&Product> {
        self.by_slug.get(slug).map(|index| &self.products[*index])
    }

    /// Base URLs of the hosts, host 0 first.
    pub(crate) fn bases(&self) -> &[String] {
        &self.bases
    }

    /// The hosts as a job's `allowed_hosts` names them (`host:port`).
    pub(crate) fn authorities(&self) -> Vec<String> {
        self.bases
            .iter()
            .map(|base| base.trim_start_matches("http://").to_owned())
            .collect()
    }

    /// The crawl's start URLs: every host's home page.
    pub(crate) fn seeds(&self) -> Vec<String> {
        self.bases.iter().map(|base| format!("{base}/")).collect()
    }

    /// The absolute URL of a product's page.
    pub(crate) fn product_url(&self, product: &Product) -> String {
        format!("{}/product/{}.html", self.bases[product.host], product.slug)
    }

    /// The products a host lists in a category.
    pub(crate) fn listing(&self, host: usize, category: usize) -> &[usize] {
        &self.listings[host][category]
    }

    /// How many listing pages a host has for a category (at least one, maybe empty).
    pub(crate) fn listing_pages(&self, host: usize, category: usize) -> usize {
        self.listing(host, category)
            .len()
            .div_ceil(PRODUCTS_PER_PAGE)
            .max(1)
    }

    /// HTML pages a complete crawl fetches: homes, listing pages and product pages.
    pub(crate) fn html_pages(&self) -> usize {
        let listing_pages: usize = (0..self.listings.len())
            .flat_map(|host| (0..CATEGORIES.len()).map(move |category| (host, category)))
            .map(|(host, category)| self.listing_pages(host, category))
            .sum();
        self.listings.len() + listing_pages + self.products.len()
    }

    /// Products whose page links a PDF manual: the documents a complete crawl finds.
    pub(crate) fn manuals(&self) -> usize {
        self.products
            .iter()
            .filter(|product| product.has_manual)
            .count()
    }
}

/// The slug of a category, as its listing paths use it.
pub(crate) fn category_slug(category: usize) -> String {
    CATEGORIES[category].to_ascii_lowercase()
}

/// Product `index` of a shop of `total` products over `hosts` hosts.
fn product(index: usize, total: usize, hosts: usize) -> Product {
    let mut random = SplitMix64::new(SEED ^ (index as u64).wrapping_mul(0x9e37_79b9));
    let adjective = random.pick(&ADJECTIVES);
    let material = random.pick(&MATERIALS);
    let noun = random.pick(&NOUNS);
    let title = format!("{adjective} {material} {noun}");
    let slug = format!("{}-{index}", title.to_ascii_lowercase().replace(' ', "-"));
    let cents = 199 + random.below(49_800);
    let check: String = (0..2)
        .map(|_| char::from(b'A' + random.below(26) as u8))
        .collect();
    let words = 8 + random.below(8) as usize;
    let description = (0..words)
        .map(|_| *random.pick(&WORDS))
        .collect::<Vec<_>>()
        .join(" ");
    Product {
        index,
        host: index % hosts,
        category: random.below(CATEGORIES.len() as u64) as usize,
        slug,
        title,
        price: format!("${}.{:02}", cents / 100, cents % 100),
        sku: format!("OWL-{index:05}-{check}"),
        description: format!("{}{}.", description[..1].to_uppercase(), &description[1..]),
        related: related(&mut random, index, total),
        has_manual: random.below(MANUAL_ONE_IN) == 0,
    }
}

/// Other products to link, drawn from the whole shop (so from every host).
fn related(random: &mut SplitMix64, index: usize, total: usize) -> Vec<usize> {
    if total < 2 {
        return Vec::new();
    }
    (0..RELATED_PRODUCTS)
        .map(|_| {
            let other = random.below(total as u64 - 1) as usize;
            // Skip over `index` itself so a page never links to itself.
            if other >= index { other + 1 } else { other }
        })
        .collect()
}

/// SplitMix64: tiny, fast and fully specified, so the shop is the same with any version of
/// any crate.
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}
