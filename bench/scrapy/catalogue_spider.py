"""The benchmark's Scrapy spider: the same crawl as owlmesh's bench job and bare-crawl.

Run it as a user of Scrapy would, with `scrapy runspider`:

    scrapy runspider bench/scrapy/catalogue_spider.py -O items.jsonl \
        -a site=target/bench/site/site.json -a summary=scrapy-summary.json

It obeys robots.txt, follows every `a[href]` to the site's hosts except PDFs, and writes one
{"url","title","price","sku"} per product page (`/product/<slug>.html`) as JSON lines.

The settings below are tuned for throughput on a local site, as the Scrapy documentation's
"Broad Crawls" page advises, and are the ones bench/README.md lists; none of them changes
what is crawled.
"""

import json
import resource
import time
from urllib.parse import urldefrag, urlsplit

import scrapy
from scrapy import signals

# Requests in flight: 32 per host over the bench's 4 hosts, the same budget the owlmesh job
# (concurrency_per_host = 32) and bare-crawl (--concurrency 128) get. bench/compare.py
# passes `-s CONCURRENT_REQUESTS=...` for a site with another number of hosts.
PER_HOST = 32
HOSTS = 4


def collapse(texts):
    """Text nodes joined as they read, whitespace runs collapsed to one space: the same
    rule owlmesh and bare-crawl apply to a text field."""
    return " ".join("".join(texts).split())


class CatalogueSpider(scrapy.Spider):
    name = "catalogue"
    custom_settings = {
        "ROBOTSTXT_OBEY": True,
        "USER_AGENT": "owlmesh-bench-scrapy",
        "CONCURRENT_REQUESTS": PER_HOST * HOSTS,
        # Scrapy keys its per-domain slots by host name without the port; the bench hosts
        # are distinct loopback addresses, so each host gets its own slot.
        "CONCURRENT_REQUESTS_PER_DOMAIN": PER_HOST,
        "DOWNLOAD_DELAY": 0,
        "AUTOTHROTTLE_ENABLED": False,
        # Recommended for crawls over several hosts: it feeds the downloader slot with the
        # fewest active requests, so no host sits idle while another has a queue.
        "SCHEDULER_PRIORITY_QUEUE": "scrapy.pqueues.DownloaderAwarePriorityQueue",
        "COOKIES_ENABLED": False,
        # The debugging consoles (telnet, and the HTTP remote control of Scrapy 2.19) are
        # of no use to a benchmark.
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,
        "LOG_LEVEL": "INFO",
        "FEED_EXPORT_ENCODING": "utf-8",
        # The site fits in one crawl; no depth or page limit, as in the owlmesh job.
        "DEPTH_LIMIT": 0,
    }

    def __init__(self, site, summary=None, *args, **kwargs):
        super().__init__(*args, **kwargs)
        with open(site) as shape_file:
            shape = json.load(shape_file)
        self.seeds = shape["seeds"]
        # Allowed hosts as (host, port): the site's hosts differ by address, not name.
        self.allowed = {(urlsplit(base).hostname, urlsplit(base).port) for base in shape["bases"]}
        self.summary_path = summary
        self.pages = 0
        self.items = 0

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.on_opened, signal=signals.spider_opened)
        return spider

    async def start(self):
        # Seeds go through the duplicate filter like every other URL (start_urls would
        # skip it, and each host's home would be fetched twice).
        for url in self.seeds:
            yield scrapy.Request(url, callback=self.parse)

    def on_opened(self, spider):
        # The crawl interval starts here: after the interpreter and Scrapy have loaded, as
        # owlmesh's interval starts at job submission with the mesh already up.
        self.started = time.monotonic()
        self.cpu_started = cpu_seconds()

    def parse(self, response):
        self.pages += 1
        path = urlsplit(response.url).path
        if path.startswith("/product/") and path.endswith(".html") and "/" not in path[9:-5]:
            self.items += 1
            yield {
                "url": response.url,
                "title": collapse(response.css("h1 ::text").getall()),
                "price": collapse(response.css("span.price ::text").getall()),
                "sku": (response.css("div.product::attr(data-sku)").get() or "").strip(),
            }
        # Each link once per page (as owlmesh's extraction does); the duplicate filter
        # takes care of links already seen on other pages.
        followed = set()
        for href in response.css("a::attr(href)").getall():
            href = href.strip()
            if href.startswith("#"):
                continue
            # Fragments dropped, so an item's URL is the page's, as in the other crawlers.
            url = urldefrag(response.urljoin(href)).url
            if url in followed:
                continue
            followed.add(url)
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or url.endswith(".pdf"):
                continue
            port = parts.port or (443 if parts.scheme == "https" else 80)
            if (parts.hostname, port) in self.allowed:
                yield scrapy.Request(url, callback=self.parse)

    def closed(self, reason):
        elapsed = time.monotonic() - self.started
        summary = {
            "reason": reason,
            "pages": self.pages,
            "items": self.items,
            "elapsed_s": elapsed,
            "cpu_s": cpu_seconds() - self.cpu_started,
            "pages_per_s": self.pages / elapsed if elapsed else 0.0,
        }
        self.logger.info("bench summary: %s", json.dumps(summary))
        if self.summary_path:
            with open(self.summary_path, "w") as out:
                json.dump(summary, out)


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
