#!/usr/bin/env python3
"""Writes the benchmark's static shop: N product pages spread over several loopback hosts.

The output is a pure function of (pages, hosts, addresses, seed): the same arguments write
byte-identical files, so every crawler in every round crawls exactly the same site, and a
result can be reproduced on another machine.

Layout of OUT (one document root per host, served by nginx):

    OUT/site.json               the shape: hosts, seeds, expected page count, arguments
    OUT/catalogue.jsonl         the truth: one {"url","title","price","sku"} per product
    OUT/urls/<host>.txt         every product path of a host (for the wrk ceiling)
    OUT/hosts/<n>/index.html    a host's home: links to every listing page of the host
    OUT/hosts/<n>/robots.txt    "Disallow: /private/" for every agent
    OUT/hosts/<n>/category/<slug>/page-<k>.html     listing pages, 40 products each
    OUT/hosts/<n>/product/<slug>.html               product pages, 15-30 KB each
    OUT/hosts/<n>/private/*.html                    pages robots.txt forbids
    OUT/hosts/<n>/docs/<sku>.pdf                    small PDFs (linked, never to be fetched)

Every product is reachable from its host's home through a listing page; product pages also
link related products on every host, so the crawl hops between hosts. Links a crawler must
not follow are present on every page: PDFs, /private/ (robots.txt), and external hosts.

Only the standard library is used, so the bench needs no package to generate its site.
"""

import argparse
import html
import json
import os
import random
import shutil
import sys

# Bumped whenever the output changes, so a cached site of an older layout is rewritten.
LAYOUT_VERSION = 1

CATEGORIES = [
    "Kitchen", "Garden", "Office", "Outdoor", "Lighting", "Storage", "Textiles", "Tools",
]
BRANDS = [
    "Owl & Co.", "Northwind", "Hearth & Home", "Lumen", "Fjord", "Atelier Rousseau",
    "Kestrel", "Maple Row", "Tidewater", "Brightside",
]
ADJECTIVES = [
    "Sturdy", "Gentle", "Bright", "Compact", "Rustic", "Polished", "Quiet", "Nimble", "Hardy",
    "Elegant", "Vintage", "Modern", "Cosy", "Bold", "Subtle", "Handy",
]
NOUNS = [
    "Teapot", "Lantern", "Notebook", "Stool", "Planter", "Salt & Pepper Mill", "Blanket",
    "Clock", "Toolbox", "Bookend", "Kettle", "Basket", "Desk Lamp", "Chopping Board",
]
MATERIALS = [
    "oak", "copper", "linen", "walnut", "ceramic", "bamboo", "steel", "wool", "glass", "cork",
]
WORDS = (
    "crafted with care for everyday use and built to last a classic piece that fits any home "
    "easy to clean with a soft matte finish made from responsibly sourced materials designed "
    "in our studio tested by real customers over many seasons the details are what make it "
    "feel right in the hand balanced weighted smooth warm honest simple reliable quiet "
    "durable comfortable light generous thoughtful practical timeless natural tactile neat "
    "kitchen garden office table shelf window morning evening weekend gift family guests "
    "storage travel workshop studio café résumé naïve déjà-vu"
).split()
REVIEWERS = [
    "Ana", "Bertrand", "Chiara", "Dmitri", "Élodie", "Farah", "Gustav", "Hiroko", "Idris",
    "Jana", "Kofi", "Leila", "Mateus", "Nora", "Oskar", "Priya", "Quentin", "Rosa", "Søren",
]
# Hosts outside every job's allowed set: linked from each page, never fetched.
EXTERNAL = [
    "https://www.facebook.example/owlshop",
    "https://twitter.example/intent/tweet",
    "http://reviews.example/shop",
    "https://manufacturer.example/catalogue",
    "https://cdn.example/assets",
]
PRIVATE_PAGES = ["account.html", "cart.html", "orders.html"]
PRODUCTS_PER_LISTING = 40
ROBOTS_TXT = "User-agent: *\nDisallow: /private/\n"
PDF_BODY = (
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
)
MIN_PRODUCT_BYTES = 15_000
MAX_PRODUCT_BYTES = 30_000


def slugify(text):
    """Lowercase ASCII words joined by dashes."""
    out = []
    for ch in text.lower():
        if ch.isascii() and ch.isalnum():
            out.append(ch)
        elif out and out[-1] != "-":
            out.append("-")
    return "".join(out).strip("-")


class Product:
    """One product: where it lives and what a crawler must extract from it."""

    def __init__(self, index, rng, hosts):
        self.index = index
        self.host = index % hosts
        self.category = rng.randrange(len(CATEGORIES))
        self.brand = rng.choice(BRANDS)
        self.name = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
        self.model = f"M{index:05d}"
        self.slug = f"{slugify(self.brand)}-{slugify(self.name)}-{index:05d}"
        self.sku = f"OWL-{index:06d}-{rng.randrange(100):02d}"
        self.price = f"${rng.randrange(499, 250_000) / 100:,.2f}"
        self.material = rng.choice(MATERIALS)
        self.rating = rng.randrange(20, 51) / 10
        # The title as every crawler must read it: text of <h1>, whitespace collapsed.
        self.title = f"{self.brand} {self.name} {self.model}"

    def path(self):
        return f"/product/{self.slug}.html"


class Site:
    """The whole shop, computed once; pages are rendered from it on demand."""

    def __init__(self, pages, bases, seed):
        self.bases = bases
        self.hosts = len(bases)
        rng = random.Random(seed)
        self.products = [Product(i, rng, self.hosts) for i in range(pages)]
        # listings[host][category] = product indexes, in catalogue order
        self.listings = [[[] for _ in CATEGORIES] for _ in bases]
        for product in self.products:
            self.listings[product.host][product.category].append(product.index)
        self.seed = seed

    def listing_pages(self, host, category):
        count = len(self.listings[host][category])
        return (count + PRODUCTS_PER_LISTING - 1) // PRODUCTS_PER_LISTING

    def listing_of(self, product):
        """The listing page (category, k) that shows `product`."""
        position = self.listings[product.host][product.category].index(product.index)
        return position // PRODUCTS_PER_LISTING + 1

    def url(self, product):
        return self.bases[product.host] + product.path()


def listing_href(category, page):
    return f"/category/{slugify(CATEGORIES[category])}/page-{page}.html"


def esc(text):
    return html.escape(text, quote=True)


def sentence(rng, low=8, high=18):
    words = [rng.choice(WORDS) for _ in range(rng.randint(low, high))]
    return " ".join(words).capitalize() + "."


def paragraph(rng, sentences=(3, 6)):
    return " ".join(sentence(rng) for _ in range(rng.randint(*sentences)))


def head(title, description, extra=""):
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{esc(title)} | Owl Shop</title>\n"
        f"<meta name=\"description\" content=\"{esc(description)}\">\n"
        "<link rel=\"stylesheet\" href=\"/static/site.css\">\n"
        "<link rel=\"icon\" href=\"/static/favicon.ico\">\n"
        "<style>body{font-family:system-ui,sans-serif;margin:0}header,footer{background:#223;"
        "color:#eee;padding:1rem}nav a{margin-right:.8rem;color:#fc6}.price{font-weight:700;"
        "color:#a30}.specs td,.specs th{padding:.2rem .6rem;border-bottom:1px solid #ddd}"
        ".review{border-left:3px solid #fc6;padding-left:.8rem;margin:1rem 0}</style>\n"
        f"{extra}</head>\n<body>\n"
    )


def header():
    """Site header: home, every category's first listing page, and the private account."""
    links = "".join(
        f"<a href=\"{listing_href(c, 1)}\">{esc(name)}</a>\n"
        for c, name in enumerate(CATEGORIES)
    )
    return (
        "<header>\n<a class=\"logo\" href=\"/\">Owl Shop</a>\n"
        "<form class=\"search\" action=\"/search\" method=\"get\">"
        "<input type=\"search\" name=\"q\" placeholder=\"Search products\">"
        "<button>Search</button></form>\n"
        f"<nav class=\"categories\">\n{links}</nav>\n"
        "<nav class=\"account\"><a href=\"/private/account.html\">My account</a> "
        "<a href=\"/private/cart.html\">Cart (0)</a></nav>\n</header>\n"
    )


def footer(rng):
    externals = "".join(
        f"<li><a href=\"{url}/{rng.randrange(1000)}\" rel=\"nofollow\">"
        f"{url.split('/')[2]}</a></li>\n"
        for url in EXTERNAL
    )
    return (
        "<footer>\n<ul class=\"links\">\n<li><a href=\"/\">Home</a></li>\n"
        "<li><a href=\"/private/orders.html\">Order history</a></li>\n"
        f"{externals}</ul>\n<p>&copy; 2026 Owl Shop — prices include VAT. "
        "Free shipping over $50.</p>\n</footer>\n</body>\n</html>\n"
    )


def product_page(site, product, rng):
    """A 15-30 KB product page with the fields, 18-28 followable links, PDFs and externals."""
    target = rng.randint(MIN_PRODUCT_BYTES + 500, MAX_PRODUCT_BYTES - 3_000)
    category = CATEGORIES[product.category]
    json_ld = json.dumps({
        "@context": "https://schema.org", "@type": "Product", "name": product.title,
        "sku": product.sku, "brand": product.brand,
        "offers": {"@type": "Offer", "price": product.price.lstrip("$").replace(",", ""),
                   "priceCurrency": "USD"},
    }, ensure_ascii=False)
    parts = [
        head(product.title, f"{product.title} in {product.material}",
             f"<script type=\"application/ld+json\">{json_ld}</script>\n"),
        header(),
        "<ol class=\"breadcrumb\"><li><a href=\"/\">Home</a></li>"
        f"<li><a href=\"{listing_href(product.category, site.listing_of(product))}\">"
        f"{esc(category)}</a></li><li>{esc(product.name)}</li></ol>\n",
        f"<main>\n<div class=\"product\" data-sku=\"{product.sku}\" "
        f"data-category=\"{slugify(category)}\">\n",
        # A nested element in the title: crawlers must join its text nodes.
        f"<h1 class=\"title\">\n  {esc(product.brand)} {esc(product.name)} "
        f"<span class=\"model\">{product.model}</span>\n</h1>\n",
        f"<p class=\"offer\"><span class=\"price\">{product.price}</span> "
        f"<span class=\"availability\">{rng.choice(['In stock', 'Ships in 3 days', 'Low stock'])}"
        f"</span> <span class=\"rating\" title=\"{product.rating} out of 5\">"
        f"{'★' * round(product.rating)}{'☆' * (5 - round(product.rating))}</span></p>\n",
        "<div class=\"gallery\">"
        + "".join(f"<img src=\"/static/img/{product.sku}-{k}.jpg\" alt=\"{esc(product.name)}, "
                  f"view {k}\" loading=\"lazy\" width=\"480\" height=\"360\">" for k in range(1, 5))
        + "</div>\n",
        "<form class=\"buy\" action=\"/private/cart.html\" method=\"post\">"
        f"<input type=\"hidden\" name=\"sku\" value=\"{product.sku}\">"
        "<input type=\"number\" name=\"quantity\" value=\"1\" min=\"1\">"
        "<button>Add to cart</button></form>\n",
        "<section class=\"description\">\n<h2>Description</h2>\n",
    ]
    parts += [f"<p>{esc(paragraph(rng))}</p>\n" for _ in range(rng.randint(2, 4))]
    parts.append("</section>\n<section class=\"specs\">\n<h2>Specifications</h2>\n"
                 "<table class=\"specs\">\n")
    specs = [("SKU", product.sku), ("Brand", product.brand), ("Model", product.model),
             ("Material", product.material), ("Category", category)]
    units = ["mm", "g", "ml", "cm", "W", "h"]
    specs += [(f"{rng.choice(WORDS).capitalize()} {k}",
               f"{rng.randrange(1, 500)} {rng.choice(units)}")
              for k in range(rng.randint(8, 16))]
    parts += [f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>\n" for k, v in specs]
    parts.append("</table>\n<ul class=\"documents\">"
                 f"<li><a href=\"/docs/{product.sku}.pdf\">Datasheet (PDF, 80 KB)</a></li>"
                 f"<li><a href=\"/docs/{product.sku}-manual.pdf\">Manual (PDF)</a></li>"
                 "</ul>\n</section>\n")

    related = rng.sample(range(len(site.products)), rng.randint(4, 14))
    items = []
    for other_index in related:
        other = site.products[other_index]
        # Same host: root-relative, sometimes into the reviews; other host: absolute.
        if other.host == product.host:
            href = other.path() + ("#reviews" if rng.random() < 0.3 else "")
        else:
            href = site.url(other)
        items.append(f"<li class=\"card\"><a href=\"{href}\">{esc(other.title)}</a> "
                     f"<span class=\"card-price\">{other.price}</span></li>\n")
    related_html = ("<section class=\"related\">\n<h2>You may also like</h2>\n<ul>\n"
                    + "".join(items) + "</ul>\n</section>\n")
    share = (f"<p class=\"share\"><a href=\"{EXTERNAL[1]}?url={esc(site.url(product))}\">Share</a>"
             f" <a href=\"{EXTERNAL[3]}/{slugify(product.brand)}\">Manufacturer site</a></p>\n")
    tail = "</div>\n</main>\n"

    # Reviews fill the page up to its target size, as they do on a real shop.
    parts.append("<section class=\"reviews\" id=\"reviews\">\n<h2>Reviews</h2>\n")
    size = sum(len(p.encode()) for p in parts) + len((related_html + share + tail).encode()) + 1_200
    while size < target:
        review = (f"<article class=\"review\"><h3>{esc(sentence(rng, 3, 6))}</h3>"
                  f"<p class=\"by\">{rng.choice(REVIEWERS)} — 2026-{rng.randint(1, 12):02d}-"
                  f"{rng.randint(1, 28):02d}, {rng.randint(1, 5)}/5</p>"
                  f"<p>{esc(paragraph(rng, (2, 5)))}</p></article>\n")
        parts.append(review)
        size += len(review.encode())
    parts += ["</section>\n", related_html, share, tail, footer(rng)]
    page = "".join(parts)
    length = len(page.encode())
    if not MIN_PRODUCT_BYTES <= length <= MAX_PRODUCT_BYTES:
        raise SystemExit(f"product page {product.slug} is {length} bytes, outside 15-30 KB")
    return page


def listing_page(site, host, category, number, rng):
    name = CATEGORIES[category]
    count = site.listing_pages(host, category)
    indexes = site.listings[host][category]
    shown = indexes[(number - 1) * PRODUCTS_PER_LISTING:number * PRODUCTS_PER_LISTING]
    cards = "".join(
        f"<li class=\"card\"><a href=\"{site.products[i].path()}\">"
        f"{esc(site.products[i].title)}</a> <span class=\"card-price\">"
        f"{site.products[i].price}</span></li>\n" for i in shown
    )
    pager = "".join(
        f"<a href=\"{listing_href(category, k)}\">{k}</a> " for k in range(1, count + 1)
    )
    return (
        head(f"{name}, page {number}", f"{name} at the Owl Shop")
        + header()
        + f"<main>\n<h1>{esc(name)}, page {number} of {count}</h1>\n"
        f"<p>{esc(paragraph(rng, (1, 2)))}</p>\n<ul class=\"products\">\n{cards}</ul>\n"
        f"<nav class=\"pager\">{pager}</nav>\n</main>\n"
        + footer(rng)
    )


def home_page(site, host, rng):
    sections = []
    for category, name in enumerate(CATEGORIES):
        pages = site.listing_pages(host, category)
        if pages == 0:
            continue
        links = " ".join(f"<a href=\"{listing_href(category, k)}\">page {k}</a>"
                         for k in range(1, pages + 1))
        sections.append(f"<li><h2>{esc(name)}</h2> {links}</li>\n")
    others = "".join(f"<a href=\"{base}/\">Shop {n + 1}</a>\n"
                     for n, base in enumerate(site.bases) if n != host)
    return (
        head(f"Shop {host + 1}", "The Owl Shop")
        + header()
        + f"<main>\n<h1>Owl Shop {host + 1}</h1>\n<p>{esc(paragraph(rng))}</p>\n"
        f"<ul class=\"categories\">\n{''.join(sections)}</ul>\n"
        f"<nav class=\"elsewhere\">\n{others}</nav>\n</main>\n"
        + footer(rng)
    )


def private_page(name):
    return (head("Staff only", "private") + "<main><h1>Sign in</h1>"
            f"<p>{esc(name)} needs an account.</p></main>\n</body>\n</html>\n")


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write(text)


def generate(out, pages, bases, seed):
    site = Site(pages, bases, seed)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    # One generator per page kind and host keeps each page's text independent of the others.
    page_count = 0
    for host, base in enumerate(bases):
        root = os.path.join(out, "hosts", str(host))
        rng = random.Random(f"{seed}/home/{host}")
        write(os.path.join(root, "index.html"), home_page(site, host, rng))
        write(os.path.join(root, "robots.txt"), ROBOTS_TXT)
        for name in PRIVATE_PAGES:
            write(os.path.join(root, "private", name), private_page(name))
        page_count += 1
        for category, name in enumerate(CATEGORIES):
            for number in range(1, site.listing_pages(host, category) + 1):
                rng = random.Random(f"{seed}/listing/{host}/{category}/{number}")
                path = os.path.join(root, listing_href(category, number).lstrip("/"))
                write(path, listing_page(site, host, category, number, rng))
                page_count += 1
    os.makedirs(os.path.join(out, "urls"))
    paths = [[] for _ in bases]
    with open(os.path.join(out, "catalogue.jsonl"), "w", encoding="utf-8") as truth:
        for product in site.products:
            rng = random.Random(f"{seed}/product/{product.index}")
            root = os.path.join(out, "hosts", str(product.host))
            write(os.path.join(root, product.path().lstrip("/")), product_page(site, product, rng))
            docs = os.path.join(root, "docs")
            os.makedirs(docs, exist_ok=True)
            with open(os.path.join(docs, f"{product.sku}.pdf"), "wb") as pdf:
                pdf.write(PDF_BODY)
            truth.write(json.dumps({"url": site.url(product), "title": product.title,
                                    "price": product.price, "sku": product.sku},
                                   ensure_ascii=False) + "\n")
            paths[product.host].append(product.path())
            page_count += 1
    for host, host_paths in enumerate(paths):
        with open(os.path.join(out, "urls", f"{host}.txt"), "w") as listing:
            listing.write("\n".join(host_paths) + "\n")
    shape = {
        "layout": LAYOUT_VERSION,
        "pages": pages,
        "seed": seed,
        "bases": bases,
        "hosts": [base.split("//", 1)[1] for base in bases],
        "seeds": [base + "/" for base in bases],
        "products": len(site.products),
        # Pages a polite crawler fetches: homes, listings, products (not robots.txt,
        # not /private/, not PDFs).
        "expected_pages": page_count,
    }
    write(os.path.join(out, "site.json"), json.dumps(shape, indent=2) + "\n")
    return shape


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder to write the site into")
    parser.add_argument("--pages", type=int, default=10_000, help="product pages (default 10000)")
    parser.add_argument("--hosts", default="127.0.0.11:8080,127.0.0.12:8080,127.0.0.13:8080,"
                        "127.0.0.14:8080", help="comma-separated host:port list")
    parser.add_argument("--seed", type=int, default=8, help="random seed (default 8)")
    parser.add_argument("--force", action="store_true", help="rewrite even if up to date")
    args = parser.parse_args()
    bases = [f"http://{host.strip()}" for host in args.hosts.split(",") if host.strip()]
    stamp = os.path.join(args.out, "site.json")
    if not args.force and os.path.exists(stamp):
        with open(stamp) as existing:
            shape = json.load(existing)
        if (shape.get("layout"), shape.get("pages"), shape.get("seed"), shape.get("bases")) == (
                LAYOUT_VERSION, args.pages, args.seed, bases):
            print(f"site up to date: {args.out} ({shape['expected_pages']} pages)")
            return
    shape = generate(args.out, args.pages, bases, args.seed)
    print(f"site written: {args.out} ({shape['products']} products, "
          f"{shape['expected_pages']} pages over {len(bases)} hosts)", file=sys.stderr)


if __name__ == "__main__":
    main()
