"""The throughput benchmark's website (benchmarks/site.py): what it serves is what it says."""

import re

import httpx
import pytest
from conftest import require_corpus

from benchmarks.site import CORPUS, benchmark_site


@pytest.fixture(autouse=True)
def corpus():
    return require_corpus(CORPUS)


def test_the_site_lists_every_page_in_a_sitemap_index_and_numbers_each_page():
    with benchmark_site(1203) as site:
        index = httpx.get(site.url("/sitemap_index.xml")).text
        sitemaps = re.findall(r"<loc>([^<]+)</loc>", index)
        assert len(sitemaps) == 3  # 500 URLs per sitemap
        pages = [loc for sitemap in sitemaps for loc in re.findall(r"<loc>([^<]+)</loc>", httpx.get(sitemap).text)]
        assert len(pages) == len(set(pages)) == 1203 and pages[-1].endswith("/articles/01202.html")
        first, again = httpx.get(pages[5]), httpx.get(pages[5 + 97])  # the same article, two pages
        assert first.status_code == 200 and first.headers["content-type"].startswith("text/html")
        assert "(page 5)</title>" in first.text and "(page 102)</title>" in again.text
        assert len(first.content) > 20_000
        assert httpx.get(site.url("/robots.txt")).text.startswith("User-agent: *")
        assert site.total_requests() == 1 + 3 + 2 + 1
