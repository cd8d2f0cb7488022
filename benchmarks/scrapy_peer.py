"""The peer: what a user would most likely run instead of factflow, on the same site.

    .venv/bin/python benchmarks/scrapy_peer.py SITEMAP_URL

Scrapy (install the `benchmark` extra) with a `SitemapSpider` that obeys robots.txt and turns each
page into markdown with trafilatura's fast mode in its callback, in one process, 16 requests at a
time to the host (factflow's benchmark pipeline uses 16 too); nothing stored. Prints one line of
JSON: {"pages": N, "seconds": S}. Run in a process of its own: Twisted's reactor starts once.
"""

from __future__ import annotations

import json
import sys
import time

import trafilatura
from scrapy.crawler import CrawlerProcess
from scrapy.spiders import SitemapSpider

CONCURRENCY = 16


class MarkdownSpider(SitemapSpider):
    name = "markdown"
    pages = 0

    def parse(self, response):
        markdown = trafilatura.extract(response.text, url=response.url, output_format="markdown", fast=True, include_links=True)
        if markdown:
            MarkdownSpider.pages += 1
        yield {"url": response.url, "chars": len(markdown or "")}


def main() -> None:
    sitemap = sys.argv[1]
    process = CrawlerProcess(settings={
        "ROBOTSTXT_OBEY": True,
        "CONCURRENT_REQUESTS": CONCURRENCY,
        "CONCURRENT_REQUESTS_PER_DOMAIN": CONCURRENCY,
        "LOG_LEVEL": "ERROR",
        "TELNETCONSOLE_ENABLED": False,
        "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
    })
    process.crawl(MarkdownSpider, sitemap_urls=[sitemap])
    started = time.perf_counter()
    process.start()
    print(json.dumps({"pages": MarkdownSpider.pages, "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
